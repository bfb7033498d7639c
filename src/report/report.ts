/**
 * `hq journal report`: one self-contained HTML page that charts what a journal recorded. Pure:
 * events in (the objects `hq journal export` prints, upstream's shapes), a string out.
 *
 * Modelled on upstream's `client/commands/journal/report.rs` (see ../shared/spec/journal.md §6):
 * - The first event is `server-start`; its time is the base, every x value is seconds since it.
 * - `--start-time`/`--end-time` are offsets from the base. A trace's changes before the start
 *   time fold into its first point; reading stops at the first event after the end time.
 * - Traces are step functions: each point holds until the next one.
 *
 * Where this module differs, on purpose:
 * - uPlot is embedded (./uplot-assets.ts), so the page works offline; upstream loads Plotly from
 *   a CDN. Boxes, bars and the timeline are drawn on uPlot's canvas by the page script.
 * - Classes, traces and rows come out sorted; upstream's come in hash-map order.
 * - A worker that is lost, or a server that stops, ends the tasks that were running there
 *   (their utilization goes back, the timeline shows them as interrupted); upstream keeps counting
 *   them. A server stop also ends the queued allocations (the server cancels them).
 * - Tasks that ended before `--start-time` are left out of the counts and durations.
 * - `job-created` of a task graph carries no resource requests, so its tasks form the class
 *   `unknown` and a single-node one adds nothing to utilization.
 * - A new timeline chart: one row per worker, one bar per task run, colored by how it ended.
 */
import { HqError } from '../common/errors.js';
import { formatHumanDuration } from '../common/duration.js';
import { CPU_RESOURCE_NAME, FRACTIONS_PER_UNIT, formatAmount } from '../common/resources.js';
import { PAGE_SCRIPT } from './page-script.js';
import { uplotAssets } from './uplot-assets.js';

/** One line of `hq journal export`. */
export interface ReportEvent {
  /** RFC 3339, UTC. */
  time: string;
  event: Record<string, unknown>;
}

/** Offsets from the first event's time, in milliseconds; `null` = no bound. */
export interface ReportOptions {
  startTimeMs: number | null;
  endTimeMs: number | null;
}

/** A step function: `y[i]` holds from `x[i]` (seconds since the server start) to `x[i + 1]`. */
export interface StepTrace {
  name: string;
  /** The worker resource signature the trace is about (`''` for the queued workers). */
  group: string;
  x: number[];
  y: number[];
}

/** How a run of a task on a worker ended (`running`: it had not ended when reading stopped). */
export type TaskOutcome =
  'finished' | 'failed' | 'canceled' | 'aborted' | 'interrupted' | 'running';

/** Tasks that ran with one resource request, and how long their finished/failed runs took. */
export interface TaskClass {
  /** `T1`, `T2`, ... in the order of the sorted labels. */
  name: string;
  /** The request, e.g. `cpus: 2 compact`, `nodes: 2`, or `unknown`. */
  label: string;
  /** Durations in seconds, in the order the tasks ended. */
  finished: number[];
  failed: number[];
}

/** One run of a task on one worker (a multi-node task has one bar on each of its workers). */
export interface TimelineBar {
  job: number;
  task: number;
  instance: number;
  /** Seconds since the server start. */
  start: number;
  end: number;
  outcome: TaskOutcome;
  /** Number of workers the run used (1 unless multi-node). */
  nodes: number;
  /** Sub-row within the worker's row, so that concurrent runs do not overlap. */
  lane: number;
}

export interface TimelineRow {
  worker: number;
  hostname: string;
  /** The worker's resource signature, e.g. `cpus:4`. */
  resources: string;
  lanes: number;
  /** Sorted by start time. */
  bars: TimelineBar[];
}

/** Everything the page draws, before it is laid out for the charts. */
export interface ReportData {
  /** The first event's time as written in the journal. */
  baseTime: string;
  /** `upto 10s`, `since 5s`, `between 5s and 10s`, or `null` without a filter. */
  filter: string | null;
  /** The x range shown, in seconds since the server start. */
  xMin: number;
  xMax: number;
  queued: StepTrace;
  running: StepTrace[];
  utilization: StepTrace[];
  classes: TaskClass[];
  timeline: TimelineRow[];
  /** Workers that connected within the range read. */
  workerCount: number;
}

/** Five-number summary of a box plot; whiskers end at the last values within 1.5 IQR. */
export interface BoxStats {
  n: number;
  min: number;
  q1: number;
  median: number;
  q3: number;
  max: number;
  whiskerLow: number;
  whiskerHigh: number;
  outliers: number[];
}

// ---------------------------------------------------------------------------------------------
// Reading events
// ---------------------------------------------------------------------------------------------

