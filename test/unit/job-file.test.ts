import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { HqError } from '../../src/common/errors.js';
import { idRangesToArray } from '../../src/common/id-set.js';
import { parseJobFile, type JobFile, type JobFileGraphTask } from '../../src/common/job-file.js';
import type { ResourceRequest } from '../../src/common/resources.js';
import type { TaskDesc } from '../../src/transport/messages.js';

const CWD = '/home/user/project';

function parse(text: string): JobFile {
  return parseJobFile(text, CWD);
}

function graph(text: string): JobFileGraphTask[] {
  const job = parse(text);
  assert.equal(job.body.kind, 'graph');
  return job.body.kind === 'graph' ? job.body.tasks : [];
}

function only(text: string): TaskDesc {
  const tasks = graph(text);
  assert.equal(tasks.length, 1);
  const [task] = tasks;
  assert.ok(task !== undefined);
  return task.taskDesc;
}

function task(body: string): TaskDesc {
  return only(`[[task]]\ncommand = ["sleep", "0"]\n${body}`);
}

function assertFails(text: string, message: string): void {
  assert.throws(
    () => parse(text),
    (error: unknown) => {
      assert.ok(error instanceof HqError);
      assert.equal(error.code, 'HQ_INVALID_ARGUMENT');
      assert.equal(error.message, message);
      assert.ok(!error.message.includes('\n'));
      return true;
    },
  );
}

function taskFails(body: string, message: string): void {
  assertFails(`[[task]]\ncommand = ["sleep", "0"]\n${body}`, message);
}

const CPU1: ResourceRequest = {
  nNodes: 0,
  minTimeMs: 0,
  resources: [{ resource: 'cpus', request: { kind: 'amount', amount: 10_000, policy: 'compact' } }],
  weight: 10_000,
};

void describe('parseJobFile: minimal file and defaults', () => {
  void it('gives a single id-less task the id 1 and the defaults of hq submit', () => {
    const job = parse('[[task]]\ncommand = ["sleep", "1"]\n');
    assert.equal(job.name, '');
    assert.equal(job.maxFails, null);
    assert.equal(job.stream, null);
    assert.deepEqual(job.body, {
      kind: 'graph',
      tasks: [
        {
          id: 1,
          deps: [],
          taskDesc: {
            program: {
              args: ['sleep', '1'],
              env: {},
              cwd: CWD,
              stdout: {
                kind: 'file',
                path: '%{CWD}/job-%{JOB_ID}/%{TASK_ID}.stdout',
                rmIfFinished: false,
              },
              stderr: {
                kind: 'file',
                path: '%{CWD}/job-%{JOB_ID}/%{TASK_ID}.stderr',
                rmIfFinished: false,
              },
              stdin: null,
            },
            resources: [CPU1],
            timeLimitMs: null,
            priority: 0,
            crashLimit: 5,
            taskDir: false,
            pinMode: null,
            streamPath: null,
          },
        },
      ],
    });
  });

  void it('reads name, max_fails and data_layer', () => {
    const job = parse(
      'name = "test-job"\nmax_fails = 11\ndata_layer = true\n[[task]]\ncommand = ["a"]\n',
    );
    assert.equal(job.name, 'test-job');
    assert.equal(job.maxFails, 11);
  });

  void it('uses an empty request list as no request', () => {
    assert.deepEqual(task('request = []').resources, [CPU1]);
  });
});

