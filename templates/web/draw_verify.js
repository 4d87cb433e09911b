// Recomputes a published draw in the visitor's browser with WebCrypto SHA-256, the same steps
// as `lianjian draw verify` (README "Verifying a draw yourself"):
//   pool_hash = sha256(the pool file's lines without header, joined by "\n"; BOM and CRLF dropped)
//   commitment = sha256(seed); final = sha256(seed ‖ utf8(beacon)) or seed without a beacon
//   key(id) = sha256(final ‖ utf8(task_code) ‖ 0x00 ‖ utf8(id))
//   per stratum the k smallest keys; the selection is every chosen id in ascending key order.
(function () {
  "use strict";
  var box = document.getElementById("verify");
  var button = document.getElementById("recompute");
  if (!box || !button) return;
  var list = document.getElementById("checks");
  var progress = document.getElementById("progress");
  var fileInput = document.getElementById("pool-file");
  var HEADER = "id,stratum\n";
  var BATCH = 2000;  // digests in flight at once
  var utf8 = new TextEncoder();

  function hex(buffer) {
    var bytes = new Uint8Array(buffer), out = "";
    for (var i = 0; i < bytes.length; i++) out += (bytes[i] < 16 ? "0" : "") + bytes[i].toString(16);
    return out;
  }
  function fromHex(text) {
    var out = new Uint8Array(text.length / 2);
    for (var i = 0; i < out.length; i++) out[i] = parseInt(text.substr(i * 2, 2), 16);
    return out;
  }
  function concat(parts) {
    var n = 0, at = 0;
    parts.forEach(function (p) { n += p.length; });
    var out = new Uint8Array(n);
    parts.forEach(function (p) { out.set(p, at); at += p.length; });
    return out;
  }
  function sha256(bytes) { return crypto.subtle.digest("SHA-256", bytes); }

  // k for one stratum of n candidates: a count, or ratio × n rounded by the stratum's rounding
  // in exact decimal arithmetic (BigInt), raised to min and capped at n.
  function quota(s, n) {
    var k;
    if (s.count !== undefined && s.count !== null) {
      k = s.count;
    } else {
      var m = /^(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(String(s.ratio).trim());
      if (!m) throw new Error("无法识别的比例 " + s.ratio);
      var frac = m[2] || "", exp = parseInt(m[3] || "0", 10) - frac.length;
      var num = BigInt((m[1] || "0") + frac) * BigInt(n), den = 1n;
      if (exp >= 0) { num *= 10n ** BigInt(exp); } else { den = 10n ** BigInt(-exp); }
      var q;
      if (s.rounding === "down") q = num / den;
      else if (s.rounding === "up") q = (num + den - 1n) / den;
      else q = (2n * num + den) / (2n * den);  // half_up
      k = Number(q);
    }
    return Math.min(Math.max(k, s.min || 0), n);
  }

  // The hash covers the candidate lines, so a BOM and Windows line ends (CRLF), which a file
  // saved again on Windows may gain, are dropped before it is taken.
  function parsePool(text) {
    text = text.replace(/^\uFEFF/, "").replace(/\r\n/g, "\n");
    if (text === "") throw new Error("文件是空的；请选择本页下载的抽取范围文件");
    if (text.indexOf(HEADER) !== 0) {
      throw new Error("文件第一行应为 id,stratum，而此文件第一行为“" +
        text.split("\n", 1)[0].slice(0, 40) + "”；请选择本页下载的抽取范围文件");
    }
    var body = text.slice(HEADER.length);
    if (body.endsWith("\n")) body = body.slice(0, -1);
    var rows = body === "" ? [] : body.split("\n").map(function (line) {
      var at = line.indexOf(",");
      return at < 0 ? [line, ""] : [line.slice(0, at), line.slice(at + 1)];
    });
    return { body: body, rows: rows };
  }

  async function keysFor(ids, prefix) {
    var keys = new Array(ids.length);
    for (var start = 0; start < ids.length; start += BATCH) {
      var chunk = ids.slice(start, start + BATCH);
      var digests = await Promise.all(chunk.map(function (id) {
        return sha256(concat([prefix, utf8.encode(id)]));
      }));
      digests.forEach(function (d, j) { keys[start + j] = hex(d); });
      progress.textContent = "正在计算排序键：" + Math.min(start + BATCH, ids.length) + " / " + ids.length;
    }
    return keys;
  }

  function byKey(a, b) {
    return a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0;
  }

  async function select(rows, rule, final, taskCode) {
    var prefix = concat([final, utf8.encode(taskCode), new Uint8Array([0])]);
    var byStratum = {};
    rows.forEach(function (r) { (byStratum[r[1]] = byStratum[r[1]] || []).push(r[0]); });
    var chosen = [];
    for (var s of rule.strata) {
      var ids = byStratum[s.name] || [];
      var k = quota(s, ids.length);
      if (k === 0) continue;
      var keys = await keysFor(ids, prefix);
      var pairs = ids.map(function (id, i) { return [keys[i], id]; }).sort(byKey);
      chosen = chosen.concat(pairs.slice(0, k));
    }
    return chosen.sort(byKey).map(function (p) { return p[1]; });
  }

  function show(label, ok, detail) {
    var li = document.createElement("li");
    li.className = ok ? "ok" : "error";
    li.textContent = (ok ? "✓ " : "✗ ") + label + (detail ? "：" + detail : "");
    list.appendChild(li);
  }

  function same(label, recorded, recomputed) {
    var ok = recorded === recomputed;
    show(label, ok, ok ? "一致" : "记录值 " + recorded + "，复算值 " + recomputed);
    return ok;
  }

  async function poolText() {
    if (fileInput && fileInput.files && fileInput.files.length) return fileInput.files[0].text();
    var resp = await fetch(box.dataset.pool);
    if (!resp.ok) throw new Error("无法下载抽取范围文件（" + resp.status + "）");
    return resp.text();
  }

  async function run() {
    list.textContent = "";
    if (!window.crypto || !crypto.subtle) {
      // WebCrypto exists only on https pages (and on this machine's own address)
      throw new Error("此浏览器或访问方式不支持 WebCrypto，请通过 https 访问本页，或按下方步骤在电脑上复算");
    }
    progress.textContent = "正在读取抽取记录和抽取范围文件…";
    var draw = await (await fetch(box.dataset.json)).json();
    var pool = parsePool(await poolText());
    var ok = same("抽取范围哈希", draw.pool_hash, hex(await sha256(utf8.encode(pool.body))));
    ok = same("抽取范围数量", draw.pool_size, pool.rows.length) && ok;
    var seed = fromHex(draw.seed);
    ok = same("种子承诺值", draw.commitment, hex(await sha256(seed))) && ok;
    if (draw.uses_beacon) {
      show("信标值（已用于计算；请对照" + draw.beacon_source + "的官方公布核对）", !!draw.beacon,
           draw.beacon || "缺少信标值");
    }
    var final = draw.beacon ? new Uint8Array(await sha256(concat([seed, utf8.encode(draw.beacon)])))
      : seed;
    var selection = await select(pool.rows, draw.rule, final, draw.task_code);
    var match = selection.length === draw.selection.length &&
      selection.every(function (id, i) { return id === draw.selection[i]; });
    show("抽取结果", match, match ? selection.length + " 个，与锁定结果一致"
      : "锁定 " + draw.selection.length + " 个，复算 " + selection.length + " 个，不一致");
    ok = ok && match;
    progress.textContent = ok ? "验证通过" : "验证未通过";
    progress.className = ok ? "ok" : "error";
    box.dataset.result = ok ? "pass" : "fail";
  }

  button.addEventListener("click", function () {
    button.disabled = true;
    run().catch(function (err) {
      show("复算失败", false, err.message);
      progress.textContent = "验证未通过";
      progress.className = "error";
      box.dataset.result = "fail";
    }).finally(function () { button.disabled = false; });
  });
})();
