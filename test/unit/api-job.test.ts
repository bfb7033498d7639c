import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';

import {
  InvalidJobError,
  Job,
  NodeEnv,
  TASK_RUNNER,
  TS_DEFAULT_JOB_NAME,
  taskFunction,
} from '../../src/api/index.js';
import { toGraphSubmit } from '../../src/api/job-spec.js';
import { HqError } from '../../src/common/errors.js';

const SUBMIT_DIR = '/home/user/project';

export const train = taskFunction(
  import.meta.url,
  'train',
  (_lr: number, _name: string, _opts: { epochs: number }) => undefined,
);

function decode(b64: string | null | undefined): string {
  assert.ok(typeof b64 === 'string');
  return Buffer.from(b64, 'base64').toString('utf8');
}

void describe('Job -> ApiJob', () => {
  void it('uses the API defaults and numbers tasks in creation order', () => {
    const job = new Job();
    const a = job.program(['echo', 'a']);
    const b = job.program('hostname');
    assert.equal(a.id, 0);
    assert.equal(b.id, 1);
    assert.equal(a.label, '0');
    const api = job.toApiJob({ submitDir: SUBMIT_DIR });
    assert.deepEqual(api, {
      name: TS_DEFAULT_JOB_NAME,
      maxFails: 1,
      submitDir: SUBMIT_DIR,
      tasks: [
        { id: 0, args: ['echo', 'a'], env: {}, taskDir: false, deps: [] },
        { id: 1, args: ['hostname'], env: {}, taskDir: false, deps: [] },
      ],
    });
    // The shared conversion gives the API's stdio defaults and the submit dir as cwd.
    const graph = toGraphSubmit(api, 'unused').graph;
    const desc = graph.tasks[0]!.taskDesc;
    assert.equal(desc.program.cwd, SUBMIT_DIR);
    assert.deepEqual(desc.program.stdout, {
      kind: 'file',
      path: '%{CWD}/%{TASK_ID}.stdout',
      rmIfFinished: false,
    });
    assert.equal(toGraphSubmit(api, 'unused').maxFails, 1);
    assert.equal(toGraphSubmit(api, 'unused').name, 'TS API job');
  });

  void it('merges env over defaultEnv and takes cwd from defaultWorkdir (made absolute)', () => {
    const job = new Job({
      name: 'n',
      maxFails: null,
      defaultEnv: { A: '1', B: '2' },
      defaultWorkdir: 'rel/dir',
    });
    job.program(['env'], { env: { B: '3', C: '4' } });
    job.program(['env'], { cwd: '/explicit' });
    const api = job.toApiJob({ submitDir: SUBMIT_DIR });
    assert.equal(api.name, 'n');
    assert.equal(api.maxFails, null);
    assert.deepEqual(api.tasks[0]!.env, { A: '1', B: '3', C: '4' });
    assert.equal(api.tasks[0]!.cwd, path.resolve('rel/dir'));
    assert.equal(api.tasks[1]!.cwd, '/explicit');
    assert.equal(toGraphSubmit(api, 'x').maxFails, null);
  });

  void it('converts stdio, stdin, priority, crash limits and deps', () => {
    const job = new Job();
    const a = job.program(['cat'], {
      stdout: 'out.txt',
      stderr: null,
      stdin: 'Hello\n',
      priority: -3,
      crashLimit: 'never-restart',
      name: 'first',
      taskDir: true,
    });
    const b = job.program(['cat'], {
      stdout: { path: null },
      stderr: { path: 'err.txt', onClose: 'rm-if-finished' },
      stdin: new Uint8Array([0, 255, 10]),
      deps: [a],
      crashLimit: 2,
    });
    job.program(['true'], { deps: [a, b], crashLimit: null });
    const api = job.toApiJob({ submitDir: SUBMIT_DIR });
    const [t0, t1, t2] = api.tasks;
    assert.deepEqual(t0!.stdout, { path: 'out.txt' });
    assert.equal(t0!.stderr, null);
    assert.equal(decode(t0!.stdin), 'Hello\n');
    assert.equal(t0!.priority, -3);
    assert.equal(t0!.taskDir, true);
    assert.equal(a.label, 'first');
    assert.deepEqual(t1!.stdout, { path: null, onClose: 'none' });
    assert.deepEqual(t1!.stderr, { path: 'err.txt', onClose: 'rm-if-finished' });
    assert.deepEqual([...Buffer.from(t1!.stdin!, 'base64')], [0, 255, 10]);
    assert.deepEqual(t1!.deps, [0]);
    assert.deepEqual(t2!.deps, [0, 1]);
    assert.equal(t2!.crashLimit, undefined);
    const graph = toGraphSubmit(api, 'x').graph;
    assert.equal(graph.tasks[0]!.taskDesc.crashLimit, 'never-restart');
    assert.equal(graph.tasks[1]!.taskDesc.crashLimit, 2);
    assert.equal(graph.tasks[2]!.taskDesc.crashLimit, 5);
    assert.deepEqual(graph.tasks[1]!.taskDesc.program.stdout, {
      kind: 'file',
      path: '%{CWD}/job-%{JOB_ID}/%{TASK_ID}.stdout',
      rmIfFinished: false,
    });
    assert.deepEqual(graph.tasks[1]!.taskDesc.program.stderr, {
      kind: 'file',
      path: 'err.txt',
      rmIfFinished: true,
    });
    assert.deepEqual(graph.tasks[0]!.taskDesc.program.stderr, { kind: 'null' });
  });

  void it('tags fractional amounts, keeps strings, and makes an array into variants', () => {
    const job = new Job();
    job.program(['x'], { resources: { cpus: 2, resources: { res0: 1, res1: 105.1 } } });
    job.program(['x'], {
      resources: [{ cpus: 4 }, { cpus: '1 compact!', resources: { gpus: 1 }, minTime: 42 }],
    });
    job.program(['x'], { resources: { nNodes: 2, minTime: '10m' } });
    const api = job.toApiJob({ submitDir: SUBMIT_DIR });
    assert.deepEqual(api.tasks[0]!.resources, [
      { resources: { cpus: 2, res0: 1, res1: { f: 105.1 } } },
    ]);
    assert.deepEqual(api.tasks[1]!.resources, [
      { resources: { cpus: 4 } },
      { resources: { cpus: '1 compact!', gpus: 1 }, minTime: 42 },
    ]);
    assert.deepEqual(api.tasks[2]!.resources, [{ nNodes: 2, minTime: 600 }]);
    const graph = toGraphSubmit(api, 'x').graph;
    const [variant0, variant1] = graph.tasks[1]!.taskDesc.resources;
    assert.equal(variant0!.resources.length, 1);
    assert.equal(variant1!.minTimeMs, 42_000);
    assert.deepEqual(
      variant1!.resources.map((r) => r.resource),
      ['cpus', 'gpus'],
    );
    assert.equal(graph.tasks[2]!.taskDesc.resources[0]!.nNodes, 2);
    assert.equal(graph.tasks[0]!.taskDesc.resources[0]!.resources.length, 3);
  });

  void it('makes a function task a Node program with a JSON stdin and a task dir', () => {
    const job = new Job();
    const prep = job.program(['true']);
    const t = job.function(train, { args: [0.1, 'x', { epochs: 3 }], deps: [prep] });
    const named = job.function(train, { args: [1, 'y', { epochs: 1 }], name: 'mine' });
    assert.equal(t.label, 'train/1');
    assert.equal(named.label, 'mine');
    assert.equal(t.kind, 'function');
    const api = job.toApiJob({ submitDir: SUBMIT_DIR, nodeEnv: new NodeEnv({ nodeBin: 'nd' }) });
    const task = api.tasks[1]!;
    assert.deepEqual(task.args, ['nd', '--input-type=module', '-e', TASK_RUNNER]);
    assert.equal(task.taskDir, true);
    assert.deepEqual(task.deps, [0]);
    assert.deepEqual(JSON.parse(decode(task.stdin)), {
      module: import.meta.url,
      export: 'train',
      args: [0.1, 'x', { epochs: 3 }],
    });
  });

  void it('builds the prologue form of NodeEnv through the shell', () => {
    const env = new NodeEnv({
      prologue: 'source init.sh',
      shell: 'sh',
      nodeArgs: ['--import', 'tsx'],
    });
    const [shell, flag, script] = env.args();
    assert.equal(shell, 'sh');
    assert.equal(flag, '-c');
    assert.ok(script!.startsWith('source init.sh\n\nnode '));
    // The runner survives the quoting: with a printer as nodeBin, the shell hands over the exact
    // arguments (nodeBin itself stays shell text).
    const printer = new NodeEnv({
      nodeBin: "printf '%s\\0'",
      prologue: 'X=from-prologue; printf "$X\\0"',
      nodeArgs: ['--import', 'tsx'],
    });
    const [sh, c, text] = printer.args();
    const out = spawnSync(sh!, [c!, text!], { encoding: 'utf8' });
    assert.equal(out.status, 0, out.stderr);
    assert.deepEqual(out.stdout.split('\0').slice(0, -1), [
      'from-prologue',
      '--import',
      'tsx',
      '--input-type=module',
      '-e',
      TASK_RUNNER,
    ]);
  });

  void it('checks function arguments at job.function() time', () => {
    const job = new Job();
    const loose = taskFunction(import.meta.url, 'loose', (..._args: unknown[]) => undefined);
    assert.throws(() => job.function(loose, { args: [1n] }), TypeError);
    assert.throws(() => job.function(loose, { args: [undefined] }), TypeError);
    assert.throws(() => job.function(loose, { args: [NaN] }), TypeError);
    assert.throws(() => job.function(loose, { args: [new Date()] }), /Date is not plain JSON/);
    assert.throws(() => job.function(loose, { args: [() => 1] }), TypeError);
    const cyclic: Record<string, unknown> = {};
    cyclic['self'] = cyclic;
    assert.throws(() => job.function(loose, { args: [cyclic] }), /cyclic/);
    const shared = { a: 1 };
    job.function(loose, { args: [shared, [shared], null, true, 'x'] });
    assert.equal(job.tasks.length, 1);
    const untagged = (() => undefined) as unknown as typeof loose;
    assert.throws(() => job.function(untagged), /taskFunction/);
    assert.throws(() => taskFunction('not a url', 'x', () => 1), TypeError);
  });

  void it('rejects bad programs, foreign deps and cpus given twice', () => {
    const job = new Job();
    const other = new Job().program(['x']);
    assert.throws(() => job.program([]), InvalidJobError);
    assert.throws(
      () => job.program(['x'], { deps: [other] }),
      (e: unknown) => {
        assert.ok(e instanceof InvalidJobError);
        assert.ok(e instanceof HqError);
        assert.equal(e.code, 'HQ_INVALID_ARGUMENT');
        return true;
      },
    );
    assert.equal(job.tasks.length, 0);
    job.program(['x'], { resources: { cpus: 1, resources: { cpus: 2 } } });
    assert.throws(() => job.toApiJob(), /cpus given twice/);
  });
});

