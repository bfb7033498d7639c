/**
 * Automatic allocation (`hq alloc ...`) against the fake batch system of `fake-batch.ts`
 * (sbatch/scontrol/scancel and qsub/qstat/qdel first on the PATH of the server, the clients and
 * the workers).
 *
 * Nothing here waits for a fixed time. To show that something does NOT happen (no submission
 * from a paused queue, no more than `backlog` allocations), a test waits until the server has
 * polled the fake for the status of its allocations a few more times, which happens in the same
 * loop that submits allocations.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';

import {
  HQ_BIN,
  HqEnv,
  horizontalTable,
  read,
  waitFor,
  withEnv,
  type CommandOptions,
  type CommandResult,
  type ManagedProcess,
} from './harness.js';
import { FakeBatchSystem, QUICK_AUTOALLOC } from './fake-batch.js';

type Manager = 'slurm' | 'pbs';

// ---- an environment with a server that uses the fake ----------------------------------------

class AllocEnv {
  readonly env: HqEnv;
  readonly fake: FakeBatchSystem;
  /** Where the server keeps its files (allocation directories go under autoalloc/). */
  readonly instanceDir: string;
  /** The server's TMPDIR. */
  readonly tmpDir: string;
  private workers = 0;

  constructor(env: HqEnv) {
    this.env = env;
    this.fake = new FakeBatchSystem(env.path('bin'));
    this.instanceDir = path.join(env.serverDir, '001');
    this.tmpDir = env.path('server-tmp');
  }

  /**
   * Starts the server with the fake on its PATH and quick autoalloc timing. Its TMPDIR is inside
   * the environment, so that the directories of failed dry runs (kept for inspection) go away
   * with it.
   */
  async startServer(extraEnv: Record<string, string> = {}): Promise<ManagedProcess> {
    fs.mkdirSync(this.tmpDir, { recursive: true });
    const server = this.env.spawnHq(
      'server',
      ['--server-dir', this.env.serverDir, 'server', 'start', '--host', '127.0.0.1'],
      {
        env: this.fake.env('server', { ...QUICK_AUTOALLOC, TMPDIR: this.tmpDir, ...extraEnv }),
      },
    );
    this.env.server = server;
    const access = path.join(this.env.serverDir, 'hq-current', 'access.json');
    await waitFor(
      () => {
        if (!server.isRunning) {
          throw new Error(`server exited early: ${server.stderr()}`);
        }
        return fs.existsSync(access) && server.stdout().length > 0;
      },
      { message: 'the server to start' },
    );
    return server;
  }

  /** `hq ...` with the fake programs on the PATH. */
  hq(args: string[], options: CommandOptions = {}): Promise<CommandResult> {
    return this.env.command(args, {
      ...options,
      env: { ...this.fake.env('client'), ...options.env },
    });
  }

  async out(args: string[]): Promise<string> {
    return (await this.hq(args)).stdout;
  }

  async json<T>(args: string[]): Promise<T> {
    return (await this.hq(args, { json: true })).json as T;
  }

  async queues(): Promise<Record<string, string>[]> {
    return horizontalTable(await this.out(['alloc', 'list']));
  }

  async allocations(queueId: number, filter?: string): Promise<Record<string, string>[]> {
    const args = ['alloc', 'info', String(queueId)];
    return horizontalTable(
      await this.out(filter === undefined ? args : [...args, '--filter', filter]),
    );
  }

  /** Waits until the queue has exactly `n` allocations; returns their rows. */
  async waitForAllocationCount(queueId: number, n: number): Promise<Record<string, string>[]> {
    return waitFor(
      async () => {
        const rows = await this.allocations(queueId);
        return rows.length === n ? rows : undefined;
      },
      { message: `queue ${queueId} to have ${n} allocation(s)` },
    );
  }

  async waitForAllocationState(
    queueId: number,
    allocationId: string,
    state: string,
  ): Promise<Record<string, string>> {
    return waitFor(
      async () => {
        const row = (await this.allocations(queueId)).find((r) => r['ID'] === allocationId);
        return row?.['State'] === state ? row : undefined;
      },
      { message: `allocation ${allocationId} to be ${state}` },
    );
  }

  /**
   * Starts a worker as the batch system would inside allocation `jobId`: with the manager's
   * environment variables and `--manager`; waits until it is RUNNING and returns its id.
   */
  async startAllocationWorker(
    manager: Manager,
    jobId: string,
    cpus = 1,
  ): Promise<{ id: number; process: ManagedProcess }> {
    const hostname = `alloc-node${++this.workers}`;
    const managerEnv: Record<string, string> =
      manager === 'slurm'
        ? { SLURM_JOB_ID: jobId }
        : { PBS_JOBID: jobId, PBS_ENVIRONMENT: 'PBS_BATCH' };
    const proc = this.env.spawnHq(
      `worker-${hostname}`,
      [
        '--server-dir',
        this.env.serverDir,
        'worker',
        'start',
        '--work-dir',
        this.env.path(`work-${hostname}`),
        '--detect-resources=none',
        '--hostname',
        hostname,
        '--cpus',
        String(cpus),
        '--manager',
        manager,
        '--time-limit',
        '30m',
      ],
      { env: this.fake.env('worker', managerEnv) },
    );
    const row = await waitFor(
      async () => {
        if (!proc.isRunning) {
          throw new Error(`worker exited early: ${proc.stderr()}`);
        }
        const rows = horizontalTable(await this.out(['worker', 'list']));
        return rows.find((r) => r['Hostname'] === hostname && r['State'] === 'RUNNING');
      },
      { message: `worker ${hostname} to be RUNNING` },
    );
    return { id: Number(row['ID']), process: proc };
  }

  /** Directory of the n-th allocation of a queue, as the server names it. */
  allocationDir(queueDir: string, n: number): string {
    return path.join(this.instanceDir, 'autoalloc', queueDir, String(n).padStart(3, '0'));
  }
}

