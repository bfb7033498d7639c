/**
 * Jobs and tasks as the server holds them, and the rules that derive a job's state.
 */
import type {
  SubmitDesc,
  TaskDesc,
  JobCounters,
  JobDetail,
  JobInfo,
  JobStatus,
  TaskInfo,
  TaskState,
} from '../transport/messages.js';
import type { TaskRequest } from '../scheduler/scheduler.js';
import { formatIdSet } from '../common/id-set.js';

export interface TaskRecord {
  id: number;
  state: TaskState;
  instance: number;
  crashCount: number;
  /** Index into the job's `descs`. */
  desc: number;
  /** Dependencies that have not finished yet; the task is queued only at 0. */
  waitingDeps: number;
  nDeps: number;
  /** Tasks of the same job that depend on this one. */
  consumers: number[] | null;
  entry: string | null;
  workerId: number | null;
  /** All workers of a multi-node task (the first is `workerId`), else null. */
  nodes: number[] | null;
  /** Sent to its worker ahead of time and not started yet (scheduler prefill). */
  prefilled: boolean;
  /** What the task holds on its worker while assigned (scheduler bookkeeping). */
  taken: Map<string, number> | null;
  startedAt: number | null;
  finishedAt: number | null;
  error: string | null;
}

/**
 * Tasks are created by the hundred thousand and most of them never need more than their
 * state: the rarely used fields live on the prototype until a task sets its own, so a waiting
 * task costs seven fields (measured: about 110 bytes with its map entry, instead of 180).
 */
class TaskObject implements TaskRecord {
  readonly id: number;
  state: TaskState = 'waiting';
  instance = 0;
  desc: number;
  workerId: number | null = null;
  startedAt: number | null = null;
  finishedAt: number | null = null;
  declare crashCount: number;
  declare waitingDeps: number;
  declare nDeps: number;
  declare consumers: number[] | null;
  declare entry: string | null;
  declare nodes: number[] | null;
  declare prefilled: boolean;
  declare taken: Map<string, number> | null;
  declare error: string | null;

  constructor(id: number, desc: number) {
    this.id = id;
    this.desc = desc;
  }
}

Object.assign(TaskObject.prototype, {
  crashCount: 0,
  waitingDeps: 0,
  nDeps: 0,
  consumers: null,
  entry: null,
  nodes: null,
  prefilled: false,
  taken: null,
  error: null,
});

/** A new waiting task of description `desc`. */
export function newTask(id: number, desc: number, entry: string | null, nDeps = 0): TaskRecord {
  const task = new TaskObject(id, desc);
  if (entry !== null) {
    task.entry = entry;
  }
  if (nDeps !== 0) {
    task.nDeps = nDeps;
  }
  return task;
}

export interface JobRecord {
  id: number;
  name: string;
  maxFails: number | null;
  /** Every submit, as the user made it (for `hq job info`). */
  submits: SubmitDesc[];
  /** Task descriptions (one per array submit, one per graph task) and their scheduler requests. */
  descs: { taskDesc: TaskDesc; submitDir: string; request: TaskRequest }[];
  tasks: Map<number, TaskRecord>;
  counters: JobCounters;
  isOpen: boolean;
  cancelReason: string | null;
  submittedAt: number;
  completedAt: number | null;
}

export function isTerminal(state: TaskState): boolean {
  return state === 'finished' || state === 'failed' || state === 'canceled' || state === 'aborted';
}

export function emptyCounters(): JobCounters {
  return { running: 0, finished: 0, failed: 0, canceled: 0, aborted: 0 };
}

/** Upstream's order of rules: the first that matches gives the job's state. */
export function jobStatus(nTasks: number, c: JobCounters, isOpen: boolean): JobStatus {
  const completed = c.finished + c.failed + c.canceled + c.aborted;
  if (c.running > 0) {
    return 'running';
  }
  if (completed < nTasks) {
    return 'waiting';
  }
  if (c.failed > 0) {
    return 'failed';
  }
  if (c.aborted > 0) {
    return 'aborted';
  }
  if (c.canceled > 0) {
    return 'canceled';
  }
  return isOpen ? 'opened' : 'finished';
}

/** Every task has ended (an open job may still get more). */
export function isJobIdle(job: JobRecord): boolean {
  const c = job.counters;
  return c.finished + c.failed + c.canceled + c.aborted === job.tasks.size;
}

/** Every task has ended and no more can come. */
export function isJobCompleted(job: JobRecord): boolean {
  return !job.isOpen && isJobIdle(job);
}

export function jobInfo(job: JobRecord): JobInfo {
  return {
    id: job.id,
    name: job.name,
    nTasks: job.tasks.size,
    counters: { ...job.counters },
    isOpen: job.isOpen,
    cancelReason: job.cancelReason,
  };
}

export function taskInfo(task: TaskRecord): TaskInfo {
  return {
    id: task.id,
    state: task.state,
    instance: task.instance,
    workers: task.nodes ?? (task.workerId === null ? [] : [task.workerId]),
    startedAt: task.startedAt,
    finishedAt: task.finishedAt,
    error: task.error,
  };
}

/**
 * A job as clients see it. A summary carries only the failed tasks besides the id list and
 * the workers used, so that `hq job info` on a million-task job does not ship every task.
 */
export function jobDetail(job: JobRecord, withTasks: boolean | 'summary'): JobDetail {
  const tasks: TaskInfo[] = [];
  let summary: JobDetail['summary'];
  if (withTasks === 'summary') {
    const ids: number[] = [];
    const workers = new Set<number>();
    for (const task of job.tasks.values()) {
      ids.push(task.id);
      if (task.startedAt !== null) {
        for (const w of task.nodes ?? (task.workerId === null ? [] : [task.workerId])) {
          workers.add(w);
        }
      }
      if (task.state === 'failed') {
        tasks.push(taskInfo(task));
      }
    }
    if (!ids.every((id, i) => i === 0 || ids[i - 1]! < id)) {
      ids.sort((a, b) => a - b);
    }
    summary = { taskIds: formatIdSet(ids), workers: [...workers].sort((a, b) => a - b) };
  } else if (withTasks) {
    for (const task of job.tasks.values()) {
      tasks.push(taskInfo(task));
    }
  }
  tasks.sort((a, b) => a.id - b.id);
  return {
    ...(summary === undefined ? {} : { summary }),
    info: jobInfo(job),
    maxFails: job.maxFails,
    submits: job.submits,
    tasks,
    submittedAt: job.submittedAt,
    completedAt: job.completedAt,
  };
}
