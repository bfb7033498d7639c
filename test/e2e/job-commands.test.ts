/**
 * The `hq job ...` and `hq task ...` commands: what they print in each output mode and what they
 * do to the server's jobs.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';

import {
  HqEnv,
  horizontalTable,
  verticalMap,
  waitFor,
  type CommandOptions,
  read,
  assertSortedKeys,
} from './harness.js';

interface TaskJson {
  id: number;
  state: string;
  error?: string;
  worker?: number;
  started_at?: string;
  finished_at?: string;
  cwd?: string;
  stdout?: string;
  stderr?: string;
}

interface JobInfoJson {
  cancel_reason: string | null;
  id: number;
  is_open: boolean;
  name: string;
  task_count: number;
  task_stats: Record<string, number>;
}

interface JobDetailJson {
  finished_at: string | null;
  info: JobInfoJson;
  max_fails: number | null;
  started_at: string;
  submits: Record<string, unknown>[];
  tasks: TaskJson[];
}

async function submit(env: HqEnv, args: string[], options: CommandOptions = {}): Promise<number> {
  const out = await env.output(['submit', ...args], options);
  const m = /^Job submitted successfully, job ID: (\d+)\n$/.exec(out);
  assert.ok(m, `unexpected submit output: ${out}`);
  return Number(m[1]);
}

async function submitFile(env: HqEnv, file: string, extra: string[] = []): Promise<number> {
  const out = await env.output(['job', 'submit-file', ...extra, file]);
  const m = /^Job submitted successfully, job ID: (\d+)\n$/.exec(out);
  assert.ok(m, `unexpected submit-file output: ${out}`);
  return Number(m[1]);
}

async function jobDetail(env: HqEnv, id: number): Promise<JobDetailJson> {
  const jobs = await env.json<JobDetailJson[]>(['job', 'info', String(id)]);
  assert.equal(jobs.length, 1);
  return jobs[0]!;
}

async function taskStates(env: HqEnv, id: number): Promise<[number, string][]> {
  return (await jobDetail(env, id)).tasks.map((t) => [t.id, t.state]);
}

/** The stderr log lines of a command without their timestamps: `LEVEL message`. */
function logLines(stderr: string): string[] {
  return stderr
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => l.replace(/^\S+Z\s+/, ''));
}

