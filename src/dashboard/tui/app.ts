/**
 * The terminal dashboard's screens (Jobs, AutoAllocator, Workers, worker detail) and keys, as a
 * pure function of the model, the time window and the selection: `render` returns the lines of
 * one frame, `key` changes the view. No terminal here (terminal.ts draws), so a frame can be
 * checked as text.
 *
 * Invariant: a frame reads only what it shows (task rows by position, counts sampled from step
 * series), so its cost does not depend on the number of tasks.
 */
import {
  clockTime,
  formatSpan,
  bounds,
  describeRange,
  earlier,
  later,
  liveRange,
  zoomIn,
  zoomOut,
} from '../time-range.js';
import type { TimeRange } from '../time-range.js';
import type { DashboardModel, JobView, WorkerView } from '../model.js';
import {
  bold,
  box,
  cyan,
  dim,
  green,
  lightBlue,
  magenta,
  fit,
  inverse,
  progressBar,
  red,
  sideBySide,
  sparkline,
  table,
  usageBar,
  yellow,
} from './widgets.js';

export type Screen = 'jobs' | 'alloc' | 'workers';
/**
 * Which cores the worker detail lists: those the worker manages, those its running tasks hold,
 * or every core of the node (only offered when the worker manages a part of it).
 */
export type CpuView = 'managed' | 'assigned' | 'global';
export type Mode = 'stream' | 'replay';

export interface AppState {
  screen: Screen;
  mode: Mode;
  range: TimeRange;
  /** Worker shown in detail (null: none). */
  detail: number | null;
  jobRow: number;
  taskRow: number;
  workerRow: number;
  queueRow: number;
  allocRow: number;
  /** Which table of a screen the arrows move in. */
  focus: 1 | 2;
  /** Shown until any key: why history may be partial. */
  popup: string | null;
  cpuView: CpuView;
  /** First line of the worker detail's CPU table shown. */
  cpuScroll: number;
}

export function initialState(mode: Mode, range: TimeRange = liveRange()): AppState {
  return {
    screen: 'jobs',
    mode,
    range,
    detail: null,
    jobRow: 0,
    taskRow: 0,
    workerRow: 0,
    queueRow: 0,
    allocRow: 0,
    focus: 1,
    popup: null,
    cpuView: 'managed',
    cpuScroll: 0,
  };
}

/** What the last frame listed, so that keys can act on the selected row. */
interface Listing {
  jobs: JobView[];
  workers: WorkerView[];
  taskWorkers: number[];
  /** The CPU views the shown worker detail offers, and its CPU table's line count. */
  cpuViews: CpuView[];
  cpuLines: number;
}

const listings = new WeakMap<AppState, Listing>();

function clock(t: number | null): string {
  return t === null || !Number.isFinite(t) ? '' : clockTime(t);
}

function wrap(index: number, delta: number, count: number): number {
  return count === 0 ? 0 : (((index + delta) % count) + count) % count;
}

