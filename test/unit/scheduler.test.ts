import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import {
  Scheduler,
  requestSignature,
  type Assignment,
  type TaskRequest,
} from '../../src/scheduler/scheduler.js';

/** Resource amounts are fixed-point: 10_000 units are one cpu. */
const CPU = 10_000;
const NOW = 1_000_000;

function cpus(n: number, minTimeMs = 0): TaskRequest {
  return { needs: [{ name: 'cpus', amount: n * CPU }], minTimeMs };
}

function worker(s: Scheduler, id: number, nCpus: number, endsAtMs: number | null = null): void {
  s.addWorker(id, new Map([['cpus', nCpus * CPU]]), endsAtMs);
}

function ids(assignments: Assignment[]): [number, number, number][] {
  return assignments.map((a) => [a.workerId, a.jobId, a.taskId]);
}

/** Runs every assignment to completion (releasing it) and returns the start order. */
function drain(s: Scheduler, maxRounds = 1000): [number, number][] {
  const order: [number, number][] = [];
  for (let round = 0; round < maxRounds && s.waitingCount > 0; round++) {
    const batch = s.schedule(NOW);
    if (batch.length === 0) {
      break;
    }
    for (const a of batch) {
      order.push([a.jobId, a.taskId]);
      s.release(a.workerId, a.taken);
    }
  }
  return order;
}

void describe('Scheduler order', () => {
  void it('runs higher priorities first', () => {
    const s = new Scheduler();
    worker(s, 1, 1);
    s.enqueue(1, 1, 0, cpus(1));
    s.enqueue(2, 1, 5, cpus(1));
    s.enqueue(3, 1, 1, cpus(1));
    s.enqueue(4, 1, -3, cpus(1));
    assert.deepEqual(drain(s), [
      [2, 1],
      [3, 1],
      [1, 1],
      [4, 1],
    ]);
  });

  void it('is FIFO by job id, then task id, within a priority', () => {
    const s = new Scheduler();
    worker(s, 1, 1);
    s.enqueue(2, 1, 0, cpus(1));
    s.enqueue(1, 3, 0, cpus(1));
    s.enqueue(1, 2, 0, cpus(1));
    s.enqueue(3, 0, 0, cpus(1));
    s.enqueue(1, 10, 0, cpus(1));
    assert.deepEqual(drain(s), [
      [1, 2],
      [1, 3],
      [1, 10],
      [2, 1],
      [3, 0],
    ]);
  });

  void it('keeps the order across different requests', () => {
    const s = new Scheduler();
    worker(s, 1, 4);
    s.enqueue(1, 1, 0, cpus(4));
    s.enqueue(1, 2, 0, cpus(1));
    s.enqueue(2, 1, 3, cpus(2));
    // Round 1: priority 3 first (2 cpus), then job 1 task 1 needs 4 and does not fit now; it
    // holds the 2 free cpus, so task 2 (1 cpu, behind it) must not take them.
    const first = s.schedule(NOW);
    assert.deepEqual(ids(first), [[1, 2, 1]]);
    s.release(first[0]!.workerId, first[0]!.taken);
    const second = s.schedule(NOW);
    assert.deepEqual(ids(second), [[1, 1, 1]]);
    s.release(second[0]!.workerId, second[0]!.taken);
    assert.deepEqual(ids(s.schedule(NOW)), [[1, 1, 2]]);
    assert.equal(s.waitingCount, 0);
  });
});

