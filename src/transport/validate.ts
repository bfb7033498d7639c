/**
 * Checks decoded frames at the trust boundary. A frame that does not match the protocol is
 * refused with HqError('HQ_PROTOCOL') naming what is wrong; handlers then trust the types.
 */
import { HqError, errorMessage } from '../common/errors.js';
import {
  isValidResourceName,
  validateDescriptor,
  type ResourceDescriptor,
} from '../common/resources.js';
import type {
  ClientOp,
  ClientRequest,
  OverviewTask,
  TaskUpdate,
  WorkerToServer,
} from './messages.js';

type Obj = Record<string, unknown>;

/**
 * A peer's string as it appears in a refusal (which the server logs): escaped and cut short,
 * so a newline in an op name cannot forge log lines and a huge one cannot flood the log.
 */
export function peerText(value: string): string {
  const s = value.length > 64 ? `${value.slice(0, 64)}…` : value;
  return `'${JSON.stringify(s).slice(1, -1)}'`;
}

function fail(what: string): never {
  throw new HqError('HQ_PROTOCOL', `invalid message: ${what}`);
}

function obj(value: unknown, what: string): Obj {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    fail(`${what} is not an object`);
  }
  return value as Obj;
}

function int(o: Obj, key: string): number {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) {
    fail(`${key} is not a non-negative integer`);
  }
  return v;
}

/** More CPU ids than any node has: a list longer than this is not an overview. */
const MAX_OVERVIEW_CPUS = 65_536;

function isId(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0;
}

/** An overview's running tasks (a worker's message or a journal's event: both untrusted). */
export function isOverviewTasks(value: unknown): value is OverviewTask[] {
  return (
    Array.isArray(value) &&
    value.every(
      (t) =>
        Array.isArray(t) &&
        t.length === 3 &&
        isId(t[0]) &&
        isId(t[1]) &&
        Array.isArray(t[2]) &&
        t[2].length <= MAX_OVERVIEW_CPUS &&
        (t[2] as unknown[]).every(isId),
    )
  );
}

function str(o: Obj, key: string): string {
  const v = o[key];
  if (typeof v !== 'string') {
    fail(`${key} is not a string`);
  }
  return v;
}

function selector(o: Obj): void {
  const s = obj(o['selector'], 'selector');
  if (s['kind'] === 'all' || s['kind'] === 'last') {
    return;
  }
  if (s['kind'] !== 'ids' || !Array.isArray(s['ids'])) {
    fail('selector is malformed');
  }
  for (const r of s['ids'] as unknown[]) {
    const range = obj(r, 'selector range');
    int(range, 'start');
    int(range, 'count');
    int(range, 'step');
  }
}

const EMPTY_OPS = new Set<ClientOp>([
  'journal-flush',
  'journal-prune',
  'server-info',
  'server-stop',
  'debug-dump',
  'job-list',
  'worker-list',
  'alloc-list',
]);
const QUEUE_ID_OPS = new Set<ClientOp>(['alloc-info', 'alloc-pause', 'alloc-resume']);
const SELECTOR_OPS = new Set<ClientOp>([
  'job-info',
  'job-cancel',
  'wait-jobs',
  'worker-info',
  'worker-stop',
]);

function arraySubmit(value: unknown): void {
  const a = obj(value, 'array');
  if (!Array.isArray(a['ids'])) {
    fail('array.ids is not a list');
  }
  for (const r of a['ids'] as unknown[]) {
    const range = obj(r, 'array.ids range');
    int(range, 'start');
    int(range, 'count');
    int(range, 'step');
  }
  bool(a, 'autoIds');
  str(a, 'submitDir');
  taskDesc(a['taskDesc']);
  const entries = a['entries'];
  if (entries !== null) {
    strArray(entries, 'entries');
  }
}

function bool(o: Obj, key: string): void {
  if (typeof o[key] !== 'boolean') {
    fail(`${key} is not a boolean`);
  }
}

