// Local chat simulator: pick an officer, poll what the bot queued for them, send commands.
// Plain DOM and fetch; every text goes through textContent, never innerHTML.
"use strict";
(function () {
  var SCOPES = { direct: "私聊", department: "部门群", office: "办公室群" };
  var officerSelect = document.getElementById("officer");
  var chat = document.getElementById("chat");
  var statusLine = document.getElementById("status");
  var who = document.getElementById("who");
  var input = document.getElementById("text");
  var pickerFilter = document.getElementById("officer-filter");
  var demoPanel = document.getElementById("demo");
  var clockLabel = document.getElementById("clock");
  var guideTitle = document.getElementById("guide-title");
  var guideWho = document.getElementById("guide-who");
  var guideSay = document.getElementById("guide-say");
  var guideHint = document.getElementById("guide-hint");
  var guideGo = document.getElementById("guide-go");
  var state = { officer: "", after: 0, generation: 0, polling: false };

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text) node.textContent = text;
    return node;
  }

  function newEventId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return Date.now().toString(36) + Math.random().toString(36).slice(2, 12);
  }

  // "2026-12-14T21:32:36+08:00" (China time) as a chat shows it: 12月14日 21:32
  function sentAt(iso) {
    var m = /^\d{4}-(\d{2})-(\d{2})T(\d{2}:\d{2})/.exec(iso || "");
    return m ? Number(m[1]) + "月" + Number(m[2]) + "日 " + m[3] : "";
  }

  function scrollDown() { chat.scrollTop = chat.scrollHeight; }

  function showError(text) { statusLine.textContent = text || ""; }

  // POST with the same event id on retry, so a lost answer never stores the event twice.
  function post(path, body, attempt) {
    return fetch(path, { method: "POST", headers: { "Content-Type": "application/json" },
                         body: JSON.stringify(body) })
      .then(function (resp) {
        return resp.json().then(function (data) {
          if (!resp.ok) throw new Error(data.error || ("HTTP " + resp.status));
          showError("");
          return data;
        });
      })
      .catch(function (err) {
        if ((attempt || 0) < 2 && err instanceof TypeError) return post(path, body, (attempt || 0) + 1);
        showError("发送失败：" + err.message);
      });
  }

  // The markdown subset the bot uses: **bold**, `code`, [label](url) links (signed pages),
  // "- " list items and "#" headings; everything else is text. Only http(s) links become anchors.
  function inlineNodes(parent, text) {
    var re = /\*\*([^*\n]+)\*\*|`([^`\n]+)`|\[([^\]\n]*)\]\(([^)\s]+)\)/g, at = 0, m;
    while ((m = re.exec(text)) !== null) {
      parent.appendChild(document.createTextNode(text.slice(at, m.index)));
      if (m[1] !== undefined) {
        parent.appendChild(el("b", "", m[1]));
      } else if (m[2] !== undefined) {
        parent.appendChild(el("code", "", m[2]));
      } else if (isWebLink(m[4])) {
        var a = el("a", "", m[3]);
        a.href = m[4]; a.target = "_blank"; a.rel = "noopener";
        parent.appendChild(a);
      } else {
        parent.appendChild(document.createTextNode(m[3]));
      }
      at = re.lastIndex;
    }
    parent.appendChild(document.createTextNode(text.slice(at)));
  }

  function markdownNode(title, text) {
    var box = el("div", "bubble md"), list = null;
    var lines = text.split("\n");
    var first = lines.filter(function (l) { return l.trim(); })[0] || "";
    // once: not over a body that says it, or opens with a bold heading of its own (titled())
    if (title && first.indexOf(title) < 0 && first.indexOf("**") !== 0) box.appendChild(el("div", "title", title));
    lines.forEach(function (line) {
      var item = /^\s*[-*•] (.*)$/.exec(line), heading = /^#+\s*(.*)$/.exec(line);
      if (item) {
        if (!list) { list = el("ul"); box.appendChild(list); }
        var li = el("li"); inlineNodes(li, item[1]); list.appendChild(li);
        return;
      }
      list = null;
      if (!line.trim()) { box.appendChild(el("div", "gap")); return; }
      var p = el("div", heading ? "title" : "line");
      inlineNodes(p, heading ? heading[1] : line);
      box.appendChild(p);
    });
    return box;
  }

  function mine(text) {
    var row = el("div", "msg mine");
    row.appendChild(el("div", "bubble", text));
    chat.appendChild(row);
    scrollDown();
  }

  function isWebLink(url) {
    try { var u = new URL(url, location.href); return u.protocol === "http:" || u.protocol === "https:"; }
    catch (e) { return false; }
  }

  var cards = {};  // card id -> its bubble, so an update can grey the card that was clicked

  function markAnswered(box, text) {
    var buttons = box.querySelector(".buttons");
    if (buttons) buttons.remove();
    var line = box.querySelector(".answered") || box.appendChild(el("div", "answered"));
    line.textContent = "✓ " + text;
  }

  function cardNode(card) {
    var box = el("div", "bubble card");
    box.appendChild(el("h3", "", card.title));
    if (card.description) box.appendChild(markdownNode("", card.description));
    (card.fields || []).forEach(function (f) {
      var line = el("div", "field");
      line.appendChild(el("b", "", f.name + "："));
      line.appendChild(document.createTextNode(f.value));
      box.appendChild(line);
    });
    var buttons = el("div", "buttons");
    (card.buttons || []).forEach(function (b) {
      var btn = el("button", b.style || "default", b.label);
      btn.type = "button";
      if (b.action_key) {
        btn.addEventListener("click", function () {
          mine("［点击］" + b.label);
          btns(buttons, true);
          post("/sim/api/action", { officer: state.officer, action_key: b.action_key,
                                    card: card.task_id || "", event_id: newEventId() });
        });
      } else if (b.url && isWebLink(b.url)) {
        btn.addEventListener("click", function () { window.open(b.url, "_blank", "noopener"); });
      } else {
        btn.disabled = true;
      }
      buttons.appendChild(btn);
    });
    if (buttons.childNodes.length) box.appendChild(buttons);
    if (card.answered) markAnswered(box, card.answered);
    if (card.task_id) cards[card.task_id] = box;
    return box;
  }

  function pictureNode(m) {  // a picture (the summary chart), as a platform shows it
    var box = el("div", "bubble picture");
    if (m.title) box.appendChild(el("h3", "", m.title));
    var img = el("img", "chart");
    img.alt = m.title || "图表";
    img.src = m.image;
    img.addEventListener("load", scrollDown);
    box.appendChild(img);
    return box;
  }

  function btns(box, disabled) {
    Array.prototype.forEach.call(box.querySelectorAll("button"), function (b) { b.disabled = disabled; });
  }

  function botMessage(m) {
    // an update names the clicked card (card_ref), or a card we sent by its own id
    var updated = m.kind === "card_update" && m.card && cards[m.card_ref || m.card.task_id];
    if (updated) {
      markAnswered(updated, m.card.answered || "已处理");
      return;
    }
    var row = el("div", "msg");
    var meta = el("div", "meta");
    meta.appendChild(el("span", "scope " + m.scope, SCOPES[m.scope] || m.scope));
    meta.appendChild(document.createTextNode(sentAt(m.at)));
    row.appendChild(meta);
    row.appendChild(m.card ? cardNode(m.card) : m.image ? pictureNode(m) : markdownNode(m.title, m.body));
    chat.appendChild(row);
  }

  function poll() {
    if (!state.officer || state.polling) return;  // one request at a time: no duplicate rows
    state.polling = true;
    var generation = state.generation;
    var url = "/sim/api/messages?officer=" + encodeURIComponent(state.officer) + "&after=" + state.after;
    fetch(url).then(function (resp) { return resp.json(); }).then(function (list) {
      if (generation !== state.generation) return;  // officer changed while we waited
      if (!Array.isArray(list)) { showError(list.error || "读取消息失败"); return; }
      var atBottom = chat.scrollHeight - chat.scrollTop - chat.clientHeight < 40;
      list.forEach(function (m) { botMessage(m); state.after = Math.max(state.after, m.id); });
      if (list.length && atBottom) scrollDown();
    }).catch(function () { showError("与服务器的连接中断，正在重试…"); })
      .then(function () { state.polling = false; });
  }

  function choose(code, officers) {
    state.officer = code;
    state.after = 0;
    state.generation += 1;
    chat.textContent = "";
    cards = {};
    var o = officers.filter(function (x) { return x.code === code; })[0];
    who.textContent = o ? (o.name + " · " + o.department + " · " + (o.role_labels.join("、") || "无角色")) : "";
    try { localStorage.setItem("lianjian.sim.officer", code); } catch (e) { /* private mode */ }
    poll();
  }

  function fillPicker(officers, filter) {
    var words = filter.trim().toLowerCase().split(/\s+/).filter(Boolean);
    var chosen = officerSelect.value || state.officer;
    officerSelect.textContent = "";
    var groups = {};
    officers.forEach(function (o) {
      var label = o.name + " · " + (o.role_labels.join("、") || "无角色") + " · " + o.code;
      var hay = (label + " " + o.department).toLowerCase();
      if (!words.every(function (w) { return hay.indexOf(w) >= 0; }) && o.code !== chosen) return;
      if (!groups[o.department]) {
        groups[o.department] = el("optgroup");
        groups[o.department].label = o.department;
        officerSelect.appendChild(groups[o.department]);
      }
      var opt = el("option", "", label);
      opt.value = o.code;
      groups[o.department].appendChild(opt);
    });
    if (chosen) officerSelect.value = chosen;
  }

  var roster = [];
  function switchTo(code) {
    if (!roster.some(function (o) { return o.code === code; })) return;
    pickerFilter.value = "";
    fillPicker(roster, "");
    officerSelect.value = code;
    choose(code, roster);
  }

  fetch("/sim/api/officers").then(function (resp) { return resp.json(); }).then(function (officers) {
    roster = officers;
    officerSelect.textContent = "";
    if (!officers.length) {
      officerSelect.appendChild(el("option", "", "（没有人员：请先导入或运行 lianjian serve --demo）"));
      return;
    }
    var saved = null;
    try { saved = localStorage.getItem("lianjian.sim.officer"); } catch (e) { /* private mode */ }
    fillPicker(officers, "");
    if (saved && officers.some(function (o) { return o.code === saved; })) officerSelect.value = saved;
    officerSelect.addEventListener("change", function () { choose(officerSelect.value, officers); });
    pickerFilter.addEventListener("input", function () { fillPicker(officers, pickerFilter.value); });
    choose(officerSelect.value, officers);
  });

  // ---------------------------------------------------------------- serve --demo only
  function showClock(data) { if (data && data.label) clockLabel.textContent = "演示时钟：" + data.label; }

  function advance(body) {
    post("/sim/api/clock", body).then(function (data) { showClock(data); refreshGuide(); });
  }

  function refreshGuide() {
    fetch("/sim/api/guide").then(function (resp) { return resp.ok ? resp.json() : null; })
      .then(function (step) {
        if (!step) return;
        guideTitle.textContent = step.done ? "✓ 演示流程已走完"
          : "下一步（" + step.number + "/" + step.total + "）：" + step.title;
        guideWho.textContent = step.who ? "成为 " + step.who_label : "";
        guideSay.textContent = step.say ? "发送：" + step.say : "";
        guideHint.textContent = step.hint || "";
        guideGo.hidden = !step.who;
        guideGo.onclick = function () { switchTo(step.who); input.value = step.say; input.focus(); };
      });
  }

  fetch("/sim/api/clock").then(function (resp) { return resp.ok ? resp.json() : null; })
    .then(function (data) {
      if (!data) return;  // not a demo: no clock, no guide
      demoPanel.hidden = false;
      showClock(data);
      refreshGuide();
      setInterval(refreshGuide, 3000);
      document.getElementById("to-beacon").addEventListener("click", function () { advance({ to: "beacon" }); });
      document.getElementById("to-workdays").addEventListener("click", function () {
        advance({ workdays: parseInt(document.getElementById("workdays").value, 10) || 0 });
      });
    });

  document.getElementById("composer").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var text = input.value.trim();
    if (!text || !state.officer) return;
    input.value = "";
    mine(text);
    post("/sim/api/send", { officer: state.officer, text: text, event_id: newEventId() });
  });

  setInterval(poll, 1000);
})();
