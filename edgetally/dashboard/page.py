"""The dashboard page: one self-contained HTML document (inline CSS + JS, canvas chart, no CDN).

The page polls ``/state.json`` every second and renders one card per device. Count cells carry
``data-device``/``data-counter``/``data-class``/``data-dir`` attributes so tests (and scrapers) can
read them.
"""

from __future__ import annotations

PAGE = r"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>edgetally dashboard</title>
<style>
:root{--bg:#0f1419;--card:#1a222c;--line:#2b3744;--fg:#e6edf3;--dim:#8b98a5;--ok:#2ea043;--bad:#da3633;--warn:#d29922;--acc:#58a6ff}
*{box-sizing:border-box}body{margin:0;font:14px/1.4 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;background:var(--bg);color:var(--fg)}
header{display:flex;align-items:baseline;gap:16px;padding:14px 20px;border-bottom:1px solid var(--line)}
header h1{font-size:18px;margin:0}header .dim{color:var(--dim)}
main{display:grid;grid-template-columns:repeat(auto-fill,minmax(560px,1fr));gap:16px;padding:16px 20px}
.card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:14px 16px}
.top{display:flex;align-items:center;gap:10px;margin-bottom:10px}.top h2{margin:0;font-size:17px}
.badge{padding:2px 9px;border-radius:999px;font-size:12px;font-weight:600;background:var(--line);color:var(--fg)}
.online,.ready{background:var(--ok)}.offline,.error{background:var(--bad)}.degraded,.init{background:var(--warn);color:#000}
.stats{display:flex;gap:18px;margin:6px 0 10px}.stat b{display:block;font-size:20px}.stat span{color:var(--dim);font-size:12px}
.row{display:grid;grid-template-columns:1fr 1fr;gap:14px}
table{border-collapse:collapse;width:100%}th,td{padding:3px 6px;border-bottom:1px solid var(--line);text-align:right}
th:first-child,td:first-child,th:nth-child(2),td:nth-child(2){text-align:left}th{color:var(--dim);font-weight:500}
td.n{font-variant-numeric:tabular-nums;font-weight:600}tr.total td{border-top:2px solid var(--line);color:var(--acc)}
img.snap{width:100%;border-radius:6px;border:1px solid var(--line);background:#000;min-height:60px}
canvas{width:100%;height:140px;display:block}h3{font-size:12px;color:var(--dim);font-weight:500;margin:10px 0 4px;text-transform:uppercase;letter-spacing:.05em}
.empty{color:var(--dim);padding:30px 20px}
.links{margin-left:auto;font-size:13px}.links a{color:var(--acc)}
</style></head>
<body>
<header><h1>edgetally</h1><span class="dim" id="summary">connecting&hellip;</span></header>
<main id="devices"><div class="empty">Waiting for devices on the broker&hellip;</div></main>
<script>
"use strict";
const $ = (tag, attrs, ...kids) => {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) { if (k === "class") el.className = v; else el.setAttribute(k, v); }
  for (const kid of kids) el.append(kid);
  return el;
};
const fmt = (v, d) => (v === undefined || v === null) ? "\u2013" : Number(v).toFixed(d);
const cards = {};

function countsTable(name, counters) {
  const t = $("table", {"class": "counts"});
  t.append($("tr", {}, $("th", {}, "counter"), $("th", {}, "class"), $("th", {}, "in"), $("th", {}, "out")));
  let tin = 0, tout = 0;
  for (const counter of Object.keys(counters).sort()) {
    const zone = Object.values(counters[counter]).some(d => "entered" in d || "exited" in d);
    const [a, b] = zone ? ["entered", "exited"] : ["in", "out"];
    for (const cls of Object.keys(counters[counter]).sort()) {
      const dirs = counters[counter][cls];
      const cell = d => $("td", {"class": "n", "data-device": name, "data-counter": counter, "data-class": cls, "data-dir": d}, String(dirs[d] || 0));
      t.append($("tr", {}, $("td", {}, counter), $("td", {}, cls), cell(a), cell(b)));
      tin += dirs[a] || 0; tout += dirs[b] || 0;
    }
  }
  t.append($("tr", {"class": "total"}, $("td", {}, "total"), $("td", {}, ""),
    $("td", {"class": "n", "data-device": name, "data-total": "in"}, String(tin)),
    $("td", {"class": "n", "data-device": name, "data-total": "out"}, String(tout))));
  return t;
}

function drawChart(canvas, perMinute, now) {
  const dpr = window.devicePixelRatio || 1, w = canvas.clientWidth, h = canvas.clientHeight;
  canvas.width = w * dpr; canvas.height = h * dpr;
  const g = canvas.getContext("2d"); g.scale(dpr, dpr); g.clearRect(0, 0, w, h);
  const N = 30, end = Math.floor(now / 60), bins = new Array(N).fill(0);
  for (const [t, n] of perMinute) { const i = N - 1 - (end - Math.floor(t / 60)); if (i >= 0 && i < N) bins[i] += n; }
  const max = Math.max(1, ...bins), left = 30, bottom = h - 18, bw = (w - left - 4) / N;
  g.strokeStyle = "#2b3744"; g.fillStyle = "#8b98a5"; g.font = "11px system-ui"; g.textAlign = "right";
  for (const f of [0, 0.5, 1]) {
    const y = bottom - f * (bottom - 18); g.beginPath(); g.moveTo(left, y); g.lineTo(w, y); g.stroke();
    g.fillText(String(Math.round(f * max)), left - 4, y + 4);
  }
  g.textAlign = "center";
  bins.forEach((n, i) => {
    const x = left + i * bw, bh = (n / max) * (bottom - 18);
    g.fillStyle = "#58a6ff"; g.fillRect(x + 1, bottom - bh, Math.max(1, bw - 2), bh);
    if (n) { g.fillStyle = "#e6edf3"; g.fillText(String(n), x + bw / 2, bottom - bh - 3); }
  });
  g.fillStyle = "#8b98a5"; g.textAlign = "left"; g.fillText("-30 min", left, h - 4);
  g.textAlign = "right"; g.fillText("now", w - 2, h - 4);
}

function card(name) {
  if (cards[name]) return cards[name];
  const c = {
    root: $("section", {"class": "card", "data-device": name}),
    avail: $("span", {"class": "badge", "data-role": "availability"}), state: $("span", {"class": "badge", "data-role": "state"}),
    stats: $("div", {"class": "stats"}), counts: $("div", {}), chart: $("canvas", {"data-role": "chart"}),
    img: $("img", {"class": "snap", "alt": "latest snapshot of " + name, "data-role": "snapshot"}), version: -1,
  };
  const links = $("span", {"class": "links"}, $("a", {"href": "device/" + encodeURIComponent(name), "data-role": "history"}, "history"),
    " \u00b7 ", $("a", {"href": "editor/" + encodeURIComponent(name), "data-role": "editor"}, "edit lines"));
  c.root.append($("div", {"class": "top"}, $("h2", {}, name), c.avail, c.state, links), c.stats,
    $("div", {"class": "row"}, $("div", {}, $("h3", {}, "counts"), c.counts, $("h3", {}, "counts per minute"), c.chart),
      $("div", {}, $("h3", {}, "latest snapshot"), c.img)));
  cards[name] = c;
  return c;
}

function render(data) {
  const main = document.getElementById("devices"), names = Object.keys(data.devices);
  document.getElementById("summary").textContent = names.length + " device(s) on prefix '" + data.prefix + "' \u00b7 updated " + new Date(data.now * 1000).toLocaleTimeString();
  if (!names.length) return;
  main.querySelector(".empty")?.remove();
  for (const name of names) {
    const d = data.devices[name], c = card(name);
    if (!c.root.isConnected) main.append(c.root);
    c.avail.textContent = d.availability; c.avail.className = "badge " + d.availability;
    c.state.textContent = d.state; c.state.className = "badge " + d.state;
    // The retained state of a stopped or vanished device ("ready") is history, not health: show it only
    // while the device is online, or when it went down with an error.
    c.state.hidden = !(d.availability === "online" || d.state === "error");
    const s = d.stats || {};
    c.stats.replaceChildren(...[["fps", fmt(s.fps, 1)], ["inference ms (p50)", fmt(s.infer_ms_p50, 1)], ["frames", s.frames ?? "\u2013"],
      ["dropped", s.dropped_frames ?? "\u2013"]].map(([k, v]) => $("div", {"class": "stat", "data-stat": k}, $("b", {}, String(v)), $("span", {}, k))));
    c.counts.replaceChildren(countsTable(name, d.counters));
    drawChart(c.chart, d.per_minute, data.now);
    if (d.snapshot_version && d.snapshot_version !== c.version) {
      c.version = d.snapshot_version; c.img.src = "snapshot/" + encodeURIComponent(name) + ".jpg?v=" + d.snapshot_version;
    }
  }
}

async function poll() {
  try { const r = await fetch("state.json", {cache: "no-store"}); render(await r.json()); }
  catch (e) { document.getElementById("summary").textContent = "dashboard server unreachable: " + e; }
  setTimeout(poll, 1000);
}
poll();
</script></body></html>
"""
