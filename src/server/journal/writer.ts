/**
 * Appends records to the journal and makes them durable.
 *
 * Invariants:
 * - Records reach the OS in order, once per event-loop turn (one write of one buffer), so a
 *   killed server loses at most the current turn and `journal export` sees everything else.
 * - `sync()` resolves only once every record appended before the call is fdatasynced. At most
 *   one fdatasync is in flight; callers that arrive meanwhile share the next one (group
 *   commit), and the event loop never blocks on the disk except at `close()`.
 * - The writer is the only owner of the file descriptor; `close()` is idempotent.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { errorMessage } from '../../common/errors.js';
import { logger } from '../../common/log.js';
import type { ServerEvent, TimedEvent } from '../events.js';
import { ENTRIES_PER_RECORD, encodeRecord, journalHeader } from './format.js';

const log = logger('hq::server::journal');

interface SyncWaiter {
  target: number;
  resolve: () => void;
  reject: (e: Error) => void;
}

function writeAll(fd: number, data: Buffer): void {
  let done = 0;
  while (done < data.length) {
    done += fs.writeSync(fd, data, done, data.length - done);
  }
}

/** Records of at most ENTRIES_PER_RECORD events each, as one buffer. */
function encodeAll(records: readonly TimedEvent[]): Buffer {
  if (records.length <= ENTRIES_PER_RECORD) {
    return encodeRecord(records);
  }
  const parts: Buffer[] = [];
  for (let i = 0; i < records.length; i += ENTRIES_PER_RECORD) {
    parts.push(encodeRecord(records.slice(i, i + ENTRIES_PER_RECORD)));
  }
  return Buffer.concat(parts);
}

function fsyncDirectory(dir: string): void {
  let fd: number | null = null;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch {
    // Not every file system lets a directory be synced; the rename itself has happened.
  } finally {
    if (fd !== null) {
      fs.closeSync(fd);
    }
  }
}

export class JournalWriter {
  private fd: number;
  private pending: TimedEvent[] = [];
  private flushQueued = false;
  /** Bytes handed to the OS (file size) and bytes known to be on disk. */
  private written: number;
  private durable: number;
  private syncing = false;
  private waiters: SyncWaiter[] = [];
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  private failing = false;
  /** Bumped by `rewrite`: a sync started on the old file says nothing about the new one. */
  private generation = 0;

  readonly file: string;

  /**
   * Opens `file` for appending at `validEnd` (what a scan found valid; anything after it is
   * cut off), writing a header first when `needsHeader`.
   */
  constructor(
    file: string,
    opts: { validEnd: number; needsHeader: boolean; flushPeriodMs: number },
  ) {
    this.file = file;
    const exists = fs.existsSync(file);
    // Private like the access file: submits carry commands and environments.
    this.fd = fs.openSync(file, exists ? 'r+' : 'w', 0o600);
    if (opts.needsHeader) {
      fs.ftruncateSync(this.fd, 0);
      writeAll(this.fd, journalHeader());
      fs.fdatasyncSync(this.fd);
      this.written = this.durable = fs.fstatSync(this.fd).size;
    } else {
      if (fs.fstatSync(this.fd).size !== opts.validEnd) {
        fs.ftruncateSync(this.fd, opts.validEnd);
        fs.fdatasyncSync(this.fd);
      }
      this.written = this.durable = opts.validEnd;
    }
    fs.closeSync(this.fd);
    this.fd = fs.openSync(file, 'a');
    if (opts.flushPeriodMs > 0) {
      this.timer = setInterval(() => {
        if (this.written > this.durable || this.pending.length > 0) {
          this.sync().catch((e: unknown) => log.error(`journal sync failed: ${errorMessage(e)}`));
        }
      }, opts.flushPeriodMs);
      this.timer.unref();
    }
  }

  append(time: number, event: ServerEvent): void {
    if (this.closed) {
      return;
    }
    this.pending.push({ time, event });
    if (!this.flushQueued) {
      this.flushQueued = true;
      setImmediate(() => this.writePending());
    }
  }

  /**
   * Hands every appended record to the OS now. A failed write (a full disk) keeps the records
   * for the next attempt: the server goes on, and says so once until a write succeeds again.
   */
  writePending(): void {
    this.flushQueued = false;
    if (this.pending.length === 0 || this.closed) {
      return;
    }
    const data = encodeAll(this.pending);
    try {
      writeAll(this.fd, data);
    } catch (e) {
      // A partial write is cut back, so the retry appends whole records.
      try {
        fs.ftruncateSync(this.fd, this.written);
      } catch {
        // nothing more to do; the scan at the next start cuts a torn tail
      }
      if (!this.failing) {
        this.failing = true;
        log.error(`cannot write the journal ${this.file}: ${errorMessage(e)}; will retry`);
      }
      return;
    }
    if (this.failing) {
      this.failing = false;
      log.info(`journal ${this.file} is written again`);
    }
    this.pending = [];
    this.written += data.length;
  }

  /** Resolves once everything appended so far is on disk. */
  sync(): Promise<void> {
    if (this.closed) {
      return Promise.resolve();
    }
    this.writePending();
    if (this.durable >= this.written) {
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      this.waiters.push({ target: this.written, resolve, reject });
      this.kick();
    });
  }

  private kick(): void {
    if (this.syncing || this.waiters.length === 0 || this.closed) {
      return;
    }
    this.syncing = true;
    const target = this.written;
    const generation = this.generation;
    fs.fdatasync(this.fd, (err) => {
      this.syncing = false;
      if (generation !== this.generation) {
        // The file was rewritten (and synced) meanwhile: every earlier record is durable.
        err = null;
      }
      const waiters = this.waiters;
      this.waiters = [];
      for (const w of waiters) {
        if (err) {
          w.reject(err);
        } else if (w.target <= target || generation !== this.generation) {
          w.resolve();
        } else {
          this.waiters.push(w);
        }
      }
      if (!err && generation === this.generation) {
        this.durable = Math.max(this.durable, target);
      }
      this.kick();
    });
  }

  /**
   * Replaces the journal with `records` (compaction): written to `<file>.tmp`, synced,
   * renamed over the journal, the directory synced, and the journal reopened for appending.
   */
  rewrite(records: TimedEvent[]): void {
    this.writePending();
    const tmp = `${this.file}.tmp`;
    const fd = fs.openSync(tmp, 'w', fs.statSync(this.file).mode & 0o777);
    try {
      writeAll(fd, journalHeader());
      const step = ENTRIES_PER_RECORD * 64;
      for (let i = 0; i < records.length; i += step) {
        writeAll(fd, encodeAll(records.slice(i, i + step)));
      }
      fs.fdatasyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, this.file);
    fsyncDirectory(path.dirname(this.file));
    fs.closeSync(this.fd);
    this.fd = fs.openSync(this.file, 'a');
    this.generation++;
    this.written = this.durable = fs.fstatSync(this.fd).size;
  }

  /** Writes and syncs what is left, then closes the file (graceful stop). */
  close(): void {
    if (this.closed) {
      return;
    }
    this.writePending();
    this.closed = true;
    if (this.timer !== null) {
      clearInterval(this.timer);
    }
    try {
      fs.fdatasyncSync(this.fd);
    } catch (e) {
      log.error(`journal sync failed: ${errorMessage(e)}`);
    }
    fs.closeSync(this.fd);
    for (const w of this.waiters) {
      w.resolve();
    }
    this.waiters = [];
  }
}
