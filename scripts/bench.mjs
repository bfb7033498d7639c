// `npm run bench`: the project's benchmarks, each with its baselines measured in the same run,
// reported as ratios (see ../shared/spec/performance.md). Prints one table and writes the raw
// numbers to bench-results.json. `--quick` runs smaller sizes.
//
// Benchmarks so far: scheduler placement (pure), server start-up and `hq job list` latency,
// and spawn throughput of real /bin/true tasks against the C posix_spawn limit and xargs -P2.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '..');
const HQ = join(ROOT, 'dist', 'hq');
const QUICK = process.argv.includes('--quick');
const SPAWN_TASKS = QUICK ? 2000 : 10000;
const SCHED_TASKS = QUICK ? 20000 : 100000;
const LATENCY_RUNS = QUICK ? 5 : 15;

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

// ---- scheduler placement ---------------------------------------------------------------
{
  const out = execFileSync(
    process.execPath,
    ['--import', 'tsx', join(ROOT, 'bench', 'scheduler.bench.ts')],
    {
      env: { ...env(), BENCH_TASKS: String(SCHED_TASKS) },
      encoding: 'utf8',
    },
  );
  const r = JSON.parse(out.trim().split('\n').pop());
  raw.scheduler = r;
  rows.push([
    `scheduler: place ${r.tasks} mixed tasks on ${r.workers} workers`,
    `${r.us_per_task} us/task`,
    `sort of the same tasks: ${r.baseline_sort_ms} ms`,
    `${r.ratio_to_sort}x sort (target < 10 us/task)`,
  ]);
}

// ---- start-up and round-trip latency ---------------------------------------------------
{
  const starts = [];
  const lists = [];
  const nodeStarts = [];
  for (let i = 0; i < LATENCY_RUNS; i++) {
    const dir = mkdtempSync(join(tmpdir(), 'hq-bench-'));
    const t0 = performance.now();
    const server = spawn(HQ, ['--server-dir', dir, 'server', 'start'], {
      stdio: 'ignore',
      env: env(),
    });
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
    await new Promise((r) => server.once('exit', r));
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

// ---- spawn throughput ------------------------------------------------------------------
{
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

  const dir = join(work, 'server');
  const server = spawn(HQ, ['--server-dir', dir, 'server', 'start'], {
    stdio: 'ignore',
    env: env(),
  });
  await until(() => existsSync(join(dir, 'hq-current', 'access.json')), 10000, 'access file');
  const worker = spawn(
    HQ,
    [
      '--server-dir',
      dir,
      'worker',
      'start',
      '--cpus',
      '2',
      '--detect-resources',
      'none',
      '--work-dir',
      join(work, 'w'),
    ],
    { stdio: 'ignore', env: env() },
  );
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
  await new Promise((r) => server.once('exit', r));
  worker.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
  raw.spawn = {
    tasks: SPAWN_TASKS,
    hq_tasks_per_s: hqRate,
    c_limit_tasks_per_s: limitRate,
    xargs_p2_tasks_per_s: xargsRate,
  };
  rows.push([
    `spawn: ${SPAWN_TASKS} x /bin/true, 1 worker, 2 cpus`,
    `${hqRate.toFixed(0)} tasks/s`,
    `C limit ${limitRate === null ? 'n/a (no cc)' : limitRate.toFixed(0)}; xargs -P2 ${xargsRate.toFixed(0)}`,
    limitRate === null
      ? '-'
      : `${(hqRate / limitRate).toFixed(2)}x C limit, ${(hqRate / xargsRate).toFixed(2)}x xargs`,
  ]);
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
