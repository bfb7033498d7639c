/**
 * The scheduling core: which waiting task runs on which worker. Pure: no I/O, no clocks (the
 * caller passes `nowMs`), deterministic for the same sequence of calls.
 *
 * Invariants:
 * - A worker's resources are never oversubscribed: for every pool, the sum of the amounts of
 *   the tasks assigned to it is at most the pool's size.
 * - Order is strict priority (higher first), then older job (lower job id), then lower task id.
 *   A task that could run on some worker once resources free up holds, for the round, the free
 *   part of the resources it is short of on that worker: later tasks (of any priority) may use
 *   everything else but not those, so a big request is never starved by a stream of small ones.
 * - A task whose request fits no connected worker at all never holds anything.
 * - A task with a time request only goes to a worker whose remaining lifetime is at least that
 *   long (a worker without a time limit accepts every time request).
 * - Ready tasks with identical requests share one queue, so a full cluster costs one check per
 *   distinct request per round, not one per task.
 * - A multi-node task (nNodes > 0) takes nNodes whole workers of one group that have nothing
 *   assigned; they stay reserved for it until it is released, and get no other task meanwhile.
 * - A worker with a minimal utilization only gets tasks as a set that uses at least that share
 *   of its CPUs (the set of highest weighted CPU use found by a bounded search).
 * - Prefill: when more than PREFILL_KEEP_BACK tasks of the top request still wait after a
 *   round, busy workers get up to PREFILL_PER_WORKER of them ahead of time, so a worker can
 *   start the next task the moment one ends, without a round trip. A prefilled task takes its
 *   resources when it starts (`takeForStart`), which may briefly drive a worker's free amount below
 *   zero; nothing else is assigned to that worker until it is back above.
 */

export const PREFILL_PER_WORKER = 8;
export const PREFILL_KEEP_BACK = 16;

/** A resource need of one task: an amount in fixed-point units, or the whole pool. */
export interface ResourceNeed {
  name: string;
  amount: number | 'all';
}

export interface TaskRequest {
  needs: ResourceNeed[];
  minTimeMs: number;
  /** Whole workers needed (multi-node task); 0 or absent for a single-node task. */
  nNodes?: number;
  /** Preference in fixed-point units (10 000 = 1.0); only used for min-utilization packing. */
  weight?: number;
  /** Further variants (job files): the task may run with any one; earlier ones are preferred. */
  alternatives?: TaskRequest[];
}

export interface WorkerOptions {
  group?: string;
  /** 0.0 - 1.0: the share of CPUs a worker must be able to use before it takes tasks. */
  minUtilization?: number;
}

export interface Assignment {
  workerId: number;
  jobId: number;
  taskId: number;
  /** The amount taken from each pool, to be given back by `release`. */
  taken: Map<string, number>;
  /** For a multi-node task: every worker it holds, the first one (`workerId`) runs it. */
  workers?: number[];
  /**
   * Sent ahead (prefill): the worker queues it and starts it as soon as its own resources
   * allow. It takes nothing now (`taken` is empty); call `takeForStart` when it starts.
   */
  prefilled?: boolean;
  /** The variant chosen (0 = the main request, i = alternatives[i - 1]). */
  variant?: number;
}

/**
 * A kind of worker that could be started (an allocation queue's worker shape), for
 * `queryNewWorkers`.
 */
export interface WorkerShapeQuery {
  /** Pool sizes of one such worker, in fixed-point units. */
  totals: Map<string, number>;
  /** When true, pools missing from `totals` are unknown and assumed big enough. */
  partial: boolean;
  /** How long such a worker would live (null: unlimited). */
  timeLimitMs: number | null;
  /** At most this many single-node workers of this shape are considered. */
  maxWorkers: number;
  /** Multi-node tasks of up to this many nodes can be served by one allocation. */
  maxWorkersPerAlloc: number;
}

