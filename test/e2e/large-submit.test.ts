import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { verticalMap, waitFor, withEnv, type HqEnv, type ManagedProcess } from './harness.js';

/** The most tasks one job may hold (MAX_TASKS_PER_JOB). */
const MAX_TASKS = 16_000_000;
/**
 * The server's heap, far below what a record per task takes (some 110 bytes each: 1.8 GB for
 * this job). A server that builds a record for every waiting task, which also means seconds of
 * a blocked event loop, runs out of memory and dies; one that keeps waiting tasks as ranges
 * holds this job in a few megabytes.
 */
const SERVER_HEAP_MB = 256;

interface JobListItem {
  id: number;
  task_count: number;
  task_stats: Record<string, number>;
}

function startSmallServer(env: HqEnv): Promise<ManagedProcess> {
  return env.startServer([], { env: { NODE_OPTIONS: `--max-old-space-size=${SERVER_HEAP_MB}` } });
}

void describe('a submit of the largest array a job can hold', () => {
  void it('creates every task at once, keeps its workers, answers queries, and runs tasks', async () => {
    await withEnv(async (env) => {
      const server = await startSmallServer(env);
      // A short heartbeat: a server that stalls for seconds would lose this worker.
      await env.startWorker({ cpus: 2, args: ['--heartbeat', '1s'] });

      const submit = env.command(
        ['submit', `--array=1-${MAX_TASKS}`, '--stdout=none', '--stderr=none', '--', '/bin/true'],
        { json: true },
      );
      let submitted = false;
      const done = (): void => {
        submitted = true;
      };
      submit.then(done, done);
      // Queries around the submit see the job whole or not at all, never part of it.
      let queries = 0;
      while (!submitted || queries === 0) {
        const jobs = await env.json<JobListItem[]>(['job', 'list']);
        assert.ok(
          jobs.every((j) => j.id === 1 && j.task_count === MAX_TASKS),
          JSON.stringify(jobs),
        );
        queries++;
      }
      assert.deepEqual((await submit).json, { id: 1 });

      await waitFor(
        async () => {
          const [job] = await env.json<JobListItem[]>(['job', 'list']);
          return job !== undefined && (job.task_stats['finished'] ?? 0) >= 20;
        },
        { message: 'tasks of the big job to finish' },
      );
      const [job] = await env.json<JobListItem[]>(['job', 'list']);
      assert.equal(job?.task_count, MAX_TASKS);
      const info = verticalMap(await env.output(['job', 'info', '1']));
      assert.equal(info.get('Tasks'), `${MAX_TASKS}; Ids: 1-${MAX_TASKS}`);

      const workers = await env.workerRows();
      assert.deepEqual(
        workers.map((w) => [w['ID'], w['State']]),
        [['1', 'RUNNING']],
      );
      assert.ok(server.isRunning, 'the server is running');
      assert.doesNotMatch(server.stderr(), /worker \d+ (lost|missed)/);
    });
  });

  void it('refuses ids already in an open job (checked as ranges), changing nothing', async () => {
    await withEnv(async (env) => {
      await startSmallServer(env);
      const opened = await env.json<{ id: number }>(['job', 'open']);
      const into = (array: string): string[] => [
        'submit',
        '--job',
        String(opened.id),
        `--array=${array}`,
        '--stdout=none',
        '--stderr=none',
        '--',
        '/bin/true',
      ];
      await env.command(into('1-4000000'));
      await env.command(into('4000001-8000000:2'));
      // The first clash, in the order of the ids given: 6000001 (in the step-2 range).
      const refused = await env.command(into('9000001-9000010,6000000-9000000'), {
        expectFail: true,
      });
      assert.match(refused.stderr, /Task 6000001 already exists in job 1\./);
      await env.command(into('8000000-9000000'));
      const [job] = await env.json<JobListItem[]>(['job', 'list']);
      assert.equal(job?.task_count, 4_000_000 + 2_000_000 + 1_000_001);
    });
  });
});
