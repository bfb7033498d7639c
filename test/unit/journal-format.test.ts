import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import type { ServerEvent, TimedEvent } from '../../src/server/events.js';
import {
  HEADER_BYTES,
  encodeRecord,
  journalHeader,
  readJournal,
  scanJournal,
} from '../../src/server/journal/format.js';
import { JournalWriter } from '../../src/server/journal/writer.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) {
    fs.rmSync(d, { recursive: true, force: true });
  }
});

function tmpFile(name = 'journal'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hq-journal-unit-'));
  dirs.push(dir);
  return path.join(dir, name);
}

function events(n: number): TimedEvent[] {
  const out: TimedEvent[] = [{ time: 1000, event: { type: 'server-start', serverUid: 'abc' } }];
  for (let i = 1; i < n; i++) {
    out.push({ time: 1000 + i, event: { type: 'task-finished', jobId: 1, taskId: i } });
  }
  return out;
}

function writeJournal(file: string, records: TimedEvent[]): number[] {
  const parts = [journalHeader()];
  const offsets: number[] = [];
  let offset = HEADER_BYTES;
  for (const r of records) {
    const b = encodeRecord([r]);
    offsets.push(offset);
    offset += b.length;
    parts.push(b);
  }
  fs.writeFileSync(file, Buffer.concat(parts));
  return offsets;
}

function scan(file: string): { records: TimedEvent[]; result: ReturnType<typeof scanJournal> } {
  const records: TimedEvent[] = [];
  const result = scanJournal(file, (r) => records.push(r));
  return { records, result };
}

void describe('journal file format', () => {
  void it('reads back every record it wrote, stdin bytes included', () => {
    const file = tmpFile();
    const submit: ServerEvent = {
      type: 'task-notify',
      jobId: 1,
      taskId: 2,
      workerId: 3,
      message: 'ünïcode',
    };
    const written = [...events(50), { time: 5, event: submit }];
    writeJournal(file, written);
    const { records, result } = scan(file);
    assert.deepEqual(records, written);
    assert.equal(result.tornBytes, 0);
    assert.equal(result.validEnd, fs.statSync(file).size);
    assert.equal(result.records, written.length);
  });

  void it('treats a cut-off last record as a torn tail and reports where appending resumes', () => {
    const file = tmpFile();
    const offsets = writeJournal(file, events(10));
    const size = fs.statSync(file).size;
    fs.truncateSync(file, size - 1);
    const { records, result } = scan(file);
    assert.equal(records.length, 9);
    assert.equal(result.validEnd, offsets[9]);
    assert.equal(result.tornBytes, size - 1 - offsets[9]!);
  });

  void it('treats a zero-filled tail as torn', () => {
    const file = tmpFile();
    writeJournal(file, events(10));
    const size = fs.statSync(file).size;
    fs.appendFileSync(file, Buffer.alloc(8192));
    const { records, result } = scan(file);
    assert.equal(records.length, 10);
    assert.equal(result.validEnd, size);
    assert.equal(result.tornBytes, 8192);
  });

  void it('refuses damage followed by valid records, naming the byte offset', () => {
    const file = tmpFile();
    const offsets = writeJournal(file, events(20));
    const data = fs.readFileSync(file);
    const at = offsets[5]! + 10; // inside record 5's payload
    data[at] = data[at]! ^ 0xff;
    fs.writeFileSync(file, data);
    assert.throws(
      () => scan(file),
      (e: Error) =>
        e.message.includes(`corrupted at byte offset ${offsets[5]}`) &&
        e.message.includes(`valid records follow at byte offset ${offsets[6]}`) &&
        !e.message.includes('\n'),
    );
  });

  void it('refuses a zeroed block in the middle (the shape of upstream issue #1059)', () => {
    const file = tmpFile();
    const offsets = writeJournal(file, events(20));
    const data = fs.readFileSync(file);
    data.fill(0, offsets[3], offsets[8]);
    fs.writeFileSync(file, data);
    assert.throws(() => scan(file), /corrupted at byte offset \d+/);
  });

  void it('refuses upstream journals, unknown files and newer versions with one line', () => {
    const upstream = tmpFile();
    fs.writeFileSync(upstream, Buffer.concat([Buffer.from('hqjl0002'), Buffer.alloc(32, 1)]));
    assert.throws(() => scan(upstream), /written by upstream HyperQueue/);
    const garbage = tmpFile();
    fs.writeFileSync(garbage, 'hello, this is not a journal at all');
    assert.throws(() => scan(garbage), /Invalid journal format/);
    const newer = tmpFile();
    const header = journalHeader();
    header.writeUInt32LE(99, 8);
    fs.writeFileSync(newer, header); // CRC now wrong: damaged header
    assert.throws(() => scan(newer), /damaged header/);
  });

  void it('refuses a newer format version with a valid header', async () => {
    const zlib = await import('node:zlib');
    const file = tmpFile();
    const header = journalHeader();
    header.writeUInt32LE(2, 8);
    header.writeUInt32LE(zlib.crc32(header.subarray(0, 12)), 12);
    fs.writeFileSync(file, header);
    assert.throws(() => scan(file), /Cannot load newer journal file.*version is 2/);
  });

  void it('takes an empty file or a torn header as a new journal', () => {
    const empty = tmpFile();
    fs.writeFileSync(empty, '');
    assert.equal(scan(empty).result.needsHeader, true);
    const torn = tmpFile();
    fs.writeFileSync(torn, journalHeader().subarray(0, 5));
    const r = scan(torn).result;
    assert.equal(r.needsHeader, true);
    assert.equal(r.tornBytes, 5);
  });

  void it('packs many events per record and reads them back in order', () => {
    const file = tmpFile();
    const many = events(10_000);
    const parts = [journalHeader()];
    for (let i = 0; i < many.length; i += 4096) {
      parts.push(encodeRecord(many.slice(i, i + 4096)));
    }
    fs.writeFileSync(file, Buffer.concat(parts));
    const { records, result } = scan(file);
    assert.deepEqual(records, many);
    assert.equal(result.records, 10_000);
    assert.ok(fs.statSync(file).size < 10_000 * 12, 'a finished task costs a few bytes');
  });

  void it('keeps times before the record base and large ids exact in compact entries', () => {
    const file = tmpFile();
    const odd: TimedEvent[] = [
      {
        time: 1_700_000_000_000,
        event: { type: 'task-finished', jobId: 1, taskId: 4_000_000_000 },
      },
      {
        time: 1_699_999_999_000,
        event: {
          type: 'task-started',
          jobId: 70_000,
          taskId: 0,
          instance: 300,
          workers: [65_536],
          variant: 0,
        },
      },
      { time: 1_600_000_000_000, event: { type: 'task-finished', jobId: 2 ** 40, taskId: 127 } },
      { time: 1_700_000_000_001, event: { type: 'job-completed', job: 1 } },
      { time: 1_700_000_000_002, event: { type: 'task-finished', jobId: 3, taskId: 128 } },
    ];
    fs.writeFileSync(file, Buffer.concat([journalHeader(), encodeRecord(odd)]));
    assert.deepEqual(scan(file).records, odd);
  });

  void it('round-trips sent-task entries of every array size, between other entries', () => {
    const file = tmpFile();
    const pairs = (n: number): number[] =>
      Array.from({ length: n }, (_, i) => [i * 3 + 70_000 * (i % 2), 1 + (i % 300)]).flat();
    const sent: TimedEvent[] = [1, 6, 7, 40, 33_000].map((n, i) => ({
      time: 1_700_000_000_000 + i,
      event: { type: 'tasks-sent', jobId: 2 ** 33, workerId: 65_536 + i, ranges: pairs(n) },
    }));
    const mixed: TimedEvent[] = [
      { time: 1_700_000_000_000, event: { type: 'job-completed', job: 1 } },
      ...sent,
      { time: 1_700_000_000_009, event: { type: 'task-finished', jobId: 3, taskId: 128 } },
    ];
    fs.writeFileSync(file, Buffer.concat([journalHeader(), encodeRecord(mixed)]));
    assert.deepEqual(scan(file).records, mixed);
    // An array's consecutive ids cost one pair, however many tasks were sent.
    const one = encodeRecord([
      { time: 1, event: { type: 'tasks-sent', jobId: 1, workerId: 1, ranges: [100_000, 5000] } },
    ]);
    assert.ok(one.length < 32, `${one.length} bytes`);
    // A count no job can hold is not a record (it would make a replay loop for ever).
    const bogus = tmpFile();
    const huge: TimedEvent = {
      time: 1,
      event: { type: 'tasks-sent', jobId: 1, workerId: 1, ranges: [0, 16_000_001] },
    };
    fs.writeFileSync(bogus, Buffer.concat([journalHeader(), encodeRecord([huge])]));
    assert.deepEqual(scan(bogus).records, []);
  });

  void it('does not allocate what a damaged length field claims', () => {
    const file = tmpFile();
    writeJournal(file, events(3));
    const bogus = Buffer.alloc(8);
    bogus.writeUInt32LE(0xfffffff0, 0);
    fs.appendFileSync(file, bogus);
    const { records, result } = scan(file);
    assert.equal(records.length, 3);
    assert.equal(result.tornBytes, 8);
  });
});

