import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { Packr, Unpackr } from 'msgpackr';

import { MAX_SELECTED_IDS } from '../../src/server/server.js';
import { PROTOCOL_VERSION } from '../../src/transport/messages.js';
import { parseClientRequest } from '../../src/transport/validate.js';
import { FrameDecoder } from '../../src/transport/framing.js';
import { HqEnv, horizontalTable, hqVersion, waitFor, withEnv } from './harness.js';

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

const IO_TIMEOUT_MS = 10_000;
const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

function readAccess(serverDir: string): Access {
  return JSON.parse(
    fs.readFileSync(path.join(serverDir, 'hq-current', 'access.json'), 'utf8'),
  ) as Access;
}

function frame(message: unknown): Buffer {
  const body = packr.pack(message);
  const header = Buffer.alloc(4);
  header.writeUInt32BE(body.length, 0);
  return Buffer.concat([header, body]);
}

function rawFrame(body: Buffer): Buffer {
  const header = Buffer.alloc(4);
  header.writeUInt32BE(body.length, 0);
  return Buffer.concat([header, body]);
}

type TlsOutcome = { connected: true; socket: tls.TLSSocket } | { connected: false; error: string };

/** A TLS 1.3 PSK handshake with `identity`/`key`; rejects only if nothing happens in time. */
function tlsConnect(port: number, identity: string, key: Buffer): Promise<TlsOutcome> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: '127.0.0.1',
      port,
      minVersion: 'TLSv1.3',
      checkServerIdentity: () => undefined,
      pskCallback: () => ({ psk: key, identity }),
    });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no TLS outcome within ${IO_TIMEOUT_MS} ms (${identity} on ${port})`));
    }, IO_TIMEOUT_MS);
    socket.once('secureConnect', () => {
      clearTimeout(timer);
      resolve({ connected: true, socket });
    });
    // `on`, not `once`: a later error on a connected socket must not become an uncaught one.
    socket.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ connected: false, error: `${e.code ?? ''} ${e.message}` });
    });
    socket.once('close', () => {
      clearTimeout(timer);
      resolve({ connected: false, error: 'closed' });
    });
  });
}

async function connectOrFail(port: number, identity: string, key: Buffer): Promise<tls.TLSSocket> {
  const outcome = await tlsConnect(port, identity, key);
  if (!outcome.connected) {
    throw new Error(`the right key was refused: ${outcome.error}`);
  }
  return outcome.socket;
}

/** Resolves when the peer closes `socket` (we never close it first); rejects after a timeout. */
function closedByPeer(socket: net.Socket, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    if (socket.destroyed) {
      resolve();
      return;
    }
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`the server did not drop the connection after ${what}`));
    }, IO_TIMEOUT_MS);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    socket.on('error', () => undefined);
  });
}

/** Connects with `identity`/`key`, sends `bytes` and waits until the server drops the connection. */
async function sendAndExpectClose(
  port: number,
  identity: string,
  key: Buffer,
  bytes: Buffer,
  what: string,
): Promise<void> {
  const socket = await connectOrFail(port, identity, key);
  try {
    const closed = closedByPeer(socket, what);
    socket.write(bytes);
    await closed;
  } finally {
    socket.destroy();
  }
}

/** Reads one response frame from `socket`. */
function readFrame(socket: tls.TLSSocket): Promise<unknown> {
  return new Promise((resolve, reject) => {
    let buffer = Buffer.alloc(0);
    const timer = setTimeout(() => reject(new Error('no response frame')), IO_TIMEOUT_MS);
    const onData = (chunk: Buffer): void => {
      buffer = Buffer.concat([buffer, chunk]);
      if (buffer.length >= 4 && buffer.length >= 4 + buffer.readUInt32BE(0)) {
        clearTimeout(timer);
        socket.off('data', onData);
        resolve(unpackr.unpack(buffer.subarray(4, 4 + buffer.readUInt32BE(0))));
      }
    };
    socket.on('data', onData);
    socket.once('close', () => reject(new Error('closed before a response frame')));
  });
}

/** A valid task description as `hq submit -- true` sends it (no output files). */
const TASK_DESC = {
  program: {
    args: ['true'],
    env: {},
    cwd: '/tmp',
    stdout: { kind: 'null' },
    stderr: { kind: 'null' },
    stdin: null,
  },
  resources: [
    {
      nNodes: 0,
      minTimeMs: 0,
      resources: [
        { resource: 'cpus', request: { kind: 'amount', amount: 10_000, policy: 'compact' } },
      ],
      weight: 10_000,
    },
  ],
  timeLimitMs: null,
  priority: 0,
  crashLimit: 5,
  taskDir: false,
  pinMode: null,
  streamPath: null,
};

interface Port {
  role: 'client' | 'worker';
  port: number;
  identity: string;
  key: Buffer;
}

void describe('authentication and hostile peers', () => {
  let env: HqEnv;
  let access: Access;
  let ports: Port[];
  let keys: { client: Buffer; worker: Buffer; random: Buffer };
  let baseline: { jobs: string; workers: string };

  before(async () => {
    env = await HqEnv.create();
    await env.startServer();
    await env.startWorker({ cpus: 1 });
    const submit = await env.output(['submit', '--', 'true']);
    assert.match(submit, /job ID: 1/);
    await env.waitForJobState(1, 'FINISHED');
    access = readAccess(env.serverDir);
    keys = {
      client: Buffer.from(access.client.secret_key, 'hex'),
      worker: Buffer.from(access.worker.secret_key, 'hex'),
      random: randomBytes(32),
    };
    ports = [
      { role: 'client', port: access.client.port, identity: 'hq-client', key: keys.client },
      { role: 'worker', port: access.worker.port, identity: 'hq-worker', key: keys.worker },
    ];
    baseline = {
      jobs: await env.output(['job', 'list', '--all']),
      workers: await env.output(['worker', 'list', '--all']),
    };
    assert.match(baseline.workers, /RUNNING/);
  });

  after(async () => {
    await env?.close();
  });

  /** The server still answers both lists exactly as before, and the worker still runs tasks. */
  async function assertServerHealthy(): Promise<void> {
    assert.equal(await env.output(['job', 'list', '--all']), baseline.jobs);
    assert.equal(await env.output(['worker', 'list', '--all']), baseline.workers);
    assert.ok(env.server?.isRunning, 'the server process is still running');
  }

  void it('accepts only the own identity with the own key on each port', async () => {
    const identities = ['hq-client', 'hq-worker', 'somebody'];
    for (const p of ports) {
      for (const identity of identities) {
        for (const [keyName, key] of Object.entries(keys)) {
          const outcome = await tlsConnect(p.port, identity, key);
          const expected = identity === p.identity && keyName === p.role;
          const what = `${identity} with the ${keyName} key on the ${p.role} port`;
          if (outcome.connected) {
            outcome.socket.destroy();
          } else {
            // Refused by the handshake itself (a TLS alert), not by some unrelated failure.
            assert.match(outcome.error, /SSL|TLS|ECONNRESET|closed/, what);
          }
          assert.equal(outcome.connected, expected, what);
        }
      }
    }
    await assertServerHealthy();
  });

  void it('refuses a worker whose registration is malformed, and nothing of it reaches the lists', async () => {
    const configuration = {
      resources: {
        resources: [{ name: 'cpus', kind: 'range', start: 0, end: 0 }],
        coupling: { weights: [] },
      },
      hostname: 'bad',
      listenAddress: 'bad:0',
      workDir: '/tmp',
      group: 'default',
      heartbeatIntervalMs: 8000,
      idleTimeoutMs: null,
      timeLimitMs: null,
      onServerLost: 'stop',
      minUtilization: 0,
      overviewIntervalMs: null,
      manager: null,
      pid: 1,
    };
    const broken: [string, unknown][] = [
      [
        'a resource without a name',
        {
          ...configuration,
          resources: { resources: [{ kind: 'sum', size: 1 }], coupling: { weights: [] } },
        },
      ],
      [
        'resources of an unknown kind',
        {
          ...configuration,
          resources: { resources: [{ name: 'cpus', kind: 'cloud' }], coupling: { weights: [] } },
        },
      ],
      [
        'list values that are not strings',
        {
          ...configuration,
          resources: {
            resources: [{ name: 'cpus', kind: 'list', values: [1, 2] }],
            coupling: { weights: [] },
          },
        },
      ],
      [
        'no cpus',
        {
          ...configuration,
          resources: {
            resources: [{ name: 'gpus', kind: 'sum', size: 1 }],
            coupling: { weights: [] },
          },
        },
      ],
      [
        'no coupling',
        { ...configuration, resources: { resources: configuration.resources.resources } },
      ],
      ['a hostname that is a number', { ...configuration, hostname: 7 }],
      ['an unknown server-lost policy', { ...configuration, onServerLost: 'panic' }],
      ['a manager without a job id', { ...configuration, manager: { kind: 'SLURM' } }],
      // Shown in every row of `hq worker list`: one huge name made the whole table that wide.
      ['a hostname of 300 characters', { ...configuration, hostname: 'h'.repeat(300) }],
      [
        'a resource name of 300 characters',
        {
          ...configuration,
          resources: {
            resources: [
              ...configuration.resources.resources,
              { name: 'r'.repeat(300), kind: 'sum', size: 1 },
            ],
            coupling: { weights: [] },
          },
        },
      ],
      // The server logs the hostname: a newline in it would forge a log line.
      [
        'a hostname with a newline',
        { ...configuration, hostname: 'bad\n2000-01-01T00:00:00Z INFO forged' },
      ],
    ];
    const p = ports.find((x) => x.role === 'worker')!;
    for (const [what, config] of broken) {
      const register = frame({
        op: 'register',
        // The current protocol: a registration refused for its version tests nothing else.
        protocol: PROTOCOL_VERSION,
        version: hqVersion().replace(/^hq /, ''),
        configuration: config,
      });
      await sendAndExpectClose(p.port, p.identity, p.key, register, what);
    }
    await assertServerHealthy();
  });

  void it('refuses a submit whose task description is malformed, and no job appears', async () => {
    const desc = TASK_DESC;
    const submit = (taskDesc: unknown, ids: unknown = [{ start: 0, count: 1, step: 1 }]) => ({
      op: 'submit',
      reqId: 1,
      jobId: null,
      name: 'bad',
      maxFails: null,
      array: { ids, autoIds: false, entries: null, taskDesc, submitDir: '/tmp' },
    });
    // Control: each message below is this valid one broken in one place.
    assert.doesNotThrow(() => parseClientRequest(submit(desc)));
    const broken: [string, unknown][] = [
      // Found by the protocol fuzzer: the job was created, then building its request threw,
      // and the client got an error for a job that stayed (half made, and not journaled).
      [
        'a graph task whose resource variant has no resource list',
        {
          op: 'submit-graph',
          reqId: 1,
          jobId: null,
          name: 'bad',
          maxFails: null,
          graph: {
            submitDir: '/tmp',
            tasks: [
              {
                id: 0,
                deps: [],
                taskDesc: { ...desc, resources: [{ nNodes: 0, minTimeMs: 0, weight: 10_000 }] },
              },
            ],
          },
        },
      ],
      [
        'a resource request of an unknown kind',
        submit({
          ...desc,
          resources: [
            { ...desc.resources[0], resources: [{ resource: 'cpus', request: { kind: 'lots' } }] },
          ],
        }),
      ],
      ['stdout without a kind', submit({ ...desc, program: { ...desc.program, stdout: {} } })],
      [
        'an environment value that is a number',
        submit({ ...desc, program: { ...desc.program, env: { A: 1 } } }),
      ],
      ['a priority that is a string', submit({ ...desc, priority: 'high' })],
      ['a crash limit that is a map', submit({ ...desc, crashLimit: {} })],
      ['an id range without a step', submit(desc, [{ start: 0, count: 1 }])],
    ];
    for (const [what, message] of broken) {
      await sendAndExpectClose(access.client.port, 'hq-client', keys.client, frame(message), what);
    }
    await assertServerHealthy();
  });

  void it('answers a selector of four billion ids with an error at once', async () => {
    // Found by the protocol fuzzer: each id was listed one by one, and this one request held the
    // server for seconds, grew it past a gigabyte and killed it.
    const selector = { kind: 'ids', ids: [{ start: 0, count: 2 ** 32 - 1, step: 1 }] };
    const socket = await connectOrFail(access.client.port, 'hq-client', keys.client);
    try {
      for (const op of ['job-info', 'job-cancel', 'wait-jobs', 'worker-info', 'worker-stop']) {
        const response = readFrame(socket);
        socket.write(
          frame({ op, reqId: 9, selector, withTasks: false, reason: null, withoutClose: false }),
        );
        const r = (await response) as { reqId: number; ok: boolean; error: string };
        assert.equal(r.ok, false, op);
        assert.equal(r.reqId, 9);
        assert.match(r.error, new RegExp(`at most ${MAX_SELECTED_IDS} can be selected`), op);
      }
    } finally {
      socket.destroy();
    }
    await assertServerHealthy();
  });

  void it('selects each job once however often a selector names it', async () => {
    // Found by the protocol fuzzer: a job named twice was forgotten twice, and a step of 0 made
    // one answer carry as many copies of the same job as it named.
    const socket = await connectOrFail(access.client.port, 'hq-client', keys.client);
    try {
      const response = readFrame(socket);
      const ids = [
        { start: 1, count: 100_000, step: 0 },
        { start: 0, count: 3, step: 1 },
      ];
      socket.write(
        frame({ op: 'job-info', reqId: 3, selector: { kind: 'ids', ids }, withTasks: false }),
      );
      const r = (await response) as {
        ok: boolean;
        error?: string;
        data: { jobs: { info: { id: number } }[]; missing: number[] };
      };
      assert.equal(r.ok, true, r.error);
      assert.deepEqual(
        r.data.jobs.map((j) => j.info.id),
        [1],
      );
      assert.deepEqual(r.data.missing, [0, 2]);
    } finally {
      socket.destroy();
    }
    await assertServerHealthy();
  });

  void it('logs a refused request on one line, whatever its op holds', async () => {
    const forged = '2000-01-01T00:00:00Z ERROR forged';
    await sendAndExpectClose(
      access.client.port,
      'hq-client',
      keys.client,
      frame({ op: `x\n${forged}`, reqId: 1 }),
      'an op with a newline',
    );
    const lines = env.server!.stderr().split('\n');
    assert.ok(!lines.some((l) => l.startsWith(forged)), 'a peer forged a log line');
    assert.ok(
      lines.some((l) => l.includes(`unknown request 'x\\n${forged}'`)),
      'the refusal names the op, escaped',
    );
    await assertServerHealthy();
  });

  void it('answers a well-formed request sent as raw frames (control for the tests below)', async () => {
    const socket = await connectOrFail(access.client.port, 'hq-client', keys.client);
    try {
      const response = readFrame(socket);
      socket.write(frame({ op: 'job-list', reqId: 7 }));
      const r = (await response) as { op: string; reqId: number; ok: boolean; data: unknown[] };
      assert.equal(r.op, 'response');
      assert.equal(r.reqId, 7);
      assert.equal(r.ok, true);
      assert.equal(r.data.length, 1);
    } finally {
      socket.destroy();
    }
  });

  for (const role of ['client', 'worker'] as const) {
    void it(`drops a plaintext peer that sends garbage to the ${role} port`, async () => {
      const port = role === 'client' ? access.client.port : access.worker.port;
      const socket = net.connect(port, '127.0.0.1');
      const received: Buffer[] = [];
      socket.on('data', (d: Buffer) => received.push(d));
      const closed = closedByPeer(socket, 'plaintext garbage');
      socket.write(
        Buffer.concat([Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), randomBytes(64)]),
      );
      await closed;
      // At most a TLS alert record (content type 21) comes back, never application data.
      const reply = Buffer.concat(received);
      assert.ok(
        reply.length === 0 || reply[0] === 0x15,
        `unexpected reply ${reply.toString('hex')}`,
      );
      await assertServerHealthy();
    });
  }

  const badFrames: [string, (role: 'client' | 'worker') => Buffer][] = [
    ['a frame that is not msgpack', () => rawFrame(Buffer.from([0xc1, 0xc1, 0xc1]))],
    ['a msgpack value followed by junk', () => rawFrame(Buffer.from([0x01, 0xc1, 0xff]))],
    ['a msgpack string instead of a message', () => frame('hello')],
    [
      'a message of an unknown kind',
      (role) => frame(role === 'client' ? { op: 'drop-tables', reqId: 1 } : { op: 'drop-tables' }),
    ],
    [
      'a message with fields of the wrong type',
      (role) =>
        frame(
          role === 'client'
            ? { op: 'job-info', reqId: 'x', selector: 5 }
            : { op: 'register', protocol: 'x', version: 5 },
        ),
    ],
    [
      'a message out of order (worker: heartbeat before register)',
      (role) => frame(role === 'client' ? { op: 'response', reqId: 1 } : { op: 'heartbeat' }),
    ],
    [
      'a malformed event-stream request (worker: a malformed overview)',
      (role) =>
        frame(
          role === 'client'
            ? { op: 'journal-stream', reqId: 1, mode: 'everything', jobs: ['x'] }
            : { op: 'overview', hwState: { cpu_usage: 7 } },
        ),
    ],
    [
      'a 4 GiB length prefix',
      () => Buffer.concat([Buffer.from([0xff, 0xff, 0xff, 0xff]), randomBytes(16)]),
    ],
  ];

  for (const role of ['client', 'worker'] as const) {
    for (const [what, make] of badFrames) {
      void it(`disconnects an authenticated ${role} that sends ${what}`, async () => {
        const p = ports.find((x) => x.role === role)!;
        await sendAndExpectClose(p.port, p.identity, p.key, make(role), what);
        await assertServerHealthy();
      });
    }

    void it(`survives an authenticated ${role} that sends a truncated frame and hangs up`, async () => {
      const p = ports.find((x) => x.role === role)!;
      const socket = await connectOrFail(p.port, p.identity, p.key);
      try {
        // A header announcing 1000 bytes, then only 10 of them.
        const partial = Buffer.concat([Buffer.from([0, 0, 0x03, 0xe8]), randomBytes(10)]);
        await new Promise<void>((resolve) => socket.write(partial, () => resolve()));
        // While the frame is incomplete the server waits, and keeps serving everybody else.
        await assertServerHealthy();
        assert.equal(socket.destroyed, false);
        const closed = closedByPeer(socket, 'a truncated frame and end of stream');
        socket.end();
        await closed;
      } finally {
        socket.destroy();
      }
      await assertServerHealthy();
    });
  }
});

/** A TCP proxy on loopback that records every byte in both directions, per connection. */
class RecordingProxy {
  readonly streams: { toServer: Buffer[]; toClient: Buffer[] }[] = [];
  private readonly sockets = new Set<net.Socket>();
  private readonly server: net.Server;
  port = 0;

  private constructor(targetPort: number) {
    this.server = net.createServer((downstream) => {
      const record = { toServer: [] as Buffer[], toClient: [] as Buffer[] };
      this.streams.push(record);
      const upstream = net.connect(targetPort, '127.0.0.1');
      for (const s of [downstream, upstream]) {
        this.sockets.add(s);
        s.on('error', () => {
          downstream.destroy();
          upstream.destroy();
        });
        s.on('close', () => {
          this.sockets.delete(s);
          downstream.destroy();
          upstream.destroy();
        });
      }
      downstream.on('data', (d: Buffer) => {
        record.toServer.push(Buffer.from(d));
        upstream.write(d);
      });
      upstream.on('data', (d: Buffer) => {
        record.toClient.push(Buffer.from(d));
        downstream.write(d);
      });
      downstream.on('end', () => upstream.end());
      upstream.on('end', () => downstream.end());
    });
  }

  static start(targetPort: number): Promise<RecordingProxy> {
    const proxy = new RecordingProxy(targetPort);
    return new Promise((resolve, reject) => {
      proxy.server.once('error', reject);
      proxy.server.listen(0, '127.0.0.1', () => {
        const address = proxy.server.address();
        proxy.port = typeof address === 'object' && address !== null ? address.port : 0;
        resolve(proxy);
      });
    });
  }

  /** Every recorded byte stream (one per connection and direction). */
  recorded(): Buffer[] {
    return this.streams.flatMap((s) => [Buffer.concat(s.toServer), Buffer.concat(s.toClient)]);
  }

  close(): Promise<void> {
    for (const s of this.sockets) {
      s.destroy();
    }
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

void describe('requests with keys the protocol does not have', () => {
  void it('an array submit that carries a kind key is still an array submit', () =>
    withEnv(async (env) => {
      // Found by the protocol fuzzer: the array's own `kind` overrode the submit's, the job was
      // created and then building it as a graph threw; the client got an error, the job stayed.
      await env.startServer();
      const access = readAccess(env.serverDir);
      const key = Buffer.from(access.client.secret_key, 'hex');
      const socket = await connectOrFail(access.client.port, 'hq-client', key);
      try {
        const response = readFrame(socket);
        const ids = [{ start: 0, count: 2, step: 1 }];
        const array = {
          ids,
          autoIds: false,
          entries: null,
          taskDesc: TASK_DESC,
          submitDir: env.dir,
        };
        socket.write(
          frame({
            op: 'submit',
            reqId: 1,
            jobId: null,
            name: 'extra-key',
            maxFails: null,
            array: { ...array, kind: 'graph' },
          }),
        );
        const r = (await response) as { ok: boolean; error?: string; data: unknown };
        assert.equal(r.ok, true, r.error);
        assert.deepEqual(r.data, { jobId: 1, nTasks: 2 });
      } finally {
        socket.destroy();
      }
      const info = await env.output(['job', 'info', '1']);
      assert.match(info, /extra-key/);
      assert.match(info, /\| Tasks +\| 2; Ids: 0-1 /);
    }));
});

void describe('a worker lost with several tasks', () => {
  void it('does not restart a task that the crash limit of another one aborted', () =>
    withEnv(async (env) => {
      // Found by the protocol fuzzer (fuzz workers come and go with tasks): the first task hit
      // its crash limit, max fails aborted the second, and the loss handling restarted the
      // second anyway. It ran again after its job had completed, and once the job was
      // forgotten the server handed it out and crashed on the missing job.
      await env.startServer();
      // Task 0 reaches its crash limit at the first loss, task 1 does not: only max fails ends
      // it. Task 0 goes first (priority), so the loss handling meets it first.
      const jobFile = env.path('job.toml');
      fs.writeFileSync(
        jobFile,
        [
          'max_fails = 0',
          '[[task]]',
          'id = 0',
          'command = ["true"]',
          'crash_limit = 1',
          'priority = 1',
          '[[task]]',
          'id = 1',
          'command = ["true"]',
          'crash_limit = 5',
          '',
        ].join('\n'),
      );
      await env.command(['job', 'submit-file', jobFile]);
      const access = readAccess(env.serverDir);
      const key = Buffer.from(access.worker.secret_key, 'hex');
      const socket = await connectOrFail(access.worker.port, 'hq-worker', key);
      let assigned = 0;
      const decoder = new FrameDecoder();
      socket.on('data', (chunk: Buffer) => {
        for (const m of decoder.push(chunk) as { op?: string; tasks?: unknown[] }[]) {
          if (m.op === 'compute') {
            assigned += m.tasks?.length ?? 0;
          }
        }
      });
      try {
        socket.write(
          frame({
            op: 'register',
            protocol: PROTOCOL_VERSION,
            version: hqVersion().replace(/^hq /, ''),
            configuration: {
              // Two CPUs: both tasks go to this one worker.
              resources: {
                resources: [{ name: 'cpus', kind: 'range', start: 0, end: 1 }],
                coupling: { weights: [] },
              },
              hostname: 'fake',
              listenAddress: 'fake:0',
              workDir: env.dir,
              group: 'default',
              heartbeatIntervalMs: 60_000,
              idleTimeoutMs: null,
              timeLimitMs: null,
              onServerLost: 'stop',
              minUtilization: 0,
              overviewIntervalMs: null,
              manager: null,
              pid: 1,
            },
          }),
        );
        await waitFor(() => assigned === 2, { message: 'both tasks on the fake worker' });
      } finally {
        socket.destroy();
      }
      await env.waitForJobState(1, 'FAILED');
      const states = horizontalTable(await env.output(['task', 'list', '1'])).map((r) => [
        r['Task ID'],
        r['State'],
      ]);
      assert.deepEqual(states, [
        ['0', 'FAILED'],
        ['1', 'ABORTED'],
      ]);
      // Nothing of the job waits to be scheduled again.
      const dump = env.path('dump.json');
      await env.command(['server', 'debug-dump', dump]);
      const tako = (JSON.parse(fs.readFileSync(dump, 'utf8')) as { tako: { waiting: number } })
        .tako;
      assert.equal(tako.waiting, 0);
    }));
});

void describe('the wire', () => {
  void it('carries no plaintext: commands, task definitions and keys are encrypted', () =>
    withEnv(async (env) => {
      await env.startServer();
      const access = readAccess(env.serverDir);
      const clientProxy = await RecordingProxy.start(access.client.port);
      const workerProxy = await RecordingProxy.start(access.worker.port);
      try {
        // A second server directory whose access file sends clients and workers via the proxies.
        const proxyDir = env.path('via-proxy');
        fs.mkdirSync(proxyDir);
        const proxied: Access = {
          ...access,
          client: { ...access.client, port: clientProxy.port },
          worker: { ...access.worker, port: workerProxy.port },
        };
        fs.writeFileSync(path.join(proxyDir, 'access.json'), JSON.stringify(proxied), {
          mode: 0o600,
        });

        await env.startWorker({ serverDir: proxyDir });
        const marker = `hq-marker-${randomBytes(12).toString('hex')}`;
        const submitted = await env.command(
          ['submit', '--name', `name-${marker}`, '--', 'bash', '-c', `echo ${marker}`],
          { serverDir: proxyDir },
        );
        assert.equal(submitted.stdout, 'Job submitted successfully, job ID: 1\n');
        await env.waitForJobState(1, 'FINISHED');
        // The marker made it through both proxies: back to a client and into the task.
        const info = await env.output(['job', 'info', '1'], { serverDir: proxyDir });
        assert.ok(info.includes(marker), info);
        assert.equal(fs.readFileSync(env.path('job-1', '0.stdout'), 'utf8'), `${marker}\n`);

        for (const [name, proxy] of [
          ['client', clientProxy],
          ['worker', workerProxy],
        ] as const) {
          assert.ok(proxy.streams.length >= 1, `the ${name} proxy was used`);
          for (const s of proxy.streams) {
            const first = s.toServer[0];
            assert.ok(
              first !== undefined && first[0] === 0x16 && first[1] === 0x03,
              'TLS handshake',
            );
          }
          const bytes = proxy.recorded();
          assert.ok(
            bytes.some((b) => b.length > 0),
            `bytes were recorded on the ${name} connection`,
          );
          // Control: the PSK identity travels in the clear in the ClientHello, so the scan below
          // does see plaintext where there is some.
          assert.ok(
            bytes.some((b) => b.includes(Buffer.from(`hq-${name}`))),
            `the ${name} PSK identity is visible in the recording`,
          );
          const secrets: [string, Buffer][] = [
            ['marker', Buffer.from(marker)],
            ['marker (utf-16)', Buffer.from(marker, 'utf16le')],
            ['client key (hex)', Buffer.from(access.client.secret_key)],
            ['client key (raw)', Buffer.from(access.client.secret_key, 'hex')],
            ['worker key (hex)', Buffer.from(access.worker.secret_key)],
            ['worker key (raw)', Buffer.from(access.worker.secret_key, 'hex')],
          ];
          for (const b of bytes) {
            for (const [what, needle] of secrets) {
              assert.equal(b.includes(needle), false, `${what} visible on the ${name} connection`);
            }
          }
        }
        // The client connections carried the submit (marker out) and job info (marker back).
        assert.ok(clientProxy.streams.length >= 2);
      } finally {
        await clientProxy.close();
        await workerProxy.close();
      }
    }));
});
