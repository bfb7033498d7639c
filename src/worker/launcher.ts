/**
 * Starts task programs through long-lived helper processes instead of `child_process.spawn`.
 *
 * Why: Node's spawn forks the whole worker (its heap and page tables) for every task, which
 * costs far more than the program itself for short tasks; a small helper forks cheaply. The
 * helper is a Perl script (perl-base is part of every Debian-like system); without perl, or with
 * HQ_LAUNCHER=node, tasks are started with spawn as before.
 *
 * Protocol on the helper's stdin: records `<byte length>\n<payload>`, the payload being
 * NUL-separated fields: id, cwd, stdin file ('' = /dev/null), stdout file, stderr file
 * ('' = /dev/null), the number of arguments, the arguments, then KEY=VALUE environment entries.
 * On its stdout, one line per event: `s <id> <pid>` (started), `e <id> <errno> <step>` (could
 * not start), `x <id> <wait status>` (ended). The C helper (launcher-native.ts) also accepts `|`
 * as the stdout/stderr file: the channel is then piped back as `o <id> <channel> <n>` lines
 * each followed by n raw bytes, then `c <id> <channel>` at its end, all before the `x` line.
 *
 * Invariants: every child runs in its own session (its pid is its process group, which the
 * worker signals to stop it) with PR_SET_PDEATHSIG=SIGTERM, so it dies with the helper. The
 * helper is a child subreaper: whatever a task leaves behind is reparented to it, not to init.
 * When the worker dies (PR_SET_PDEATHSIG=SIGUSR1) or closes its stdin, the helper kills every
 * task's process group and every process reparented to it, then exits. It ignores
 * SIGINT/SIGTERM sent to the worker's process group: the worker decides what happens to tasks.
 * Children are reaped on every loop turn, and at least every 100 ms while any runs, so an exit
 * is never missed even if a SIGCHLD wake-up is. Every launched id gets exactly one
 * `e` or one `s` followed by one `x`, unless the helper dies, which fails all pending ids.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import { logger } from '../common/log.js';
import { nativeLauncherPath } from './launcher-native.js';

const log = logger('hq::worker');

/** The stdout/stderr field asking the C helper for a pipe (task paths are always absolute). */
const PIPE_FIELD = '|';

/** prctl(2) syscall numbers, for PR_SET_PDEATHSIG and PR_SET_CHILD_SUBREAPER from Perl. */
const PRCTL_SYSCALL: Partial<Record<string, number>> = { x64: 157, arm64: 167 };

