/**
 * Case generation for the protocol fuzzer (protocol-fuzz.ts): a small seeded PRNG, random
 * msgpack values, valid message templates taken from the shapes in src/transport/messages.ts,
 * and mutators. Nothing here touches the network.
 *
 * Every case is generated from its own PRNG, seeded from (seed, port, case index) alone, so a
 * case can be replayed without replaying the ones before it. Inside a case, frames are drawn
 * in order from that PRNG; the only input from outside is whether the worker connection has
 * registered yet, which is itself decided by earlier frames of the same case.
 */
import { Packr } from 'msgpackr';

import { PROTOCOL_VERSION } from '../../src/transport/messages.js';

export type Port = 'client' | 'worker';

export const CATEGORIES = [
  'plaintext',
  'wrong-key',
  'random-bytes',
  'truncated',
  'oversized',
  'msgpack-shape',
  'mutated',
  'wrong-order',
  'valid',
] as const;
export type Category = (typeof CATEGORIES)[number];

/**
 * What the server must do with a frame: `close` the connection, keep it `open` (answer a
 * request, accept a worker message), or either (`any`, e.g. a mutation that may still be valid).
 */
export type Expect = 'close' | 'open' | 'any';

export interface FuzzFrame {
  category: Category;
  bytes: Buffer;
  expect: Expect;
  /** Short description for failure messages. */
  note: string;
  /** After these bytes the fuzzer ends its side of the stream (a frame cut short). */
  hangUp?: boolean;
}

/** The largest frame the server accepts (src/transport/framing.ts); kept here as a literal on
 * purpose: the fuzzer checks the server against the documented limit, not against itself. */
export const MAX_FRAME_BYTES = 512 * 1024 * 1024;

// ---- PRNG ------------------------------------------------------------------------------------

/** 32-bit avalanche mix (murmur3's finaliser) of several words: the seed of one case. */
export function mixSeed(...parts: number[]): number {
  let h = 0x9e3779b9;
  for (const p of parts) {
    // Seeds up to 2^53 are split into two words so no bit of them is lost.
    for (const word of [p >>> 0, Math.floor(p / 2 ** 32) >>> 0]) {
      h = Math.imul(h ^ word, 0x85ebca6b);
      h ^= h >>> 13;
      h = Math.imul(h, 0xc2b2ae35);
      h ^= h >>> 16;
    }
  }
  return h >>> 0;
}

/** mulberry32: tiny, fast, good enough to pick fuzz cases, and trivially reproducible. */
export class Rng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** An integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    const item = items[this.int(items.length)];
    if (item === undefined) {
      throw new Error('pick from an empty list');
    }
    return item;
  }

  /** Picks a key by weight. */
  weighted<K extends string>(weights: Readonly<Record<K, number>>): K {
    const entries = Object.entries(weights) as [K, number][];
    let total = 0;
    for (const [, w] of entries) {
      total += w;
    }
    let r = this.next() * total;
    for (const [k, w] of entries) {
      r -= w;
      if (r < 0) {
        return k;
      }
    }
    return entries[entries.length - 1]![0];
  }

  bytes(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) {
      out[i] = this.int(256);
    }
    return out;
  }

  /** A length skewed towards small values, up to `max`. */
  length(max: number): number {
    const r = this.next();
    if (r < 0.4) {
      return this.int(Math.min(16, max) + 1);
    }
    if (r < 0.85) {
      return this.int(Math.min(256, max) + 1);
    }
    return this.int(max + 1);
  }
}

/** The PRNG of one case: depends only on (seed, port, index). */
export function caseRng(seed: number, port: Port, index: number): Rng {
  return new Rng(mixSeed(seed, port === 'client' ? 1 : 2, index));
}

// ---- encoding --------------------------------------------------------------------------------

// The same options as the server's codec: plain maps, no records (framing.ts).
const packr = new Packr({ useRecords: false, moreTypes: false });

export function header(length: number): Buffer {
  const h = Buffer.alloc(4);
  h.writeUInt32BE(length >>> 0, 0);
  return h;
}

export function rawFrame(body: Buffer): Buffer {
  return Buffer.concat([header(body.length), body]);
}

export function frameOf(value: unknown): Buffer {
  return rawFrame(packr.pack(value));
}

// ---- values ----------------------------------------------------------------------------------

/** Integers at and around every limit the protocol or JavaScript has (u32, i32, 2^53). */
const INTERESTING_NUMBERS: readonly number[] = [
  0,
  1,
  2,
  7,
  -1,
  -7,
  255,
  2 ** 31 - 1,
  2 ** 31,
  2 ** 32 - 1,
  2 ** 32,
  2 ** 53 - 1,
  2 ** 53 + 2,
  -(2 ** 31),
  -(2 ** 53),
  0.5,
  -0.5,
  1e300,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  Number.NEGATIVE_INFINITY,
  -0,
];