/** A duration in milliseconds: durations parse to fractions of one (`1500us`). */
function ms(o: Obj, key: string): void {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
    fail(`${key} is not a duration`);
  }
}

/** Null, or a non-negative integer. */
function optInt(o: Obj, key: string): void {
  if (o[key] !== null) {
    int(o, key);
  }
}

function stdio(value: unknown, what: string): void {
  const s = obj(value, what);
  if (s['kind'] === 'file') {
    str(s, 'path');
    bool(s, 'rmIfFinished');
  } else if (s['kind'] !== 'null' && s['kind'] !== 'pipe') {
    fail(`${what}.kind is not file, null or pipe`);
  }
}

/**
 * Task ids are 32-bit, as upstream's (array ids are checked against it at submit): the server
 * keys tasks as job * 2^32 + task, so a larger graph task id would share a key with a task of
 * the next job.
 */
const MAX_TASK_ID = 0xffff_ffff;

const POLICIES = new Set(['compact', 'compact!', 'tight', 'tight!', 'scatter']);

function resourceVariant(value: unknown): void {
  const v = obj(value, 'resource request');
  int(v, 'nNodes');
  ms(v, 'minTimeMs');
  int(v, 'weight');
  if (!Array.isArray(v['resources'])) {
    fail('resource request resources is not a list');
  }
  for (const raw of v['resources'] as unknown[]) {
    const entry = obj(raw, 'resource request entry');
    str(entry, 'resource');
    const request = obj(entry['request'], 'resource request amount');
    if (request['kind'] === 'amount') {
      int(request, 'amount');
      if (!POLICIES.has(request['policy'] as string)) {
        fail('resource request policy is unknown');
      }
    } else if (request['kind'] !== 'all') {
      fail('resource request kind is not amount or all');
    }
  }
}

/**
 * Every field of a task description: the server stores it in its state and journal as it
 * is (a malformed one used to be half applied before something tripped over it).
 */
function taskDesc(value: unknown): void {
  const desc = obj(value, 'taskDesc');
  const program = obj(desc['program'], 'program');
  if (!Array.isArray(program['args']) || program['args'].length === 0) {
    fail('program.args is empty');
  }
  if (!(program['args'] as unknown[]).every((x) => typeof x === 'string')) {
    fail('program.args must be strings');
  }
  str(program, 'cwd');
  const env = obj(program['env'], 'program.env');
  if (!Object.values(env).every((v) => typeof v === 'string')) {
    fail('program.env values must be strings');
  }
  stdio(program['stdout'], 'program.stdout');
  stdio(program['stderr'], 'program.stderr');
  if (program['stdin'] !== null && !(program['stdin'] instanceof Uint8Array)) {
    fail('program.stdin is not bytes');
  }
  if (!Array.isArray(desc['resources'])) {
    fail('resources is not a list');
  }
  for (const variant of desc['resources'] as unknown[]) {
    resourceVariant(variant);
  }
  if (desc['timeLimitMs'] !== null) {
    ms(desc, 'timeLimitMs');
  }
  if (!Number.isSafeInteger(desc['priority'])) {
    fail('priority is not an integer');
  }
  const crashLimit = desc['crashLimit'];
  if (crashLimit !== 'never-restart' && crashLimit !== 'unlimited') {
    int(desc, 'crashLimit');
  }
  bool(desc, 'taskDir');
  if (desc['pinMode'] !== null && desc['pinMode'] !== 'taskset' && desc['pinMode'] !== 'omp') {
    fail('pinMode is not taskset or omp');
  }
  optStr(desc, 'streamPath');
}

function optStr(o: Obj, key: string): void {
  if (o[key] !== null && typeof o[key] !== 'string') {
    fail(`${key} is not a string`);
  }
}

function strList(o: Obj, key: string): void {
  const v = o[key];
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) {
    fail(`${key} is not a list of strings`);
  }
}