void describe('the function task runner', () => {
  void it('calls the export with the args, and writes the stack to HQ_ERROR_FILENAME on a throw', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hq-api-runner-'));
    try {
      const mod = path.join(dir, 'mod.mjs');
      fs.writeFileSync(
        mod,
        [
          "import { writeFileSync } from 'node:fs';",
          'export async function write(file, a, b) { writeFileSync(file, JSON.stringify([a, b])); }',
          'export function fail(msg) { throw new Error(msg); }',
        ].join('\n'),
      );
      const run = (exportName: string, args: unknown[]) =>
        spawnSync(process.execPath, new NodeEnv({ nodeBin: process.execPath }).args().slice(1), {
          input: JSON.stringify({ module: pathToFileURL(mod).href, export: exportName, args }),
          env: { ...process.env, HQ_ERROR_FILENAME: path.join(dir, 'hq-error') },
          encoding: 'utf8',
        });
      const out = path.join(dir, 'out.json');
      const ok = run('write', [out, 1, { b: [2] }]);
      assert.equal(ok.status, 0, ok.stderr);
      assert.deepEqual(JSON.parse(fs.readFileSync(out, 'utf8')), [1, { b: [2] }]);
      assert.equal(fs.existsSync(path.join(dir, 'hq-error')), false);

      const bad = run('fail', ['kaput']);
      assert.equal(bad.status, 1);
      const error = fs.readFileSync(path.join(dir, 'hq-error'), 'utf8');
      assert.match(error, /^Error: kaput\n\s+at fail \(file:\/\/.*mod\.mjs:3:/);
      assert.match(bad.stderr, /Error: kaput/);

      const missing = run('nope', []);
      assert.equal(missing.status, 1);
      assert.match(
        fs.readFileSync(path.join(dir, 'hq-error'), 'utf8'),
        /no exported function nope/,
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
