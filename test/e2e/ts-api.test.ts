/**
 * The TypeScript API end to end: against a server and worker of the harness (waiting with
 * progress and an abort signal, failed function tasks with their JS stack, forget errors), and
 * as a user gets it: `npm pack` of the built package installed offline into a fresh project,
 * whose program runs a LocalCluster with a program task and a dependent function task.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';

import {
  Client,
  ConnectionError,
  FailedJobsError,
  HqError,
  InvalidJobError,
  Job,
  JobNotCompletedError,
  ServerNotFoundError,
  taskFunction,
  type JobProgress,
} from '../../src/api/index.js';
import { ROOT, horizontalTable, isAlive, read, waitFor, withEnv, type HqEnv } from './harness.js';

const run = promisify(execFile);

/** A module the worker imports for function tasks (written per test, so no repo file is needed). */
const TASKS_MODULE = `import { writeFileSync, existsSync } from 'node:fs';
export function boom(message) {
  throw new Error(message);
}
export async function touch(file, text) {
  writeFileSync(file, text);
}
`;

function writeTasks(env: HqEnv): string {
  const file = env.path('tasks.mjs');
  fs.writeFileSync(file, TASKS_MODULE);
  return pathToFileURL(file).href;
}

async function rejects<E extends Error>(
  promise: Promise<unknown>,
  type: abstract new (...args: never[]) => E,
): Promise<E> {
  try {
    await promise;
  } catch (e) {
    assert.ok(e instanceof type, `expected ${type.name}, got ${String(e)}`);
    return e;
  }
  assert.fail(`expected ${type.name}, but it resolved`);
}

