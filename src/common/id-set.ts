/**
 * Sets of job/task/worker ids written as `1-3,5,7-10` or `0-100:2`, and the `last`/`all`
 * selectors built on them. Ranges stay compact (start/count/step) so a million-task array
 * costs nothing until someone asks for the individual ids.
 */
import { HqError } from './errors.js';

const U32_MAX = 0xffff_ffff;

/** Ids `start, start+step, …`, `count` of them (count ≥ 1, step ≥ 1). */
export type IdRange = { start: number; count: number; step: number };

export type IdSelector = { kind: 'all' } | { kind: 'last' } | { kind: 'ids'; ids: IdRange[] };

function lastOf(range: IdRange): number {
  return range.start + (range.count - 1) * range.step;
}

function invalid(text: string, reason: string): never {
  throw new HqError('HQ_INVALID_RANGE', `Invalid id range '${text}': ${reason}`);
}

// Rust's `char::is_whitespace`, which upstream's parser skips around each item.
function isRustWhitespace(c: string): boolean {
  const cp = c.codePointAt(0) ?? 0;
  return (
    (cp >= 0x09 && cp <= 0x0d) ||
    cp === 0x20 ||
    cp === 0x85 ||
    cp === 0xa0 ||
    cp === 0x1680 ||
    (cp >= 0x2000 && cp <= 0x200a) ||
    cp === 0x2028 ||
    cp === 0x2029 ||
    cp === 0x202f ||
    cp === 0x205f ||
    cp === 0x3000
  );
}

function isDigit(c: string | undefined): boolean {
  return c !== undefined && c >= '0' && c <= '9';
}

/** A recursive-descent reader over code points, so error positions match what users see. */
class Reader {
  readonly text: string;
  readonly chars: string[];
  pos = 0;

  constructor(text: string) {
    this.text = text;
    this.chars = Array.from(text);
  }

  peek(): string | undefined {
    return this.chars[this.pos];
  }

  skipWhitespace(): void {
    while (this.pos < this.chars.length && isRustWhitespace(this.chars[this.pos] ?? '')) {
      this.pos += 1;
    }
  }

  unexpected(expected: string): never {
    const found = this.peek();
    if (found === undefined) {
      invalid(this.text, `expected ${expected} at the end of the input`);
    }
    invalid(this.text, `unexpected '${found}' at position ${this.pos + 1}, expected ${expected}`);
  }

  /** A u32 written with optional `_` separators after the first digit (`1_000`, `1_`). */
  number(): number {
    if (!isDigit(this.peek())) {
      this.unexpected('a number');
    }
    const begin = this.pos;
    let digits = '';
    while (isDigit(this.peek()) || this.peek() === '_') {
      const c = this.peek() ?? '';
      if (c !== '_') {
        digits += c;
      }
      this.pos += 1;
    }
    const value = Number(digits);
    if (value > U32_MAX) {
      const written = this.chars.slice(begin, this.pos).join('');
      invalid(this.text, `'${written}' cannot be parsed as 4-byte unsigned integer`);
    }
    return value;
  }

  /** `N`, `A-B` or `A-B:STEP`. */
  item(): IdRange {
    const begin = this.pos;
    const start = this.number();
    let end: number | null = null;
    let step: number | null = null;
    if (this.peek() === '-') {
      this.pos += 1;
      end = this.number();
    }
    if (this.peek() === ':') {
      this.pos += 1;
      step = this.number();
    }
    const written = this.chars.slice(begin, this.pos).join('');
    if (end === null) {
      if (step !== null) {
        invalid(this.text, `invalid range '${written}': a step needs a range (A-B:STEP)`);
      }
      return { start, count: 1, step: 1 };
    }
    if (end < start) {
      invalid(this.text, `invalid range '${written}': the end is smaller than the start`);
    }
    if (end - start + 1 > U32_MAX) {
      // Upstream keeps the span in a u32; a range of every u32 does not fit.
      invalid(this.text, `invalid range '${written}': too many ids`);
    }
    if (step === null) {
      return { start, count: end - start + 1, step: 1 };
    }
    // Upstream also rejects a step longer than the range, even though only one id would remain.
    if (step < 1 || step > end - start) {
      invalid(
        this.text,
        `invalid range '${written}': the step must be between 1 and ${end - start} (end - start)`,
      );
    }
    return { start, count: Math.floor((end - start) / step) + 1, step };
  }
}

