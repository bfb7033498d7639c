import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import type { ServerEvent } from '../../src/server/events.js';
import { arrayJob as arrayJobOf, started } from './event-fixtures.js';
import { pruneRecords } from '../../src/server/journal/prune.js';
import { ServerState, jobStatus } from '../../src/server/state.js';
import type { TaskDesc } from '../../src/transport/messages.js';

const DESC: TaskDesc = {
  program: {
    args: ['true'],
    env: {},
    cwd: '/tmp',
    stdout: { kind: 'null' },
    stderr: { kind: 'null' },
    stdin: null,
  },
  resources: [],
  timeLimitMs: null,
  priority: 0,
  crashLimit: 5,
  taskDir: false,
  pinMode: null,
  streamPath: null,
};

function arrayJob(job: number, start: number, count: number, closedJob = true): ServerEvent {
  return arrayJobOf(job, start, count, DESC, closedJob);
}

function graphJob(job: number, tasks: [number, number[]][]): ServerEvent {
  return {
    type: 'job-created',
    job,
    closedJob: true,
    name: 'graph',
    maxFails: null,
    submit: {
      kind: 'graph',
      submitDir: '/tmp',
      tasks: tasks.map(([id, deps]) => ({ id, deps, taskDesc: DESC })),
    },
  };
}

function replay(events: ServerEvent[]): ServerState {
  const state = new ServerState();
  events.forEach((e, i) => state.apply(1000 + i, e));
  return state;
}