const INTERESTING_STRINGS: readonly string[] = [
  '',
  ' ',
  '0',
  '-1',
  'null',
  'undefined',
  'true',
  '\u0000',
  '\n\t',
  '%{TASK_ID}',
  '%{',
  '../../../../etc/passwd',
  '/',
  'ž🎉\u202e',
  '\ud800',
  'cpus',
  'all',
  'last',
  'ids',
];

/** Keys and values that mean something to the server, so random maps hit real code paths. */
const VOCABULARY_KEYS: readonly string[] = [
  'op',
  'reqId',
  'selector',
  'kind',
  'ids',
  'start',
  'count',
  'step',
  'jobId',
  'taskId',
  'name',
  'maxFails',
  'array',
  'graph',
  'tasks',
  'deps',
  'taskDesc',
  'program',
  'args',
  'env',
  'cwd',
  'resources',
  'withTasks',
  'mode',
  'filter',
  'jobs',
  'updates',
  'instance',
  'state',
  'configuration',
  'protocol',
  'version',
  'message',
  'hwState',
  'reason',
  '__proto__',
  'constructor',
  'toString',
  'hasOwnProperty',
];

/**
 * Client request names the fuzzer may send. Left out on purpose: `server-stop` (the one
 * request that legitimately ends the server, which must keep serving) and `alloc-add` /
 * `alloc-dry-run` (they run the system's sbatch/qsub, a side effect outside the server).
 */
export const CLIENT_OPS: readonly string[] = [
  'server-info',
  'debug-dump',
  'submit',
  'submit-graph',
  'task-explain',
  'job-open',
  'job-close',
  'job-forget',
  'job-list',
  'job-info',
  'job-cancel',
  'wait-jobs',
  'worker-list',
  'worker-info',
  'worker-stop',
  'alloc-list',
  'alloc-info',
  'alloc-allocation',
  'alloc-remove',
  'alloc-pause',
  'alloc-resume',
  'journal-stream',
  'journal-flush',
  'journal-prune',
];
const WORKER_OPS: readonly string[] = [
  'register',
  'heartbeat',
  'task-updates',
  'stopping',
  'notify',
  'overview',
];
const SERVER_OPS: readonly string[] = [
  'response',
  'event',
  'events',
  'registered',
  'compute',
  'cancel',
  'reservation',
  'overview-interval',
  'stop',
];
const ALL_OPS: readonly string[] = [...CLIENT_OPS, ...WORKER_OPS, ...SERVER_OPS, 'drop-tables'];

/** A short printable form of a decoded value; safe for maps with a `toString` key. */
export function describeValue(v: unknown): string {
  if (typeof v === 'string') {
    return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  }
  if (
    v === null ||
    v === undefined ||
    typeof v === 'number' ||
    typeof v === 'boolean' ||
    typeof v === 'bigint'
  ) {
    return String(v);
  }
  return Array.isArray(v) ? 'a list' : v instanceof Uint8Array ? 'bytes' : 'a map';
}

/** A request the fuzzer must never produce, even by mutation (see CLIENT_OPS). */
export function isForbiddenRequest(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) {
    return false;
  }
  const op = (value as Record<string, unknown>)['op'];
  return op === 'server-stop' || op === 'alloc-add' || op === 'alloc-dry-run';
}

/**
 * Sets an own key, whatever its name: a plain assignment to `__proto__` would replace the
 * object's prototype instead of adding a key that goes on the wire.
 */
function setKey(o: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true });
}

function randomString(rng: Rng): string {
  const r = rng.next();
  if (r < 0.35) {
    return rng.pick(INTERESTING_STRINGS);
  }
  if (r < 0.6) {
    return rng.pick(VOCABULARY_KEYS);
  }
  if (r < 0.7) {
    return rng.pick(ALL_OPS);
  }
  if (r < 0.97) {
    let s = '';
    const n = rng.length(40);
    for (let i = 0; i < n; i++) {
      s += String.fromCharCode(rng.chance(0.9) ? rng.range(0x20, 0x7e) : rng.range(0, 0xffff));
    }
    return s;
  }
  // Long strings: past every inline limit, well under the frame limit.
  return 'x'.repeat(rng.pick([1025, 4096, 70_000]));
}

