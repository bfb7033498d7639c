/**
 * The running server: owns both listening ports, every connection, the jobs, the workers and
 * the scheduler. Single-threaded: handlers mutate state directly; scheduling runs coalesced
 * after the current batch of messages (see requestSchedule).
 */
import type * as tls from 'node:tls';
import { HqError, errorMessage } from '../common/errors.js';
import { logger } from '../common/log.js';
import { VERSION } from '../common/version.js';
import { idRangesToArray, type IdSelector } from '../common/id-set.js';
import { Scheduler, type TaskRequest } from '../scheduler/scheduler.js';
import { listen, type Connection } from '../transport/connection.js';
import type {
  ArraySubmit,
  JobStatus,
  SubmitDesc,
  TaskDesc,
  ClientRequest,
  ClientRpc,
  ComputeTask,
  ServerInfo,
  ServerToWorker,
  ExplainItem,
  TaskNotification,
  TaskRef,
  TaskUpdate,
  WorkerConfiguration,
  WorkerInfo,
  WorkerLostReason,
  WorkerTaskShared,
} from '../transport/messages.js';
import { PROTOCOL_VERSION } from '../transport/messages.js';
import { parseClientRequest, parseWorkerMessage } from '../transport/validate.js';
import { CountingSink, type EventSink, type ServerEvent } from './events.js';
import {
  newTask,
  emptyCounters,
  isJobCompleted,
  isJobIdle,
  jobStatus,
  isTerminal,
  jobDetail,
  jobInfo,
  type JobRecord,
  type TaskRecord,
} from './state.js';
import { descriptorTotals, type ResourceRequest } from '../common/resources.js';
import { fillPlaceholders, hasPlaceholders } from '../common/placeholders.js';
import * as path from 'node:path';
import { AutoAllocService } from './autoalloc/service.js';

const log = logger('hq::server');

const REGISTER_TIMEOUT_MS = 15_000;
const HEARTBEAT_CHECK_INTERVAL_MS = 500;

export interface ServerConfig {
  serverUid: string;
  clientHost: string;
  workerHost: string;
  clientPort: number;
  workerPort: number;
  clientKey: Buffer;
  workerKey: Buffer;
  idleTimeoutMs: number | null;
  journalPath: string | null;
}

interface WorkerRecord {
  id: number;
  configuration: WorkerConfiguration;
  connection: Connection | null;
  startedAt: number;
  ended: { at: number; reason: WorkerLostReason } | null;
  lastSeen: number;
  /** Tasks assigned to this worker (running or about to run), keyed by task key. */
  tasks: Map<number, TaskRecord & { jobId: number }>;
  runningCount: number;
  stopRequested: boolean;
  /** A reason the worker announced itself before closing. */
  announcedReason: WorkerLostReason | null;
  lastTaskStarted: { jobId: number; taskId: number; at: number } | null;
  /** The multi-node task holding this worker. */
  multiNode: { jobId: number; taskId: number; main: boolean } | null;
}

type Waiter = {
  jobs: number[];
  withoutClose: boolean;
  done: () => void;
  /** Receives task notifications of `jobs` while waiting (`--on-notify`). */
  notify: ((n: TaskNotification) => void) | null;
};

function key(jobId: number, taskId: number): number {
  return jobId * 4294967296 + taskId;
}