void describe('Scheduler resources', () => {
  void it('never oversubscribes a worker', () => {
    const s = new Scheduler();
    worker(s, 1, 4);
    for (let t = 0; t < 10; t++) {
      s.enqueue(1, t, 0, cpus(t % 2 === 0 ? 1 : 3));
    }
    const batch = s.schedule(NOW);
    const used = batch.reduce((sum, a) => sum + (a.taken.get('cpus') ?? 0), 0);
    assert.ok(used <= 4 * CPU, `used ${used / CPU} cpus of 4`);
    // In order: task 0 (1 cpu), task 1 (3 cpus) fill the worker; nothing else starts.
    assert.deepEqual(ids(batch), [
      [1, 1, 0],
      [1, 1, 1],
    ]);
    assert.deepEqual(s.schedule(NOW), []);
    assert.equal(s.waitingCount, 8);
  });

  void it('keeps every worker within its resources under random load (property)', () => {
    // A small deterministic PRNG, so a failure is reproducible.
    let seed = 12345;
    const random = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    const s = new Scheduler();
    const sizes = new Map<number, number>();
    for (let w = 1; w <= 5; w++) {
      const size = 1 + random(8);
      sizes.set(w, size * CPU);
      worker(s, w, size);
    }
    const running: Assignment[] = [];
    let nextTask = 0;
    let started = 0;
    for (let round = 0; round < 300; round++) {
      for (let k = random(6); k > 0; k--) {
        s.enqueue(1 + random(3), nextTask++, random(3), cpus(1 + random(4)));
      }
      const batch = s.schedule(NOW);
      started += batch.length;
      running.push(...batch);
      const used = new Map<number, number>();
      for (const a of running) {
        used.set(a.workerId, (used.get(a.workerId) ?? 0) + (a.taken.get('cpus') ?? 0));
      }
      for (const [w, amount] of used) {
        assert.ok(amount <= sizes.get(w)!, `round ${round}: worker ${w} uses ${amount}`);
      }
      for (let k = random(running.length + 1); k > 0; k--) {
        const [a] = running.splice(random(running.length), 1);
        s.release(a!.workerId, a!.taken);
      }
    }
    assert.ok(started > 100, `the load really ran (${started} tasks started)`);
    assert.equal(s.waitingCount, nextTask - started);
  });

  void it('packs a task onto the fullest worker it fits (best fit)', () => {
    const s = new Scheduler();
    worker(s, 1, 8);
    worker(s, 2, 2);
    worker(s, 3, 4);
    // 2 cpus: worker 2 is left with 0, better than 2 (worker 3) or 6 (worker 1).
    s.enqueue(1, 1, 0, cpus(2));
    assert.deepEqual(ids(s.schedule(NOW)), [[2, 1, 1]]);
    // 3 cpus: worker 3 (1 left) beats worker 1 (5 left).
    s.enqueue(1, 2, 0, cpus(3));
    assert.deepEqual(ids(s.schedule(NOW)), [[3, 1, 2]]);
    // 1 cpu: worker 3 has exactly one left.
    s.enqueue(1, 3, 0, cpus(1));
    assert.deepEqual(ids(s.schedule(NOW)), [[3, 1, 3]]);
    // 1 cpu: only worker 1 has room now.
    s.enqueue(1, 4, 0, cpus(1));
    assert.deepEqual(ids(s.schedule(NOW)), [[1, 1, 4]]);
  });

  void it('breaks best-fit ties by the lower worker id', () => {
    const s = new Scheduler();
    worker(s, 7, 4);
    worker(s, 3, 4);
    s.enqueue(1, 1, 0, cpus(1));
    assert.deepEqual(ids(s.schedule(NOW)), [[3, 1, 1]]);
  });

  void it('gives the whole pool for an "all" request, only when it is entirely free', () => {
    const s = new Scheduler();
    worker(s, 1, 4);
    s.enqueue(1, 1, 0, cpus(1));
    s.enqueue(1, 2, 1, { needs: [{ name: 'cpus', amount: 'all' }], minTimeMs: 0 });
    // The higher-priority "all" task goes first and takes all four cpus.
    const [a] = s.schedule(NOW);
    assert.equal(a?.taskId, 2);
    assert.equal(a?.taken.get('cpus'), 4 * CPU);
    assert.deepEqual(s.schedule(NOW), []);
    s.release(a.workerId, a.taken);
    assert.deepEqual(ids(s.schedule(NOW)), [[1, 1, 1]]);
  });

  void it('places a request for another resource only on workers that have it', () => {
    const s = new Scheduler();
    worker(s, 1, 4);
    s.addWorker(
      2,
      new Map([
        ['cpus', 4 * CPU],
        ['gpus', 2 * CPU],
      ]),
      null,
    );
    s.enqueue(1, 1, 0, {
      needs: [
        { name: 'cpus', amount: CPU },
        { name: 'gpus', amount: CPU },
      ],
      minTimeMs: 0,
    });
    const [a] = s.schedule(NOW);
    assert.equal(a?.workerId, 2);
    assert.deepEqual([...a.taken.entries()].sort(), [
      ['cpus', CPU],
      ['gpus', CPU],
    ]);
  });

  void it('assigns nothing without workers and forgets removed workers', () => {
    const s = new Scheduler();
    s.enqueue(1, 1, 0, cpus(1));
    assert.deepEqual(s.schedule(NOW), []);
    worker(s, 1, 1);
    s.removeWorker(1);
    assert.deepEqual(s.schedule(NOW), []);
    // Releasing on a removed worker is harmless.
    s.release(1, new Map([['cpus', CPU]]));
    worker(s, 2, 1);
    assert.deepEqual(ids(s.schedule(NOW)), [[2, 1, 1]]);
  });

  void it('honours the limit of assignments per round', () => {
    const s = new Scheduler();
    worker(s, 1, 10);
    for (let t = 1; t <= 5; t++) {
      s.enqueue(1, t, 0, cpus(1));
    }
    assert.equal(s.schedule(NOW, 2).length, 2);
    assert.equal(s.waitingCount, 3);
    assert.equal(s.schedule(NOW).length, 3);
  });
});