void describe('ServerState.apply', () => {
  void it('keeps job counters in step with task states', () => {
    const s = replay([
      arrayJob(1, 0, 4),
      started(1, 0),
      started(1, 1),
      { type: 'task-finished', jobId: 1, taskId: 0 },
      { type: 'task-failed', jobId: 1, taskId: 1, error: 'boom' },
      { type: 'task-canceled', tasks: [{ jobId: 1, taskId: 2 }] },
    ]);
    const job = s.jobs.get(1)!;
    assert.deepEqual(job.counters, { running: 0, finished: 1, failed: 1, canceled: 1, aborted: 0 });
    assert.equal(job.tasks.get(1)!.error, 'boom');
    assert.equal(job.tasks.get(3)!.state, 'waiting');
    assert.equal(jobStatus(job.tasks.size, job.counters, job.isOpen), 'waiting');
    assert.equal(s.maxJobId, 1);
  });

  void it('counts crashes through restarts and keeps them over a later start', () => {
    const s = replay([
      arrayJob(1, 0, 1),
      started(1, 0),
      { type: 'task-restarted', jobId: 1, taskId: 0, crashed: true },
      started(1, 0, 2, 1),
      { type: 'task-restarted', jobId: 1, taskId: 0, crashed: false },
    ]);
    const task = s.jobs.get(1)!.tasks.get(0)!;
    assert.equal(task.state, 'waiting');
    assert.equal(task.instance, 2);
    assert.equal(task.crashCount, 1);
    assert.equal(s.jobs.get(1)!.counters.running, 0);
  });

  void it('releases graph consumers as their dependencies finish', () => {
    const s = new ServerState();
    s.apply(
      1,
      graphJob(1, [
        [0, []],
        [1, []],
        [2, [0, 1]],
      ]),
    );
    assert.deepEqual(s.readied.tasks, [0, 1]);
    s.apply(2, started(1, 0));
    s.apply(3, { type: 'task-finished', jobId: 1, taskId: 0 });
    assert.deepEqual(s.readied.tasks, []);
    s.apply(4, started(1, 1));
    s.apply(5, { type: 'task-finished', jobId: 1, taskId: 1 });
    assert.deepEqual(s.readied.tasks, [2]);
    assert.equal(s.jobs.get(1)!.tasks.get(2)!.waitingDeps, 0);
  });

  void it('adds submits to open jobs only, and ignores odd sequences without throwing', () => {
    const s = replay([
      { type: 'job-open', job: 1, name: 'open', maxFails: null },
      arrayJob(1, 0, 2, false),
      arrayJob(2, 0, 1, false), // job 2 is not open: ignored
      arrayJob(1, 0, 1), // job 1 created twice: ignored
      { type: 'task-finished', jobId: 9, taskId: 9 },
      { type: 'job-close', job: 7 },
      started(1, 1),
      { type: 'task-finished', jobId: 1, taskId: 1 },
      { type: 'task-restarted', jobId: 1, taskId: 1, crashed: true }, // finished: ignored
    ]);
    assert.deepEqual([...s.jobs.keys()], [1]);
    assert.equal(s.jobs.get(1)!.tasks.size, 2);
    assert.equal(s.jobs.get(1)!.isOpen, true);
    assert.equal(s.jobs.get(1)!.tasks.get(1)!.state, 'finished');
    assert.equal(s.jobs.get(1)!.tasks.get(1)!.crashCount, 0);
  });

  void it('counts a lost assignment whose start was never reported as a run and a crash', () => {
    const s = replay([
      arrayJob(1, 0, 1),
      { type: 'task-restarted', jobId: 1, taskId: 0, crashed: true },
      { type: 'task-restarted', jobId: 1, taskId: 0, crashed: false },
    ]);
    const task = s.jobs.get(1)!.tasks.get(0)!;
    assert.equal(task.state, 'waiting');
    assert.equal(task.instance, 2);
    assert.equal(task.crashCount, 1);
    assert.equal(s.jobs.get(1)!.counters.running, 0);
  });

  void it('settles after a restore: finished jobs go, running tasks wait with the next instance', () => {
    const s = replay([
      { type: 'server-start', serverUid: 'uid1' },
      { type: 'worker-connected', id: 4, configuration: {} as never },
      arrayJob(1, 0, 1),
      started(1, 0),
      { type: 'task-finished', jobId: 1, taskId: 0 },
      { type: 'job-completed', job: 1 },
      arrayJob(2, 0, 3),
      started(2, 0),
      started(2, 1),
      { type: 'task-finished', jobId: 2, taskId: 1 },
      { type: 'server-start', serverUid: 'uid1' },
    ]);
    s.settleAfterRestore();
    assert.deepEqual([...s.jobs.keys()], [2]);
    const job = s.jobs.get(2)!;
    assert.equal(job.tasks.get(0)!.state, 'waiting');
    assert.equal(job.tasks.get(0)!.instance, 1);
    assert.equal(job.tasks.get(0)!.workerId, null);
    assert.equal(job.tasks.get(1)!.state, 'finished');
    assert.equal(job.tasks.get(2)!.instance, 0);
    assert.deepEqual(job.counters, { running: 0, finished: 1, failed: 0, canceled: 0, aborted: 0 });
    assert.equal(s.maxJobId, 2);
    assert.equal(s.maxWorkerId, 4);
    assert.equal(s.serverUid, 'uid1');
  });

  void it('gives a task sent to a worker before a crash the next instance, whether or not it started', () => {
    const s = replay([
      { type: 'server-start', serverUid: 'uid1' },
      arrayJob(1, 0, 5),
      { type: 'tasks-sent', jobId: 1, workerId: 1, ranges: [0, 2, 4, 1] },
      started(1, 0),
    ]);
    s.settleAfterRestore();
    const instances = [0, 1, 2, 3, 4].map((id) => s.jobs.get(1)!.tasks.get(id)!.instance);
    // 0 ran, 1 and 4 were sent (a worker may have started them unreported), 2 and 3 never left.
    assert.deepEqual(instances, [1, 1, 0, 0, 1]);
    assert.ok([0, 1, 2, 3, 4].every((id) => s.jobs.get(1)!.tasks.get(id)!.workerId === null));
  });

  void it('does not bump a sent task again once a lost worker restarted it', () => {
    const s = replay([
      arrayJob(1, 0, 1),
      { type: 'tasks-sent', jobId: 1, workerId: 1, ranges: [0, 1] },
      { type: 'task-restarted', jobId: 1, taskId: 0, crashed: true },
    ]);
    s.settleAfterRestore();
    assert.equal(s.jobs.get(1)!.tasks.get(0)!.instance, 1);
  });

  void it('replays repeated restarts as they happened: every run of a task has a new instance', () => {
    // Run 1: task 0 starts as instance 0, the server dies. Run 2 (restored: instance 1) sends it
    // and starts it again, and dies too. The replay of both runs must settle it to instance 2.
    const events: ServerEvent[] = [
      { type: 'server-start', serverUid: 'uid1' },
      arrayJob(1, 0, 2),
      { type: 'tasks-sent', jobId: 1, workerId: 1, ranges: [0, 2] },
      started(1, 0),
      { type: 'server-start', serverUid: 'uid1' },
      { type: 'tasks-sent', jobId: 1, workerId: 3, ranges: [0, 2] },
      started(1, 0, 3, 1),
    ];
    const s = replay(events);
    s.settleAfterRestore();
    assert.equal(s.jobs.get(1)!.tasks.get(0)!.instance, 2);
    assert.equal(s.jobs.get(1)!.tasks.get(1)!.instance, 2);
    // What the second run saw when it started: the state a live restore had then.
    const midway = replay(events.slice(0, 5));
    assert.equal(midway.jobs.get(1)!.tasks.get(0)!.instance, 1);
    assert.equal(midway.jobs.get(1)!.tasks.get(0)!.state, 'waiting');
  });

  void it('tracks queues, their pause state, known resources and the highest queue id', () => {
    const params = {} as never;
    const resources = { resources: [], coupling: { weights: [] } };
    const s = replay([
      { type: 'autoalloc-queue-created', queueId: 1, params },
      { type: 'autoalloc-queue-created', queueId: 2, params },
      { type: 'autoalloc-queue-created', queueId: 3, params },
      { type: 'autoalloc-queue-removed', queueId: 3 },
      { type: 'autoalloc-queue-paused', queueId: 2 },
      { type: 'autoalloc-queue-resources', queueId: 1, resources },
    ]);
    assert.deepEqual([...s.queues.keys()], [1, 2]);
    assert.equal(s.queues.get(2)!.paused, true);
    assert.deepEqual(s.queues.get(1)!.knownWorkerResources, resources);
    assert.equal(s.maxQueueId, 3);
  });

  void it('never lets ids go back after a prune drops the highest ones', () => {
    const records = [
      { time: 1, event: { type: 'server-start', serverUid: 'u' } as ServerEvent },
      { time: 2, event: arrayJob(1, 0, 1) },
      { time: 3, event: arrayJob(2, 0, 1) },
      { time: 4, event: { type: 'job-completed', job: 2 } as ServerEvent },
      {
        time: 5,
        event: { type: 'worker-connected', id: 7, configuration: {} as never } as ServerEvent,
      },
      {
        time: 6,
        event: {
          type: 'task-canceled',
          tasks: [
            { jobId: 1, taskId: 0 },
            { jobId: 2, taskId: 0 },
          ],
        } as ServerEvent,
      },
    ];
    const kept = pruneRecords(records, new Set([1]), new Set(), { job: 2, worker: 7, queue: 0 });
    assert.deepEqual(
      kept.map((r) => r.event.type),
      ['id-counters', 'server-start', 'job-created', 'task-canceled'],
    );
    const canceled = kept[3]!.event as Extract<ServerEvent, { type: 'task-canceled' }>;
    assert.deepEqual(canceled.tasks, [{ jobId: 1, taskId: 0 }]);
    const s = replay(kept.map((r) => r.event));
    assert.equal(s.maxJobId, 2);
    assert.equal(s.maxWorkerId, 7);
  });
});
