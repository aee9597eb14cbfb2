/*
 * tools/hmm-sim/report/html.ts - `hmm-sim run --html FILE`: one
 * self-contained page (inline CSS, SVG drawn by an inline script from
 * the run's data embedded as JSON; nothing is fetched).
 *
 * Per run (a tour has one per part):
 *  - threads: a lane per simulated thread or device engine (comm-pid
 *    [cpu]) over simulated time; a function traced at entry and exit is a
 *    bar from its entry to its exit, nested calls below it; any other
 *    event is a tick. Hovering shows the ftrace line and every field.
 *  - residency: a row per user page of each process, coloured by the
 *    state of its CPU entry over time (none, zero page, RAM, swap,
 *    device-private, device-coherent, exclusive, migration entry), with
 *    an arrow where a page moved between memories.
 *  - counters: the main event counters over time.
 *
 * The DOM carries what a test checks: g.lane[data-lane], .ev[data-seq]
 * [data-event], g.page-row[data-pid][data-addr] > rect.cell[data-state]
 * [data-from][data-to], .migration; body[data-rendered] = runs drawn.
 */
import type { report_run } from './collect.js';

const STYLE = `
body { font: 13px/1.4 system-ui, sans-serif; margin: 16px 24px; color: #222; background: #fff; }
h1 { font-size: 20px; margin: 0 0 4px; }
h2 { font-size: 16px; margin: 24px 0 2px; border-top: 1px solid #ccc; padding-top: 12px; }
h3 { font-size: 13px; margin: 12px 0 4px; color: #555; text-transform: uppercase; letter-spacing: .05em; }
.outcome { font-family: ui-monospace, monospace; font-size: 12px; white-space: pre; background: #f6f6f6; padding: 6px 8px; margin: 4px 0; }
svg { display: block; overflow: visible; }
svg text { font: 11px ui-monospace, monospace; fill: #333; }
.lane-bg { fill: #fafafa; stroke: #e4e4e4; }
.ev:hover, .cell:hover { stroke: #000; stroke-width: 1; }
.axis line { stroke: #999; } .axis text { fill: #666; font-size: 10px; }
#detail { position: fixed; right: 12px; bottom: 12px; max-width: 640px; background: #fffff0; border: 1px solid #aa9;
  padding: 6px 8px; font: 12px ui-monospace, monospace; white-space: pre-wrap; display: none; box-shadow: 0 2px 6px #0003; }
.legend span { display: inline-block; margin-right: 12px; } .legend i { display: inline-block; width: 12px; height: 12px;
  vertical-align: -2px; margin-right: 4px; border: 1px solid #0002; }
.note { color: #777; font-size: 12px; }
`;