const SCRIPT = String.raw`
use strict; no warnings; use POSIX ();
my $prctl = shift @ARGV;
my $worker = getppid();
$| = 1;
my %kids; my $buf = ''; my $orphaned = 0;
pipe(my $sr, my $sw) or die;
$SIG{CHLD} = sub { syswrite($sw, "c") };
$SIG{INT} = 'IGNORE'; $SIG{TERM} = 'IGNORE';
$SIG{USR1} = sub { $orphaned = 1; syswrite($sw, "d") };
sub kill_everything {
  kill 'KILL', -$_ for keys %kids;
  for my $round (1 .. 200) {
    my $found = 0;
    opendir(my $d, '/proc') or last;
    for my $p (grep { /^\d+$/ } readdir $d) {
      open(my $fh, '<', "/proc/$p/stat") or next; my $st = <$fh>; close $fh;
      next unless defined $st && $st =~ /\)\s+(\S)\s+(\d+)/;
      if ($2 == $$ && $1 ne 'Z') { kill 'KILL', -$p; kill 'KILL', $p; $found = 1; }
    }
    closedir $d;
    1 while waitpid(-1, POSIX::WNOHANG()) > 0;
    last unless $found;
    select(undef, undef, undef, 0.005);
  }
}
# Output that cannot be written means the worker is gone before its death signal arrived.
$SIG{PIPE} = sub { kill_everything(); POSIX::_exit(0) };
if ($prctl > 0) { syscall($prctl, 36, 1); syscall($prctl, 1, 10); }
if (getppid() != $worker) { kill_everything(); exit 0; }
sub reap { while ((my $pid = waitpid(-1, POSIX::WNOHANG())) > 0) { my $id = delete $kids{$pid}; print "x $id $?\n" if defined $id; } }
my $rin = ''; vec($rin, fileno(STDIN), 1) = 1; vec($rin, fileno($sr), 1) = 1;
while (1) {
  my $n = select(my $rout = $rin, undef, undef, %kids ? 0.1 : undef);
  if ($orphaned) { kill_everything(); exit 0; }
  if ($n > 0 && vec($rout, fileno($sr), 1)) { sysread($sr, my $junk, 4096); }
  reap();
  next if $n <= 0;
  next unless vec($rout, fileno(STDIN), 1);
  my $got = sysread(STDIN, $buf, 262144, length $buf);
  if (!$got) { kill_everything(); exit 0; }
  while ($buf =~ /^(\d+)\n/ && length($buf) >= length($1) + 1 + $1) {
    my $len = $1;
    my $rec = substr($buf, length($len) + 1, $len);
    $buf = substr($buf, length($len) + 1 + $len);
    my @f = split /\0/, $rec, -1;
    my ($id, $cwd, $in, $out, $err, $nargs) = splice(@f, 0, 6);
    my @args = splice(@f, 0, $nargs);
    pipe(my $r, my $w) or die;
    my $pid = fork();
    if (!defined $pid) { print "e $id " . ($!+0) . " fork\n"; next; }
    if ($pid == 0) {
      close $r;
      $SIG{CHLD} = 'DEFAULT'; $SIG{INT} = 'DEFAULT'; $SIG{TERM} = 'DEFAULT';
      POSIX::setsid();
      syscall($prctl, 1, 15) if $prctl > 0;
      my $fail = sub { syswrite($w, ($!+0) . " " . $_[0]); POSIX::_exit(127); };
      chdir($cwd) or $fail->('cwd');
      open(STDIN, '<', $in eq '' ? '/dev/null' : $in) or $fail->('stdin');
      open(STDOUT, '>', $out eq '' ? '/dev/null' : $out) or $fail->('stdout');
      open(STDERR, '>', $err eq '' ? '/dev/null' : $err) or $fail->('stderr');
      %ENV = ();
      for my $kv (@f) { my $i = index($kv, '='); $ENV{substr($kv, 0, $i)} = substr($kv, $i + 1) if $i > 0; }
      { exec { $args[0] } @args; }
      $fail->('exec');
    }
    close $w; my $e = <$r>; close $r;
    if (defined $e && length $e) { waitpid($pid, 0); print "e $id $e\n"; next; }
    $kids{$pid} = $id; print "s $id $pid\n";
  }
}
`;

export interface LaunchRequest {
  args: string[];
  env: Record<string, string>;
  cwd: string;
  stdinFile: string | null;
  stdoutFile: string | null;
  stderrFile: string | null;
  /** Stream the channel back through `onOutput` instead (only where `supportsPipes`). */
  stdoutPipe?: boolean;
  stderrPipe?: boolean;
}

export interface LaunchHandlers {
  onStart: (pid: number) => void;
  /** The program could not be started; `step` is where (cwd, stdin, stdout, stderr, exec). */
  onError: (errno: number, step: string) => void;
  /** `status` is the raw wait status (exit code in bits 8-15, signal in bits 0-6). */
  onExit: (status: number) => void;
  /** The helper died; the task's fate is unknown. */
  onLost: () => void;
  /** Output of a piped channel (0 stdout, 1 stderr), then its end; all before `onExit`. */
  onOutput?: (channel: 0 | 1, data: Buffer) => void;
  onOutputEnd?: (channel: 0 | 1) => void;
}

function findPerl(): string | null {
  for (const p of ['/usr/bin/perl', '/bin/perl']) {
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      // try the next one
    }
  }
  return null;
}

/**
 * A few helpers side by side: one helper forks, sets up and execs one child at a time, so on a
 * multi-core machine tasks ending together would queue behind each other. Each task goes to
 * the helper with the fewest tasks in flight; a helper that dies fails only its own tasks.
 */
export class Launcher {
  private readonly helpers: LauncherProcess[];
  /** The C helper can also pipe a task's output back (streaming); the Perl one cannot. */
  readonly supportsPipes: boolean;

  private constructor(helpers: LauncherProcess[], supportsPipes: boolean) {
    this.helpers = helpers;
    this.supportsPipes = supportsPipes;
  }

  /**
   * Running helpers (`count` of them), or null when tasks must be started with spawn. The C
   * helper is preferred, then the Perl one; HQ_LAUNCHER=perl or =node picks one explicitly.
   */
  static create(count = 1): Launcher | null {
    const choice = process.env['HQ_LAUNCHER'];
    if (choice === 'node') {
      return null;
    }
    let command: string[] | null = null;
    if (choice !== 'perl') {
      const native = nativeLauncherPath();
      command = native === null ? null : [native];
    }
    const supportsPipes = command !== null;
    if (command === null) {
      const perl = findPerl();
      if (perl === null) {
        return null;
      }
      command = [perl, '-e', SCRIPT, String(PRCTL_SYSCALL[process.arch] ?? 0)];
    }
    const argv = command;
    return new Launcher(
      Array.from({ length: Math.max(1, count) }, () => new LauncherProcess(argv)),
      supportsPipes,
    );
  }

