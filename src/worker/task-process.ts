/**
 * Starts one task's program and reports how it ended. The program runs in its own session and
 * process group (`detached`), so stopping it reaches everything it started: SIGINT to the group,
 * then SIGKILL after STOP_GRACE_MS.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { constants as osConstants } from 'node:os';
import { getSystemErrorName } from 'node:util';
import {
  HqError,
  errorMessage,
  fsErrorText,
  makeDirectory,
  osErrorText,
} from '../common/errors.js';
import type { StdioDef } from '../transport/messages.js';
import type { Launcher } from './launcher.js';

export const STOP_GRACE_MS = 1000;
let stdinCounter = 0;
/** Streamed output pieces that arrive this close together are written as one chunk. */
const OUTPUT_COALESCE_MS = 5;
const ERROR_FILE_MAX_BYTES = 2048;

export type TaskOutcome = { state: 'finished' } | { state: 'failed'; error: string };

export interface TaskLaunch {
  args: string[];
  env: Record<string, string>;
  cwd: string;
  stdout: StdioDef;
  stderr: StdioDef;
  stdin: Uint8Array | null;
  /** Resolved paths for `file` stdio. */
  stdoutPath: string | null;
  stderrPath: string | null;
  timeLimitMs: number | null;
  taskDir: string | null;
  /** Where the temporary stdin file is made (the worker's work dir). */
  stdinDir: string;
  /** Starts the program cheaply when its stdio needs no pipes (see launcher.ts). */
  launcher: Launcher | null;
  /** Receives `pipe` stdio (streaming): data per channel (0 stdout, 1 stderr), then its end. */
  onOutput: ((channel: 0 | 1, data: Buffer) => void) | null;
  onOutputEnd: ((channel: 0 | 1) => void) | null;
}

/** What went wrong preparing a task, naming the path: `cannot open X: Read-only file system ...`. */
function preparationError(e: unknown): string {
  if (e instanceof HqError) {
    return e.message;
  }
  const err = e as NodeJS.ErrnoException;
  return err.path === undefined ? errorMessage(e) : `cannot open ${err.path}: ${fsErrorText(e)}`;
}

/**
 * Tasks are started through `setpriv --pdeathsig TERM`, so that a task dies with its worker even
 * when the worker is killed with SIGKILL and cannot clean up (Node cannot set PR_SET_PDEATHSIG
 * itself). Found once; without it tasks start directly.
 */
const SETPRIV_PATH = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => {
  try {
    fs.accessSync(p, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
});

/**
 * Finds the program as execvp would (PATH for bare names, else relative to the cwd), so that a
 * missing or non-executable program gets the same error as a direct spawn would give.
 */
function resolveProgram(
  file: string,
  env: Record<string, string>,
  cwd: string,
): { path: string } | { code: 'ENOENT' | 'EACCES' } {
  const candidates = file.includes('/')
    ? [path.resolve(cwd, file)]
    : (env['PATH'] ?? '/usr/local/bin:/usr/bin:/bin')
        .split(':')
        .map((dir) => path.resolve(cwd, dir === '' ? '.' : dir, file));
  let denied = false;
  for (const candidate of candidates) {
    try {
      const st = fs.statSync(candidate);
      if (!st.isFile()) {
        continue;
      }
      fs.accessSync(candidate, fs.constants.X_OK);
      return { path: candidate };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EACCES') {
        denied = true;
      }
    }
  }
  return { code: denied ? 'EACCES' : 'ENOENT' };
}

function signalName(signal: NodeJS.Signals): { num: number; name: string } {
  return { num: osConstants.signals[signal] ?? 0, name: signal };
}

function spawnErrorMessage(e: NodeJS.ErrnoException, launch: TaskLaunch): string {
  const file = launch.args[0] ?? '';
  const code = e.code ?? '';
  let context = '';
  if (code === 'ENOENT') {
    context = `\nThe program that you have tried to execute (\`${file}\`) was not found.`;
    if (!file.includes('/')) {
      const candidate = path.join(launch.cwd, file);
      try {
        if (fs.statSync(candidate).isFile()) {
          context += `\nThe file \`${candidate}\` exists, maybe you have meant \`./${file}\` instead?`;
        }
      } catch {
        // no such file next to the task either
      }
    }
  } else if (code === 'EACCES' && file.endsWith('.sh')) {
    context = `\nThe script that you have tried to execute (\`${file}\`) is not executable.\nTry making it executable or add a shebang line to it.`;
  }
  const text = fsErrorText(e);
  return `Cannot execute ${JSON.stringify(launch.args.join(' '))}: ${text}${context}`;
}

