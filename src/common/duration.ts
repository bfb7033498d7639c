/**
 * Durations as HyperQueue accepts and prints them. Everything is in milliseconds (float), so
 * sub-millisecond values such as `17ns` survive as fractions.
 *
 * Parsing follows the `humantime` 2.4 grammar that upstream uses, including its quirks, because
 * users move job scripts between the Rust and the TypeScript `hq`.
 */
import { HqError } from './errors.js';

const NANOS_PER_MS = 1_000_000n;
const NANOS_PER_SEC = 1_000_000_000n;
const U64_MAX = (1n << 64n) - 1n;
const U32_MAX = 0xffff_ffff;

// Calendar units as humantime defines them (30.44 and 365.25 days), in seconds.
const SECS_PER_MINUTE = 60;
const SECS_PER_HOUR = 3_600;
const SECS_PER_DAY = 86_400;
const SECS_PER_WEEK = 604_800;
const SECS_PER_MONTH = 2_630_016;
const SECS_PER_YEAR = 31_557_600;

type Unit = 'ns' | 'us' | 'ms' | 's' | 'min' | 'h' | 'd' | 'w' | 'month' | 'y';

const UNIT_NAMES: ReadonlyMap<string, Unit> = new Map<string, Unit>([
  ...(['nanos', 'nsec', 'ns'] as const).map((n) => [n, 'ns'] as const),
  ...(['usec', 'us', 'µs'] as const).map((n) => [n, 'us'] as const),
  ...(['millis', 'msec', 'ms'] as const).map((n) => [n, 'ms'] as const),
  ...(['seconds', 'second', 'secs', 'sec', 's'] as const).map((n) => [n, 's'] as const),
  ...(['minutes', 'minute', 'min', 'mins', 'm'] as const).map((n) => [n, 'min'] as const),
  ...(['hours', 'hour', 'hr', 'hrs', 'h'] as const).map((n) => [n, 'h'] as const),
  ...(['days', 'day', 'd'] as const).map((n) => [n, 'd'] as const),
  ...(['weeks', 'week', 'wk', 'wks', 'w'] as const).map((n) => [n, 'w'] as const),
  ...(['months', 'month', 'M'] as const).map((n) => [n, 'month'] as const),
  ...(['years', 'year', 'yr', 'yrs', 'y'] as const).map((n) => [n, 'y'] as const),
]);

/**
 * How one unit of each kind is expressed when humantime adds it up. Sub-minute units count in
 * nanoseconds and larger ones in whole seconds; the split decides which fractions are exact
 * (`0.001h` is 3.6 s, which humantime refuses, while `0.001min` is fine).
 */
const UNIT_VALUE: Record<Unit, { nanos: bigint } | { secs: bigint }> = {
  ns: { nanos: 1n },
  us: { nanos: 1_000n },
  ms: { nanos: 1_000_000n },
  s: { secs: 1n },
  min: { secs: BigInt(SECS_PER_MINUTE) },
  h: { secs: BigInt(SECS_PER_HOUR) },
  d: { secs: BigInt(SECS_PER_DAY) },
  w: { secs: BigInt(SECS_PER_WEEK) },
  month: { secs: BigInt(SECS_PER_MONTH) },
  y: { secs: BigInt(SECS_PER_YEAR) },
};

// Fractions are scaled by a unit's nanoseconds for sub-hour units and by its seconds above that.
const FRACTION_SCALE: Record<Unit, { nanos: bigint } | { secs: bigint } | null> = {
  ns: null,
  us: { nanos: 1_000n },
  ms: { nanos: 1_000_000n },
  s: { nanos: NANOS_PER_SEC },
  min: { nanos: 60n * NANOS_PER_SEC },
  h: { secs: BigInt(SECS_PER_HOUR) },
  d: { secs: BigInt(SECS_PER_DAY) },
  w: { secs: BigInt(SECS_PER_WEEK) },
  month: { secs: BigInt(SECS_PER_MONTH) },
  y: { secs: BigInt(SECS_PER_YEAR) },
};

