/**
 * Every change of the server's state is expressed as one of these events before it is applied,
 * so that a journal (a later feature) can persist them and a restarted server can replay them.
 * Today the sink only feeds debug logging and `hq server debug-dump`.
 */
import type {
  QueueParams,
  SubmitDesc,
  TaskRef,
  WorkerConfiguration,
  WorkerLostReason,
} from '../transport/messages.js';

export type ServerEvent =
  | { type: 'server-start'; serverUid: string }
  | { type: 'server-stop' }
  | { type: 'worker-connected'; id: number; configuration: WorkerConfiguration }
  | { type: 'worker-lost'; id: number; reason: WorkerLostReason }
  | { type: 'job-created'; job: number; name: string; maxFails: number | null; submit: SubmitDesc }
  | { type: 'task-started'; task: TaskRef; worker: number }
  | { type: 'task-finished'; task: TaskRef }
  | { type: 'task-failed'; task: TaskRef; error: string }
  | { type: 'task-restarted'; task: TaskRef }
  | { type: 'task-canceled'; job: number; tasks: number[] }
  | { type: 'task-aborted'; job: number; tasks: number[] }
  | { type: 'job-cancel'; job: number; reason: string | null }
  | { type: 'job-completed'; job: number }
  | { type: 'job-open'; job: number; name: string; maxFails: number | null }
  | { type: 'job-close'; job: number }
  | { type: 'job-forgotten'; job: number }
  | { type: 'autoalloc-queue-created'; queueId: number; params: QueueParams }
  | { type: 'autoalloc-queue-removed'; queueId: number }
  | { type: 'autoalloc-queue-paused'; queueId: number }
  | { type: 'autoalloc-queue-resumed'; queueId: number }
  | {
      type: 'autoalloc-allocation-queued';
      queueId: number;
      allocationId: string;
      workerCount: number;
    }
  | { type: 'autoalloc-allocation-started'; queueId: number; allocationId: string }
  | { type: 'autoalloc-allocation-finished'; queueId: number; allocationId: string };

export interface EventSink {
  record(time: number, event: ServerEvent): void;
}

/** Keeps counts only; the journal replaces this sink. */
export class CountingSink implements EventSink {
  readonly counts = new Map<string, number>();

  record(_time: number, event: ServerEvent): void {
    this.counts.set(event.type, (this.counts.get(event.type) ?? 0) + 1);
  }
}