function invalid(message: string): HqError {
  return new HqError('HQ_INVALID_ARGUMENT', message);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function field(event: Record<string, unknown>, key: string): unknown {
  const value = event[key];
  if (value === undefined) {
    throw invalid(`Invalid journal event ${String(event.type)}: missing "${key}"`);
  }
  return value;
}

function numberField(event: Record<string, unknown>, key: string): number {
  const value = field(event, key);
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw invalid(`Invalid journal event ${String(event.type)}: "${key}" is not a number`);
  }
  return value;
}

/** Allocation ids are strings upstream; queue ids are numbers. Either is accepted for both. */
function idField(event: Record<string, unknown>, key: string): string {
  const value = field(event, key);
  if (typeof value !== 'number' && typeof value !== 'string') {
    throw invalid(`Invalid journal event ${String(event.type)}: "${key}" is not an id`);
  }
  return String(value);
}

function parseTimeMs(time: string): number {
  const ms = Date.parse(time);
  if (!Number.isFinite(ms)) {
    throw invalid(`Invalid journal event time: ${JSON.stringify(time)}`);
  }
  return ms;
}

/** `[{job_id, job_task_id}]` of task-canceled and task-aborted. */
function taskRefs(event: Record<string, unknown>): { job: number; task: number }[] {
  const tasks = field(event, 'tasks');
  if (!Array.isArray(tasks)) {
    throw invalid(`Invalid journal event ${String(event.type)}: "tasks" is not a list`);
  }
  return tasks.map((t) => {
    if (!isObject(t) || typeof t.job_id !== 'number' || typeof t.job_task_id !== 'number') {
      throw invalid(`Invalid journal event ${String(event.type)}: bad task id`);
    }
    return { job: t.job_id, task: t.job_task_id };
  });
}

// ---------------------------------------------------------------------------------------------
// Resources
// ---------------------------------------------------------------------------------------------

interface SignatureItem {
  name: string;
  /** Fixed point, FRACTIONS_PER_UNIT = 1. */
  amount: number;
}

interface Signature {
  label: string;
  items: SignatureItem[];
}

/** One resource of a request: `amount` is `null` for `all`. */
interface RequestEntry {
  resource: string;
  amount: number | null;
}

interface Request {
  nNodes: number;
  entries: RequestEntry[];
  label: string;
}

const POLICY_SUFFIXES: Record<string, string> = {
  Compact: 'compact',
  ForceCompact: 'compact!',
  Tight: 'tight',
  ForceTight: 'tight!',
  Scatter: 'scatter',
};

/** The size of one worker resource from its descriptor kind, in fixed point. */
function descriptorSize(item: Record<string, unknown>): number {
  // Serde's form, `{"name": "cpus", "kind": {"Range": {"start": 0, "end": 3}}}`, or the
  // flat one of `hq worker info --output-mode json`, `{"name": "cpus", "kind": "range", ...}`.
  let kind: string;
  let body: Record<string, unknown>;
  if (isObject(item.kind)) {
    const [key, value] = Object.entries(item.kind)[0] ?? ['', undefined];
    kind = key.toLowerCase();
    body = isObject(value) ? value : {};
  } else {
    kind = String(item.kind);
    body = item;
  }
  const units = (n: number): number => n * FRACTIONS_PER_UNIT;
  switch (kind) {
    case 'range': {
      const start = Number(body.start);
      const end = Number(body.end);
      return end >= start ? units(end + 1 - start) : 0;
    }
    case 'list':
      return Array.isArray(body.values) ? units(body.values.length) : 0;
    case 'groups':
      return Array.isArray(body.groups)
        ? units(body.groups.reduce((n: number, g) => n + (Array.isArray(g) ? g.length : 0), 0))
        : 0;
    case 'sum':
      return Number(body.size) || 0;
    default:
      throw invalid(`Invalid journal event worker-connected: unknown resource kind "${kind}"`);
  }
}

/** Resource names in a signature: `cpus` first, then by name. */
function compareResourceNames(a: string, b: string): number {
  if (a === b) {
    return 0;
  }
  if (a === CPU_RESOURCE_NAME || b === CPU_RESOURCE_NAME) {
    return a === CPU_RESOURCE_NAME ? -1 : 1;
  }
  return a < b ? -1 : 1;
}

function workerSignature(configuration: unknown): Signature {
  const descriptor = isObject(configuration) ? configuration.resources : undefined;
  const list = isObject(descriptor) ? descriptor.resources : descriptor;
  if (!Array.isArray(list)) {
    throw invalid('Invalid journal event worker-connected: missing "configuration.resources"');
  }
  const items = list
    .filter(isObject)
    .map((item) => ({ name: String(item.name), amount: descriptorSize(item) }))
    .sort((a, b) => compareResourceNames(a.name, b.name));
  const label = items.map((i) => `${i.name}:${formatAmount(i.amount)}`).join(', ');
  return { label, items };
}