void describe('Scheduler time requests', () => {
  void it('puts a task only on a worker that lives long enough', () => {
    const s = new Scheduler();
    worker(s, 1, 1, NOW + 10_000); // ends in 10 s
    s.enqueue(1, 1, 0, cpus(1, 20_000));
    assert.deepEqual(s.schedule(NOW), [], '20 s do not fit into 10 s');
    s.enqueue(2, 1, 0, cpus(1, 5_000));
    assert.deepEqual(ids(s.schedule(NOW)), [[1, 2, 1]], '5 s do');
    // A worker without a time limit accepts any time request.
    worker(s, 2, 1, null);
    assert.deepEqual(ids(s.schedule(NOW)), [[2, 1, 1]]);
  });

  void it('measures the remaining lifetime from the time of scheduling', () => {
    const s = new Scheduler();
    worker(s, 1, 1, NOW + 10_000);
    s.enqueue(1, 1, 0, cpus(1, 5_000));
    assert.deepEqual(s.schedule(NOW + 6_000), [], 'only 4 s are left');
    assert.deepEqual(ids(s.schedule(NOW + 5_000)), [[1, 1, 1]], 'exactly 5 s are left');
  });
});

void describe('Scheduler blocking', () => {
  void it('a task that will fit later blocks lower priorities', () => {
    const s = new Scheduler();
    worker(s, 1, 2);
    s.enqueue(1, 1, 10, cpus(1));
    const [busy] = s.schedule(NOW); // one of two cpus is now taken
    assert.equal(busy?.taskId, 1);
    s.enqueue(2, 1, 5, cpus(2)); // fits once the running task ends
    s.enqueue(3, 1, 1, cpus(1)); // would fit now, but has a lower priority
    assert.deepEqual(s.schedule(NOW), []);
    s.release(busy.workerId, busy.taken);
    assert.deepEqual(ids(s.schedule(NOW)), [[1, 2, 1]]);
  });

  void it('lets later tasks use only what a waiting task does not hold', () => {
    const s = new Scheduler();
    worker(s, 1, 4);
    s.addWorker(2, new Map([['cpus', 2 * CPU]]), null);
    s.enqueue(1, 1, 0, cpus(2));
    assert.deepEqual(ids(s.schedule(NOW)), [[2, 1, 1]]);
    s.enqueue(1, 2, 0, cpus(3));
    s.enqueue(1, 3, 0, cpus(3));
    s.enqueue(2, 1, 5, cpus(4));
    // Priority 5 takes worker 1; the 3-cpu tasks then wait and hold nothing anyone else needs.
    assert.deepEqual(ids(s.schedule(NOW)), [[1, 2, 1]]);
    // A task that does not compete for the held part still runs: a gpu-only request.
    s.addWorker(3, new Map([['gpus', 2 * CPU]]), null);
    s.enqueue(3, 1, -1, { needs: [{ name: 'gpus', amount: CPU }], minTimeMs: 0 });
    assert.deepEqual(ids(s.schedule(NOW)), [[3, 3, 1]]);
  });

  void it('does not starve a big request behind a stream of small ones', () => {
    const s = new Scheduler();
    worker(s, 1, 4);
    s.enqueue(1, 0, 0, cpus(1));
    let running = s.schedule(NOW);
    s.enqueue(2, 0, 0, cpus(4));
    for (let t = 1; t <= 50; t++) {
      s.enqueue(3, t, 0, cpus(1));
    }
    let bigStarted = false;
    for (let round = 0; round < 10 && !bigStarted; round++) {
      const next = s.schedule(NOW);
      bigStarted = next.some((a) => a.jobId === 2);
      for (const a of running) {
        s.release(a.workerId, a.taken);
      }
      running = next;
    }
    assert.ok(bigStarted, 'the 4-cpu task started while 1-cpu tasks kept coming');
  });

  void it('a task that fits no worker at all blocks nothing', () => {
    const s = new Scheduler();
    worker(s, 1, 2, NOW + 5_000);
    s.enqueue(1, 1, 100, cpus(64)); // more cpus than any worker has
    s.enqueue(2, 1, 100, cpus(1, 60_000)); // longer than any worker lives
    s.enqueue(3, 1, 0, cpus(2));
    assert.deepEqual(ids(s.schedule(NOW)), [[1, 3, 1]]);
    assert.equal(s.waitingCount, 2);
    // Once a big enough worker joins, the big task is placed there.
    worker(s, 2, 64);
    assert.deepEqual(ids(s.schedule(NOW)), [[2, 1, 1]]);
  });
});