void describe('parseJobFile: a task with every field', () => {
  const text = `
name = "test-job"
max_fails = 11

[[task]]
id = 12
stdout = "testout-%{TASK_ID}"
stderr = "testerr-%{TASK_ID}"
task_dir = true
time_limit = "1m 10s"
priority = -1
crash_limit = 12
command = ["bash", "-c", "echo $ABC $XYZ"]
env = {"ABC" = "123", "XYZ" = "aaaa"}
stdin = "Hello world!"
[[task.request]]
n_nodes = 2

[[task]]
id = 200
pin = "taskset"
cwd = "test-200"
command = ["bash", "-c", "echo test1"]
[[task.request]]
resources = { "gpus" = 2, "cpus" = "4 compact!" }
time_request = "10s"
weight = 11.2

[[task]]
id = 13
pin = "omp"
command = ["sleep", "0"]

[[task]]
id = 14
command = ["sleep", "0"]
[[task.request]]
resources = { "gpus" = 1.1 }
`;

  void it('maps each field onto the task description', () => {
    const job = parse(text);
    assert.equal(job.name, 'test-job');
    assert.equal(job.maxFails, 11);
    const tasks = job.body.kind === 'graph' ? job.body.tasks : [];
    assert.deepEqual(
      tasks.map((t) => t.id),
      [12, 200, 13, 14],
    );
    const [t12, t200, t13, t14] = tasks.map((t) => t.taskDesc);
    assert.ok(t12 !== undefined && t200 !== undefined && t13 !== undefined && t14 !== undefined);

    assert.deepEqual(t12.program.args, ['bash', '-c', 'echo $ABC $XYZ']);
    assert.deepEqual(t12.program.env, { ABC: '123', XYZ: 'aaaa' });
    assert.equal(t12.program.cwd, CWD);
    assert.deepEqual(t12.program.stdout, {
      kind: 'file',
      path: 'testout-%{TASK_ID}',
      rmIfFinished: false,
    });
    assert.deepEqual(t12.program.stderr, {
      kind: 'file',
      path: 'testerr-%{TASK_ID}',
      rmIfFinished: false,
    });
    assert.deepEqual(t12.program.stdin, new TextEncoder().encode('Hello world!'));
    assert.equal(t12.taskDir, true);
    assert.equal(t12.timeLimitMs, 70_000);
    assert.equal(t12.priority, -1);
    assert.equal(t12.crashLimit, 12);
    assert.equal(t12.pinMode, null);
    assert.deepEqual(t12.resources, [{ nNodes: 2, minTimeMs: 0, resources: [], weight: 10_000 }]);

    assert.equal(t200.pinMode, 'taskset');
    assert.equal(t200.program.cwd, 'test-200');
    assert.equal(t200.timeLimitMs, null);
    assert.equal(t200.priority, 0);
    assert.equal(t200.crashLimit, 5);
    assert.equal(t200.taskDir, false);
    assert.deepEqual(t200.resources, [
      {
        nNodes: 0,
        minTimeMs: 10_000,
        resources: [
          { resource: 'cpus', request: { kind: 'amount', amount: 40_000, policy: 'compact!' } },
          { resource: 'gpus', request: { kind: 'amount', amount: 20_000, policy: 'compact' } },
        ],
        weight: 112_000,
      },
    ]);

    assert.equal(t13.pinMode, 'omp');
    assert.deepEqual(t13.resources, [CPU1]);

    // An explicit request without cpus asks for no cpus.
    assert.deepEqual(t14.resources, [
      {
        nNodes: 0,
        minTimeMs: 0,
        resources: [
          { resource: 'gpus', request: { kind: 'amount', amount: 11_000, policy: 'compact' } },
        ],
        weight: 10_000,
      },
    ]);
  });
});

