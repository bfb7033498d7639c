/**
 * How server events travel in `events` frames (a `journal-stream`). Task starts on one worker
 * (variant 0) and task finishes, nearly all of a busy stream, are gathered column-wise into one
 * binary block per run of them: the server appends five integers and a time per event to typed
 * arrays and the frame carries the bytes, so a watching dashboard costs the server no object and
 * no msgpack work per task. Everything else goes as `{time, event}`.
 *
 * Invariants:
 * - Order is kept: a block holds a run of consecutive compact events; any other event closes it.
 * - A block is `[time of its first event, 3, bytes]`; `bytes` is n float64 times followed by
 *   n x 5 int32 (kind, job, task, instance, worker), little-endian. Kind 1 is a start, 2 a finish
 *   (instance and worker 0).
 * - A frame carries at most FRAME_WEIGHT events (a block weighs its event count, anything else 1).
 */
import type { ServerEvent, TimedEvent } from '../server/events.js';

export type StreamRecord = TimedEvent | [number, 3, Uint8Array];

const KIND_STARTED = 1;
const KIND_FINISHED = 2;
const INTS_PER_EVENT = 5;
/** Events per frame: a frame stays well under a megabyte however long the history is. */
export const FRAME_WEIGHT = 8192;

/** Every platform Node ships for (x64, arm64) is little-endian; the block format says so. */
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

class TaskColumns {
  n = 0;
  times = new Float64Array(64);
  ints = new Int32Array(64 * INTS_PER_EVENT);

  add(time: number, kind: number, job: number, task: number, instance: number, worker: number) {
    if (this.n === this.times.length) {
      const times = new Float64Array(this.n * 2);
      times.set(this.times);
      this.times = times;
      const ints = new Int32Array(this.n * 2 * INTS_PER_EVENT);
      ints.set(this.ints);
      this.ints = ints;
    }
    const o = this.n * INTS_PER_EVENT;
    this.times[this.n] = time;
    this.ints[o] = kind;
    this.ints[o + 1] = job;
    this.ints[o + 2] = task;
    this.ints[o + 3] = instance;
    this.ints[o + 4] = worker;
    this.n++;
  }

  record(): [number, 3, Uint8Array] {
    const n = this.n;
    const bytes = Buffer.allocUnsafe(n * 8 + n * INTS_PER_EVENT * 4);
    if (LITTLE_ENDIAN) {
      bytes.set(new Uint8Array(this.times.buffer, 0, n * 8), 0);
      bytes.set(new Uint8Array(this.ints.buffer, 0, n * INTS_PER_EVENT * 4), n * 8);
    } else {
      for (let i = 0; i < n; i++) {
        bytes.writeDoubleLE(this.times[i]!, i * 8);
      }
      for (let i = 0; i < n * INTS_PER_EVENT; i++) {
        bytes.writeInt32LE(this.ints[i]!, n * 8 + i * 4);
      }
    }
    return [this.times[0]!, 3, bytes];
  }
}

/**
 * Stream records gathered in event order, taken as frames. The event hub keeps one per watcher
 * and a history reply builds one; adding a compact event allocates nothing (amortized).
 */
export class StreamBatch {
  private frames: (TimedEvent | TaskColumns)[][] = [];
  private current: (TimedEvent | TaskColumns)[] = [];
  private weight = 0;
  private columns: TaskColumns | null = null;
  /** Events added since the last take. */
  size = 0;

  add(time: number, event: ServerEvent): void {
    this.size++;
    if (this.weight === FRAME_WEIGHT) {
      this.frames.push(this.current);
      this.current = [];
      this.weight = 0;
      this.columns = null;
    }
    this.weight++;
    if (event.type === 'task-finished') {
      this.block().add(time, KIND_FINISHED, event.jobId, event.taskId, 0, 0);
    } else if (event.type === 'task-started' && event.workers.length === 1 && event.variant === 0) {
      this.block().add(
        time,
        KIND_STARTED,
        event.jobId,
        event.taskId,
        event.instance,
        event.workers[0]!,
      );
    } else {
      this.columns = null;
      this.current.push({ time, event });
    }
  }

  private block(): TaskColumns {
    if (this.columns === null) {
      this.columns = new TaskColumns();
      this.current.push(this.columns);
    }
    return this.columns;
  }

  /** The frames' records so far (each frame at most FRAME_WEIGHT events); empties the batch. */
  take(): StreamRecord[][] {
    if (this.current.length > 0) {
      this.frames.push(this.current);
    }
    const out = this.frames.map((f) => f.map((r) => (r instanceof TaskColumns ? r.record() : r)));
    this.frames = [];
    this.current = [];
    this.weight = 0;
    this.columns = null;
    this.size = 0;
    return out;
  }
}

function blockEvents(time0: unknown, bytes: unknown, out: TimedEvent[]): boolean {
  if (typeof time0 !== 'number' || !(bytes instanceof Uint8Array)) {
    return false;
  }
  const per = 8 + INTS_PER_EVENT * 4;
  if (bytes.length % per !== 0) {
    return false;
  }
  const n = bytes.length / per;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const decoded: TimedEvent[] = [];
  for (let i = 0; i < n; i++) {
    const time = view.getFloat64(i * 8, true);
    const o = n * 8 + i * INTS_PER_EVENT * 4;
    const kind = view.getInt32(o, true);
    const jobId = view.getInt32(o + 4, true);
    const taskId = view.getInt32(o + 8, true);
    if (kind === KIND_STARTED) {
      const instance = view.getInt32(o + 12, true);
      const worker = view.getInt32(o + 16, true);
      decoded.push({
        time,
        event: { type: 'task-started', jobId, taskId, instance, workers: [worker], variant: 0 },
      });
    } else if (kind === KIND_FINISHED) {
      decoded.push({ time, event: { type: 'task-finished', jobId, taskId } });
    } else {
      return false;
    }
  }
  for (const r of decoded) {
    out.push(r);
  }
  return true;
}

/**
 * Appends the events a record stands for to `out`; false (and nothing appended) for a record of
 * an unknown shape.
 */
export function decodeStreamRecord(r: unknown, out: TimedEvent[]): boolean {
  if (Array.isArray(r)) {
    return r.length === 3 && r[1] === 3 && blockEvents(r[0], r[2], out);
  }
  const t = r as Partial<TimedEvent> | null;
  if (
    typeof t === 'object' &&
    t !== null &&
    typeof t.time === 'number' &&
    typeof t.event === 'object'
  ) {
    out.push(t as TimedEvent);
    return true;
  }
  return false;
}