function gcdExtended(a: bigint, b: bigint): { g: bigint; x: bigint } {
  // Returns g = gcd(a, b) and x with a*x ≡ g (mod b).
  let [oldR, r] = [a, b];
  let [oldS, s] = [1n, 0n];
  while (r !== 0n) {
    const q = oldR / r;
    [oldR, r] = [r, oldR - q * r];
    [oldS, s] = [s, oldS - q * s];
  }
  return { g: oldR, x: oldS };
}

/** The smallest id present in both ranges, or null if they share none. */
export function firstCommonId(a: IdRange, b: IdRange): number | null {
  const low = Math.max(a.start, b.start);
  const high = Math.min(lastOf(a), lastOf(b));
  if (low > high) {
    return null;
  }
  // Solve x ≡ a.start (mod a.step), x ≡ b.start (mod b.step) by the Chinese remainder theorem.
  const stepA = BigInt(a.step);
  const stepB = BigInt(b.step);
  const { g, x } = gcdExtended(stepA, stepB);
  const diff = BigInt(b.start) - BigInt(a.start);
  if (diff % g !== 0n) {
    return null;
  }
  const lcm = (stepA / g) * stepB;
  const modulus = stepB / g;
  const k = ((((diff / g) * x) % modulus) + modulus) % modulus;
  let solution = (BigInt(a.start) + k * stepA) % lcm;
  const lowBig = BigInt(low);
  if (solution < lowBig) {
    solution += ((lowBig - solution + lcm - 1n) / lcm) * lcm;
  }
  return solution <= BigInt(high) ? Number(solution) : null;
}

function rejectOverlaps(text: string, ranges: readonly IdRange[]): void {
  const order = ranges.map((range, index) => ({ range, index }));
  order.sort((x, y) => x.range.start - y.range.start);
  for (let i = 0; i < order.length; i++) {
    const current = order[i];
    if (current === undefined) {
      continue;
    }
    // Sorted by start, so only later ranges starting before this one ends can collide.
    for (let j = i + 1; j < order.length; j++) {
      const other = order[j];
      if (other === undefined || other.range.start > lastOf(current.range)) {
        break;
      }
      const common = firstCommonId(current.range, other.range);
      if (common !== null) {
        invalid(text, `ranges overlap (id ${common} is given more than once)`);
      }
    }
  }
}

/**
 * Parses `1-3,5,7-10:2` into ranges, in the order written. Whitespace may surround items;
 * empty items, overlapping items and values beyond u32 are errors, as upstream.
 */
export function parseIdRanges(text: string): IdRange[] {
  const reader = new Reader(text);
  if (text.length === 0) {
    invalid(text, 'the input is empty');
  }
  const ranges: IdRange[] = [];
  for (;;) {
    reader.skipWhitespace();
    ranges.push(reader.item());
    reader.skipWhitespace();
    const next = reader.peek();
    if (next === undefined) {
      break;
    }
    if (next !== ',') {
      reader.unexpected("','");
    }
    reader.pos += 1;
  }
  rejectOverlaps(text, ranges);
  return ranges;
}

/** How many ids the ranges contain. */
export function idRangesCount(ranges: readonly IdRange[]): number {
  let total = 0;
  for (const range of ranges) {
    total += range.count;
  }
  return total;
}

/** All ids of the ranges, in the order written. */
export function idRangesToArray(ranges: readonly IdRange[]): number[] {
  const ids = new Array<number>(idRangesCount(ranges));
  let at = 0;
  for (const range of ranges) {
    for (let i = 0, id = range.start; i < range.count; i++, id += range.step) {
      ids[at++] = id;
    }
  }
  return ids;
}

export function idRangesContain(ranges: readonly IdRange[], id: number): boolean {
  return ranges.some((r) => id >= r.start && id <= lastOf(r) && (id - r.start) % r.step === 0);
}

