/**
 * JSON views of the dashboard model for the web page: one summary of a time window, the task
 * runs of every worker in a window (the timeline), and a page of one job's tasks. Like the
 * terminal screens, each reads only what it returns (samples of step series, capped runs, one
 * page of rows), so its cost does not grow with the number of tasks.
 */
import type { HwState } from '../worker/hw-monitor.js';
import {
  averageCpu,
  type DashboardModel,
  type TaskCounts,
  type TaskRun,
  type WorkerView,
} from './model.js';
import type { TaskRow } from './task-store.js';

export const SERIES_SAMPLES = 120;
/** At most this many task runs are drawn (as Dask caps its task stream). */
export const MAX_TIMELINE_RUNS = 2000;

export interface WorkerSummary {
  id: number;
  hostname: string;
  status: string;
  running: number;
  cpu: number | null;
  mem: number | null;
  cores: number[];
}

export interface JobSummary {
  id: number;
  name: string;
  total: number;
  counts: TaskCounts;
  createdAt: number;
  completedAt: number | null;
}

export interface Snapshot {
  mode: 'stream' | 'replay';
  from: number;
  to: number;
  times: number[];
  counts: Record<'waiting' | 'running' | 'finished' | 'failed', number[]>;
  workerCount: number[];
  totals: TaskCounts;
  workers: WorkerSummary[];
  jobs: JobSummary[];
}

export function snapshot(
  model: DashboardModel,
  mode: 'stream' | 'replay',
  from: number,
  to: number,
  samples = SERIES_SAMPLES,
): Snapshot {
  const step = samples > 1 ? (to - from) / (samples - 1) : 0;
  const times = Array.from({ length: samples }, (_, i) => Math.round(from + step * i));
  const workers: WorkerSummary[] = [];
  for (const w of model.workers.values()) {
    if (w.connectedAt > to) {
      continue;
    }
    workers.push({
      id: w.id,
      hostname: w.configuration.hostname,
      status: w.status(to),
      running: w.running.at(to),
      cpu: w.cpuLoad(to),
      mem: w.memLoad(to),
      cores: w.overviews.at(to)?.cpu_usage.cpu_per_core_percent_usage ?? [],
    });
  }
  const jobs: JobSummary[] = [];
  for (const j of model.jobs.values()) {
    if (j.createdAt <= to) {
      jobs.push({
        id: j.id,
        name: j.name,
        total: j.nTasks,
        counts: j.countsAt(to),
        createdAt: j.createdAt,
        completedAt: j.completedAt !== null && j.completedAt <= to ? j.completedAt : null,
      });
    }
  }
  return {
    mode,
    from,
    to,
    times,
    counts: {
      waiting: times.map((t) => model.counts.waiting.at(t)),
      running: times.map((t) => model.counts.running.at(t)),
      finished: times.map((t) => model.counts.finished.at(t)),
      failed: times.map((t) => model.counts.failed.at(t)),
    },
    workerCount: times.map((t) => model.workerCount.at(t)),
    totals: model.countsAt(to),
    workers,
    jobs,
  };
}

/** Every worker's task runs overlapping [from, to], at most MAX_TIMELINE_RUNS in all. */
export function timeline(
  model: DashboardModel,
  from: number,
  to: number,
): { workers: { id: number; hostname: string; runs: TaskRun[] }[]; truncated: boolean } {
  let left = MAX_TIMELINE_RUNS;
  let truncated = false;
  const workers = [];
  for (const w of model.workers.values()) {
    const runs = w.runsBetween(from, to);
    if (runs.length > left) {
      truncated = true;
    }
    workers.push({ id: w.id, hostname: w.configuration.hostname, runs: runs.slice(-left) });
    left = Math.max(0, left - runs.length);
  }
  return { workers, truncated };
}

/** One page of a job's tasks as they were at `time`. */
export function jobTasks(
  model: DashboardModel,
  job: number,
  offset: number,
  limit: number,
  time: number,
): { total: number; rows: TaskRow[] } | null {
  const j = model.jobs.get(job);
  if (j === undefined) {
    return null;
  }
  return { total: j.tasks.size, rows: j.rows(offset, Math.min(limit, 500), time) };
}

/**
 * Averages of what `values` reads from each overview of [from, to], in `buckets` equal slices
 * (null where no overview fell in a slice), one row per value index.
 */
function bucketed(
  w: WorkerView,
  from: number,
  to: number,
  buckets: number,
  values: (hw: HwState) => readonly (number | null)[],
): (number | null)[][] {
  const width = Math.max(1, (to - from) / buckets);
  const sums: number[][] = [];
  const counts: number[][] = [];
  for (const { time, item } of w.overviews.between(from, to)) {
    const b = Math.min(buckets - 1, Math.floor((time - from) / width));
    values(item).forEach((v, row) => {
      if (v === null) {
        return;
      }
      sums[row] ??= new Array<number>(buckets).fill(0);
      counts[row] ??= new Array<number>(buckets).fill(0);
      sums[row][b]! += v;
      counts[row][b]!++;
    });
  }
  return sums.map((s, row) =>
    s.map((v, i) => (counts[row]![i]! > 0 ? v / counts[row]![i]! : null)),
  );
}

/**
 * Average CPU load of every worker in `buckets` equal slices of [from, to] (null where no
 * overview fell in a slice): the cluster's CPU heatmap. Reads only the window's overviews.
 */
export function heatmap(
  model: DashboardModel,
  from: number,
  to: number,
  buckets = 60,
): {
  from: number;
  to: number;
  workers: { id: number; hostname: string; load: (number | null)[] }[];
} {
  const workers = [];
  for (const w of model.workers.values()) {
    if (w.connectedAt > to) {
      continue;
    }
    const [load] = bucketed(w, from, to, buckets, (hw) => [averageCpu(hw)]);
    workers.push({
      id: w.id,
      hostname: w.configuration.hostname,
      load: load ?? new Array<null>(buckets).fill(null),
    });
  }
  return { from, to, workers };
}

/**
 * One worker's load per core over [from, to] (a row per core of its node, 0-1), and which
 * cores it manages: the worker detail's heatmap. Null for an unknown worker.
 */
export function coreHeatmap(
  model: DashboardModel,
  worker: number,
  from: number,
  to: number,
  buckets = 60,
): {
  id: number;
  hostname: string;
  managed: number[] | null;
  cores: (number | null)[][];
} | null {
  const w = model.workers.get(worker);
  if (w === undefined) {
    return null;
  }
  return {
    id: w.id,
    hostname: w.configuration.hostname,
    managed: w.managedCpus(),
    cores: bucketed(w, from, to, buckets, (hw) =>
      hw.cpu_usage.cpu_per_core_percent_usage.map((c) => c / 100),
    ),
  };
}