void describe('Scheduler dequeue', () => {
  void it('skips a dequeued task and counts it out', () => {
    const s = new Scheduler();
    for (let t = 1; t <= 3; t++) {
      s.enqueue(1, t, 0, cpus(1));
    }
    s.dequeue(1, 2);
    assert.equal(s.waitingCount, 2);
    worker(s, 1, 8);
    assert.deepEqual(ids(s.schedule(NOW)), [
      [1, 1, 1],
      [1, 1, 3],
    ]);
    assert.equal(s.waitingCount, 0);
    assert.deepEqual(s.schedule(NOW), []);
  });

  void it('dequeues the head of a queue', () => {
    const s = new Scheduler();
    worker(s, 1, 1);
    s.enqueue(1, 1, 0, cpus(1));
    s.enqueue(1, 2, 0, cpus(1));
    s.dequeue(1, 1);
    assert.deepEqual(ids(s.schedule(NOW)), [[1, 1, 2]]);
  });

  void it('a task enqueued again after a dequeue is assigned once', () => {
    const s = new Scheduler();
    s.enqueue(1, 1, 0, cpus(1));
    s.dequeue(1, 1);
    s.enqueue(1, 1, 0, cpus(1));
    assert.equal(s.waitingCount, 1);
    worker(s, 1, 8);
    assert.deepEqual(ids(s.schedule(NOW)), [[1, 1, 1]]);
    assert.equal(s.waitingCount, 0);
  });
});

void describe('requestSignature', () => {
  void it('is the same for the same needs in any order, different otherwise', () => {
    const a: TaskRequest = {
      needs: [
        { name: 'gpus', amount: 1 },
        { name: 'cpus', amount: 2 },
      ],
      minTimeMs: 0,
    };
    const b: TaskRequest = {
      needs: [
        { name: 'cpus', amount: 2 },
        { name: 'gpus', amount: 1 },
      ],
      minTimeMs: 0,
    };
    assert.equal(requestSignature(a), requestSignature(b));
    assert.notEqual(requestSignature(a), requestSignature({ ...a, minTimeMs: 1 }));
    assert.notEqual(requestSignature(cpus(1)), requestSignature(cpus(2)));
    assert.notEqual(
      requestSignature(cpus(1)),
      requestSignature({ needs: [{ name: 'cpus', amount: 'all' }], minTimeMs: 0 }),
    );
  });
});