function randomNumber(rng: Rng): number {
  const r = rng.next();
  if (r < 0.45) {
    return rng.pick(INTERESTING_NUMBERS);
  }
  if (r < 0.85) {
    return rng.int(100);
  }
  return rng.chance(0.5) ? rng.int(2 ** 32) : (rng.next() - 0.5) * 2 ** rng.int(64);
}

/** Any msgpack value: scalars of every type, arrays and maps up to `depth` levels. */
export function randomValue(rng: Rng, depth = 3): unknown {
  const kind = rng.weighted({
    nil: 2,
    bool: 2,
    number: 5,
    string: 5,
    binary: 1,
    array: depth > 0 ? 3 : 0,
    map: depth > 0 ? 4 : 0,
    intKeyMap: depth > 0 ? 0.5 : 0,
  });
  switch (kind) {
    case 'nil':
      return null;
    case 'bool':
      return rng.chance(0.5);
    case 'number':
      return randomNumber(rng);
    case 'string':
      return randomString(rng);
    case 'binary':
      return rng.bytes(rng.length(64));
    case 'array': {
      const n = rng.chance(0.02) ? rng.pick([1000, 20_000]) : rng.int(6);
      const out: unknown[] = [];
      for (let i = 0; i < n; i++) {
        out.push(n > 50 ? rng.int(10) : randomValue(rng, depth - 1));
      }
      return out;
    }
    case 'map': {
      const out: Record<string, unknown> = {};
      const n = rng.int(7);
      for (let i = 0; i < n; i++) {
        setKey(
          out,
          rng.chance(0.7) ? rng.pick(VOCABULARY_KEYS) : randomString(rng),
          randomValue(rng, depth - 1),
        );
      }
      return out;
    }
    case 'intKeyMap': {
      // msgpack allows keys of any type; the server decodes maps as objects.
      const out = new Map<unknown, unknown>();
      const n = rng.range(1, 4);
      for (let i = 0; i < n; i++) {
        out.set(rng.chance(0.5) ? randomNumber(rng) : randomValue(rng, 0), randomValue(rng, 0));
      }
      return out;
    }
  }
}

// ---- valid messages --------------------------------------------------------------------------

function selector(rng: Rng): unknown {
  const r = rng.next();
  if (r < 0.2) {
    return { kind: 'all' };
  }
  if (r < 0.35) {
    return { kind: 'last' };
  }
  const ids: unknown[] = [];
  const n = rng.range(1, 3);
  for (let i = 0; i < n; i++) {
    ids.push({ start: rng.int(30), count: rng.range(1, 4), step: rng.range(1, 3) });
  }
  return { kind: 'ids', ids };
}

function taskDesc(rng: Rng): Record<string, unknown> {
  return {
    program: {
      args: rng.chance(0.8) ? ['true'] : ['bash', '-c', 'exit 0'],
      env: rng.chance(0.7) ? {} : { FUZZ: 'x' },
      cwd: '%{SUBMIT_DIR}',
      // No output files: these tasks may reach a (fake) worker but must not write anything.
      stdout: { kind: 'null' },
      stderr: { kind: 'null' },
      stdin: null,
    },
    resources: [
      {
        nNodes: 0,
        minTimeMs: 0,
        resources: [
          {
            resource: 'cpus',
            request: { kind: 'amount', amount: 10_000, policy: 'compact' },
          },
        ],
        weight: 10_000,
      },
    ],
    timeLimitMs: rng.chance(0.8) ? null : rng.range(1, 100_000),
    priority: rng.range(-3, 3),
    crashLimit: rng.pick([5, 1, 'never-restart', 'unlimited']),
    taskDir: false,
    pinMode: null,
    streamPath: null,
  };
}

const JOB_STATES = ['waiting', 'running', 'finished', 'failed', 'canceled', 'aborted', 'opened'];

