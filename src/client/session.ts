/**
 * A client's connection to the server: find it through the server directory, authenticate
 * with the client key, then typed request/response calls. Every pending call fails when the
 * connection closes, so no caller waits forever on a dead server.
 */
import * as path from 'node:path';
import { HqError, errorMessage } from '../common/errors.js';
import {
  ACCESS_FILE,
  defaultServerDir,
  instanceDir,
  readAccessFile,
  type PartialAccess,
} from '../common/server-dir.js';
import { connect, type Connection } from '../transport/connection.js';
import type { ClientOp, ClientRpc, TaskNotification } from '../transport/messages.js';
import type { TimedEvent } from '../server/events.js';
import { decodeStreamRecord } from '../transport/stream-records.js';

export class ClientSession {
  private nextReqId = 1;
  private readonly pending = new Map<
    number,
    {
      resolve: (data: unknown) => void;
      reject: (e: Error) => void;
      onEvent: ((n: TaskNotification) => void) | null;
      onRecords?: (records: TimedEvent[]) => void;
      /** Resolve (not reject) when the connection closes: a live stream ends that way. */
      endsWithConnection?: boolean;
    }
  >();

  private readonly connection: Connection;
  readonly access: PartialAccess;

  constructor(connection: Connection, access: PartialAccess) {
    this.connection = connection;
    this.access = access;
    connection.listen((raw) => {
      const e = raw as { op?: unknown; reqId?: unknown; notification?: TaskNotification };
      if (e.op === 'event' && typeof e.reqId === 'number' && e.notification !== undefined) {
        this.pending.get(e.reqId)?.onEvent?.(e.notification);
        return;
      }
      const r = raw as { op?: unknown; reqId?: unknown; records?: unknown };
      if (r.op === 'events' && typeof r.reqId === 'number' && Array.isArray(r.records)) {
        const records: TimedEvent[] = [];
        for (const raw of r.records) {
          decodeStreamRecord(raw, records);
        }
        this.pending.get(r.reqId)?.onRecords?.(records);
        return;
      }
      const m = raw as {
        op?: unknown;
        reqId?: unknown;
        ok?: unknown;
        data?: unknown;
        error?: unknown;
      };
      if (m.op !== 'response' || typeof m.reqId !== 'number') {
        return;
      }
      const waiter = this.pending.get(m.reqId);
      if (!waiter) {
        return;
      }
      this.pending.delete(m.reqId);
      if (m.ok === true) {
        waiter.resolve(m.data);
      } else {
        waiter.reject(new HqError('HQ_INVALID_ARGUMENT', String(m.error)));
      }
    });
    connection.onClose(() => {
      for (const waiter of this.pending.values()) {
        if (waiter.endsWithConnection === true) {
          waiter.resolve(null);
        } else {
          waiter.reject(new HqError('HQ_CONNECTION', 'The connection to the server was closed'));
        }
      }
      this.pending.clear();
    });
  }

  call<K extends ClientOp>(
    op: K,
    req: ClientRpc[K]['req'],
    onEvent: ((n: TaskNotification) => void) | null = null,
  ): Promise<ClientRpc[K]['res']> {
    if (this.connection.isClosed) {
      return Promise.reject(
        new HqError('HQ_CONNECTION', 'The connection to the server was closed'),
      );
    }
    const reqId = this.nextReqId++;
    return new Promise((resolve, reject) => {
      this.pending.set(reqId, { resolve: resolve, reject, onEvent });
      this.connection.send({ ...req, op, reqId });
    });
  }

  /**
   * Streams server events: `onRecords` gets every `events` frame; resolves with the response,
   * or when the server closes the connection (how a live stream ends).
   */
  stream(
    req: ClientRpc['journal-stream']['req'],
    onRecords: (records: TimedEvent[]) => void,
  ): Promise<void> {
    if (this.connection.isClosed) {
      return Promise.reject(
        new HqError('HQ_CONNECTION', 'The connection to the server was closed'),
      );
    }
    const reqId = this.nextReqId++;
    return new Promise((resolve, reject) => {
      this.pending.set(reqId, {
        resolve: () => resolve(),
        reject,
        onEvent: null,
        onRecords,
        endsWithConnection: req.mode !== 'past',
      });
      this.connection.send({ ...req, op: 'journal-stream', reqId });
    });
  }

  /** Calls `handler` once the connection has closed (after every pending call has failed). */
  onClose(handler: () => void): void {
    this.connection.onClose(() => handler());
  }

  close(): void {
    this.connection.close('client done');
  }
}

function serverDirHint(serverDir: string): string {
  return serverDir === defaultServerDir() ? '' : ` --server-dir ${serverDir}`;
}

/** Reads the access file of `serverDir` and connects to the server's client port. */
export async function openSession(serverDir: string): Promise<ClientSession> {
  const dir = instanceDir(serverDir);
  let access: PartialAccess;
  try {
    access = readAccessFile(path.join(dir, ACCESS_FILE));
  } catch (e) {
    if (e instanceof HqError && e.code !== 'HQ_SERVER_NOT_FOUND') {
      throw e;
    }
    throw new HqError(
      'HQ_SERVER_NOT_FOUND',
      `No running instance of HQ found at "${dir}". Try to start the server: \`hq server start${serverDirHint(serverDir)}\` or use a different server directory.`,
    );
  }
  if (access.client === null) {
    throw new HqError('HQ_ACCESS_FILE', `The access file in ${dir} has no client section`);
  }
  const { host, port, secret_key: key } = access.client;
  let connection: Connection;
  try {
    connection = await connect(host, port, 'client', Buffer.from(key, 'hex'));
  } catch (e) {
    if (e instanceof HqError && e.code === 'HQ_KEY_MISMATCH') {
      throw new HqError(
        'HQ_KEY_MISMATCH',
        `The server at ${host}:${port} does not accept the client key of ${path.join(dir, ACCESS_FILE)}: that file belongs to another server, or the server was started again with new keys. Use the access file of the running server`,
      );
    }
    throw new HqError(
      'HQ_CONNECTION',
      `Access token found but HQ server ${host}:${port} is unreachable (${errorMessage(e)}). Try to (re)start the server using \`hq server start${serverDirHint(serverDir)}\``,
    );
  }
  return new ClientSession(connection, access);
}
