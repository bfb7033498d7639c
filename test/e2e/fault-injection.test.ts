/**
 * Fault injection: real workers and a real server killed, frozen, cut off and starved of disk in
 * the middle of real work, and afterwards a ledger check of every task.
 *
 * Every task appends `<task> <instance> s` when it starts and `<task> <instance> d` when its
 * work is done to one ledger file, and keeps a `sleep 60` in the background that it kills itself
 * when it ends normally: any run cut short by a fault leaves that sleep behind unless hq takes
 * it down. The ledger check then asks, for every task: did it end finished, or failed for a
 * stated reason; did no instance id start twice; did the server's final instance really run to
 * the end; is the crash count (here every re-run is a crash) within the limit, and exactly at it
 * for a task failed by it; is no process of any run left.
 *
 * The random faults come from a seeded generator: HQ_FAULT_SEED=<n> replays a run.
 */
import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

import {
  descendants,
  isAlive,
  waitFor,
  withEnv,
  type HqEnv,
  type WorkerHandle,
} from './harness.js';

const CRASH_LIMIT = 3;
/** Lost after 2 x 1 s + 1 s of silence on the server's side. */
const HEARTBEAT = '1s';

/** mulberry32: small, seedable, good enough to pick faults. */
function generator(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The task program: a ledger line at the start and at the end, a background sleep as the
 * orphan probe, and work of 20 ms (2 s for every 100th task). Tasks in `killers` SIGKILL their
 * own worker the first time they run (the worker is found up the process tree) and exit at once,
 * leaving the probe to be taken down with the worker. The first run need not be instance 0: a
 * task sent to a worker that a fault killed before it started counts as having run.
 */
function ledgerTask(
  ledger: string,
  killers: number[] = [],
  work = 'if [ $((HQ_TASK_ID % 100)) = 50 ]; then sleep 2; else sleep 0.02; fi',
): string[] {
  const killerTest = killers.map((k) => `[ "$HQ_TASK_ID" = ${k} ]`).join(' || ');
  const script = `sleep 60 & probe=$!
echo "$HQ_TASK_ID $HQ_INSTANCE_ID s" >> '${ledger}'
if { ${killerTest === '' ? 'false' : killerTest}; } && mkdir '${ledger}.killed-'$HQ_TASK_ID 2>/dev/null; then
  p=$PPID
  while [ "$p" -gt 1 ]; do
    if tr '\\0' ' ' < /proc/$p/cmdline | grep -q 'worker start'; then kill -9 "$p"; exit 0; fi
    p=$(awk '{print $4}' /proc/$p/stat)
  done
fi
${work}
echo "$HQ_TASK_ID $HQ_INSTANCE_ID d" >> '${ledger}'
kill $probe`;
  return ['sh', '-c', script];
}

interface LedgerEntry {
  starts: number[];
  done: Set<number>;
}

function readLedger(file: string): Map<number, LedgerEntry> {
  const out = new Map<number, LedgerEntry>();
  const text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
  for (const line of text.split('\n')) {
    if (line === '') {
      continue;
    }
    const m = /^(\d+) (\d+) ([sd])$/.exec(line);
    assert.ok(m, `ledger line ${JSON.stringify(line)}`);
    const [task, instance] = [Number(m[1]), Number(m[2])];
    let entry = out.get(task);
    if (entry === undefined) {
      entry = { starts: [], done: new Set() };
      out.set(task, entry);
    }
    if (m[3] === 's') {
      entry.starts.push(instance);
    } else {
      entry.done.add(instance);
    }
  }
  return out;
}

function doneCount(file: string): number {
  let n = 0;
  for (const entry of readLedger(file).values()) {
    n += entry.done.size > 0 ? 1 : 0;
  }
  return n;
}

interface TaskJson {
  id: number;
  state: string;
  stdout: string | null;
  error?: string;
}

interface LedgerVerdict {
  finished: number;
  failedByCrashLimit: number;
  reruns: number;
}

/**
 * Checks every task of `jobId` against the ledger. The final instance id is read from the
 * task's stdout path (`out/<task>.<instance>`).
 */
async function checkLedger(
  env: HqEnv,
  jobId: number,
  ledger: string,
  tasks: number,
  extra: (task: TaskJson, instance: number, entry: LedgerEntry) => void = () => undefined,
): Promise<LedgerVerdict> {
  const listed = await env.json<Record<string, TaskJson[]>>(['task', 'list', String(jobId)]);
  const rows = listed[String(jobId)] ?? [];
  assert.equal(rows.length, tasks, 'every task is listed');
  const entries = readLedger(ledger);
  const verdict: LedgerVerdict = { finished: 0, failedByCrashLimit: 0, reruns: 0 };
  for (const task of rows) {
    const where = `task ${task.id}`;
    const m = /\/out\/(\d+)\.(\d+)$/.exec(task.stdout ?? '');
    assert.ok(m && Number(m[1]) === task.id, `${where}: stdout path ${task.stdout}`);
    const instance = Number(m[2]);
    const entry = entries.get(task.id) ?? { starts: [], done: new Set<number>() };
    assert.equal(
      new Set(entry.starts).size,
      entry.starts.length,
      `${where}: an instance id started twice (${entry.starts.join(',')})`,
    );
    assert.ok(
      entry.starts.every((i) => i <= instance),
      `${where}: ran as instance ${Math.max(...entry.starts)} beyond the final ${instance}`,
    );
    // Every re-run in these runs is a crash, so the crash count is the final instance id.
    if (task.state === 'finished') {
      assert.ok(
        entry.done.has(instance),
        `${where}: finished, but instance ${instance} never ended`,
      );
      assert.ok(instance < CRASH_LIMIT, `${where}: finished after ${instance} crashes`);
      verdict.finished++;
    } else {
      assert.equal(task.state, 'failed', `${where}: state`);
      assert.match(task.error ?? '', /limit was reached/, `${where}: failure reason`);
      assert.equal(instance, CRASH_LIMIT - 1, `${where}: failed by the crash limit at instance`);
      verdict.failedByCrashLimit++;
    }
    verdict.reruns += instance;
    extra(task, instance, entry);
  }
  return verdict;
}

/**
 * Submits `array` of ledger tasks (`task`: the program) with the crash limit and each
 * instance's stdout at `out/<task>.<instance>`, where `checkLedger` reads the final instance.
 */
async function submitLedgerJob(
  env: HqEnv,
  array: string,
  stderr: string,
  task: string[],
): Promise<void> {
  fs.mkdirSync(env.path('out'), { recursive: true });
  await env.command([
    'submit',
    '--array',
    array,
    '--crash-limit',
    String(CRASH_LIMIT),
    '--stdout',
    'out/%{TASK_ID}.%{INSTANCE_ID}',
    '--stderr',
    stderr,
    '--',
    ...task,
  ]);
}

async function assertTreeGone(pids: number[], what: string): Promise<void> {
  await waitFor(() => pids.every((p) => !isAlive(p)), {
    timeoutMs: 10_000,
    message: `no process of ${what} left (${pids.filter((p) => isAlive(p)).join(',')})`,
  });
}

/** The fault itself: a process frozen for a given time. */
function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Stops every worker and checks that nothing but the server is left of the environment. */
async function assertNothingLeft(env: HqEnv, workers: WorkerHandle[]): Promise<void> {
  await env.command(['worker', 'stop', 'all']);
  await Promise.all(workers.map((w) => w.process.waitForExit()));
  const server = env.server?.pid;
  const left = (): string[] =>
    env
      .markedProcesses()
      .filter((p) => p !== server)
      .map((p) => {
        try {
          const command = fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').replaceAll('\0', ' ');
          const stat = fs.readFileSync(`/proc/${p}/stat`, 'utf8');
          const ppid = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1];
          const task = fs
            .readFileSync(`/proc/${p}/environ`, 'utf8')
            .split('\0')
            .filter((v) => /^HQ_(TASK|INSTANCE)_ID=/.test(v))
            .join(' ');
          return `${p} (parent ${ppid}, ${task}) ${command}`;
        } catch {
          return String(p);
        }
      });
  try {
    await waitFor(() => left().length === 0, {
      timeoutMs: 10_000,
      message: 'no process left but the server',
    });
  } catch (e) {
    throw new Error(`${(e as Error).message}: ${left().join('; ')}`);
  }
}