/** A client request that passes validation (its answer may still be an error, e.g. no such job). */
export function validClientRequest(rng: Rng, reqId: number): Record<string, unknown> {
  const op = rng.weighted({
    'job-list': 6,
    // Answered with every worker the server ever had, and each fuzz connection adds one: kept
    // rare so the run does not slow down as it goes (`worker-info all` lists them too).
    'worker-list': 0.5,
    'server-info': 3,
    'alloc-list': 3,
    'debug-dump': 2,
    'journal-flush': 2,
    'journal-prune': 1,
    'job-info': 8,
    'worker-info': 3,
    'task-explain': 4,
    'job-cancel': 3,
    'job-close': 3,
    'job-forget': 3,
    'job-open': 2,
    submit: 5,
    'submit-graph': 3,
    'wait-jobs': 3,
    'journal-stream': 3,
    'worker-stop': 3,
    'alloc-info': 2,
    'alloc-pause': 1,
    'alloc-resume': 1,
    'alloc-remove': 1,
    'alloc-allocation': 1,
  });
  const base = { op, reqId };
  switch (op) {
    case 'job-list':
    case 'worker-list':
    case 'server-info':
    case 'alloc-list':
    case 'debug-dump':
    case 'journal-flush':
    case 'journal-prune':
      return base;
    case 'job-info':
      return { ...base, selector: selector(rng), withTasks: rng.pick([true, false, 'summary']) };
    case 'worker-info':
    case 'worker-stop':
    case 'job-close':
      return { ...base, selector: selector(rng) };
    case 'task-explain':
      return { ...base, selector: selector(rng), taskId: rng.int(5) };
    case 'job-cancel':
      return { ...base, selector: selector(rng), reason: rng.chance(0.5) ? null : 'fuzz' };
    case 'job-forget':
      return {
        ...base,
        selector: selector(rng),
        states: JOB_STATES.filter(() => rng.chance(0.5)),
      };
    case 'job-open':
      return { ...base, name: `fuzz-open-${rng.int(100)}`, maxFails: null };
    case 'submit': {
      const autoIds = rng.chance(0.3);
      const count = rng.range(1, 3);
      return {
        ...base,
        jobId: rng.chance(0.85) ? null : rng.range(1, 30),
        name: `fuzz-${rng.int(100)}`,
        maxFails: rng.chance(0.8) ? null : rng.int(3),
        array: {
          ids: autoIds ? [] : [{ start: rng.int(10), count, step: 1 }],
          autoIds,
          entries: autoIds && rng.chance(0.5) ? ['a', 'b'] : null,
          taskDesc: taskDesc(rng),
          submitDir: '/tmp',
        },
      };
    }
    case 'submit-graph':
      return {
        ...base,
        jobId: null,
        name: `fuzz-graph-${rng.int(100)}`,
        maxFails: null,
        graph: {
          tasks: [
            { id: 0, deps: [], taskDesc: taskDesc(rng) },
            { id: 1, deps: [0], taskDesc: taskDesc(rng) },
          ],
          submitDir: '/tmp',
        },
      };
    case 'wait-jobs':
      return {
        ...base,
        selector: selector(rng),
        withoutClose: rng.chance(0.5),
        ...(rng.chance(0.5) ? { notify: rng.chance(0.5) } : {}),
      };
    case 'journal-stream':
      return {
        ...base,
        // `past` and `past-live` send the whole history: rare, it grows with every fuzz worker.
        mode: rng.weighted({ past: 1, live: 6, 'past-live': 1 }),
        ...(rng.chance(0.5) ? { filter: rng.int(32) } : {}),
        ...(rng.chance(0.3) ? { jobs: rng.chance(0.3) ? null : [rng.int(10)] } : {}),
        ...(rng.chance(0.3) ? { overviews: rng.chance(0.5) } : {}),
      };
    case 'alloc-info':
    case 'alloc-pause':
    case 'alloc-resume':
      return { ...base, queueId: rng.int(5) };
    case 'alloc-remove':
      return { ...base, queueId: rng.int(5), force: rng.chance(0.5) };
    case 'alloc-allocation':
      return { ...base, allocationId: String(rng.int(1000)) };
  }
}

export function workerConfiguration(rng: Rng, name: string): Record<string, unknown> {
  const cpus = rng.range(0, 3);
  const resources: unknown[] = [{ name: 'cpus', kind: 'range', start: 0, end: cpus }];
  if (rng.chance(0.3)) {
    resources.push({ name: 'gpus', kind: 'list', values: ['0', '1'] });
  }
  if (rng.chance(0.2)) {
    resources.push({ name: 'mem', kind: 'sum', size: 10_000 * rng.range(1, 1000) });
  }
  return {
    resources: { resources, coupling: { weights: [] } },
    hostname: name,
    listenAddress: `${name}:0`,
    workDir: '/tmp/hq-fuzz-unused',
    group: rng.chance(0.8) ? 'default' : 'fuzz',
    // Long enough that a fuzz worker is never dropped for missing heartbeats mid-case.
    heartbeatIntervalMs: 60_000,
    idleTimeoutMs: null,
    timeLimitMs: null,
    onServerLost: rng.pick(['stop', 'finish-running']),
    minUtilization: 0,
    overviewIntervalMs: null,
    manager: null,
    pid: rng.range(2, 99_999),
  };
}

export function registerMessage(rng: Rng, version: string, name: string): Record<string, unknown> {
  return {
    op: 'register',
    protocol: PROTOCOL_VERSION,
    version,
    configuration: workerConfiguration(rng, name),
  };
}