void describe('TypeScript API with a server', () => {
  void it('reports missing servers and invalid jobs with typed errors', async () => {
    await withEnv(async (env) => {
      const missing = await rejects(
        Client.connect({ serverDir: env.path('nowhere') }),
        ServerNotFoundError,
      );
      assert.equal(missing.code, 'HQ_SERVER_NOT_FOUND');
      assert.ok(missing instanceof HqError);

      await env.startServer();
      await using client = await Client.connect({ serverDir: env.serverDir });
      const empty = await rejects(client.submit(new Job()), InvalidJobError);
      assert.equal(empty.message, 'Submitted job must have at least a single task');
      const badResource = new Job({ defaultWorkdir: env.path('work') });
      badResource.program(['true'], { resources: { cpus: 'lots' } });
      const bad = await rejects(client.submit(badResource), InvalidJobError);
      assert.equal(bad.code, 'HQ_INVALID_ARGUMENT');
      assert.match(bad.message, /task 0\.resources\[0\]\.resources\.cpus/);

      client.close();
      await rejects(client.submit(badResource), ConnectionError);
    });
  });

  void it('waits with progress and an abort signal, returns failed tasks, and forgets', async () => {
    await withEnv(async (env) => {
      await env.startServer();
      await env.startWorker({ cpus: 2 });
      const tasksUrl = writeTasks(env);
      // Local stand-ins: only the tags matter here; the worker imports the real module.
      const boom = taskFunction(tasksUrl, 'boom', (_message: string) => undefined);
      const touch = taskFunction(tasksUrl, 'touch', (_file: string, _text: string) => undefined);
      const work = env.path('work');
      const client = await Client.connect({ serverDir: env.serverDir });
      try {
        // -- progress: reported at once, and complete at the end
        const job = new Job({ name: 'progress', defaultWorkdir: work });
        const first = job.program(['bash', '-c', 'echo one']);
        job.function(touch, { args: ['touched.txt', 'from a function'], deps: [first] });
        const sub = await client.submit(job);
        const reports: Map<number, JobProgress>[] = [];
        assert.equal(await client.waitForJobs([sub], { onProgress: (p) => reports.push(p) }), true);
        assert.ok(reports.length >= 2, `progress reports: ${reports.length}`);
        assert.equal(reports[0]!.get(sub.id)!.total, 2);
        assert.deepEqual(reports.at(-1)!.get(sub.id), {
          finished: 2,
          failed: 0,
          total: 2,
          completed: true,
        });
        assert.equal(read(path.join(work, 'touched.txt')), 'from a function');
        assert.equal(read(path.join(work, '0.stdout')), 'one\n');

        // -- abort: from inside the first progress report; the job goes on
        const gate = env.path('gate');
        const gated = new Job({ defaultWorkdir: work });
        gated.program(['bash', '-c', `while [ ! -e ${gate} ]; do sleep 0.05; done`]);
        const running = await client.submit(gated);
        const controller = new AbortController();
        const aborted = client.waitForJobs([running], {
          signal: controller.signal,
          onProgress: () => controller.abort(new Error('enough')),
        });
        await assert.rejects(aborted, /enough/);
        await assert.rejects(
          client.waitForJobs([running], { signal: AbortSignal.abort() }),
          (e: unknown) => e instanceof Error && e.name === 'AbortError',
        );
        // The client is still usable, and the job still runs: forgetting it is refused.
        const notDone = await rejects(client.forget(running), JobNotCompletedError);
        assert.equal(notDone.code, 'HQ_JOB_NOT_COMPLETED');
        assert.equal(
          notDone.message,
          `Cannot forget job ${running.id}. It either hasn't been completed yet, or it does not exist`,
        );
        fs.writeFileSync(gate, '');
        assert.equal(await running.wait(), true);

        // -- a failing function task: its error is the JS stack
        const failing = new Job({ defaultWorkdir: work });
        failing.function(boom, { args: ['kaput'] });
        failing.program(['true']);
        const failed = await client.submit(failing);
        assert.equal(await client.waitForJobs([failed], { raiseOnError: false }), false);
        const tasks = await client.getFailedTasks(failed);
        assert.deepEqual([...tasks.keys()], [0]);
        const task = tasks.get(0)!;
        assert.match(task.error, /^Error: kaput\n\s+at boom \(file:\/\/.*tasks\.mjs:3:9\)/);
        assert.equal(task.cwd, work);
        assert.equal(task.stdout, path.join(work, '0.stdout'));
        assert.equal(task.stderr, path.join(work, '0.stderr'));
        assert.match(read(task.stderr), /Error: kaput/);
        assert.deepEqual([...(await failed.failedTasks()).keys()], [0]);

        const error = await rejects(client.waitForJobs([sub, failed]), FailedJobsError);
        assert.equal(error.code, 'HQ_JOBS_FAILED');
        assert.deepEqual([...error.failedTasks.keys()], [failed.id]);
        assert.match(error.failedTasks.get(failed.id)!.get(0)!.error, /Error: kaput/);
        assert.match(error.message, /Task boom\/0 \(id=0\):\nError: kaput/);

        // -- forget: a completed job once, then it is gone
        await client.forget(sub);
        await failed.forget();
        await rejects(client.forget(sub), JobNotCompletedError);
        await rejects(client.forget(9999), JobNotCompletedError);
        const listed = horizontalTable(await env.output(['job', 'list', '--all']));
        assert.deepEqual(
          listed.map((r) => r['ID']),
          [String(running.id)],
        );

        // -- stopServer: the server exits cleanly, the client is closed
        await client.stopServer();
        assert.deepEqual(await env.server!.waitForExit(), { code: 0, signal: null });
        assert.equal(client.connected, false);
      } finally {
        client.close();
      }
    });
  });
});

/** The consumer's program: everything through the installed package name. */
const CONSUMER_TASKS = `import { readFileSync, writeFileSync } from 'node:fs';
import { taskFunction } from 'hyperqueue-ts';

export const appendLine = taskFunction(import.meta.url, 'appendLine', async (from, to, line) => {
  writeFileSync(to, readFileSync(from, 'utf8') + line + '\\n');
});
`;

const CONSUMER_MAIN = `import * as path from 'node:path';
import { existsSync } from 'node:fs';
import { Job, LocalCluster, hqCommand } from 'hyperqueue-ts';
import { appendLine } from './tasks.mjs';

const result = { hq: hqCommand() };
const cluster = await LocalCluster.start({ workers: [{ cores: 2 }] });
result.serverDir = cluster.serverDir;
try {
  const client = await cluster.client();
  const job = new Job({ name: 'packed', defaultWorkdir: path.resolve('out') });
  const prog = job.program(['bash', '-c', 'echo "from the program $GREETING" > prog.txt; echo done'], {
    env: { GREETING: 'hi' },
  });
  const fn = job.function(appendLine, { args: ['prog.txt', 'fn.txt', 'from the function'], deps: [prog] });
  result.names = [prog.label, fn.label];
  const submitted = await client.submit(job);
  result.ok = await client.waitForJobs([submitted]);
  result.pids = cluster.pids;
} finally {
  await cluster.stop();
}
try {
  await cluster.stop();
} catch (e) {
  result.secondStop = e.code;
}
result.serverDirLeft = existsSync(result.serverDir);
console.log(JSON.stringify(result));
`;

