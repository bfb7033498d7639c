/**
 * Clients blocked on jobs (`hq job wait`, `submit --wait`, `--progress`, `--on-notify`): each is
 * answered once every job it waits for has completed (or, with `withoutClose`, gone idle), and
 * receives the task notifications of those jobs meanwhile.
 */
import type { ClientRpc, TaskNotification } from '../transport/messages.js';
import { isJobCompleted, isJobIdle, type JobRecord } from './state.js';

interface Waiter {
  jobs: number[];
  /** Jobs the selector named that did not exist. */
  missing: number;
  withoutClose: boolean;
  respond: (data: ClientRpc['wait-jobs']['res']) => void;
  notify: ((n: TaskNotification) => void) | null;
}

export class JobWaiters {
  private readonly waiters = new Set<Waiter>();
  private readonly jobs: Map<number, JobRecord>;

  constructor(jobs: Map<number, JobRecord>) {
    this.jobs = jobs;
  }

  /**
   * Returns what drops the waiter unanswered (its client hung up; a no-op once answered): a
   * waiter left behind would hold its connection and be walked by every wake-up forever.
   */
  add(
    jobs: number[],
    missing: number,
    withoutClose: boolean,
    respond: Waiter['respond'],
    notify: Waiter['notify'],
  ): () => void {
    const waiter: Waiter = { jobs, missing, withoutClose, respond, notify };
    if (this.ready(waiter)) {
      this.finish(waiter);
      return () => undefined;
    }
    this.waiters.add(waiter);
    return () => {
      this.waiters.delete(waiter);
    };
  }

  /** Answers every waiter whose jobs are done now (after a job went idle or completed). */
  wake(): void {
    for (const waiter of [...this.waiters]) {
      if (this.ready(waiter)) {
        this.waiters.delete(waiter);
        this.finish(waiter);
      }
    }
  }

  /** Notifications are not state: they go to whoever waits on the job now, and are gone. */
  notify(n: TaskNotification): void {
    for (const waiter of this.waiters) {
      if (waiter.notify !== null && waiter.jobs.includes(n.jobId)) {
        waiter.notify(n);
      }
    }
  }

  private ready(waiter: Waiter): boolean {
    return waiter.jobs.every((id) => {
      const job = this.jobs.get(id);
      return job === undefined || isJobCompleted(job) || (waiter.withoutClose && isJobIdle(job));
    });
  }

  private finish(waiter: Waiter): void {
    const res = {
      finished: 0,
      failed: 0,
      canceled: 0,
      invalid: waiter.missing,
      jobs: waiter.jobs,
    };
    for (const id of waiter.jobs) {
      const job = this.jobs.get(id);
      if (!job) {
        res.invalid++;
      } else if (job.counters.failed > 0 || job.counters.aborted > 0) {
        res.failed++;
      } else if (job.counters.canceled > 0) {
        res.canceled++;
      } else {
        res.finished++;
      }
    }
    waiter.respond(res);
  }
}
