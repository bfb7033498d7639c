/**
 * Resources: fixed-point amounts, worker resource descriptors (`hq worker start --cpus/--resource`)
 * and task resource requests (`hq submit --cpus/--resource`), with their text and JSON forms.
 * Pure: no I/O.
 */
import { HqError } from './errors.js';

// ---------------------------------------------------------------------------------------------
// Constants
// ---------------------------------------------------------------------------------------------

export const CPU_RESOURCE_NAME = 'cpus';
export const MEM_RESOURCE_NAME = 'mem';
export const NVIDIA_GPU_RESOURCE_NAME = 'gpus/nvidia';
export const AMD_GPU_RESOURCE_NAME = 'gpus/amd';

/** Fixed-point fractions in one unit of a resource (1 cpu = 10 000). */
export const FRACTIONS_PER_UNIT = 10_000;
/** Number of decimal digits an amount can carry. */
export const FRACTIONS_MAX_DIGITS = 4;
/** Weight of a resource request when none is given (1.0). */
export const DEFAULT_RESOURCE_WEIGHT = 10_000;
/** Default coupling weight when `--coupling a[0]:b[0]` has no `=W`. */
export const DEFAULT_COUPLING_WEIGHT = 256;
/** Upper bound of resource variants of one task. */
export const MAX_RESOURCE_VARIANTS = 32;

const U32_MAX = 0xffff_ffff;
const U16_MAX = 0xffff;
const U8_MAX = 0xff;

// ---------------------------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------------------------

/** An amount of a resource in units of 1/10000. */
export type ResourceAmount = number;

export type ResourceDescriptorKind =
  | { kind: 'list'; values: string[] }
  | { kind: 'groups'; groups: string[][] }
  | { kind: 'range'; start: number; end: number }
  | { kind: 'sum'; size: ResourceAmount };

export type ResourceDescriptorItem = { name: string } & ResourceDescriptorKind;

/** Affinity between a group of one resource and a group of another one (indices into the sorted resources). */
export type CouplingWeight = {
  resource1Idx: number;
  group1Idx: number;
  resource2Idx: number;
  group2Idx: number;
  weight: number;
};

export type ResourceDescriptor = {
  resources: ResourceDescriptorItem[];
  coupling: { weights: CouplingWeight[] };
};

export type AllocationPolicy = 'compact' | 'compact!' | 'tight' | 'tight!' | 'scatter';

export type ResourceAllocRequest =
  { kind: 'amount'; amount: ResourceAmount; policy: AllocationPolicy } | { kind: 'all' };

export type ResourceRequestEntry = { resource: string; request: ResourceAllocRequest };

export type ResourceRequest = {
  nNodes: number;
  minTimeMs: number;
  resources: ResourceRequestEntry[];
  /** Fixed point, 10000 = 1.0. */
  weight: ResourceAmount;
};

export type ResourceDescriptorItemJson =
  | { name: string; kind: 'list'; values: string[] }
  | { name: string; kind: 'groups'; groups: string[][] }
  | { name: string; kind: 'range'; start: number; end: number }
  | { name: string; kind: 'sum'; size: number };

export type CouplingWeightJson = {
  resource1_idx: number;
  group1_idx: number;
  resource2_idx: number;
  group2_idx: number;
  weight: number;
};

export type ResourceDescriptorJson = {
  coupling: { weights: CouplingWeightJson[] };
  resources: ResourceDescriptorItemJson[];
};

export type AllocRequestJson =
  | { Compact: number }
  | { ForceCompact: number }
  | { Tight: number }
  | { ForceTight: number }
  | { Scatter: number }
  | 'All';

function invalid(message: string): HqError {
  return new HqError('HQ_INVALID_RESOURCE', message);
}

// ---------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------

/** Same as Rust's `char::is_whitespace` for practical purposes. */
function isWs(c: string | undefined): boolean {
  return c !== undefined && /\s/u.test(c);
}

function isDigit(c: string | undefined): boolean {
  return c !== undefined && c >= '0' && c <= '9';
}

function isAsciiAlpha(c: string | undefined): boolean {
  return c !== undefined && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'));
}

function isAsciiAlnum(c: string | undefined): boolean {
  return isAsciiAlpha(c) || isDigit(c);
}

/** Characters allowed in a resource name after the first one. */
function isResourceNameChar(c: string | undefined): boolean {
  return isAsciiAlnum(c) || c === '/';
}

/** A resource name starts with an ASCII letter, then ASCII letters, digits or `/`. */
export function isValidResourceName(name: string): boolean {
  if (!isAsciiAlpha(name[0])) {
    return false;
  }
  for (let i = 1; i < name.length; i++) {
    if (!isResourceNameChar(name[i])) {
      return false;
    }
  }
  return true;
}

/** Rust's `str::parse::<uN>()`: an optional `+`, then decimal digits only, within range. */
function parseRustUint(text: string, max: number): number | undefined {
  if (!/^\+?[0-9]+$/.test(text)) {
    return undefined;
  }
  const value = Number(text.startsWith('+') ? text.slice(1) : text);
  return value <= max ? value : undefined;
}

/** Orders strings by code point (= UTF-8 byte order, as Rust compares `String`s). */
export function compareNames(a: string, b: string): number {
  const ia = a[Symbol.iterator]();
  const ib = b[Symbol.iterator]();
  for (;;) {
    const ca = ia.next();
    const cb = ib.next();
    if (ca.done === true) {
      return cb.done === true ? 0 : -1;
    }
    if (cb.done === true) {
      return 1;
    }
    const x = ca.value.codePointAt(0) ?? 0;
    const y = cb.value.codePointAt(0) ?? 0;
    if (x !== y) {
      return x < y ? -1 : 1;
    }
  }
}

