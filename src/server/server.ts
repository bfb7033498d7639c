/**
 * The running server: owns both listening ports, every connection, the workers and the
 * scheduler, and decides what happens to jobs and tasks. It changes the durable state only by
 * emitting events (`emit` → EventHub → ServerState.apply → journal → streams); the rest of
 * what it does is the live side of those changes: scheduling, messages to workers, waiters.
 *
 * Single-threaded: handlers run to completion; scheduling runs coalesced after the current
 * batch of messages (see requestSchedule).
 */
import type * as tls from 'node:tls';
import { HqError } from '../common/errors.js';
import { logger } from '../common/log.js';
import { hqPath } from '../common/self.js';
import { VERSION } from '../common/version.js';
import { idRangesCount, idRangesToArray, type IdSelector } from '../common/id-set.js';
import { descriptorTotals } from '../common/resources.js';
import { Scheduler } from '../scheduler/scheduler.js';
import { listen, type Connection } from '../transport/connection.js';
import type {
  ArraySubmit,
  ClientRpc,
  JobStatus,
  ServerInfo,
  ServerToWorker,
  SubmitDesc,
  TaskNotification,
  TaskRef,
  TaskUpdate,
  WorkerConfiguration,
  WorkerLostReason,
} from '../transport/messages.js';
import { AutoAllocService } from './autoalloc/service.js';
import { onClientConnection } from './client-handlers.js';
import { EventHub } from './event-hub.js';
import type { ServerEvent, TaskId, TimedEvent } from './events.js';
import { explainTask } from './explain.js';
import { reconstructHistory } from './history.js';
import type { JournalWriter } from './journal/writer.js';
import { readJournal } from './journal/format.js';
import { pruneRecords } from './journal/prune.js';
import { resolveSubmitPaths, validateArraySubmit, validateGraphSubmit } from './submit.js';
import {
  isJobCompleted,
  isJobIdle,
  isTerminal,
  jobInfo,
  jobStatus,
  ServerState,
  type JobRecord,
  type TaskRecord,
} from './state.js';
import { JobWaiters } from './waiters.js';
import { dispatchAssignments, sentEvents } from './dispatch.js';
import { taskKey as key, type WorkerRecord } from './workers.js';
import { onWorkerConnection } from './worker-link.js';

const log = logger('hq::server');

const HEARTBEAT_CHECK_INTERVAL_MS = 500;
/** How often workers send overviews while a client watches them. */
const WATCHED_OVERVIEW_INTERVAL_MS = 1000;
const REFUSAL_WINDOW_MS = 60_000;
const REFUSALS_TOLD_PER_WINDOW = 10;
/**
 * The most ids one selector may name. Each is looked up and may come back as missing, so a
 * selector such as `0-4294967294` used to hold the event loop and grow the server past a
 * gigabyte until it died; a million is far more jobs or workers than a server ever holds.
 */
export const MAX_SELECTED_IDS = 1_000_000;

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

/**
 * Refused handshakes, logged at a bounded rate: a scanner or a misconfigured client retrying
 * in a loop must not fill the log. The first few of each minute are told; then a count.
 */
class RefusalLog {
  private windowStart = 0;
  private told = 0;
  private suppressed = 0;

  note(role: 'client' | 'worker', remote: string, reason: string): void {
    const now = Date.now();
    if (now - this.windowStart >= REFUSAL_WINDOW_MS) {
      if (this.suppressed > 0) {
        log.warn(`${this.suppressed} more connections refused in the last minute`);
      }
      this.windowStart = now;
      this.told = 0;
      this.suppressed = 0;
    }
    if (this.told < REFUSALS_TOLD_PER_WINDOW) {
      this.told++;
      log.warn(`${role} connection from ${remote} refused: ${reason}`);
    } else {
      this.suppressed++;
    }
  }
}

export class HqServer {
  readonly state: ServerState;
  readonly hub: EventHub;
  readonly workers = new Map<number, WorkerRecord>();
  private readonly scheduler = new Scheduler();
  readonly clients = new Set<Connection>();
  private readonly waiters: JobWaiters;
  private readonly listeners: tls.Server[] = [];
  private scheduleQueued = false;
  /** Stream clients that asked for worker overviews. */
  private overviewWatchers = 0;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private lastHeartbeatCheck = Date.now();
  private readonly refusals = new RefusalLog();
  stopped = false;
  private stopResolve: (() => void) | null = null;
  /** Created with the first queue: a server without autoalloc pays nothing for it. */
  private autoalloc: AutoAllocService | null = null;
  /** The numbered instance directory (set by bootstrap once it exists). */
  instanceDir: string | null = null;
  readonly startDate = Date.now();
  readonly stoppedPromise: Promise<void>;

