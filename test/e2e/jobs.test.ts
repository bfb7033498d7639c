import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';

import {
  groupMembers,
  horizontalTable,
  isAlive,
  verticalMap,
  waitFor,
  withEnv,
  type HqEnv,
  read,
  assertSortedKeys,
} from './harness.js';

async function submit(env: HqEnv, args: string[], cwd?: string): Promise<number> {
  const out = await env.output(['submit', ...args], cwd === undefined ? {} : { cwd });
  const m = /^Job submitted successfully, job ID: (\d+)\n$/.exec(out);
  assert.ok(m, `unexpected submit output: ${out}`);
  return Number(m[1]);
}

function readPid(file: string): number {
  const pid = Number(read(file).trim());
  assert.ok(Number.isInteger(pid) && pid > 0, `${file} holds a pid`);
  return pid;
}

void describe('running jobs', () => {
  void it('an array job writes one stdout file per task; JSON output has sorted keys', () =>
    withEnv(async (env) => {
      await env.startServer();
      await env.startWorker({ cpus: 2 });
      await env.startWorker({ cpus: 1 });
      const id = await submit(env, ['--array', '1-10', '--', 'bash', '-c', 'echo $HQ_TASK_ID']);
      assert.equal(id, 1);
      await env.waitForJobState(id, 'FINISHED');
      const dir = env.path('job-1');
      const expected = Array.from({ length: 10 }, (_, i) => i + 1).flatMap((t) => [
        `${t}.stderr`,
        `${t}.stdout`,
      ]);
      assert.deepEqual(fs.readdirSync(dir).sort(), expected.sort());
      for (let t = 1; t <= 10; t++) {
        assert.equal(read(path.join(dir, `${t}.stdout`)), `${t}\n`);
        assert.equal(read(path.join(dir, `${t}.stderr`)), '');
      }
      const rows = horizontalTable(await env.output(['job', 'list']));
      assert.deepEqual(rows, [], 'finished jobs are hidden without --all');
      const all = horizontalTable(await env.output(['job', 'list', '--all']));
      assert.deepEqual(all, [{ ID: '1', Name: 'bash', State: 'FINISHED', Tasks: '10' }]);

      // --output-mode json: stdout is exactly one JSON value, with keys sorted at every level.
      const list = await env.command(['job', 'list', '--all'], { json: true });
      assert.ok(assertSortedKeys(list.json) >= 2);
      assert.deepEqual(list.json, [
        {
          cancel_reason: null,
          id: 1,
          is_open: false,
          name: 'bash',
          task_count: 10,
          task_stats: { aborted: 0, canceled: 0, failed: 0, finished: 10, running: 0, waiting: 0 },
        },
      ]);
      const info = await env.command(['job', 'info', '1'], { json: true });
      assert.ok(assertSortedKeys(info.json) > 10);
      const detail = (info.json as { tasks: { id: number; state: string }[] }[])[0]!;
      assert.deepEqual(
        detail.tasks.map((t) => [t.id, t.state]),
        Array.from({ length: 10 }, (_, i) => [i + 1, 'finished']),
      );
    }));

  void it('gives tasks their HQ_* environment and the cpus they asked for', () =>
    withEnv(async (env) => {
      await env.startServer();
      await env.startWorker({ cpus: 2 });
      const submitDir = env.path('submit here');
      fs.mkdirSync(submitDir);
      const script =
        'echo "$HQ_JOB_ID|$HQ_TASK_ID|$HQ_INSTANCE_ID|$HQ_CPUS|$HQ_SUBMIT_DIR|$OMP_NUM_THREADS|$FOO|$PWD"';
      const id = await submit(
        env,
        ['--cpus', '2', '--env', 'FOO=bar baz', '--', 'bash', '-c', script],
        submitDir,
      );
      await env.waitForJobState(id, 'FINISHED');
      const fields = read(path.join(submitDir, 'job-1', '0.stdout'))
        .trimEnd()
        .split('|');
      // Like upstream, the cpus come in the worker's allocation order, not sorted.
      assert.deepEqual(fields[3]?.split(',').sort(), ['0', '1']);
      fields[3] = '*';
      assert.deepEqual(fields, ['1', '0', '0', '*', submitDir, '2', 'bar baz', submitDir]);

      // Two 1-cpu tasks on the 2-cpu worker get one distinct cpu each.
      const id2 = await submit(env, ['--array', '5-6', '--', 'bash', '-c', script], submitDir);
      await env.waitForJobState(id2, 'FINISHED');
      const cpus = [5, 6].map((t) => {
        const fields = read(path.join(submitDir, 'job-2', `${t}.stdout`))
          .trim()
          .split('|');
        assert.deepEqual(fields.slice(0, 3), ['2', String(t), '0']);
        return fields[3];
      });
      for (const c of cpus) {
        assert.ok(c === '0' || c === '1', `HQ_CPUS=${c}`);
      }

      // --stdin hands the submitting command's standard input to every task.
      const piped = await env.command(['submit', '--stdin', '--array', '1-2', '--', 'cat'], {
        stdin: 'from stdin\n',
        cwd: submitDir,
      });
      assert.match(piped.stdout, /Job submitted successfully, job ID: 3\n$/);
      await env.waitForJobState(3, 'FINISHED');
      for (const t of [1, 2]) {
        assert.equal(read(path.join(submitDir, 'job-3', `${t}.stdout`)), 'from stdin\n');
      }
    }));

  void it('never runs more cpus than a worker has, and does use all of them', () =>
    withEnv(async (env) => {
      await env.startServer();
      await env.startWorker({ cpus: 2 });
      // Three 2-cpu tasks on one 2-cpu worker must run one at a time: each holds a lock
      // directory for a while and fails if another task holds it.
      const exclusive = 'mkdir ../lock || { echo overlap; exit 1; }; sleep 0.3; rmdir ../lock';
      const work = env.path('exclusive');
      fs.mkdirSync(work);
      const id = await submit(env, [
        '--array',
        '1-3',
        '--cpus',
        '2',
        '--cwd',
        path.join(work, 't%{TASK_ID}'),
        '--',
        'bash',
        '-c',
        exclusive,
      ]);
      await env.waitForJobState(id, 'FINISHED');

      // Two 1-cpu tasks do run side by side: each waits (bounded) until both have started.
      const together =
        'touch ../started-$HQ_TASK_ID; for i in $(seq 100); do [ -e ../started-1 ] && [ -e ../started-2 ] && exit 0; sleep 0.1; done; exit 1';
      const id2 = await submit(env, [
        '--array',
        '1-2',
        '--cwd',
        path.join(work, 'p%{TASK_ID}'),
        '--',
        'bash',
        '-c',
        together,
      ]);
      await env.waitForJobState(id2, 'FINISHED');
    }));

  void it('fills placeholders in --cwd, --stdout and --stderr', () =>
    withEnv(async (env) => {
      await env.startServer();
      await env.startWorker();
      const uid = (await env.json<{ server_uid: string }>(['server', 'info'])).server_uid;
      const id = await submit(env, [
        '--array',
        '3-4',
        '--cwd',
        'run-%{JOB_ID}/t%{TASK_ID}',
        '--stdout',
        'out/%{JOB_ID}-%{TASK_ID}-%{INSTANCE_ID}.txt',
        '--stderr',
        '%{SUBMIT_DIR}/errors/%{SERVER_UID}-%{TASK_ID}.txt',
        '--',
        'bash',
        '-c',
        'pwd; echo oops >&2',
      ]);
      await env.waitForJobState(id, 'FINISHED');
      for (const t of [3, 4]) {
        const cwd = env.path('run-1', `t${t}`);
        // A relative --stdout is relative to the task's working directory.
        assert.equal(read(path.join(cwd, 'out', `1-${t}-0.txt`)), `${cwd}\n`);
        assert.equal(read(env.path('errors', `${uid}-${t}.txt`)), 'oops\n');
      }
      // %{CWD} in --stdout is the resolved working directory.
      const id2 = await submit(env, [
        '--cwd',
        'second',
        '--stdout',
        '%{CWD}/my.out',
        '--stderr',
        'none',
        '--',
        'bash',
        '-c',
        'echo hi; echo nothing >&2',
      ]);
      await env.waitForJobState(id2, 'FINISHED');
      assert.equal(read(env.path('second', 'my.out')), 'hi\n');
      assert.deepEqual(fs.readdirSync(env.path('second')), ['my.out']);
      const info = verticalMap(await env.output(['job', 'info', String(id2)]));
      assert.equal(info.get('Stdout'), env.path('second', 'my.out'));
      assert.equal(info.get('Working directory'), env.path('second'));
    }));

  void it('reports failing tasks: an exit code, a program that does not exist', () =>
    withEnv(async (env) => {
      await env.startServer();
      await env.startWorker({ cpus: 2 });
      const failing = await submit(env, ['--', 'bash', '-c', 'echo bad >&2; exit 3']);
      const missing = await submit(env, ['--', 'surely-no-such-program-xyz', 'arg']);
      const fine = await submit(env, ['--', 'true']);
      await env.waitForJobState(failing, 'FAILED');
      await env.waitForJobState(missing, 'FAILED');
      await env.waitForJobState(fine, 'FINISHED');

      const info = await env.output(['job', 'info', String(failing)]);
      assert.equal(verticalMap(info).get('State'), 'FAILED');
      const errors = horizontalTable(info, 1);
      assert.deepEqual(errors, [
        { 'Task ID': '0', Worker: 'worker1', Error: 'Program terminated with exit code 3.' },
      ]);
      assert.match(info, /1 tasks failed\./);
      assert.equal(read(env.path('job-1', '0.stderr')), 'bad\n');

      const info2 = await env.output(['job', 'info', String(missing)]);
      const error2 = horizontalTable(info2, 1)[0]?.['Error'] ?? '';
      assert.match(
        error2,
        /The program that you have tried to execute \(`surely-no-such-program-xyz`\) was not found\./,
      );
      // The worker survives both and still runs work.
      assert.equal((await env.workerRows())[0]?.['State'], 'RUNNING');
    }));

  void it('job cancel stops running tasks with their whole process group', () =>
    withEnv(async (env) => {
      await env.startServer();
      await env.startWorker({ cpus: 1 });
      const dir = env.path('cancel');
      fs.mkdirSync(dir);
      // The task's shell starts a background sleep in its own process group, then waits.
      const script =
        'sleep 100 & echo $! > child-$HQ_TASK_ID.pid; echo $$ > leader-$HQ_TASK_ID.pid; wait';
      const id = await submit(env, ['--array', '1-3', '--', 'bash', '-c', script], dir);
      await env.waitForJobState(id, 'RUNNING');
      const [leader, child] = await waitFor(
        () => {
          const files = ['leader-1.pid', 'child-1.pid'].map((f) => path.join(dir, f));
          return files.every((f) => fs.existsSync(f) && read(f).trim() !== '')
            ? files.map(readPid)
            : undefined;
        },
        { message: 'the first task to write its pids' },
      );
      env.trackProcessGroup(leader!);
      assert.ok(isAlive(leader!) && isAlive(child!));
      assert.ok(groupMembers(leader!).includes(child!), 'the sleep is in the task group');

      const cancel = await env.command(['job', 'cancel', String(id)]);
      assert.match(cancel.stderr, /Job 1 canceled \(3 tasks canceled, 0 tasks already finished\)/);
      await env.waitForJobState(id, 'CANCELED');
      await waitFor(
        () => !isAlive(leader!) && !isAlive(child!) && groupMembers(leader!).length === 0,
        {
          message: 'the canceled task and its child to be gone',
        },
      );
      // Only task 1 ever started (one cpu); the others were canceled while waiting.
      assert.equal(fs.existsSync(path.join(dir, 'leader-2.pid')), false);
      assert.equal(fs.existsSync(path.join(dir, 'leader-3.pid')), false);

      // The cpu is free again, and canceling a finished job changes nothing.
      const next = await submit(env, ['--', 'true']);
      await env.waitForJobState(next, 'FINISHED');
      const again = await env.command(['job', 'cancel', String(next)]);
      assert.match(again.stderr, /Canceling job 2 failed/);
      assert.equal(await env.jobState(next), 'FINISHED');
      assert.equal(await env.jobState(id), 'CANCELED');
    }));

  void it('submit --wait returns once the job has ended', () =>
    withEnv(async (env) => {
      await env.startServer();
      await env.startWorker();
      const r = await env.command([
        'submit',
        '--wait',
        '--',
        'bash',
        '-c',
        'sleep 1; echo done > waited.txt',
      ]);
      assert.equal(r.code, 0);
      assert.match(r.stdout, /^Job submitted successfully, job ID: 1\n/);
      assert.ok(r.durationMs >= 900, `returned after ${r.durationMs} ms`);
      // No polling: the job is over the moment the command returns.
      assert.equal(read(env.path('waited.txt')), 'done\n');
      assert.equal(await env.jobState(1), 'FINISHED');

      const failed = await env.command(['submit', '--wait', '--', 'bash', '-c', 'exit 1']);
      assert.equal(
        failed.code,
        0,
        'like upstream, --wait does not turn a failed job into an error',
      );
      assert.equal(await env.jobState(2), 'FAILED');
    }));

  void it('reruns the tasks of a worker killed mid-task on another worker', () =>
    withEnv(async (env) => {
      await env.startServer();
      const w1 = await env.startWorker({ cpus: 2 });
      const pids = env.path('pids');
      fs.mkdirSync(pids);
      // The first instance of each task hangs; a rerun (instance 1) finishes at once.
      const script = `echo $$ > ${pids}/$HQ_TASK_ID.$HQ_INSTANCE_ID; echo $HQ_INSTANCE_ID; if [ "$HQ_INSTANCE_ID" = 0 ]; then sleep 100; fi`;
      const id = await submit(env, ['--array', '1-2', '--', 'bash', '-c', script]);
      const firsts = await waitFor(
        () => {
          const files = ['1.0', '2.0'].map((f) => path.join(pids, f));
          return files.every((f) => fs.existsSync(f) && read(f).trim() !== '')
            ? files.map(readPid)
            : undefined;
        },
        { message: 'both first instances to start' },
      );
      // The orphaned first instances outlive the killed worker: kill them at the end.
      for (const pid of firsts) {
        env.trackProcessGroup(pid);
      }
      assert.equal(await env.jobState(id), 'RUNNING');
      const w2 = await env.startWorker({ cpus: 2 });

      assert.equal((await env.killWorker(w1.id, 'SIGKILL')).signal, 'SIGKILL');
      await env.waitForWorkerState(w1.id, 'CONNECTION LOST');
      await env.waitForJobState(id, 'FINISHED');
      for (const t of [1, 2]) {
        assert.equal(read(env.path('job-1', `${t}.stdout`)), '1\n', `task ${t} was rerun`);
        assert.ok(fs.existsSync(path.join(pids, `${t}.1`)));
      }
      const detail = (
        await env.json<{ tasks: { id: number; state: string; worker: number }[] }[]>([
          'job',
          'info',
          String(id),
        ])
      )[0]!;
      assert.deepEqual(
        detail.tasks.map((t) => [t.id, t.state, t.worker]),
        [
          [1, 'finished', w2.id],
          [2, 'finished', w2.id],
        ],
      );
    }));
});