/** humantime's error variants; upstream shows either their Display or their Debug form. */
type HumantimeError =
  | { kind: 'InvalidCharacter'; offset: number }
  | { kind: 'NumberExpected'; offset: number }
  | { kind: 'UnknownUnit'; start: number; end: number; unit: string; value: bigint }
  | { kind: 'NumberOverflow' }
  | { kind: 'Empty' };

class HumantimeFailure extends Error {
  readonly detail: HumantimeError;
  constructor(detail: HumantimeError) {
    super(displayHumantimeError(detail));
    this.detail = detail;
  }
}

function displayHumantimeError(error: HumantimeError): string {
  switch (error.kind) {
    case 'InvalidCharacter':
      return `invalid character at ${error.offset}`;
    case 'NumberExpected':
      return `expected number at ${error.offset}`;
    case 'UnknownUnit':
      if (error.unit === '') {
        return `time unit needed, for example ${error.value}sec or ${error.value}ms`;
      }
      return (
        `unknown time unit "${error.unit}", supported units: ns, us/µs, ms, sec, min, hours, ` +
        'days, weeks, months, years (and few variations)'
      );
    case 'NumberOverflow':
      return (
        'number is too large or cannot be represented without a lack of precision ' +
        '(values below 1ns are not supported)'
      );
    case 'Empty':
      return 'value was empty';
  }
}

// Upstream's HH:MM:SS-or-humantime parser formats the humantime error with `{:?}`.
function debugHumantimeError(error: HumantimeError): string {
  switch (error.kind) {
    case 'InvalidCharacter':
    case 'NumberExpected':
      return `${error.kind}(${error.offset})`;
    case 'UnknownUnit':
      // Units consist of letters only, so Rust's string escaping never changes them.
      return (
        `UnknownUnit { start: ${error.start}, end: ${error.end}, ` +
        `unit: "${error.unit}", value: ${error.value} }`
      );
    case 'NumberOverflow':
    case 'Empty':
      return error.kind;
  }
}

// Rust's `char::is_whitespace` (the Unicode White_Space property), which differs from JS `\s`.
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

function isDigit(c: string): boolean {
  return c >= '0' && c <= '9';
}

