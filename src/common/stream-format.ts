/**
 * The `.hqs` stream files that workers write for `--stream <dir>` and `hq output-log` reads.
 *
 * Every worker appends to one file per stream directory, `<dir>/<12 alphanumerics>.hqs`, that all
 * its streaming tasks share. Nothing but hq reads these files, so the layout is our own
 * (little endian throughout):
 *
 * - file header: magic `hqsf0001` (8 bytes), u32 length of the header body, then the body:
 *   u32 worker id, u16 byte length of the server uid, the uid in UTF-8;
 * - then chunks, each a fixed 28-byte record header followed by `size` bytes of data:
 *   u8 channel (0 stdout, 1 stderr), 3 zero bytes, u32 job id, u32 task id, u32 instance id,
 *   f64 time (ms since the epoch), u32 size.
 *
 * A chunk with `size == 0` marks the end of that channel of that task instance. Files are only
 * ever appended to, so a reader that meets a record cut short (the worker is still writing or
 * died mid-write) ignores that tail.
 */
import fs from 'node:fs';
import path from 'node:path';
import { HqError, errorMessage } from './errors.js';
import { logger } from './log.js';

const log = logger('hq::stream');

export const STREAM_FILE_MAGIC = 'hqsf0001';
export const STREAM_FILE_SUFFIX = '.hqs';
/** Size of the fixed part of a chunk record. */
export const CHUNK_HEADER_SIZE = 28;
/** Writers split task output into chunks of at most this many bytes, as upstream reads it. */
export const MAX_CHUNK_DATA = 16 * 1024;

const MAGIC_BYTES = Buffer.from(STREAM_FILE_MAGIC, 'latin1');
const U32_MAX = 0xffff_ffff;

export type StreamChannel = 0 | 1;

export interface StreamFileHeader {
  serverUid: string;
  workerId: number;
}

export interface ChunkHeader {
  /** Milliseconds since the epoch. */
  time: number;
  jobId: number;
  taskId: number;
  instance: number;
  channel: StreamChannel;
  /** Bytes of data that follow; 0 = end of the channel. */
  size: number;
}

/** A chunk header with the file offset of its data. */
export interface ChunkEntry extends ChunkHeader {
  dataOffset: number;
}

function checkU32(name: string, value: number): void {
  if (!Number.isInteger(value) || value < 0 || value > U32_MAX) {
    throw new HqError('HQ_INTERNAL', `Stream ${name} out of range: ${value}`);
  }
}

export function encodeFileHeader(header: StreamFileHeader): Buffer {
  checkU32('worker id', header.workerId);
  const uid = Buffer.from(header.serverUid, 'utf8');
  if (uid.length > 0xffff) {
    throw new HqError('HQ_INTERNAL', 'Server uid is too long for a stream file');
  }
  const out = Buffer.alloc(MAGIC_BYTES.length + 4 + 6 + uid.length);
  MAGIC_BYTES.copy(out, 0);
  let at = MAGIC_BYTES.length;
  out.writeUInt32LE(6 + uid.length, at);
  out.writeUInt32LE(header.workerId, at + 4);
  out.writeUInt16LE(uid.length, at + 8);
  at += 10;
  uid.copy(out, at);
  return out;
}

/** Writes the 28-byte record header of a chunk into `out` at `offset`. */
export function writeChunkHeader(out: Buffer, offset: number, chunk: ChunkHeader): void {
  checkU32('job id', chunk.jobId);
  checkU32('task id', chunk.taskId);
  checkU32('instance id', chunk.instance);
  checkU32('chunk size', chunk.size);
  out.writeUInt8(chunk.channel, offset);
  out.writeUInt8(0, offset + 1);
  out.writeUInt16LE(0, offset + 2);
  out.writeUInt32LE(chunk.jobId, offset + 4);
  out.writeUInt32LE(chunk.taskId, offset + 8);
  out.writeUInt32LE(chunk.instance, offset + 12);
  out.writeDoubleLE(chunk.time, offset + 16);
  out.writeUInt32LE(chunk.size, offset + 24);
}

