/**
 * Protocol fuzzer: throws generated frames (fuzz-cases.ts) at both ports of a real `hq` server
 * started by the e2e harness, and checks, between rounds and at the end, that the server is
 * alive, still answers, keeps its memory bounded, logged no crash, and that no refused frame
 * changed its state.
 *
 * How frames are packed: a frame the server accepts keeps the connection open, so a connection
 * carries frames until one of them is refused (the server closes) or its case ends. To know
 * where the server stood after each frame:
 * - client port: each frame is followed by a probe request (`alloc-list`); the probe's answer
 *   means the frame was accepted, a close before it means the frame was refused;
 * - worker port: a `register` is answered (`registered`) or refused (close); after it, a
 *   `notify` barrier follows the frames, and a monitor connection streaming notifications sees
 *   the barrier only if everything before it was accepted.
 *
 * State oracle: jobs appear only through acknowledged submits/opens (their answers carry the
 * job id), disappear only through acknowledged forgets, and workers appear only through
 * `registered` answers; every fuzz worker is lost once its connection is gone.
 *
 * Everything is bounded: every wait has a timeout, the run has a deadline, every socket is
 * destroyed, and the server is killed by the harness at the end.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { Unpackr } from 'msgpackr';

import { FrameDecoder } from '../../src/transport/framing.js';
import { PROTOCOL_VERSION } from '../../src/transport/messages.js';
import { HqEnv, isAlive, waitFor } from '../e2e/harness.js';
import {
  CATEGORIES,
  caseRng,
  clientSession,
  frameOf,
  planCase,
  registerMessage,
  workerSession,
  type CasePlan,
  type Category,
  type FuzzFrame,
  type KeyChoice,
  type Port,
} from './fuzz-cases.js';

export interface FuzzOptions {
  seed: number;
  /** Frames to send to each port (the last case may go a little over). */
  framesPerPort: number;
  /** Connections running at the same time on each port. */
  lanes?: number;
  /** A health check after every this many frames per port (and always at the end). */
  checkEveryFrames?: number;
  /** The whole run fails after this long. */
  deadlineMs?: number;
  /**
   * How far the server's RSS may grow above its size after start-up, besides what the fuzz
   * workers it keeps (lost workers stay listed) may take: WORKER_ALLOWANCE_KIB each.
   */
  rssGrowthLimitMiB?: number;
  /** Start the server with `--journal`: every accepted frame then also goes to disk. */
  journal?: boolean;
  /** Run only this case (to replay a failure). */
  onlyCase?: { port: Port; index: number };
  /** Progress lines (the figures are in the returned report). */
  log?: (line: string) => void;
}

export interface PortReport {
  frames: number;
  byCategory: Record<Category, number>;
  cases: number;
  connections: number;
  /** TLS handshakes that the server refused (wrong key, identity, version). */
  refusedHandshakes: number;
  /** Connections the server closed because of a frame (not because the fuzzer hung up). */
  closedByServer: number;
  /** Answers to fuzz requests (client port), successful or errors. */
  okAnswers: number;
  errorAnswers: number;
  /** Fuzz workers the server registered (worker port). */
  registered: number;
  /** Probes (client) or barriers (worker) sent to learn the outcome of frames; not counted above. */
  syncFrames: number;
}

export interface FuzzReport {
  seed: number;
  framesPerPort: number;
  ports: Record<Port, PortReport>;
  checks: number;
  durationMs: number;
  rssStartMiB: number;
  rssMaxMiB: number;
  rssEndMiB: number;
  /** The bound at the end: the fixed growth plus the allowance for the workers kept. */
  rssLimitMiB: number;
  /** Jobs the fuzz created (and the checks removed again). */
  jobsCreated: number;
}

/** A failed check, naming what is needed to replay it. */
export class FuzzFailure extends Error {}

// Generous: the machine is small and shared; a healthy server answers within milliseconds.
const IO_TIMEOUT_MS = 15_000;
/**
 * The server keeps every lost worker (`hq worker list --all`, as upstream), and the fuzz makes
 * tens of thousands. Measured in isolation: 6,000 registrations that hang up grow the RSS by
 * 17 MiB more than 6,000 connections that do not register (about 3 KiB each, 1.1 KiB of it
 * live heap, the rest V8 heap room); answers that list every worker hold a copy of them all
 * while they are sent. Twice the measured cost is allowed per fuzz worker, on top of the fixed
 * growth bound (TLS and allocator churn levels off at some 40 MiB). A leak of a socket or a
 * frame buffer per connection (over 100,000 of them) still goes far past it.
 */
const WORKER_ALLOWANCE_KIB = 6;
/** Worker ids past the last answered registration that a check also looks at, for strays. */
const STRAY_WORKER_HEADROOM = 1000;
/** RSS is sampled this often, so a spike between two checks is seen too. */
const RSS_SAMPLE_MS = 200;
/** Probe request ids: far from anything a case generates, so answers are never confused. */
const PROBE_BASE = 4_000_000_000_000;
/** The fuzzer's own requests (health checks, monitor). */
const CONTROL_BASE = 5_000_000_000_000;
/** Ops that may answer late or never (a job still running, a live stream); the rest at once. */
const LATE_OPS = new Set(['wait-jobs', 'journal-stream']);
/**
 * Error answers that are JavaScript failures, not messages written for users: they mean a
 * handler met input that validation let through. (Not a bare `undefined`: answers may quote
 * what the peer sent, and `undefined` is a string a peer can send.)
 */