/** Parses an id set into its ids, ascending. */
export function parseIdSet(text: string): number[] {
  const ids = idRangesToArray(parseIdRanges(text));
  // Overlaps are rejected, so the ids are already unique.
  return ids.sort((a, b) => a - b);
}

/** Writes ranges back in the input syntax: `5`, `1-3`, `0-8:2`. */
export function formatIdRanges(ranges: readonly IdRange[]): string {
  return ranges
    .map((r) => {
      if (r.count === 1) {
        return `${r.start}`;
      }
      if (r.step === 1) {
        return `${r.start}-${lastOf(r)}`;
      }
      return `${r.start}-${lastOf(r)}:${r.step}`;
    })
    .join(',');
}

/**
 * Compacts ascending ids into runs, as upstream prints task id lists: `1-3,5,7-10`. Upstream
 * never detects steps here, so `1,3,5` stays as it is.
 */
export function formatIdSet(ids: readonly number[]): string {
  const ranges: IdRange[] = [];
  let current: IdRange | null = null;
  for (const id of ids) {
    if (current !== null && lastOf(current) + 1 === id) {
      current.count += 1;
    } else {
      current = { start: id, count: 1, step: 1 };
      ranges.push(current);
    }
  }
  return formatIdRanges(ranges);
}

/**
 * Parses a selector argument: `last`, `all` (where the command allows them) or an id set.
 * The keywords are matched exactly, as upstream does.
 */
export function parseIdSelector(
  text: string,
  allowed: { all?: boolean; last?: boolean },
): IdSelector {
  if (text === 'last' && allowed.last === true) {
    return { kind: 'last' };
  }
  if (text === 'all' && allowed.all === true) {
    return { kind: 'all' };
  }
  if (text === 'all' || text === 'last') {
    throw new HqError(
      'HQ_INVALID_RANGE',
      `Invalid id range '${text}': '${text}' is not accepted here`,
    );
  }
  return { kind: 'ids', ids: parseIdRanges(text) };
}

/** The ids a selector names by itself, in the order written; null for `all` and `last`. */
export function selectorRequestedIds(selector: IdSelector): number[] | null {
  return selector.kind === 'ids' ? idRangesToArray(selector.ids) : null;
}

/** Whether `id` is selected; `last` needs the highest existing id to decide. */
export function selectorMatches(selector: IdSelector, id: number, lastId?: number): boolean {
  switch (selector.kind) {
    case 'all':
      return true;
    case 'last':
      return lastId !== undefined && id === lastId;
    case 'ids':
      return idRangesContain(selector.ids, id);
  }
}

function lowerBound(sorted: readonly number[], value: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((sorted[mid] ?? 0) < value) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo;
}

/**
 * The existing ids a selector picks. `all` gives every id ascending, `last` the highest one,
 * and an id set gives the existing ones in the order the user wrote them (upstream answers in
 * that order). Missing ids are left out; `selectorRequestedIds` tells the caller what was asked.
 */
export function expandSelector(selector: IdSelector, existingIds: readonly number[]): number[] {
  if (selector.kind === 'all') {
    return [...existingIds].sort((a, b) => a - b);
  }
  if (selector.kind === 'last') {
    if (existingIds.length === 0) {
      return [];
    }
    let max = existingIds[0] ?? 0;
    for (const id of existingIds) {
      if (id > max) {
        max = id;
      }
    }
    return [max];
  }
  const requested = idRangesCount(selector.ids);
  if (requested <= existingIds.length) {
    const existing = new Set(existingIds);
    return idRangesToArray(selector.ids).filter((id) => existing.has(id));
  }
  // Huge ranges against few ids: walk the existing ids instead of the requested ones.
  const sorted = [...new Set(existingIds)].sort((a, b) => a - b);
  const result: number[] = [];
  for (const range of selector.ids) {
    const last = lastOf(range);
    for (let i = lowerBound(sorted, range.start); i < sorted.length; i++) {
      const id = sorted[i] ?? 0;
      if (id > last) {
        break;
      }
      if ((id - range.start) % range.step === 0) {
        result.push(id);
      }
    }
  }
  return result;
}