function parseDurationMs(value: unknown): number {
  if (typeof value === 'number') {
    return value * 1000;
  }
  if (isObject(value)) {
    return Number(value.secs ?? 0) * 1000 + Number(value.nanos ?? 0) / 1e6;
  }
  return 0;
}

/** A `ResourceRequest` of a job-created event's `resources.variants`. */
function parseRequest(value: unknown): Request {
  const rq = isObject(value) ? value : {};
  const nNodes = Number(rq.n_nodes ?? 0) || 0;
  const entries: RequestEntry[] = [];
  const texts: string[] = [];
  for (const entry of Array.isArray(rq.resources) ? rq.resources : []) {
    if (!isObject(entry)) {
      continue;
    }
    const resource = String(entry.resource);
    const policy = entry.policy ?? entry.request;
    if (policy === 'All') {
      entries.push({ resource, amount: null });
      texts.push(`${resource}: all`);
    } else if (isObject(policy)) {
      const [kind, amount] = Object.entries(policy)[0] ?? ['', 0];
      entries.push({ resource, amount: Number(amount) });
      texts.push(`${resource}: ${formatAmount(Number(amount))} ${POLICY_SUFFIXES[kind] ?? kind}`);
    }
  }
  let label = nNodes > 0 ? `nodes: ${nNodes}` : texts.join(', ');
  const minTimeMs = parseDurationMs(rq.min_time);
  if (minTimeMs > 0) {
    label += `, min_time: ${formatHumanDuration(minTimeMs)}`;
  }
  return { nNodes, entries, label };
}

interface IdRange {
  start: number;
  count: number;
  step: number;
}

/** What one job-created said about its tasks' requests (`variants: null` for a task graph). */
interface JobSubmit {
  ranges: IdRange[] | null;
  variants: Request[] | null;
}

function parseSubmit(event: Record<string, unknown>): JobSubmit {
  const submit = field(event, 'submit_desc');
  const desc = isObject(submit) && isObject(submit.task_desc) ? submit.task_desc : {};
  const resources = isObject(desc.resources) ? desc.resources : undefined;
  if (resources === undefined || !Array.isArray(resources.variants)) {
    return { ranges: null, variants: null };
  }
  const ids = isObject(desc.ids) && Array.isArray(desc.ids.ranges) ? desc.ids.ranges : null;
  return {
    ranges:
      ids?.filter(isObject).map((r) => ({
        start: Number(r.start),
        count: Number(r.count),
        step: Number(r.step ?? 1) || 1,
      })) ?? null,
    variants: resources.variants.map(parseRequest),
  };
}

function inRanges(ranges: IdRange[], task: number): boolean {
  return ranges.some(
    (r) => task >= r.start && task < r.start + r.count * r.step && (task - r.start) % r.step === 0,
  );
}

// ---------------------------------------------------------------------------------------------
// Building the data
// ---------------------------------------------------------------------------------------------

/** Keeps the sums of float fractions from printing as 0.30000000000000004. */
function roundValue(value: number): number {
  return Math.round(value * 1e6) / 1e6;
}

function seconds(ms: number): number {
  return Math.round(ms) / 1000;
}

/** A trace in milliseconds whose changes before `startMs` fold into its first point. */
class Trace {
  readonly name: string;
  readonly group: string;
  readonly x: number[];
  readonly y: number[];
  private readonly startMs: number | null;

  constructor(name: string, group: string, initMs: number, startMs: number | null) {
    this.name = name;
    this.group = group;
    this.startMs = startMs;
    this.x = [Math.max(startMs ?? 0, initMs)];
    this.y = [0];
  }

  private folds(timeMs: number): boolean {
    return this.startMs !== null && timeMs < this.startMs;
  }

  addChange(timeMs: number, delta: number): void {
    if (this.folds(timeMs)) {
      this.y[0] = roundValue((this.y[0] ?? 0) + delta);
    } else {
      this.x.push(timeMs);
      this.y.push(roundValue((this.y[this.y.length - 1] ?? 0) + delta));
    }
  }

  setValue(timeMs: number, value: number): void {
    if (this.folds(timeMs)) {
      this.y[0] = value;
    } else {
      this.x.push(timeMs);
      this.y.push(value);
    }
  }

  toStep(): StepTrace {
    return { name: this.name, group: this.group, x: this.x.map(seconds), y: [...this.y] };
  }
}

interface WorkerInfo {
  signature: Signature;
  hostname: string;
}

interface RunningTask {
  job: number;
  task: number;
  instance: number;
  startMs: number;
  workers: number[];
  request: Request | null;
}

interface EndedRun {
  run: RunningTask;
  endMs: number;
  outcome: TaskOutcome;
}

