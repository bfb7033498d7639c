/**
 * `hq dashboard web`: the model fed by a server's stream (or a journal), served to browsers
 * until SIGINT/SIGTERM or until the streamed server stops.
 */
import { HqError } from '../../common/errors.js';
import type { ClientSession } from '../../client/session.js';
import type { TimedEvent } from '../../server/events.js';
import { DashboardModel } from '../model.js';
import { followInto, replayInto } from '../source.js';
import { startWebDashboard } from './server.js';

export type WebSource =
  { kind: 'replay'; records: TimedEvent[] } | { kind: 'stream'; session: ClientSession };

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1']);

/** `HOST:PORT`, `PORT` or `[V6]:PORT`; loopback only unless `allowRemote`. */
export function parseBind(text: string, allowRemote: boolean): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(text) ?? /^()()(\d+)$/.exec(text);
  const port = Number(m?.[3]);
  if (m === null || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new HqError(
      'HQ_INVALID_ARGUMENT',
      `invalid value '${text}' for '--bind <ADDRESS>': expected HOST:PORT or PORT`,
    );
  }
  const host = m[1] ?? (m[2] === '' || m[2] === undefined ? '127.0.0.1' : m[2]);
  if (!LOOPBACK.has(host) && !allowRemote) {
    throw new HqError(
      'HQ_INVALID_ARGUMENT',
      `--bind ${text} is not a loopback address: the dashboard is plain HTTP (token-protected); pass --allow-remote to serve it there anyway, or tunnel with ssh -L`,
    );
  }
  return { host, port };
}

export async function runWebDashboard(
  source: WebSource,
  bind: { host: string; port: number },
  print: (line: string) => void,
): Promise<number> {
  const model = new DashboardModel();
  let now = (): number => Date.now();
  if (source.kind === 'replay') {
    const end = replayInto(model, source.records);
    now = () => end;
  }
  const dashboard = await startWebDashboard({
    model,
    mode: source.kind,
    host: bind.host,
    port: bind.port,
    now: () => now(),
  });
  if (!LOOPBACK.has(bind.host)) {
    print(
      `Warning: serving plain HTTP on ${bind.host}; anyone who can reach it and has the URL sees the dashboard`,
    );
  }
  print(`Dashboard: ${dashboard.url}`);
  print(
    `From another machine: ssh -L ${dashboard.port}:localhost:${dashboard.port} <this host>, then open the URL with localhost`,
  );
  let finish: () => void = () => undefined;
  const done = new Promise<void>((resolve) => {
    finish = resolve;
  });
  process.once('SIGINT', finish);
  process.once('SIGTERM', finish);
  try {
    if (source.kind === 'stream') {
      followInto(source.session, model, () => dashboard.changed()).then(finish, finish);
    }
    await done;
    return 0;
  } finally {
    process.off('SIGINT', finish);
    process.off('SIGTERM', finish);
    await dashboard.close();
    if (source.kind === 'stream') {
      source.session.close();
    }
  }
}