async function withAllocEnv(
  body: (a: AllocEnv) => Promise<void>,
  serverEnv: Record<string, string> = {},
): Promise<void> {
  await withEnv(async (env) => {
    const a = new AllocEnv(env);
    await a.startServer(serverEnv);
    await body(a);
  });
}

/** The path in "You can find the submitted script at <path>". */
function keptScript(r: CommandResult): string {
  const m = /You can find the submitted script at (\S+)$/m.exec(r.stderr);
  assert.ok(m !== null, `no submitted script path in:\n${r.stderr}`);
  return m[1]!;
}

const QUEUE_TIME = /^\d\d\.\d\d\.\d{4} \d\d:\d\d:\d\d$/;
const JSON_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/;

/** The last line a command wrote to stderr. */
function lastLine(r: CommandResult): string {
  const lines = r.stderr.trimEnd().split('\n');
  return lines[lines.length - 1] ?? '';
}

function stripTime(line: string): string {
  return line.replace(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ /, '');
}

/** The worker command a queue's script runs, for the defaults of these tests. */
function workerLine(instanceDir: string, manager: Manager, args: string): string {
  return `${HQ_BIN} worker start --idle-timeout "5m" --manager "${manager}" --server-dir "${instanceDir}" ${args}`;
}

// ---- the tests -------------------------------------------------------------------------------