void describe('Scheduler min-utilization', () => {
  function weighted(n: number, weight: number): TaskRequest {
    return { needs: [{ name: 'cpus', amount: n * CPU }], minTimeMs: 0, weight: weight * 10_000 };
  }
  const all: TaskRequest = { needs: [{ name: 'cpus', amount: 'all' }], minTimeMs: 0 };

  function muWorker(s: Scheduler, nCpus: number, mu: number): void {
    s.addWorker(1, new Map([['cpus', nCpus * CPU]]), null, { minUtilization: mu });
  }

  void it('takes nothing that leaves the worker under its utilization', () => {
    const s = new Scheduler();
    muWorker(s, 12, 1);
    for (let t = 1; t <= 3; t++) {
      s.enqueue(1, t, 0, weighted(3, 2));
    }
    assert.deepEqual(s.schedule(NOW), []);
    s.enqueue(2, 0, 0, all);
    assert.deepEqual(ids(s.schedule(NOW)), [[1, 2, 0]]);
  });

  void it('prefers the full set with the higher weighted use', () => {
    const s = new Scheduler();
    muWorker(s, 12, 1);
    for (let t = 1; t <= 4; t++) {
      s.enqueue(1, t, 0, weighted(3, 2));
    }
    s.enqueue(2, 0, 0, all);
    const got = ids(s.schedule(NOW));
    assert.equal(got.length, 4);
    assert.ok(got.every(([, job]) => job === 1));
  });

  void it('mixes requests to fill the worker exactly', () => {
    const s = new Scheduler();
    muWorker(s, 12, 1);
    for (let t = 1; t <= 3; t++) {
      s.enqueue(1, t, 0, weighted(3, 2));
      s.enqueue(2, t, 0, cpus(6));
    }
    const got = ids(s.schedule(NOW));
    assert.equal(got.filter(([, job]) => job === 1).length, 2);
    assert.equal(got.filter(([, job]) => job === 2).length, 1);
  });
});

void describe('Scheduler multi-node tasks', () => {
  const twoNodes: TaskRequest = { needs: [], minTimeMs: 0, nNodes: 2 };

  void it('holds whole idle workers of one group and releases them', () => {
    const s = new Scheduler();
    worker(s, 1, 2);
    worker(s, 2, 2);
    s.enqueue(1, 0, 0, cpus(1));
    const first = s.schedule(NOW);
    assert.deepEqual(ids(first), [[1, 1, 0]]);
    s.enqueue(2, 0, 0, twoNodes);
    assert.deepEqual(s.schedule(NOW), [], 'worker 1 is busy');
    s.release(1, first[0]!.taken);
    const mn = s.schedule(NOW);
    assert.equal(mn.length, 1);
    assert.deepEqual(mn[0]!.workers, [1, 2]);
    s.enqueue(3, 0, 0, cpus(1));
    assert.deepEqual(s.schedule(NOW), [], 'reserved workers take no single-node task');
    s.releaseNodes([1, 2]);
    assert.deepEqual(ids(s.schedule(NOW)), [[1, 3, 0]]);
  });

  void it('needs the nodes in one group', () => {
    const s = new Scheduler();
    s.addWorker(1, new Map([['cpus', CPU]]), null, { group: 'a' });
    s.addWorker(2, new Map([['cpus', CPU]]), null, { group: 'b' });
    s.enqueue(1, 0, 0, twoNodes);
    assert.deepEqual(s.schedule(NOW), []);
    s.addWorker(3, new Map([['cpus', CPU]]), null, { group: 'a' });
    assert.deepEqual(s.schedule(NOW)[0]!.workers, [1, 3]);
  });
});

void describe('Scheduler holds', () => {
  void it('a task short of one resource does not hold the others', () => {
    const s = new Scheduler();
    s.addWorker(
      1,
      new Map([
        ['cpus', 4 * CPU],
        ['foo', 2 * CPU],
      ]),
      null,
    );
    const foo: TaskRequest = {
      needs: [
        { name: 'cpus', amount: CPU },
        { name: 'foo', amount: 2 * CPU },
      ],
      minTimeMs: 0,
    };
    s.enqueue(1, 0, 10, foo);
    s.enqueue(2, 0, 10, foo);
    s.enqueue(3, 0, 0, cpus(3));
    // Job 1 takes foo; job 2 waits for foo only, so the 3 remaining cpus go to job 3.
    assert.deepEqual(ids(s.schedule(NOW)), [
      [1, 1, 0],
      [1, 3, 0],
    ]);
  });
});

