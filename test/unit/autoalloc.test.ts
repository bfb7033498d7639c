import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import {
  allocationName,
  formatWalltime,
  parsePbsStatus,
  parsePbsTime,
  parseSlurmStatus,
  parseSlurmTime,
  parseSubmitOutput,
  statusCommands,
  submitScript,
  workerCommand,
} from '../../src/server/autoalloc/managers.js';
import { RateLimiter } from '../../src/server/autoalloc/rate-limiter.js';
import { permitFor } from '../../src/server/autoalloc/service.js';
import { Scheduler, type WorkerShapeQuery } from '../../src/scheduler/scheduler.js';
import type { QueueParams } from '../../src/transport/messages.js';

const CPU = 10_000;

function params(over: Partial<QueueParams> = {}): QueueParams {
  return {
    manager: 'slurm',
    name: null,
    backlog: 1,
    maxWorkersPerAlloc: 1,
    maxWorkerCount: null,
    timeLimitMs: 3_600_000,
    minUtilization: 0,
    additionalArgs: [],
    workerArgs: ['--on-server-lost', '"finish-running"', '--time-limit', '"1h"'],
    idleTimeoutMs: null,
    workerStartCmd: null,
    workerStopCmd: null,
    workerWrapCmd: null,
    cliResources: null,
    ...over,
  };
}