void describe('hq alloc with a fake batch system', () => {
  void it('lists queues and allocations as tables and as JSON', () =>
    withAllocEnv(async (a) => {
      assert.deepEqual(await a.queues(), []);
      assert.deepEqual(await a.json(['alloc', 'list']), []);

      const add1 = await a.hq([
        'alloc',
        'add',
        'slurm',
        '--time-limit',
        '1h',
        '--no-dry-run',
        '--name',
        'cpuq',
        '--cpus',
        '2',
        '--backlog',
        '3',
        '--max-worker-count',
        '5',
        '--',
        '--partition=debug',
        '--account=x',
      ]);
      assert.equal(add1.stdout, '');
      assert.equal(stripTime(lastLine(add1)), 'INFO Allocation queue 1 successfully created');
      const add2 = await a.hq(
        [
          'alloc',
          'add',
          'pbs',
          '--time-limit',
          '90m',
          '--no-dry-run',
          '--max-workers-per-alloc',
          '2',
        ],
        { json: true },
      );
      assert.deepEqual(add2.json, {});
      assert.match(
        add2.stderr,
        /WARN No worker resources were provided for this queue\..*probing mode/,
      );
      assert.match(add2.stderr, /INFO Allocation queue 2 successfully created\n$/);

      assert.deepEqual(await a.queues(), [
        {
          ID: '1',
          State: 'ACTIVE',
          'Backlog size': '3',
          'Max workers per alloc': '1',
          'Max worker count': '5',
          Timelimit: '1h',
          Manager: 'SLURM',
          'Worker resources': '<unknown>',
          Name: 'cpuq',
          Args: '--partition=debug,--account=x',
        },
        {
          ID: '2',
          State: 'ACTIVE',
          'Backlog size': '1',
          'Max workers per alloc': '2',
          'Max worker count': '0',
          Timelimit: '1h 30m',
          Manager: 'PBS',
          'Worker resources': '<unknown>',
          Name: '',
          Args: '',
        },
      ]);
      assert.deepEqual(await a.json(['alloc', 'list']), [
        {
          additional_args: ['--partition=debug', '--account=x'],
          backlog: 3,
          id: 1,
          known_worker_resources: null,
          manager: 'Slurm',
          max_worker_count: 5,
          max_workers_per_alloc: 1,
          name: 'cpuq',
          state: 'Active',
          timelimit: 3600,
          worker_args: [
            '--cpus',
            '"2"',
            '--on-server-lost',
            '"finish-running"',
            '--time-limit',
            '"1h"',
          ],
        },
        {
          additional_args: [],
          backlog: 1,
          id: 2,
          known_worker_resources: null,
          manager: 'PBS',
          max_worker_count: null,
          max_workers_per_alloc: 2,
          name: null,
          state: 'Active',
          timelimit: 5400,
          worker_args: ['--on-server-lost', '"finish-running"', '--time-limit', '"1h 30m"'],
        },
      ]);

      // Pause and resume show in both outputs.
      const pause = await a.hq(['alloc', 'pause', '2']);
      assert.equal(stripTime(lastLine(pause)), 'INFO Allocation queue 2 successfully paused');
      assert.deepEqual(
        (await a.queues()).map((q) => [q['ID'], q['State']]),
        [
          ['1', 'ACTIVE'],
          ['2', 'PAUSED'],
        ],
      );
      const listed = await a.json<{ id: number; state: string }[]>(['alloc', 'list']);
      assert.deepEqual(
        listed.map((q) => [q.id, q.state]),
        [
          [1, 'Active'],
          [2, 'Paused'],
        ],
      );
      const resume = await a.hq(['alloc', 'resume', '2']);
      assert.equal(stripTime(lastLine(resume)), 'INFO Allocation queue 2 successfully resumed');
      assert.equal((await a.queues())[1]?.['State'], 'ACTIVE');

      // A queue without allocations goes at once.
      const remove = await a.hq(['alloc', 'remove', '2']);
      assert.equal(stripTime(lastLine(remove)), 'INFO Allocation queue 2 successfully removed');
      assert.deepEqual(
        (await a.queues()).map((q) => q['ID']),
        ['1'],
      );
      assert.deepEqual(await a.json(['alloc', 'remove', '1', '--force']), {});
      assert.deepEqual(await a.queues(), []);
      const again = await a.hq([
        'alloc',
        'add',
        'slurm',
        '--time-limit',
        '1h',
        '--no-dry-run',
        '--name',
        'cpuq',
        '--cpus',
        '2',
      ]);
      assert.match(again.stderr, /INFO Allocation queue 3 successfully created\n$/);

      // No task waits: no allocation.
      assert.deepEqual(await a.allocations(3), []);
      assert.deepEqual(await a.json(['alloc', 'info', '3']), []);
      assert.equal(a.fake.submissions().length, 0);

      await a.hq(['submit', '--', 'true']);
      const [row] = await a.waitForAllocationCount(3, 1);
      const dir = a.allocationDir('3-cpuq', 1);
      assert.deepEqual(
        { ...row, 'Queue time': '' },
        {
          ID: '1',
          State: 'QUEUED',
          'Working directory': dir,
          'Worker count': '1',
          'Queue time': '',
          'Start time': '',
          'Finish time': '',
        },
      );
      assert.match(row!['Queue time']!, QUEUE_TIME);
      assert.deepEqual(
        (await a.allocations(3, 'queued')).map((r) => r['ID']),
        ['1'],
      );
      for (const filter of ['running', 'finished', 'failed']) {
        assert.deepEqual(await a.allocations(3, filter), [], `--filter ${filter}`);
      }
      const [info] = await a.json<Record<string, unknown>[]>(['alloc', 'info', '3']);
      assert.deepEqual(Object.keys(info!).sort(), [
        'ended_at',
        'id',
        'queued_at',
        'started_at',
        'status',
        'target_worker_count',
        'workdir',
      ]);
      assert.deepEqual(
        { ...info, queued_at: '' },
        {
          id: '1',
          target_worker_count: 1,
          queued_at: '',
          started_at: null,
          ended_at: null,
          status: 'queued',
          workdir: dir,
        },
      );
      assert.match(String(info!['queued_at']), JSON_TIME);
    }));

  void it('writes the Slurm submit script, submits it from the allocation directory', () =>
    withAllocEnv(async (a) => {
      await a.hq([
        'alloc',
        'add',
        'slurm',
        '--time-limit',
        '1h',
        '--no-dry-run',
        '--backlog',
        '2',
        '--max-workers-per-alloc',
        '2',
        '--worker-start-cmd',
        'echo starting',
        '--worker-stop-cmd',
        'echo stopping',
        '--worker-wrap-cmd',
        'env WRAPPED=1',
        '--',
        '--partition=fake',
        '--qos=normal',
      ]);
      await a.hq(['submit', '--', 'true']);
      await a.waitForAllocationCount(1, 1);
      const dir1 = a.allocationDir('1', 1);
      const [call] = a.fake.submissions();
      assert.deepEqual(call, {
        role: 'server',
        program: 'sbatch',
        cwd: fs.realpathSync(dir1),
        args: [path.join(dir1, 'hq-submit.sh')],
      });
      assert.equal(fs.readFileSync(path.join(dir1, 'jobid'), 'utf8'), '1');
      const worker = `echo starting && env WRAPPED=1 ${workerLine(a.instanceDir, 'slurm', '--on-server-lost "finish-running" --time-limit "1h"')}; echo stopping`;
      const script1 = [
        '#!/bin/bash',
        '#SBATCH --nodes=1',
        '#SBATCH --job-name=hq-1-1',
        `#SBATCH --output=${dir1}/stdout`,
        `#SBATCH --error=${dir1}/stderr`,
        '#SBATCH --time=01:00:00',
        '#SBATCH --partition=fake --qos=normal',
        '',
        worker,
      ];
      assert.deepEqual(a.fake.script('1').trimEnd().split('\n'), script1);
      assert.equal(fs.readFileSync(path.join(dir1, 'hq-submit.sh'), 'utf8'), a.fake.script('1'));

      // A two-node task: a two-node allocation whose workers srun starts.
      await a.hq(['submit', '--nodes', '2', '--', 'true']);
      await a.waitForAllocationCount(1, 2);
      const dir2 = a.allocationDir('1', 2);
      assert.deepEqual(a.fake.submissions()[1]?.args, [path.join(dir2, 'hq-submit.sh')]);
      assert.deepEqual(a.fake.script('2').trimEnd().split('\n'), [
        '#!/bin/bash',
        '#SBATCH --nodes=2',
        '#SBATCH --job-name=hq-1-2',
        `#SBATCH --output=${dir2}/stdout`,
        `#SBATCH --error=${dir2}/stderr`,
        '#SBATCH --time=01:00:00',
        '#SBATCH --partition=fake --qos=normal',
        '',
        `srun --overlap --ntasks=2 --nodes=2 ${worker}`,
      ]);
      const rows = await a.allocations(1);
      assert.deepEqual(
        rows.map((r) => [r['ID'], r['State'], r['Worker count']]),
        [
          ['1', 'QUEUED', '1'],
          ['2', 'QUEUED', '2'],
        ],
      );

      // Both workers of the two-node allocation connect and run the two-node task; the
      // allocation runs until the last of them is gone.
      const w1 = await a.startAllocationWorker('slurm', '2');
      await a.waitForAllocationState(1, '2', 'RUNNING');
      const w2 = await a.startAllocationWorker('slurm', '2');
      await a.env.waitForJobState(2, 'FINISHED');
      await a.hq(['worker', 'stop', String(w1.id)]);
      await w1.process.waitForExit();
      await a.fake.waitForPolls(5);
      assert.equal((await a.allocations(1, 'running')).length, 1);
      await a.hq(['worker', 'stop', String(w2.id)]);
      await a.waitForAllocationState(1, '2', 'FINISHED');
    }));

  void it('writes the PBS submit script with the queue name, idle timeout and worker time limit', () =>
    withAllocEnv(async (a) => {
      await a.hq([
        'alloc',
        'add',
        'pbs',
        '--time-limit',
        '90m',
        '--worker-time-limit',
        '80m',
        '--idle-timeout',
        '30s',
        '--no-dry-run',
        '--name',
        'big',
        '--backlog',
        '2',
        '--max-workers-per-alloc',
        '2',
        '--cpus',
        '4',
        '--worker-start-cmd',
        'module load hq',
        '--worker-stop-cmd',
        'echo done',
        '--',
        '-q',
        'qexp',
        '-A',
        'proj',
      ]);
      await a.hq(['submit', '--', 'true']);
      await a.waitForAllocationCount(1, 1);
      const dir1 = a.allocationDir('1-big', 1);
      const [call] = a.fake.submissions();
      assert.deepEqual(call, {
        role: 'server',
        program: 'qsub',
        cwd: fs.realpathSync(dir1),
        args: [path.join(dir1, 'hq-submit.sh')],
      });
      assert.equal(fs.readFileSync(path.join(dir1, 'jobid'), 'utf8'), '1.fakepbs');
      const worker =
        `module load hq && ${HQ_BIN} worker start --idle-timeout "30s" --manager "pbs" --server-dir "${a.instanceDir}"` +
        ' --cpus "4" --on-server-lost "finish-running" --time-limit "1h 20m"; echo done';
      assert.deepEqual(a.fake.script('1.fakepbs').trimEnd().split('\n'), [
        '#!/bin/bash',
        '#PBS -l select=1',
        '#PBS -N big-1',
        `#PBS -o ${dir1}/stdout`,
        `#PBS -e ${dir1}/stderr`,
        '#PBS -l walltime=01:30:00',
        '#PBS -q qexp -A proj',
        '',
        worker,
      ]);

      await a.hq(['submit', '--nodes', '2', '--', 'true']);
      await a.waitForAllocationCount(1, 2);
      const dir2 = a.allocationDir('1-big', 2);
      assert.deepEqual(a.fake.submissions()[1]?.cwd, fs.realpathSync(dir2));
      assert.deepEqual(a.fake.script('2.fakepbs').trimEnd().split('\n'), [
        '#!/bin/bash',
        '#PBS -l select=2',
        '#PBS -N big-2',
        `#PBS -o ${dir2}/stdout`,
        `#PBS -e ${dir2}/stderr`,
        '#PBS -l walltime=01:30:00',
        '#PBS -q qexp -A proj',
        '',
        `pbsdsh -- bash -l -c '${worker}'`,
      ]);
      assert.deepEqual(
        (await a.allocations(1)).map((r) => [r['ID'], r['Worker count']]),
        [
          ['1.fakepbs', '1'],
          ['2.fakepbs', '2'],
        ],
      );
    }));

  void it('follows the workers: queued -> running -> finished, and -> failed when killed', () =>
    withAllocEnv(async (a) => {
      await a.hq(['alloc', 'add', 'slurm', '--time-limit', '1h', '--no-dry-run']);
      await a.hq(['submit', '--', 'true']);
      const [queued] = await a.waitForAllocationCount(1, 1);
      assert.equal(queued?.['ID'], '1');
      assert.equal(queued?.['State'], 'QUEUED');

      // The batch system writes the allocation's output into its directory.
      const dir = a.allocationDir('1', 1);
      fs.writeFileSync(path.join(dir, 'stdout'), 'out of allocation 1\n');
      fs.writeFileSync(path.join(dir, 'stderr'), 'err of allocation 1\n');
      const log = await a.hq(['alloc', 'log', '1', 'stderr']);
      assert.equal(log.stdout, 'err of allocation 1\n');
      assert.match(
        log.stderr,
        new RegExp(`Outputting allocation path at ${path.join(dir, 'stderr')}`),
      );
      assert.equal((await a.hq(['alloc', 'log', '1', 'stdout'])).stdout, 'out of allocation 1\n');

      const w1 = await a.startAllocationWorker('slurm', '1');
      const running = await a.waitForAllocationState(1, '1', 'RUNNING');
      assert.match(running['Start time']!, QUEUE_TIME);
      assert.equal(running['Finish time'], '');
      const workers = horizontalTable(await a.out(['worker', 'list']));
      assert.deepEqual(
        workers.map((w) => [w['ID'], w['Manager'], w['Manager Job ID']]),
        [[String(w1.id), 'SLURM', '1']],
      );
      await a.env.waitForJobState(1, 'FINISHED');

      // Stopped normally: FINISHED.
      await a.hq(['worker', 'stop', String(w1.id)]);
      const finished = await a.waitForAllocationState(1, '1', 'FINISHED');
      assert.match(finished['Finish time']!, QUEUE_TIME);
      assert.deepEqual(await w1.process.waitForExit(), { code: 0, signal: null });

      // A new task, a new allocation; its worker is killed: FAILED.
      await a.hq(['submit', '--', 'true']);
      await a.waitForAllocationCount(1, 2);
      await a.waitForAllocationState(1, '2', 'QUEUED');
      const w2 = await a.startAllocationWorker('slurm', '2');
      await a.waitForAllocationState(1, '2', 'RUNNING');
      await a.env.waitForJobState(2, 'FINISHED');
      w2.process.signal('SIGKILL');
      await w2.process.waitForExit();
      await a.waitForAllocationState(1, '2', 'FAILED');

      assert.deepEqual(
        (await a.allocations(1, 'finished')).map((r) => r['ID']),
        ['1'],
      );
      assert.deepEqual(
        (await a.allocations(1, 'failed')).map((r) => r['ID']),
        ['2'],
      );
      assert.deepEqual(await a.allocations(1, 'running'), []);
      assert.deepEqual(await a.allocations(1, 'queued'), []);
      const json = await a.json<Record<string, unknown>[]>(['alloc', 'info', '1']);
      assert.deepEqual(
        json.map((j) => [j['id'], j['status'], j['target_worker_count']]),
        [
          ['1', 'finished', 1],
          ['2', 'failed', 1],
        ],
      );
      for (const j of json) {
        assert.match(String(j['started_at']), JSON_TIME);
        assert.match(String(j['ended_at']), JSON_TIME);
      }
      // Workers ended the allocations: nothing was cancelled.
      assert.deepEqual(a.fake.cancelled(), []);
      assert.equal(a.fake.submissions().length, 2);
    }));

  for (const manager of ['pbs', 'slurm'] as const) {
    void it(`reads allocation states from ${manager === 'pbs' ? 'qstat' : 'scontrol'}`, () =>
      withAllocEnv(async (a) => {
        const id = (n: number): string => (manager === 'pbs' ? `${n}.fakepbs` : String(n));
        const states =
          manager === 'pbs'
            ? {
                running: '{"job_state":"R"}',
                finished:
                  '{"job_state":"F","Exit_status":0,"stime":"Thu Jan 01 10:00:00 2026","mtime":"Thu Jan 01 10:05:00 2026"}',
                failed:
                  '{"job_state":"F","Exit_status":1,"stime":"Thu Jan 01 10:00:00 2026","mtime":"Thu Jan 01 10:05:00 2026"}',
              }
            : {
                running: 'JobState=RUNNING Reason=None',
                finished:
                  'JobState=COMPLETED Reason=None StartTime=2026-01-01T10:00:00 EndTime=2026-01-01T10:05:00',
                failed:
                  'JobState=FAILED Reason=NonZeroExitCode StartTime=2026-01-01T10:00:00 EndTime=2026-01-01T10:05:00',
              };
        await a.hq([
          'alloc',
          'add',
          manager,
          '--time-limit',
          '1h',
          '--no-dry-run',
          '--cpus',
          '1',
          '--backlog',
          '4',
        ]);
        await a.hq(['submit', '--array', '1-4', '--', 'true']);
        const rows = await a.waitForAllocationCount(1, 4);
        assert.deepEqual(
          rows.map((r) => [r['ID'], r['State']]),
          [1, 2, 3, 4].map((n) => [id(n), 'QUEUED']),
        );
        // The status command asks about the allocations.
        await a.fake.waitForPolls(1);
        const poll = a.fake.calls([manager === 'pbs' ? 'qstat' : 'scontrol']).at(-1)!;
        if (manager === 'pbs') {
          assert.deepEqual(poll.args, [
            ...[1, 2, 3, 4].flatMap((n) => ['-f', id(n)]),
            '-F',
            'json',
            '-x',
          ]);
        } else {
          assert.deepEqual(poll.args.slice(0, 2), ['show', 'job']);
        }

        a.fake.setState(id(1), states.running);
        const running = await a.waitForAllocationState(1, id(1), 'RUNNING');
        assert.match(running['Start time']!, QUEUE_TIME);
        assert.equal(running['Finish time'], '');

        a.fake.setState(id(1), states.finished);
        a.fake.setState(id(2), states.finished);
        a.fake.setState(id(3), states.failed);
        a.fake.setState(id(4), 'GONE');
        const first = await a.waitForAllocationState(1, id(1), 'FINISHED');
        assert.equal(first['Start time'], running['Start time'], 'seen running: start kept');
        assert.equal(first['Finish time'], '01.01.2026 10:05:00');
        const second = await a.waitForAllocationState(1, id(2), 'FINISHED');
        assert.equal(second['Start time'], '01.01.2026 10:00:00');
        assert.equal(second['Finish time'], '01.01.2026 10:05:00');
        const third = await a.waitForAllocationState(1, id(3), 'FAILED');
        assert.equal(third['Finish time'], '01.01.2026 10:05:00');
        // Vanished: PBS leaves it out of the answer, scontrol fails for a while.
        const fourth = await a.waitForAllocationState(1, id(4), 'FAILED');
        assert.match(fourth['Finish time']!, QUEUE_TIME);
        const json = await a.json<Record<string, unknown>[]>(['alloc', 'info', '1']);
        const second_ = json.find((j) => j['id'] === id(2))!;
        assert.equal(
          second_['started_at'],
          `${new Date(2026, 0, 1, 10, 0, 0).toISOString().slice(0, 23)}000000Z`,
        );
        assert.equal(
          second_['ended_at'],
          `${new Date(2026, 0, 1, 10, 5, 0).toISOString().slice(0, 23)}000000Z`,
        );
        assert.deepEqual(a.fake.cancelled(), []);
      }));
  }

  void it('probes with one allocation, then fills the backlog once a worker connected', () =>
    withAllocEnv(async (a) => {
      await a.hq(['submit', '--array', '1-4', '--', 'sleep', '20']);
      await a.hq(['alloc', 'add', 'slurm', '--time-limit', '1h', '--no-dry-run', '--backlog', '3']);
      await a.waitForAllocationCount(1, 1);
      // Unknown worker shape: one allocation only, however many tasks wait.
      await a.fake.waitForPolls(8);
      assert.equal((await a.allocations(1)).length, 1);
      assert.equal(a.fake.submissions().length, 1);

      await a.startAllocationWorker('slurm', '1', 1);
      await a.waitForAllocationState(1, '1', 'RUNNING');
      // One task runs, three wait: three one-cpu workers, which the backlog allows.
      const rows = await a.waitForAllocationCount(1, 4);
      assert.deepEqual(
        rows.map((r) => [r['ID'], r['State']]),
        [
          ['1', 'RUNNING'],
          ['2', 'QUEUED'],
          ['3', 'QUEUED'],
          ['4', 'QUEUED'],
        ],
      );
      await a.fake.waitForPolls(8);
      assert.equal((await a.allocations(1)).length, 4);
      assert.equal(a.fake.submissions().length, 4);
      const [queue] = await a.queues();
      assert.equal(queue?.['Worker resources'], 'cpus 1');
      const [json] = await a.json<{ known_worker_resources: unknown }[]>(['alloc', 'list']);
      assert.notEqual(json?.known_worker_resources, null);
    }));

  void it('submits nothing from a paused queue, nor for a task longer than the time limit', () =>
    withAllocEnv(async (a) => {
      await a.hq([
        'alloc',
        'add',
        'pbs',
        '--time-limit',
        '10m',
        '--no-dry-run',
        '--cpus',
        '1',
        '--backlog',
        '5',
      ]);
      // Positive control: a task that fits gets an allocation.
      await a.hq(['submit', '--', 'true']);
      await a.waitForAllocationCount(1, 1);

      await a.hq(['submit', '--time-request', '30m', '--', 'true']);
      await a.fake.waitForPolls(8);
      assert.equal(a.fake.submissions().length, 1, 'no allocation for the 30m task');
      await a.hq(['submit', '--', 'true']);
      await a.waitForAllocationCount(1, 2);
      await a.fake.waitForPolls(5);
      assert.equal(a.fake.submissions().length, 2);

      await a.hq(['alloc', 'pause', '1']);
      assert.equal((await a.queues())[0]?.['State'], 'PAUSED');
      await a.hq(['submit', '--', 'true']);
      await a.fake.waitForPolls(8);
      assert.equal(a.fake.submissions().length, 2, 'no allocation from the paused queue');
      assert.equal((await a.allocations(1)).length, 2);

      await a.hq(['alloc', 'resume', '1']);
      await a.waitForAllocationCount(1, 3);
      await a.fake.waitForPolls(5);
      assert.equal(a.fake.submissions().length, 3);
      assert.deepEqual(
        (await a.allocations(1)).map((r) => r['State']),
        ['QUEUED', 'QUEUED', 'QUEUED'],
      );
    }));

  void it('keeps queued and running workers within --max-worker-count', () =>
    withAllocEnv(async (a) => {
      await a.hq([
        'alloc',
        'add',
        'slurm',
        '--time-limit',
        '1h',
        '--no-dry-run',
        '--cpus',
        '1',
        '--backlog',
        '5',
        '--max-worker-count',
        '2',
      ]);
      await a.hq(['submit', '--array', '1-4', '--', 'true']);
      await a.waitForAllocationCount(1, 2);
      await a.fake.waitForPolls(8);
      assert.equal(a.fake.submissions().length, 2, 'two workers at most');
      // One of them ends: room for one more.
      a.fake.setState(
        '1',
        'JobState=COMPLETED StartTime=2026-01-01T10:00:00 EndTime=2026-01-01T10:05:00',
      );
      await a.waitForAllocationState(1, '1', 'FINISHED');
      const rows = await a.waitForAllocationCount(1, 3);
      assert.deepEqual(
        rows.map((r) => [r['ID'], r['State']]),
        [
          ['1', 'FINISHED'],
          ['2', 'QUEUED'],
          ['3', 'QUEUED'],
        ],
      );
      await a.fake.waitForPolls(8);
      assert.equal(a.fake.submissions().length, 3);
    }));

  void it('pauses a queue after HQ_AUTOALLOC_MAX_ALLOCATION_FAILS failed allocations', () =>
    withAllocEnv(
      async (a) => {
        await a.hq(['alloc', 'add', 'pbs', '--time-limit', '1h', '--no-dry-run']);
        await a.hq(['submit', '--', 'true']);
        await a.waitForAllocationCount(1, 1);
        a.fake.setState('1.fakepbs', 'GONE');
        await a.waitForAllocationState(1, '1.fakepbs', 'FAILED');
        await waitFor(async () => (await a.queues())[0]?.['State'] === 'PAUSED', {
          message: 'queue 1 to be paused',
        });
        assert.match(
          a.env.server!.stderr(),
          /ERROR The queue 1 had too many failed allocations, it will be paused\./,
        );
        assert.equal(a.fake.submissions().length, 1);
        // Resuming starts over: the task still waits, so a new allocation goes out at once.
        await a.hq(['alloc', 'resume', '1']);
        const rows = await a.waitForAllocationCount(1, 2);
        assert.deepEqual(rows[1]?.['State'], 'QUEUED');
        assert.equal((await a.queues())[0]?.['State'], 'ACTIVE');
      },
      { HQ_AUTOALLOC_MAX_ALLOCATION_FAILS: '1' },
    ));

  void it('handles a worker, a removal and a server stop while sbatch has not answered yet', () =>
    withAllocEnv(async (a) => {
      await a.hq(['alloc', 'add', 'slurm', '--time-limit', '1h', '--no-dry-run']);
      // The worker of the allocation connects before sbatch has told the server its id.
      let release = a.fake.holdSubmissions();
      await a.hq(['submit', '--', 'true']);
      assert.equal(await a.fake.waitForHeld(), '1');
      const w = await a.startAllocationWorker('slurm', '1');
      await a.env.waitForJobState(1, 'FINISHED');
      assert.deepEqual(await a.allocations(1), []);
      release();
      await a.waitForAllocationState(1, '1', 'RUNNING');
      await a.hq(['worker', 'stop', String(w.id)]);
      await a.waitForAllocationState(1, '1', 'FINISHED');

      // The queue is removed while its next allocation is being submitted: it is cancelled.
      release = a.fake.holdSubmissions();
      await a.hq(['submit', '--', 'true']);
      assert.equal(await a.fake.waitForHeld(), '2');
      await a.hq(['alloc', 'remove', '1']);
      assert.deepEqual(a.fake.cancelled(), []);
      release();
      await waitFor(() => a.fake.cancelled().includes('2'), {
        message: 'allocation 2 to be cancelled',
      });
      assert.deepEqual(await a.queues(), []);

      // The server stops while an allocation is being submitted: it is cancelled too. Held
      // before the queue exists: the new queue submits for the waiting task at once.
      release = a.fake.holdSubmissions();
      await a.hq(['alloc', 'add', 'slurm', '--time-limit', '1h', '--no-dry-run']);
      assert.equal(await a.fake.waitForHeld(), '3');
      await a.hq(['server', 'stop']);
      release();
      assert.deepEqual(await a.env.server!.waitForExit(), { code: 0, signal: null });
      assert.deepEqual(a.fake.cancelled(), ['2', '3']);
    }));

  void it('remove refuses a queue with a running allocation; --force and server stop cancel', () =>
    withAllocEnv(async (a) => {
      await a.hq(['submit', '--array', '1-3', '--', 'sleep', '20']);
      await a.hq(['alloc', 'add', 'slurm', '--time-limit', '1h', '--no-dry-run', '--backlog', '2']);
      await a.waitForAllocationCount(1, 1);
      await a.startAllocationWorker('slurm', '1');
      await a.waitForAllocationState(1, '1', 'RUNNING');
      await a.waitForAllocationCount(1, 3);
      const before = await a.out(['alloc', 'list']);

      const refused = await a.hq(['alloc', 'remove', '1'], { expectFail: true });
      assert.equal(refused.code, 1);
      assert.equal(
        lastLine(refused),
        'Error: Allocation queue has running jobs, so it will not be removed. Use `--force` if you want to remove the queue anyway',
      );
      assert.equal(await a.out(['alloc', 'list']), before);
      assert.deepEqual(a.fake.cancelled(), []);

      const forced = await a.hq(['alloc', 'remove', '1', '--force']);
      assert.equal(stripTime(lastLine(forced)), 'INFO Allocation queue 1 successfully removed');
      assert.deepEqual(a.fake.cancelled(), ['1', '2', '3']);
      assert.deepEqual(
        a.fake
          .calls(['scancel'])
          .map((c) => c.args.join(' '))
          .sort(),
        ['1', '2', '3'],
      );
      assert.deepEqual(await a.queues(), []);
      await a.hq(['alloc', 'info', '1'], { expectFail: true });

      // A second queue: one running and one queued allocation when the server stops.
      await a.hq(['alloc', 'add', 'slurm', '--time-limit', '1h', '--no-dry-run']);
      await a.waitForAllocationCount(2, 1);
      await a.startAllocationWorker('slurm', '4');
      await a.waitForAllocationState(2, '4', 'RUNNING');
      const rows = await a.waitForAllocationCount(2, 2);
      assert.deepEqual(
        rows.map((r) => [r['ID'], r['State']]),
        [
          ['4', 'RUNNING'],
          ['5', 'QUEUED'],
        ],
      );
      await a.hq(['server', 'stop']);
      assert.deepEqual(await a.env.server!.waitForExit(), { code: 0, signal: null });
      assert.deepEqual(a.fake.cancelled(), ['1', '2', '3', '4', '5']);
    }));
});