  get isAlive(): boolean {
    return this.helpers.some((h) => h.isAlive);
  }

  launch(req: LaunchRequest, handlers: LaunchHandlers): void {
    let best: LauncherProcess | undefined;
    for (const h of this.helpers) {
      if (h.isAlive && (best === undefined || h.inFlight < best.inFlight)) {
        best = h;
      }
    }
    if (best === undefined) {
      handlers.onLost();
      return;
    }
    best.launch(req, handlers);
  }

  close(): void {
    for (const h of this.helpers) {
      h.close();
    }
  }
}

/** One helper process. */
class LauncherProcess {
  private readonly proc: ChildProcess;
  private readonly pending = new Map<number, LaunchHandlers>();
  private nextId = 1;
  private buffer: Buffer = Buffer.alloc(0);
  private dead = false;

  constructor(argv: string[]) {
    this.proc = spawn(argv[0]!, argv.slice(1), {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    this.proc.stdout!.on('data', (chunk: Buffer) => this.onData(chunk));
    this.proc.stdin!.on('error', () => undefined);
    this.proc.once('error', (e) => this.onDeath(`cannot start the task launcher: ${e.message}`));
    this.proc.once('exit', (code, signal) =>
      this.onDeath(`the task launcher exited (${signal ?? code ?? 'unknown'})`),
    );
  }

  get isAlive(): boolean {
    return !this.dead;
  }

  get inFlight(): number {
    return this.pending.size;
  }

  launch(req: LaunchRequest, handlers: LaunchHandlers): void {
    if (this.dead) {
      handlers.onLost();
      return;
    }
    const id = this.nextId++;
    this.pending.set(id, handlers);
    const env = Object.entries(req.env).map(([k, v]) => `${k}=${v}`);
    const fields = [
      String(id),
      req.cwd,
      req.stdinFile ?? '',
      req.stdoutPipe === true ? PIPE_FIELD : (req.stdoutFile ?? ''),
      req.stderrPipe === true ? PIPE_FIELD : (req.stderrFile ?? ''),
      String(req.args.length),
      ...req.args,
      ...env,
    ];
    const payload = Buffer.from(fields.join('\0'));
    this.proc.stdin!.write(Buffer.concat([Buffer.from(`${payload.length}\n`), payload]));
  }

  /** Lines `s|e|x|c ...`, and `o <id> <channel> <n>` followed by n raw bytes of output. */
  private onData(chunk: Buffer): void {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    let offset = 0;
    for (;;) {
      const nl = this.buffer.indexOf(0x0a, offset);
      if (nl < 0) {
        break;
      }
      const line = this.buffer.toString('latin1', offset, nl);
      const [kind, idText, a, b] = line.split(' ');
      let next = nl + 1;
      let data: Buffer | null = null;
      if (kind === 'o') {
        const size = Number(b);
        if (this.buffer.length - next < size) {
          break; // the output bytes have not all arrived yet
        }
        data = this.buffer.subarray(next, next + size);
        next += size;
      }
      offset = next;
      const id = Number(idText);
      const h = this.pending.get(id);
      if (h === undefined) {
        continue;
      }
      if (kind === 's') {
        h.onStart(Number(a));
      } else if (kind === 'e') {
        this.pending.delete(id);
        h.onError(Number(a), b ?? 'exec');
      } else if (kind === 'x') {
        this.pending.delete(id);
        h.onExit(Number(a));
      } else if (kind === 'o' && data !== null) {
        // A copy: the buffer it came from is reused for what follows.
        h.onOutput?.(a === '1' ? 1 : 0, Buffer.from(data));
      } else if (kind === 'c') {
        h.onOutputEnd?.(a === '1' ? 1 : 0);
      }
    }
    this.buffer = offset === this.buffer.length ? Buffer.alloc(0) : this.buffer.subarray(offset);
  }

  private onDeath(reason: string): void {
    if (this.dead) {
      return;
    }
    this.dead = true;
    log.warn(`${reason}; starting tasks directly from now on`);
    for (const h of this.pending.values()) {
      h.onLost();
    }
    this.pending.clear();
  }

  /** Closing its stdin ends the helper; its children then get their death signal. */
  close(): void {
    this.dead = true;
    this.proc.stdin?.end();
  }
}