void describe('job list and job summary', () => {
  // One job in each state: 1 FINISHED, 2 FAILED, 3 RUNNING, 4 WAITING, 5 CANCELED, *6 OPENED.
  let env: HqEnv;

  before(async () => {
    env = await HqEnv.create();
    await env.startServer();
    await env.startWorker({ cpus: 2 });
    const finished = await submit(env, ['--', 'true']);
    const failed = await submit(env, ['--', 'bash', '-c', 'exit 1']);
    await env.waitForJobState(finished, 'FINISHED');
    await env.waitForJobState(failed, 'FAILED');
    const running = await submit(env, ['--name', 'runner', '--', 'sleep', '100']);
    await env.waitForJobState(running, 'RUNNING');
    // Needs more cpus than any worker has: waits for good.
    const waiting = await submit(env, ['--cpus', '8', '--', 'true']);
    const canceled = await submit(env, ['--cpus', '8', '--', 'true']);
    await env.command(['job', 'cancel', String(canceled), '--reason', 'not needed any more']);
    const open = Number(/^Job (\d+) is open\.\n$/.exec(await env.output(['job', 'open']))?.[1]);
    assert.deepEqual(
      [finished, failed, running, waiting, canceled, open],
      [1, 2, 3, 4, 5, 6],
      'job ids count from 1',
    );
  });

  after(async () => {
    await env?.close();
  });

  void it('job list filters, marks open jobs and counts the hidden ones', async () => {
    // Default: waiting and running jobs plus open ones, with both footers.
    const listed = await env.output(['job', 'list']);
    assert.deepEqual(horizontalTable(listed), [
      { ID: '3', Name: 'runner', State: 'RUNNING', Tasks: '1' },
      { ID: '4', Name: 'true', State: 'WAITING', Tasks: '1' },
      { ID: '*6', Name: 'job', State: 'OPENED', Tasks: '0' },
    ]);
    assert.match(
      listed,
      /\n\* = Open jobs\nThere are 6 jobs in total\. Use `--all` to display all jobs\.\n$/,
    );

    const all = await env.output(['job', 'list', '--all']);
    assert.deepEqual(
      horizontalTable(all).map((r) => [r['ID'], r['State']]),
      [
        ['1', 'FINISHED'],
        ['2', 'FAILED'],
        ['3', 'RUNNING'],
        ['4', 'WAITING'],
        ['5', 'CANCELED'],
        ['*6', 'OPENED'],
      ],
    );
    assert.match(all, /\n\* = Open jobs\n$/, 'nothing hidden: no "in total" footer');

    const filtered = await env.output(['job', 'list', '--filter', 'failed,canceled']);
    assert.deepEqual(
      horizontalTable(filtered).map((r) => r['ID']),
      ['2', '5'],
    );
    assert.ok(!filtered.includes('Open jobs'), 'no open job shown, no star footer');
    assert.match(filtered, /There are 6 jobs in total\./);
    assert.deepEqual(
      horizontalTable(await env.output(['job', 'list', '--filter', 'opened'])).map((r) => r['ID']),
      ['*6'],
    );

    // --verbose adds the cancel reason column.
    assert.ok(!('Cancel Reason' in horizontalTable(all)[0]!));
    const verbose = horizontalTable(
      await env.output(['job', 'list', '--verbose', '--filter', 'canceled,finished']),
    );
    assert.deepEqual(verbose, [
      { ID: '1', Name: 'true', State: 'FINISHED', Tasks: '1', 'Cancel Reason': '' },
      {
        ID: '5',
        Name: 'true',
        State: 'CANCELED',
        Tasks: '1',
        'Cancel Reason': 'not needed any more',
      },
    ]);

    const json = await env.json<JobInfoJson[]>(['job', 'list', '--all']);
    assertSortedKeys(json);
    assert.deepEqual(
      json.map((j) => [j.id, j.is_open, j.cancel_reason]),
      [
        [1, false, null],
        [2, false, null],
        [3, false, null],
        [4, false, null],
        [5, false, 'not needed any more'],
        [6, true, null],
      ],
    );
    assert.deepEqual(json[2]!.task_stats, {
      aborted: 0,
      canceled: 0,
      failed: 0,
      finished: 0,
      running: 1,
      waiting: 0,
    });
    const jsonDefault = await env.json<JobInfoJson[]>(['job', 'list']);
    assert.deepEqual(
      jsonDefault.map((j) => j.id),
      [3, 4, 6],
      'JSON mode filters like the cli',
    );
    const quiet = await env.output(['--output-mode', 'quiet', 'job', 'list', '--all']);
    assert.equal(quiet, '1 FINISHED\n2 FAILED\n3 RUNNING\n4 WAITING\n5 CANCELED\n6 OPENED\n');
  });

  void it('job summary in json mode counts every state, Opened included', async () => {
    const summary = await env.command(['job', 'summary'], { json: true });
    assert.equal(summary.stdout, JSON.stringify(summary.json, null, 2) + '\n');
    assert.deepEqual(summary.json, {
      Aborted: 0,
      Canceled: 1,
      Failed: 1,
      Finished: 1,
      Opened: 1,
      Running: 1,
      Waiting: 1,
    });
  });

  void it('job summary in cli and quiet mode lists the six states of upstream', async () => {
    assert.deepEqual(horizontalTable(await env.output(['job', 'summary'])), [
      { Status: 'RUNNING', Count: '1' },
      { Status: 'WAITING', Count: '1' },
      { Status: 'FINISHED', Count: '1' },
      { Status: 'FAILED', Count: '1' },
      { Status: 'ABORTED', Count: '0' },
      { Status: 'CANCELED', Count: '1' },
    ]);
    assert.equal(
      await env.output(['--output-mode', 'quiet', 'job', 'summary']),
      'RUNNING 1\nWAITING 1\nFINISHED 1\nFAILED 1\nABORTED 0\nCANCELED 1\n',
    );
  });
});

