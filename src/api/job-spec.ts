/**
 * The job an API client describes (the Python package through `hq api`, or the TypeScript
 * API), and its conversion into the server's task graph. Both APIs share these defaults, so a
 * job means the same whichever language built it:
 *
 * - stdout/stderr default to `%{CWD}/%{TASK_ID}.stdout|stderr`; `null` means no file; a stdio
 *   object without a path means the CLI's default (`%{CWD}/job-%{JOB_ID}/...`);
 * - a task without a `cwd` runs in the submit directory;
 * - a task without resource requests asks for one CPU; several requests are variants;
 * - `crashLimit` null or absent is the server's default of 5.
 *
 * Everything here arrives from a client process and is checked field by field; an error names
 * the task and the field.
 */
import { HqError } from '../common/errors.js';
import {
  CPU_RESOURCE_NAME,
  DEFAULT_RESOURCE_WEIGHT,
  FRACTIONS_PER_UNIT,
  MAX_RESOURCE_VARIANTS,
  amountFromFloat,
  compareNames,
  isValidResourceName,
  parseAllocRequest,
  type ResourceAllocRequest,
  type ResourceRequest,
} from '../common/resources.js';
import type { CrashLimit, GraphSubmit, StdioDef, TaskDesc } from '../transport/messages.js';

/** An amount: an integer is whole units, `{ f }` a float (f32, as upstream), a string the CLI grammar. */
export type ApiAmount = number | string | { f: number };

export interface ApiResourceRequest {
  /** Nodes of a multi-node task (0: a normal task). */
  nNodes?: number;
  /** Resource name to amount; `cpus` is one of them (1 when absent). */
  resources?: Record<string, ApiAmount>;
  /** The least time the task needs on a worker, in seconds. */
  minTime?: number | null;
}

export interface ApiStdio {
  /** null: the CLI's default path. */
  path: string | null;
  onClose?: 'none' | 'rm-if-finished';
}

export interface ApiTask {
  id: number;
  args: string[];
  cwd?: string | null;
  env?: Record<string, string>;
  /** Absent: the API default; null: no file. */
  stdout?: ApiStdio | null;
  stderr?: ApiStdio | null;
  /** Base64 of the task's stdin. */
  stdin?: string | null;
  deps?: number[];
  taskDir?: boolean;
  priority?: number;
  resources?: ApiResourceRequest[];
  crashLimit?: number | 'never-restart' | 'unlimited' | null;
}

export interface ApiJob {
  name?: string | null;
  /** Failed tasks after which the rest is canceled (null: no limit). */
  maxFails?: number | null;
  tasks: ApiTask[];
  /** Relative task paths are resolved against it. */
  submitDir: string;
}

export const API_DEFAULT_STDOUT = '%{CWD}/%{TASK_ID}.stdout';
export const API_DEFAULT_STDERR = '%{CWD}/%{TASK_ID}.stderr';
const CLI_DEFAULT_STDOUT = '%{CWD}/job-%{JOB_ID}/%{TASK_ID}.stdout';
const CLI_DEFAULT_STDERR = '%{CWD}/job-%{JOB_ID}/%{TASK_ID}.stderr';
const DEFAULT_CRASH_LIMIT = 5;
const U32_MAX = 0xffff_ffff;
const I32_MIN = -(2 ** 31);
const I32_MAX = 2 ** 31 - 1;

function invalid(where: string, message: string): HqError {
  return new HqError('HQ_INVALID_ARGUMENT', `Invalid job: ${where}: ${message}`);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function integer(value: unknown, min: number, max: number, where: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw invalid(where, `expected an integer from ${min} to ${max}, got ${JSON.stringify(value)}`);
  }
  return value;
}

function string(value: unknown, where: string): string {
  if (typeof value !== 'string') {
    throw invalid(where, `expected a string, got ${JSON.stringify(value)}`);
  }
  if (value.includes('\0')) {
    throw invalid(where, 'a string cannot contain a NUL character');
  }
  return value;
}

function stringMap(value: unknown, where: string): Record<string, string> {
  if (!isRecord(value)) {
    throw invalid(where, 'expected a map of strings');
  }
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value)) {
    if (k === '' || k.includes('=') || k.includes('\0')) {
      throw invalid(where, `invalid variable name ${JSON.stringify(k)}`);
    }
    out[k] = string(v, `${where}.${k}`);
  }
  return out;
}

