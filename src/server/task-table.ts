/**
 * The tasks of one job. A large array range is kept as the range itself, and a task of it
 * gets its own record only when something first needs one (its dispatch, an event about it, a
 * cancel): a submit of millions of tasks then costs a few objects, not millions. Building
 * millions of records and one Map of them took the server's event loop for seconds (4 s for
 * 5M tasks, 14 s for 16M, with single Map rehashes of 0.4 s) and held about 170 bytes per task
 * that only waited; a range costs the same whatever its size.
 *
 * A task without a record is, by construction, exactly what a new record would say: waiting,
 * instance 0, its range's description and entry. So `get` may make the record at any time and
 * nothing can tell when it was made. Records, once made, stay: callers keep and change them.
 *
 * Iteration follows the order the tasks were added in (as a Map's would), range tasks in the
 * order of their ids.
 */
import { firstCommonId, formatIdRanges, formatIdSet, type IdRange } from '../common/id-set.js';
import type { TaskState } from '../transport/messages.js';

export interface TaskRecord {
  id: number;
  state: TaskState;
  instance: number;
  crashCount: number;
  /** Index into the job's `descs`. */
  desc: number;
  /** Dependencies that have not finished yet; the task is queued only at 0. */
  waitingDeps: number;
  nDeps: number;
  /** Tasks of the same job that depend on this one. */
  consumers: number[] | null;
  entry: string | null;
  workerId: number | null;
  /** All workers of a multi-node task (the first is `workerId`), else null. */
  nodes: number[] | null;
  /** Sent to its worker ahead of time and not started yet (scheduler prefill). */
  prefilled: boolean;
  /** The resource request variant it was scheduled with. */
  variant: number;
  /** What the task holds on its worker while assigned (scheduler bookkeeping). */
  taken: Map<string, number> | null;
  startedAt: number | null;
  finishedAt: number | null;
  error: string | null;
}

/**
 * Most records never need more than their state: the rarely used fields live on the prototype
 * until a task sets its own, so a waiting task costs seven fields (measured: about 110 bytes
 * with its map entry, instead of 180).
 */
class TaskObject implements TaskRecord {
  id: number;
  state: TaskState = 'waiting';
  instance = 0;
  desc: number;
  workerId: number | null = null;
  startedAt: number | null = null;
  finishedAt: number | null = null;
  declare crashCount: number;
  declare waitingDeps: number;
  declare nDeps: number;
  declare consumers: number[] | null;
  declare entry: string | null;
  declare nodes: number[] | null;
  declare prefilled: boolean;
  declare variant: number;
  declare taken: Map<string, number> | null;
  declare error: string | null;

  constructor(id: number, desc: number) {
    this.id = id;
    this.desc = desc;
  }
}

Object.assign(TaskObject.prototype, {
  crashCount: 0,
  waitingDeps: 0,
  nDeps: 0,
  consumers: null,
  entry: null,
  nodes: null,
  prefilled: false,
  variant: 0,
  taken: null,
  error: null,
});

/** A new waiting task of description `desc`. */
export function newTask(id: number, desc: number, entry: string | null, nDeps = 0): TaskRecord {
  const task = new TaskObject(id, desc);
  if (entry !== null) {
    task.entry = entry;
  }
  if (nDeps !== 0) {
    task.nDeps = nDeps;
  }
  return task;
}

/**
 * Ranges shorter than this get their records at once: the lookup over ranges then only ever
 * holds big ones, so there are few of them (at most 16M / 256 in a job), and a job made of
 * many small submits (an open job fed one task at a time) is a plain Map, as before.
 */
export const LAZY_RANGE_MIN = 256;

/** Records of a range are made in chunks of this many slots, allocated on first use. */
const CHUNK_BITS = 10;
const CHUNK = 1 << CHUNK_BITS;

interface Segment {
  readonly start: number;
  readonly step: number;
  readonly count: number;
  readonly last: number;
  readonly desc: number;
  /** The submit's entries; this range's tasks have them from `entryOffset` on. */
  readonly entries: readonly string[] | null;
  readonly entryOffset: number;
  /** Records made so far, by index in the range. */
  readonly chunks: ((TaskRecord | undefined)[] | undefined)[];
}

/** Ids `start, start + step, …` (`count` of them), all of description `desc`. */
export interface TaskRun {
  start: number;
  count: number;
  step: number;
  desc: number;
}

function rangeContains(range: IdRange, id: number): boolean {
  return (
    id >= range.start &&
    id <= range.start + (range.count - 1) * range.step &&
    (id - range.start) % range.step === 0
  );
}