void describe('submit scripts', () => {
  const base = {
    nodes: 1,
    timeLimitMs: 3 * 60_000,
    name: 'hq-1-1',
    stdout: '/s/001/autoalloc/1/001/stdout',
    stderr: '/s/001/autoalloc/1/001/stderr',
    additionalArgs: ['--foo=bar', 'a', 'b'],
    workerCommand: '/bin/hq worker start',
    held: false,
  };

  void it('writes the Slurm header, extra arguments on one line, then the worker command', () => {
    assert.equal(
      submitScript('slurm', base),
      [
        '#!/bin/bash',
        '#SBATCH --nodes=1',
        '#SBATCH --job-name=hq-1-1',
        '#SBATCH --output=/s/001/autoalloc/1/001/stdout',
        '#SBATCH --error=/s/001/autoalloc/1/001/stderr',
        '#SBATCH --time=00:03:00',
        '#SBATCH --foo=bar a b',
        '',
        '/bin/hq worker start',
        '',
      ].join('\n'),
    );
  });

  void it('starts one worker per node through srun or pbsdsh for multi-node allocations', () => {
    const slurm = submitScript('slurm', { ...base, nodes: 3, additionalArgs: [] });
    assert.match(slurm, /\nsrun --overlap --ntasks=3 --nodes=3 \/bin\/hq worker start\n$/);
    // srun runs a program: a leading variable assignment goes through `env` (upstream's
    // line, `srun ... RUST_LOG=x hq ...`, fails on a real Slurm). One node keeps the plain line.
    const withLog = {
      ...base,
      additionalArgs: [],
      workerCommand: 'RUST_LOG=x /bin/hq worker start',
    };
    assert.match(
      submitScript('slurm', { ...withLog, nodes: 2 }),
      /\nsrun --overlap --ntasks=2 --nodes=2 env RUST_LOG=x \/bin\/hq worker start\n$/,
    );
    assert.match(
      submitScript('slurm', { ...withLog, nodes: 1 }),
      /\n\nRUST_LOG=x \/bin\/hq worker start\n$/,
    );
    const pbs = submitScript('pbs', { ...base, nodes: 2, additionalArgs: [] });
    assert.match(pbs, /#PBS -l select=2\n/);
    assert.match(pbs, /\npbsdsh -- bash -l -c '\/bin\/hq worker start'\n$/);
  });

  void it('holds the PBS test job of a dry run', () => {
    const script = submitScript('pbs', { ...base, held: true });
    assert.deepEqual(
      script.split('\n').filter((l) => l.startsWith('#PBS')),
      [
        '#PBS -l select=1',
        '#PBS -N hq-1-1',
        '#PBS -o /s/001/autoalloc/1/001/stdout',
        '#PBS -e /s/001/autoalloc/1/001/stderr',
        '#PBS -l walltime=00:03:00',
        '#PBS --foo=bar a b',
        '#PBS -h',
      ],
    );
    assert.doesNotMatch(submitScript('pbs', base), /#PBS -h/);
  });

  void it('formats walltimes with unbounded hours', () => {
    assert.equal(formatWalltime(0), '00:00:00');
    assert.equal(formatWalltime(3_661_000), '01:01:01');
    assert.equal(formatWalltime(50 * 3_600_000), '50:00:00');
  });

  void it('names allocations after the queue', () => {
    assert.equal(allocationName(null, 3, 2), 'hq-3-2');
    assert.equal(allocationName('gpu', 3, 12), 'gpu-12');
  });
});

void describe('worker command', () => {
  void it('puts log level, wrapper, idle timeout, manager, server dir and queue arguments in order', () => {
    assert.equal(
      workerCommand(params({ workerWrapCmd: ' podman run img ' }), '/x/hq', '/sd/001', 'debug'),
      'RUST_LOG=debug podman run img /x/hq worker start --idle-timeout "5m" --manager "slurm" --server-dir "/sd/001" --on-server-lost "finish-running" --time-limit "1h"',
    );
  });

  void it('chains the start and stop commands around the worker', () => {
    const cmd = workerCommand(
      params({
        manager: 'pbs',
        idleTimeoutMs: 30 * 60_000,
        workerArgs: [],
        workerStartCmd: 'init.sh',
        workerStopCmd: 'unload.sh',
      }),
      '/x/hq',
      '/sd/001',
      undefined,
    );
    assert.equal(
      cmd,
      'init.sh && /x/hq worker start --idle-timeout "30m" --manager "pbs" --server-dir "/sd/001"; unload.sh',
    );
  });
});

void describe('batch system output', () => {
  void it('finds the Slurm job id among other sbatch chatter', () => {
    assert.equal(parseSubmitOutput('slurm', 'Submitted batch job 42\n'), '42');
    assert.equal(
      parseSubmitOutput('slurm', '--> Checking allocation...OK\nSubmitted batch job 7\n'),
      '7',
    );
    assert.throws(() => parseSubmitOutput('slurm', 'nothing here'), /Missing job id/);
    assert.equal(parseSubmitOutput('pbs', ' 12.pbs01\n'), '12.pbs01');
    assert.throws(() => parseSubmitOutput('pbs', '  '), /no job id/);
  });

  void it('asks qstat about all allocations at once and scontrol about each', () => {
    assert.deepEqual(statusCommands('pbs', ['1.a', '2.a']), [
      ['qstat', '-f', '1.a', '-f', '2.a', '-F', 'json', '-x'],
    ]);
    assert.deepEqual(statusCommands('slurm', ['5', '6']), [
      ['scontrol', 'show', 'job', '5'],
      ['scontrol', 'show', 'job', '6'],
    ]);
  });

  void it('reads PBS states, exit statuses and local times', () => {
    const stime = 'Sun Nov 22 05:10:00 2026';
    const out = JSON.stringify({
      Jobs: {
        '1.a': { job_state: 'Q' },
        '2.a': { job_state: 'R' },
        '3.a': { job_state: 'F', Exit_status: 0, stime, mtime: 'Sun Nov 22 05:20:00 2026' },
        '4.a': { job_state: 'F', Exit_status: 271, mtime: 'Sun Nov 22 05:20:00 2026' },
        '5.a': { job_state: 'X' },
      },
    });
    const s = parsePbsStatus(out, ['1.a', '2.a', '3.a', '4.a', '5.a', '6.a']);
    assert.deepEqual(s.get('1.a'), { kind: 'queued' });
    assert.deepEqual(s.get('2.a'), { kind: 'running' });
    assert.deepEqual(s.get('3.a'), {
      kind: 'finished',
      startedAt: new Date(2026, 10, 22, 5, 10, 0).getTime(),
      endedAt: new Date(2026, 10, 22, 5, 20, 0).getTime(),
    });
    assert.equal((s.get('4.a') as { kind: string }).kind, 'failed');
    assert.ok(s.get('5.a') instanceof Error);
    assert.equal(s.has('6.a'), false, 'a job qstat does not list is absent');
    assert.throws(() => parsePbsStatus('not json', ['1']), /Cannot parse qstat JSON/);
    assert.throws(() => parsePbsTime('yesterday'), /Cannot parse PBS time/);
  });

  void it('reads Slurm states and times', () => {
    assert.deepEqual(parseSlurmStatus('JobId=5 JobState=PENDING Reason=None'), { kind: 'queued' });
    assert.deepEqual(parseSlurmStatus('JobState=RUNNING\nRunTime=00:01:00'), { kind: 'running' });
    assert.deepEqual(
      parseSlurmStatus(
        'JobState=COMPLETED\nStartTime=2026-11-22T05:10:00 EndTime=2026-11-22T05:20:00',
      ),
      {
        kind: 'finished',
        startedAt: parseSlurmTime('2026-11-22T05:10:00'),
        endedAt: new Date(2026, 10, 22, 5, 20, 0).getTime(),
      },
    );
    assert.deepEqual(
      parseSlurmStatus(
        'JobState=CANCELLED Reason=None StartTime=Unknown EndTime=2026-11-22T05:20:00',
      ),
      { kind: 'failed', startedAt: null, endedAt: parseSlurmTime('2026-11-22T05:20:00') },
    );
    assert.throws(() => parseSlurmStatus(''), /Missing key JobState/);
    assert.throws(() => parseSlurmStatus('JobState=WEIRD'), /Unknown Slurm job state/);
  });
});

void describe('rate limiter', () => {
  void it('waits longer after each failure and pauses after too many', () => {
    const r = new RateLimiter(3);
    assert.equal(r.status(0), 'ok');
    r.onAttempt(0);
    assert.equal(r.status(1), 'ok', 'no delay before the first failure');
    r.onSubmissionFail();
    assert.equal(r.status(59_999), 'wait');
    assert.equal(r.status(60_000), 'ok');
    r.onSubmissionSuccess();
    assert.equal(r.status(1), 'ok');
    r.onAllocationFail();
    r.onAllocationFail();
    assert.equal(r.status(10 * 60_000), 'wait', 'two failures: 15 minutes');
    r.onAllocationFail();
    assert.equal(r.status(10 ** 9), 'too-many-failed-allocations');
    r.reset();
    assert.equal(r.status(0), 'ok');
    for (let i = 0; i < 10; i++) {
      r.onSubmissionFail();
    }
    assert.equal(r.status(10 ** 9), 'too-many-failed-submissions');
  });
});

void describe('submission permit', () => {
  const q = { backlog: 3, maxWorkersPerAlloc: 2, maxWorkerCount: null };

  void it('splits the wanted workers into allocations up to the backlog', () => {
    assert.deepEqual(permitFor(q, [], 0, 5, 0, 0), [2, 2, 1]);
    assert.deepEqual(permitFor(q, [], 0, 100, 0, 0), [2, 2, 2]);
    assert.deepEqual(permitFor(q, [], 0, 0, 0, 0), []);
  });

  void it('counts the workers of queued allocations as already coming', () => {
    assert.deepEqual(permitFor(q, [2], 2, 5, 0, 0), [2, 1]);
    assert.deepEqual(permitFor(q, [2, 2, 2], 6, 50, 0, 0), []);
  });

  void it('submits multi-node allocations first', () => {
    assert.deepEqual(permitFor(q, [], 0, 3, 1, 2), [2, 2, 1]);
    assert.deepEqual(permitFor(q, [2], 2, 0, 2, 2), [2], 'one queued allocation serves one task');
  });

  void it('never exceeds the worker limit of the queue', () => {
    const limited = { ...q, maxWorkerCount: 3 };
    assert.deepEqual(permitFor(limited, [], 0, 10, 0, 0), [2, 1]);
    assert.deepEqual(permitFor(limited, [], 2, 10, 0, 0), [1]);
    assert.deepEqual(permitFor(limited, [], 3, 10, 0, 0), []);
  });
});

void describe('new worker query', () => {
  const shape = (over: Partial<WorkerShapeQuery> = {}): WorkerShapeQuery => ({
    totals: new Map([['cpus', 4 * CPU]]),
    partial: false,
    timeLimitMs: 3_600_000,
    maxWorkers: 10,
    maxWorkersPerAlloc: 1,
    ...over,
  });
  const one = { needs: [{ name: 'cpus', amount: CPU }], minTimeMs: 0 };

  void it('packs waiting tasks onto as few new workers as they need, up to the limit', () => {
    const s = new Scheduler();
    for (let t = 0; t < 10; t++) {
      s.enqueue(1, t, 0, one);
    }
    assert.deepEqual(s.queryNewWorkers([shape()]).singleNodeWorkers, [3]);
    assert.deepEqual(s.queryNewWorkers([shape({ maxWorkers: 2 })]).singleNodeWorkers, [2]);
    assert.equal(s.waitingCount, 10, 'the query assigns nothing');
  });

  void it('does not count tasks that connected workers can take now', () => {
    const s = new Scheduler();
    s.addWorker(1, new Map([['cpus', 4 * CPU]]), null);
    for (let t = 0; t < 6; t++) {
      s.enqueue(1, t, 0, one);
    }
    s.schedule(0);
    assert.deepEqual(s.queryNewWorkers([shape()]).singleNodeWorkers, [1]);
  });

  void it('treats unknown pools of a partial shape as large enough (probing)', () => {
    const s = new Scheduler();
    for (let t = 0; t < 100; t++) {
      s.enqueue(1, t, 0, { needs: [{ name: 'gpus', amount: CPU }], minTimeMs: 0 });
    }
    const unknown = shape({ totals: new Map(), partial: true });
    assert.deepEqual(s.queryNewWorkers([unknown]).singleNodeWorkers, [1]);
    assert.deepEqual(s.queryNewWorkers([shape()]).singleNodeWorkers, [0], 'no gpus: useless');
  });

  void it('skips shapes whose lifetime is shorter than the time request', () => {
    const s = new Scheduler();
    s.enqueue(1, 0, 0, { ...one, minTimeMs: 3_600_000 });
    assert.deepEqual(s.queryNewWorkers([shape({ timeLimitMs: 1_800_000 })]).singleNodeWorkers, [0]);
    assert.deepEqual(s.queryNewWorkers([shape({ timeLimitMs: 3_600_000 })]).singleNodeWorkers, [1]);
  });

  void it('does not count a task twice for two shapes', () => {
    const s = new Scheduler();
    for (let t = 0; t < 4; t++) {
      s.enqueue(1, t, 0, one);
    }
    assert.deepEqual(s.queryNewWorkers([shape(), shape()]).singleNodeWorkers, [1, 0]);
  });

  void it('uses the first variant the shape can run', () => {
    const s = new Scheduler();
    s.enqueue(1, 0, 0, {
      needs: [{ name: 'gpus', amount: CPU }],
      minTimeMs: 0,
      alternatives: [{ needs: [{ name: 'cpus', amount: 2 * CPU }], minTimeMs: 0 }],
    });
    assert.deepEqual(s.queryNewWorkers([shape()]).singleNodeWorkers, [1]);
  });

  void it('gives multi-node tasks to the first queue whose allocations are big enough', () => {
    const s = new Scheduler();
    s.enqueue(1, 0, 0, { ...one, nNodes: 2 });
    s.enqueue(1, 1, 0, { ...one, nNodes: 2 });
    const answer = s.queryNewWorkers([shape(), shape({ maxWorkersPerAlloc: 2 })]);
    assert.deepEqual(answer.multiNode, [{ query: 1, workersPerAlloc: 2, tasks: 2 }]);
    assert.deepEqual(answer.singleNodeWorkers, [0, 0]);
  });
});