function queueParams(value: unknown): void {
  const p = obj(value, 'params');
  if (p['manager'] !== 'pbs' && p['manager'] !== 'slurm') {
    fail('params.manager is not pbs or slurm');
  }
  optStr(p, 'name');
  if (int(p, 'backlog') < 1) {
    fail('backlog has to be at least 1');
  }
  if (int(p, 'maxWorkersPerAlloc') < 1) {
    fail('maxWorkersPerAlloc has to be at least 1');
  }
  if (p['maxWorkerCount'] !== null) {
    int(p, 'maxWorkerCount');
  }
  if (p['timeLimitMs'] !== null && int(p, 'timeLimitMs') < 1) {
    fail('timeLimitMs has to be positive');
  }
  const u = p['minUtilization'];
  if (typeof u !== 'number' || !(u >= 0 && u <= 1)) {
    fail('minUtilization is not between 0 and 1');
  }
  strList(p, 'additionalArgs');
  strList(p, 'workerArgs');
  if (p['idleTimeoutMs'] !== null) {
    int(p, 'idleTimeoutMs');
  }
  optStr(p, 'workerStartCmd');
  optStr(p, 'workerStopCmd');
  optStr(p, 'workerWrapCmd');
  if (p['cliResources'] !== null) {
    const r = obj(p['cliResources'], 'cliResources');
    if (!Array.isArray(r['resources'])) {
      fail('cliResources.resources is not a list');
    }
  }
}

export function parseClientRequest(raw: unknown): ClientRequest {
  const o = obj(raw, 'request');
  const op = str(o, 'op') as ClientOp;
  int(o, 'reqId');
  if (EMPTY_OPS.has(op)) {
    return o as ClientRequest;
  }
  if (SELECTOR_OPS.has(op)) {
    selector(o);
    if (op === 'job-info' && typeof o['withTasks'] !== 'boolean' && o['withTasks'] !== 'summary') {
      fail('withTasks is not a boolean or summary');
    }
    if (op === 'job-cancel') {
      optStr(o, 'reason');
    }
    if (op === 'wait-jobs') {
      bool(o, 'withoutClose');
      if (o['notify'] !== undefined) {
        bool(o, 'notify');
      }
    }
    return o as ClientRequest;
  }
  if (QUEUE_ID_OPS.has(op)) {
    int(o, 'queueId');
    return o as ClientRequest;
  }
  if (op === 'alloc-remove') {
    int(o, 'queueId');
    if (typeof o['force'] !== 'boolean') {
      fail('force is not a boolean');
    }
    return o as ClientRequest;
  }
  if (op === 'alloc-add' || op === 'alloc-dry-run') {
    queueParams(o['params']);
    if (op === 'alloc-add' && typeof o['dryRun'] !== 'boolean') {
      fail('dryRun is not a boolean');
    }
    return o as ClientRequest;
  }
  if (op === 'alloc-allocation') {
    str(o, 'allocationId');
    return o as ClientRequest;
  }
  if (op === 'job-open') {
    str(o, 'name');
    optInt(o, 'maxFails');
    return o as ClientRequest;
  }
  if (op === 'job-close') {
    selector(o);
    return o as ClientRequest;
  }
  if (op === 'job-forget') {
    selector(o);
    strList(o, 'states');
    return o as ClientRequest;
  }
  if (op === 'task-explain') {
    selector(o);
    int(o, 'taskId');
    return o as ClientRequest;
  }
  if (op === 'submit-graph') {
    str(o, 'name');
    optInt(o, 'jobId');
    optInt(o, 'maxFails');
    const graph = obj(o['graph'], 'graph');
    str(graph, 'submitDir');
    if (!Array.isArray(graph['tasks']) || graph['tasks'].length === 0) {
      fail('graph.tasks is empty');
    }
    for (const t of graph['tasks'] as unknown[]) {
      const task = obj(t, 'graph task');
      if (int(task, 'id') > MAX_TASK_ID) {
        fail('graph task id is larger than 4294967295');
      }
      if (
        !Array.isArray(task['deps']) ||
        !(task['deps'] as unknown[]).every(
          (d) => Number.isInteger(d) && (d as number) >= 0 && (d as number) <= MAX_TASK_ID,
        )
      ) {
        fail('graph task deps is not a list of task ids');
      }
      taskDesc(task['taskDesc']);
    }
    return o as ClientRequest;
  }
  if (op === 'submit') {
    str(o, 'name');
    optInt(o, 'jobId');
    optInt(o, 'maxFails');
    arraySubmit(o['array']);
    return o as ClientRequest;
  }
  if (op === 'journal-stream') {
    const mode = str(o, 'mode');
    if (mode !== 'past' && mode !== 'past-live' && mode !== 'live') {
      fail(`unknown stream mode ${peerText(mode)}`);
    }
    if (o['filter'] !== undefined) {
      int(o, 'filter');
    }
    if (o['overviews'] !== undefined && typeof o['overviews'] !== 'boolean') {
      fail('overviews is not a boolean');
    }
    if (o['jobs'] !== undefined && o['jobs'] !== null) {
      if (!Array.isArray(o['jobs']) || !o['jobs'].every((j) => Number.isInteger(j))) {
        fail('jobs is not a list of ids');
      }
    }
    return o as ClientRequest;
  }
  fail(`unknown request ${peerText(op)}`);
}

