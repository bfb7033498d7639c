/**
 * Dashboard frame cost against the size of the job shown: the model of a 10-task job and of a
 * BENCH_TASKS-task job (half of it run), then the terminal jobs screen and the web snapshot of
 * the same window rendered repeatedly for each. Prints one JSON line; scripts/bench.mjs reports it.
 */
import { DashboardModel } from '../src/dashboard/model.js';
import { initialState, render } from '../src/dashboard/tui/app.js';
import { snapshot } from '../src/dashboard/views.js';
import type { ServerEvent } from '../src/server/events.js';
import type { TaskDesc, WorkerConfiguration } from '../src/transport/messages.js';
import { encodeFrame } from '../src/transport/framing.js';
import { StreamBatch } from '../src/transport/stream-records.js';

const BIG = Number(process.env['BENCH_TASKS'] ?? 1_000_000);
const SMALL = 10;
const FRAMES = 200;

function build(tasks: number): DashboardModel {
  const m = new DashboardModel();
  m.apply(0, {
    type: 'worker-connected',
    id: 1,
    configuration: {
      hostname: 'w1',
      listenAddress: 'w1:1',
      workDir: '/w',
      heartbeatIntervalMs: 8000,
    } as WorkerConfiguration,
  });
  const submit: ServerEvent = {
    type: 'job-created',
    job: 1,
    closedJob: true,
    name: 'bench',
    maxFails: null,
    submit: {
      kind: 'array',
      ids: [{ start: 0, count: tasks, step: 1 }],
      autoIds: false,
      entries: null,
      taskDesc: { program: { args: ['true'], cwd: '/tmp' } } as TaskDesc,
      submitDir: '/tmp',
    },
  };
  m.apply(1, submit);
  const run = Math.ceil(tasks / 2);
  // Spread over an hour of simulated time.
  const step = 3_600_000 / run;
  for (let i = 0; i < run; i++) {
    const t = 2 + i * step;
    m.apply(t, {
      type: 'task-started',
      jobId: 1,
      taskId: i,
      instance: 0,
      workers: [1],
      variant: 0,
    });
    m.apply(t + step / 2, { type: 'task-finished', jobId: 1, taskId: i });
  }
  return m;
}

function frameMs(m: DashboardModel): number {
  const end = m.lastTime ?? 0;
  const state = initialState('replay', { kind: 'fixed', start: end - 600_000, end });
  state.focus = 2;
  state.taskRow = Math.floor(m.jobs.get(1)!.tasks.size / 2);
  // Warm up, then measure.
  for (let i = 0; i < 20; i++) {
    render(m, state, end, 160, 50);
    snapshot(m, 'replay', end - 600_000, end);
  }
  const t0 = performance.now();
  for (let i = 0; i < FRAMES; i++) {
    render(m, state, end, 160, 50);
    snapshot(m, 'replay', end - 600_000, end);
  }
  return (performance.now() - t0) / FRAMES;
}

/**
 * The server's own work for one watcher per task (a start and a finish): gathering both events
 * into a stream batch, taking its frames and encoding them, as the event hub does every 50 ms.
 */
function streamUsPerTask(tasks: number): number {
  const started: ServerEvent = {
    type: 'task-started',
    jobId: 1,
    taskId: 0,
    instance: 0,
    workers: [1],
    variant: 0,
  };
  const finished: ServerEvent = { type: 'task-finished', jobId: 1, taskId: 0 };
  let bytes = 0;
  const once = (): number => {
    const t0 = process.cpuUsage();
    const batch = new StreamBatch();
    for (let i = 0; i < tasks; i++) {
      started.taskId = i;
      finished.taskId = i;
      batch.add(i, started);
      batch.add(i + 1, finished);
      if (batch.size >= 2000) {
        for (const frame of batch.take()) {
          bytes += encodeFrame({ op: 'events', reqId: 1, records: frame }).length;
        }
      }
    }
    const used = process.cpuUsage(t0);
    return (used.user + used.system) / tasks;
  };
  once();
  const runs = [once(), once(), once()].sort((a, b) => a - b);
  return bytes > 0 ? runs[1]! : NaN;
}

const small = build(SMALL);
const big = build(BIG);
const smallMs = frameMs(small);
const bigMs = frameMs(big);
console.log(
  JSON.stringify({
    small_tasks: SMALL,
    big_tasks: BIG,
    small_ms: smallMs,
    big_ms: bigMs,
    stream_us_per_task: streamUsPerTask(1_000_000),
  }),
);
