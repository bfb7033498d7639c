/**
 * The whole wire protocol of hq, in one place.
 *
 * Transport: every connection is TLS 1.3 with a pre-shared key (see tls.ts); inside it, frames
 * are a 4-byte big-endian length plus one msgpack value (see framing.ts). Each value is one of
 * the unions below, discriminated by `op`.
 *
 * Invariants:
 * - Clients and workers use separate ports and separate keys; a connection's role is fixed by
 *   the key it authenticated with, so a worker key can never send a client request.
 * - Client requests carry a `reqId`; the server answers each with exactly one `response` with
 *   the same `reqId` (long requests such as `wait-jobs` simply answer later).
 * - Server -> worker traffic is batched: one `compute` frame carries many tasks, one
 *   `task-updates` frame carries many state changes. There is no per-task round trip.
 * - Every decoded frame is validated (validate.ts) before it reaches a handler.
 * - Times are milliseconds since the epoch; durations are milliseconds; resource amounts are
 *   fixed-point integers (1 unit = 10 000).
 */
import type { ResourceDescriptor, ResourceRequest } from '../common/resources.js';
import type { IdRange, IdSelector } from '../common/id-set.js';
import type { HwState } from '../worker/hw-monitor.js';
import type { StreamRecord } from './stream-records.js';

export const PROTOCOL_VERSION = 2;

// ---- shared domain shapes ------------------------------------------------------------------

export type TaskState = 'waiting' | 'running' | 'finished' | 'failed' | 'canceled' | 'aborted';
export type JobStatus =
  'waiting' | 'running' | 'finished' | 'failed' | 'canceled' | 'aborted' | 'opened';

export type StdioDef =
  { kind: 'file'; path: string; rmIfFinished: boolean } | { kind: 'null' } | { kind: 'pipe' };

export type CrashLimit = number | 'never-restart' | 'unlimited';
export type PinMode = 'taskset' | 'omp';

export interface ProgramDesc {
  args: string[];
  env: Record<string, string>;
  cwd: string;
  stdout: StdioDef;
  stderr: StdioDef;
  stdin: Uint8Array | null;
}

/** What every task of one array submit shares. */
export interface TaskDesc {
  program: ProgramDesc;
  resources: ResourceRequest[];
  timeLimitMs: number | null;
  priority: number;
  crashLimit: CrashLimit;
  taskDir: boolean;
  pinMode: PinMode | null;
  /** `--stream` directory: `pipe` stdio of the tasks goes into its `.hqs` files. */
  streamPath: string | null;
}

export interface ArraySubmit {
  /** Empty with `autoIds`: the server numbers the tasks (from 0, or after an open job's last). */
  ids: IdRange[];
  autoIds: boolean;
  /** One entry per id (for --each-line / --from-json), or null. */
  entries: string[] | null;
  taskDesc: TaskDesc;
  submitDir: string;
}

/** One task of a task graph (job file `[[task]]`, or an API graph). */
export interface GraphTask {
  id: number;
  /** Ids of tasks of the same job that must finish first. */
  deps: number[];
  taskDesc: TaskDesc;
}

export interface GraphSubmit {
  tasks: GraphTask[];
  submitDir: string;
}

/** One submit into a job, as `hq job info` shows it. */
export type SubmitDesc = ({ kind: 'array' } & ArraySubmit) | ({ kind: 'graph' } & GraphSubmit);

export interface JobCounters {
  running: number;
  finished: number;
  failed: number;
  canceled: number;
  aborted: number;
}

export interface JobInfo {
  id: number;
  name: string;
  nTasks: number;
  counters: JobCounters;
  isOpen: boolean;
  cancelReason: string | null;
}

export interface TaskInfo {
  id: number;
  state: TaskState;
  instance: number;
  workers: number[];
  startedAt: number | null;
  finishedAt: number | null;
  error: string | null;
}

export interface JobDetail {
  info: JobInfo;
  /** With `withTasks: 'summary'`: every task id (`1-3,5`) and the workers that ran tasks. */
  summary?: { taskIds: string; workers: number[] };
  maxFails: number | null;
  submits: SubmitDesc[];
  tasks: TaskInfo[];
  submittedAt: number;
  completedAt: number | null;
}

export type ServerLostPolicy = 'stop' | 'finish-running';
export type ManagerKind = 'PBS' | 'SLURM';

export interface WorkerConfiguration {
  resources: ResourceDescriptor;
  hostname: string;
  listenAddress: string;
  workDir: string;
  group: string;
  heartbeatIntervalMs: number;
  idleTimeoutMs: number | null;
  timeLimitMs: number | null;
  onServerLost: ServerLostPolicy;
  minUtilization: number;
  overviewIntervalMs: number | null;
  manager: { kind: ManagerKind; jobId: string } | null;
  pid: number;
}

export type WorkerLostReason =
  'stopped' | 'connection-lost' | 'heartbeat-lost' | 'idle-timeout' | 'time-limit';

