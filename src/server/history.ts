/**
 * The history a server without a journal can still tell (`hq journal replay/stream`): events
 * rebuilt from what it holds in memory, in time order. Finished tasks keep their times, so the
 * picture is complete for everything the server still knows; forgotten jobs are gone.
 */
import type { TimedEvent } from './events.js';
import type { WorkerConfiguration, WorkerLostReason } from '../transport/messages.js';
import type { JobRecord } from './state.js';

export interface HistoryWorker {
  id: number;
  configuration: WorkerConfiguration;
  startedAt: number;
  ended: { at: number; reason: WorkerLostReason } | null;
}

export function reconstructHistory(
  serverStart: { time: number; serverUid: string },
  workers: Iterable<HistoryWorker>,
  jobs: Iterable<JobRecord>,
): TimedEvent[] {
  const out: TimedEvent[] = [
    { time: serverStart.time, event: { type: 'server-start', serverUid: serverStart.serverUid } },
  ];
  for (const w of workers) {
    out.push({
      time: w.startedAt,
      event: { type: 'worker-connected', id: w.id, configuration: w.configuration },
    });
    if (w.ended !== null) {
      out.push({
        time: w.ended.at,
        event: { type: 'worker-lost', id: w.id, reason: w.ended.reason },
      });
    }
  }
  for (const job of jobs) {
    const at = job.submittedAt;
    // As upstream: every job is told as opened, then one submit into it per submit.
    out.push({
      time: at,
      event: { type: 'job-open', job: job.id, name: job.name, maxFails: job.maxFails },
    });
    for (const submit of job.submits) {
      out.push({
        time: at,
        event: {
          type: 'job-created',
          job: job.id,
          closedJob: false,
          name: job.name,
          maxFails: job.maxFails,
          submit,
        },
      });
    }
    // A task without a record has neither started nor ended: it adds no event.
    for (const task of job.tasks.touched()) {
      const ref = { jobId: job.id, taskId: task.id };
      if (task.startedAt !== null) {
        const workers = task.nodes ?? (task.workerId === null ? [] : [task.workerId]);
        out.push({
          time: task.startedAt,
          event: {
            type: 'task-started',
            ...ref,
            instance: task.instance,
            workers,
            variant: task.variant,
          },
        });
      }
      if (task.finishedAt !== null) {
        const time = task.finishedAt;
        switch (task.state) {
          case 'finished':
            out.push({ time, event: { type: 'task-finished', ...ref } });
            break;
          case 'failed':
            out.push({ time, event: { type: 'task-failed', ...ref, error: task.error ?? '' } });
            break;
          case 'canceled':
          case 'aborted':
            out.push({ time, event: { type: `task-${task.state}`, tasks: [ref] } });
            break;
          default:
            break;
        }
      }
    }
    if (job.completedAt !== null) {
      out.push({ time: job.completedAt, event: { type: 'job-completed', job: job.id } });
    }
  }
  // A stable sort keeps each job's own order (open, submits, tasks) at equal times.
  return out.sort((a, b) => a.time - b.time);
}