void describe('parseJobFile: task ids and dependencies', () => {
  void it('numbers id-less tasks after the largest explicit id', () => {
    const tasks = graph(`
[[task]]
command = ["sleep", "0"]
[[task]]
id = 12
command = ["sleep", "0"]
[[task]]
id = 3
command = ["sleep", "0"]
[[task]]
command = ["sleep", "0"]
[[task]]
command = ["sleep", "0"]
`);
    assert.deepEqual(
      tasks.map((t) => t.id),
      [13, 12, 3, 14, 15],
    );
  });

  void it('accepts id 0', () => {
    assert.deepEqual(
      graph('[[task]]\nid = 0\ncommand = ["a"]\n[[task]]\ncommand = ["a"]').map((t) => t.id),
      [0, 1],
    );
  });

  void it('keeps deps and sorts tasks so that deps come first', () => {
    const tasks = graph(`
[[task]]
id = 20
command = ["sleep", "0"]
deps = [1, 3]
[[task]]
id = 1
command = ["sleep", "0"]
deps = [10]
[[task]]
id = 3
command = ["sleep", "0"]
[[task]]
id = 5
command = ["sleep", "0"]
deps = [1, 3]
[[task]]
id = 10
command = ["sleep", "0"]
[[task]]
id = 2
command = ["sleep", "0"]
deps = [5, 10]
`);
    assert.deepEqual(
      tasks.map((t) => t.id),
      [3, 10, 1, 20, 5, 2],
    );
    const seen = new Set<number>();
    for (const t of tasks) {
      for (const dep of t.deps) {
        assert.ok(seen.has(dep), `task ${t.id} comes before its dependency ${dep}`);
      }
      seen.add(t.id);
    }
    assert.deepEqual(tasks.find((t) => t.id === 2)?.deps, [5, 10]);
    assert.deepEqual(tasks.find((t) => t.id === 3)?.deps, []);
  });

  void it('lets a dep name an auto-numbered task and drops repeated deps', () => {
    const tasks = graph(`
[[task]]
command = ["a"]
[[task]]
id = 7
command = ["b"]
deps = [8, 8]
`);
    assert.deepEqual(
      tasks.map((t) => [t.id, t.deps]),
      [
        [8, []],
        [7, [8]],
      ],
    );
  });

  void it('rejects ids defined twice', () => {
    assertFails(
      '[[task]]\nid = 4\ncommand = ["a"]\n[[task]]\nid = 4\ncommand = ["b"]',
      'Task 4 is defined multiple times',
    );
  });

  void it('rejects cycles, self-dependencies and unknown deps', () => {
    assertFails(
      '[[task]]\nid = 2\ncommand = ["a"]\ndeps = [1]\n[[task]]\nid = 1\ncommand = ["a"]\ndeps = [2]',
      'Task 2 is part of dependency cycle or has an invalid dependencies',
    );
    assertFails(
      '[[task]]\nid = 5\ncommand = ["a"]\ndeps = [5]',
      'Task 5 is part of dependency cycle or has an invalid dependencies',
    );
    assertFails(
      '[[task]]\nid = 1\ncommand = ["a"]\n[[task]]\nid = 2\ncommand = ["a"]\ndeps = [1, 99]',
      'Task 2 is part of dependency cycle or has an invalid dependencies',
    );
  });

  void it('checks the types of id and deps', () => {
    taskFails(
      'id = -1',
      'Deserialization error: invalid value: integer `-1`, expected u32 (at `task[0].id`)',
    );
    taskFails(
      'id = "x"',
      'Deserialization error: invalid type: string "x", expected u32 (at `task[0].id`)',
    );
    taskFails(
      'deps = 1',
      'Deserialization error: invalid type: integer `1`, expected a sequence (at `task[0].deps`)',
    );
    taskFails(
      'deps = [1.5]',
      'Deserialization error: invalid type: floating point `1.5`, expected u32 (at `task[0].deps[0]`)',
    );
  });
});

