/** A worker as the server tracks it while connected (and after, for `hq worker list --all`). */
import type { Connection } from '../transport/connection.js';
import type { WorkerConfiguration, WorkerInfo, WorkerLostReason } from '../transport/messages.js';
import type { TaskRecord } from './state.js';

export interface WorkerRecord {
  id: number;
  configuration: WorkerConfiguration;
  connection: Connection | null;
  startedAt: number;
  ended: { at: number; reason: WorkerLostReason } | null;
  lastSeen: number;
  /** Tasks assigned to this worker (running or about to run), keyed by task key. */
  tasks: Map<number, TaskRecord & { jobId: number }>;
  runningCount: number;
  stopRequested: boolean;
  /** A reason the worker announced itself before closing. */
  announcedReason: WorkerLostReason | null;
  lastTaskStarted: { jobId: number; taskId: number; at: number } | null;
  /** The multi-node task holding this worker. */
  multiNode: { jobId: number; taskId: number; main: boolean } | null;
}

/** A task's key in its worker's `tasks` map. */
export function taskKey(jobId: number, taskId: number): number {
  return jobId * 4294967296 + taskId;
}

export function workerInfo(w: WorkerRecord): WorkerInfo {
  return {
    id: w.id,
    configuration: w.configuration,
    startedAt: w.startedAt,
    ended: w.ended,
    runningTasks: w.runningCount,
    assignedTasks: w.tasks.size,
    lastTaskStarted: w.lastTaskStarted,
    multiNode: w.multiNode === null ? null : { main: w.multiNode.main },
  };
}