function hasUniqueElements(values: string[]): boolean {
  return new Set(values).size === values.length;
}

// ---------------------------------------------------------------------------------------------
// A tiny cursor-based parser (the grammar mirrors upstream's combinators, incl. where whitespace
// is tolerated and where it is not)
// ---------------------------------------------------------------------------------------------

class ParseFailure extends Error {
  readonly pos: number;
  readonly detail: string;
  /** Semantic failures (custom messages) are reported without a position. */
  readonly semantic: boolean;

  constructor(pos: number, detail: string, semantic: boolean) {
    super(detail);
    this.pos = pos;
    this.detail = detail;
    this.semantic = semantic;
  }
}

class Cursor {
  readonly text: string;
  pos: number;

  constructor(text: string, pos = 0) {
    this.text = text;
    this.pos = pos;
  }

  peek(offset = 0): string | undefined {
    return this.text[this.pos + offset];
  }

  atEnd(): boolean {
    return this.pos >= this.text.length;
  }

  skipWs(): void {
    while (isWs(this.peek())) {
      this.pos++;
    }
  }

  found(): string {
    const c = this.peek();
    if (c === undefined) {
      return 'end of input';
    }
    const cp = this.text.codePointAt(this.pos) ?? 0;
    return `\`${String.fromCodePoint(cp)}\` at position ${this.pos}`;
  }

  fail(expected: string): never {
    throw new ParseFailure(this.pos, `unexpected ${this.found()}, expected ${expected}`, false);
  }

  custom(detail: string, pos = this.pos): never {
    throw new ParseFailure(pos, detail, true);
  }

  expectChar(c: string): void {
    if (this.peek() !== c) {
      this.fail(`\`${c}\``);
    }
    this.pos++;
  }

  /** chumsky's `text::ident`: an ASCII identifier (`[A-Za-z_][A-Za-z0-9_]*`), or undefined. */
  ident(): string | undefined {
    const c = this.peek();
    if (!(isAsciiAlpha(c) || c === '_')) {
      return undefined;
    }
    const start = this.pos;
    let end = start + 1;
    while (isAsciiAlnum(this.text[end]) || this.text[end] === '_') {
      end++;
    }
    return this.text.slice(start, end);
  }

  /** Consumes exactly the identifier `keyword` or fails. */
  keyword(keyword: string): void {
    const id = this.ident();
    if (id !== keyword) {
      this.fail(`\`${keyword}\``);
    }
    this.pos += keyword.length;
  }

  expectEnd(): void {
    if (!this.atEnd()) {
      this.fail('end of input');
    }
  }

  /** A digit, then digits or `_` (underscores are ignored). Returns the digits. */
  integerString(what: string): string {
    if (!isDigit(this.peek())) {
      if (this.peek() === '-') {
        this.custom(`${what} cannot be negative`);
      }
      this.fail(what);
    }
    let digits = '';
    while (isDigit(this.peek()) || this.peek() === '_') {
      const c = this.peek();
      if (c !== '_' && c !== undefined) {
        digits += c;
      }
      this.pos++;
    }
    return digits;
  }

  u32(what = 'a number'): number {
    const start = this.pos;
    const digits = this.integerString(what);
    const value = Number(digits);
    if (!Number.isSafeInteger(value) || value > U32_MAX) {
      this.custom(`${digits} cannot be parsed as a 4-byte unsigned integer`, start);
    }
    return value;
  }

  /** An amount: a u32, optionally followed by `.` and at most 4 decimal digits. */
  amount(): ResourceAmount {
    const start = this.pos;
    const units = this.u32('an amount');
    let fractions = 0;
    if (this.peek() === '.' && isDigit(this.peek(1))) {
      this.pos++;
      const digits = this.integerString('decimal digits');
      if (digits.length > FRACTIONS_MAX_DIGITS) {
        this.custom(
          `Resource precision exceeded: '${this.text.slice(start, this.pos)}' has more than ${FRACTIONS_MAX_DIGITS} decimal digits`,
          start,
        );
      }
      fractions = Number(digits.padEnd(FRACTIONS_MAX_DIGITS, '0'));
    }
    return units * FRACTIONS_PER_UNIT + fractions;
  }
}

function withContext<T>(prefix: string, input: string, run: () => T): T {
  try {
    return run();
  } catch (error) {
    if (error instanceof ParseFailure) {
      throw invalid(`${prefix} '${input}': ${error.detail}`);
    }
    throw error;
  }
}

// ---------------------------------------------------------------------------------------------
// Amounts
// ---------------------------------------------------------------------------------------------

/** Parses `2`, `0.5`, `1.2345` (at most 4 decimals, `_` allowed between digits) into fixed point. */
export function parseAmount(text: string): ResourceAmount {
  return withContext('Invalid resource amount', text, () => {
    const cursor = new Cursor(text);
    cursor.skipWs();
    const amount = cursor.amount();
    cursor.skipWs();
    cursor.expectEnd();
    return amount;
  });
}

/** `20000` → `2`, `5000` → `0.5`, `12345` → `1.2345` (trailing zeros of the fraction dropped). */
export function formatAmount(amount: ResourceAmount): string {
  const units = Math.floor(amount / FRACTIONS_PER_UNIT);
  const fractions = amount % FRACTIONS_PER_UNIT;
  if (fractions === 0) {
    return String(units);
  }
  const decimals = String(fractions).padStart(FRACTIONS_MAX_DIGITS, '0').replace(/0+$/, '');
  return `${units}.${decimals}`;
}