void describe('parseJobFile: arrays', () => {
  void it('reads ids in the order written', () => {
    const job = parse('[array]\nids = "2, 10-14, 120"\ncommand = ["sleep", "0"]\n');
    assert.equal(job.body.kind, 'array');
    if (job.body.kind !== 'array') {
      return;
    }
    assert.deepEqual(idRangesToArray(job.body.ids ?? []), [2, 10, 11, 12, 13, 14, 120]);
    assert.equal(job.body.entries, null);
    assert.deepEqual(job.body.taskDesc.program.args, ['sleep', '0']);
    assert.deepEqual(job.body.taskDesc.resources, [CPU1]);
  });

  void it('gives entries without ids (null ids)', () => {
    const job = parse('[array]\nentries = ["a", "bb", "ccc"]\ncommand = ["echo"]\n');
    assert.deepEqual(job.body.kind === 'array' ? [job.body.ids, job.body.entries] : null, [
      null,
      ['a', 'bb', 'ccc'],
    ]);
  });

  void it('pairs ids with entries of the same count', () => {
    const job = parse(
      '[array]\nids = "2,10-12"\nentries = ["a", "bb", "ccc", "x"]\ncommand = ["e"]',
    );
    assert.ok(job.body.kind === 'array');
    assert.deepEqual(idRangesToArray(job.body.ids ?? []), [2, 10, 11, 12]);
    assert.deepEqual(job.body.entries, ['a', 'bb', 'ccc', 'x']);
  });

  void it('treats an empty entries list as no entries', () => {
    const job = parse('[array]\nids = "1-2"\nentries = []\ncommand = ["e"]');
    assert.ok(job.body.kind === 'array');
    assert.equal(job.body.entries, null);
  });

  void it('rejects mismatched counts, a missing ids/entries and bad ids', () => {
    assertFails(
      '[array]\nids = "1-3"\nentries = ["a"]\ncommand = ["e"]',
      "Deserialization error: Items 'ids' and 'entries' does not match",
    );
    assertFails(
      '[array]\ncommand = ["e"]',
      "Deserialization error: One of attributes of array must be defined: 'ids', 'entries'",
    );
    assertFails(
      '[array]\nentries = []\ncommand = ["e"]',
      "Deserialization error: One of attributes of array must be defined: 'ids', 'entries'",
    );
    assertFails(
      '[array]\nids = "3-1"\ncommand = ["e"]',
      "Deserialization error: Invalid id range '3-1': invalid range '3-1': the end is smaller than the start (at `array.ids`)",
    );
    assertFails(
      '[array]\nids = 5\ncommand = ["e"]',
      'Deserialization error: invalid type: integer `5`, expected a string (at `array.ids`)',
    );
    assertFails(
      '[array]\nentries = [1]\ncommand = ["e"]',
      'Deserialization error: invalid type: integer `1`, expected a string (at `array.entries[0]`)',
    );
  });

  void it('rejects an array mixed with tasks, and a file without tasks', () => {
    assertFails(
      '[array]\nids = "2"\ncommand = ["sleep", "0"]\n[[task]]\nid = 1\ncommand = ["sleep", "0"]',
      'Deserialization error: Definition of array job and individual task cannot be mixed',
    );
    assertFails("name = 'myjob'", 'Deserialization error: No tasks defined');
    assertFails('task = []', 'Deserialization error: No tasks defined');
  });

  void it('rejects [[array]] and [task]', () => {
    assertFails(
      '[[array]]\nids = "1"\ncommand = ["e"]',
      'Deserialization error: invalid type: sequence, expected struct ArrayDef (at `array`)',
    );
    assertFails(
      '[task]\ncommand = ["e"]',
      'Deserialization error: invalid type: map, expected a sequence (at `task`)',
    );
  });
});

void describe('parseJobFile: stream and stdio', () => {
  void it('streams outputs that are not set explicitly', () => {
    const job = parse(
      'stream = "output"\n[[task]]\ncommand = ["a"]\n[[task]]\ncommand = ["b"]\nstdout = "out.txt"\nstderr = "none"',
    );
    assert.equal(job.stream, 'output');
    const [a, b] = job.body.kind === 'graph' ? job.body.tasks.map((t) => t.taskDesc) : [];
    assert.ok(a !== undefined && b !== undefined);
    assert.equal(a.streamPath, 'output');
    assert.deepEqual(a.program.stdout, { kind: 'pipe' });
    assert.deepEqual(a.program.stderr, { kind: 'pipe' });
    assert.deepEqual(b.program.stdout, { kind: 'file', path: 'out.txt', rmIfFinished: false });
    assert.deepEqual(b.program.stderr, { kind: 'null' });
  });

  void it('reads the table form of stdout/stderr', () => {
    const desc = task(
      'stdout = { path = "foo", on_close = "rm-if-finished" }\nstderr = { path = "none", on_close = "none" }',
    );
    assert.deepEqual(desc.program.stdout, { kind: 'file', path: 'foo', rmIfFinished: true });
    assert.deepEqual(desc.program.stderr, { kind: 'file', path: 'none', rmIfFinished: false });
  });

  void it('needs both keys of the table form and nothing else', () => {
    taskFails(
      'stdout = { path = "foo" }',
      'Deserialization error: missing field `on_close` (at `task[0].stdout`)',
    );
    taskFails(
      'stdout = { on_close = "none" }',
      'Deserialization error: missing field `path` (at `task[0].stdout`)',
    );
    taskFails(
      'stdout = { path = "a", on_close = "never" }',
      'Deserialization error: unknown variant `never`, expected `none` or `rm-if-finished` (at `task[0].stdout.on_close`)',
    );
    taskFails(
      'stdout = { path = "a", on_close = "none", mode = 1 }',
      'Deserialization error: unknown field `mode`, expected `path` or `on_close` (at `task[0].stdout`)',
    );
    taskFails(
      'stderr = 3',
      'Deserialization error: invalid type: integer `3`, expected a string containing file path or a structure with two attributes (`path` and `on_close`) (at `task[0].stderr`)',
    );
  });

  void it('rejects a non-string stream', () => {
    assertFails(
      'stream = 1\n[[task]]\ncommand = ["a"]',
      'Deserialization error: invalid type: integer `1`, expected path string (at `stream`)',
    );
  });
});

