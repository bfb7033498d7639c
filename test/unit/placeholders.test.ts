import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import {
  KNOWN_PLACEHOLDERS,
  fillPlaceholders,
  hasPlaceholders,
  resolveTaskPaths,
  unknownPlaceholders,
} from '../../src/common/placeholders.js';

const values = {
  JOB_ID: '7',
  TASK_ID: '42',
  INSTANCE_ID: '1',
  SUBMIT_DIR: '/home/user/project',
  SERVER_UID: 'aB3dE9',
};

void describe('fillPlaceholders', () => {
  void it('replaces every known placeholder, each occurrence', () => {
    assert.equal(
      fillPlaceholders('%{JOB_ID}-%{TASK_ID}-%{JOB_ID}.%{INSTANCE_ID}@%{SERVER_UID}', values),
      '7-42-7.1@aB3dE9',
    );
    assert.equal(fillPlaceholders('%{SUBMIT_DIR}/out', values), '/home/user/project/out');
  });

  void it('leaves unknown and not yet known placeholders as they are', () => {
    assert.equal(fillPlaceholders('%{FOO}/%{JOB_ID}', values), '%{FOO}/7');
    assert.equal(fillPlaceholders('%{TASK_ID}', { JOB_ID: '1' }), '%{TASK_ID}');
    assert.equal(fillPlaceholders('%{CWD}/x', values), '%{CWD}/x');
  });

  void it('leaves text that is not a placeholder alone', () => {
    for (const text of [
      '',
      'plain',
      '%',
      '100%',
      '%{',
      '%{JOB_ID',
      '{JOB_ID}',
      '$JOB_ID',
      '%%{x',
    ]) {
      assert.equal(fillPlaceholders(text, values), text);
    }
  });

  void it('does not re-expand a value that looks like a placeholder', () => {
    assert.equal(
      fillPlaceholders('%{JOB_ID}', { JOB_ID: '%{TASK_ID}', TASK_ID: '1' }),
      '%{TASK_ID}',
    );
  });
});

void describe('hasPlaceholders / unknownPlaceholders', () => {
  void it('detects placeholders, known or not', () => {
    assert.equal(hasPlaceholders('a/%{JOB_ID}/b'), true);
    assert.equal(hasPlaceholders('%{WHATEVER}'), true);
    assert.equal(hasPlaceholders('a/b/100%'), false);
    assert.equal(hasPlaceholders(''), false);
  });

  void it('names the unknown ones only', () => {
    assert.deepEqual(unknownPlaceholders('%{JOB_ID}/%{FOO}/%{TASK_ID}/%{bar}'), ['FOO', 'bar']);
    assert.deepEqual(unknownPlaceholders('%{FOO}%{FOO}'), ['FOO', 'FOO']);
    for (const name of KNOWN_PLACEHOLDERS) {
      assert.deepEqual(unknownPlaceholders(`x/%{${name}}`), []);
    }
    assert.deepEqual([...KNOWN_PLACEHOLDERS].sort(), [
      'CWD',
      'INSTANCE_ID',
      'JOB_ID',
      'SERVER_UID',
      'SUBMIT_DIR',
      'TASK_ID',
    ]);
  });
});

void describe('resolveTaskPaths', () => {
  void it('resolves cwd against the submit directory, and stdio against cwd', () => {
    assert.deepEqual(
      resolveTaskPaths(
        { cwd: 'run-%{JOB_ID}', stdout: 'out/%{TASK_ID}.out', stderr: '%{TASK_ID}.err' },
        values,
      ),
      {
        cwd: '/home/user/project/run-7',
        stdout: '/home/user/project/run-7/out/42.out',
        stderr: '/home/user/project/run-7/42.err',
      },
    );
  });

  void it('fills %{CWD} in stdio with the resolved working directory', () => {
    assert.deepEqual(
      resolveTaskPaths(
        { cwd: '%{SUBMIT_DIR}/w%{INSTANCE_ID}', stdout: '%{CWD}/o', stderr: '%{CWD}/../e' },
        values,
      ),
      {
        cwd: '/home/user/project/w1',
        stdout: '/home/user/project/w1/o',
        stderr: '/home/user/project/e',
      },
    );
  });

  void it('keeps absolute paths and missing stdio', () => {
    assert.deepEqual(
      resolveTaskPaths(
        { cwd: '/scratch/%{JOB_ID}', stdout: '/logs/%{SERVER_UID}.txt', stderr: null },
        values,
      ),
      { cwd: '/scratch/7', stdout: '/logs/aB3dE9.txt', stderr: null },
    );
  });

  void it('resolves the default paths like upstream', () => {
    assert.deepEqual(
      resolveTaskPaths(
        {
          cwd: '%{SUBMIT_DIR}',
          stdout: '%{CWD}/job-%{JOB_ID}/%{TASK_ID}.stdout',
          stderr: '%{CWD}/job-%{JOB_ID}/%{TASK_ID}.stderr',
        },
        values,
      ),
      {
        cwd: '/home/user/project',
        stdout: '/home/user/project/job-7/42.stdout',
        stderr: '/home/user/project/job-7/42.stderr',
      },
    );
  });
});
