/**
 * The script of the report page (plain browser JavaScript, kept as text: it runs in the page, not
 * in Node). It reads the JSON in `#hq-report-data` (built by `pagePayload` in ./report.ts) and
 * draws four uPlot charts; the bars, boxes and timeline bars are painted in uPlot `draw` hooks
 * on the chart's own canvas, so they share its axes, cursor, zoom and legend toggles.
 *
 * Written without template literals so that it can live in one (`String.raw`, no `${`).
 */
export const PAGE_SCRIPT = String.raw`
(() => {
  'use strict';
  const data = JSON.parse(document.getElementById('hq-report-data').textContent);
  // Running workers are solid lines, utilization dashed ones in another set of hues.
  const RUNNING_COLORS = ['#1f77b4', '#5f3dc4', '#0b7285', '#862e9c', '#364fc7'];
  const UTILIZATION_COLORS = ['#f76707', '#c2255c', '#e67700', '#ae3ec9', '#5c940d', '#d6336c'];
  const DASHES = [[7, 4], [2, 3], [10, 3, 2, 3], [4, 2]];
  const FINISHED = '#2f9e44';
  const FAILED = '#e03131';
  const OUTCOME_COLORS = {
    finished: FINISHED, failed: FAILED, canceled: '#adb5bd', aborted: '#f08c00',
    interrupted: '#845ef7', running: '#1c7ed6',
  };
  const FONT = '12px "DejaVu Sans", system-ui, sans-serif';
  const AXIS = {
    stroke: '#495057', font: FONT, labelFont: 'bold ' + FONT,
    grid: { stroke: '#e9ecef', width: 1 }, ticks: { stroke: '#ced4da', width: 1 },
  };
  const charts = [];
  const noPaths = () => null;
  const pxRatio = () => window.devicePixelRatio || 1;

  function fmtSeconds(s) {
    if (s == null || !isFinite(s)) return '-';
    if (s < 60) return (Math.round(s * 1000) / 1000) + ' s';
    if (s < 3600) return Math.floor(s / 60) + 'm ' + Math.round(s % 60) + 's';
    return Math.floor(s / 3600) + 'h ' + Math.floor((s % 3600) / 60) + 'm';
  }
  function fmtNumber(v) {
    return v == null ? '-' : String(Math.round(v * 1000) / 1000);
  }
  function widthOf(el) {
    return Math.max(360, Math.floor(el.clientWidth));
  }
  function withAlpha(hex, alpha) {
    const n = parseInt(hex.slice(1), 16);
    return 'rgba(' + (n >> 16) + ',' + ((n >> 8) & 255) + ',' + (n & 255) + ',' + alpha + ')';
  }

  function tooltip(u) {
    const tip = document.createElement('div');
    tip.className = 'hq-tooltip';
    u.over.appendChild(tip);
    return {
      show(lines, left, top) {
        tip.textContent = '';
        lines.forEach((line, i) => {
          const div = document.createElement('div');
          div.textContent = line;
          if (i === 0) div.className = 'hq-tip-head';
          tip.appendChild(div);
        });
        tip.style.display = 'block';
        const w = tip.offsetWidth;
        const h = tip.offsetHeight;
        const x = left + 14 + w > u.over.clientWidth ? Math.max(0, left - w - 14) : left + 14;
        const y = top + 14 + h > u.over.clientHeight ? Math.max(0, top - h - 14) : top + 14;
        tip.style.left = x + 'px';
        tip.style.top = y + 'px';
      },
      hide() {
        tip.style.display = 'none';
      },
    };
  }

  function clipped(u, paint) {
    const ctx = u.ctx;
    const b = u.bbox;
    ctx.save();
    ctx.beginPath();
    ctx.rect(b.left, b.top, b.width, b.height);
    ctx.clip();
    paint(ctx);
    ctx.restore();
  }

  function note(u, text) {
    const ctx = u.ctx;
    const b = u.bbox;
    ctx.save();
    ctx.fillStyle = '#868e96';
    ctx.font = Math.round(14 * pxRatio()) + 'px "DejaVu Sans", sans-serif';
    ctx.textAlign = 'center';
    ctx.textBaseline = 'middle';
    ctx.fillText(text, b.left + b.width / 2, b.top + b.height / 2);
    ctx.restore();
  }

  function categoryAxis(names) {
    return Object.assign({}, AXIS, {
      grid: { show: false },
      splits: () => names.map((_, i) => i),
      values: (u, splits) => splits.map((i) => names[i] || ''),
    });
  }

  function make(id, height, build) {
    const el = document.getElementById(id);
    try {
      const made = build(el, widthOf(el), height);
      charts.push({ el, u: made, height });
    } catch (error) {
      el.textContent = 'Cannot draw this chart: ' + error;
      el.className += ' chart-error';
      throw error;
    }
  }

  // 1. Queued and running workers, and utilization, as step lines.
  function globalChart(el, width, height) {
    const g = data.global;
    const stepped = uPlot.paths.stepped({ align: 1 });
    const series = [{ label: 'Time', value: (u, v) => fmtSeconds(v) }];
    let running = 0;
    let utilization = 0;
    g.series.forEach((s) => {
      const opts = { label: s.name, width: 2, paths: stepped, points: { show: false },
        value: (u, v) => fmtNumber(v) };
      if (s.kind === 'queued') {
        opts.stroke = '#343a40';
        opts.fill = 'rgba(73, 80, 87, 0.07)';
      } else if (s.kind === 'running') {
        opts.stroke = RUNNING_COLORS[running++ % RUNNING_COLORS.length];
      } else {
        opts.stroke = UTILIZATION_COLORS[utilization % UTILIZATION_COLORS.length];
        opts.dash = DASHES[Math.floor(utilization / UTILIZATION_COLORS.length) % DASHES.length];
        utilization++;
      }
      series.push(opts);
    });
    let top = 1;
    g.series.forEach((s) => s.values.forEach((v) => { if (v != null && v > top) top = v; }));
    return new uPlot({
      width, height, series,
      scales: { x: { time: false }, y: { range: () => [0, top * 1.12] } },
      axes: [
        Object.assign({}, AXIS, { label: 'seconds since server start' }),
        Object.assign({}, AXIS, { label: 'workers' }),
      ],
      cursor: { drag: { x: true, y: false } },
      legend: { live: true },
    }, [g.x].concat(g.series.map((s) => s.values)), el);
  }

  // 2. Finished and failed tasks per class, as grouped bars.
  function countsChart(el, width, height) {
    const cls = data.classes;
    const names = cls.length ? cls.map((c) => c.name) : [''];
    const fin = cls.length ? cls.map((c) => c.finished) : [null];
    const fail = cls.length ? cls.map((c) => c.failed) : [null];
    const top = Math.max(1, ...fin.map(Number), ...fail.map(Number));
    let tip = null;
    const u = new uPlot({
      width, height,
      series: [
        { label: 'Class', value: (u, v) => (v == null ? '-' : names[v]) },
        { label: 'Finished', stroke: FINISHED, fill: FINISHED, paths: noPaths, points: { show: false } },
        { label: 'Failed', stroke: FAILED, fill: FAILED, paths: noPaths, points: { show: false } },
      ],
      scales: {
        x: { time: false, range: () => [-0.5, names.length - 0.5] },
        y: { range: () => [0, top * 1.15] },
      },
      axes: [categoryAxis(names), Object.assign({}, AXIS, { label: 'tasks' })],
      cursor: { drag: { x: false, y: false }, points: { show: false }, y: false },
      legend: { live: false },
      hooks: {
        draw: [(u) => {
          if (!cls.length) { note(u, 'No task finished or failed in this time range'); return; }
          const r = pxRatio();
          const slot = u.valToPos(1, 'x', true) - u.valToPos(0, 'x', true);
          const w = Math.min(slot * 0.34, 90 * r);
          const y0 = u.valToPos(0, 'y', true);
          clipped(u, (ctx) => {
            ctx.font = Math.round(11 * r) + 'px "DejaVu Sans", sans-serif';
            ctx.textAlign = 'center';
            ctx.textBaseline = 'bottom';
            [fin, fail].forEach((values, k) => {
              if (!u.series[k + 1].show) return;
              const color = k === 0 ? FINISHED : FAILED;
              values.forEach((v, i) => {
                const cx = u.valToPos(i, 'x', true) + (k === 0 ? -w / 2 - r : w / 2 + r);
                const y = u.valToPos(v, 'y', true);
                ctx.fillStyle = color;
                ctx.fillRect(cx - w / 2, y, w, Math.max(v > 0 ? r : 0, y0 - y));
                ctx.fillStyle = '#343a40';
                ctx.fillText(String(v), cx, y - 2 * r);
              });
            });
          });
        }],
        ready: [(u) => { tip = tooltip(u); }],
        setCursor: [(u) => {
          const i = u.cursor.idx;
          if (!tip) return;
          if (i == null || !cls[i] || u.cursor.left < 0) { tip.hide(); return; }
          tip.show([cls[i].name + ' = ' + cls[i].label, 'finished: ' + cls[i].finished,
            'failed: ' + cls[i].failed], u.cursor.left, u.cursor.top);
        }],
      },
    }, [names.map((_, i) => i), fin, fail], el);
    return u;
  }

  // 3. Durations per class, as box plots (finished left, failed right).
  function durationsChart(el, width, height) {
    const cls = data.classes;
    const names = cls.length ? cls.map((c) => c.name) : [''];
    let top = 0;
    cls.forEach((c) => c.boxes.forEach((b) => { if (b && b.max > top) top = b.max; }));
    top = top > 0 ? top * 1.1 : 1;
    const medians = (k) => (cls.length ? cls.map((c) => (c.boxes[k] ? c.boxes[k].median : null)) : [null]);
    let tip = null;
    const u = new uPlot({
      width, height,
      series: [
        { label: 'Class', value: (u, v) => (v == null ? '-' : names[v]) },
        { label: 'Finished', stroke: FINISHED, fill: withAlpha(FINISHED, 0.3), paths: noPaths, points: { show: false } },
        { label: 'Failed', stroke: FAILED, fill: withAlpha(FAILED, 0.3), paths: noPaths, points: { show: false } },
      ],
      scales: {
        x: { time: false, range: () => [-0.5, names.length - 0.5] },
        y: { range: () => [0, top] },
      },
      axes: [
        categoryAxis(names),
        Object.assign({}, AXIS, { label: 'seconds', values: (u, splits) => splits.map((s) => fmtSeconds(s)), size: 70 }),
      ],
      cursor: { drag: { x: false, y: false }, points: { show: false } },
      legend: { live: false },
      hooks: {
        draw: [(u) => {
          if (!cls.length) { note(u, 'No task finished or failed in this time range'); return; }
          const r = pxRatio();
          const slot = u.valToPos(1, 'x', true) - u.valToPos(0, 'x', true);
          const w = Math.min(slot * 0.3, 70 * r);
          const y = (v) => u.valToPos(v, 'y', true);
          clipped(u, (ctx) => {
            cls.forEach((c, i) => {
              c.boxes.forEach((b, k) => {
                if (!b || !u.series[k + 1].show) return;
                const color = k === 0 ? FINISHED : FAILED;
                const cx = u.valToPos(i, 'x', true) + (k === 0 ? -1 : 1) * (w / 2 + 3 * r);
                ctx.strokeStyle = color;
                ctx.lineWidth = 1.5 * r;
                ctx.beginPath();
                ctx.moveTo(cx, y(b.whiskerLow)); ctx.lineTo(cx, y(b.q1));
                ctx.moveTo(cx, y(b.q3)); ctx.lineTo(cx, y(b.whiskerHigh));
                ctx.moveTo(cx - w / 4, y(b.whiskerLow)); ctx.lineTo(cx + w / 4, y(b.whiskerLow));
                ctx.moveTo(cx - w / 4, y(b.whiskerHigh)); ctx.lineTo(cx + w / 4, y(b.whiskerHigh));
                ctx.stroke();
                const boxTop = y(b.q3);
                const boxHeight = Math.max(2 * r, y(b.q1) - boxTop);
                ctx.fillStyle = withAlpha(color, 0.25);
                ctx.fillRect(cx - w / 2, boxTop, w, boxHeight);
                ctx.strokeRect(cx - w / 2, boxTop, w, boxHeight);
                ctx.lineWidth = 3 * r;
                ctx.beginPath();
                ctx.moveTo(cx - w / 2, y(b.median)); ctx.lineTo(cx + w / 2, y(b.median));
                ctx.stroke();
                ctx.fillStyle = color;
                b.outliers.forEach((o) => {
                  ctx.beginPath();
                  ctx.arc(cx, y(o), 2.5 * r, 0, 2 * Math.PI);
                  ctx.fill();
                });
              });
            });
          });
        }],
        ready: [(u) => { tip = tooltip(u); }],
        setCursor: [(u) => {
          const i = u.cursor.idx;
          if (!tip) return;
          if (i == null || !cls[i] || u.cursor.left < 0) { tip.hide(); return; }
          const k = u.posToVal(u.cursor.left, 'x') < i ? 0 : 1;
          const b = cls[i].boxes[k];
          const what = cls[i].name + ' ' + (k === 0 ? 'finished' : 'failed') + ' (' + cls[i].label + ')';
          if (!b) { tip.show([what, 'no runs'], u.cursor.left, u.cursor.top); return; }
          tip.show([what, 'runs: ' + b.n, 'min: ' + fmtSeconds(b.min), 'q1: ' + fmtSeconds(b.q1),
            'median: ' + fmtSeconds(b.median), 'q3: ' + fmtSeconds(b.q3), 'max: ' + fmtSeconds(b.max)],
          u.cursor.left, u.cursor.top);
        }],
      },
    }, [names.map((_, i) => i), medians(0), medians(1)], el);
    return u;
  }

  // 4. One row per worker, one bar per run of a task on it.
  const tl = data.timeline;
  const rowCount = Math.max(1, tl.rows.length);
  const maxLanes = tl.rows.reduce((m, r) => Math.max(m, r.lanes), 1);
  const rowHeight = Math.max(30, Math.min(72, maxLanes * 14 + 10));
  const ROW_PAD = 0.12;

  function timelineChart(el, width, height) {
    const rows = tl.rows;
    const n = rowCount;
    const byRow = rows.map(() => []);
    tl.bars.forEach((b) => byRow[b[0]].push(b));
    const used = tl.outcomes.filter((o, i) => tl.bars.some((b) => b[4] === i));
    const shown = used.length ? used : ['finished', 'failed'];
    const labelWidth = rows.reduce((m, r) => Math.max(m, r.label.length), 6) * 7 + 24;
    const bandTop = (i) => n - i;
    let tip = null;
    const series = [{ label: 'Time' }].concat(shown.map((o) => ({
      label: o, stroke: OUTCOME_COLORS[o], fill: OUTCOME_COLORS[o], paths: noPaths, points: { show: false },
    })));
    const u = new uPlot({
      width, height, series,
      scales: { x: { time: false }, y: { range: () => [0, n] } },
      axes: [
        Object.assign({}, AXIS, { label: 'seconds since server start' }),
        Object.assign({}, AXIS, {
          grid: { show: false }, size: Math.min(260, labelWidth),
          splits: () => rows.map((_, i) => n - i - 0.5),
          values: (u, splits) => splits.map((v) => {
            const row = rows[Math.round(n - v - 0.5)];
            return row ? row.label : '';
          }),
        }),
      ],
      cursor: { drag: { x: true, y: false }, points: { show: false } },
      legend: { live: false },
      hooks: {
        draw: [(u) => {
          if (!rows.length) { note(u, 'No worker connected'); return; }
          const r = pxRatio();
          clipped(u, (ctx) => {
            rows.forEach((row, i) => {
              const y0 = u.valToPos(bandTop(i), 'y', true);
              const y1 = u.valToPos(bandTop(i) - 1, 'y', true);
              if (i % 2 === 1) {
                ctx.fillStyle = '#f8f9fa';
                ctx.fillRect(u.bbox.left, y0, u.bbox.width, y1 - y0);
              }
              const pad = (y1 - y0) * ROW_PAD;
              const laneHeight = (y1 - y0 - 2 * pad) / row.lanes;
              byRow[i].forEach((b) => {
                const outcome = tl.outcomes[b[4]];
                const k = shown.indexOf(outcome);
                if (k >= 0 && !u.series[k + 1].show) return;
                const x0 = u.valToPos(b[2], 'x', true);
                const x1 = u.valToPos(b[3], 'x', true);
                const top = y0 + pad + b[1] * laneHeight;
                const h = Math.max(1, laneHeight - Math.min(2 * r, laneHeight * 0.2));
                ctx.fillStyle = OUTCOME_COLORS[outcome];
                ctx.fillRect(x0, top, Math.max(r, x1 - x0 - r), h);
                if (b[8] > 1) {
                  ctx.strokeStyle = '#212529';
                  ctx.lineWidth = r;
                  ctx.strokeRect(x0, top, Math.max(r, x1 - x0 - r), h);
                }
              });
              ctx.strokeStyle = '#dee2e6';
              ctx.lineWidth = r;
              ctx.beginPath();
              ctx.moveTo(u.bbox.left, y1);
              ctx.lineTo(u.bbox.left + u.bbox.width, y1);
              ctx.stroke();
            });
          });
        }],
        ready: [(u) => { tip = tooltip(u); }],
        setCursor: [(u) => {
          if (!tip) return;
          const left = u.cursor.left;
          const top = u.cursor.top;
          if (left == null || left < 0 || !rows.length) { tip.hide(); return; }
          const xv = u.posToVal(left, 'x');
          const yv = u.posToVal(top, 'y');
          const i = Math.floor(n - yv);
          const row = rows[i];
          if (!row) { tip.hide(); return; }
          const within = (n - i) - yv;
          const lane = Math.floor((within - ROW_PAD) / ((1 - 2 * ROW_PAD) / row.lanes));
          const slack = Math.abs(u.posToVal(left + 3, 'x') - xv);
          const hit = byRow[i].find((b) => b[1] === lane && b[2] - slack <= xv && xv <= b[3] + slack);
          if (!hit) { tip.hide(); return; }
          const lines = ['job ' + hit[5] + ', task ' + hit[6] + (hit[7] > 0 ? ' (instance ' + hit[7] + ')' : ''),
            tl.outcomes[hit[4]] + ', ' + fmtSeconds(hit[3] - hit[2]),
            'from ' + fmtSeconds(hit[2]) + ' to ' + fmtSeconds(hit[3]), row.title];
          if (hit[8] > 1) lines.push('multi-node task on ' + hit[8] + ' workers');
          tip.show(lines, left, top);
        }],
      },
    }, [[data.xMin, data.xMax]].concat(shown.map(() => [null, null])), el);
    return u;
  }

  const failures = [];
  [
    ['globalChart', 340, globalChart],
    ['countsChart', 300, countsChart],
    ['durationsChart', 320, durationsChart],
    ['timelineChart', 80 + rowCount * rowHeight, timelineChart],
  ].forEach(([id, height, build]) => {
    try { make(id, height, build); } catch (error) { failures.push(error); }
  });
  window.addEventListener('resize', () => {
    charts.forEach((c) => c.u.setSize({ width: widthOf(c.el), height: c.height }));
  });
  document.body.setAttribute('data-charts', String(charts.length));
  if (failures.length) throw failures[0];
})();
`;
