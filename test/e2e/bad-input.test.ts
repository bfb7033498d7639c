/**
 * Bad input to `hq submit`, `hq job submit-file` and friends: each is refused with one clear line
 * on stderr and exit code 1, and the server's jobs are exactly as they were before.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';

import { HqEnv, horizontalTable, type CommandResult } from './harness.js';

/** Exit code 1, nothing on stdout, exactly one line on stderr, matching `message`. */
function assertOneLineError(r: CommandResult, message: RegExp): void {
  assert.equal(r.code, 1, `exit code of hq ${r.args.join(' ')}`);
  assert.equal(r.stdout, '');
  assert.ok(r.stderr.endsWith('\n'), 'the message ends with a newline');
  const lines = r.stderr.slice(0, -1).split('\n');
  assert.equal(lines.length, 1, `one line, got:\n${r.stderr}`);
  assert.match(lines[0]!, message);
}

interface BadCase {
  name: string;
  args: string[];
  message: RegExp;
}

void describe('bad input', () => {
  let env: HqEnv;
  let baseline: string;

  before(async () => {
    env = await HqEnv.create();
    await env.startServer();
    await env.startWorker({ cpus: 1 });
    await env.command(['submit', '--', 'true']);
    await env.waitForJobState(1, 'FINISHED');
    // Needs more cpus than the worker has: stays WAITING for the whole test.
    await env.command(['submit', '--cpus', '4', '--', 'true']);
    await env.waitForJobState(2, 'WAITING');
    baseline = await env.output(['job', 'list', '--all']);

    fs.writeFileSync(env.path('object.json'), '{"entries": [1, 2]}\n');
    fs.writeFileSync(
      env.path('unknown-key.toml'),
      '[[task]]\ncommand = ["true"]\ncolour = "blue"\n',
    );
    fs.writeFileSync(
      env.path('cycle.toml'),
      [
        '[[task]]',
        'id = 1',
        'deps = [3]',
        'command = ["true"]',
        '[[task]]',
        'id = 2',
        'deps = [1]',
        'command = ["true"]',
        '[[task]]',
        'id = 3',
        'deps = [2]',
        'command = ["true"]',
        '',
      ].join('\n'),
    );
  });

  after(async () => {
    await env?.close();
  });

  async function assertJobsUnchanged(): Promise<void> {
    assert.equal(await env.output(['job', 'list', '--all']), baseline);
  }

  const cases: BadCase[] = [
    {
      name: 'an --array bound that is not a number',
      args: ['submit', '--array', '1-x', '--', 'true'],
      message: /^Error: .*'1-x'.*$/,
    },
    {
      name: 'an --array range that goes backwards',
      args: ['submit', '--array', '5-1', '--', 'true'],
      message: /^Error: .*'5-1'.*$/,
    },
    {
      name: 'an --array with overlapping parts',
      args: ['submit', '--array', '1-5,3', '--', 'true'],
      message: /^Error: .*'1-5,3'.*(overlap|more than once).*$/,
    },
    {
      name: 'a --time-limit with an unknown unit',
      args: ['submit', '--time-limit', '1x', '--', 'true'],
      message: /^Error: invalid value '1x' for '--time-limit <TIME_LIMIT>': .*$/,
    },
    {
      name: 'a --time-request that is not a duration',
      args: ['submit', '--time-request', 'soon', '--', 'true'],
      message: /^Error: invalid value 'soon' for '--time-request <TIME_REQUEST>': .*$/,
    },
    {
      name: 'a missing --each-line file',
      args: ['submit', '--each-line', 'no-such-lines.txt', '--', 'true'],
      message: /^Error: .*no-such-lines\.txt.*No such file or directory.*$/,
    },
    {
      name: 'a --from-json file whose root is not an array',
      args: ['submit', '--from-json', 'object.json', '--', 'true'],
      message: /^Error: .*The top element of the provided JSON file has to be an array$/,
    },
    {
      name: '--crash-limit 0',
      args: ['submit', '--crash-limit', '0', '--', 'true'],
      message: /^Error: invalid value '0' for '--crash-limit <CRASH_LIMIT>': .*$/,
    },
    {
      name: 'a --priority that is not a number',
      args: ['submit', '--priority', 'high', '--', 'true'],
      message: /^Error: invalid value 'high' for '--priority <PRIORITY>': .*$/,
    },
    {
      name: 'a --cpus request with an unknown policy',
      args: ['submit', '--cpus', '2 unknown-policy', '--', 'true'],
      message: /^Error: .*'2 unknown-policy'.*unknown-policy.*$/,
    },
    {
      name: 'a --resource request of zero',
      args: ['submit', '--resource', 'foo=0', '--', 'true'],
      message: /^Error: .*'foo=0'.*Zero resources cannot be requested$/,
    },
    {
      name: 'a job file with an unknown key',
      args: ['job', 'submit-file', 'unknown-key.toml'],
      message: /^Error: .*unknown field `colour`.*$/,
    },
    {
      name: 'a job file with a dependency cycle',
      args: ['job', 'submit-file', 'cycle.toml'],
      message: /^Error: Task \d is part of dependency cycle or has an invalid dependencies$/,
    },
    {
      name: 'an --array too large for one job (before anything is created)',
      args: ['submit', '--array', '1-100000000', '--stdout', 'none', '--stderr', 'none', 'true'],
      message:
        /^Error: A job can hold at most 16000000 tasks; this submit would give job 3 100000000\./,
    },
    {
      name: '`hq task notify` outside of a task',
      args: ['task', 'notify', 'hello'],
      message: /^Error: .*HQ_ACCESS_KEY.*task.*$/,
    },
  ];

  for (const c of cases) {
    void it(`refuses ${c.name}, and no job appears`, async () => {
      const r = await env.command(c.args, { expectFail: true });
      assertOneLineError(r, c.message);
      await assertJobsUnchanged();
    });
  }

  void it('logs cancel, forget and close of an unknown job and exits 0, like upstream', async () => {
    const lines = async (args: string[]): Promise<string[]> => {
      const r = await env.command(args);
      assert.equal(r.code, 0);
      assert.equal(r.stdout, '');
      return r.stderr
        .trimEnd()
        .split('\n')
        .map((l) => l.replace(/^\S+Z\s+/, ''));
    };
    assert.deepEqual(await lines(['job', 'cancel', '77']), [
      'ERROR Canceling job 77 failed; job not found',
    ]);
    assert.deepEqual(await lines(['job', 'forget', '77']), [
      'INFO 0 jobs were forgotten, 1 were ignored due to wrong state or invalid ID',
    ]);
    assert.deepEqual(await lines(['job', 'close', '77']), [
      'ERROR Closing job 77 failed; job not found',
    ]);
    // Closing a job that was never open is refused the same way.
    assert.deepEqual(await lines(['job', 'close', '1']), [
      'ERROR Closing job 1 failed; job is already closed',
    ]);
    await assertJobsUnchanged();
  });

  void it('warns about an unknown placeholder by name and still submits the job', async () => {
    const r = await env.command([
      'submit',
      '--stdout',
      'out/%{FOO}.txt',
      '--stderr',
      'none',
      '--',
      'echo',
      'placeholder',
    ]);
    assert.match(r.stdout, /^Job submitted successfully, job ID: 3\n$/);
    assert.match(r.stderr, /WARN .*unknown placeholder `FOO` in stdout path/);
    await env.waitForJobState(3, 'FINISHED');
    // The placeholder is left as it is.
    assert.equal(fs.readFileSync(env.path('out', '%{FOO}.txt'), 'utf8'), 'placeholder\n');
    const rows = horizontalTable(await env.output(['job', 'list', '--all']));
    assert.deepEqual(
      rows.map((row) => row['ID']),
      ['1', '2', '3'],
    );
  });
});
