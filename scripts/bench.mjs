// `npm run bench`: the project's benchmarks, each with its baselines measured in the same run,
// reported as ratios (see ../shared/spec/performance.md). Prints one table and writes the raw
// numbers to bench-results.json. `--quick` runs smaller sizes.
//
// Benchmarks: scheduler placement (pure), server start-up and `hq job list` latency, spawn
// throughput of real /bin/true tasks against the C posix_spawn limit and xargs -P2, zero-worker
// throughput and server CPU per task against raw msgpack frames over loopback, a 1M-task submit
// with the server's memory and query latency under that load, the largest array (16M tasks) with
// the slowest `hq job list` issued while it is submitted, 64 zero workers against one, and
// `--stream` against per-task output files, and the journal: zero-worker throughput with it
// against without, restoring a half-finished 1M-task array (time and memory), bytes per task;
// the single executable (`npm run dist`): `hq --version` and `hq job list` from it against the
// bundle and `node -e 0`, and its size.
//
// Every process it starts is in its own process group and is killed at the end, also on error.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Packr, Unpackr } from 'msgpackr';

const ROOT = resolve(import.meta.dirname, '..');
const HQ = join(ROOT, 'dist', 'hq');
const QUICK = process.argv.includes('--quick');
// `--only=zero,journal,...` runs only those sections (scale needs zero): a changed area can be
// measured alone. Names: scheduler latency spawn zero journal scale submit largest streaming
// dashboard python-api startup.
const ONLY = process.argv
  .find((a) => a.startsWith('--only='))
  ?.slice('--only='.length)
  .split(',');
const wanted = (name) => ONLY === undefined || ONLY.includes(name);
const SPAWN_TASKS = QUICK ? 2000 : 10000;
const SCHED_TASKS = QUICK ? 20000 : 100000;
const LATENCY_RUNS = QUICK ? 5 : 15;
/** Rounds of the single executable's start-up comparison (each runs five commands). */
const STARTUP_RUNS = QUICK ? 10 : 30;
const ZERO_TASKS = QUICK ? 20_000 : 100_000;
const ZERO_CPUS = 4;
const JOURNAL_PAIRS = 3;
const BIG_SUBMIT_TASKS = QUICK ? 200_000 : 1_000_000;
const BIG_QUERY_RUNS = QUICK ? 3 : 5;
/** The largest array submit: MAX_TASKS_PER_JOB (src/server/submit.ts). */
const MAX_SUBMIT_TASKS = QUICK ? 5_000_000 : 16_000_000;
/** `hq job info` on a huge job may take long: stop repeating it once this much time is spent. */
const BIG_INFO_BUDGET_MS = QUICK ? 10_000 : 30_000;
const BIG_INFO_TIMEOUT_MS = QUICK ? 30_000 : 60_000;
const SCALE_WORKERS = QUICK ? 16 : 64;
const SCALE_TASKS = QUICK ? 20_000 : 100_000;
/** Tasks per mode, run as two jobs of half as many (see the streaming benchmark). */
const STREAM_TASKS = QUICK ? 2000 : 10_000;
const PY_PROGRAM_TASKS = QUICK ? 2000 : 10_000;
const DASH_TASKS = QUICK ? 100_000 : 1_000_000;
const PY_FUNCTION_TASKS = QUICK ? 200 : 1000;
const STREAM_JOB_TASKS = STREAM_TASKS / 2;
const STREAM_BYTES = 10_240;
const SETTLE_MS = 200;
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};
const rows = [];
const raw = {};

function env() {
  const e = { ...process.env };
  delete e.NODE_EXTRA_CA_CERTS; // costs ~50 ms per node start; not part of hq
  return e;
}

async function until(fn, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await fn()) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`timed out waiting for ${what}`);
}

// ---- processes: every one tracked, every one killed ------------------------------------

const children = new Set();
const tempDirs = [];

function tempDir(prefix) {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}

/** A long-running hq process in its own process group (its launcher and tasks included). */
function startHq(args, options = {}) {
  const child = spawn(HQ, args, { stdio: 'ignore', env: env(), detached: true, ...options });
  children.add(child);
  child.once('exit', () => children.delete(child));
  child.once('error', () => children.delete(child));
  return child;
}

function exited(child) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((r) => child.once('exit', r));
}

function killGroup(child, signal = 'SIGKILL') {
  try {
    process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

async function killAll(list = [...children]) {
  for (const c of list) killGroup(c);
  await Promise.all(list.map(exited));
}

/** One hq command to completion; throws unless it exits 0 (or `allowFail`). */
function hq(dir, args, { cwd, timeoutMs = 300_000, allowFail = false } = {}) {
  const r = spawnSync(HQ, ['--server-dir', dir, ...args], {
    env: env(),
    cwd,
    encoding: 'utf8',
    timeout: timeoutMs,
    maxBuffer: 1 << 28,
  });
  if (!allowFail && r.status !== 0) {
    throw new Error(`hq ${args.join(' ')}: ${r.status ?? r.signal ?? r.error}\n${r.stderr}`);
  }
  return r;
}

async function startServer(dir, extra = []) {
  const server = startHq(['--server-dir', dir, 'server', 'start', '--host', '127.0.0.1', ...extra]);
  await until(() => existsSync(join(dir, 'hq-current', 'access.json')), 10000, 'access file');
  return server;
}

function startWorker(dir, workDir, cpus, extra = []) {
  return startHq([
    '--server-dir',
    dir,
    'worker',
    'start',
    '--cpus',
    String(cpus),
    '--detect-resources',
    'none',
    '--work-dir',
    workDir,
    ...extra,
  ]);
}

/** utime + stime of a process, in clock ticks (fields 14 and 15 of /proc/<pid>/stat). */
function cpuTicks(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

/** A `Vm...` line of /proc/<pid>/status, in kB. */
function statusKb(pid, key) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1]);
}

/** Resolves once `pid` has used no CPU for SETTLE_MS (or after 30 s). */
async function settle(pid) {
  const deadline = Date.now() + 30_000;
  let before = cpuTicks(pid);
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    const now = cpuTicks(pid);
    if (now === before) return;
    before = now;
  }
}

