/**
 * Time-indexed building blocks of the dashboard model: every query is "the value at time t", so
 * the front ends can travel in time, and a query costs O(log n) however long the history is.
 *
 * Invariants: change points are appended in non-decreasing time order (an event stamped a little
 * earlier than the one before it, as a worker's clock allows, counts at the later time), and a
 * step series holds the value *after* each change point.
 */

/** A value that changes at points in time (a count of workers, of running tasks...). */
export class StepSeries {
  private times: number[] = [];
  private values: number[] = [];

  get last(): number {
    return this.values.at(-1) ?? 0;
  }

  get length(): number {
    return this.times.length;
  }

  /** Adds `delta` to the value from `time` on. */
  add(time: number, delta: number): void {
    if (delta === 0) {
      return;
    }
    this.set(time, this.last + delta);
  }

  set(time: number, value: number): void {
    const n = this.times.length;
    const lastTime = this.times[n - 1];
    if (lastTime !== undefined && time <= lastTime) {
      // Same moment (or a clock a little behind): the latest value wins.
      this.values[n - 1] = value;
      return;
    }
    this.times.push(time);
    this.values.push(value);
  }

  /** The value at `time` (0 before the first change). */
  at(time: number): number {
    const i = lastAtOrBefore(this.times, time);
    return i < 0 ? 0 : this.values[i]!;
  }

  /** `count` evenly spaced samples over [from, to] (both ends included). */
  sample(from: number, to: number, count: number): number[] {
    const out: number[] = [];
    const step = count > 1 ? (to - from) / (count - 1) : 0;
    for (let i = 0; i < count; i++) {
      out.push(this.at(from + step * i));
    }
    return out;
  }
}

/** Index of the last element of sorted `times` that is <= `time`, or -1. */
export function lastAtOrBefore(times: readonly number[], time: number): number {
  let lo = 0;
  let hi = times.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    if (times[mid]! <= time) {
      found = mid;
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  return found;
}

/** Samples taken at points in time (worker overviews), looked up by time. */
export class SampleSeries<T> {
  private times: number[] = [];
  private items: T[] = [];

  get length(): number {
    return this.items.length;
  }

  get latest(): T | undefined {
    return this.items.at(-1);
  }

  push(time: number, item: T): void {
    const lastTime = this.times.at(-1);
    this.times.push(lastTime !== undefined && time < lastTime ? lastTime : time);
    this.items.push(item);
  }

  /** The latest sample taken at or before `time`. */
  at(time: number): T | undefined {
    const i = lastAtOrBefore(this.times, time);
    return i < 0 ? undefined : this.items[i];
  }

  /** Every sample in [from, to], with its time. */
  between(from: number, to: number): { time: number; item: T }[] {
    const out: { time: number; item: T }[] = [];
    for (let i = Math.max(0, lastAtOrBefore(this.times, from)); i < this.times.length; i++) {
      const time = this.times[i]!;
      if (time > to) {
        break;
      }
      if (time >= from) {
        out.push({ time, item: this.items[i]! });
      }
    }
    return out;
  }
}
