/**
 * Automatic allocation: queues that submit PBS/Slurm jobs ("allocations") which start workers
 * when tasks wait that no connected worker can take.
 *
 * Invariants:
 * - An allocation's state follows its workers first: queued until one of its workers connects,
 *   running until all it asked for have disconnected, then finished (failed when every one of
 *   them was lost within a minute of connecting). The batch system is only polled as a fallback
 *   (every HQ_AUTOALLOC_REFRESH_INTERVAL_MS), and an allocation it cannot report on for too
 *   long is considered over, so a stuck allocation never blocks a queue for good.
 * - A queue never has more than `backlog` allocations queued, nor more than `maxWorkerCount`
 *   workers in queued and running allocations together.
 * - Submission passes and status refreshes never overlap; each runs after the previous ended.
 * - Every allocation that is queued or running when the queue is removed with --force, or when
 *   the server stops, is cancelled (qdel/scancel).
 * - Every change is emitted as a ServerEvent, so a journal can replay queues and allocations.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { HqError, errorMessage } from '../../common/errors.js';
import { logger } from '../../common/log.js';
import { descriptorTotals, type ResourceDescriptor } from '../../common/resources.js';
import type { WorkerQueryAnswer, WorkerShapeQuery } from '../../scheduler/scheduler.js';
import type {
  AllocationInfo,
  QueueInfo,
  QueueParams,
  WorkerConfiguration,
  WorkerLostReason,
} from '../../transport/messages.js';
import type { ServerEvent } from '../events.js';
import type { QueueState } from '../state.js';
import {
  allocationName,
  cancelCommand,
  parsePbsStatus,
  parseSlurmStatus,
  parseSubmitOutput,
  statusCommands,
  submitProgram,
  submitScript,
  workerCommand,
  type ExternalStatus,
} from './managers.js';
import { DEFAULT_MAX_ALLOCATION_FAILS, RateLimiter } from './rate-limiter.js';

const log = logger('hq::server::autoalloc');

/** Directories of ended allocations kept for debugging, over all queues. */
export const MAX_KEPT_DIRECTORIES = 20;
const MAX_QUEUED_STATUS_ERRORS = 10;
const MAX_RUNNING_STATUS_ERRORS = 20;
/** A worker lost this soon after connecting counts as a crash of its allocation. */
const CRASH_LIFETIME_MS = 60_000;
const COMMAND_TIMEOUT_MS = 120_000;

function envMs(name: string, fallback: number): number {
  const value = Number(process.env[name]);
  return process.env[name] !== undefined && Number.isInteger(value) && value > 0 ? value : fallback;
}

interface AllocationRecord extends AllocationInfo {
  connected: Set<number>;
  /** Lost workers, and whether each was a crash. */
  disconnected: Map<number, boolean>;
  statusErrors: number;
}

interface QueueRecord {
  id: number;
  params: QueueParams;
  state: 'active' | 'paused';
  knownWorkerResources: ResourceDescriptor | null;
  /** Allocations in submission order (ended ones included). */
  allocations: Map<string, AllocationRecord>;
  allocationCounter: number;
  limiter: RateLimiter;
}

interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a batch-system command; rejects only when it could not be started at all. */
function runCommand(argv: readonly string[], cwd: string): Promise<CommandResult> {
  const [program, ...args] = argv;
  return new Promise((resolve, reject) => {
    execFile(
      program!,
      args,
      { cwd, timeout: COMMAND_TIMEOUT_MS, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' },
      (error, stdout, stderr) => {
        if (error !== null && typeof error.code === 'string') {
          reject(new HqError('HQ_ALLOCATION', `${program} start failed: ${error.message}`));
          return;
        }
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** The stdout of a command that succeeded, or an error showing what it printed. */
function checkedOutput(program: string, result: CommandResult): string {
  if (result.code !== 0) {
    throw new HqError(
      'HQ_ALLOCATION',
      `${program} execution failed\nExit code: ${result.code}\nStderr: ${result.stderr.trim()}\nStdout: ${result.stdout.trim()}`,
    );
  }
  return result.stdout;
}

/** Runs a command and returns its stdout; any failure is an error showing what it printed. */
async function runChecked(argv: readonly string[], cwd: string): Promise<string> {
  return checkedOutput(argv[0]!, await runCommand(argv, cwd));
}

export interface AutoAllocDeps {
  /** The server instance directory: allocation dirs go under `autoalloc/`, workers point here. */
  instanceDir: string;
  /** The `hq` executable the allocations start workers with. */
  hqPath: string;
  query(queries: WorkerShapeQuery[]): WorkerQueryAnswer;
  emit(event: ServerEvent): void;
}

export class AutoAllocService {
  private readonly queues = new Map<number, QueueRecord>();
  private readonly allocations = new Map<string, AllocationRecord>();
  private readonly inactiveDirs: string[] = [];
  /**
   * Workers that connected from a batch job we do not know (yet): a worker can connect before
   * qsub/sbatch has even returned its allocation's id. Replayed when the allocation appears.
   */
  private readonly strangers = new Map<string, Map<number, WorkerConfiguration>>();
  private nextQueueId = 1;
  private shouldSchedule = true;
  private lastScheduleMs = 0;
  private busy: Promise<void> | null = null;
  private stopping = false;
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly maxScheduleDelayMs = envMs('HQ_AUTOALLOC_MAX_SCHEDULE_DELAY_MS', 30_000);
  private readonly maxAllocationFails = envMs(
    'HQ_AUTOALLOC_MAX_ALLOCATION_FAILS',
    DEFAULT_MAX_ALLOCATION_FAILS,
  );

  private readonly deps: AutoAllocDeps;

  constructor(deps: AutoAllocDeps) {
    this.deps = deps;
    const tick = envMs('HQ_AUTOALLOC_SCHEDULE_TICK_INTERVAL_MS', 5_000);
    const refresh = envMs('HQ_AUTOALLOC_REFRESH_INTERVAL_MS', 30 * 60_000);
    this.timers.push(setInterval(() => this.onTick(), tick));
    this.timers.push(setInterval(() => this.exclusive(() => this.refreshAll()), refresh));
  }

  // ---- requests ----------------------------------------------------------------------------

  async addQueue(params: QueueParams, dryRun: boolean): Promise<number> {
    if (dryRun) {
      await this.dryRun(params);
    }
    const id = this.nextQueueId++;
    this.queues.set(id, {
      id,
      params,
      state: 'active',
      knownWorkerResources: null,
      allocations: new Map(),
      allocationCounter: 0,
      limiter: new RateLimiter(this.maxAllocationFails),
    });
    this.deps.emit({ type: 'autoalloc-queue-created', queueId: id, params });
    log.info(`Allocation queue ${id} created`);
    this.scheduleSoon();
    return id;
  }

  /**
   * Re-creates queues from a journal (no events: the journal already holds them). Their
   * allocations are not restored: a restarted server submits new ones as work requires.
   */
  restoreQueues(maxQueueId: number, queues: ReadonlyMap<number, QueueState>): void {
    this.nextQueueId = Math.max(this.nextQueueId, maxQueueId + 1);
    for (const [id, q] of [...queues].sort(([a], [b]) => a - b)) {
      this.queues.set(id, {
        id,
        params: q.params,
        state: q.paused ? 'paused' : 'active',
        knownWorkerResources: q.knownWorkerResources,
        allocations: new Map(),
        allocationCounter: 0,
        limiter: new RateLimiter(this.maxAllocationFails),
      });
    }
    this.scheduleSoon();
  }

  /**
   * Submits a test allocation with the largest worker count of the queue (held, for PBS) and
   * cancels it at once. Its directory is kept when the submission fails, for inspection.
   */
  async dryRun(params: QueueParams): Promise<void> {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hq'));
    const dir = allocationDir(tmp, 0, params.name, 1);
    let id: string;
    try {
      fs.mkdirSync(dir, { recursive: true });
      id = await this.submit(params, 0, 1, params.maxWorkersPerAlloc, dir, tmp, true);
    } catch (e) {
      throw new HqError(
        'HQ_ALLOCATION',
        `Could not submit allocation: ${errorMessage(e)}\nYou can find the submitted script at ${path.join(dir, 'hq-submit.sh')}`,
      );
    }
    try {
      await runChecked(cancelCommand(params.manager, id), dir);
    } catch (e) {
      throw new HqError('HQ_ALLOCATION', `Could not cancel allocation ${id}: ${errorMessage(e)}`);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  }

  listQueues(): QueueInfo[] {
    return [...this.queues.values()].map((q) => ({
      id: q.id,
      params: q.params,
      state: q.state,
      knownWorkerResources: q.knownWorkerResources,
    }));
  }

  queueAllocations(queueId: number): AllocationInfo[] {
    const queue = this.queues.get(queueId);
    if (queue === undefined) {
      throw new HqError('HQ_NOT_FOUND', `Queue ${queueId} not found`);
    }
    return [...queue.allocations.values()].map(allocationInfo);
  }

  allocation(allocationId: string): AllocationInfo {
    const allocation = this.allocations.get(allocationId);
    if (allocation === undefined) {
      throw new HqError('HQ_NOT_FOUND', `Allocation ${allocationId} not found`);
    }
    return allocationInfo(allocation);
  }

  /** Pause or resume; a resumed queue starts with a clean failure record. */
  setQueueState(queueId: number, state: 'active' | 'paused'): void {
    const queue = this.queues.get(queueId);
    const verb = state === 'paused' ? 'paused' : 'resumed';
    if (queue === undefined) {
      throw new HqError(
        'HQ_NOT_FOUND',
        `Queue ${queueId} that should have been ${verb} was not found`,
      );
    }
    queue.state = state;
    this.deps.emit({ type: `autoalloc-queue-${verb}`, queueId });
    if (state === 'active') {
      queue.limiter.reset();
      this.scheduleSoon();
    }
  }

  async removeQueue(queueId: number, force: boolean): Promise<void> {
    const queue = this.queues.get(queueId);
    if (queue === undefined) {
      throw new HqError('HQ_NOT_FOUND', 'Allocation queue not found');
    }
    const live = [...queue.allocations.values()].filter(isActive);
    if (!force && live.some((a) => a.status === 'running')) {
      throw new HqError(
        'HQ_ALLOCATION',
        'Allocation queue has running jobs, so it will not be removed. Use `--force` if you want to remove the queue anyway',
      );
    }
    this.queues.delete(queueId);
    for (const a of queue.allocations.values()) {
      this.allocations.delete(a.id);
    }
    await this.cancelAll(queue.params, live);
    this.deps.emit({ type: 'autoalloc-queue-removed', queueId });
    log.info(`Allocation queue ${queueId} removed`);
  }

  // ---- server notifications ----------------------------------------------------------------

  onTasksChanged(): void {
    this.shouldSchedule = true;
  }

  onWorkerConnected(workerId: number, configuration: WorkerConfiguration): void {
    const jobId = configuration.manager?.jobId;
    if (jobId === undefined) {
      return;
    }
    const allocation = this.allocations.get(jobId);
    if (allocation === undefined) {
      let waiting = this.strangers.get(jobId);
      if (waiting === undefined) {
        waiting = new Map();
        this.strangers.set(jobId, waiting);
      }
      waiting.set(workerId, configuration);
      return;
    }
    const queue = this.queues.get(allocation.queueId);
    if (queue !== undefined && queue.knownWorkerResources === null) {
      queue.knownWorkerResources = configuration.resources;
      this.deps.emit({
        type: 'autoalloc-queue-resources',
        queueId: queue.id,
        resources: configuration.resources,
      });
    }
    log.info(`Worker ${workerId} connected from allocation ${allocation.id}`);
    if (allocation.status === 'queued') {
      allocation.status = 'running';
      allocation.startedAt = Date.now();
      this.deps.emit({
        type: 'autoalloc-allocation-started',
        queueId: allocation.queueId,
        allocationId: allocation.id,
      });
    }
    if (allocation.status === 'running') {
      allocation.connected.add(workerId);
    }
    this.shouldSchedule = true;
  }

  onWorkerLost(
    workerId: number,
    configuration: WorkerConfiguration,
    reason: WorkerLostReason,
    lifetimeMs: number,
  ): void {
    const jobId = configuration.manager?.jobId;
    if (jobId === undefined || this.stopping) {
      return;
    }
    const waiting = this.strangers.get(jobId);
    if (waiting?.delete(workerId) === true && waiting.size === 0) {
      this.strangers.delete(jobId);
    }
    const allocation = this.allocations.get(jobId);
    if (allocation?.status !== 'running') {
      return;
    }
    allocation.connected.delete(workerId);
    const crashed =
      (reason === 'connection-lost' || reason === 'heartbeat-lost') &&
      lifetimeMs <= CRASH_LIFETIME_MS;
    allocation.disconnected.set(workerId, crashed);
    if (allocation.disconnected.size >= allocation.targetWorkerCount) {
      const failed = [...allocation.disconnected.values()].every((c) => c);
      this.finish(allocation, failed ? 'failed' : 'finished', Date.now());
    }
    this.shouldSchedule = true;
  }

  /**
   * Stops the timers and cancels every queued or running allocation. The set to cancel is
   * taken at the call, before the server drops its workers (which would end the allocations).
   */
  stop(): Promise<void> {
    if (this.stopping) {
      return Promise.resolve();
    }
    this.stopping = true;
    for (const t of this.timers) {
      clearInterval(t);
    }
    const live = [...this.queues.values()].map(
      (q) => [q.params, [...q.allocations.values()].filter(isActive)] as const,
    );
    return (async () => {
      await this.busy;
      await Promise.all(live.map(([params, allocations]) => this.cancelAll(params, allocations)));
    })();
  }

  // ---- scheduling --------------------------------------------------------------------------

  /** A new or resumed queue submits at once instead of at the next tick. */
  private scheduleSoon(): void {
    this.shouldSchedule = true;
    setImmediate(() => this.onTick());
  }

  private onTick(): void {
    const now = Date.now();
    if (this.shouldSchedule || now - this.lastScheduleMs >= this.maxScheduleDelayMs) {
      this.exclusive(async () => {
        this.shouldSchedule = false;
        this.lastScheduleMs = Date.now();
        await this.submitPass();
      });
    }
  }

  /** Runs `f` unless another pass runs; errors are logged, never thrown. */
  private exclusive(f: () => Promise<void>): void {
    if (this.busy !== null || this.stopping) {
      return;
    }
    this.busy = f()
      .catch((e: unknown) => log.error(`Autoalloc failed: ${errorMessage(e)}`))
      .finally(() => {
        this.busy = null;
      });
  }

  private autoPause(): void {
    const now = Date.now();
    for (const queue of this.queues.values()) {
      if (queue.state !== 'active') {
        continue;
      }
      const status = queue.limiter.status(now);
      if (status === 'too-many-failed-submissions' || status === 'too-many-failed-allocations') {
        log.error(
          `The queue ${queue.id} had too many failed ${status === 'too-many-failed-submissions' ? 'submissions' : 'allocations'}, it will be paused.`,
        );
        queue.state = 'paused';
        this.deps.emit({ type: 'autoalloc-queue-paused', queueId: queue.id });
      }
    }
  }

  private async submitPass(): Promise<void> {
    this.autoPause();
    const queues = [...this.queues.values()].filter((q) => q.state === 'active' && hasSpace(q));
    if (queues.length === 0) {
      return;
    }
    const answer = this.deps.query(queues.map(shapeQuery));
    for (const [i, queue] of queues.entries()) {
      const mn = answer.multiNode.find((m) => m.query === i);
      const counts = permit(
        queue,
        answer.singleNodeWorkers[i] ?? 0,
        mn?.tasks ?? 0,
        mn?.workersPerAlloc ?? 0,
      );
      if (counts.length > 0) {
        await this.submitInto(queue, counts);
      }
    }
    this.autoPause();
  }

  private async submitInto(queue: QueueRecord, counts: number[]): Promise<void> {
    if (queue.limiter.status(Date.now()) !== 'ok') {
      return;
    }
    queue.limiter.onAttempt(Date.now());
    for (const workers of counts) {
      if (this.queues.get(queue.id) !== queue || queue.state !== 'active' || this.stopping) {
        return;
      }
      const n = ++queue.allocationCounter;
      const dir = allocationDir(path.join(this.deps.instanceDir), queue.id, queue.params.name, n);
      let id: string;
      try {
        fs.mkdirSync(dir, { recursive: true });
        id = await this.submit(
          queue.params,
          queue.id,
          n,
          workers,
          dir,
          this.deps.instanceDir,
          false,
        );
      } catch (e) {
        log.error(`Failed to submit allocation into queue ${queue.id}: ${errorMessage(e)}`);
        this.retire(dir);
        queue.limiter.onSubmissionFail();
        return;
      }
      if (this.queues.get(queue.id) !== queue || this.stopping) {
        // Removed (or the server stops) while qsub/sbatch ran: nobody would track it.
        await this.cancelAll(queue.params, [newAllocation(id, queue.id, workers, dir)]);
        return;
      }
      log.info(`Queued ${workers} worker(s) into queue ${queue.id}: allocation ID ${id}`);
      const allocation = newAllocation(id, queue.id, workers, dir);
      queue.allocations.set(id, allocation);
      this.allocations.set(id, allocation);
      queue.limiter.onSubmissionSuccess();
      this.deps.emit({
        type: 'autoalloc-allocation-queued',
        queueId: queue.id,
        allocationId: id,
        workerCount: workers,
      });
      const early = this.strangers.get(id);
      if (early !== undefined) {
        this.strangers.delete(id);
        for (const [workerId, configuration] of early) {
          this.onWorkerConnected(workerId, configuration);
        }
      }
    }
  }

  /** Writes the script into `dir`, submits it from there and returns the allocation id. */
  private async submit(
    params: QueueParams,
    queueId: number,
    n: number,
    workers: number,
    dir: string,
    serverDir: string,
    held: boolean,
  ): Promise<string> {
    const script = submitScript(params.manager, {
      nodes: workers,
      timeLimitMs: params.timeLimitMs,
      name: allocationName(params.name, queueId, n),
      stdout: path.join(dir, 'stdout'),
      stderr: path.join(dir, 'stderr'),
      additionalArgs: params.additionalArgs,
      workerCommand: workerCommand(params, this.deps.hqPath, serverDir, process.env['RUST_LOG']),
      held,
    });
    const scriptPath = path.join(dir, 'hq-submit.sh');
    fs.writeFileSync(scriptPath, script);
    const program = submitProgram(params.manager);
    log.debug(`Running command \`${program} ${scriptPath}\``);
    const stdout = await runChecked([program, scriptPath], dir);
    const id = parseSubmitOutput(params.manager, stdout);
    fs.writeFileSync(path.join(dir, 'jobid'), id);
    return id;
  }

  // ---- refreshing --------------------------------------------------------------------------

  private async refreshAll(): Promise<void> {
    for (const queue of [...this.queues.values()]) {
      const live = [...queue.allocations.values()].filter(isActive);
      if (live.length > 0) {
        await this.refreshQueue(queue, live);
      }
    }
    this.removeOldDirectories();
  }

  private async refreshQueue(queue: QueueRecord, live: AllocationRecord[]): Promise<void> {
    const ids = live.map((a) => a.id);
    const statuses = new Map<string, ExternalStatus | Error>();
    let missingMeansGone = true;
    try {
      for (const argv of statusCommands(queue.params.manager, ids)) {
        const cwd = live[0]!.workdir;
        let result: CommandResult;
        try {
          result = await runCommand(argv, fs.existsSync(cwd) ? cwd : this.deps.instanceDir);
        } catch (e) {
          throw new HqError('HQ_ALLOCATION', errorMessage(e));
        }
        if (queue.params.manager === 'pbs') {
          const stdout = checkedOutput('qstat', result);
          for (const [id, status] of parsePbsStatus(stdout, ids)) {
            statuses.set(id, status);
          }
        } else {
          const id = argv[3]!;
          try {
            statuses.set(id, parseSlurmStatus(checkedOutput('scontrol', result)));
          } catch (e) {
            statuses.set(id, e instanceof Error ? e : new Error(String(e)));
          }
        }
      }
    } catch (e) {
      log.error(`Failed to get allocations status from queue ${queue.id}: ${errorMessage(e)}`);
      missingMeansGone = false;
      for (const a of live) {
        statuses.set(a.id, e instanceof Error ? e : new Error(String(e)));
      }
    }
    for (const allocation of live) {
      if (!isActive(allocation)) {
        continue; // ended while the command ran
      }
      const status = statuses.get(allocation.id);
      if (status === undefined) {
        if (missingMeansGone) {
          this.finish(allocation, 'failed', Date.now());
        }
      } else if (status instanceof Error) {
        log.warn(`Could not get status of allocation ${allocation.id}: ${status.message}`);
        this.statusError(allocation);
      } else {
        this.applyExternal(allocation, status);
      }
    }
  }

  private statusError(allocation: AllocationRecord): void {
    allocation.statusErrors++;
    const limit =
      allocation.status === 'queued' ? MAX_QUEUED_STATUS_ERRORS : MAX_RUNNING_STATUS_ERRORS;
    if (allocation.statusErrors > limit) {
      // Queued and never heard of: most likely failed. Running: it did start, call it done.
      this.finish(
        allocation,
        allocation.status === 'queued' ? 'failed' : 'finished',
        Date.now(),
        false,
      );
    }
  }

  private applyExternal(allocation: AllocationRecord, status: ExternalStatus): void {
    allocation.statusErrors = 0;
    if (status.kind === 'queued') {
      return;
    }
    if (status.kind === 'running') {
      if (allocation.status === 'queued') {
        allocation.status = 'running';
        allocation.startedAt = Date.now();
      }
      return;
    }
    if (allocation.startedAt === null && status.startedAt !== null) {
      allocation.startedAt = status.startedAt;
    }
    this.finish(allocation, status.kind, status.endedAt);
  }

  /** Ends an allocation; `countForLimiter` is false when its outcome is only a guess. */
  private finish(
    allocation: AllocationRecord,
    status: 'finished' | 'failed',
    at: number,
    countForLimiter = true,
  ): void {
    if (!isActive(allocation)) {
      return;
    }
    allocation.status = status;
    allocation.endedAt = at;
    const queue = this.queues.get(allocation.queueId);
    if (queue !== undefined && countForLimiter) {
      if (status === 'failed') {
        queue.limiter.onAllocationFail();
      } else {
        queue.limiter.onAllocationSuccess();
      }
    }
    this.retire(allocation.workdir);
    this.deps.emit({
      type: 'autoalloc-allocation-finished',
      queueId: allocation.queueId,
      allocationId: allocation.id,
    });
    this.shouldSchedule = true;
  }

  private retire(dir: string): void {
    this.inactiveDirs.push(dir);
  }

  private removeOldDirectories(): void {
    while (this.inactiveDirs.length > MAX_KEPT_DIRECTORIES) {
      const dir = this.inactiveDirs.shift()!;
      try {
        fs.rmSync(dir, { recursive: true, force: true });
      } catch (e) {
        log.error(`Failed to remove stale allocation directory ${dir}: ${errorMessage(e)}`);
      }
    }
  }

  private async cancelAll(params: QueueParams, live: AllocationRecord[]): Promise<void> {
    await Promise.all(
      live.map(async (a) => {
        const cwd = fs.existsSync(a.workdir) ? a.workdir : os.tmpdir();
        try {
          await runChecked(cancelCommand(params.manager, a.id), cwd);
          log.info(`Allocation ${a.id} was removed`);
        } catch (e) {
          log.error(`Failed to remove allocation ${a.id}: ${errorMessage(e)}`);
        }
      }),
    );
  }
}

function allocationDir(base: string, queueId: number, name: string | null, n: number): string {
  const queueDir = name === null ? String(queueId) : `${queueId}-${name}`;
  return path.join(base, 'autoalloc', queueDir, String(n).padStart(3, '0'));
}

function newAllocation(
  id: string,
  queueId: number,
  workers: number,
  workdir: string,
): AllocationRecord {
  return {
    id,
    queueId,
    targetWorkerCount: workers,
    status: 'queued',
    queuedAt: Date.now(),
    startedAt: null,
    endedAt: null,
    workdir,
    connected: new Set(),
    disconnected: new Map(),
    statusErrors: 0,
  };
}

function isActive(a: AllocationRecord): boolean {
  return a.status === 'queued' || a.status === 'running';
}

function allocationInfo(a: AllocationRecord): AllocationInfo {
  return {
    id: a.id,
    queueId: a.queueId,
    targetWorkerCount: a.targetWorkerCount,
    status: a.status,
    queuedAt: a.queuedAt,
    startedAt: a.startedAt,
    endedAt: a.endedAt,
    workdir: a.workdir,
  };
}

function activeWorkers(queue: QueueRecord): number {
  let n = 0;
  for (const a of queue.allocations.values()) {
    if (isActive(a)) {
      n += a.targetWorkerCount;
    }
  }
  return n;
}

function queuedAllocations(queue: QueueRecord): AllocationRecord[] {
  return [...queue.allocations.values()].filter((a) => a.status === 'queued');
}

function hasSpace(queue: QueueRecord): boolean {
  const max = queue.params.maxWorkerCount;
  return (
    queuedAllocations(queue).length < queue.params.backlog &&
    (max === null || activeWorkers(queue) < max)
  );
}

/**
 * The worker shape a queue would provide: the resources of a worker that already connected
 * from it, else what its --cpus/--resource say (other pools unknown), else nothing known at all
 * ("probing": one worker is assumed to take every waiting task, so one allocation goes out).
 */
function shapeQuery(queue: QueueRecord): WorkerShapeQuery {
  const p = queue.params;
  const known = queue.knownWorkerResources;
  return {
    totals: descriptorTotals(
      known ?? p.cliResources ?? { resources: [], coupling: { weights: [] } },
    ),
    partial: known === null,
    timeLimitMs: p.timeLimitMs,
    maxWorkers: p.backlog * p.maxWorkersPerAlloc,
    maxWorkersPerAlloc: p.maxWorkersPerAlloc,
  };
}

/**
 * The worker counts of the allocations to submit now: first what the waiting tasks ask for, less
 * what queued allocations already bring; multi-node allocations first; then the backlog and the
 * queue's worker limit cut the list.
 */
export function permitFor(
  params: Pick<QueueParams, 'backlog' | 'maxWorkersPerAlloc' | 'maxWorkerCount'>,
  queuedCounts: readonly number[],
  activeWorkerCount: number,
  singleNodeWorkers: number,
  multiNodeTasks: number,
  multiNodeWorkersPerAlloc: number,
): number[] {
  let remaining =
    params.maxWorkerCount === null
      ? Number.POSITIVE_INFINITY
      : Math.max(0, params.maxWorkerCount - activeWorkerCount);
  if (remaining === 0) {
    return [];
  }
  let mnAllocs = multiNodeTasks;
  let snWorkers = singleNodeWorkers;
  for (const count of queuedCounts) {
    let workers = count;
    if (mnAllocs > 0 && multiNodeWorkersPerAlloc <= workers) {
      mnAllocs--;
      workers -= multiNodeWorkersPerAlloc;
    }
    snWorkers = Math.max(0, snWorkers - workers);
  }
  const perAlloc = params.maxWorkersPerAlloc;
  const wanted: number[] = [];
  for (let i = 0; i < mnAllocs && wanted.length < params.backlog; i++) {
    wanted.push(multiNodeWorkersPerAlloc);
  }
  for (let left = snWorkers; left > 0 && wanted.length < params.backlog; left -= perAlloc) {
    wanted.push(Math.min(perAlloc, left));
  }
  const free = Math.max(0, params.backlog - queuedCounts.length);
  const out: number[] = [];
  for (const target of wanted.slice(0, free)) {
    const n = Math.min(target, remaining);
    if (n === 0) {
      break;
    }
    remaining -= n;
    out.push(n);
  }
  return out;
}

function permit(
  queue: QueueRecord,
  singleNodeWorkers: number,
  multiNodeTasks: number,
  multiNodeWorkersPerAlloc: number,
): number[] {
  return permitFor(
    queue.params,
    queuedAllocations(queue).map((a) => a.targetWorkerCount),
    activeWorkers(queue),
    singleNodeWorkers,
    multiNodeTasks,
    multiNodeWorkersPerAlloc,
  );
}
