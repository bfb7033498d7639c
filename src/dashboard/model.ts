/**
 * The dashboard's data model, shared by the terminal and the web front ends: fed with server
 * events in time order (a server's history-then-live stream, or a journal file), it answers
 * "what was the state at time t" about workers, jobs, tasks and allocations.
 *
 * Invariants:
 * - A query's cost does not grow with the number of tasks: counts are step series (O(log n) per
 *   sample), task rows are read by position (only the visible ones), and a worker's task
 *   timeline is searched by time.
 * - A task that never started and never ended is waiting and costs nothing; its job's waiting
 *   count comes from the submit.
 * - `apply` never throws on an event that does not fit (an unknown job or worker, a task that
 *   ends twice): a stream from an odd sequence is shown as well as it can be.
 */
import type { ServerEvent } from '../server/events.js';
import type { HwState } from '../worker/hw-monitor.js';
import type {
  QueueParams,
  SubmitDesc,
  WorkerConfiguration,
  WorkerLostReason,
} from '../transport/messages.js';
import { descriptorKindGroups } from '../common/resources.js';
import { isOverviewTasks } from '../transport/validate.js';
import { SampleSeries, StepSeries, lastAtOrBefore } from './series.js';
import {
  ABORTED,
  CANCELED,
  FAILED,
  FINISHED,
  RUNNING,
  STATE_NAMES,
  TaskStore,
  WAITING,
  type TaskRow,
  type TaskStateCode,
  type TaskStateName,
} from './task-store.js';

export type TaskCounts = Record<TaskStateName, number>;

function stateSeries(): Record<TaskStateName, StepSeries> {
  return {
    waiting: new StepSeries(),
    running: new StepSeries(),
    finished: new StepSeries(),
    failed: new StepSeries(),
    canceled: new StepSeries(),
    aborted: new StepSeries(),
  };
}

function countsAt(series: Record<TaskStateName, StepSeries>, time: number): TaskCounts {
  const out = {} as TaskCounts;
  for (const name of STATE_NAMES) {
    out[name] = series[name].at(time);
  }
  return out;
}

/** One run of a task on a worker, for the per-worker timeline. */
export interface TaskRun {
  job: number;
  task: number;
  start: number;
  /** NaN while it runs. */
  end: number;
  /** The CPU ids it held, as an overview taken while it ran told (null: none did). */
  cpus: number[] | null;
}

/** The average load (0-1) of an overview's cores, or null when it lists none. */
export function averageCpu(hw: HwState): number | null {
  const cores = hw.cpu_usage.cpu_per_core_percent_usage;
  return cores.length === 0 ? null : cores.reduce((a, b) => a + b, 0) / cores.length / 100;
}

export class WorkerView {
  readonly id: number;
  readonly configuration: WorkerConfiguration;
  readonly connectedAt: number;
  lostAt: number | null = null;
  lostReason: WorkerLostReason | null = null;
  readonly overviews = new SampleSeries<HwState>();
  /** The CPU ids held by running tasks, as each overview told (only overviews that did). */
  readonly assigned = new SampleSeries<Set<number>>();
  readonly running = new StepSeries();
  // Runs in start order, column-wise.
  private runJobs: number[] = [];
  private runTasks: number[] = [];
  private runStarts: number[] = [];
  private runEnds: number[] = [];
  /** The CPUs of a run, by run index, once an overview told them. */
  private runCpus = new Map<number, number[]>();
  /** The longest run so far (an open run counts until now): bounds the search of a window. */
  private longestMs = 0;
  private openRuns = new Set<number>();

  constructor(id: number, configuration: WorkerConfiguration, connectedAt: number) {
    this.id = id;
    this.configuration = configuration;
    this.connectedAt = connectedAt;
  }

  isOnline(time: number): boolean {
    return this.connectedAt <= time && (this.lostAt === null || this.lostAt > time);
  }

  /** `online`, or why not, in upstream's dashboard words (`offline: stopped|lost|timeout|time-limit`). */
  status(time: number): string {
    if (this.isOnline(time)) {
      return 'online';
    }
    if (this.connectedAt > time) {
      return 'not yet';
    }
    const reason =
      this.lostReason === 'stopped' || this.lostReason === 'time-limit'
        ? this.lostReason
        : this.lostReason === 'idle-timeout'
          ? 'timeout'
          : 'lost';
    return `offline: ${reason}`;
  }