void describe('job and task commands on a shared server', () => {
  let env: HqEnv;
  /** An array job: tasks 1-2 finish, tasks 3-8 fail; each prints "out <id>" and "err <id>". */
  let mixed: number;

  before(async () => {
    env = await HqEnv.create();
    await env.startServer();
    await env.startWorker({ cpus: 2 });
    mixed = await submit(env, [
      '--name',
      'mixed',
      '--array',
      '1-8',
      '--env',
      'B=2',
      '--env',
      'A=1',
      '--',
      'bash',
      '-c',
      'echo "out $HQ_TASK_ID"; echo "err $HQ_TASK_ID" >&2; [ "$HQ_TASK_ID" -le 2 ] || exit 7',
    ]);
    await env.waitForJobState(mixed, 'FAILED');
  });

  after(async () => {
    await env?.close();
  });

  void it('job info shows the job rows, the state counts and the failed tasks', async () => {
    const out = await env.output(['job', 'info', String(mixed)]);
    const info = verticalMap(out);
    assert.equal(info.get('ID'), String(mixed));
    assert.equal(info.get('Name'), 'mixed');
    // A progress bar, then one line per state with tasks in it.
    assert.deepEqual(info.get('State')?.split('\n'), [
      `[${'#'.repeat(40)}]`,
      'FAILED (6)',
      'FINISHED (2)',
    ]);
    assert.equal(info.get('Cancel Reason'), '');
    assert.equal(info.get('Session'), 'closed');
    assert.equal(info.get('Tasks'), '8; Ids: 1-8');
    assert.equal(info.get('Workers'), 'worker1');
    assert.equal(info.get('Resources'), 'cpus: 1 compact');
    assert.equal(info.get('Pin'), 'none');
    assert.equal(info.get('Priority'), '0');
    assert.equal(info.get('Command')?.split('\n')[0], 'bash');
    assert.equal(info.get('Stdout'), env.path(`job-${mixed}`, '%{TASK_ID}.stdout'));
    assert.equal(info.get('Environment'), 'A=1\nB=2', 'sorted by name');
    assert.equal(info.get('Working directory'), env.dir);
    assert.equal(info.get('Task time limit'), 'None');
    assert.equal(info.get('Crash limit'), '5');
    assert.equal(info.get('Submission directory'), env.dir);
    assert.match(info.get('Submission date') ?? '', /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/);
    assert.ok(info.has('Makespan'));
    // Failed tasks: the first five, and how many there are in all.
    const failures = horizontalTable(out, 1);
    assert.deepEqual(
      failures.map((r) => [r['Task ID'], r['Worker'], r['Error']]),
      [3, 4, 5, 6, 7].map((t) => [String(t), 'worker1', 'Program terminated with exit code 7.']),
    );
    assert.match(out, /\n6 tasks failed\. \(5 shown\)\n$/);

    // A single-task job shows its plain state; an open job its session.
    const single = await submit(env, ['--', 'true']);
    await env.waitForJobState(single, 'FINISHED');
    assert.equal(
      verticalMap(await env.output(['job', 'info', String(single)])).get('State'),
      'FINISHED',
    );
    const open = Number(/Job (\d+) is open/.exec(await env.output(['job', 'open']))?.[1]);
    const openInfo = verticalMap(await env.output(['job', 'info', String(open)]));
    assert.equal(openInfo.get('Session'), 'open');
    assert.equal(openInfo.get('Tasks'), '0');
    await env.command(['job', 'close', String(open)]);

    // Several jobs at once, and unknown ids logged.
    const many = await env.command(['job', 'info', `${mixed},${single},999`]);
    // Tables: the first job, its failed tasks, then the second job.
    assert.equal(verticalMap(many.stdout, 0).get('ID'), String(mixed));
    assert.equal(verticalMap(many.stdout, 2).get('ID'), String(single));
    assert.match(many.stderr, /Job 999 not found/);

    const json = await env.command(['job', 'info', String(mixed)], { json: true });
    assert.ok(assertSortedKeys(json.json) > 10);
    const [detail] = json.json as JobDetailJson[];
    assert.equal(detail?.info.task_count, 8);
    assert.equal(detail?.max_fails, null);
    assert.match(detail?.finished_at ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
    assert.deepEqual(
      detail?.tasks.map((t) => [t.id, t.state, t.error ?? null]),
      [1, 2, 3, 4, 5, 6, 7, 8].map((t) => [
        t,
        t <= 2 ? 'finished' : 'failed',
        t <= 2 ? null : 'Program terminated with exit code 7.',
      ]),
    );
  });

  void it('job cancel --reason records the reason; canceling again changes nothing', async () => {
    const id = await submit(env, ['--array', '1-3', '--cpus', '8', '--', 'true']);
    const r = await env.command(['job', 'cancel', String(id), '--reason', 'wrong input data']);
    assert.equal(r.stdout, '');
    assert.deepEqual(logLines(r.stderr), [
      `INFO Job ${id} canceled (3 tasks canceled, 0 tasks already finished)`,
    ]);
    assert.equal(await env.jobState(id), 'CANCELED');
    const info = verticalMap(await env.output(['job', 'info', String(id)]));
    assert.equal(info.get('Cancel Reason'), 'wrong input data');
    assert.equal((await jobDetail(env, id)).info.cancel_reason, 'wrong input data');
    const again = await env.command(['job', 'cancel', String(id), '--reason', 'other']);
    assert.match(again.stderr, /Canceling job \d+ failed; all tasks are already finished/);
    assert.equal((await jobDetail(env, id)).info.cancel_reason, 'wrong input data');
    const tooLong = await env.command(['job', 'cancel', String(id), '--reason', 'x'.repeat(201)], {
      expectFail: true,
    });
    assert.match(tooLong.stderr, /200/);
    assert.equal((await env.command(['job', 'cancel', String(id)], { json: true })).stdout, '{}\n');
  });

  void it('job forget removes completed jobs only', async () => {
    const done = await submit(env, ['--', 'true']);
    const pending = await submit(env, ['--cpus', '8', '--', 'true']);
    await env.waitForJobState(done, 'FINISHED');
    const kept = await env.command(['job', 'forget', String(pending)]);
    assert.deepEqual(logLines(kept.stderr), [
      'INFO 0 jobs were forgotten, 1 were ignored due to wrong state or invalid ID',
    ]);
    const wrongFilter = await env.command(['job', 'forget', String(done), '--filter', 'failed']);
    assert.match(wrongFilter.stderr, /0 jobs were forgotten, 1 were ignored/);
    const forgotten = await env.command(['job', 'forget', String(done)]);
    assert.deepEqual(logLines(forgotten.stderr), ['INFO 1 job were forgotten']);
    assert.equal(forgotten.stdout, '');

    const all = horizontalTable(await env.output(['job', 'list', '--all'])).map((r) => r['ID']);
    assert.ok(!all.includes(String(done)), 'the job is gone from the list');
    assert.ok(all.includes(String(pending)));
    const info = await env.command(['job', 'info', String(done)]);
    assert.equal(info.stdout, '');
    assert.match(info.stderr, new RegExp(`Job ${done} not found`));
    // Ids are never reused.
    assert.equal(
      await submit(env, ['--stdout', 'none', '--stderr', 'none', '--', 'true']),
      pending + 1,
    );
    await env.command(['job', 'cancel', String(pending)]);
  });

  void it('job cat prints task outputs, by task ids and states, with headers', async () => {
    const j = String(mixed);
    assert.equal(
      await env.output(['job', 'cat', j, 'stdout']),
      [1, 2, 3, 4, 5, 6, 7, 8].map((t) => `out ${t}\n`).join(''),
    );
    assert.equal(await env.output(['job', 'cat', j, 'stderr', '--tasks', '2-3']), 'err 2\nerr 3\n');
    assert.equal(
      await env.output([
        'job',
        'cat',
        j,
        'stdout',
        '--task-status',
        'finished',
        '--print-task-header',
      ]),
      `# Job ${j}, task 1\nout 1\n# Job ${j}, task 2\nout 2\n`,
    );
    assert.equal(
      await env.output([
        'job',
        'cat',
        j,
        'stdout',
        '--tasks',
        '2-4',
        '--task-status',
        'failed',
        '--print-task-header',
      ]),
      `# Job ${j}, task 3\nout 3\n# Job ${j}, task 4\nout 4\n`,
    );
    const last = await submit(env, ['--', 'echo', 'the last one']);
    await env.waitForJobState(last, 'FINISHED');
    assert.equal(await env.output(['job', 'cat', 'last', 'stdout']), 'the last one\n');
    const json = await env.command(['job', 'cat', j, 'stdout'], { json: true, expectFail: true });
    assert.match((json.json as { error: string }).error, /JSON output mode doesn't support/);
  });

  void it('job wait returns when the jobs end, with exit code 0 also for failed tasks', async () => {
    const id = await submit(env, [
      '--array',
      '1-2',
      '--',
      'bash',
      '-c',
      'sleep 0.5; exit $HQ_TASK_ID',
    ]);
    const r = await env.command(['job', 'wait', String(id)]);
    assert.equal(r.code, 0);
    assert.equal(r.stdout, '');
    // Nothing to poll: the job has ended once wait returns.
    assert.equal(await env.jobState(id), 'FAILED');
    const again = await env.command(['job', 'wait', `${mixed},${id}`], { json: true });
    assert.deepEqual(again.json, {});
  });

  void it('job task-ids lists ids, filtered by state', async () => {
    const j = String(mixed);
    assert.equal(await env.output(['job', 'task-ids', j]), '1-8\n');
    assert.equal(await env.output(['job', 'task-ids', j, '--filter', 'failed']), '3-8\n');
    assert.equal(
      await env.output(['job', 'task-ids', j, '--filter', 'finished,canceled']),
      '1-2\n',
    );
    assert.equal(await env.output(['job', 'task-ids', j, '--filter', 'waiting']), '\n');
    const sparse = await submit(env, [
      '--array',
      '1,3,5-6',
      '--',
      'bash',
      '-c',
      'exit $((HQ_TASK_ID % 2))',
    ]);
    await env.waitForJobState(sparse, 'FAILED');
    assert.equal(
      await env.output(['job', 'task-ids', String(sparse), '--filter', 'failed']),
      '1,3,5\n',
    );
    assert.equal(
      await env.output(['job', 'task-ids', `${j},${sparse}`, '--filter', 'finished']),
      `${j}: 1-2\n${sparse}: 6\n`,
    );
    assert.deepEqual(await env.json(['job', 'task-ids', `${j},${sparse}`, '--filter', 'failed']), {
      [j]: [3, 4, 5, 6, 7, 8],
      [String(sparse)]: [1, 3, 5],
    });
  });

  void it('job open and close: messages, OPENED state, wait --without-close', async () => {
    const opened = await env.command(['job', 'open', '--name', 'session']);
    const m = /^Job (\d+) is open\.\n$/.exec(opened.stdout);
    assert.ok(m, opened.stdout);
    const id = Number(m[1]);
    const row = () =>
      env
        .output(['job', 'list', '--all'])
        .then((out) =>
          horizontalTable(out).find((r) => r['ID'] === `*${id}` || r['ID'] === String(id)),
        );
    assert.deepEqual(await row(), { ID: `*${id}`, Name: 'session', State: 'OPENED', Tasks: '0' });

    await submit(env, ['--job', String(id), '--', 'sleep', '0.5']);
    // --without-close returns once every task so far has ended; plain wait needs the close.
    const closedWait = env.command(['job', 'wait', String(id)]);
    let closedWaitDone = false;
    void closedWait.then(() => (closedWaitDone = true)).catch(() => undefined);
    const idle = await env.command(['job', 'wait', String(id), '--without-close']);
    assert.equal(idle.code, 0);
    assert.deepEqual(await row(), { ID: `*${id}`, Name: 'session', State: 'OPENED', Tasks: '1' });
    assert.equal(closedWaitDone, false, 'job wait without --without-close waits for the close');

    const closed = await env.command(['job', 'close', String(id)]);
    assert.deepEqual(logLines(closed.stderr), [`INFO Job ${id} closed`]);
    assert.equal((await closedWait).code, 0);
    assert.deepEqual(await row(), {
      ID: String(id),
      Name: 'session',
      State: 'FINISHED',
      Tasks: '1',
    });
    const twice = await env.command(['job', 'close', String(id)]);
    assert.deepEqual(logLines(twice.stderr), [
      `ERROR Closing job ${id} failed; job is already closed`,
    ]);

    const quiet = await env.output(['--output-mode', 'quiet', 'job', 'open']);
    assert.match(quiet, /^\d+\n$/);
    const json = await env.json<{ id: number }>(['job', 'open']);
    assert.deepEqual(json, { id: Number(quiet) + 1 });
    await env.command(['job', 'close', `${quiet.trim()},${json.id}`]);
  });

  void it('job submit-file: dependencies (a failure aborts its consumers) and an array with entries', async () => {
    const deps = env.path('deps.toml');
    fs.writeFileSync(
      deps,
      [
        'name = "pipeline"',
        '[[task]]',
        'id = 1',
        'command = ["bash", "-c", "exit 1"]',
        '[[task]]',
        'id = 2',
        'command = ["bash", "-c", "echo producer"]',
        '[[task]]',
        'id = 3',
        'deps = [1, 2]',
        'command = ["bash", "-c", "echo should not run"]',
        '[[task]]',
        'id = 4',
        'deps = [3]',
        'command = ["true"]',
        '[[task]]',
        'id = 5',
        'deps = [2]',
        'command = ["bash", "-c", "echo consumer of two"]',
        '',
      ].join('\n'),
    );
    const id = await submitFile(env, deps);
    await env.waitForJobState(id, 'FAILED');
    assert.deepEqual(await taskStates(env, id), [
      [1, 'failed'],
      [2, 'finished'],
      [3, 'aborted'],
      [4, 'aborted'],
      [5, 'finished'],
    ]);
    assert.equal(fs.existsSync(env.path(`job-${id}`, '3.stdout')), false, 'task 3 never started');
    assert.equal(read(env.path(`job-${id}`, '5.stdout')), 'consumer of two\n');
    const info = verticalMap(await env.output(['job', 'info', String(id)]));
    assert.equal(info.get('Name'), 'pipeline');
    assert.equal(info.get('Tasks'), '5; Ids: 1-5');
    assert.ok(!info.has('Command'), 'no shared task description for a task graph');

    const array = env.path('array.toml');
    fs.writeFileSync(
      array,
      [
        '[array]',
        'ids = "2,5-6"',
        'entries = ["first", "second", "third"]',
        'command = ["bash", "-c", "echo -n \\"$HQ_TASK_ID=$HQ_ENTRY\\""]',
        '',
      ].join('\n'),
    );
    const arr = await submitFile(env, array);
    await env.waitForJobState(arr, 'FINISHED');
    assert.deepEqual(
      [2, 5, 6].map((t) => read(env.path(`job-${arr}`, `${t}.stdout`))),
      ['2=first', '5=second', '6=third'],
    );
  });

  void it('task list: --tasks, --task-status, several jobs, truncated errors unless -v', async () => {
    const j = String(mixed);
    const list = await env.command(['task', 'list', j, '--tasks', '2-4']);
    assert.deepEqual(
      horizontalTable(list.stdout).map((r) => [r['Task ID'], r['State'], r['Worker'], r['Error']]),
      [
        ['2', 'FINISHED', 'worker1', ''],
        ['3', 'FAILED', 'worker1', 'Program terminat...'],
        ['4', 'FAILED', 'worker1', 'Program terminat...'],
      ],
    );
    assert.match(list.stderr, /Use -v to display the full error/);
    const verbose = await env.command(['task', 'list', j, '--tasks', '3', '-v']);
    assert.deepEqual(
      horizontalTable(verbose.stdout).map((r) => r['Error']),
      ['Program terminated with exit code 7.'],
    );
    assert.ok(!verbose.stderr.includes('-v'));
    assert.deepEqual(
      horizontalTable(await env.output(['task', 'list', j, '--task-status', 'finished'])).map(
        (r) => r['Task ID'],
      ),
      ['1', '2'],
    );
    const other = await submit(env, ['--array', '4-5', '--', 'true']);
    await env.waitForJobState(other, 'FINISHED');
    const both = horizontalTable(
      await env.output([
        'task',
        'list',
        `${j}-${other}`,
        '--tasks',
        '4-5',
        '--task-status',
        'finished,failed',
      ]),
    );
    const jobIds = new Set(both.map((r) => r['Job ID']));
    assert.ok(jobIds.has(j) && jobIds.has(String(other)), 'a Job ID column for several jobs');
    assert.deepEqual(
      both.filter((r) => r['Job ID'] === String(other)).map((r) => [r['Task ID'], r['State']]),
      [
        ['4', 'FINISHED'],
        ['5', 'FINISHED'],
      ],
    );

    const json = await env.command(['task', 'list', j, '--tasks', '1,3'], { json: true });
    assertSortedKeys(json.json);
    const tasks = (json.json as Record<string, TaskJson[]>)[j];
    assert.deepEqual(Object.keys(json.json as object), [j]);
    assert.deepEqual(
      tasks?.map((t) => [t.id, t.state, t.error ?? null, t.stdout]),
      [
        [1, 'finished', null, env.path(`job-${j}`, '1.stdout')],
        [3, 'failed', 'Program terminated with exit code 7.', env.path(`job-${j}`, '3.stdout')],
      ],
    );
  });

  void it('task info shows one table per task', async () => {
    const out = await env.output(['task', 'info', String(mixed), '2-3']);
    const first = verticalMap(out, 0);
    const second = verticalMap(out, 1);
    assert.equal(first.get('Task ID'), '2');
    assert.equal(first.get('State'), 'FINISHED');
    assert.equal(first.get('Worker'), 'worker1');
    assert.equal(first.get('Stdout'), env.path(`job-${mixed}`, '2.stdout'));
    assert.equal(first.get('Workdir'), env.dir);
    assert.equal(first.get('Error'), '');
    assert.equal(second.get('Task ID'), '3');
    assert.equal(second.get('State'), 'FAILED');
    assert.equal(second.get('Error'), 'Program terminated with exit code 7.');
    const json = await env.json<TaskJson[]>(['task', 'info', String(mixed), '3']);
    assertSortedKeys(json);
    assert.deepEqual(
      json.map((t) => [t.id, t.state, t.worker]),
      [[3, 'failed', 1]],
    );
    assert.match(json[0]?.started_at ?? '', /Z$/);
    assert.match(json[0]?.finished_at ?? '', /Z$/);
  });

  void it('task explain: a task that fits, one that needs more cpus, one waiting for a dependency', async () => {
    const fits = await submit(env, ['--', 'sleep', '100']);
    const tooBig = await submit(env, ['--cpus', '3', '--', 'true']);
    await env.waitForJobState(fits, 'RUNNING');
    const ok = await env.output(['task', 'explain', String(fits), '0']);
    assert.match(
      ok,
      new RegExp(`^Task ${fits}@0 is ready to run because it has no dependencies\\.\n`),
    );
    assert.match(ok, /The task can run on 1 worker: 1\n/);
    assert.deepEqual(
      horizontalTable(ok).map((r) => [
        r['Worker Id'],
        r['Runnable'],
        r['Type'],
        r['Provides'],
        r['Request'],
      ]),
      [['1', 'Yes', 'cpus', '2', '1']],
    );
    const no = await env.output(['task', 'explain', String(tooBig), '0']);
    assert.match(no, /There is no worker where the task can run\.\n/);
    assert.deepEqual(
      horizontalTable(no).map((r) => [
        r['Worker Id'],
        r['Runnable'],
        r['Type'],
        r['Provides'],
        r['Request'],
      ]),
      [['1', 'No', 'cpus', '2', '3']],
    );
    const json = await env.json<Record<string, unknown>>(['task', 'explain', String(tooBig), '0']);
    assertSortedKeys(json);
    assert.deepEqual(json, {
      explanation: {
        n_task_deps: 0,
        n_waiting_deps: 0,
        workers: [
          {
            variants: [
              [{ Resources: { request_amount: 30000, resource: 'cpus', worker_amount: 20000 } }],
            ],
            worker_id: 1,
          },
        ],
      },
      task_id: { job_id: tooBig, job_task_id: 0 },
    });

    // A consumer whose producer is still running.
    const graph = env.path('explain.toml');
    fs.writeFileSync(
      graph,
      '[[task]]\nid = 0\ncommand = ["sleep", "100"]\n[[task]]\nid = 1\ndeps = [0]\ncommand = ["true"]\n',
    );
    const waiting = await submitFile(env, graph);
    await waitFor(async () => (await taskStates(env, waiting))[0]?.[1] === 'running', {
      message: 'the producer to run',
    });
    const dep = await env.json<{ explanation: { n_task_deps: number; n_waiting_deps: number } }>([
      'task',
      'explain',
      String(waiting),
      '1',
    ]);
    assert.equal(dep.explanation.n_task_deps, 1);
    assert.equal(dep.explanation.n_waiting_deps, 1);
    await env.command(['job', 'cancel', `${fits},${tooBig},${waiting}`]);
  });

  void it('json and quiet modes of submit, list, info and summary', async () => {
    const submitted = await env.command(['submit', '--', 'true'], { json: true });
    assert.equal(submitted.stdout, JSON.stringify(submitted.json, null, 2) + '\n');
    const id = (submitted.json as { id: number }).id;
    assert.deepEqual(submitted.json, { id });
    const quietId = Number(await env.output(['--output-mode', 'quiet', 'submit', '--', 'true']));
    assert.equal(quietId, id + 1);
    await env.waitForJobState(quietId, 'FINISHED');

    for (const args of [
      ['job', 'list', '--all'],
      ['job', 'info', `${mixed},${id}`],
      ['job', 'summary'],
      ['task', 'list', String(mixed)],
      ['task', 'info', String(mixed), '1-3'],
    ]) {
      const r = await env.command(args, { json: true });
      // Exactly one pretty-printed value, keys sorted at every level.
      // (Floats print like serde_json does, `0.0`, where JSON.stringify writes `0`.)
      assert.equal(
        r.stdout.replace(/: (-?\d+)\.0(,?)$/gm, ': $1$2'),
        JSON.stringify(r.json, null, 2) + '\n',
        `hq ${args.join(' ')}`,
      );
      assertSortedKeys(r.json);
    }
    assert.equal(
      await env.output(['--output-mode', 'quiet', 'job', 'list', '--filter', 'failed']),
      horizontalTable(await env.output(['job', 'list', '--filter', 'failed']))
        .map((r) => `${r['ID']} FAILED\n`)
        .join(''),
    );
  });

  void it('quiet job info, task list and task info print nothing, like upstream', async () => {
    for (const args of [
      ['job', 'info', String(mixed)],
      ['task', 'list', String(mixed)],
      ['task', 'info', String(mixed), '1'],
    ]) {
      const r = await env.command(['--output-mode', 'quiet', ...args]);
      assert.equal(r.stdout, '', `hq --output-mode quiet ${args.join(' ')}`);
    }
  });

  void it('keeps consistent counts when --max-fails aborts tasks that are about to fail', async () => {
    // Both tasks of each job fail at the same moment on the two-cpu worker: the first failure
    // aborts the other task, whose own failure report is then already under way.
    const ids: number[] = [];
    for (let i = 0; i < 8; i++) {
      ids.push(
        await submit(env, [
          '--max-fails',
          '0',
          '--array',
          '1-2',
          '--stdout',
          'none',
          '--stderr',
          'none',
          '--',
          'bash',
          '-c',
          'exit 1',
        ]),
      );
    }
    for (const id of ids) {
      await env.waitForJobState(id, 'FAILED');
    }
    for (const id of ids) {
      const detail = await jobDetail(env, id);
      const s = detail.info.task_stats;
      assert.deepEqual(
        { ...s, total: s['failed']! + s['aborted']! },
        {
          aborted: s['aborted'],
          canceled: 0,
          failed: s['failed'],
          finished: 0,
          running: 0,
          waiting: 0,
          total: 2,
        },
        `job ${id}: ${JSON.stringify(s)}`,
      );
      assert.deepEqual(
        detail.tasks.map((t) => t.state).sort(),
        s['aborted'] === 1 ? ['aborted', 'failed'] : ['failed', 'failed'],
      );
      assert.ok(detail.finished_at !== null, `job ${id} has a completion time`);
    }
    const r = await env.command(['job', 'wait', ids.join(',')], { timeoutMs: 5_000 });
    assert.equal(r.code, 0);
  });
});
