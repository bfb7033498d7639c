/**
 * The `hq api` bridge: JSON Lines on stdin/stdout between a client library in another language
 * (the Python package) and one server connection, in the manner of esbuild's service API.
 *
 *   first line out:  {"ready":true,"version":V,"serverUid":U}
 *                  | {"ready":false,"code":C,"error":E}          (then exit 1)
 *   request in:      {"id":N,"op":OP,...}
 *   replies out:     {"id":N,"ok":true,"data":D} | {"id":N,"ok":false,"code":C,"error":E}
 *                    {"id":N,"progress":{"<job>":{finished,failed,total,completed}}}   (wait)
 *
 * Ops: submit {job, defaultName?} -> {jobId}; wait {jobs, progress?} -> {failed: [job ids]};
 * failed-tasks {jobs} -> {"<job>": {"<task>": {error, cwd, stdout, stderr}}}; forget {job};
 * stop-server; server-info; worker-list.
 *
 * Invariants: requests run concurrently and each gets exactly one final reply; a malformed line
 * gets an error reply with `id` null and changes nothing; the bridge ends when its stdin ends
 * (so none outlives its client), after closing the connection, or when the server closes the
 * connection (after answering what was in flight).
 */
import * as readline from 'node:readline';
import { HqError, errorMessage } from '../common/errors.js';
import { VERSION } from '../common/version.js';
import type { ClientSession } from '../client/session.js';
import {
  forgetJob,
  getFailedTasks,
  stopServer,
  submitJob,
  waitForJobs,
  type JobProgress,
} from './operations.js';

export const PYTHON_DEFAULT_JOB_NAME = 'PyAPI job';

type Write = (message: unknown) => void;

function jobIds(value: unknown): number[] {
  if (!Array.isArray(value)) {
    throw new HqError('HQ_INVALID_ARGUMENT', 'expected "jobs": a list of job ids');
  }
  return value as number[];
}

function progressJson(progress: Map<number, JobProgress>): Record<string, JobProgress> {
  return Object.fromEntries([...progress].map(([id, p]) => [String(id), p]));
}

async function handle(
  session: ClientSession,
  request: Record<string, unknown>,
  write: Write,
): Promise<unknown> {
  const id = request['id'];
  switch (request['op']) {
    case 'submit': {
      const name =
        typeof request['defaultName'] === 'string'
          ? request['defaultName']
          : PYTHON_DEFAULT_JOB_NAME;
      return { jobId: await submitJob(session, request['job'], name) };
    }
    case 'wait': {
      const onProgress =
        request['progress'] === true
          ? (p: Map<number, JobProgress>) => write({ id, progress: progressJson(p) })
          : null;
      return { failed: await waitForJobs(session, jobIds(request['jobs']), onProgress) };
    }
    case 'failed-tasks': {
      const failed = await getFailedTasks(session, jobIds(request['jobs']));
      return Object.fromEntries(
        [...failed].map(([job, tasks]) => [String(job), Object.fromEntries(tasks)]),
      );
    }
    case 'forget':
      await forgetJob(session, request['job'] as number);
      return null;
    case 'stop-server':
      await stopServer(session);
      return null;
    case 'server-info':
      return session.call('server-info', {});
    case 'worker-list':
      return session.call('worker-list', {});
    default:
      throw new HqError('HQ_INVALID_ARGUMENT', `unknown op ${JSON.stringify(request['op'])}`);
  }
}

/**
 * Serves requests from `input` until it ends. `open` connects (its failure is the `ready:false`
 * line); `write` sends one JSON line.
 */
export async function runBridge(
  open: () => Promise<ClientSession>,
  input: NodeJS.ReadableStream,
  write: Write,
): Promise<number> {
  let session: ClientSession;
  try {
    session = await open();
  } catch (e) {
    write({
      ready: false,
      code: e instanceof HqError ? e.code : 'HQ_CONNECTION',
      error: errorMessage(e),
    });
    return 1;
  }
  write({ ready: true, version: VERSION, serverUid: session.access.server_uid ?? null });
  const inFlight = new Set<Promise<void>>();
  const lines = readline.createInterface({ input, crlfDelay: Infinity });
  // A closed connection (the server stopped) ends the bridge too: nothing more can succeed.
  session.onClose(() => lines.close());
  try {
    for await (const line of lines) {
      if (line.trim() === '') {
        continue;
      }
      let request: unknown;
      try {
        request = JSON.parse(line);
      } catch (e) {
        write({
          id: null,
          ok: false,
          code: 'HQ_PROTOCOL',
          error: `invalid JSON: ${errorMessage(e)}`,
        });
        continue;
      }
      if (typeof request !== 'object' || request === null || Array.isArray(request)) {
        write({ id: null, ok: false, code: 'HQ_PROTOCOL', error: 'a request must be an object' });
        continue;
      }
      const r = request as Record<string, unknown>;
      const id = typeof r['id'] === 'number' ? r['id'] : null;
      const done = handle(session, r, write).then(
        (data) => write({ id, ok: true, data: data ?? null }),
        (e: unknown) =>
          write({
            id,
            ok: false,
            code: e instanceof HqError ? e.code : 'HQ_INTERNAL',
            error: errorMessage(e),
          }),
      );
      inFlight.add(done);
      void done.finally(() => inFlight.delete(done));
    }
  } finally {
    session.close();
  }
  // The connection is closed: whatever was still waiting has been answered with an error.
  await Promise.all(inFlight);
  return 0;
}
