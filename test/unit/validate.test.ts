import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { HqError } from '../../src/common/errors.js';
import { parseJobFile } from '../../src/common/job-file.js';
import { parseClientRequest, parseWorkerMessage, peerText } from '../../src/transport/validate.js';

/** The request `hq job submit-file` sends for `text` (as job-commands.ts builds it). */
function submitOf(text: string): Record<string, unknown> {
  const jf = parseJobFile(text, '/home/user/project');
  const body = jf.body;
  const common = { reqId: 1, jobId: null, name: jf.name, maxFails: jf.maxFails };
  return body.kind === 'graph'
    ? { ...common, op: 'submit-graph', graph: { tasks: body.tasks, submitDir: '/home/user' } }
    : {
        ...common,
        op: 'submit',
        array: {
          ids: body.ids ?? [],
          autoIds: body.ids === null,
          entries: body.entries,
          taskDesc: body.taskDesc,
          submitDir: '/home/user',
        },
      };
}

function refused(message: unknown): string {
  try {
    parseClientRequest(message);
  } catch (e) {
    assert.ok(e instanceof HqError && e.code === 'HQ_PROTOCOL', String(e));
    return e.message;
  }
  assert.fail(`accepted: ${JSON.stringify(message)}`);
}

void describe('validation of submits', () => {
  // The validator checks every field of a task description now: what our own clients send
  // must still pass, with every option the job file has.
  void it('accepts what job files with every option produce', () => {
    const graph = submitOf(`
name = "all options"
max_fails = 3
stream = "logs"
[[task]]
id = 1
command = ["bash", "-c", "echo $X"]
env = { X = "1" }
stdout = { path = "out-%{TASK_ID}", on_close = "rm-if-finished" }
stderr = "none"
cwd = "work"
pin = "omp"
task_dir = true
time_limit = "1500us"
priority = -5
crash_limit = "never-restart"
stdin = "some input"
[[task.request]]
resources = { "cpus" = "2 tight", "mem" = 100, "gpus" = 0.5, "x" = "all" }
weight = 2
time_request = "1.0005s"
[[task]]
id = 2
deps = [1]
command = ["true"]
crash_limit = 7
[[task.request]]
n_nodes = 2
`);
    assert.doesNotThrow(() => parseClientRequest(graph));
    const array = submitOf('[array]\nids = "2, 10-14:2"\ncommand = ["sleep", "0"]\n');
    assert.doesNotThrow(() => parseClientRequest(array));
    const entries = submitOf('[array]\nentries = ["a", "b"]\ncommand = ["echo"]\n');
    assert.doesNotThrow(() => parseClientRequest(entries));
  });

  void it('refuses a task description broken in any one field', () => {
    const base = submitOf('[array]\nids = "0-3"\ncommand = ["true"]\n');
    const broken = (change: (desc: Record<string, unknown>) => void): unknown => {
      const copy = structuredClone(base) as { array: { taskDesc: Record<string, unknown> } };
      change(copy.array.taskDesc);
      return copy;
    };
    const program = (d: Record<string, unknown>): Record<string, unknown> =>
      d['program'] as Record<string, unknown>;
    const variant = (d: Record<string, unknown>): Record<string, unknown> =>
      (d['resources'] as Record<string, unknown>[])[0]!;
    const cases: [string, (d: Record<string, unknown>) => void][] = [
      ['variant without resources', (d) => delete variant(d)['resources']],
      ['resource of unknown kind', (d) => (variant(d)['resources'] = [{ resource: 'cpus' }])],
      ['negative weight', (d) => (variant(d)['weight'] = -1)],
      ['stdout without kind', (d) => (program(d)['stdout'] = {})],
      ['env value not a string', (d) => (program(d)['env'] = { A: 1 })],
      ['stdin a string', (d) => (program(d)['stdin'] = 'x')],
      ['priority a string', (d) => (d['priority'] = '1')],
      ['crash limit a map', (d) => (d['crashLimit'] = {})],
      ['time limit negative', (d) => (d['timeLimitMs'] = -1)],
      ['pin mode unknown', (d) => (d['pinMode'] = 'numa')],
      ['task dir missing', (d) => delete d['taskDir']],
    ];
    for (const [what, change] of cases) {
      assert.match(refused(broken(change)), /invalid message/, what);
    }
    const noStep = structuredClone(base) as { array: { ids: unknown[] } };
    noStep.array.ids = [{ start: 0, count: 1 }];
    refused(noStep);
  });

  void it('quotes what a peer sent, escaped and cut short, in its refusals', () => {
    assert.equal(peerText('a\nb'), "'a\\nb'");
    assert.equal(peerText('x'.repeat(100)), `'${'x'.repeat(64)}…'`);
    assert.match(refused({ op: 'a\n2000-01-01T00:00:00Z INFO x', reqId: 1 }), /^[^\n]*$/);
  });
});

void describe('worker overviews', () => {
  void it('accept running tasks with CPU ids and refuse malformed ones', () => {
    const ok = parseWorkerMessage({ op: 'overview', hwState: null, tasks: [[1, 2, [0, 3]]] });
    assert.deepEqual(ok, { op: 'overview', hwState: null, tasks: [[1, 2, [0, 3]]] });
    assert.ok(parseWorkerMessage({ op: 'overview', hwState: null }), 'tasks are optional');
    for (const tasks of [{}, [[1, 2]], [[1, 2, [-1]]], [[1, 'x', []]], [[1, 2, [0.5]]]]) {
      assert.throws(
        () => parseWorkerMessage({ op: 'overview', hwState: null, tasks }),
        (e: unknown) => e instanceof HqError && /tasks is not a list/.test(e.message),
        JSON.stringify(tasks),
      );
    }
  });
});
