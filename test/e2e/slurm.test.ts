/**
 * Automatic allocation against a REAL Slurm: runs only where `sinfo -h` answers (for instance
 * after `../shared/ci/start-local-slurm.sh` as root), and is skipped elsewhere.
 *
 * The allocation runs on this same machine, so the environment's directory under /tmp must be
 * readable by the job (it runs as the same user). Every Slurm job the test causes carries the
 * queue's unique name, so that whatever is left in `squeue` can be found and cancelled.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { horizontalTable, waitFor, withEnv, type HqEnv } from './harness.js';

const QUICK_AUTOALLOC = {
  HQ_AUTOALLOC_SCHEDULE_TICK_INTERVAL_MS: '100',
  HQ_AUTOALLOC_MAX_SCHEDULE_DELAY_MS: '100',
  HQ_AUTOALLOC_REFRESH_INTERVAL_MS: '100',
};

/** Whether a Slurm cluster answers within a few seconds. */
function slurmAvailable(): boolean {
  const r = spawnSync('sinfo', ['-h'], { timeout: 5_000, stdio: 'ignore' });
  return r.error === undefined && r.status === 0;
}

/** Ids of our jobs that squeue still lists (any state it shows). */
function ourJobs(prefix: string): string[] {
  const r = spawnSync('squeue', ['-h', '-o', '%i %j'], { timeout: 10_000, encoding: 'utf8' });
  if (r.status !== 0) {
    throw new Error(`squeue failed: ${r.stderr}`);
  }
  return r.stdout
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter(([id, name]) => id !== undefined && id !== '' && name?.startsWith(prefix) === true)
    .map(([id]) => id!);
}

async function startServer(env: HqEnv): Promise<void> {
  const server = env.spawnHq(
    'server',
    ['--server-dir', env.serverDir, 'server', 'start', '--host', '127.0.0.1'],
    { env: QUICK_AUTOALLOC },
  );
  env.server = server;
  const access = path.join(env.serverDir, 'hq-current', 'access.json');
  await waitFor(
    () => {
      if (!server.isRunning) {
        throw new Error(`server exited early: ${server.stderr()}`);
      }
      return fs.existsSync(access) && server.stdout().length > 0;
    },
    { message: 'the server to start' },
  );
}

interface AllocationJson {
  id: string;
  status: string;
  workdir: string;
}

void describe('hq alloc with a real Slurm', () => {
  void it('runs a job in a Slurm allocation that ends after its idle timeout', async (t) => {
    if (!slurmAvailable()) {
      t.skip('no Slurm here: run ../shared/ci/start-local-slurm.sh as root');
      return;
    }
    const name = `hqtest-${randomBytes(3).toString('hex')}`;
    try {
      await withEnv(async (env) => {
        await startServer(env);
        const submit = await env.command([
          'submit',
          '--array',
          '1-4',
          '--',
          'bash',
          '-c',
          'echo "task $HQ_TASK_ID on $SLURM_JOB_ID"',
        ]);
        assert.match(submit.stdout, /job ID: 1/);

        // With the dry run: a real test job is submitted and cancelled first.
        const add = await env.command([
          'alloc',
          'add',
          'slurm',
          '--time-limit',
          '10m',
          '--idle-timeout',
          '5s',
          '--name',
          name,
        ]);
        assert.match(add.stderr, /A trial allocation was submitted successfully/);
        assert.match(add.stderr, /Allocation queue 1 successfully created\n$/);

        await env.waitForJobState(1, 'FINISHED', 90_000);
        const allocations = await env.json<AllocationJson[]>(['alloc', 'info', '1']);
        assert.ok(allocations.length >= 1, JSON.stringify(allocations));
        const ran = allocations.find((x) => x.status === 'running' || x.status === 'finished');
        assert.ok(ran !== undefined, `an allocation ran: ${JSON.stringify(allocations)}`);
        const allocationId = ran.id;
        assert.match(allocationId, /^\d+$/);
        assert.equal(fs.readFileSync(path.join(ran.workdir, 'jobid'), 'utf8'), allocationId);

        const workers = horizontalTable(await env.output(['worker', 'list', '--all']));
        const worker = workers.find((w) => w['Manager Job ID'] === allocationId);
        assert.ok(
          worker !== undefined,
          `a worker of allocation ${allocationId}: ${JSON.stringify(workers)}`,
        );
        assert.equal(worker['Manager'], 'SLURM');

        // Every task ran inside the allocation.
        const output = await env.output(['job', 'cat', '1', 'stdout']);
        for (const task of [1, 2, 3, 4]) {
          assert.match(output, new RegExp(`^task ${task} on ${allocationId}$`, 'm'));
        }

        // Nothing left to do: the worker stops after 5 s idle and the allocation finishes.
        await waitFor(
          async () => {
            const rows = horizontalTable(await env.output(['alloc', 'info', '1']));
            return rows.find((r) => r['ID'] === allocationId)?.['State'] === 'FINISHED';
          },
          { timeoutMs: 60_000, message: `allocation ${allocationId} to be FINISHED` },
        );
        const rows = horizontalTable(await env.output(['worker', 'list', '--all']));
        assert.equal(
          rows.find((w) => w['Manager Job ID'] === allocationId)?.['State'],
          'IDLE TIMEOUT',
        );

        const log = await env.command(['alloc', 'log', allocationId, 'stderr']);
        assert.match(log.stderr, /Outputting allocation path at .*stderr/);
        assert.match(log.stdout, /idle timeout reached/);

        await env.command(['server', 'stop']);
        assert.deepEqual(await env.server!.waitForExit(), { code: 0, signal: null });
        await waitFor(() => ourJobs(name).length === 0, {
          timeoutMs: 30_000,
          message: `no job named ${name}* in squeue`,
        });
      });
    } finally {
      // Whatever happened above: nothing of ours stays in Slurm.
      try {
        const left = ourJobs(name);
        if (left.length > 0) {
          spawnSync('scancel', left, { timeout: 10_000, stdio: 'ignore' });
        }
      } catch (e) {
        process.stderr.write(`cannot clean up Slurm jobs named ${name}*: ${String(e)}\n`);
      }
    }
  });
});