export function encodeChunkHeader(chunk: ChunkHeader): Buffer {
  const out = Buffer.allocUnsafe(CHUNK_HEADER_SIZE);
  writeChunkHeader(out, 0, chunk);
  return out;
}

/** A whole chunk record: header and data (`size` is taken from `data`). */
export function encodeChunk(chunk: Omit<ChunkHeader, 'size'>, data: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(CHUNK_HEADER_SIZE + data.length);
  writeChunkHeader(out, 0, { ...chunk, size: data.length });
  out.set(data, CHUNK_HEADER_SIZE);
  return out;
}

/** The outcome of decoding a file header: `incomplete` when the bytes end before it does. */
export type FileHeaderResult =
  | { kind: 'ok'; header: StreamFileHeader; length: number }
  | { kind: 'incomplete' }
  | { kind: 'invalid'; reason: string };

export function decodeFileHeader(buf: Buffer): FileHeaderResult {
  const fixed = MAGIC_BYTES.length + 4;
  const magicPart = buf.subarray(0, Math.min(buf.length, MAGIC_BYTES.length));
  if (!MAGIC_BYTES.subarray(0, magicPart.length).equals(magicPart)) {
    return { kind: 'invalid', reason: 'Invalid file format' };
  }
  if (buf.length < fixed) {
    return { kind: 'incomplete' };
  }
  const bodyLength = buf.readUInt32LE(MAGIC_BYTES.length);
  if (bodyLength < 6) {
    return { kind: 'invalid', reason: 'Invalid file header' };
  }
  if (buf.length < fixed + bodyLength) {
    return { kind: 'incomplete' };
  }
  const workerId = buf.readUInt32LE(fixed);
  const uidLength = buf.readUInt16LE(fixed + 4);
  if (6 + uidLength > bodyLength) {
    return { kind: 'invalid', reason: 'Invalid file header' };
  }
  const serverUid = buf.toString('utf8', fixed + 6, fixed + 6 + uidLength);
  return { kind: 'ok', header: { serverUid, workerId }, length: fixed + bodyLength };
}

/** Decodes a record header; `null` when the record is not valid. */
export function decodeChunkHeader(buf: Buffer, offset: number): ChunkHeader | null {
  const channel = buf.readUInt8(offset);
  if ((channel !== 0 && channel !== 1) || buf.readUInt8(offset + 1) !== 0) {
    return null;
  }
  if (buf.readUInt16LE(offset + 2) !== 0) {
    return null;
  }
  const time = buf.readDoubleLE(offset + 16);
  if (!Number.isFinite(time)) {
    return null;
  }
  return {
    channel,
    jobId: buf.readUInt32LE(offset + 4),
    taskId: buf.readUInt32LE(offset + 8),
    instance: buf.readUInt32LE(offset + 12),
    time,
    size: buf.readUInt32LE(offset + 24),
  };
}

/** Random access to the bytes of one file (or of a buffer). */
interface ByteSource {
  readonly size: number;
  /** Bytes `[position, position + length)`; the caller keeps within `size`. */
  read(position: number, length: number): Buffer;
}

function bufferSource(buf: Buffer): ByteSource {
  return {
    size: buf.length,
    read: (position, length) => buf.subarray(position, position + length),
  };
}

const WINDOW_SIZE = 1024 * 1024;

/** Reads a file through a 1 MiB window, so a sequential scan of headers costs few syscalls. */
function fileSource(fd: number, size: number): ByteSource {
  let windowStart = 0;
  let windowData = Buffer.alloc(0);
  return {
    size,
    read(position, length) {
      if (position >= windowStart && position + length <= windowStart + windowData.length) {
        return windowData.subarray(position - windowStart, position - windowStart + length);
      }
      const want = Math.min(Math.max(length, WINDOW_SIZE), size - position);
      const data = Buffer.allocUnsafe(want);
      let got = 0;
      while (got < want) {
        const n = fs.readSync(fd, data, got, want - got, position + got);
        if (n === 0) {
          break;
        }
        got += n;
      }
      windowStart = position;
      windowData = data.subarray(0, got);
      return windowData.subarray(0, Math.min(length, got));
    },
  };
}

