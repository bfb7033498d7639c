/**
 * TOML job definition files (`hq job submit-file <PATH>`): parsing, validation and the task
 * descriptions they stand for. Pure: no I/O (the caller reads the file and passes its cwd).
 *
 * A file holds either several `[[task]]` tables (each with an optional `id` and `deps`, which
 * makes a task graph) or one `[array]` table (ids and/or entries, as `hq submit --array`). Every
 * table rejects keys it does not know. Schema errors carry upstream's wording (serde's style:
 * "missing field `command`", "invalid type: integer `5`, expected a string") prefixed with
 * "Deserialization error: " and followed by the key path where the problem is; task graph
 * errors (duplicate ids, cycles) carry upstream's wording unchanged.
 */
import { parse as parseToml, TomlDate, TomlError, type TomlTable, type TomlValue } from 'smol-toml';
import { HqError } from './errors.js';
import { parseHumantime } from './duration.js';
import { idRangesCount, parseIdRanges, type IdRange } from './id-set.js';
import {
  CPU_RESOURCE_NAME,
  DEFAULT_RESOURCE_WEIGHT,
  FRACTIONS_PER_UNIT,
  amountFromFloat,
  compareNames,
  parseAllocRequest,
  validateResourceVariants,
  type ResourceAllocRequest,
  type ResourceRequest,
  type ResourceRequestEntry,
} from './resources.js';
import type { CrashLimit, PinMode, StdioDef, TaskDesc } from '../transport/messages.js';

// ---------------------------------------------------------------------------------------------
// Public shapes
// ---------------------------------------------------------------------------------------------

export interface JobFileGraphTask {
  id: number;
  /** Ids of tasks of the same file this one waits for (duplicates removed, order kept). */
  deps: number[];
  taskDesc: TaskDesc;
}

export type JobFileBody =
  /** Topologically sorted: every task comes after all of its dependencies. */
  | { kind: 'graph'; tasks: JobFileGraphTask[] }
  /**
   * `ids` in the order written (null when the file gives only `entries`; upstream then numbers
   * the entries 0..n-1). `entries` is null when the file gives none (or an empty list); when
   * both are present they have the same count and the i-th id gets the i-th entry.
   */
  | { kind: 'array'; ids: IdRange[] | null; entries: string[] | null; taskDesc: TaskDesc };

export interface JobFile {
  /** `name`; "" when the file has none (as upstream). */
  name: string;
  maxFails: number | null;
  /** Top-level `stream` directory; tasks without explicit stdout/stderr then use `pipe`. */
  stream: string | null;
  body: JobFileBody;
}

// ---------------------------------------------------------------------------------------------
// Constants
// ---------------------------------------------------------------------------------------------

const DEFAULT_STDOUT = '%{CWD}/job-%{JOB_ID}/%{TASK_ID}.stdout';
const DEFAULT_STDERR = '%{CWD}/job-%{JOB_ID}/%{TASK_ID}.stderr';
const DEFAULT_CRASH_LIMIT = 5;

const U16_MAX = 0xffff;
const U32_MAX = 0xffff_ffff;
const I32_MIN = -(2 ** 31);
const I32_MAX = 2 ** 31 - 1;

const JOB_FIELDS = ['name', 'max_fails', 'task', 'array', 'stream', 'data_layer'] as const;
const REQUEST_FIELDS = ['n_nodes', 'time_request', 'resources', 'weight'] as const;
const STDIO_FIELDS = ['path', 'on_close'] as const;
const CONFIG_FIELDS = [
  'command',
  'env',
  'request',
  'stdout',
  'stderr',
  'cwd',
  'pin',
  'task_dir',
  'time_limit',
  'priority',
  'crash_limit',
  'stdin',
] as const;
const PIN_VARIANTS = ['none', 'taskset', 'omp'] as const;
const ON_CLOSE_VARIANTS = ['none', 'rm-if-finished'] as const;