type Fault = 'kill' | 'short-freeze' | 'long-freeze';

void describe('fault injection', () => {
  void it('1,000 tasks under random worker SIGKILLs, freezes and self-kills: the ledger holds', async (t: TestContext) => {
    const seed = Number(process.env['HQ_FAULT_SEED'] ?? randomInt(2 ** 31));
    const random = generator(seed);
    t.diagnostic(`seed ${seed} (HQ_FAULT_SEED=${seed} replays it)`);
    await withEnv(async (env) => {
      const ledger = env.path('ledger');
      const killers = [30, 330, 630, 930];
      await env.startServer();
      let workers: WorkerHandle[] = [];
      const retired: WorkerHandle[] = [];
      const startWorker = async (): Promise<void> => {
        workers.push(await env.startWorker({ cpus: 2, args: ['--heartbeat', HEARTBEAT] }));
      };
      for (let i = 0; i < 3; i++) {
        await startWorker();
      }
      await submitLedgerJob(
        env,
        '1-1000',
        'out/%{TASK_ID}.%{INSTANCE_ID}.err',
        ledgerTask(ledger, killers),
      );
      /** Replaces workers that are gone (killed by a fault or by their own task). */
      const replaceDead = async (): Promise<void> => {
        const dead = workers.filter((w) => !w.process.isRunning);
        workers = workers.filter((w) => w.process.isRunning);
        retired.push(...dead);
        for (let i = 0; i < dead.length; i++) {
          await startWorker();
        }
      };
      const faults: Record<Fault, number> = { kill: 0, 'short-freeze': 0, 'long-freeze': 0 };
      const kinds: Fault[] = ['kill', 'short-freeze', 'long-freeze'];
      for (let threshold = 100; threshold <= 800; threshold += 100) {
        await waitFor(
          async () => {
            await replaceDead();
            return doneCount(ledger) >= threshold;
          },
          { timeoutMs: 120_000, message: `${threshold} tasks done` },
        );
        const kind = kinds[Math.floor(random() * kinds.length)]!;
        const victim = workers[Math.floor(random() * workers.length)]!;
        const pid = victim.process.pid;
        // A killer task may take the victim down at any moment, even while it is frozen: the
        // fault then meets a worker that is already gone, and only the ledger has a say.
        const signal = (name: NodeJS.Signals): void => {
          try {
            process.kill(pid, name);
          } catch {
            // gone already
          }
        };
        const selfKilled = (): boolean =>
          !victim.process.isRunning || !fs.existsSync(`/proc/${pid}`);
        faults[kind]++;
        t.diagnostic(`at ${threshold} done: ${kind} of worker ${victim.id}`);
        if (kind === 'kill') {
          const tree = descendants(pid);
          signal('SIGKILL');
          await victim.process.waitForExit();
          await assertTreeGone(tree, `SIGKILLed worker ${victim.id}`);
        } else if (kind === 'short-freeze') {
          signal('SIGSTOP');
          await pause(300);
          signal('SIGCONT');
          const row = (await env.workerRows()).find((r) => r['ID'] === String(victim.id));
          if (!selfKilled()) {
            assert.equal(row?.['State'], 'RUNNING', `worker ${victim.id} after a 0.3 s freeze`);
          }
        } else {
          signal('SIGSTOP');
          await waitFor(
            async () => {
              const row = (await env.workerRows()).find((r) => r['ID'] === String(victim.id));
              return row?.['State'] === 'HEARTBEAT LOST' || selfKilled();
            },
            { timeoutMs: 30_000, message: `worker ${victim.id} to be lost` },
          );
          const tree = descendants(pid);
          signal('SIGCONT');
          // Back, it finds its connection closed and stops, taking its tasks down.
          await victim.process.waitForExit();
          await assertTreeGone(tree, `frozen and lost worker ${victim.id}`);
        }
      }
      await waitFor(
        async () => {
          await replaceDead();
          const state = await env.jobState(1);
          return state === 'FINISHED' || state === 'FAILED';
        },
        { timeoutMs: 180_000, message: 'the job to end' },
      );
      const verdict = await checkLedger(env, 1, ledger, 1000, (task, instance, entry) => {
        if (killers.includes(task.id)) {
          const first = Math.min(...entry.starts);
          assert.ok(entry.starts.length > 0, `killer task ${task.id} ran`);
          assert.ok(instance > first, `killer task ${task.id} re-ran after killing (${instance})`);
        }
      });
      t.diagnostic(
        `faults ${JSON.stringify(faults)} + ${killers.length} self-kills; tasks checked 1000: ` +
          `${verdict.finished} finished, ${verdict.failedByCrashLimit} failed by the crash ` +
          `limit, ${verdict.reruns} re-runs, lost 0`,
      );
      await assertNothingLeft(env, workers);
    });
  });

  void it('a SIGKILLed server with --journal: restarted, it loses nothing and re-runs what ran', async (t: TestContext) => {
    await withEnv(async (env) => {
      const ledger = env.path('ledger');
      const journal = env.path('journal.bin');
      await env.startServer(['--journal', journal]);
      const first: WorkerHandle[] = [];
      for (let i = 0; i < 2; i++) {
        first.push(await env.startWorker({ cpus: 2 }));
      }
      await submitLedgerJob(env, '1-1000', 'none', ledgerTask(ledger));
      await waitFor(() => doneCount(ledger) >= 300, {
        timeoutMs: 120_000,
        message: '300 tasks done',
      });
      const before = await env.json<Record<string, TaskJson[]>>(['task', 'list', '1']);
      const finishedBefore = new Set(
        (before['1'] ?? []).filter((task) => task.state === 'finished').map((task) => task.id),
      );
      assert.ok(finishedBefore.size > 0);
      const trees = first.map((w) => descendants(w.process.pid));
      env.server!.signal('SIGKILL');
      await env.server!.waitForExit();
      const startedAtKill = readLedger(ledger);
      // Without their server the workers stop, and take their tasks with them.
      await Promise.all(first.map((w) => w.process.waitForExit()));
      await assertTreeGone(trees.flat(), 'the workers of the killed server');
      await env.startServer(['--journal', journal]);
      const second: WorkerHandle[] = [];
      for (let i = 0; i < 2; i++) {
        second.push(await env.startWorker({ cpus: 2 }));
      }
      await env.waitForJobState(1, 'FINISHED', 180_000);
      const verdict = await checkLedger(env, 1, ledger, 1000, (task, instance, entry) => {
        if (finishedBefore.has(task.id)) {
          assert.deepEqual(entry.starts, [0], `task ${task.id} finished before the kill ran again`);
        }
        // A run cut short by the kill cannot be the one the server counts as finished.
        const atKill = startedAtKill.get(task.id);
        for (const cut of atKill?.starts.filter((i) => !atKill.done.has(i)) ?? []) {
          assert.ok(instance > cut, `task ${task.id}, cut short as ${cut}, re-ran higher`);
        }
      });
      assert.equal(verdict.finished, 1000);
      t.diagnostic(
        `${finishedBefore.size} finished before the kill; after the restart ` +
          `${verdict.reruns} re-runs; lost 0`,
      );
      await assertNothingLeft(env, second);
    });
  });

  void it('a worker cut off by the network: its tasks re-run elsewhere, and it stops by itself', async (t: TestContext) => {
    if (process.getuid?.() !== 0) {
      t.skip('needs root for a network namespace');
      return;
    }
    const tag = randomBytes(3).toString('hex');
    const ns = `hqf${tag}`;
    const [hostSide, nsSide] = [`hqh${tag}`, `hqn${tag}`];
    const net = `10.213.${randomInt(256)}`;
    const ip = (...args: string[]): void => {
      execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 10_000 });
    };
    try {
      ip('netns', 'add', ns);
    } catch (e) {
      t.skip(`no network namespaces here: ${String(e)}`);
      return;
    }
    try {
      ip('link', 'add', hostSide, 'type', 'veth', 'peer', 'name', nsSide);
      ip('link', 'set', nsSide, 'netns', ns);
      ip('addr', 'add', `${net}.1/30`, 'dev', hostSide);
      ip('link', 'set', hostSide, 'up');
      ip('-n', ns, 'addr', 'add', `${net}.2/30`, 'dev', nsSide);
      ip('-n', ns, 'link', 'set', nsSide, 'up');
      ip('-n', ns, 'link', 'set', 'lo', 'up');
      await withEnv(async (env) => {
        const ledger = env.path('ledger');
        await env.startServer();
        // The server listens on every address; the cut-off worker reaches it over the veth.
        const access = JSON.parse(
          fs.readFileSync(path.join(env.serverDir, 'hq-current', 'access.json'), 'utf8'),
        ) as { worker: { host: string } };
        access.worker.host = `${net}.1`;
        const nsServerDir = env.path('ns-server');
        fs.mkdirSync(path.join(nsServerDir, '001'), { recursive: true });
        fs.writeFileSync(path.join(nsServerDir, '001', 'access.json'), JSON.stringify(access), {
          mode: 0o600,
        });
        fs.symlinkSync('001', path.join(nsServerDir, 'hq-current'));
        const cut = await env.startWorker({
          cpus: 2,
          hostname: 'cut',
          serverDir: nsServerDir,
          args: ['--heartbeat', HEARTBEAT],
          wrapper: ['ip', 'netns', 'exec', ns],
        });
        await submitLedgerJob(env, '1-4', 'none', ledgerTask(ledger, [], 'sleep 3'));
        await waitFor(() => [...readLedger(ledger).values()].length >= 2, {
          message: 'two tasks running on the worker to be cut off',
        });
        const tree = descendants(cut.process.pid);
        ip('-n', ns, 'link', 'set', nsSide, 'down');
        await env.waitForWorkerState(cut.id, 'HEARTBEAT LOST');
        const rescuer = await env.startWorker({ cpus: 2, hostname: 'rescuer' });
        await env.waitForJobState(1, 'FINISHED');
        const verdict = await checkLedger(env, 1, ledger, 4);
        assert.ok(verdict.reruns >= 2, `the cut-off worker's tasks re-ran (${verdict.reruns})`);
        // No FIN or RST ever reaches it: it must notice the silence itself.
        const status = await cut.process.waitForExit(60_000);
        assert.equal(status.code, 1);
        assert.match(cut.process.stderr(), /the server has not answered for \d+ s/);
        await assertTreeGone(tree, 'the cut-off worker');
        t.diagnostic(`cut-off worker stopped by itself; ${verdict.reruns} re-runs; lost 0`);
        await assertNothingLeft(env, [rescuer]);
      });
    } finally {
      try {
        const pids = execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' });
        for (const pid of pids.split('\n').filter((p) => p !== '')) {
          try {
            process.kill(Number(pid), 'SIGKILL');
          } catch {
            // gone
          }
        }
      } finally {
        // Deleting the namespace deletes its end of the pair, and with it the other end.
        ip('netns', 'del', ns);
      }
    }
  });

  void it('a full disk under the output directory fails the tasks writing there, with the cause; the worker goes on', async (t: TestContext) => {
    await withEnv(async (env) => {
      const full = env.path('full');
      fs.mkdirSync(full);
      try {
        execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', full], {
          stdio: 'ignore',
        });
      } catch {
        t.skip('needs root to mount a small tmpfs');
        return;
      }
      try {
        await env.startServer();
        const worker = await env.startWorker({ cpus: 2 });
        // Each task alone writes more than the whole file system holds.
        const big = 'head -c 400000 /dev/zero | tr "\\0" x';
        await env.command([
          'submit',
          '--array',
          '1-3',
          '--stdout',
          `${full}/%{TASK_ID}.out`,
          '--stderr',
          'err/%{TASK_ID}',
          '--',
          'sh',
          '-c',
          big,
        ]);
        await env.command([
          'submit',
          '--array',
          '1-3',
          '--stream',
          `${full}/streams`,
          '--',
          'sh',
          '-c',
          big,
        ]);
        await env.command(['submit', '--array', '1-3', '--', 'echo', 'fine']);
        await env.waitForJobState(1, 'FAILED');
        await env.waitForJobState(2, 'FAILED');
        await env.waitForJobState(3, 'FINISHED');
        const tasks = async (job: number): Promise<TaskJson[]> =>
          (await env.json<Record<string, TaskJson[]>>(['task', 'list', String(job)]))[
            String(job)
          ] ?? [];
        for (const task of await tasks(1)) {
          assert.equal(task.state, 'failed');
          assert.match(task.error ?? '', /exit code 1/);
          assert.match(
            fs.readFileSync(env.path('err', String(task.id)), 'utf8'),
            /No space left on device/,
          );
        }
        for (const task of await tasks(2)) {
          assert.equal(task.state, 'failed');
          assert.match(
            task.error ?? '',
            /Cannot write stream file .*full\/streams\/.*: No space left on device \(os error 28\)/,
          );
        }
        const row = (await env.workerRows()).find((r) => r['ID'] === String(worker.id));
        assert.equal(row?.['State'], 'RUNNING');
        // Space freed, streaming there works again without restarting the worker.
        for (const entry of fs.readdirSync(full)) {
          fs.rmSync(path.join(full, entry), { recursive: true });
        }
        await env.command(['submit', '--stream', `${full}/streams`, '--', 'echo', 'recovered']);
        await env.waitForJobState(4, 'FINISHED');
        assert.equal(
          await env.output(['output-log', `${full}/streams`, 'cat', '4', 'stdout']),
          'recovered\n',
        );
        await assertNothingLeft(env, [worker]);
      } finally {
        execFileSync('umount', [full], { stdio: 'ignore' });
      }
    });
  });
});
