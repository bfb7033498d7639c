import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { HqError, type HqErrorCode } from '../../src/common/errors.js';
import {
  createInstanceDir,
  defaultServerDir,
  generateSecretKey,
  generateServerUid,
  instanceDir,
  linkCurrent,
  readAccessFile,
  readFullAccessFile,
  resolveServerDir,
  unlinkCurrent,
  writePrivateJson,
} from '../../src/common/server-dir.js';
import { VERSION } from '../../src/common/version.js';

let tmp: string;
let counter = 0;

before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hq-unit-serverdir-'));
});

after(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

function freshDir(): string {
  const dir = path.join(tmp, `d${counter++}`);
  fs.mkdirSync(dir);
  return dir;
}

const KEY_A = 'a'.repeat(64);
const KEY_B = '0123456789abcdefABCDEF0123456789abcdef0123456789abcdef0123456789';

function validRecord(): Record<string, unknown> {
  return {
    version: VERSION,
    server_uid: 'abc123',
    client: { host: 'localhost', port: 1234, secret_key: KEY_A },
    worker: { host: 'localhost', port: 1235, secret_key: KEY_B },
  };
}

function writeAccess(content: unknown): string {
  const file = path.join(freshDir(), 'access.json');
  fs.writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}

function assertHqError(fn: () => unknown, code: HqErrorCode, message: string | RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof HqError, String(e));
    assert.equal(e.code, code);
    if (typeof message === 'string') {
      assert.equal(e.message, message);
    } else {
      assert.match(e.message, message);
    }
    return true;
  });
}

void describe('createInstanceDir', () => {
  void it('numbers run directories 001, 002, ...', () => {
    const dir = path.join(freshDir(), 'not-yet-created');
    assert.equal(createInstanceDir(dir), path.join(dir, '001'));
    assert.equal(createInstanceDir(dir), path.join(dir, '002'));
    assert.ok(fs.statSync(path.join(dir, '002')).isDirectory());
  });

  void it('continues after the largest number and ignores other entries', () => {
    const dir = freshDir();
    for (const name of ['007', '3', 'hq-current-ish', 'abc', '12x']) {
      fs.mkdirSync(path.join(dir, name));
    }
    fs.writeFileSync(path.join(dir, 'access.json'), '{}');
    assert.equal(createInstanceDir(dir), path.join(dir, '008'));
  });

  void it('goes past three digits', () => {
    const dir = freshDir();
    fs.mkdirSync(path.join(dir, '999'));
    assert.equal(createInstanceDir(dir), path.join(dir, '1000'));
  });
});

void describe('hq-current', () => {
  void it('points at the current run directory, which instanceDir follows', () => {
    const dir = freshDir();
    assert.equal(instanceDir(dir), dir, 'no link: the directory itself');
    const run1 = createInstanceDir(dir);
    linkCurrent(dir, run1);
    const link = path.join(dir, 'hq-current');
    assert.ok(fs.lstatSync(link).isSymbolicLink());
    assert.equal(fs.readlinkSync(link), run1);
    assert.equal(instanceDir(dir), fs.realpathSync(run1));

    // A new server replaces the link; no temporary link is left behind.
    const run2 = createInstanceDir(dir);
    linkCurrent(dir, run2);
    assert.equal(fs.readlinkSync(link), run2);
    assert.deepEqual(fs.readdirSync(dir).sort(), ['001', '002', 'hq-current']);

    // An old server stopping late does not remove the new server's link.
    unlinkCurrent(dir, run1);
    assert.equal(fs.readlinkSync(link), run2);
    unlinkCurrent(dir, run2);
    assert.equal(fs.existsSync(link), false);
    unlinkCurrent(dir, run2); // already gone: no error
  });

  void it('falls back to the directory itself when the link dangles', () => {
    const dir = freshDir();
    linkCurrent(dir, path.join(dir, 'gone'));
    assert.equal(instanceDir(dir), dir);
  });
});