export class TaskTable {
  /** Tasks with a record from the start (graph tasks, small ranges), by id. */
  private readonly singles = new Map<number, TaskRecord>();
  /** The order tasks were added in: runs of single records, and ranges. */
  private readonly blocks: (TaskRecord[] | Segment)[] = [];
  /** Ranges sorted by start, and for each the highest last id of it and those before it. */
  private sorted: Segment[] = [];
  private reach: number[] = [];
  private count = 0;
  private highest = -1;

  get size(): number {
    return this.count;
  }

  /** The highest task id, or -1 when there are no tasks. */
  maxId(): number {
    return this.highest;
  }

  /** Adds a task with a new id. */
  add(task: TaskRecord): void {
    this.singles.set(task.id, task);
    const last = this.blocks[this.blocks.length - 1];
    if (Array.isArray(last)) {
      last.push(task);
    } else {
      this.blocks.push([task]);
    }
    this.count++;
    this.highest = Math.max(this.highest, task.id);
  }

  /**
   * Adds the waiting tasks of `range` (new ids) with description `desc`; the i-th of them has
   * entry `entries[entryOffset + i]` (none past the end).
   */
  addRange(
    range: IdRange,
    desc: number,
    entries: readonly string[] | null,
    entryOffset: number,
  ): void {
    if (range.count <= 0) {
      return;
    }
    if (range.count < LAZY_RANGE_MIN) {
      for (let i = 0, id = range.start; i < range.count; i++, id += range.step) {
        this.add(newTask(id, desc, entries === null ? null : (entries[entryOffset + i] ?? null)));
      }
      return;
    }
    const segment: Segment = {
      start: range.start,
      step: range.step,
      count: range.count,
      last: range.start + (range.count - 1) * range.step,
      desc,
      entries,
      entryOffset,
      chunks: new Array<(TaskRecord | undefined)[] | undefined>(Math.ceil(range.count / CHUNK)),
    };
    this.blocks.push(segment);
    this.sorted = [...this.sorted, segment].sort((a, b) => a.start - b.start);
    let reach = -1;
    this.reach = this.sorted.map((s) => (reach = Math.max(reach, s.last)));
    this.count += range.count;
    this.highest = Math.max(this.highest, segment.last);
  }

  /** The task's record (made now if it had none), or undefined for an unknown id. */
  get(id: number): TaskRecord | undefined {
    if (this.singles.size > 0) {
      const task = this.singles.get(id);
      if (task !== undefined) {
        return task;
      }
    }
    const segment = this.segmentOf(id);
    return segment === null ? undefined : this.record(segment, (id - segment.start) / segment.step);
  }

  has(id: number): boolean {
    return this.singles.has(id) || this.segmentOf(id) !== null;
  }

  /** Every task in the order added, each with its record (made where missing): for changing. */
  *values(): IterableIterator<TaskRecord> {
    for (const block of this.blocks) {
      if (Array.isArray(block)) {
        yield* block;
      } else {
        for (let i = 0; i < block.count; i++) {
          yield this.record(block, i);
        }
      }
    }
  }

  /**
   * Every task in the order added, for reading only: a task without a record is shown by one
   * shared stand-in that is valid until the next step, so reading a huge job makes nothing.
   */
  *views(): IterableIterator<Readonly<TaskRecord>> {
    const standIn = newTask(0, 0, null);
    for (const block of this.blocks) {
      if (Array.isArray(block)) {
        yield* block;
        continue;
      }
      standIn.desc = block.desc;
      for (let c = 0; c < block.chunks.length; c++) {
        const chunk = block.chunks[c];
        const end = Math.min(block.count, (c + 1) * CHUNK);
        for (let i = c * CHUNK; i < end; i++) {
          const task = chunk?.[i & (CHUNK - 1)];
          if (task !== undefined) {
            yield task;
          } else {
            standIn.id = block.start + i * block.step;
            standIn.entry = entryOf(block, i);
            yield standIn;
          }
        }
      }
    }
  }

  /**
   * The tasks that have a record, in the order added. The others are all waiting at instance
   * 0 and have never been anywhere.
   */
  *touched(): IterableIterator<TaskRecord> {
    for (const block of this.blocks) {
      if (Array.isArray(block)) {
        yield* block;
        continue;
      }
      for (const chunk of block.chunks) {
        if (chunk !== undefined) {
          for (const task of chunk) {
            if (task !== undefined) {
              yield task;
            }
          }
        }
      }
    }
  }