/** Type-checked against the package's declarations, as a consumer's TypeScript would be. */
const CONSUMER_TYPES = `import {
  Client,
  FailedJobsError,
  Job,
  LocalCluster,
  taskFunction,
  type FailedTask,
  type JobProgress,
} from 'hyperqueue-ts';

export const scale = taskFunction(import.meta.url, 'scale', (factor: number, label: string) =>
  String(factor) + label,
);

export async function main(): Promise<boolean> {
  await using cluster = await LocalCluster.start({ workers: [{ cores: 1 }] });
  const client: Client = await cluster.client();
  const job = new Job({ maxFails: null });
  const a = job.program(['true'], { resources: [{ cpus: 2 }, { cpus: 1, resources: { gpus: 0.5 } }] });
  job.function(scale, { args: [2, 'x'], deps: [a], stdout: null });
  // @ts-expect-error the arguments are typed from the function
  job.function(scale, { args: ['2', 'x'] });
  const sub = await client.submit(job);
  try {
    return await client.waitForJobs([sub], { onProgress: (p: Map<number, JobProgress>) => p.size });
  } catch (e) {
    if (e instanceof FailedJobsError) {
      const t: FailedTask | undefined = e.failedTasks.get(sub.id)?.get(0);
      return t === undefined;
    }
    throw e;
  }
}
`;

void describe('TypeScript API as an installed package', () => {
  void it('packs, installs offline, type-checks, and runs a LocalCluster program', async () => {
    const bundle = path.join(ROOT, 'dist', 'api', 'index.js');
    assert.ok(fs.existsSync(bundle), `${bundle} is missing: run \`npm run build\` first`);
    await withEnv(async (env) => {
      const npmEnv = env.processEnv({ npm_config_update_notifier: 'false' });
      const packed = await run(
        'npm',
        ['pack', '--json', '--ignore-scripts', '--pack-destination', env.dir],
        { cwd: ROOT, env: npmEnv, timeout: 120_000 },
      );
      const [info] = JSON.parse(packed.stdout) as { filename: string; files: { path: string }[] }[];
      assert.ok(info !== undefined);
      const files = info.files.map((f) => f.path);
      for (const f of ['dist/hq', 'dist/package.json', 'dist/api/index.js']) {
        assert.ok(files.includes(f), `${f} is in the package: ${files.join(', ')}`);
      }
      assert.ok(files.includes('dist/api/types/api/index.d.ts'));
      assert.ok(!files.some((f) => f.startsWith('src/')));

      const project = env.path('consumer');
      fs.mkdirSync(project);
      fs.writeFileSync(
        path.join(project, 'package.json'),
        JSON.stringify({ name: 'consumer', private: true, type: 'module' }),
      );
      await run(
        'npm',
        [
          'install',
          '--offline',
          '--no-audit',
          '--no-fund',
          '--omit=dev',
          '--ignore-scripts',
          path.join(env.dir, info.filename),
        ],
        { cwd: project, env: npmEnv, timeout: 120_000 },
      );
      const installed = path.join(project, 'node_modules');
      // The runtime dependencies are bundled: the package is the only thing installed.
      assert.deepEqual(
        fs.readdirSync(installed).filter((d) => !d.startsWith('.')),
        ['hyperqueue-ts'],
      );
      // The package's `hq` command, and the docs `hq doc` points at.
      const bin = path.join(installed, '.bin', 'hq');
      const version = await run(bin, ['--version'], { env: npmEnv });
      assert.match(version.stdout, /^\d+\.\d+\.\d+/);
      const doc = (await run(bin, ['doc', 'job'], { env: npmEnv })).stdout.trim();
      assert.ok(doc.startsWith(path.join(installed, 'hyperqueue-ts', 'docs')), doc);
      assert.ok(fs.existsSync(doc), `${doc} exists`);

      fs.writeFileSync(path.join(project, 'tasks.mjs'), CONSUMER_TASKS);
      fs.writeFileSync(path.join(project, 'main.mjs'), CONSUMER_MAIN);
      fs.writeFileSync(path.join(project, 'check.ts'), CONSUMER_TYPES);

      const tsc = await run(
        process.execPath,
        [
          path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'),
          '--noEmit',
          '--strict',
          '--target',
          'es2022',
          '--lib',
          'es2022,esnext.disposable',
          '--module',
          'nodenext',
          '--moduleResolution',
          'nodenext',
          '--types',
          'node',
          '--typeRoots',
          path.join(ROOT, 'node_modules', '@types'),
          'check.ts',
        ],
        { cwd: project, env: npmEnv, timeout: 120_000 },
      ).catch((e: { stdout?: string; message: string }) => {
        throw new Error(`tsc on the consumer failed: ${e.stdout ?? ''}\n${e.message}`);
      });
      assert.equal(tsc.stdout, '');

      const program = await run(process.execPath, ['main.mjs'], {
        cwd: project,
        env: npmEnv,
        timeout: 90_000,
      });
      const result = JSON.parse(program.stdout.trim().split('\n').at(-1)!) as {
        hq: string[];
        serverDir: string;
        names: string[];
        ok: boolean;
        pids: { server: number; workers: number[] };
        secondStop: string;
        serverDirLeft: boolean;
      };
      assert.equal(result.ok, true);
      assert.deepEqual(result.hq, [
        process.execPath,
        path.join(installed, 'hyperqueue-ts', 'dist', 'hq'),
      ]);
      assert.deepEqual(result.names, ['0', 'appendLine/1']);
      const out = path.join(project, 'out');
      assert.equal(read(path.join(out, 'fn.txt')), 'from the program hi\nfrom the function\n');
      assert.equal(read(path.join(out, '0.stdout')), 'done\n');
      assert.equal(read(path.join(out, '1.stderr')), '');
      assert.equal(result.secondStop, 'HQ_CLUSTER');
      assert.equal(result.serverDirLeft, false);
      assert.equal(result.pids.workers.length, 1);
      // Nothing of the cluster outlives its program.
      for (const pid of [result.pids.server, ...result.pids.workers]) {
        assert.equal(isAlive(pid), false, `pid ${pid} is gone`);
      }
      await waitFor(() => env.markedProcesses().length === 0, {
        message: 'no process of the consumer program to be left',
      });
    });
  });
});

