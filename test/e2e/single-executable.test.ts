/**
 * The single executable (`npm run dist`: dist/hq-<platform>-<arch>, Node's single-executable
 * application of the bundle) and its release tarball. A representative subset of the e2e suite
 * runs against it twice: as it is, and on a machine with no Node at all (a mount namespace in
 * which every `node` is an empty file; root only). The executable is built here when it is
 * missing or older than dist/hq (about 20 s, most of it postject and gzip).
 * The whole suite runs against it with `HQ_TEST_BIN=$PWD/dist/hq-linux-x64 npm test`.
 *
 * Every `hq` the harness starts here goes through a small wrapper script (the harness's
 * HQ_TEST_BIN) that execs the executable, through `nsenter` into the node-less namespace while
 * $HQSE_NAMESPACE names it: so servers, workers, their task launchers, tasks and the fake
 * batch system all run there.
 */
import { after, before, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';

import { splitShellWords } from '../../src/common/directives.js';
import type { HqEnv } from './harness.js';

import { EXE, buildIfStale, buildSkipReason, bundleVersion, tarballPath } from './executable.js';

const NAMESPACE_VAR = 'HQSE_NAMESPACE';

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'hq-sea-'));
const WRAPPER = path.join(scratch, 'hq');
fs.writeFileSync(
  WRAPPER,
  `#!/bin/sh
# single-executable.test.ts: hq is the single executable, in the node-less namespace if asked.
if [ -n "$${NAMESPACE_VAR}" ]; then
  exec nsenter --mount="$${NAMESPACE_VAR}" --wd="$(pwd -P)" -- '${EXE}' "$@"
fi
exec '${EXE}' "$@"
`,
  { mode: 0o755 },
);
process.env['HQ_TEST_BIN'] = WRAPPER;
// After HQ_TEST_BIN is set: the harness reads it once, when loaded.
const { HQ_BIN, WaitAbort, childNames, horizontalTable, read, waitFor, withEnv } =
  await import('./harness.js');
const { FakeBatchSystem, QUICK_AUTOALLOC } = await import('./fake-batch.js');

const skip = buildSkipReason();

const version = skip === undefined ? bundleVersion() : '';
const TARBALL = skip === undefined ? tarballPath() : '';

const hasCompiler = spawnSync('cc', ['--version']).status === 0;

interface TaskJson {
  id: number;
  state: string;
  error?: string | null;
}

/** One request and its reply through `hq api`, the Python package's bridge. */
class Bridge {
  private readonly child: ChildProcess;
  private readonly replies: unknown[] = [];
  private readonly waiting: ((r: unknown) => void)[] = [];
  readonly exited: Promise<number | null>;

  constructor(env: HqEnv) {
    this.child = spawn(HQ_BIN, ['--server-dir', env.serverDir, 'api'], {
      cwd: env.dir,
      env: env.processEnv(),
      stdio: ['pipe', 'pipe', 'ignore'],
    });
    this.exited = new Promise((resolve) => this.child.once('exit', resolve));
    readline.createInterface({ input: this.child.stdout! }).on('line', (line) => {
      const reply: unknown = JSON.parse(line);
      const w = this.waiting.shift();
      if (w === undefined) {
        this.replies.push(reply);
      } else {
        w(reply);
      }
    });
  }

  next(): Promise<unknown> {
    return this.replies.length > 0
      ? Promise.resolve(this.replies.shift())
      : new Promise((resolve) => this.waiting.push(resolve));
  }

  send(request: unknown): Promise<unknown> {
    this.child.stdin!.write(`${JSON.stringify(request)}\n`);
    return this.next();
  }

  end(): void {
    this.child.stdin!.end();
  }
}

/**
 * The subset: `--version`, a server and a worker (whose C task launcher the executable compiles
 * itself), an array job waited for, the job list in JSON, task output (each task runs `$HQ`,
 * which must be the executable), a failing task, and a job submitted and waited for through
 * `hq api`. `node` says whether tasks can run Node.
 */