export interface WorkerInfo {
  id: number;
  configuration: WorkerConfiguration;
  startedAt: number;
  ended: { at: number; reason: WorkerLostReason } | null;
  runningTasks: number;
  assignedTasks: number;
  lastTaskStarted: { jobId: number; taskId: number; at: number } | null;
  /** Set while the worker is held by a multi-node task. */
  multiNode: { main: boolean } | null;
}

export interface ServerInfo {
  serverUid: string;
  clientHost: string;
  clientPort: number;
  workerHost: string;
  workerPort: number;
  version: string;
  pid: number;
  startDate: number;
  journalPath: string | null;
}

export type TaskStatusFilter = TaskState;

// ---- automatic allocation -------------------------------------------------------------------

export type AllocManager = 'pbs' | 'slurm';

/** Everything `hq alloc add` fixes about a queue. The worker arguments are built by the client. */
export interface QueueParams {
  manager: AllocManager;
  name: string | null;
  backlog: number;
  maxWorkersPerAlloc: number;
  maxWorkerCount: number | null;
  /** Walltime of each allocation; null: the batch system's default (`--partition`/`--queue`). */
  timeLimitMs: number | null;
  minUtilization: number;
  /** Passed to qsub/sbatch as one `#PBS`/`#SBATCH` line. */
  additionalArgs: string[];
  /** Passed to `hq worker start` verbatim (already quoted for the shell). */
  workerArgs: string[];
  idleTimeoutMs: number | null;
  workerStartCmd: string | null;
  workerStopCmd: string | null;
  workerWrapCmd: string | null;
  /** The worker shape guessed from `--cpus`/`--resource`, until a real worker connects. */
  cliResources: ResourceDescriptor | null;
}

export interface QueueInfo {
  id: number;
  params: QueueParams;
  state: 'active' | 'paused';
  /** The resources of the first worker that connected from this queue. */
  knownWorkerResources: ResourceDescriptor | null;
}

export type AllocationStatus = 'queued' | 'running' | 'finished' | 'failed';

export interface AllocationInfo {
  /** The manager's job id. */
  id: string;
  queueId: number;
  targetWorkerCount: number;
  status: AllocationStatus;
  queuedAt: number;
  startedAt: number | null;
  endedAt: number | null;
  workdir: string;
}

/** One reason a task variant can or cannot run on a worker (independent of current load). */
export type ExplainItem =
  | { kind: 'time'; minTimeMs: number; remainingMs: number | null }
  | { kind: 'resources'; resource: string; request: number; worker: number }
  | { kind: 'group'; nNodes: number; groupSize: number };

export interface TaskExplanation {
  nTaskDeps: number;
  nWaitingDeps: number;
  workers: { workerId: number; variants: ExplainItem[][] }[];
}

// ---- client <-> server -----------------------------------------------------------------------

/** Request payloads and the data their successful responses carry, keyed by `op`. */
export interface ClientRpc {
  'server-info': { req: Record<never, never>; res: ServerInfo };
  'server-stop': { req: Record<never, never>; res: null };
  'debug-dump': { req: Record<never, never>; res: unknown };
  /** A new job, or more tasks for the open job `jobId`. */
  submit: {
    req: { jobId: number | null; name: string; maxFails: number | null; array: ArraySubmit };
    res: { jobId: number; nTasks: number };
  };
  'submit-graph': {
    req: { jobId: number | null; name: string; maxFails: number | null; graph: GraphSubmit };
    res: { jobId: number; nTasks: number };
  };
  'task-explain': {
    req: { selector: IdSelector; taskId: number };
    res: { jobId: number; taskId: number; explanation: TaskExplanation };
  };
  'job-open': { req: { name: string; maxFails: number | null }; res: { jobId: number } };
  'job-close': {
    req: { selector: IdSelector };
    res: { results: { jobId: number; result: 'closed' | 'not-found' | 'already-closed' }[] };
  };
  'job-forget': {
    req: { selector: IdSelector; states: JobStatus[] };
    res: { forgotten: number; ignored: number };
  };
  'job-list': { req: Record<never, never>; res: JobInfo[] };
  'job-info': {
    /** `summary`: only the failed tasks, plus `summary` (what `hq job info` prints). */
    req: { selector: IdSelector; withTasks: boolean | 'summary' };
    res: { jobs: JobDetail[]; missing: number[] };
  };
  'job-cancel': {
    req: { selector: IdSelector; reason: string | null };
    res: { results: { jobId: number; canceled: number; alreadyFinished: number | null }[] };
  };
  'wait-jobs': {
    /**
     * `withoutClose`: an open job counts as done once all its current tasks have ended.
     * `notify`: forward task notifications of these jobs as `event` frames until the answer.
     */
    req: { selector: IdSelector; withoutClose: boolean; notify?: boolean };
    res: { finished: number; failed: number; canceled: number; invalid: number; jobs: number[] };
  };
  'worker-list': { req: Record<never, never>; res: WorkerInfo[] };
  'worker-info': {
    req: { selector: IdSelector };
    res: { workers: WorkerInfo[]; missing: number[] };
  };
  'worker-stop': {
    req: { selector: IdSelector };
    res: { results: { workerId: number; result: 'stopped' | 'not-found' | 'already-stopped' }[] };
  };
  /** `dryRun`: submit a held test allocation and cancel it before creating the queue. */
  'alloc-add': { req: { params: QueueParams; dryRun: boolean }; res: { queueId: number } };
  'alloc-dry-run': { req: { params: QueueParams }; res: null };
  'alloc-list': { req: Record<never, never>; res: QueueInfo[] };
  'alloc-info': { req: { queueId: number }; res: AllocationInfo[] };
  'alloc-allocation': { req: { allocationId: string }; res: AllocationInfo };
  'alloc-remove': { req: { queueId: number; force: boolean }; res: null };
  'alloc-pause': { req: { queueId: number }; res: null };
  'alloc-resume': { req: { queueId: number }; res: null };
  /**
   * Server events, pushed as `events` frames. `past`: the history, then the response;
   * `past-live`: the history, then live events until the server stops (no response);
   * `live`: only live events. `filter`: upstream's flags (0: all); `jobs`: only these jobs.
   */
  'journal-stream': {
    req: {
      mode: 'past' | 'past-live' | 'live';
      filter?: number;
      jobs?: number[] | null;
      /** Ask every worker for overviews while this stream lasts (a dashboard). */
      overviews?: boolean;
    };
    res: null;
  };
  /** Answered once the journal is on disk. */
  'journal-flush': { req: Record<never, never>; res: null };
  /** Rewrites the journal without finished jobs and lost workers. */
  'journal-prune': { req: Record<never, never>; res: null };
}

