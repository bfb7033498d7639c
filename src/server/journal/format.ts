/**
 * The journal file: a header, then records back to back.
 *
 *   header  = "hqtsjrnl" | u32 LE format version | u32 LE crc32(first 12 bytes)     (16 bytes)
 *   record  = u32 LE payload length | u32 LE crc32(length bytes ‖ payload) | payload
 *   payload = msgpack [base time (epoch ms), entry, entry, ...]
 *   entry   = [time - base, 0, ServerEvent]                       any event
 *           | [time - base, 1, job, task, instance, worker]       task-started, 1 worker, variant 0
 *           | [time - base, 2, job, task]                          task-finished
 *           | [time - base, 3, job, worker, first, count, ...]     tasks-sent
 *
 * A record holds the events of one write (one event-loop turn, split at ENTRIES_PER_RECORD), so
 * a torn write loses whole turns, never half an event. The compact entry kinds are the events
 * of every task of an array (its sending, start and finish); they make a finished task cost
 * about 24 bytes, and a replay of a million of them a fraction of a second.
 *
 * Invariants:
 * - A record is valid only when its length fits the file and the 128 MiB limit, its CRC
 *   matches and its payload decodes; nothing is allocated before the length is checked.
 * - Reading stops at the first invalid record. If no valid record follows it, the damage is a
 *   torn or zero-filled tail left by a crash and is cut off (`scanJournal` reports where);
 *   if a valid record does follow, the file is corrupted in the middle and is refused with
 *   the byte offset, because cutting there would silently drop acknowledged history.
 * - A file in upstream's format (`hqjl…`) or of a newer version is refused, never parsed.
 */
import * as fs from 'node:fs';
import * as zlib from 'node:zlib';
import { Packr, Unpackr } from 'msgpackr';
import { HqError } from '../../common/errors.js';
import type { ServerEvent, TimedEvent } from '../events.js';
import { MAX_TASKS_PER_JOB } from '../submit.js';

export const JOURNAL_MAGIC = Buffer.from('hqtsjrnl', 'latin1');
export const JOURNAL_VERSION = 1;
export const HEADER_BYTES = 16;
const RECORD_HEADER_BYTES = 8;
export const MAX_RECORD_BYTES = 128 * 1024 * 1024;
const READ_CHUNK_BYTES = 8 * 1024 * 1024;
const MAX_TAIL_SCAN_BYTES = 64 * 1024 * 1024;
const UPSTREAM_MAGIC = Buffer.from('hqjl', 'latin1');

