/**
 * The server's events: every change of its durable state is one of these, applied to the
 * state by `ServerState.apply` (state.ts), appended to the journal and sent to event-stream
 * clients, in that order and in the same tick.
 *
 * Invariants:
 * - The kinds and fields follow upstream's journal events where users can see them (`hq
 *   journal export/replay/stream`); `export-format.ts` turns them into upstream's JSON.
 * - Kinds marked internal below carry what restore needs beyond upstream's set; they are
 *   journaled but never exported or streamed.
 * - An event holds everything needed to apply it: a submit carries its id-resolved request,
 *   a start its instance, workers and variant.
 * - Stream-only kinds (`task-notify`, `job-idle`) change no state and are never journaled.
 */
import type { ResourceDescriptor } from '../common/resources.js';
import type { HwState } from '../worker/hw-monitor.js';
import type {
  OverviewTask,
  QueueParams,
  SubmitDesc,
  WorkerConfiguration,
  WorkerLostReason,
} from '../transport/messages.js';

export interface TaskId {
  jobId: number;
  taskId: number;
}

export type ServerEvent =
  | { type: 'server-start'; serverUid: string }
  | { type: 'server-stop' }
  | { type: 'worker-connected'; id: number; configuration: WorkerConfiguration }
  | { type: 'worker-lost'; id: number; reason: WorkerLostReason }
  /** `tasks`: running tasks and their CPUs (absent in journals of older builds). */
  | { type: 'worker-overview'; id: number; hwState: HwState | null; tasks?: OverviewTask[] }
  /** `closedJob`: the submit created a new job (false: it went into an open job). */
  | {
      type: 'job-created';
      job: number;
      closedJob: boolean;
      name: string;
      maxFails: number | null;
      submit: SubmitDesc;
    }
  | { type: 'job-completed'; job: number }
  | { type: 'job-open'; job: number; name: string; maxFails: number | null }
  | { type: 'job-close'; job: number }
  | { type: 'job-cancel'; job: number; reason: string | null }
  | {
      type: 'task-started';
      jobId: number;
      taskId: number;
      instance: number;
      workers: number[];
      variant: number;
    }
  | { type: 'task-finished'; jobId: number; taskId: number }
  | { type: 'task-failed'; jobId: number; taskId: number; error: string }
  | { type: 'task-canceled'; tasks: TaskId[] }
  | { type: 'task-aborted'; tasks: TaskId[] }
  | { type: 'autoalloc-queue-created'; queueId: number; params: QueueParams }
  | { type: 'autoalloc-queue-removed'; queueId: number }
  | {
      type: 'autoalloc-allocation-queued';
      queueId: number;
      allocationId: string;
      workerCount: number;
    }
  | { type: 'autoalloc-allocation-started'; queueId: number; allocationId: string }
  | { type: 'autoalloc-allocation-finished'; queueId: number; allocationId: string }
  // ---- internal: journaled, never exported ----
  /**
   * A task its lost worker had (running, or sent and not reported started) waits again with
   * the next instance id; `crashed` counts a crash.
   */
  | { type: 'task-restarted'; jobId: number; taskId: number; crashed: boolean }
  /**
   * Tasks of one job handed to one worker in one scheduling round, as `[first id, count]`
   * pairs; each went out with the instance id it had then. Journaled before the worker hears
   * of them, so a restore knows which waiting tasks may already have run.
   */
  | { type: 'tasks-sent'; jobId: number; workerId: number; ranges: number[] }
  | { type: 'job-forgotten'; job: number }
  | { type: 'autoalloc-queue-paused'; queueId: number }
  | { type: 'autoalloc-queue-resumed'; queueId: number }
  /** The first worker of a queue's allocation fixed the queue's known worker shape. */
  | { type: 'autoalloc-queue-resources'; queueId: number; resources: ResourceDescriptor }
  /** Written by prune: the id counters never go back even when the highest ids are pruned. */
  | { type: 'id-counters'; job: number; worker: number; queue: number }
  // ---- stream only: never journaled, no state ----
  | { type: 'task-notify'; jobId: number; taskId: number; workerId: number; message: string }
  | { type: 'job-idle'; job: number };

export type ServerEventType = ServerEvent['type'];

const INTERNAL = new Set<ServerEventType>([
  'task-restarted',
  'tasks-sent',
  'job-forgotten',
  'autoalloc-queue-paused',
  'autoalloc-queue-resumed',
  'autoalloc-queue-resources',
  'id-counters',
]);

const STREAM_ONLY = new Set<ServerEventType>(['task-notify', 'job-idle']);

/** Kinds users see in `journal export/replay/stream`. */
export function isExported(event: ServerEvent): boolean {
  return !INTERNAL.has(event.type);
}

/** Kinds that go into the journal file (overviews are decided by the caller). */
export function isJournaled(event: ServerEvent): boolean {
  return !STREAM_ONLY.has(event.type);
}

/** Upstream's stream filter flags. */
export const EVENT_FILTER = { job: 1, task: 2, worker: 4, allocation: 8, notify: 16 } as const;

/** Which filter flag an event passes under; 0 means it always passes (server start/stop). */
export function eventClass(event: ServerEvent): number {
  const t = event.type;
  if (t === 'server-start' || t === 'server-stop') {
    return 0;
  }
  if (t === 'task-notify') {
    return EVENT_FILTER.notify;
  }
  if (t.startsWith('task')) {
    return EVENT_FILTER.task;
  }
  if (t.startsWith('job-')) {
    return EVENT_FILTER.job;
  }
  if (t.startsWith('worker-')) {
    return EVENT_FILTER.worker;
  }
  return EVENT_FILTER.allocation;
}

/** The jobs an event is about (for job-filtered streams and prune); empty: none. */
export function eventJobs(event: ServerEvent): number[] {
  switch (event.type) {
    case 'job-created':
    case 'job-completed':
    case 'job-open':
    case 'job-close':
    case 'job-cancel':
    case 'job-forgotten':
    case 'job-idle':
      return [event.job];
    case 'task-started':
    case 'task-finished':
    case 'task-failed':
    case 'task-restarted':
    case 'tasks-sent':
    case 'task-notify':
      return [event.jobId];
    case 'task-canceled':
    case 'task-aborted':
      return [...new Set(event.tasks.map((t) => t.jobId))];
    default:
      return [];
  }
}

/** An event with the time it happened (epoch ms). */
export interface TimedEvent {
  time: number;
  event: ServerEvent;
}
