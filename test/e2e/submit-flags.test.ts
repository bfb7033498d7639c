/**
 * Every flag of `hq submit`, checked through what the tasks see (their environment, files,
 * working directory) and what the server reports afterwards.
 *
 * Most checks share one server and one 4-cpu worker (they run one after another); the flags that
 * need a special worker setup (priorities, time requests, crash limits) get their own server.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';

import {
  HqEnv,
  horizontalTable,
  verticalMap,
  waitFor,
  withEnv,
  type CommandOptions,
  read,
} from './harness.js';

interface TaskJson {
  id: number;
  state: string;
  error?: string;
  started_at?: string;
  worker?: number;
}

interface JobDetailJson {
  info: { id: number; name: string; task_count: number; task_stats: Record<string, number> };
  submits: { array: { program: { args: string[]; env: Record<string, string> } } }[];
  tasks: TaskJson[];
}

/** `hq submit ...args`; returns the job id from the confirmation line. */
async function submit(env: HqEnv, args: string[], options: CommandOptions = {}): Promise<number> {
  const out = await env.output(['submit', ...args], options);
  const m = /Job submitted successfully, job ID: (\d+)\n$/.exec(out);
  assert.ok(m, `unexpected submit output: ${out}`);
  return Number(m[1]);
}

async function jobDetail(env: HqEnv, id: number): Promise<JobDetailJson> {
  const jobs = await env.json<JobDetailJson[]>(['job', 'info', String(id)]);
  assert.equal(jobs.length, 1);
  return jobs[0]!;
}

/** The task list of one job as [id, state] pairs. */
async function taskStates(env: HqEnv, id: number): Promise<[number, string][]> {
  return (await jobDetail(env, id)).tasks.map((t) => [t.id, t.state]);
}

/** `<*>STATE` of a job in `job list --all` (the star marks an open job). */
async function listedState(env: HqEnv, id: number): Promise<string | undefined> {
  const rows = horizontalTable(await env.output(['job', 'list', '--all']));
  const row = rows.find((r) => r['ID']?.replace('*', '') === String(id));
  return row === undefined ? undefined : `${row['ID']!.startsWith('*') ? '*' : ''}${row['State']}`;
}

/** Lines of a file written by tasks (`KEY=VALUE` per line) as a Map. */
function envLines(file: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of read(file).split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) {
      out.set(line.slice(0, eq), line.slice(eq + 1));
    }
  }
  return out;
}