/** Orders labels with their numbers compared as numbers: `cpus:4` before `cpus:16`. */
export function compareLabels(a: string, b: string): number {
  const chunks = (s: string): string[] => s.match(/\d+|\D+/g) ?? [];
  const ca = chunks(a);
  const cb = chunks(b);
  for (let i = 0; i < Math.min(ca.length, cb.length); i++) {
    const x = ca[i] ?? '';
    const y = cb[i] ?? '';
    if (x === y) {
      continue;
    }
    const bothNumbers = /^\d/.test(x) && /^\d/.test(y);
    if (bothNumbers && Number(x) !== Number(y)) {
      return Number(x) - Number(y);
    }
    return x < y ? -1 : 1;
  }
  return ca.length - cb.length || (a < b ? -1 : a > b ? 1 : 0);
}

class ReportBuilder {
  private readonly startMs: number | null;
  private readonly workers = new Map<number, WorkerInfo>();
  private readonly running = new Map<string, Trace>();
  private readonly utilization = new Map<string, Trace[]>();
  private readonly jobs = new Map<number, JobSubmit[]>();
  readonly queued: Trace;
  private readonly allocations = new Map<string, number>();
  private readonly canceledAllocations = new Set<string>();
  private readonly tasks = new Map<string, RunningTask>();
  private readonly classes = new Map<string, { finished: number[]; failed: number[] }>();
  readonly ended: EndedRun[] = [];

  constructor(startMs: number | null) {
    this.startMs = startMs;
    this.queued = new Trace('Queued workers', '', 0, startMs);
  }

  apply(timeMs: number, event: Record<string, unknown>): void {
    switch (event.type) {
      case 'worker-connected':
        this.workerConnected(timeMs, numberField(event, 'id'), field(event, 'configuration'));
        break;
      case 'worker-lost': {
        const id = numberField(event, 'id');
        const info = this.workers.get(id);
        if (info !== undefined) {
          this.running.get(info.signature.label)?.addChange(timeMs, -1);
        }
        for (const run of [...this.tasks.values()]) {
          if (run.workers.includes(id)) {
            this.endRun(timeMs, run, 'interrupted');
          }
        }
        break;
      }
      case 'job-created': {
        const job = numberField(event, 'job');
        const submits = this.jobs.get(job) ?? [];
        submits.push(parseSubmit(event));
        this.jobs.set(job, submits);
        break;
      }
      case 'task-started':
        this.taskStarted(timeMs, event);
        break;
      case 'task-finished':
      case 'task-failed': {
        const run = this.tasks.get(`${numberField(event, 'job')}@${numberField(event, 'task')}`);
        if (run !== undefined) {
          this.endRun(timeMs, run, event.type === 'task-finished' ? 'finished' : 'failed');
        }
        break;
      }
      case 'task-canceled':
      case 'task-aborted':
        for (const { job, task } of taskRefs(event)) {
          const run = this.tasks.get(`${job}@${task}`);
          if (run !== undefined) {
            this.endRun(timeMs, run, event.type === 'task-canceled' ? 'canceled' : 'aborted');
          }
        }
        break;
      case 'autoalloc-allocation-queued': {
        const key = `${idField(event, 'queue-id')}/${idField(event, 'allocation-id')}`;
        const count = numberField(event, 'worker-count');
        this.allocations.set(key, count);
        this.queued.addChange(timeMs, count);
        break;
      }
      case 'autoalloc-allocation-finished': {
        const allocationId = idField(event, 'allocation-id');
        const key = `${idField(event, 'queue-id')}/${allocationId}`;
        const count = this.allocations.get(key);
        if (count !== undefined) {
          this.allocations.delete(key);
          this.queued.addChange(timeMs, -count);
        } else if (!this.canceledAllocations.has(key)) {
          throw invalid(`Allocation \`${allocationId}\` does not exist in the journal`);
        }
        break;
      }
      case 'server-stop':
        for (const trace of this.running.values()) {
          trace.setValue(timeMs, 0);
        }
        for (const run of [...this.tasks.values()]) {
          this.endRun(timeMs, run, 'interrupted');
        }
        if (this.allocations.size > 0) {
          for (const key of this.allocations.keys()) {
            this.canceledAllocations.add(key);
          }
          this.allocations.clear();
          this.queued.setValue(timeMs, 0);
        }
        break;
      default:
        // server-start (of a later run), worker-overview, job-open/close/cancel/completed,
        // queue created/removed, allocation-started, notify and idle (no type) draw nothing.
        break;
    }
  }

  private workerConnected(timeMs: number, id: number, configuration: unknown): void {
    const signature = workerSignature(configuration);
    const hostname =
      isObject(configuration) && typeof configuration.hostname === 'string'
        ? configuration.hostname
        : '';
    const key = signature.label;
    if (!this.utilization.has(key)) {
      this.utilization.set(
        key,
        signature.items.map(
          (item) => new Trace(`${item.name} alloc on ${key}`, key, timeMs, this.startMs),
        ),
      );
    }
    let running = this.running.get(key);
    if (running === undefined) {
      running = new Trace(`Running workers ${key}`, key, timeMs, this.startMs);
      this.running.set(key, running);
    }
    running.addChange(timeMs, 1);
    this.workers.set(id, { signature, hostname });
  }

