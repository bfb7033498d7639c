/**
 * End-to-end test harness: runs the built `dist/hq` as real processes talking real TLS over
 * loopback, in a private temporary directory per environment.
 *
 * Rules it enforces for every test that uses it:
 * - every server and worker is spawned detached (its own process group) with stdout/stderr in
 *   files under the environment's directory, and is killed (the whole group) by `close()`;
 * - task processes started by workers carry a marker in their environment, so `close()` also
 *   finds and kills tasks that outlived a killed worker;
 * - there are no fixed sleeps: everything waits with `waitFor`, which polls with a deadline;
 * - `close()` removes the temporary directory (set HQ_TEST_KEEP=1 to keep it for debugging).
 *
 * Use `withEnv(async (env) => { ... })` inside a test so that cleanup runs even when it fails.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export const ROOT = path.resolve(import.meta.dirname, '..', '..');
/** Submit flags for tasks whose output nobody reads. */
export const NO_OUTPUT = ['--stdout', 'none', '--stderr', 'none'] as const;

/**
 * The `hq` under test: the bundle, or another build (HQ_TEST_BIN, an absolute path): the single
 * executable (`HQ_TEST_BIN=$PWD/dist/hq-linux-x64 npm test`), or an older build to show a test
 * fails there.
 */
export const HQ_BIN = process.env['HQ_TEST_BIN'] ?? path.join(ROOT, 'dist', 'hq');

const MARKER_VAR = 'HQTEST_MARKER';
const DEFAULT_WAIT_MS = 20_000;
const DEFAULT_COMMAND_TIMEOUT_MS = 30_000;
const POLL_MS = 75;

// ---- waiting ---------------------------------------------------------------------------------

/** Thrown inside a `waitFor` callback to stop waiting at once: the outcome will not change. */
export class WaitAbort extends Error {}

export interface WaitOptions {
  timeoutMs?: number;
  intervalMs?: number;
  /** What is being waited for, for the timeout message. */
  message?: string;
}

/**
 * Polls `fn` until it returns a truthy value (which is returned) or the deadline passes. Errors
 * thrown by `fn` count as "not yet" (the last one is included in the timeout error), except
 * WaitAbort, which ends the wait at once.
 */