/** Whole units to fixed point. */
export function amountFromUnits(units: number): ResourceAmount {
  return units * FRACTIONS_PER_UNIT;
}

/**
 * A float (e.g. a TOML `cpus = 1.5`) to fixed point, rounding up, computed in single precision
 * as upstream does (`1.1` → 11000, `20.0001` → 200001).
 */
export function amountFromFloat(value: number): ResourceAmount {
  const product = Math.fround(Math.fround(value) * Math.fround(FRACTIONS_PER_UNIT));
  return Math.max(0, Math.ceil(product));
}

/** The amount as a single-precision float in units (upstream `as_f32`). */
function amountAsF32(amount: ResourceAmount): number {
  return Math.fround(Math.fround(amount) / FRACTIONS_PER_UNIT);
}

/**
 * Rust's `format!("{:.N}", x)` for a float: exact decimal value, ties rounded to even
 * (JS `toFixed` rounds ties up).
 */
function toFixedHalfEven(value: number, digits: number): string {
  const scale = 10 ** digits;
  const scaled = value * scale;
  // For single-precision inputs and small `digits` the product is exact, so a tie is detectable.
  if (Number.isFinite(scaled) && scaled - Math.floor(scaled) === 0.5 && scaled / scale === value) {
    let n = Math.floor(scaled);
    if (n % 2 !== 0) {
      n += 1;
    }
    return (n / scale).toFixed(digits);
  }
  return value.toFixed(digits);
}

/** Rust's `Display` for an `f32`: the shortest round-tripping digits, never in exponent form. */
export function formatF32(value: number): string {
  const f = Math.fround(value);
  if (Number.isNaN(f)) {
    return 'NaN';
  }
  if (!Number.isFinite(f)) {
    return f > 0 ? 'inf' : '-inf';
  }
  if (f === 0) {
    return Object.is(f, -0) ? '-0' : '0';
  }
  let exp = f.toExponential();
  for (let precision = 1; precision <= 9; precision++) {
    const candidate = f.toExponential(precision - 1);
    if (Math.fround(Number(candidate)) === f) {
      exp = candidate;
      break;
    }
  }
  const match = /^(-?)(\d)(?:\.(\d+))?e([+-]\d+)$/.exec(exp);
  if (match === null) {
    return String(f);
  }
  const sign = match[1] ?? '';
  const digits = (match[2] ?? '') + (match[3] ?? '');
  const exponent = Number(match[4]);
  const pointAt = exponent + 1; // digits before the decimal point
  let body: string;
  if (pointAt <= 0) {
    body = `0.${'0'.repeat(-pointAt)}${digits}`;
  } else if (pointAt >= digits.length) {
    body = digits + '0'.repeat(pointAt - digits.length);
  } else {
    body = `${digits.slice(0, pointAt)}.${digits.slice(pointAt)}`;
  }
  return sign + body;
}

/** Memory (a `mem` sum pool, amount in MiB): `< 512` → `"X.XX MiB"`, else `"X.XX GiB"`. */
export function humanMemAmount(amount: ResourceAmount): string {
  const f = amountAsF32(amount);
  if (f < 512) {
    return `${toFixedHalfEven(f, 2)} MiB`;
  }
  return `${toFixedHalfEven(Math.fround(f / 1024), 2)} GiB`;
}

// ---------------------------------------------------------------------------------------------
// Worker resource descriptors
// ---------------------------------------------------------------------------------------------

const KIND_EXPECTATION =
  'a resource kind: [a,b,...], [[a,b],[c,d]], NxM, range(START-END) or sum(SIZE)';

function makeList(values: string[], duplicateMessage: string): ResourceDescriptorKind {
  if (!hasUniqueElements(values)) {
    throw new ParseFailure(0, duplicateMessage, true);
  }
  return { kind: 'list', values };
}

/** Builds a groups kind; a single group collapses into a list (as upstream). */
function makeGroups(groups: string[][], duplicateMessage: string): ResourceDescriptorKind {
  const [first] = groups;
  if (first === undefined) {
    throw new ParseFailure(0, 'There has to be at least a single group', true);
  }
  if (groups.length === 1) {
    return makeList(first, duplicateMessage);
  }
  for (const group of groups) {
    if (!hasUniqueElements(group)) {
      throw new ParseFailure(0, duplicateMessage, true);
    }
  }
  return { kind: 'groups', groups };
}

/** `n` indices `0..n-1` as a range; `0` gives an empty sum pool (as upstream). */
export function simpleIndices(n: number): ResourceDescriptorKind {
  if (n === 0) {
    return { kind: 'sum', size: 0 };
  }
  return { kind: 'range', start: 0, end: n - 1 };
}

/** `NxM`: N groups of M consecutive numeric labels; one group is a plain range. */
export function regularSockets(nGroups: number, groupSize: number): ResourceDescriptorKind {
  if (nGroups === 1) {
    return simpleIndices(groupSize);
  }
  const groups: string[][] = [];
  let label = 0;
  for (let g = 0; g < nGroups; g++) {
    const group: string[] = [];
    for (let i = 0; i < groupSize; i++) {
      group.push(String(label++));
    }
    groups.push(group);
  }
  return { kind: 'groups', groups };
}

