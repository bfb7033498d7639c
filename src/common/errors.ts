import { existsSync, mkdirSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { dirname } from 'node:path';
import { getSystemErrorMap } from 'node:util';

/**
 * The one error type of the project. `code` is stable (scripts and tests may branch on it);
 * `message` is what the user sees, a single line that says what to do next where possible.
 */
export type HqErrorCode =
  | 'HQ_INVALID_ARGUMENT'
  | 'HQ_INVALID_DURATION'
  | 'HQ_INVALID_RANGE'
  | 'HQ_INVALID_RESOURCE'
  | 'HQ_ACCESS_FILE'
  | 'HQ_VERSION_MISMATCH'
  | 'HQ_SERVER_NOT_FOUND'
  | 'HQ_SERVER_RUNNING'
  | 'HQ_CONNECTION'
  | 'HQ_KEY_MISMATCH'
  | 'HQ_PROTOCOL'
  | 'HQ_NOT_FOUND'
  | 'HQ_TIMEOUT'
  | 'HQ_ALLOCATION'
  | 'HQ_JOB_NOT_COMPLETED'
  /** The TypeScript API's waitForJobs: some of the awaited jobs have failed tasks. */
  | 'HQ_JOBS_FAILED'
  /** The TypeScript API's LocalCluster: a process did not start, or the cluster is stopped. */
  | 'HQ_CLUSTER'
  | 'HQ_INTERNAL';

export class HqError extends Error {
  readonly code: HqErrorCode;

  constructor(code: HqErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'HqError';
    this.code = code;
  }
}

/** Turns anything thrown into a one-line message fit for a user. */
export function errorMessage(error: unknown): string {
  if (error instanceof Error) {
    return error.message;
  }
  return String(error);
}

/** An OS error number as a user reads it, in upstream's form: `Read-only file system (os error 30)`. */
export function osErrorText(errno: number): string {
  const entry = getSystemErrorMap().get(-Math.abs(errno));
  if (entry === undefined) {
    return `os error ${Math.abs(errno)}`;
  }
  const text = entry[1];
  return `${text.charAt(0).toUpperCase()}${text.slice(1)} (os error ${Math.abs(errno)})`;
}

/** A file system error without Node's syscall decoration, e.g. `Read-only file system (os error 30)`. */
export function fsErrorText(error: unknown): string {
  const e = error as NodeJS.ErrnoException;
  if (typeof e.errno === 'number') {
    return osErrorText(e.errno);
  }
  const byCode =
    e.code === undefined ? undefined : (osConstants.errno as Record<string, number>)[e.code];
  return byCode === undefined ? errorMessage(error) : osErrorText(byCode);
}

/**
 * `mkdir -p` whose error names the directory and the real cause. Node's recursive mkdir says
 * ENOENT where a parent is on a read-only file system; the deepest missing directory is then
 * created alone to learn why it cannot be.
 */
export function makeDirectory(dir: string, what = 'directory'): void {
  try {
    mkdirSync(dir, { recursive: true });
    return;
  } catch (first) {
    let missing = dir;
    for (let parent = dirname(missing); parent !== missing; parent = dirname(parent)) {
      if (existsSync(parent)) {
        break;
      }
      missing = parent;
    }
    let cause: unknown = first;
    try {
      mkdirSync(missing);
    } catch (e) {
      cause = e;
    }
    const where = missing === dir ? '' : ` (at ${missing})`;
    throw new HqError(
      'HQ_INVALID_ARGUMENT',
      `Cannot create ${what} ${dir}${where}: ${fsErrorText(cause)}`,
      {
        cause,
      },
    );
  }
}