export interface WorkerQueryAnswer {
  /** Per query: how many new single-node workers the waiting tasks would keep busy. */
  singleNodeWorkers: number[];
  /** Waiting multi-node tasks, each group assigned to the first query that can hold it. */
  multiNode: { query: number; workersPerAlloc: number; tasks: number }[];
}

/**
 * One heap entry: a single task, or a run of tasks of an array (`remaining` ids from `taskId`
 * on, `step` apart), so that a million-task array costs one entry, not a million. A run is
 * ordered by its next id and advances in place as tasks are taken.
 */
interface QueuedTask {
  priority: number;
  jobId: number;
  taskId: number;
  step: number;
  remaining: number;
  /**
   * Single tasks: matches `live` only for the current entry of the task (older ones are
   * stale). Runs: 0; a task taken out of a run early is listed in `removed` instead.
   */
  gen: number;
}

interface SchedWorker {
  id: number;
  totals: Map<string, number>;
  free: Map<string, number>;
  endsAtMs: number | null;
  assigned: number;
  group: string;
  minUtilization: number;
  /** Held by a multi-node task. */
  reserved: boolean;
  /** Tasks sent ahead that have not started yet. */
  prefilled: number;
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
    items[0] = last;
    this.siftDown(0);
    return top;
  }

  /** Moves the entry at `start` down to where it belongs. */
  private siftDown(start: number): void {
    const items = this.items;
    const last = items[start]!;
    let i = start;
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
  }

  static isBefore(a: QueuedTask, b: QueuedTask): boolean {
    return TaskHeap.before(a, b);
  }

  /** Every entry, in no particular order (stale ones included). */
  entries(): readonly QueuedTask[] {
    return this.items;
  }

  /** Restores the order after the top entry's key grew (a run advanced). */
  siftDownTop(): void {
    if (this.items.length > 1) {
      this.siftDown(0);
    }
  }

  /** Keeps only the entries `keep` accepts. */
  retain(keep: (item: QueuedTask) => boolean): void {
    const kept = this.items.filter(keep);
    this.items.length = 0;
    for (const item of kept) {
      this.push(item);
    }
  }
}

interface RequestQueue {
  request: TaskRequest;
  heap: TaskHeap;
  /** Tasks in the heap's entries (stale ones included until dropped). */
  pending: number;
}

function taskKey(jobId: number, taskId: number): number {
  return jobId * 4294967296 + taskId;
}

/** Whether one task of `request` could ever run on an empty worker of the query's shape. */
function shapeFits(query: WorkerShapeQuery, request: TaskRequest): boolean {
  if (query.timeLimitMs !== null && request.minTimeMs > query.timeLimitMs) {
    return false;
  }
  return request.needs.every((need) => {
    const total = query.totals.get(need.name);
    if (total === undefined) {
      return query.partial;
    }
    return need.amount === 'all' ? total > 0 : need.amount <= total;
  });
}

/** How many tasks of `request` fit into `free` at once (unknown pools never limit). */
function shapeCapacity(
  query: WorkerShapeQuery,
  free: Map<string, number>,
  request: TaskRequest,
): number {
  let capacity = Number.POSITIVE_INFINITY;
  for (const need of request.needs) {
    const have = free.get(need.name);
    if (have === undefined) {
      continue;
    }
    if (need.amount === 'all') {
      capacity = Math.min(capacity, have === query.totals.get(need.name) && have > 0 ? 1 : 0);
    } else if (need.amount > 0) {
      capacity = Math.min(capacity, Math.floor(have / need.amount));
    }
  }
  return capacity;
}

export function requestSignature(request: TaskRequest): string {
  const parts = request.needs.map((n) => `${n.name}=${n.amount}`).sort();
  const own = `${parts.join(',')}|${request.minTimeMs}|${request.nNodes ?? 0}|${request.weight ?? 10_000}`;
  const others = (request.alternatives ?? []).map(requestSignature);
  return others.length === 0 ? own : `${own}/${others.join('/')}`;
}