  /**
   * The waiting tasks whose dependencies are done, in the order added, as runs of one
   * description (ids `start, start + step, …`), for putting a restored job back in the queue.
   * Tasks without a record count by whole chunks.
   */
  readyRuns(): TaskRun[] {
    const runs: TaskRun[] = [];
    let run: TaskRun | null = null;
    const extend = (start: number, count: number, step: number, desc: number): void => {
      if (
        run !== null &&
        run.desc === desc &&
        run.step === step &&
        run.start + run.count * step === start
      ) {
        run.count += count;
        return;
      }
      run = { start, count, step, desc };
      runs.push(run);
    };
    const visit = (task: TaskRecord, step: number): void => {
      if (task.state === 'waiting' && task.waitingDeps === 0) {
        extend(task.id, 1, step, task.desc);
      } else {
        run = null;
      }
    };
    for (const block of this.blocks) {
      if (Array.isArray(block)) {
        for (const task of block) {
          visit(task, 1);
        }
        continue;
      }
      for (let c = 0; c < block.chunks.length; c++) {
        const chunk = block.chunks[c];
        const first = c * CHUNK;
        const end = Math.min(block.count, first + CHUNK);
        if (chunk === undefined) {
          extend(block.start + first * block.step, end - first, block.step, block.desc);
          continue;
        }
        for (let i = first; i < end; i++) {
          const task = chunk[i - first];
          if (task === undefined) {
            extend(block.start + i * block.step, 1, block.step, block.desc);
          } else {
            visit(task, block.step);
          }
        }
      }
    }
    return runs;
  }

  /** Every id, ascending, as `formatIdSet` writes them (`1-3,5`), without listing them if it can. */
  formatIds(): string {
    const runs: IdRange[] = [];
    if (this.singles.size === 0 && this.sorted.every((s) => s.step === 1)) {
      // What array submits make: step-1 ranges, which sorted by start are the runs (joined
      // where adjacent), unless they overlap.
      for (const s of this.sorted) {
        const run = runs[runs.length - 1];
        if (run !== undefined && run.start + run.count > s.start) {
          runs.length = 0;
          break;
        }
        if (run !== undefined && run.start + run.count === s.start) {
          run.count += s.count;
        } else {
          runs.push({ start: s.start, count: s.count, step: 1 });
        }
      }
      if (runs.length > 0) {
        return formatIdRanges(runs);
      }
    }
    const ids: number[] = [];
    for (const task of this.views()) {
      ids.push(task.id);
    }
    if (!ids.every((id, i) => i === 0 || ids[i - 1]! < id)) {
      ids.sort((a, b) => a - b);
    }
    return formatIdSet(ids);
  }

  /**
   * The first id of `ranges`, in their order, that is here already or given earlier in
   * `ranges`, or null. Big ranges are compared as ranges, not id by id, so checking a
   * million-task submit into an open job costs what its ranges cost.
   */
  firstClash(ranges: readonly IdRange[]): number | null {
    const bigEarlier: IdRange[] = [];
    const seen = new Set<number>();
    for (const range of ranges) {
      if (range.count < LAZY_RANGE_MIN) {
        for (let i = 0, id = range.start; i < range.count; i++, id += range.step) {
          if (this.has(id) || seen.has(id) || bigEarlier.some((r) => rangeContains(r, id))) {
            return id;
          }
        }
        for (let i = 0, id = range.start; i < range.count; i++, id += range.step) {
          seen.add(id);
        }
        continue;
      }
      let first = Number.POSITIVE_INFINITY;
      for (const other of [...this.sorted, ...bigEarlier]) {
        const common = firstCommonId(range, other);
        if (common !== null) {
          first = Math.min(first, common);
        }
      }
      for (const ids of [this.singles.keys(), seen.values()]) {
        for (const id of ids) {
          if (id < first && rangeContains(range, id)) {
            first = id;
          }
        }
      }
      if (first !== Number.POSITIVE_INFINITY) {
        return first;
      }
      bigEarlier.push(range);
    }
    return null;
  }

  private segmentOf(id: number): Segment | null {
    const sorted = this.sorted;
    let lo = 0;
    let hi = sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (sorted[mid]!.start <= id) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    // Ranges starting earlier can still hold the id while some range before reaches past it.
    for (let i = lo - 1; i >= 0 && this.reach[i]! >= id; i--) {
      const s = sorted[i]!;
      if (id <= s.last && (id - s.start) % s.step === 0) {
        return s;
      }
    }
    return null;
  }

  private record(segment: Segment, index: number): TaskRecord {
    const c = index >>> CHUNK_BITS;
    let chunk = segment.chunks[c];
    if (chunk === undefined) {
      chunk = new Array<TaskRecord | undefined>(Math.min(CHUNK, segment.count - c * CHUNK));
      segment.chunks[c] = chunk;
    }
    const slot = index & (CHUNK - 1);
    let task = chunk[slot];
    if (task === undefined) {
      task = newTask(segment.start + index * segment.step, segment.desc, entryOf(segment, index));
      chunk[slot] = task;
    }
    return task;
  }
}

function entryOf(segment: Segment, index: number): string | null {
  return segment.entries === null ? null : (segment.entries[segment.entryOffset + index] ?? null);
}