/** A label: `"quoted"` (anything but `"`, at least one char) or bare (no `,[]"` nor whitespace). */
function parseLabel(cursor: Cursor): string {
  cursor.skipWs();
  let label: string;
  if (cursor.peek() === '"') {
    const close = cursor.text.indexOf('"', cursor.pos + 1);
    if (close < 0) {
      cursor.custom(`unterminated quoted label at position ${cursor.pos}`);
    }
    if (close === cursor.pos + 1) {
      cursor.fail('a label');
    }
    label = cursor.text.slice(cursor.pos + 1, close);
    cursor.pos = close + 1;
  } else {
    const start = cursor.pos;
    for (;;) {
      const c = cursor.peek();
      if (c === undefined || c === ',' || c === '[' || c === ']' || c === '"' || isWs(c)) {
        break;
      }
      cursor.pos++;
    }
    if (cursor.pos === start) {
      cursor.fail('a label');
    }
    label = cursor.text.slice(start, cursor.pos);
  }
  cursor.skipWs();
  return label;
}

/** `[a, b, "c d"]` with whitespace around every token; may be empty (callers decide). */
function parseLabelList(cursor: Cursor): string[] {
  cursor.skipWs();
  cursor.expectChar('[');
  cursor.skipWs();
  const values: string[] = [];
  if (cursor.peek() === ']') {
    cursor.pos++;
    cursor.skipWs();
    return values;
  }
  for (;;) {
    values.push(parseLabel(cursor));
    const c = cursor.peek();
    if (c === ',') {
      cursor.pos++;
      continue;
    }
    if (c === ']') {
      cursor.pos++;
      cursor.skipWs();
      return values;
    }
    cursor.fail('`,` or `]`');
  }
}

function parseGroupsKind(cursor: Cursor): ResourceDescriptorKind {
  cursor.skipWs();
  cursor.expectChar('[');
  const groups: string[][] = [];
  for (;;) {
    const start = cursor.pos;
    const group = parseLabelList(cursor);
    if (group.length === 0) {
      cursor.custom(
        `each group has to contain at least a single element (empty group at position ${start})`,
      );
    }
    groups.push(group);
    const c = cursor.peek();
    if (c === ',') {
      cursor.pos++;
      continue;
    }
    if (c === ']') {
      cursor.pos++;
      cursor.skipWs();
      break;
    }
    cursor.fail('`,` or `]`');
  }
  return makeGroups(groups, 'group items have to be unique');
}

function parseListKind(cursor: Cursor): ResourceDescriptorKind {
  const values = parseLabelList(cursor);
  if (values.length === 0) {
    cursor.custom('list has to contain at least a single element');
  }
  return makeList(values, 'list items have to be unique');
}

const PLAIN_NUMBER_HINT =
  'a plain number is accepted only by --cpus; use range(0-<N-1>) for N indices or sum(<N>) for a pool';

function parseXNotation(cursor: Cursor): ResourceDescriptorKind {
  const nGroups = cursor.u32();
  if (cursor.atEnd()) {
    cursor.custom(PLAIN_NUMBER_HINT);
  }
  if (cursor.peek() !== 'x') {
    cursor.fail('`x` (as in NxM)');
  }
  cursor.pos++;
  const groupSize = cursor.u32();
  if (nGroups === 0 || groupSize === 0) {
    cursor.custom(`the number of groups and the group size of NxM must be positive`);
  }
  return regularSockets(nGroups, groupSize);
}

function parseRangeKind(cursor: Cursor): ResourceDescriptorKind {
  cursor.keyword('range');
  cursor.skipWs();
  cursor.expectChar('(');
  cursor.skipWs();
  const start = cursor.u32('the start of the range');
  cursor.skipWs();
  cursor.expectChar('-');
  cursor.skipWs();
  const end = cursor.u32('the end of the range');
  cursor.skipWs();
  cursor.expectChar(')');
  cursor.skipWs();
  if (start > end) {
    cursor.custom(
      `the start of the range (${start}) must be less than or equal to its end (${end})`,
    );
  }
  return { kind: 'range', start, end };
}

function parseSumKind(cursor: Cursor): ResourceDescriptorKind {
  cursor.keyword('sum');
  cursor.skipWs();
  cursor.expectChar('(');
  cursor.skipWs();
  const size = cursor.amount();
  cursor.skipWs();
  cursor.expectChar(')');
  cursor.skipWs();
  return { kind: 'sum', size };
}

/** One of the kinds, starting exactly at the cursor (list/groups also skip leading whitespace). */
function parseKind(cursor: Cursor): ResourceDescriptorKind {
  if (isDigit(cursor.peek())) {
    return parseXNotation(cursor);
  }
  const save = cursor.pos;
  cursor.skipWs();
  if (cursor.peek() === '[') {
    cursor.pos++;
    cursor.skipWs();
    const nested = cursor.peek() === '[';
    cursor.pos = save;
    return nested ? parseGroupsKind(cursor) : parseListKind(cursor);
  }
  cursor.pos = save;
  const id = cursor.ident();
  if (id === 'range') {
    return parseRangeKind(cursor);
  }
  if (id === 'sum') {
    return parseSumKind(cursor);
  }
  if (cursor.peek() === '-') {
    cursor.custom('resource sizes cannot be negative');
  }
  return cursor.fail(KIND_EXPECTATION);
}

/**
 * The value of `--resource name=VALUE`: `[a,b,"c d"]`, `[[0,1],[2,3]]`, `NxM`, `range(S-E)` or
 * `sum(SIZE)`. A plain number is NOT accepted here (upstream accepts it only for `--cpus`).
 */
export function parseResourceDefinitionValue(text: string): ResourceDescriptorKind {
  return withContext('Invalid resource definition', text, () => {
    const cursor = new Cursor(text);
    // The value follows `=` in `name=value`, where whitespace after `=` is skipped.
    cursor.skipWs();
    const kind = parseKind(cursor);
    cursor.expectEnd();
    return kind;
  });
}

const CPU_SUM_ERROR = 'Resource kind `sum` cannot be used with CPUs. CPUs must have identity';