/** A message a registered worker may send (the server accepts it and keeps the connection). */
export function validWorkerMessage(rng: Rng): Record<string, unknown> {
  const op = rng.weighted({
    heartbeat: 4,
    'task-updates': 4,
    notify: 2,
    overview: 2,
    stopping: 0.5,
  });
  switch (op) {
    case 'heartbeat':
      return { op };
    case 'task-updates': {
      const updates: unknown[] = [];
      const n = rng.int(5);
      for (let i = 0; i < n; i++) {
        const state = rng.pick(['running', 'finished', 'failed']);
        updates.push({
          jobId: rng.int(30),
          taskId: rng.int(4),
          instance: rng.int(3),
          state,
          // A fixed epoch: generated frames must not depend on the clock.
          at: 1_700_000_000_000 + rng.int(1_000_000),
          ...(state === 'failed' ? { error: 'fuzz' } : {}),
        });
      }
      return { op, updates };
    }
    case 'notify':
      return {
        op,
        jobId: rng.int(30),
        taskId: rng.int(4),
        message: randomString(rng).slice(0, 1000),
      };
    case 'overview':
      return {
        op,
        hwState: rng.chance(0.3)
          ? null
          : {
              cpu_usage: { cpu_per_core_percent_usage: [rng.int(100), rng.int(100)] },
              memory_usage: { total: 1024, free: rng.int(1024) },
              network_usage: { rx_bytes: rng.int(1e6), tx_bytes: rng.int(1e6) },
              timestamp: 1_700_000_000 + rng.int(1_000_000),
            },
      };
    case 'stopping':
      return { op, reason: rng.pick(['idle-timeout', 'time-limit', 'stopped']) };
  }
}

// ---- mutations -------------------------------------------------------------------------------

type Container = Record<string, unknown> | unknown[];

function isContainer(v: unknown): v is Container {
  return typeof v === 'object' && v !== null && !Buffer.isBuffer(v) && !(v instanceof Map);
}

/** Every container in `root` with the path to it, so a mutation can pick one uniformly. */
function containers(root: Container): { node: Container; path: string }[] {
  const out: { node: Container; path: string }[] = [];
  const stack: { node: Container; path: string }[] = [{ node: root, path: '$' }];
  while (stack.length > 0 && out.length < 500) {
    const item = stack.pop()!;
    out.push(item);
    for (const [k, v] of Object.entries(item.node)) {
      if (isContainer(v)) {
        stack.push({ node: v, path: `${item.path}.${k}` });
      }
    }
  }
  return out;
}

/** A value of another type than `old` (or an edge value of the same one). */
function replacement(rng: Rng, old: unknown): unknown {
  const r = rng.next();
  if (r < 0.25 && typeof old === 'number') {
    return rng.pick(INTERESTING_NUMBERS);
  }
  if (r < 0.35 && typeof old === 'string') {
    return randomString(rng);
  }
  if (r < 0.45 && Array.isArray(old)) {
    // Empty, or the same element many times (fewer when it is a whole object: frames stay small).
    const many = isContainer(old[0]) ? 50 : 5000;
    return rng.chance(0.5) || old.length === 0 ? [] : new Array<unknown>(many).fill(old[0]);
  }
  return randomValue(rng, 2);
}

/**
 * Changes `message` in place 1-3 times: a field's value or type, a removed field, an added
 * field, another op. Returns what was done, for failure messages.
 */
export function mutate(rng: Rng, message: Record<string, unknown>, ops: readonly string[]): string {
  const done: string[] = [];
  const n = rng.range(1, 3);
  for (let i = 0; i < n; i++) {
    const all = containers(message);
    const { node, path } = rng.pick(all);
    const keys = Object.keys(node);
    const action = rng.weighted({
      replace: keys.length > 0 ? 6 : 0,
      remove: keys.length > 0 ? 2 : 0,
      add: 2,
      op: 1,
    });
    if (action === 'op') {
      const op = rng.pick(ops);
      message['op'] = op;
      done.push(`op=${op}`);
      continue;
    }
    if (Array.isArray(node)) {
      const index = rng.int(node.length + 1);
      if (action === 'remove') {
        node.splice(index, 1);
        done.push(`removed ${path}[${index}]`);
      } else {
        node[index] = replacement(rng, node[index]);
        done.push(`${action} ${path}[${index}]`);
      }
      continue;
    }
    if (action === 'add') {
      const key = rng.chance(0.8) ? rng.pick(VOCABULARY_KEYS) : randomString(rng);
      setKey(node, key, randomValue(rng, 2));
      done.push(`added ${path}.${key}`);
      continue;
    }
    const key = rng.pick(keys);
    if (action === 'remove') {
      delete node[key];
      done.push(`removed ${path}.${key}`);
    } else {
      setKey(node, key, replacement(rng, node[key]));
      done.push(`replaced ${path}.${key}`);
    }
  }
  return done.join(', ');
}