export class Scheduler {
  private readonly workers = new Map<number, SchedWorker>();
  private readonly queues = new Map<string, RequestQueue>();
  /**
   * The generation of each task's current queue entry. Entries of dequeued tasks (and older
   * entries of re-queued ones) stay in their heap until they reach the top, where they are
   * recognised as stale and dropped: a task is never handed out twice.
   */
  private readonly live = new Map<number, number>();
  /** Tasks dequeued while inside a run; skipped (and forgotten) when the run reaches them. */
  private readonly removed = new Set<number>();
  private generation = 0;
  private queuedCount = 0;

  get waitingCount(): number {
    return this.queuedCount;
  }

  addWorker(
    id: number,
    totals: Map<string, number>,
    endsAtMs: number | null,
    options: WorkerOptions = {},
  ): void {
    this.workers.set(id, {
      id,
      totals,
      free: new Map(totals),
      endsAtMs,
      assigned: 0,
      group: options.group ?? 'default',
      minUtilization: options.minUtilization ?? 0,
      reserved: false,
      prefilled: 0,
    });
  }

  removeWorker(id: number): void {
    this.workers.delete(id);
  }

  private queueFor(request: TaskRequest): RequestQueue {
    const sig = requestSignature(request);
    let queue = this.queues.get(sig);
    if (queue === undefined) {
      queue = { request, heap: new TaskHeap(), pending: 0 };
      this.queues.set(sig, queue);
    }
    return queue;
  }

  enqueue(jobId: number, taskId: number, priority: number, request: TaskRequest): void {
    const queue = this.queueFor(request);
    const key = taskKey(jobId, taskId);
    if (!this.live.has(key)) {
      this.queuedCount++;
    }
    const gen = ++this.generation;
    this.live.set(key, gen);
    queue.heap.push({ priority, jobId, taskId, step: 1, remaining: 1, gen });
    queue.pending++;
  }

  /**
   * Queues `count` tasks `taskId, taskId + step, ...` of one job at once. None of them may be
   * queued already.
   */
  enqueueRun(
    jobId: number,
    taskId: number,
    count: number,
    step: number,
    priority: number,
    request: TaskRequest,
  ): void {
    if (count <= 0) {
      return;
    }
    const queue = this.queueFor(request);
    queue.heap.push({ priority, jobId, taskId, step, remaining: count, gen: 0 });
    queue.pending += count;
    this.queuedCount += count;
  }

  /**
   * How many new workers of each shape the tasks that wait now would use. Only tasks still
   * queued count: they found no room on the connected workers. Shapes are filled in order, a
   * task counted for one shape is not counted again for a later one, and the request groups
   * are packed in priority order. Read-only: nothing is assigned.
   */
  queryNewWorkers(queries: readonly WorkerShapeQuery[]): WorkerQueryAnswer {
    const pending: { request: TaskRequest; head: QueuedTask; count: number }[] = [];
    for (const queue of this.queues.values()) {
      let count = 0;
      let head: QueuedTask | undefined;
      for (const entry of queue.heap.entries()) {
        // Runs count whole (tasks dequeued from them early are rare and only make a guess high).
        if (entry.gen === 0 || this.live.get(taskKey(entry.jobId, entry.taskId)) === entry.gen) {
          count += entry.remaining;
          if (head === undefined || TaskHeap.isBefore(entry, head)) {
            head = entry;
          }
        }
      }
      if (head !== undefined) {
        pending.push({ request: queue.request, head, count });
      }
    }
    pending.sort((a, b) => (TaskHeap.isBefore(a.head, b.head) ? -1 : 1));

    const answer: WorkerQueryAnswer = { singleNodeWorkers: [], multiNode: [] };
    for (const p of pending) {
      const nodes = p.request.nNodes ?? 0;
      if (nodes === 0) {
        continue;
      }
      const index = queries.findIndex(
        (q) =>
          q.maxWorkersPerAlloc >= nodes &&
          (q.timeLimitMs === null || p.request.minTimeMs <= q.timeLimitMs),
      );
      if (index >= 0) {
        answer.multiNode.push({ query: index, workersPerAlloc: nodes, tasks: p.count });
      }
    }
    for (const query of queries) {
      const workers: Map<string, number>[] = [];
      let used = 0;
      for (const p of pending) {
        if ((p.request.nNodes ?? 0) > 0 || p.count === 0) {
          continue;
        }
        const variant = [p.request, ...(p.request.alternatives ?? [])].find((v) =>
          shapeFits(query, v),
        );
        if (variant === undefined) {
          continue;
        }
        // Bounded by maxWorkers per request group: counts are placed in bulk, not per task.
        for (let i = 0; p.count > 0 && i < query.maxWorkers; i++) {
          if (i === workers.length) {
            workers.push(new Map(query.totals));
          }
          const free = workers[i]!;
          const k = Math.min(p.count, shapeCapacity(query, free, variant));
          if (k > 0) {
            used = Math.max(used, i + 1);
            for (const need of variant.needs) {
              const have = free.get(need.name);
              if (have !== undefined) {
                free.set(need.name, need.amount === 'all' ? 0 : have - k * need.amount);
              }
            }
            p.count -= k;
          }
        }
      }
      answer.singleNodeWorkers.push(used);
    }
    return answer;
  }