const STDIO_EXPECTED =
  'a string containing file path or a structure with two attributes (`path` and `on_close`)';

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/** A schema error: serde-style `message` plus the key path (`task[1].request[0].weight`). */
class DecodeError extends Error {
  readonly path: string;

  constructor(message: string, path: string) {
    super(message);
    this.path = path;
  }
}

function deserializationError(message: string, path: string): HqError {
  const where = path === '' ? '' : ` (at \`${path}\`)`;
  return new HqError('HQ_INVALID_ARGUMENT', `Deserialization error: ${message}${where}`);
}

function genericError(message: string): HqError {
  return new HqError('HQ_INVALID_ARGUMENT', message);
}

function join(path: string, key: string): string {
  return path === '' ? key : `${path}.${key}`;
}

/** serde's `Unexpected` wording for a TOML value. */
function describe(value: TomlValue): string {
  if (typeof value === 'bigint') {
    return `integer \`${value}\``;
  }
  if (typeof value === 'number') {
    return `floating point \`${formatFloat(value)}\``;
  }
  if (typeof value === 'string') {
    return `string ${JSON.stringify(value)}`;
  }
  if (typeof value === 'boolean') {
    return `boolean \`${value}\``;
  }
  if (Array.isArray(value)) {
    return 'sequence';
  }
  if (value instanceof TomlDate) {
    return `datetime \`${value.toISOString()}\``;
  }
  return 'map';
}

/** Rust's float Display as serde shows it: always with a decimal point (`1.0`, `inf`, `NaN`). */
function formatFloat(value: number): string {
  if (Number.isNaN(value)) {
    return 'NaN';
  }
  if (!Number.isFinite(value)) {
    return value > 0 ? 'inf' : '-inf';
  }
  return Number.isInteger(value) ? value.toFixed(1) : String(value);
}

function invalidType(value: TomlValue, expected: string, path: string): DecodeError {
  return new DecodeError(`invalid type: ${describe(value)}, expected ${expected}`, path);
}

function oneOf(names: readonly string[]): string {
  const quoted = names.map((n) => `\`${n}\``);
  if (quoted.length === 1) {
    return `expected ${quoted[0]}`;
  }
  if (quoted.length === 2) {
    return `expected ${quoted[0]} or ${quoted[1]}`;
  }
  return `expected one of ${quoted.join(', ')}`;
}

function unknownField(key: string, expected: readonly string[] | null, path: string): DecodeError {
  const tail = expected === null ? '' : `, ${oneOf(expected)}`;
  return new DecodeError(`unknown field \`${key}\`${tail}`, path);
}

function missingField(key: string, path: string): DecodeError {
  return new DecodeError(`missing field \`${key}\``, path);
}

/** Rewraps an error of a helper parser (durations, ids, resources) at `path`. */
function rethrowAt(error: unknown, path: string): never {
  if (error instanceof HqError) {
    throw new DecodeError(error.message, path);
  }
  throw error;
}

// ---------------------------------------------------------------------------------------------
// Primitive decoders
// ---------------------------------------------------------------------------------------------

function isTable(value: TomlValue): value is TomlTable {
  return (
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    !(value instanceof TomlDate)
  );
}

function asTable(value: TomlValue, expected: string, path: string): TomlTable {
  if (!isTable(value)) {
    throw invalidType(value, expected, path);
  }
  return value;
}

function asArray(value: TomlValue, path: string): TomlValue[] {
  if (!Array.isArray(value)) {
    throw invalidType(value, 'a sequence', path);
  }
  return value;
}

function asString(value: TomlValue, path: string, expected = 'a string'): string {
  if (typeof value !== 'string') {
    throw invalidType(value, expected, path);
  }
  return value;
}

function asBool(value: TomlValue, path: string): boolean {
  if (typeof value !== 'boolean') {
    throw invalidType(value, 'a boolean', path);
  }
  return value;
}

