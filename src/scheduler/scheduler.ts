/**
 * The scheduling core: which waiting task runs on which worker. Pure: no I/O, no clocks (the
 * caller passes `nowMs`), deterministic for the same sequence of calls.
 *
 * Invariants:
 * - A worker's resources are never oversubscribed: for every pool, the sum of the amounts of
 *   the tasks assigned to it is at most the pool's size.
 * - Order is strict priority (higher first), then older job (lower job id), then lower task id.
 *   A task that could run on some worker once resources free up blocks every task of a lower
 *   priority; tasks of its own priority with other requests may still go ahead.
 * - A task whose request fits no connected worker at all never blocks anything.
 * - A task with a time request only goes to a worker whose remaining lifetime is at least that
 *   long (a worker without a time limit accepts every time request).
 * - Ready tasks with identical requests share one queue, so a full cluster costs one check per
 *   distinct request per round, not one per task.
 */

/** A resource need of one task: an amount in fixed-point units, or the whole pool. */
export interface ResourceNeed {
  name: string;
  amount: number | 'all';
}

export interface TaskRequest {
  needs: ResourceNeed[];
  minTimeMs: number;
}

export interface Assignment {
  workerId: number;
  jobId: number;
  taskId: number;
  /** The amount taken from each pool, to be given back by `release`. */
  taken: Map<string, number>;
}

interface QueuedTask {
  priority: number;
  jobId: number;
  taskId: number;
}

interface SchedWorker {
  id: number;
  totals: Map<string, number>;
  free: Map<string, number>;
  endsAtMs: number | null;
  assigned: number;
}

/** A binary min-heap ordered by (priority desc, job asc, task asc). */
class TaskHeap {
  private readonly items: QueuedTask[] = [];

  get size(): number {
    return this.items.length;
  }

  peek(): QueuedTask | undefined {
    return this.items[0];
  }

  private static before(a: QueuedTask, b: QueuedTask): boolean {
    if (a.priority !== b.priority) {
      return a.priority > b.priority;
    }
    if (a.jobId !== b.jobId) {
      return a.jobId < b.jobId;
    }
    return a.taskId < b.taskId;
  }

  push(item: QueuedTask): void {
    const items = this.items;
    items.push(item);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = items[parent]!;
      if (!TaskHeap.before(item, p)) {
        break;
      }
      items[i] = p;
      i = parent;
    }
    items[i] = item;
  }

  pop(): QueuedTask | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (top === undefined || last === undefined || items.length === 0) {
      return top;
    }
    let i = 0;
    const n = items.length;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) {
        break;
      }
      const r = l + 1;
      const child = r < n && TaskHeap.before(items[r]!, items[l]!) ? r : l;
      if (!TaskHeap.before(items[child]!, last)) {
        break;
      }
      items[i] = items[child]!;
      i = child;
    }
    items[i] = last;
    return top;
  }

  static isBefore(a: QueuedTask, b: QueuedTask): boolean {
    return TaskHeap.before(a, b);
  }
}

interface RequestQueue {
  request: TaskRequest;
  heap: TaskHeap;
}

function taskKey(jobId: number, taskId: number): number {
  return jobId * 4294967296 + taskId;
}

export function requestSignature(request: TaskRequest): string {
  const parts = request.needs.map((n) => `${n.name}=${n.amount}`).sort();
  return `${parts.join(',')}|${request.minTimeMs}`;
}

export class Scheduler {
  private readonly workers = new Map<number, SchedWorker>();
  private readonly queues = new Map<string, RequestQueue>();
  /** Tasks removed while still in a heap; skipped (and forgotten) when they reach the top. */
  private readonly removed = new Set<number>();
  private queuedCount = 0;

  get waitingCount(): number {
    return this.queuedCount;
  }

  addWorker(id: number, totals: Map<string, number>, endsAtMs: number | null): void {
    this.workers.set(id, { id, totals, free: new Map(totals), endsAtMs, assigned: 0 });
  }

  removeWorker(id: number): void {
    this.workers.delete(id);
  }

  enqueue(jobId: number, taskId: number, priority: number, request: TaskRequest): void {
    const sig = requestSignature(request);
    let queue = this.queues.get(sig);
    if (queue === undefined) {
      queue = { request, heap: new TaskHeap() };
      this.queues.set(sig, queue);
    }
    this.removed.delete(taskKey(jobId, taskId));
    queue.heap.push({ priority, jobId, taskId });
    this.queuedCount++;
  }