const ticksToUs = (ticks) => (ticks / CLK_TCK) * 1e6;
const rate = (n, ms) => n / (ms / 1000);
const fmt = (x) => Math.round(x).toLocaleString('en-US');

/** "met" or "missed by N%" for a lower-is-better (`<`) or higher-is-better (`>`) target. */
function verdict(value, op, goal) {
  const ok = op === '<' ? value <= goal : value >= goal;
  if (ok) return 'met';
  const off = op === '<' ? value / goal - 1 : 1 - value / goal;
  return `missed by ${(off * 100).toFixed(0)}%`;
}

/** Runs one of bench/*.bench.ts on BENCH_TASKS tasks; returns the JSON of its last line. */
function tsBench(file, tasks) {
  const out = execFileSync(process.execPath, ['--import', 'tsx', join(ROOT, 'bench', file)], {
    env: { ...env(), BENCH_TASKS: String(tasks) },
    encoding: 'utf8',
    maxBuffer: 1 << 24,
  });
  return JSON.parse(out.trim().split('\n').pop());
}

try {
  // ---- scheduler placement ---------------------------------------------------------------
  if (wanted('scheduler')) {
    const r = tsBench('scheduler.bench.ts', SCHED_TASKS);
    raw.scheduler = r;
    rows.push([
      `scheduler: place ${r.tasks} mixed tasks on ${r.workers} workers`,
      `${r.us_per_task} us/task`,
      `sort of the same tasks: ${r.baseline_sort_ms} ms`,
      `${r.ratio_to_sort}x sort (target < 10 us/task)`,
    ]);
  }

  // ---- start-up and round-trip latency ---------------------------------------------------
  // Also the baselines (`node -e 0`, an empty server's `job list`) of the later sections.
  if (['latency', 'journal', 'submit', 'largest'].some(wanted)) {
    const starts = [];
    const lists = [];
    const nodeStarts = [];
    for (let i = 0; i < LATENCY_RUNS; i++) {
      const dir = mkdtempSync(join(tmpdir(), 'hq-bench-'));
      const t0 = performance.now();
      const server = startHq(['--server-dir', dir, 'server', 'start']);
      const access = join(dir, 'hq-current', 'access.json');
      await until(() => existsSync(access), 10000, 'access file');
      starts.push(performance.now() - t0);
      for (let j = 0; j < 3; j++) {
        const t1 = performance.now();
        spawnSync(HQ, ['--server-dir', dir, 'job', 'list'], { env: env() });
        lists.push(performance.now() - t1);
      }
      const t2 = performance.now();
      spawnSync(process.execPath, ['-e', '0'], { env: env() });
      nodeStarts.push(performance.now() - t2);
      server.kill('SIGINT');
      await exited(server);
      rmSync(dir, { recursive: true, force: true });
    }
    raw.latency = { server_start_ms: starts, job_list_ms: lists, node_e0_ms: nodeStarts };
    const n = median(nodeStarts);
    rows.push([
      'server start -> access file written',
      `${median(starts).toFixed(1)} ms`,
      `node -e 0: ${n.toFixed(1)} ms`,
      `${(median(starts) / n).toFixed(2)}x (target < 150 ms)`,
    ]);
    rows.push([
      'hq job list round trip',
      `${median(lists).toFixed(1)} ms`,
      `node -e 0: ${n.toFixed(1)} ms`,
      `${(median(lists) / n).toFixed(2)}x`,
    ]);
  }

  // ---- the single executable: start-up against the bundle and node -e 0, and its size -----
  // Built by `npm run dist` (here when missing or older than the bundle). One loop runs every
  // command once per round, in alternating order, so the three see the same machine; the
  // first round only warms the page cache.
  if (wanted('startup')) {
    const exe = join(ROOT, 'dist', `hq-${process.platform}-${process.arch}`);
    if (!existsSync(exe) || statSync(exe).mtimeMs < statSync(HQ).mtimeMs) {
      execFileSync(process.execPath, [join(ROOT, 'scripts', 'dist.mjs'), '--skip-build'], {
        stdio: 'inherit',
      });
    }
    const dir = tempDir('hq-bench-startup-');
    const server = await startServer(dir);
    const commands = {
      exeVersion: [exe, '--version'],
      bundleVersion: [HQ, '--version'],
      node: [process.execPath, '-e', '0'],
      exeList: [exe, '--server-dir', dir, 'job', 'list'],
      bundleList: [HQ, '--server-dir', dir, 'job', 'list'],
    };
    const times = Object.fromEntries(Object.keys(commands).map((k) => [k, []]));
    for (let i = 0; i <= STARTUP_RUNS; i++) {
      const order = Object.keys(commands);
      for (const name of i % 2 === 0 ? order : order.reverse()) {
        const [program, ...args] = commands[name];
        const t0 = performance.now();
        const r = spawnSync(program, args, { env: env(), stdio: 'ignore' });
        const ms = performance.now() - t0;
        if (r.status !== 0) throw new Error(`${commands[name].join(' ')}: ${r.status ?? r.signal}`);
        if (i > 0) times[name].push(ms);
      }
    }
    await killAll([server]);
    const m = Object.fromEntries(Object.entries(times).map(([k, v]) => [k, median(v)]));
    const version =
      process.env.HQ_BUILD_VERSION ??
      JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version;
    const tarball = join(ROOT, 'dist', `hq-v${version}-${process.platform}-${process.arch}.tar.gz`);
    const mb = (file) => statSync(file).size / 1e6;
    raw.startup = {
      runs: STARTUP_RUNS,
      ...times,
      exe_mb: mb(exe),
      tarball_mb: existsSync(tarball) ? mb(tarball) : null,
      bundle_mb: mb(HQ),
    };
    const compare = (what, exeMs, bundleMs) => [
      `${what}: single executable (median of ${STARTUP_RUNS})`,
      `${exeMs.toFixed(1)} ms`,
      `bundle ${bundleMs.toFixed(1)} ms; node -e 0 ${m.node.toFixed(1)} ms`,
      `${(exeMs / bundleMs).toFixed(2)}x bundle (target <= 1: ${verdict(exeMs / bundleMs, '<', 1)}), ` +
        `${(exeMs / m.node).toFixed(2)}x node -e 0 (aim <= 2: ${verdict(exeMs / m.node, '<', 2)})`,
    ];
    rows.push(compare('hq --version', m.exeVersion, m.bundleVersion));
    rows.push(compare('hq job list round trip, empty server', m.exeList, m.bundleList));
    rows.push([
      'single executable size',
      `${mb(exe).toFixed(1)} MB`,
      `tarball ${existsSync(tarball) ? `${mb(tarball).toFixed(1)} MB` : 'not built'}; bundle ${mb(HQ).toFixed(2)} MB (+ Node)`,
      '-',
    ]);
  }

  // ---- spawn throughput ------------------------------------------------------------------
  if (wanted('spawn')) {
    const work = mkdtempSync(join(tmpdir(), 'hq-bench-spawn-'));
    const limitBin = join(work, 'spawn-limit');
    let limitRate = null;
    const cc = spawnSync('cc', [
      '-O2',
      '-o',
      limitBin,
      resolve(ROOT, '..', 'shared', 'bench', 'spawn-limit.c'),
    ]);
    if (cc.status === 0) {
      const out = execFileSync(limitBin, [String(SPAWN_TASKS), '2', '/bin/true'], {
        encoding: 'utf8',
      });
      limitRate = Number(/([\d.]+) tasks\/s/.exec(out)?.[1]);
    }
    const x0 = performance.now();
    execFileSync('bash', ['-c', `seq ${SPAWN_TASKS} | xargs -P2 -n1 /bin/true`]);
    const xargsRate = SPAWN_TASKS / ((performance.now() - x0) / 1000);

    // Peers, when installed: GNU parallel and Dask distributed (2 workers x 1 thread, each task
    // runs `true` through subprocess). Each runs fewer tasks, as both are much slower.
    const peerTasks = Math.min(SPAWN_TASKS, 2000);
    let parallelRate = null;
    const parallelNote = 'GNU parallel not installed (apt-get install parallel)';
    if (spawnSync('bash', ['-c', 'command -v parallel']).status === 0) {
      const p0 = performance.now();
      const r = spawnSync('bash', ['-c', `seq ${peerTasks} | parallel -j2 /bin/true`], {
        stdio: 'ignore',
        timeout: 300_000,
      });
      if (r.status === 0) {
        parallelRate = peerTasks / ((performance.now() - p0) / 1000);
      }
    }
    let daskRate = null;
    const daskNote = 'Dask not installed (apt-get install python3-distributed)';
    // Debian's python3-distributed lives with /usr/bin/python3, whatever else is on PATH.
    const python = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
    if (spawnSync(python, ['-c', 'import distributed']).status === 0) {
      const script = [
        'import subprocess, sys, time',
        'from distributed import Client, LocalCluster',
        'def run(i):',
        "    return subprocess.run(['/bin/true']).returncode",
        "if __name__ == '__main__':",
        '    n = int(sys.argv[1])',
        '    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, Client(cluster) as client:',
        '        client.gather(client.map(run, range(10), pure=False))',
        '        t0 = time.perf_counter()',
        '        client.gather(client.map(run, range(n), pure=False))',
        '        print(n / (time.perf_counter() - t0))',
      ].join('\n');
      const r = spawnSync(python, ['-c', script, String(peerTasks)], {
        encoding: 'utf8',
        timeout: 300_000,
      });
      const rate = Number(r.stdout?.trim().split('\n').pop());
      if (r.status === 0 && Number.isFinite(rate)) {
        daskRate = rate;
      }
    }

    const dir = join(work, 'server');
    const server = startHq(['--server-dir', dir, 'server', 'start']);
    await until(() => existsSync(join(dir, 'hq-current', 'access.json')), 10000, 'access file');
    const worker = startWorker(dir, join(work, 'w'), 2);
    spawnSync(HQ, ['--server-dir', dir, 'worker', 'wait', '1'], { env: env() });
    const h0 = performance.now();
    spawnSync(
      HQ,
      [
        '--server-dir',
        dir,
        'submit',
        `--array=1-${SPAWN_TASKS}`,
        '--stdout=none',
        '--stderr=none',
        '--wait',
        '--',
        '/bin/true',
      ],
      { env: env(), cwd: work },
    );
    const hqRate = SPAWN_TASKS / ((performance.now() - h0) / 1000);
    spawnSync(HQ, ['--server-dir', dir, 'server', 'stop'], { env: env() });
    await exited(server);
    await killAll([worker]);
    rmSync(work, { recursive: true, force: true });
    raw.spawn = {
      tasks: SPAWN_TASKS,
      hq_tasks_per_s: hqRate,
      c_limit_tasks_per_s: limitRate,
      xargs_p2_tasks_per_s: xargsRate,
      peer_tasks: peerTasks,
      gnu_parallel_j2_tasks_per_s: parallelRate,
      dask_2x1_subprocess_tasks_per_s: daskRate,
    };
    rows.push([
      `spawn: ${SPAWN_TASKS} x /bin/true, 1 worker, 2 cpus`,
      `${hqRate.toFixed(0)} tasks/s`,
      `C limit ${limitRate === null ? 'n/a (no cc)' : limitRate.toFixed(0)}; xargs -P2 ${xargsRate.toFixed(0)}`,
      limitRate === null
        ? '-'
        : `${(hqRate / limitRate).toFixed(2)}x C limit, ${(hqRate / xargsRate).toFixed(2)}x xargs`,
    ]);
    rows.push([
      `spawn peers: ${peerTasks} tasks, 2 at a time`,
      `hq ${hqRate.toFixed(0)} tasks/s`,
      `${parallelRate === null ? parallelNote : `GNU parallel -j2 ${parallelRate.toFixed(0)}`}; ${daskRate === null ? daskNote : `Dask 2x1 ${daskRate.toFixed(0)}`}`,
      [
        parallelRate === null ? null : `${(hqRate / parallelRate).toFixed(1)}x parallel`,
        daskRate === null ? null : `${(hqRate / daskRate).toFixed(1)}x Dask`,
      ]
        .filter((x) => x !== null)
        .join(', ') || '-',
    ]);
  }

  // ---- raw loopback baseline for the zero worker -------------------------------------------
  // What the protocol costs without hq: one compute frame per task (msgpack, 4-byte length) over
  // plain loopback TCP to a second Node process that answers each with a task-updates frame of two
  // updates, all pipelined. No TLS, no scheduling, no job state.
  async function loopbackBaseline(n) {
    const packr = new Packr({ useRecords: false, moreTypes: false });
    const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });
    const frame = (m) => {
      const body = packr.pack(m);
      const f = Buffer.allocUnsafe(4 + body.length);
      f.writeUInt32BE(body.length, 0);
      body.copy(f, 4);
      return f;
    };
    const peer = String.raw`
    const net = require('node:net');
    const { Packr, Unpackr } = require('msgpackr');
    const packr = new Packr({ useRecords: false, moreTypes: false });
    const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });
    const sock = net.connect(Number(process.argv[1]), '127.0.0.1');
    sock.setNoDelay(true);
    let buf = Buffer.alloc(0);
    sock.on('data', (chunk) => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      let off = 0;
      const out = [];
      while (buf.length - off >= 4) {
        const size = buf.readUInt32BE(off);
        if (buf.length - off - 4 < size) break;
        const m = unpackr.unpack(buf.subarray(off + 4, off + 4 + size));
        off += 4 + size;
        const at = Date.now();
        const updates = [];
        for (const t of m.tasks) {
          const ref = { jobId: t.jobId, taskId: t.taskId, instance: t.instance };
          updates.push({ ...ref, state: 'running', at }, { ...ref, state: 'finished', at });
        }
        const body = packr.pack({ op: 'task-updates', updates });
        const f = Buffer.allocUnsafe(4 + body.length);
        f.writeUInt32BE(body.length, 0);
        body.copy(f, 4);
        out.push(f);
      }
      buf = buf.subarray(off);
      if (out.length > 0) sock.write(Buffer.concat(out));
    });
    sock.on('close', () => process.exit(0));
    sock.on('error', () => process.exit(1));
  `;
    const shared = {
      taskDesc: {
        program: {
          args: ['/bin/true'],
          env: {},
          cwd: '%{SUBMIT_DIR}',
          stdout: {
            kind: 'file',
            path: '%{SUBMIT_DIR}/job-%{JOB_ID}/%{TASK_ID}.stdout',
            rmIfFinished: false,
          },
          stderr: {
            kind: 'file',
            path: '%{SUBMIT_DIR}/job-%{JOB_ID}/%{TASK_ID}.stderr',
            rmIfFinished: false,
          },
          stdin: null,
        },
        resources: [],
        timeLimitMs: null,
        priority: 0,
        crashLimit: 5,
        taskDir: false,
        pinMode: null,
        streamPath: null,
      },
      submitDir: '/tmp',
    };
    const server = createServer();
    await new Promise((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address();
    const connected = new Promise((r) => server.once('connection', r));
    const child = spawn(process.execPath, ['-e', peer, String(port)], {
      cwd: ROOT,
      stdio: 'ignore',
      detached: true,
    });
    children.add(child);
    child.once('exit', () => children.delete(child));
    try {
      const sock = await connected;
      sock.setNoDelay(true);
      let finished = 0;
      let buf = Buffer.alloc(0);
      const done = new Promise((resolveDone, reject) => {
        sock.on('error', reject);
        sock.on('data', (chunk) => {
          buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
          let off = 0;
          while (buf.length - off >= 4) {
            const size = buf.readUInt32BE(off);
            if (buf.length - off - 4 < size) break;
            const m = unpackr.unpack(buf.subarray(off + 4, off + 4 + size));
            off += 4 + size;
            finished += m.updates.filter((u) => u.state === 'finished').length;
          }
          buf = buf.subarray(off);
          if (finished >= n) resolveDone();
        });
      });
      const t0 = performance.now();
      // Written in slices so the sender keeps reading replies instead of buffering all first.
      for (let i = 1; i <= n; i += 1000) {
        const frames = [];
        for (let id = i; id < Math.min(i + 1000, n + 1); id++) {
          const task = {
            jobId: 1,
            taskId: id,
            instance: 0,
            shared: 0,
            entry: null,
            nodes: null,
            variant: 0,
          };
          frames.push(frame({ op: 'compute', shared: [shared], tasks: [task] }));
        }
        if (!sock.write(Buffer.concat(frames))) {
          await new Promise((r) => sock.once('drain', r));
        }
      }
      await done;
      const ms = performance.now() - t0;
      sock.destroy();
      return rate(n, ms);
    } finally {
      server.close();
      await killAll([child]);
    }
  }

  // ---- zero workers: throughput and server CPU per task --------------------------------------
  /** `dashboard`: a `hq dashboard web` streams from the server (with overviews) during the run. */
  async function zeroThroughput(nWorkers, cpus, tasks, journal = false, dashboard = false) {
    const work = tempDir('hq-bench-zero-');
    const dir = join(work, 'server');
    const server = await startServer(dir, journal ? ['--journal', join(work, 'journal')] : []);
    const workers = [];
    try {
      for (let i = 0; i < nWorkers; i++) {
        workers.push(startWorker(dir, join(work, `w${i}`), cpus, ['--zero-worker']));
      }
      hq(dir, ['worker', 'wait', String(nWorkers)], { timeoutMs: 120_000 });
      if (dashboard) {
        const web = startHq(['--server-dir', dir, 'dashboard', 'web'], {
          stdio: ['ignore', 'pipe', 'ignore'],
        });
        workers.push(web);
        let out = '';
        web.stdout.on('data', (d) => (out += d));
        await until(() => out.includes('token='), 10_000, 'the web dashboard');
      }
      const c0 = cpuTicks(server.pid);
      const w0 = workers.map((w) => cpuTicks(w.pid));
      const t0 = performance.now();
      hq(dir, ['submit', `--array=1-${tasks}`, '--', '/bin/true'], { cwd: work });
      const submitMs = performance.now() - t0;
      hq(dir, ['job', 'wait', '1']);
      const ms = performance.now() - t0;
      const serverTicks = cpuTicks(server.pid) - c0;
      const workerTicks = workers
        .slice(0, nWorkers)
        .reduce((sum, w, i) => sum + cpuTicks(w.pid) - w0[i], 0);
      return {
        workers: nWorkers,
        cpus_per_worker: cpus,
        tasks,
        submit_ms: submitMs,
        total_ms: ms,
        tasks_per_s: rate(tasks, ms),
        server_cpu_us_per_task: ticksToUs(serverTicks) / tasks,
        workers_cpu_us_per_task: ticksToUs(workerTicks) / tasks,
      };
    } finally {
      await killAll([server, ...workers]);
    }
  }

  if (wanted('zero')) {
    const baseline = await loopbackBaseline(ZERO_TASKS);
    const r = await zeroThroughput(1, ZERO_CPUS, ZERO_TASKS);
    raw.zero_worker = { ...r, loopback_baseline_tasks_per_s: baseline };
    rows.push([
      `zero worker: ${ZERO_TASKS} tasks, 1 worker, ${ZERO_CPUS} cpus`,
      `${fmt(r.tasks_per_s)} tasks/s`,
      `raw msgpack over loopback, no TLS: ${fmt(baseline)} tasks/s`,
      `${(r.tasks_per_s / baseline).toFixed(2)}x (target >= 50,000 tasks/s: ${verdict(r.tasks_per_s, '>', 50_000)})`,
    ]);
    rows.push([
      'zero worker: server CPU per task',
      `${r.server_cpu_us_per_task.toFixed(1)} us/task`,
      `worker CPU: ${r.workers_cpu_us_per_task.toFixed(1)} us/task`,
      `target <= 20 us/task: ${verdict(r.server_cpu_us_per_task, '<', 20)}`,
    ]);
  }

  // ---- journal: throughput cost, restore time and memory, bytes per task ----------------------
  if (wanted('journal')) {
    // The two differ by less than this machine's run-to-run noise: alternate them and compare
    // medians.
    const plain = [];
    const journaled = [];
    for (let i = 0; i < JOURNAL_PAIRS; i++) {
      plain.push(await zeroThroughput(1, ZERO_CPUS, ZERO_TASKS));
      journaled.push(await zeroThroughput(1, ZERO_CPUS, ZERO_TASKS, true));
    }
    const rateOf = (runs) => median(runs.map((r) => r.tasks_per_s));
    const cpuOf = (runs) => median(runs.map((r) => r.server_cpu_us_per_task));
    const ratio = rateOf(journaled) / rateOf(plain);
    raw.journal_zero_worker = { plain, journaled, ratio };
    rows.push([
      `zero worker with --journal: ${ZERO_TASKS} tasks (median of ${JOURNAL_PAIRS})`,
      `${fmt(rateOf(journaled))} tasks/s`,
      `without journal, alternated: ${fmt(rateOf(plain))} tasks/s`,
      `${ratio.toFixed(2)}x (target >= 0.8: ${verdict(ratio, '>', 0.8)}); server CPU ${cpuOf(journaled).toFixed(1)} vs ${cpuOf(plain).toFixed(1)} us/task`,
    ]);
  }
  if (wanted('journal')) {
    // A journal holding a BIG_SUBMIT_TASKS array with (a little over) half of it finished: run
    // it on a zero worker, stop the worker at half, measure the live server, stop it, restart.
    const work = tempDir('hq-bench-restore-');
    const dir = join(work, 'server');
    const journal = join(work, 'journal');
    let server = await startServer(dir, ['--journal', journal]);
    let restored = null;
    try {
      hq(dir, ['submit', `--array=1-${BIG_SUBMIT_TASKS}`, '--', '/bin/true'], { cwd: work });
      const worker = startWorker(dir, join(work, 'w'), ZERO_CPUS, ['--zero-worker']);
      const finished = () =>
        JSON.parse(hq(dir, ['--output-mode', 'json', 'job', 'list']).stdout)[0].task_stats.finished;
      await until(() => finished() >= BIG_SUBMIT_TASKS / 2, 300_000, 'half of the tasks');
      hq(dir, ['worker', 'stop', 'all']);
      await exited(worker);
      await settle(server.pid);
      const liveKb = statusKb(server.pid, 'VmRSS');
      const done = finished();
      hq(dir, ['server', 'stop']);
      await exited(server);
      const bytes = statSync(journal).size;
      const t0 = performance.now();
      restored = startHq([
        '--server-dir',
        dir,
        'server',
        'start',
        '--host',
        '127.0.0.1',
        '--journal',
        journal,
      ]);
      await until(() => existsSync(join(dir, 'hq-current', 'access.json')), 60_000, 'access file');
      const readyMs = performance.now() - t0;
      await settle(restored.pid);
      const restoredKb = statusKb(restored.pid, 'VmRSS');
      if (finished() !== done) throw new Error('the restored job lost finished tasks');
      const rssRatio = restoredKb / liveKb;
      raw.journal_restore = {
        tasks: BIG_SUBMIT_TASKS,
        finished: done,
        journal_bytes: bytes,
        bytes_per_finished_task: bytes / done,
        ready_ms: readyMs,
        live_rss_kb: liveKb,
        restored_rss_kb: restoredKb,
        rss_ratio: rssRatio,
      };
      const label = `${BIG_SUBMIT_TASKS / 1000}k`;
      rows.push([
        `restore: ${label}-task array, ${fmt(done)} finished (start -> access file)`,
        `${readyMs.toFixed(0)} ms`,
        `node -e 0: ${median(raw.latency.node_e0_ms).toFixed(1)} ms`,
        `target < 2 s: ${verdict(readyMs, '<', 2000)}`,
      ]);
      rows.push([
        `restore: server RSS after replay`,
        `${(restoredKb / 1024).toFixed(0)} MB`,
        `same state built live: ${(liveKb / 1024).toFixed(0)} MB`,
        `${rssRatio.toFixed(2)}x (target <= 1.2: ${verdict(rssRatio, '<', 1.2)})`,
      ]);
      rows.push([
        `journal bytes per finished array task`,
        `${(bytes / done).toFixed(1)} B`,
        `${(bytes / 1e6).toFixed(1)} MB journal`,
        '-',
      ]);
    } finally {
      await killAll([server, ...(restored === null ? [] : [restored])]);
    }
  }

  // ---- scale: many zero workers against one ------------------------------------------------
  if (wanted('scale') && raw.zero_worker !== undefined) {
    const one = raw.zero_worker;
    const r = await zeroThroughput(SCALE_WORKERS, 4, SCALE_TASKS);
    const ratio = r.tasks_per_s / one.tasks_per_s;
    raw.scale = { ...r, one_worker_tasks_per_s: one.tasks_per_s, ratio_to_one_worker: ratio };
    rows.push([
      `scale: ${SCALE_TASKS} tasks, ${SCALE_WORKERS} zero workers x 4 cpus`,
      `${fmt(r.tasks_per_s)} tasks/s`,
      `1 zero worker: ${fmt(one.tasks_per_s)} tasks/s`,
      `${ratio.toFixed(2)}x (target >= 1.0: ${verdict(ratio, '>', 1)}); CPU us/task: server ${r.server_cpu_us_per_task.toFixed(1)}, workers ${r.workers_cpu_us_per_task.toFixed(1)}`,
    ]);
  }

  // ---- a huge submit: client time, server memory, query latency -----------------------------
  if (wanted('submit')) {
    const work = tempDir('hq-bench-big-');
    const dir = join(work, 'server');
    const server = await startServer(dir);
    try {
      const idleKb = statusKb(server.pid, 'VmRSS');
      const c0 = cpuTicks(server.pid);
      const t0 = performance.now();
      hq(dir, ['submit', `--array=1-${BIG_SUBMIT_TASKS}`, '--', '/bin/true'], { cwd: work });
      const submitMs = performance.now() - t0;
      // The server may still be working when the client has its answer: CPU and memory are
      // read once it has been idle for a moment.
      await settle(server.pid);
      const submitServerUs = ticksToUs(cpuTicks(server.pid) - c0);
      const rssKb = statusKb(server.pid, 'VmRSS');
      const lists = [];
      for (let i = 0; i < BIG_QUERY_RUNS; i++) {
        const t = performance.now();
        hq(dir, ['job', 'list']);
        lists.push(performance.now() - t);
      }
      const infos = [];
      let infoTimedOut = false;
      const infoStart = performance.now();
      for (
        let i = 0;
        i < BIG_QUERY_RUNS && performance.now() - infoStart < BIG_INFO_BUDGET_MS;
        i++
      ) {
        const t = performance.now();
        const r = hq(dir, ['job', 'info', '1'], {
          timeoutMs: BIG_INFO_TIMEOUT_MS,
          allowFail: true,
        });
        if (r.status !== 0) {
          infoTimedOut = r.signal !== null;
          if (!infoTimedOut) throw new Error(`hq job info 1 failed: ${r.stderr}`);
          break;
        }
        infos.push(performance.now() - t);
      }
      const peakKb = statusKb(server.pid, 'VmHWM');
      const emptyList = median(raw.latency.job_list_ms);
      const perTaskBytes = ((rssKb - idleKb) * 1024) / BIG_SUBMIT_TASKS;
      raw.big_submit = {
        tasks: BIG_SUBMIT_TASKS,
        submit_ms: submitMs,
        submit_server_cpu_ms: submitServerUs / 1000,
        idle_rss_kb: idleKb,
        rss_kb: rssKb,
        peak_rss_kb: peakKb,
        bytes_per_waiting_task: perTaskBytes,
        job_list_ms: lists,
        job_info_ms: infos,
        job_info_timed_out_after_ms: infoTimedOut ? BIG_INFO_TIMEOUT_MS : null,
      };
      const label = `${BIG_SUBMIT_TASKS / 1000}k`;
      rows.push([
        `submit --array 1-${BIG_SUBMIT_TASKS}, no worker (client wall)`,
        `${(submitMs / 1000).toFixed(2)} s`,
        `node -e 0: ${median(raw.latency.node_e0_ms).toFixed(1)} ms`,
        `server CPU ${(submitServerUs / 1e6).toFixed(2)} s (target < 2 s: ${verdict(submitMs, '<', 2000)})`,
      ]);
      rows.push([
        `server RSS, ${label} waiting tasks`,
        `${(rssKb / 1024).toFixed(0)} MB (${perTaskBytes.toFixed(0)} B/task)`,
        `idle server: ${(idleKb / 1024).toFixed(0)} MB`,
        `peak ${(peakKb / 1024).toFixed(0)} MB (target < 300 MB: ${verdict(rssKb / 1024, '<', 300)})`,
      ]);
      rows.push([
        `hq job list, ${label} waiting tasks`,
        `${median(lists).toFixed(1)} ms`,
        `empty server: ${emptyList.toFixed(1)} ms`,
        `${(median(lists) / emptyList).toFixed(2)}x (target < 200 ms: ${verdict(median(lists), '<', 200)})`,
      ]);
      const info = infoTimedOut ? null : median(infos);
      rows.push([
        `hq job info 1, ${label} waiting tasks (${infos.length} run${infos.length === 1 ? '' : 's'})`,
        info === null ? `> ${BIG_INFO_TIMEOUT_MS / 1000} s (timed out)` : `${info.toFixed(0)} ms`,
        `empty server job list: ${emptyList.toFixed(1)} ms`,
        info === null
          ? '-'
          : `${(info / emptyList).toFixed(1)}x (target < 200 ms: ${verdict(info, '<', 200)})`,
      ]);
    } finally {
      await killAll([server]);
    }
  }

  // ---- the largest array: queries and heartbeats go on while the server takes it ------------
  if (wanted('largest')) {
    const work = tempDir('hq-bench-max-');
    const dir = join(work, 'server');
    const server = await startServer(dir);
    try {
      const worker = startWorker(dir, join(work, 'w'), 2, ['--heartbeat', '1s']);
      await until(() => hq(dir, ['worker', 'list']).stdout.includes('RUNNING'), 30_000, 'worker');
      const idleKb = statusKb(server.pid, 'VmRSS');
      const t0 = performance.now();
      const submit = startHq(
        [
          '--server-dir',
          dir,
          'submit',
          `--array=1-${MAX_SUBMIT_TASKS}`,
          '--stdout=none',
          '--stderr=none',
          '--',
          '/bin/true',
        ],
        { cwd: work },
      );
      let submitMs = null;
      void exited(submit).then(() => (submitMs = performance.now() - t0));
      // Each query waits as long as the server's event loop is held by the submit.
      const lists = [];
      while (submitMs === null) {
        const t = performance.now();
        hq(dir, ['job', 'list']);
        lists.push(performance.now() - t);
        await new Promise((r) => setImmediate(r));
      }
      if (submit.exitCode !== 0) throw new Error(`the ${MAX_SUBMIT_TASKS}-task submit failed`);
      await settle(server.pid);
      const rssKb = statusKb(server.pid, 'VmRSS');
      const workerKept = hq(dir, ['worker', 'list']).stdout.includes('RUNNING');
      const emptyList = median(raw.latency.job_list_ms);
      const worst = Math.max(...lists);
      raw.max_submit = {
        tasks: MAX_SUBMIT_TASKS,
        submit_ms: submitMs,
        job_list_during_ms: lists,
        idle_rss_kb: idleKb,
        rss_kb: rssKb,
        worker_kept: workerKept,
      };
      rows.push([
        `submit --array 1-${MAX_SUBMIT_TASKS}, one worker (client wall)`,
        `${(submitMs / 1000).toFixed(2)} s`,
        `node -e 0: ${median(raw.latency.node_e0_ms).toFixed(1)} ms`,
        `server RSS ${(rssKb / 1024).toFixed(0)} MB (idle ${(idleKb / 1024).toFixed(0)} MB); worker ${workerKept ? 'kept' : 'LOST'}`,
      ]);
      rows.push([
        `hq job list during that submit (slowest of ${lists.length})`,
        `${worst.toFixed(0)} ms`,
        `empty server: ${emptyList.toFixed(1)} ms`,
        `stall ${(worst - emptyList).toFixed(0)} ms (target < 200 ms: ${verdict(worst - emptyList, '<', 200)})`,
      ]);
      await killAll([worker]);
    } finally {
      await killAll([server]);
    }
  }

  // ---- streaming: --stream against per-task files ------------------------------------------
  if (wanted('streaming')) {
    const work = tempDir('hq-bench-stream-');
    const dir = join(work, 'server');
    const server = await startServer(dir);
    const worker = startWorker(dir, join(work, 'w'), 2);
    try {
      hq(dir, ['worker', 'wait', '1']);
      const program = ['--', '/usr/bin/head', '-c', String(STREAM_BYTES), '/dev/zero'];
      const array = `--array=1-${STREAM_JOB_TASKS}`;
      // This machine drifts by tens of percent within a minute: each mode runs as two jobs of
      // half the tasks, alternating (files, stream, files, stream), so that neither mode gets
      // only the good or only the bad moment.
      const ms = { files: 0, stream: 0 };
      let complete = true;
      let jobId = 0;
      for (const mode of ['files', 'stream', 'files', 'stream']) {
        jobId++;
        const streamDir = join(work, `stream-${jobId}`);
        const extra = mode === 'stream' ? [`--stream=${streamDir}`] : [];
        const t0 = performance.now();
        hq(dir, ['submit', array, ...extra, ...program], { cwd: work });
        hq(dir, ['job', 'wait', String(jobId)]);
        ms[mode] += performance.now() - t0;
        // A faster run that lost output would be no result: check each wrote everything.
        if (mode === 'files') {
          const files = readdirSync(join(work, `job-${jobId}`));
          complete &&= files.filter((f) => f.endsWith('.stdout')).length === STREAM_JOB_TASKS;
        } else {
          const bytes = readdirSync(streamDir).reduce(
            (sum, f) => sum + statSync(join(streamDir, f)).size,
            0,
          );
          complete &&= bytes >= STREAM_JOB_TASKS * STREAM_BYTES;
        }
      }
      const filesRate = rate(STREAM_TASKS, ms.files);
      const streamRate = rate(STREAM_TASKS, ms.stream);
      raw.streaming = {
        tasks_per_mode: STREAM_TASKS,
        tasks_per_job: STREAM_JOB_TASKS,
        jobs_per_mode: 2,
        bytes_per_task: STREAM_BYTES,
        files_ms: ms.files,
        stream_ms: ms.stream,
        files_tasks_per_s: filesRate,
        stream_tasks_per_s: streamRate,
        output_complete: complete,
      };
      rows.push([
        `streaming: ${STREAM_TASKS} x 10 KiB stdout (2 jobs), 1 worker, 2 cpus, --stream`,
        `${fmt(streamRate)} tasks/s`,
        `per-task files: ${fmt(filesRate)} tasks/s`,
        `${(streamRate / filesRate).toFixed(2)}x${complete ? '' : ' (OUTPUT INCOMPLETE)'}`,
      ]);
    } finally {
      await killAll([server, worker]);
    }
  }

  // ---- the dashboard: render cost against the job's size, server cost of a watcher ------------
  if (wanted('dashboard')) {
    const r = tsBench('dashboard.bench.ts', DASH_TASKS);
    raw.dashboard_render = r;
    rows.push([
      `dashboard: model + frame (jobs screen, web snapshot), ${fmt(r.big_tasks)}-task job`,
      `${r.big_ms.toFixed(2)} ms/frame`,
      `${r.small_tasks}-task job: ${r.small_ms.toFixed(2)} ms/frame`,
      `${(r.big_ms / r.small_ms).toFixed(2)}x (target <= 2: ${verdict(r.big_ms / r.small_ms, '<', 2)})`,
    ]);
    // Run to run, the server's CPU per task varies by more than the watcher adds: alternate
    // the two and compare medians of five.
    const plain = [];
    const watched = [];
    for (let i = 0; i < 5; i++) {
      plain.push(await zeroThroughput(1, ZERO_CPUS, ZERO_TASKS));
      watched.push(await zeroThroughput(1, ZERO_CPUS, ZERO_TASKS, false, true));
    }
    const cpuOf = (runs) => median(runs.map((x) => x.server_cpu_us_per_task));
    const ratio = cpuOf(watched) / cpuOf(plain);
    raw.dashboard_server_cost = { plain, watched, ratio };
    rows.push([
      `dashboard: server CPU per task, zero worker, ${ZERO_TASKS} tasks (median of 5)`,
      `${cpuOf(watched).toFixed(1)} us/task with a web dashboard attached (its stream alone: ${r.stream_us_per_task.toFixed(2)} us/task)`,
      `without: ${cpuOf(plain).toFixed(1)} us/task`,
      `${ratio.toFixed(2)}x (target <= 1.1: ${verdict(ratio, '<', 1.1)})`,
    ]);
  }

  // ---- the Python API: submit + wait against the CLI, function tasks against Dask ------------
  if (wanted('python-api')) {
    const python = '/usr/bin/python3';
    const probe = spawnSync(python, ['-c', 'import cloudpickle'], { encoding: 'utf8' });
    if (probe.status !== 0) {
      rows.push([
        'python api',
        'not run',
        `${python} has no cloudpickle (apt-get install python3-cloudpickle python3-tqdm)`,
        '-',
      ]);
    } else {
      const work = tempDir('hq-bench-py-');
      const dir = join(work, 'server');
      const pyEnv = {
        ...env(),
        HQ_BIN: HQ,
        HQ_SERVER_DIR: dir,
        PYTHONPATH: join(ROOT, 'python'),
        HQ_PYLOG: 'WARNING',
      };
      const runPython = (code) => {
        const r = spawnSync(python, ['-c', code], {
          env: pyEnv,
          cwd: work,
          encoding: 'utf8',
          timeout: 600_000,
        });
        if (r.status !== 0) throw new Error(`python bench: ${r.stderr}`);
        return JSON.parse(r.stdout.trim().split('\n').pop());
      };
      const server = await startServer(dir);
      const zero = startWorker(dir, join(work, 'zw'), ZERO_CPUS, ['--zero-worker']);
      try {
        await until(
          () => hq(dir, ['worker', 'list']).stdout.includes('RUNNING'),
          10_000,
          'zero worker',
        );
        // 10,000 program tasks: the whole Python program (start, import, build, submit, wait)
        // against `hq job submit-file` of the same graph plus `hq job wait`.
        const n = PY_PROGRAM_TASKS;
        const toml = join(work, 'job.toml');
        writeFileSync(
          toml,
          Array.from({ length: n }, (_, i) => `[[task]]\nid = ${i}\ncommand = ["true"]\n`).join(''),
        );
        const pyProgram = `
import json, time
t0 = time.monotonic()
import hyperqueue as hq
client = hq.Client()
job = hq.Job()
for i in range(${n}):
    job.program(["true"])
client.wait_for_jobs([client.submit(job)])
print(json.dumps({"s": time.monotonic() - t0}))
`;
        const py = [];
        const cli = [];
        for (let i = 0; i < 3; i++) {
          const t0 = performance.now();
          runPython(pyProgram);
          py.push(performance.now() - t0);
          const t1 = performance.now();
          const out = hq(dir, ['--output-mode', 'quiet', 'job', 'submit-file', toml], {
            cwd: work,
          });
          hq(dir, ['job', 'wait', out.stdout.trim()]);
          cli.push(performance.now() - t1);
        }
        const ratio = median(py) / median(cli);
        raw.python_api_programs = { tasks: n, python_ms: py, cli_ms: cli, ratio };
        rows.push([
          `python api: submit + wait_for_jobs, ${n} program tasks, zero worker`,
          `${fmt(median(py))} ms`,
          `CLI job submit-file (TOML graph) + job wait: ${fmt(median(cli))} ms`,
          `${ratio.toFixed(2)}x (target <= 1.5: ${verdict(ratio, '<', 1.5)})`,
        ]);
      } finally {
        await killAll([zero]);
      }
      // 1,000 trivial function tasks on a real 2-CPU worker; Dask's client.map beside it.
      // Its tasks import the package from this tree.
      const worker = startHq(
        ['--server-dir', dir, 'worker', 'start', '--cpus', '2', '--detect-resources', 'none'],
        { env: pyEnv, cwd: work },
      );
      try {
        await until(() => hq(dir, ['worker', 'list']).stdout.includes('RUNNING'), 10_000, 'worker');
        const m = PY_FUNCTION_TASKS;
        const fnRun = runPython(`
import json, time
import hyperqueue as hq
from hyperqueue.client import PythonEnv
def square(x):
    return x * x
client = hq.Client(python_env=PythonEnv(python_bin="${python}"))
job = hq.Job()
for i in range(${m}):
    job.function(square, args=(i,), stdout=None, stderr=None)
t0 = time.monotonic()
client.wait_for_jobs([client.submit(job)])
print(json.dumps({"s": time.monotonic() - t0}))
`);
        const hqRate = m / fnRun.s;
        const daskProbe = spawnSync(python, ['-c', 'import distributed'], { encoding: 'utf8' });
        let baseline = 'Dask not installed (apt-get install python3-distributed)';
        let ratio = '-';
        if (daskProbe.status === 0) {
          const dask = runPython(`
import json, time
from distributed import Client, LocalCluster
def square(x):
    return x * x
with LocalCluster(n_workers=1, threads_per_worker=2, processes=True, dashboard_address=None) as c, Client(c) as client:
    t0 = time.monotonic()
    client.gather(client.map(square, range(${m})))
    print(json.dumps({"s": time.monotonic() - t0}))
`);
          const daskRate = m / dask.s;
          baseline = `Dask client.map, 1 worker x 2 threads: ${fmt(daskRate)} tasks/s`;
          ratio = `${(hqRate / daskRate).toFixed(3)}x`;
          raw.python_api_functions_dask = { tasks_per_s: daskRate };
        }
        raw.python_api_functions = { tasks: m, seconds: fnRun.s, tasks_per_s: hqRate };
        rows.push([
          `python api: ${m} function tasks, 1 worker, 2 cpus (submit -> all done)`,
          `${fmt(hqRate)} tasks/s`,
          baseline,
          ratio,
        ]);
      } finally {
        await killAll([worker, server]);
      }
    }
  }
} finally {
  await killAll();
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
}

const header = ['benchmark', 'hq', 'baseline (same run)', 'ratio'];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
const line = (cells) => `| ${cells.map((c, i) => String(c).padEnd(widths[i])).join(' | ')} |`;
console.log(line(header));
console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
for (const r of rows) console.log(line(r));
writeFileSync(
  join(ROOT, 'bench-results.json'),
  JSON.stringify({ date: new Date().toISOString(), quick: QUICK, ...raw }, null, 2),
);
console.log('raw numbers: bench-results.json');