function openStdio(def: StdioDef, file: string | null): number | 'ignore' | 'pipe' {
  if (def.kind === 'file' && file !== null) {
    makeDirectory(path.dirname(file));
    return fs.openSync(file, 'w');
  }
  return def.kind === 'pipe' ? 'pipe' : 'ignore';
}

function readErrorFile(taskDir: string): string | null {
  const file = path.join(taskDir, 'hq-error');
  let data: Buffer;
  try {
    data = fs.readFileSync(file);
  } catch {
    return null;
  }
  if (data.length === 0) {
    return 'Task created an error file, but it is empty';
  }
  if (data.length > ERROR_FILE_MAX_BYTES) {
    return `${data.subarray(0, ERROR_FILE_MAX_BYTES).toString('utf8')}\n[The message was truncated]`;
  }
  return data.toString('utf8');
}

/**
 * Passes streamed output of one channel on. A program writing a line in pieces (an unbuffered
 * `print`) would otherwise make one stream chunk per piece: pieces arriving within a few
 * milliseconds become one chunk. `end` flushes at once, so nothing is held past the task's end.
 */
function outputSink(
  launch: TaskLaunch,
  channel: 0 | 1,
): { data: (chunk: Buffer) => void; end: () => void } {
  let pending: Buffer[] = [];
  let timer: NodeJS.Timeout | null = null;
  const flush = (): void => {
    if (timer !== null) {
      clearTimeout(timer);
      timer = null;
    }
    if (pending.length > 0) {
      const data = pending.length === 1 ? pending[0]! : Buffer.concat(pending);
      pending = [];
      launch.onOutput?.(channel, data);
    }
  };
  return {
    data: (chunk) => {
      pending.push(chunk);
      timer ??= setTimeout(flush, OUTPUT_COALESCE_MS);
    },
    end: () => {
      flush();
      launch.onOutputEnd?.(channel);
    },
  };
}

/** One started task; `outcome` settles once the program and its stdio are done. */
export class TaskProcess {
  readonly outcome: Promise<TaskOutcome>;
  /** The program's pid, which is also its process group (own session). */
  private pid: number | undefined = undefined;
  private stopReason: string | null = null;
  private killTimer: NodeJS.Timeout | null = null;
  private limitTimer: NodeJS.Timeout | null = null;
  private exited = false;

  private readonly launch: TaskLaunch;

  constructor(launch: TaskLaunch) {
    this.launch = launch;
    this.outcome = new Promise((resolve) => this.start(resolve));
  }