/** Applies key `name` (readline's key names); returns false when the app should quit. */
export function key(state: AppState, name: string, now: number): boolean {
  if (state.popup !== null) {
    state.popup = null;
    return true;
  }
  const listing = listings.get(state);
  switch (name) {
    case 'q':
      return false;
    case 'j':
    case 'a':
    case 'w':
      state.screen = name === 'j' ? 'jobs' : name === 'a' ? 'alloc' : 'workers';
      state.detail = null;
      state.focus = 1;
      return true;
    case 'o':
      state.range = earlier(state.range, now);
      return true;
    case 'p':
      state.range = later(state.range, now);
      return true;
    case 'k':
      state.range = zoomIn(state.range, now);
      return true;
    case 'l':
      state.range = zoomOut(state.range, now);
      return true;
    case 'r':
      if (state.mode === 'stream') {
        state.range = liveRange();
      }
      return true;
    case '1':
    case '2':
      state.focus = name === '1' ? 1 : 2;
      return true;
    case 'escape':
      state.queueRow = 0;
      state.focus = 1;
      return true;
    case 'backspace':
      state.detail = null;
      state.cpuScroll = 0;
      return true;
    case 'c': {
      if (state.detail !== null) {
        const views = listing?.cpuViews ?? ['managed', 'assigned'];
        state.cpuView = views[wrap(views.indexOf(state.cpuView), 1, views.length)] ?? 'managed';
        state.cpuScroll = 0;
      }
      return true;
    }
    case 'i':
      if (state.screen === 'workers') {
        state.detail = listing?.workers[state.workerRow]?.id ?? null;
      } else if (state.screen === 'jobs' && state.focus === 2) {
        const worker = listing?.taskWorkers[state.taskRow];
        state.detail = worker !== undefined && worker > 0 ? worker : null;
      }
      return true;
    case 'up':
    case 'down': {
      const d = name === 'up' ? -1 : 1;
      if (state.detail !== null) {
        state.cpuScroll = Math.min(Math.max(0, state.cpuScroll + d), (listing?.cpuLines ?? 1) - 1);
      } else if (state.screen === 'workers') {
        state.workerRow = wrap(state.workerRow, d, listing?.workers.length ?? 0);
      } else if (state.screen === 'jobs') {
        if (state.focus === 1) {
          state.jobRow = wrap(state.jobRow, d, listing?.jobs.length ?? 0);
          state.taskRow = 0;
        } else {
          const job = listing?.jobs[state.jobRow];
          state.taskRow = wrap(state.taskRow, d, job?.tasks.size ?? 0);
        }
      } else if (state.focus === 1) {
        state.queueRow = Math.max(0, state.queueRow + d);
      } else {
        state.allocRow = Math.max(0, state.allocRow + d);
      }
      return true;
    }
    default:
      return true;
  }
}

function header(state: AppState, now: number, width: number): string[] {
  const tab = (s: Screen, label: string): string => {
    const text = yellow(label[0]!) + label.slice(1);
    return state.screen === s && state.detail === null ? bold(`[${text}${bold(']')}`) : ` ${text} `;
  };
  const tabs = [tab('jobs', 'Jobs'), tab('alloc', 'AutoAllocator'), tab('workers', 'Workers')].join(
    '|',
  );
  const where = `${describeRange(state.range, now)} [${state.mode}]`;
  const hints = dim(
    state.detail === null
      ? 'q quit  j/a/w screens  o/p move  k/l zoom  r live  ↑↓ select  i detail'
      : 'q quit  j/a/w screens  o/p move  k/l zoom  r live  ↑↓ scroll  c CPU view  Backspace back',
  );
  return [fit(`${tabs}  ${cyan(where)}`, width), fit(hints, width)];
}

/** The lines of one frame of `width` x `height`. */
export function render(
  model: DashboardModel,
  state: AppState,
  now: number,
  width: number,
  height: number,
): string[] {
  const listing: Listing = { jobs: [], workers: [], taskWorkers: [], cpuViews: [], cpuLines: 0 };
  listings.set(state, listing);
  const [from, to] = bounds(state.range, now);
  const body = height - 2;
  let lines: string[];
  if (state.detail !== null) {
    lines = workerDetail(model, state, listing, from, to, width, body);
  } else if (state.screen === 'workers') {
    lines = workersScreen(model, state, listing, from, to, width, body);
  } else if (state.screen === 'alloc') {
    lines = allocScreen(model, state, to, width, body);
  } else {
    lines = jobsScreen(model, state, listing, from, to, width, body);
  }
  const frame = [...header(state, now, width), ...lines];
  if (state.popup !== null) {
    const w = Math.min(width - 4, 80);
    const text = wrapText(state.popup, w - 4);
    const popup = box(red('Warning'), [...text, '', dim('Press any key')], w, text.length + 4);
    const top = Math.max(2, Math.floor((height - popup.length) / 2));
    popup.forEach((l, i) => {
      frame[top + i] = fit(' '.repeat(2) + l, width);
    });
  }
  while (frame.length < height) {
    frame.push(fit('', width));
  }
  return frame.slice(0, height).map((l) => fit(l, width));
}