void describe('readAccessFile', () => {
  void it('reads a full access file', () => {
    const record = validRecord();
    const file = writeAccess(record);
    assert.deepEqual(readAccessFile(file), record);
    assert.deepEqual(readFullAccessFile(file), record);
  });

  void it('reads client-only and worker-only files', () => {
    const { client, worker } = validRecord();
    const clientOnly = readAccessFile(writeAccess({ version: VERSION, client }));
    assert.deepEqual(clientOnly, { version: VERSION, server_uid: null, client, worker: null });
    const workerOnly = readAccessFile(writeAccess({ version: VERSION, worker }));
    assert.equal(workerOnly.client, null);
    assert.deepEqual(workerOnly.worker, worker);
    assertHqError(
      () => readFullAccessFile(writeAccess({ version: VERSION, client })),
      'HQ_ACCESS_FILE',
      /a server needs server_uid, client and worker sections/,
    );
  });

  void it('says which version wrote the file, before looking at anything else', () => {
    const file = writeAccess({ version: '0.0.1', client: 'garbage' });
    assertHqError(
      () => readAccessFile(file),
      'HQ_VERSION_MISMATCH',
      `Hyperqueue version mismatch detected. Access record contains version 0.0.1, but the current version is ${VERSION}.`,
    );
  });

  void it('reports a missing file as "server not found"', () => {
    const file = path.join(freshDir(), 'access.json');
    assertHqError(
      () => readAccessFile(file),
      'HQ_SERVER_NOT_FOUND',
      /^Cannot read access file .*access\.json: /,
    );
  });

  const invalid: [string, unknown, RegExp][] = [
    ['not JSON', '{"version": ', /not valid JSON/],
    ['a JSON array', '[1, 2]', /the root is not an object/],
    ['null', 'null', /the root is not an object/],
    ['no version', { server_uid: 'x' }, /version is missing/],
    ['a numeric version', { version: 26 }, /version is missing/],
    [
      'a client that is not an object',
      { version: VERSION, client: 'x' },
      /client is not an object/,
    ],
    [
      'no host',
      { version: VERSION, client: { port: 1, secret_key: KEY_A } },
      /client\.host is missing/,
    ],
    [
      'an empty host',
      { version: VERSION, worker: { host: '', port: 1, secret_key: KEY_A } },
      /worker\.host is missing/,
    ],
    [
      'port 0',
      { version: VERSION, client: { host: 'h', port: 0, secret_key: KEY_A } },
      /client\.port is invalid/,
    ],
    [
      'port 65536',
      { version: VERSION, client: { host: 'h', port: 65536, secret_key: KEY_A } },
      /client\.port is invalid/,
    ],
    [
      'a fractional port',
      { version: VERSION, client: { host: 'h', port: 80.5, secret_key: KEY_A } },
      /client\.port is invalid/,
    ],
    [
      'a string port',
      { version: VERSION, client: { host: 'h', port: '80', secret_key: KEY_A } },
      /client\.port is invalid/,
    ],
    [
      'a short key',
      { version: VERSION, client: { host: 'h', port: 80, secret_key: 'ab'.repeat(31) } },
      /client\.secret_key must be 64 hex characters/,
    ],
    [
      'a key that is not hex',
      { version: VERSION, worker: { host: 'h', port: 80, secret_key: 'g'.repeat(64) } },
      /worker\.secret_key must be 64 hex characters/,
    ],
    [
      'no key',
      { version: VERSION, worker: { host: 'h', port: 80 } },
      /worker\.secret_key must be 64 hex characters/,
    ],
  ];
  for (const [what, content, message] of invalid) {
    void it(`refuses ${what}`, () => {
      const file = writeAccess(content);
      assertHqError(() => readAccessFile(file), 'HQ_ACCESS_FILE', message);
      assert.throws(
        () => readAccessFile(file),
        (e: unknown) => (e as Error).message.includes(file),
      );
    });
  }
});

void describe('writePrivateJson', () => {
  void it('writes pretty JSON readable by the owner only', () => {
    const file = path.join(freshDir(), 'x.json');
    writePrivateJson(file, { b: 1, a: [1] });
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    assert.equal(fs.readFileSync(file, 'utf8'), '{\n  "b": 1,\n  "a": [\n    1\n  ]\n}');
  });

  void it('never overwrites an existing file', () => {
    const file = path.join(freshDir(), 'x.json');
    fs.writeFileSync(file, 'keep');
    assert.throws(() => writePrivateJson(file, {}), { code: 'EEXIST' });
    assert.equal(fs.readFileSync(file, 'utf8'), 'keep');
  });
});

void describe('generated identifiers', () => {
  void it('server uids are 6 alphanumeric characters', () => {
    const uids = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const uid = generateServerUid();
      assert.match(uid, /^[A-Za-z0-9]{6}$/);
      uids.add(uid);
    }
    assert.ok(uids.size > 190, 'uids are random');
  });

  void it('secret keys are 32 random bytes in hex', () => {
    const a = generateSecretKey();
    const b = generateSecretKey();
    assert.match(a, /^[0-9a-f]{64}$/);
    assert.notEqual(a, b);
  });
});

void describe('resolveServerDir', () => {
  void it('prefers the option, then HQ_SERVER_DIR, then ~/.hq-server', () => {
    const saved = process.env['HQ_SERVER_DIR'];
    try {
      process.env['HQ_SERVER_DIR'] = '/from/env';
      assert.equal(resolveServerDir('/from/option'), '/from/option');
      assert.equal(resolveServerDir(undefined), '/from/env');
      delete process.env['HQ_SERVER_DIR'];
      assert.equal(resolveServerDir(undefined), defaultServerDir());
      assert.equal(defaultServerDir(), path.join(os.homedir(), '.hq-server'));
      assert.equal(resolveServerDir('relative/dir'), path.resolve('relative/dir'));
    } finally {
      if (saved === undefined) {
        delete process.env['HQ_SERVER_DIR'];
      } else {
        process.env['HQ_SERVER_DIR'] = saved;
      }
    }
  });
});