// ---- frames ----------------------------------------------------------------------------------

/** A frame whose body is random bytes, or bytes crafted to stress the msgpack decoder. */
function randomBytesFrame(rng: Rng): FuzzFrame {
  const variant = rng.weighted({ random: 6, declaredHuge: 2, deep: 1, empty: 0.5, c1: 0.5 });
  let body: Buffer;
  switch (variant) {
    case 'random':
      body = rng.bytes(rng.length(4096));
      break;
    case 'declaredHuge': {
      // A str/bin/array/map/ext header declaring billions of items, followed by a few bytes.
      const type = rng.pick([0xdb, 0xc6, 0xdd, 0xdf, 0xc9, 0xda, 0xdc, 0xde]);
      const size = type === 0xda || type === 0xdc || type === 0xde ? 2 : 4;
      const h = Buffer.alloc(1 + size);
      h[0] = type;
      if (size === 2) {
        h.writeUInt16BE(0xffff, 1);
      } else {
        h.writeUInt32BE(rng.chance(0.5) ? 0xffffffff : rng.int(2 ** 32), 1);
      }
      body = Buffer.concat([h, rng.bytes(rng.length(64))]);
      break;
    }
    case 'deep':
      // Nested one-element arrays: deep enough to overflow a recursive decoder's stack.
      body = Buffer.concat([
        Buffer.alloc(rng.pick([1000, 100_000, 1_000_000]), 0x91),
        Buffer.from([0xc0]),
      ]);
      break;
    case 'empty':
      body = Buffer.alloc(0);
      break;
    case 'c1':
      body = Buffer.from([0xc1]);
      break;
  }
  // Random bytes almost never form a request; `close` is the only right answer.
  return { category: 'random-bytes', bytes: rawFrame(body), expect: 'close', note: variant };
}

/** A frame cut short, then the fuzzer hangs up. */
function truncatedFrame(rng: Rng, whole: Buffer): FuzzFrame {
  const cut = whole.length <= 1 ? 0 : rng.int(whole.length - 1) + 1;
  const partial = rng.chance(0.2)
    ? whole.subarray(0, rng.range(1, 3)) // part of the length prefix only
    : whole.subarray(0, Math.max(4, cut));
  return {
    category: 'truncated',
    bytes: Buffer.from(partial),
    expect: 'any',
    note: `${partial.length} of ${whole.length} bytes`,
    hangUp: true,
  };
}

function oversizedFrame(rng: Rng): FuzzFrame {
  if (rng.chance(0.65)) {
    // Over the limit: the server must close at once, without waiting for the body.
    const size = rng.chance(0.3)
      ? rng.pick([MAX_FRAME_BYTES + 1, 0xffffffff, 0x80000000])
      : MAX_FRAME_BYTES + 1 + rng.int(0xffffffff - MAX_FRAME_BYTES - 1);
    return {
      category: 'oversized',
      bytes: Buffer.concat([header(size), rng.bytes(rng.length(64))]),
      expect: 'close',
      note: `length prefix ${size}`,
    };
  }
  // Huge but allowed: the server must only buffer what actually arrives.
  const size = rng.range(1 << 20, MAX_FRAME_BYTES);
  return {
    category: 'oversized',
    bytes: Buffer.concat([header(size), rng.bytes(rng.length(4096))]),
    expect: 'any',
    note: `length prefix ${size} (within the limit), then hang-up`,
    hangUp: true,
  };
}

function shapeFrame(rng: Rng): FuzzFrame {
  let value: unknown;
  if (rng.chance(0.6)) {
    // Mostly maps with an `op`: they get past the first checks.
    const o: Record<string, unknown> = { op: rng.pick(ALL_OPS) };
    if (rng.chance(0.6)) {
      o['reqId'] = rng.chance(0.7) ? rng.int(1000) : randomValue(rng, 0);
    }
    const n = rng.int(5);
    for (let i = 0; i < n; i++) {
      setKey(o, rng.pick(VOCABULARY_KEYS), randomValue(rng, 2));
    }
    value = o;
  } else {
    value = randomValue(rng, 3);
  }
  if (isForbiddenRequest(value)) {
    (value as Record<string, unknown>)['op'] = 'job-list';
  }
  return { category: 'msgpack-shape', bytes: frameOf(value), expect: 'any', note: 'random shape' };
}

