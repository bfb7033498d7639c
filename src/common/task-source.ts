/**
 * Where a task of a job came from (its submit, description and submit directory) and the paths
 * it uses, resolved as the worker resolves them: shared by the CLI's renderers and the API.
 */
import { idRangesContain } from './id-set.js';
import { resolveTaskPaths } from './placeholders.js';
import type { JobDetail, TaskDesc, TaskInfo } from '../transport/messages.js';

export interface TaskSource {
  taskDesc: TaskDesc;
  submitDir: string;
  deps?: number[];
}

const graphIndex = new WeakMap<JobDetail, Map<number, TaskSource>>();

/** The description and submit dir of task `taskId` of `job`. */
export function submitOf(job: JobDetail, taskId: number): TaskSource | undefined {
  const only = job.submits.length === 1 ? job.submits[0] : undefined;
  if (only?.kind === 'array') {
    return only;
  }
  for (const s of job.submits) {
    if (s.kind === 'array' && idRangesContain(s.ids, taskId)) {
      return s;
    }
  }
  let index = graphIndex.get(job);
  if (index === undefined) {
    index = new Map();
    for (const s of job.submits) {
      if (s.kind === 'graph') {
        for (const t of s.tasks) {
          index.set(t.id, { taskDesc: t.taskDesc, submitDir: s.submitDir, deps: t.deps });
        }
      }
    }
    graphIndex.set(job, index);
  }
  return index.get(taskId);
}

/** The paths a task used (or will use), resolved as the worker does. */
export function taskPaths(
  job: JobDetail,
  task: TaskInfo,
  serverUid: string,
): { cwd: string; stdout: string | null; stderr: string | null } | null {
  const submit = submitOf(job, task.id);
  if (submit === undefined) {
    return null;
  }
  const p = submit.taskDesc.program;
  return resolveTaskPaths(
    {
      cwd: p.cwd,
      stdout: p.stdout.kind === 'file' ? p.stdout.path : null,
      stderr: p.stderr.kind === 'file' ? p.stderr.path : null,
    },
    {
      JOB_ID: String(job.info.id),
      TASK_ID: String(task.id),
      INSTANCE_ID: String(task.instance),
      SUBMIT_DIR: submit.submitDir,
      SERVER_UID: serverUid,
    },
  );
}