export interface ScannedStreamFile {
  header: StreamFileHeader;
  chunks: ChunkEntry[];
  /** False when the file ends in the middle of a record (that record is left out). */
  complete: boolean;
}

/**
 * Indexes a stream file: its header and every complete chunk. Throws an HqError when the file
 * is not a stream file or a record is malformed; a cut-off last record is ignored.
 */
function scan(source: ByteSource, name: string): ScannedStreamFile {
  const headerBytes = source.read(0, Math.min(source.size, 64 * 1024));
  const decoded = decodeFileHeader(headerBytes);
  if (decoded.kind === 'invalid') {
    throw new HqError('HQ_INVALID_ARGUMENT', `${name}: ${decoded.reason}`);
  }
  if (decoded.kind === 'incomplete') {
    throw new HqError('HQ_INVALID_ARGUMENT', `${name}: Incomplete file header`);
  }
  const chunks: ChunkEntry[] = [];
  let position = decoded.length;
  let complete = true;
  while (position < source.size) {
    if (position + CHUNK_HEADER_SIZE > source.size) {
      complete = false;
      break;
    }
    const chunk = decodeChunkHeader(source.read(position, CHUNK_HEADER_SIZE), 0);
    if (chunk === null) {
      throw new HqError(
        'HQ_INVALID_ARGUMENT',
        `${name}: corrupted stream file (invalid chunk at offset ${position})`,
      );
    }
    const dataOffset = position + CHUNK_HEADER_SIZE;
    if (dataOffset + chunk.size > source.size) {
      complete = false;
      break;
    }
    chunks.push({ ...chunk, dataOffset });
    position = dataOffset + chunk.size;
  }
  return { header: decoded.header, chunks, complete };
}

/** Decodes a whole stream file held in memory (see `scan` for the error rules). */
export function decodeStreamFile(buf: Buffer, name = 'stream file'): ScannedStreamFile {
  return scan(bufferSource(buf), name);
}

/** Where the data of one chunk is. */
export interface ChunkRef {
  time: number;
  position: number;
  size: number;
}

/** The output of one run (instance) of a task. */
export interface InstanceLog {
  instance: number;
  /** Data chunks per channel (0 stdout, 1 stderr), in write order. */
  channels: [ChunkRef[], ChunkRef[]];
  fileIndex: number;
  /** An end-of-channel record was seen. */
  finished: boolean;
}

export interface TaskLog {
  /** Sorted by instance id; the last one is current, the others are superseded. */
  instances: InstanceLog[];
}

export interface OutputLogSummary {
  files: number;
  jobs: number;
  tasks: number;
  streams: number;
  opened: number;
  stdoutSize: number;
  stderrSize: number;
  superseded: number;
  supersededStdoutSize: number;
  supersededStderrSize: number;
}

export function channelSize(instance: InstanceLog, channel: StreamChannel): number {
  let total = 0;
  for (const chunk of instance.channels[channel]) {
    total += chunk.size;
  }
  return total;
}

export function lastInstance(task: TaskLog): InstanceLog {
  const last = task.instances[task.instances.length - 1];
  if (last === undefined) {
    throw new HqError('HQ_INTERNAL', 'A task without stream instances');
  }
  return last;
}

const OPEN_FILES_LIMIT = 16;

/** An index over all `.hqs` files of a stream directory (of one server instance). */
export class OutputLog {
  readonly files: readonly string[];
  /** job id → task id → task, both in ascending id order. */
  readonly index: ReadonlyMap<number, ReadonlyMap<number, TaskLog>>;
  private readonly fds = new Map<number, number>();

  private constructor(files: string[], index: Map<number, Map<number, TaskLog>>) {
    this.files = files;
    this.index = index;
  }