export interface ClientSession {
  /** The next frame of this connection. */
  next(): FuzzFrame;
}

export interface WorkerSession {
  /** The next frame of this connection, given whether the server has registered it yet. */
  next(registered: boolean): FuzzFrame;
}

/** Frames for one client connection. */
export function clientSession(rng: Rng, firstReqId: number): ClientSession {
  let reqId = firstReqId;
  return {
    next(): FuzzFrame {
      const category = rng.weighted({
        valid: 30,
        mutated: 30,
        'msgpack-shape': 12,
        'random-bytes': 8,
        'wrong-order': 10,
        truncated: 3,
        oversized: 3,
      });
      reqId++;
      switch (category) {
        case 'valid':
          return {
            category,
            bytes: frameOf(validClientRequest(rng, reqId)),
            expect: 'open',
            note: 'valid request',
          };
        case 'mutated': {
          const message = validClientRequest(rng, reqId);
          const what = mutate(rng, message, CLIENT_OPS);
          if (isForbiddenRequest(message)) {
            message['op'] = 'job-list';
          }
          return {
            category,
            bytes: frameOf(message),
            expect: 'any',
            note: `${describeValue(message['op'])}: ${what}`,
          };
        }
        case 'msgpack-shape':
          return shapeFrame(rng);
        case 'random-bytes':
          return randomBytesFrame(rng);
        case 'wrong-order': {
          const variant = rng.weighted({ worker: 4, server: 3, duplicateReqId: 2 });
          if (variant === 'duplicateReqId') {
            // Reusing a request id is allowed: each request is still answered.
            const message = validClientRequest(rng, firstReqId + 1);
            return {
              category,
              bytes: frameOf(message),
              expect: 'open',
              note: `${describeValue(message['op'])} reusing reqId ${firstReqId + 1}`,
            };
          }
          const message =
            variant === 'worker'
              ? rng.chance(0.5)
                ? registerMessage(rng, 'x', 'fuzz-on-client-port')
                : validWorkerMessage(rng)
              : { op: rng.pick(SERVER_OPS), reqId, ok: true, data: null };
          return {
            category,
            bytes: frameOf(message),
            expect: 'close',
            note: `${variant} message ${describeValue(message['op'])} on the client port`,
          };
        }
        case 'truncated':
          return truncatedFrame(rng, frameOf(validClientRequest(rng, reqId)));
        case 'oversized':
          return oversizedFrame(rng);
      }
    },
  };
}

/** Frames for one worker connection. `fuzzFirst`: the very first frame is not a clean register. */
export function workerSession(
  rng: Rng,
  version: string,
  name: string,
  fuzzFirst: boolean,
): WorkerSession {
  let first = true;
  return {
    next(registered: boolean): FuzzFrame {
      if (first) {
        first = false;
        if (!fuzzFirst) {
          return {
            category: 'valid',
            bytes: frameOf(registerMessage(rng, version, name)),
            expect: 'open',
            note: 'register',
          };
        }
      }
      // Every registered connection leaves a lost worker behind (the server keeps them), so
      // frames that certainly close go mostly before registering, where they cost nothing.
      const category = registered
        ? rng.weighted({
            valid: 45,
            mutated: 30,
            'msgpack-shape': 8,
            'random-bytes': 3,
            'wrong-order': 10,
            truncated: 2,
            oversized: 2,
          })
        : rng.weighted({
            mutated: 35, // of register: the most intricate validation there is
            'msgpack-shape': 14,
            'random-bytes': 16,
            'wrong-order': 19,
            truncated: 8,
            oversized: 8,
          });
      switch (category) {
        case 'valid':
          return {
            category,
            bytes: frameOf(validWorkerMessage(rng)),
            expect: 'open',
            note: 'valid worker message',
          };
        case 'mutated': {
          const message =
            registered && rng.chance(0.8)
              ? validWorkerMessage(rng)
              : registerMessage(rng, version, name);
          const what = mutate(rng, message, WORKER_OPS);
          // A second register is refused whatever it holds.
          const doubleRegister = registered && message['op'] === 'register';
          return {
            category,
            bytes: frameOf(message),
            expect: doubleRegister ? 'close' : 'any',
            note: `${describeValue(message['op'])}: ${what}`,
          };
        }
        case 'msgpack-shape':
          return shapeFrame(rng);
        case 'random-bytes':
          return randomBytesFrame(rng);
        case 'wrong-order': {
          const variant = registered
            ? rng.weighted({ doubleRegister: 3, client: 3, server: 3 })
            : rng.weighted({ beforeRegister: 6, wrongVersion: 2, client: 2, server: 2 });
          let message: Record<string, unknown>;
          switch (variant) {
            case 'doubleRegister':
              message = registerMessage(rng, version, name);
              break;
            case 'beforeRegister':
              message = validWorkerMessage(rng);
              break;
            case 'wrongVersion':
              message = registerMessage(rng, rng.pick(['0.0.0', `${version}-x`, '']), name);
              if (rng.chance(0.5)) {
                message['version'] = version;
                message['protocol'] = rng.pick([
                  PROTOCOL_VERSION + 1,
                  PROTOCOL_VERSION - 1,
                  2 ** 32,
                ]);
              }
              break;
            case 'client':
              message = validClientRequest(rng, rng.int(1000));
              break;
            default:
              message = { op: rng.pick(SERVER_OPS), workerId: 1, tasks: [], shared: [] };
          }
          return {
            category,
            bytes: frameOf(message),
            expect: 'close',
            note: `${variant}: ${describeValue(message['op'])}`,
          };
        }
        case 'truncated':
          return truncatedFrame(
            rng,
            frameOf(registered ? validWorkerMessage(rng) : registerMessage(rng, version, name)),
          );
        case 'oversized':
          return oversizedFrame(rng);
      }
    },
  };
}