function taskUpdate(value: unknown): TaskUpdate {
  const u = obj(value, 'update');
  int(u, 'jobId');
  int(u, 'taskId');
  int(u, 'instance');
  const state = str(u, 'state');
  if (state === 'failed') {
    str(u, 'error');
  } else if (state !== 'running' && state !== 'finished') {
    fail(`unknown task state ${peerText(state)}`);
  }
  return u as unknown as TaskUpdate;
}

/**
 * Names a worker declares (its hostname, its resources, its manager's job id) are in every row
 * of `hq worker list`, and lost workers stay listed: one of 70,000 characters made every row
 * that wide, and the table of all workers too large to build.
 */
const MAX_NAME_LENGTH = 255;

function shortName(o: Obj, key: string, what: string): string {
  const s = str(o, key);
  if (s.length > MAX_NAME_LENGTH) {
    fail(`${what} is longer than ${MAX_NAME_LENGTH} characters`);
  }
  return s;
}

function strArray(value: unknown, what: string): void {
  if (!Array.isArray(value) || !value.every((x) => typeof x === 'string')) {
    fail(`${what} is not a list of strings`);
  }
}

/** Everything a worker declares about itself, down to each resource: it reaches every listing. */
function resourceDescriptor(value: unknown): void {
  const d = obj(value, 'resources');
  if (!Array.isArray(d['resources'])) {
    fail('resources.resources is not a list');
  }
  for (const raw of d['resources'] as unknown[]) {
    const item = obj(raw, 'resource');
    const name = shortName(item, 'name', 'resource name');
    if (!isValidResourceName(name)) {
      fail(`resource name ${peerText(name)} is invalid`);
    }
    switch (item['kind']) {
      case 'list':
        strArray(item['values'], `resource ${name} values`);
        break;
      case 'groups':
        if (!Array.isArray(item['groups'])) {
          fail(`resource ${name} groups is not a list`);
        }
        for (const g of item['groups'] as unknown[]) {
          strArray(g, `resource ${name} group`);
        }
        break;
      case 'range':
        if (int(item, 'end') < int(item, 'start')) {
          fail(`resource ${name} range ends before it starts`);
        }
        break;
      case 'sum':
        int(item, 'size');
        break;
      default:
        fail(`resource ${name} has an unknown kind`);
    }
  }
  const coupling = obj(d['coupling'], 'coupling');
  if (!Array.isArray(coupling['weights'])) {
    fail('coupling.weights is not a list');
  }
  for (const raw of coupling['weights'] as unknown[]) {
    const w = obj(raw, 'coupling weight');
    for (const key of ['resource1Idx', 'group1Idx', 'resource2Idx', 'group2Idx', 'weight']) {
      int(w, key);
    }
  }
  try {
    validateDescriptor(d as unknown as ResourceDescriptor, true);
  } catch (e) {
    fail(`resources: ${errorMessage(e)}`);
  }
}