const INTERNAL_ERROR =
  /Cannot read propert|Cannot set propert|Cannot convert|is not a function|is not iterable|is not a constructor|Invalid array length|Maximum call stack|Invalid string length|out of memory|\[object /;
/** A server log line: `<time> LEVEL message` (or the bracketed debug format). */
const LOG_LINE = /^(\[)?\d{4}-\d\d-\d\dT[\d:.]+Z (ERROR|WARN|INFO|DEBUG|TRACE) /;

const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

interface Access {
  version: string;
  client: { port: number; secret_key: string };
  worker: { port: number; secret_key: string };
}

function emptyPortReport(): PortReport {
  return {
    frames: 0,
    byCategory: Object.fromEntries(CATEGORIES.map((c) => [c, 0])) as Record<Category, number>,
    cases: 0,
    connections: 0,
    refusedHandshakes: 0,
    closedByServer: 0,
    okAnswers: 0,
    errorAnswers: 0,
    registered: 0,
    syncFrames: 0,
  };
}

function hexPreview(bytes: Buffer): string {
  const shown = bytes.subarray(0, 48).toString('hex');
  return bytes.length > 48 ? `${shown}… (${bytes.length} bytes)` : shown;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

// ---- sockets -------------------------------------------------------------------------------

/**
 * Pending waits of every peer. Any frame arriving anywhere re-runs them: a worker's barrier
 * is seen on the monitor's connection, not on its own.
 */
const pendingChecks = new Set<() => void>();

function recheckAll(): void {
  for (const check of [...pendingChecks]) {
    check();
  }
}

/** One connection of the fuzzer: decoded frames from the server, close detection, no throws. */
class Peer {
  readonly socket: net.Socket;
  closed = false;
  /** Answers received, per request id. */
  readonly answered = new Map<number, number>();
  firstByte: number | null = null;
  /** The server sent bytes that are not a frame: a failure, not a refusal. */
  decodeError: string | null = null;
  private readonly decoder = new FrameDecoder();
  private readonly onFrame: (frame: unknown) => void;

  constructor(socket: net.Socket, decode: boolean, onFrame: (frame: unknown) => void) {
    this.socket = socket;
    this.onFrame = onFrame;
    socket.on('data', (chunk: Buffer) => {
      this.firstByte ??= chunk[0] ?? null;
      if (!decode) {
        return;
      }
      let frames: unknown[];
      try {
        frames = this.decoder.push(chunk);
      } catch (e) {
        this.decodeError = e instanceof Error ? e.message : String(e);
        socket.destroy();
        return;
      }
      for (const f of frames) {
        if (isObject(f) && typeof f['reqId'] === 'number' && f['op'] === 'response') {
          this.answered.set(f['reqId'], (this.answered.get(f['reqId']) ?? 0) + 1);
        }
        this.onFrame(f);
      }
      recheckAll();
    });
    // Errors (a reset after the server closed) end the connection like a close does.
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      this.closed = true;
      recheckAll();
    });
  }

  write(bytes: Buffer): void {
    if (!this.closed && !this.socket.destroyed) {
      this.socket.write(bytes);
    }
  }

  hangUp(): void {
    if (!this.closed) {
      this.socket.end();
    }
  }

  destroy(): void {
    this.socket.destroy();
  }

  /** Resolves 'ok' once `cond()` holds, 'closed' if the connection closes first. */
  until(cond: () => boolean, what: string, timeoutMs = IO_TIMEOUT_MS): Promise<'ok' | 'closed'> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (this.decodeError !== null) {
          done();
          reject(new Error(`the server sent bytes that are not a frame: ${this.decodeError}`));
        } else if (cond()) {
          done();
          resolve('ok');
        } else if (this.closed) {
          done();
          resolve('closed');
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        pendingChecks.delete(check);
      };
      pendingChecks.add(check);
      check();
    });
  }

  /** Resolves once the connection is closed; rejects after the timeout. */
  async closedWithin(what: string, timeoutMs = IO_TIMEOUT_MS): Promise<void> {
    await this.until(() => false, what, timeoutMs);
  }
}

const secureContexts = {
  tls13: tls.createSecureContext({ minVersion: 'TLSv1.3', ca: [] }),
  tls12: tls.createSecureContext({
    minVersion: 'TLSv1.2',
    maxVersion: 'TLSv1.2',
    ciphers: 'PSK-AES128-GCM-SHA256',
    ca: [],
  }),
};

/** A TLS-PSK handshake; resolves with the socket, or null when the server refused it. */
function tlsConnect(
  port: number,
  identity: string,
  key: Buffer,
  tls12 = false,
): Promise<tls.TLSSocket | null> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: '127.0.0.1',
      port,
      secureContext: tls12 ? secureContexts.tls12 : secureContexts.tls13,
      checkServerIdentity: () => undefined,
      pskCallback: () => ({ psk: key, identity }),
    });
    let settled = false;
    const settle = (value: tls.TLSSocket | null): void => {
      if (!settled) {
        settled = true;
        clearTimeout(timer);
        resolve(value);
      }
    };
    const timer = setTimeout(() => {
      settled = true;
      socket.destroy();
      reject(new Error(`no TLS outcome within ${IO_TIMEOUT_MS} ms (${identity} on port ${port})`));
    }, IO_TIMEOUT_MS);
    socket.once('secureConnect', () => settle(socket));
    socket.on('error', () => {
      socket.destroy();
      settle(null);
    });
    socket.once('close', () => settle(null));
  });
}

