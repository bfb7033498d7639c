/**
 * The Python package's own tests (pytest, python/tests) against the built `hq`: they start real
 * servers, workers and LocalClusters. Run with Debian's interpreter, where python3-pytest,
 * python3-cloudpickle and python3-tqdm live (`.ci/run` installs them).
 */
import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as path from 'node:path';

import { HQ_BIN, ROOT } from './harness.js';

const PYTHON = '/usr/bin/python3';
const PYTEST_TIMEOUT_MS = 600_000;

void describe('Python API', () => {
  void it('passes its pytest suite (python/tests)', async (t: TestContext) => {
    const probe = spawnSync(PYTHON, ['-c', 'import pytest, cloudpickle'], { encoding: 'utf8' });
    if (probe.status !== 0) {
      t.skip(
        `needs ${PYTHON} with pytest and cloudpickle (apt-get install python3-pytest python3-cloudpickle python3-tqdm): ${probe.stderr.trim().split('\n').pop() ?? probe.error?.message ?? ''}`,
      );
      return;
    }
    const child = spawn(
      PYTHON,
      ['-m', 'pytest', '-q', '-p', 'no:cacheprovider', path.join(ROOT, 'python', 'tests')],
      {
        cwd: ROOT,
        env: { ...process.env, HQ_BIN },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), PYTEST_TIMEOUT_MS);
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    clearTimeout(timer);
    const summary = output.trim().split('\n').pop() ?? '';
    t.diagnostic(`pytest: ${summary}`);
    assert.equal(code, 0, output);
  });
});