function wrapText(text: string, width: number): string[] {
  const out: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line !== '' && line.length + 1 + word.length > width) {
      out.push(line);
      line = word;
    } else {
      line = line === '' ? word : `${line} ${word}`;
    }
  }
  if (line !== '') {
    out.push(line);
  }
  return out;
}

function workersScreen(
  model: DashboardModel,
  state: AppState,
  listing: Listing,
  from: number,
  to: number,
  width: number,
  height: number,
): string[] {
  const samples = Math.max(1, width - 16);
  const counts = model.workerCount.sample(from, to, samples);
  const chart = box(
    'Running Worker Count',
    [`${sparkline(counts, Math.max(4, ...counts))}  now ${model.workerCount.at(to)}`],
    width,
    3,
  );
  const workers = [...model.workers.values()]
    .filter((w) => w.connectedAt <= to)
    .sort((a, b) => Number(b.isOnline(to)) - Number(a.isOnline(to)) || a.id - b.id);
  listing.workers = workers;
  const bar = Math.max(12, Math.floor((width - 50) / 2));
  const rows = workers.map((w) => {
    const cpu = w.cpuLoad(to);
    const mem = w.memLoad(to);
    return [
      String(w.id),
      w.configuration.hostname,
      w.status(to),
      String(w.running.at(to)),
      cpu === null ? dim('-') : usageBar(cpu, bar),
      mem === null ? dim('-') : usageBar(mem, bar),
    ];
  });
  const list = table(
    [
      { title: 'ID', width: 4 },
      { title: 'Hostname', width: 14 },
      { title: 'Status', width: 17 },
      { title: 'Tasks', width: 6 },
      { title: 'CPU util', width: bar },
      { title: 'Mem util', width: bar },
    ],
    rows,
    height - chart.length - 2,
    Math.min(state.workerRow, rows.length - 1),
  );
  return [...chart, ...box(`Worker list (${workers.length})`, list, width, height - chart.length)];
}

const CPU_VIEW_TITLES: Record<CpuView, string> = {
  managed: 'Worker Managed',
  assigned: 'Worker Assigned',
  global: 'Global',
};

/** The worker detail's per-core table: lines of `id ███░░ (NN%)` cells, and its title. */
function coreTable(
  w: WorkerView,
  state: AppState,
  listing: Listing,
  to: number,
  width: number,
  height: number,
): string[] {
  const hw = w.overviews.at(to);
  const usage = hw?.cpu_usage.cpu_per_core_percent_usage ?? [];
  const all = usage.map((_, i) => i);
  const managed = new Set(w.managedCpus()?.filter((c) => c < usage.length) ?? all);
  const assigned = w.assigned.at(to) ?? new Set<number>();
  listing.cpuViews =
    managed.size < usage.length ? ['managed', 'assigned', 'global'] : ['managed', 'assigned'];
  const view = listing.cpuViews.includes(state.cpuView) ? state.cpuView : 'managed';
  const shown = all.filter((c) =>
    view === 'global' ? true : view === 'assigned' ? assigned.has(c) : managed.has(c),
  );
  const cell = 22;
  const perLine = Math.max(1, Math.floor((width - 2) / cell));
  const lines: string[] = [];
  for (let i = 0; i < shown.length; i += perLine) {
    lines.push(
      shown
        .slice(i, i + perLine)
        .map((c) => {
          const colour = assigned.has(c) ? undefined : managed.has(c) ? lightBlue : magenta;
          return fit(
            `${String(c).padStart(3)} ${usageBar(usage[c]! / 100, cell - 5, colour)}`,
            cell,
          );
        })
        .join(''),
    );
  }
  listing.cpuLines = lines.length;
  const rows = Math.max(1, Math.min(lines.length, height - 3));
  const first = Math.min(state.cpuScroll, Math.max(0, lines.length - rows));
  const avg = shown.length > 0 ? shown.reduce((s, c) => s + usage[c]!, 0) / shown.length : null;
  const mem = hw?.memory_usage;
  const memText =
    mem === undefined || mem.total <= 0
      ? ''
      : `, Mem = ${Math.round(((mem.total - mem.free) / mem.total) * 100)}% (${formatBytes(mem.total - mem.free)}/${formatBytes(mem.total)})`;
  const legend = `${green('■')} Assigned  ${lightBlue('■')} Managed  ${magenta('■')} Other  ${dim('c: view  ↑↓: scroll')}`;
  const body =
    usage.length === 0
      ? [dim('no overview (workers send them while a dashboard watches)')]
      : shown.length === 0
        ? [dim('no CPU of this view'), legend]
        : [...lines.slice(first, first + rows), legend];
  return box(
    `${CPU_VIEW_TITLES[view]} Utilization (${shown.length} CPUs)${avg === null ? '' : `, Avg CPU = ${Math.round(avg)}%`}${memText}`,
    body,
    width,
    body.length + 2,
  );
}

