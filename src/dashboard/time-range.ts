/**
 * The time window a dashboard shows: live (the last `duration`, ending now) or fixed. Keys move
 * it a quarter earlier or later, halve or double it (60 s to 7 days), or go back to live; it
 * never reaches past now. Pure: `now` is always passed in.
 */
export const MIN_RANGE_MS = 60_000;
export const MAX_RANGE_MS = 7 * 24 * 3600_000;
export const DEFAULT_LIVE_MS = 10 * 60_000;

export type TimeRange =
  { kind: 'live'; durationMs: number } | { kind: 'fixed'; start: number; end: number };

export function liveRange(durationMs = DEFAULT_LIVE_MS): TimeRange {
  return { kind: 'live', durationMs };
}

/** [start, end] of `range` at `now`. */
export function bounds(range: TimeRange, now: number): [number, number] {
  return range.kind === 'live' ? [now - range.durationMs, now] : [range.start, range.end];
}

function fixed(start: number, end: number, now: number): TimeRange {
  if (end > now) {
    start -= end - now;
    end = now;
  }
  return { kind: 'fixed', start, end };
}

/** A quarter of the window earlier. */
export function earlier(range: TimeRange, now: number): TimeRange {
  const [s, e] = bounds(range, now);
  const q = (e - s) / 4;
  return fixed(s - q, e - q, now);
}

/** A quarter of the window later (nothing in live mode; live once it reaches now). */
export function later(range: TimeRange, now: number): TimeRange {
  if (range.kind === 'live') {
    return range;
  }
  const [s, e] = bounds(range, now);
  const q = (e - s) / 4;
  return fixed(s + q, e + q, now);
}

function resize(range: TimeRange, now: number, factor: number): TimeRange {
  const [s, e] = bounds(range, now);
  const length = Math.min(MAX_RANGE_MS, Math.max(MIN_RANGE_MS, (e - s) * factor));
  if (range.kind === 'live') {
    return { kind: 'live', durationMs: length };
  }
  const middle = (s + e) / 2;
  return fixed(middle - length / 2, middle + length / 2, now);
}

export const zoomIn = (range: TimeRange, now: number): TimeRange => resize(range, now, 0.5);
export const zoomOut = (range: TimeRange, now: number): TimeRange => resize(range, now, 2);

/** `HH:MM:SS - HH:MM:SS (duration)`, with dates when the window is not today. */
export function describeRange(range: TimeRange, now: number): string {
  const [s, e] = bounds(range, now);
  const day = (t: number): string => new Date(t).toDateString();
  const clock = (t: number): string => {
    const d = new Date(t);
    return day(t) === day(now)
      ? clockTime(t)
      : `${d.getDate()}.${d.getMonth() + 1}. ${clockTime(t)}`;
  };
  return `${clock(s)} - ${clock(e)} (${formatSpan(e - s)})`;
}

/** `HH:MM:SS` of a time (local). */
export function clockTime(t: number): string {
  const d = new Date(t);
  return [d.getHours(), d.getMinutes(), d.getSeconds()]
    .map((n) => String(n).padStart(2, '0'))
    .join(':');
}

export function formatSpan(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) {
    return `${s}s`;
  }
  if (s < 3600) {
    return `${Math.floor(s / 60)}m${s % 60 === 0 ? '' : ` ${s % 60}s`}`;
  }
  if (s < 86400) {
    return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60) === 0 ? '' : ` ${Math.floor((s % 3600) / 60)}m`}`;
  }
  return `${Math.floor(s / 86400)}d${Math.floor((s % 86400) / 3600) === 0 ? '' : ` ${Math.floor((s % 86400) / 3600)}h`}`;
}