  /** Takes a queued task out of the queue (cancel). Call it only for tasks that are queued. */
  dequeue(jobId: number, taskId: number): void {
    const key = taskKey(jobId, taskId);
    if (!this.live.delete(key)) {
      this.removed.add(key);
    }
    this.queuedCount--;
  }

  /** Takes every queued task of a job out of the queues at once (job cancel or abort). */
  dequeueJob(jobId: number): void {
    for (const [sig, queue] of this.queues) {
      queue.heap.retain((item) => {
        if (item.jobId !== jobId) {
          return true;
        }
        queue.pending -= item.remaining;
        if (item.gen === 0) {
          this.queuedCount -= item.remaining;
        } else if (this.live.get(taskKey(jobId, item.taskId)) === item.gen) {
          this.live.delete(taskKey(jobId, item.taskId));
          this.queuedCount--;
        }
        return false;
      });
      if (queue.heap.size === 0) {
        this.queues.delete(sig);
      }
    }
    // Tasks dequeued from those runs earlier were counted off then; the runs are gone now.
    for (const key of this.removed) {
      if (Math.floor(key / 4294967296) === jobId) {
        this.removed.delete(key);
        this.queuedCount++;
      }
    }
  }

  /** Moves past the head entry's current task: a run advances, anything else leaves. */
  private advance(queue: RequestQueue, top: QueuedTask): void {
    queue.pending--;
    if (top.remaining > 1) {
      top.taskId += top.step;
      top.remaining--;
      queue.heap.siftDownTop();
    } else {
      queue.heap.pop();
    }
  }

  /**
   * Removes the head task of `queue` (which `head` has just validated) as handed out, and
   * returns its ids (the entry itself moves on if it is a run).
   */
  private take(queue: RequestQueue, task: QueuedTask): { jobId: number; taskId: number } {
    const taken = { jobId: task.jobId, taskId: task.taskId };
    if (task.gen !== 0) {
      this.live.delete(taskKey(task.jobId, task.taskId));
    }
    this.advance(queue, task);
    this.queuedCount--;
    return taken;
  }

