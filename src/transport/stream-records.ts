/**
 * How server events travel in `events` frames (a `journal-stream`). Task starts on one worker
 * (variant 0) and task finishes, nearly all of a busy stream, go as tuples, like the journal's
 * compact entries: a watching dashboard then costs the server a fraction of what full event
 * maps cost to encode and send. Everything else goes as `{time, event}`.
 */
import type { TimedEvent } from '../server/events.js';

export type StreamRecord =
  | TimedEvent
  /** [time, 1, job, task, instance, worker]: a task started. */
  | [number, 1, number, number, number, number]
  /** [time, 2, job, task]: a task finished. */
  | [number, 2, number, number];

export function toStreamRecord(r: TimedEvent): StreamRecord {
  const e = r.event;
  if (e.type === 'task-started' && e.workers.length === 1 && e.variant === 0) {
    return [r.time, 1, e.jobId, e.taskId, e.instance, e.workers[0]!];
  }
  if (e.type === 'task-finished') {
    return [r.time, 2, e.jobId, e.taskId];
  }
  return r;
}

/** The event a record stands for, or null for a record of an unknown shape. */
export function fromStreamRecord(r: unknown): TimedEvent | null {
  if (Array.isArray(r)) {
    if (!r.every((v) => typeof v === 'number')) {
      return null;
    }
    const [time, kind, jobId, taskId, instance, worker] = r;
    if (kind === 1 && r.length === 6) {
      return {
        time: time!,
        event: {
          type: 'task-started',
          jobId: jobId!,
          taskId: taskId!,
          instance: instance!,
          workers: [worker!],
          variant: 0,
        },
      };
    }
    if (kind === 2 && r.length === 4) {
      return { time: time!, event: { type: 'task-finished', jobId: jobId!, taskId: taskId! } };
    }
    return null;
  }
  const t = r as Partial<TimedEvent> | null;
  return typeof t === 'object' &&
    t !== null &&
    typeof t.time === 'number' &&
    typeof t.event === 'object'
    ? (t as TimedEvent)
    : null;
}
