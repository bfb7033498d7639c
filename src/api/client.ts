/**
 * The TypeScript client: one connection to a server, found through its server directory as
 * the CLI finds it. Every operation goes through operations.ts (shared with the Python bridge),
 * and its plain HqErrors come out as the typed errors of api-errors.ts.
 */
import { openSession, type ClientSession } from '../client/session.js';
import { resolveServerDir } from '../common/server-dir.js';
import {
  ConnectionError,
  FailedJobsError,
  InvalidJobError,
  typedError,
  type FailedTask,
} from './api-errors.js';
import { Job, TS_DEFAULT_JOB_NAME } from './job.js';
import {
  forgetJob,
  getFailedTasks,
  stopServer,
  submitJob,
  waitForJobs,
  type JobProgress,
} from './operations.js';
import { NodeEnv } from './task-function.js';

export type { JobProgress };

export interface ClientOptions {
  /** Default: $HQ_SERVER_DIR, else ~/.hq-server (as the CLI). */
  serverDir?: string;
  /**
   * How function tasks start Node. Default: the Node running this client (process.execPath),
   * which suits workers that share this machine's filesystem.
   */
  nodeEnv?: NodeEnv;
}

export interface WaitForJobsOptions {
  /** Throw FailedJobsError when a job has failed tasks (default true). */
  raiseOnError?: boolean;
  /** Every job's progress, at once and then every second until all have ended. */
  onProgress?: (progress: Map<number, JobProgress>) => void;
  /** Stops waiting (rejects with the signal's reason); the jobs go on. */
  signal?: AbortSignal;
}

/** A job or its id. */
export type JobRef = SubmittedJob | number;

/** A submitted job: its server id, the job it was built from, and shortcuts to the client. */
export class SubmittedJob {
  readonly id: number;
  readonly job: Job;
  readonly #client: Client;

  constructor(client: Client, id: number, job: Job) {
    this.#client = client;
    this.id = id;
    this.job = job;
  }

  /** `client.waitForJobs([this], options)`. */
  wait(options: WaitForJobsOptions = {}): Promise<boolean> {
    return this.#client.waitForJobs([this], options);
  }

  /** `client.getFailedTasks(this)`. */
  failedTasks(): Promise<Map<number, FailedTask>> {
    return this.#client.getFailedTasks(this);
  }

  /** `client.forget(this)`. */
  forget(): Promise<void> {
    return this.#client.forget(this);
  }
}

function idOf(job: JobRef): number {
  return typeof job === 'number' ? job : job.id;
}

export class Client {
  readonly serverDir: string;
  readonly nodeEnv: NodeEnv;
  #session: ClientSession | null = null;
  #closed = false;

  /** A client not yet connected: call `connect()` (or use `Client.connect`). */
  constructor(options: ClientOptions = {}) {
    this.serverDir = resolveServerDir(options.serverDir);
    this.nodeEnv = options.nodeEnv ?? new NodeEnv({ nodeBin: process.execPath });
  }

  /** Connects to the server of `serverDir`; ServerNotFoundError when none runs there. */
  static async connect(options: ClientOptions = {}): Promise<Client> {
    return new Client(options).connect();
  }

  async connect(): Promise<this> {
    if (this.#closed) {
      throw new ConnectionError('The client is closed');
    }
    if (this.#session === null) {
      try {
        this.#session = await openSession(this.serverDir);
      } catch (e) {
        throw typedError(e);
      }
    }
    return this;
  }

  get connected(): boolean {
    return this.#session !== null && !this.#closed;
  }

  #connection(): ClientSession {
    if (this.#closed) {
      throw new ConnectionError('The client is closed');
    }
    if (this.#session === null) {
      throw new ConnectionError('The client is not connected: call connect() first');
    }
    return this.#session;
  }

  /** Submits `job`; relative paths of its tasks are resolved against the current directory. */
  async submit(job: Job): Promise<SubmittedJob> {
    if (!(job instanceof Job)) {
      throw new TypeError('submit: expected a Job');
    }
    if (job.tasks.length === 0) {
      throw new InvalidJobError('Submitted job must have at least a single task');
    }
    const session = this.#connection();
    const spec = job.toApiJob({ nodeEnv: this.nodeEnv, submitDir: process.cwd() });
    try {
      return new SubmittedJob(this, await submitJob(session, spec, TS_DEFAULT_JOB_NAME), job);
    } catch (e) {
      throw typedError(e, true);
    }
  }

  /**
   * Waits until every job has ended. Returns true when all succeeded; otherwise false, or
   * (with `raiseOnError`, the default) throws FailedJobsError with every failed task.
   */
  async waitForJobs(jobs: readonly JobRef[], options: WaitForJobsOptions = {}): Promise<boolean> {
    const session = this.#connection();
    const ids = jobs.map(idOf);
    const { signal, onProgress } = options;
    let failed: number[];
    try {
      failed = await waitForJobs(
        session,
        ids,
        onProgress === undefined ? null : (p: Map<number, JobProgress>) => onProgress(p),
        signal,
      );
    } catch (e) {
      throw typedError(e);
    }
    if (failed.length === 0) {
      return true;
    }
    if (options.raiseOnError === false) {
      return false;
    }
    let tasks: Map<number, Map<number, FailedTask>>;
    try {
      tasks = await getFailedTasks(session, failed);
    } catch (e) {
      throw typedError(e);
    }
    const built = new Map<number, Job>();
    for (const j of jobs) {
      if (typeof j !== 'number') {
        built.set(j.id, j.job);
      }
    }
    throw new FailedJobsError(
      tasks,
      (jobId, taskId) => built.get(jobId)?.tasks[taskId]?.label ?? String(taskId),
    );
  }

  /** The failed tasks of one job (task id -> error, cwd, stdout and stderr paths). */
  async getFailedTasks(job: JobRef): Promise<Map<number, FailedTask>> {
    const session = this.#connection();
    try {
      const all = await getFailedTasks(session, [idOf(job)]);
      return all.get(idOf(job)) ?? new Map<number, FailedTask>();
    } catch (e) {
      throw typedError(e);
    }
  }

  /** Removes a completed job from the server; JobNotCompletedError otherwise. */
  async forget(job: JobRef): Promise<void> {
    const session = this.#connection();
    try {
      await forgetJob(session, idOf(job));
    } catch (e) {
      throw typedError(e);
    }
  }

  /** Stops the server (its workers follow); this client is closed afterwards. */
  async stopServer(): Promise<void> {
    const session = this.#connection();
    try {
      await stopServer(session);
    } catch (e) {
      throw typedError(e);
    } finally {
      this.close();
    }
  }

  /** Closes the connection; waits in progress fail with ConnectionError. Idempotent. */
  close(): void {
    if (!this.#closed) {
      this.#closed = true;
      this.#session?.close();
      this.#session = null;
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
    return Promise.resolve();
  }
}