function tcpConnect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no TCP connection within ${IO_TIMEOUT_MS} ms (port ${port})`));
    }, IO_TIMEOUT_MS);
    socket.once('connect', () => {
      clearTimeout(timer);
      resolve(socket);
    });
    socket.once('error', (e) => {
      clearTimeout(timer);
      socket.destroy();
      reject(e);
    });
  });
}

// ---- the run -------------------------------------------------------------------------------

interface PortState {
  port: Port;
  tcpPort: number;
  identity: string;
  key: Buffer;
  otherKey: Buffer;
  report: PortReport;
  nextCase: number;
  /** The first case since the last check, for failure messages. */
  firstCaseOfRound: number;
}

class FuzzRun {
  readonly options: FuzzOptions;
  readonly env: HqEnv;
  readonly access: Access;
  readonly ports: Record<Port, PortState>;
  readonly peers = new Set<Peer>();
  /** Job ids some answer told us about (a submit, an open, ...), the baseline included. */
  readonly knownJobs = new Set<number>();
  forgotten = 0;
  readonly knownWorkers = new Set<number>();
  maxKnownWorker = 0;
  /** Worker ids up to this one were checked against the registrations. */
  checkedWorkers = 0;
  jobsCreated = 0;
  monitor: Peer | null = null;
  readonly barriers = new Set<string>();
  readonly token = randomBytes(4).toString('hex');
  barrierCounter = 0;
  probeCounter = 0;
  controlCounter = 0;
  aborted = false;
  checks = 0;
  rssStart = 0;
  rssMax = 0;
  /** The largest sample above the bound of its time, if any. */
  rssExceeded: string | null = null;
  rssTimer: NodeJS.Timeout | null = null;
  /** The highest job id before fuzzing: jobs above it are the fuzz's own, removed at checks. */
  baselineMaxJob = 0;
  stderrOffset = 0;
  readonly started = Date.now();
  readonly deadline: number;

  constructor(options: FuzzOptions, env: HqEnv, access: Access) {
    this.options = options;
    this.env = env;
    this.access = access;
    this.deadline = this.started + (options.deadlineMs ?? 30 * 60_000);
    const clientKey = Buffer.from(access.client.secret_key, 'hex');
    const workerKey = Buffer.from(access.worker.secret_key, 'hex');
    this.ports = {
      client: {
        port: 'client',
        tcpPort: access.client.port,
        identity: 'hq-client',
        key: clientKey,
        otherKey: workerKey,
        report: emptyPortReport(),
        nextCase: 0,
        firstCaseOfRound: 0,
      },
      worker: {
        port: 'worker',
        tcpPort: access.worker.port,
        identity: 'hq-worker',
        key: workerKey,
        otherKey: clientKey,
        report: emptyPortReport(),
        nextCase: 0,
        firstCaseOfRound: 0,
      },
    };
  }

  log(line: string): void {
    this.options.log?.(line);
  }

  /** The options of the whole run as script flags (the checks change state: same cadence). */
  runFlags(): string {
    const { seed, framesPerPort, checkEveryFrames, journal, lanes } = this.options;
    return [
      `--seed ${seed} --frames ${framesPerPort}`,
      ...(checkEveryFrames === undefined ? [] : [`--check-every ${checkEveryFrames}`]),
      ...(lanes === undefined ? [] : [`--lanes ${lanes}`]),
      ...(journal === true ? ['--journal'] : []),
    ].join(' ');
  }

  replayHint(port: Port, index: number): string {
    return (
      `replay: node --import tsx scripts/fuzz.mjs --seed ${this.options.seed} --case ${port}:${index} ` +
      `(this case alone on a fresh server), or ${this.runFlags()} (the whole run)`
    );
  }

  caseFailure(
    port: Port,
    index: number,
    frameIndex: number,
    frame: FuzzFrame | null,
    what: string,
  ) {
    const where =
      frame === null
        ? ''
        : `, frame ${frameIndex} [${frame.category}: ${frame.note}] ${hexPreview(frame.bytes)}`;
    return new FuzzFailure(
      `fuzz failure (seed ${this.options.seed}, ${port} case ${index}${where}): ${what}; ${this.replayHint(port, index)}`,
    );
  }

  checkFailure(what: string): FuzzFailure {
    const c = this.ports.client;
    const w = this.ports.worker;
    return new FuzzFailure(
      `fuzz failure (seed ${this.options.seed}, check ${this.checks} after client cases ` +
        `${c.firstCaseOfRound}-${c.nextCase - 1} and worker cases ${w.firstCaseOfRound}-${w.nextCase - 1}): ${what}; ` +
        `replay: node --import tsx scripts/fuzz.mjs ${this.runFlags()}`,
    );
  }

  track(peer: Peer): Peer {
    this.peers.add(peer);
    peer.socket.once('close', () => this.peers.delete(peer));
    return peer;
  }

  /** What every frame from the server tells the state oracle. */
  observe(port: PortState | null, frame: unknown, internalErrors: string[]): void {
    if (!isObject(frame)) {
      return;
    }
    if (frame['op'] === 'registered' && typeof frame['workerId'] === 'number') {
      this.knownWorkers.add(frame['workerId']);
      this.maxKnownWorker = Math.max(this.maxKnownWorker, frame['workerId']);
      if (port !== null) {
        port.report.registered++;
      }
      return;
    }
    if (frame['op'] !== 'response') {
      return;
    }
    const reqId = frame['reqId'];
    const isFuzzAnswer = typeof reqId === 'number' && reqId < PROBE_BASE;
    if (frame['ok'] === true) {
      if (isFuzzAnswer && port !== null) {
        port.report.okAnswers++;
      }
      const data = frame['data'];
      if (isObject(data)) {
        if (typeof data['jobId'] === 'number') {
          if (!this.knownJobs.has(data['jobId'])) {
            this.jobsCreated++;
          }
          this.knownJobs.add(data['jobId']);
        }
        if (typeof data['forgotten'] === 'number' && typeof data['ignored'] === 'number') {
          this.forgotten += data['forgotten'];
        }
      }
    } else {
      if (isFuzzAnswer && port !== null) {
        port.report.errorAnswers++;
      }
      const error = String(frame['error']);
      if (INTERNAL_ERROR.test(error)) {
        internalErrors.push(error);
      }
    }
  }

  async clientConnection(port: PortState, onFrame: (f: unknown) => void): Promise<Peer> {
    const socket = await tlsConnect(port.tcpPort, port.identity, port.key);
    if (socket === null) {
      throw new Error(`the server refused the right ${port.port} key`);
    }
    return this.track(new Peer(socket, true, onFrame));
  }

  // ---- control requests ----

  /** One request on a fresh client connection; its answer's data. */
  async request(message: Record<string, unknown>): Promise<unknown> {
    const reqId = CONTROL_BASE + this.controlCounter++;
    let answer: unknown = undefined;
    const peer = await this.clientConnection(this.ports.client, (f) => {
      if (isObject(f) && f['reqId'] === reqId && f['op'] === 'response') {
        answer = f;
      }
    });
    try {
      peer.write(frameOf({ ...message, reqId }));
      const outcome = await peer.until(
        () => answer !== undefined,
        `an answer to ${String(message['op'])}`,
      );
      if (outcome === 'closed' || !isObject(answer) || answer['ok'] !== true) {
        throw new Error(`${String(message['op'])} was not answered: ${JSON.stringify(answer)}`);
      }
      return answer['data'];
    } finally {
      peer.destroy();
    }
  }

  async startMonitor(): Promise<void> {
    const reqId = CONTROL_BASE + this.controlCounter++;
    const monitor = await this.clientConnection(this.ports.client, (f) => {
      if (!isObject(f) || f['op'] !== 'events' || !Array.isArray(f['records'])) {
        return;
      }
      for (const r of f['records'] as unknown[]) {
        const event = isObject(r) ? r['event'] : undefined;
        if (isObject(event) && event['type'] === 'task-notify') {
          const message = String(event['message']);
          if (message.startsWith(`fuzz-barrier ${this.token} `)) {
            this.barriers.add(message);
          }
        }
      }
    });
    // Notifications only (filter flag 16): the barriers, and nothing else to read.
    monitor.write(frameOf({ op: 'journal-stream', reqId, mode: 'live', filter: 16 }));
    this.monitor = monitor;
  }

  /** Sends a barrier on `peer`; 'ok' once the monitor saw it, 'closed' if `peer` closed first. */
  async barrier(port: PortState, peer: Peer): Promise<'ok' | 'closed'> {
    const message = `fuzz-barrier ${this.token} ${this.barrierCounter++}`;
    port.report.syncFrames++;
    peer.write(frameOf({ op: 'notify', jobId: 0, taskId: 0, message }));
    const outcome = await peer.until(() => this.barriers.has(message), 'a barrier');
    this.barriers.delete(message);
    if (this.monitor === null || this.monitor.closed) {
      throw new Error('the monitor connection was closed');
    }
    return outcome;
  }

  /** A clean registration and a barrier must work, or the run would test nothing. */
  async controlWorker(): Promise<void> {
    const port = this.ports.worker;
    let registered = false;
    const peer = await this.clientConnection(port, (f) => {
      if (isObject(f) && f['op'] === 'registered') {
        registered = true;
      }
      this.observe(null, f, []);
    });
    try {
      const rng = caseRng(this.options.seed, 'worker', -1);
      peer.write(frameOf(registerMessage(rng, this.access.version, 'fuzz-control')));
      if ((await peer.until(() => registered, 'the control registration')) === 'closed') {
        throw new Error(
          `the server refused a clean registration (protocol ${PROTOCOL_VERSION}, version ${this.access.version}): is dist/hq built from this tree? (npm run build)`,
        );
      }
      if ((await this.barrier(port, peer)) === 'closed') {
        throw new Error('the server closed the control worker on a notify');
      }
      port.report.syncFrames = 0;
      peer.hangUp();
      await peer.closedWithin('the server to close the control worker');
    } finally {
      peer.destroy();
    }
  }

  // ---- cases ----

  async runCase(port: PortState, index: number): Promise<void> {
    const plan = planCase(this.options.seed, port.port, index);
    port.report.cases++;
    switch (plan.kind) {
      case 'plaintext':
        return this.plaintextCase(port, index, plan);
      case 'wrong-key':
        return this.wrongKeyCase(port, index, plan);
      case 'session':
        return port.port === 'client'
          ? this.clientCase(port, index, plan)
          : this.workerCase(port, index, plan);
    }
  }

  count(port: PortState, category: Category): void {
    port.report.frames++;
    port.report.byCategory[category]++;
  }

  async plaintextCase(
    port: PortState,
    index: number,
    plan: Extract<CasePlan, { kind: 'plaintext' }>,
  ): Promise<void> {
    const frame: FuzzFrame = {
      category: 'plaintext',
      bytes: plan.bytes,
      expect: 'close',
      note: plan.note,
    };
    port.report.connections++;
    const peer = this.track(new Peer(await tcpConnect(port.tcpPort), false, () => undefined));
    try {
      this.count(port, 'plaintext');
      peer.write(plan.bytes);
      // Half-close: a server waiting for the rest of a TLS record sees the end at once.
      peer.hangUp();
      await peer.closedWithin('the server to drop a plaintext peer');
      // At most a TLS alert (record type 21) may come back: never a handshake, never data.
      if (peer.firstByte !== null && peer.firstByte !== 0x15) {
        throw this.caseFailure(
          port.port,
          index,
          0,
          frame,
          `a plaintext peer got bytes back that are not a TLS alert (first byte ${peer.firstByte})`,
        );
      }
    } finally {
      peer.destroy();
    }
  }

  async wrongKeyCase(
    port: PortState,
    index: number,
    plan: Extract<CasePlan, { kind: 'wrong-key' }>,
  ): Promise<void> {
    const rng = caseRng(this.options.seed, port.port, index);
    const keys: Record<KeyChoice, Buffer> = {
      random: rng.bytes(32),
      'other-role': port.otherKey,
      own: port.key,
      zero: Buffer.alloc(32),
    };
    const frame: FuzzFrame = {
      category: 'wrong-key',
      bytes: frameOf(port.port === 'client' ? { op: 'job-list', reqId: 1 } : { op: 'heartbeat' }),
      expect: 'close',
      note: plan.note,
    };
    port.report.connections++;
    this.count(port, 'wrong-key');
    const socket = await tlsConnect(port.tcpPort, plan.identity, keys[plan.key], plan.tls12);
    if (socket === null) {
      port.report.refusedHandshakes++;
      return;
    }
    socket.destroy();
    throw this.caseFailure(port.port, index, 0, frame, 'the server accepted the handshake');
  }

  async clientCase(
    port: PortState,
    index: number,
    plan: Extract<CasePlan, { kind: 'session' }>,
  ): Promise<void> {
    const internalErrors: string[] = [];
    port.report.connections++;
    const peer = await this.clientConnection(port, (f) => this.observe(port, f, internalErrors));
    const session = clientSession(plan.rng, 0);
    try {
      for (let j = 0; j < plan.maxFrames; j++) {
        if (this.aborted) {
          return;
        }
        const frame = session.next();
        const fail = (what: string): FuzzFailure =>
          this.caseFailure(port.port, index, j, frame, what);
        this.count(port, frame.category);
        // Request ids may repeat (on purpose, or by mutation): answers are counted per id.
        const sent = decodeFrame(frame.bytes);
        const reqId = isObject(sent) && typeof sent['reqId'] === 'number' ? sent['reqId'] : null;
        const answersBefore = reqId === null ? 0 : (peer.answered.get(reqId) ?? 0);
        peer.write(frame.bytes);
        if (frame.hangUp === true) {
          peer.hangUp();
          await peer.closedWithin('the server to close a connection we hung up');
          return;
        }
        if (frame.category === 'oversized' && frame.expect === 'close') {
          // Nothing may follow: the server must close on the length prefix alone.
          await peer.closedWithin('the server to close on an oversized length prefix').catch(() => {
            throw fail('the server did not close the connection on an oversized length prefix');
          });
          port.report.closedByServer++;
          return;
        }
        const probe = PROBE_BASE + this.probeCounter++;
        port.report.syncFrames++;
        peer.write(frameOf({ op: 'alloc-list', reqId: probe }));
        const outcome = await peer
          .until(() => peer.answered.has(probe), 'the probe')
          .catch((e: unknown) => {
            throw fail(`the server neither answered the probe nor closed: ${String(e)}`);
          });
        if (outcome === 'closed') {
          port.report.closedByServer++;
          if (frame.expect === 'open') {
            throw fail('the server closed the connection on a valid request');
          }
          return;
        }
        if (frame.expect === 'close') {
          throw fail('the server answered after a frame it must refuse');
        }
        // A request answered at once must have been answered before the connection goes on:
        // its answer may say a job was created, and the next frame may get the connection reset.
        if (
          reqId !== null &&
          isObject(sent) &&
          !(typeof sent['op'] === 'string' && LATE_OPS.has(sent['op']))
        ) {
          const answered = await peer.until(
            () => (peer.answered.get(reqId) ?? 0) > answersBefore,
            'the answer',
          );
          if (answered === 'closed') {
            throw fail('the connection closed before an accepted request was answered');
          }
        }
        if (internalErrors.length > 0) {
          throw fail(`the server answered with an internal error: ${internalErrors[0]}`);
        }
      }
      peer.hangUp();
      await peer.closedWithin('the server to close a connection we hung up');
    } finally {
      peer.destroy();
    }
  }

  async workerCase(
    port: PortState,
    index: number,
    plan: Extract<CasePlan, { kind: 'session' }>,
  ): Promise<void> {
    port.report.connections++;
    let registered = false;
    const peer = await this.clientConnection(port, (f) => {
      if (isObject(f) && f['op'] === 'registered') {
        registered = true;
      }
      this.observe(port, f, []);
    });
    const session = workerSession(
      plan.rng,
      this.access.version,
      `fuzz-${port.port}-${index}`,
      plan.fuzzFirst,
    );
    // Frames sent since the last barrier that must have been accepted.
    let unsynced: { j: number; frame: FuzzFrame }[] = [];
    try {
      for (let j = 0; j < plan.maxFrames; j++) {
        if (this.aborted) {
          return;
        }
        const frame = session.next(registered);
        const fail = (what: string): FuzzFailure =>
          this.caseFailure(port.port, index, j, frame, what);
        if (registered && frame.expect !== 'open' && unsynced.length > 0) {
          // The valid frames so far must have been accepted before this one may be refused.
          const outcome = await this.barrier(port, peer);
          if (outcome === 'closed') {
            throw this.caseFailure(
              port.port,
              index,
              unsynced[0]!.j,
              unsynced[0]!.frame,
              `the server closed the connection on valid worker messages (frames ${unsynced[0]!.j}-${unsynced[unsynced.length - 1]!.j})`,
            );
          }
          unsynced = [];
        }
        this.count(port, frame.category);
        peer.write(frame.bytes);
        if (frame.hangUp === true) {
          peer.hangUp();
          await peer.closedWithin('the server to close a connection we hung up');
          return;
        }
        const sent = frame.category === 'oversized' ? undefined : decodeFrame(frame.bytes);
        if (!registered) {
          if (isObject(sent) && sent['op'] === 'register') {
            // Answered (`registered`) or refused (close): nothing else may happen.
            const outcome = await peer
              .until(() => registered, 'a registration')
              .catch((e: unknown) => {
                throw fail(`the server neither registered the worker nor closed: ${String(e)}`);
              });
            if (outcome === 'closed') {
              port.report.closedByServer++;
              if (frame.expect === 'open') {
                throw fail('the server refused a valid registration');
              }
              return;
            }
            if (frame.expect === 'close') {
              throw fail('the server registered a worker from a frame it must refuse');
            }
            continue;
          }
          // Anything but a register before registering: the server must close.
          await peer.closedWithin('the server to close').catch(() => {
            throw fail('the server kept an unregistered worker connection open');
          });
          port.report.closedByServer++;
          return;
        }
        if (frame.expect === 'open') {
          // Valid frames are checked in bulk by the next barrier.
          unsynced.push({ j, frame });
          continue;
        }
        if (frame.category === 'oversized' && frame.expect === 'close') {
          await peer.closedWithin('the server to close on an oversized length prefix').catch(() => {
            throw fail('the server did not close the connection on an oversized length prefix');
          });
          port.report.closedByServer++;
          return;
        }
        const outcome = await this.barrier(port, peer).catch((e: unknown) => {
          throw fail(`the server neither passed the barrier nor closed: ${String(e)}`);
        });
        if (outcome === 'closed') {
          port.report.closedByServer++;
          return;
        }
        if (frame.expect === 'close') {
          throw fail('the server accepted a worker frame it must refuse');
        }
      }
      if (unsynced.length > 0 && (await this.barrier(port, peer)) === 'closed') {
        throw this.caseFailure(
          port.port,
          index,
          unsynced[0]!.j,
          unsynced[0]!.frame,
          'the server closed the connection on valid worker messages',
        );
      }
      peer.hangUp();
      await peer.closedWithin('the server to close a connection we hung up');
    } finally {
      peer.destroy();
    }
  }

  // ---- health ----

  /**
   * No worker without an answered registration. Ids are given in sequence, so between checks
   * only the ids since the last check (and some beyond) are looked at; the whole list at the end.
   */
  async checkWorkers(final: boolean): Promise<void> {
    type Worker = { id: number };
    let listed: Worker[];
    let from: number;
    if (final) {
      listed = (await this.request({ op: 'worker-list' })) as Worker[];
      from = 0;
    } else {
      from = this.checkedWorkers + 1;
      const count = this.maxKnownWorker - this.checkedWorkers + STRAY_WORKER_HEADROOM;
      const selector = { kind: 'ids', ids: [{ start: from, count, step: 1 }] };
      listed = ((await this.request({ op: 'worker-info', selector })) as { workers: Worker[] })
        .workers;
    }
    let expected = 0;
    for (const id of this.knownWorkers) {
      if (id >= from) {
        expected++;
      }
    }
    const stray = listed.filter((w) => !this.knownWorkers.has(w.id));
    if (stray.length > 0 || listed.length !== expected) {
      throw this.checkFailure(
        `${listed.length} workers with ids from ${from} are listed, ${expected} registrations were answered; not answered: ${stray.map((w) => w.id).join(',')}`,
      );
    }
    this.checkedWorkers = this.maxKnownWorker;
  }

  rssLimit(): number {
    return (
      this.rssStart +
      (this.options.rssGrowthLimitMiB ?? 150) +
      (this.knownWorkers.size * WORKER_ALLOWANCE_KIB) / 1024
    );
  }

  sampleRss(): void {
    let rss: number;
    try {
      rss = this.rssMiB();
    } catch {
      return; // the server is gone: the next check says so
    }
    this.rssMax = Math.max(this.rssMax, rss);
    if (rss > this.rssLimit() && this.rssExceeded === null) {
      this.rssExceeded = `the server's RSS reached ${rss.toFixed(1)} MiB, above the bound of ${this.rssLimit().toFixed(1)} MiB`;
    }
  }

  /**
   * Removes the jobs the fuzz created (closed, canceled, forgotten), so the state the server
   * legitimately holds stays small and the RSS bound means something.
   */
  async removeFuzzJobs(): Promise<void> {
    const top = Math.max(0, ...this.knownJobs);
    if (top <= this.baselineMaxJob) {
      return;
    }
    const selector = {
      kind: 'ids',
      ids: [{ start: this.baselineMaxJob + 1, count: top - this.baselineMaxJob, step: 1 }],
    };
    await this.request({ op: 'job-close', selector });
    await this.request({ op: 'job-cancel', selector, reason: 'fuzz check' });
    const states = ['waiting', 'running', 'finished', 'failed', 'canceled', 'aborted', 'opened'];
    const data = (await this.request({ op: 'job-forget', selector, states })) as {
      forgotten: number;
    };
    this.forgotten += data.forgotten;
  }

  rssMiB(): number {
    const status = fs.readFileSync(`/proc/${this.env.server!.pid}/status`, 'utf8');
    const kb = /^VmRSS:\s+(\d+) kB/m.exec(status);
    if (kb === null) {
      throw this.checkFailure('no VmRSS in /proc/<pid>/status');
    }
    return Number(kb[1]) / 1024;
  }

  /** New stderr of the server: only log lines, none at ERROR level. */
  checkStderr(): void {
    const file = this.env.server!.stderrPath;
    const size = fs.statSync(file).size;
    if (size <= this.stderrOffset) {
      return;
    }
    const fd = fs.openSync(file, 'r');
    let text: string;
    try {
      const buffer = Buffer.alloc(size - this.stderrOffset);
      fs.readSync(fd, buffer, 0, buffer.length, this.stderrOffset);
      // Only whole lines; a line being written is read next time.
      const end = buffer.lastIndexOf(0x0a) + 1;
      text = buffer.subarray(0, end).toString('utf8');
      this.stderrOffset += end;
    } finally {
      fs.closeSync(fd);
    }
    for (const line of text.split('\n')) {
      if (line === '') {
        continue;
      }
      const m = LOG_LINE.exec(line);
      if (m === null) {
        throw this.checkFailure(
          `the server wrote something that is not a log line: ${line.slice(0, 300)}`,
        );
      }
      if (m[2] === 'ERROR') {
        throw this.checkFailure(`the server logged an error: ${line.slice(0, 300)}`);
      }
    }
  }

  async healthCheck(final: boolean): Promise<void> {
    this.checks++;
    const server = this.env.server!;
    if (!server.isRunning || !isAlive(server.pid)) {
      throw this.checkFailure(
        `the server is not running (${JSON.stringify(server.status)}); stderr tail:\n${server.stderr().slice(-3000)}`,
      );
    }
    if (this.monitor === null || this.monitor.closed) {
      throw this.checkFailure('the server closed the monitor connection');
    }
    this.sampleRss();
    if (this.rssExceeded !== null) {
      throw this.checkFailure(this.rssExceeded);
    }
    // Fuzz workers are lost once their connections are gone; the server sees closes a little
    // later than the fuzzer does. `debug-dump` lists the online workers only, so this check
    // costs the same late in the run as early.
    type Dump = { tako: { workers: { id: number }[] } };
    await waitFor(
      async () => ((await this.request({ op: 'debug-dump' })) as Dump).tako.workers.length === 0,
      { message: 'every fuzz worker to be lost', timeoutMs: 30_000 },
    ).catch((e: unknown) => {
      throw this.checkFailure(`a worker stayed online after its connection closed: ${String(e)}`);
    });
    await this.checkWorkers(final);
    const jobs = (await this.request({ op: 'job-list' })) as { id: number }[];
    const strayJobs = jobs.filter((j) => !this.knownJobs.has(j.id));
    const expectedJobs = this.knownJobs.size - this.forgotten;
    if (strayJobs.length > 0 || jobs.length !== expectedJobs) {
      throw this.checkFailure(
        `${jobs.length} jobs are listed, ${expectedJobs} expected from the answers (${this.knownJobs.size} acknowledged, ${this.forgotten} forgotten); not acknowledged: ${strayJobs.map((j) => j.id).join(',')}; acknowledged, not listed: ${[...this.knownJobs].filter((id) => !jobs.some((j) => j.id === id)).join(',')}`,
      );
    }
    await this.removeFuzzJobs();
    this.checkStderr();
    if (final) {
      // The real client too, through its whole stack.
      const list = await this.env.command(['job', 'list', '--all']).catch((e: unknown) => {
        throw this.checkFailure(`hq job list failed: ${String(e)}`);
      });
      if (!/\bID\b/.test(list.stdout)) {
        throw this.checkFailure(`hq job list printed no table:\n${list.stdout}`);
      }
      await this.env.command(['worker', 'list', '--all']).catch((e: unknown) => {
        throw this.checkFailure(`hq worker list failed: ${String(e)}`);
      });
      this.checkStderr();
    }
    for (const p of Object.values(this.ports)) {
      p.firstCaseOfRound = p.nextCase;
    }
  }

  // ---- driving ----

  async lane(port: PortState, target: number): Promise<void> {
    const only = this.options.onlyCase;
    while (!this.aborted && this.rssExceeded === null && port.report.frames < target) {
      if (Date.now() > this.deadline) {
        throw new FuzzFailure(
          `fuzz failure (seed ${this.options.seed}): the deadline of ${this.options.deadlineMs ?? 'default'} ms passed with ${port.report.frames} of ${this.options.framesPerPort} frames sent to the ${port.port} port`,
        );
      }
      if (only !== undefined && (only.port !== port.port || port.nextCase > only.index)) {
        return;
      }
      const index = only === undefined ? port.nextCase++ : only.index;
      if (only !== undefined) {
        port.nextCase = only.index + 1;
      }
      try {
        await this.runCase(port, index);
      } catch (e) {
        if (e instanceof FuzzFailure || this.aborted) {
          throw e;
        }
        // An I/O error or timeout of the fuzzer itself: still name the case.
        throw this.caseFailure(
          port.port,
          index,
          -1,
          null,
          e instanceof Error ? e.message : String(e),
        );
      }
    }
  }

  async run(): Promise<FuzzReport> {
    const { framesPerPort } = this.options;
    const lanes = this.options.lanes ?? 4;
    const every = this.options.checkEveryFrames ?? Math.max(500, Math.ceil(framesPerPort / 25));
    await this.startMonitor();
    // Baseline: the state before any fuzz frame, which the oracle starts from.
    for (const j of (await this.request({ op: 'job-list' })) as { id: number }[]) {
      this.knownJobs.add(j.id);
      this.baselineMaxJob = Math.max(this.baselineMaxJob, j.id);
    }
    for (const w of (await this.request({ op: 'worker-list' })) as { id: number }[]) {
      this.knownWorkers.add(w.id);
      this.maxKnownWorker = Math.max(this.maxKnownWorker, w.id);
    }
    await this.controlWorker();
    this.rssStart = this.rssMiB();
    this.rssMax = this.rssStart;
    this.rssTimer = setInterval(() => this.sampleRss(), RSS_SAMPLE_MS);
    this.checkStderr();
    this.log(
      `fuzz: seed ${this.options.seed}, ${framesPerPort} frames per port, ${lanes} lanes per port, server RSS ${this.rssStart.toFixed(1)} MiB (bound ${this.rssLimit().toFixed(1)} MiB + ${WORKER_ALLOWANCE_KIB} KiB per fuzz worker)`,
    );
    const target = this.options.onlyCase === undefined ? framesPerPort : Number.MAX_SAFE_INTEGER;
    for (let round = every; ; round += every) {
      const goal = Math.min(round, target);
      const work: Promise<void>[] = [];
      for (const p of Object.values(this.ports)) {
        for (let i = 0; i < lanes; i++) {
          work.push(this.lane(p, goal));
        }
      }
      const results = await Promise.allSettled(work);
      const failed = results.find((r) => r.status === 'rejected');
      if (failed !== undefined) {
        throw failed.reason;
      }
      if (this.rssExceeded !== null) {
        throw this.checkFailure(this.rssExceeded);
      }
      const done =
        this.options.onlyCase !== undefined ||
        Object.values(this.ports).every((p) => p.report.frames >= framesPerPort);
      await this.healthCheck(done);
      const c = this.ports.client.report;
      const w = this.ports.worker.report;
      this.log(
        `fuzz: ${c.frames} client / ${w.frames} worker frames, ${c.connections + w.connections} connections, RSS ${this.rssMax.toFixed(1)} MiB max, ${((Date.now() - this.started) / 1000).toFixed(1)} s`,
      );
      if (done) {
        break;
      }
    }
    return {
      seed: this.options.seed,
      framesPerPort,
      ports: { client: this.ports.client.report, worker: this.ports.worker.report },
      checks: this.checks,
      durationMs: Date.now() - this.started,
      rssStartMiB: this.rssStart,
      rssMaxMiB: this.rssMax,
      rssEndMiB: this.rssMiB(),
      rssLimitMiB: this.rssLimit(),
      jobsCreated: this.jobsCreated,
    };
  }

  /** Stops every lane: pending waits end as the sockets close. */
  abort(): void {
    this.aborted = true;
    if (this.rssTimer !== null) {
      clearInterval(this.rssTimer);
    }
    for (const p of this.peers) {
      p.destroy();
    }
    this.monitor?.destroy();
  }
}