async function runJobs(env: HqEnv, node: 'yes' | 'no'): Promise<void> {
  assert.equal(
    (await env.output(['--version'], { serverDir: null })).trim(),
    version,
    'hq --version',
  );
  await env.startServer();
  const cache = env.path('cache');
  const worker = await env.startWorker({ cpus: 2, env: { XDG_CACHE_HOME: cache } });
  if (hasCompiler) {
    await waitFor(() => childNames(worker.process.pid).some((n) => n.startsWith('launcher-')), {
      message: 'the C task launcher to run',
    });
    assert.ok(
      fs.readdirSync(path.join(cache, 'hq')).some((f) => f.startsWith('launcher-')),
      'the C launcher compiled into XDG_CACHE_HOME',
    );
  }

  const script =
    'echo "task $HQ_TASK_ID"; echo "hq $HQ"; "$HQ" --version; ' +
    'if node -e 0 2>/dev/null; then echo node yes; else echo node no; fi';
  await env.command(['submit', '--wait', '--array', '1-4', '--', 'bash', '-c', script]);
  const [listed] = await env.json<{ id: number; task_count: number; task_stats: object }[]>([
    'job',
    'list',
    '--all',
  ]);
  assert.equal(listed?.id, 1);
  assert.equal(listed.task_count, 4);
  assert.deepEqual(listed.task_stats, {
    aborted: 0,
    canceled: 0,
    failed: 0,
    finished: 4,
    running: 0,
    waiting: 0,
  });
  for (const id of [1, 2, 3, 4]) {
    assert.equal(
      read(env.path('job-1', `${id}.stdout`)),
      `task ${id}\nhq ${EXE}\n${version}\nnode ${node}\n`,
    );
  }

  await env.command(['submit', '--', 'bash', '-c', 'echo doomed >&2; exit 3']);
  await env.waitForJobState(2, 'FAILED');
  const [failed] = await env.json<{ tasks: TaskJson[] }[]>(['job', 'info', '2']);
  assert.deepEqual(
    failed?.tasks.map((t) => [t.state, t.error]),
    [['failed', 'Program terminated with exit code 3.']],
  );
  assert.equal(read(env.path('job-2', '0.stderr')), 'doomed\n');

  const bridge = new Bridge(env);
  try {
    assert.equal(((await bridge.next()) as { ready?: boolean }).ready, true);
    const job = {
      tasks: [{ id: 0, args: ['bash', '-c', 'echo from the api'] }],
      submitDir: env.dir,
    };
    assert.deepEqual(await bridge.send({ id: 1, op: 'submit', job }), {
      id: 1,
      ok: true,
      data: { jobId: 3 },
    });
    assert.deepEqual(await bridge.send({ id: 2, op: 'wait', jobs: [3] }), {
      id: 2,
      ok: true,
      data: { failed: [] },
    });
  } finally {
    bridge.end();
  }
  assert.equal(await bridge.exited, 0);
  assert.equal(await env.jobState(3), 'FINISHED');
}

/** `hq doc` finds the pages of the unpacked tarball next to the executable, also through PATH. */
function unpackTarball(env: HqEnv): Promise<void> {
  const listing = execFileSync('tar', ['-tzf', TARBALL], { encoding: 'utf8' }).split('\n');
  for (const entry of ['hq', 'LICENSE', 'README.md', 'docs/index.md', 'docs/jobs.md']) {
    assert.ok(listing.includes(entry), `${entry} in ${TARBALL}:\n${listing.join('\n')}`);
  }
  const unpacked = env.path('unpacked');
  fs.mkdirSync(unpacked);
  execFileSync('tar', ['-xzf', TARBALL, '-C', unpacked]);
  // Run as `hq`, found on PATH through a symlink, from another directory.
  const bin = env.path('bin-on-path');
  fs.mkdirSync(bin);
  fs.symlinkSync(path.join(unpacked, 'hq'), path.join(bin, 'hq'));
  const sh = (command: string): string =>
    execFileSync('sh', ['-c', command], {
      cwd: env.dir,
      encoding: 'utf8',
      env: { ...env.processEnv(), PATH: `${bin}:${process.env['PATH'] ?? ''}` },
    }).trim();
  const prefix = process.env[NAMESPACE_VAR] === undefined ? '' : nsenterPrefix();
  assert.equal(sh(`${prefix}hq --version`), version);
  assert.equal(sh(`${prefix}hq doc job`), path.join(unpacked, 'docs', 'jobs.md'));
  return Promise.resolve();
}

/** `nsenter ... ` for a shell command line that must run in the node-less namespace. */
function nsenterPrefix(): string {
  return `nsenter --mount=${process.env[NAMESPACE_VAR]} --wd="$(pwd -P)" -- `;
}

/** autoalloc writes the executable itself into the sbatch script, and that command works. */
async function autoalloc(env: HqEnv): Promise<void> {
  const fake = new FakeBatchSystem(env.path('fake-slurm'));
  await env.startServer([], { env: fake.env('server', QUICK_AUTOALLOC) });
  const client = { env: fake.env('client') };
  await env.command(['alloc', 'add', 'slurm', '--time-limit', '1h'], client);
  await env.command(['submit', '--', 'true'], client);
  // The allocation as the server lists it: sbatch has answered, so its script is in place.
  const id = await waitFor(
    async () => horizontalTable(await env.output(['alloc', 'info', '1'], client))[0]?.['ID'],
    { message: 'an allocation submitted to the fake sbatch' },
  );
  const command = splitShellWords(fake.script(id).trimEnd().split('\n').pop()!);
  assert.deepEqual(command.slice(0, 3), [EXE, 'worker', 'start']);
  env.spawnHq('alloc-worker', command.slice(1), { env: fake.env('worker', { SLURM_JOB_ID: id }) });
  await env.waitForJobState(1, 'FINISHED');
}

/** A process in a new mount namespace where every `node` is an empty file; holds it open. */
class NodelessNamespace {
  private readonly holder: ChildProcess;
  /** The namespace, for `nsenter --mount=`. */
  readonly path: string;

  private constructor(holder: ChildProcess) {
    this.holder = holder;
    this.path = `/proc/${holder.pid}/ns/mnt`;
  }