void describe('hq alloc dry runs and bad input', () => {
  let env: HqEnv;
  let a: AllocEnv;

  before(async () => {
    env = await HqEnv.create();
    a = new AllocEnv(env);
    await a.startServer();
  });

  after(async () => {
    await env?.close();
  });

  void it('dry-run submits a test allocation and cancels it', async () => {
    const slurm = await a.hq([
      'alloc',
      'dry-run',
      'slurm',
      '--time-limit',
      '1h',
      '--',
      '--qos=test',
    ]);
    assert.equal(slurm.stdout, '');
    assert.equal(
      stripTime(lastLine(slurm)),
      'INFO A trial allocation was submitted successfully. It was immediately canceled to avoid wasting resources.',
    );
    const [sbatch] = a.fake.submissions();
    assert.equal(sbatch?.program, 'sbatch');
    const script = a.fake.script('1').split('\n');
    assert.ok(script.includes('#SBATCH --time=01:00:00'), script.join('\n'));
    assert.ok(script.includes('#SBATCH --qos=test'), script.join('\n'));
    assert.deepEqual(
      a.fake.calls(['scancel']).map((c) => c.args),
      [['1']],
    );
    // The test allocation was submitted from a temporary directory, which is gone.
    assert.equal(sbatch?.args.length, 1);
    assert.equal(path.dirname(sbatch.args[0]!), sbatch.cwd);
    assert.ok(sbatch.cwd.startsWith(`${fs.realpathSync(a.tmpDir)}/`), sbatch.cwd);
    assert.ok(!fs.existsSync(sbatch.cwd), `${sbatch.cwd} was removed`);

    // PBS: the test allocation is held, with the largest allocation of the queue.
    const pbs = await a.hq(
      ['alloc', 'dry-run', 'pbs', '--time-limit', '2h', '--max-workers-per-alloc', '3'],
      { json: true },
    );
    assert.deepEqual(pbs.json, {});
    const held = a.fake.script('2.fakepbs').split('\n');
    assert.ok(held.includes('#PBS -h'), held.join('\n'));
    assert.ok(held.includes('#PBS -l select=3'), held.join('\n'));
    assert.ok(held.includes('#PBS -l walltime=02:00:00'), held.join('\n'));
    assert.deepEqual(
      a.fake.calls(['qdel']).map((c) => c.args),
      [['2.fakepbs']],
    );
    assert.deepEqual(a.fake.cancelled(), ['1', '2.fakepbs']);
    assert.deepEqual(await a.queues(), []);
  });

  void it('alloc add does a dry run first unless --no-dry-run', async () => {
    const add = await a.hq(['alloc', 'add', 'slurm', '--time-limit', '1h']);
    assert.match(add.stderr, /INFO A trial allocation was submitted successfully/);
    assert.equal(stripTime(lastLine(add)), 'INFO Allocation queue 1 successfully created');
    assert.equal(a.fake.submissions().length, 3);
    assert.deepEqual(a.fake.cancelled(), ['1', '2.fakepbs', '3']);
    const noDry = await a.hq(['alloc', 'add', 'slurm', '--time-limit', '1h', '--no-dry-run']);
    assert.doesNotMatch(noDry.stderr, /trial allocation/);
    assert.equal(stripTime(lastLine(noDry)), 'INFO Allocation queue 2 successfully created');
    assert.equal(a.fake.submissions().length, 3);
    assert.deepEqual(
      (await a.queues()).map((q) => q['ID']),
      ['1', '2'],
    );
  });

  void it('reports a failing submit program, with its stderr', async () => {
    const before = await a.out(['alloc', 'list']);
    a.fake.failSubmissions('sbatch: error: invalid partition specified: nope');
    try {
      for (const verb of ['add', 'dry-run']) {
        const r = await a.hq(['alloc', verb, 'slurm', '--time-limit', '1h'], { expectFail: true });
        assert.equal(r.code, 1);
        assert.equal(r.stdout, '');
        assert.match(
          r.stderr,
          /Error: Could not submit allocation: sbatch execution failed\n(.*\n)*Stderr: sbatch: error: invalid partition specified: nope\n/,
        );
        if (verb === 'add') {
          assert.match(r.stderr, /ERROR Dry-run \(test allocation submission\) has failed\n/);
        }
        // The script is kept for inspection.
        const kept = keptScript(r);
        assert.ok(kept.startsWith(`${a.tmpDir}/`), kept);
        assert.ok(read(kept).split('\n').includes('#SBATCH --time=01:00:00'), read(kept));
      }
    } finally {
      a.fake.failSubmissions(null);
    }
    assert.equal(await a.out(['alloc', 'list']), before);
  });

  void it('reports a failing cancel program with the allocation id', async () => {
    const before = await a.out(['alloc', 'list']);
    const submitted = a.fake.submissions().length;
    a.fake.failCancels(true);
    try {
      const r = await a.hq(['alloc', 'add', 'pbs', '--time-limit', '1h'], { expectFail: true });
      assert.equal(r.code, 1);
      assert.equal(a.fake.submissions().length, submitted + 1);
      const id = fs.readFileSync(path.join(a.fake.bin, 'counter'), 'utf8').trim();
      assert.match(
        r.stderr,
        new RegExp(`Error: Could not cancel allocation ${id}\\.fakepbs: qdel execution failed\\n`),
      );
      assert.match(r.stderr, /Stderr: fake: refusing to cancel job/);
    } finally {
      a.fake.failCancels(false);
    }
    assert.equal(await a.out(['alloc', 'list']), before);
  });

  void it('reports a submit program that is not there', async (t) => {
    const rest = (process.env['PATH'] ?? '').split(':').filter((d) => d !== '');
    if (rest.some((d) => fs.existsSync(path.join(d, 'qsub')))) {
      t.skip('a real qsub is on the PATH');
      return;
    }
    const before = await a.out(['alloc', 'list']);
    const qsub = path.join(a.fake.bin, 'qsub');
    fs.renameSync(qsub, `${qsub}.off`);
    try {
      const r = await a.hq(['alloc', 'dry-run', 'pbs', '--time-limit', '1h'], { expectFail: true });
      assert.equal(r.code, 1);
      assert.match(r.stderr, /^Error: Could not submit allocation: qsub start failed/m);
      assert.ok(read(keptScript(r)).split('\n').includes('#PBS -h'));
    } finally {
      fs.renameSync(`${qsub}.off`, qsub);
    }
    assert.equal(await a.out(['alloc', 'list']), before);
  });

  const badCases: { name: string; args: string[]; message: RegExp; todo?: string }[] = [
    {
      name: '--backlog 0',
      args: ['alloc', 'add', 'slurm', '--time-limit', '1h', '--no-dry-run', '--backlog', '0'],
      message: /^Error: invalid value '0' for '--backlog <BACKLOG>': Backlog has to be at least 1$/,
    },
    {
      name: 'a missing --time-limit',
      args: ['alloc', 'add', 'pbs', '--no-dry-run'],
      message: /^error: required option '-t, --time-limit <TIME_LIMIT>' not specified$/,
    },
    {
      name: 'a worker time limit above the queue time limit',
      args: [
        'alloc',
        'add',
        'slurm',
        '--time-limit',
        '1h',
        '--worker-time-limit',
        '2h',
        '--no-dry-run',
      ],
      message: /^Error: Worker time limit cannot be larger than queue time limit$/,
    },
    {
      name: 'pause of an unknown queue',
      args: ['alloc', 'pause', '42'],
      message: /^Error: Queue 42 that should have been paused was not found$/,
    },
    {
      name: 'resume of an unknown queue',
      args: ['alloc', 'resume', '42'],
      message: /^Error: Queue 42 that should have been resumed was not found$/,
    },
    {
      name: 'remove of an unknown queue',
      args: ['alloc', 'remove', '42'],
      message: /^Error: Allocation queue not found$/,
    },
    {
      name: 'info of an unknown queue',
      args: ['alloc', 'info', '42'],
      message: /^Error: Queue 42 not found$/,
    },
    {
      name: 'log of an unknown allocation',
      args: ['alloc', 'log', 'nope', 'stdout'],
      message: /^Error: Allocation nope not found$/,
    },
  ];

  for (const c of badCases) {
    void it(
      `refuses ${c.name}, and the queues stay as they were`,
      { ...(c.todo === undefined ? {} : { todo: c.todo }) },
      async () => {
        const before = await a.out(['alloc', 'list']);
        const submitted = a.fake.submissions().length;
        const r = await a.hq(c.args, { expectFail: true });
        assert.equal(r.code, 1, `exit code of hq ${r.args.join(' ')}`);
        assert.equal(r.stdout, '');
        assert.match(lastLine(r), c.message);
        // One clear line, nothing else.
        assert.equal(r.stderr, `${lastLine(r)}\n`);
        assert.equal(await a.out(['alloc', 'list']), before);
        assert.equal(a.fake.submissions().length, submitted);
      },
    );
  }
});
