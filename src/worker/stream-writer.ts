/**
 * Worker side of `--stream <dir>`: one append-only `.hqs` file per stream directory, shared by
 * all tasks of this worker that stream there (see src/common/stream-format.ts for the layout).
 *
 * Chunks are buffered and written with a single fd per file, one write in flight at a time, so
 * records never interleave. Like upstream's buffered writer, small amounts of data stay in
 * memory until 8 KiB have gathered or someone calls `flush()` (the worker does so before it
 * reports a task as finished or failed).
 */
import { randomInt } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { HqError, fsErrorText, makeDirectory } from '../common/errors.js';
import { logger } from '../common/log.js';
import {
  CHUNK_HEADER_SIZE,
  MAX_CHUNK_DATA,
  STREAM_FILE_SUFFIX,
  encodeFileHeader,
  writeChunkHeader,
  type StreamChannel,
} from '../common/stream-format.js';

const log = logger('hq::worker::stream');

export interface StreamTaskRef {
  jobId: number;
  taskId: number;
  instance: number;
}

/** Pending bytes that trigger a write without an explicit flush. */
const WRITE_THRESHOLD = 8 * 1024;
/** At most this much goes into one write call. */
const MAX_WRITE = 4 * 1024 * 1024;
const NAME_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

function randomName(): string {
  let name = '';
  for (let i = 0; i < 12; i++) {
    name += NAME_CHARS[randomInt(NAME_CHARS.length)];
  }
  return name;
}

function writeAllSync(fd: number, data: Buffer): void {
  let offset = 0;
  while (offset < data.length) {
    offset += fs.writeSync(fd, data, offset);
  }
}

function writeAsync(fd: number, data: Buffer, offset: number): Promise<number> {
  return new Promise((resolve, reject) => {
    fs.write(fd, data, offset, data.length - offset, null, (error, written) => {
      if (error) {
        reject(error);
      } else {
        resolve(written);
      }
    });
  });
}

interface FlushWaiter {
  target: number;
  resolve: () => void;
  reject: (error: HqError) => void;
}

/** One open `.hqs` file in one stream directory. */
export class StreamWriter {
  readonly dir: string;
  readonly file: string;
  private fd: number | null;
  private queue: Buffer[] = [];
  private queuedBytes = 0;
  /** Bytes handed to `append` / bytes known to be on disk, since the file was opened. */
  private enqueued = 0;
  private written = 0;
  private draining = false;
  private waiters: FlushWaiter[] = [];
  private failure: HqError | null = null;

  private constructor(dir: string, file: string, fd: number) {
    this.dir = dir;
    this.file = file;
    this.fd = fd;
  }

  /** Creates the directory if needed and a new file in it, and writes the file header. */
  static open(dir: string, serverUid: string, workerId: number): StreamWriter {
    makeDirectory(dir, 'stream directory');
    for (let attempt = 0; ; attempt++) {
      const file = path.join(dir, `${randomName()}${STREAM_FILE_SUFFIX}`);
      let fd: number;
      try {
        // Exclusive and append-only: never clobber another worker's file.
        fd = fs.openSync(file, 'ax', 0o644);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EEXIST' && attempt < 10) {
          continue;
        }
        throw new HqError(
          'HQ_INVALID_ARGUMENT',
          `Cannot create stream file ${file}: ${fsErrorText(e)}`,
          {
            cause: e,
          },
        );
      }
      try {
        writeAllSync(fd, encodeFileHeader({ serverUid, workerId }));
      } catch (e) {
        fs.closeSync(fd);
        throw new HqError(
          'HQ_INVALID_ARGUMENT',
          `Cannot write stream file ${file}: ${fsErrorText(e)}`,
          {
            cause: e,
          },
        );
      }
      log.debug(`Opened stream file ${file}`);
      return new StreamWriter(dir, file, fd);
    }
  }

  /** The error that broke this file, if any (every later call fails with it). */
  get error(): HqError | null {
    return this.failure;
  }

  /** Queues one chunk record; `data` is kept by reference until it is written. */
  append(ref: StreamTaskRef, channel: StreamChannel, data: Buffer, time: number): void {
    if (this.failure !== null) {
      throw this.failure;
    }
    if (this.fd === null) {
      throw new HqError('HQ_INTERNAL', `Stream file ${this.file} is closed`);
    }
    const header = Buffer.allocUnsafe(CHUNK_HEADER_SIZE);
    writeChunkHeader(header, 0, { ...ref, channel, time, size: data.length });
    this.push(header);
    if (data.length > 0) {
      this.push(data);
    }
    if (this.queuedBytes >= WRITE_THRESHOLD) {
      this.drain();
    }
  }

  /** Resolves once everything appended so far is written to the file. */
  flush(): Promise<void> {
    if (this.failure !== null) {
      return Promise.reject(this.failure);
    }
    if (this.written >= this.enqueued) {
      return Promise.resolve();
    }
    const target = this.enqueued;
    const done = new Promise<void>((resolve, reject) => {
      this.waiters.push({ target, resolve, reject });
    });
    this.drain();
    return done;
  }

  /** Closes the file without writing anything more (a failed writer's, or after the flush of `close`). */
  abandon(): void {
    if (this.fd !== null) {
      const fd = this.fd;
      this.fd = null;
      try {
        fs.closeSync(fd);
      } catch {
        // nothing left to do with a file that does not close
      }
    }
  }

  /** Flushes and closes the file. */
  async close(): Promise<void> {
    try {
      await this.flush();
    } finally {
      this.abandon();
    }
  }

  private push(buf: Buffer): void {
    this.queue.push(buf);
    this.queuedBytes += buf.length;
    this.enqueued += buf.length;
  }

  private drain(): void {
    if (this.draining || this.failure !== null) {
      return;
    }
    this.draining = true;
    void this.drainLoop();
  }

  private async drainLoop(): Promise<void> {
    try {
      while (
        this.queue.length > 0 &&
        (this.queuedBytes >= WRITE_THRESHOLD || this.waiters.length > 0)
      ) {
        const fd = this.fd;
        if (fd === null) {
          throw new Error('the file is closed');
        }
        const batch = this.takeBatch();
        let offset = 0;
        while (offset < batch.length) {
          offset += await writeAsync(fd, batch, offset);
        }
        this.written += batch.length;
        this.resolveWaiters();
      }
    } catch (e) {
      this.fail(e);
    } finally {
      this.draining = false;
    }
  }

  private takeBatch(): Buffer {
    let size = 0;
    let count = 0;
    for (const buf of this.queue) {
      if (count > 0 && size + buf.length > MAX_WRITE) {
        break;
      }
      size += buf.length;
      count++;
    }
    const parts = this.queue.splice(0, count);
    this.queuedBytes -= size;
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts, size);
  }

  private resolveWaiters(): void {
    const waiting: FlushWaiter[] = [];
    for (const w of this.waiters) {
      if (w.target <= this.written) {
        w.resolve();
      } else {
        waiting.push(w);
      }
    }
    this.waiters = waiting;
  }

  private fail(error: unknown): void {
    this.failure = new HqError(
      'HQ_INTERNAL',
      `Cannot write stream file ${this.file}: ${fsErrorText(error)}`,
      { cause: error },
    );
    log.error(this.failure.message);
    this.queue = [];
    this.queuedBytes = 0;
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) {
      w.reject(this.failure);
    }
  }
}