  /** Why there can be none here, or undefined. */
  static unavailable(): string | undefined {
    if (process.getuid?.() !== 0) {
      return 'a mount namespace without node needs root';
    }
    for (const tool of ['unshare', 'nsenter']) {
      if (spawnSync(tool, ['--version']).status !== 0) {
        return `${tool} (util-linux) is not installed`;
      }
    }
    return undefined;
  }

  /** Every file that may run as `node`: on PATH, the usual places, and this test's Node. */
  static nodes(): string[] {
    const dirs = (process.env['PATH'] ?? '').split(':').filter((d) => d !== '');
    const candidates = [
      process.execPath,
      ...['/usr/bin', '/usr/local/bin', '/bin', ...dirs].flatMap((d) => [
        path.join(d, 'node'),
        path.join(d, 'nodejs'),
      ]),
    ];
    const real = new Set<string>();
    for (const c of candidates) {
      try {
        real.add(fs.realpathSync(c));
      } catch {
        // not there
      }
    }
    return [...real];
  }

  static async start(empty: string): Promise<NodelessNamespace> {
    fs.writeFileSync(empty, '', { mode: 0o644 });
    // Mounts the empty file over each node, then waits on stdin: the namespace ends with this
    // test process even when it is killed.
    const script =
      'empty=$1; shift; for n in "$@"; do mount --bind "$empty" "$n" || exit 1; done; ' +
      'echo masked; exec cat >/dev/null';
    const holder = spawn(
      'unshare',
      [
        '--mount',
        '--propagation',
        'private',
        '--',
        'sh',
        '-c',
        script,
        'sh',
        empty,
        ...this.nodes(),
      ],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    const output: string[] = [];
    holder.stdout.on('data', (d: Buffer) => output.push(d.toString()));
    holder.stderr.on('data', (d: Buffer) => output.push(d.toString()));
    let exited = false;
    holder.once('exit', () => (exited = true));
    await waitFor(
      () => {
        if (exited) {
          throw new WaitAbort(`unshare failed: ${output.join('')}`);
        }
        return output.join('').includes('masked');
      },
      { message: 'the node-less mount namespace' },
    );
    return new NodelessNamespace(holder);
  }

  /** Runs a shell command inside; its exit status and output. */
  run(command: string): { status: number | null; output: string } {
    const r = spawnSync('nsenter', [`--mount=${this.path}`, '--', 'sh', '-c', command], {
      encoding: 'utf8',
    });
    return { status: r.status, output: `${r.stdout}${r.stderr}` };
  }

  close(): void {
    this.holder.stdin!.end();
    this.holder.kill();
  }
}

before(() => {
  if (skip === undefined) {
    buildIfStale();
  }
});
after(() => fs.rmSync(scratch, { recursive: true, force: true }));

void describe('the single executable', { skip }, () => {
  void it('runs servers, workers, jobs, failures and hq api', () =>
    withEnv((env) => runJobs(env, 'yes')));

  void it('is unpacked from the tarball with LICENSE, README and the docs hq doc finds', () =>
    withEnv(unpackTarball));

  void it('writes itself into the scripts of automatic allocation', () => withEnv(autoalloc));
});

void describe('the single executable on a machine with no Node', { skip }, () => {
  let ns: NodelessNamespace | null = null;
  let unavailable = NodelessNamespace.unavailable();

  before(async () => {
    if (unavailable === undefined) {
      try {
        ns = await NodelessNamespace.start(path.join(scratch, 'not-node'));
        process.env[NAMESPACE_VAR] = ns.path;
      } catch (e) {
        // Root in a container may still be refused mount namespaces.
        unavailable = `no mount namespace here: ${(e as Error).message}`;
      }
    }
  });
  after(() => {
    delete process.env[NAMESPACE_VAR];
    ns?.close();
  });

  /** The test, inside the namespace; skipped with the reason when there can be none. */
  const inside =
    (body: (env: HqEnv) => Promise<void>) =>
    (t: TestContext): Promise<void> | undefined => {
      if (ns === null) {
        t.skip(unavailable);
        return undefined;
      }
      return withEnv(body);
    };

  void it('cannot run node there', (t) => {
    if (ns === null) {
      t.skip(unavailable);
      return;
    }
    const nodes = NodelessNamespace.nodes().map((n) => `'${n}' -e 0`);
    for (const command of ['node -e 0', '/usr/bin/env node -e 0', ...nodes]) {
      const r = ns.run(command);
      assert.notEqual(r.status, 0, `${command} ran inside the namespace: ${r.output}`);
    }
    // Nor is any runnable node left on PATH.
    const onPath = ns.run(
      'IFS=:; for d in $PATH; do for n in node nodejs; do [ -x "$d/$n" ] && echo "$d/$n"; done; done; true',
    );
    assert.equal(onPath.output, '');
    assert.equal(ns.run(`'${EXE}' --version`).output.trim(), version);
  });

  void it(
    'runs servers, workers, jobs, failures and hq api',
    inside((env) => runJobs(env, 'no')),
  );

  void it('runs from the unpacked tarball', inside(unpackTarball));

  void it('writes itself into the scripts of automatic allocation', inside(autoalloc));
});