  private requestOf(job: number, task: number, variant: number): Request | null {
    const submits = this.jobs.get(job);
    if (submits === undefined) {
      return null;
    }
    const submit =
      submits.find((s) => s.ranges !== null && inRanges(s.ranges, task)) ??
      submits[submits.length - 1];
    const variants = submit?.variants;
    if (variants == null) {
      return null;
    }
    return variants[variant] ?? variants[0] ?? null;
  }

  private taskStarted(timeMs: number, event: Record<string, unknown>): void {
    const job = numberField(event, 'job');
    const task = numberField(event, 'task');
    const key = `${job}@${task}`;
    const previous = this.tasks.get(key);
    if (previous !== undefined) {
      // Started again without an end: its worker went away unreported.
      this.endRun(timeMs, previous, 'interrupted');
    }
    const workers = Array.isArray(event.workers)
      ? event.workers.filter((w): w is number => typeof w === 'number')
      : [numberField(event, 'worker')];
    const variant = typeof event.variant === 'number' ? event.variant : 0;
    const run: RunningTask = {
      job,
      task,
      instance: typeof event.instance === 'number' ? event.instance : 0,
      startMs: timeMs,
      workers,
      request: this.requestOf(job, task, variant),
    };
    this.tasks.set(key, run);
    this.changeUtilization(timeMs, run, 1);
  }

  private changeUtilization(timeMs: number, run: RunningTask, sign: 1 | -1): void {
    const rq = run.request;
    if ((rq !== null && rq.nNodes > 0) || (rq === null && run.workers.length > 1)) {
      for (const worker of run.workers) {
        const info = this.workers.get(worker);
        for (const trace of info ? (this.utilization.get(info.signature.label) ?? []) : []) {
          trace.addChange(timeMs, sign);
        }
      }
      return;
    }
    const info = run.workers[0] === undefined ? undefined : this.workers.get(run.workers[0]);
    if (rq === null || info === undefined) {
      return;
    }
    const traces = this.utilization.get(info.signature.label) ?? [];
    for (const entry of rq.entries) {
      const pos = info.signature.items.findIndex((i) => i.name === entry.resource);
      const size = info.signature.items[pos]?.amount ?? 0;
      const trace = traces[pos];
      if (trace === undefined || size <= 0) {
        continue;
      }
      const share = entry.amount === null ? 1 : entry.amount / size;
      trace.addChange(timeMs, sign * share);
    }
  }

  private endRun(timeMs: number, run: RunningTask, outcome: TaskOutcome): void {
    this.tasks.delete(`${run.job}@${run.task}`);
    this.changeUtilization(timeMs, run, -1);
    this.ended.push({ run, endMs: timeMs, outcome });
    if ((outcome === 'finished' || outcome === 'failed') && timeMs >= (this.startMs ?? 0)) {
      const label = run.request?.label ?? 'unknown';
      let durations = this.classes.get(label);
      if (durations === undefined) {
        durations = { finished: [], failed: [] };
        this.classes.set(label, durations);
      }
      durations[outcome].push(seconds(timeMs - run.startMs));
    }
  }

  /** Runs still going when reading stopped. */
  stillRunning(): RunningTask[] {
    return [...this.tasks.values()];
  }

  runningTraces(): StepTrace[] {
    return [...this.running.entries()]
      .sort(([a], [b]) => compareLabels(a, b))
      .map(([, trace]) => trace.toStep());
  }

  utilizationTraces(): StepTrace[] {
    return [...this.utilization.entries()]
      .sort(([a], [b]) => compareLabels(a, b))
      .flatMap(([, traces]) => traces.map((t) => t.toStep()));
  }

  taskClasses(): TaskClass[] {
    return [...this.classes.entries()]
      .sort(([a], [b]) => compareLabels(a, b))
      .map(([label, d], i) => ({ name: `T${i + 1}`, label, ...d }));
  }

  workerInfo(): Map<number, WorkerInfo> {
    return this.workers;
  }
}

function filterText(options: ReportOptions): string | null {
  const { startTimeMs: start, endTimeMs: end } = options;
  if (start !== null && end !== null) {
    return `between ${formatHumanDuration(start)} and ${formatHumanDuration(end)}`;
  }
  if (start !== null) {
    return `since ${formatHumanDuration(start)}`;
  }
  if (end !== null) {
    return `upto ${formatHumanDuration(end)}`;
  }
  return null;
}

