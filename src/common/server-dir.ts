/**
 * The server directory and the access file.
 *
 * Layout: `<server-dir>/NNN/access.json` for every server started there, and the symlink
 * `<server-dir>/hq-current` pointing at the running one. Clients and workers read
 * `<server-dir>/hq-current/access.json`, or `<server-dir>/access.json` when there is no symlink.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { HqError, errorMessage } from './errors.js';
import { VERSION } from './version.js';

export const CURRENT_LINK = 'hq-current';
export const ACCESS_FILE = 'access.json';

export interface Endpoint {
  host: string;
  port: number;
  secret_key: string;
}

/** The access file, in upstream's shape and field order. */
export interface AccessRecord {
  version: string;
  server_uid: string;
  client: Endpoint;
  worker: Endpoint;
}

export function defaultServerDir(): string {
  const home = os.homedir();
  return home ? path.join(home, '.hq-server') : path.join(os.tmpdir(), '.hq-server');
}

export function resolveServerDir(option: string | undefined): string {
  const raw = option ?? process.env['HQ_SERVER_DIR'] ?? defaultServerDir();
  return path.resolve(raw);
}

/** The directory holding the access file of the current server (see the layout above). */
export function instanceDir(serverDir: string): string {
  const link = path.join(serverDir, CURRENT_LINK);
  try {
    if (fs.statSync(link).isDirectory()) {
      return fs.realpathSync(link);
    }
  } catch {
    // no current server: fall back to the directory itself
  }
  return serverDir;
}

export function generateServerUid(): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  const bytes = randomBytes(6);
  let uid = '';
  for (const b of bytes) {
    uid += alphabet[b % alphabet.length];
  }
  return uid;
}

export function generateSecretKey(): string {
  return randomBytes(32).toString('hex');
}

function expectObject(value: unknown, what: string, file: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new HqError('HQ_ACCESS_FILE', `Invalid access file ${file}: ${what} is not an object`);
  }
  return value as Record<string, unknown>;
}

function parseEndpoint(value: unknown, what: string, file: string): Endpoint {
  const o = expectObject(value, what, file);
  const { host, port, secret_key: key } = o;
  if (typeof host !== 'string' || host.length === 0) {
    throw new HqError('HQ_ACCESS_FILE', `Invalid access file ${file}: ${what}.host is missing`);
  }
  if (typeof port !== 'number' || !Number.isInteger(port) || port <= 0 || port > 65535) {
    throw new HqError('HQ_ACCESS_FILE', `Invalid access file ${file}: ${what}.port is invalid`);
  }
  if (typeof key !== 'string' || !/^[0-9a-fA-F]{64}$/.test(key)) {
    throw new HqError(
      'HQ_ACCESS_FILE',
      `Invalid access file ${file}: ${what}.secret_key must be 64 hex characters`,
    );
  }
  return { host, port, secret_key: key };
}

export interface PartialAccess {
  version: string;
  server_uid: string | null;
  client: Endpoint | null;
  worker: Endpoint | null;
}

/**
 * Reads and validates an access file. The version is checked first, so a file written by
 * another version says so instead of failing on a changed field.
 */
export function readAccessFile(file: string): PartialAccess {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new HqError('HQ_SERVER_NOT_FOUND', `Cannot read access file ${file}: ${errorMessage(e)}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new HqError('HQ_ACCESS_FILE', `Invalid access file ${file}: not valid JSON`);
  }
  const o = expectObject(raw, 'the root', file);
  if (typeof o['version'] !== 'string') {
    throw new HqError('HQ_ACCESS_FILE', `Invalid access file ${file}: version is missing`);
  }
  if (o['version'] !== VERSION) {
    throw new HqError(
      'HQ_VERSION_MISMATCH',
      `Hyperqueue version mismatch detected. Access record contains version ${o['version']}, but the current version is ${VERSION}.`,
    );
  }
  const uid = o['server_uid'];
  return {
    version: o['version'],
    server_uid: typeof uid === 'string' ? uid : null,
    client: o['client'] === undefined ? null : parseEndpoint(o['client'], 'client', file),
    worker: o['worker'] === undefined ? null : parseEndpoint(o['worker'], 'worker', file),
  };
}

export function readFullAccessFile(file: string): AccessRecord {
  const a = readAccessFile(file);
  if (a.client === null || a.worker === null || a.server_uid === null) {
    throw new HqError(
      'HQ_ACCESS_FILE',
      `Invalid access file ${file}: a server needs server_uid, client and worker sections`,
    );
  }
  return { version: a.version, server_uid: a.server_uid, client: a.client, worker: a.worker };
}

/** Writes a new file readable only by its owner; never overwrites an existing one. */
export function writePrivateJson(file: string, value: unknown): void {
  const fd = fs.openSync(file, 'wx', 0o600);
  try {
    fs.writeSync(fd, JSON.stringify(value, null, 2));
  } finally {
    fs.closeSync(fd);
  }
}

/** Creates `<server-dir>/NNN` with NNN one above the largest numbered entry. */
export function createInstanceDir(serverDir: string): string {
  fs.mkdirSync(serverDir, { recursive: true });
  let max = 0;
  for (const name of fs.readdirSync(serverDir)) {
    if (/^\d+$/.test(name)) {
      max = Math.max(max, Number(name));
    }
  }
  for (let n = max + 1; n < max + 1000; n++) {
    const dir = path.join(serverDir, String(n).padStart(3, '0'));
    try {
      fs.mkdirSync(dir);
      return dir;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw e;
      }
    }
  }
  throw new HqError('HQ_INTERNAL', `Cannot create a run directory in ${serverDir}`);
}

/** Points `hq-current` at `dir`, replacing an older link atomically. */
export function linkCurrent(serverDir: string, dir: string): void {
  const link = path.join(serverDir, CURRENT_LINK);
  const tmp = `${link}.${process.pid}.tmp`;
  fs.rmSync(tmp, { force: true });
  fs.symlinkSync(dir, tmp);
  fs.renameSync(tmp, link);
}

/** Removes `hq-current` if it still points at `dir` (another server may have replaced it). */
export function unlinkCurrent(serverDir: string, dir: string): void {
  const link = path.join(serverDir, CURRENT_LINK);
  try {
    if (fs.readlinkSync(link) === dir) {
      fs.unlinkSync(link);
    }
  } catch {
    // already gone
  }
}
