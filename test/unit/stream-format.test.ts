import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { HqError } from '../../src/common/errors.js';
import {
  CHUNK_HEADER_SIZE,
  MAX_CHUNK_DATA,
  OutputLog,
  STREAM_FILE_SUFFIX,
  decodeFileHeader,
  decodeStreamFile,
  encodeChunk,
  encodeFileHeader,
  lastInstance,
} from '../../src/common/stream-format.js';
import { StreamRegistry } from '../../src/worker/stream-writer.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'hq-stream-test-'));
let dirCounter = 0;

function freshDir(): string {
  const dir = path.join(root, `d${dirCounter++}`);
  fs.mkdirSync(dir);
  return dir;
}

function hqsFiles(dir: string): string[] {
  return fs.readdirSync(dir).filter((n) => n.endsWith(STREAM_FILE_SUFFIX));
}

function withLog<T>(dir: string, f: (log: OutputLog) => T, serverUid?: string): T {
  const log = OutputLog.open(dir, serverUid);
  try {
    return f(log);
  } finally {
    log.close();
  }
}

function catJob(log: OutputLog, jobId: number, channel: 0 | 1): string {
  return log
    .selectTasks(jobId, null)
    .map(({ instance }) => log.readChannel(instance, channel).toString())
    .join('');
}

function sampleFile(): Buffer {
  return Buffer.concat([
    encodeFileHeader({ serverUid: 'abcXYZ', workerId: 7 }),
    encodeChunk({ time: 1000, jobId: 1, taskId: 2, instance: 0, channel: 0 }, Buffer.from('hi\n')),
    encodeChunk({ time: 1001, jobId: 1, taskId: 2, instance: 0, channel: 1 }, Buffer.from('err')),
    encodeChunk({ time: 1002, jobId: 1, taskId: 2, instance: 0, channel: 0 }, Buffer.alloc(0)),
  ]);
}