  /** Average CPU load (0-1) of the last overview at `time`, or null without one. */
  cpuLoad(time: number): number | null {
    const hw = this.overviews.at(time);
    return hw === undefined ? null : averageCpu(hw);
  }

  /** Memory in use (0-1) by the last overview at `time`, or null without one. */
  memLoad(time: number): number | null {
    const m = this.overviews.at(time)?.memory_usage;
    return m === undefined || m.total <= 0 ? null : (m.total - m.free) / m.total;
  }

  /** Average GPU load (0-1) over the worker's NVIDIA and AMD GPUs at `time`, or null without any. */
  gpuLoad(time: number): number | null {
    const hw = this.overviews.at(time);
    const gpus = [...(hw?.nvidia_gpus?.gpus ?? []), ...(hw?.amd_gpus?.gpus ?? [])];
    return gpus.length === 0
      ? null
      : gpus.reduce((sum, g) => sum + g.processor_usage, 0) / gpus.length / 100;
  }

  /** Starts a run; returns its index for `endRun`. */
  startRun(job: number, task: number, time: number): number {
    this.runJobs.push(job);
    this.runTasks.push(task);
    this.runStarts.push(Math.max(time, this.runStarts.at(-1) ?? time));
    this.runEnds.push(NaN);
    this.openRuns.add(this.runJobs.length - 1);
    this.running.add(time, 1);
    return this.runJobs.length - 1;
  }

  endRun(index: number, time: number): void {
    if (!this.openRuns.delete(index)) {
      return;
    }
    this.runEnds[index] = time;
    this.longestMs = Math.max(this.longestMs, time - this.runStarts[index]!);
    this.running.add(time, -1);
  }

  /** Records the CPUs of an open run (the first overview that names them wins). */
  setRunCpus(index: number, cpus: number[]): void {
    if (this.openRuns.has(index) && !this.runCpus.has(index)) {
      this.runCpus.set(index, cpus);
    }
  }

  /** The CPU ids this worker manages (its `cpus` resource), or null when they are not ids. */
  managedCpus(): number[] | null {
    // Journals of odd origins may lack parts of a configuration.
    const cpus = this.configuration.resources?.resources?.find((r) => r.name === 'cpus');
    const ids: number[] = [];
    for (const label of cpus === undefined ? [] : descriptorKindGroups(cpus).flat()) {
      const id = Number(label);
      if (!Number.isInteger(id) || id < 0) {
        return null;
      }
      ids.push(id);
    }
    return ids.length > 0 ? ids : null;
  }

  /** Runs that overlap [from, to], in start order. */
  runsBetween(from: number, to: number): TaskRun[] {
    const last = lastAtOrBefore(this.runStarts, to);
    const out: TaskRun[] = [];
    // Open runs may be longer than any closed one: they are checked on their own.
    const floor = from - this.longestMs;
    let i = last;
    for (; i >= 0 && this.runStarts[i]! >= floor; i--) {
      const end = this.runEnds[i]!;
      if (Number.isNaN(end) || end >= from) {
        out.push(this.run(i));
      }
    }
    for (const open of this.openRuns) {
      if (open <= i) {
        out.push(this.run(open));
      }
    }
    return out.sort((a, b) => a.start - b.start);
  }

  private run(i: number): TaskRun {
    return {
      job: this.runJobs[i]!,
      task: this.runTasks[i]!,
      start: this.runStarts[i]!,
      end: this.runEnds[i]!,
      cpus: this.runCpus.get(i) ?? null,
    };
  }
}

export class JobView {
  readonly id: number;
  name: string;
  readonly createdAt: number;
  completedAt: number | null = null;
  readonly submits: SubmitDesc[] = [];
  readonly counts = stateSeries();
  readonly tasks = new TaskStore();
  /** Runs open on a worker, by task slot: the worker and the run's index there. */
  readonly openRuns = new Map<number, { worker: number; run: number }>();
  nTasks = 0;

  constructor(id: number, name: string, createdAt: number) {
    this.id = id;
    this.name = name;
    this.createdAt = createdAt;
  }

