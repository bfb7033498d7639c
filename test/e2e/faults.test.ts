/**
 * Faults: workers that die under their tasks, and what the server must still get right (crash
 * limits, instance ids, nothing lost).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { NO_OUTPUT, waitFor, withEnv } from './harness.js';

/**
 * A task that records its instance id, then SIGKILLs the `hq worker` it runs under, with shell
 * builtins only: well within the worker's 2 ms update batching, so the start of the task is
 * never reported. Its parent is the launcher helper, whose parent is the worker; the walk up
 * the tree is the fallback for other launchers.
 */
function workerKiller(instancesFile: string): string[] {
  const script = `echo "$HQ_INSTANCE_ID" >> '${instancesFile}'
read -r _ _ _ w _ < /proc/$PPID/stat
read -r _ comm _ < /proc/$w/stat
if [ "$comm" = "(node)" ]; then kill -9 "$w"; exit 0; fi
p=$PPID
while [ "$p" -gt 1 ]; do
  if tr '\\0' ' ' < /proc/$p/cmdline | grep -q 'worker start'; then kill -9 "$p"; exit 0; fi
  p=$(awk '{print $4}' /proc/$p/stat)
done
exit 1`;
  return ['sh', '-c', script];
}

void describe('faults: workers lost under their tasks', () => {
  void it('a task that kills its worker at once still meets its crash limit, with a new instance each run', () =>
    withEnv(async (env) => {
      const instances = env.path('instances');
      await env.startServer();
      await env.command(['submit', '--crash-limit', '2', '--', ...workerKiller(instances)]);
      const runs = (): string[] =>
        fs.existsSync(instances) ? fs.readFileSync(instances, 'utf8').trim().split('\n') : [];
      for (let run = 1; run <= 2; run++) {
        const w = await env.startWorker({ hostname: `victim${run}`, wait: false });
        await waitFor(() => runs().length >= run, { message: `run ${run} of the task` });
        await w.process.waitForExit();
      }
      await env.waitForJobState(1, 'FAILED');
      assert.deepEqual(runs(), ['0', '1'], 'every run had its own instance id');
      const info = await env.json<{ error: string }[]>(['task', 'info', '1', '0']);
      assert.match(JSON.stringify(info), /limit was reached/);
    }));

  void it('a server frozen longer than the heartbeat timeout keeps its healthy workers', () =>
    withEnv(async (env) => {
      await env.startServer();
      const w = await env.startWorker({ args: ['--heartbeat', '1s'] });
      await env.command(['submit', '--', 'sleep', '3']);
      await env.waitForJobState(1, 'RUNNING');
      env.server!.signal('SIGSTOP');
      // The fault itself: frozen well past the 3 s a 1 s-heartbeat worker may stay silent.
      await new Promise((resolve) => setTimeout(resolve, 5000));
      env.server!.signal('SIGCONT');
      await env.waitForJobState(1, 'FINISHED');
      const rows = await env.workerRows();
      assert.equal(rows.find((r) => r['ID'] === String(w.id))?.['State'], 'RUNNING');
      const tasks = await env.output(['task', 'list', '1']);
      assert.match(tasks, /FINISHED/);
    }));
});

void describe('faults: no orphans', () => {
  // The node fallback (HQ_LAUNCHER=node) has no helper to do this: Node cannot become a
  // child subreaper.
  for (const launcher of ['native', 'perl'] as const) {
    void it(`a SIGKILLed worker takes every process its tasks started with it (${launcher} launcher)`, () =>
      withEnv(async (env) => {
        const server = await env.startServer();
        const w = await env.startWorker({
          cpus: 4,
          ...(launcher === 'perl' ? { env: { HQ_LAUNCHER: 'perl' } } : {}),
        });
        const shapes = [
          'sleep 300 & wait',
          'sleep 300; echo done',
          "trap '' TERM; sleep 300; echo survived",
          'setsid sleep 300 & wait',
        ];
        for (const shape of shapes) {
          await env.command(['submit', '--', 'bash', '-c', shape]);
        }
        for (let job = 1; job <= shapes.length; job++) {
          await env.waitForJobState(job, 'RUNNING');
        }
        const others = new Set([server.pid]);
        const leftovers = (): number[] => env.markedProcesses().filter((pid) => !others.has(pid));
        // The worker, its launcher, four shells and their sleeps.
        await waitFor(() => leftovers().length >= 10, { message: 'every task and its child' });
        // The worker alone, not its process group: its helpers must notice by themselves.
        process.kill(w.process.pid, 'SIGKILL');
        await w.process.waitForExit();
        await waitFor(() => leftovers().length === 0, {
          timeoutMs: 10_000,
          message: 'no process of the killed worker left',
        });
      }));
  }
});

