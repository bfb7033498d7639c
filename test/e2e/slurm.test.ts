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
import * as os from 'node:os';
import * as path from 'node:path';

import { useExecutable } from './executable.js';
import type { HqEnv } from './harness.js';

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

// What a release user runs against Slurm: the single executable (built here when stale), so the
// batch script of every allocation starts workers from it. The bundle where it cannot be built.
const SLURM = slurmAvailable();
const bundleBecause = SLURM ? useExecutable() : undefined;
if (bundleBecause !== undefined) {
  console.log(`# the Slurm test runs the bundle: ${bundleBecause}`);
}
// After HQ_TEST_BIN is set: the harness reads it once, when loaded.
const { HQ_BIN, horizontalTable, waitFor, withEnv } = await import('./harness.js');

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

/** How many nodes the Slurm partition has (0 without Slurm). */
function slurmNodes(): number {
  const r = spawnSync('sinfo', ['-h', '-o', '%D'], { timeout: 5_000, encoding: 'utf8' });
  return r.status === 0 ? r.stdout.split('\n').reduce((n, l) => n + (Number(l.trim()) || 0), 0) : 0;
}

/**
 * A second Slurm node runs in its own network namespace, where 127.0.0.1 is its own loopback:
 * a server for multi-node allocations advertises this host's name instead.
 */
/** Whatever a test left in Slurm under its queue's name is cancelled. */
function cancelOurJobs(prefix: string): void {
  try {
    const left = ourJobs(prefix);
    if (left.length > 0) {
      spawnSync('scancel', left, { timeout: 10_000, stdio: 'ignore' });
    }
  } catch (e) {
    process.stderr.write(`cannot clean up Slurm jobs named ${prefix}*: ${String(e)}\n`);
  }
}

/** `hq server stop` exits 0, and every allocation it made leaves squeue. */
async function stopServerLeavingNothing(env: HqEnv, prefix: string): Promise<void> {
  await env.command(['server', 'stop']);
  assert.deepEqual(await env.server!.waitForExit(), { code: 0, signal: null });
  await waitFor(() => ourJobs(prefix).length === 0, {
    timeoutMs: 30_000,
    message: `no job named ${prefix}* in squeue`,
  });
}

async function startServer(
  env: HqEnv,
  host = '127.0.0.1',
  extraEnv: Record<string, string> = {},
): Promise<void> {
  const server = env.spawnHq(
    'server',
    ['--server-dir', env.serverDir, 'server', 'start', '--host', host],
    { env: { ...QUICK_AUTOALLOC, ...extraEnv } },
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
    if (!SLURM) {
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
        // The batch script starts the workers from this very hq.
        const script = fs.readFileSync(path.join(ran.workdir, 'hq-submit.sh'), 'utf8');
        assert.ok(script.includes(`${HQ_BIN} worker start`), script);

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

        await stopServerLeavingNothing(env, name);
      });
    } finally {
      // Whatever happened above: nothing of ours stays in Slurm.
      cancelOurJobs(name);
    }
  });

  void it('a two-node allocation starts a worker on each node and runs a --nodes 2 task', async (t) => {
    if (slurmNodes() < 2) {
      t.skip('needs a 2-node Slurm: ../shared/ci/start-local-slurm.sh start --nodes 2');
      return;
    }
    const name = `hqtest-${randomBytes(3).toString('hex')}`;
    try {
      await withEnv(async (env) => {
        // RUST_LOG in the server's environment goes into the workers' command line: srun must
        // still find the program (upstream's script fails here).
        await startServer(env, os.hostname().split('.')[0] ?? os.hostname(), {
          RUST_LOG: 'hq=debug',
        });
        await env.command([
          'alloc',
          'add',
          'slurm',
          '--no-dry-run',
          '--time-limit',
          '10m',
          '--max-workers-per-alloc',
          '2',
          '--idle-timeout',
          '5s',
          '--name',
          name,
        ]);
        await env.command([
          'submit',
          '--nodes',
          '2',
          '--',
          'bash',
          '-c',
          'sort "$HQ_NODE_FILE" | tr "\\n" " "',
        ]);
        await env.waitForJobState(1, 'FINISHED', 90_000);
        const output = await env.output(['job', 'cat', '1', 'stdout']);
        const nodes = output.trim().split(/\s+/);
        assert.equal(nodes.length, 2, output);
        assert.notEqual(nodes[0], nodes[1], 'the task got two different nodes');
        const workers = horizontalTable(await env.output(['worker', 'list', '--all']));
        // Every allocation of the queue is a 2-node one: a worker on each node, both connected.
        const fromSlurm = workers.filter((w) => w['Manager'] === 'SLURM');
        const byAllocation = new Map<string, string[]>();
        for (const w of fromSlurm) {
          const id = w['Manager Job ID'] ?? '';
          byAllocation.set(id, [...(byAllocation.get(id) ?? []), w['Hostname'] ?? '']);
        }
        assert.ok(byAllocation.size >= 1, JSON.stringify(workers));
        for (const [id, hosts] of byAllocation) {
          assert.deepEqual(new Set(hosts), new Set(nodes), `allocation ${id}: ${hosts.join(',')}`);
        }
        await stopServerLeavingNothing(env, name);
      });
    } finally {
      cancelOurJobs(name);
    }
  });
});
