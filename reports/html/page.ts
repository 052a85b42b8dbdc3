// The frame of report.html: inline CSS, the small hover-tooltip script and the document around the
// body. Everything is inline (system fonts, no CDN, no external script), so the file opens offline.

import { esc } from '../plots/format.ts';

const CSS = `
:root { --fg:#111827; --muted:#6b7280; --line:#e5e7eb; --bg:#ffffff; --panel:#f9fafb; --ok:#15803d; --okbg:#ecfdf5; --bad:#b91c1c; --badbg:#fef2f2; --accent:#2563eb; }
* { box-sizing: border-box; }
body { margin:0; font: 14px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, "Noto Sans", "DejaVu Sans", sans-serif; color:var(--fg); background:var(--bg); }
main { max-width: 1480px; margin: 0 auto; padding: 0 28px 48px; }
header.top { padding: 22px 28px 18px; border-bottom: 1px solid var(--line); background: linear-gradient(180deg, #f8fafc, #fff); }
header.top .inner { max-width: 1480px; margin: 0 auto; display:flex; gap: 20px; align-items: center; flex-wrap: wrap; }
.verdict { font-weight: 700; font-size: 15px; letter-spacing: .04em; padding: 6px 14px; border-radius: 999px; }
.verdict.ok { color: var(--ok); background: var(--okbg); border: 1px solid #a7f3d0; }
.verdict.bad { color: var(--bad); background: var(--badbg); border: 1px solid #fecaca; }
.verdict.warn { color: #92400e; background: #fffbeb; border: 1px solid #fcd34d; margin-left: 8px; }
h1 { font-size: 24px; margin: 0; letter-spacing: -.01em; }
h1 small { font-weight: 400; color: var(--muted); font-size: 15px; margin-left: 8px; }
.meta { color: var(--muted); font-size: 13px; display:flex; flex-wrap: wrap; gap: 4px 14px; width: 100%; }
.meta b { color: var(--fg); font-weight: 600; }
h2 { font-size: 18px; margin: 34px 0 10px; padding-bottom: 6px; border-bottom: 1px solid var(--line); }
h2 .count { color: var(--muted); font-weight: 400; font-size: 14px; }
h3 { font-size: 15px; margin: 20px 0 8px; }
p.lead { color: var(--muted); margin: 4px 0 12px; max-width: 980px; }
ol.findings { list-style: none; padding: 0; margin: 20px 0 0; display: grid; grid-template-columns: repeat(3, minmax(0,1fr)); gap: 14px; counter-reset: f; }
ol.findings li { counter-increment: f; background: var(--panel); border: 1px solid var(--line); border-left: 4px solid var(--accent); border-radius: 8px; padding: 12px 14px 12px 44px; position: relative; font-size: 14px; }
ol.findings li::before { content: counter(f); position: absolute; left: 12px; top: 11px; width: 22px; height: 22px; border-radius: 50%; background: var(--accent); color: #fff; font-weight: 700; font-size: 12px; display:flex; align-items:center; justify-content:center; }
ol.findings li.bad { border-left-color: var(--bad); }
ol.findings li.bad::before { background: var(--bad); }
.summary { display: grid; grid-template-columns: minmax(0, 1.15fr) minmax(0, 1fr); gap: 8px 36px; align-items: start; }
.summary h2 { margin-top: 26px; }
.tiles { display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)); gap: 10px; margin: 12px 0 4px; }
.tile { border: 1px solid var(--line); border-radius: 8px; padding: 9px 12px; }
.tile .v { font-size: 20px; font-weight: 650; font-variant-numeric: tabular-nums; }
.tile .k { color: var(--muted); font-size: 12px; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; font-size: 13px; margin: 6px 0 10px; }
th, td { padding: 5px 10px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
th { color: var(--muted); font-weight: 600; font-size: 12px; background: var(--panel); }
td.r, th.r { text-align: right; }
table.kv th { background: none; font-size: 13px; white-space: nowrap; padding-right: 18px; }
.tile .bad { color: var(--bad); } td.ok { color: var(--ok); font-weight: 700; } td.bad { color: var(--bad); font-weight: 700; }
code { font: 12.5px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, "DejaVu Sans Mono", monospace; background: #f3f4f6; padding: 1px 5px; border-radius: 4px; }
pre { font: 12px/1.45 ui-monospace, SFMono-Regular, Menlo, Consolas, "DejaVu Sans Mono", monospace; background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: 12px; overflow: auto; max-height: 420px; }
.grid { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 16px 22px; }
.grid.one { grid-template-columns: minmax(0, 1fr); }
figure.chart { margin: 0; min-width: 0; }
figure.chart figcaption { margin: 0 0 4px; font-size: 13.5px; }
figure.chart figcaption span { display: block; color: var(--muted); font-size: 12px; }
svg.plot { width: 100%; height: auto; display: block; overflow: visible; }
svg.plot text { font: 10.5px system-ui, -apple-system, "Segoe UI", Roboto, Arial, "DejaVu Sans", sans-serif; fill: #4b5563; }
svg.plot .bg { fill: #fff; }
svg.plot .setup { fill: #f3f4f6; }
svg.plot .grid { stroke: #eef0f3; stroke-width: 1; }
svg.plot .axis { stroke: #9ca3af; stroke-width: 1; }
svg.plot .marker line { stroke: #7c3aed; stroke-width: 1.2; stroke-dasharray: 3 3; }
svg.plot .marker text { fill: #6d28d9; font-size: 10px; font-weight: 600; }
svg.plot .marker.scenario line { stroke: #64748b; }
svg.plot .marker.scenario text { fill: #475569; }
svg.plot .threshold line { stroke-width: 1.4; stroke-dasharray: 7 4; }
svg.plot .threshold.ok line { stroke: #16a34a; } svg.plot .threshold.ok text { fill: #15803d; font-weight: 600; }
svg.plot .threshold.failed line { stroke: #dc2626; stroke-width: 2; } svg.plot .threshold.failed text { fill: #b91c1c; font-weight: 700; }
svg.plot .guide { stroke: #9ca3af; stroke-width: 1; }
.legend { display: flex; flex-wrap: wrap; gap: 2px 12px; font-size: 12px; color: #374151; margin-top: 2px; }
.legend i { display: inline-block; width: 14px; height: 3px; border-radius: 2px; vertical-align: middle; margin-right: 5px; }
.offscale { font-size: 12px; margin-top: 3px; } .offscale .ok { color: var(--ok); } .offscale .failed { color: var(--bad); font-weight: 600; }
figure.empty .no-data { border: 1px dashed #d1d5db; border-radius: 8px; background: var(--panel); color: var(--muted); padding: 34px 16px; text-align: center; font-size: 13px; }
.tip { position: fixed; pointer-events: none; background: rgba(17,24,39,.94); color: #f9fafb; font-size: 12px; line-height: 1.45; padding: 7px 10px; border-radius: 6px; z-index: 10; display: none; max-width: 340px; box-shadow: 0 4px 14px rgba(0,0,0,.18); }
.tip .t { color: #d1d5db; margin-bottom: 3px; } .tip i { display:inline-block; width:9px; height:9px; border-radius:2px; margin-right:6px; }
.tip .row { display: flex; justify-content: space-between; gap: 14px; } .tip .row b { font-variant-numeric: tabular-nums; font-weight: 600; }
nav.toc { font-size: 13px; margin: 18px 0 0; display: flex; flex-wrap: wrap; gap: 6px 16px; } nav.toc a { color: var(--accent); text-decoration: none; }
footer { color: var(--muted); font-size: 12px; margin-top: 40px; border-top: 1px solid var(--line); padding-top: 12px; }
@media (max-width: 1100px) { .grid, ol.findings, .summary { grid-template-columns: minmax(0, 1fr); } }
`;

