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

  // The markdown subset the bot uses is **bold** and [label](url) links (signed pages);
  // everything else is shown as text. Only http(s) links become anchors.
  function inlineNodes(parent, text) {
    var re = /\[([^\]\n]*)\]\(([^)\s]+)\)/g, at = 0, m;
    while ((m = re.exec(text)) !== null) {
      parent.appendChild(document.createTextNode(text.slice(at, m.index)));
      if (isWebLink(m[2])) {
        var a = el("a", "", m[1]);
        a.href = m[2]; a.target = "_blank"; a.rel = "noopener";
        parent.appendChild(a);
      } else {
        parent.appendChild(document.createTextNode(m[1]));
      }
      at = re.lastIndex;
    }
    parent.appendChild(document.createTextNode(text.slice(at)));
  }

  function markdownNode(text) {
    var box = el("div", "bubble");
    text.split("**").forEach(function (part, i) {
      if (i % 2) { box.appendChild(el("b", "", part)); } else { inlineNodes(box, part); }
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

  function cardNode(card) {
    var box = el("div", "bubble card");
    box.appendChild(el("h3", "", card.title));
    if (card.description) box.appendChild(el("div", "", card.description));
    (card.fields || []).forEach(function (f) {
      var line = el("div", "field");
      line.appendChild(el("b", "", f.name + "："));
      line.appendChild(document.createTextNode(f.value));
      box.appendChild(line);
    });
    if (card.answered) box.appendChild(el("div", "answered", card.answered));
    var buttons = el("div", "buttons");
    (card.buttons || []).forEach(function (b) {
      var btn = el("button", b.style || "default", b.label);
      btn.type = "button";
      if (b.action_key) {
        btn.addEventListener("click", function () {
          mine("［点击］" + b.label);
          post("/sim/api/action", { officer: state.officer, action_key: b.action_key, event_id: newEventId() });
        });
      } else if (b.url && isWebLink(b.url)) {
        btn.addEventListener("click", function () { window.open(b.url, "_blank", "noopener"); });
      } else {
        btn.disabled = true;
      }
      buttons.appendChild(btn);
    });
    if (buttons.childNodes.length) box.appendChild(buttons);
    return box;
  }

  function botMessage(m) {
    var row = el("div", "msg");
    var meta = el("div", "meta");
    meta.appendChild(el("span", "scope " + m.scope, SCOPES[m.scope] || m.scope));
    meta.appendChild(document.createTextNode(m.at.replace("T", " ").slice(0, 19)));
    row.appendChild(meta);
    if (m.card) {
      row.appendChild(cardNode(m.card));
    } else {
      row.appendChild(markdownNode((m.title ? "**" + m.title + "**\n" : "") + m.body));
    }
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
    var o = officers.filter(function (x) { return x.code === code; })[0];
    who.textContent = o ? (o.name + " · " + o.department + " · " + (o.role_labels.join("、") || "无角色")) : "";
    try { localStorage.setItem("lianjian.sim.officer", code); } catch (e) { /* private mode */ }
    poll();
  }

  fetch("/sim/api/officers").then(function (resp) { return resp.json(); }).then(function (officers) {
    officerSelect.textContent = "";
    if (!officers.length) {
      officerSelect.appendChild(el("option", "", "（没有人员：请先导入或运行 lianjian serve --demo）"));
      return;
    }
    officers.forEach(function (o) {
      var opt = el("option", "", o.name + "（" + o.department + "）" + o.code);
      opt.value = o.code;
      officerSelect.appendChild(opt);
    });
    var saved = null;
    try { saved = localStorage.getItem("lianjian.sim.officer"); } catch (e) { /* private mode */ }
    if (saved && officers.some(function (o) { return o.code === saved; })) officerSelect.value = saved;
    officerSelect.addEventListener("change", function () { choose(officerSelect.value, officers); });
    choose(officerSelect.value, officers);
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