function asInteger(value: TomlValue, min: number, max: number, type: string, path: string): number {
  if (typeof value !== 'bigint') {
    throw invalidType(value, type, path);
  }
  if (value < BigInt(min) || value > BigInt(max)) {
    throw new DecodeError(`invalid value: integer \`${value}\`, expected ${type}`, path);
  }
  return Number(value);
}

function asU32(value: TomlValue, path: string): number {
  return asInteger(value, 0, U32_MAX, 'u32', path);
}

/** serde's f32: integers and floats are both accepted. */
function asF32(value: TomlValue, path: string): number {
  if (typeof value === 'bigint') {
    return Math.fround(Number(value));
  }
  if (typeof value === 'number') {
    return Math.fround(value);
  }
  throw invalidType(value, 'f32', path);
}

function asStringList(value: TomlValue, path: string): string[] {
  return asArray(value, path).map((item, i) => asString(item, `${path}[${i}]`));
}

function asEnum<T extends string>(
  value: TomlValue,
  variants: readonly T[],
  name: string,
  path: string,
): T {
  if (typeof value !== 'string') {
    throw invalidType(value, `enum ${name}`, path);
  }
  const found = variants.find((v) => v === value);
  if (found === undefined) {
    throw new DecodeError(`unknown variant \`${value}\`, ${oneOf(variants)}`, path);
  }
  return found;
}

/** Rust's `str::parse::<u16>()` error kinds, as `{:?}` prints them. */
function parseU16Text(text: string): number | string {
  if (text === '') {
    return 'ParseIntError { kind: Empty }';
  }
  const digits = text.startsWith('+') ? text.slice(1) : text;
  if (!/^[0-9]+$/.test(digits)) {
    return 'ParseIntError { kind: InvalidDigit }';
  }
  const n = Number(digits);
  return n > U16_MAX ? 'ParseIntError { kind: PosOverflow }' : n;
}

const ZERO_CRASH_LIMIT = 'Crash limit cannot be 0. Use `never-restart` or `unlimited` instead.';

function decodeCrashLimit(value: TomlValue, path: string): CrashLimit {
  if (typeof value === 'bigint') {
    if (value < 0n || value > BigInt(U16_MAX)) {
      throw new DecodeError('out of range integral type conversion attempted', path);
    }
    if (value === 0n) {
      throw new DecodeError(ZERO_CRASH_LIMIT, path);
    }
    return Number(value);
  }
  if (typeof value === 'string') {
    if (value === 'never-restart' || value === 'unlimited') {
      return value;
    }
    const n = parseU16Text(value);
    if (typeof n === 'string') {
      throw new DecodeError(`Invalid crash limit: ${n}`, path);
    }
    if (n === 0) {
      throw new DecodeError(ZERO_CRASH_LIMIT, path);
    }
    return n;
  }
  throw invalidType(value, 'a number or string representing crash limit', path);
}

function decodeDuration(value: TomlValue, path: string): number {
  const text = asString(value, path);
  try {
    return parseHumantime(text);
  } catch (error) {
    return rethrowAt(error, path);
  }
}

// ---------------------------------------------------------------------------------------------
// Stdio
// ---------------------------------------------------------------------------------------------

function decodeStdio(value: TomlValue, path: string): StdioDef {
  if (typeof value === 'string') {
    return value === 'none' ? { kind: 'null' } : { kind: 'file', path: value, rmIfFinished: false };
  }
  if (!isTable(value)) {
    throw invalidType(value, STDIO_EXPECTED, path);
  }
  let filePath: string | null = null;
  let onClose: (typeof ON_CLOSE_VARIANTS)[number] | null = null;
  for (const [key, item] of Object.entries(value)) {
    const at = join(path, key);
    if (key === 'path') {
      filePath = asString(item, at, 'path string');
    } else if (key === 'on_close') {
      onClose = asEnum(item, ON_CLOSE_VARIANTS, 'FileOnCloseBehavior', at);
    } else {
      // Upstream ignores extra keys here; rejecting them keeps typos from going unnoticed.
      throw unknownField(key, STDIO_FIELDS, path);
    }
  }
  if (filePath === null) {
    throw missingField('path', path);
  }
  if (onClose === null) {
    throw missingField('on_close', path);
  }
  return { kind: 'file', path: filePath, rmIfFinished: onClose === 'rm-if-finished' };
}