/** The scheduler's view of a task's resource request variants (none: one CPU). */
function toTaskRequest(variants: ResourceRequest[]): TaskRequest {
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

export class HqServer {
  private readonly jobs = new Map<number, JobRecord>();
  private readonly workers = new Map<number, WorkerRecord>();
  private readonly scheduler = new Scheduler();
  private readonly clients = new Set<Connection>();
  private readonly waiters = new Set<Waiter>();
  private readonly listeners: tls.Server[] = [];
  private readonly events: EventSink = new CountingSink();
  private nextJobId = 1;
  private nextWorkerId = 1;
  private scheduleQueued = false;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private stopped = false;
  private stopResolve: (() => void) | null = null;
  /** Created with the first queue: a server without autoalloc pays nothing for it. */
  private autoalloc: AutoAllocService | null = null;
  /** The numbered instance directory (set by bootstrap once it exists). */
  instanceDir: string | null = null;
  readonly startDate = Date.now();
  readonly stoppedPromise: Promise<void>;

  readonly config: ServerConfig;

  constructor(config: ServerConfig) {
    this.config = config;
    this.stoppedPromise = new Promise((resolve) => {
      this.stopResolve = resolve;
    });
  }

  /** Listens on both ports; resolves with the ports actually bound. */
  async start(bindHost: string): Promise<{ clientPort: number; workerPort: number }> {
    const clientServer = await listen({
      host: bindHost,
      port: this.config.clientPort,
      role: 'client',
      key: this.config.clientKey,
      onConnection: (c) => this.onClientConnection(c),
      onRefused: (reason, remote) =>
        log.warn(`client connection from ${remote} refused: ${reason}`),
    });
    this.listeners.push(clientServer);
    const workerServer = await listen({
      host: bindHost,
      port: this.config.workerPort,
      role: 'worker',
      key: this.config.workerKey,
      onConnection: (c) => this.onWorkerConnection(c),
      onRefused: (reason, remote) =>
        log.warn(`worker connection from ${remote} refused: ${reason}`),
    });
    this.listeners.push(workerServer);
    const port = (s: tls.Server): number => {
      const a = s.address();
      return a !== null && typeof a === 'object' ? a.port : 0;
    };
    this.config.clientPort = port(clientServer);
    this.config.workerPort = port(workerServer);
    this.heartbeatTimer = setInterval(() => this.checkHeartbeats(), HEARTBEAT_CHECK_INTERVAL_MS);
    this.emit({ type: 'server-start', serverUid: this.config.serverUid });
    return { clientPort: this.config.clientPort, workerPort: this.config.workerPort };
  }

  /** Closes every connection and listener; resolves `stoppedPromise`. Idempotent. */
  stop(): void {
    if (this.stopped) {
      return;
    }
    this.stopped = true;
    this.emit({ type: 'server-stop' });
    // Allocations must not outlive the server: cancel them before the process may exit.
    const autoalloc = this.autoalloc?.stop() ?? Promise.resolve();
    if (this.heartbeatTimer) {
      clearInterval(this.heartbeatTimer);
    }
    for (const l of this.listeners) {
      l.close();
    }
    for (const c of this.clients) {
      c.close('server stopped');
    }
    for (const w of this.workers.values()) {
      w.connection?.close('server stopped');
    }
    void autoalloc.finally(() => this.stopResolve?.());
  }

  private autoallocService(): AutoAllocService {
    if (this.autoalloc === null) {
      if (this.instanceDir === null) {
        throw new HqError('HQ_INTERNAL', 'The server directory is not ready yet');
      }
      this.autoalloc = new AutoAllocService({
        instanceDir: this.instanceDir,
        hqPath: path.resolve(process.argv[1] ?? 'hq'),
        query: (queries) => this.scheduler.queryNewWorkers(queries),
        emit: (event) => this.emit(event),
      });
    }
    return this.autoalloc;
  }

  /** Replies once `work` settles (requests that run batch-system commands). */
  private replyLater(connection: Connection, reqId: number, work: () => Promise<unknown>): void {
    work().then(
      (data) => this.reply(connection, reqId, data),
      (e: unknown) => connection.send({ op: 'response', reqId, ok: false, error: errorMessage(e) }),
    );
  }

  info(): ServerInfo {
    return {
      serverUid: this.config.serverUid,
      clientHost: this.config.clientHost,
      clientPort: this.config.clientPort,
      workerHost: this.config.workerHost,
      workerPort: this.config.workerPort,
      version: VERSION,
      pid: process.pid,
      startDate: this.startDate,
      journalPath: this.config.journalPath,
    };
  }

  private emit(event: ServerEvent): void {
    this.events.record(Date.now(), event);
  }

  // ---- clients ---------------------------------------------------------------------------

  private onClientConnection(connection: Connection): void {
    this.clients.add(connection);
    connection.onClose(() => this.clients.delete(connection));
    connection.listen((raw) => {
      let request: ClientRequest;
      try {
        request = parseClientRequest(raw);
      } catch (e) {
        log.warn(`closing client connection: ${errorMessage(e)}`);
        connection.close('invalid request');
        return;
      }
      this.handleClientRequest(connection, request);
    });
  }

  private reply(connection: Connection, reqId: number, data: unknown): void {
    connection.send({ op: 'response', reqId, ok: true, data });
  }

  private handleClientRequest(connection: Connection, request: ClientRequest): void {
    const { reqId } = request;
    try {
      switch (request.op) {
        case 'server-info':
          return this.reply(connection, reqId, this.info());
        case 'server-stop':
          log.info('stop requested by a client');
          this.reply(connection, reqId, null);
          void connection.flush().then(() => this.stop());
          return;
        case 'debug-dump':
          return this.reply(connection, reqId, this.debugDump());
        case 'submit':
          return this.reply(connection, reqId, this.submit(request));
        case 'submit-graph':
          return this.reply(connection, reqId, this.submitGraph(request));
        case 'task-explain':
          return this.reply(connection, reqId, this.explain(request.selector, request.taskId));
        case 'job-open':
          return this.reply(connection, reqId, this.openJob(request.name, request.maxFails));
        case 'job-close':
          return this.reply(connection, reqId, this.closeJobs(request.selector));
        case 'job-forget':
          return this.reply(connection, reqId, this.forgetJobs(request.selector, request.states));
        case 'job-list':
          return this.reply(
            connection,
            reqId,
            [...this.jobs.values()].map((j) => jobInfo(j)),
          );
        case 'job-info': {
          const { found, missing } = this.selectJobs(request.selector);
          const data: ClientRpc['job-info']['res'] = {
            jobs: found.map((j) => jobDetail(j, request.withTasks)),
            missing,
          };
          return this.reply(connection, reqId, data);
        }
        case 'job-cancel':
          return this.reply(connection, reqId, this.cancelJobs(request.selector, request.reason));
        case 'wait-jobs':
          return this.waitJobs(
            request.selector,
            request.withoutClose,
            (data) => this.reply(connection, reqId, data),
            request.notify === true
              ? (notification) => connection.send({ op: 'event', reqId, notification })
              : null,
          );
        case 'worker-list':
          return this.reply(
            connection,
            reqId,
            [...this.workers.values()].map((w) => this.workerInfo(w)),
          );
        case 'worker-info': {
          const { found, missing } = this.selectWorkers(request.selector);
          return this.reply(connection, reqId, {
            workers: found.map((w) => this.workerInfo(w)),
            missing,
          });
        }
        case 'worker-stop':
          return this.reply(connection, reqId, this.stopWorkers(request.selector));
        case 'alloc-add': {
          const service = this.autoallocService();
          return this.replyLater(connection, reqId, async () => ({
            queueId: await service.addQueue(request.params, request.dryRun),
          }));
        }
        case 'alloc-dry-run': {
          const service = this.autoallocService();
          return this.replyLater(connection, reqId, async () => {
            await service.dryRun(request.params);
            return null;
          });
        }
        case 'alloc-list':
          return this.reply(connection, reqId, this.autoalloc?.listQueues() ?? []);
        case 'alloc-info':
          return this.reply(
            connection,
            reqId,
            this.autoallocService().queueAllocations(request.queueId),
          );
        case 'alloc-allocation':
          return this.reply(
            connection,
            reqId,
            this.autoallocService().allocation(request.allocationId),
          );
        case 'alloc-remove': {
          const service = this.autoallocService();
          return this.replyLater(connection, reqId, async () => {
            await service.removeQueue(request.queueId, request.force);
            return null;
          });
        }
        case 'alloc-pause':
        case 'alloc-resume':
          this.autoallocService().setQueueState(
            request.queueId,
            request.op === 'alloc-pause' ? 'paused' : 'active',
          );
          return this.reply(connection, reqId, null);
      }
    } catch (e) {
      connection.send({ op: 'response', reqId, ok: false, error: errorMessage(e) });
    }
  }

  private selectIds<T>(
    selector: IdSelector,
    map: Map<number, T>,
    lastOf: () => number | undefined,
  ): { found: T[]; missing: number[] } {
    const found: T[] = [];
    const missing: number[] = [];
    if (selector.kind === 'all') {
      for (const id of [...map.keys()].sort((a, b) => a - b)) {
        found.push(map.get(id)!);
      }
    } else if (selector.kind === 'last') {
      const id = lastOf();
      if (id !== undefined) {
        found.push(map.get(id)!);
      }
    } else {
      for (const id of idRangesToArray(selector.ids)) {
        const item = map.get(id);
        if (item === undefined) {
          missing.push(id);
        } else {
          found.push(item);
        }
      }
    }
    return { found, missing };
  }

  private selectJobs(selector: IdSelector): { found: JobRecord[]; missing: number[] } {
    return this.selectIds(selector, this.jobs, () =>
      this.jobs.size ? this.nextJobId - 1 : undefined,
    );
  }

  private selectWorkers(selector: IdSelector): { found: WorkerRecord[]; missing: number[] } {
    return this.selectIds(selector, this.workers, () =>
      this.workers.size ? this.nextWorkerId - 1 : undefined,
    );
  }

  /**
   * The submit-time pass over task paths: JOB_ID, SUBMIT_DIR and SERVER_UID are known now;
   * the cwd becomes absolute, and paths without placeholders left become absolute too.
   */
  private resolveSubmitPaths(jobId: number, desc: TaskDesc, submitDir: string): TaskDesc {
    const values = {
      JOB_ID: String(jobId),
      SUBMIT_DIR: submitDir,
      SERVER_UID: this.config.serverUid,
    };
    const program = desc.program;
    const cwd = path.resolve(submitDir, fillPlaceholders(program.cwd, values));
    const stdio = (def: typeof program.stdout): typeof program.stdout => {
      if (def.kind !== 'file') {
        return def;
      }
      const p = fillPlaceholders(fillPlaceholders(def.path, values), { CWD: cwd });
      return { ...def, path: hasPlaceholders(p) ? p : path.resolve(cwd, p) };
    };
    const stream = desc.streamPath;
    return {
      ...desc,
      program: { ...program, cwd, stdout: stdio(program.stdout), stderr: stdio(program.stderr) },
      streamPath:
        stream === null ? null : path.resolve(submitDir, fillPlaceholders(stream, values)),
    };
  }

  /** The job a submit goes into: a new one (not registered yet) or an open one. */
  private targetJob(jobId: number | null, name: string, maxFails: number | null): JobRecord {
    if (jobId === null) {
      return this.newJob(this.nextJobId, name, maxFails, false);
    }
    const existing = this.jobs.get(jobId);
    if (existing === undefined) {
      throw new HqError('HQ_NOT_FOUND', `Job ${jobId} not found.`);
    }
    if (!existing.isOpen) {
      throw new HqError('HQ_INVALID_ARGUMENT', `Job ${jobId} is not opened.`);
    }
    return existing;
  }

  /**
   * Adds validated tasks to `job` (registering a new job), queues those whose dependencies
   * are done, and records the submit. Nothing is changed when validation fails before this.
   */
  private addTasks(
    job: JobRecord,
    submit: SubmitDesc,
    tasks: { id: number; desc: number; entry: string | null; deps: number[] }[],
  ): void {
    this.registerSubmit(job, submit);
    for (const t of tasks) {
      job.tasks.set(t.id, newTask(t.id, t.desc, t.entry, t.deps.length));
    }
    const toAbort: TaskRecord[] = [];
    for (const t of tasks) {
      const record = job.tasks.get(t.id)!;
      for (const dep of t.deps) {
        const d = job.tasks.get(dep)!;
        (d.consumers ??= []).push(t.id);
        if (d.state === 'failed' || d.state === 'canceled' || d.state === 'aborted') {
          toAbort.push(d);
        } else if (d.state !== 'finished') {
          record.waitingDeps++;
        }
      }
    }
    for (const t of tasks) {
      const record = job.tasks.get(t.id)!;
      if (record.waitingDeps === 0 && record.state === 'waiting') {
        const d = job.descs[record.desc]!;
        this.scheduler.enqueue(job.id, t.id, d.taskDesc.priority, d.request);
      }
    }
    for (const d of toAbort) {
      this.abortConsumers(job, d);
    }
    this.checkJobCompleted(job);
    this.requestSchedule();
  }

  /** Registers a new job (or a submit into an open one) before its tasks are added. */
  private registerSubmit(job: JobRecord, submit: SubmitDesc): void {
    if (!this.jobs.has(job.id)) {
      this.nextJobId++;
      this.jobs.set(job.id, job);
    }
    job.submits.push(submit);
    job.completedAt = null;
    this.emit({ type: 'job-created', job: job.id, name: job.name, maxFails: job.maxFails, submit });
  }

  /**
   * The tasks of an array submit: no dependencies, so every one is ready; each id range goes
   * into the scheduler as one run, and no per-task object is made besides the task itself.
   */
  private addArrayTasks(job: JobRecord, array: ArraySubmit, desc: number): void {
    this.registerSubmit(job, { kind: 'array', ...array });
    const { priority } = array.taskDesc;
    const request = job.descs[desc]!.request;
    let index = 0;
    for (const range of array.ids) {
      for (let i = 0, id = range.start; i < range.count; i++, id += range.step) {
        const entry = array.entries === null ? null : (array.entries[index] ?? null);
        job.tasks.set(id, newTask(id, desc, entry));
        index++;
      }
      this.scheduler.enqueueRun(job.id, range.start, range.count, range.step, priority, request);
    }
    this.checkJobCompleted(job);
    this.requestSchedule();
  }

  private addDesc(job: JobRecord, taskDesc: TaskDesc, submitDir: string): number {
    job.descs.push({ taskDesc, submitDir, request: toTaskRequest(taskDesc.resources) });
    return job.descs.length - 1;
  }

  private submit(request: ClientRpc['submit']['req']): ClientRpc['submit']['res'] {
    const job = this.targetJob(request.jobId, request.name, request.maxFails);
    const array: ArraySubmit = {
      ...request.array,
      taskDesc: this.resolveSubmitPaths(job.id, request.array.taskDesc, request.array.submitDir),
    };
    if (array.autoIds) {
      let first = 0;
      for (const id of job.tasks.keys()) {
        first = Math.max(first, id + 1);
      }
      const count = array.entries === null ? 1 : array.entries.length;
      array.ids = count === 0 ? [] : [{ start: first, count, step: 1 }];
      array.autoIds = false;
    }
    let nTasks = 0;
    const seen = new Set<number>();
    for (const range of array.ids) {
      if (range.count < 0 || range.step < 1 || !Number.isSafeInteger(range.start)) {
        throw new HqError('HQ_INVALID_ARGUMENT', 'Invalid task id range');
      }
      nTasks += range.count;
      // Ids must be new; checking each one only matters where some could collide.
      if (job.tasks.size > 0 || array.ids.length > 1) {
        for (let i = 0, id = range.start; i < range.count; i++, id += range.step) {
          if (job.tasks.has(id) || seen.has(id)) {
            throw new HqError('HQ_INVALID_ARGUMENT', `Task ${id} already exists in job ${job.id}.`);
          }
          seen.add(id);
        }
      }
    }
    if (nTasks === 0) {
      throw new HqError('HQ_INVALID_ARGUMENT', 'Submitted job has no tasks');
    }
    if (array.entries !== null && array.entries.length < nTasks) {
      throw new HqError('HQ_INVALID_ARGUMENT', 'Fewer entries than task ids');
    }
    const desc = this.addDesc(job, array.taskDesc, array.submitDir);
    this.addArrayTasks(job, array, desc);
    return { jobId: job.id, nTasks };
  }

  private submitGraph(request: ClientRpc['submit-graph']['req']): ClientRpc['submit-graph']['res'] {
    const job = this.targetJob(request.jobId, request.name, request.maxFails);
    const { submitDir } = request.graph;
    const ids = new Set<number>();
    for (const t of request.graph.tasks) {
      if (job.tasks.has(t.id)) {
        throw new HqError('HQ_INVALID_ARGUMENT', `Task ${t.id} already exists in job ${job.id}.`);
      }
      if (ids.has(t.id)) {
        throw new HqError('HQ_INVALID_ARGUMENT', `Task ${t.id} is defined more than once.`);
      }
      ids.add(t.id);
    }
    // Dependencies point at earlier tasks of this submit or at tasks already in the job, so
    // a valid graph is acyclic by construction.
    const seen = new Set<number>();
    for (const t of request.graph.tasks) {
      for (const dep of t.deps) {
        if (!seen.has(dep) && !job.tasks.has(dep)) {
          throw new HqError('HQ_INVALID_ARGUMENT', `Invalid dependency on ${t.id}`);
        }
      }
      seen.add(t.id);
    }
    const tasks = request.graph.tasks.map((t) => ({
      ...t,
      taskDesc: this.resolveSubmitPaths(job.id, t.taskDesc, submitDir),
    }));
    this.addTasks(
      job,
      { kind: 'graph', tasks, submitDir },
      tasks.map((t) => ({
        id: t.id,
        desc: this.addDesc(job, t.taskDesc, submitDir),
        entry: null,
        deps: t.deps,
      })),
    );
    return { jobId: job.id, nTasks: tasks.length };
  }

  private explain(selector: IdSelector, taskId: number): ClientRpc['task-explain']['res'] {
    const job = this.selectJobs(selector).found[0];
    if (job === undefined) {
      throw new HqError('HQ_NOT_FOUND', 'Job not found');
    }
    const task = job.tasks.get(taskId);
    if (task === undefined) {
      throw new HqError('HQ_NOT_FOUND', `Task ${taskId} not found in job ${job.id}`);
    }
    const desc = job.descs[task.desc]!.taskDesc;
    const now = Date.now();
    const groups = new Map<string, number>();
    const online = [...this.workers.values()].filter((w) => w.ended === null);
    for (const w of online) {
      groups.set(w.configuration.group, (groups.get(w.configuration.group) ?? 0) + 1);
    }
    const workers = online
      .sort((a, b) => a.id - b.id)
      .map((w) => {
        const sizes = descriptorTotals(w.configuration.resources);
        const remaining =
          w.configuration.timeLimitMs === null
            ? null
            : Math.max(0, w.startedAt + w.configuration.timeLimitMs - now);
        const variants = desc.resources.map((rq) => {
          const items: ExplainItem[] = [];
          if (rq.minTimeMs > 0) {
            items.push({ kind: 'time', minTimeMs: rq.minTimeMs, remainingMs: remaining });
          }
          if (rq.nNodes > 0) {
            items.push({
              kind: 'group',
              nNodes: rq.nNodes,
              groupSize: groups.get(w.configuration.group) ?? 0,
            });
          } else {
            for (const e of rq.resources) {
              items.push({
                kind: 'resources',
                resource: e.resource,
                request: e.request.kind === 'all' ? 1 : e.request.amount,
                worker: sizes.get(e.resource) ?? 0,
              });
            }
          }
          return items;
        });
        return { workerId: w.id, variants };
      });
    return {
      jobId: job.id,
      taskId,
      explanation: { nTaskDeps: task.nDeps, nWaitingDeps: task.waitingDeps, workers },
    };
  }

  /** A task that will never finish makes every task depending on it (transitively) aborted. */
  private abortConsumers(job: JobRecord, task: TaskRecord): void {
    const stack = [...(task.consumers ?? [])];
    const aborted: number[] = [];
    const byWorker = new Map<number, TaskRef[]>();
    while (stack.length > 0) {
      const c = job.tasks.get(stack.pop()!);
      if (c === undefined || isTerminal(c.state)) {
        continue;
      }
      this.takeOffWorker(job, c, byWorker);
      c.state = 'aborted';
      c.finishedAt = Date.now();
      job.counters.aborted++;
      aborted.push(c.id);
      stack.push(...(c.consumers ?? []));
    }
    this.sendCancels(byWorker);
    if (aborted.length > 0) {
      this.emit({ type: 'task-aborted', job: job.id, tasks: aborted });
    }
  }

  /** A finished task may make its consumers ready. */
  private releaseConsumers(job: JobRecord, task: TaskRecord): void {
    for (const id of task.consumers ?? []) {
      const c = job.tasks.get(id);
      if (c === undefined || c.state !== 'waiting' || c.waitingDeps === 0) {
        continue;
      }
      if (--c.waitingDeps === 0) {
        const d = job.descs[c.desc]!;
        this.scheduler.enqueue(job.id, c.id, d.taskDesc.priority, d.request);
      }
    }
  }

  private newJob(id: number, name: string, maxFails: number | null, isOpen: boolean): JobRecord {
    return {
      id,
      name,
      maxFails,
      submits: [],
      descs: [],
      tasks: new Map(),
      counters: emptyCounters(),
      isOpen,
      cancelReason: null,
      submittedAt: Date.now(),
      completedAt: null,
    };
  }

  private openJob(name: string, maxFails: number | null): ClientRpc['job-open']['res'] {
    const job = this.newJob(this.nextJobId++, name, maxFails, true);
    this.jobs.set(job.id, job);
    this.emit({ type: 'job-open', job: job.id, name, maxFails });
    return { jobId: job.id };
  }

  private closeJobs(selector: IdSelector): ClientRpc['job-close']['res'] {
    const { found, missing } =
      selector.kind === 'all'
        ? { found: [...this.jobs.values()].filter((j) => j.isOpen), missing: [] as number[] }
        : this.selectJobs(selector);
    const results: ClientRpc['job-close']['res']['results'] = missing.map((jobId) => ({
      jobId,
      result: 'not-found',
    }));
    for (const job of found) {
      if (!job.isOpen) {
        results.push({ jobId: job.id, result: 'already-closed' });
        continue;
      }
      job.isOpen = false;
      this.emit({ type: 'job-close', job: job.id });
      results.push({ jobId: job.id, result: 'closed' });
      this.checkJobCompleted(job);
    }
    return { results };
  }

  private forgetJobs(selector: IdSelector, states: JobStatus[]): ClientRpc['job-forget']['res'] {
    const { found, missing } = this.selectJobs(selector);
    let forgotten = 0;
    let ignored = missing.length;
    for (const job of found) {
      const status = jobStatus(job.tasks.size, job.counters, job.isOpen);
      if (job.completedAt !== null && states.includes(status)) {
        this.jobs.delete(job.id);
        this.emit({ type: 'job-forgotten', job: job.id });
        forgotten++;
      } else {
        ignored++;
      }
    }
    return { forgotten, ignored };
  }

  private cancelJobs(selector: IdSelector, reason: string | null): ClientRpc['job-cancel']['res'] {
    const { found, missing } =
      selector.kind === 'all'
        ? {
            found: [...this.jobs.values()].filter((j) => !isJobCompleted(j)),
            missing: [] as number[],
          }
        : this.selectJobs(selector);
    const results: ClientRpc['job-cancel']['res']['results'] = missing.map((jobId) => ({
      jobId,
      canceled: 0,
      alreadyFinished: null,
    }));
    for (const job of found) {
      const canceled: number[] = [];
      const byWorker = new Map<number, TaskRef[]>();
      this.scheduler.dequeueJob(job.id);
      for (const task of job.tasks.values()) {
        if (isTerminal(task.state)) {
          continue;
        }
        canceled.push(task.id);
        this.takeOffWorker(job, task, byWorker, true);
        task.state = 'canceled';
        task.finishedAt = Date.now();
        job.counters.canceled++;
      }
      this.sendCancels(byWorker);
      if (canceled.length > 0) {
        this.emit({ type: 'task-canceled', job: job.id, tasks: canceled });
        if (reason !== null) {
          job.cancelReason = reason;
        }
        this.emit({ type: 'job-cancel', job: job.id, reason });
      }
      results.push({
        jobId: job.id,
        canceled: canceled.length,
        alreadyFinished: job.tasks.size - canceled.length,
      });
      this.checkJobCompleted(job);
    }
    this.requestSchedule();
    return { results };
  }

  /** Detaches a non-terminal task from the queue or its worker (it is about to end). */
  private takeOffWorker(
    job: JobRecord,
    task: TaskRecord,
    byWorker: Map<number, TaskRef[]>,
    jobDequeued = false,
  ): void {
    if (task.workerId === null) {
      // Only a task whose dependencies are done is in the scheduler's queue.
      if (!jobDequeued && task.waitingDeps === 0) {
        this.scheduler.dequeue(job.id, task.id);
      }
      return;
    }
    const worker = this.workers.get(task.workerId);
    if (task.state === 'running') {
      job.counters.running--;
      if (worker) {
        worker.runningCount--;
      }
    }
    if (worker) {
      worker.tasks.delete(key(job.id, task.id));
      let refs = byWorker.get(worker.id);
      if (!refs) {
        refs = [];
        byWorker.set(worker.id, refs);
      }
      refs.push({ jobId: job.id, taskId: task.id, instance: task.instance });
    }
    if (task.taken) {
      this.scheduler.release(task.workerId, task.taken);
      task.taken = null;
    } else if (task.prefilled) {
      this.scheduler.prefillDone(task.workerId);
      this.scheduler.release(task.workerId, new Map());
    }
    task.prefilled = false;
    this.detachNodes(task);
  }

  /** Frees the workers held by a multi-node task that is ending or leaving them. */
  private detachNodes(task: TaskRecord): void {
    if (task.nodes === null) {
      return;
    }
    this.scheduler.releaseNodes(task.nodes);
    for (const id of task.nodes) {
      const w = this.workers.get(id);
      if (w?.multiNode?.taskId === task.id) {
        if (!w.multiNode.main) {
          this.sendToWorker(id, { op: 'reservation', reserved: false });
        }
        w.multiNode = null;
      }
    }
  }

  private sendCancels(byWorker: Map<number, TaskRef[]>): void {
    for (const [workerId, tasks] of byWorker) {
      this.sendToWorker(workerId, { op: 'cancel', tasks });
    }
  }

  private waitJobs(
    selector: IdSelector,
    withoutClose: boolean,
    respond: (data: ClientRpc['wait-jobs']['res']) => void,
    notify: ((n: TaskNotification) => void) | null = null,
  ): void {
    const { found, missing } = this.selectJobs(selector);
    const jobs = found.map((j) => j.id);
    const finish = (): void => {
      const res = { finished: 0, failed: 0, canceled: 0, invalid: missing.length, jobs };
      for (const id of jobs) {
        const job = this.jobs.get(id);
        if (!job) {
          res.invalid++;
        } else if (job.counters.failed > 0 || job.counters.aborted > 0) {
          res.failed++;
        } else if (job.counters.canceled > 0) {
          res.canceled++;
        } else {
          res.finished++;
        }
      }
      respond(res);
    };
    const waiter: Waiter = { jobs, withoutClose, done: finish, notify };
    if (this.waiterReady(waiter)) {
      finish();
    } else {
      this.waiters.add(waiter);
    }
  }

  private waiterReady(waiter: Waiter): boolean {
    return waiter.jobs.every((id) => {
      const job = this.jobs.get(id);
      return job === undefined || isJobCompleted(job) || (waiter.withoutClose && isJobIdle(job));
    });
  }

  /** Notifications are not state: they go to whoever waits on the job now, and are gone. */
  private onNotify(workerId: number, jobId: number, taskId: number, message: string): void {
    for (const waiter of this.waiters) {
      if (waiter.notify !== null && waiter.jobs.includes(jobId)) {
        waiter.notify({ jobId, taskId, workerId, message });
      }
    }
  }

  /** Called after any task of `job` ends or the job closes: completes it and wakes waiters. */
  private checkJobCompleted(job: JobRecord): void {
    if (!isJobIdle(job)) {
      return;
    }
    if (job.completedAt === null && isJobCompleted(job)) {
      job.completedAt = Date.now();
      this.emit({ type: 'job-completed', job: job.id });
    }
    for (const waiter of [...this.waiters]) {
      if (this.waiterReady(waiter)) {
        this.waiters.delete(waiter);
        waiter.done();
      }
    }
  }

  // ---- workers ---------------------------------------------------------------------------

  private workerInfo(w: WorkerRecord): WorkerInfo {
    return {
      id: w.id,
      configuration: w.configuration,
      startedAt: w.startedAt,
      ended: w.ended,
      runningTasks: w.runningCount,
      assignedTasks: w.tasks.size,
      lastTaskStarted: w.lastTaskStarted,
      multiNode: w.multiNode === null ? null : { main: w.multiNode.main },
    };
  }

  private onWorkerConnection(connection: Connection): void {
    const timer = setTimeout(() => {
      log.warn('worker did not register in time; closing its connection');
      connection.close('registration timeout');
    }, REGISTER_TIMEOUT_MS);
    let worker: WorkerRecord | null = null;
    connection.onClose((reason) => {
      clearTimeout(timer);
      if (worker !== null) {
        const w = worker;
        const lostReason: WorkerLostReason = w.stopRequested
          ? 'stopped'
          : (w.announcedReason ?? 'connection-lost');
        log.debug(`worker ${w.id} connection closed (${reason})`);
        this.workerLost(w, lostReason);
      }
    });
    connection.listen((raw) => {
      try {
        const message = parseWorkerMessage(raw);
        if (worker === null) {
          if (message.op !== 'register') {
            throw new HqError('HQ_PROTOCOL', 'the first message of a worker must be register');
          }
          if (message.protocol !== PROTOCOL_VERSION || message.version !== VERSION) {
            throw new HqError(
              'HQ_PROTOCOL',
              `worker version ${message.version} does not match server version ${VERSION}`,
            );
          }
          clearTimeout(timer);
          worker = this.registerWorker(connection, message.configuration);
          return;
        }
        worker.lastSeen = Date.now();
        switch (message.op) {
          case 'register':
            throw new HqError('HQ_PROTOCOL', 'worker registered twice');
          case 'heartbeat':
            return;
          case 'stopping':
            worker.announcedReason = message.reason;
            return;
          case 'task-updates':
            this.onTaskUpdates(worker, message.updates);
            return;
          case 'notify':
            this.onNotify(worker.id, message.jobId, message.taskId, message.message);
            return;
        }
      } catch (e) {
        log.warn(`closing worker connection: ${errorMessage(e)}`);
        connection.close('protocol error');
      }
    });
  }

  private registerWorker(connection: Connection, configuration: WorkerConfiguration): WorkerRecord {
    const id = this.nextWorkerId++;
    const now = Date.now();
    const worker: WorkerRecord = {
      id,
      configuration,
      connection,
      startedAt: now,
      ended: null,
      lastSeen: now,
      tasks: new Map(),
      runningCount: 0,
      stopRequested: false,
      announcedReason: null,
      lastTaskStarted: null,
      multiNode: null,
    };
    this.workers.set(id, worker);
    const totals = descriptorTotals(configuration.resources);
    const endsAt = configuration.timeLimitMs === null ? null : now + configuration.timeLimitMs;
    this.scheduler.addWorker(id, totals, endsAt, {
      group: configuration.group,
      minUtilization: configuration.minUtilization,
    });
    this.emit({ type: 'worker-connected', id, configuration });
    this.autoalloc?.onWorkerConnected(id, configuration);
    log.info(`worker ${id} registered from ${configuration.hostname}`);
    connection.send({
      op: 'registered',
      workerId: id,
      serverUid: this.config.serverUid,
      idleTimeoutMs: this.config.idleTimeoutMs,
    } satisfies ServerToWorker);
    this.requestSchedule();
    return worker;
  }

  private sendToWorker(workerId: number, message: ServerToWorker): void {
    this.workers.get(workerId)?.connection?.send(message);
  }

  private checkHeartbeats(): void {
    const now = Date.now();
    for (const w of this.workers.values()) {
      if (w.ended === null && w.connection !== null) {
        if (now - w.lastSeen > 2 * w.configuration.heartbeatIntervalMs + 1000) {
          log.warn(`worker ${w.id} missed its heartbeats`);
          const c = w.connection;
          this.workerLost(w, 'heartbeat-lost');
          c.close('heartbeat lost');
        }
      }
    }
  }

  private workerLost(worker: WorkerRecord, reason: WorkerLostReason): void {
    if (worker.ended !== null) {
      return;
    }
    worker.ended = { at: Date.now(), reason };
    worker.connection = null;
    this.scheduler.removeWorker(worker.id);
    this.emit({ type: 'worker-lost', id: worker.id, reason });
    this.autoalloc?.onWorkerLost(
      worker.id,
      worker.configuration,
      reason,
      worker.ended.at - worker.startedAt,
    );
    log.info(`worker ${worker.id} lost: ${reason}`);
    const isFailure = reason === 'connection-lost' || reason === 'heartbeat-lost';
    const touched = new Set<JobRecord>();
    const lost = [...worker.tasks.values()];
    // A lost secondary node of a multi-node task does not stop it: its root goes on.
    for (const task of lost) {
      const job = this.jobs.get(task.jobId);
      const record = job?.tasks.get(task.id);
      if (!job || !record) {
        continue;
      }
      const started = record.state === 'running';
      if (started) {
        job.counters.running--;
      }
      record.prefilled = false;
      this.detachNodes(record);
      record.nodes = null;
      record.workerId = null;
      record.taken = null;
      const { taskDesc: desc, request } = job.descs[record.desc]!;
      const ref = { jobId: job.id, taskId: record.id, instance: record.instance };
      if (!started) {
        // Sent to the worker but never started there: nothing crashed, it just goes back.
        this.scheduler.enqueue(job.id, record.id, desc.priority, request);
      } else if (desc.crashLimit === 'never-restart') {
        this.failTask(
          job,
          record,
          'Task was running on a lost worker while never restart flag was set.',
        );
      } else if (
        isFailure &&
        typeof desc.crashLimit === 'number' &&
        ++record.crashCount >= desc.crashLimit
      ) {
        this.failTask(
          job,
          record,
          `Task was running on a worker that was lost; the task has occurred ${record.crashCount} times in this situation and limit was reached.`,
        );
      } else {
        this.emit({ type: 'task-restarted', task: ref });
        record.state = 'waiting';
        record.instance++;
        record.startedAt = null;
        this.scheduler.enqueue(job.id, record.id, desc.priority, request);
      }
      touched.add(job);
    }
    worker.tasks.clear();
    worker.runningCount = 0;
    for (const job of touched) {
      this.checkJobCompleted(job);
    }
    this.requestSchedule();
  }

  private stopWorkers(selector: IdSelector): ClientRpc['worker-stop']['res'] {
    const { found, missing } =
      selector.kind === 'all'
        ? { found: [...this.workers.values()].filter((w) => w.ended === null), missing: [] }
        : this.selectWorkers(selector);
    const results: ClientRpc['worker-stop']['res']['results'] = [];
    for (const id of missing) {
      results.push({ workerId: id, result: 'not-found' });
    }
    for (const w of found) {
      if (w.ended !== null || w.connection === null) {
        results.push({ workerId: w.id, result: 'already-stopped' });
        continue;
      }
      w.stopRequested = true;
      w.connection.send({ op: 'stop' } satisfies ServerToWorker);
      results.push({ workerId: w.id, result: 'stopped' });
    }
    return { results };
  }

  // ---- tasks -----------------------------------------------------------------------------

  private failTask(job: JobRecord, task: TaskRecord, error: string): void {
    task.state = 'failed';
    task.error = error;
    task.finishedAt = Date.now();
    job.counters.failed++;
    this.emit({
      type: 'task-failed',
      task: { jobId: job.id, taskId: task.id, instance: task.instance },
      error,
    });
    this.abortConsumers(job, task);
    if (job.maxFails !== null && job.counters.failed > job.maxFails) {
      const aborted: number[] = [];
      const byWorker = new Map<number, TaskRef[]>();
      this.scheduler.dequeueJob(job.id);
      for (const t of job.tasks.values()) {
        if (!isTerminal(t.state)) {
          this.takeOffWorker(job, t, byWorker, true);
          t.state = 'aborted';
          t.finishedAt = Date.now();
          job.counters.aborted++;
          aborted.push(t.id);
        }
      }
      this.sendCancels(byWorker);
      if (aborted.length > 0) {
        this.emit({ type: 'task-aborted', job: job.id, tasks: aborted });
      }
    }
  }

  private onTaskUpdates(worker: WorkerRecord, updates: TaskUpdate[]): void {
    const touched = new Set<JobRecord>();
    let freed = false;
    for (const u of updates) {
      const job = this.jobs.get(u.jobId);
      const task = job?.tasks.get(u.taskId);
      if (
        !job ||
        !task ||
        isTerminal(task.state) ||
        task.instance !== u.instance ||
        task.workerId !== worker.id
      ) {
        continue; // stale: the task was canceled, aborted or restarted meanwhile
      }
      const ref = { jobId: u.jobId, taskId: u.taskId, instance: u.instance };
      if (u.state === 'running') {
        if (task.state === 'waiting') {
          if (task.prefilled) {
            task.prefilled = false;
            this.scheduler.prefillDone(worker.id);
            task.taken = this.scheduler.takeForStart(worker.id, job.descs[task.desc]!.request);
          }
          task.state = 'running';
          task.startedAt = u.at;
          job.counters.running++;
          worker.runningCount++;
          worker.lastTaskStarted = { jobId: u.jobId, taskId: u.taskId, at: u.at };
          for (const id of task.nodes ?? []) {
            const node = this.workers.get(id);
            if (node !== undefined) {
              node.lastTaskStarted = worker.lastTaskStarted;
            }
          }
          this.emit({ type: 'task-started', task: ref, worker: worker.id });
        }
        continue;
      }
      if (task.state === 'running') {
        job.counters.running--;
        worker.runningCount--;
      } else if (task.startedAt === null) {
        task.startedAt = u.at;
      }
      worker.tasks.delete(key(u.jobId, u.taskId));
      if (task.taken) {
        this.scheduler.release(worker.id, task.taken);
        task.taken = null;
        freed = true;
      } else if (task.prefilled) {
        task.prefilled = false;
        this.scheduler.prefillDone(worker.id);
        this.scheduler.release(worker.id, new Map());
        freed = true;
      }
      if (task.nodes !== null) {
        this.detachNodes(task);
        freed = true;
      }
      if (u.state === 'finished') {
        task.state = 'finished';
        task.finishedAt = u.at;
        job.counters.finished++;
        this.emit({ type: 'task-finished', task: ref });
        this.releaseConsumers(job, task);
      } else {
        task.finishedAt = u.at;
        this.failTask(job, task, u.error);
      }
      touched.add(job);
    }
    for (const job of touched) {
      this.checkJobCompleted(job);
    }
    if (freed) {
      this.requestSchedule();
    }
  }

  private requestSchedule(): void {
    if (this.scheduleQueued || this.stopped) {
      return;
    }
    this.autoalloc?.onTasksChanged();
    this.scheduleQueued = true;
    setImmediate(() => {
      this.scheduleQueued = false;
      this.runSchedule();
    });
  }

  private runSchedule(): void {
    const assignments = this.scheduler.schedule(Date.now());
    if (assignments.length === 0) {
      return;
    }
    const batches = new Map<
      number,
      { shared: WorkerTaskShared[]; index: Map<string, number>; tasks: ComputeTask[] }
    >();
    for (const a of assignments) {
      const job = this.jobs.get(a.jobId)!;
      const task = job.tasks.get(a.taskId)!;
      const worker = this.workers.get(a.workerId)!;
      task.workerId = a.workerId;
      task.taken = a.prefilled === true ? null : a.taken;
      task.prefilled = a.prefilled === true;
      let nodes: string[] | null = null;
      if (a.workers !== undefined) {
        task.nodes = a.workers;
        nodes = a.workers.map((id, i) => {
          const w = this.workers.get(id)!;
          w.multiNode = { jobId: a.jobId, taskId: a.taskId, main: i === 0 };
          if (i > 0) {
            this.sendToWorker(id, { op: 'reservation', reserved: true });
          }
          return w.configuration.hostname;
        });
      }
      worker.tasks.set(key(a.jobId, a.taskId), Object.assign(task, { jobId: a.jobId }));
      let batch = batches.get(a.workerId);
      if (!batch) {
        batch = { shared: [], index: new Map(), tasks: [] };
        batches.set(a.workerId, batch);
      }
      const sharedKey = `${a.jobId}:${task.desc}`;
      let sharedIndex = batch.index.get(sharedKey);
      if (sharedIndex === undefined) {
        const d = job.descs[task.desc]!;
        sharedIndex = batch.shared.length;
        batch.shared.push({ taskDesc: d.taskDesc, submitDir: d.submitDir });
        batch.index.set(sharedKey, sharedIndex);
      }
      batch.tasks.push({
        jobId: a.jobId,
        taskId: a.taskId,
        instance: task.instance,
        shared: sharedIndex,
        entry: task.entry,
        nodes,
        variant: a.variant ?? 0,
      });
    }
    for (const [workerId, batch] of batches) {
      this.sendToWorker(workerId, { op: 'compute', shared: batch.shared, tasks: batch.tasks });
    }
  }

  private debugDump(): unknown {
    return {
      tako: {
        waiting: this.scheduler.waitingCount,
        workers: [...this.workers.values()]
          .filter((w) => w.ended === null)
          .map((w) => ({ id: w.id, assigned: w.tasks.size, running: w.runningCount })),
      },
      jobs: [...this.jobs.values()].map((j) => jobInfo(j)),
    };
  }
}