/** The stream files of one worker, one per stream directory, opened on first use. */
export class StreamRegistry {
  private readonly serverUid: string;
  private readonly workerId: number;
  private readonly writers = new Map<string, StreamWriter>();
  private closed = false;

  constructor(serverUid: string, workerId: number) {
    this.serverUid = serverUid;
    this.workerId = workerId;
  }

  /**
   * Appends data of one channel (0 stdout, 1 stderr) of a task to `target`: a writer from
   * `writerFor`, or a directory (its current file, created on first use).
   */
  write(target: string | StreamWriter, ref: StreamTaskRef, channel: 0 | 1, data: Buffer): void {
    if (data.length === 0) {
      return; // an empty chunk would read as the end of the channel
    }
    const writer = typeof target === 'string' ? this.writerFor(target) : target;
    const time = Date.now();
    for (let offset = 0; offset < data.length; offset += MAX_CHUNK_DATA) {
      writer.append(ref, channel, data.subarray(offset, offset + MAX_CHUNK_DATA), time);
    }
  }

  /** Marks the end of a channel of a task instance. */
  end(target: string | StreamWriter, ref: StreamTaskRef, channel: 0 | 1): void {
    const writer = typeof target === 'string' ? this.writerFor(target) : target;
    writer.append(ref, channel, Buffer.alloc(0), Date.now());
  }

  /**
   * The directory's current file. One that failed (a full disk, say) is closed and replaced by
   * a new file, so once space is freed later tasks stream again; a task keeps the writer it got
   * first, so one that lost output to the failed file still fails.
   */
  writerFor(dir: string): StreamWriter {
    if (this.closed) {
      throw new HqError('HQ_INTERNAL', 'The stream registry is closed');
    }
    const key = path.resolve(dir);
    const current = this.writers.get(key);
    if (current !== undefined && current.error === null) {
      return current;
    }
    // Closing first gives the failed file's space back before the new one is written.
    current?.abandon();
    const writer = StreamWriter.open(key, this.serverUid, this.workerId);
    this.writers.set(key, writer);
    return writer;
  }

  /**
   * Resolves once everything written so far is on disk (fs write completed); rejects with the
   * HqError of a file that failed. With `dir`, only that directory's file is considered.
   */
  async flush(dir?: string): Promise<void> {
    const writers =
      dir === undefined
        ? [...this.writers.values()]
        : [this.writers.get(path.resolve(dir))].filter((w) => w !== undefined);
    const results = await Promise.allSettled(writers.map((w) => w.flush()));
    for (const r of results) {
      if (r.status === 'rejected') {
        throw r.reason;
      }
    }
  }

  /** Flushes and closes every file; later writes fail. */
  async close(): Promise<void> {
    this.closed = true;
    const writers = [...this.writers.values()];
    this.writers.clear();
    const results = await Promise.allSettled(writers.map((w) => w.close()));
    for (const r of results) {
      if (r.status === 'rejected') {
        throw r.reason;
      }
    }
  }
}