void describe('Scheduler prefill', () => {
  void it('sends busy workers tasks ahead only while many wait, and they take resources on start', () => {
    const s = new Scheduler();
    worker(s, 1, 2);
    for (let t = 0; t < 40; t++) {
      s.enqueue(1, t, 0, cpus(1));
    }
    const first = s.schedule(NOW);
    const direct = first.filter((a) => a.prefilled !== true);
    const ahead = first.filter((a) => a.prefilled === true);
    assert.equal(direct.length, 2);
    assert.equal(ahead.length, 8);
    assert.ok(ahead.every((a) => a.taken.size === 0));
    assert.equal(s.waitingCount, 30);
    // One direct task ends and a prefilled one starts in its place: the worker stays full.
    s.release(1, direct[0]!.taken);
    s.prefillDone(1);
    const taken = s.takeForStart(1, cpus(1));
    assert.equal(taken.get('cpus'), CPU);
    assert.deepEqual(
      s.schedule(NOW).filter((a) => a.prefilled !== true),
      [],
      'nothing is placed on resources a started prefilled task holds',
    );
  });

  void it('keeps small queues and time requests on the server', () => {
    const s = new Scheduler();
    worker(s, 1, 1);
    for (let t = 0; t < 10; t++) {
      s.enqueue(1, t, 0, cpus(1));
    }
    for (let t = 0; t < 40; t++) {
      s.enqueue(2, t, 0, cpus(1, 1000));
    }
    assert.ok(s.schedule(NOW).every((a) => a.prefilled !== true));
  });
});

void describe('Scheduler runs (array id ranges as one queue entry)', () => {
  void it('hands out a run in id order, interleaved by priority and job with single tasks', () => {
    const s = new Scheduler();
    worker(s, 1, 1);
    s.enqueueRun(2, 10, 3, 5, 0, cpus(1)); // tasks 10, 15, 20 of job 2
    s.enqueue(1, 7, 0, cpus(1));
    s.enqueue(2, 12, 0, cpus(1));
    s.enqueue(3, 0, 1, cpus(1));
    assert.equal(s.waitingCount, 6);
    assert.deepEqual(drain(s), [
      [3, 0],
      [1, 7],
      [2, 10],
      [2, 12],
      [2, 15],
      [2, 20],
    ]);
    assert.equal(s.waitingCount, 0);
  });

  void it('skips tasks dequeued from the middle of a run', () => {
    const s = new Scheduler();
    worker(s, 1, 1);
    s.enqueueRun(1, 0, 5, 1, 0, cpus(1));
    s.dequeue(1, 1);
    s.dequeue(1, 3);
    assert.equal(s.waitingCount, 3);
    assert.deepEqual(drain(s), [
      [1, 0],
      [1, 2],
      [1, 4],
    ]);
    assert.equal(s.waitingCount, 0);
  });

  void it('drops every queued task of a job at once, runs and single tasks alike', () => {
    const s = new Scheduler();
    s.enqueueRun(1, 0, 1000, 1, 0, cpus(1));
    s.dequeue(1, 5);
    s.enqueue(1, 5000, 0, cpus(2));
    s.enqueueRun(2, 0, 3, 1, 0, cpus(1));
    assert.equal(s.waitingCount, 1003);
    s.dequeueJob(1);
    assert.equal(s.waitingCount, 3);
    worker(s, 1, 4);
    assert.deepEqual(drain(s), [
      [2, 0],
      [2, 1],
      [2, 2],
    ]);
  });

  void it('takes a re-queued task of a run back as a single task', () => {
    const s = new Scheduler();
    worker(s, 1, 1);
    s.enqueueRun(1, 0, 3, 1, 0, cpus(1));
    const [first] = s.schedule(NOW);
    assert.equal(first?.taskId, 0);
    s.release(1, first.taken);
    s.enqueue(1, 0, 0, cpus(1)); // its worker was lost: it goes back
    assert.deepEqual(drain(s), [
      [1, 0],
      [1, 1],
      [1, 2],
    ]);
  });

  void it('counts a run as that many tasks for prefill and the worker query', () => {
    const s = new Scheduler();
    s.enqueueRun(1, 0, 100, 1, 0, cpus(1));
    const answer = s.queryNewWorkers([
      {
        totals: new Map([['cpus', 10 * CPU]]),
        partial: false,
        timeLimitMs: null,
        maxWorkers: 20,
        maxWorkersPerAlloc: 1,
      },
    ]);
    assert.deepEqual(answer.singleNodeWorkers, [10]);
    worker(s, 1, 2);
    const batch = s.schedule(NOW);
    assert.equal(batch.filter((a) => a.prefilled !== true).length, 2);
    assert.equal(batch.filter((a) => a.prefilled === true).length, 8);
  });
});
