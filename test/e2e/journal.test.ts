import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';

import { openSession } from '../../src/client/session.js';
import type { TimedEvent } from '../../src/server/events.js';
import {
  NO_OUTPUT,
  horizontalTable,
  verticalMap,
  waitFor,
  withEnv,
  type HqEnv,
} from './harness.js';

interface Line {
  time: string;
  event: Record<string, unknown> & { type?: string };
}

async function exportJournal(env: HqEnv, file: string): Promise<Line[]> {
  const out = await env.output(['journal', 'export', file], { serverDir: null });
  return out
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as Line);
}

async function stopServer(env: HqEnv): Promise<void> {
  const server = env.server;
  await env.command(['server', 'stop']);
  await server?.waitForExit();
}

async function jobIds(env: HqEnv): Promise<number[]> {
  const jobs = await env.json<{ id: number }[]>(['job', 'list', '--all']);
  return jobs.map((j) => j.id).sort((a, b) => a - b);
}

void describe('journal: crash and restore', () => {
  void it('a SIGKILLed server with a 10,000-task job loses nothing and re-runs only what was cut off', () =>
    withEnv(async (env) => {
      const journal = env.path('hq.journal');
      const markers = env.path('markers');
      fs.mkdirSync(markers);
      await env.startServer(['--journal', journal]);
      await env.startWorker({ cpus: 2 });
      await env.command([
        'submit',
        '--array',
        '1-10000',
        ...NO_OUTPUT,
        '--',
        'sh',
        '-c',
        `echo $$ >> "${markers}/$HQ_TASK_ID.$HQ_INSTANCE_ID"`,
      ]);
      await waitFor(() => fs.readdirSync(markers).length >= 2000, {
        timeoutMs: 60_000,
        message: '2000 tasks to have run',
      });
      env.server!.signal('SIGKILL');
      await env.server!.waitForExit();
      assert.ok(fs.readdirSync(markers).length < 10_000, 'the job was still running at the kill');

      await env.startServer(['--journal', journal]);
      const worker = await env.startWorker({ cpus: 2 });
      assert.ok(worker.id >= 3, `worker ids continue (after a skip), got ${worker.id}`);
      await env.waitForJobState(1, 'FINISHED', 120_000);

      // Every task ran; a task that ran twice did so with a higher instance id.
      const byTask = new Map<number, number[]>();
      for (const name of fs.readdirSync(markers)) {
        const [task, instance] = name.split('.').map(Number) as [number, number];
        const runs = fs.readFileSync(`${markers}/${name}`, 'utf8').trim().split('\n');
        assert.equal(
          runs.length,
          1,
          `task ${task} ran ${runs.length} times as instance ${instance}`,
        );
        byTask.set(task, [...(byTask.get(task) ?? []), instance]);
      }
      assert.equal(byTask.size, 10_000);
      let rerun = 0;
      for (const [task, instances] of byTask) {
        assert.equal(
          new Set(instances).size,
          instances.length,
          `task ${task}: ${instances.join(',')}`,
        );
        if (instances.length > 1) {
          rerun++;
          assert.ok(Math.max(...instances) > 0, `task ${task}`);
        }
      }
      assert.ok(rerun <= 100, `only tasks cut off by the kill re-run (${rerun})`);

      // Ids continue after the restore.
      const submitted = await env.output(['submit', '--', 'true']);
      assert.match(submitted, /job ID: 2/);
      await env.waitForJobState(2, 'FINISHED');
      await stopServer(env);

      // The journal tells each task's end exactly once, across both runs.
      const finished = new Map<number, number>();
      for (const l of await exportJournal(env, journal)) {
        if (l.event.type === 'task-finished' && l.event['job'] === 1) {
          const t = l.event['task'] as number;
          finished.set(t, (finished.get(t) ?? 0) + 1);
        }
      }
      assert.equal(finished.size, 10_000);
      assert.ok([...finished.values()].every((n) => n === 1));
    }));

  void it('a task that was sent but whose start the server never recorded re-runs with a new instance', () =>
    withEnv(async (env) => {
      // Each task kills the server as its first act: its start report, gathered by the worker
      // for a few milliseconds, never reaches the journal. Only the record of the sending can
      // tell the restored server that instance 0 may have run.
      const journal = env.path('hq.journal');
      const ledger = env.path('ledger');
      const server = await env.startServer(['--journal', journal]);
      await env.startWorker({ cpus: 1 });
      await env.command([
        'submit',
        ...NO_OUTPUT,
        '--',
        'sh',
        '-c',
        `echo "$HQ_INSTANCE_ID" >> '${ledger}'; if [ "$HQ_INSTANCE_ID" = 0 ]; then kill -9 ${server.pid}; fi`,
      ]);
      await server.waitForExit();
      await waitFor(() => fs.existsSync(ledger), { message: 'the task to have started' });
      await env.startServer(['--journal', journal]);
      await env.startWorker({ cpus: 1 });
      await env.waitForJobState(1, 'FINISHED');
      assert.deepEqual(fs.readFileSync(ledger, 'utf8').trim().split('\n'), ['0', '1']);
      await stopServer(env);
      // Twice restored, the replay of both runs agrees with what they did: nothing waits.
      await env.startServer(['--journal', journal]);
      assert.deepEqual(await jobIds(env), []);
    }));

  void it('restores waiting, running, failed and open jobs, and drops finished ones', () =>
    withEnv(async (env) => {
      const journal = env.path('j');
      await env.startServer(['--journal', journal]);
      const w = await env.startWorker();
      await env.command(['submit', '--', 'true']);
      await env.waitForJobState(1, 'FINISHED');
      await env.command(['submit', '--', 'false']);
      await env.waitForJobState(2, 'FAILED');
      await env.command(['submit', '--array', '0-1', '--', 'sh', '-c', 'exit $HQ_TASK_ID']);
      await env.waitForJobState(3, 'FAILED');
      await env.command(['submit', '--', 'sleep', '100']);
      await env.waitForJobState(4, 'RUNNING');
      await env.command(['job', 'open']);
      await stopServer(env);
      await w.process.waitForExit();

      await env.startServer(['--journal', journal]);
      assert.deepEqual(await jobIds(env), [4, 5]);
      const info = verticalMap(await env.output(['job', 'info', '5']));
      assert.equal(info.get('Session'), 'open');
      assert.equal(await env.jobState(4), 'WAITING', 'the task that ran at the stop waits again');
      await env.startWorker();
      await env.waitForJobState(4, 'RUNNING');
      const instance = await env.output(['submit', '--', 'true']);
      assert.match(instance, /job ID: 6/);
      const rows = horizontalTable(await env.output(['task', 'list', '4', '-v']));
      assert.equal(rows.length, 1);
      await env.command(['job', 'cancel', '4']);
    }));

  void it('cuts a torn or zero-filled tail with a warning and keeps everything before it', () =>
    withEnv(async (env) => {
      const journal = env.path('j');
      await env.startServer(['--journal', journal]);
      await env.command(['submit', '--', 'true']);
      await stopServer(env);

      const size = fs.statSync(journal).size;
      fs.truncateSync(journal, size - 1); // inside the last record (server-stop)
      const s2 = await env.startServer(['--journal', journal]);
      assert.deepEqual(await jobIds(env), [1]);
      await stopServer(env);
      assert.match(s2.stderr(), /Journal contains not fully written data/);

      fs.appendFileSync(journal, Buffer.alloc(4096));
      const s3 = await env.startServer(['--journal', journal]);
      assert.deepEqual(await jobIds(env), [1]);
      await env.command(['submit', '--', 'true']);
      assert.deepEqual(await jobIds(env), [1, 2]);
      await stopServer(env);
      assert.match(s3.stderr(), /Journal contains not fully written data/);
      const types = (await exportJournal(env, journal)).map((l) => l.event.type);
      assert.equal(types.filter((t) => t === 'server-start').length, 3);
      assert.equal(types.filter((t) => t === 'job-created').length, 2);
    }));

  void it('refuses a journal corrupted in the middle, or not ours, and leaves it untouched', () =>
    withEnv(async (env) => {
      const journal = env.path('j');
      await env.startServer(['--journal', journal]);
      for (let i = 0; i < 10; i++) {
        await env.command(['submit', '--', 'true']);
      }
      await stopServer(env);
      const data = fs.readFileSync(journal);
      const at = Math.floor(data.length / 3);
      data[at] = data[at]! ^ 0xff;
      fs.writeFileSync(journal, data);
      const refuse = async (file: string, pattern: RegExp): Promise<void> => {
        const before = fs.readFileSync(file);
        const r = await env.command(['server', 'start', '--journal', file], { expectFail: true });
        assert.equal(r.code, 1);
        const lines = r.stderr.trim().split('\n');
        assert.match(lines[lines.length - 1]!, pattern);
        assert.ok(!fs.existsSync(env.path('hq-server', 'hq-current', 'access.json')));
        assert.deepEqual(fs.readFileSync(file), before, 'the journal is left as it was');
      };
      await refuse(
        journal,
        /^Error: Journal .* is corrupted at byte offset \d+ \(valid records follow/,
      );
      const upstream = env.path('upstream.journal');
      fs.writeFileSync(upstream, Buffer.concat([Buffer.from('hqjl0002'), Buffer.alloc(64, 7)]));
      await refuse(upstream, /^Error: Journal .* was written by upstream HyperQueue/);
      const text = env.path('text.journal');
      fs.writeFileSync(text, 'not a journal');
      await refuse(text, /^Error: Invalid journal format/);
      // Export refuses the same file with the same one line.
      const r = await env.command(['journal', 'export', journal], {
        expectFail: true,
        serverDir: null,
      });
      assert.match(r.stderr, /corrupted at byte offset/);
      const missing = await env.command(['journal', 'export', env.path('nope')], {
        expectFail: true,
        serverDir: null,
      });
      assert.equal(missing.stderr.trim().split('\n').length, 1);
    }));

  void it('an acknowledged submit and cancel are in the journal even if the server dies at once', () =>
    withEnv(async (env) => {
      const journal = env.path('j');
      await env.startServer(['--journal', journal]);
      await env.command(['submit', '--', 'sleep', '100']);
      await env.command(['job', 'cancel', '1']);
      env.server!.signal('SIGKILL');
      await env.server!.waitForExit();
      const types = (await exportJournal(env, journal)).map((l) => l.event.type);
      assert.ok(types.includes('job-created'));
      assert.ok(types.includes('task-canceled'));
    }));

  void it('restores queues with their ids, pause state and the next id', () =>
    withEnv(async (env) => {
      const journal = env.path('j');
      await env.startServer(['--journal', journal]);
      const add = ['alloc', 'add', 'slurm', '--no-dry-run', '--time-limit', '1h', '--backlog', '1'];
      for (let i = 0; i < 3; i++) {
        await env.command([...add, '--name', `q${i}`]);
      }
      await env.command(['alloc', 'remove', '2']);
      await env.command(['alloc', 'pause', '3']);
      const before = await env.output(['alloc', 'list', '--output-mode', 'json']);
      await stopServer(env);
      await env.startServer(['--journal', journal]);
      assert.equal(await env.output(['alloc', 'list', '--output-mode', 'json']), before);
      const next = await env.json<{ id?: number }>([...add]);
      assert.ok(next !== null);
      const rows = horizontalTable(await env.output(['alloc', 'list']));
      assert.deepEqual(
        rows.map((r) => [r['ID'], r['State']]),
        [
          ['1', 'ACTIVE'],
          ['3', 'PAUSED'],
          ['4', 'ACTIVE'],
        ],
      );
    }));
});

void describe('journal: prune, replay and stream', () => {
  void it('prune keeps exactly the live jobs and the online workers', () =>
    withEnv(async (env) => {
      const journal = env.path('j');
      await env.startServer(['--journal', journal]);
      const w1 = await env.startWorker();
      await env.command(['submit', '--', 'true']);
      await env.waitForJobState(1, 'FINISHED');
      await env.command(['submit', '--cpus', '2', '--', 'true']); // cannot run on 1-cpu workers
      await env.command(['job', 'open']);
      await env.command(['worker', 'stop', String(w1.id)]);
      await w1.process.waitForExit();
      const w2 = await env.startWorker();
      await env.command(['journal', 'flush']);
      const sizeBefore = fs.statSync(journal).size;
      await env.command(['journal', 'prune']);
      assert.ok(fs.statSync(journal).size < sizeBefore);
      const lines = await exportJournal(env, journal);
      const jobs = new Set<number>();
      const workers = new Set<number>();
      for (const { event } of lines) {
        const t = event.type ?? '';
        if (t.startsWith('task') || t === 'job-created' || t === 'job-completed') {
          jobs.add(event['job'] as number);
        } else if (t.startsWith('job')) {
          jobs.add(event['job_id'] as number);
        } else if (t.startsWith('worker')) {
          workers.add(event['id'] as number);
        }
      }
      assert.deepEqual([...jobs].sort(), [2, 3]);
      assert.deepEqual([...workers], [w2.id]);
      // Appending goes on after the prune, and a restore keeps the id counters.
      await env.command(['submit', '--cpus', '2', '--', 'true']);
      await stopServer(env);
      await env.startServer(['--journal', journal]);
      assert.deepEqual(await jobIds(env), [2, 3, 4]);
      assert.match(await env.output(['submit', '--', 'true']), /job ID: 5/);
    }));

  void it('a stream client sees the history, then live events, with no gap and no duplicate', () =>
    withEnv(async (env) => {
      await env.startServer(['--journal', env.path('j')]);
      const submits = (async () => {
        for (let i = 0; i < 25; i++) {
          await env.command(['submit', '--', 'true']);
        }
      })();
      await waitFor(async () => (await jobIds(env)).length >= 5, { message: '5 jobs' });
      const stream = env.spawnHq('stream', ['--server-dir', env.serverDir, 'journal', 'stream']);
      await submits;
      await waitFor(
        () =>
          stream
            .stdout()
            .split('\n')
            .filter((l) => l.includes('job-created')).length === 25,
        {
          message: 'every job-created on the stream',
        },
      );
      await stopServer(env);
      const status = await stream.waitForExit();
      assert.equal(status.code, 0);
      const events = stream
        .stdout()
        .trim()
        .split('\n')
        .map((l) => (JSON.parse(l) as Line).event);
      assert.equal(events[0]!.type, 'server-start');
      assert.deepEqual(
        events.filter((e) => e.type === 'job-created').map((e) => e['job']),
        Array.from({ length: 25 }, (_, i) => i + 1),
      );
      assert.ok(!events.some((e) => e.type === 'server-stop'), 'live clients get no server-stop');
    }));

  void it('replay without a journal tells workers and tasks from memory, on stdout only', () =>
    withEnv(async (env) => {
      await env.startServer();
      const w = await env.startWorker();
      await env.command(['submit', '--', 'true']);
      await env.waitForJobState(1, 'FINISHED');
      await env.command(['worker', 'stop', String(w.id)]);
      await w.process.waitForExit();
      const r = await env.command(['journal', 'replay']);
      assert.equal(r.stderr, '');
      const types = r.stdout
        .trim()
        .split('\n')
        .map((l) => (JSON.parse(l) as Line).event.type);
      for (const t of [
        'server-start',
        'worker-connected',
        'job-created',
        'task-started',
        'task-finished',
        'job-completed',
        'worker-lost',
      ]) {
        assert.ok(types.includes(t), `${t} in ${types.join(',')}`);
      }
      assert.equal(types[0], 'server-start');
    }));

  void it('overviews go into the journal for workers that send them', () =>
    withEnv(async (env) => {
      const journal = env.path('j');
      await env.startServer(['--journal', journal]);
      await env.startWorker({ args: ['--overview-interval', '50ms'] });
      await env.startWorker({ hostname: 'quiet' });
      await waitFor(
        async () => {
          await env.command(['journal', 'flush']);
          return (await exportJournal(env, journal)).some(
            (l) => l.event.type === 'worker-overview',
          );
        },
        { message: 'an overview in the journal' },
      );
      const overviews = (await exportJournal(env, journal)).filter(
        (l) => l.event.type === 'worker-overview',
      );
      assert.ok(overviews.every((l) => l.event['id'] === 1));
      const state = (overviews[0]!.event['hw-state'] as { state: Record<string, unknown> }).state;
      const cpu = (state['cpu_usage'] as { cpu_per_core_percent_usage: number[] })
        .cpu_per_core_percent_usage;
      assert.ok(cpu.length > 0);
      assert.ok(Number.isInteger(state['timestamp']));
    }));

  void it('a client watching overviews gets them from every worker, and the journal does not', () =>
    withEnv(async (env) => {
      const journal = env.path('j');
      await env.startServer(['--journal', journal]);
      const w = await env.startWorker();
      const session = await openSession(env.serverDir);
      const seen: TimedEvent[] = [];
      const stream = session.stream({ mode: 'live', overviews: true }, (records) =>
        seen.push(...records),
      );
      try {
        await waitFor(() => seen.some((r) => r.event.type === 'worker-overview'), {
          message: 'an overview on the watching stream',
        });
        const late = await env.startWorker({ hostname: 'late' });
        await waitFor(
          () => seen.some((r) => r.event.type === 'worker-overview' && r.event.id === late.id),
          { message: 'an overview from a worker that connected later' },
        );
        assert.ok(seen.some((r) => r.event.type === 'worker-overview' && r.event.id === w.id));
      } finally {
        session.close();
      }
      await stream;
      await env.command(['journal', 'flush']);
      const types = (await exportJournal(env, journal)).map((l) => l.event.type);
      assert.ok(!types.includes('worker-overview'), 'watched overviews are not journaled');
    }));
});