function formatBytes(n: number): string {
  const gib = n / 1024 ** 3;
  return gib >= 1 ? `${gib.toFixed(1)} GiB` : `${Math.round(n / 1024 ** 2)} MiB`;
}

function workerDetail(
  model: DashboardModel,
  state: AppState,
  listing: Listing,
  from: number,
  to: number,
  width: number,
  height: number,
): string[] {
  const id = state.detail ?? 0;
  const w = model.workers.get(id);
  if (w === undefined) {
    return [`Worker ${id} is not known`];
  }
  const samples = Math.max(1, width - 24);
  const step = samples > 1 ? (to - from) / (samples - 1) : 0;
  const at = (i: number): number => from + step * i;
  const cpuHist = Array.from({ length: samples }, (_, i) => (w.cpuLoad(at(i)) ?? 0) * 100);
  const memHist = Array.from({ length: samples }, (_, i) => (w.memLoad(at(i)) ?? 0) * 100);
  const gpuHist = Array.from({ length: samples }, (_, i) => w.gpuLoad(at(i)));
  const runHist = w.running.sample(from, to, samples);
  const cpu = w.cpuLoad(to);
  const mem = w.memLoad(to);
  const gpu = w.gpuLoad(to);
  const percent = (f: number | null): string => (f === null ? '-' : `${Math.round(f * 100)}%`);
  const lines = [
    `CPU avg  ${sparkline(cpuHist, 100)} ${percent(cpu)}`,
    `Mem      ${sparkline(memHist, 100)} ${percent(mem)}`,
  ];
  // As upstream: the GPU line only once a GPU was busy in the window.
  if (gpuHist.some((g) => g !== null && g > 0)) {
    lines.push(
      `GPU avg  ${sparkline(
        gpuHist.map((g) => (g ?? 0) * 100),
        100,
      )} ${percent(gpu)}`,
    );
  }
  lines.push(`Tasks    ${sparkline(runHist)} ${w.running.at(to)} running`);
  const history = box('Utilization History', lines, width, lines.length + 2);
  const coreBox = coreTable(w, state, listing, to, width, 11);
  const runs = w.runsBetween(from, to);
  const runRows = runs
    .slice(-Math.max(0, height - history.length - coreBox.length - 12))
    .map((r) => [
      `${r.job}@${r.task}`,
      clock(r.start),
      Number.isNaN(r.end) ? yellow('running') : clock(r.end),
      formatSpan((Number.isNaN(r.end) ? to : r.end) - r.start),
      r.cpus === null ? '' : r.cpus.join(','),
    ]);
  const c = w.configuration;
  const config = [
    `Listen Address: ${c.listenAddress}`,
    `Hostname: ${c.hostname}`,
    `Work Dir: ${c.workDir}`,
    `Heartbeat Interval: ${formatSpan(c.heartbeatIntervalMs)}`,
    `Send Overview Interval: ${c.overviewIntervalMs === null ? 'off' : formatSpan(c.overviewIntervalMs)}`,
    `Idle Timeout: ${c.idleTimeoutMs === null ? 'none' : formatSpan(c.idleTimeoutMs)}`,
    `Time Limit: ${c.timeLimitMs === null ? 'none' : formatSpan(c.timeLimitMs)}`,
    `Status: ${w.status(to)}`,
  ];
  const lower = height - history.length - coreBox.length - 1;
  const half = Math.floor(width / 2);
  const tasks = box(
    `Tasks On Worker (${runs.length} in the window)`,
    table(
      [
        { title: 'Task', width: 12 },
        { title: 'Start', width: 8 },
        { title: 'End', width: 8 },
        { title: 'Time', width: 8 },
        { title: 'CPUs', width: 8 },
      ],
      runRows,
      lower - 2,
    ),
    half,
    lower,
  );
  return [
    bold(`Worker ${id}`) + dim('  (Backspace: back)'),
    ...history,
    ...coreBox,
    ...sideBySide(tasks, box('Worker Configuration', config, width - half, lower), half),
  ];
}