  /** Gives back the workers of a multi-node assignment. */
  releaseNodes(workerIds: readonly number[]): void {
    for (const id of workerIds) {
      const worker = this.workers.get(id);
      if (worker !== undefined) {
        worker.reserved = false;
      }
    }
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
      if (top.gen === 0 ? !this.removed.delete(key) : this.live.get(key) === top.gen) {
        return top;
      }
      this.advance(queue, top);
    }
  }

  /** What the request takes from `worker` if it fits in its free resources, else null. */
  /** The first variant of `request` that fits `worker` now, with what it takes. */
  private fit(
    worker: SchedWorker,
    request: TaskRequest,
    nowMs: number,
  ): { taken: Map<string, number>; variant: number } | null {
    const variant = this.fitVariant(worker, request, nowMs);
    if (variant < 0) {
      return null;
    }
    const chosen = variant === 0 ? request : request.alternatives![variant - 1]!;
    return { taken: this.takenBy(worker, chosen), variant };
  }

  /** Index of the first variant that fits `worker` now, or -1. Allocates nothing (hot path). */
  private fitVariant(worker: SchedWorker, request: TaskRequest, nowMs: number): number {
    if (this.fitsOne(worker, request, nowMs)) {
      return 0;
    }
    const alternatives = request.alternatives;
    if (alternatives !== undefined) {
      for (let i = 0; i < alternatives.length; i++) {
        if (this.fitsOne(worker, alternatives[i]!, nowMs)) {
          return i + 1;
        }
      }
    }
    return -1;
  }

  private fitsOne(worker: SchedWorker, request: TaskRequest, nowMs: number): boolean {
    if (worker.reserved) {
      return false;
    }
    if (request.minTimeMs > 0 && worker.endsAtMs !== null) {
      if (worker.endsAtMs - nowMs < request.minTimeMs) {
        return false;
      }
    }
    for (const need of request.needs) {
      const total = worker.totals.get(need.name);
      if (total === undefined || total <= 0) {
        return false;
      }
      const amount = need.amount === 'all' ? total : need.amount;
      if ((worker.free.get(need.name) ?? 0) < amount) {
        return false;
      }
    }
    return true;
  }

  private takenBy(worker: SchedWorker, request: TaskRequest): Map<string, number> {
    const taken = new Map<string, number>();
    for (const need of request.needs) {
      taken.set(
        need.name,
        need.amount === 'all' ? (worker.totals.get(need.name) ?? 0) : need.amount,
      );
    }
    return taken;
  }

  private fitOne(
    worker: SchedWorker,
    request: TaskRequest,
    nowMs: number,
  ): Map<string, number> | null {
    return this.fitsOne(worker, request, nowMs) ? this.takenBy(worker, request) : null;
  }

  private couldEverFit(request: TaskRequest, nowMs: number): boolean {
    if ((request.nNodes ?? 0) > 0) {
      return this.groupsWithAtLeast(request.nNodes ?? 0);
    }
    for (const worker of this.workers.values()) {
      const saved = worker.free;
      const reserved = worker.reserved;
      worker.reserved = false;
      worker.free = worker.totals;
      const fits = this.fit(worker, request, nowMs) !== null;
      worker.free = saved;
      worker.reserved = reserved;
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
  ): { worker: SchedWorker; taken: Map<string, number>; variant: number } | null {
    let best: { worker: SchedWorker; variant: number; left: number } | null = null;
    for (const worker of this.workers.values()) {
      if (worker.minUtilization > 0) {
        continue; // filled by fillMinUtilization, as a whole set
      }
      const variant = this.fitVariant(worker, request, nowMs);
      if (variant < 0) {
        continue;
      }
      const chosen = variant === 0 ? request : request.alternatives![variant - 1]!;
      let cpus = 0;
      for (const need of chosen.needs) {
        if (need.name === 'cpus') {
          cpus = need.amount === 'all' ? (worker.totals.get('cpus') ?? 0) : need.amount;
        }
      }
      const left = (worker.free.get('cpus') ?? 0) - cpus;
      if (best === null || left < best.left || (left === best.left && worker.id < best.worker.id)) {
        best = { worker, variant, left };
      }
    }
    if (best === null) {
      return null;
    }
    const chosen = best.variant === 0 ? request : request.alternatives![best.variant - 1]!;
    return { worker: best.worker, taken: this.takenBy(best.worker, chosen), variant: best.variant };
  }

  /** Assigns as many waiting tasks as fit now, in priority order. */
  schedule(nowMs: number, limit = Number.POSITIVE_INFINITY): Assignment[] {
    const out: Assignment[] = [];
    if (this.workers.size === 0 || this.queuedCount === 0) {
      return out;
    }
    const open = new Set(this.queues.values());
    let blockBelow = Number.NEGATIVE_INFINITY;
    const held: { worker: SchedWorker; name: string; amount: number }[] = [];
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
      if ((bestQueue.request.nNodes ?? 0) > 0) {
        const nodes = this.freeNodes(bestQueue.request, nowMs);
        if (nodes === null) {
          open.delete(bestQueue);
          if (this.couldEverFit(bestQueue.request, nowMs)) {
            blockBelow = Math.max(blockBelow, bestTask.priority);
          }
          continue;
        }
        const ids = this.take(bestQueue, bestTask);
        for (const w of nodes) {
          w.reserved = true;
        }
        out.push({
          workerId: nodes[0]!.id,
          jobId: ids.jobId,
          taskId: ids.taskId,
          taken: new Map(),
          workers: nodes.map((w) => w.id),
        });
        continue;
      }
      const choice = this.bestWorker(bestQueue.request, nowMs);
      if (choice === null) {
        open.delete(bestQueue);
        this.holdFor(bestQueue.request, nowMs, held);
        continue;
      }
      const ids = this.take(bestQueue, bestTask);
      for (const [name, amount] of choice.taken) {
        choice.worker.free.set(name, (choice.worker.free.get(name) ?? 0) - amount);
      }
      choice.worker.assigned++;
      out.push({
        workerId: choice.worker.id,
        jobId: ids.jobId,
        taskId: ids.taskId,
        taken: choice.taken,
        ...(choice.variant > 0 ? { variant: choice.variant } : {}),
      });
    }
    for (const worker of this.workers.values()) {
      if (worker.minUtilization > 0 && !worker.reserved && out.length < limit) {
        this.fillMinUtilization(worker, nowMs, out);
      }
    }
    for (const h of held) {
      h.worker.free.set(h.name, (h.worker.free.get(h.name) ?? 0) + h.amount);
    }
    if (out.length < limit && held.length === 0) {
      this.prefill(nowMs, out);
    }
    for (const [sig, queue] of this.queues) {
      if (queue.heap.size === 0) {
        this.queues.delete(sig);
      }
    }
    return out;
  }

  /**
   * A task that waits only because resources are busy holds, for the rest of this round, the
   * free part of each resource it is short of on the worker where it would start soonest:
   * tasks after it (lower priority, or other requests) may use everything else, but never the
   * part it waits for. So a big request is not starved by a stream of small ones, and nothing
   * is blocked that does not compete with it.
   */
  private holdFor(
    request: TaskRequest,
    nowMs: number,
    held: { worker: SchedWorker; name: string; amount: number }[],
  ): void {
    let target: SchedWorker | null = null;
    let targetMissing = Number.POSITIVE_INFINITY;
    for (const worker of this.workers.values()) {
      // Min-utilization workers are filled as whole sets, not task by task.
      if (worker.reserved || worker.minUtilization > 0) {
        continue;
      }
      const saved = worker.free;
      worker.free = worker.totals;
      const possible = this.fitOne(worker, request, nowMs) !== null;
      worker.free = saved;
      if (!possible) {
        continue;
      }
      let missing = 0;
      for (const need of request.needs) {
        const amount = need.amount === 'all' ? (worker.totals.get(need.name) ?? 0) : need.amount;
        missing += Math.max(0, amount - (worker.free.get(need.name) ?? 0));
      }
      if (missing < targetMissing) {
        target = worker;
        targetMissing = missing;
      }
    }
    if (target === null) {
      return;
    }
    for (const need of request.needs) {
      const want = need.amount === 'all' ? (target.totals.get(need.name) ?? 0) : need.amount;
      const free = target.free.get(need.name) ?? 0;
      // Only what it is short of: a task waiting for a gpu does not keep cpus from others.
      const amount = free < want ? free : 0;
      if (amount > 0) {
        target.free.set(need.name, free - amount);
        held.push({ worker: target, name: need.name, amount });
      }
    }
  }

  /** Resources a prefilled task takes when it starts on `workerId` (see Assignment.prefilled). */
  takeForStart(workerId: number, request: TaskRequest): Map<string, number> {
    const worker = this.workers.get(workerId);
    if (worker === undefined) {
      return new Map();
    }
    const taken = this.takenBy(worker, request);
    for (const [name, amount] of taken) {
      worker.free.set(name, (worker.free.get(name) ?? 0) - amount);
    }
    return taken;
  }

  private prefill(nowMs: number, out: Assignment[]): void {
    let top: RequestQueue | null = null;
    let topTask: QueuedTask | null = null;
    for (const queue of this.queues.values()) {
      const head = this.head(queue);
      if (head !== undefined && (topTask === null || TaskHeap.isBefore(head, topTask))) {
        top = queue;
        topTask = head;
      }
    }
    if (top === null || topTask === null) {
      return;
    }
    const request = top.request;
    // Tasks with a time request are not sent ahead: a worker's remaining lifetime shrinks while
    // they wait there, and they could not move to a fresh worker (no retraction yet).
    if ((request.nNodes ?? 0) > 0 || request.alternatives !== undefined || request.minTimeMs > 0) {
      return;
    }
    const extra = top.pending - PREFILL_KEEP_BACK;
    if (extra <= 0) {
      return;
    }
    const candidates = [...this.workers.values()].filter((w) => {
      if (w.reserved || w.minUtilization > 0 || w.prefilled >= PREFILL_PER_WORKER) {
        return false;
      }
      const saved = w.free;
      w.free = w.totals;
      const possible = this.fitsOne(w, request, nowMs);
      w.free = saved;
      return possible;
    });
    if (candidates.length === 0) {
      return;
    }
    let budget = Math.min(extra, candidates.length * PREFILL_PER_WORKER);
    for (let round = 0; round < PREFILL_PER_WORKER && budget > 0; round++) {
      for (const w of candidates) {
        if (budget <= 0 || w.prefilled >= PREFILL_PER_WORKER) {
          continue;
        }
        const task = this.head(top);
        if (task === undefined) {
          return;
        }
        const ids = this.take(top, task);
        w.prefilled++;
        w.assigned++;
        budget--;
        out.push({
          workerId: w.id,
          jobId: ids.jobId,
          taskId: ids.taskId,
          taken: new Map(),
          prefilled: true,
        });
      }
    }
  }

  /** A prefilled task started (or left the worker): it no longer counts as sent ahead. */
  prefillDone(workerId: number): void {
    const worker = this.workers.get(workerId);
    if (worker !== undefined && worker.prefilled > 0) {
      worker.prefilled--;
    }
  }

  private groupsWithAtLeast(n: number): boolean {
    const sizes = new Map<string, number>();
    for (const w of this.workers.values()) {
      sizes.set(w.group, (sizes.get(w.group) ?? 0) + 1);
    }
    return [...sizes.values()].some((size) => size >= n);
  }

  /** `nNodes` idle workers of one group (lowest ids first), or null. */
  private freeNodes(request: TaskRequest, nowMs: number): SchedWorker[] | null {
    const n = request.nNodes ?? 0;
    const byGroup = new Map<string, SchedWorker[]>();
    const sorted = [...this.workers.values()].sort((a, b) => a.id - b.id);
    for (const w of sorted) {
      if (w.reserved || w.assigned > 0) {
        continue;
      }
      if (request.minTimeMs > 0 && w.endsAtMs !== null && w.endsAtMs - nowMs < request.minTimeMs) {
        continue;
      }
      const list = byGroup.get(w.group) ?? [];
      list.push(w);
      byGroup.set(w.group, list);
      if (list.length >= n) {
        return list.slice(0, n);
      }
    }
    return null;
  }

  /**
   * Gives a min-utilization worker the set of waiting tasks with the highest weighted CPU use
   * that reaches its minimal utilization, or nothing. A bounded depth-first search over the
   * distinct requests (each with how many tasks wait) finds the set.
   */
  private fillMinUtilization(worker: SchedWorker, nowMs: number, out: Assignment[]): void {
    const totalCpus = worker.totals.get('cpus') ?? 0;
    if (totalCpus <= 0) {
      return;
    }
    const usedCpus = totalCpus - (worker.free.get('cpus') ?? 0);
    const target = worker.minUtilization * totalCpus;
    const options: MuOption[] = [];
    for (const queue of this.queues.values()) {
      if ((queue.request.nNodes ?? 0) > 0 || this.head(queue) === undefined) {
        continue;
      }
      const saved = worker.free;
      worker.free = new Map(worker.totals);
      const taken = this.fitOne(worker, queue.request, nowMs);
      worker.free = saved;
      if (taken === null) {
        continue;
      }
      const cpus = taken.get('cpus') ?? 0;
      const weight = queue.request.weight ?? 10_000;
      options.push({
        queue,
        taken,
        cpus,
        value: (cpus * weight) / 10_000,
        available: queue.pending,
      });
    }
    const chosen = bestMuCounts(options, new Map(worker.free), usedCpus, target);
    if (chosen === null) {
      return;
    }
    chosen.forEach((count, i) => {
      const o = options[i]!;
      for (let k = 0; k < count; k++) {
        const task = this.head(o.queue);
        if (task === undefined) {
          return;
        }
        const ids = this.take(o.queue, task);
        for (const [name, amount] of o.taken) {
          worker.free.set(name, (worker.free.get(name) ?? 0) - amount);
        }
        worker.assigned++;
        out.push({
          workerId: worker.id,
          jobId: ids.jobId,
          taskId: ids.taskId,
          taken: new Map(o.taken),
        });
      }
    });
  }
}

