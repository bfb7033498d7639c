import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { withEnv } from './harness.js';

/** The size the jobs issue asks for: one array of 100,000 real processes on two workers. */
const N_TASKS = 100_000;
/** Generous: this machine starts roughly 1,000 processes a second; CI may be slower. */
const FINISH_TIMEOUT_MS = 20 * 60 * 1000;

void describe('a large array job', () => {
  void it(`runs ${N_TASKS} tasks on two workers and still answers queries`, async () => {
    await withEnv(async (env) => {
      await env.startServer();
      await env.startWorker({ cpus: 2 });
      await env.startWorker({ cpus: 2 });
      const submitted = await env.command(
        ['submit', `--array=1-${N_TASKS}`, '--stdout=none', '--stderr=none', '--', '/bin/true'],
        { json: true },
      );
      assert.deepEqual(submitted.json, { id: 1 });
      await env.waitForJobState(1, 'FINISHED', FINISH_TIMEOUT_MS);

      const info = await env.command(['job', 'info', '1'], { json: true });
      const [job] = info.json as {
        info: { task_count: number; task_stats: Record<string, number> };
        tasks: { state: string; worker: number }[];
      }[];
      assert.ok(job);
      assert.equal(job.info.task_count, N_TASKS);
      assert.equal(job.info.task_stats['finished'], N_TASKS);
      assert.equal(job.tasks.length, N_TASKS);
      assert.ok(job.tasks.every((t) => t.state === 'finished'));
      const workers = new Set(job.tasks.map((t) => t.worker));
      assert.deepEqual([...workers].sort(), [1, 2], 'both workers ran tasks');

      const list = await env.command(['task', 'list', '1', '--tasks', '99990-100000'], {
        json: true,
      });
      const tasks = (list.json as Record<string, { id: number; state: string }[]>)['1'];
      assert.deepEqual(
        tasks?.map((t) => t.id),
        Array.from({ length: 11 }, (_, i) => 99_990 + i),
      );
      assert.ok(tasks?.every((t) => t.state === 'finished'));
    });
  });
});