function isAsciiLetter(c: string): boolean {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/**
 * Walks the text by code point while tracking UTF-8 byte offsets, because humantime's error
 * messages report byte positions.
 */
class Cursor {
  private readonly chars: string[];
  private readonly byteOffsets: number[];
  private index = 0;

  constructor(text: string) {
    this.chars = Array.from(text);
    this.byteOffsets = [];
    let offset = 0;
    for (const c of this.chars) {
      this.byteOffsets.push(offset);
      offset += Buffer.byteLength(c, 'utf8');
    }
    this.byteOffsets.push(offset);
  }

  /** Byte offset of the next unread character. */
  offset(): number {
    return this.byteOffsets[this.index] ?? 0;
  }

  next(): string | undefined {
    const c = this.chars[this.index];
    if (c !== undefined) {
      this.index += 1;
    }
    return c;
  }

  sliceBytes(start: number, end: number): string {
    const from = this.byteOffsets.indexOf(start);
    const to = this.byteOffsets.indexOf(end);
    return this.chars.slice(from, to).join('');
  }
}

function fail(detail: HumantimeError): never {
  throw new HumantimeFailure(detail);
}

function checkedU64(value: bigint): bigint {
  if (value > U64_MAX) {
    fail({ kind: 'NumberOverflow' });
  }
  return value;
}

function exactDiv(numerator: bigint, denominator: bigint): bigint {
  // humantime reports an inexact fraction (`0.5ns`, `0.001h`) as an overflow.
  if (numerator % denominator !== 0n) {
    fail({ kind: 'NumberOverflow' });
  }
  return numerator / denominator;
}

type Fraction = { numerator: bigint; denominator: bigint };

/** Accumulates seconds and nanoseconds with humantime's u64 overflow limits. */
class Total {
  secs = 0n;
  nanos = 0n;

  add(secs: bigint, nanos: bigint): void {
    let s = secs;
    let n = checkedU64(this.nanos + nanos);
    if (n >= NANOS_PER_SEC) {
      s = checkedU64(s + n / NANOS_PER_SEC);
      n %= NANOS_PER_SEC;
    }
    this.secs = checkedU64(this.secs + s);
    this.nanos = n;
  }
}

function addUnit(
  total: Total,
  cursor: Cursor,
  n: bigint,
  fraction: Fraction | null,
  start: number,
  end: number,
): void {
  const name = cursor.sliceBytes(start, end);
  const unit = UNIT_NAMES.get(name);
  if (unit === undefined) {
    fail({ kind: 'UnknownUnit', start, end, unit: name, value: n });
  }
  const value = UNIT_VALUE[unit];
  if ('nanos' in value) {
    total.add(0n, checkedU64(n * value.nanos));
  } else {
    total.add(checkedU64(n * value.secs), 0n);
  }
  if (fraction !== null) {
    const scale = FRACTION_SCALE[unit];
    if (scale === null) {
      fail({ kind: 'NumberOverflow' });
    }
    if ('nanos' in scale) {
      const nanos = exactDiv(checkedU64(fraction.numerator * scale.nanos), fraction.denominator);
      total.add(0n, nanos);
    } else {
      const secs = exactDiv(checkedU64(fraction.numerator * scale.secs), fraction.denominator);
      total.add(secs, 0n);
    }
  }
}

/** Skips whitespace and reads the first digit of the next number, if any input is left. */
function firstDigit(cursor: Cursor): bigint | null {
  const offset = cursor.offset();
  for (let c = cursor.next(); c !== undefined; c = cursor.next()) {
    if (isDigit(c)) {
      return BigInt(c);
    }
    if (!isRustWhitespace(c)) {
      fail({ kind: 'NumberExpected', offset });
    }
  }
  return null;
}

/**
 * Reads the digits after a decimal point. Returns the fraction and the byte offset where the
 * unit starts (the letter that ended the fraction, or the end of input).
 */
function readFraction(cursor: Cursor, pointOffset: number): { fraction: Fraction; end: number } {
  let numerator = 0n;
  let denominator = 1n;
  let offset = pointOffset;
  for (let c = cursor.next(); c !== undefined; c = cursor.next()) {
    if (isDigit(c)) {
      denominator = checkedU64(denominator * 10n);
      numerator = checkedU64(numerator * 10n + BigInt(c));
    } else if (isAsciiLetter(c) || c === 'µ') {
      break;
    } else if (!isRustWhitespace(c)) {
      fail({ kind: 'InvalidCharacter', offset });
    }
    offset = cursor.offset();
  }
  if (denominator === 1n) {
    // A point with no digits after it, e.g. `1.` or `1.s`.
    fail({ kind: 'InvalidCharacter', offset });
  }
  return { fraction: { numerator, denominator }, end: offset };
}

function parseHumantimeNanos(text: string): { secs: bigint; nanos: bigint } {
  if (text === '0') {
    return { secs: 0n, nanos: 0n };
  }
  const cursor = new Cursor(text);
  const total = new Total();
  let n = firstDigit(cursor);
  if (n === null) {
    fail({ kind: 'Empty' });
  }
  for (;;) {
    // The number: digits, with whitespace allowed (and ignored) between them.
    let fraction: Fraction | null = null;
    let offset = cursor.offset();
    for (let c = cursor.next(); c !== undefined; c = cursor.next()) {
      if (isDigit(c)) {
        n = checkedU64(n * 10n + BigInt(c));
      } else if (isAsciiLetter(c) || c === 'µ') {
        break;
      } else if (c === '.') {
        const read = readFraction(cursor, offset);
        fraction = read.fraction;
        offset = read.end;
        break;
      } else if (!isRustWhitespace(c)) {
        fail({ kind: 'InvalidCharacter', offset });
      }
      offset = cursor.offset();
    }
    // The unit: letters up to whitespace, the end, or a digit that starts the next number.
    const unitStart = offset;
    let unitEnd = cursor.offset();
    let nextDigit: bigint | null = null;
    for (let c = cursor.next(); c !== undefined; c = cursor.next()) {
      if (isDigit(c)) {
        nextDigit = BigInt(c);
        break;
      }
      if (isRustWhitespace(c)) {
        break;
      }
      if (!isAsciiLetter(c) && c !== 'µ') {
        fail({ kind: 'InvalidCharacter', offset: unitEnd });
      }
      unitEnd = cursor.offset();
    }
    addUnit(total, cursor, n, fraction, unitStart, unitEnd);
    if (nextDigit !== null) {
      n = nextDigit;
      continue;
    }
    const following = firstDigit(cursor);
    if (following === null) {
      return { secs: total.secs, nanos: total.nanos };
    }
    n = following;
  }
}

function toMs(secs: bigint, nanos: bigint): number {
  // Split the conversion so whole milliseconds stay exact for any realistic value.
  const wholeMs = secs * 1000n + nanos / NANOS_PER_MS;
  return Number(wholeMs) + Number(nanos % NANOS_PER_MS) / 1e6;
}

/**
 * Parses a humantime duration (`1h 30m`, `100ms`, `1.5h`, `2days`) into milliseconds.
 * The message of the thrown error is humantime's own, as upstream shows it for TOML job files
 * and `--overview-interval`.
 */
export function parseHumantime(text: string): number {
  try {
    const { secs, nanos } = parseHumantimeNanos(text);
    return toMs(secs, nanos);
  } catch (error) {
    if (error instanceof HumantimeFailure) {
      throw new HqError('HQ_INVALID_DURATION', error.message, { cause: error });
    }
    throw error;
  }
}

/** One `[[HH:]MM:]SS` component: digits with `_` separators, never starting with `_`. */
function parseHmsComponent(part: string): number | null {
  if (!/^[0-9][0-9_]*$/.test(part)) {
    return null;
  }
  const value = Number(part.replaceAll('_', ''));
  return value <= U32_MAX ? value : null;
}

function parseHms(text: string): number | null {
  const parts = text.split(':');
  if (parts.length > 3) {
    return null;
  }
  const values: number[] = [];
  for (const part of parts) {
    const value = parseHmsComponent(part);
    if (value === null) {
      return null;
    }
    values.push(value);
  }
  let secs = 0;
  for (const value of values) {
    secs = secs * 60 + value;
  }
  return secs * 1000;
}

/**
 * Parses the `[[HH:]MM:]SS` form (`01:30:00`, `90`) or, failing that, humantime, into
 * milliseconds. This is what every upstream flag taking a walltime or limit accepts.
 */
export function parseDuration(text: string): number {
  const hms = parseHms(text);
  if (hms !== null) {
    return hms;
  }
  try {
    const { secs, nanos } = parseHumantimeNanos(text);
    return toMs(secs, nanos);
  } catch (error) {
    if (error instanceof HumantimeFailure) {
      // Upstream's wording, PBS mention included, so scripts matching on it keep working.
      throw new HqError(
        'HQ_INVALID_DURATION',
        'Could not parse PBS walltime. Use either `HH:MM:SS` or humantime format (2hours): ' +
          debugHumantimeError(error.detail),
        { cause: error },
      );
    }
    throw error;
  }
}

function splitMs(ms: number): { secs: number; nanos: number } {
  let secs = Math.floor(ms / 1000);
  // Rounding to whole nanoseconds absorbs the binary noise of float milliseconds.
  let nanos = Math.round((ms - secs * 1000) * 1e6);
  if (nanos >= 1e9) {
    secs += 1;
    nanos -= 1e9;
  }
  return { secs, nanos };
}

/**
 * Formats like humantime's `format_duration`: `1h 30m`, `1s 200ms`, `2days 3h`, `1month`,
 * `0s`. Years, months and days are pluralised; the rest use short suffixes.
 */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) {
    throw new HqError('HQ_INVALID_DURATION', `Cannot format duration of ${ms} ms`);
  }
  const { secs, nanos } = splitMs(ms);
  if (secs === 0 && nanos === 0) {
    return '0s';
  }
  const years = Math.floor(secs / SECS_PER_YEAR);
  const inYear = secs % SECS_PER_YEAR;
  const months = Math.floor(inYear / SECS_PER_MONTH);
  const inMonth = inYear % SECS_PER_MONTH;
  const days = Math.floor(inMonth / SECS_PER_DAY);
  const inDay = inMonth % SECS_PER_DAY;

  const parts: string[] = [];
  const plural = (value: number, name: string): void => {
    if (value > 0) {
      parts.push(`${value}${name}${value > 1 ? 's' : ''}`);
    }
  };
  const plain = (value: number, suffix: string): void => {
    if (value > 0) {
      parts.push(`${value}${suffix}`);
    }
  };
  plural(years, 'year');
  plural(months, 'month');
  plural(days, 'day');
  plain(Math.floor(inDay / 3600), 'h');
  plain(Math.floor((inDay % 3600) / 60), 'm');
  plain(inDay % 60, 's');
  plain(Math.floor(nanos / 1e6), 'ms');
  plain(Math.floor(nanos / 1e3) % 1000, 'us');
  plain(nanos % 1000, 'ns');
  return parts.join(' ');
}