/** `--cpus`: a plain number `N` (= `range(0-(N-1))`) or any non-`sum` kind. */
export function parseCpuDefinition(text: string): ResourceDescriptorKind {
  const n = parseRustUint(text, U32_MAX);
  const kind =
    n !== undefined
      ? simpleIndices(n)
      : withContext('Invalid CPU definition', text, () => {
          const cursor = new Cursor(text);
          const parsed = parseKind(cursor);
          cursor.expectEnd();
          return parsed;
        });
  if (kind.kind === 'sum') {
    throw invalid(CPU_SUM_ERROR);
  }
  return kind;
}

/** Parses a resource name at the cursor (no surrounding whitespace handled). */
function parseResourceName(cursor: Cursor): string {
  const start = cursor.pos;
  if (!isAsciiAlpha(cursor.peek())) {
    cursor.fail('a resource name (an ASCII letter, then letters, digits or `/`)');
  }
  cursor.pos++;
  while (isResourceNameChar(cursor.peek())) {
    cursor.pos++;
  }
  return cursor.text.slice(start, cursor.pos);
}

/** After a name, a character that is neither `=` nor whitespace is reported as a bad name char. */
function expectEqualsAfterName(cursor: Cursor, name: string): void {
  const c = cursor.peek();
  if (c !== undefined && c !== '=' && !isWs(c)) {
    const rest = /^[^=\s]*/u.exec(cursor.text.slice(cursor.pos))?.[0] ?? '';
    cursor.custom(
      `invalid character \`${c}\` in resource name '${name}${rest}' (allowed: ASCII letters, digits and \`/\`)`,
    );
  }
  cursor.skipWs();
  cursor.expectChar('=');
  cursor.skipWs();
}

/** `--resource name=VALUE` of `hq worker start` (whitespace tolerated around the name and `=`). */
export function parseResourceDefinition(text: string): ResourceDescriptorItem {
  return withContext('Invalid resource definition', text, () => {
    const cursor = new Cursor(text);
    cursor.skipWs();
    const name = parseResourceName(cursor);
    expectEqualsAfterName(cursor, name);
    const kind = parseKind(cursor);
    cursor.expectEnd();
    return { name, ...kind };
  });
}

function kindOf(item: ResourceDescriptorItem): ResourceDescriptorKind {
  switch (item.kind) {
    case 'list':
      return { kind: 'list', values: item.values };
    case 'groups':
      return { kind: 'groups', groups: item.groups };
    case 'range':
      return { kind: 'range', start: item.start, end: item.end };
    case 'sum':
      return { kind: 'sum', size: item.size };
  }
}

/** Number of groups of a kind (1 unless it is a `groups` kind). */
export function descriptorKindGroupCount(kind: ResourceDescriptorKind): number {
  return kind.kind === 'groups' ? kind.groups.length : 1;
}

/** Total size: the number of indices × 10000, or the size of a sum pool. */
export function descriptorKindSize(kind: ResourceDescriptorKind): ResourceAmount {
  switch (kind.kind) {
    case 'list':
      return amountFromUnits(kind.values.length);
    case 'groups':
      return amountFromUnits(kind.groups.reduce((total, group) => total + group.length, 0));
    case 'range':
      return kind.end >= kind.start ? amountFromUnits(kind.end - kind.start + 1) : 0;
    case 'sum':
      return kind.size;
  }
}

/** The size of every pool of a descriptor, by name (what the scheduler counts with). */
export function descriptorTotals(descriptor: ResourceDescriptor): Map<string, ResourceAmount> {
  const totals = new Map<string, ResourceAmount>();
  for (const item of descriptor.resources) {
    totals.set(item.name, descriptorKindSize(item));
  }
  return totals;
}

/** The labels of an indexed kind, by group (a list/range is one group; a sum pool has none). */
export function descriptorKindGroups(kind: ResourceDescriptorKind): string[][] {
  switch (kind.kind) {
    case 'list':
      return [kind.values];
    case 'groups':
      return kind.groups;
    case 'range': {
      const labels: string[] = [];
      for (let i = kind.start; i <= kind.end; i++) {
        labels.push(String(i));
      }
      return [labels];
    }
    case 'sum':
      return [];
  }
}

function parseCouplingGroup(
  text: string,
  resources: ResourceDescriptorItem[],
): { resourceIdx: number; groupIdx: number } {
  const trimmed = text.trim();
  if (!trimmed.endsWith(']')) {
    throw invalid(`Invalid coupling '${text.trim()}': Missing ']'`);
  }
  const inner = trimmed.slice(0, -1);
  const bracket = inner.indexOf('[');
  if (bracket < 0) {
    throw invalid(`Invalid coupling '${trimmed}': Missing '['`);
  }
  const name = inner.slice(0, bracket);
  const group = inner.slice(bracket + 1);
  const resourceIdx = resources.findIndex((r) => r.name === name);
  if (resourceIdx < 0) {
    throw invalid(`Invalid coupling '${trimmed}': Resource not found: ${name}`);
  }
  const groupIdx = parseRustUint(group, U8_MAX);
  if (groupIdx === undefined) {
    throw invalid(`Invalid coupling '${trimmed}': Invalid group index: ${group}`);
  }
  return { resourceIdx, groupIdx };
}

function compareCoupling(a: CouplingWeight, b: CouplingWeight): number {
  return (
    a.resource1Idx - b.resource1Idx ||
    a.group1Idx - b.group1Idx ||
    a.resource2Idx - b.resource2Idx ||
    a.group2Idx - b.group2Idx ||
    a.weight - b.weight
  );
}

