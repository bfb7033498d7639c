/**
 * A server and workers on this machine as real `hq` processes in a fresh server directory, for
 * tests, notebooks and small runs (upstream runs them as threads; processes keep a crash of
 * either side apart and match the Python package).
 *
 * No process outlives the cluster: `stop()` stops the server gracefully and kills whatever has
 * not exited after a grace period, and a process 'exit' hook sends SIGTERM to the processes of
 * clusters never stopped. The children are unref'd, so a forgotten cluster does not keep the
 * program alive; it ends and the hook takes the cluster down.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { openSession, type ClientSession } from '../client/session.js';
import { errorMessage } from '../common/errors.js';
import { ACCESS_FILE, CURRENT_LINK } from '../common/server-dir.js';
import { ClusterError } from './api-errors.js';
import { Client, type ClientOptions } from './client.js';
import { stopServer } from './operations.js';

export interface WorkerConfig {
  /** CPUs the worker offers (default: every CPU of this machine). */
  cores?: number;
}

export interface LocalClusterOptions {
  /** Workers to start with the server. */
  workers?: readonly WorkerConfig[];
  /**
   * The server directory (default: a new temporary one, removed by `stop()`; a given one is
   * kept).
   */
  serverDir?: string;
  /** How long a process may take to start or to stop (default 20 s). */
  timeoutMs?: number;
}

const POLL_MS = 50;
const DEFAULT_TIMEOUT_MS = 20_000;
const TERM_GRACE_MS = 5_000;

/**
 * The command that runs `hq`: $HQ_BIN as an executable, else the package's bundle `dist/hq`
 * under this Node (the bundle sits next to `dist/api/`; `../../dist/hq` serves the sources).
 */
export function hqCommand(): string[] {
  const fromEnv = process.env['HQ_BIN'];
  if (fromEnv !== undefined && fromEnv !== '') {
    return [fromEnv];
  }
  for (const rel of ['../hq', '../../dist/hq']) {
    const file = fileURLToPath(new URL(rel, import.meta.url));
    if (fs.existsSync(file) && fs.statSync(file).isFile()) {
      return [process.execPath, file];
    }
  }
  throw new ClusterError(
    'The hq executable was not found next to the API (dist/hq): set HQ_BIN or build the package',
  );
}

class HqProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly log: string;
  exited = false;
  readonly exit: Promise<void>;

  /**
   * `ownedByUs`: the process stops when our end of its stdin closes (`HQ_STOP_ON_STDIN_EOF`,
   * honoured by `hq server start`), which the OS does however this program ends, SIGKILL
   * included: the one case the exit hook cannot cover.
   */
  constructor(args: string[], log: string, cwd: string, ownedByUs = false) {
    const [program, ...prefix] = hqCommand();
    const fd = fs.openSync(log, 'a');
    try {
      this.child = spawn(program!, [...prefix, ...args], {
        cwd,
        stdio: [ownedByUs ? 'pipe' : 'ignore', fd, fd],
        env: ownedByUs ? { ...process.env, HQ_STOP_ON_STDIN_EOF: '1' } : process.env,
      });
    } finally {
      fs.closeSync(fd);
    }
    // The pipe must not keep this program alive either.
    (this.child.stdin as (NodeJS.WritableStream & { unref?: () => void }) | null)?.unref?.();
    this.log = log;
    this.exit = new Promise((resolve) => {
      this.child.once('exit', () => {
        this.exited = true;
        resolve();
      });
      this.child.once('error', () => {
        this.exited = true;
        resolve();
      });
    });
    if (this.child.pid === undefined) {
      throw new ClusterError(`Cannot start ${program}: ${this.tail()}`);
    }
    this.pid = this.child.pid;
    this.child.unref();
  }

  tail(): string {
    try {
      return fs.readFileSync(this.log, 'utf8').split('\n').slice(-20).join('\n');
    } catch {
      return '';
    }
  }

  signal(signal: NodeJS.Signals): void {
    if (!this.exited) {
      try {
        this.child.kill(signal);
      } catch {
        // already gone
      }
    }
  }

  /** Resolves true when the process exited within `ms`. */
  async exitedWithin(ms: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), ms);
    });
    try {
      return await Promise.race([this.exit.then(() => true), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** SIGTERM after `graceMs`, SIGKILL after as long again; resolves once it has exited. */
  async ensureExit(graceMs: number): Promise<void> {
    if (await this.exitedWithin(graceMs)) {
      return;
    }
    this.signal('SIGTERM');
    if (await this.exitedWithin(graceMs)) {
      return;
    }
    this.signal('SIGKILL');
    await this.exit;
  }
}

const liveClusters = new Set<LocalCluster>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    // 'exit' handlers must be synchronous: signals are all that can be sent from here.
    process.on('exit', () => {
      for (const cluster of liveClusters) {
        cluster.killSync();
      }
    });
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export class LocalCluster {
  readonly serverDir: string;
  readonly #ownsDir: boolean;
  readonly #timeoutMs: number;
  readonly #server: HqProcess;
  readonly #workers: HqProcess[] = [];
  readonly #clients = new Set<Client>();
  #stopped = false;

  private constructor(serverDir: string, ownsDir: boolean, timeoutMs: number, server: HqProcess) {
    this.serverDir = serverDir;
    this.#ownsDir = ownsDir;
    this.#timeoutMs = timeoutMs;
    this.#server = server;
  }

  /** Starts the server (and `workers`); resolves once it accepts clients and they are registered. */
  static async start(options: LocalClusterOptions = {}): Promise<LocalCluster> {
    const ownsDir = options.serverDir === undefined;
    const serverDir =
      options.serverDir === undefined
        ? fs.mkdtempSync(path.join(os.tmpdir(), 'hq-local-'))
        : path.resolve(options.serverDir);
    const logs = path.join(serverDir, 'logs');
    fs.mkdirSync(logs, { recursive: true });
    installExitHook();
    // 127.0.0.1: the cluster is local, and the machine's hostname need not resolve.
    const server = new HqProcess(
      ['--server-dir', serverDir, 'server', 'start', '--host', '127.0.0.1'],
      path.join(logs, 'server.log'),
      serverDir,
      true,
    );
    const cluster = new LocalCluster(
      serverDir,
      ownsDir,
      options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      server,
    );
    liveClusters.add(cluster);
    try {
      const session = await cluster.#waitFor('the server to accept clients', async () => {
        if (!fs.existsSync(path.join(serverDir, CURRENT_LINK, ACCESS_FILE))) {
          return null;
        }
        return openSession(serverDir);
      });
      session.close();
      for (const w of options.workers ?? []) {
        await cluster.startWorker(w);
      }
    } catch (e) {
      await cluster.#teardown(false);
      throw e;
    }
    return cluster;
  }

  get stopped(): boolean {
    return this.#stopped;
  }

  /** Pids of the server and the workers started so far (for diagnostics). */
  get pids(): { server: number; workers: number[] } {
    return { server: this.#server.pid, workers: this.#workers.map((w) => w.pid) };
  }

  /**
   * Polls `probe` until it returns a value; fails when the server exits or the time is up,
   * with the tail of the server's log.
   */
  async #waitFor<T>(
    what: string,
    probe: () => Promise<T | null>,
    also: HqProcess | null = null,
  ): Promise<T> {
    const deadline = Date.now() + this.#timeoutMs;
    let last: unknown = null;
    for (;;) {
      for (const p of also === null ? [this.#server] : [this.#server, also]) {
        if (p.exited) {
          throw new ClusterError(`Waiting for ${what}: a process exited early:\n${p.tail()}`);
        }
      }
      try {
        const value = await probe();
        if (value !== null) {
          return value;
        }
      } catch (e) {
        last = e;
      }
      if (Date.now() >= deadline) {
        const detail = last === null ? '' : ` (${errorMessage(last)})`;
        const p = also ?? this.#server;
        throw new ClusterError(
          `Timed out after ${this.#timeoutMs} ms waiting for ${what}${detail}:\n${p.tail()}`,
        );
      }
      await sleep(POLL_MS);
    }
  }

  async #withSession<T>(body: (session: ClientSession) => Promise<T>): Promise<T> {
    const session = await openSession(this.serverDir);
    try {
      return await body(session);
    } finally {
      session.close();
    }
  }

  /** Starts a worker; resolves once the server has registered it. */
  async startWorker(config: WorkerConfig = {}): Promise<{ pid: number; workerId: number }> {
    if (this.#stopped) {
      throw new ClusterError('Attempting to add worker to a stopped server');
    }
    const cores = config.cores ?? os.availableParallelism();
    if (!Number.isInteger(cores) || cores < 1) {
      throw new ClusterError(`Invalid worker cores ${JSON.stringify(cores)}`);
    }
    const n = this.#workers.length + 1;
    const worker = new HqProcess(
      [
        '--server-dir',
        this.serverDir,
        'worker',
        'start',
        '--cpus',
        String(cores),
        '--detect-resources=none',
        '--work-dir',
        path.join(this.serverDir, 'worker', 'workdir'),
        '--on-server-lost=stop',
      ],
      path.join(this.serverDir, 'logs', `worker-${n}.log`),
      this.serverDir,
    );
    this.#workers.push(worker);
    const workerId = await this.#waitFor(
      `worker ${n} (pid ${worker.pid}) to register`,
      () =>
        this.#withSession(async (s) => {
          const workers = await s.call('worker-list', {});
          const w = workers.find((x) => x.configuration.pid === worker.pid && x.ended === null);
          return w === undefined ? null : w.id;
        }),
      worker,
    );
    return { pid: worker.pid, workerId };
  }

  /** A client connected to this cluster's server; closed by `stop()` if still open. */
  async client(options: Omit<ClientOptions, 'serverDir'> = {}): Promise<Client> {
    if (this.#stopped) {
      throw new ClusterError('The cluster is stopped');
    }
    const client = await Client.connect({ ...options, serverDir: this.serverDir });
    this.#clients.add(client);
    return client;
  }

  /**
   * Stops the server (the workers follow, as they stop when their server is lost) and waits
   * for every process; throws when called a second time.
   */
  async stop(): Promise<void> {
    if (this.#stopped) {
      throw new ClusterError('Attempting to stop an already stopped server');
    }
    let error: unknown = null;
    if (!this.#server.exited) {
      try {
        await this.#withSession((s) => stopServer(s));
      } catch (e) {
        // The connection may close before the answer; the process's exit is what counts.
        if (!(await this.#server.exitedWithin(TERM_GRACE_MS))) {
          error = e;
        }
      }
    }
    await this.#teardown(true);
    if (error !== null) {
      throw new ClusterError(`The server did not stop gracefully: ${errorMessage(error)}`, {
        cause: error,
      });
    }
  }

  /** Waits for (or kills) every process, closes the clients, removes an owned directory. */
  async #teardown(graceful: boolean): Promise<void> {
    this.#stopped = true;
    if (!graceful) {
      this.killSync();
    }
    for (const c of this.#clients) {
      c.close();
    }
    this.#clients.clear();
    try {
      await this.#server.ensureExit(Math.min(this.#timeoutMs, TERM_GRACE_MS * 2));
      await Promise.all(this.#workers.map((w) => w.ensureExit(TERM_GRACE_MS)));
    } finally {
      liveClusters.delete(this);
      if (this.#ownsDir) {
        fs.rmSync(this.serverDir, { recursive: true, force: true });
      }
    }
  }

  /** @internal For the exit hook: SIGTERM to every process still running. */
  killSync(): void {
    for (const p of [this.#server, ...this.#workers]) {
      p.signal('SIGTERM');
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (!this.#stopped) {
      await this.stop();
    }
  }
}
