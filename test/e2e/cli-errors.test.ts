import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';

import { HqEnv, withEnv, type CommandResult } from './harness.js';

interface ErrorCase {
  name: string;
  args: string[];
  /** The whole message line (without the trailing newline) must match. */
  message: RegExp;
}

/** Exit code 1, nothing on stdout, exactly one line on stderr, matching `message`. */
function assertOneLineError(r: CommandResult, message: RegExp): void {
  assert.equal(r.code, 1, `exit code of hq ${r.args.join(' ')}`);
  assert.equal(r.stdout, '');
  assert.ok(r.stderr.endsWith('\n'), 'the message ends with a newline');
  const lines = r.stderr.slice(0, -1).split('\n');
  assert.equal(lines.length, 1, `one line, got:\n${r.stderr}`);
  assert.match(lines[0]!, message);
}

void describe('invalid command lines', () => {
  let env: HqEnv;
  let baseline: { jobs: string; workers: string };

  before(async () => {
    env = await HqEnv.create();
    await env.startServer();
    await env.startWorker({ cpus: 1 });
    await env.command(['submit', '--', 'true']);
    await env.waitForJobState(1, 'FINISHED');
    // Needs more cpus than any worker has: stays WAITING for the whole test.
    await env.command(['submit', '--cpus', '4', '--', 'true']);
    await env.waitForJobState(2, 'WAITING');
    baseline = {
      jobs: await env.output(['job', 'list', '--all']),
      workers: await env.output(['worker', 'list', '--all']),
    };
  });

  after(async () => {
    await env?.close();
  });

  async function assertStateUnchanged(): Promise<void> {
    assert.equal(await env.output(['job', 'list', '--all']), baseline.jobs);
    assert.equal(await env.output(['worker', 'list', '--all']), baseline.workers);
  }

  const cases: ErrorCase[] = [
    {
      name: 'an unknown flag of job list',
      args: ['job', 'list', '--foo'],
      message: /^error: unexpected argument '--foo' found$/,
    },
    {
      name: 'an unknown flag of submit',
      args: ['submit', '--foo', '--', 'true'],
      message: /^error: unexpected argument '--foo' found$/,
    },
    {
      name: 'an --array that is not a range',
      args: ['submit', '--array', '1-x', '--', 'true'],
      message: /^Error: .*'1-x'.*$/,
    },
    {
      name: 'an --array with overlapping ranges',
      args: ['submit', '--array', '1-5,3', '--', 'true'],
      message: /^Error: .*'1-5,3'.*(overlap|more than once).*$/,
    },
    {
      name: 'a bad duration',
      args: ['submit', '--time-limit', '1x', '--', 'true'],
      message: /^Error: .*humantime.*unit: "x".*$/,
    },
    {
      name: '--crash-limit 0',
      args: ['submit', '--crash-limit', '0', '--', 'true'],
      message: /^Error: invalid value '0' for '--crash-limit <CRASH_LIMIT>': .*Crash limit 0.*$/,
    },
    {
      name: 'a job id that is not a number',
      args: ['job', 'info', 'abc'],
      message: /^Error: .*'abc'.*$/,
    },
    {
      name: '%{CWD} in --cwd',
      args: ['submit', '--cwd', '%{CWD}/x', '--', 'true'],
      message:
        /^Error: Working directory path cannot contain the working directory placeholder `%\{CWD\}`\.$/,
    },
    {
      name: 'a worker with a sum() cpu resource',
      args: ['worker', 'start', '--detect-resources=none', '--cpus', 'sum(4)'],
      message: /^Error: Resource kind `sum` cannot be used with CPUs\. CPUs must have identity$/,
    },
    {
      name: 'a worker without cpus and without detection',
      args: ['worker', 'start', '--detect-resources=none'],
      message:
        /^Error: You have to specify --cpus explicitly when opting out of CPU automatic detection$/,
    },
  ];

  for (const c of cases) {
    void it(`rejects ${c.name} and leaves the server as it was`, async () => {
      const r = await env.command(c.args, { expectFail: true });
      assertOneLineError(r, c.message);
      await assertStateUnchanged();
    });
  }

  void it('reports errors as {"error": ...} in JSON mode', async () => {
    for (const [args, fragment] of [
      [['submit', '--array', '1-x', '--', 'true'], "'1-x'"],
      [['submit', '--crash-limit', '0', '--', 'true'], 'Crash limit 0 is not allowed'],
      [['job', 'list', '--foo'], '--foo'],
    ] as const) {
      const r = await env.command([...args], { json: true, expectFail: true });
      assert.equal(r.code, 1);
      assert.equal(r.stderr, '');
      assert.deepEqual(Object.keys(r.json as object), ['error']);
      const error = (r.json as { error: unknown }).error;
      assert.equal(typeof error, 'string');
      assert.ok((error as string).includes(fragment), `${String(error)} mentions ${fragment}`);
      assert.ok(!(error as string).includes('\n'), 'one line');
    }
    await assertStateUnchanged();
  });

  void it('names unknown ids without failing, like upstream', async () => {
    const info = await env.command(['job', 'info', '99']);
    assert.equal(info.stdout, '');
    assert.match(info.stderr, /ERROR\s+Job 99 not found\n$/);
    const cancel = await env.command(['job', 'cancel', '99']);
    assert.match(cancel.stderr, /ERROR\s+Canceling job 99 failed; job not found\n$/);
    const finished = await env.command(['job', 'cancel', '1']);
    assert.match(
      finished.stderr,
      /ERROR\s+Canceling job 1 failed; all tasks are already finished\n$/,
    );
    const worker = await env.command(['worker', 'info', '99']);
    assert.match(worker.stderr, /ERROR\s+Worker 99 not found\n$/);
    const json = await env.command(['job', 'info', '99'], { json: true });
    assert.deepEqual(json.json, []);
    await assertStateUnchanged();
  });
});

void describe('commands without a server', () => {
  void it('fail with "No running instance of HQ found"', () =>
    withEnv(async (env) => {
      for (const args of [
        ['job', 'list'],
        ['worker', 'list'],
        ['server', 'info'],
        ['server', 'stop'],
        ['job', 'info', '1'],
        ['submit', '--', 'true'],
      ]) {
        const r = await env.command(args, { expectFail: true });
        assertOneLineError(
          r,
          new RegExp(
            `^Error: No running instance of HQ found at "${env.serverDir}"\\. Try to start the server: \`hq server start --server-dir ${env.serverDir}\` or use a different server directory\\.$`,
          ),
        );
      }
      const json = await env.command(['job', 'list'], { json: true, expectFail: true });
      assert.match((json.json as { error: string }).error, /^No running instance of HQ found at /);
      assert.equal(fs.existsSync(env.serverDir), false, 'a client creates no server directory');
    }));

  void it('fail with "unreachable" when the server died without cleaning up', () =>
    withEnv(async (env) => {
      const server = await env.startServer();
      server.signal('SIGKILL');
      await server.waitForExit();
      const r = await env.command(['job', 'list'], { expectFail: true });
      assertOneLineError(
        r,
        /^Error: Access token found but HQ server 127\.0\.0\.1:\d+ is unreachable/,
      );
      // A new server replaces the stale one.
      await env.startServer();
      assert.equal(
        fs.realpathSync(env.path('hq-server', 'hq-current')),
        fs.realpathSync(env.path('hq-server', '002')),
      );
      await env.command(['job', 'list']);
    }));
});