/**
 * `--coupling "cpus[0]:gpus[0]=W,cpus[1]:gpus[1]"` against the resources sorted by name.
 * Each pair is normalized (lower resource index first) and the list sorted.
 */
export function parseResourceCoupling(
  text: string,
  resources: ResourceDescriptorItem[],
): CouplingWeight[] {
  const weights = text.split(',').map((part): CouplingWeight => {
    const s = part.trim();
    let pair = s;
    let weight = DEFAULT_COUPLING_WEIGHT;
    const eq = s.indexOf('=');
    if (eq >= 0) {
      pair = s.slice(0, eq);
      const ws = s.slice(eq + 1).trim();
      const parsed = parseRustUint(ws, U16_MAX);
      if (parsed === undefined) {
        throw invalid(`Invalid coupling '${s}': Invalid weight: ${ws}`);
      }
      weight = parsed;
    }
    const colon = pair.indexOf(':');
    if (colon < 0) {
      throw invalid(`Invalid coupling '${s}': Missing ':'`);
    }
    const left = parseCouplingGroup(pair.slice(0, colon), resources);
    const right = parseCouplingGroup(pair.slice(colon + 1), resources);
    const [first, second] = left.resourceIdx > right.resourceIdx ? [right, left] : [left, right];
    return {
      resource1Idx: first.resourceIdx,
      group1Idx: first.groupIdx,
      resource2Idx: second.resourceIdx,
      group2Idx: second.groupIdx,
      weight,
    };
  });
  return weights.sort(compareCoupling);
}

function validateKind(kind: ResourceDescriptorKind): boolean {
  switch (kind.kind) {
    case 'list':
      return hasUniqueElements(kind.values);
    case 'groups':
      return hasUniqueElements(kind.groups.flat());
    case 'range':
    case 'sum':
      return true;
  }
}

/** Checks a descriptor as upstream's `ResourceDescriptor::validate` (messages included). */
export function validateDescriptor(descriptor: ResourceDescriptor, needsCpus: boolean): void {
  const { resources } = descriptor;
  let hasCpus = false;
  resources.forEach((item, i) => {
    if (resources.slice(i + 1).some((other) => other.name === item.name)) {
      throw invalid(`Resource ${item.name} defined twice`);
    }
    const kind = kindOf(item);
    if (!validateKind(kind)) {
      throw invalid(
        `Invalid resource definition for ${item.name}: GenericError("Non unique indices")`,
      );
    }
    if (descriptorKindSize(kind) === 0) {
      throw invalid(`Resource ${item.name} is empty`);
    }
    if (item.name === CPU_RESOURCE_NAME) {
      hasCpus = true;
    }
  });
  if (!hasCpus && needsCpus) {
    throw invalid("Resource 'cpus' is missing");
  }
  const weights = descriptor.coupling.weights;
  for (let i = 1; i < weights.length; i++) {
    const a = weights[i - 1];
    const b = weights[i];
    if (a === undefined || b === undefined) {
      continue;
    }
    if (
      a.resource1Idx === b.resource1Idx &&
      a.group1Idx === b.group1Idx &&
      a.resource2Idx === b.resource2Idx &&
      a.group2Idx === b.group2Idx
    ) {
      throw invalid('Repeated coupling definition');
    }
    if (a.resource1Idx > b.resource1Idx || compareCoupling(a, b) >= 0) {
      throw invalid('Coupling is not normalized');
    }
  }
  for (const w of weights) {
    for (const [resourceIdx, groupIdx] of [
      [w.resource1Idx, w.group1Idx],
      [w.resource2Idx, w.group2Idx],
    ] as const) {
      const resource = resources[resourceIdx];
      if (resource === undefined) {
        throw invalid('Invalid resource');
      }
      const n = descriptorKindGroupCount(kindOf(resource));
      if (n === 1) {
        throw invalid(`Resource '${resource.name}' has only a single group`);
      }
      if (groupIdx >= n) {
        throw invalid(`Invalid group id ${groupIdx} for resource '${resource.name}'`);
      }
    }
  }
}

export type BuildDescriptorOptions = {
  /** The `--coupling` text, resolved against the resources after sorting. */
  coupling?: string;
  /** Require a `cpus` resource (a worker always has one). Default false. */
  needsCpus?: boolean;
};

/**
 * Sorts the items by name, resolves the coupling and validates everything
 * (`cpus` as a sum pool, duplicates, non-unique labels, empty pools, coupling).
 */
export function buildDescriptor(
  items: ResourceDescriptorItem[],
  options: BuildDescriptorOptions = {},
): ResourceDescriptor {
  const cpus = items.find((item) => item.name === CPU_RESOURCE_NAME);
  if (cpus?.kind === 'sum') {
    throw invalid(CPU_SUM_ERROR);
  }
  const resources = items.slice().sort((a, b) => compareNames(a.name, b.name));
  const weights =
    options.coupling === undefined ? [] : parseResourceCoupling(options.coupling, resources);
  const descriptor: ResourceDescriptor = { resources, coupling: { weights } };
  validateDescriptor(descriptor, options.needsCpus ?? false);
  return descriptor;
}

/** The size column of the summary: `10`, `4x5`, `1x1 1x2 1x3`, `1234` (sum). */
export function resourceSummaryKind(kind: ResourceDescriptorKind): string {
  switch (kind.kind) {
    case 'list':
      return String(kind.values.length);
    case 'groups': {
      if (kind.groups.length === 1) {
        return String(kind.groups[0]?.length ?? 0);
      }
      const counts = new Map<number, number>();
      for (const group of kind.groups) {
        counts.set(group.length, (counts.get(group.length) ?? 0) + 1);
      }
      return [...counts.entries()]
        .sort((a, b) => a[0] - b[0] || a[1] - b[1])
        .map(([size, count]) => `${count}x${size}`)
        .join(' ');
    }
    case 'range':
      return String(kind.end - kind.start + 1);
    case 'sum':
      return formatAmount(kind.size);
  }
}

