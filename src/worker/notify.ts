/**
 * The local channel from a running task to its worker, for `hq task notify`. The worker listens
 * on a unix socket; each task gets `HQ_ACCESS_KEY=<socket path>:<token>` with a token that is
 * valid only while that task runs. One connection carries one JSON line and gets one answer.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { HqError, errorMessage } from '../common/errors.js';

export const MAX_NOTIFY_MESSAGE_BYTES = 1024;
const MAX_LINE_BYTES = 8192;
const UNIX_PATH_MAX = 100;

const TOKEN_BYTES = 16;

export class NotifyServer {
  private random = Buffer.alloc(0);
  private randomOffset = 0;
  private readonly server: net.Server;
  private readonly tokens = new Map<string, { jobId: number; taskId: number }>();
  readonly socketPath: string;

  constructor(
    workDir: string,
    onNotify: (task: { jobId: number; taskId: number }, message: string) => void,
  ) {
    const preferred = path.join(workDir, 'hq-notify.sock');
    this.socketPath =
      preferred.length < UNIX_PATH_MAX
        ? preferred
        : path.join(os.tmpdir(), `hq-notify-${randomBytes(6).toString('hex')}.sock`);
    fs.rmSync(this.socketPath, { force: true });
    this.server = net.createServer((socket) => {
      let data = '';
      socket.setEncoding('utf8');
      socket.on('error', () => undefined);
      socket.on('data', (chunk: string) => {
        data += chunk;
        if (data.length > MAX_LINE_BYTES) {
          socket.end('error: message too long\n');
          return;
        }
        const nl = data.indexOf('\n');
        if (nl === -1) {
          return;
        }
        try {
          const parsed = JSON.parse(data.slice(0, nl)) as { token?: unknown; message?: unknown };
          const task = typeof parsed.token === 'string' ? this.tokens.get(parsed.token) : undefined;
          if (task === undefined || typeof parsed.message !== 'string') {
            socket.end('error: invalid access key\n');
            return;
          }
          if (Buffer.byteLength(parsed.message) > MAX_NOTIFY_MESSAGE_BYTES) {
            socket.end(`error: message is longer than ${MAX_NOTIFY_MESSAGE_BYTES} bytes\n`);
            return;
          }
          onNotify(task, parsed.message);
          socket.end('ok\n');
        } catch (e) {
          socket.end(`error: ${errorMessage(e)}\n`);
        }
      });
    });
    this.server.listen(this.socketPath);
    this.server.unref();
  }

  /** A new access key for a task that starts now. */
  register(task: { jobId: number; taskId: number }): { key: string; token: string } {
    // Random bytes fetched in bulk: one call per task was a measurable part of a task start.
    if (this.randomOffset + TOKEN_BYTES > this.random.length) {
      this.random = randomBytes(TOKEN_BYTES * 256);
      this.randomOffset = 0;
    }
    const token = this.random.toString('hex', this.randomOffset, this.randomOffset + TOKEN_BYTES);
    this.randomOffset += TOKEN_BYTES;
    this.tokens.set(token, task);
    return { key: `${this.socketPath}:${token}`, token };
  }

  unregister(token: string): void {
    this.tokens.delete(token);
  }

  close(): void {
    this.server.close();
    fs.rmSync(this.socketPath, { force: true });
  }
}

/** `hq task notify`: sends `message` through the access key in the environment. */
export function sendNotification(accessKey: string | undefined, message: string): Promise<void> {
  if (accessKey === undefined || accessKey === '') {
    return Promise.reject(
      new HqError(
        'HQ_INVALID_ARGUMENT',
        'HQ_ACCESS_KEY is not set: `hq task notify` can only be used inside a task',
      ),
    );
  }
  if (Buffer.byteLength(message) > MAX_NOTIFY_MESSAGE_BYTES) {
    return Promise.reject(
      new HqError(
        'HQ_INVALID_ARGUMENT',
        `The message is longer than ${MAX_NOTIFY_MESSAGE_BYTES} bytes`,
      ),
    );
  }
  const colon = accessKey.lastIndexOf(':');
  const socketPath = accessKey.slice(0, colon);
  const token = accessKey.slice(colon + 1);
  return new Promise((resolve, reject) => {
    const socket = net.connect(socketPath);
    let answer = '';
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(`${JSON.stringify({ token, message })}\n`));
    socket.on('data', (chunk: string) => {
      answer += chunk;
    });
    socket.on('error', (e) =>
      reject(new HqError('HQ_CONNECTION', `Cannot reach the worker: ${errorMessage(e)}`)),
    );
    socket.on('close', () => {
      if (answer.startsWith('ok')) {
        resolve();
      } else {
        reject(
          new HqError(
            'HQ_INVALID_ARGUMENT',
            `Notification refused: ${answer.trim().replace(/^error: /, '')}`,
          ),
        );
      }
    });
  });
}