const packr = new Packr({ useRecords: false, moreTypes: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

export function journalHeader(): Buffer {
  const header = Buffer.alloc(HEADER_BYTES);
  JOURNAL_MAGIC.copy(header, 0);
  header.writeUInt32LE(JOURNAL_VERSION, 8);
  header.writeUInt32LE(zlib.crc32(header.subarray(0, 12)), 12);
  return header;
}

/** Events per record at most, so that one record stays far below the size limit. */
export const ENTRIES_PER_RECORD = 4096;

/** Writes a safe integer as the shortest msgpack int (float64 past 32 bits, still exact). */
function writeInt(buf: Buffer, off: number, v: number): number {
  if (v >= 0) {
    if (v < 128) {
      buf[off] = v;
      return off + 1;
    }
    if (v < 256) {
      buf[off] = 0xcc;
      buf[off + 1] = v;
      return off + 2;
    }
    if (v < 65536) {
      buf[off] = 0xcd;
      buf.writeUInt16BE(v, off + 1);
      return off + 3;
    }
    if (v < 4294967296) {
      buf[off] = 0xce;
      buf.writeUInt32BE(v, off + 1);
      return off + 5;
    }
  } else if (v >= -2147483648) {
    if (v >= -32) {
      buf[off] = v & 0xff;
      return off + 1;
    }
    buf[off] = 0xd2;
    buf.writeInt32BE(v, off + 1);
    return off + 5;
  }
  buf[off] = 0xcb;
  buf.writeDoubleBE(v, off + 1);
  return off + 9;
}

const MAX_COMPACT_ENTRY_BYTES = 1 + 9 * 5 + 1;

function eventOf(base: number, entry: unknown): TimedEvent | null {
  if (!Array.isArray(entry) || typeof entry[0] !== 'number') {
    return null;
  }
  const time = base + entry[0];
  switch (entry[1]) {
    case 0: {
      const event = entry[2] as { type?: unknown } | null;
      if (typeof event !== 'object' || event === null || typeof event.type !== 'string') {
        return null;
      }
      return { time, event: event as ServerEvent };
    }
    case 1:
      return {
        time,
        event: {
          type: 'task-started',
          jobId: entry[2] as number,
          taskId: entry[3] as number,
          instance: entry[4] as number,
          workers: [entry[5] as number],
          variant: 0,
        },
      };
    case 2:
      return {
        time,
        event: { type: 'task-finished', jobId: entry[2] as number, taskId: entry[3] as number },
      };
    case 3: {
      const ranges = entry.slice(4) as number[];
      // The counts bound the replay's loops: no job holds more tasks than a submit may make.
      if (
        ranges.length % 2 !== 0 ||
        ranges.some(
          (v, i) => !Number.isSafeInteger(v) || v < 0 || (i % 2 === 1 && v > MAX_TASKS_PER_JOB),
        )
      ) {
        return null;
      }
      return {
        time,
        event: {
          type: 'tasks-sent',
          jobId: entry[2] as number,
          workerId: entry[3] as number,
          ranges,
        },
      };
    }
    default:
      return null;
  }
}

/**
 * One record holding `records` (at most ENTRIES_PER_RECORD of them). The compact entries are
 * written by hand: they are most of a journal, and packing them generically cost the server
 * more than everything else the journal does.
 */
export function encodeRecord(records: readonly TimedEvent[]): Buffer {
  const base = records[0]?.time ?? 0;
  const parts: Buffer[] = [];
  let capacity = 5 + 9 + records.length * MAX_COMPACT_ENTRY_BYTES;
  for (const r of records) {
    if (r.event.type === 'tasks-sent') {
      capacity += r.event.ranges.length * 9;
    }
  }
  let buf = Buffer.allocUnsafe(capacity);
  let off = 0;
  buf[off++] = 0xdd; // array32: the base time, then one entry per event
  buf.writeUInt32BE(records.length + 1, off);
  off = writeInt(buf, off + 4, base);
  for (const r of records) {
    const e = r.event;
    const dt = r.time - base;
    if (e.type === 'task-started' && e.workers.length === 1 && e.variant === 0) {
      buf[off++] = 0x96;
      off = writeInt(buf, off, dt);
      buf[off++] = 1;
      off = writeInt(buf, off, e.jobId);
      off = writeInt(buf, off, e.taskId);
      off = writeInt(buf, off, e.instance);
      off = writeInt(buf, off, e.workers[0]!);
    } else if (e.type === 'task-finished') {
      buf[off++] = 0x94;
      off = writeInt(buf, off, dt);
      buf[off++] = 2;
      off = writeInt(buf, off, e.jobId);
      off = writeInt(buf, off, e.taskId);
    } else if (e.type === 'tasks-sent') {
      const n = 4 + e.ranges.length;
      if (n < 16) {
        buf[off++] = 0x90 | n;
      } else if (n < 65536) {
        buf[off] = 0xdc;
        buf.writeUInt16BE(n, off + 1);
        off += 3;
      } else {
        buf[off] = 0xdd;
        buf.writeUInt32BE(n, off + 1);
        off += 5;
      }
      off = writeInt(buf, off, dt);
      buf[off++] = 3;
      off = writeInt(buf, off, e.jobId);
      off = writeInt(buf, off, e.workerId);
      for (const v of e.ranges) {
        off = writeInt(buf, off, v);
      }
    } else {
      parts.push(buf.subarray(0, off));
      parts.push(Buffer.from(packr.pack([dt, 0, e])));
      buf = buf.subarray(off);
      off = 0;
    }
  }
  parts.push(buf.subarray(0, off));
  const payload = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  const record = Buffer.allocUnsafe(RECORD_HEADER_BYTES + payload.length);
  record.writeUInt32LE(payload.length, 0);
  payload.copy(record, RECORD_HEADER_BYTES);
  record.writeUInt32LE(zlib.crc32(payload, zlib.crc32(record.subarray(0, 4))), 4);
  return record;
}

type Decoded = { records: TimedEvent[]; size: number } | 'incomplete' | 'invalid';

/** Decodes the record at `offset` of `buf`. */
function decodeAt(buf: Buffer, offset: number): Decoded {
  if (buf.length - offset < RECORD_HEADER_BYTES) {
    return 'incomplete';
  }
  const length = buf.readUInt32LE(offset);
  if (length > MAX_RECORD_BYTES) {
    return 'invalid';
  }
  if (length > buf.length - offset - RECORD_HEADER_BYTES) {
    return 'incomplete';
  }
  const start = offset + RECORD_HEADER_BYTES;
  const payload = buf.subarray(start, start + length);
  const crc = zlib.crc32(payload, zlib.crc32(buf.subarray(offset, offset + 4)));
  if (crc !== buf.readUInt32LE(offset + 4)) {
    return 'invalid';
  }
  let value: unknown;
  try {
    value = unpackr.unpack(payload);
  } catch {
    return 'invalid';
  }
  if (!Array.isArray(value) || typeof value[0] !== 'number') {
    return 'invalid';
  }
  const base = value[0];
  const records: TimedEvent[] = [];
  for (let i = 1; i < value.length; i++) {
    const r = eventOf(base, value[i]);
    if (r === null) {
      return 'invalid';
    }
    records.push(r);
  }
  return { records, size: length + 8 };
}

/** Checks a header; throws the user-facing refusal for foreign or newer files. */
function checkHeader(head: Buffer, file: string, size: number): 'ok' | 'torn' {
  if (head.subarray(0, 4).equals(UPSTREAM_MAGIC)) {
    throw new HqError(
      'HQ_INVALID_ARGUMENT',
      `Journal ${file} was written by upstream HyperQueue and cannot be read by this hq; use a new journal path`,
    );
  }
  if (size < HEADER_BYTES) {
    // A crash while the header was written: a prefix of a valid header is a new journal.
    const expected = journalHeader().subarray(0, size);
    if (head.subarray(0, size).equals(expected) || head.subarray(0, size).every((b) => b === 0)) {
      return 'torn';
    }
    throw new HqError('HQ_INVALID_ARGUMENT', `Invalid journal format: ${file}`);
  }
  if (!head.subarray(0, 8).equals(JOURNAL_MAGIC)) {
    throw new HqError('HQ_INVALID_ARGUMENT', `Invalid journal format: ${file}`);
  }
  if (head.readUInt32LE(12) !== zlib.crc32(head.subarray(0, 12))) {
    throw new HqError('HQ_INVALID_ARGUMENT', `Journal ${file} has a damaged header`);
  }
  const version = head.readUInt32LE(8);
  if (version !== JOURNAL_VERSION) {
    throw new HqError(
      'HQ_INVALID_ARGUMENT',
      `Cannot load newer journal file ${file}: its format version is ${version}, this hq supports ${JOURNAL_VERSION}`,
    );
  }
  return 'ok';
}

export interface ScanResult {
  /** Byte offset just past the last valid record (where appending continues). */
  validEnd: number;
  /** The file is shorter than a header (or empty): it gets a fresh header. */
  needsHeader: boolean;
  /** Bytes after `validEnd` that are a torn or zero-filled tail (0: none). */
  tornBytes: number;
  /** Events read. */
  records: number;
}

/**
 * Whether a valid record starts anywhere in `buf` from `from` on. Only offsets whose payload
 * starts like ours (a msgpack 2-array) are CRC-checked, so scanning garbage stays cheap.
 */
function validRecordAfter(buf: Buffer, from: number): number | null {
  for (let p = from; p + RECORD_HEADER_BYTES < buf.length; p++) {
    const b = buf[p + RECORD_HEADER_BYTES]!;
    if (!((b >= 0x91 && b <= 0x9f) || b === 0xdc || b === 0xdd)) {
      continue;
    }
    if (typeof decodeAt(buf, p) === 'object') {
      return p;
    }
  }
  return null;
}

/**
 * Reads every valid record of an existing journal, calling `onRecord` for each, and decides
 * what follows the last one. Throws HqError for a foreign, newer or mid-file-corrupted file.
 */
export function scanJournal(file: string, onRecord: (record: TimedEvent) => void): ScanResult {
  const fd = fs.openSync(file, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    const head = Buffer.alloc(HEADER_BYTES);
    const headRead = fs.readSync(fd, head, 0, HEADER_BYTES, 0);
    if (size === 0) {
      return { validEnd: 0, needsHeader: true, tornBytes: 0, records: 0 };
    }
    if (checkHeader(head.subarray(0, headRead), file, size) === 'torn') {
      return { validEnd: 0, needsHeader: true, tornBytes: size, records: 0 };
    }
    let records = 0;
    let base = HEADER_BYTES; // file offset of buf[0]
    let buf = Buffer.alloc(0);
    let offset = 0;
    let eof = false;
    for (;;) {
      const got = decodeAt(buf, offset);
      if (typeof got === 'object') {
        for (const r of got.records) {
          onRecord(r);
        }
        records += got.records.length;
        offset += got.size;
        continue;
      }
      if (got === 'incomplete' && !eof) {
        // Refill: keep the undecoded rest, and read at least what the next record claims.
        const claimed =
          buf.length - offset >= 4 ? buf.readUInt32LE(offset) + RECORD_HEADER_BYTES : 0;
        const want = Math.max(READ_CHUNK_BYTES, Math.min(claimed, MAX_RECORD_BYTES + 8));
        const rest = buf.subarray(offset);
        const chunk = Buffer.allocUnsafe(rest.length + want);
        rest.copy(chunk, 0);
        const n = fs.readSync(fd, chunk, rest.length, want, base + buf.length);
        base += offset;
        buf = chunk.subarray(0, rest.length + n);
        offset = 0;
        eof = base + buf.length >= size;
        if (n > 0) {
          continue;
        }
        eof = true;
      }
      break;
    }
    const validEnd = base + offset;
    if (validEnd >= size) {
      return { validEnd, needsHeader: false, tornBytes: 0, records };
    }
    // A torn tail is at most a few turns of writes; a damaged region beyond the scan limit
    // cannot be one, so it is refused like damage followed by valid records.
    const tail = Buffer.allocUnsafe(Math.min(size - validEnd, MAX_TAIL_SCAN_BYTES));
    fs.readSync(fd, tail, 0, tail.length, validEnd);
    const next = validRecordAfter(tail, 1);
    if (next === null && tail.length < size - validEnd) {
      throw new HqError(
        'HQ_INVALID_ARGUMENT',
        `Journal ${file} is corrupted at byte offset ${validEnd} (${size - validEnd} bytes follow, too many for an interrupted write); refusing to start. Move the file away, or cut it at offset ${validEnd} to drop everything after the damage`,
      );
    }
    if (next !== null) {
      throw new HqError(
        'HQ_INVALID_ARGUMENT',
        `Journal ${file} is corrupted at byte offset ${validEnd} (valid records follow at byte offset ${validEnd + next}); refusing to start. Move the file away, or cut it at offset ${validEnd} to drop everything after the damage`,
      );
    }
    return { validEnd, needsHeader: false, tornBytes: size - validEnd, records };
  } finally {
    fs.closeSync(fd);
  }
}

/** Reads a journal for export/report: every valid record; a damaged tail is skipped. */
export function readJournal(file: string): TimedEvent[] {
  const out: TimedEvent[] = [];
  scanJournal(file, (r) => out.push(r));
  return out;
}
