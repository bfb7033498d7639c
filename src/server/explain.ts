/** `hq task explain`: why a task can or cannot run on each connected worker. */
import { descriptorTotals as descriptorToTotals } from '../common/resources.js';
import type { ClientRpc, ExplainItem, WorkerConfiguration } from '../transport/messages.js';
import type { JobRecord, TaskRecord } from './state.js';

export interface ExplainWorker {
  id: number;
  configuration: WorkerConfiguration;
  startedAt: number;
}

export function explainTask(
  job: JobRecord,
  task: TaskRecord,
  online: ExplainWorker[],
  now: number,
): ClientRpc['task-explain']['res'] {
  const desc = job.descs[task.desc]!.taskDesc;
  const groups = new Map<string, number>();
  for (const w of online) {
    groups.set(w.configuration.group, (groups.get(w.configuration.group) ?? 0) + 1);
  }
  const workers = [...online]
    .sort((a, b) => a.id - b.id)
    .map((w) => {
      const sizes = descriptorToTotals(w.configuration.resources);
      const remaining =
        w.configuration.timeLimitMs === null
          ? null
          : Math.max(0, w.startedAt + w.configuration.timeLimitMs - now);
      const variants = desc.resources.map((rq) => {
        const items: ExplainItem[] = [];
        if (rq.minTimeMs > 0) {
          items.push({ kind: 'time', minTimeMs: rq.minTimeMs, remainingMs: remaining });
        }
        if (rq.nNodes > 0) {
          items.push({
            kind: 'group',
            nNodes: rq.nNodes,
            groupSize: groups.get(w.configuration.group) ?? 0,
          });
        } else {
          for (const e of rq.resources) {
            items.push({
              kind: 'resources',
              resource: e.resource,
              request: e.request.kind === 'all' ? 1 : e.request.amount,
              worker: sizes.get(e.resource) ?? 0,
            });
          }
        }
        return items;
      });
      return { workerId: w.id, variants };
    });
  return {
    jobId: job.id,
    taskId: task.id,
    explanation: { nTaskDeps: task.nDeps, nWaitingDeps: task.waitingDeps, workers },
  };
}