function decodeFrame(bytes: Buffer): unknown {
  if (bytes.length < 4 || bytes.length !== 4 + bytes.readUInt32BE(0)) {
    return undefined;
  }
  try {
    return unpackr.unpack(bytes.subarray(4));
  } catch {
    return undefined;
  }
}

/**
 * Starts a server in a fresh harness environment, fuzzes both of its ports, checks its health
 * between rounds, and returns the figures. Throws FuzzFailure (naming seed and case) on a
 * failed check. The server and every socket are gone when it returns.
 */
export async function runFuzz(options: FuzzOptions): Promise<FuzzReport> {
  if (!Number.isSafeInteger(options.seed) || options.seed < 0) {
    throw new Error(`the seed must be a non-negative integer, not ${options.seed}`);
  }
  const env = await HqEnv.create();
  let run: FuzzRun | null = null;
  try {
    await env.startServer(options.journal === true ? ['--journal', env.path('fuzz.journal')] : []);
    // Something for selectors to find: an open job and a job of three waiting tasks.
    await env.command(['job', 'open']);
    await env.command(['submit', '--array', '1-3', '--', 'true']);
    const access = JSON.parse(
      fs.readFileSync(path.join(env.serverDir, 'hq-current', 'access.json'), 'utf8'),
    ) as Access;
    run = new FuzzRun(options, env, access);
    return await run.run();
  } catch (e) {
    run?.abort();
    if (e instanceof Error && !(e instanceof FuzzFailure)) {
      e.message = `fuzz run with seed ${options.seed} failed: ${e.message}`;
    }
    if (e instanceof Error && env.server !== null) {
      e.message += `\nserver stderr (tail):\n${env.server.stderr().slice(-4000)}`;
    }
    throw e;
  } finally {
    run?.abort();
    await env.close();
  }
}