export async function waitFor<T>(
  fn: () => T | Promise<T>,
  options: WaitOptions = {},
): Promise<NonNullable<T>> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_WAIT_MS;
  const intervalMs = options.intervalMs ?? POLL_MS;
  const deadline = Date.now() + timeoutMs;
  let last: unknown = undefined;
  for (let attempt = 0; ; attempt++) {
    try {
      const value = await fn();
      if (value) {
        return value;
      }
      last = value;
    } catch (e) {
      if (e instanceof WaitAbort) {
        throw e;
      }
      last = e;
    }
    if (Date.now() >= deadline) {
      const detail = last instanceof Error ? last.message : JSON.stringify(last);
      throw new Error(
        `Timed out after ${timeoutMs} ms (${attempt + 1} attempts) waiting for ${options.message ?? 'a condition'}; last result: ${detail}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

// ---- processes -------------------------------------------------------------------------------

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** Whether `pid` is a live process (a zombie counts as dead). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 3 (after the parenthesised command name) is the state.
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return true; // no /proc: trust kill(0)
  }
}

interface ProcEntry {
  pid: number;
  ppid: number;
  pgrp: number;
  /** The state letter of /proc/<pid>/stat (Z: zombie). */
  state: string;
}

/** Every process of the machine as /proc shows it (empty without /proc). */
function processTable(): ProcEntry[] {
  let entries: string[];
  try {
    entries = fs.readdirSync('/proc');
  } catch {
    return [];
  }
  const out: ProcEntry[] = [];
  for (const name of entries) {
    if (!/^\d+$/.test(name)) {
      continue;
    }
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
      // After the parenthesised command name: state, ppid, pgrp.
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.push({
        pid: Number(name),
        state: rest[0] ?? '',
        ppid: Number(rest[1]),
        pgrp: Number(rest[2]),
      });
    } catch {
      // the process went away meanwhile
    }
  }
  return out;
}

/** Live (non-zombie) members of a process group, found through /proc. */
export function groupMembers(pgid: number): number[] {
  if (!fs.existsSync('/proc')) {
    return isAlive(pgid) ? [pgid] : [];
  }
  return processTable()
    .filter((p) => p.pgrp === pgid && p.state !== 'Z' && p.state !== 'X')
    .map((p) => p.pid);
}

/** Every descendant of `pid` (through /proc), for checking that a killed tree is gone. */
export function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const p of processTable()) {
    const list = children.get(p.ppid) ?? [];
    list.push(p.pid);
    children.set(p.ppid, list);
  }
  const out: number[] = [];
  const todo = [pid];
  for (let next = todo.pop(); next !== undefined; next = todo.pop()) {
    for (const child of children.get(next) ?? []) {
      out.push(child);
      todo.push(child);
    }
  }
  return out;
}

/** The names (comm) of a process's children, e.g. where a worker's task launchers show up. */
export function childNames(pid: number): string[] {
  try {
    const children = fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim();
    return children === ''
      ? []
      : children.split(' ').map((c) => fs.readFileSync(`/proc/${c}/comm`, 'utf8').trim());
  } catch {
    return [];
  }
}

function killGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // already gone
  }
}

/** A long-running `hq` process (server or worker) started by the harness. */
export class ManagedProcess {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  readonly stdoutPath: string;
  readonly stderrPath: string;
  status: ExitStatus | null = null;
  readonly exited: Promise<ExitStatus>;

  constructor(name: string, child: ChildProcess, stdoutPath: string, stderrPath: string) {
    this.name = name;
    this.child = child;
    if (child.pid === undefined) {
      throw new Error(`Cannot start ${name}: no pid (is ${HQ_BIN} built? run \`npm run build\`)`);
    }
    this.pid = child.pid;
    this.stdoutPath = stdoutPath;
    this.stderrPath = stderrPath;
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.status = { code, signal };
        resolve(this.status);
      });
    });
    child.once('error', () => undefined);
  }

  get isRunning(): boolean {
    return this.status === null;
  }

  stdout(): string {
    return readIfExists(this.stdoutPath);
  }

  stderr(): string {
    return readIfExists(this.stderrPath);
  }

  /** Sends `signal` to the process group of this process. */
  signal(signal: NodeJS.Signals): void {
    if (this.isRunning) {
      killGroup(this.pid, signal);
    }
  }

  /** Resolves with the exit code once the process has exited; fails after `timeoutMs`. */
  async waitForExit(timeoutMs = DEFAULT_WAIT_MS): Promise<ExitStatus> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new Error(
              `${this.name} (pid ${this.pid}) did not exit within ${timeoutMs} ms; stderr:\n${this.stderr()}`,
            ),
          ),
        timeoutMs,
      );
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}