function jobsScreen(
  model: DashboardModel,
  state: AppState,
  listing: Listing,
  from: number,
  to: number,
  width: number,
  height: number,
): string[] {
  const jobs = [...model.jobs.values()].filter((j) => j.createdAt <= to);
  listing.jobs = jobs;
  state.jobRow = Math.min(state.jobRow, Math.max(0, jobs.length - 1));
  const leftWidth = Math.min(60, Math.floor(width * 0.45));
  const jobRows = jobs.map((j) => {
    const c = j.countsAt(to);
    return [String(j.id), j.name, progressBar(c, j.nTasks, 16), `${c.finished}/${j.nTasks}`];
  });
  const jobsBox = box(
    state.focus === 1 ? inverse('Jobs <1>') : 'Jobs <1>',
    table(
      [
        { title: 'ID', width: 5 },
        { title: 'Name', width: Math.max(6, leftWidth - 42) },
        { title: 'Progress', width: 16 },
        { title: 'Done', width: 16 },
      ],
      jobRows,
      height - 2,
      state.focus === 1 ? state.jobRow : -1,
    ),
    leftWidth,
    height,
  );
  const job = jobs[state.jobRow];
  const rightWidth = width - leftWidth;
  if (job === undefined) {
    return sideBySide(
      jobsBox,
      box('Job Details', [dim('No jobs in this window')], rightWidth, height),
      leftWidth,
    );
  }
  const c = job.countsAt(to);
  const submit = job.submits[0];
  const program =
    submit === undefined
      ? undefined
      : submit.kind === 'array'
        ? submit.taskDesc
        : submit.tasks[0]?.taskDesc;
  const details = box(
    'Job Details',
    [
      `Job Type: ${submit?.kind === 'graph' ? 'Graph' : 'Array'}`,
      `Cmdline: ${program?.program.args.join(' ') ?? ''}`,
      `Workdir: ${program?.program.cwd ?? ''}`,
      `Creation Time: ${clock(job.createdAt)}   Completion Time: ${clock(job.completedAt)}`,
      `Num Tasks: ${job.nTasks}   ${progressBar(c, job.nTasks, Math.max(10, rightWidth - 40))}`,
      `Waiting: ${c.waiting}  Running: ${c.running}  Finished: ${c.finished}  Failed: ${c.failed}  Canceled: ${c.canceled}  Aborted: ${c.aborted}`,
    ],
    rightWidth,
    8,
  );
  const samples = Math.max(1, rightWidth - 16);
  const chart = box(
    'Task counts over the window',
    (['running', 'finished', 'failed', 'waiting'] as const).map(
      (s) =>
        `${s.padEnd(9)} ${sparkline(job.counts[s].sample(from, to, samples), Math.max(1, job.nTasks))}`,
    ),
    rightWidth,
    6,
  );
  const tasksHeight = height - details.length - chart.length;
  const visible = Math.max(0, tasksHeight - 3);
  const selected = Math.min(state.taskRow, Math.max(0, job.tasks.size - 1));
  const first = selected >= visible ? selected - visible + 1 : 0;
  const rows = job.rows(first, visible, to);
  listing.taskWorkers = [];
  rows.forEach((r, i) => {
    listing.taskWorkers[first + i] = r.worker;
  });
  const taskTable = table(
    [
      { title: 'Task ID', width: 8 },
      { title: 'Worker', width: 7 },
      { title: 'State', width: 9 },
      { title: 'Start', width: 8 },
      { title: 'End', width: 8 },
      { title: 'Makespan', width: 9 },
    ],
    rows.map((r) => [
      String(r.id),
      r.worker > 0 ? String(r.worker) : '',
      r.state === 'failed' ? red(r.state) : r.state === 'running' ? yellow(r.state) : r.state,
      clock(r.start),
      clock(r.end),
      r.start === null ? '' : formatSpan((r.end ?? to) - r.start),
    ]),
    tasksHeight - 2,
    state.focus === 2 ? selected - first : -1,
  );
  const tasksBox = box(
    `${state.focus === 2 ? inverse('Tasks <2>') : 'Tasks <2>'} (${job.tasks.size} started or ended, ${c.waiting} waiting)`,
    taskTable,
    rightWidth,
    tasksHeight,
  );
  return sideBySide(jobsBox, [...details, ...chart, ...tasksBox], leftWidth);
}