/** Gives each bar the first lane free at its start; returns the number of lanes used. */
function assignLanes(bars: TimelineBar[]): number {
  const laneEnds: number[] = [];
  for (const bar of bars) {
    let lane = laneEnds.findIndex((end) => end <= bar.start);
    if (lane < 0) {
      lane = laneEnds.length;
      laneEnds.push(bar.end);
    } else {
      laneEnds[lane] = bar.end;
    }
    bar.lane = lane;
  }
  return Math.max(1, laneEnds.length);
}

/**
 * Reads the events into the series the report draws. Throws `HQ_INVALID_ARGUMENT` on an empty
 * list, a first event that is not `server-start`, an unparsable time, a malformed event, or an
 * allocation that finishes without having been queued.
 */
export function buildReportData(events: ReportEvent[], options: ReportOptions): ReportData {
  const first = events[0];
  if (first === undefined) {
    throw invalid('Empty journal');
  }
  if (first.event.type !== 'server-start') {
    throw invalid('Journal does not start with server start event');
  }
  const baseMs = parseTimeMs(first.time);
  const { startTimeMs, endTimeMs } = options;
  const builder = new ReportBuilder(startTimeMs);
  const connected = new Set<number>();
  let lastMs = 0;
  let cutAtEnd = false;
  for (const { time, event } of events.slice(1)) {
    const timeMs = parseTimeMs(time) - baseMs;
    if (endTimeMs !== null && timeMs > endTimeMs) {
      cutAtEnd = true;
      break;
    }
    lastMs = Math.max(lastMs, timeMs);
    builder.apply(timeMs, event);
    if (event.type === 'worker-connected') {
      connected.add(numberField(event, 'id'));
    }
  }

  const xMinMs = startTimeMs ?? 0;
  let xMaxMs = Math.max(cutAtEnd && endTimeMs !== null ? endTimeMs : lastMs, xMinMs);
  if (xMaxMs - xMinMs < 1) {
    xMaxMs = xMinMs + 1000;
  }

  const rows = new Map<number, TimelineRow>();
  const rowOf = (worker: number): TimelineRow => {
    let row = rows.get(worker);
    if (row === undefined) {
      const info = builder.workerInfo().get(worker);
      row = {
        worker,
        hostname: info?.hostname ?? '',
        resources: info?.signature.label ?? '',
        lanes: 1,
        bars: [],
      };
      rows.set(worker, row);
    }
    return row;
  };
  for (const worker of builder.workerInfo().keys()) {
    rowOf(worker);
  }
  const runs: EndedRun[] = [
    ...builder.ended,
    ...builder.stillRunning().map((run) => ({ run, endMs: xMaxMs, outcome: 'running' as const })),
  ];
  for (const { run, endMs, outcome } of runs) {
    if (endMs < xMinMs) {
      continue;
    }
    for (const worker of run.workers) {
      rowOf(worker).bars.push({
        job: run.job,
        task: run.task,
        instance: run.instance,
        start: seconds(run.startMs),
        end: seconds(endMs),
        outcome,
        nodes: run.workers.length,
        lane: 0,
      });
    }
  }
  const timeline = [...rows.values()].sort((a, b) => a.worker - b.worker);
  for (const row of timeline) {
    row.bars.sort((a, b) => a.start - b.start || a.end - b.end || a.job - b.job || a.task - b.task);
    row.lanes = assignLanes(row.bars);
  }

  return {
    baseTime: first.time,
    filter: filterText(options),
    xMin: seconds(xMinMs),
    xMax: seconds(xMaxMs),
    queued: builder.queued.toStep(),
    running: builder.runningTraces(),
    utilization: builder.utilizationTraces(),
    classes: builder.taskClasses(),
    timeline,
    workerCount: connected.size,
  };
}

// ---------------------------------------------------------------------------------------------
// Laying the data out for the charts
// ---------------------------------------------------------------------------------------------

/**
 * Puts step traces on one shared x axis (the sorted times of all of them, plus `xMin` and
 * `xMax`), as uPlot wants: each value is the trace's last value at or before that time, `null`
 * before the trace begins. Several points of one trace at one time keep the last.
 */
export function alignSteps(
  traces: StepTrace[],
  xMin: number,
  xMax: number,
): { x: number[]; values: (number | null)[][] } {
  const times = new Set<number>([xMin, xMax]);
  for (const trace of traces) {
    for (const t of trace.x) {
      if (t >= xMin && t <= xMax) {
        times.add(t);
      }
    }
  }
  const x = [...times].sort((a, b) => a - b);
  const values = traces.map((trace) => {
    const out: (number | null)[] = [];
    let i = 0;
    let current: number | null = null;
    for (const t of x) {
      while (i < trace.x.length && (trace.x[i] ?? Infinity) <= t) {
        current = trace.y[i] ?? null;
        i++;
      }
      out.push(current);
    }
    return out;
  });
  return { x, values };
}