function readIfExists(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

// ---- tables ----------------------------------------------------------------------------------

/** One table of cli output: its rows of trimmed cells, grouped into sections by rules. */
export interface Table {
  sections: string[][][];
}

function isRule(line: string): boolean {
  return /^\+[-+]+\+$/.test(line);
}

/**
 * Parses every table in `text`. Rows are lines starting with `|`; cells are split on `|` and
 * trimmed (so a cell must not contain `|`). Lines that are not part of a table (log lines,
 * sentences) are ignored. A table ends at a rule followed directly by another rule, at a rule of
 * different widths, or at a non-table line.
 */
export function parseTables(text: string): Table[] {
  const tables: Table[] = [];
  let current: Table | null = null;
  let currentRule: string | null = null;
  let previousWasRule = false;
  for (const raw of text.split('\n')) {
    const line = raw.trimEnd();
    if (isRule(line)) {
      if (current === null || previousWasRule || line !== currentRule) {
        current = { sections: [] };
        tables.push(current);
        currentRule = line;
      } else {
        current.sections.push([]);
      }
      previousWasRule = true;
      continue;
    }
    if (line.startsWith('|') && current !== null) {
      if (previousWasRule && current.sections.length === 0) {
        current.sections.push([]);
      }
      const cells = line
        .split('|')
        .slice(1, -1)
        .map((c) => c.trim());
      current.sections[current.sections.length - 1]!.push(cells);
      previousWasRule = false;
      continue;
    }
    current = null;
    currentRule = null;
    previousWasRule = false;
  }
  for (const t of tables) {
    t.sections = t.sections.filter((s) => s.length > 0);
  }
  return tables.filter((t) => t.sections.length > 0);
}

/** Rows of a table with continuation rows (empty first cell) merged into the row above. */
function mergeContinuations(rows: string[][]): string[][] {
  const out: string[][] = [];
  for (const row of rows) {
    const prev = out[out.length - 1];
    if (prev !== undefined && row[0] === '') {
      row.forEach((cell, i) => {
        if (i > 0 && cell !== '') {
          prev[i] = prev[i] === '' ? cell : `${prev[i]}\n${cell}`;
        }
      });
    } else {
      out.push([...row]);
    }
  }
  return out;
}

/** A key/value table as an ordered list of [key, value] pairs (multi-line values joined). */
export function verticalTable(text: string, index = 0): [string, string][] {
  const table = parseTables(text)[index];
  if (table === undefined) {
    throw new Error(`No table #${index} in output:\n${text}`);
  }
  return mergeContinuations(table.sections.flat()).map((r) => [r[0] ?? '', r.slice(1).join(' | ')]);
}

/** A key/value table as a Map. */
export function verticalMap(text: string, index = 0): Map<string, string> {
  return new Map(verticalTable(text, index));
}

/** A table with a header row as records keyed by the header cells. */
export function horizontalTable(text: string, index = 0): Record<string, string>[] {
  const table = parseTables(text)[index];
  if (table === undefined) {
    throw new Error(`No table #${index} in output:\n${text}`);
  }
  const [headerSection, ...rest] = table.sections;
  const header = headerSection?.[0] ?? [];
  const body = mergeContinuations([...(headerSection?.slice(1) ?? []), ...rest.flat()]);
  return body.map((row) => Object.fromEntries(header.map((h, i) => [h, row[i] ?? ''])));
}

// ---- the environment -------------------------------------------------------------------------

export interface CommandOptions {
  /** The command is expected to exit with a non-zero code (else the call throws). */
  expectFail?: boolean;
  /** Adds `--output-mode json` and parses stdout into `json`. */
  json?: boolean;
  cwd?: string;
  env?: Record<string, string>;
  stdin?: string;
  /** Another server directory; `null` passes no `--server-dir` at all. */
  serverDir?: string | null;
  timeoutMs?: number;
}

export interface CommandResult {
  args: string[];
  stdout: string;
  stderr: string;
  code: number | null;
  signal: NodeJS.Signals | null;
  durationMs: number;
  json: unknown;
}

export interface WorkerOptions {
  cpus?: number | string;
  args?: string[];
  hostname?: string;
  /** Wait until the worker is listed as RUNNING (default true). */
  wait?: boolean;
  serverDir?: string;
  /** Extra environment of the worker process. */
  env?: Record<string, string>;
  /** A command that execs `hq` (e.g. `ip netns exec <ns>`), so the pid stays the worker's. */
  wrapper?: string[];
}

export interface WorkerHandle {
  /** The id the server gave the worker (0 when not waited for). */
  id: number;
  hostname: string;
  workDir: string;
  process: ManagedProcess;
}

export type JobState = 'WAITING' | 'RUNNING' | 'FINISHED' | 'FAILED' | 'CANCELED' | 'ABORTED';
const TERMINAL_JOB_STATES = new Set<string>(['FINISHED', 'FAILED', 'CANCELED', 'ABORTED']);

const liveEnvs = new Set<HqEnv>();
// Last resort: if the test process exits without `close()` (a runner timeout), take every
// spawned process group down with it.
process.once('exit', () => {
  for (const env of liveEnvs) {
    env.killAllSync();
  }
});

export class HqEnv {
  readonly dir: string;
  readonly serverDir: string;
  readonly marker: string;
  server: ManagedProcess | null = null;
  private readonly processes: ManagedProcess[] = [];
  private readonly commands = new Set<ChildProcess>();
  private readonly extraGroups = new Set<number>();
  private workerCounter = 0;
  private serverCounter = 0;
  private closed = false;

  private constructor(dir: string) {
    this.dir = dir;
    this.serverDir = path.join(dir, 'hq-server');
    this.marker = `${path.basename(dir)}-${randomBytes(4).toString('hex')}`;
  }

  static async create(): Promise<HqEnv> {
    await fs.promises.access(HQ_BIN, fs.constants.X_OK).catch(() => {
      throw new Error(`${HQ_BIN} is missing or not executable: run \`npm run build\` first`);
    });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hq-e2e-'));
    const env = new HqEnv(dir);
    liveEnvs.add(env);
    return env;
  }

  /** The environment for every `hq` process: no ambient HQ/PBS/Slurm settings, plus the marker. */
  processEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) {
      if (
        v === undefined ||
        k.startsWith('HQ_') ||
        k.startsWith('PBS_') ||
        k.startsWith('SLURM_') ||
        k === 'RUST_LOG' ||
        k === 'NODE_TEST_CONTEXT'
      ) {
        continue;
      }
      env[k] = v;
    }
    env[MARKER_VAR] = this.marker;
    env['NO_COLOR'] = '1';
    return { ...env, ...extra };
  }

  path(...parts: string[]): string {
    return path.join(this.dir, ...parts);
  }

  /** Starts a detached `hq` process whose stdout/stderr go to `<dir>/<name>.out|.err`. */
  spawnHq(
    name: string,
    args: string[],
    options: { cwd?: string; env?: Record<string, string>; wrapper?: string[] } = {},
  ) {
    const stdoutPath = this.path(`${name}.out`);
    const stderrPath = this.path(`${name}.err`);
    const out = fs.openSync(stdoutPath, 'w');
    const err = fs.openSync(stderrPath, 'w');
    let child: ChildProcess;
    try {
      const [program, ...prefix] = [...(options.wrapper ?? []), HQ_BIN];
      child = spawn(program, [...prefix, ...args], {
        cwd: options.cwd ?? this.dir,
        env: this.processEnv(options.env),
        detached: true,
        stdio: ['ignore', out, err],
      });
    } finally {
      fs.closeSync(out);
      fs.closeSync(err);
    }
    const managed = new ManagedProcess(name, child, stdoutPath, stderrPath);
    this.processes.push(managed);
    return managed;
  }

  /**
   * `hq server start --host 127.0.0.1 ...args` in `serverDir`; resolves once
   * `hq-current/access.json` exists and the server has printed its info (fails at once if the
   * server exits first).
   */
  async startServer(
    args: string[] = [],
    options: { serverDir?: string; env?: Record<string, string> } = {},
  ): Promise<ManagedProcess> {
    const serverDir = options.serverDir ?? this.serverDir;
    const name = this.serverCounter++ === 0 ? 'server' : `server${this.serverCounter}`;
    const server = this.spawnHq(
      name,
      ['--server-dir', serverDir, 'server', 'start', '--host', '127.0.0.1', ...args],
      options.env === undefined ? {} : { env: options.env },
    );
    if (serverDir === this.serverDir) {
      this.server = server;
    }
    const access = path.join(serverDir, 'hq-current', 'access.json');
    await waitFor(
      () => {
        if (!server.isRunning) {
          throw new Error(
            `server exited early (${JSON.stringify(server.status)}): ${server.stderr()}`,
          );
        }
        // Waiting for the info too: the tests that signal the server test a fully started one.
        return fs.existsSync(access) && server.stdout().length > 0;
      },
      { message: `${access} to appear and the server to print its info` },
    );
    return server;
  }

  /** Starts `hq worker start` with no resource detection; waits until it is RUNNING. */
  async startWorker(options: WorkerOptions = {}): Promise<WorkerHandle> {
    const n = ++this.workerCounter;
    const hostname = options.hostname ?? `worker${n}`;
    const workDir = this.path(`work-${hostname}`);
    const proc = this.spawnHq(
      `worker-${hostname}`,
      [
        '--server-dir',
        options.serverDir ?? this.serverDir,
        'worker',
        'start',
        '--work-dir',
        workDir,
        '--detect-resources=none',
        '--hostname',
        hostname,
        '--cpus',
        String(options.cpus ?? 1),
        ...(options.args ?? []),
      ],
      {
        ...(options.env === undefined ? {} : { env: options.env }),
        ...(options.wrapper === undefined ? {} : { wrapper: options.wrapper }),
      },
    );
    const handle: WorkerHandle = { id: 0, hostname, workDir, process: proc };
    if (options.wait === false) {
      return handle;
    }
    const row = await waitFor(
      async () => {
        if (!proc.isRunning) {
          throw new Error(`worker exited early (${JSON.stringify(proc.status)}): ${proc.stderr()}`);
        }
        const rows = horizontalTable((await this.command(['worker', 'list'])).stdout);
        return rows.find((r) => r['Hostname'] === hostname && r['State'] === 'RUNNING');
      },
      { message: `worker ${hostname} to be RUNNING` },
    );
    handle.id = Number(row['ID']);
    return handle;
  }

  /** Runs `hq --server-dir <dir> [--output-mode json] ...args` to completion. */
  command(args: string[], options: CommandOptions = {}): Promise<CommandResult> {
    const serverDir = options.serverDir === undefined ? this.serverDir : options.serverDir;
    const full = [
      ...(serverDir === null ? [] : ['--server-dir', serverDir]),
      ...(options.json === true ? ['--output-mode', 'json'] : []),
      ...args,
    ];
    const timeoutMs = options.timeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
    const started = Date.now();
    return new Promise((resolve, reject) => {
      const child = spawn(HQ_BIN, full, {
        cwd: options.cwd ?? this.dir,
        env: this.processEnv(options.env),
        stdio: [options.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      });
      this.commands.add(child);
      const stdout: Buffer[] = [];
      const stderr: Buffer[] = [];
      child.stdout!.on('data', (d: Buffer) => stdout.push(d));
      child.stderr!.on('data', (d: Buffer) => stderr.push(d));
      if (options.stdin !== undefined) {
        child.stdin!.on('error', () => undefined);
        child.stdin!.end(options.stdin);
      }
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.once('error', (e) => {
        clearTimeout(timer);
        this.commands.delete(child);
        reject(e);
      });
      child.once('close', (code, signal) => {
        clearTimeout(timer);
        this.commands.delete(child);
        const result: CommandResult = {
          args: full,
          stdout: Buffer.concat(stdout).toString('utf8'),
          stderr: Buffer.concat(stderr).toString('utf8'),
          code,
          signal,
          durationMs: Date.now() - started,
          json: undefined,
        };
        const describe = (): string =>
          `hq ${full.join(' ')}\nexit: ${code} ${signal ?? ''}\nstdout:\n${result.stdout}\nstderr:\n${result.stderr}`;
        if (signal !== null) {
          reject(new Error(`command killed (timeout ${timeoutMs} ms?): ${describe()}`));
          return;
        }
        if (options.expectFail === true && code === 0) {
          reject(new Error(`command was expected to fail: ${describe()}`));
          return;
        }
        if (options.expectFail !== true && code !== 0) {
          reject(new Error(`command failed: ${describe()}`));
          return;
        }
        if (options.json === true) {
          try {
            result.json = JSON.parse(result.stdout);
          } catch {
            reject(new Error(`stdout is not one JSON value: ${describe()}`));
            return;
          }
        }
        resolve(result);
      });
    });
  }

  /** stdout of a successful command. */
  async output(args: string[], options: CommandOptions = {}): Promise<string> {
    return (await this.command(args, options)).stdout;
  }

  /** Parsed JSON output of a successful command. */
  async json<T = unknown>(args: string[], options: CommandOptions = {}): Promise<T> {
    return (await this.command(args, { ...options, json: true })).json as T;
  }

  /** The State column of `hq job list --all` for `jobId` (undefined when not listed). */
  async jobState(jobId: number): Promise<string | undefined> {
    const rows = horizontalTable(await this.output(['job', 'list', '--all']));
    // An open job is listed as `*<id>`.
    return rows.find((r) => r['ID']?.replace(/^\*/, '') === String(jobId))?.['State'];
  }

  /**
   * Waits until job `jobId` is in `state`. Fails at once when the job ends in another terminal
   * state (with `job info` in the message), so a wrong outcome is not a timeout.
   */
  async waitForJobState(
    jobId: number,
    state: JobState,
    timeoutMs = DEFAULT_WAIT_MS,
  ): Promise<void> {
    await waitFor(
      async () => {
        const current = await this.jobState(jobId);
        if (current === state) {
          return true;
        }
        if (current !== undefined && TERMINAL_JOB_STATES.has(current)) {
          const info = await this.command(['job', 'info', String(jobId)]);
          throw new WaitAbort(`job ${jobId} is ${current}, expected ${state}:\n${info.stdout}`);
        }
        return false;
      },
      { timeoutMs, message: `job ${jobId} to be ${state}` },
    );
  }

  /** Rows of `hq worker list --all`. */
  async workerRows(): Promise<Record<string, string>[]> {
    return horizontalTable(await this.output(['worker', 'list', '--all']));
  }

  /** Waits until the worker (by id, or by hostname) has `state` in `worker list --all`. */
  async waitForWorkerState(
    worker: number | string,
    state: string,
    timeoutMs = DEFAULT_WAIT_MS,
  ): Promise<Record<string, string>> {
    return waitFor(
      async () => {
        const rows = await this.workerRows();
        const row = rows.find((r) =>
          typeof worker === 'number' ? r['ID'] === String(worker) : r['Hostname'] === worker,
        );
        return row !== undefined && row['State'] === state ? row : undefined;
      },
      { timeoutMs, message: `worker ${worker} to be ${state}` },
    );
  }

  /** The pid from the `Process pid` row of `hq worker info <id>`. */
  async workerPid(workerId: number): Promise<number> {
    const info = verticalMap(await this.output(['worker', 'info', String(workerId)]));
    const pid = Number(info.get('Process pid'));
    if (!Number.isInteger(pid) || pid <= 0) {
      throw new Error(`worker ${workerId} has no valid Process pid: ${info.get('Process pid')}`);
    }
    return pid;
  }

  /** Sends `signal` to worker `workerId` (found by its pid) and waits until it exits. */
  async killWorker(workerId: number, signal: NodeJS.Signals = 'SIGTERM'): Promise<ExitStatus> {
    const pid = await this.workerPid(workerId);
    const proc = this.processes.find((p) => p.pid === pid);
    if (proc === undefined) {
      throw new Error(`worker ${workerId} (pid ${pid}) was not started by this environment`);
    }
    proc.signal(signal);
    return proc.waitForExit();
  }

  /** Also kill this process group in `close()` (e.g. tasks left behind by a killed worker). */
  trackProcessGroup(pgid: number): void {
    this.extraGroups.add(pgid);
  }

  /** Pids of live processes carrying this environment's marker (tasks included). */
  markedProcesses(): number[] {
    let entries: string[];
    try {
      entries = fs.readdirSync('/proc');
    } catch {
      return [];
    }
    const needle = Buffer.from(`${MARKER_VAR}=${this.marker}\0`);
    const out: number[] = [];
    for (const name of entries) {
      if (!/^\d+$/.test(name) || Number(name) === process.pid) {
        continue;
      }
      try {
        if (fs.readFileSync(`/proc/${name}/environ`).includes(needle) && isAlive(Number(name))) {
          out.push(Number(name));
        }
      } catch {
        // gone, or not ours to read
      }
    }
    return out;
  }

  /** SIGKILL to everything this environment started; synchronous (usable in an exit hook). */
  killAllSync(): void {
    for (const p of this.processes) {
      p.signal('SIGKILL');
    }
    for (const c of this.commands) {
      c.kill('SIGKILL');
    }
    for (const g of this.extraGroups) {
      killGroup(g, 'SIGKILL');
    }
    for (const pid of this.markedProcesses()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  }

  /**
   * Kills every process group the environment started (and any task that outlived its worker),
   * waits for them to be gone, and removes the temporary directory.
   */
  async close(): Promise<void> {
    if (this.closed) {
      return;
    }
    this.closed = true;
    try {
      this.killAllSync();
      await Promise.all(this.processes.map((p) => p.waitForExit(10_000)));
      await waitFor(
        () => {
          const left = this.markedProcesses();
          for (const pid of left) {
            try {
              process.kill(pid, 'SIGKILL');
            } catch {
              // gone
            }
          }
          return left.length === 0;
        },
        { timeoutMs: 10_000, message: 'every process of the environment to be gone' },
      );
    } finally {
      liveEnvs.delete(this);
      if (process.env['HQ_TEST_KEEP'] === undefined) {
        fs.rmSync(this.dir, { recursive: true, force: true });
      } else {
        process.stderr.write(`keeping ${this.dir}\n`);
      }
    }
  }

  /** Everything the long-running processes wrote, for failure messages. */
  logs(): string {
    return this.processes
      .map((p) => `--- ${p.name} (pid ${p.pid}) stdout:\n${p.stdout()}\n--- stderr:\n${p.stderr()}`)
      .join('\n');
  }
}

/** Runs `body` with a fresh environment and always closes it. */
export async function withEnv<T>(body: (env: HqEnv) => Promise<T>): Promise<T> {
  const env = await HqEnv.create();
  try {
    return await body(env);
  } catch (e) {
    if (e instanceof Error) {
      e.message += `\n\nProcess logs of ${env.dir}:\n${env.logs()}`;
    }
    throw e;
  } finally {
    await env.close();
  }
}

/** The version the built binary reports (`hq --version`). */
export function hqVersion(): string {
  return execFileSync(HQ_BIN, ['--version'], { encoding: 'utf8', timeout: 10_000 }).trim();
}

/** A file's text (task output and the like). */
export function read(file: string): string {
  return fs.readFileSync(file, 'utf8');
}

/** Checks that every object in `value` has its keys in sorted order; returns how many it saw. */
export function assertSortedKeys(value: unknown, where = '$'): number {
  if (Array.isArray(value)) {
    return value.reduce((n: number, v, i) => n + assertSortedKeys(v, `${where}[${i}]`), 0);
  }
  if (typeof value === 'object' && value !== null) {
    const keys = Object.keys(value);
    assert.deepEqual(keys, [...keys].sort(), `keys of ${where} are sorted`);
    let n = 1;
    for (const [k, v] of Object.entries(value)) {
      n += assertSortedKeys(v, `${where}.${k}`);
    }
    return n;
  }
  return 0;
}