  /**
   * Loads every `*.hqs` file of `dir`. Files whose header cannot be read are skipped; files of
   * other servers are skipped when `serverUid` is given, and it is an error to find several
   * servers' files without it.
   */
  static open(dir: string, serverUid?: string | null): OutputLog {
    let names: string[];
    try {
      names = fs.readdirSync(dir).filter((n) => n.endsWith(STREAM_FILE_SUFFIX));
    } catch (e) {
      throw new HqError('HQ_NOT_FOUND', `Cannot read stream directory ${dir}: ${errorMessage(e)}`);
    }
    if (names.length === 0) {
      throw new HqError('HQ_NOT_FOUND', 'No log files found');
    }
    names.sort();
    const files: string[] = [];
    const scanned: ScannedStreamFile[] = [];
    const uids = new Set<string>();
    for (const name of names) {
      const file = path.join(dir, name);
      let result: ScannedStreamFile;
      let fd: number;
      try {
        fd = fs.openSync(file, 'r');
      } catch (e) {
        throw new HqError('HQ_NOT_FOUND', `Cannot open ${file}: ${errorMessage(e)}`);
      }
      try {
        const size = fs.fstatSync(fd).size;
        const header = decodeFileHeader(fileSource(fd, size).read(0, Math.min(size, 64 * 1024)));
        if (header.kind !== 'ok') {
          log.debug(
            `Skipping file ${file}, because reading header fails: ${header.kind === 'invalid' ? header.reason : 'incomplete header'}`,
          );
          continue;
        }
        if (serverUid != null && header.header.serverUid !== serverUid) {
          log.debug(`${file} ignored because different server uid`);
          continue;
        }
        result = scan(fileSource(fd, size), file);
      } finally {
        fs.closeSync(fd);
      }
      log.debug(`Discovered ${file}`);
      uids.add(result.header.serverUid);
      files.push(file);
      scanned.push(result);
    }
    if (uids.size > 1) {
      const list = [...uids].sort().join('\n');
      throw new HqError(
        'HQ_INVALID_ARGUMENT',
        `Found streams from multiple server instances:\n${list}\nUse --server-uid=... to specify server uid`,
      );
    }
    return new OutputLog(files, buildIndex(scanned));
  }

  /** Builds an index over already decoded files (`files` names them, for reading data). */
  static fromScanned(files: string[], scanned: ScannedStreamFile[]): OutputLog {
    return new OutputLog(files, buildIndex(scanned));
  }

  summary(): OutputLogSummary {
    const s: OutputLogSummary = {
      files: this.files.length,
      jobs: this.index.size,
      tasks: 0,
      streams: 0,
      opened: 0,
      stdoutSize: 0,
      stderrSize: 0,
      superseded: 0,
      supersededStdoutSize: 0,
      supersededStderrSize: 0,
    };
    for (const tasks of this.index.values()) {
      for (const task of tasks.values()) {
        const last = lastInstance(task);
        s.tasks += 1;
        s.streams += task.instances.length;
        s.opened += last.finished ? 0 : 1;
        s.stdoutSize += channelSize(last, 0);
        s.stderrSize += channelSize(last, 1);
        for (const old of task.instances.slice(0, -1)) {
          s.supersededStdoutSize += channelSize(old, 0);
          s.supersededStderrSize += channelSize(old, 1);
        }
      }
    }
    s.superseded = s.streams - s.tasks;
    return s;
  }

  jobIds(): number[] {
    return [...this.index.keys()];
  }

  /**
   * The current instance of the given tasks of a job (all tasks in id order when `taskIds` is
   * null; otherwise in the order given).
   */
  selectTasks(
    jobId: number,
    taskIds: readonly number[] | null,
  ): { taskId: number; instance: InstanceLog }[] {
    const job = this.index.get(jobId);
    if (job === undefined) {
      throw new HqError('HQ_NOT_FOUND', `Job ${jobId} not found`);
    }
    if (taskIds === null) {
      return [...job].map(([taskId, task]) => ({ taskId, instance: lastInstance(task) }));
    }
    return taskIds.map((taskId) => {
      const task = job.get(taskId);
      if (task === undefined) {
        throw new HqError('HQ_NOT_FOUND', `Task ${taskId} not found`);
      }
      return { taskId, instance: lastInstance(task) };
    });
  }

