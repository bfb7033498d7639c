/**
 * Every `hq` command shown in the seeds (`../shared/seeds/`: the README, the FAQ, the project page
 * and the 2024 talk), run word for word against a real server and workers: no `--server-dir`
 * (the server directory comes from `HQ_SERVER_DIR`, as a user's `~/.hq-server` would), and each
 * one checked for what it should do, not only for its exit code. Placeholders of the seeds
 * (`<partition>`, `<queue>`, `--cpus=...`) are filled in with real values.
 *
 * The allocation commands run against the fake sbatch/qsub of `fake-batch.ts`, which records the
 * scripts it is given.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { splitShellWords } from '../../src/common/directives.js';
import { FakeBatchSystem, QUICK_AUTOALLOC } from './fake-batch.js';
import {
  HQ_BIN,
  horizontalTable,
  read,
  verticalMap,
  waitFor,
  withEnv,
  type CommandOptions,
  type CommandResult,
  type HqEnv,
} from './harness.js';

/** The talk's `./my-computation`: says what it was given, as `key=value` lines. */
const MY_COMPUTATION = `#!/bin/sh
echo "Computation started ..."
echo "entry=\${HQ_ENTRY-}"
echo "cpus=\${HQ_CPUS-}"
echo "foo=\${HQ_RESOURCE_VALUES_foo-}"
echo "gpus=\${CUDA_VISIBLE_DEVICES-}"
while read -r key value; do
  [ "$key" = Cpus_allowed_list: ] && echo "allowed=$value"
done </proc/self/status
echo "Result is $HQ_TASK_ID"
`;

/** A user's shell: the working directory with `./my-computation`, the server directory. */
class Shell {
  readonly env: HqEnv;
  readonly cwd: string;
  readonly vars: Record<string, string>;

  constructor(env: HqEnv, vars: Record<string, string> = {}) {
    this.env = env;
    this.cwd = env.path('home');
    fs.mkdirSync(this.cwd, { recursive: true });
    fs.writeFileSync(path.join(this.cwd, 'my-computation'), MY_COMPUTATION, { mode: 0o755 });
    // TMPDIR: the default work directories of the workers go away with the environment.
    const tmp = env.path('tmp');
    fs.mkdirSync(tmp, { recursive: true });
    this.vars = { HQ_SERVER_DIR: env.serverDir, TMPDIR: tmp, ...vars };
  }

  /** `hq <words>` exactly as given: no flag is added. */
  hq(words: string[], options: CommandOptions = {}): Promise<CommandResult> {
    return this.env.command(words, {
      cwd: this.cwd,
      serverDir: null,
      ...options,
      env: { ...this.vars, ...options.env },
    });
  }

  /** `hq submit ...`: the job id from "Job submitted successfully, job ID: N". */
  async submit(words: string[]): Promise<number> {
    const out = (await this.hq(['submit', ...words])).stdout;
    const m = /^Job submitted successfully, job ID: (\d+)$/m.exec(out);
    assert.ok(m, `unexpected submit output: ${out}`);
    return Number(m[1]);
  }

  /** `hq <words> &`: a server or worker in the background. */
  spawn(name: string, words: string[], vars: Record<string, string> = {}) {
    return this.env.spawnHq(name, words, { cwd: this.cwd, env: { ...this.vars, ...vars } });
  }

  async waitForWorkers(n: number): Promise<Record<string, string>[]> {
    return waitFor(
      async () => {
        const rows = horizontalTable((await this.hq(['worker', 'list'])).stdout);
        return rows.length === n && rows.every((r) => r['State'] === 'RUNNING') ? rows : null;
      },
      { message: `${n} running worker(s)` },
    );
  }