/**
 * Summary of a worker's resources: `cpus 4x5; gpus 2; mem 4.12 GiB` (one line) or
 * `cpus: 4x5\ngpus: 2\nmem: 4.12 GiB` (multiline). Coupled resources get ` [coupled]`.
 */
export function resourcesSummary(descriptor: ResourceDescriptor, multiline: boolean): string {
  const coupled = new Set<number>();
  for (const w of descriptor.coupling.weights) {
    coupled.add(w.resource1Idx);
    coupled.add(w.resource2Idx);
  }
  return descriptor.resources
    .map((item, i) => {
      const value =
        item.name === MEM_RESOURCE_NAME && item.kind === 'sum'
          ? humanMemAmount(item.size)
          : resourceSummaryKind(kindOf(item));
      return `${item.name}${multiline ? ':' : ''} ${value}${coupled.has(i) ? ' [coupled]' : ''}`;
    })
    .join(multiline ? '\n' : '; ');
}

/** A kind as text: `[0,1]`, `[[0,1],[2,3]]`, `[5]` (one-element range), `range(0-7)`, `sum(1234)`. */
export function formatDescriptorKind(kind: ResourceDescriptorKind): string {
  switch (kind.kind) {
    case 'list':
      return `[${kind.values.join(',')}]`;
    case 'groups':
      return `[${kind.groups.map((g) => `[${g.join(',')}]`).join(',')}]`;
    case 'range':
      return kind.start === kind.end ? `[${kind.start}]` : `range(${kind.start}-${kind.end})`;
    case 'sum':
      return `sum(${formatAmount(kind.size)})`;
  }
}

/** The full description (`hq worker hwdetect`): one `name: kind` line per resource. */
export function resourcesFullDescribe(descriptor: ResourceDescriptor): string {
  return descriptor.resources
    .map((item) => `${item.name}: ${formatDescriptorKind(kindOf(item))}`)
    .join('\n');
}

/** Worker `configuration.resources` JSON (sum sizes as raw fixed point). */
export function descriptorToJson(descriptor: ResourceDescriptor): ResourceDescriptorJson {
  return {
    coupling: {
      weights: descriptor.coupling.weights.map((w) => ({
        resource1_idx: w.resource1Idx,
        group1_idx: w.group1Idx,
        resource2_idx: w.resource2Idx,
        group2_idx: w.group2Idx,
        weight: w.weight,
      })),
    },
    resources: descriptor.resources.map((item): ResourceDescriptorItemJson => {
      switch (item.kind) {
        case 'list':
          return { name: item.name, kind: 'list', values: [...item.values] };
        case 'groups':
          return { name: item.name, kind: 'groups', groups: item.groups.map((g) => [...g]) };
        case 'range':
          return { name: item.name, kind: 'range', start: item.start, end: item.end };
        case 'sum':
          return { name: item.name, kind: 'sum', size: item.size };
      }
    }),
  };
}

// ---------------------------------------------------------------------------------------------
// Task resource requests
// ---------------------------------------------------------------------------------------------

/** Longest first, so that `compact!` wins over `compact`. */
const POLICIES: readonly AllocationPolicy[] = ['compact!', 'compact', 'tight!', 'tight', 'scatter'];

function parseAllocRequestAt(cursor: Cursor): ResourceAllocRequest {
  if (cursor.ident() === 'all' && cursor.pos + 3 === cursor.text.length) {
    cursor.pos += 3;
    return { kind: 'all' };
  }
  cursor.skipWs();
  if (cursor.peek() === '-') {
    cursor.custom('amounts cannot be negative');
  }
  if (!isDigit(cursor.peek())) {
    cursor.fail('an amount or `all`');
  }
  const amount = cursor.amount();
  cursor.skipWs();
  let policy: AllocationPolicy = 'compact';
  if (!cursor.atEnd()) {
    const rest = cursor.text.slice(cursor.pos);
    const matched = POLICIES.find((p) => rest.startsWith(p));
    if (!isAsciiAlpha(cursor.peek())) {
      cursor.fail('an allocation policy or end of input');
    }
    if (matched === undefined) {
      const word = /^\S+/.exec(rest)?.[0] ?? rest;
      cursor.custom(
        `unknown allocation policy '${word}' (expected compact, compact!, tight, tight! or scatter)`,
      );
    }
    policy = matched;
    cursor.pos += matched.length;
    if (!cursor.atEnd()) {
      const word = /^\S+/.exec(rest)?.[0] ?? rest;
      if (!isWs(cursor.peek())) {
        cursor.custom(
          `unknown allocation policy '${word}' (expected compact, compact!, tight, tight! or scatter)`,
        );
      }
      cursor.fail('end of input');
    }
  }
  if (amount === 0) {
    cursor.custom('Zero resources cannot be requested');
  }
  return { kind: 'amount', amount, policy };
}

/** `--cpus` of `hq submit`: `4`, `4 compact`, `0.5 tight!`, `all` (policy defaults to compact). */
export function parseAllocRequest(text: string): ResourceAllocRequest {
  return withContext('Invalid resource request', text, () => {
    const cursor = new Cursor(text);
    const request = parseAllocRequestAt(cursor);
    cursor.expectEnd();
    return request;
  });
}

