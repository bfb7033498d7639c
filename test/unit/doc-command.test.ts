import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { InvalidArgumentError } from 'commander';
import {
  DOC_INDEX_PAGE,
  DOC_TOPICS,
  docDirCandidates,
  findDocPage,
  parseDocTopic,
} from '../../src/cli/doc-command.js';

const ROOT = path.resolve(import.meta.dirname, '..', '..');

void describe('hq doc topics', () => {
  void it("are upstream's, in its order", () => {
    assert.deepEqual(Object.keys(DOC_TOPICS), [
      'job',
      'taskarray',
      'resources',
      'worker',
      'autoalloc',
      'python-api',
      'cheatsheet',
      'changelog',
      'faq',
    ]);
  });

  void it('each have their page in docs/', () => {
    for (const page of [DOC_INDEX_PAGE, ...Object.values(DOC_TOPICS).map((t) => t.page)]) {
      assert.ok(fs.statSync(path.join(ROOT, 'docs', page)).isFile(), page);
    }
  });

  void it('accept their names and aliases', () => {
    const cases: [string, string][] = [
      ['job', 'job'],
      ['jobs', 'job'],
      ['tasks', 'job'],
      ['workers', 'worker'],
      ['pbs', 'autoalloc'],
      ['slurm', 'autoalloc'],
      ['python', 'python-api'],
      ['faq', 'faq'],
    ];
    for (const [name, topic] of cases) {
      assert.equal(parseDocTopic(name), topic, name);
    }
  });

  void it('refuse anything else, listing the topics', () => {
    assert.throws(
      () => parseDocTopic('Job'),
      (e: unknown) =>
        e instanceof InvalidArgumentError &&
        e.message ===
          'Allowed choices are job, taskarray, resources, worker, autoalloc, python-api, cheatsheet, changelog, faq.',
    );
  });
});

void describe('finding the docs', () => {
  void it('looks beside the directory of the program and beside the program, through links', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hq-doc-'));
    try {
      fs.mkdirSync(path.join(dir, 'pkg', 'dist'), { recursive: true });
      fs.writeFileSync(path.join(dir, 'pkg', 'dist', 'hq'), '');
      fs.mkdirSync(path.join(dir, 'bin'));
      fs.symlinkSync(path.join(dir, 'pkg', 'dist', 'hq'), path.join(dir, 'bin', 'hq'));
      const real = fs.realpathSync(dir);
      const dirs = docDirCandidates(path.join(dir, 'bin', 'hq'));
      assert.deepEqual(dirs, [
        path.join(real, 'pkg', 'docs'),
        path.join(real, 'pkg', 'dist', 'docs'),
      ]);
      assert.equal(findDocPage('jobs.md', dirs), null);
      fs.mkdirSync(path.join(dir, 'pkg', 'dist', 'docs'));
      fs.writeFileSync(path.join(dir, 'pkg', 'dist', 'docs', 'jobs.md'), '# Jobs\n');
      assert.equal(findDocPage('jobs.md', dirs), path.join(real, 'pkg', 'dist', 'docs', 'jobs.md'));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