/** The figures of a run as text lines (for the script and the test output). */
export function formatReport(report: FuzzReport): string[] {
  const lines: string[] = [];
  const ports = ['client', 'worker'] as const;
  const pad = (s: string, n: number): string => s.padEnd(n);
  const num = (n: number): string => n.toLocaleString('en-US').padStart(9);
  lines.push(
    `seed ${report.seed}, ${report.framesPerPort.toLocaleString('en-US')} frames per port`,
  );
  lines.push(`${pad('', 22)}${ports.map((p) => p.padStart(9)).join(' ')}`);
  const row = (label: string, f: (r: PortReport) => number): void => {
    lines.push(`${pad(label, 22)}${ports.map((p) => num(f(report.ports[p]))).join(' ')}`);
  };
  row('frames', (r) => r.frames);
  for (const c of CATEGORIES) {
    row(`  ${c}`, (r) => r.byCategory[c]);
  }
  row('cases', (r) => r.cases);
  row('connections', (r) => r.connections);
  row('refused handshakes', (r) => r.refusedHandshakes);
  row('closed by the server', (r) => r.closedByServer);
  row('ok answers', (r) => r.okAnswers);
  row('error answers', (r) => r.errorAnswers);
  row('registered', (r) => r.registered);
  row('probes / barriers', (r) => r.syncFrames);
  lines.push(`jobs created ${report.jobsCreated}, health checks ${report.checks}`);
  lines.push(
    `duration ${(report.durationMs / 1000).toFixed(1)} s; server RSS start ${report.rssStartMiB.toFixed(1)} MiB, max ${report.rssMaxMiB.toFixed(1)} MiB, end ${report.rssEndMiB.toFixed(1)} MiB (bound ${report.rssLimitMiB.toFixed(1)} MiB)`,
  );
  return lines;
}