void describe('parseJobFile: task fields', () => {
  void it('reads env from an inline or a sub-table', () => {
    assert.deepEqual(task('env = {"ABC" = "abc", "XYZ" = "55"}').program.env, {
      ABC: 'abc',
      XYZ: '55',
    });
    assert.deepEqual(task('[task.env]\n"ABC" = "abc"\nXYZ = "55"').program.env, {
      ABC: 'abc',
      XYZ: '55',
    });
    const env = task('env = {"__proto__" = "x"}').program.env;
    assert.deepEqual(Object.keys(env), ['__proto__']);
    assert.equal(Object.getPrototypeOf(env), Object.prototype);
    taskFails(
      'env = {A = 1}',
      'Deserialization error: invalid type: integer `1`, expected a byte string (at `task[0].env.A`)',
    );
  });

  void it('reads pin', () => {
    assert.equal(task('pin = "none"').pinMode, null);
    assert.equal(task('pin = "taskset"').pinMode, 'taskset');
    assert.equal(task('pin = "omp"').pinMode, 'omp');
    taskFails(
      'pin = "all"',
      'Deserialization error: unknown variant `all`, expected one of `none`, `taskset`, `omp` (at `task[0].pin`)',
    );
  });

  void it('reads crash_limit', () => {
    assert.equal(task('crash_limit = 1').crashLimit, 1);
    assert.equal(task('crash_limit = 65535').crashLimit, 65_535);
    assert.equal(task('crash_limit = "3"').crashLimit, 3);
    assert.equal(task('crash_limit = "never-restart"').crashLimit, 'never-restart');
    assert.equal(task('crash_limit = "unlimited"').crashLimit, 'unlimited');
    const zero =
      'Deserialization error: Crash limit cannot be 0. Use `never-restart` or `unlimited` instead. (at `task[0].crash_limit`)';
    taskFails('crash_limit = 0', zero);
    taskFails('crash_limit = "0"', zero);
    taskFails(
      'crash_limit = -1',
      'Deserialization error: out of range integral type conversion attempted (at `task[0].crash_limit`)',
    );
    taskFails(
      'crash_limit = 65536',
      'Deserialization error: out of range integral type conversion attempted (at `task[0].crash_limit`)',
    );
    taskFails(
      'crash_limit = "often"',
      'Deserialization error: Invalid crash limit: ParseIntError { kind: InvalidDigit } (at `task[0].crash_limit`)',
    );
    taskFails(
      'crash_limit = 1.5',
      'Deserialization error: invalid type: floating point `1.5`, expected a number or string representing crash limit (at `task[0].crash_limit`)',
    );
  });

  void it('reads time_limit, priority, task_dir, cwd and stdin', () => {
    assert.equal(task('time_limit = "1h 30m"').timeLimitMs, 5_400_000);
    assert.equal(task('priority = 2147483647').priority, 2_147_483_647);
    assert.equal(task('priority = -2147483648').priority, -2_147_483_648);
    assert.equal(task('task_dir = false').taskDir, false);
    assert.equal(task('cwd = "/tmp/x"').program.cwd, '/tmp/x');
    assert.deepEqual(task('stdin = "ž"').program.stdin, new Uint8Array([0xc5, 0xbe]));
    taskFails(
      'time_limit = "10"',
      'Deserialization error: time unit needed, for example 10sec or 10ms (at `task[0].time_limit`)',
    );
    taskFails(
      'time_limit = 10',
      'Deserialization error: invalid type: integer `10`, expected a string (at `task[0].time_limit`)',
    );
    taskFails(
      'priority = 2147483648',
      'Deserialization error: invalid value: integer `2147483648`, expected i32 (at `task[0].priority`)',
    );
    taskFails(
      'priority = 1.0',
      'Deserialization error: invalid type: floating point `1.0`, expected i32 (at `task[0].priority`)',
    );
    taskFails(
      'task_dir = "yes"',
      'Deserialization error: invalid type: string "yes", expected a boolean (at `task[0].task_dir`)',
    );
  });

  void it('requires a non-empty command list of strings', () => {
    assertFails(
      '[[task]]\nid = 1',
      'Deserialization error: missing field `command` (at `task[0]`)',
    );
    assertFails(
      '[[task]]\ncommand = []',
      'Deserialization error: the command must not be empty (at `task[0].command`)',
    );
    assertFails(
      '[[task]]\ncommand = "sleep 1"',
      'Deserialization error: invalid type: string "sleep 1", expected a sequence (at `task[0].command`)',
    );
    assertFails(
      '[array]\nids = "1"\ncommand = ["a", 2]',
      'Deserialization error: invalid type: integer `2`, expected a string (at `array.command[1]`)',
    );
  });
});

