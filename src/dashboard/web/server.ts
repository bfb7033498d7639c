/**
 * The web dashboard's HTTP server (read-only). Security, since a login node's loopback is shared
 * by every user on it:
 * - A random token per start is printed in the URL to open (`/?token=...`), compared in constant
 *   time, and swapped for a random session cookie (HttpOnly, SameSite=Strict) with a redirect
 *   that takes it out of the address bar. Every other request without that cookie gets 401.
 * - The Host header must name this server (a loopback name or the bound address): a page of
 *   another site cannot reach it through DNS rebinding.
 * - Only GET; answers carry a strict Content-Security-Policy and no caching of data.
 * Live updates go out as Server-Sent Events: a `change` event (at most every CHANGE_MS) after
 * which the page asks for the views again.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { DashboardModel } from '../model.js';
import { bounds, liveRange, type TimeRange } from '../time-range.js';
import { coreHeatmap, heatmap, jobTasks, snapshot, timeline } from '../views.js';
import { PAGE_HTML, PAGE_SCRIPT, PAGE_STYLE } from './page.js';
import { uplotAssets } from '../../report/uplot-assets.js';

const CHANGE_MS = 500;
const COOKIE = 'hqdash';
const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

export interface WebDashboardOptions {
  model: DashboardModel;
  mode: 'stream' | 'replay';
  host: string;
  port: number;
  /** The moment "now" is (the journal's end for a replay). */
  now: () => number;
}

export interface WebDashboard {
  url: string;
  port: number;
  /** Tells the connected pages that the model changed. */
  changed(): void;
  close(): Promise<void>;
}

function number(params: URLSearchParams, key: string, fallback: number): number {
  const v = Number(params.get(key));
  return params.has(key) && Number.isFinite(v) ? v : fallback;
}

function sameSecret(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

function cookieOf(req: http.IncomingMessage): string | null {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === COOKIE) {
      return v.join('=');
    }
  }
  return null;
}

export async function startWebDashboard(options: WebDashboardOptions): Promise<WebDashboard> {
  const token = randomBytes(24).toString('base64url');
  const sessions = new Set<string>();
  const streams = new Set<http.ServerResponse>();
  let pending: NodeJS.Timeout | null = null;
  let allowedHosts = new Set<string>();
  const defaultRange: TimeRange =
    options.mode === 'replay'
      ? { kind: 'fixed', start: options.now() - 5 * 60_000, end: options.now() }
      : liveRange();

  const send = (
    res: http.ServerResponse,
    status: number,
    type: string,
    body: string,
    headers: Record<string, string> = {},
  ): void => {
    res.writeHead(status, {
      'Content-Type': type,
      'Cache-Control': 'no-store',
      'Content-Security-Policy': CSP,
      'X-Content-Type-Options': 'nosniff',
      'Referrer-Policy': 'no-referrer',
      ...headers,
    });
    res.end(body);
  };

  const handle = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    if (!allowedHosts.has((req.headers.host ?? '').toLowerCase())) {
      send(res, 403, 'text/plain', 'Forbidden: unexpected Host header\n');
      return;
    }
    if (req.method !== 'GET') {
      send(res, 405, 'text/plain', 'Only GET\n', { Allow: 'GET' });
      return;
    }
    const url = new URL(req.url ?? '/', 'http://dashboard');
    const given = url.searchParams.get('token');
    if (url.pathname === '/' && given !== null) {
      if (!sameSecret(given, token)) {
        send(res, 401, 'text/plain', 'Unauthorized: wrong token\n');
        return;
      }
      const session = randomBytes(24).toString('base64url');
      sessions.add(session);
      send(res, 303, 'text/plain', 'See /\n', {
        Location: '/',
        'Set-Cookie': `${COOKIE}=${session}; HttpOnly; SameSite=Strict; Path=/`,
      });
      return;
    }
    const session = cookieOf(req);
    if (session === null || !sessions.has(session)) {
      send(
        res,
        401,
        'text/plain',
        'Unauthorized: open the URL with the token that `hq dashboard web` printed\n',
      );
      return;
    }
    const q = url.searchParams;
    const [defaultFrom, defaultTo] = bounds(defaultRange, options.now());
    const span = defaultTo - defaultFrom;
    const to = number(q, 'to', options.mode === 'stream' ? options.now() : defaultTo);
    const from = number(q, 'from', to - number(q, 'span', span));
    switch (url.pathname) {
      case '/':
        send(res, 200, 'text/html; charset=utf-8', PAGE_HTML);
        return;
      case '/app.js':
        send(res, 200, 'text/javascript; charset=utf-8', PAGE_SCRIPT);
        return;
      case '/app.css':
        send(res, 200, 'text/css; charset=utf-8', PAGE_STYLE + uplotAssets().css);
        return;
      case '/favicon.ico':
        send(res, 204, 'image/x-icon', '');
        return;
      case '/uplot.js':
        send(res, 200, 'text/javascript; charset=utf-8', uplotAssets().js);
        return;
      case '/api/snapshot':
        send(
          res,
          200,
          'application/json',
          JSON.stringify(snapshot(options.model, options.mode, from, to)),
        );
        return;
      case '/api/timeline':
        send(res, 200, 'application/json', JSON.stringify(timeline(options.model, from, to)));
        return;
      case '/api/heatmap':
        send(res, 200, 'application/json', JSON.stringify(heatmap(options.model, from, to)));
        return;
      case '/api/cores': {
        const view = coreHeatmap(options.model, number(q, 'worker', -1), from, to);
        if (view === null) {
          send(res, 404, 'application/json', JSON.stringify({ error: 'no such worker' }));
        } else {
          send(res, 200, 'application/json', JSON.stringify(view));
        }
        return;
      }
      case '/api/tasks': {
        const view = jobTasks(
          options.model,
          number(q, 'job', -1),
          number(q, 'offset', 0),
          number(q, 'limit', 100),
          to,
        );
        if (view === null) {
          send(res, 404, 'application/json', JSON.stringify({ error: 'no such job' }));
        } else {
          send(res, 200, 'application/json', JSON.stringify(view));
        }
        return;
      }
      case '/events':
        res.writeHead(200, {
          'Content-Type': 'text/event-stream',
          'Cache-Control': 'no-store',
          Connection: 'keep-alive',
        });
        res.write('retry: 2000\n\nevent: change\ndata: {}\n\n');
        streams.add(res);
        req.on('close', () => streams.delete(res));
        return;
      default:
        send(res, 404, 'text/plain', 'Not found\n');
    }
  };

  const server = http.createServer((req, res) => {
    try {
      handle(req, res);
    } catch (e) {
      send(
        res,
        500,
        'text/plain',
        `Internal error: ${e instanceof Error ? e.message : String(e)}\n`,
      );
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const shownHost = options.host.includes(':') ? `[${options.host}]` : options.host;
  allowedHosts = new Set(
    [`${shownHost}:${port}`, `localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`].map((h) =>
      h.toLowerCase(),
    ),
  );
  return {
    url: `http://${shownHost}:${port}/?token=${token}`,
    port,
    changed(): void {
      if (pending !== null || streams.size === 0) {
        return;
      }
      pending = setTimeout(() => {
        pending = null;
        for (const s of streams) {
          s.write('event: change\ndata: {}\n\n');
        }
      }, CHANGE_MS);
    },
    close(): Promise<void> {
      if (pending !== null) {
        clearTimeout(pending);
      }
      for (const s of streams) {
        s.end();
      }
      streams.clear();
      return new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
