"""The labelling page: one self-contained HTML document (inline CSS + JS, canvas; no CDN).

Keyboard first: arrows / n p move between frames, Tab selects the next box, 1-9 give the selected
box's whole track a class (Shift: this box only), x deletes a box (Shift+X: its whole unconfirmed
track), a accepts the detector's suggestions, m merges the selected boxes (Ctrl+click to add to the
selection), Enter marks the frame done and goes to the next open one, u reopens it, e exports the
dataset. Drag on the image to draw a box (class = the last class key pressed); drag a selected box
to move it, its corner to resize it. Every change is one POST; the page shows what the server kept.
``window.labelState`` exposes the state for tests.
"""

from __future__ import annotations

PAGE = r"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>edgetally label</title>
<style>
:root{--bg:#0f1419;--panel:#1a222c;--line:#2b3744;--fg:#e6edf3;--dim:#8b98a5;--ok:#2ea043;--bad:#da3633;--acc:#58a6ff}
*{box-sizing:border-box}body{margin:0;font:14px/1.4 system-ui,sans-serif;background:var(--bg);color:var(--fg);display:flex;height:100vh}
#main{flex:1;display:flex;flex-direction:column;padding:10px;min-width:0}#side{width:300px;background:var(--panel);padding:12px;overflow:auto;border-left:1px solid var(--line)}
canvas{max-width:100%;max-height:calc(100vh - 90px);align-self:flex-start;cursor:crosshair;background:#000}
#status{margin:6px 0;min-height:20px;color:var(--dim)}#status.err{color:var(--bad)}
h2{font-size:13px;color:var(--dim);text-transform:uppercase;letter-spacing:.05em;margin:14px 0 6px}
.cls{padding:2px 6px;border-radius:4px;margin:2px 0}.cls.active{outline:2px solid var(--acc)}
#strip{display:flex;flex-wrap:wrap;gap:3px}#strip span{width:22px;height:16px;border-radius:3px;background:var(--line);cursor:pointer;font-size:9px;text-align:center}
#strip span.done{background:var(--ok)}#strip span.cur{outline:2px solid var(--acc)}
kbd{background:var(--line);border-radius:3px;padding:0 4px;font-size:12px}ul{padding-left:16px;margin:0;color:var(--dim);font-size:12px}
</style></head><body>
<div id="main"><div><b id="title">loading&hellip;</b> <span id="progress" class="dim"></span></div>
<div id="status"></div><canvas id="view" tabindex="0"></canvas></div>
<div id="side"><h2>Classes</h2><div id="classes"></div>
<h2>Frames</h2><div id="strip"></div>
<h2>Keys</h2><ul>
<li><kbd>&larr;</kbd><kbd>&rarr;</kbd> / <kbd>p</kbd><kbd>n</kbd> frame, <kbd>Tab</kbd> next box</li>
<li><kbd>1</kbd>-<kbd>9</kbd> class for the whole track, <kbd>Shift</kbd> this box only</li>
<li><kbd>x</kbd> delete box, <kbd>X</kbd> delete track, <kbd>m</kbd> merge selected, <kbd>a</kbd> accept suggestions</li>
<li><kbd>Enter</kbd> frame done &amp; next, <kbd>u</kbd> reopen, <kbd>e</kbd> export dataset</li>
<li>drag: draw a box; drag a selected box / its corner: move / resize</li></ul></div>
<script>
"use strict";
const S = {session: null, cur: 0, selected: [], activeClass: 0, image: new Image(), drag: null};
window.labelState = S;
const cv = document.getElementById("view"), ctx = cv.getContext("2d");
const COLORS = ["#ff6b6b", "#4dabf7", "#ffd43b", "#69db7c", "#da77f2", "#ffa94d", "#3bc9db", "#f783ac", "#a9e34b"];
const frame = () => S.session.frames[S.cur];
const boxClass = b => b["class"] || (b.track !== null && b.track !== undefined ? S.session.tracks[String(b.track)] : null) || null;
function status(msg, err) { const el = document.getElementById("status"); el.textContent = msg || ""; el.className = err ? "err" : ""; }

async function post(url, body) {
  const r = await fetch(url, {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body || {})});
  const data = await r.json();
  if (!data.ok) { status(data.error, true); return null; }
  status(data.message || "saved");
  return data;
}
async function act(action) {
  const data = await post("/api/action", action);
  if (!data) {  // refused: show what the server kept, not what the page assumed
    S.session = await (await fetch("/api/session")).json(); S.drag = null; render(); return null;
  }
  if (data.tracks) S.session.tracks = data.tracks;
  if (data.classes) S.session.classes = data.classes;
  for (const f of data.frames || []) {
    const i = S.session.frames.findIndex(g => g.index === f.index);
    if (i >= 0) S.session.frames[i] = f;
  }
  S.selected = S.selected.filter(id => frame().boxes.some(b => b.id === id));
  render();
  return data;
}

function show(i) {
  S.cur = Math.max(0, Math.min(S.session.frames.length - 1, i));
  S.selected = [];
  S.image.onload = () => { cv.width = S.image.naturalWidth; cv.height = S.image.naturalHeight; render(); };
  S.image.src = "/" + frame().image;
  render();
}

function render() {
  if (!S.session) return;
  const f = frame(), done = S.session.frames.filter(g => g.done).length;
  document.getElementById("title").textContent = `frame ${f.index} (t ${f.time.toFixed(1)} s)` + (f.done ? " \u2713 done" : "");
  document.getElementById("progress").textContent = `${S.cur + 1} / ${S.session.frames.length}, ${done} done`;
  const cls = document.getElementById("classes"); cls.innerHTML = "";
  S.session.classes.forEach((c, k) => {
    const d = document.createElement("div"); d.className = "cls" + (k === S.activeClass ? " active" : "");
    d.style.background = COLORS[k % COLORS.length] + "55"; d.textContent = `${k + 1}  ${c}`; cls.append(d);
  });
  const strip = document.getElementById("strip"); strip.innerHTML = "";
  S.session.frames.forEach((g, k) => {
    const s = document.createElement("span"); s.className = (g.done ? "done" : "") + (k === S.cur ? " cur" : "");
    s.textContent = k + 1; s.onclick = () => show(k); strip.append(s);
  });
  if (!S.image.complete || !S.image.naturalWidth) return;
  ctx.drawImage(S.image, 0, 0);
  for (const b of f.boxes) {
    const c = boxClass(b), k = c ? S.session.classes.indexOf(c) : -1, [x1, y1, x2, y2] = b.xyxy;
    const sel = S.selected.includes(b.id);
    ctx.setLineDash(c ? [] : [5, 4]); ctx.lineWidth = sel ? 3 : 1.5;
    ctx.strokeStyle = k >= 0 ? COLORS[k % COLORS.length] : "#ccc"; ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
    ctx.setLineDash([]); ctx.font = "11px sans-serif"; ctx.fillStyle = ctx.strokeStyle;
    const tag = (c || (b.suggest ? b.suggest + "?" : "?")) + (b.track !== null && b.track !== undefined ? ` #${b.track}` : "");
    ctx.fillText(tag, x1 + 2, Math.max(10, y1 - 3));
    if (sel) { ctx.fillRect(x2 - 4, y2 - 4, 8, 8); }
  }
  if (S.drag && S.drag.kind === "draw") {
    const d = S.drag; ctx.strokeStyle = "#fff"; ctx.lineWidth = 1; ctx.setLineDash([3, 3]);
    ctx.strokeRect(d.x0, d.y0, d.x - d.x0, d.y - d.y0); ctx.setLineDash([]);
  }
}

function selectedBox() { return frame().boxes.find(b => b.id === S.selected[S.selected.length - 1]); }
async function setClass(k, boxOnly) {
  const name = S.session.classes[k]; if (!name) return;
  S.activeClass = k;
  const b = selectedBox();
  if (!b) { render(); status(`new boxes get class ${name}`); return; }
  const hasTrack = b.track !== null && b.track !== undefined;
  if (hasTrack && !boxOnly) await act({op: "set_track_class", track: b.track, "class": name});
  else await act({op: "set_box_class", frame: frame().index, box: b.id, "class": name});
}
async function accept() {
  const f = frame();
  for (const b of f.boxes.filter(b => !boxClass(b) && b.suggest)) {
    if (b.track !== null && b.track !== undefined) await act({op: "set_track_class", track: b.track, "class": b.suggest});
    else await act({op: "set_box_class", frame: f.index, box: b.id, "class": b.suggest});
  }
}
async function done() {
  if (await act({op: "done", frame: frame().index, done: true})) {
    const next = S.session.frames.findIndex((g, k) => k > S.cur && !g.done);
    const any = S.session.frames.findIndex(g => !g.done);
    show(next >= 0 ? next : (any >= 0 ? any : S.cur));
  }
}

document.addEventListener("keydown", async ev => {
  if (!S.session) return;
  const f = frame(), b = selectedBox(), key = ev.key;
  if (key === "ArrowRight" || key === "n") show(S.cur + 1);
  else if (key === "ArrowLeft" || key === "p") show(S.cur - 1);
  else if (key === "Tab") {
    ev.preventDefault(); if (!f.boxes.length) return;
    const at = b ? f.boxes.indexOf(b) : -1, n = f.boxes.length;
    S.selected = [f.boxes[(at + (ev.shiftKey ? n - 1 : 1)) % n].id]; render();
  }
  else if (/^Digit[1-9]$/.test(ev.code)) await setClass(Number(ev.code.slice(5)) - 1, ev.shiftKey);
  else if ((key === "x" || key === "Delete" || key === "Backspace") && b) await act({op: "delete_box", frame: f.index, box: b.id});
  else if (key === "X" && b) await act({op: "delete_track", track: b.track});
  else if (key === "m" && S.selected.length > 1) await act({op: "merge_boxes", frame: f.index, boxes: S.selected});
  else if (key === "a") await accept();
  else if (key === "Enter" || key === " ") { ev.preventDefault(); await done(); }
  else if (key === "u") await act({op: "done", frame: f.index, done: false});
  else if (key === "e") await post("/api/export");
  else if (key === "Escape") { S.selected = []; render(); }
});

function pos(ev) { const r = cv.getBoundingClientRect(); return [(ev.clientX - r.left) * cv.width / r.width, (ev.clientY - r.top) * cv.height / r.height]; }
function hit(x, y) {
  const inside = frame().boxes.filter(b => x >= b.xyxy[0] && x <= b.xyxy[2] && y >= b.xyxy[1] && y <= b.xyxy[3]);
  inside.sort((a, c) => (a.xyxy[2] - a.xyxy[0]) * (a.xyxy[3] - a.xyxy[1]) - (c.xyxy[2] - c.xyxy[0]) * (c.xyxy[3] - c.xyxy[1]));
  return inside[0];
}
cv.addEventListener("mousedown", ev => {
  const [x, y] = pos(ev), b = selectedBox();
  if (b && Math.abs(x - b.xyxy[2]) < 8 && Math.abs(y - b.xyxy[3]) < 8) { S.drag = {kind: "resize", box: b, x0: x, y0: y, x, y}; return; }
  const h = hit(x, y);
  if (h) {
    S.selected = ev.ctrlKey || ev.metaKey ? [...S.selected.filter(id => id !== h.id), h.id] : [h.id];
    S.drag = {kind: "move", box: h, x0: x, y0: y, x, y}; render(); return;
  }
  S.selected = []; S.drag = {kind: "draw", x0: x, y0: y, x, y}; render();
});
cv.addEventListener("mousemove", ev => {
  if (!S.drag) return; [S.drag.x, S.drag.y] = pos(ev);
  const d = S.drag, dx = d.x - d.x0, dy = d.y - d.y0;
  if (d.kind === "move") { d.orig = d.orig || d.box.xyxy.slice();
    d.box.xyxy = [d.orig[0] + dx, d.orig[1] + dy, d.orig[2] + dx, d.orig[3] + dy]; }
  if (d.kind === "resize") { d.orig = d.orig || d.box.xyxy.slice(); d.box.xyxy = [d.orig[0], d.orig[1], d.orig[2] + dx, d.orig[3] + dy]; }
  render();
});
window.addEventListener("mouseup", async () => {
  const d = S.drag; S.drag = null; if (!d) return;
  const moved = Math.abs(d.x - d.x0) + Math.abs(d.y - d.y0) > 2;
  if (d.kind === "draw" && moved) {
    await act({op: "add_box", frame: frame().index, xyxy: [d.x0, d.y0, d.x, d.y], "class": S.session.classes[S.activeClass]});
  } else if ((d.kind === "move" || d.kind === "resize") && moved) {
    await act({op: "move_box", frame: frame().index, box: d.box.id, xyxy: d.box.xyxy});
  }
  render();
});

fetch("/api/session").then(r => r.json()).then(s => {
  S.session = s;
  const open = s.frames.findIndex(f => !f.done);
  show(open >= 0 ? open : 0);
  cv.focus();
});
</script></body></html>
"""