void describe('parseJobFile: resource requests', () => {
  function requests(body: string): ResourceRequest[] {
    return task(body).resources;
  }

  void it('reads integers, floats, strings and all', () => {
    const [rq] = requests(
      '[[task.request]]\nresources = { "cpus" = "2 tight", "mem" = 100, "gpus" = 0.5, "x" = "all", "y" = 20.0001 }',
    );
    assert.deepEqual(rq?.resources, [
      { resource: 'cpus', request: { kind: 'amount', amount: 20_000, policy: 'tight' } },
      { resource: 'gpus', request: { kind: 'amount', amount: 5_000, policy: 'compact' } },
      { resource: 'mem', request: { kind: 'amount', amount: 1_000_000, policy: 'compact' } },
      { resource: 'x', request: { kind: 'all' } },
      { resource: 'y', request: { kind: 'amount', amount: 200_001, policy: 'compact' } },
    ]);
  });

  void it('keeps the order of variants and their weights and time requests', () => {
    const rqs = requests(`
[[task.request]]
resources = {"cpus" = 2}
weight = 2
[[task.request]]
resources = {"cpus" = 1, "gpus" = 2}
weight = 0.5
time_request = "1min"
`);
    assert.deepEqual(
      rqs.map((r) => [r.resources.map((e) => e.resource), r.weight, r.minTimeMs]),
      [
        [['cpus'], 20_000, 0],
        [['cpus', 'gpus'], 5_000, 60_000],
      ],
    );
  });

  void it('reads multi-node requests', () => {
    assert.deepEqual(requests('[[task.request]]\nn_nodes = 2\n[[task.request]]\nn_nodes = 3'), [
      { nNodes: 2, minTimeMs: 0, resources: [], weight: 10_000 },
      { nNodes: 3, minTimeMs: 0, resources: [], weight: 10_000 },
    ]);
  });

  void it('rejects invalid amounts', () => {
    taskFails(
      '[[task.request]]\nresources = { cpus = true }',
      'Deserialization error: data did not match any variant of untagged enum PrimitiveType (at `task[0].request[0].resources.cpus`)',
    );
    taskFails(
      '[[task.request]]\nresources = { cpus = "x" }',
      "Deserialization error: Invalid resource request 'x': unexpected `x` at position 0, expected an amount or `all` (at `task[0].request[0].resources.cpus`)",
    );
    taskFails(
      '[[task.request]]\nresources = { cpus = -1 }',
      'Deserialization error: Zero resources cannot be requested (at `task[0].request`)',
    );
    taskFails(
      '[[task.request]]\nresources = { cpus = 0 }',
      'Deserialization error: Zero resources cannot be requested (at `task[0].request`)',
    );
    taskFails(
      '[[task.request]]\nresources = { cpus = inf }',
      'Deserialization error: resource amount floating point `inf` is too large (at `task[0].request[0].resources.cpus`)',
    );
    taskFails(
      '[[task.request]]\nresources = [1]',
      'Deserialization error: invalid type: sequence, expected a map (at `task[0].request[0].resources`)',
    );
  });

  void it('rejects invalid weights, node counts and time requests', () => {
    taskFails(
      '[[task.request]]\nweight = 0',
      'Deserialization error: Resource weight has to be positive number (at `task[0].request[0].weight`)',
    );
    taskFails(
      '[[task.request]]\nweight = "1"',
      'Deserialization error: invalid type: string "1", expected f32 (at `task[0].request[0].weight`)',
    );
    taskFails(
      '[[task.request]]\nn_nodes = -2',
      'Deserialization error: invalid value: integer `-2`, expected u32 (at `task[0].request[0].n_nodes`)',
    );
    taskFails(
      '[[task.request]]\ntime_request = "soon"',
      'Deserialization error: expected number at 0 (at `task[0].request[0].time_request`)',
    );
  });

  void it('rejects bad variant sets', () => {
    taskFails(
      '[[task.request]]\nn_nodes = 2\n[[task.request]]\nresources = {cpus = 1}',
      'Deserialization error: Resources mixes multi-node and non-multi-node requests (at `task[0].request`)',
    );
    taskFails(
      '[[task.request]]\n',
      'Deserialization error: Resource request is empty (at `task[0].request`)',
    );
    const many = '[[task.request]]\nresources = {cpus = 1}\n'.repeat(33);
    taskFails(many, 'Deserialization error: Too many resource variants (at `task[0].request`)');
    assert.equal(
      task('[[task.request]]\nresources = {cpus = 1}\n'.repeat(32)).resources.length,
      32,
    );
    taskFails(
      '[task.request]\nresources = {cpus = 1}',
      'Deserialization error: invalid type: map, expected a sequence (at `task[0].request`)',
    );
  });
});

