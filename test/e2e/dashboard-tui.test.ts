/**
 * The terminal dashboard under tmux (a private socket, a 120x40 pane): a real server with two
 * workers and three jobs, keys that switch screens and move time, quitting that gives the
 * terminal back, a server stop that ends the dashboard, and a replay of a journal with no server.
 */
import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';

import { HQ_BIN, NO_OUTPUT, waitFor, withEnv, type HqEnv } from './harness.js';

const HAS_TMUX = spawnSync('tmux', ['-V']).status === 0;

class Tmux {
  readonly socket = `hqdash${randomBytes(4).toString('hex')}`;

  run(...args: string[]): string {
    return execFileSync('tmux', ['-L', this.socket, '-f', '/dev/null', ...args], {
      encoding: 'utf8',
      timeout: 10_000,
    });
  }

  /** A pane running `command` in sh, kept after it exits; the shell's last lines stay readable. */
  start(command: string, env: HqEnv): void {
    this.run(
      'new-session',
      '-d',
      '-s',
      'd',
      '-x',
      '120',
      '-y',
      '40',
      '-e',
      `HQ_SERVER_DIR=${env.serverDir}`,
      `${command}; echo "EXITED $?"; stty -a | tr ' ' '\\n' | grep -x -e icanon -e -icanon; sleep 60`,
    );
  }

  screen(): string {
    return this.run('capture-pane', '-t', 'd', '-p');
  }

  keys(...keys: string[]): void {
    this.run('send-keys', '-t', 'd', ...keys);
  }

  async waitFor(pattern: RegExp, message: string): Promise<string> {
    let last = '';
    try {
      return await waitFor(
        () => {
          last = this.screen();
          return pattern.test(last) ? last : undefined;
        },
        { timeoutMs: 15_000, message },
      );
    } catch (e) {
      throw new Error(`${(e as Error).message}; the screen was:\n${last}`);
    }
  }

  kill(): void {
    try {
      this.run('kill-server');
    } catch {
      // already gone
    }
  }
}

async function withTmux(t: TestContext, body: (tmux: Tmux) => Promise<void>): Promise<void> {
  if (!HAS_TMUX) {
    t.skip('needs tmux (apt-get install tmux)');
    return;
  }
  const tmux = new Tmux();
  try {
    await body(tmux);
  } finally {
    tmux.kill();
  }
}

async function threeJobs(env: HqEnv): Promise<void> {
  await env.command(['submit', '--name', 'quick', '--array', '1-20', ...NO_OUTPUT, '--', 'true']);
  await env.command(['submit', '--name', 'broken', ...NO_OUTPUT, '--', 'false']);
  await env.command(['submit', '--name', 'longrun', ...NO_OUTPUT, '--', 'sleep', '300']);
  await env.waitForJobState(1, 'FINISHED');
  await env.waitForJobState(2, 'FAILED');
  await env.waitForJobState(3, 'RUNNING');
}