  private start(resolve: (o: TaskOutcome) => void): void {
    const launch = this.launch;
    const launcher = launch.launcher;
    if (
      launcher !== null &&
      launcher.isAlive &&
      (launcher.supportsPipes || (launch.stdout.kind !== 'pipe' && launch.stderr.kind !== 'pipe'))
    ) {
      this.startWithLauncher(launcher, resolve);
      return;
    }
    let out: number | 'ignore' | 'pipe' = 'ignore';
    let err: number | 'ignore' | 'pipe' = 'ignore';
    const closeFds = (): void => {
      for (const fd of [out, err]) {
        if (typeof fd === 'number') {
          try {
            fs.closeSync(fd);
          } catch {
            // already closed
          }
        }
      }
    };
    try {
      makeDirectory(launch.cwd);
      out = openStdio(launch.stdout, launch.stdoutPath);
      err = openStdio(launch.stderr, launch.stderrPath);
    } catch (e) {
      closeFds();
      resolve({ state: 'failed', error: `Cannot prepare the task: ${preparationError(e)}` });
      return;
    }
    // Stdin comes from an unlinked temporary file, not a pipe: Node's pipes are socket pairs,
    // which programs cannot reopen through /dev/stdin (`$(</dev/stdin)` in bash).
    let stdinFd: number | 'ignore' = 'ignore';
    if (launch.stdin !== null && launch.stdin.length > 0) {
      try {
        const file = path.join(launch.stdinDir, `stdin-${process.pid}-${stdinCounter++}`);
        stdinFd = fs.openSync(file, 'w+', 0o600);
        fs.unlinkSync(file);
        fs.writeSync(stdinFd, launch.stdin, 0, launch.stdin.length, 0);
      } catch (e) {
        closeFds();
        resolve({ state: 'failed', error: `Cannot prepare the task's stdin: ${errorMessage(e)}` });
        return;
      }
    }
    const closeStdin = (): void => {
      if (typeof stdinFd === 'number') {
        fs.closeSync(stdinFd);
        stdinFd = 'ignore';
      }
    };
    let command = launch.args[0]!;
    let args = launch.args.slice(1);
    if (SETPRIV_PATH !== undefined) {
      const resolved = resolveProgram(command, launch.env, launch.cwd);
      if ('code' in resolved) {
        closeFds();
        closeStdin();
        const e = Object.assign(new Error(resolved.code), { code: resolved.code });
        resolve({ state: 'failed', error: spawnErrorMessage(e, launch) });
        return;
      }
      // The program keeps the name it was given (argv[0]), as with a direct spawn.
      args = ['--pdeathsig', 'TERM', '--', command, ...args];
      command = SETPRIV_PATH;
    }
    let child: ChildProcess;
    try {
      child = spawn(command, args, {
        cwd: launch.cwd,
        env: launch.env,
        detached: true,
        stdio: [stdinFd, out, err],
      });
    } catch (e) {
      closeFds();
      closeStdin();
      resolve({ state: 'failed', error: spawnErrorMessage(e as NodeJS.ErrnoException, launch) });
      return;
    }
    this.pid = child.pid;
    closeFds();
    closeStdin();
    const pipes: [0 | 1, NodeJS.ReadableStream | null][] = [
      [0, out === 'pipe' ? child.stdout : null],
      [1, err === 'pipe' ? child.stderr : null],
    ];
    for (const [channel, stream] of pipes) {
      if (stream !== null) {
        const sink = outputSink(launch, channel);
        stream.on('data', sink.data);
        stream.on('end', sink.end);
      }
    }
    if (launch.timeLimitMs !== null) {
      this.limitTimer = setTimeout(() => this.stop('Time limit reached'), launch.timeLimitMs);
    }
    child.once('error', (e: NodeJS.ErrnoException) => {
      this.finish();
      resolve({ state: 'failed', error: spawnErrorMessage(e, launch) });
    });
    // 'close' comes after 'exit' once the child's stdio is drained too (streamed output).
    child.once('close', (code, signal) => {
      this.finish();
      resolve(this.outcomeOf(code, signal === null ? null : signalName(signal).num));
    });
  }

