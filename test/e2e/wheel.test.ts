/**
 * The Python wheel as a user gets it (`npm run wheel`): built offline, installed with pip into a
 * fresh virtual environment that is never activated, it gives a working `hq` command and
 * `import hyperqueue`, whose LocalCluster runs a program task and a function task with the
 * executable the wheel installed (no `hq` on PATH, no HQ_BIN). Builds the single executable when
 * it is missing. Skips where Debian's python3 lacks pip, venv, setuptools, wheel or cloudpickle
 * (`.ci/run` installs them).
 */
import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';

import { ROOT, hqVersion, read, waitFor, withEnv } from './harness.js';

const run = promisify(execFile);
const PYTHON = '/usr/bin/python3';
const BUILD_TIMEOUT_MS = 300_000;

const PROGRAM = `
import json, sys
import hyperqueue as hq
from hyperqueue.ffi.bridge import find_hq_binary
from hyperqueue.task.function import PythonEnv

with hq.LocalCluster("cluster") as cluster:
    cluster.start_worker()
    client = cluster.client(python_env=PythonEnv(python_bin=sys.executable))
    job = hq.Job()
    first = job.program(["sh", "-c", "echo from the wheel > one.txt"])
    job.function(lambda: open("two.txt", "w").write(open("one.txt").read().upper()), deps=[first])
    client.wait_for_jobs([client.submit(job)])
print(json.dumps({"hq": find_hq_binary()}))
`;

void describe('the Python wheel', () => {
  void it('installs hq and the package with nothing else, and runs a LocalCluster', async (t: TestContext) => {
    // pip is probed on its own: importing it before setuptools trips setuptools' distutils hack.
    const probe = spawnSync(
      PYTHON,
      ['-c', 'import setuptools, wheel, venv, ensurepip, cloudpickle, tqdm'],
      { encoding: 'utf8' },
    );
    const pip = spawnSync(PYTHON, ['-m', 'pip', '--version'], { encoding: 'utf8' });
    if (probe.status !== 0 || pip.status !== 0) {
      t.skip(
        `needs ${PYTHON} with pip, venv, setuptools, wheel, cloudpickle and tqdm (apt-get install python3-pip python3-venv python3-setuptools python3-wheel python3-cloudpickle python3-tqdm)`,
      );
      return;
    }
    await withEnv(async (env) => {
      const built = await run(process.execPath, [path.join(ROOT, 'scripts', 'wheel.mjs')], {
        cwd: ROOT,
        timeout: BUILD_TIMEOUT_MS,
        maxBuffer: 1 << 24,
      });
      const wheel = /dist\/(hyperqueue-\S+\.whl)/.exec(built.stdout)?.[1];
      assert.ok(wheel, `the wheel's name in: ${built.stdout.slice(-500)}`);
      assert.match(wheel, /-py3-none-manylinux_2_28_(x86_64|aarch64)\.whl$/);

      // Debian's cloudpickle and tqdm come from the system site: nothing is downloaded.
      const venv = env.path('venv');
      await run(PYTHON, ['-m', 'venv', '--system-site-packages', venv], { timeout: 120_000 });
      await run(
        path.join(venv, 'bin', 'pip'),
        ['install', '--no-index', '--no-deps', path.join(ROOT, 'dist', wheel)],
        { timeout: 120_000 },
      );
      const hq = path.join(venv, 'bin', 'hq');
      const version = await run(hq, ['--version'], { env: env.processEnv() });
      assert.equal(version.stdout.trim(), hqVersion());

      // Neither the repository's hq nor its package are in sight: a PATH of system tools only.
      const work = env.path('work');
      fs.mkdirSync(work);
      fs.writeFileSync(path.join(work, 'main.py'), PROGRAM);
      const childEnv = env.processEnv({ PATH: '/usr/sbin:/usr/bin:/sbin:/bin' });
      delete childEnv['PYTHONPATH'];
      const program = await run(path.join(venv, 'bin', 'python'), ['main.py'], {
        cwd: work,
        env: childEnv,
        timeout: 120_000,
      }).catch((e: { stdout?: string; stderr?: string; message: string }) => {
        throw new Error(`the program failed: ${e.stderr ?? ''}${e.stdout ?? ''}\n${e.message}`);
      });
      const result = JSON.parse(program.stdout.trim().split('\n').at(-1)!) as { hq: string };
      assert.equal(result.hq, hq, 'the package runs the executable the wheel installed');
      assert.equal(read(path.join(work, 'two.txt')), 'FROM THE WHEEL\n');
      await waitFor(() => env.markedProcesses().length === 0, {
        message: 'no process of the LocalCluster to be left',
      });
    });
  });
});
