/**
 * The web dashboard's page: HTML, style and a plain browser script (kept as text; it runs in the
 * page, not in Node, and is written without template literals so it can live in `String.raw`).
 * It fetches the views of a time window (/api/snapshot, /api/timeline), redraws when the server
 * says the model changed (Server-Sent Events on /events), and moves the window with buttons.
 * Charts: uPlot for the counts over time; the per-worker task timeline, the CPU load over time
 * (worker x time heatmap) and the per-core load are drawn on canvases and in cells by the script
 * itself. No external resource is loaded.
 */
export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>HyperQueue dashboard</title>
<link rel="stylesheet" href="/app.css">
<script src="/uplot.js" defer></script>
<script src="/app.js" defer></script>
</head>
<body>
<header>
  <h1>HyperQueue</h1>
  <span id="mode"></span>
  <span id="window"></span>
  <nav>
    <button id="earlier" title="a quarter earlier">&larr;</button>
    <button id="later" title="a quarter later">&rarr;</button>
    <button id="zoomIn" title="half the window">+</button>
    <button id="zoomOut" title="twice the window">&minus;</button>
    <button id="live" title="back to live">live</button>
  </nav>
</header>
<main>
  <section id="totals"></section>
  <section><h2>Tasks over time</h2><div id="countsChart"></div></section>
  <section><h2>Workers</h2><table id="workers"><thead><tr><th>ID</th><th>Hostname</th><th>Status</th><th>Running</th><th>CPU</th><th>Memory</th><th>Cores</th></tr></thead><tbody></tbody></table></section>
  <section><h2>Jobs</h2><table id="jobs"><thead><tr><th>ID</th><th>Name</th><th>Progress</th><th>Waiting</th><th>Running</th><th>Finished</th><th>Failed</th><th>Canceled</th></tr></thead><tbody></tbody></table></section>
  <section><h2>Task timeline <small id="timelineNote"></small></h2><canvas id="timeline" width="1200" height="200"></canvas></section>
  <section><h2>CPU load over time</h2><canvas id="heatmap" width="1200" height="60"></canvas></section>
  <section id="workerDetail" hidden><h2 id="workerTitle"></h2><canvas id="coreHeatmap" width="1200" height="60"></canvas></section>