  private startWithLauncher(launcher: Launcher, resolve: (o: TaskOutcome) => void): void {
    const launch = this.launch;
    let stdinFile: string | null = null;
    const files = (def: StdioDef, file: string | null): string | null =>
      def.kind === 'file' && file !== null ? file : null;
    const stdoutFile = files(launch.stdout, launch.stdoutPath);
    const stderrFile = files(launch.stderr, launch.stderrPath);
    const out = launch.stdout.kind === 'pipe' ? outputSink(launch, 0) : null;
    const err = launch.stderr.kind === 'pipe' ? outputSink(launch, 1) : null;
    try {
      makeDirectory(launch.cwd);
      for (const f of [stdoutFile, stderrFile]) {
        if (f !== null) {
          makeDirectory(path.dirname(f));
        }
      }
      if (launch.stdin !== null && launch.stdin.length > 0) {
        stdinFile = path.join(launch.stdinDir, `stdin-${process.pid}-${stdinCounter++}`);
        fs.writeFileSync(stdinFile, launch.stdin, { mode: 0o600 });
      }
    } catch (e) {
      resolve({ state: 'failed', error: `Cannot prepare the task: ${preparationError(e)}` });
      return;
    }
    const dropStdin = (): void => {
      if (stdinFile !== null) {
        fs.rmSync(stdinFile, { force: true });
        stdinFile = null;
      }
    };
    launcher.launch(
      {
        args: launch.args,
        env: launch.env,
        cwd: launch.cwd,
        stdinFile,
        stdoutFile,
        stderrFile,
        stdoutPipe: out !== null,
        stderrPipe: err !== null,
      },
      {
        onOutput: (channel, data) => (channel === 0 ? out : err)?.data(data),
        onOutputEnd: (channel) => (channel === 0 ? out : err)?.end(),
        onStart: (pid) => {
          this.pid = pid;
          dropStdin();
          if (this.stopReason !== null) {
            this.signalGroup('SIGKILL');
          } else if (launch.timeLimitMs !== null) {
            this.limitTimer = setTimeout(() => this.stop('Time limit reached'), launch.timeLimitMs);
          }
        },
        onError: (errno, step) => {
          dropStdin();
          this.finish();
          if (step === 'exec') {
            const e = Object.assign(new Error(`os error ${errno}`), {
              code: getSystemErrorName(-errno),
              errno: -errno,
            });
            resolve({ state: 'failed', error: spawnErrorMessage(e, launch) });
          } else {
            const target =
              step === 'cwd'
                ? `the working directory ${launch.cwd}`
                : step === 'stdout' && stdoutFile !== null
                  ? `the stdout file ${stdoutFile}`
                  : step === 'stderr' && stderrFile !== null
                    ? `the stderr file ${stderrFile}`
                    : `the task's ${step}`;
            resolve({
              state: 'failed',
              error: `Cannot prepare the task: cannot open ${target}: ${osErrorText(errno)}`,
            });
          }
        },
        onExit: (status) => {
          const signal = status & 0x7f;
          this.finish();
          resolve(this.outcomeOf(signal === 0 ? status >> 8 : null, signal === 0 ? null : signal));
        },
        onLost: () => {
          dropStdin();
          this.finish();
          resolve({
            state: 'failed',
            error: this.stopReason ?? 'The task launcher of the worker died',
          });
        },
      },
    );
  }

  /** The outcome of a program that ended with `code` or was killed by signal number `signal`. */
  private outcomeOf(code: number | null, signal: number | null): TaskOutcome {
    const launch = this.launch;
    if (this.stopReason !== null) {
      return { state: 'failed', error: this.stopReason };
    }
    if (code === 0) {
      return { state: 'finished' };
    }
    if (launch.taskDir !== null) {
      const custom = readErrorFile(launch.taskDir);
      if (custom !== null) {
        return { state: 'failed', error: custom };
      }
    }
    let error = `Program terminated with exit code ${code ?? -1}.`;
    if (signal !== null) {
      const name =
        Object.entries(osConstants.signals).find(([, n]) => n === signal)?.[0] ?? `SIG${signal}`;
      error += ` Received signal ${signal} (${name}).`;
    }
    return { state: 'failed', error };
  }

  private finish(): void {
    this.exited = true;
    if (this.limitTimer) {
      clearTimeout(this.limitTimer);
    }
    // The leader is gone, but programs it started may live on in its group: the kill timer
    // stays armed so they get SIGKILL too.
  }

  private signalGroup(signal: NodeJS.Signals): void {
    const pid = this.pid;
    if (pid === undefined) {
      return;
    }
    try {
      process.kill(-pid, signal);
    } catch {
      // the group is already gone
    }
  }

  /**
   * Stops the task: SIGINT to its process group, SIGKILL after the grace period. `reason`
   * becomes the failure message (null: the caller does not care, e.g. a cancel).
   */
  stop(reason: string | null): void {
    if (this.stopReason === null) {
      this.stopReason = reason ?? 'Task was stopped';
    }
    if (this.killTimer !== null) {
      return;
    }
    this.signalGroup('SIGINT');
    this.killTimer = setTimeout(() => this.signalGroup('SIGKILL'), STOP_GRACE_MS);
    this.killTimer.unref();
  }

  /** SIGKILL to the group at once (the worker is exiting). */
  kill(): void {
    this.stopReason ??= 'Task was killed';
    this.signalGroup('SIGKILL');
  }

  get hasExited(): boolean {
    return this.exited;
  }
}