void describe('hq submit flags on a shared server', () => {
  let env: HqEnv;
  let worker: { id: number; workDir: string };

  before(async () => {
    env = await HqEnv.create();
    await env.startServer();
    worker = await env.startWorker({
      cpus: 4,
      args: ['--resource', 'gpus=[0,1]', '--resource', 'gpus/nvidia=[2,3]'],
    });
  });

  after(async () => {
    await env?.close();
  });

  void it('--array takes ranges with steps, lists and _ separators', async () => {
    const cases: [string, number[]][] = [
      ['0-10:3', [0, 3, 6, 9]],
      ['1,3,5-7', [1, 3, 5, 6, 7]],
      ['1_000-1_002', [1000, 1001, 1002]],
      ['1_0-2_0:5,42', [10, 15, 20, 42]],
      ['7', [7]],
    ];
    const submitted: [number, number[]][] = [];
    for (const [spec, ids] of cases) {
      const id = await submit(env, [
        '--array',
        spec,
        '--stdout',
        `array-%{JOB_ID}/%{TASK_ID}.out`,
        '--stderr',
        'none',
        '--',
        'bash',
        '-c',
        'echo "$HQ_JOB_ID:$HQ_TASK_ID"',
      ]);
      submitted.push([id, ids]);
    }
    for (const [id, ids] of submitted) {
      await env.waitForJobState(id, 'FINISHED');
      const taskIds = await env.json<Record<string, number[]>>(['job', 'task-ids', String(id)]);
      assert.deepEqual(taskIds, { [String(id)]: ids });
      // Each task saw its own id.
      for (const t of ids) {
        assert.equal(read(env.path(`array-${id}`, `${t}.out`)), `${id}:${t}\n`);
      }
      assert.equal(fs.readdirSync(env.path(`array-${id}`)).length, ids.length);
    }
    const first = verticalMap(await env.output(['job', 'info', String(submitted[0]![0])]));
    assert.equal(first.get('Tasks'), '4; Ids: 0,3,6,9');
  });

  void it('--each-line gives each task one line of the file in HQ_ENTRY', async () => {
    const lines = env.path('lines.txt');
    // An empty line and spaces are kept as they are; there is no trailing newline.
    fs.writeFileSync(lines, 'alpha\n  beta gamma \n\nlast');
    const id = await submit(env, [
      '--each-line',
      lines,
      '--',
      'bash',
      '-c',
      'printf "%s|%s" "${HQ_ENTRY+set}" "$HQ_ENTRY"',
    ]);
    const five = env.path('five.txt');
    fs.writeFileSync(five, 'a\nb\nc\nd\ne\n');
    const all = await submit(env, ['--each-line', five, '--', 'bash', '-c', 'echo -n $HQ_ENTRY']);
    // With --array only those line indexes run; indexes past the end are dropped.
    const subset = await submit(env, [
      '--each-line',
      five,
      '--array',
      '1,3-4,9',
      '--',
      'bash',
      '-c',
      'echo -n $HQ_ENTRY',
    ]);
    const plain = await submit(env, ['--', 'bash', '-c', 'echo -n "${HQ_ENTRY-unset}"']);
    for (const j of [id, all, subset, plain]) {
      await env.waitForJobState(j, 'FINISHED');
    }
    const expected = ['set|alpha', 'set|  beta gamma ', 'set|', 'set|last'];
    assert.deepEqual(
      [0, 1, 2, 3].map((t) => read(env.path(`job-${id}`, `${t}.stdout`))),
      expected,
    );
    assert.deepEqual(
      (await taskStates(env, all)).map(([t]) => t),
      [0, 1, 2, 3, 4],
      'a trailing newline does not make an extra task',
    );
    assert.deepEqual(
      (await taskStates(env, subset)).map(([t]) => t),
      [1, 3, 4],
    );
    assert.deepEqual(
      [1, 3, 4].map((t) => read(env.path(`job-${subset}`, `${t}.stdout`))),
      ['b', 'd', 'e'],
    );
    assert.equal(read(env.path(`job-${plain}`, '0.stdout')), 'unset');
  });

  void it('--from-json gives each task one array item as compact JSON', async () => {
    const file = env.path('items.json');
    fs.writeFileSync(
      file,
      '[1, "two words", null, 2.5,\n {"a": [1, 2], "b": {"c": true}}, [ ], "say \\"hi\\""]\n',
    );
    const id = await submit(env, ['--from-json', file, '--', 'bash', '-c', 'echo -n "$HQ_ENTRY"']);
    await env.waitForJobState(id, 'FINISHED');
    const expected = [
      '1',
      '"two words"',
      'null',
      '2.5',
      '{"a":[1,2],"b":{"c":true}}',
      '[]',
      '"say \\"hi\\""',
    ];
    assert.deepEqual(
      expected.map((_, t) => read(env.path(`job-${id}`, `${t}.stdout`))),
      expected,
    );
  });

  void it('--from-json writes object keys in sorted order, like serde_json', async () => {
    const file = env.path('unsorted.json');
    fs.writeFileSync(file, '[{"b": 1, "a": {"d": 2, "c": 3}}]');
    const id = await submit(env, ['--from-json', file, '--', 'bash', '-c', 'echo -n "$HQ_ENTRY"']);
    await env.waitForJobState(id, 'FINISHED');
    assert.equal(read(env.path(`job-${id}`, '0.stdout')), '{"a":{"c":3,"d":2},"b":1}');
  });

  void it('--name, --cwd, --stdout and --stderr (paths, none, :rm-if-finished)', async () => {
    // Task 1 succeeds (its files are removed), task 2 fails (its files stay).
    const named = await submit(env, [
      '--name',
      'my job',
      '--array',
      '1-2',
      '--cwd',
      'wd/%{JOB_ID}',
      '--stdout',
      'o/%{TASK_ID}.out:rm-if-finished',
      '--stderr',
      'o/%{TASK_ID}.err:rm-if-finished',
      '--',
      'bash',
      '-c',
      'echo "out $PWD"; echo err >&2; exit $((HQ_TASK_ID - 1))',
    ]);
    const unnamed = await submit(env, ['--', '/bin/true']);
    const discarded = await submit(env, [
      '--cwd',
      'quiet',
      '--stdout',
      'none',
      '--stderr',
      'none',
      '--',
      'bash',
      '-c',
      'echo to-nowhere; echo to-nowhere >&2',
    ]);
    // `:rm-if-finished` alone keeps the default path and removes the file on success.
    const defaults = await submit(env, [
      '--cwd',
      'defaults',
      '--stdout',
      ':rm-if-finished',
      '--',
      'bash',
      '-c',
      'echo x; echo y >&2',
    ]);
    const absolute = env.path('abs', 'out.txt');
    const abs = await submit(env, ['--stdout', absolute, '--', 'echo', 'absolute']);
    await env.waitForJobState(named, 'FAILED');
    for (const j of [unnamed, discarded, defaults, abs]) {
      await env.waitForJobState(j, 'FINISHED');
    }
    const rows = horizontalTable(await env.output(['job', 'list', '--all']));
    const names = new Map(rows.map((r) => [r['ID'], r['Name']]));
    assert.equal(names.get(String(named)), 'my job');
    assert.equal(names.get(String(unnamed)), 'true', 'the default name is the basename');

    const cwd = env.path('wd', String(named));
    assert.deepEqual(fs.readdirSync(path.join(cwd, 'o')).sort(), ['2.err', '2.out']);
    assert.equal(read(path.join(cwd, 'o', '2.out')), `out ${cwd}\n`);
    assert.equal(read(path.join(cwd, 'o', '2.err')), 'err\n');

    assert.deepEqual(fs.readdirSync(env.path('quiet')), [], 'none writes no file');
    assert.deepEqual(fs.readdirSync(env.path('defaults', `job-${defaults}`)), ['0.stderr']);
    assert.equal(read(env.path('defaults', `job-${defaults}`, '0.stderr')), 'y\n');
    assert.equal(read(absolute), 'absolute\n');
    assert.equal(fs.existsSync(env.path(`job-${abs}`, '0.stdout')), false);
    assert.equal(read(env.path(`job-${abs}`, '0.stderr')), '', 'stderr keeps its default');

    // A canceled task is not "finished": its output stays.
    const canceled = await submit(env, [
      '--stdout',
      'canceled.out:rm-if-finished',
      '--',
      'bash',
      '-c',
      'echo started; sleep 100',
    ]);
    await waitFor(() => fs.existsSync(env.path('canceled.out')) && read(env.path('canceled.out')), {
      message: 'the task to start writing',
    });
    await env.command(['job', 'cancel', String(canceled)]);
    await env.waitForJobState(canceled, 'CANCELED');
    assert.equal(read(env.path('canceled.out')), 'started\n');
  });

  void it('--env sets KEY=VAL, and KEY alone as an empty variable', async () => {
    const r = await env.command([
      'submit',
      '--env',
      'A=1',
      '--env',
      'EMPTY',
      '--env',
      'EQ=x=y',
      '--env',
      'SPACE=two words',
      '--env',
      'DUP=first',
      '--env',
      'DUP=second',
      '--',
      'bash',
      '-c',
      'echo "A=$A"; echo "EMPTY=${EMPTY+set}$EMPTY"; echo "EQ=$EQ"; echo "SPACE=$SPACE"; echo "DUP=$DUP"',
    ]);
    const id = Number(/job ID: (\d+)/.exec(r.stdout)?.[1]);
    assert.match(r.stderr, /WARN.*(more than once|duplicate)/, 'a duplicate key is warned about');
    await env.waitForJobState(id, 'FINISHED');
    const seen = envLines(env.path(`job-${id}`, '0.stdout'));
    assert.deepEqual(Object.fromEntries(seen), {
      A: '1',
      EMPTY: 'set',
      EQ: 'x=y',
      SPACE: 'two words',
      DUP: 'second',
    });
    const detail = await jobDetail(env, id);
    assert.deepEqual(detail.submits[0]?.array.program.env, {
      A: '1',
      DUP: 'second',
      EMPTY: '',
      EQ: 'x=y',
      SPACE: 'two words',
    });
  });

  void it('--cpus and --resource set HQ_CPUS, HQ_RESOURCE_* and CUDA_* only for gpus/nvidia', async () => {
    const dump =
      'env | grep -E "^(HQ_CPUS|HQ_RESOURCE_|CUDA_|ROCR_|OMP_NUM_THREADS)" | sort; echo END=1';
    const plain = await submit(env, [
      '--cpus',
      '2',
      '--resource',
      'gpus=2',
      '--',
      'bash',
      '-c',
      dump,
    ]);
    const nvidia = await submit(env, ['--resource', 'gpus/nvidia=1', '--', 'bash', '-c', dump]);
    await env.waitForJobState(plain, 'FINISHED');
    await env.waitForJobState(nvidia, 'FINISHED');

    const a = envLines(env.path(`job-${plain}`, '0.stdout'));
    const cpus = a.get('HQ_CPUS')?.split(',') ?? [];
    assert.equal(cpus.length, 2);
    assert.equal(new Set(cpus).size, 2);
    assert.ok(
      cpus.every((c) => ['0', '1', '2', '3'].includes(c)),
      `HQ_CPUS=${cpus.join(',')}`,
    );
    assert.equal(a.get('HQ_RESOURCE_VALUES_cpus'), a.get('HQ_CPUS'));
    assert.equal(a.get('HQ_RESOURCE_REQUEST_cpus'), '2 compact');
    assert.equal(a.get('HQ_RESOURCE_REQUEST_gpus'), '2 compact');
    assert.deepEqual(a.get('HQ_RESOURCE_VALUES_gpus')?.split(',').sort(), ['0', '1']);
    assert.equal(a.get('OMP_NUM_THREADS'), '2');
    assert.equal(a.has('CUDA_VISIBLE_DEVICES'), false, 'plain "gpus" is not a CUDA resource');
    assert.equal(a.has('CUDA_DEVICE_ORDER'), false);
    assert.equal(a.has('ROCR_VISIBLE_DEVICES'), false);

    const b = envLines(env.path(`job-${nvidia}`, '0.stdout'));
    const device = b.get('HQ_RESOURCE_VALUES_gpus_nvidia');
    assert.ok(device === '2' || device === '3', `gpus/nvidia value ${device}`);
    assert.equal(b.get('HQ_RESOURCE_REQUEST_gpus_nvidia'), '1 compact');
    assert.equal(b.get('CUDA_VISIBLE_DEVICES'), device);
    assert.equal(b.get('CUDA_DEVICE_ORDER'), 'PCI_BUS_ID');
    assert.equal(b.has('HQ_RESOURCE_VALUES_gpus'), false);
    assert.equal(b.get('HQ_RESOURCE_REQUEST_cpus'), '1 compact');
  });

  void it('--time-limit fails a task that runs too long with "Time limit reached"', async () => {
    const started = Date.now();
    const id = await submit(env, ['--time-limit', '500ms', '--', 'sleep', '30']);
    const fast = await submit(env, ['--time-limit', '1m 30s', '--', 'true']);
    await env.waitForJobState(id, 'FAILED');
    assert.ok(Date.now() - started < 15_000, 'the task was stopped long before its end');
    const [task] = (await jobDetail(env, id)).tasks;
    assert.equal(task?.error, 'Time limit reached');
    await env.waitForJobState(fast, 'FINISHED');
    const info = verticalMap(await env.output(['job', 'info', String(fast)]));
    assert.equal(info.get('Task time limit'), '1m 30s');
  });

  void it('--max-fails N aborts the rest of the job once more than N tasks failed', async () => {
    // Four cpus per task on a four-cpu worker: the tasks run one at a time, in id order.
    const id = await submit(env, [
      '--max-fails',
      '1',
      '--cpus',
      '4',
      '--array',
      '1-6',
      '--',
      'bash',
      '-c',
      'if [ "$HQ_TASK_ID" -le 3 ]; then exit 1; fi',
    ]);
    // A limit that is never exceeded aborts nothing.
    const lenient = await submit(env, [
      '--max-fails',
      '3',
      '--array',
      '1-3',
      '--',
      'bash',
      '-c',
      'exit 1',
    ]);
    await env.waitForJobState(id, 'FAILED');
    await env.waitForJobState(lenient, 'FAILED');
    assert.deepEqual(await taskStates(env, id), [
      [1, 'failed'],
      [2, 'failed'],
      [3, 'aborted'],
      [4, 'aborted'],
      [5, 'aborted'],
      [6, 'aborted'],
    ]);
    assert.deepEqual(await taskStates(env, lenient), [
      [1, 'failed'],
      [2, 'failed'],
      [3, 'failed'],
    ]);
    const stats = (await jobDetail(env, id)).info.task_stats;
    assert.deepEqual(stats, {
      aborted: 4,
      canceled: 0,
      failed: 2,
      finished: 0,
      running: 0,
      waiting: 0,
    });
  });

  void it('--task-dir: HQ_TASK_DIR lives as long as the task; HQ_ERROR_FILENAME is the error', async () => {
    const probe =
      'echo "$HQ_TASK_DIR"; echo "$HQ_ERROR_FILENAME"; [ -d "$HQ_TASK_DIR" ] && echo exists; touch "$HQ_TASK_DIR/scratch"';
    const ok = await submit(env, ['--task-dir', '--', 'bash', '-c', probe]);
    const failing = await submit(env, [
      '--task-dir',
      '--',
      'bash',
      '-c',
      'printf "custom failure: %s" "$HQ_TASK_ID" > "$HQ_ERROR_FILENAME"; exit 1',
    ]);
    const empty = await submit(env, [
      '--task-dir',
      '--',
      'bash',
      '-c',
      ': > "$HQ_ERROR_FILENAME"; exit 2',
    ]);
    const without = await submit(env, ['--', 'bash', '-c', 'echo "${HQ_TASK_DIR-unset}"']);
    await env.waitForJobState(ok, 'FINISHED');
    await env.waitForJobState(failing, 'FAILED');
    await env.waitForJobState(empty, 'FAILED');
    await env.waitForJobState(without, 'FINISHED');

    const [taskDir, errorFile, exists] = read(env.path(`job-${ok}`, '0.stdout'))
      .trimEnd()
      .split('\n');
    assert.equal(exists, 'exists');
    assert.equal(path.dirname(taskDir!), worker.workDir, 'the task dir is in the worker work dir');
    assert.equal(errorFile, path.join(taskDir!, 'hq-error'));
    assert.equal(fs.existsSync(taskDir!), false, 'the task dir is removed after the task');

    assert.equal((await jobDetail(env, failing)).tasks[0]?.error, 'custom failure: 0');
    assert.equal(
      (await jobDetail(env, empty)).tasks[0]?.error,
      'Task created an error file, but it is empty',
    );
    assert.equal(read(env.path(`job-${without}`, '0.stdout')), 'unset\n');
  });

  void it('--stdin gives the standard input of hq submit to every task', async () => {
    const r = await env.command(['submit', '--stdin', '--array', '1-2', '--', 'cat'], {
      stdin: 'first line\nsecond line\n',
    });
    assert.match(
      r.stdout,
      /^Reading data from stdin\. In the interactive mode press Ctrl-D to submit\.\nJob submitted successfully, job ID: \d+\n$/,
    );
    const id = Number(/job ID: (\d+)/.exec(r.stdout)?.[1]);
    const closed = await submit(env, ['--', 'bash', '-c', 'cat; echo "[eof]"']);
    await env.waitForJobState(id, 'FINISHED');
    await env.waitForJobState(closed, 'FINISHED');
    for (const t of [1, 2]) {
      assert.equal(read(env.path(`job-${id}`, `${t}.stdout`)), 'first line\nsecond line\n');
    }
    assert.equal(read(env.path(`job-${closed}`, '0.stdout')), '[eof]\n', 'no --stdin: empty input');
  });

  void it('#HQ directives in a .sh script, the command line winning, and --directives off', async () => {
    const dir = env.path('scripts');
    fs.mkdirSync(dir);
    const script = path.join(dir, 'job.sh');
    fs.writeFileSync(
      script,
      [
        '#!/bin/bash',
        '# an ordinary comment',
        '#HQ --name from-directive --array 1-3',
        '#HQ --env "GREETING=hello world" --cpus 2',
        '',
        'echo "$GREETING|$HQ_TASK_ID|${HQ_CPUS//[0-9]/n}"',
        '#HQ --priority 5',
        '',
      ].join('\n'),
      { mode: 0o755 },
    );
    const plainScript = path.join(dir, 'plain.sh');
    fs.writeFileSync(plainScript, '#!/bin/bash\necho plain\n', { mode: 0o755 });

    const parsed = await submit(env, ['./job.sh'], { cwd: dir });
    const off = await submit(env, ['--directives', 'off', './job.sh'], { cwd: dir });
    const cli = await submit(env, ['--name', 'from-cli', '--array', '7', './job.sh'], { cwd: dir });
    const named = await submit(env, ['./plain.sh'], { cwd: dir });
    for (const j of [parsed, off, cli, named]) {
      await env.waitForJobState(j, 'FINISHED');
    }
    const rows = horizontalTable(await env.output(['job', 'list', '--all']));
    const names = new Map(rows.map((r) => [r['ID'], r['Name']]));
    assert.equal(names.get(String(parsed)), 'from-directive');
    assert.equal(names.get(String(off)), 'job.sh');
    assert.equal(names.get(String(cli)), 'from-cli');
    assert.equal(names.get(String(named)), 'bash', 'named after the shebang interpreter');

    assert.deepEqual(
      [1, 2, 3].map((t) => read(path.join(dir, `job-${parsed}`, `${t}.stdout`))),
      [1, 2, 3].map((t) => `hello world|${t}|n,n\n`),
    );
    assert.equal(read(path.join(dir, `job-${off}`, '0.stdout')), '|0|n\n');
    assert.equal(read(path.join(dir, `job-${cli}`, '7.stdout')), 'hello world|7|n,n\n');

    const detail = await jobDetail(env, parsed);
    assert.deepEqual(detail.submits[0]?.array.program.args, ['/bin/bash', './job.sh']);
    const info = verticalMap(await env.output(['job', 'info', String(parsed)]));
    assert.equal(info.get('Priority'), '0', 'a directive after the first command line is ignored');
    assert.equal(info.get('Resources'), 'cpus: 2 compact');
    const offDetail = await jobDetail(env, off);
    assert.deepEqual(offDetail.submits[0]?.array.program.args, ['./job.sh']);
  });

  void it('--wait returns once the job ended, with exit code 0 also when tasks failed', async () => {
    const r = await env.command([
      'submit',
      '--wait',
      '--array',
      '1-3',
      '--',
      'bash',
      '-c',
      'sleep 0.3; exit $((HQ_TASK_ID == 2))',
    ]);
    assert.equal(r.code, 0);
    const id = Number(/^Job submitted successfully, job ID: (\d+)\n/.exec(r.stdout)?.[1]);
    assert.ok(id > 0, r.stdout);
    // No polling needed: the job is over the moment --wait returns.
    assert.equal(await env.jobState(id), 'FAILED');
    assert.deepEqual(await taskStates(env, id), [
      [1, 'finished'],
      [2, 'failed'],
      [3, 'finished'],
    ]);
  });

  void it('--progress prints a final progress line', async () => {
    const r = await env.command(['submit', '--progress', '--array', '1-4', '--', 'sleep', '0.2']);
    assert.equal(r.code, 0);
    const id = Number(/^Job submitted successfully, job ID: (\d+)\n/.exec(r.stdout)?.[1]);
    assert.ok(id > 0, r.stdout);
    // The bar redraws itself with \r (and an erase sequence): the last redraw is what counts.
    const last = r.stdout
      .trimEnd()
      .split(/[\r\n]/)
      .map((l) => l.replace(/\x1b\[[0-9;]*[A-Za-z]/g, ''))
      .filter((l) => l !== '')
      .pop();
    assert.match(last ?? '', /^\[#{40}\] 1\/1 jobs, 4\/4 tasks \(4 FINISHED\)$/);
    assert.equal(await env.jobState(id), 'FINISHED');

    const failed = await env.command(['submit', '--progress', '--', 'bash', '-c', 'exit 1']);
    assert.equal(failed.code, 0);
    assert.match(failed.stdout, /1\/1 jobs, 1\/1 tasks \(1 FAILED\)\n?$/);
  });

  void it('--job adds tasks to an open job; closed jobs refuse them', async () => {
    const open = await env.output(['job', 'open', '--name', 'growing']);
    const m = /^Job (\d+) is open\.\n$/.exec(open);
    assert.ok(m, open);
    const id = Number(m[1]);
    const args = ['--', 'bash', '-c', 'echo -n "$HQ_JOB_ID.$HQ_TASK_ID"'];
    assert.equal(await submit(env, ['--job', String(id), '--array', '3-4', ...args]), id);
    // Without --array, the next ids follow the largest one in the job.
    assert.equal(await submit(env, ['--job', String(id), ...args]), id);
    assert.equal(await submit(env, ['--job', String(id), '--array', '10', ...args]), id);
    const named = await env.command(['submit', '--job', String(id), '--name', 'x', '--', 'true'], {
      expectFail: true,
    });
    assert.match(named.stderr, /--name is not allowed when submitting to an open job/);
    await waitFor(async () => (await listedState(env, id)) === '*OPENED', {
      message: 'the open job to be idle',
    });
    assert.deepEqual(await taskStates(env, id), [
      [3, 'finished'],
      [4, 'finished'],
      [5, 'finished'],
      [10, 'finished'],
    ]);
    for (const t of [3, 4, 5, 10]) {
      assert.equal(read(env.path(`job-${id}`, `${t}.stdout`)), `${id}.${t}`);
    }
    await env.command(['job', 'close', String(id)]);
    assert.equal(await env.jobState(id), 'FINISHED');
    const late = await env.command(['submit', '--job', String(id), '--', 'true'], {
      expectFail: true,
    });
    assert.equal(late.stderr, `Error: Job ${id} is not opened.\n`);
    const missing = await env.command(['submit', '--job', '9999', '--', 'true'], {
      expectFail: true,
    });
    assert.match(missing.stderr, /9999/);
    assert.equal((await jobDetail(env, id)).info.task_count, 4);
  });

  void it('--stream writes a log dir that hq output-log reads (summary/show/cat/export)', async () => {
    const id = await submit(env, [
      '--stream',
      'logs',
      '--array',
      '1-3',
      '--',
      'bash',
      '-c',
      'echo "out$HQ_TASK_ID"; echo "err$HQ_TASK_ID" >&2',
    ]);
    await env.waitForJobState(id, 'FINISHED');
    const dir = env.path('logs');
    assert.equal(fs.existsSync(env.path(`job-${id}`)), false, 'no per-task files');
    const files = fs.readdirSync(dir);
    assert.equal(files.length, 1, 'one stream file per worker');
    assert.match(files[0]!, /^[A-Za-z0-9]{12}\.hqs$/);

    const summary = verticalMap(await env.output(['output-log', dir, 'summary']));
    assert.equal(summary.get('Files'), '1');
    assert.equal(summary.get('Jobs'), '1');
    assert.equal(summary.get('Tasks'), '3');
    assert.equal(summary.get('Opened streams'), '0');
    const json = await env.json<{ summary: Record<string, number> }>([
      'output-log',
      dir,
      'summary',
    ]);
    assert.deepEqual(json.summary, {
      n_files: 1,
      n_jobs: 1,
      n_opened: 0,
      n_streams: 3,
      n_superseded: 0,
      n_tasks: 3,
      stderr_size: 15,
      stdout_size: 15,
      superseded_stderr_size: 0,
      superseded_stdout_size: 0,
    });

    const shown = (await env.output(['output-log', dir, 'show'])).trimEnd().split('\n');
    assert.deepEqual(
      [...shown].sort(),
      [1, 2, 3].flatMap((t) => [`${id}.${t}:0> out${t}`, `${id}.${t}:1> err${t}`]).sort(),
    );
    assert.equal(
      await env.output(['output-log', dir, 'cat', String(id), 'stdout']),
      'out1\nout2\nout3\n',
    );
    assert.equal(
      await env.output(['output-log', dir, 'cat', String(id), 'stderr', '--task', '2']),
      'err2\n',
    );
    const exported = JSON.parse(
      await env.output(['output-log', dir, 'export', String(id)]),
    ) as unknown;
    assert.deepEqual(exported, [
      { finished: true, id: 1, stdout: 'out1\n' },
      { finished: true, id: 2, stdout: 'out2\n' },
      { finished: true, id: 3, stdout: 'out3\n' },
    ]);
  });

  void it('--pin omp sets OMP_PLACES and OMP_PROC_BIND unless the task sets them', async () => {
    const show = 'echo -n "$HQ_PIN|$OMP_PLACES|$OMP_PROC_BIND|$HQ_CPUS"';
    const pinned = await submit(env, ['--pin', 'omp', '--cpus', '2', '--', 'bash', '-c', show]);
    const preset = await submit(env, [
      '--pin',
      'omp',
      '--env',
      'OMP_PLACES=mine',
      '--',
      'bash',
      '-c',
      show,
    ]);
    await env.waitForJobState(pinned, 'FINISHED');
    await env.waitForJobState(preset, 'FINISHED');
    const [pin, places, bind, cpus] = read(env.path(`job-${pinned}`, '0.stdout')).split('|');
    assert.equal(pin, 'omp');
    assert.equal(places, `{${cpus}}`);
    assert.equal(cpus?.split(',').length, 2);
    assert.equal(bind, 'close');
    const [pin2, places2, bind2] = read(env.path(`job-${preset}`, '0.stdout')).split('|');
    assert.deepEqual([pin2, places2, bind2], ['omp', 'mine', 'close']);
    assert.equal(verticalMap(await env.output(['job', 'info', String(pinned)])).get('Pin'), 'omp');
  });

  void it('--on-notify runs a program for each `$HQ task notify` of a task', async () => {
    const log = env.path('notified.txt');
    const handler = env.path('on-notify.sh');
    fs.writeFileSync(
      handler,
      `#!/bin/bash\necho "$HQ_JOB_ID $HQ_TASK_ID $HQ_WORKER_ID [$*]" >> '${log}'\n`,
      { mode: 0o755 },
    );
    const r = await env.command([
      'submit',
      '--wait',
      '--on-notify',
      `${handler} fixed-arg`,
      '--array',
      '1-2',
      '--',
      'bash',
      '-c',
      '"$HQ" task notify "hello from $HQ_TASK_ID"',
    ]);
    const id = Number(/job ID: (\d+)/.exec(r.stdout)?.[1]);
    assert.equal(await env.jobState(id), 'FINISHED');
    // The handler runs before --wait returns.
    assert.deepEqual(
      read(log).trimEnd().split('\n').sort(),
      [1, 2].map((t) => `${id} ${t} ${worker.id} [fixed-arg hello from ${t}]`),
    );
  });
});

void describe('hq submit flags that need their own server', () => {
  void it('--priority runs higher priorities first; --time-request needs a long enough worker', () =>
    withEnv(async (env) => {
      await env.startServer();
      const order = env.path('order.txt');
      const record = ['--', 'bash', '-c', `echo "$HQ_JOB_ID.$HQ_TASK_ID" >> '${order}'`];
      // Everything is queued before there is any worker, then a one-cpu worker runs it all.
      const low = await submit(env, ['--array', '1-2', ...record]);
      const high = await submit(env, ['--priority', '10', ...record]);
      const negative = await submit(env, ['--priority', '-3', ...record]);
      const alsoHigh = await submit(env, ['--priority', '10', '--array', '4-5', ...record]);
      const middle = await submit(env, ['--priority', '5', ...record]);
      await env.startWorker({ cpus: 1, args: ['--time-limit', '1h'] });
      for (const j of [low, high, negative, alsoHigh, middle]) {
        await env.waitForJobState(j, 'FINISHED');
      }
      assert.deepEqual(read(order).trimEnd().split('\n'), [
        `${high}.0`,
        `${alsoHigh}.4`,
        `${alsoHigh}.5`,
        `${middle}.0`,
        `${low}.1`,
        `${low}.2`,
        `${negative}.0`,
      ]);
      // The start times say the same.
      const starts = await Promise.all(
        [high, middle, low, negative].map(
          async (j) => (await jobDetail(env, j)).tasks[0]!.started_at!,
        ),
      );
      assert.deepEqual([...starts].sort(), starts);
      assert.equal(
        verticalMap(await env.output(['job', 'info', String(high)])).get('Priority'),
        '10',
      );

      // The worker has less than 2h left: a 2h time request cannot start on it; 1s can.
      const tooLong = await submit(env, ['--time-request', '2h', '--', 'true']);
      const short = await submit(env, ['--time-request', '1s', '--', 'true']);
      await env.waitForJobState(short, 'FINISHED');
      assert.equal(await env.jobState(tooLong), 'WAITING');
      const explain = await env.output(['task', 'explain', String(tooLong), '0']);
      // One row per worker; its lines list the time and then the cpus.
      const [row] = horizontalTable(explain);
      assert.equal(row?.['Runnable'], 'No', explain);
      assert.equal(row?.['Type'], 'time\ncpus');
      assert.equal(row?.['Request'], '2h\n1');
    }));

  void it('--crash-limit fails a task after that many worker losses', () =>
    withEnv(async (env) => {
      await env.startServer();
      const pids = env.path('pids');
      fs.mkdirSync(pids);
      const hang = [
        '--',
        'bash',
        '-c',
        `echo $$ > '${pids}'/$HQ_JOB_ID.$HQ_INSTANCE_ID; sleep 100`,
      ];
      const twice = await submit(env, ['--crash-limit', '2', ...hang]);
      const never = await submit(env, ['--crash-limit', 'never-restart', ...hang]);
      const started = async (job: number, instance: number): Promise<void> => {
        const file = path.join(pids, `${job}.${instance}`);
        const pid = await waitFor(() => (fs.existsSync(file) ? Number(read(file).trim()) : 0), {
          message: `job ${job} instance ${instance} to start`,
        });
        env.trackProcessGroup(pid);
      };

      const w1 = await env.startWorker({ cpus: 2 });
      await started(twice, 0);
      await started(never, 0);
      await env.killWorker(w1.id, 'SIGKILL');
      await env.waitForJobState(never, 'FAILED');
      assert.equal(
        (await jobDetail(env, never)).tasks[0]?.error,
        'Task was running on a lost worker while never restart flag was set.',
      );
      // One loss is below the limit of two: the task waits for another worker.
      await waitFor(async () => (await taskStates(env, twice))[0]?.[1] === 'waiting', {
        message: 'the task to be waiting again',
      });

      const w2 = await env.startWorker({ cpus: 2 });
      await started(twice, 1);
      await env.killWorker(w2.id, 'SIGKILL');
      await env.waitForJobState(twice, 'FAILED');
      assert.equal(
        (await jobDetail(env, twice)).tasks[0]?.error,
        'Task was running on a worker that was lost; the task has occurred 2 times in this situation and limit was reached.',
      );
    }));
});