  readonly config: ServerConfig;

  constructor(
    config: ServerConfig,
    state = new ServerState(),
    journal: JournalWriter | null = null,
  ) {
    this.config = config;
    this.state = state;
    this.hub = new EventHub(state, journal);
    this.waiters = new JobWaiters(state.jobs);
    this.hub.journalOverview = (id) =>
      this.workers.get(id)?.configuration.overviewIntervalMs != null;
    this.stoppedPromise = new Promise((resolve) => {
      this.stopResolve = resolve;
    });
  }

  get jobs(): Map<number, JobRecord> {
    return this.state.jobs;
  }

  /** Listens on both ports; resolves with the ports actually bound. */
  async start(bindHost: string): Promise<{ clientPort: number; workerPort: number }> {
    const clientServer = await listen({
      host: bindHost,
      port: this.config.clientPort,
      role: 'client',
      key: this.config.clientKey,
      onConnection: (c) => onClientConnection(this, c),
      onRefused: (reason, remote) => this.refusals.note('client', remote, reason),
    });
    this.listeners.push(clientServer);
    const workerServer = await listen({
      host: bindHost,
      port: this.config.workerPort,
      role: 'worker',
      key: this.config.workerKey,
      onConnection: (c) => onWorkerConnection(this, c),
      onRefused: (reason, remote) => this.refusals.note('worker', remote, reason),
    });
    this.listeners.push(workerServer);
    const port = (s: tls.Server): number => {
      const a = s.address();
      return a !== null && typeof a === 'object' ? a.port : 0;
    };
    this.config.clientPort = port(clientServer);
    this.config.workerPort = port(workerServer);
    this.heartbeatTimer = setInterval(() => this.checkHeartbeats(), HEARTBEAT_CHECK_INTERVAL_MS);
    this.emit({ type: 'server-start', serverUid: this.config.serverUid }, this.startDate);
    return { clientPort: this.config.clientPort, workerPort: this.config.workerPort };
  }

  /**
   * Puts restored work back in motion (after a replay): ready tasks into the scheduler, queues
   * into the autoalloc service. Nothing here is journaled: the journal already holds it.
   */
  resumeRestored(): void {
    for (const job of this.jobs.values()) {
      for (const run of job.tasks.readyRuns()) {
        const d = job.descs[run.desc]!;
        this.scheduler.enqueueRun(
          job.id,
          run.start,
          run.count,
          run.step,
          d.taskDesc.priority,
          d.request,
        );
      }
    }
    if (this.state.queues.size > 0 || this.state.maxQueueId > 0) {
      const service = this.autoallocService();
      service.restoreQueues(this.state.maxQueueId, this.state.queues);
    }
    this.requestSchedule();
  }

  /**
   * Closes every connection and listener; resolves `stoppedPromise`. Idempotent. Stream
   * clients are dropped before `server-stop`, and what the stop itself does to workers and
   * tasks is not recorded: a restore must not see it as crashes.
   */
  stop(): void {
    if (this.stopped) {
      return;
    }
    this.hub.dropSubscribers();
    this.emit({ type: 'server-stop' });
    this.stopped = true;
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
    void autoalloc.finally(() => {
      this.hub.journal?.close();
      this.stopResolve?.();
    });
  }

  autoallocService(): AutoAllocService {
    if (this.autoalloc === null) {
      if (this.instanceDir === null) {
        throw new HqError('HQ_INTERNAL', 'The server directory is not ready yet');
      }
      this.autoalloc = new AutoAllocService({
        instanceDir: this.instanceDir,
        hqPath: hqPath(),
        query: (queries) => this.scheduler.queryNewWorkers(queries),
        emit: (event) => this.emit(event),
      });
    }
    return this.autoalloc;
  }

