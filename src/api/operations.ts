/**
 * What an API client can do with a server, over one `ClientSession`: the operations behind
 * upstream's Python client (submit, wait with progress, failed tasks, forget, stop), with its
 * error texts. The `hq api` bridge and the TypeScript API both call these, so both behave alike.
 */
import { HqError } from '../common/errors.js';
import { taskPaths } from '../common/task-source.js';
import type { ClientSession } from '../client/session.js';
import type { IdSelector } from '../common/id-set.js';
import type { JobInfo } from '../transport/messages.js';
import { toGraphSubmit } from './job-spec.js';

/** Progress of one job: `completed` once nothing of it waits or runs. */
export interface JobProgress {
  finished: number;
  failed: number;
  total: number;
  completed: boolean;
}

export interface FailedTask {
  error: string;
  cwd: string | null;
  stdout: string | null;
  stderr: string | null;
}

/** How often `waitForJobs` reports progress. */
export const PROGRESS_INTERVAL_MS = 1000;

function selectorOf(ids: readonly number[]): IdSelector {
  return { kind: 'ids', ids: ids.map((id) => ({ start: id, count: 1, step: 1 })) };
}

function checkIds(ids: readonly number[]): void {
  for (const id of ids) {
    if (!Number.isInteger(id) || id < 0 || id > 0xffff_ffff) {
      throw new HqError('HQ_INVALID_ARGUMENT', `Invalid job id ${JSON.stringify(id)}`);
    }
  }
}

export async function submitJob(
  session: ClientSession,
  job: unknown,
  defaultName: string,
): Promise<number> {
  const { name, maxFails, graph } = toGraphSubmit(job, defaultName);
  const { jobId } = await session.call('submit-graph', { jobId: null, name, maxFails, graph });
  return jobId;
}

function progressOf(info: JobInfo): JobProgress {
  const c = info.counters;
  const ended = c.finished + c.failed + c.canceled + c.aborted;
  return {
    finished: c.finished,
    failed: c.failed,
    total: info.nTasks,
    completed: c.running === 0 && ended === info.nTasks,
  };
}

/**
 * The counters of `ids`, from the job list: a job's details would carry every task
 * description of its submits, megabytes for a large graph, on every progress tick.
 */
async function infos(session: ClientSession, ids: readonly number[]): Promise<JobInfo[]> {
  if (ids.length === 0) {
    return [];
  }
  const all = new Map((await session.call('job-list', {})).map((j) => [j.id, j]));
  return ids.map((id) => {
    const info = all.get(id);
    if (info === undefined) {
      throw new HqError('HQ_INVALID_ARGUMENT', `Job ${id} not found`);
    }
    return info;
  });
}

/**
 * Waits until every job has ended; returns the ids of those with a failed, canceled or aborted
 * task. `onProgress` gets every job's progress at once and then every PROGRESS_INTERVAL_MS.
 * An aborted `signal` rejects with its reason; the server's waiter goes with the connection.
 */
export async function waitForJobs(
  session: ClientSession,
  ids: readonly number[],
  onProgress: ((progress: Map<number, JobProgress>) => void) | null = null,
  signal?: AbortSignal,
): Promise<number[]> {
  checkIds(ids);
  signal?.throwIfAborted();
  const report = async (): Promise<void> => {
    if (onProgress !== null) {
      const jobs = await infos(session, ids);
      onProgress(new Map(jobs.map((j) => [j.id, progressOf(j)])));
    }
  };
  // Listening from the start: an abort during the first report (even from inside
  // `onProgress`) ends the wait too.
  let onAbort: (() => void) | null = null;
  const aborted = new Promise<never>((_, reject) => {
    if (signal !== undefined) {
      onAbort = () => reject(signal.reason as Error);
      signal.addEventListener('abort', onAbort, { once: true });
    }
  });
  let timer: NodeJS.Timeout | null = null;
  let done: Promise<unknown> | null = null;
  let ticking: Promise<never> | null = null;
  try {
    await Promise.race([report(), aborted]);
    done = session.call('wait-jobs', { selector: selectorOf(ids), withoutClose: false });
    ticking = new Promise<never>((_, reject) => {
      if (onProgress === null) {
        return;
      }
      const tick = (): void => {
        timer = setTimeout(() => {
          report().then(tick, reject);
        }, PROGRESS_INTERVAL_MS);
      };
      tick();
    });
    await Promise.race([done, aborted, ticking]);
  } finally {
    if (timer !== null) {
      clearTimeout(timer);
    }
    if (onAbort !== null) {
      signal?.removeEventListener('abort', onAbort);
    }
    // The promises that lost the race must not reject unobserved later (a closed connection
    // fails the pending wait).
    void aborted.catch(() => undefined);
    void done?.catch(() => undefined);
    void ticking?.catch(() => undefined);
  }
  await report();
  const jobs = await infos(session, ids);
  return jobs
    .filter((j) => j.counters.failed + j.counters.canceled + j.counters.aborted > 0)
    .map((j) => j.id);
}

/** The failed tasks of each job, with their error and resolved paths. */
export async function getFailedTasks(
  session: ClientSession,
  ids: readonly number[],
): Promise<Map<number, Map<number, FailedTask>>> {
  checkIds(ids);
  const out = new Map<number, Map<number, FailedTask>>();
  if (ids.length === 0) {
    return out;
  }
  const { jobs, missing } = await session.call('job-info', {
    selector: selectorOf(ids),
    withTasks: true,
  });
  if (missing.length > 0) {
    throw new HqError('HQ_INVALID_ARGUMENT', `Job ${missing[0]} not found`);
  }
  const serverUid = session.access.server_uid ?? '';
  for (const job of jobs) {
    const failed = new Map<number, FailedTask>();
    for (const task of job.tasks) {
      if (task.state !== 'failed') {
        continue;
      }
      const paths = taskPaths(job, task, serverUid);
      failed.set(task.id, {
        error: task.error ?? '',
        cwd: paths?.cwd ?? null,
        stdout: paths?.stdout ?? null,
        stderr: paths?.stderr ?? null,
      });
    }
    out.set(job.info.id, failed);
  }
  return out;
}

/** Forgets one completed job; anything else is upstream's error. */
export async function forgetJob(session: ClientSession, id: number): Promise<void> {
  checkIds([id]);
  const { forgotten } = await session.call('job-forget', {
    selector: selectorOf([id]),
    states: ['finished', 'failed', 'canceled', 'aborted'],
  });
  if (forgotten !== 1) {
    throw new HqError(
      'HQ_JOB_NOT_COMPLETED',
      `Cannot forget job ${id}. It either hasn't been completed yet, or it does not exist`,
    );
  }
}

export async function stopServer(session: ClientSession): Promise<void> {
  await session.call('server-stop', {});
}
