import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import type { ServerEvent } from '../../src/server/events.js';
import { arrayJob, started } from './event-fixtures.js';
import { DashboardModel } from '../../src/dashboard/model.js';
import { StepSeries, SampleSeries } from '../../src/dashboard/series.js';
import { TaskStore } from '../../src/dashboard/task-store.js';
import type { TaskDesc, WorkerConfiguration } from '../../src/transport/messages.js';

const DESC = {} as TaskDesc;
const CONFIG = { hostname: 'node1' } as WorkerConfiguration;

function arraySubmit(job: number, count: number): ServerEvent {
  return arrayJob(job, 0, count, DESC);
}

function model(events: [number, ServerEvent][]): DashboardModel {
  const m = new DashboardModel();
  for (const [t, e] of events) {
    m.apply(t, e);
  }
  return m;
}

void describe('dashboard series', () => {
  void it('answers the value at any time from step changes', () => {
    const s = new StepSeries();
    s.add(10, 2);
    s.add(20, 3);
    s.add(20, -1); // the same moment: the latest value wins
    s.add(15, 1); // a clock a little behind counts at the latest time
    assert.deepEqual(
      [5, 10, 19, 20, 100].map((t) => s.at(t)),
      [0, 2, 2, 5, 5],
    );
    assert.deepEqual(s.sample(0, 20, 3), [0, 2, 5]);
  });

  void it('finds samples by time', () => {
    const s = new SampleSeries<string>();
    s.push(10, 'a');
    s.push(20, 'b');
    s.push(30, 'c');
    assert.equal(s.at(5), undefined);
    assert.equal(s.at(25), 'b');
    assert.deepEqual(
      s.between(15, 30).map((x) => x.item),
      ['b', 'c'],
    );
  });

  void it('stores tasks densely while ids are 0, 1, 2..., and by map otherwise', () => {
    const dense = new TaskStore();
    for (let i = 0; i < 200; i++) {
      assert.equal(dense.slot(i), i);
    }
    assert.equal(dense.slotOf(200), -1);
    const sparse = new TaskStore();
    sparse.slot(0);
    sparse.slot(7);
    sparse.slot(3);
    assert.deepEqual(
      [0, 7, 3, 5].map((id) => sparse.slotOf(id)),
      [0, 1, 2, -1],
    );
    sparse.start(1, 100, 4, 2);
    sparse.end(1, 150, 2);
    assert.deepEqual(sparse.row(1), {
      id: 7,
      state: 'finished',
      start: 100,
      end: 150,
      worker: 4,
      instance: 2,
    });
    assert.equal(sparse.row(1, 120).state, 'running');
    assert.equal(sparse.row(1, 120).end, null);
    assert.equal(sparse.row(1, 90).state, 'waiting');
  });
});