void describe('hq dashboard (terminal)', () => {
  void it('shows jobs, workers and a worker, moves in time, and gives the terminal back on q', (t) =>
    withTmux(t, (tmux) =>
      withEnv(async (env) => {
        await env.startServer(['--journal', env.path('journal')]);
        await env.startWorker({ cpus: 2, hostname: 'alpha' });
        await env.startWorker({ cpus: 1, hostname: 'beta' });
        await threeJobs(env);
        tmux.start(`${HQ_BIN} dashboard`, env);
        const jobs = await tmux.waitFor(/longrun/, 'the jobs screen');
        assert.match(jobs, /\[Jobs\]/);
        assert.match(jobs, /\[stream\]/);
        assert.match(jobs, /quick\s.*20\/20/);
        assert.match(jobs, /broken/);
        assert.match(jobs, /Tasks <2> \(20 started or ended, 0 waiting\)/);
        // The running job's task, selected in the tasks table.
        tmux.keys('Down', 'Down', '2');
        await tmux.waitFor(/Tasks <2> \(1 started or ended/, 'job 3 selected');
        await tmux.waitFor(/running/, 'the running task');
        tmux.keys('w');
        const workers = await tmux.waitFor(/Worker list \(2\)/, 'the workers screen');
        assert.match(workers, /alpha\s+online/);
        assert.match(workers, /beta\s+online/);
        tmux.keys('i');
        await tmux.waitFor(/Worker 1 .*Backspace/, 'the worker detail');
        await tmux.waitFor(/Worker Configuration/, 'the configuration panel');
        await tmux.waitFor(
          /Worker Managed Utilization \(\d+ CPUs\), Avg CPU/,
          'the per-core table',
        );
        tmux.keys('c');
        await tmux.waitFor(/Worker Assigned Utilization/, 'the assigned-CPU view');
        tmux.keys('c');
        await tmux.waitFor(/Worker Managed Utilization/, 'back to the managed view');
        tmux.keys('BSpace');
        await tmux.waitFor(/Worker list \(2\)/, 'back to the list');
        tmux.keys('a');
        await tmux.waitFor(/Allocation Queues <1>/, 'the autoalloc screen');
        const before = /(\d\d:\d\d:\d\d) - (\d\d:\d\d:\d\d)/.exec(tmux.screen());
        assert.ok(before);
        tmux.keys('k');
        await tmux.waitFor(/\(5m\) \[stream\]/, 'zoomed in to 5 minutes');
        tmux.keys('o');
        await tmux.waitFor(/\(5m\) \[stream\]/, 'still 5 minutes, earlier');
        tmux.keys('r');
        await tmux.waitFor(/\(10m\) \[stream\]/, 'back to live');
        tmux.keys('q');
        const after = await tmux.waitFor(/EXITED \d+\s+-?icanon\b/, 'the dashboard to exit');
        assert.match(after, /EXITED 0/);
        assert.match(after, /^icanon$/m, 'the terminal is back in canonical mode');
        assert.doesNotMatch(after, /Worker list/, 'the alternate screen is left');
      }),
    ));

  void it('ends and gives the terminal back when the server stops', (t) =>
    withTmux(t, (tmux) =>
      withEnv(async (env) => {
        await env.startServer();
        tmux.start(`${HQ_BIN} dashboard`, env);
        await tmux.waitFor(/does not use a journal/, 'the no-journal warning');
        tmux.keys('x');
        await tmux.waitFor(/\[Jobs\]/, 'the warning closed by a key');
        await env.command(['server', 'stop']);
        const after = await tmux.waitFor(/EXITED \d+\s+-?icanon\b/, 'the dashboard to exit');
        assert.match(after, /EXITED 0/);
        assert.match(after, /^icanon$/m);
      }),
    ));

  void it('replays a journal with no server running', (t) =>
    withTmux(t, (tmux) =>
      withEnv(async (env) => {
        const journal = env.path('journal');
        await env.startServer(['--journal', journal]);
        await env.startWorker({ cpus: 2, hostname: 'alpha' });
        await threeJobs(env);
        await env.command(['server', 'stop']);
        await env.server!.waitForExit();
        tmux.start(`${HQ_BIN} dashboard replay ${journal}`, env);
        const jobs = await tmux.waitFor(/longrun/, 'the replayed jobs');
        assert.match(jobs, /\[replay\]/);
        assert.match(jobs, /quick\s.*20\/20/);
        tmux.keys('w');
        await tmux.waitFor(/alpha\s+offline: stopped/, 'the worker, stopped with its server');
        tmux.keys('q');
        assert.match(await tmux.waitFor(/EXITED \d+\s+-?icanon\b/, 'the exit'), /EXITED 0/);
      }),
    ));

  void it('refuses a missing journal or a non-terminal with one line and exit code 1', () =>
    withEnv(async (env) => {
      const missing = await env.command(['dashboard', 'replay', env.path('nope')], {
        expectFail: true,
      });
      assert.match(missing.stderr, /Cannot open event log file at .*nope.*: not found/);
      await env.startServer();
      const piped = await env.command(['dashboard'], { expectFail: true });
      assert.match(piped.stderr, /hq dashboard needs a terminal/);
    }));
});