interface MuOption {
  queue: RequestQueue;
  taken: Map<string, number>;
  cpus: number;
  value: number;
  available: number;
}

const MU_SEARCH_BUDGET = 20_000;

/**
 * How many tasks of each option to take so that the worker reaches `target` used CPUs with the
 * highest value; null when no combination reaches it. Depth-first, largest counts first, with a
 * bounded number of visited nodes so a round never stalls.
 */
function bestMuCounts(
  options: MuOption[],
  free: Map<string, number>,
  usedCpus: number,
  target: number,
): number[] | null {
  const counts = options.map(() => 0);
  let best: { value: number; counts: number[] } | null = null;
  let budget = MU_SEARCH_BUDGET;
  const fits = (taken: Map<string, number>): boolean => {
    for (const [name, amount] of taken) {
      if ((free.get(name) ?? 0) < amount) {
        return false;
      }
    }
    return true;
  };
  const change = (taken: Map<string, number>, sign: 1 | -1): void => {
    for (const [name, amount] of taken) {
      free.set(name, (free.get(name) ?? 0) + sign * amount);
    }
  };
  const visit = (i: number, cpus: number, value: number): void => {
    if (--budget < 0) {
      return;
    }
    if (i === options.length) {
      if (cpus > 0 && usedCpus + cpus >= target && (best === null || value > best.value)) {
        best = { value, counts: [...counts] };
      }
      return;
    }
    const o = options[i]!;
    let k = 0;
    while (k < o.available && fits(o.taken)) {
      change(o.taken, -1);
      k++;
    }
    for (; k >= 0; k--) {
      counts[i] = k;
      visit(i + 1, cpus + k * o.cpus, value + k * o.value);
      if (k > 0) {
        change(o.taken, 1);
      }
    }
    counts[i] = 0;
  };
  visit(0, 0, 0);
  const result = best as { value: number; counts: number[] } | null;
  return result === null ? null : result.counts;
}
