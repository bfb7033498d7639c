import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';

import { hqVersion, verticalTable, waitFor, withEnv, type HqEnv } from './harness.js';

interface Endpoint {
  host: string;
  port: number;
  secret_key: string;
}
interface Access {
  version: string;
  server_uid: string;
  client: Endpoint;
  worker: Endpoint;
}

function readAccess(env: HqEnv, serverDir = env.serverDir): Access {
  return JSON.parse(
    fs.readFileSync(path.join(serverDir, 'hq-current', 'access.json'), 'utf8'),
  ) as Access;
}

/** A port that was free a moment ago on loopback. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const address = s.address();
      s.close(() => resolve(typeof address === 'object' && address !== null ? address.port : 0));
    });
  });
}

const INFO_KEYS = [
  'Server UID',
  'Client host',
  'Client port',
  'Worker host',
  'Worker port',
  'Version',
  'Pid',
  'Start date',
  'Journal path',
];

void describe('hq server start', () => {
  void it('prints the info table and writes a private access file', () =>
    withEnv(async (env) => {
      const server = await env.startServer();
      const rows = await waitFor(
        () => {
          const r = verticalTable(server.stdout());
          return r.length === 10 ? r : undefined;
        },
        { message: 'the server info table on stdout' },
      );
      assert.deepEqual(
        rows.map(([k]) => k),
        ['Server directory', ...INFO_KEYS],
      );
      const table = new Map(rows);
      const access = readAccess(env);
      assert.equal(table.get('Server directory'), env.serverDir);
      assert.equal(table.get('Server UID'), access.server_uid);
      assert.equal(table.get('Client host'), '127.0.0.1');
      assert.equal(table.get('Worker host'), '127.0.0.1');
      assert.equal(table.get('Client port'), String(access.client.port));
      assert.equal(table.get('Worker port'), String(access.worker.port));
      assert.equal(table.get('Version'), hqVersion());
      assert.equal(table.get('Pid'), String(server.pid));
      assert.match(table.get('Start date') ?? '', /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/);

      // `server info` talks to the running server: the same facts, without the directory.
      const info = verticalTable(await env.output(['server', 'info']));
      assert.deepEqual(
        info.map(([k]) => k),
        INFO_KEYS,
      );
      assert.deepEqual(info, rows.slice(1));

      // The access file: upstream's shape and field order, readable by the owner only.
      const file = path.join(env.serverDir, 'hq-current', 'access.json');
      assert.equal(fs.statSync(file).mode & 0o777, 0o600);
      assert.deepEqual(Object.keys(access), ['version', 'server_uid', 'client', 'worker']);
      assert.equal(access.version, hqVersion());
      assert.match(access.server_uid, /^[A-Za-z0-9]{6}$/);
      for (const endpoint of [access.client, access.worker]) {
        assert.deepEqual(Object.keys(endpoint), ['host', 'port', 'secret_key']);
        assert.equal(endpoint.host, '127.0.0.1');
        assert.ok(Number.isInteger(endpoint.port) && endpoint.port > 0 && endpoint.port < 65536);
        assert.match(endpoint.secret_key, /^[0-9a-f]{64}$/);
      }
      assert.notEqual(access.client.secret_key, access.worker.secret_key);
      assert.notEqual(access.client.port, access.worker.port);

      // hq-current is a symlink to the first numbered run directory.
      const link = path.join(env.serverDir, 'hq-current');
      assert.ok(fs.lstatSync(link).isSymbolicLink());
      assert.equal(fs.realpathSync(link), fs.realpathSync(path.join(env.serverDir, '001')));
      assert.ok(server.isRunning);
    }));

  void it('refuses a second server in the same directory', () =>
    withEnv(async (env) => {
      await env.startServer();
      const before = readAccess(env);
      const second = await env.command(['server', 'start', '--host', '127.0.0.1'], {
        expectFail: true,
      });
      assert.equal(second.code, 1);
      assert.equal(second.stdout, '');
      assert.equal(
        second.stderr,
        `Error: Server at ${env.serverDir} is already online, please stop it first using \`hq server stop --server-dir ${env.serverDir}\`\n`,
      );
      // The first server is untouched and still answers; no second run directory was made.
      assert.deepEqual(readAccess(env), before);
      assert.deepEqual(fs.readdirSync(env.serverDir).sort(), ['001', 'hq-current']);
      const info = new Map(verticalTable(await env.output(['server', 'info'])));
      assert.equal(info.get('Server UID'), before.server_uid);
      assert.ok(env.server?.isRunning);
    }));

  void it('starts a new numbered run directory after a stopped server', () =>
    withEnv(async (env) => {
      const first = await env.startServer();
      const uid1 = readAccess(env).server_uid;
      await env.command(['server', 'stop']);
      assert.equal((await first.waitForExit()).code, 0);
      const second = await env.startServer();
      const access = readAccess(env);
      assert.notEqual(access.server_uid, uid1);
      assert.equal(
        fs.realpathSync(path.join(env.serverDir, 'hq-current')),
        fs.realpathSync(path.join(env.serverDir, '002')),
      );
      const info = new Map(verticalTable(await env.output(['server', 'info'])));
      assert.equal(info.get('Pid'), String(second.pid));
    }));
});

void describe('stopping the server', () => {
  const ways: [string, (env: HqEnv) => Promise<void>][] = [
    [
      'hq server stop',
      async (env) => {
        const r = await env.command(['server', 'stop']);
        assert.equal(r.code, 0);
      },
    ],
    ['SIGINT', (env) => Promise.resolve(env.server!.signal('SIGINT'))],
    ['SIGTERM', (env) => Promise.resolve(env.server!.signal('SIGTERM'))],
  ];
  for (const [how, stop] of ways) {
    void it(`${how} exits with code 0 and removes hq-current`, () =>
      withEnv(async (env) => {
        const server = await env.startServer();
        const link = path.join(env.serverDir, 'hq-current');
        assert.ok(fs.lstatSync(link).isSymbolicLink());
        await stop(env);
        const status = await server.waitForExit();
        assert.deepEqual(status, { code: 0, signal: null });
        assert.equal(fs.existsSync(link), false);
        assert.throws(() => fs.lstatSync(link), { code: 'ENOENT' });
        // The run directory with its access file stays, like upstream.
        assert.ok(fs.existsSync(path.join(env.serverDir, '001', 'access.json')));
        const after = await env.command(['job', 'list'], { expectFail: true });
        assert.equal(after.code, 1);
        assert.match(after.stderr, /^Error: No running instance of HQ found at /);
      }));
  }
});

void describe('access files', () => {
  void it('server generate-access writes a file that server start --access-file uses as is', () =>
    withEnv(async (env) => {
      const [clientPort, workerPort] = [await freePort(), await freePort()];
      const file = env.path('generated.json');
      const clientFile = env.path('client.json');
      const workerFile = env.path('worker.json');
      await env.command(
        [
          'server',
          'generate-access',
          file,
          '--client-port',
          String(clientPort),
          '--worker-port',
          String(workerPort),
          '--host',
          '127.0.0.1',
          '--client-file',
          clientFile,
          '--worker-file',
          workerFile,
        ],
        { serverDir: null },
      );
      const generated = fs.readFileSync(file, 'utf8');
      const record = JSON.parse(generated) as Access;
      assert.equal(fs.statSync(file).mode & 0o777, 0o600);
      assert.deepEqual(Object.keys(record), ['version', 'server_uid', 'client', 'worker']);
      assert.equal(record.client.port, clientPort);
      assert.equal(record.worker.port, workerPort);
      assert.match(record.client.secret_key, /^[0-9a-f]{64}$/);
      assert.deepEqual(JSON.parse(fs.readFileSync(clientFile, 'utf8')), {
        version: record.version,
        client: record.client,
      });
      assert.deepEqual(JSON.parse(fs.readFileSync(workerFile, 'utf8')), {
        version: record.version,
        worker: record.worker,
      });
      // generate-access never overwrites a file.
      const again = await env.command(
        ['server', 'generate-access', file, '--client-port', '1', '--worker-port', '2'],
        { serverDir: null, expectFail: true },
      );
      assert.equal(again.code, 1);
      assert.equal(fs.readFileSync(file, 'utf8'), generated);

      await env.startServer(['--access-file', file]);
      const written = fs.readFileSync(
        path.join(env.serverDir, 'hq-current', 'access.json'),
        'utf8',
      );
      assert.deepEqual(JSON.parse(written), record);
      const info = new Map(verticalTable(await env.output(['server', 'info'])));
      assert.equal(info.get('Server UID'), record.server_uid);
      assert.equal(info.get('Client port'), String(clientPort));
      assert.equal(info.get('Worker port'), String(workerPort));
      // The keys really are the generated ones: a worker using the file's key can join.
      const worker = await env.startWorker();
      assert.equal(worker.id, 1);
    }));

  void it('reports a version mismatch in the access file', () =>
    withEnv(async (env) => {
      await env.startServer();
      const access = readAccess(env);
      const otherDir = env.path('other-version');
      fs.mkdirSync(otherDir);
      fs.writeFileSync(
        path.join(otherDir, 'access.json'),
        JSON.stringify({ ...access, version: '0.1.0-other' }),
      );
      for (const args of [
        ['job', 'list'],
        ['server', 'info'],
        ['worker', 'list'],
      ]) {
        const r = await env.command(args, { serverDir: otherDir, expectFail: true });
        assert.equal(r.code, 1);
        assert.equal(
          r.stderr,
          `Error: Hyperqueue version mismatch detected. Access record contains version 0.1.0-other, but the current version is ${hqVersion()}.\n`,
        );
      }
      // The same file with the right version reaches the running server.
      fs.writeFileSync(path.join(otherDir, 'access.json'), JSON.stringify(access));
      const ok = await env.command(['server', 'info'], { serverDir: otherDir });
      assert.equal(new Map(verticalTable(ok.stdout)).get('Server UID'), access.server_uid);
    }));
});

void describe('hq server wait', () => {
  void it('fails with a timeout on a directory without a server', () =>
    withEnv(async (env) => {
      const r = await env.command(['server', 'wait', '--timeout', '1s'], { expectFail: true });
      assert.equal(r.code, 1);
      assert.match(
        r.stderr,
        /^Error: Timeout after 1s: Could not connect to server at `[^`]+`\. Make sure that the server is running\.\n$/m,
      );
      assert.ok(r.stderr.includes(env.serverDir));
      // It keeps trying for the whole timeout before giving up.
      assert.ok(r.durationMs >= 950, `gave up after ${r.durationMs} ms`);
    }));

  void it('returns once a server comes up', () =>
    withEnv(async (env) => {
      const waiting = env.command(['server', 'wait', '--timeout', '30s']);
      await env.startServer();
      const r = await waiting;
      assert.equal(r.code, 0);
      assert.match(r.stderr, /Successfully connected to server/);
    }));
});