function workerConfiguration(value: unknown): void {
  const c = obj(value, 'configuration');
  resourceDescriptor(c['resources']);
  for (const key of ['hostname', 'listenAddress', 'workDir', 'group']) {
    str(c, key);
  }
  shortName(c, 'hostname', 'hostname');
  // The server logs the hostname and every client lists it: one line, no terminal escapes.
  if (/[\u0000-\u001f\u007f]/.test(c['hostname'] as string)) {
    fail('hostname contains control characters');
  }
  if (int(c, 'heartbeatIntervalMs') < 1) {
    fail('heartbeatIntervalMs has to be positive');
  }
  optInt(c, 'idleTimeoutMs');
  optInt(c, 'timeLimitMs');
  optInt(c, 'overviewIntervalMs');
  int(c, 'pid');
  if (c['onServerLost'] !== 'stop' && c['onServerLost'] !== 'finish-running') {
    fail('onServerLost is not stop or finish-running');
  }
  const u = c['minUtilization'];
  if (typeof u !== 'number' || !(u >= 0 && u <= 1)) {
    fail('minUtilization is not between 0 and 1');
  }
  if (c['manager'] !== null) {
    const m = obj(c['manager'], 'manager');
    if (m['kind'] !== 'PBS' && m['kind'] !== 'SLURM') {
      fail('manager.kind is not PBS or SLURM');
    }
    shortName(m, 'jobId', 'manager.jobId');
  }
}

export function parseWorkerMessage(raw: unknown): WorkerToServer {
  const o = obj(raw, 'message');
  const op = str(o, 'op');
  switch (op) {
    case 'register': {
      int(o, 'protocol');
      str(o, 'version');
      workerConfiguration(o['configuration']);
      return o as WorkerToServer;
    }
    case 'heartbeat':
      return { op: 'heartbeat' };
    case 'task-updates': {
      if (!Array.isArray(o['updates'])) {
        fail('updates is not a list');
      }
      return { op: 'task-updates', updates: (o['updates'] as unknown[]).map(taskUpdate) };
    }
    case 'notify': {
      int(o, 'jobId');
      int(o, 'taskId');
      const message = str(o, 'message');
      if (Buffer.byteLength(message) > 1024) {
        fail('notification message is longer than 1024 bytes');
      }
      return { op: 'notify', jobId: o['jobId'] as number, taskId: o['taskId'] as number, message };
    }
    case 'overview': {
      const hw = o['hwState'];
      if (hw !== null) {
        const state = obj(hw, 'hwState');
        const cpu = obj(state['cpu_usage'], 'cpu_usage');
        if (!Array.isArray(cpu['cpu_per_core_percent_usage'])) {
          fail('cpu_per_core_percent_usage is not a list');
        }
        obj(state['memory_usage'], 'memory_usage');
        obj(state['network_usage'], 'network_usage');
        int(state, 'timestamp');
      }
      if (o['tasks'] !== undefined && !isOverviewTasks(o['tasks'])) {
        fail('tasks is not a list of [job, task, [cpu ids]]');
      }
      return o as WorkerToServer;
    }
    case 'stopping': {
      const reason = str(o, 'reason');
      if (reason !== 'idle-timeout' && reason !== 'time-limit' && reason !== 'stopped') {
        fail(`unknown stop reason ${peerText(reason)}`);
      }
      return { op: 'stopping', reason };
    }
    default:
      fail(`unknown worker message ${peerText(op)}`);
  }
}