void describe('parseJobFile: unknown keys', () => {
  void it('names the key at the top level with the known ones', () => {
    assertFails(
      'nmae = "x"\n[[task]]\ncommand = ["a"]',
      'Deserialization error: unknown field `nmae`, expected one of `name`, `max_fails`, `task`, `array`, `stream`, `data_layer`',
    );
  });

  void it('names the key in a task or an array', () => {
    taskFails(
      'some_unknown_field_xxx = "123"',
      'Deserialization error: unknown field `some_unknown_field_xxx` (at `task[0]`)',
    );
    assertFails(
      '[array]\nids = "1"\ncommand = ["a"]\ndeps = [1]',
      'Deserialization error: unknown field `deps` (at `array`)',
    );
    assertFails(
      '[[task]]\ncommand = ["a"]\nentries = ["x"]',
      'Deserialization error: unknown field `entries` (at `task[0]`)',
    );
  });

  void it('names the key in a request with the known ones', () => {
    taskFails(
      '[[task.request]]\ncpus = 1',
      'Deserialization error: unknown field `cpus`, expected one of `n_nodes`, `time_request`, `resources`, `weight` (at `task[0].request[0]`)',
    );
  });

  void it('checks the top-level types', () => {
    assertFails(
      'max_fails = -1\n[[task]]\ncommand = ["a"]',
      'Deserialization error: invalid value: integer `-1`, expected u32 (at `max_fails`)',
    );
    assertFails(
      'data_layer = 1\n[[task]]\ncommand = ["a"]',
      'Deserialization error: invalid type: integer `1`, expected a boolean (at `data_layer`)',
    );
    assertFails(
      'task = [1]',
      'Deserialization error: invalid type: integer `1`, expected struct TaskDef (at `task[0]`)',
    );
  });
});

void describe('parseJobFile: TOML syntax', () => {
  void it('reports syntax errors on one line with their position', () => {
    assertFails(
      '[[task]]\ncommand = = ["a"]',
      'Deserialization error: TOML parse error at line 2, column 11: invalid value',
    );
    assertFails(
      'name = "a"\nname = "b"\n[[task]]\ncommand = ["a"]',
      'Deserialization error: TOML parse error at line 2, column 1: trying to redefine an already defined table or value',
    );
  });
});
