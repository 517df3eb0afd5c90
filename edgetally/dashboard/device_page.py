"""One device's page: bars per interval bin for every counter, and the OD matrix of every junction.

Self-contained HTML (no CDN). Polls ``/api/history/<device>.json`` every 2 s. A bin the camera saw for
less than 90 % of its length is drawn hatched with its observed share, so a gap is not read as a quiet
period. Elements carry ``data-*`` attributes for tests: ``[data-bar][data-counter][data-start]`` with
``data-count``, and ``td[data-origin][data-destination]`` in ``table[data-junction]``.
"""

from __future__ import annotations

DEVICE_PAGE = r"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>edgetally device history</title>
<style>
:root{--bg:#0f1419;--card:#1a222c;--line:#2b3744;--fg:#e6edf3;--dim:#8b98a5;--acc:#58a6ff;--warn:#d29922}
*{box-sizing:border-box}body{margin:0;font:14px/1.4 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;background:var(--bg);color:var(--fg)}
header{display:flex;align-items:baseline;gap:16px;padding:14px 20px;border-bottom:1px solid var(--line)}
header h1{font-size:18px;margin:0}a{color:var(--acc)}.dim{color:var(--dim)}
main{padding:16px 20px;display:grid;gap:16px}.card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:14px 16px}
h2{font-size:15px;margin:0 0 8px}.bars{display:flex;align-items:flex-end;gap:3px;height:130px;padding-top:18px;border-bottom:1px solid var(--line);overflow-x:auto}
.bar{flex:0 0 auto;width:44px;background:var(--acc);position:relative;min-height:1px}
.bar.partial{background:repeating-linear-gradient(45deg,var(--acc),var(--acc) 4px,#2f5f9a 4px,#2f5f9a 8px)}
.bar span{position:absolute;top:-16px;left:0;right:0;text-align:center;font-size:11px}
.axis{display:flex;gap:3px;font-size:10px;color:var(--dim);margin-bottom:10px}.axis div{flex:0 0 auto;width:44px;text-align:center}
table{border-collapse:collapse}th,td{padding:4px 9px;border:1px solid var(--line);text-align:right}th{color:var(--dim);font-weight:500}
td.z{color:var(--dim)}.empty{color:var(--dim)}
</style></head>
<body>
<header><h1>edgetally &middot; <span id="device"></span></h1><span class="dim" id="summary">loading&hellip;</span>
<a href="/">all devices</a><a id="editlink" href="#">edit lines and zones</a></header>
<main><section class="card"><h2>counts per bin</h2><div id="counters"><div class="empty">No closed bins received yet: the
device publishes each bin when it closes (docs/intervals.md); <code>edge report</code> on the device has its whole history.</div></div></section>
<section class="card"><h2>turning movements (origin &darr; destination &rarr;, bins shown)</h2><div id="od"><div class="empty">No junction movements yet.</div></div></section></main>
<script>
"use strict";
const device = decodeURIComponent(location.pathname.split("/").pop());
document.getElementById("device").textContent = device;
document.getElementById("editlink").href = "/editor/" + encodeURIComponent(device);
const $ = (tag, attrs, ...kids) => {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) { if (k === "class") el.className = v; else el.setAttribute(k, v); }
  for (const kid of kids) el.append(kid);
  return el;
};
const hhmm = (t, s) => new Date(t * 1000).toLocaleTimeString([], {hour: "2-digit", minute: "2-digit", hour12: false,
  ...(s < 60 ? {second: "2-digit"} : {})});

function counterCard(name, c, bins) {
  const max = Math.max(1, ...c.bins.map(b => b.total));
  const bars = $("div", {"class": "bars"}), axis = $("div", {"class": "axis"});
  c.bins.forEach((b, i) => {
    const info = bins[i], share = info.observed_s / info.bin_s;
    const bar = $("div", {"class": "bar" + (share < 0.9 ? " partial" : ""), "data-bar": "", "data-counter": name,
      "data-start": String(b.start), "data-count": String(b.total), "data-observed": String(info.observed_s),
      "title": hhmm(b.start, info.bin_s) + ": " + b.total + " (" + Object.entries(b.classes).map(([k, v]) => k + " " + v).join(", ")
        + "); observed " + Math.round(100 * share) + " %"}, $("span", {}, String(b.total)));
    bar.style.height = Math.max(1, 100 * b.total / max) + "px";
    bars.append(bar); axis.append($("div", {}, hhmm(b.start, info.bin_s)));
  });
  return $("div", {}, $("h2", {}, name + " (" + c.kind + ")"), bars, axis);
}

function odTable(name, m) {
  const t = $("table", {"data-junction": name});
  t.append($("tr", {}, $("th", {}, name), ...m.destinations.map(d => $("th", {}, d))));
  for (const o of m.origins) {
    t.append($("tr", {}, $("th", {}, o), ...m.destinations.map(d => {
      const n = (m.cells[o] || {})[d] || 0;
      return $("td", {"class": n ? "" : "z", "data-origin": o, "data-destination": d}, String(n));
    })));
  }
  return $("div", {}, t, $("div", {"class": "dim"}, m.total + " movements; '?' = unfinished (entered and never left, or left without being seen entering)"));
}

function render(h) {
  const names = Object.keys(h.counters);
  document.getElementById("summary").textContent = h.bins.length + " bin(s) received \u00b7 updated " + new Date().toLocaleTimeString();
  if (names.length) document.getElementById("counters").replaceChildren(...names.map(n => counterCard(n, h.counters[n], h.bins)));
  const od = Object.keys(h.od);
  if (od.length) document.getElementById("od").replaceChildren(...od.map(n => odTable(n, h.od[n])));
}

async function poll() {
  try { const r = await fetch("/api/history/" + encodeURIComponent(device) + ".json", {cache: "no-store"}); render(await r.json()); }
  catch (e) { document.getElementById("summary").textContent = "dashboard server unreachable: " + e; }
  setTimeout(poll, 2000);
}
poll();
</script></body></html>
"""