  /** The data of one chunk of an instance. */
  readChunk(instance: InstanceLog, chunk: ChunkRef): Buffer {
    const fd = this.fd(instance.fileIndex);
    const out = Buffer.allocUnsafe(chunk.size);
    let got = 0;
    while (got < chunk.size) {
      const n = fs.readSync(fd, out, got, chunk.size - got, chunk.position + got);
      if (n === 0) {
        throw new HqError(
          'HQ_INTERNAL',
          `Unexpected end of ${this.files[instance.fileIndex] ?? 'stream file'}`,
        );
      }
      got += n;
    }
    return out;
  }

  /** All data of one channel of an instance. */
  readChannel(instance: InstanceLog, channel: StreamChannel): Buffer {
    return Buffer.concat(instance.channels[channel].map((c) => this.readChunk(instance, c)));
  }

  close(): void {
    for (const fd of this.fds.values()) {
      try {
        fs.closeSync(fd);
      } catch {
        // already closed
      }
    }
    this.fds.clear();
  }

  private fd(fileIndex: number): number {
    const cached = this.fds.get(fileIndex);
    if (cached !== undefined) {
      // Move to the end: the map doubles as an LRU list.
      this.fds.delete(fileIndex);
      this.fds.set(fileIndex, cached);
      return cached;
    }
    const file = this.files[fileIndex];
    if (file === undefined) {
      throw new HqError('HQ_INTERNAL', `Unknown stream file index ${fileIndex}`);
    }
    let fd: number;
    try {
      fd = fs.openSync(file, 'r');
    } catch (e) {
      throw new HqError('HQ_NOT_FOUND', `Cannot open ${file}: ${errorMessage(e)}`);
    }
    if (this.fds.size >= OPEN_FILES_LIMIT) {
      const [oldest, oldFd] = this.fds.entries().next().value ?? [];
      if (oldest !== undefined && oldFd !== undefined) {
        this.fds.delete(oldest);
        fs.closeSync(oldFd);
      }
    }
    this.fds.set(fileIndex, fd);
    return fd;
  }
}

function buildIndex(scanned: readonly ScannedStreamFile[]): Map<number, Map<number, TaskLog>> {
  const index = new Map<number, Map<number, TaskLog>>();
  scanned.forEach((file, fileIndex) => {
    for (const chunk of file.chunks) {
      let job = index.get(chunk.jobId);
      if (job === undefined) {
        job = new Map();
        index.set(chunk.jobId, job);
      }
      let task = job.get(chunk.taskId);
      if (task === undefined) {
        task = { instances: [] };
        job.set(chunk.taskId, task);
      }
      let instance = task.instances[task.instances.length - 1];
      if (
        instance === undefined ||
        instance.instance !== chunk.instance ||
        instance.fileIndex !== fileIndex
      ) {
        instance = task.instances.find(
          (i) => i.instance === chunk.instance && i.fileIndex === fileIndex,
        );
        if (instance === undefined) {
          instance = { instance: chunk.instance, channels: [[], []], fileIndex, finished: false };
          task.instances.push(instance);
        }
      }
      if (chunk.size > 0) {
        instance.channels[chunk.channel].push({
          time: chunk.time,
          position: chunk.dataOffset,
          size: chunk.size,
        });
      } else {
        instance.finished = true;
      }
    }
  });
  // Ascending ids everywhere; instances of a task by instance id (stable for equal ids).
  const sorted = new Map<number, Map<number, TaskLog>>();
  for (const jobId of [...index.keys()].sort((a, b) => a - b)) {
    const job = index.get(jobId)!;
    const tasks = new Map<number, TaskLog>();
    for (const taskId of [...job.keys()].sort((a, b) => a - b)) {
      const task = job.get(taskId)!;
      task.instances.sort((a, b) => a.instance - b.instance);
      tasks.set(taskId, task);
    }
    sorted.set(jobId, tasks);
  }
  return sorted;
}