function allocScreen(
  model: DashboardModel,
  state: AppState,
  to: number,
  width: number,
  height: number,
): string[] {
  const queues = [...model.queues.values()].filter((q) => q.createdAt <= to);
  state.queueRow = Math.min(state.queueRow, Math.max(0, queues.length - 1));
  const allAllocs = [...model.allocations.values()].filter((a) => a.queuedAt <= to);
  const queueRows = queues.map((q) => [
    String(q.id),
    q.params.manager,
    String(allAllocs.filter((a) => a.queueId === q.id).length),
    clock(q.createdAt),
    q.removedAt !== null && q.removedAt <= to ? clock(q.removedAt) : '',
  ]);
  const half = Math.floor(height / 2);
  const queuesBox = box(
    'Allocation Queues <1>',
    table(
      [
        { title: 'ID', width: 4 },
        { title: 'Manager', width: 8 },
        { title: '#Allocations', width: 12 },
        { title: 'Created', width: 9 },
        { title: 'Removed', width: 9 },
      ],
      queueRows,
      half - 2,
      state.focus === 1 ? state.queueRow : -1,
    ),
    width,
    half,
  );
  const queue = queues[state.queueRow];
  const allocs = allAllocs.filter((a) => queue === undefined || a.queueId === queue.id);
  const status = (a: (typeof allocs)[number]): string =>
    a.finishedAt !== null && a.finishedAt <= to
      ? 'finished'
      : a.startedAt !== null && a.startedAt <= to
        ? 'running'
        : 'queued';
  const allocBox = box(
    'Allocations <2>',
    table(
      [
        { title: 'Allocation ID', width: 14 },
        { title: 'Status', width: 9 },
        { title: '#Workers', width: 8 },
        { title: 'Queued', width: 9 },
        { title: 'Started', width: 9 },
        { title: 'Finished', width: 9 },
      ],
      allocs.map((a) => [
        a.id,
        status(a),
        String(a.workerCount),
        clock(a.queuedAt),
        a.startedAt !== null && a.startedAt <= to ? clock(a.startedAt) : '',
        a.finishedAt !== null && a.finishedAt <= to ? clock(a.finishedAt) : '',
      ]),
      height - half - 2,
      state.focus === 2 ? Math.min(state.allocRow, allocs.length - 1) : -1,
    ),
    width,
    height - half,
  );
  return [...queuesBox, ...allocBox];
}