  countsAt(time: number): TaskCounts {
    return countsAt(this.counts, time);
  }

  /**
   * Rows `offset` to `offset + limit` of the tasks that have started or ended (in the order
   * they first did), as they were at `time`: what a table shows, whatever the job's size.
   */
  rows(offset: number, limit: number, time = Infinity): TaskRow[] {
    const out: TaskRow[] = [];
    const end = Math.min(this.tasks.size, offset + limit);
    for (let slot = Math.max(0, offset); slot < end; slot++) {
      out.push(this.tasks.row(slot, time));
    }
    return out;
  }
}

export interface QueueView {
  id: number;
  params: QueueParams;
  createdAt: number;
  removedAt: number | null;
}

export interface AllocationView {
  id: string;
  queueId: number;
  workerCount: number;
  queuedAt: number;
  startedAt: number | null;
  finishedAt: number | null;
}

function submitSize(submit: SubmitDesc): number {
  if (submit.kind === 'graph') {
    return submit.tasks.length;
  }
  let n = 0;
  for (const r of submit.ids) {
    n += r.count;
  }
  return n;
}

export class DashboardModel {
  readonly workers = new Map<number, WorkerView>();
  readonly jobs = new Map<number, JobView>();
  readonly queues = new Map<number, QueueView>();
  readonly allocations = new Map<string, AllocationView>();
  /** Tasks of every job, by state. */
  readonly counts = stateSeries();
  readonly workerCount = new StepSeries();
  /** Times of the first and the last event seen (null before any). */
  firstTime: number | null = null;
  lastTime: number | null = null;
  serverUid: string | null = null;

  countsAt(time: number): TaskCounts {
    return countsAt(this.counts, time);
  }