  get autoallocIfAny(): AutoAllocService | null {
    return this.autoalloc;
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

  /** Every state change goes through here; nothing is recorded once the server is stopping. */
  emit(event: ServerEvent, time = Date.now()): void {
    if (this.stopped) {
      return;
    }
    this.hub.emit(event, time);
  }

  // ---- selection ---------------------------------------------------------------------------

  private selectIds<T>(
    selector: IdSelector,
    map: Map<number, T>,
    last: number,
  ): { found: T[]; missing: number[] } {
    const found: T[] = [];
    const missing: number[] = [];
    if (selector.kind === 'all') {
      for (const id of [...map.keys()].sort((a, b) => a - b)) {
        found.push(map.get(id)!);
      }
    } else if (selector.kind === 'last') {
      const item = map.get(last);
      if (item !== undefined) {
        found.push(item);
      }
    } else {
      const named = idRangesCount(selector.ids);
      if (named > MAX_SELECTED_IDS) {
        throw new HqError(
          'HQ_INVALID_ARGUMENT',
          `The selection names ${named} ids; at most ${MAX_SELECTED_IDS} can be selected at once`,
        );
      }
      // Ranges may overlap, and a step of 0 names one id again and again: each id counts once
      // (a job named twice was forgotten twice, and a range of a million ids with step 0 made
      // a million copies of one job's info).
      const seen = new Set<number>();
      for (const id of idRangesToArray(selector.ids)) {
        if (seen.has(id)) {
          continue;
        }
        seen.add(id);
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

  selectJobs(selector: IdSelector): { found: JobRecord[]; missing: number[] } {
    return this.selectIds(selector, this.jobs, this.state.maxJobId);
  }

  selectWorkers(selector: IdSelector): { found: WorkerRecord[]; missing: number[] } {
    return this.selectIds(selector, this.workers, this.state.maxWorkerId);
  }

  // ---- submits -----------------------------------------------------------------------------

  /** The job a submit goes into: a new id, or an open job. */
  private targetJob(jobId: number | null): { id: number; existing: JobRecord | null } {
    if (jobId === null) {
      return { id: this.state.maxJobId + 1, existing: null };
    }
    const existing = this.jobs.get(jobId);
    if (existing === undefined) {
      throw new HqError('HQ_NOT_FOUND', `Job ${jobId} not found.`);
    }
    if (!existing.isOpen) {
      throw new HqError('HQ_INVALID_ARGUMENT', `Job ${jobId} is not opened.`);
    }
    return { id: jobId, existing };
  }

  /** A submit into an open job keeps that job's name and max fails. */
  private emitSubmit(
    target: { id: number; existing: JobRecord | null },
    request: { name: string; maxFails: number | null },
    submit: SubmitDesc,
  ): void {
    this.emit({
      type: 'job-created',
      job: target.id,
      closedJob: target.existing === null,
      name: target.existing?.name ?? request.name,
      maxFails: target.existing === null ? request.maxFails : target.existing.maxFails,
      submit,
    });
  }

  submit(request: ClientRpc['submit']['req']): ClientRpc['submit']['res'] {
    const target = this.targetJob(request.jobId);
    const array: ArraySubmit = {
      ...request.array,
      taskDesc: resolveSubmitPaths(
        target.id,
        request.array.taskDesc,
        request.array.submitDir,
        this.config.serverUid,
      ),
    };
    const nTasks = validateArraySubmit(target.id, target.existing, array);
    // The kind last: a `kind` key the client put into its array must not turn it into a graph.
    this.emitSubmit(target, request, { ...array, kind: 'array' });
    const job = this.jobs.get(target.id)!;
    const request0 = job.descs[job.descs.length - 1]!.request;
    for (const range of array.ids) {
      this.scheduler.enqueueRun(
        job.id,
        range.start,
        range.count,
        range.step,
        array.taskDesc.priority,
        request0,
      );
    }
    this.checkJobCompleted(job);
    this.requestSchedule();
    return { jobId: job.id, nTasks };
  }

  submitGraph(request: ClientRpc['submit-graph']['req']): ClientRpc['submit-graph']['res'] {
    const target = this.targetJob(request.jobId);
    validateGraphSubmit(target.id, target.existing, request.graph);
    const { submitDir } = request.graph;
    const tasks = request.graph.tasks.map((t) => ({
      ...t,
      taskDesc: resolveSubmitPaths(target.id, t.taskDesc, submitDir, this.config.serverUid),
    }));
    this.emitSubmit(target, request, { kind: 'graph', tasks, submitDir });
    const job = this.jobs.get(target.id)!;
    const ready = [...this.state.readied.tasks];
    // Dependencies that have already failed doom their new consumers at once.
    for (const t of tasks) {
      for (const dep of t.deps) {
        const d = job.tasks.get(dep);
        if (d !== undefined && isTerminal(d.state) && d.state !== 'finished') {
          this.abortConsumers(job, d);
        }
      }
    }
    this.enqueueTasks(job, ready);
    this.checkJobCompleted(job);
    this.requestSchedule();
    return { jobId: job.id, nTasks: tasks.length };
  }

  private enqueueTasks(job: JobRecord, ids: number[]): void {
    for (const id of ids) {
      const t = job.tasks.get(id);
      if (t !== undefined && t.state === 'waiting' && t.waitingDeps === 0) {
        const d = job.descs[t.desc]!;
        this.scheduler.enqueue(job.id, id, d.taskDesc.priority, d.request);
      }
    }
  }

  explain(selector: IdSelector, taskId: number): ClientRpc['task-explain']['res'] {
    const job = this.selectJobs(selector).found[0];
    if (job === undefined) {
      throw new HqError('HQ_NOT_FOUND', 'Job not found');
    }
    const task = job.tasks.get(taskId);
    if (task === undefined) {
      throw new HqError('HQ_NOT_FOUND', `Task ${taskId} not found in job ${job.id}`);
    }
    const online = [...this.workers.values()].filter((w) => w.ended === null);
    return explainTask(job, task, online, Date.now());
  }

  // ---- job commands ------------------------------------------------------------------------

  openJob(name: string, maxFails: number | null): ClientRpc['job-open']['res'] {
    const id = this.state.maxJobId + 1;
    this.emit({ type: 'job-open', job: id, name, maxFails });
    return { jobId: id };
  }

  closeJobs(selector: IdSelector): ClientRpc['job-close']['res'] {
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
      this.emit({ type: 'job-close', job: job.id });
      results.push({ jobId: job.id, result: 'closed' });
      this.checkJobCompleted(job);
    }
    return { results };
  }

  forgetJobs(selector: IdSelector, states: JobStatus[]): ClientRpc['job-forget']['res'] {
    const { found, missing } = this.selectJobs(selector);
    let forgotten = 0;
    let ignored = missing.length;
    for (const job of found) {
      const status = jobStatus(job.tasks.size, job.counters, job.isOpen);
      if (job.completedAt !== null && states.includes(status)) {
        this.emit({ type: 'job-forgotten', job: job.id });
        forgotten++;
      } else {
        ignored++;
      }
    }
    return { forgotten, ignored };
  }

  cancelJobs(selector: IdSelector, reason: string | null): ClientRpc['job-cancel']['res'] {
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
      const canceled: TaskId[] = [];
      const byWorker = new Map<number, TaskRef[]>();
      this.scheduler.dequeueJob(job.id);
      for (const task of job.tasks.values()) {
        if (!isTerminal(task.state)) {
          canceled.push({ jobId: job.id, taskId: task.id });
          this.takeOffWorker(job, task, byWorker, true);
        }
      }
      this.sendCancels(byWorker);
      if (canceled.length > 0) {
        this.emit({ type: 'job-cancel', job: job.id, reason });
        this.emit({ type: 'task-canceled', tasks: canceled });
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

  // ---- waiting and notifications -----------------------------------------------------------

  waitJobs(
    selector: IdSelector,
    withoutClose: boolean,
    respond: (data: ClientRpc['wait-jobs']['res']) => void,
    notify: ((n: TaskNotification) => void) | null = null,
  ): () => void {
    const { found, missing } = this.selectJobs(selector);
    return this.waiters.add(
      found.map((j) => j.id),
      missing.length,
      withoutClose,
      respond,
      notify,
    );
  }

  onNotify(workerId: number, jobId: number, taskId: number, message: string): void {
    this.emit({ type: 'task-notify', jobId, taskId, workerId, message });
    this.waiters.notify({ jobId, taskId, workerId, message });
  }

  /** Called after any task of `job` ends or the job closes: completes it and wakes waiters. */
  private checkJobCompleted(job: JobRecord): void {
    if (!isJobIdle(job)) {
      return;
    }
    if (job.isOpen) {
      this.emit({ type: 'job-idle', job: job.id });
    } else if (job.completedAt === null) {
      this.emit({ type: 'job-completed', job: job.id });
    }
    this.waiters.wake();
  }

  // ---- journal and history -----------------------------------------------------------------

  /** Every past event: the whole journal (earlier runs too), or what memory still tells. */
  history(): TimedEvent[] {
    const journal = this.hub.journal;
    if (journal !== null) {
      journal.writePending();
      return readJournal(journal.file);
    }
    return reconstructHistory(
      { time: this.startDate, serverUid: this.config.serverUid },
      this.workers.values(),
      this.jobs.values(),
    );
  }

  /** Rewrites the journal keeping what still matters: live jobs, online workers, queues. */
  pruneJournal(): void {
    const journal = this.hub.journal;
    if (journal === null) {
      return;
    }
    journal.writePending();
    const liveJobs = new Set<number>();
    for (const job of this.jobs.values()) {
      if (!isJobCompleted(job)) {
        liveJobs.add(job.id);
      }
    }
    const liveWorkers = new Set<number>();
    for (const w of this.workers.values()) {
      if (w.ended === null) {
        liveWorkers.add(w.id);
      }
    }
    const kept = pruneRecords(readJournal(journal.file), liveJobs, liveWorkers, {
      job: this.state.maxJobId,
      worker: this.state.maxWorkerId,
      queue: this.state.maxQueueId,
    });
    journal.rewrite(kept);
  }

  // ---- workers -----------------------------------------------------------------------------

  /** A client wants overviews from every worker until the returned function is called. */
  watchOverviews(): () => void {
    if (this.overviewWatchers++ === 0) {
      this.broadcastOverviewInterval(WATCHED_OVERVIEW_INTERVAL_MS);
    }
    let released = false;
    return () => {
      if (!released) {
        released = true;
        if (--this.overviewWatchers === 0) {
          this.broadcastOverviewInterval(null);
        }
      }
    };
  }

  private broadcastOverviewInterval(intervalMs: number | null): void {
    for (const w of this.workers.values()) {
      w.connection?.send({ op: 'overview-interval', intervalMs } satisfies ServerToWorker);
    }
  }

  registerWorker(connection: Connection, configuration: WorkerConfiguration): WorkerRecord {
    const id = this.state.maxWorkerId + 1;
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
    this.emit({ type: 'worker-connected', id, configuration }, now);
    this.autoalloc?.onWorkerConnected(id, configuration);
    log.info(`worker ${id} registered from ${configuration.hostname}`);
    connection.send({
      op: 'registered',
      workerId: id,
      serverUid: this.config.serverUid,
      idleTimeoutMs: this.config.idleTimeoutMs,
    } satisfies ServerToWorker);
    if (this.overviewWatchers > 0) {
      connection.send({
        op: 'overview-interval',
        intervalMs: WATCHED_OVERVIEW_INTERVAL_MS,
      } satisfies ServerToWorker);
    }
    this.requestSchedule();
    return worker;
  }

  private sendToWorker(workerId: number, message: ServerToWorker): void {
    this.workers.get(workerId)?.connection?.send(message);
  }

  private checkHeartbeats(): void {
    const now = Date.now();
    // A check that comes late means the server itself did not run (SIGSTOP, a paused VM, a
    // blocked event loop): the workers' heartbeats of that time wait unread in the sockets,
    // and timers run before sockets are read. Judge only after reading them.
    const late = now - this.lastHeartbeatCheck > HEARTBEAT_CHECK_INTERVAL_MS * 3;
    this.lastHeartbeatCheck = now;
    if (late) {
      log.debug('the server was not running for a while; heartbeats are checked next round');
      return;
    }
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

  workerLost(worker: WorkerRecord, reason: WorkerLostReason): void {
    if (worker.ended !== null || this.stopped) {
      // At a stop, losing the workers is no event: a restore must not count crashes.
      return;
    }
    worker.ended = { at: Date.now(), reason };
    worker.connection = null;
    this.scheduler.removeWorker(worker.id);
    this.emit({ type: 'worker-lost', id: worker.id, reason }, worker.ended.at);
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
      // A task ended by an earlier one of this loop (one reached its crash limit and the job's
      // max fails aborted the rest) stays ended: restarting it ran an aborted task again, and
      // once its completed job was forgotten, the scheduler handed out a task of no job.
      if (!job || !record || isTerminal(record.state)) {
        continue;
      }
      // A task the worker had is counted as having run there, whether or not its start was
      // reported: a task that kills its worker within a millisecond never reports it, and
      // must not escape its crash limit or see the same instance id twice.
      record.prefilled = false;
      this.detachNodes(record);
      record.nodes = null;
      record.workerId = null;
      record.taken = null;
      const { taskDesc: desc, request } = job.descs[record.desc]!;
      if (desc.crashLimit === 'never-restart') {
        this.failTask(
          job,
          record,
          'Task was running on a lost worker while never restart flag was set.',
        );
      } else if (
        isFailure &&
        typeof desc.crashLimit === 'number' &&
        record.crashCount + 1 >= desc.crashLimit
      ) {
        this.failTask(
          job,
          record,
          `Task was running on a worker that was lost; the task has occurred ${record.crashCount + 1} times in this situation and limit was reached.`,
        );
      } else {
        this.emit({ type: 'task-restarted', jobId: job.id, taskId: record.id, crashed: isFailure });
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

  stopWorkers(selector: IdSelector): ClientRpc['worker-stop']['res'] {
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

  // ---- tasks -------------------------------------------------------------------------------

  private failTask(job: JobRecord, task: TaskRecord, error: string, time = Date.now()): void {
    this.emit({ type: 'task-failed', jobId: job.id, taskId: task.id, error }, time);
    this.abortConsumers(job, task);
    if (job.maxFails !== null && job.counters.failed > job.maxFails) {
      const aborted: TaskId[] = [];
      const byWorker = new Map<number, TaskRef[]>();
      this.scheduler.dequeueJob(job.id);
      for (const t of job.tasks.values()) {
        if (!isTerminal(t.state)) {
          this.takeOffWorker(job, t, byWorker, true);
          aborted.push({ jobId: job.id, taskId: t.id });
        }
      }
      this.sendCancels(byWorker);
      if (aborted.length > 0) {
        this.emit({ type: 'task-aborted', tasks: aborted });
      }
    }
  }

  onTaskUpdates(worker: WorkerRecord, updates: TaskUpdate[]): void {
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
      if (u.state === 'running') {
        if (task.state === 'waiting') {
          if (task.prefilled) {
            task.prefilled = false;
            this.scheduler.prefillDone(worker.id);
            task.taken = this.scheduler.takeForStart(worker.id, job.descs[task.desc]!.request);
          }
          worker.runningCount++;
          worker.lastTaskStarted = { jobId: u.jobId, taskId: u.taskId, at: u.at };
          for (const id of task.nodes ?? []) {
            const node = this.workers.get(id);
            if (node !== undefined) {
              node.lastTaskStarted = worker.lastTaskStarted;
            }
          }
          this.emit(
            {
              type: 'task-started',
              jobId: u.jobId,
              taskId: u.taskId,
              instance: u.instance,
              workers: task.nodes ?? [worker.id],
              variant: task.variant,
            },
            u.at,
          );
        }
        continue;
      }
      if (task.state === 'running') {
        worker.runningCount--;
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
        this.emit({ type: 'task-finished', jobId: u.jobId, taskId: u.taskId }, u.at);
        this.enqueueTasks(job, [...this.state.readied.tasks]);
      } else {
        this.failTask(job, task, u.error, u.at);
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

  /** A task that will never finish makes every task depending on it (transitively) aborted. */
  private abortConsumers(job: JobRecord, task: TaskRecord): void {
    const stack = [...(task.consumers ?? [])];
    const aborted: TaskId[] = [];
    const seen = new Set<number>();
    const byWorker = new Map<number, TaskRef[]>();
    while (stack.length > 0) {
      const id = stack.pop()!;
      const c = job.tasks.get(id);
      if (c === undefined || isTerminal(c.state) || seen.has(id)) {
        continue;
      }
      seen.add(id);
      this.takeOffWorker(job, c, byWorker);
      aborted.push({ jobId: job.id, taskId: c.id });
      stack.push(...(c.consumers ?? []));
    }
    this.sendCancels(byWorker);
    if (aborted.length > 0) {
      this.emit({ type: 'task-aborted', tasks: aborted });
    }
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
    if (worker) {
      if (task.state === 'running') {
        worker.runningCount--;
      }
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

  // ---- scheduling --------------------------------------------------------------------------

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
    if (this.stopped) {
      return;
    }
    const now = Date.now();
    const assignments = this.scheduler.schedule(now);
    if (assignments.length > 0) {
      for (const event of sentEvents(assignments)) {
        this.emit(event, now);
      }
      // On disk (for a killed server: with the OS) before any worker can start them.
      this.hub.journal?.writePending();
      dispatchAssignments(assignments, this.jobs, this.workers, (id, m) =>
        this.sendToWorker(id, m),
      );
    }
  }

  debugDump(): unknown {
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