after(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

void describe('stream file encoding', () => {
  void it('round-trips the header and the chunks', () => {
    const decoded = decodeStreamFile(sampleFile());
    assert.deepEqual(decoded.header, { serverUid: 'abcXYZ', workerId: 7 });
    assert.equal(decoded.complete, true);
    assert.deepEqual(
      decoded.chunks.map(({ dataOffset: _, ...c }) => c),
      [
        { time: 1000, jobId: 1, taskId: 2, instance: 0, channel: 0, size: 3 },
        { time: 1001, jobId: 1, taskId: 2, instance: 0, channel: 1, size: 3 },
        { time: 1002, jobId: 1, taskId: 2, instance: 0, channel: 0, size: 0 },
      ],
    );
    const buf = sampleFile();
    const first = decoded.chunks[0]!;
    assert.equal(buf.toString('utf8', first.dataOffset, first.dataOffset + first.size), 'hi\n');
  });

  void it('keeps large ids, times and non-ASCII server uids', () => {
    const buf = Buffer.concat([
      encodeFileHeader({ serverUid: 'žluťoučký', workerId: 0xffff_ffff }),
      encodeChunk(
        {
          time: 1_700_000_000_123,
          jobId: 0xffff_ffff,
          taskId: 4_000_000_000,
          instance: 9,
          channel: 1,
        },
        Buffer.from([0, 255, 10]),
      ),
    ]);
    const decoded = decodeStreamFile(buf);
    assert.deepEqual(decoded.header, { serverUid: 'žluťoučký', workerId: 0xffff_ffff });
    const chunk = decoded.chunks[0]!;
    assert.equal(chunk.time, 1_700_000_000_123);
    assert.equal(chunk.jobId, 0xffff_ffff);
    assert.equal(chunk.taskId, 4_000_000_000);
    assert.equal(chunk.instance, 9);
    assert.equal(chunk.channel, 1);
  });

  void it('ignores a record cut short at any point of the tail', () => {
    const full = sampleFile();
    const headerLength = encodeFileHeader({ serverUid: 'abcXYZ', workerId: 7 }).length;
    const ends: number[] = [];
    let at = headerLength;
    for (const size of [3, 3, 0]) {
      at += CHUNK_HEADER_SIZE + size;
      ends.push(at);
    }
    for (let length = headerLength; length <= full.length; length++) {
      const decoded = decodeStreamFile(full.subarray(0, length));
      const expected = ends.filter((e) => e <= length).length;
      assert.equal(decoded.chunks.length, expected, `length ${length}`);
      assert.equal(decoded.complete, length === headerLength || ends.includes(length));
    }
  });

  void it('reports incomplete and foreign headers', () => {
    const header = encodeFileHeader({ serverUid: 'uid', workerId: 1 });
    for (let length = 0; length < header.length; length++) {
      assert.equal(decodeFileHeader(header.subarray(0, length)).kind, 'incomplete');
    }
    assert.equal(decodeFileHeader(header).kind, 'ok');
    assert.equal(decodeFileHeader(Buffer.from('hqsf0000xxxxxxxxxxxx')).kind, 'invalid');
    assert.throws(() => decodeStreamFile(Buffer.from('not a stream file')), HqError);
  });

  void it('rejects a corrupted record', () => {
    const buf = sampleFile();
    const headerLength = encodeFileHeader({ serverUid: 'abcXYZ', workerId: 7 }).length;
    buf[headerLength] = 7; // channel 7
    assert.throws(
      () => decodeStreamFile(buf),
      (e: unknown) => e instanceof HqError && /invalid chunk at offset/.test(e.message),
    );
  });
});

void describe('StreamRegistry and OutputLog', () => {
  void it('writes one file per worker and reads several workers back', async () => {
    const dir = freshDir();
    const a = new StreamRegistry('server-1', 1);
    const b = new StreamRegistry('server-1', 2);
    for (let t = 1; t <= 20; t++) {
      const writer = t % 2 === 0 ? a : b;
      const ref = { jobId: 1, taskId: t, instance: 0 };
      writer.write(dir, ref, 0, Buffer.from(`Hello from ${t}\n`));
      writer.end(dir, ref, 0);
      writer.end(dir, ref, 1);
    }
    await a.close();
    await b.close();
    assert.equal(hqsFiles(dir).length, 2);
    for (const name of hqsFiles(dir)) {
      assert.match(name, /^[A-Za-z0-9]{12}\.hqs$/);
    }
    withLog(dir, (log) => {
      assert.deepEqual(log.summary(), {
        files: 2,
        jobs: 1,
        tasks: 20,
        streams: 20,
        opened: 0,
        stdoutSize: 271,
        stderrSize: 0,
        superseded: 0,
        supersededStdoutSize: 0,
        supersededStderrSize: 0,
      });
      assert.deepEqual(log.jobIds(), [1]);
      const expected = Array.from({ length: 20 }, (_, i) => `Hello from ${i + 1}\n`).join('');
      assert.equal(catJob(log, 1, 0), expected);
      assert.equal(catJob(log, 1, 1), '');
      const picked = log.selectTasks(1, [3, 4, 2]);
      assert.deepEqual(
        picked.map(({ taskId, instance }) => [taskId, log.readChannel(instance, 0).toString()]),
        [
          [3, 'Hello from 3\n'],
          [4, 'Hello from 4\n'],
          [2, 'Hello from 2\n'],
        ],
      );
      assert.throws(() => log.selectTasks(2, null), { message: 'Job 2 not found' });
      assert.throws(() => log.selectTasks(1, [99]), { message: 'Task 99 not found' });
    });
  });

  void it('counts superseded instances and reads the last one', async () => {
    const dir = freshDir();
    const first = new StreamRegistry('uid', 1);
    const second = new StreamRegistry('uid', 2);
    // The first worker dies after "Start"; the task runs again (instance 1) elsewhere.
    second.write(dir, { jobId: 1, taskId: 0, instance: 1 }, 0, Buffer.from('Start\n'));
    first.write(dir, { jobId: 1, taskId: 0, instance: 0 }, 0, Buffer.from('Start\n'));
    second.write(dir, { jobId: 1, taskId: 0, instance: 1 }, 0, Buffer.from('End 1\n'));
    second.end(dir, { jobId: 1, taskId: 0, instance: 1 }, 0);
    await first.close();
    await second.close();
    withLog(dir, (log) => {
      const s = log.summary();
      assert.equal(s.files, 2);
      assert.equal(s.tasks, 1);
      assert.equal(s.streams, 2);
      assert.equal(s.opened, 0);
      assert.equal(s.stdoutSize, 12);
      assert.equal(s.superseded, 1);
      assert.equal(s.supersededStdoutSize, 6);
      const task = log.index.get(1)!.get(0)!;
      assert.deepEqual(
        task.instances.map((i) => i.instance),
        [0, 1],
      );
      assert.equal(lastInstance(task).instance, 1);
      assert.equal(catJob(log, 1, 0), 'Start\nEnd 1\n');
    });
  });

  void it('tells unfinished streams apart', async () => {
    const dir = freshDir();
    const reg = new StreamRegistry('uid', 1);
    reg.write(dir, { jobId: 3, taskId: 0, instance: 0 }, 0, Buffer.from('done\n'));
    reg.end(dir, { jobId: 3, taskId: 0, instance: 0 }, 0);
    reg.write(dir, { jobId: 3, taskId: 1, instance: 0 }, 1, Buffer.from('still running'));
    await reg.flush();
    withLog(dir, (log) => {
      assert.equal(log.summary().opened, 1);
      const [done, running] = log.selectTasks(3, null);
      assert.equal(done!.instance.finished, true);
      assert.equal(running!.instance.finished, false);
      assert.equal(log.readChannel(running!.instance, 1).toString(), 'still running');
    });
    await reg.close();
  });

  void it('keeps small writes in memory until a flush, but not large ones', async () => {
    const dir = freshDir();
    const reg = new StreamRegistry('uid', 1);
    const ref = { jobId: 1, taskId: 0, instance: 0 };
    reg.write(dir, ref, 0, Buffer.from('Start\n'));
    // The file and its header exist at once; the chunk is still buffered.
    withLog(dir, (log) => {
      assert.equal(log.files.length, 1);
      assert.throws(() => log.selectTasks(1, null), { message: 'Job 1 not found' });
    });
    await reg.flush();
    withLog(dir, (log) => assert.equal(catJob(log, 1, 0), 'Start\n'));

    const big = Buffer.from('ab'.repeat(16 * 1024 + 3));
    reg.write(dir, ref, 0, big);
    const file = path.join(dir, hqsFiles(dir)[0]!);
    const before = fs.statSync(file).size;
    for (let i = 0; i < 200 && fs.statSync(file).size < before + big.length; i++) {
      await new Promise((r) => setTimeout(r, 5));
    }
    withLog(dir, (log) => {
      const [task] = log.selectTasks(1, null);
      assert.equal(task!.instance.finished, false);
      // Written in chunks of at most 16 KiB.
      assert.ok(task!.instance.channels[0].every((c) => c.size <= MAX_CHUNK_DATA));
      assert.equal(log.readChannel(task!.instance, 0).toString(), `Start\n${big.toString()}`);
    });
    await reg.close();
  });

  void it('reads a file whose tail is cut off', async () => {
    const dir = freshDir();
    const reg = new StreamRegistry('uid', 1);
    reg.write(dir, { jobId: 1, taskId: 0, instance: 0 }, 0, Buffer.from('first\n'));
    reg.write(dir, { jobId: 1, taskId: 1, instance: 0 }, 0, Buffer.from('second\n'));
    await reg.close();
    const file = path.join(dir, hqsFiles(dir)[0]!);
    fs.truncateSync(file, fs.statSync(file).size - 3);
    withLog(dir, (log) => {
      assert.equal(catJob(log, 1, 0), 'first\n');
      assert.equal(log.summary().tasks, 1);
    });
  });

  void it('skips files without a valid header', async () => {
    const dir = freshDir();
    const reg = new StreamRegistry('uid', 1);
    reg.write(dir, { jobId: 1, taskId: 0, instance: 0 }, 0, Buffer.from('x'));
    await reg.close();
    fs.writeFileSync(path.join(dir, 'AAAAAAAAAAAA.hqs'), 'hqsf');
    fs.writeFileSync(path.join(dir, 'BBBBBBBBBBBB.hqs'), 'garbage garbage');
    fs.writeFileSync(path.join(dir, 'notes.txt'), 'not a stream file');
    withLog(dir, (log) => {
      assert.equal(log.summary().files, 1);
      assert.equal(catJob(log, 1, 0), 'x');
    });
    assert.throws(() => OutputLog.open(freshDir()), { message: 'No log files found' });
  });

  void it('needs --server-uid when several servers wrote into one directory', async () => {
    const dir = freshDir();
    for (const uid of ['srvB', 'srvA']) {
      const reg = new StreamRegistry(uid, 1);
      reg.write(dir, { jobId: 1, taskId: 0, instance: 0 }, 0, Buffer.from(`from ${uid}\n`));
      reg.end(dir, { jobId: 1, taskId: 0, instance: 0 }, 0);
      await reg.close();
    }
    assert.throws(() => OutputLog.open(dir), {
      message:
        'Found streams from multiple server instances:\nsrvA\nsrvB\nUse --server-uid=... to specify server uid',
    });
    withLog(dir, (log) => assert.equal(catJob(log, 1, 0), 'from srvA\n'), 'srvA');
    withLog(dir, (log) => assert.equal(catJob(log, 1, 0), 'from srvB\n'), 'srvB');
    withLog(dir, (log) => assert.equal(log.summary().files, 0), 'other');
  });

  void it('surfaces errors of the stream directory', async () => {
    const notADir = path.join(freshDir(), 'file');
    fs.writeFileSync(notADir, '');
    const reg = new StreamRegistry('uid', 1);
    assert.throws(
      () => reg.write(notADir, { jobId: 1, taskId: 0, instance: 0 }, 0, Buffer.from('x')),
      (e: unknown) =>
        e instanceof HqError && e.message.startsWith('Cannot create stream directory'),
    );
    // A missing directory is created, as upstream does.
    const nested = path.join(freshDir(), 'a', 'b');
    reg.write(nested, { jobId: 1, taskId: 0, instance: 0 }, 0, Buffer.from('x'));
    await reg.flush();
    assert.equal(hqsFiles(nested).length, 1);
    await reg.close();
    assert.throws(() =>
      reg.write(nested, { jobId: 1, taskId: 0, instance: 0 }, 0, Buffer.from('y')),
    );
  });

  void it('keeps records whole under many concurrent tasks', async () => {
    const dir = freshDir();
    const reg = new StreamRegistry('uid', 1);
    const flushes: Promise<void>[] = [];
    const payload = (t: number): Buffer => Buffer.alloc(1000 + (t % 7) * 3000, String(t % 10));
    for (let t = 0; t < 500; t++) {
      const ref = { jobId: 1, taskId: t, instance: 0 };
      reg.write(dir, ref, 0, payload(t));
      reg.write(dir, ref, 1, Buffer.from(`e${t}`));
      reg.end(dir, ref, 0);
      reg.end(dir, ref, 1);
      flushes.push(reg.flush());
    }
    await Promise.all(flushes);
    withLog(dir, (log) => {
      const s = log.summary();
      assert.equal(s.tasks, 500);
      assert.equal(s.opened, 0);
      for (const { taskId, instance } of log.selectTasks(1, null)) {
        assert.ok(log.readChannel(instance, 0).equals(payload(taskId)));
        assert.equal(log.readChannel(instance, 1).toString(), `e${taskId}`);
      }
    });
    await reg.close();
  });
});
