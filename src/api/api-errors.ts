/**
 * The errors the TypeScript API throws: every one is an `HqError`, so callers branch on
 * `instanceof` or on the stable `code`, never on the message.
 */
import { HqError, type HqErrorCode } from '../common/errors.js';
import type { FailedTask } from './operations.js';

export { HqError, type HqErrorCode };

/** No server runs in the server directory (no access file). */
export class ServerNotFoundError extends HqError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('HQ_SERVER_NOT_FOUND', message, options);
    this.name = 'ServerNotFoundError';
  }
}

/** The server is unreachable, refused the key, or the connection closed. */
export class ConnectionError extends HqError {
  constructor(
    message: string,
    options?: { cause?: unknown; code?: 'HQ_CONNECTION' | 'HQ_KEY_MISMATCH' | 'HQ_ACCESS_FILE' },
  ) {
    super(options?.code ?? 'HQ_CONNECTION', message, options);
    this.name = 'ConnectionError';
  }
}

/** The server directory belongs to another version of HyperQueue. */
export class VersionMismatchError extends HqError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('HQ_VERSION_MISMATCH', message, options);
    this.name = 'VersionMismatchError';
  }
}

/** The job cannot be submitted: no tasks, a bad field, bad dependencies or resources. */
export class InvalidJobError extends HqError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('HQ_INVALID_ARGUMENT', message, options);
    this.name = 'InvalidJobError';
  }
}

/** `forget` of a job that has not completed (or does not exist), in upstream's words. */
export class JobNotCompletedError extends HqError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('HQ_JOB_NOT_COMPLETED', message, options);
    this.name = 'JobNotCompletedError';
  }
}

/** A `LocalCluster` process did not start or stop, or the cluster was already stopped. */
export class ClusterError extends HqError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('HQ_CLUSTER', message, options);
    this.name = 'ClusterError';
  }
}

export type { FailedTask };

/** How many failed tasks of one job the message of `FailedJobsError` shows (as Python's). */
const SHOWN_TASKS_PER_JOB = 5;

/**
 * `waitForJobs` with `raiseOnError`: some jobs have failed tasks. `failedTasks` has every
 * failed task of every failed job (job id -> task id -> details); the message shows a few.
 */
export class FailedJobsError extends HqError {
  readonly failedTasks: Map<number, Map<number, FailedTask>>;

  constructor(
    failedTasks: Map<number, Map<number, FailedTask>>,
    label: (jobId: number, taskId: number) => string = (_job, task) => String(task),
  ) {
    super('HQ_JOBS_FAILED', formatFailedJobs(failedTasks, label));
    this.name = 'FailedJobsError';
    this.failedTasks = failedTasks;
  }
}

function formatFailedJobs(
  failedTasks: Map<number, Map<number, FailedTask>>,
  label: (jobId: number, taskId: number) => string,
): string {
  const lines = [`Some jobs have failed (${[...failedTasks.keys()].join(', ')}):`];
  for (const [jobId, tasks] of failedTasks) {
    lines.push(`Job ${jobId}: ${tasks.size} failed task${tasks.size === 1 ? '' : 's'}`);
    let shown = 0;
    for (const [taskId, t] of tasks) {
      if (shown++ === SHOWN_TASKS_PER_JOB) {
        lines.push(`... and ${tasks.size - SHOWN_TASKS_PER_JOB} more`);
        break;
      }
      lines.push(`Task ${label(jobId, taskId)} (id=${taskId}):`, t.error);
      lines.push(`Working directory: ${t.cwd ?? '<none>'}`);
      lines.push(`Stdout: ${t.stdout ?? '<none>'}`, `Stderr: ${t.stderr ?? '<none>'}`);
    }
  }
  return lines.join('\n');
}

/**
 * The typed form of an error from the shared layer (operations, job-spec, the session), which
 * throws plain `HqError`s: the subclass for its code, with the original as `cause`.
 * `invalidIsJob` turns HQ_INVALID_ARGUMENT into InvalidJobError (for submit).
 */
export function typedError(e: unknown, invalidIsJob = false): unknown {
  if (!(e instanceof HqError) || e.constructor !== HqError) {
    return e;
  }
  switch (e.code) {
    case 'HQ_SERVER_NOT_FOUND':
      return new ServerNotFoundError(e.message, { cause: e });
    case 'HQ_CONNECTION':
    case 'HQ_KEY_MISMATCH':
    case 'HQ_ACCESS_FILE':
      return new ConnectionError(e.message, { cause: e, code: e.code });
    case 'HQ_VERSION_MISMATCH':
      return new VersionMismatchError(e.message, { cause: e });
    case 'HQ_JOB_NOT_COMPLETED':
      return new JobNotCompletedError(e.message, { cause: e });
    case 'HQ_INVALID_ARGUMENT':
      return invalidIsJob ? new InvalidJobError(e.message, { cause: e }) : e;
    default:
      return e;
  }
}
