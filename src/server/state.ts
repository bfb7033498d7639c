/**
 * The server's durable state (jobs, tasks, id counters, queues) and the one function that
 * changes it: `ServerState.apply`. Live operation and restore both go through `apply`; a
 * restore is a replay of the journal followed by `settleAfterRestore`.
 *
 * Invariants:
 * - `apply` records exactly what its event says; consequences (a failed task aborting its
 *   consumers, a job completing) are decided by the live server and arrive as their own events.
 * - `apply` never throws on an event that does not fit the state (an unknown job, a task in an
 *   unexpected state): a journal from an odd sequence is skipped over, not fatal.
 * - Job counters always match the states of the job's tasks.
 * - Live-only bookkeeping (which worker holds a task, scheduler reservations) is kept on the
 *   records by the server but never set here, except what an event states.
 */
import type {
  QueueParams,
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
import type { ResourceDescriptor, ResourceRequest } from '../common/resources.js';
import { logger } from '../common/log.js';
import type { ServerEvent, TaskId } from './events.js';
import { newTask, TaskTable, type TaskRecord } from './task-table.js';

export type { TaskRecord } from './task-table.js';

const log = logger('hq::server');

export interface JobRecord {
  id: number;
  name: string;
  maxFails: number | null;
  /** Every submit, as the user made it (for `hq job info`). */
  submits: SubmitDesc[];
  /** Task descriptions (one per array submit, one per graph task) and their scheduler requests. */
  descs: { taskDesc: TaskDesc; submitDir: string; request: TaskRequest }[];
  tasks: TaskTable;
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

export function taskInfo(task: Readonly<TaskRecord>): TaskInfo {
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
    // Tasks without a record have never started and have not failed.
    const workers = new Set<number>();
    for (const task of job.tasks.touched()) {
      if (task.startedAt !== null) {
        for (const w of task.nodes ?? (task.workerId === null ? [] : [task.workerId])) {
          workers.add(w);
        }
      }
      if (task.state === 'failed') {
        tasks.push(taskInfo(task));
      }
    }
    summary = { taskIds: job.tasks.formatIds(), workers: [...workers].sort((a, b) => a - b) };
  } else if (withTasks) {
    for (const task of job.tasks.views()) {
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

/** The scheduler's view of a task's resource request variants (none: one CPU). */
export function toTaskRequest(variants: ResourceRequest[]): TaskRequest {
  const convert = (rq: ResourceRequest): TaskRequest => ({
    needs: rq.resources.map((e) => ({
      name: e.resource,
      amount: e.request.kind === 'all' ? 'all' : e.request.amount,
    })),
    minTimeMs: rq.minTimeMs,
    nNodes: rq.nNodes,
    weight: rq.weight,
  });
  const [first, ...rest] = variants;
  if (first === undefined) {
    return { needs: [{ name: 'cpus', amount: 10_000 }], minTimeMs: 0 };
  }
  const main = convert(first);
  if (rest.length > 0) {
    main.alternatives = rest.map(convert);
  }
  return main;
}

export function newJob(
  id: number,
  name: string,
  maxFails: number | null,
  isOpen: boolean,
  at: number,
): JobRecord {
  return {
    id,
    name,
    maxFails,
    submits: [],
    descs: [],
    tasks: new TaskTable(),
    counters: emptyCounters(),
    isOpen,
    cancelReason: null,
    submittedAt: at,
    completedAt: null,
  };
}

export interface QueueState {
  params: QueueParams;
  paused: boolean;
  knownWorkerResources: ResourceDescriptor | null;
}

/** What an applied event made ready to schedule (filled by `apply`, read by the server). */
export interface Readied {
  /** Graph tasks whose last dependency just finished, or new graph tasks without pending deps. */
  tasks: number[];
}

export class ServerState {
  readonly jobs = new Map<number, JobRecord>();
  /** Highest ids ever handed out (0: none yet). */
  maxJobId = 0;
  maxWorkerId = 0;
  maxQueueId = 0;
  serverUid: string | null = null;
  readonly queues = new Map<number, QueueState>();
  /** Set by `apply` for job-created and task-finished: tasks of that job now ready to run. */
  readonly readied: Readied = { tasks: [] };

  apply(time: number, event: ServerEvent): void {
    switch (event.type) {
      case 'server-start':
        // A start after work was recorded is a restart: the previous run ended here, so the
        // replay settles its work exactly as that restart did (a live start settles nothing).
        this.settleAfterRestore();
        this.serverUid = event.serverUid;
        return;
      case 'worker-connected':
        this.maxWorkerId = Math.max(this.maxWorkerId, event.id);
        return;
      case 'job-open': {
        this.maxJobId = Math.max(this.maxJobId, event.job);
        this.jobs.set(event.job, newJob(event.job, event.name, event.maxFails, true, time));
        return;
      }
      case 'job-created':
        return this.applySubmit(time, event);
      case 'job-close': {
        const job = this.jobs.get(event.job);
        if (job !== undefined) {
          job.isOpen = false;
        }
        return;
      }
      case 'job-cancel': {
        const job = this.jobs.get(event.job);
        if (job !== undefined && event.reason !== null) {
          job.cancelReason = event.reason;
        }
        return;
      }
      case 'job-completed': {
        const job = this.jobs.get(event.job);
        if (job !== undefined) {
          job.completedAt = time;
        }
        return;
      }
      case 'job-forgotten':
        this.jobs.delete(event.job);
        return;
      case 'task-started': {
        const task = this.task(event);
        if (task === null) {
          return;
        }
        const [job, record] = task;
        if (record.state !== 'waiting') {
          return;
        }
        record.state = 'running';
        record.instance = event.instance;
        record.variant = event.variant;
        record.startedAt = time;
        record.workerId = event.workers[0] ?? null;
        if (event.workers.length > 1) {
          record.nodes = event.workers;
        }
        job.counters.running++;
        return;
      }
      case 'task-finished': {
        const task = this.task(event);
        if (task === null) {
          return;
        }
        const [job, record] = task;
        this.end(job, record, 'finished', time);
        this.readied.tasks.length = 0;
        for (const id of record.consumers ?? []) {
          const c = job.tasks.get(id);
          if (c !== undefined && c.state === 'waiting' && c.waitingDeps > 0) {
            if (--c.waitingDeps === 0) {
              this.readied.tasks.push(id);
            }
          }
        }
        return;
      }
      case 'task-failed': {
        const task = this.task(event);
        if (task !== null) {
          this.end(task[0], task[1], 'failed', time);
          task[1].error = event.error;
        }
        return;
      }
      case 'task-canceled':
      case 'task-aborted':
        this.endAll(event.tasks, event.type === 'task-canceled' ? 'canceled' : 'aborted', time);
        return;
      case 'task-restarted': {
        // Running, or sent to a worker that was lost before it reported the start.
        const task = this.task(event);
        if (task === null || isTerminal(task[1].state)) {
          return;
        }
        const [job, record] = task;
        if (record.state === 'running') {
          job.counters.running--;
        }
        record.state = 'waiting';
        record.instance++;
        record.startedAt = null;
        record.workerId = null;
        if (event.crashed) {
          record.crashCount++;
        }
        return;
      }
      case 'tasks-sent': {
        const job = this.jobs.get(event.jobId);
        if (job === undefined) {
          return;
        }
        const r = event.ranges;
        for (let i = 0; i + 1 < r.length; i += 2) {
          const end = r[i]! + r[i + 1]!;
          for (let id = r[i]!; id < end; id++) {
            const record = job.tasks.get(id);
            if (record !== undefined && record.state === 'waiting') {
              record.workerId = event.workerId;
            }
          }
        }
        return;
      }
      case 'autoalloc-queue-created':
        this.maxQueueId = Math.max(this.maxQueueId, event.queueId);
        this.queues.set(event.queueId, {
          params: event.params,
          paused: false,
          knownWorkerResources: null,
        });
        return;
      case 'autoalloc-queue-removed':
        this.queues.delete(event.queueId);
        return;
      case 'autoalloc-queue-paused':
      case 'autoalloc-queue-resumed': {
        const queue = this.queues.get(event.queueId);
        if (queue !== undefined) {
          queue.paused = event.type === 'autoalloc-queue-paused';
        }
        return;
      }
      case 'autoalloc-queue-resources': {
        const queue = this.queues.get(event.queueId);
        if (queue !== undefined) {
          queue.knownWorkerResources = event.resources;
        }
        return;
      }
      case 'id-counters':
        this.maxJobId = Math.max(this.maxJobId, event.job);
        this.maxWorkerId = Math.max(this.maxWorkerId, event.worker);
        this.maxQueueId = Math.max(this.maxQueueId, event.queue);
        return;
      case 'server-stop':
      case 'worker-lost':
      case 'worker-overview':
      case 'autoalloc-allocation-queued':
      case 'autoalloc-allocation-started':
      case 'autoalloc-allocation-finished':
      case 'task-notify':
      case 'job-idle':
        return;
    }
  }

  private task(ref: TaskId): [JobRecord, TaskRecord] | null {
    const job = this.jobs.get(ref.jobId);
    const task = job?.tasks.get(ref.taskId);
    if (job === undefined || task === undefined) {
      log.warn(`event for unknown task ${ref.jobId}@${ref.taskId} ignored`);
      return null;
    }
    return [job, task];
  }

  private end(job: JobRecord, task: TaskRecord, state: TaskState, time: number): void {
    if (isTerminal(task.state)) {
      return;
    }
    if (task.state === 'running') {
      job.counters.running--;
    } else if (state === 'finished' || state === 'failed') {
      task.startedAt ??= time;
    }
    task.state = state;
    task.finishedAt = time;
    job.counters[state as 'finished' | 'failed' | 'canceled' | 'aborted']++;
  }

  private endAll(tasks: TaskId[], state: 'canceled' | 'aborted', time: number): void {
    for (const ref of tasks) {
      const t = this.task(ref);
      if (t !== null) {
        this.end(t[0], t[1], state, time);
      }
    }
  }

  private applySubmit(time: number, event: Extract<ServerEvent, { type: 'job-created' }>): void {
    let job = this.jobs.get(event.job);
    if (event.closedJob) {
      if (job !== undefined) {
        log.warn(`journal: job ${event.job} created twice; the second submit is ignored`);
        return;
      }
      job = newJob(event.job, event.name, event.maxFails, false, time);
      this.jobs.set(job.id, job);
      this.maxJobId = Math.max(this.maxJobId, job.id);
    } else if (job === undefined || !job.isOpen) {
      log.warn(`journal: submit into job ${event.job}, which is not open, ignored`);
      return;
    }
    const submit = event.submit;
    job.submits.push(submit);
    job.completedAt = null;
    this.readied.tasks.length = 0;
    if (submit.kind === 'array') {
      const desc = addDesc(job, submit.taskDesc, submit.submitDir);
      let index = 0;
      for (const range of submit.ids) {
        job.tasks.addRange(range, desc, submit.entries, index);
        index += range.count;
      }
      return;
    }
    // Graph tasks built by a program (the API, job files) mostly repeat one description:
    // sharing it makes one scheduler request and one copy in each worker's compute frame.
    // Tasks with stdin (function tasks) are unique anyway and skip the comparison.
    const shared = new Map<string, number>();
    for (const t of submit.tasks) {
      const key = t.taskDesc.program.stdin === null ? JSON.stringify(t.taskDesc) : null;
      let desc = key === null ? undefined : shared.get(key);
      if (desc === undefined) {
        desc = addDesc(job, t.taskDesc, submit.submitDir);
        if (key !== null) {
          shared.set(key, desc);
        }
      }
      job.tasks.add(newTask(t.id, desc, null, t.deps.length));
    }
    for (const t of submit.tasks) {
      const record = job.tasks.get(t.id)!;
      let doomed = false;
      for (const dep of t.deps) {
        const d = job.tasks.get(dep);
        if (d === undefined) {
          continue;
        }
        (d.consumers ??= []).push(t.id);
        if (!isTerminal(d.state)) {
          record.waitingDeps++;
        } else if (d.state !== 'finished') {
          doomed = true; // the server aborts it next
        }
      }
      if (record.waitingDeps === 0 && !doomed) {
        this.readied.tasks.push(t.id);
      }
    }
  }

  /**
   * After a replay: finished jobs are dropped (only their ids count), and tasks that were
   * running when the server went down, or had been sent to a worker that may have started
   * them, wait again with the next instance id, so no instance id ever runs twice.
   */
  settleAfterRestore(): void {
    for (const job of [...this.jobs.values()]) {
      if (job.completedAt !== null) {
        this.jobs.delete(job.id);
        continue;
      }
      // Tasks without a record are waiting and were never anywhere: nothing to settle.
      for (const task of job.tasks.touched()) {
        if (task.state === 'running') {
          task.state = 'waiting';
          task.instance++;
          task.startedAt = null;
          job.counters.running--;
        } else if (task.state === 'waiting' && task.workerId !== null) {
          task.instance++;
        }
        if (task.state === 'waiting') {
          task.workerId = null;
          task.nodes = null;
        }
      }
    }
  }
}

function addDesc(job: JobRecord, taskDesc: TaskDesc, submitDir: string): number {
  job.descs.push({ taskDesc, submitDir, request: toTaskRequest(taskDesc.resources) });
  return job.descs.length - 1;
}