  /** Takes a waiting task out of the queue (cancel). The caller knows it is queued. */
  dequeue(jobId: number, taskId: number): void {
    this.removed.add(taskKey(jobId, taskId));
    this.queuedCount--;
  }

  /** Gives back what an assignment took, when its task ends or is taken off the worker. */
  release(workerId: number, taken: Map<string, number>): void {
    const worker = this.workers.get(workerId);
    if (worker === undefined) {
      return;
    }
    for (const [name, amount] of taken) {
      worker.free.set(name, (worker.free.get(name) ?? 0) + amount);
    }
    worker.assigned--;
  }

  private head(queue: RequestQueue): QueuedTask | undefined {
    for (;;) {
      const top = queue.heap.peek();
      if (top === undefined) {
        return undefined;
      }
      const key = taskKey(top.jobId, top.taskId);
      if (!this.removed.has(key)) {
        return top;
      }
      this.removed.delete(key);
      queue.heap.pop();
    }
  }

  /** What the request takes from `worker` if it fits in its free resources, else null. */
  private fit(
    worker: SchedWorker,
    request: TaskRequest,
    nowMs: number,
  ): Map<string, number> | null {
    if (request.minTimeMs > 0 && worker.endsAtMs !== null) {
      if (worker.endsAtMs - nowMs < request.minTimeMs) {
        return null;
      }
    }
    const taken = new Map<string, number>();
    for (const need of request.needs) {
      const total = worker.totals.get(need.name);
      if (total === undefined || total <= 0) {
        return null;
      }
      const amount = need.amount === 'all' ? total : need.amount;
      if ((worker.free.get(need.name) ?? 0) < amount) {
        return null;
      }
      taken.set(need.name, amount);
    }
    return taken;
  }

  private couldEverFit(request: TaskRequest, nowMs: number): boolean {
    for (const worker of this.workers.values()) {
      const saved = worker.free;
      worker.free = worker.totals;
      const fits = this.fit(worker, request, nowMs) !== null;
      worker.free = saved;
      if (fits) {
        return true;
      }
    }
    return false;
  }

  /**
   * Picks the worker that the task fills best: the least CPU left over after placing it (so
   * small tasks pack onto few workers and whole workers stay free for big ones), then lower id.
   */
  private bestWorker(
    request: TaskRequest,
    nowMs: number,
  ): { worker: SchedWorker; taken: Map<string, number> } | null {
    let best: { worker: SchedWorker; taken: Map<string, number>; left: number } | null = null;
    for (const worker of this.workers.values()) {
      const taken = this.fit(worker, request, nowMs);
      if (taken === null) {
        continue;
      }
      const left = (worker.free.get('cpus') ?? 0) - (taken.get('cpus') ?? 0);
      if (best === null || left < best.left || (left === best.left && worker.id < best.worker.id)) {
        best = { worker, taken, left };
      }
    }
    return best;
  }

  /** Assigns as many waiting tasks as fit now, in priority order. */
  schedule(nowMs: number, limit = Number.POSITIVE_INFINITY): Assignment[] {
    const out: Assignment[] = [];
    if (this.workers.size === 0 || this.queuedCount === 0) {
      return out;
    }
    const open = new Set(this.queues.values());
    let blockBelow = Number.NEGATIVE_INFINITY;
    while (open.size > 0 && out.length < limit) {
      let bestQueue: RequestQueue | null = null;
      let bestTask: QueuedTask | null = null;
      for (const queue of open) {
        const top = this.head(queue);
        if (top === undefined) {
          open.delete(queue);
          continue;
        }
        if (bestTask === null || TaskHeap.isBefore(top, bestTask)) {
          bestQueue = queue;
          bestTask = top;
        }
      }
      if (bestQueue === null || bestTask === null || bestTask.priority < blockBelow) {
        break;
      }
      const choice = this.bestWorker(bestQueue.request, nowMs);
      if (choice === null) {
        open.delete(bestQueue);
        if (this.couldEverFit(bestQueue.request, nowMs)) {
          blockBelow = Math.max(blockBelow, bestTask.priority);
        }
        continue;
      }
      bestQueue.heap.pop();
      this.queuedCount--;
      for (const [name, amount] of choice.taken) {
        choice.worker.free.set(name, (choice.worker.free.get(name) ?? 0) - amount);
      }
      choice.worker.assigned++;
      out.push({
        workerId: choice.worker.id,
        jobId: bestTask.jobId,
        taskId: bestTask.taskId,
        taken: choice.taken,
      });
    }
    for (const [sig, queue] of this.queues) {
      if (queue.heap.size === 0) {
        this.queues.delete(sig);
      }
    }
    return out;
  }
}