// ---- connection-level cases ------------------------------------------------------------------

export type KeyChoice = 'random' | 'other-role' | 'own' | 'zero';

export type CasePlan =
  | { kind: 'plaintext'; bytes: Buffer; note: string }
  | { kind: 'wrong-key'; identity: string; key: KeyChoice; tls12: boolean; note: string }
  | { kind: 'session'; maxFrames: number; fuzzFirst: boolean; rng: Rng };

/** What one case (one connection, or one connection attempt) does. */
export function planCase(seed: number, port: Port, index: number): CasePlan {
  const rng = caseRng(seed, port, index);
  const kind = rng.weighted({ plaintext: 3, 'wrong-key': 3, session: 94 });
  const own = port === 'client' ? 'hq-client' : 'hq-worker';
  const other = port === 'client' ? 'hq-worker' : 'hq-client';
  if (kind === 'plaintext') {
    const variant = rng.weighted({ random: 3, http: 1, fakeTls: 2, frame: 2 });
    let bytes: Buffer;
    switch (variant) {
      case 'random':
        bytes = rng.bytes(rng.range(1, 2048));
        break;
      case 'http':
        bytes = Buffer.from(`GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
        break;
      case 'fakeTls': {
        // A TLS record header (handshake, TLS 1.0-1.3 versions) with a random body.
        const body = rng.bytes(rng.length(512));
        const h = Buffer.from([0x16, 0x03, rng.range(0, 4), 0, 0]);
        h.writeUInt16BE(rng.chance(0.5) ? body.length : rng.int(0x10000), 3);
        bytes = Buffer.concat([h, body]);
        break;
      }
      case 'frame':
        // A valid protocol frame, but without TLS around it.
        bytes = frameOf(port === 'client' ? { op: 'job-list', reqId: 1 } : { op: 'heartbeat' });
        break;
    }
    return { kind, bytes, note: variant };
  }
  if (kind === 'wrong-key') {
    const variant = rng.weighted({
      randomKey: 3,
      otherRoleKey: 2,
      otherIdentity: 2,
      unknownIdentity: 2,
      tls12: 1,
    });
    switch (variant) {
      case 'randomKey':
        return {
          kind,
          identity: own,
          key: 'random',
          tls12: false,
          note: 'own identity, random key',
        };
      case 'otherRoleKey':
        return {
          kind,
          identity: own,
          key: 'other-role',
          tls12: false,
          note: "own identity, the other port's key",
        };
      case 'otherIdentity':
        return {
          kind,
          identity: other,
          key: rng.chance(0.5) ? 'other-role' : 'own',
          tls12: false,
          note: "the other port's identity",
        };
      case 'unknownIdentity':
        return {
          kind,
          identity: rng.pick(['hq-admin', 'HQ-CLIENT', 'x', own.repeat(8)]),
          key: rng.chance(0.5) ? 'own' : 'zero',
          tls12: false,
          note: 'unknown identity',
        };
      case 'tls12':
        return { kind, identity: own, key: 'own', tls12: true, note: 'TLS 1.2 with the right key' };
    }
  }
  return {
    kind: 'session',
    maxFrames: rng.chance(0.1) ? rng.range(1, 4) : rng.range(8, 64),
    // Worker connections that start with something other than a clean register.
    fuzzFirst: port === 'worker' && rng.chance(0.5),
    rng,
  };
}