function amount(value: unknown, where: string): ResourceAllocRequest {
  if (typeof value === 'number') {
    if (Number.isInteger(value)) {
      const units = integer(value, 0, U32_MAX, where);
      return { kind: 'amount', amount: units * FRACTIONS_PER_UNIT, policy: 'compact' };
    }
    return floatAmount(value, where);
  }
  if (isRecord(value) && typeof value['f'] === 'number') {
    return floatAmount(value['f'], where);
  }
  if (typeof value === 'string') {
    try {
      return parseAllocRequest(value);
    } catch (e) {
      throw invalid(where, e instanceof Error ? e.message : String(e));
    }
  }
  throw invalid(where, `expected a number or a string, got ${JSON.stringify(value)}`);
}

function floatAmount(value: number, where: string): ResourceAllocRequest {
  const a = amountFromFloat(value);
  if (
    !Number.isFinite(value) ||
    value < 0 ||
    !Number.isSafeInteger(a) ||
    a > U32_MAX * FRACTIONS_PER_UNIT
  ) {
    throw invalid(where, `resource amount ${value} is out of range`);
  }
  return { kind: 'amount', amount: a, policy: 'compact' };
}

function resourceRequest(value: unknown, where: string): ResourceRequest {
  if (!isRecord(value)) {
    throw invalid(where, 'expected a resource request');
  }
  const nNodes =
    value['nNodes'] === undefined ? 0 : integer(value['nNodes'], 0, U32_MAX, `${where}.nNodes`);
  const minTime = value['minTime'];
  let minTimeMs = 0;
  if (minTime !== undefined && minTime !== null) {
    if (typeof minTime !== 'number' || !Number.isFinite(minTime) || minTime < 0) {
      throw invalid(`${where}.minTime`, 'expected a non-negative number of seconds');
    }
    minTimeMs = Math.round(minTime * 1000);
  }
  const given = value['resources'] ?? {};
  if (!isRecord(given)) {
    throw invalid(`${where}.resources`, 'expected a map of resource amounts');
  }
  const entries = Object.entries(given).map(([name, v]) => {
    if (!isValidResourceName(name)) {
      throw invalid(`${where}.resources`, `invalid resource name ${JSON.stringify(name)}`);
    }
    return { resource: name, request: amount(v, `${where}.resources.${name}`) };
  });
  if (nNodes === 0 && !entries.some((e) => e.resource === CPU_RESOURCE_NAME)) {
    entries.push({
      resource: CPU_RESOURCE_NAME,
      request: { kind: 'amount', amount: FRACTIONS_PER_UNIT, policy: 'compact' },
    });
  }
  entries.sort((a, b) => compareNames(a.resource, b.resource));
  return { nNodes, minTimeMs, resources: entries, weight: DEFAULT_RESOURCE_WEIGHT };
}

function stdio(value: unknown, fallback: string, cliDefault: string, where: string): StdioDef {
  if (value === undefined) {
    return { kind: 'file', path: fallback, rmIfFinished: false };
  }
  if (value === null) {
    return { kind: 'null' };
  }
  if (!isRecord(value)) {
    throw invalid(where, 'expected {path, onClose} or null');
  }
  const p =
    value['path'] === null || value['path'] === undefined
      ? cliDefault
      : string(value['path'], `${where}.path`);
  const onClose = value['onClose'] ?? 'none';
  if (onClose !== 'none' && onClose !== 'rm-if-finished') {
    throw invalid(
      `${where}.onClose`,
      `expected "none" or "rm-if-finished", got ${JSON.stringify(onClose)}`,
    );
  }
  return { kind: 'file', path: p, rmIfFinished: onClose === 'rm-if-finished' };
}

function crashLimit(value: unknown, where: string): CrashLimit {
  if (value === undefined || value === null) {
    return DEFAULT_CRASH_LIMIT;
  }
  if (value === 'never-restart' || value === 'unlimited') {
    return value;
  }
  const n = integer(value, 0, 0xffff, where);
  if (n === 0) {
    throw invalid(where, 'a crash limit cannot be 0 (use "never-restart" or "unlimited")');
  }
  return n;
}