// The hover tooltip: each line chart carries its series in data-tip ({u: unit, x0/x1: the plot's
// pixel range, d0/d1: its time range, s: [{l: label, c: colour, p: [[x, y], …]}]}).
const SCRIPT = `
(function () {
  var tip = document.createElement('div'); tip.className = 'tip'; document.body.appendChild(tip);
  function sig(v) { if (!isFinite(v)) return '–'; if (v === 0) return '0'; var a = Math.abs(v); return a >= 1000 ? Math.round(v).toLocaleString('en-US') : String(Number(v.toPrecision(3))); }
  function fmt(v, u) {
    if (u === 'ms') return Math.abs(v) >= 1000 ? sig(v / 1000) + ' s' : sig(v) + ' ms';
    if (u === 'ratio') return sig(100 * v) + '%';
    if (u === 'per_s') return sig(v) + '/s';
    return sig(v);
  }
  function secs(s) { var a = Math.abs(s); var sign = s < 0 ? '−' : ''; if (a < 60) return sign + sig(a) + 's'; a = Math.round(a); var m = Math.floor(a / 60), r = a % 60; return sign + m + 'm' + (r ? String(r).padStart(2, '0') + 's' : ''); }
  function el(tag, cls, text) { var e = document.createElement(tag); if (cls) e.className = cls; if (text !== undefined) e.textContent = text; return e; }
  document.querySelectorAll('svg[data-tip]').forEach(function (svg) {
    var d; try { d = JSON.parse(svg.getAttribute('data-tip')); } catch (e) { return; }
    var guide = svg.querySelector('.guide');
    function hide() { tip.style.display = 'none'; if (guide) guide.setAttribute('visibility', 'hidden'); }
    svg.addEventListener('mouseleave', hide);
    svg.addEventListener('mousemove', function (ev) {
      var pt = svg.createSVGPoint(); pt.x = ev.clientX; pt.y = ev.clientY;
      var m = svg.getScreenCTM(); if (!m) return;
      var p = pt.matrixTransform(m.inverse());
      if (p.x < d.x0 || p.x > d.x1) { hide(); return; }
      var x = d.d0 + (p.x - d.x0) / (d.x1 - d.x0) * (d.d1 - d.d0);
      var best = null, rows = [];
      d.s.forEach(function (s) {
        var near = null;
        s.p.forEach(function (q) { if (!near || Math.abs(q[0] - x) < Math.abs(near[0] - x)) near = q; });
        if (near && (!best || Math.abs(near[0] - x) < Math.abs(best - x))) best = near[0];
        if (near) rows.push({ s: s, q: near });
      });
      if (best === null) { hide(); return; }
      var span = (d.d1 - d.d0) / 40;
      rows = rows.filter(function (r) { return Math.abs(r.q[0] - best) <= span; });
      tip.textContent = '';
      tip.appendChild(el('div', 't', 'at ' + secs(best)));
      rows.slice(0, 14).forEach(function (r) {
        var row = el('div', 'row'); var name = el('span'); var sw = el('i'); sw.style.background = r.s.c; name.appendChild(sw); name.appendChild(document.createTextNode(r.s.l));
        row.appendChild(name); row.appendChild(el('b', '', fmt(r.q[1], d.u))); tip.appendChild(row);
      });
      if (rows.length > 14) tip.appendChild(el('div', 't', '… ' + (rows.length - 14) + ' more'));
      var gx = d.x0 + (best - d.d0) / (d.d1 - d.d0) * (d.x1 - d.x0);
      if (guide) { guide.setAttribute('x1', gx); guide.setAttribute('x2', gx); guide.setAttribute('visibility', 'visible'); }
      tip.style.display = 'block';
      var left = ev.clientX + 14; if (left + tip.offsetWidth > window.innerWidth - 8) left = ev.clientX - tip.offsetWidth - 14;
      tip.style.left = left + 'px'; tip.style.top = Math.max(8, ev.clientY - tip.offsetHeight - 10) + 'px';
    });
  });
})();
`;

export function page(title: string, header: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<title>${esc(title)}</title>
<style>${CSS}</style>
</head>
<body>
${header}
<main>
${body}
</main>
<script>${SCRIPT}</script>
</body>
</html>
`;
}