void describe('TypeScript API: LocalCluster lifetime', () => {
  void it('a SIGKILLed program leaves no server or worker of its cluster behind', () =>
    withEnv(async (env) => {
      const ready = env.path('ready');
      const program = `import { renameSync, writeFileSync } from 'node:fs';
import { LocalCluster } from ${JSON.stringify(pathToFileURL(path.join(ROOT, 'dist', 'api', 'index.js')).href)};
const cluster = await LocalCluster.start({ workers: [{ cores: 1 }] });
// Written whole, then renamed: the test never reads half of it.
writeFileSync(${JSON.stringify(ready + '.tmp')}, JSON.stringify(cluster.pids));
renameSync(${JSON.stringify(ready + '.tmp')}, ${JSON.stringify(ready)});
setInterval(() => {}, 1000);
`;
      const file = env.path('owner.mjs');
      fs.writeFileSync(file, program);
      // A harness process (killed at the end whatever happens); it ignores the hq path argument.
      const owner = env.spawnHq('owner', [], { wrapper: [process.execPath, file] });
      await waitFor(() => fs.existsSync(ready) || owner.status !== null, {
        message: 'the cluster to start',
      });
      const started = JSON.parse(fs.readFileSync(ready, 'utf8')) as {
        server: number;
        workers: number[];
      };
      const pids = [started.server, ...started.workers];
      assert.ok(pids.length >= 2 && pids.every(isAlive), `cluster processes ${pids.join(',')}`);
      // The program alone, not its process group: its cluster must notice by itself.
      process.kill(owner.pid, 'SIGKILL');
      await owner.waitForExit();
      await waitFor(() => pids.every((p) => !isAlive(p)), {
        timeoutMs: 15_000,
        message: `no process of the cluster left (${pids.filter(isAlive).join(',')})`,
      });
    }));
});