void describe('DashboardModel', () => {
  const history: [number, ServerEvent][] = [
    [900, { type: 'server-start', serverUid: 'uid' }],
    [950, { type: 'worker-connected', id: 1, configuration: CONFIG }],
    [960, { type: 'worker-connected', id: 2, configuration: CONFIG }],
    [1000, arraySubmit(1, 5)],
    [1100, started(1, 0, 1)],
    [1100, started(1, 1, 2)],
    [1200, { type: 'task-finished', jobId: 1, taskId: 0 }],
    [1300, { type: 'task-failed', jobId: 1, taskId: 1, error: 'boom' }],
    [1350, { type: 'worker-lost', id: 2, reason: 'heartbeat-lost' }],
    [
      1400,
      {
        type: 'task-canceled',
        tasks: [2, 3, 4].map((taskId) => ({ jobId: 1, taskId })),
      },
    ],
    [1400, { type: 'job-completed', job: 1 }],
  ];

  void it('counts the tasks of a job by state at any time', () => {
    const m = model(history);
    const job = m.jobs.get(1)!;
    const at = (t: number) => job.countsAt(t);
    assert.deepEqual(at(999), {
      waiting: 0,
      running: 0,
      finished: 0,
      failed: 0,
      canceled: 0,
      aborted: 0,
    });
    assert.deepEqual(at(1050), {
      waiting: 5,
      running: 0,
      finished: 0,
      failed: 0,
      canceled: 0,
      aborted: 0,
    });
    assert.deepEqual(at(1150), {
      waiting: 3,
      running: 2,
      finished: 0,
      failed: 0,
      canceled: 0,
      aborted: 0,
    });
    assert.deepEqual(at(1250), {
      waiting: 3,
      running: 1,
      finished: 1,
      failed: 0,
      canceled: 0,
      aborted: 0,
    });
    assert.deepEqual(at(2000), {
      waiting: 0,
      running: 0,
      finished: 1,
      failed: 1,
      canceled: 3,
      aborted: 0,
    });
    assert.deepEqual(m.countsAt(2000), at(2000));
    assert.equal(job.completedAt, 1400);
    assert.equal(job.nTasks, 5);
  });

  void it('shows task rows as they were at a time, only the ones asked for', () => {
    const job = model(history).jobs.get(1)!;
    assert.deepEqual(
      job.rows(0, 2, 1150).map((r) => [r.id, r.state, r.start, r.end, r.worker]),
      [
        [0, 'running', 1100, null, 1],
        [1, 'running', 1100, null, 2],
      ],
    );
    assert.deepEqual(
      job.rows(1, 10).map((r) => [r.id, r.state]),
      [
        [1, 'failed'],
        [2, 'canceled'],
        [3, 'canceled'],
        [4, 'canceled'],
      ],
    );
  });

  void it('keeps workers, their lost reason, the online count and their task runs', () => {
    const m = model(history);
    assert.deepEqual(
      [940, 955, 1000, 1400].map((t) => m.workerCount.at(t)),
      [0, 1, 2, 1],
    );
    const lost = m.workers.get(2)!;
    assert.equal(lost.lostReason, 'heartbeat-lost');
    assert.equal(lost.isOnline(1300), true);
    assert.equal(lost.isOnline(1350), false);
    const w1 = m.workers.get(1)!;
    assert.deepEqual(w1.runsBetween(1000, 2000), [
      { job: 1, task: 0, start: 1100, end: 1200, cpus: null },
    ]);
    assert.deepEqual(w1.runsBetween(1201, 2000), []);
    assert.deepEqual(
      [1050, 1150, 1250].map((t) => w1.running.at(t)),
      [0, 1, 0],
    );
  });

  void it('counts a task started again (a re-run a stream does not announce) once', () => {
    const m = model([
      [1000, { type: 'worker-connected', id: 1, configuration: CONFIG }],
      [1000, { type: 'worker-connected', id: 3, configuration: CONFIG }],
      [1000, arraySubmit(1, 1)],
      [1100, started(1, 0, 1)],
      [1200, { type: 'worker-lost', id: 1, reason: 'connection-lost' }],
      [1300, started(1, 0, 3, 1)],
      [1400, { type: 'task-finished', jobId: 1, taskId: 0 }],
    ]);
    const job = m.jobs.get(1)!;
    assert.deepEqual(job.countsAt(1350), {
      waiting: 0,
      running: 1,
      finished: 0,
      failed: 0,
      canceled: 0,
      aborted: 0,
    });
    assert.equal(job.countsAt(1500).finished, 1);
    assert.deepEqual(m.workers.get(1)!.runsBetween(0, 2000), [
      { job: 1, task: 0, start: 1100, end: 1300, cpus: null },
    ]);
    assert.deepEqual(m.workers.get(3)!.runsBetween(0, 2000), [
      { job: 1, task: 0, start: 1300, end: 1400, cpus: null },
    ]);
    assert.equal(job.rows(0, 1)[0]!.instance, 1);
  });

  void it('learns the CPUs of runs and of the worker from overviews, and ignores malformed ones', () => {
    const config = {
      hostname: 'node1',
      resources: { resources: [{ name: 'cpus', kind: 'range', start: 2, end: 5 }] },
    } as unknown as WorkerConfiguration;
    const m = model([
      [0, { type: 'worker-connected', id: 1, configuration: config }],
      [0, arraySubmit(1, 3)],
      [10, started(1, 0)],
      [10, started(1, 1)],
      [
        20,
        {
          type: 'worker-overview',
          id: 1,
          hwState: null,
          tasks: [
            [1, 0, [2, 3]],
            [1, 1, [4]],
          ],
        },
      ],
      [25, { type: 'task-finished', jobId: 1, taskId: 0 }],
      // A later overview does not change what a run held; one for a task that is not running
      // on this worker changes no run.
      [
        30,
        {
          type: 'worker-overview',
          id: 1,
          hwState: null,
          tasks: [
            [1, 1, [5]],
            [1, 2, [2]],
          ],
        },
      ],
      [
        40,
        {
          type: 'worker-overview',
          id: 1,
          hwState: null,
          tasks: [[1, 1, ['x']]] as unknown as [number, number, number[]][],
        },
      ],
    ]);
    const w = m.workers.get(1)!;
    assert.deepEqual(
      w
        .runsBetween(0, 100)
        .map((r) => [r.task, r.cpus])
        .sort(),
      [
        [0, [2, 3]],
        [1, [4]],
      ],
    );
    assert.deepEqual([...(w.assigned.at(25) ?? [])], [2, 3, 4]);
    assert.deepEqual([...(w.assigned.at(45) ?? [])], [5, 2], 'the malformed overview is skipped');
    assert.deepEqual(w.managedCpus(), [2, 3, 4, 5]);
    assert.equal(m.workers.get(1)!.status(50), 'online');
  });

  void it('finds a long open run and old short runs in a late window', () => {
    const events: [number, ServerEvent][] = [
      [0, { type: 'worker-connected', id: 1, configuration: CONFIG }],
      [0, arraySubmit(1, 102)],
      [10, started(1, 0)],
    ];
    for (let i = 1; i <= 100; i++) {
      events.push([100 + i * 10, started(1, i)]);
      events.push([105 + i * 10, { type: 'task-finished', jobId: 1, taskId: i }]);
    }
    const m = model(events);
    const runs = m.workers.get(1)!.runsBetween(5000, 6000);
    assert.deepEqual(runs, [{ job: 1, task: 0, start: 10, end: NaN, cpus: null }]);
    assert.equal(m.workers.get(1)!.runsBetween(1100, 1102).length, 2);
  });

  void it('holds a million-task array in typed arrays and answers from its counts', () => {
    const m = new DashboardModel();
    m.apply(0, { type: 'worker-connected', id: 1, configuration: CONFIG });
    m.apply(1, arraySubmit(1, 1_000_000));
    for (let i = 0; i < 500_000; i++) {
      m.apply(2 + i, started(1, i));
      m.apply(3 + i, { type: 'task-finished', jobId: 1, taskId: i });
    }
    const job = m.jobs.get(1)!;
    assert.equal(job.countsAt(1e9).finished, 500_000);
    assert.equal(job.countsAt(1e9).waiting, 500_000);
    assert.equal(job.countsAt(250_002).finished, 250_000);
    assert.equal(job.rows(499_990, 20).length, 10);
    assert.equal(job.tasks.size, 500_000);
  });

  void it('tracks queues and allocations, and ignores what does not fit', () => {
    const m = model([
      [10, { type: 'autoalloc-queue-created', queueId: 1, params: {} as never }],
      [20, { type: 'autoalloc-allocation-queued', queueId: 1, allocationId: '77', workerCount: 2 }],
      [30, { type: 'autoalloc-allocation-started', queueId: 1, allocationId: '77' }],
      [40, { type: 'autoalloc-allocation-finished', queueId: 1, allocationId: '77' }],
      [50, { type: 'autoalloc-queue-removed', queueId: 1 }],
      [60, { type: 'task-finished', jobId: 9, taskId: 0 }],
      [60, { type: 'worker-lost', id: 9, reason: 'stopped' }],
      [60, { type: 'autoalloc-allocation-started', queueId: 1, allocationId: 'nope' }],
    ]);
    assert.deepEqual(m.allocations.get('77'), {
      id: '77',
      queueId: 1,
      workerCount: 2,
      queuedAt: 20,
      startedAt: 30,
      finishedAt: 40,
    });
    assert.equal(m.queues.get(1)!.removedAt, 50);
    assert.equal(m.lastTime, 60);
  });
});