function quantile(sorted: number[], q: number): number {
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const a = sorted[lo] ?? 0;
  const b = sorted[Math.min(lo + 1, sorted.length - 1)] ?? a;
  return a + (b - a) * (pos - lo);
}

/** Box-plot summary (linear quartiles); `null` for no values. */
export function boxStats(values: number[]): BoxStats | null {
  if (values.length === 0) {
    return null;
  }
  const sorted = [...values].sort((a, b) => a - b);
  const q1 = quantile(sorted, 0.25);
  const q3 = quantile(sorted, 0.75);
  const fence = 1.5 * (q3 - q1);
  const inside = sorted.filter((v) => v >= q1 - fence && v <= q3 + fence);
  const round = (v: number): number => Math.round(v * 1e6) / 1e6;
  return {
    n: sorted.length,
    min: sorted[0] ?? 0,
    q1: round(q1),
    median: round(quantile(sorted, 0.5)),
    q3: round(q3),
    max: sorted[sorted.length - 1] ?? 0,
    whiskerLow: inside[0] ?? q1,
    whiskerHigh: inside[inside.length - 1] ?? q3,
    outliers: sorted.filter((v) => v < q1 - fence || v > q3 + fence),
  };
}

const OUTCOMES: TaskOutcome[] = [
  'finished',
  'failed',
  'canceled',
  'aborted',
  'interrupted',
  'running',
];

/** What the page script reads (see ./page-script.ts). */
function pagePayload(data: ReportData): unknown {
  const globalTraces = [data.queued, ...data.running, ...data.utilization];
  const kinds = [
    'queued',
    ...data.running.map(() => 'running'),
    ...data.utilization.map(() => 'utilization'),
  ];
  const aligned = alignSteps(globalTraces, data.xMin, data.xMax);
  return {
    xMin: data.xMin,
    xMax: data.xMax,
    global: {
      x: aligned.x,
      series: globalTraces.map((t, i) => ({
        name: t.name,
        kind: kinds[i],
        values: aligned.values[i],
      })),
    },
    classes: data.classes.map((c) => ({
      name: c.name,
      label: c.label,
      finished: c.finished.length,
      failed: c.failed.length,
      boxes: [boxStats(c.finished), boxStats(c.failed)],
    })),
    timeline: {
      outcomes: OUTCOMES,
      rows: data.timeline.map((r) => ({
        label: r.hostname === '' ? `worker ${r.worker}` : `${r.worker} · ${r.hostname}`,
        title: [`worker ${r.worker}`, r.hostname, r.resources].filter((s) => s !== '').join(' · '),
        lanes: r.lanes,
      })),
      // [row, lane, start, end, outcome index, job, task, instance, nodes]: compact, as a
      // journal can hold many thousands of runs.
      bars: data.timeline.flatMap((r, row) =>
        r.bars.map((b) => [
          row,
          b.lane,
          b.start,
          b.end,
          OUTCOMES.indexOf(b.outcome),
          b.job,
          b.task,
          b.instance,
          b.nodes,
        ]),
      ),
    },
  };
}

// ---------------------------------------------------------------------------------------------
// HTML
// ---------------------------------------------------------------------------------------------

/** Escapes text for HTML content and attribute values. */
export function escapeHtml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

