/**
 * TLS 1.3 with a pre-shared key (no certificates) and a framed message channel on top of it.
 *
 * The PSK identity names the role ("hq-client" or "hq-worker"); each listening port accepts only
 * its own role and checks the key of that role, so a wrong key or a worker key used on the
 * client port fails the TLS handshake before a single application byte is read.
 */
import type * as net from 'node:net';
import * as tls from 'node:tls';
import { HqError, errorMessage } from '../common/errors.js';
import { FrameDecoder, encodeFrame } from './framing.js';

export type Role = 'client' | 'worker';

function identityOf(role: Role): string {
  return role === 'client' ? 'hq-client' : 'hq-worker';
}

/** A framed, encrypted connection. The creator owns it and must call close(). */
export class Connection {
  private readonly decoder = new FrameDecoder();
  private closed = false;
  private readonly closeHandlers: ((reason: string) => void)[] = [];
  private onMessage: ((message: unknown) => void) | null = null;
  private pending: unknown[] = [];

  readonly socket: tls.TLSSocket;

  constructor(socket: tls.TLSSocket) {
    this.socket = socket;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      let messages: unknown[];
      try {
        messages = this.decoder.push(chunk);
      } catch (e) {
        this.close(errorMessage(e));
        return;
      }
      for (const m of messages) {
        if (this.closed) {
          return;
        }
        if (this.onMessage) {
          this.onMessage(m);
        } else {
          this.pending.push(m);
        }
      }
    });
    socket.on('error', (e) => this.close(errorMessage(e)));
    socket.on('close', () => this.close('connection closed'));
    socket.on('end', () => this.close('connection closed by peer'));
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Sets the message handler; frames that arrived before are delivered first. */
  listen(handler: (message: unknown) => void): void {
    this.onMessage = handler;
    const queued = this.pending;
    this.pending = [];
    for (const m of queued) {
      if (this.closed) {
        return;
      }
      handler(m);
    }
  }

  onClose(handler: (reason: string) => void): void {
    if (this.closed) {
      handler('connection closed');
    } else {
      this.closeHandlers.push(handler);
    }
  }

  send(message: unknown): void {
    if (this.closed) {
      return;
    }
    this.socket.write(encodeFrame(message));
  }

  /** Resolves once everything written so far has been handed to the OS. */
  flush(): Promise<void> {
    return new Promise((resolve) => {
      if (this.closed || this.socket.writableLength === 0) {
        resolve();
      } else {
        this.socket.write(Buffer.alloc(0), () => resolve());
      }
    });
  }

  close(reason = 'closed'): void {
    if (this.closed) {
      return;
    }
    this.closed = true;
    this.socket.destroy();
    for (const handler of this.closeHandlers.splice(0)) {
      handler(reason);
    }
  }
}

export interface ListenOptions {
  host: string;
  port: number;
  role: Role;
  key: Buffer;
  onConnection: (connection: Connection) => void;
  onRefused: (reason: string, remote: string) => void;
}

/**
 * Both sides authenticate with the pre-shared key alone. Without an explicit (empty) CA list,
 * every TLS context loads Node's whole root certificate store: about 25 ms of each `hq`
 * command's start, for certificates that are never used.
 */
const NO_CERTIFICATES: string[] = [];

export function listen(options: ListenOptions): Promise<tls.Server> {
  const expected = identityOf(options.role);
  const server = tls.createServer({
    minVersion: 'TLSv1.3',
    ca: NO_CERTIFICATES,
    pskCallback: (_socket, identity) => (identity === expected ? options.key : null),
    // A peer that connects and never finishes the handshake must not hold a socket forever.
    handshakeTimeout: 10_000,
  });
  server.on('secureConnection', (socket) => options.onConnection(new Connection(socket)));
  server.on('tlsClientError', (error: NodeJS.ErrnoException, socket) => {
    // A peer that hangs up right after connecting (e.g. a liveness probe) is not a refusal.
    if (error.code !== 'ECONNRESET' && !/socket hang up/.test(error.message)) {
      const reason = error.code ?? errorMessage(error).split('\n')[0] ?? 'handshake failed';
      options.onRefused(reason, `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`);
    }
    socket.destroy();
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}

export function connect(
  host: string,
  port: number,
  role: Role,
  key: Buffer,
  timeoutMs = 15_000,
): Promise<Connection> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host,
      port,
      minVersion: 'TLSv1.3',
      ca: NO_CERTIFICATES,
      checkServerIdentity: () => undefined,
      pskCallback: () => ({ psk: key, identity: identityOf(role) }),
    });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new HqError('HQ_CONNECTION', `connecting to ${host}:${port} timed out`));
    }, timeoutMs);
    socket.once('secureConnect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(new Connection(socket));
    });
    socket.once('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      socket.destroy();
      // With a pre-shared key, a handshake the server aborts means it does not know our key.
      if ((e.code ?? '').startsWith('ERR_SSL') || /SSL alert|alert number/.test(e.message)) {
        reject(
          new HqError('HQ_KEY_MISMATCH', `the server at ${host}:${port} did not accept the key`),
        );
        return;
      }
      reject(new HqError('HQ_CONNECTION', `cannot connect to ${host}:${port}: ${errorMessage(e)}`));
    });
  });
}

/** The address a plain TCP server listens on, for messages. */
export function addressOf(server: net.Server): { host: string; port: number } {
  const addr = server.address();
  if (addr === null || typeof addr === 'string') {
    throw new HqError('HQ_INTERNAL', 'server has no TCP address');
  }
  return { host: addr.address, port: addr.port };
}