/** `--resource name=REQUEST` of `hq submit` (no whitespace before the name). */
export function parseResourceRequest(text: string): ResourceRequestEntry {
  return withContext('Invalid resource request', text, () => {
    const cursor = new Cursor(text);
    const resource = parseResourceName(cursor);
    expectEqualsAfterName(cursor, resource);
    const request = parseAllocRequestAt(cursor);
    cursor.expectEnd();
    return { resource, request };
  });
}

/** `1 compact`, `8 compact!`, `0.5 tight`, `all` (the `HQ_RESOURCE_REQUEST_<name>` value). */
export function formatAllocRequest(request: ResourceAllocRequest): string {
  if (request.kind === 'all') {
    return 'all';
  }
  return `${formatAmount(request.amount)} ${request.policy}`;
}

/** `{"Compact": 10000}`, `{"ForceCompact": N}`, `{"Tight": N}`, `{"ForceTight": N}`, `{"Scatter": N}`, `"All"`. */
export function allocRequestToJson(request: ResourceAllocRequest): AllocRequestJson {
  if (request.kind === 'all') {
    return 'All';
  }
  const n = request.amount;
  switch (request.policy) {
    case 'compact':
      return { Compact: n };
    case 'compact!':
      return { ForceCompact: n };
    case 'tight':
      return { Tight: n };
    case 'tight!':
      return { ForceTight: n };
    case 'scatter':
      return { Scatter: n };
  }
}

const JSON_POLICIES: Record<string, AllocationPolicy> = {
  Compact: 'compact',
  ForceCompact: 'compact!',
  Tight: 'tight',
  ForceTight: 'tight!',
  Scatter: 'scatter',
};

/** Inverse of {@link allocRequestToJson}. */
export function allocRequestFromJson(value: unknown): ResourceAllocRequest {
  if (value === 'All') {
    return { kind: 'all' };
  }
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const entries: [string, unknown][] = Object.entries(value as Record<string, unknown>);
    const [entry] = entries;
    if (entries.length === 1 && entry !== undefined) {
      const [key, amount] = entry;
      const policy = JSON_POLICIES[key];
      if (policy !== undefined && typeof amount === 'number' && Number.isSafeInteger(amount)) {
        return { kind: 'amount', amount, policy };
      }
    }
  }
  throw invalid(`Invalid allocation request JSON: ${JSON.stringify(value)}`);
}

/** `--weight`: a positive float, stored ×10000 (rounded). */
export function parseResourceWeight(text: string): ResourceAmount {
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text)) {
    throw invalid(`Invalid resource weight '${text}': expected a positive number`);
  }
  const value = Math.fround(Number(text));
  if (!(value > 0)) {
    throw invalid(`Invalid resource weight '${text}': Resource weight has to be positive number`);
  }
  if (!Number.isFinite(value)) {
    throw invalid(`Invalid resource weight '${text}': the weight is too large`);
  }
  return Math.min(U32_MAX, Math.round(Math.fround(value * FRACTIONS_PER_UNIT)));
}

/** One variant: `nodes: N`, or `name: request` lines sorted by name, plus `[weight: W]` if not 1. */
export function formatResourceRequest(request: ResourceRequest): string {
  if (request.nNodes > 0) {
    return `nodes: ${request.nNodes}`;
  }
  const lines = request.resources
    .slice()
    .sort((a, b) => compareNames(a.resource, b.resource))
    .map((entry) => `${entry.resource}: ${formatAllocRequest(entry.request)}`);
  let result = lines.join('\n');
  if (request.weight !== DEFAULT_RESOURCE_WEIGHT) {
    result += `\n[weight: ${formatF32(Math.fround(request.weight) / FRACTIONS_PER_UNIT)}]`;
  }
  return result;
}

/** The `Resources` row of `hq job info`: one variant as is, several as `# Variant i` blocks. */
export function formatResourceVariants(variants: ResourceRequest[]): string {
  const [only] = variants;
  if (variants.length === 1 && only !== undefined) {
    return formatResourceRequest(only);
  }
  return variants
    .map((variant, i) => `# Variant ${i + 1}\n${formatResourceRequest(variant)}`)
    .join('\n\n');
}

/** Checks variants as upstream (non-empty, at most 32, no zero amounts, no mixing multi-node). */
export function validateResourceVariants(variants: ResourceRequest[]): void {
  const [first] = variants;
  if (first === undefined) {
    throw invalid('Resource are empty');
  }
  if (variants.length > MAX_RESOURCE_VARIANTS) {
    throw invalid('Too many resource variants');
  }
  const multiNode = first.nNodes > 0;
  for (const variant of variants) {
    if (variant.resources.length === 0 && variant.nNodes === 0) {
      throw invalid('Resource request is empty');
    }
    for (const entry of variant.resources) {
      if (entry.request.kind === 'amount' && entry.request.amount === 0) {
        throw invalid('Zero resources cannot be requested');
      }
    }
    const names = variant.resources.map((entry) => entry.resource);
    if (!hasUniqueElements(names)) {
      throw invalid('Request are not sorted or unique');
    }
    if (multiNode !== variant.nNodes > 0) {
      throw invalid('Resources mixes multi-node and non-multi-node requests');
    }
  }
}

/**
 * A resource name as used in env var names (`HQ_RESOURCE_REQUEST_<x>`): every byte of its UTF-8
 * form outside `[A-Za-z0-9]` becomes `_` (so a non-ASCII char gives one `_` per byte).
 */
export function resourceEnvName(name: string): string {
  const encoder = new TextEncoder();
  let result = '';
  for (const ch of name) {
    if (isAsciiAlnum(ch)) {
      result += ch;
    } else {
      result += '_'.repeat(encoder.encode(ch).length);
    }
  }
  return result;
}