/** JSON that is safe inside a `<script>` element: no `</script>`, no `<!--`. */
export function jsonForScript(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

/** A script or style text that must not close its element early. */
function rawElementText(text: string, tag: 'script' | 'style'): string {
  return text.replace(new RegExp(`</(${tag})`, 'gi'), '<\\/$1');
}

/** `2024-05-01T12:00:00.5Z` → `2024-05-01 12:00:00.5 UTC`, like chrono's `Display`. */
function displayTime(time: string): string {
  const m = /^(\d{4}-\d\d-\d\d)[Tt ](\d\d:\d\d:\d\d(?:\.\d+)?)(?:Z|z|\+00:00)$/.exec(time);
  if (m !== null) {
    return `${m[1]} ${m[2]} UTC`;
  }
  return new Date(Date.parse(time)).toISOString().replace('T', ' ').replace('Z', ' UTC');
}

const STYLE = `
  * { margin: 0; padding: 0; box-sizing: border-box; }
  body { font-family: "DejaVu Sans", system-ui, sans-serif; line-height: 1.5; color: #2c3e50;
    background: #f3f5f7; padding: 24px; }
  .container { max-width: 1200px; margin: 0 auto; background: #fff; padding: 28px 32px;
    border-radius: 8px; box-shadow: 0 2px 10px rgba(0, 0, 0, 0.08); }
  .header { margin-bottom: 24px; padding-bottom: 16px; border-bottom: 2px solid #e9ecef; }
  .report-title { font-size: 26px; }
  .stats-grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(220px, 1fr));
    gap: 16px; margin-bottom: 28px; }
  .stat-card { background: #f8f9fa; padding: 14px 18px; border-radius: 6px;
    border-left: 4px solid #4c6ef5; }
  .stat-label { font-size: 13px; color: #6c757d; }
  .stat-value { font-size: 17px; font-weight: 600; }
  .chart-wrapper { padding: 18px 20px; border-radius: 6px; margin-bottom: 24px;
    box-shadow: 0 1px 3px rgba(0, 0, 0, 0.12); }
  .chart-title { font-size: 18px; margin-bottom: 10px; }
  .chart { width: 100%; min-height: 120px; }
  .chart-terms { margin-top: 12px; padding-top: 10px; border-top: 1px solid #e9ecef;
    font-size: 12px; color: #6c757d; }
  .term { display: inline-block; margin-right: 18px; }
  .term-name { font-weight: 600; color: #495057; }
  .uplot { font-family: inherit; }
  .u-legend { font-size: 12px; }
  .hq-tooltip { position: absolute; display: none; pointer-events: none; z-index: 10;
    background: rgba(33, 37, 41, 0.92); color: #fff; font-size: 12px; line-height: 1.4;
    padding: 6px 9px; border-radius: 4px; white-space: nowrap; }
  .hq-tooltip .hq-tip-head { font-weight: 600; }
  .chart-error { color: #c92a2a; font-weight: 600; }
`;

function card(label: string, value: string): string {
  return `<div class="stat-card"><div class="stat-label">${escapeHtml(label)}</div><div class="stat-value">${escapeHtml(value)}</div></div>`;
}

function chartSection(id: string, title: string, terms: string[]): string {
  return `<section class="chart-wrapper">
<h2 class="chart-title">${escapeHtml(title)}</h2>
<div id="${id}" class="chart"></div>
<div class="chart-terms">${terms.join('\n')}</div>
</section>`;
}

function term(name: string, text: string): string {
  return `<span class="term"><span class="term-name">${escapeHtml(name)}</span> ${escapeHtml(text)}</span>`;
}

/** The page for already-built data (see `renderReport`). */
export function renderReportData(data: ReportData): string {
  const assets = uplotAssets();
  const ended = data.classes.reduce((n, c) => n + c.finished.length + c.failed.length, 0);
  const cards = [
    card('Server started', displayTime(data.baseTime)),
    ...(data.filter === null ? [] : [card('Time filtering', data.filter)]),
    card(
      'Time shown',
      `${formatHumanDuration(Math.round(data.xMin * 1000))} to ${formatHumanDuration(Math.round(data.xMax * 1000))}`,
    ),
    card('Workers', String(data.workerCount)),
    card('Tasks finished or failed', String(ended)),
  ];
  const classTerms =
    data.classes.length === 0
      ? [term('No task', 'finished or failed in this time range.')]
      : data.classes.map((c) => term(c.name, `= ${c.label}`));
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>HQ Journal Report</title>
<style>${rawElementText(assets.css, 'style')}</style>
<style>${STYLE}</style>
</head>
<body>
<div class="container">
<header class="header"><h1 class="report-title">HQ Journal Report</h1></header>
<div class="stats-grid">
${cards.join('\n')}
</div>
${chartSection('globalChart', 'Global worker statistics', [
  term('Queued workers', 'workers that queued or running allocations bring'),
  term('Running workers <RESOURCES>', 'connected workers with these resources'),
  term(
    '<RESOURCE> alloc on <RESOURCES>',
    'how much of that resource tasks hold on those workers; 1.0 = one worker fully used',
  ),
])}
${chartSection('countsChart', 'Task counts', classTerms)}
${chartSection('durationsChart', 'Task durations', [
  ...classTerms,
  term('Boxes', 'quartiles and median; whiskers reach the furthest run within 1.5 IQR'),
])}
${chartSection('timelineChart', 'Task timeline', [
  term('Rows', 'workers; each bar is one run of a task, colored by how it ended'),
  term('Interrupted', 'its worker was lost or the server stopped'),
  term('Hover', 'shows the job and task; drag to zoom, double-click to reset'),
])}
</div>
<script type="application/json" id="hq-report-data">${jsonForScript(pagePayload(data))}</script>
<script>${rawElementText(assets.js, 'script')}</script>
<script>${rawElementText(PAGE_SCRIPT, 'script')}</script>
</body>
</html>
`;
}

/**
 * The whole report page for `hq journal report`. Throws `HQ_INVALID_ARGUMENT` for bad input
 * (see `buildReportData`), with upstream's messages `Empty journal` and
 * `Journal does not start with server start event`.
 */
export function renderReport(events: ReportEvent[], options: ReportOptions): string {
  return renderReportData(buildReportData(events, options));
}