// ---------------------------------------------------------------------------------------------
// Resource requests
// ---------------------------------------------------------------------------------------------

const MAX_AMOUNT = U32_MAX * FRACTIONS_PER_UNIT;

function decodeResourceAmount(value: TomlValue, path: string): ResourceAllocRequest {
  // Upstream tries, in order: a u32 (whole units), an f32 (rounded up to 4 decimals), a string.
  if (typeof value === 'bigint' && value >= 0n && value <= BigInt(U32_MAX)) {
    return { kind: 'amount', amount: Number(value) * FRACTIONS_PER_UNIT, policy: 'compact' };
  }
  if (typeof value === 'bigint' || typeof value === 'number') {
    const amount = amountFromFloat(Number(value));
    if (!Number.isSafeInteger(amount) || amount > MAX_AMOUNT) {
      throw new DecodeError(`resource amount ${describe(value)} is too large`, path);
    }
    return { kind: 'amount', amount, policy: 'compact' };
  }
  if (typeof value === 'string') {
    try {
      return parseAllocRequest(value);
    } catch (error) {
      return rethrowAt(error, path);
    }
  }
  throw new DecodeError('data did not match any variant of untagged enum PrimitiveType', path);
}

function decodeResources(value: TomlValue, path: string): ResourceRequestEntry[] {
  const table = asTable(value, 'a map', path);
  const entries: ResourceRequestEntry[] = [];
  for (const [name, item] of Object.entries(table)) {
    entries.push({ resource: name, request: decodeResourceAmount(item, join(path, name)) });
  }
  return entries.sort((a, b) => compareNames(a.resource, b.resource));
}

function decodeWeight(value: TomlValue, path: string): number {
  const weight = asF32(value, path);
  if (!(weight > 0)) {
    throw new DecodeError('Resource weight has to be positive number', path);
  }
  return Math.min(U32_MAX, Math.round(Math.fround(weight * FRACTIONS_PER_UNIT)));
}

function decodeRequest(value: TomlValue, path: string): ResourceRequest {
  const table = asTable(value, 'struct ResourceRequestDef', path);
  const request: ResourceRequest = {
    nNodes: 0,
    minTimeMs: 0,
    resources: [],
    weight: DEFAULT_RESOURCE_WEIGHT,
  };
  for (const [key, item] of Object.entries(table)) {
    const at = join(path, key);
    switch (key) {
      case 'n_nodes':
        request.nNodes = asU32(item, at);
        break;
      case 'time_request':
        request.minTimeMs = decodeDuration(item, at);
        break;
      case 'resources':
        request.resources = decodeResources(item, at);
        break;
      case 'weight':
        request.weight = decodeWeight(item, at);
        break;
      default:
        throw unknownField(key, REQUEST_FIELDS, path);
    }
  }
  return request;
}

function defaultRequest(): ResourceRequest {
  return {
    nNodes: 0,
    minTimeMs: 0,
    resources: [
      {
        resource: CPU_RESOURCE_NAME,
        request: { kind: 'amount', amount: FRACTIONS_PER_UNIT, policy: 'compact' },
      },
    ],
    weight: DEFAULT_RESOURCE_WEIGHT,
  };
}

// ---------------------------------------------------------------------------------------------
// Task configuration (shared by `[[task]]` and `[array]`)
// ---------------------------------------------------------------------------------------------