</main>
</body>
</html>
`;

export const PAGE_STYLE = `
body { font: 13px "DejaVu Sans", system-ui, sans-serif; margin: 0; color: #212529; background: #f8f9fa; }
header { display: flex; gap: 16px; align-items: center; padding: 8px 16px; background: #343a40; color: #fff; }
header h1 { font-size: 16px; margin: 0; }
header nav { margin-left: auto; display: flex; gap: 4px; }
button { font: inherit; padding: 2px 10px; }
main { padding: 8px 16px; }
section { background: #fff; border: 1px solid #dee2e6; border-radius: 4px; margin: 8px 0; padding: 8px; }
h2 { font-size: 14px; margin: 0 0 6px; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 2px 8px; border-bottom: 1px solid #f1f3f5; white-space: nowrap; }
.bar { display: inline-block; width: 120px; height: 10px; background: #e9ecef; vertical-align: middle; }
.bar > span { display: block; height: 100%; }
.progress { display: flex; width: 200px; height: 10px; background: #e9ecef; }
.progress > span { display: block; height: 100%; }
.core { display: inline-block; width: 9px; height: 12px; margin-right: 1px; }
.online { color: #2b8a3e; } .offline { color: #868e96; }
#totals span { margin-right: 18px; }
#workers tbody tr { cursor: pointer; }
#workers tbody tr.selected { background: #e7f5ff; }
canvas { width: 100%; }
`;

export const PAGE_SCRIPT = String.raw`
(() => {
  'use strict';
  const MIN = 60000, MAX = 7 * 24 * 3600000;
  let mode = 'stream';
  let live = true;
  let span = 10 * 60000;
  let to = Date.now();
  let chart = null;
  let busy = false, again = false;
  let selected = null;
  const $ = (id) => document.getElementById(id);
  const fmt = (t) => t === null || t === undefined ? '' : new Date(t).toLocaleTimeString();
  const pct = (f) => f === null ? '-' : Math.round(f * 100) + '%';
  const colour = (f) => f <= 0.5 ? '#40c057' : f <= 0.7 ? '#fab005' : '#fa5252';
  const el = (tag, attrs, children) => {
    const e = document.createElement(tag);
    for (const k in attrs || {}) { if (k === 'text') e.textContent = attrs[k]; else e.setAttribute(k, attrs[k]); }
    for (const c of children || []) e.appendChild(c);
    return e;
  };
  const bar = (f) => {
    const inner = el('span');
    inner.style.width = ((f || 0) * 100) + '%';
    inner.style.background = colour(f || 0);
    const outer = el('span', { class: 'bar', title: pct(f) }, [inner]);
    return el('td', {}, [outer, document.createTextNode(' ' + pct(f))]);
  };
  let spanChosen = false;
  const query = () => live ? (spanChosen ? '?span=' + span : '') : '?from=' + (to - span) + '&to=' + to;

  async function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    try {
      const [snap, line, heat, cores] = await Promise.all([
        fetch('/api/snapshot' + query()).then((r) => r.json()),
        fetch('/api/timeline' + query()).then((r) => r.json()),
        fetch('/api/heatmap' + query()).then((r) => r.json()),
        selected === null ? null : fetch('/api/cores' + query() + (query() ? '&' : '?') + 'worker=' + selected)
          .then((r) => r.ok ? r.json() : null),
      ]);
      mode = snap.mode;
      if (live) { to = snap.to; span = snap.to - snap.from; }
      draw(snap, line);
      drawHeatmap(heat);
      drawCores(cores);
    } finally {
      busy = false;
      if (again) { again = false; refresh(); }
    }
  }

  function draw(snap, line) {
    $('mode').textContent = '[' + snap.mode + ']';
    $('window').textContent = fmt(snap.from) + ' - ' + fmt(snap.to);
    $('live').disabled = snap.mode === 'replay' || live;
    const t = snap.totals;
    $('totals').replaceChildren(...['waiting', 'running', 'finished', 'failed', 'canceled', 'aborted'].map((k) =>
      el('span', { text: k + ': ' + t[k], 'data-count': k })));
    const wbody = $('workers').tBodies[0];
    wbody.replaceChildren(...snap.workers.map((w) => {
      const cores = el('td');
      for (const c of w.cores) {
        const cell = el('span', { class: 'core', title: Math.round(c) + '%' });
        cell.style.background = colour(c / 100);
        cell.style.opacity = String(0.25 + 0.75 * Math.min(1, c / 100));
        cores.appendChild(cell);
      }
      const row = el('tr', { 'data-worker': String(w.id), class: w.id === selected ? 'selected' : '' }, [
        el('td', { text: String(w.id) }), el('td', { text: w.hostname }),
        el('td', { text: w.status, class: w.status === 'online' ? 'online' : 'offline' }),
        el('td', { text: String(w.running) }), bar(w.cpu), bar(w.mem), cores]);
      row.onclick = () => { selected = selected === w.id ? null : w.id; refresh(); };
      return row;
    }));
    const jbody = $('jobs').tBodies[0];
    jbody.replaceChildren(...snap.jobs.map((j) => {
      const c = j.counts;
      const prog = el('div', { class: 'progress', title: c.finished + '/' + j.total });
      const parts = [[c.finished, '#40c057'], [c.failed + c.canceled + c.aborted, '#fa5252'], [c.running, '#fab005']];
      for (const [n, col] of parts) {
        const s = el('span');
        s.style.width = (j.total > 0 ? 100 * n / j.total : 0) + '%';
        s.style.background = col;
        prog.appendChild(s);
      }
      return el('tr', { 'data-job': String(j.id) }, [el('td', { text: String(j.id) }), el('td', { text: j.name }),
        el('td', {}, [prog]), el('td', { text: String(c.waiting) }), el('td', { text: String(c.running) }),
        el('td', { text: String(c.finished) }), el('td', { text: String(c.failed) }), el('td', { text: String(c.canceled) })]);
    }));
    drawChart(snap);
    drawTimeline(snap, line);
  }

  function drawChart(snap) {
    const data = [snap.times.map((x) => x / 1000), snap.counts.waiting, snap.counts.running,
      snap.counts.finished, snap.counts.failed, snap.workerCount];
    if (chart === null) {
      chart = new uPlot({
        width: Math.max(400, $('countsChart').clientWidth || 900), height: 220,
        series: [{}, { label: 'waiting', stroke: '#868e96' }, { label: 'running', stroke: '#fab005' },
          { label: 'finished', stroke: '#40c057' }, { label: 'failed', stroke: '#fa5252' },
          { label: 'workers', stroke: '#228be6', scale: 'w' }],
        axes: [{}, {}, { scale: 'w', side: 1, grid: { show: false } }],
      }, data, $('countsChart'));
    } else {
      chart.setData(data);
    }
  }

  function drawTimeline(snap, line) {
    const canvas = $('timeline');
    const lanes = [];
    for (const w of line.workers) {
      // A lane per CPU that an overview named for a run; runs with no known CPUs are packed
      // into as few further lanes as overlap needs.
      const byCpu = new Map();
      const ends = [];
      const rows = [];
      for (const r of w.runs) {
        const run = Object.assign({}, r, { end: r.end === null ? snap.to : r.end, open: r.end === null });
        if (r.cpus !== null && r.cpus.length > 0) {
          for (const c of r.cpus) {
            if (!byCpu.has(c)) byCpu.set(c, []);
            byCpu.get(c).push(run);
          }
          continue;
        }
        let lane = ends.findIndex((e) => e <= run.start);
        if (lane < 0) { lane = ends.length; ends.push(0); rows.push([]); }
        ends[lane] = run.end;
        rows[lane].push(run);
      }
      const named = [...byCpu.keys()].sort((a, b) => a - b).map((c) => ({ cpu: 'cpu ' + c, runs: byCpu.get(c) }));
      const packed = rows.map((row) => ({ cpu: '', runs: row }));
      const all = named.concat(packed);
      if (all.length === 0) all.push({ cpu: '', runs: [] });
      all.forEach((lane, i) => lanes.push({
        label: (i === 0 ? w.id + ' ' + w.hostname + ' ' : '') + lane.cpu, runs: lane.runs, cpuLane: lane.cpu !== '' }));
    }
    const laneH = 14, left = 140, width = canvas.clientWidth || 1200;
    canvas.width = width;
    canvas.height = Math.max(40, lanes.length * laneH + 10);
    const ctx = canvas.getContext('2d');
    ctx.font = '11px "DejaVu Sans", sans-serif';
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    const x = (t) => left + (width - left - 4) * (t - snap.from) / Math.max(1, snap.to - snap.from);
    const palette = ['#4dabf7', '#69db7c', '#ffa94d', '#da77f2', '#ff8787', '#3bc9db'];
    let drawn = 0;
    lanes.forEach((lane, i) => {
      const y = 4 + i * laneH;
      ctx.fillStyle = '#495057';
      ctx.fillText(lane.label, 4, y + 10);
      for (const r of lane.runs) {
        const a = Math.max(left, x(r.start)), b = Math.max(a + 1, Math.min(width - 4, x(r.end)));
        ctx.fillStyle = palette[r.job % palette.length];
        ctx.fillRect(a, y, b - a, laneH - 3);
        drawn++;
      }
    });
    canvas.setAttribute('data-runs', String(drawn));
    canvas.setAttribute('data-cpu-lanes', String(lanes.filter((l) => l.cpuLane).length));
    $('timelineNote').textContent = line.truncated ? '(the latest runs only)' : '';
  }

  /**
   * Draws rows of 0-1 loads over time on a canvas: each row a label (with its colour) and a
   * cell per time slice (none where a slice had no overview).
   */
  function drawHeatRows(canvas, rows, rowH, fontPx) {
    const left = 140, width = canvas.clientWidth || 1200;
    canvas.width = width;
    canvas.height = Math.max(20, rows.length * rowH + 6);
    const ctx = canvas.getContext('2d');
    ctx.font = fontPx + 'px "DejaVu Sans", sans-serif';
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    let cells = 0;
    rows.forEach((row, i) => {
      const y = 3 + i * rowH;
      ctx.fillStyle = row.labelColour;
      ctx.fillText(row.label, 4, y + fontPx - 1);
      const cellW = (width - left - 4) / Math.max(1, row.load.length);
      row.load.forEach((v, j) => {
        if (v === null) return;
        ctx.fillStyle = colour(v);
        ctx.globalAlpha = 0.25 + 0.75 * Math.min(1, v);
        ctx.fillRect(left + j * cellW, y, Math.max(1, cellW - 1), rowH - 3);
        ctx.globalAlpha = 1;
        cells++;
      });
    });
    canvas.setAttribute('data-cells', String(cells));
  }

  function drawHeatmap(heat) {
    drawHeatRows($('heatmap'), heat.workers.map((w) =>
      ({ label: w.id + ' ' + w.hostname, labelColour: '#495057', load: w.load })), 14, 11);
  }

  function drawCores(view) {
    const section = $('workerDetail');
    if (view === null) { section.hidden = true; return; }
    section.hidden = false;
    $('workerTitle').textContent = 'Worker ' + view.id + ' ' + view.hostname + ': load per core over time';
    const managed = view.managed === null ? null : new Set(view.managed);
    drawHeatRows($('coreHeatmap'), view.cores.map((load, core) => {
      const own = managed === null || managed.has(core);
      return { label: 'cpu ' + core + (own ? '' : ' (other)'), labelColour: own ? '#495057' : '#ae3ec9', load };
    }), 11, 9);
    $('coreHeatmap').setAttribute('data-worker', String(view.id));
  }

  const move = (f) => { live = false; f(); refresh(); };
  $('earlier').onclick = () => move(() => { to -= span / 4; });
  $('later').onclick = () => move(() => { to = Math.min(Date.now(), to + span / 4); });
  // Live, a zoom keeps the window ending now; otherwise it keeps the window's middle.
  const zoom = (f) => {
    if (live) { span = Math.min(MAX, Math.max(MIN, span * f)); spanChosen = true; refresh(); return; }
    move(() => { const m = to - span / 2; span = Math.min(MAX, Math.max(MIN, span * f)); to = m + span / 2; });
  };
  $('zoomIn').onclick = () => zoom(0.5);
  $('zoomOut').onclick = () => zoom(2);
  $('live').onclick = () => { live = true; refresh(); };
  const events = new EventSource('/events');
  events.addEventListener('change', () => { if (live || mode === 'replay') refresh(); });
  setInterval(() => { if (live && mode === 'stream') refresh(); }, 2000);
  refresh();
})();
`;
