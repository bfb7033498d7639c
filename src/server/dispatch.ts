/**
 * Turns the scheduler's assignments into messages: the task records learn where they go, and
 * each worker gets one `compute` frame holding all its tasks, with every task description the
 * frame needs sent once (`shared`). Secondary nodes of a multi-node task are told they are
 * reserved.
 */
import type { Assignment } from '../scheduler/scheduler.js';
import type { ServerEvent } from './events.js';
import type { ComputeTask, ServerToWorker, WorkerTaskShared } from '../transport/messages.js';
import type { JobRecord } from './state.js';
import { taskKey, type WorkerRecord } from './workers.js';

export function dispatchAssignments(
  assignments: Assignment[],
  jobs: Map<number, JobRecord>,
  workers: Map<number, WorkerRecord>,
  send: (workerId: number, message: ServerToWorker) => void,
): void {
  const batches = new Map<
    number,
    { shared: WorkerTaskShared[]; index: Map<string, number>; tasks: ComputeTask[] }
  >();
  for (const a of assignments) {
    const job = jobs.get(a.jobId)!;
    const task = job.tasks.get(a.taskId)!;
    const worker = workers.get(a.workerId)!;
    task.workerId = a.workerId;
    task.taken = a.prefilled === true ? null : a.taken;
    task.prefilled = a.prefilled === true;
    // `variant` lives on the prototype (0) until a task needs its own.
    if ((a.variant ?? 0) !== 0 || task.variant !== 0) {
      task.variant = a.variant ?? 0;
    }
    let nodes: string[] | null = null;
    if (a.workers !== undefined) {
      task.nodes = a.workers;
      nodes = a.workers.map((id, i) => {
        const w = workers.get(id)!;
        w.multiNode = { jobId: a.jobId, taskId: a.taskId, main: i === 0 };
        if (i > 0) {
          send(id, { op: 'reservation', reserved: true });
        }
        return w.configuration.hostname;
      });
    }
    worker.tasks.set(taskKey(a.jobId, a.taskId), Object.assign(task, { jobId: a.jobId }));
    let batch = batches.get(a.workerId);
    if (!batch) {
      batch = { shared: [], index: new Map(), tasks: [] };
      batches.set(a.workerId, batch);
    }
    const sharedKey = `${a.jobId}:${task.desc}`;
    let sharedIndex = batch.index.get(sharedKey);
    if (sharedIndex === undefined) {
      const d = job.descs[task.desc]!;
      sharedIndex = batch.shared.length;
      batch.shared.push({ taskDesc: d.taskDesc, submitDir: d.submitDir });
      batch.index.set(sharedKey, sharedIndex);
    }
    batch.tasks.push({
      jobId: a.jobId,
      taskId: a.taskId,
      instance: task.instance,
      shared: sharedIndex,
      entry: task.entry,
      nodes,
      variant: a.variant ?? 0,
    });
  }
  for (const [workerId, batch] of batches) {
    send(workerId, { op: 'compute', shared: batch.shared, tasks: batch.tasks });
  }
}

/**
 * The `tasks-sent` events of one scheduling round: per job and worker, the task ids as
 * `[first, count]` pairs (an array's consecutive ids make one pair).
 */
export function sentEvents(assignments: readonly Assignment[]): ServerEvent[] {
  const groups = new Map<string, { jobId: number; workerId: number; ranges: number[] }>();
  for (const a of assignments) {
    const key = `${a.jobId}:${a.workerId}`;
    let group = groups.get(key);
    if (group === undefined) {
      group = { jobId: a.jobId, workerId: a.workerId, ranges: [] };
      groups.set(key, group);
    }
    const r = group.ranges;
    const n = r.length;
    if (n > 0 && r[n - 2]! + r[n - 1]! === a.taskId) {
      r[n - 1]!++;
    } else {
      r.push(a.taskId, 1);
    }
  }
  return [...groups.values()].map((g) => ({ type: 'tasks-sent', ...g }));
}