void describe('journal writer', () => {
  void it('appends, syncs for every waiter, cuts a torn tail, and rewrites atomically', async () => {
    const file = tmpFile();
    writeJournal(file, events(5));
    const size = fs.statSync(file).size;
    fs.appendFileSync(file, Buffer.from([1, 2, 3]));
    const scanned = scan(file).result;
    const writer = new JournalWriter(file, {
      validEnd: scanned.validEnd,
      needsHeader: false,
      flushPeriodMs: 0,
    });
    assert.equal(fs.statSync(file).size, size, 'the torn tail is cut on open');
    writer.append(2000, { type: 'job-completed', job: 1 });
    writer.append(2001, { type: 'job-completed', job: 2 });
    // Several waiters share the syncs and all resolve.
    await Promise.all([writer.sync(), writer.sync(), writer.sync()]);
    assert.deepEqual(
      readJournal(file)
        .slice(-2)
        .map((r) => r.event),
      [
        { type: 'job-completed', job: 1 },
        { type: 'job-completed', job: 2 },
      ],
    );
    writer.rewrite([{ time: 1, event: { type: 'server-start', serverUid: 'x' } }]);
    assert.equal(fs.existsSync(`${file}.tmp`), false);
    writer.append(3, { type: 'server-stop' });
    writer.close();
    assert.deepEqual(
      readJournal(file).map((r) => r.event.type),
      ['server-start', 'server-stop'],
    );
    // Closed: further appends are ignored, syncs resolve.
    writer.append(4, { type: 'server-stop' });
    await writer.sync();
    assert.equal(readJournal(file).length, 2);
  });

  void it('creates a new journal with a header', () => {
    const file = tmpFile();
    const writer = new JournalWriter(file, { validEnd: 0, needsHeader: true, flushPeriodMs: 0 });
    writer.append(1, { type: 'server-start', serverUid: 'u' });
    writer.close();
    const data = fs.readFileSync(file);
    assert.equal(data.subarray(0, 8).toString('latin1'), 'hqtsjrnl');
    assert.equal(readJournal(file).length, 1);
  });
});
