/**
 * Which journal records a prune keeps: everything about live jobs and online workers, every
 * queue and allocation record, server starts and stops, and one id-counters record first so
 * that ids never go back when the highest ones are pruned.
 */
import { eventJobs, type TimedEvent } from '../events.js';

export function pruneRecords(
  records: TimedEvent[],
  liveJobs: Set<number>,
  liveWorkers: Set<number>,
  counters: { job: number; worker: number; queue: number },
): TimedEvent[] {
  const first = records[0]?.time ?? Date.now();
  const out: TimedEvent[] = [{ time: first, event: { type: 'id-counters', ...counters } }];
  for (const r of records) {
    const e = r.event;
    switch (e.type) {
      case 'id-counters':
      case 'job-forgotten':
        continue;
      case 'worker-connected':
      case 'worker-lost':
      case 'worker-overview':
        if (liveWorkers.has(e.id)) {
          out.push(r);
        }
        continue;
      case 'task-canceled':
      case 'task-aborted': {
        const tasks = e.tasks.filter((t) => liveJobs.has(t.jobId));
        if (tasks.length > 0) {
          out.push(tasks.length === e.tasks.length ? r : { time: r.time, event: { ...e, tasks } });
        }
        continue;
      }
      default: {
        const jobs = eventJobs(e);
        if (jobs.length === 0 || jobs.some((j) => liveJobs.has(j))) {
          out.push(r);
        }
      }
    }
  }
  return out;
}