interface TaskConfig {
  command: string[] | null;
  env: Record<string, string>;
  requests: ResourceRequest[] | null;
  stdout: StdioDef | null;
  stderr: StdioDef | null;
  cwd: string | null;
  pin: PinMode | null;
  taskDir: boolean;
  timeLimitMs: number | null;
  priority: number;
  crashLimit: CrashLimit;
  stdin: Uint8Array | null;
}

function isConfigField(key: string): boolean {
  return (CONFIG_FIELDS as readonly string[]).includes(key);
}

function decodeEnv(value: TomlValue, path: string): Record<string, string> {
  const table = asTable(value, 'a map', path);
  // fromEntries defines own properties, so even a `__proto__` variable stays a plain entry.
  return Object.fromEntries(
    Object.entries(table).map(([key, item]) => [
      key,
      asString(item, join(path, key), 'a byte string'),
    ]),
  );
}

/** Decodes the shared fields of `table` (other keys are the caller's business). */
function decodeConfig(table: TomlTable, path: string): TaskConfig {
  const config: TaskConfig = {
    command: null,
    env: {},
    requests: null,
    stdout: null,
    stderr: null,
    cwd: null,
    pin: null,
    taskDir: false,
    timeLimitMs: null,
    priority: 0,
    crashLimit: DEFAULT_CRASH_LIMIT,
    stdin: null,
  };
  for (const [key, item] of Object.entries(table)) {
    const at = join(path, key);
    switch (key) {
      case 'command':
        config.command = asStringList(item, at);
        break;
      case 'env':
        config.env = decodeEnv(item, at);
        break;
      case 'request': {
        const list = asArray(item, at).map((r, i) => decodeRequest(r, `${at}[${i}]`));
        config.requests = list.length === 0 ? null : list;
        break;
      }
      case 'stdout':
        config.stdout = decodeStdio(item, at);
        break;
      case 'stderr':
        config.stderr = decodeStdio(item, at);
        break;
      case 'cwd':
        config.cwd = asString(item, at);
        break;
      case 'pin': {
        const pin = asEnum(item, PIN_VARIANTS, 'PinMode', at);
        config.pin = pin === 'none' ? null : pin;
        break;
      }
      case 'task_dir':
        config.taskDir = asBool(item, at);
        break;
      case 'time_limit':
        config.timeLimitMs = decodeDuration(item, at);
        break;
      case 'priority':
        config.priority = asInteger(item, I32_MIN, I32_MAX, 'i32', at);
        break;
      case 'crash_limit':
        config.crashLimit = decodeCrashLimit(item, at);
        break;
      case 'stdin':
        config.stdin = new TextEncoder().encode(asString(item, at));
        break;
      default:
        break;
    }
  }
  if (config.command === null) {
    throw missingField('command', path);
  }
  if (config.command.length === 0) {
    // Upstream accepts this and the task fails when it starts; nothing could ever run it.
    throw new DecodeError('the command must not be empty', join(path, 'command'));
  }
  if (config.requests !== null) {
    try {
      validateResourceVariants(config.requests);
    } catch (error) {
      rethrowAt(error, join(path, 'request'));
    }
  }
  return config;
}

function rejectUnknown(table: TomlTable, ownFields: readonly string[], path: string): void {
  for (const key of Object.keys(table)) {
    if (!ownFields.includes(key) && !isConfigField(key)) {
      // Upstream's flattened structs name the key but list no alternatives.
      throw unknownField(key, null, path);
    }
  }
}

