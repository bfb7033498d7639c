/**
 * Submit validation and the submit-time pass over task paths. Everything here runs before a
 * `job-created` event is emitted, so a submit that fails validation changes nothing.
 */
import * as path from 'node:path';
import { HqError } from '../common/errors.js';
import { fillPlaceholders, hasPlaceholders } from '../common/placeholders.js';
import type { ArraySubmit, GraphSubmit, TaskDesc } from '../transport/messages.js';
import type { JobRecord } from './state.js';
import { TaskTable } from './task-table.js';

/**
 * JOB_ID, SUBMIT_DIR and SERVER_UID are known at submit time; the cwd becomes absolute, and
 * paths without placeholders left become absolute too.
 */
export function resolveSubmitPaths(
  jobId: number,
  desc: TaskDesc,
  submitDir: string,
  serverUid: string,
): TaskDesc {
  const values = { JOB_ID: String(jobId), SUBMIT_DIR: submitDir, SERVER_UID: serverUid };
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
    streamPath: stream === null ? null : path.resolve(submitDir, fillPlaceholders(stream, values)),
  };
}

/**
 * Checks an array submit into `existing` (null: a new job) and numbers its tasks when the
 * client left that to the server (`autoIds`, changed in place). Returns the task count.
 */
export function validateArraySubmit(
  jobId: number,
  existing: JobRecord | null,
  array: ArraySubmit,
): number {
  const tasks = existing?.tasks ?? new TaskTable();
  if (array.autoIds) {
    const first = tasks.maxId() + 1;
    const count = array.entries === null ? 1 : array.entries.length;
    array.ids = count === 0 ? [] : [{ start: first, count, step: 1 }];
    array.autoIds = false;
  }
  let nTasks = 0;
  for (const range of array.ids) {
    if (
      !Number.isSafeInteger(range.count) ||
      range.count < 0 ||
      range.step < 1 ||
      !Number.isSafeInteger(range.start) ||
      range.start < 0 ||
      range.start + (range.count - 1) * range.step > MAX_TASK_ID
    ) {
      throw new HqError('HQ_INVALID_ARGUMENT', 'Invalid task id range');
    }
    nTasks += range.count;
  }
  checkJobSize(jobId, tasks.size, nTasks);
  // Ids must be new; checking them only matters where some could collide.
  if (tasks.size > 0 || array.ids.length > 1) {
    const clash = tasks.firstClash(array.ids);
    if (clash !== null) {
      throw new HqError('HQ_INVALID_ARGUMENT', `Task ${clash} already exists in job ${jobId}.`);
    }
  }
  if (nTasks === 0) {
    throw new HqError('HQ_INVALID_ARGUMENT', 'Submitted job has no tasks');
  }
  if (array.entries !== null && array.entries.length < nTasks) {
    throw new HqError('HQ_INVALID_ARGUMENT', 'Fewer entries than task ids');
  }
  return nTasks;
}

/** Task ids are 32-bit, as upstream's. */
const MAX_TASK_ID = 4_294_967_295;

/**
 * The most tasks one job can hold. A waiting task of a large array costs nearly nothing (see
 * TaskTable), but every task that has been dispatched has a record of about 110 bytes: a job
 * run to its end holds some 1.8 GB at this size, and a cancel makes every record at once.
 */
export const MAX_TASKS_PER_JOB = 16_000_000;

/** Refuses a submit that would make a job larger than the server can hold, before anything. */
function checkJobSize(jobId: number, existing: number, adding: number): void {
  if (existing + adding > MAX_TASKS_PER_JOB) {
    throw new HqError(
      'HQ_INVALID_ARGUMENT',
      `A job can hold at most ${MAX_TASKS_PER_JOB} tasks; this submit would give job ${jobId} ${existing + adding}. Split the work into several jobs`,
    );
  }
}

/**
 * Checks a task graph: new unique ids, and dependencies on earlier tasks of this submit or on
 * tasks already in the job, so a valid graph is acyclic by construction.
 */
export function validateGraphSubmit(
  jobId: number,
  existing: JobRecord | null,
  graph: GraphSubmit,
): void {
  const tasks = existing?.tasks ?? new TaskTable();
  checkJobSize(jobId, tasks.size, graph.tasks.length);
  const ids = new Set<number>();
  for (const t of graph.tasks) {
    if (tasks.has(t.id)) {
      throw new HqError('HQ_INVALID_ARGUMENT', `Task ${t.id} already exists in job ${jobId}.`);
    }
    if (ids.has(t.id)) {
      throw new HqError('HQ_INVALID_ARGUMENT', `Task ${t.id} is defined more than once.`);
    }
    ids.add(t.id);
  }
  const seen = new Set<number>();
  for (const t of graph.tasks) {
    for (const dep of t.deps) {
      if (!seen.has(dep) && !tasks.has(dep)) {
        throw new HqError('HQ_INVALID_ARGUMENT', `Invalid dependency on ${t.id}`);
      }
    }
    seen.add(t.id);
  }
}