function taskDesc(t: Record<string, unknown>, submitDir: string, where: string): TaskDesc {
  if (!Array.isArray(t['args']) || t['args'].length === 0) {
    throw invalid(`${where}.args`, 'a task needs a program to run');
  }
  const args = t['args'].map((a, i) => string(a, `${where}.args[${i}]`));
  let stdin: Uint8Array | null = null;
  if (t['stdin'] !== undefined && t['stdin'] !== null) {
    const text = string(t['stdin'], `${where}.stdin`);
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text)) {
      throw invalid(`${where}.stdin`, 'expected base64');
    }
    stdin = new Uint8Array(Buffer.from(text, 'base64'));
  }
  const requests =
    t['resources'] === undefined || t['resources'] === null
      ? []
      : Array.isArray(t['resources'])
        ? t['resources'].map((r, i) => resourceRequest(r, `${where}.resources[${i}]`))
        : [resourceRequest(t['resources'], `${where}.resources`)];
  if (requests.length > MAX_RESOURCE_VARIANTS) {
    throw invalid(`${where}.resources`, `at most ${MAX_RESOURCE_VARIANTS} variants`);
  }
  return {
    program: {
      args,
      env: t['env'] === undefined ? {} : stringMap(t['env'], `${where}.env`),
      cwd:
        t['cwd'] === undefined || t['cwd'] === null ? submitDir : string(t['cwd'], `${where}.cwd`),
      stdout: stdio(t['stdout'], API_DEFAULT_STDOUT, CLI_DEFAULT_STDOUT, `${where}.stdout`),
      stderr: stdio(t['stderr'], API_DEFAULT_STDERR, CLI_DEFAULT_STDERR, `${where}.stderr`),
      stdin,
    },
    resources: requests.length > 0 ? requests : [resourceRequest({}, where)],
    timeLimitMs: null,
    priority:
      t['priority'] === undefined
        ? 0
        : integer(t['priority'], I32_MIN, I32_MAX, `${where}.priority`),
    crashLimit: crashLimit(t['crashLimit'], `${where}.crashLimit`),
    taskDir: t['taskDir'] === true,
    pinMode: null,
    streamPath: null,
  };
}

/** What `submit-graph` needs for `job` (checked as a whole: ids, dependencies, every field). */
export function toGraphSubmit(
  job: unknown,
  defaultName: string,
): { name: string; maxFails: number | null; graph: GraphSubmit } {
  if (!isRecord(job) || !Array.isArray(job['tasks'])) {
    throw invalid('job', 'expected {tasks, submitDir}');
  }
  if (job['tasks'].length === 0) {
    throw new HqError('HQ_INVALID_ARGUMENT', 'Submitted job must have at least a single task');
  }
  const submitDir = string(job['submitDir'], 'submitDir');
  const name =
    job['name'] === undefined || job['name'] === null ? defaultName : string(job['name'], 'name');
  const maxFails =
    job['maxFails'] === undefined || job['maxFails'] === null
      ? null
      : integer(job['maxFails'], 0, U32_MAX, 'maxFails');
  const ids = new Set<number>();
  const tasks = job['tasks'].map((raw, i) => {
    const where = `task ${i}`;
    if (!isRecord(raw)) {
      throw invalid(where, 'expected a task');
    }
    const id = integer(raw['id'], 0, U32_MAX, `${where}.id`);
    if (ids.has(id)) {
      throw new HqError('HQ_INVALID_ARGUMENT', 'Non unique IDs in submitted task graph');
    }
    ids.add(id);
    const deps = raw['deps'] === undefined ? [] : raw['deps'];
    if (!Array.isArray(deps)) {
      throw invalid(`${where}.deps`, 'expected a list of task ids');
    }
    return {
      id,
      deps: deps.map((d, j) => integer(d, 0, U32_MAX, `${where}.deps[${j}]`)),
      taskDesc: taskDesc(raw, submitDir, where),
    };
  });
  for (const t of tasks) {
    if (t.deps.some((d) => !ids.has(d) || d === t.id)) {
      throw new HqError('HQ_INVALID_ARGUMENT', 'Invalid dependency id');
    }
  }
  return { name, maxFails, graph: { tasks, submitDir } };
}