  apply(time: number, event: ServerEvent): void {
    this.firstTime ??= time;
    this.lastTime = Math.max(this.lastTime ?? time, time);
    switch (event.type) {
      case 'server-start':
        // A start after a crash: the workers of the run before were lost with their server.
        this.dropWorkers(time, 'connection-lost');
        this.serverUid = event.serverUid;
        return;
      case 'server-stop':
        // Nothing else is recorded of a stop: its workers go with the server.
        this.dropWorkers(time, 'stopped');
        return;
      case 'worker-connected':
        if (!this.workers.has(event.id)) {
          this.workers.set(event.id, new WorkerView(event.id, event.configuration, time));
          this.workerCount.add(time, 1);
        }
        return;
      case 'worker-lost': {
        const w = this.workers.get(event.id);
        if (w !== undefined && w.lostAt === null) {
          w.lostAt = time;
          w.lostReason = event.reason;
          this.workerCount.add(time, -1);
        }
        return;
      }
      case 'worker-overview': {
        const w = this.workers.get(event.id);
        if (w === undefined) {
          return;
        }
        if (event.hwState !== null) {
          w.overviews.push(time, event.hwState);
        }
        // A journal is a file: its events are checked like a peer's message.
        if (isOverviewTasks(event.tasks)) {
          const assigned = new Set<number>();
          for (const [jobId, taskId, cpus] of event.tasks) {
            cpus.forEach((c) => assigned.add(c));
            const job = this.jobs.get(jobId);
            const slot = job?.tasks.slotOf(taskId) ?? -1;
            const open = slot >= 0 ? job?.openRuns.get(slot) : undefined;
            if (open?.worker === w.id) {
              w.setRunCpus(open.run, cpus);
            }
          }
          w.assigned.push(time, assigned);
        }
        return;
      }
      case 'job-open':
        if (!this.jobs.has(event.job)) {
          this.jobs.set(event.job, new JobView(event.job, event.name, time));
        }
        return;
      case 'job-created': {
        let job = this.jobs.get(event.job);
        if (job === undefined) {
          job = new JobView(event.job, event.name, time);
          this.jobs.set(event.job, job);
        }
        job.submits.push(event.submit);
        const n = submitSize(event.submit);
        job.nTasks += n;
        job.completedAt = null;
        this.shift(job, WAITING, n, time);
        return;
      }
      case 'job-completed': {
        const job = this.jobs.get(event.job);
        if (job !== undefined) {
          job.completedAt = time;
        }
        return;
      }
      case 'task-started': {
        const job = this.jobs.get(event.jobId);
        if (job === undefined) {
          return;
        }
        const slot = job.tasks.slot(event.taskId);
        const before = job.tasks.state(slot);
        if (before !== WAITING && before !== RUNNING) {
          return;
        }
        // A start while running is a re-run whose restart a stream does not show.
        this.closeRun(job, slot, time);
        this.move(job, before, RUNNING, time);
        const worker = event.workers[0] ?? 0;
        job.tasks.start(slot, time, worker, event.instance);
        const w = this.workers.get(worker);
        if (w !== undefined) {
          job.openRuns.set(slot, { worker, run: w.startRun(job.id, event.taskId, time) });
        }
        return;
      }
      case 'task-finished':
        this.endTask(event.jobId, event.taskId, FINISHED, time);
        return;
      case 'task-failed':
        this.endTask(event.jobId, event.taskId, FAILED, time);
        return;
      case 'task-canceled':
      case 'task-aborted': {
        const state = event.type === 'task-canceled' ? CANCELED : ABORTED;
        for (const t of event.tasks) {
          this.endTask(t.jobId, t.taskId, state, time);
        }
        return;
      }
      case 'task-restarted': {
        const job = this.jobs.get(event.jobId);
        const slot = job?.tasks.slotOf(event.taskId) ?? -1;
        if (job !== undefined && slot >= 0 && job.tasks.state(slot) === RUNNING) {
          this.closeRun(job, slot, time);
          this.move(job, RUNNING, WAITING, time);
          job.tasks.end(slot, NaN, WAITING);
        }
        return;
      }
      case 'autoalloc-queue-created':
        this.queues.set(event.queueId, {
          id: event.queueId,
          params: event.params,
          createdAt: time,
          removedAt: null,
        });
        return;
      case 'autoalloc-queue-removed': {
        const q = this.queues.get(event.queueId);
        if (q !== undefined) {
          q.removedAt = time;
        }
        return;
      }
      case 'autoalloc-allocation-queued':
        this.allocations.set(event.allocationId, {
          id: event.allocationId,
          queueId: event.queueId,
          workerCount: event.workerCount,
          queuedAt: time,
          startedAt: null,
          finishedAt: null,
        });
        return;
      case 'autoalloc-allocation-started': {
        const a = this.allocations.get(event.allocationId);
        if (a !== undefined) {
          a.startedAt ??= time;
        }
        return;
      }
      case 'autoalloc-allocation-finished': {
        const a = this.allocations.get(event.allocationId);
        if (a !== undefined) {
          a.finishedAt ??= time;
        }
        return;
      }
      default:
        // Events that change nothing shown: job-close/cancel/forgotten (history
        // stays), task-notify, job-idle, tasks-sent, queue pause/resume/resources, id counters.
        return;
    }
  }

  private dropWorkers(time: number, reason: WorkerLostReason): void {
    for (const w of this.workers.values()) {
      if (w.lostAt === null) {
        w.lostAt = time;
        w.lostReason = reason;
        this.workerCount.add(time, -1);
      }
    }
  }

  private endTask(jobId: number, taskId: number, state: TaskStateCode, time: number): void {
    const job = this.jobs.get(jobId);
    if (job === undefined) {
      return;
    }
    const slot = job.tasks.slot(taskId);
    const before = job.tasks.state(slot);
    if (before !== WAITING && before !== RUNNING) {
      return;
    }
    this.closeRun(job, slot, time);
    this.move(job, before, state, time);
    job.tasks.end(slot, time, state);
  }

  private closeRun(job: JobView, slot: number, time: number): void {
    const open = job.openRuns.get(slot);
    if (open !== undefined) {
      job.openRuns.delete(slot);
      this.workers.get(open.worker)?.endRun(open.run, time);
    }
  }

  private move(job: JobView, from: TaskStateCode, to: TaskStateCode, time: number): void {
    if (from === to) {
      return;
    }
    this.shift(job, from, -1, time);
    this.shift(job, to, 1, time);
  }

  private shift(job: JobView, state: TaskStateCode, delta: number, time: number): void {
    const name = STATE_NAMES[state];
    job.counts[name].add(time, delta);
    this.counts[name].add(time, delta);
  }
}