void describe('faults: no orphans when the worker dies mid-write', () => {
  // A helper that is writing to its worker when the worker dies learns of it from a failed
  // write (the pipe closes before the death signal arrives); it used to exit there and leave
  // what the tasks had started. Short tasks keep the helpers writing starts and exits; each
  // leaves a sleep behind, reparented to its helper.
  for (const launcher of ['native', 'perl'] as const) {
    void it(`a worker SIGKILLed while its helpers report takes every task's leftovers with it (${launcher} launcher)`, () =>
      withEnv(async (env) => {
        const server = await env.startServer();
        const w = await env.startWorker({
          cpus: 4,
          ...(launcher === 'perl' ? { env: { HQ_LAUNCHER: 'perl' } } : {}),
        });
        await env.command([
          'submit',
          '--array',
          '1-100000',
          ...NO_OUTPUT,
          '--',
          'sh',
          '-c',
          'sleep 300 & exit 0',
        ]);
        const others = new Set([server.pid]);
        const leftovers = (): number[] => env.markedProcesses().filter((pid) => !others.has(pid));
        await waitFor(() => leftovers().length >= 50, { message: 'tasks to leave sleeps' });
        process.kill(w.process.pid, 'SIGKILL');
        await w.process.waitForExit();
        await waitFor(() => leftovers().length === 0, {
          timeoutMs: 10_000,
          message: 'no process of the killed worker left',
        });
      }));
  }

  void it('tasks started by the C helper get default signal handling (SIGPIPE, SIGINT, SIGTERM)', () =>
    withEnv(async (env) => {
      await env.startServer();
      await env.startWorker();
      await env.command(['submit', '--wait', '--', 'grep', 'SigIgn', '/proc/self/status']);
      const out = fs.readFileSync(env.path('job-1/0.stdout'), 'utf8');
      const mask = BigInt(`0x${/SigIgn:\s*([0-9a-f]+)/.exec(out)?.[1] ?? 'ffff'}`);
      const bit = (signal: number): bigint => 1n << BigInt(signal - 1);
      for (const [name, n] of [
        ['SIGINT', 2],
        ['SIGPIPE', 13],
        ['SIGTERM', 15],
      ] as const) {
        assert.equal(mask & bit(n), 0n, `${name} is not ignored in a task (SigIgn ${out.trim()})`);
      }
    }));
});

void describe('errors a user can act on', () => {
  void it('an access file with another key says so, naming the file; refusals are logged at a bounded rate', () =>
    withEnv(async (env) => {
      const server = await env.startServer();
      const accessPath = path.join(env.serverDir, 'hq-current', 'access.json');
      const access = JSON.parse(fs.readFileSync(accessPath, 'utf8')) as {
        client: { secret_key: string };
        worker: { secret_key: string };
      };
      const otherDir = env.path('other');
      fs.mkdirSync(path.join(otherDir, '001'), { recursive: true });
      access.client.secret_key = '11'.repeat(32);
      access.worker.secret_key = '22'.repeat(32);
      const otherAccess = path.join(otherDir, '001', 'access.json');
      fs.writeFileSync(otherAccess, JSON.stringify(access), { mode: 0o600 });
      fs.symlinkSync('001', path.join(otherDir, 'hq-current'));
      for (let i = 0; i < 15; i++) {
        const r = await env.command(['job', 'list'], { serverDir: otherDir, expectFail: true });
        assert.equal(r.code, 1);
        const lines = r.stderr.trim().split('\n');
        assert.equal(lines.length, 1, r.stderr);
        assert.match(
          lines[0]!,
          /does not accept the client key of .*other\/(hq-current|001)\/access\.json/,
        );
        assert.doesNotMatch(lines[0]!, /SSL|openssl|restart/i);
      }
      const worker = await env.startWorker({ serverDir: otherDir, wait: false });
      const status = await worker.process.waitForExit();
      assert.equal(status.code, 1);
      assert.match(worker.process.stderr(), /does not accept the worker key of .*access\.json/);
      const refused = server
        .stderr()
        .split('\n')
        .filter((l) => l.includes('refused'));
      assert.ok(refused.length >= 1 && refused.length <= 10, `${refused.length} refusal lines`);
    }));

  void it('a read-only output path or stream directory is named with its cause', async (t) => {
    await withEnv(async (env) => {
      const ro = env.path('ro');
      fs.mkdirSync(ro);
      try {
        execFileSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=1m', 'tmpfs', ro], {
          stdio: 'ignore',
        });
      } catch {
        t.skip('needs root to mount a read-only tmpfs');
        return;
      }
      try {
        await env.startServer();
        await env.startWorker();
        const cases: [string[], RegExp][] = [
          [
            ['--stdout', `${ro}/out.txt`],
            /cannot open the stdout file .*ro\/out\.txt: Read-only file system \(os error 30\)/,
          ],
          [
            ['--stdout', `${ro}/sub/out.txt`],
            /Cannot create directory .*ro\/sub: Read-only file system \(os error 30\)/,
          ],
          [
            ['--stream', `${ro}/streams`],
            /Cannot create stream directory .*ro\/streams: Read-only file system \(os error 30\)/,
          ],
          [
            ['--cwd', `${ro}/work`],
            /Cannot create directory .*ro\/work: Read-only file system \(os error 30\)/,
          ],
        ];
        for (const [i, [flags, message]] of cases.entries()) {
          await env.command(['submit', ...flags, '--', 'echo', 'hi']);
          await env.waitForJobState(i + 1, 'FAILED');
          const out = await env.output(['task', 'list', String(i + 1), '--output-mode', 'json']);
          assert.match(out, message);
        }
      } finally {
        execFileSync('umount', [ro], { stdio: 'ignore' });
      }
    });
  });
});