/**
 * Upstream's `human_duration`: drops precision that would only be noise for long spans
 * (minutes once past an hour, seconds once past a minute, else milliseconds).
 */
export function formatHumanDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) {
    return 'Invalid duration';
  }
  let truncated: number;
  if (ms >= SECS_PER_HOUR * 1000) {
    truncated = Math.floor(ms / 60_000) * 60_000;
  } else if (ms >= SECS_PER_MINUTE * 1000) {
    truncated = Math.floor(ms / 1000) * 1000;
  } else {
    truncated = Math.floor(ms);
  }
  return formatDuration(truncated);
}

/**
 * Formats a float with a fixed number of decimals the way Rust's `{:.N}` does: from the exact
 * binary value, ties to even. `toFixed` rounds exact ties away from zero instead.
 */
export function formatFixed(value: number, decimals: number): string {
  if (!Number.isFinite(value)) {
    return String(value);
  }
  const negative = value < 0 || Object.is(value, -0);
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, Math.abs(value));
  const bits = view.getBigUint64(0);
  const biasedExponent = Number((bits >> 52n) & 0x7ffn);
  const fractionBits = bits & ((1n << 52n) - 1n);
  const mantissa = biasedExponent === 0 ? fractionBits : fractionBits | (1n << 52n);
  const exponent = (biasedExponent === 0 ? 1 : biasedExponent) - 1075;

  const scale = 10n ** BigInt(decimals);
  let scaled: bigint;
  if (exponent >= 0) {
    scaled = (mantissa << BigInt(exponent)) * scale;
  } else {
    const numerator = mantissa * scale;
    const denominator = 1n << BigInt(-exponent);
    scaled = numerator / denominator;
    const twiceRemainder = (numerator % denominator) * 2n;
    if (twiceRemainder > denominator || (twiceRemainder === denominator && scaled % 2n === 1n)) {
      scaled += 1n;
    }
  }
  let digits = scaled.toString();
  if (decimals > 0) {
    digits = digits.padStart(decimals + 1, '0');
    digits = `${digits.slice(0, -decimals)}.${digits.slice(-decimals)}`;
  }
  return negative ? `-${digits}` : digits;
}

/** Upstream's `human_size`: `12 B`, `292.97 KiB`, `47.68 MiB`, `465.89 GiB`. */
export function formatSize(bytes: number): string {
  if (bytes < 2048) {
    return `${bytes} B`;
  }
  if (bytes < 2 * 1024 * 1024) {
    return `${formatFixed(bytes / 1024, 2)} KiB`;
  }
  if (bytes < 2 * 1024 * 1024 * 1024) {
    return `${formatFixed(bytes / (1024 * 1024), 2)} MiB`;
  }
  return `${formatFixed(bytes / (1024 * 1024 * 1024), 2)} GiB`;
}

/**
 * Upstream's `human_mem_amount` for a memory resource given in MiB. Upstream computes in f32,
 * which shows in the last digit of some values, so this does too.
 */
export function formatMemAmount(mib: number): string {
  // Resource amounts are fixed-point with four decimals; as_f32 divides the raw count in f32.
  const raw = Math.round(mib * 10_000);
  const amount = Math.fround(Math.fround(raw) / 10_000);
  if (amount < 512) {
    return `${formatFixed(amount, 2)} MiB`;
  }
  return `${formatFixed(Math.fround(amount / 1024), 2)} GiB`;
}
