/**
 * Scheduler placement benchmark (issue: place 100,000 waiting tasks of mixed requests onto 64
 * workers; target < 10 µs per task). Pure in-process: the scheduler alone, no I/O.
 * The baseline measured in the same run is a plain sort of the same tasks by
 * (priority, job, task), the least any priority-ordered placement has to do.
 */
import { performance } from 'node:perf_hooks';
import { Scheduler, type TaskRequest } from '../src/scheduler/scheduler.js';

const CPU = 10_000;
const N_TASKS = Number(process.env['BENCH_TASKS'] ?? 100_000);
const N_WORKERS = 64;

function requests(): TaskRequest[] {
  return [
    { needs: [{ name: 'cpus', amount: 1 * CPU }], minTimeMs: 0 },
    { needs: [{ name: 'cpus', amount: 2 * CPU }], minTimeMs: 0 },
    {
      needs: [
        { name: 'cpus', amount: 4 * CPU },
        { name: 'mem', amount: 4096 * CPU },
      ],
      minTimeMs: 0,
    },
    {
      needs: [
        { name: 'cpus', amount: 8 * CPU },
        { name: 'gpus', amount: 1 * CPU },
      ],
      minTimeMs: 0,
    },
    { needs: [{ name: 'cpus', amount: 0.5 * CPU }], minTimeMs: 60_000 },
  ];
}

function run(): { placeMs: number; rounds: number; placed: number } {
  const s = new Scheduler();
  for (let w = 1; w <= N_WORKERS; w++) {
    const totals = new Map([
      ['cpus', 32 * CPU],
      ['mem', 128 * 1024 * CPU],
    ]);
    if (w % 4 === 0) {
      totals.set('gpus', 4 * CPU);
    }
    s.addWorker(w, totals, null);
  }
  const rqs = requests();
  for (let t = 0; t < N_TASKS; t++) {
    s.enqueue(1 + (t % 7), t, t % 3, rqs[t % rqs.length]!);
  }
  // Place everything: schedule, finish all assigned tasks, schedule again, until empty.
  const t0 = performance.now();
  let placed = 0;
  let rounds = 0;
  while (s.waitingCount > 0 && rounds < 100_000) {
    const batch = s.schedule(1_000_000);
    rounds++;
    placed += batch.length;
    for (const a of batch) {
      s.release(a.workerId, a.taken);
    }
  }
  return { placeMs: performance.now() - t0, rounds, placed };
}

function baselineSortMs(): number {
  const items = Array.from({ length: N_TASKS }, (_, t) => ({ p: t % 3, j: 1 + (t % 7), t }));
  const t0 = performance.now();
  items.sort((a, b) => b.p - a.p || a.j - b.j || a.t - b.t);
  return performance.now() - t0;
}

const results = [];
for (let i = 0; i < 3; i++) {
  results.push(run());
}
results.sort((a, b) => a.placeMs - b.placeMs);
const median = results[1]!;
const sortMs = baselineSortMs();
const usPerTask = (median.placeMs * 1000) / median.placed;
const out = {
  benchmark: 'scheduler-placement',
  tasks: N_TASKS,
  workers: N_WORKERS,
  placed: median.placed,
  rounds: median.rounds,
  median_ms: Number(median.placeMs.toFixed(1)),
  us_per_task: Number(usPerTask.toFixed(2)),
  baseline_sort_ms: Number(sortMs.toFixed(1)),
  ratio_to_sort: Number((median.placeMs / sortMs).toFixed(1)),
  target_us_per_task: 10,
};
console.log(JSON.stringify(out));