function buildTaskDesc(config: TaskConfig, clientCwd: string, stream: string | null): TaskDesc {
  const fallback = (def: StdioDef | null, defaultPath: string): StdioDef => {
    if (def !== null) {
      return def;
    }
    return stream !== null
      ? { kind: 'pipe' }
      : { kind: 'file', path: defaultPath, rmIfFinished: false };
  };
  return {
    program: {
      args: config.command ?? [],
      env: config.env,
      cwd: config.cwd ?? clientCwd,
      stdout: fallback(config.stdout, DEFAULT_STDOUT),
      stderr: fallback(config.stderr, DEFAULT_STDERR),
      stdin: config.stdin,
    },
    resources: config.requests ?? [defaultRequest()],
    timeLimitMs: config.timeLimitMs,
    priority: config.priority,
    crashLimit: config.crashLimit,
    taskDir: config.taskDir,
    pinMode: config.pin,
    streamPath: stream,
  };
}

// ---------------------------------------------------------------------------------------------
// `[[task]]` and `[array]`
// ---------------------------------------------------------------------------------------------

interface TaskDef {
  id: number | null;
  deps: number[];
  config: TaskConfig;
}

interface ArrayDef {
  ids: IdRange[] | null;
  entries: string[];
  config: TaskConfig;
}

function decodeTask(value: TomlValue, path: string): TaskDef {
  const table = asTable(value, 'struct TaskDef', path);
  // The task's own fields are read first, then the flattened configuration, then the leftovers.
  let id: number | null = null;
  let deps: number[] = [];
  for (const [key, item] of Object.entries(table)) {
    const at = join(path, key);
    if (key === 'id') {
      id = asU32(item, at);
    } else if (key === 'deps') {
      deps = asArray(item, at).map((d, i) => asU32(d, `${at}[${i}]`));
    }
  }
  const config = decodeConfig(table, path);
  rejectUnknown(table, ['id', 'deps'], path);
  return { id, deps, config };
}

function decodeArray(value: TomlValue, path: string): ArrayDef {
  const table = asTable(value, 'struct ArrayDef', path);
  let ids: IdRange[] | null = null;
  let entries: string[] = [];
  for (const [key, item] of Object.entries(table)) {
    const at = join(path, key);
    if (key === 'ids') {
      const text = asString(item, at);
      try {
        ids = parseIdRanges(text);
      } catch (error) {
        rethrowAt(error, at);
      }
    } else if (key === 'entries') {
      entries = asStringList(item, at);
    }
  }
  const config = decodeConfig(table, path);
  rejectUnknown(table, ['ids', 'entries'], path);
  return { ids, entries, config };
}

// ---------------------------------------------------------------------------------------------
// Task graph
// ---------------------------------------------------------------------------------------------

/**
 * Gives ids to tasks without one (after the largest explicit id, so a file of id-less tasks
 * starts at 1), rejects duplicate ids and orders the tasks so that dependencies come first.
 * Tasks without deps keep their file order; the others follow as soon as they become ready.
 */
function buildGraph(
  tasks: TaskDef[],
  clientCwd: string,
  stream: string | null,
): JobFileGraphTask[] {
  let maxId = 0;
  for (const task of tasks) {
    if (task.id !== null && task.id > maxId) {
      maxId = task.id;
    }
  }
  const ready: JobFileGraphTask[] = [];
  const waiting = new Map<number, JobFileGraphTask>();
  const inDegree = new Map<number, number>();
  const consumers = new Map<number, number[]>();
  for (const def of tasks) {
    let id = def.id;
    if (id === null) {
      if (maxId >= U32_MAX) {
        throw genericError('Task ids of the job file exceed the 4-byte unsigned integer range');
      }
      maxId += 1;
      id = maxId;
    }
    if (inDegree.has(id)) {
      throw genericError(`Task ${id} is defined multiple times`);
    }
    inDegree.set(id, def.deps.length);
    const task: JobFileGraphTask = {
      id,
      deps: [...new Set(def.deps)],
      taskDesc: buildTaskDesc(def.config, clientCwd, stream),
    };
    if (def.deps.length === 0) {
      ready.push(task);
    } else {
      for (const dep of def.deps) {
        const list = consumers.get(dep);
        if (list === undefined) {
          consumers.set(dep, [id]);
        } else {
          list.push(id);
        }
      }
      waiting.set(id, task);
    }
  }
  for (let i = 0; i < ready.length; i++) {
    const producer = ready[i];
    if (producer === undefined) {
      continue;
    }
    for (const consumer of consumers.get(producer.id) ?? []) {
      const left = (inDegree.get(consumer) ?? 0) - 1;
      inDegree.set(consumer, left);
      const task = waiting.get(consumer);
      if (left === 0 && task !== undefined) {
        waiting.delete(consumer);
        ready.push(task);
      }
    }
  }
  const [stuck] = waiting.values();
  if (stuck !== undefined) {
    throw genericError(
      `Task ${stuck.id} is part of dependency cycle or has an invalid dependencies`,
    );
  }
  return ready;
}