export type ClientOp = keyof ClientRpc;

export type ClientRequest = {
  [K in ClientOp]: { op: K; reqId: number } & ClientRpc[K]['req'];
}[ClientOp];

export interface TaskNotification {
  jobId: number;
  taskId: number;
  workerId: number;
  message: string;
}

export type ServerResponse =
  | { op: 'response'; reqId: number; ok: true; data: unknown }
  | { op: 'response'; reqId: number; ok: false; error: string }
  /** Pushed to a pending request (e.g. `wait-jobs` with `notify`) before its response. */
  | { op: 'event'; reqId: number; notification: TaskNotification }
  /** Server events for a `journal-stream` request (stream-records.ts: tuples or `{time, event}`). */
  | { op: 'events'; reqId: number; records: StreamRecord[] };

// ---- worker <-> server -----------------------------------------------------------------------

/** The part of a task description that a worker needs to run it. */
export interface WorkerTaskShared {
  taskDesc: TaskDesc;
  submitDir: string;
}

export interface ComputeTask {
  jobId: number;
  taskId: number;
  instance: number;
  /** Index into the `shared` array of the same `compute` frame. */
  shared: number;
  entry: string | null;
  /** Hostnames of every node of a multi-node task, this (root) worker first; else null. */
  nodes: string[] | null;
  /** Index of the resource request variant the task was scheduled with. */
  variant: number;
}

export interface TaskRef {
  jobId: number;
  taskId: number;
  instance: number;
}

export type TaskUpdate =
  | (TaskRef & { state: 'running'; at: number })
  | (TaskRef & { state: 'finished'; at: number })
  | (TaskRef & { state: 'failed'; at: number; error: string });

export type WorkerToServer =
  | { op: 'register'; protocol: number; version: string; configuration: WorkerConfiguration }
  | { op: 'heartbeat' }
  | { op: 'task-updates'; updates: TaskUpdate[] }
  /** The worker is about to exit on its own (idle timeout, time limit). */
  | { op: 'stopping'; reason: WorkerLostReason }
  /** `hq task notify` from inside a running task. */
  | { op: 'notify'; jobId: number; taskId: number; message: string }
  /**
   * Hardware state, every `--overview-interval`, and the CPUs each running task holds (what
   * a dashboard draws as per-CPU lanes; upstream's overviews carry `running_tasks` alike).
   */
  | { op: 'overview'; hwState: HwState | null; tasks?: OverviewTask[] };

/** A running task in an overview: [job, task, the CPU ids it was given]. */
export type OverviewTask = [number, number, number[]];

export type ServerToWorker =
  | {
      op: 'registered';
      workerId: number;
      serverUid: string;
      /** The server's --idle-timeout, used when the worker has none of its own. */
      idleTimeoutMs: number | null;
    }
  | { op: 'compute'; shared: WorkerTaskShared[]; tasks: ComputeTask[] }
  | { op: 'cancel'; tasks: TaskRef[] }
  /** The worker is held (or no longer held) as a secondary node of a multi-node task. */
  | { op: 'reservation'; reserved: boolean }
  /**
   * A client watching overviews wants them at least this often (null: back to the worker's own
   * `--overview-interval`). Such overviews are streamed, not journaled.
   */
  | { op: 'overview-interval'; intervalMs: number | null }
  /**
   * The answer to every worker heartbeat: a worker that hears nothing from its server for long
   * (a cut network: no FIN or RST ever arrives) stops instead of running tasks that the server
   * has already given to others.
   */
  | { op: 'heartbeat' }
  | { op: 'stop' };
