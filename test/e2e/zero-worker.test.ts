import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';

import { horizontalTable, waitFor, withEnv, type HqEnv } from './harness.js';

const N_TASKS = 10_000;
const FINISH_TIMEOUT_MS = 120_000;

interface JobInfoJson {
  info: { task_count: number; task_stats: Record<string, number> };
  tasks: { id: number; state: string; worker: number }[];
}

async function jobInfo(env: HqEnv, jobId: number): Promise<JobInfoJson> {
  const [job] = await env.json<JobInfoJson[]>(['job', 'info', String(jobId)]);
  assert.ok(job, `job ${jobId} exists`);
  return job;
}

/** Live processes of the environment other than the given ones (task processes, the launcher). */
function otherProcesses(env: HqEnv, known: number[]): number[] {
  return env.markedProcesses().filter((pid) => !known.includes(pid));
}

void describe('zero worker', () => {
  void it('is not shown in the help of worker start', async () => {
    await withEnv(async (env) => {
      const help = await env.output(['worker', 'start', '--help'], { serverDir: null });
      assert.match(help, /--work-dir/, 'the help lists the ordinary options');
      assert.doesNotMatch(help, /zero/i);
    });
  });

  void it(`finishes an array of ${N_TASKS} tasks without starting any process`, async () => {
    await withEnv(async (env) => {
      const server = await env.startServer();
      const worker = await env.startWorker({ cpus: 4, args: ['--zero-worker'] });
      const submitted = await env.command(['submit', `--array=1-${N_TASKS}`, '--', '/bin/true'], {
        json: true,
      });
      assert.deepEqual(submitted.json, { id: 1 });
      await env.waitForJobState(1, 'FINISHED', FINISH_TIMEOUT_MS);

      const job = await jobInfo(env, 1);
      assert.equal(job.info.task_count, N_TASKS);
      assert.equal(job.info.task_stats['finished'], N_TASKS);
      assert.equal(job.tasks.length, N_TASKS);
      assert.ok(job.tasks.every((t) => t.state === 'finished' && t.worker === worker.id));
      // The default stdout/stderr are job-1/<id>.stdout in the submit dir: a task that had
      // been started would have created them.
      assert.equal(fs.existsSync(env.path('job-1')), false, 'no task output files exist');
      assert.deepEqual(otherProcesses(env, [server.pid, worker.process.pid]), []);
      assert.ok(worker.process.isRunning, 'the worker is still running');
    });
  });

  void it('reports a task that would fail as finished (HQ_ZERO_WORKER=1)', async () => {
    await withEnv(async (env) => {
      const server = await env.startServer();
      const stdout = env.path('out-%{JOB_ID}-%{TASK_ID}.txt');
      const submit = ['submit', `--stdout=${stdout}`, '--', '/nonexistent/program'];

      // The control: on an ordinary worker the same submit fails.
      const normal = await env.startWorker({ hostname: 'normal' });
      await env.command(submit, { json: true });
      await env.waitForJobState(1, 'FAILED', FINISH_TIMEOUT_MS);
      await env.command(['worker', 'stop', String(normal.id)]);
      await env.waitForWorkerState(normal.id, 'STOPPED');
      await normal.process.waitForExit();

      const zero = env.spawnHq(
        'worker-zero',
        [
          '--server-dir',
          env.serverDir,
          'worker',
          'start',
          '--work-dir',
          env.path('work-zero'),
          '--detect-resources=none',
          '--hostname',
          'zero',
          '--cpus',
          '1',
        ],
        { env: { HQ_ZERO_WORKER: '1' } },
      );
      await waitFor(
        async () => {
          if (!zero.isRunning) {
            throw new Error(`worker exited early: ${zero.stderr()}`);
          }
          const rows = horizontalTable(await env.output(['worker', 'list']));
          return rows.some((r) => r['Hostname'] === 'zero' && r['State'] === 'RUNNING');
        },
        { message: 'the zero worker to be RUNNING' },
      );
      const submitted = await env.command(submit, { json: true });
      assert.deepEqual(submitted.json, { id: 2 });
      await env.waitForJobState(2, 'FINISHED', FINISH_TIMEOUT_MS);
      const job = await jobInfo(env, 2);
      assert.equal(job.info.task_stats['finished'], 1);
      assert.equal(job.info.task_stats['failed'], 0);
      assert.equal(fs.existsSync(env.path('out-2-0.txt')), false, 'the task was never started');
      assert.deepEqual(otherProcesses(env, [server.pid, zero.pid]), []);
    });
  });
});