/* the client side: builds the SVG from the embedded data (plain JS, run by the browser) */
const SCRIPT = String.raw`
(function () {
  var data = JSON.parse(document.getElementById('hmm-sim-data').textContent);
  var NS = 'http://www.w3.org/2000/svg';
  var COLORS = { none: '#f1f1f1', zero: '#cfcfcf', ram: '#43a047', swap: '#8d6e63', device_private: '#1e88e5',
    device_coherent: '#8e24aa', exclusive: '#fb8c00', migration: '#e53935' };
  var PALETTE = ['#1e88e5', '#e53935', '#43a047', '#fb8c00', '#8e24aa', '#00897b', '#6d4c41', '#546e7a', '#c0ca33', '#d81b60'];
  var detail = document.getElementById('detail');
  function el(tag, attrs, parent, text) {
    var e = document.createElementNS(NS, tag);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    if (parent) parent.appendChild(e);
    return e;
  }
  function html(tag, attrs, parent, text) {
    var e = document.createElement(tag);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    if (parent) parent.appendChild(e);
    return e;
  }
  function us(ns) { return (ns / 1000).toFixed(ns < 10000 ? 2 : 1) + ' us'; }
  function hex(a) { return '0x' + a.toString(16); }
  function show(text) { detail.textContent = text; detail.style.display = 'block'; }
  function hide() { detail.style.display = 'none'; }
  function hover(node, text) {
    el('title', {}, node, text);
    node.addEventListener('mouseenter', function () { show(text); });
    node.addEventListener('mouseleave', hide);
  }
  var LEFT = 190, W = 1000;
  function axis(svg, y, x, t1) {
    var g = el('g', { 'class': 'axis' }, svg);
    el('line', { x1: LEFT, x2: LEFT + W, y1: y, y2: y }, g);
    for (var i = 0; i <= 5; i++) {
      var xx = LEFT + W * i / 5;
      el('line', { x1: xx, x2: xx, y1: y, y2: y + 4 }, g);
      el('text', { x: xx, y: y + 15, 'text-anchor': 'middle' }, g, us(t1 * i / 5));
    }
  }
  data.runs.forEach(function (run, ri) {
    var sec = html('section', { 'class': 'run', id: 'run-' + ri, 'data-run': run.name }, document.getElementById('runs'));
    html('h2', {}, sec, run.name);
    html('div', { 'class': 'note' }, sec, run.description);
    html('div', { 'class': 'outcome' }, sec, run.outcome.join('\n'));
    var t1 = Math.max(1, run.end_ns);
    run.events.forEach(function (e) { if (e.ts > t1) t1 = e.ts; });
    function x(ns) { return LEFT + W * ns / t1; }

    /* threads */
    html('h3', {}, sec, 'threads (' + run.lanes.length + ') and events (' + run.events.length + ') over simulated time');
    var LH = 34;
    var lanes = el('svg', { 'class': 'lanes', width: LEFT + W + 20, height: run.lanes.length * LH + 24 }, sec);
    var groups = run.lanes.map(function (l, i) {
      var g = el('g', { 'class': 'lane', 'data-lane': l.key, 'data-kind': l.kind }, lanes);
      el('rect', { 'class': 'lane-bg', x: LEFT, y: i * LH + 2, width: W, height: LH - 4 }, g);
      el('text', { x: 4, y: i * LH + LH / 2 + 4 }, g, l.key);
      return g;
    });
    var stacks = run.lanes.map(function () { return []; });
    var color = {}, ncolor = 0;
    function col(name) { var b = name.replace(/_ret$/, ''); if (!(b in color)) color[b] = PALETTE[ncolor++ % PALETTE.length]; return color[b]; }
    var ends = {};
    run.events.forEach(function (e, i) {
      if (e.ph === 'B') stacks[e.lane].push(i);
      else if (e.ph === 'E') {
        var st = stacks[e.lane];
        for (var j = st.length - 1; j >= 0; j--) {
          if (run.events[st[j]].name + '_ret' === e.name) { ends[st[j]] = i; st.length = j; break; }
        }
      }
    });
    var depth = run.lanes.map(function () { return []; });
    run.events.forEach(function (e, i) {
      var g = groups[e.lane], top = e.lane * LH + 4;
      var text = e.line + '\n' + Object.keys(e.f).map(function (k) { return '  ' + k + ' = ' + e.f[k]; }).join('\n');
      var node;
      if (e.ph === 'B') {
        var d = depth[e.lane];
        while (d.length && d[d.length - 1] < i) d.pop();
        var endi = ends[i] !== undefined ? ends[i] : run.events.length - 1;
        var lvl = Math.min(d.length, 3);
        d.push(endi);
        var x0 = x(e.ts), x1 = Math.max(x(run.events[endi].ts), x0 + 3);
        node = el('rect', { 'class': 'ev span', x: x0, y: top + lvl * 7, width: x1 - x0, height: 6, fill: col(e.name), 'fill-opacity': 0.75 }, g);
        if (lvl === 0 && x1 - x0 > 7 * (e.name.length + (e.f.cmd ? e.f.cmd.length + 1 : 0))) {
          el('text', { 'class': 'span-label', x: x0 + 2, y: top + 30, 'font-size': 10 }, g, e.name + (e.f.cmd ? ' ' + e.f.cmd : ''));
        }
      } else {
        node = el('rect', { 'class': 'ev tick', x: x(e.ts) - 1, y: top + (e.ph === 'E' ? 0 : 14), width: 2, height: e.ph === 'E' ? 28 : 12,
          fill: col(e.name), 'fill-opacity': e.ph === 'E' ? 0.5 : 0.9 }, g);
      }
      node.setAttribute('data-seq', e.seq);
      node.setAttribute('data-event', e.name);
      node.setAttribute('data-ph', e.ph);
      hover(node, text);
    });
    axis(lanes, run.lanes.length * LH + 2, x, t1);

    /* residency */
    html('h3', {}, sec, 'page residency (' + run.pages.length + ' pages' + (run.pages_truncated ? ', the first ' + run.pages.length + ' shown' : '') +
      '), ' + run.migrations.length + ' moves between memories');
    var leg = html('div', { 'class': 'legend' }, sec);
    run.states.forEach(function (s) {
      var sp = html('span', {}, leg); var i = html('i', {}, sp); i.style.background = COLORS[s]; sp.appendChild(document.createTextNode(s.replace('_', '-')));
    });
    var RH = run.pages.length > 200 ? 2 : run.pages.length > 60 ? 5 : 12;
    var res = el('svg', { 'class': 'residency', width: LEFT + W + 20, height: run.pages.length * RH + 24 }, sec);
    var changes = run.pages.map(function () { return []; });
    run.residency.forEach(function (c) { changes[c[0]].push(c); });
    var lastLabel = -1;
    run.pages.forEach(function (p, r) {
      var g = el('g', { 'class': 'page-row', 'data-pid': p.pid, 'data-addr': hex(p.addr) }, res);
      var y = r * RH;
      var prev = r > 0 ? run.pages[r - 1] : null;
      var newVma = !prev || prev.pid !== p.pid || prev.addr + 4096 !== p.addr;
      if (RH >= 12 || (newVma && y - lastLabel >= 12)) {
        el('text', { x: 4, y: y + Math.max(RH, 10) - 1 }, g, p.comm + '-' + p.pid + ' ' + hex(p.addr));
        lastLabel = y;
      }
      var ch = changes[r];
      ch.forEach(function (c, k) {
        var from = c[1], to = k + 1 < ch.length ? ch[k + 1][1] : t1, st = run.states[c[2]];
        var x0 = x(from), w = Math.max(x(to) - x0, 1);
        var cell = el('rect', { 'class': 'cell', x: x0, y: y, width: w, height: Math.max(RH - (RH > 4 ? 1 : 0), 1), fill: COLORS[st],
          'data-state': st, 'data-from': from, 'data-to': to }, g);
        hover(cell, p.comm + '-' + p.pid + ' page ' + hex(p.addr) + ': ' + st + ' from ' + us(from) + ' to ' + us(to));
      });
    });
    el('defs', {}, res).innerHTML = '<marker id="arrow-' + ri + '" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="5" markerHeight="5" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#000"/></marker>';
    run.migrations.forEach(function (m) {
      var y = m[0] * RH + RH / 2, xx = x(m[1]);
      var toDevice = m[3] >= 4, fromState = run.states[m[2]], toState = run.states[m[3]];
      var a = el('line', { 'class': 'migration', x1: xx - 7, y1: y + (toDevice ? -3 : 3), x2: xx + 7, y2: y + (toDevice ? 3 : -3),
        stroke: '#000', 'stroke-width': 1.2, 'marker-end': 'url(#arrow-' + ri + ')', 'data-from-state': fromState, 'data-to-state': toState }, res);
      hover(a, run.pages[m[0]].comm + '-' + run.pages[m[0]].pid + ' page ' + hex(run.pages[m[0]].addr) + ': ' + fromState + ' -> ' + toState + ' at ' + us(m[1]));
    });
    axis(res, run.pages.length * RH + 2, x, t1);

    /* counters */
    html('h3', {}, sec, 'counters over time');
    var CH = 120;
    var cs = el('svg', { 'class': 'counters', width: LEFT + W + 20, height: CH + 24 }, sec);
    run.counters.names.forEach(function (name, k) {
      var max = 1;
      run.counters.samples.forEach(function (s) { if (s[k + 1] > max) max = s[k + 1]; });
      var pts = [LEFT + ',' + CH];
      var lastv = 0;
      run.counters.samples.forEach(function (s) {
        var yy = CH - (CH - 6) * s[k + 1] / max;
        pts.push(x(s[0]) + ',' + (CH - (CH - 6) * lastv / max), x(s[0]) + ',' + yy);
        lastv = s[k + 1];
      });
      pts.push((LEFT + W) + ',' + (CH - (CH - 6) * lastv / max));
      var c = PALETTE[k % PALETTE.length];
      var line = el('polyline', { 'class': 'counter', 'data-counter': name, points: pts.join(' '), fill: 'none', stroke: c, 'stroke-width': 1.5 }, cs);
      hover(line, name + ': ' + lastv + ' at the end (scaled to its maximum)');
      el('text', { x: 4, y: 12 + k * 14, fill: c }, cs, name + ' ' + lastv).setAttribute('style', 'fill:' + c);
    });
    axis(cs, CH + 2, x, t1);
  });
  document.body.setAttribute('data-rendered', String(data.runs.length));
})();
`;

/** escape @s for HTML text */
function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/**
 * render_html() - the report page for @runs.
 * @title: the page title (the scenario named on the command line).
 */
export function render_html(title: string, runs: report_run[]): string {
  /* JSON inside <script>: no "</" may end the element early */
  const json = JSON.stringify({ runs }).replace(/<\//g, '<\\/').replace(/<!--/g, '<\\!--');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>hmm-sim: ${esc(title)}</title>
<style>${STYLE}</style>
</head>
<body>
<h1>hmm-sim: ${esc(title)}</h1>
<div class="note">simulated threads, their events and the residency of every user page over simulated time;
hover for details. Generated by <code>hmm-sim run --html</code>; nothing on this page is fetched.</div>
<div id="runs"></div>
<div id="detail"></div>
<script type="application/json" id="hmm-sim-data">${json}</script>
<script>${SCRIPT}</script>
</body></html>
`;
}
