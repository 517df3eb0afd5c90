"""The line and zone editor: one self-contained HTML page over a device's latest snapshot.

Everything is kept in *source* pixels (the device's frame size from its retained ``config``), whatever
size the preview is shown at: a point under the mouse is ``offset x frame_width / shown_width``. Draw a
line by dragging (its arrow points to the ``in`` side: the right-hand side of first -> second point,
the counter's rule), a zone by clicking its corners (click the first one again, or Enter, to close);
drag a corner or a whole shape to move it; rename, retype coordinates, flip or delete the selected
shape in the side panel; pick classes (none ticked = every class). Save posts the whole geometry to
``/api/config/<device>``; the device validates it and answers, and the answer is shown (errors name
the key, e.g. ``lines.0.points.1: point (700, 20) ... is outside the 640x360 frame``).

``window.editor`` (items, frame, save(), load()) and ``data-*`` attributes are there for tests.
"""

from __future__ import annotations

EDITOR_PAGE = r"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>edgetally line editor</title>
<style>
:root{--bg:#0f1419;--card:#1a222c;--line:#2b3744;--fg:#e6edf3;--dim:#8b98a5;--acc:#58a6ff;--ok:#2ea043;--bad:#da3633}
*{box-sizing:border-box}body{margin:0;font:14px/1.4 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;background:var(--bg);color:var(--fg)}
header{display:flex;align-items:baseline;gap:16px;padding:12px 20px;border-bottom:1px solid var(--line)}header h1{font-size:18px;margin:0}
a{color:var(--acc)}.dim{color:var(--dim)}main{display:grid;grid-template-columns:minmax(0,1fr) 300px;gap:16px;padding:16px 20px}
#stage{position:relative;background:#000;border:1px solid var(--line);border-radius:6px;overflow:hidden;align-self:start}
#stage img{display:block;width:100%;user-select:none}#stage canvas{position:absolute;left:0;top:0;width:100%;height:100%;cursor:crosshair}
aside{display:flex;flex-direction:column;gap:12px}.panel{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:10px 12px}
h3{font-size:12px;color:var(--dim);font-weight:500;margin:0 0 6px;text-transform:uppercase;letter-spacing:.05em}
button{background:#24303c;color:var(--fg);border:1px solid var(--line);border-radius:6px;padding:5px 10px;cursor:pointer;font:inherit}
button.on{border-color:var(--acc);color:var(--acc)}button.primary{background:#1f6feb;border-color:#1f6feb}button:disabled{opacity:.5}
input[type=text]{width:100%;background:#0b1016;color:var(--fg);border:1px solid var(--line);border-radius:5px;padding:4px 6px;font:inherit}
.items div{padding:3px 6px;border-radius:5px;cursor:pointer}.items div.sel{background:#24303c}.classes{max-height:160px;overflow:auto;columns:2}
#status{white-space:pre-wrap;overflow-wrap:anywhere;font-size:13px;margin-top:6px}#status.ok{color:var(--ok)}#status.bad{color:var(--bad)}label{display:block}
</style></head>
<body>
<header><h1>edit &middot; <span id="device"></span></h1><span class="dim" id="summary">loading&hellip;</span><a id="back" href="#">history</a><a href="/">all devices</a></header>
<main><div id="stage"><img id="snap" alt="latest snapshot"><canvas id="canvas"></canvas></div>
<aside>
<div class="panel"><h3>draw</h3><button data-tool="select" class="on">select / move</button> <button data-tool="line">+ line</button> <button data-tool="zone">+ zone</button>
<div class="dim" id="hint">drag a corner or a shape to move it</div></div>
<div class="panel"><h3>lines and zones</h3><div class="items" id="items"></div></div>
<div class="panel" id="selpanel" hidden><h3>selected</h3>
<label>name <input type="text" id="name" data-field="name"></label>
<label>points (source px: x1,y1,x2,y2,&hellip;) <input type="text" id="coords" data-field="coords"></label>
<div style="margin-top:6px"><button id="flip">flip direction</button> <button id="delete">delete</button></div></div>
<div class="panel"><h3>classes counted (none = all)</h3><div class="classes" id="classes"></div></div>
<div class="panel"><button class="primary" id="save">save to device</button> <button id="revert">revert</button><div id="status"></div></div>
</aside></main>
<script>
"use strict";
const device = decodeURIComponent(location.pathname.split("/").pop());
const canvas = document.getElementById("canvas"), img = document.getElementById("snap"), g = canvas.getContext("2d");
const ed = window.editor = {items: [], frame: null, labels: [], classes: [], selected: -1, tool: "select", drag: null, draft: null,
  editable: false, lastAnswer: null};
document.getElementById("device").textContent = device;
document.getElementById("back").href = "/device/" + encodeURIComponent(device);
const HANDLE = 8;
const scale = () => ed.frame ? ed.frame[0] / canvas.clientWidth : 1;  // source px per screen px
const toSource = e => { const r = canvas.getBoundingClientRect(), s = scale();
  return [Math.round((e.clientX - r.left) * s * 10) / 10, Math.round((e.clientY - r.top) * s * 10) / 10]; };
const clamp = p => [Math.min(Math.max(p[0], 0), ed.frame[0]), Math.min(Math.max(p[1], 0), ed.frame[1])];
const pts = it => it.kind === "line" ? it.points : it.polygon;
const status = (text, cls) => { const el = document.getElementById("status"); el.textContent = text; el.className = cls || ""; };

async function load() {
  const r = await fetch("/api/config/" + encodeURIComponent(device) + ".json", {cache: "no-store"}), data = await r.json();
  const c = data.config;
  if (!c || !c.frame) { document.getElementById("summary").textContent = "waiting for the device's configuration and first frame\u2026";
    setTimeout(load, 1000); return; }
  ed.editable = data.editable && c.editable; ed.frame = c.frame; ed.labels = c.labels || []; ed.classes = c.classes || [];
  ed.items = [...c.lines.map(l => ({kind: "line", name: l.name, points: l.points, anchor: l.anchor})),
              ...c.zones.map(z => ({kind: "zone", name: z.name, polygon: z.polygon, anchor: z.anchor}))];
  ed.movements = c.movements || []; ed.selected = -1;
  img.src = "/snapshot/" + encodeURIComponent(device) + ".jpg?t=" + Date.now();
  document.getElementById("summary").textContent = "frame " + c.frame[0] + "\u00d7" + c.frame[1] + " px (coordinates in source pixels)"
    + (ed.editable ? "" : " \u00b7 read-only: " + (c.editable ? "this dashboard was started with --read-only" : "the device runs without --config"));
  document.getElementById("save").disabled = !ed.editable;
  renderClasses(); refresh();
}

function renderClasses() {
  const box = document.getElementById("classes");
  box.replaceChildren(...ed.labels.map(name => { const l = document.createElement("label"), cb = document.createElement("input");
    cb.type = "checkbox"; cb.value = name; cb.checked = ed.classes.includes(name); cb.dataset.class = name;
    cb.onchange = () => { ed.classes = [...box.querySelectorAll("input:checked")].map(i => i.value); };
    l.append(cb, " " + name); return l; }));
}

function refresh() { renderItems(); renderSelected(); draw(); }

function renderItems() {
  const box = document.getElementById("items");
  box.replaceChildren(...ed.items.map((it, i) => { const d = document.createElement("div");
    d.textContent = (it.kind === "line" ? "\u2571 " : "\u25b1 ") + it.name; d.className = i === ed.selected ? "sel" : "";
    d.dataset.item = it.name; d.onclick = () => { ed.selected = i; refresh(); }; return d; }));
}

function renderSelected() {
  const it = ed.items[ed.selected], panel = document.getElementById("selpanel");
  panel.hidden = !it; if (!it) return;
  document.getElementById("name").value = it.name;
  document.getElementById("coords").value = pts(it).map(p => p.join(",")).join(",");
  document.getElementById("flip").hidden = it.kind !== "line";
}

function arrow(a, b) {  // the 'in' side: right-hand side of a -> b on screen
  const mx = (a[0] + b[0]) / 2, my = (a[1] + b[1]) / 2, dx = b[0] - a[0], dy = b[1] - a[1], n = Math.hypot(dx, dy) || 1;
  const rx = -dy / n, ry = dx / n, L = 30;
  g.beginPath(); g.moveTo(mx - rx * L, my - ry * L); g.lineTo(mx + rx * L, my + ry * L); g.stroke();
  g.beginPath(); g.moveTo(mx + rx * L, my + ry * L); g.lineTo(mx + rx * (L - 9) + ry * 6, my + ry * (L - 9) - rx * 6);
  g.lineTo(mx + rx * (L - 9) - ry * 6, my + ry * (L - 9) + rx * 6); g.closePath(); g.fill();
  g.fillText("in", mx + rx * (L + 10), my + ry * (L + 10)); g.fillText("out", mx - rx * (L + 12), my - ry * (L + 12));
}

function draw() {
  const dpr = window.devicePixelRatio || 1, w = canvas.clientWidth, h = canvas.clientHeight;
  canvas.width = w * dpr; canvas.height = h * dpr; g.setTransform(dpr, 0, 0, dpr, 0, 0); g.clearRect(0, 0, w, h);
  if (!ed.frame) return;
  const k = 1 / scale(), sp = p => [p[0] * k, p[1] * k];
  g.font = "bold 13px system-ui"; g.textAlign = "center"; g.textBaseline = "middle"; g.lineWidth = 2;
  ed.items.forEach((it, i) => {
    // Magenta/green: apart from the yellow lines the device draws into its snapshot (what runs now).
    const P = pts(it).map(sp), sel = i === ed.selected, col = it.kind === "line" ? "#ff4fd8" : "#3fb950";
    g.strokeStyle = col; g.fillStyle = col; g.lineWidth = sel ? 4 : 3;
    g.beginPath(); P.forEach((p, j) => j ? g.lineTo(...p) : g.moveTo(...p));
    if (it.kind === "zone") { g.closePath(); g.globalAlpha = 0.18; g.fill(); g.globalAlpha = 1; }
    g.stroke();
    if (it.kind === "line") arrow(P[0], P[1]);
    g.fillStyle = "#000"; g.fillRect(P[0][0] + 4, P[0][1] - 22, g.measureText(it.name).width + 8, 18);
    g.fillStyle = col; g.textAlign = "left"; g.fillText(it.name, P[0][0] + 8, P[0][1] - 13); g.textAlign = "center";
    if (sel) P.forEach(p => { g.fillStyle = "#fff"; g.fillRect(p[0] - 4, p[1] - 4, 8, 8); });
  });
  if (ed.draft) { g.strokeStyle = "#58a6ff"; g.beginPath(); ed.draft.map(sp).forEach((p, j) => j ? g.lineTo(...p) : g.moveTo(...p)); g.stroke(); }
}

function hit(p) {  // [item, vertex or -1] under source point p
  const tol = HANDLE * scale();
  for (let i = ed.items.length - 1; i >= 0; i--) {
    const P = pts(ed.items[i]);
    const v = P.findIndex(q => Math.hypot(q[0] - p[0], q[1] - p[1]) <= tol);
    if (v >= 0) return [i, v];
  }
  for (let i = ed.items.length - 1; i >= 0; i--) {
    const P = pts(ed.items[i]), n = ed.items[i].kind === "line" ? 1 : P.length;
    for (let j = 0; j < n; j++) if (segDist(p, P[j], P[(j + 1) % P.length]) <= tol) return [i, -1];
    if (ed.items[i].kind === "zone" && inside(p, P)) return [i, -1];
  }
  return [-1, -1];
}
function segDist(p, a, b) { const dx = b[0] - a[0], dy = b[1] - a[1], L = dx * dx + dy * dy || 1;
  const t = Math.max(0, Math.min(1, ((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / L));
  return Math.hypot(p[0] - a[0] - t * dx, p[1] - a[1] - t * dy); }
function inside(p, P) { let c = false; for (let i = 0, j = P.length - 1; i < P.length; j = i++)
  if ((P[i][1] > p[1]) !== (P[j][1] > p[1]) && p[0] < (P[j][0] - P[i][0]) * (p[1] - P[i][1]) / (P[j][1] - P[i][1]) + P[i][0]) c = !c; return c; }
function freeName(prefix) { let n = 1; while (ed.items.some(it => it.name === prefix + n)) n++; return prefix + n; }

canvas.addEventListener("mousedown", e => {
  if (!ed.frame) return;
  const p = clamp(toSource(e));
  if (ed.tool === "line") { ed.draft = [p, p]; ed.drag = {kind: "newline"}; return; }
  if (ed.tool === "zone") {
    if (ed.draft && ed.draft.length >= 3 && Math.hypot(ed.draft[0][0] - p[0], ed.draft[0][1] - p[1]) <= HANDLE * scale()) return finishZone();
    ed.draft = (ed.draft || []).concat([p]); draw(); return;
  }
  const [i, v] = hit(p); ed.selected = i;
  if (i >= 0) ed.drag = {item: i, vertex: v, from: p, orig: pts(ed.items[i]).map(q => q.slice())};
  refresh();
});
canvas.addEventListener("mousemove", e => {
  if (!ed.drag || !ed.frame) return;
  const p = clamp(toSource(e));
  if (ed.drag.kind === "newline") { ed.draft[1] = p; draw(); return; }
  const it = ed.items[ed.drag.item], P = pts(it);
  if (ed.drag.vertex >= 0) P[ed.drag.vertex] = p;
  else { const dx = p[0] - ed.drag.from[0], dy = p[1] - ed.drag.from[1];
    ed.drag.orig.forEach((q, j) => { P[j] = clamp([Math.round((q[0] + dx) * 10) / 10, Math.round((q[1] + dy) * 10) / 10]); }); }
  renderSelected(); draw();
});
window.addEventListener("mouseup", () => {
  if (!ed.drag) return;  // a click elsewhere: re-rendering now would swallow its click event
  if (ed.drag.kind === "newline") {
    const [a, b] = ed.draft; ed.draft = null;
    if (Math.hypot(b[0] - a[0], b[1] - a[1]) >= 4) { ed.items.push({kind: "line", name: freeName("line"), points: [a, b], anchor: "bottom_center"});
      ed.selected = ed.items.length - 1; setTool("select"); }
  }
  ed.drag = null; refresh();
});
function finishZone() { if (ed.draft && ed.draft.length >= 3) { ed.items.push({kind: "zone", name: freeName("zone"), polygon: ed.draft, anchor: "bottom_center"});
  ed.selected = ed.items.length - 1; } ed.draft = null; setTool("select"); refresh(); }
window.addEventListener("keydown", e => { if (e.key === "Enter" && ed.tool === "zone") finishZone(); if (e.key === "Escape") { ed.draft = null; setTool("select"); draw(); } });
function setTool(t) { ed.tool = t; ed.draft = null; document.querySelectorAll("[data-tool]").forEach(b => b.classList.toggle("on", b.dataset.tool === t));
  document.getElementById("hint").textContent = {select: "drag a corner or a shape to move it", line: "drag from the first point to the second: the arrow shows the 'in' side",
    zone: "click the corners; click the first one again (or Enter) to close"}[t]; }
document.querySelectorAll("[data-tool]").forEach(b => b.onclick = () => setTool(b.dataset.tool));
document.getElementById("name").oninput = e => { const it = ed.items[ed.selected]; if (it) { it.name = e.target.value; renderItems(); draw(); } };
document.getElementById("coords").onchange = e => { const it = ed.items[ed.selected]; if (!it) return;
  const v = e.target.value.split(",").map(s => Number(s.trim()));
  if (v.some(isNaN) || v.length % 2 || v.length < (it.kind === "line" ? 4 : 6)) { status("points: expected x1,y1,x2,y2,... numbers", "bad"); return; }
  const P = []; for (let i = 0; i < v.length; i += 2) P.push([v[i], v[i + 1]]);
  if (it.kind === "line") it.points = P.slice(0, 2); else it.polygon = P; status(""); draw(); };
document.getElementById("flip").onclick = () => { const it = ed.items[ed.selected]; if (it && it.kind === "line") { it.points.reverse(); refresh(); } };
document.getElementById("delete").onclick = () => { if (ed.selected >= 0) { ed.items.splice(ed.selected, 1); ed.selected = -1; refresh(); } };
document.getElementById("revert").onclick = () => { status(""); load(); };

async function save() {
  const body = {lines: ed.items.filter(i => i.kind === "line").map(i => ({name: i.name, points: i.points, anchor: i.anchor})),
    zones: ed.items.filter(i => i.kind === "zone").map(i => ({name: i.name, polygon: i.polygon, anchor: i.anchor})), classes: ed.classes};
  const button = document.getElementById("save"); button.disabled = true; status("sending to " + device + "\u2026");
  try {
    const r = await fetch("/api/config/" + encodeURIComponent(device), {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
    const a = ed.lastAnswer = await r.json();
    if (a.ok) { status("\u2713 " + a.message + (a.round_trip_ms !== undefined ? "\n(" + a.round_trip_ms + " ms round trip)" : ""), "ok"); setTimeout(load, 300); }
    else status("\u2717 refused, nothing changed on the device:\n" + (a.errors || [a.error]).join("\n"), "bad");
  } catch (e) { status("\u2717 " + e, "bad"); }
  button.disabled = !ed.editable;
}
ed.save = save; ed.load = load;
document.getElementById("save").onclick = save;
window.addEventListener("resize", draw); img.onload = draw;
load();
</script></body></html>
"""