  /** What task `taskId` of job `jobId` printed, as the `key=value` lines of my-computation. */
  output(jobId: number, taskId: number): Map<string, string> {
    const text = read(path.join(this.cwd, `job-${jobId}`, `${taskId}.stdout`));
    return new Map(
      text
        .split('\n')
        .filter((l) => l.includes('='))
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
  }

  /** `hq job info <id>` as a map of its rows. */
  async jobInfo(jobId: number): Promise<Map<string, string>> {
    return verticalMap((await this.hq(['job', 'info', String(jobId)])).stdout);
  }
}

function sortedIds(text: string): number[] {
  return text
    .split(',')
    .map(Number)
    .sort((a, b) => a - b);
}

void describe('the commands of the seeds, as written', () => {
  void it('getting started: server, submit, worker, jobs, pinning (README)', async () => {
    await withEnv(async (env) => {
      const sh = new Shell(env);
      // $ hq server start &
      const server = sh.spawn('server', ['server', 'start']);
      env.server = server;
      await waitFor(() => fs.existsSync(path.join(env.serverDir, 'hq-current', 'access.json')), {
        message: 'the server to start',
      });
      // $ hq submit echo 'Hello world'
      const hello = await sh.submit(['echo', 'Hello world']);
      // $ hq jobs
      const waiting = horizontalTable((await sh.hq(['jobs'])).stdout);
      assert.deepEqual(
        waiting.map((r) => [r['ID'], r['Name'], r['State'], r['Tasks']]),
        [[String(hello), 'echo', 'WAITING', '1']],
      );
      // $ hq worker start &
      sh.spawn('worker-1', ['worker', 'start']);
      // $ hq worker start --resource foo=[5,6,7,8]
      sh.spawn('worker-2', ['worker', 'start', '--resource', 'foo=[5,6,7,8]']);
      const workers = await sh.waitForWorkers(2);
      assert.ok(
        workers.some((r) => /foo 4/.test(r['Resources'] ?? '')),
        JSON.stringify(workers),
      );
      await env.waitForJobState(hello, 'FINISHED');
      assert.equal(read(path.join(sh.cwd, `job-${hello}`, '0.stdout')), 'Hello world\n');
      // $ hq job list: a finished job is listed with --all only, as upstream's list does
      const all = horizontalTable((await sh.hq(['jobs', '--all'])).stdout);
      assert.equal(all.find((r) => r['ID'] === String(hello))?.['State'], 'FINISHED');
      assert.match((await sh.hq(['job', 'list'])).stdout, /There is 1 job in total/);

      // $ hq submit --resource foo=2 ./my-computation
      const foo = await sh.submit(['--resource', 'foo=2', './my-computation']);
      // $ hq submit --pin --cpus=... ./my-computation (a bare --pin is taskset)
      const pinned = await sh.submit(['--pin', '--cpus=1', './my-computation']);
      assert.equal((await sh.jobInfo(pinned)).get('Pin'), 'taskset');
      // $ hq progress <job>
      const progress = await sh.hq(['progress', `${foo}-${pinned}`]);
      assert.match(progress.stdout, /2\/2 jobs, 2\/2 tasks \(2 FINISHED\)/);
      const fooValues = sortedIds(sh.output(foo, 0).get('foo')!);
      assert.equal(fooValues.length, 2);
      assert.ok(
        fooValues.every((v) => [5, 6, 7, 8].includes(v)),
        `foo values: ${fooValues.join(',')}`,
      );
      const pin = sh.output(pinned, 0);
      assert.match(pin.get('cpus')!, /^\d+$/);
      assert.equal(pin.get('allowed'), pin.get('cpus'), 'the task runs on its one CPU only');
    });
  });

  void it('task arrays, progress, entries and resource requests (the talk)', async () => {
    await withEnv(async (env) => {
      const sh = new Shell(env);
      await env.startServer();
      await env.startWorker({ cpus: 8, args: ['--resource', 'gpus/nvidia=[0,1,2,3]'] });
      fs.writeFileSync(path.join(sh.cwd, 'myfile.txt'), 'lineA\nlineB\nlineC\nlineD\nlineE\n');
      fs.writeFileSync(path.join(sh.cwd, 'items.json'), '[{"x": 1}, 2, "three"]');

      // $ hq submit --array=1-10_000 ./my-computation
      const array = await sh.submit(['--array=1-10_000', './my-computation']);
      assert.equal(array, 1);
      // $ hq submit ./my-computation
      const single = await sh.submit(['./my-computation']);
      // $ hq progress 1
      const progress = await sh.hq(['progress', '1'], { timeoutMs: 180_000 });
      assert.match(progress.stdout, /1\/1 jobs, 10000\/10000 tasks \(10000 FINISHED\)/);
      assert.equal(sh.output(array, 10_000).get('cpus')?.split(',').length, 1);
      assert.ok(!fs.existsSync(path.join(sh.cwd, `job-${array}`, '0.stdout')), 'ids start at 1');
      await env.waitForJobState(single, 'FINISHED');

      // $ hq submit --each-line=myfile.txt ./my-computation
      const lines = await sh.submit(['--each-line=myfile.txt', './my-computation']);
      // $ hq submit --from-json=items.json ./my-computation
      const items = await sh.submit(['--from-json=items.json', './my-computation']);
      await env.waitForJobState(lines, 'FINISHED');
      await env.waitForJobState(items, 'FINISHED');
      assert.deepEqual(
        [0, 1, 2, 3, 4].map((t) => sh.output(lines, t).get('entry')),
        ['lineA', 'lineB', 'lineC', 'lineD', 'lineE'],
      );
      assert.deepEqual(
        [0, 1, 2].map((t) => sh.output(items, t).get('entry')),
        ['{"x":1}', '2', '"three"'],
      );

      // Resource requests: each job runs on the 8-CPU worker with 4 GPUs and gets what it asked.
      const requests: [string[], string, (out: Map<string, string>) => void][] = [
        [['--cpus=4'], 'cpus: 4 compact', (o) => assert.equal(o.get('cpus')?.split(',').length, 4)],
        [
          ['--array=1-4', '--cpus=2'],
          'cpus: 2 compact',
          (o) => assert.equal(o.get('cpus')?.split(',').length, 2),
        ],
        [['--cpus=4 compact'], 'cpus: 4 compact', () => undefined],
        [['--cpus=4 compact!'], 'cpus: 4 compact!', () => undefined],
        [
          ['--cpus=8 scatter'],
          'cpus: 8 scatter',
          (o) => assert.equal(o.get('cpus')?.split(',').length, 8),
        ],
        [
          ['--resource', 'gpus/nvidia=4'],
          'gpus/nvidia: 4',
          (o) => assert.deepEqual(sortedIds(o.get('gpus')!), [0, 1, 2, 3]),
        ],
        [
          ['--resource=gpus/nvidia=0.5'],
          'gpus/nvidia: 0.5',
          (o) => assert.equal(o.get('gpus')?.split(',').length, 1),
        ],
        [['--time-limit=1h'], '', () => undefined],
        [['--time-request=10m'], '', () => undefined],
      ];
      const jobs: number[] = [];
      for (const [flags] of requests) {
        jobs.push(await sh.submit([...flags, './my-computation']));
      }
      for (const [i, [flags, resources, check]] of requests.entries()) {
        const id = jobs[i]!;
        await env.waitForJobState(id, 'FINISHED');
        const info = await sh.jobInfo(id);
        assert.ok(
          info.get('Resources')?.includes(resources),
          `${flags.join(' ')}: ${info.get('Resources')}`,
        );
        check(sh.output(id, flags[0] === '--array=1-4' ? 1 : 0));
      }
      assert.equal((await sh.jobInfo(jobs[7]!)).get('Task time limit'), '1h');

      // $ hq submit --nodes=16 ...: waits for 16 workers
      const multiNode = await sh.submit(['--nodes=16', './my-computation']);
      assert.match((await sh.jobInfo(multiNode)).get('Resources') ?? '', /nodes: 16/);
      assert.equal(await env.jobState(multiNode), 'WAITING');
      await sh.hq(['job', 'cancel', String(multiNode)]);
    });
  });

  void it('output: a file per task, or one log with --log (the talk)', async () => {
    await withEnv(async (env) => {
      const sh = new Shell(env);
      await env.startServer();
      // $ hq submit --array 1-4 ./my-computation
      const files = await sh.submit(['--array', '1-4', './my-computation']);
      // $ hq submit --array 1-1000_000 ./my-computation: a million tasks, canceled before a
      // worker connects (two million output files is what the talk warns about)
      const million = await sh.submit(['--array', '1-1000_000', './my-computation']);
      assert.equal((await sh.jobInfo(million)).get('Tasks'), '1000000; Ids: 1-1000000');
      await sh.hq(['job', 'cancel', String(million)]);
      await env.startWorker({ cpus: 4 });
      await env.waitForJobState(files, 'FINISHED');
      // $ ls job-1
      assert.equal(files, 1);
      assert.deepEqual(fs.readdirSync(path.join(sh.cwd, 'job-1')).sort(), [
        '1.stderr',
        '1.stdout',
        '2.stderr',
        '2.stdout',
        '3.stderr',
        '3.stdout',
        '4.stderr',
        '4.stdout',
      ]);

      // $ hq submit --array 1-4 --log=my.log ./my-computation
      const logged = await sh.submit(['--array', '1-4', '--log=my.log', './my-computation']);
      await env.waitForJobState(logged, 'FINISHED');
      assert.ok(!fs.existsSync(path.join(sh.cwd, `job-${logged}`)), 'no file per task');
      // $ hq log my.log show
      // Chunks of the four tasks, each behind a `<job>.<task>:<channel>>` header, in time order.
      const show = (await sh.hq(['log', 'my.log', 'show'])).stdout;
      const headers = [...show.matchAll(/^(\d+)\.(\d+):0> /gm)].map((m) => [m[1], m[2]]);
      assert.deepEqual(
        [...new Set(headers.map(([job, task]) => `${job}.${task}`))].sort(),
        [1, 2, 3, 4].map((t) => `${logged}.${t}`),
      );
      const shown = show.split('\n').map((l) => l.replace(/^\d+\.\d+:0> /, ''));
      assert.equal(shown.filter((l) => l === 'Computation started ...').length, 4);
      for (const task of [1, 2, 3, 4]) {
        assert.ok(shown.includes(`Result is ${task}`), show);
      }
      // $ hq log my.log cat stdout --task=1
      const cat = (await sh.hq(['log', 'my.log', 'cat', 'stdout', '--task=1'])).stdout;
      assert.match(cat, /^Computation started \.\.\.\n(.*\n)*Result is 1\n$/);
      // The same log read with upstream's command names.
      const upstream = await sh.hq([
        'output-log',
        'my.log',
        'cat',
        String(logged),
        'stdout',
        '--task=1',
      ]);
      assert.equal(upstream.stdout, cat);
    });
  });

  void it('automatic allocation: --timelimit, --partition, --queue (README, the talk)', async () => {
    await withEnv(async (env) => {
      const fake = new FakeBatchSystem(env.path('bin'));
      await env.startServer([], { env: fake.env('server', QUICK_AUTOALLOC) });
      const sh = new Shell(env, fake.env('client'));
      /** The script of the newest submission (the fake numbers them across sbatch and qsub). */
      const lastScript = (): string => {
        const subs = fake.submissions();
        const n = subs.length;
        assert.ok(n > 0, 'nothing was submitted');
        return fake.script(subs[n - 1]!.program === 'qsub' ? `${n}.fakepbs` : String(n));
      };

      // $ hq alloc add slurm (the talk's first step): upstream's rule, a time limit is needed
      const missing = await sh.hq(['alloc', 'add', 'slurm'], { expectFail: true });
      assert.match(missing.stderr, /--time-limit <TIME_LIMIT>/);

      // $ hq alloc add slurm --timelimit=1h -- -pstandard
      const added = await sh.hq(['alloc', 'add', 'slurm', '--timelimit=1h', '--', '-pstandard']);
      assert.match(added.stderr, /Allocation queue 1 successfully created/);
      let script = lastScript();
      assert.match(script, /^#SBATCH --time=01:00:00$/m);
      assert.match(script, /^#SBATCH -pstandard$/m);
      assert.match(script, / --time-limit "1h"$/m);

      // $ hq alloc add slurm --timelimit=1h
      await sh.hq(['alloc', 'add', 'slurm', '--timelimit=1h']);
      assert.doesNotMatch(lastScript(), /^#SBATCH -p/m);

      // $ hq alloc add slurm --partition <partition>: the partition's default walltime
      await sh.hq(['alloc', 'add', 'slurm', '--partition', 'standard']);
      script = lastScript();
      assert.match(script, /^#SBATCH --partition=standard$/m);
      assert.doesNotMatch(script, /--time/);

      // $ hq alloc add pbs --queue <queue>
      await sh.hq(['alloc', 'add', 'pbs', '--queue', 'qprod']);
      script = lastScript();
      assert.match(script, /^#PBS -q qprod$/m);
      assert.doesNotMatch(script, /walltime|--time-limit/);

      const queues = horizontalTable((await sh.hq(['alloc', 'list'])).stdout);
      assert.deepEqual(
        queues.map((q) => [q['ID'], q['Manager'], q['Timelimit'], q['Args']]),
        [
          ['1', 'SLURM', '1h', '-pstandard'],
          ['2', 'SLURM', '1h', ''],
          ['3', 'SLURM', 'None', '--partition=standard'],
          ['4', 'PBS', 'None', '-q,qprod'],
        ],
      );
      // Only the partition queue submits from here on.
      for (const queue of [1, 2, 4]) {
        await sh.hq(['alloc', 'pause', String(queue)]);
      }

      // $ hq submit ./my-computation: the partition queue submits an allocation for it ...
      const job = await sh.submit(['./my-computation']);
      const allocation = await waitFor(
        async () => horizontalTable((await sh.hq(['alloc', 'info', '3'])).stdout)[0],
        { message: 'an allocation of the partition queue' },
      );
      const allocationScript = fake.script(allocation['ID']!);
      assert.match(allocationScript, /^#SBATCH --partition=standard$/m);
      // ... and the worker its script starts (in the allocation: SLURM_JOB_ID) runs the task.
      const command = splitShellWords(allocationScript.trimEnd().split('\n').pop()!);
      assert.deepEqual(command.slice(0, 3), [HQ_BIN, 'worker', 'start']);
      assert.ok(!command.includes('--time-limit'), command.join(' '));
      sh.spawn(
        'alloc-worker',
        command.slice(1),
        fake.env('worker', { SLURM_JOB_ID: allocation['ID']! }),
      );
      await env.waitForJobState(job, 'FINISHED');
      // $ hq worker list
      const [worker] = await sh.waitForWorkers(1);
      assert.equal(worker?.['Manager'], 'SLURM');
      assert.equal(worker?.['Manager Job ID'], allocation['ID']);
    });
  });
});