// ---------------------------------------------------------------------------------------------
// Entry point
// ---------------------------------------------------------------------------------------------

function parseDocument(text: string): TomlTable {
  try {
    return parseToml(text, { integersAsBigInt: true, unsafeKeyBehaviour: 'keep' });
  } catch (error) {
    if (error instanceof TomlError) {
      const firstLine = error.message.split('\n')[0] ?? '';
      const detail = firstLine.replace(/^Invalid TOML document:\s*/, '');
      throw new HqError(
        'HQ_INVALID_ARGUMENT',
        `Deserialization error: TOML parse error at line ${error.line}, column ${error.column}: ${detail}`,
      );
    }
    throw error;
  }
}

function decodeJobFile(text: string, clientCwd: string): JobFile {
  const root = parseDocument(text);
  let name = '';
  let maxFails: number | null = null;
  let stream: string | null = null;
  let tasks: TaskDef[] = [];
  let array: ArrayDef | null = null;
  for (const [key, item] of Object.entries(root)) {
    switch (key) {
      case 'name':
        name = asString(item, key);
        break;
      case 'max_fails':
        maxFails = asU32(item, key);
        break;
      case 'task':
        tasks = asArray(item, key).map((t, i) => decodeTask(t, `task[${i}]`));
        break;
      case 'array':
        array = decodeArray(item, key);
        break;
      case 'stream':
        stream = asString(item, key, 'path string');
        break;
      case 'data_layer':
        asBool(item, key);
        break;
      default:
        throw unknownField(key, JOB_FIELDS, '');
    }
  }

  if (tasks.length === 0 && array === null) {
    throw new DecodeError('No tasks defined', '');
  }
  if (array !== null) {
    if (tasks.length > 0) {
      throw new DecodeError('Definition of array job and individual task cannot be mixed', '');
    }
    if (array.ids === null && array.entries.length === 0) {
      throw new DecodeError("One of attributes of array must be defined: 'ids', 'entries'", '');
    }
    if (
      array.ids !== null &&
      array.entries.length > 0 &&
      idRangesCount(array.ids) !== array.entries.length
    ) {
      throw new DecodeError("Items 'ids' and 'entries' does not match", '');
    }
    return {
      name,
      maxFails,
      stream,
      body: {
        kind: 'array',
        ids: array.ids,
        entries: array.entries.length === 0 ? null : array.entries,
        taskDesc: buildTaskDesc(array.config, clientCwd, stream),
      },
    };
  }
  return {
    name,
    maxFails,
    stream,
    body: { kind: 'graph', tasks: buildGraph(tasks, clientCwd, stream) },
  };
}

/**
 * Parses and validates a TOML job file. `clientCwd` is the default `cwd` of the tasks.
 * Throws HqError('HQ_INVALID_ARGUMENT', ...) with a one-line message.
 */
export function parseJobFile(text: string, clientCwd: string): JobFile {
  try {
    return decodeJobFile(text, clientCwd);
  } catch (error) {
    if (error instanceof DecodeError) {
      throw deserializationError(error.message, error.path);
    }
    throw error;
  }
}
