/** `hq server ...` */
import { writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Command } from 'commander';
import { formatDuration } from '../common/duration.js';
import { HqError } from '../common/errors.js';
import { logger } from '../common/log.js';
import { generateSecretKey, generateServerUid, writePrivateJson } from '../common/server-dir.js';
import { VERSION } from '../common/version.js';
import { openSession } from '../client/session.js';
import {
  durationOption,
  makeContext,
  parseIntOption,
  withGlobals,
  withSession,
} from './context.js';
import { printJson } from './output.js';
import { printServerInfo } from './render.js';

const log = logger('hq::client');

const SERVER_WAIT_RETRY_MS = 1000;

interface StartOpts {
  host?: string;
  clientPort?: string;
  workerPort?: string;
  idleTimeout?: string;
  accessFile?: string;
  journal?: string;
  journalFlushPeriod?: string;
}

async function serverStart(opts: StartOpts, cmd: Command): Promise<number> {
  const ctx = makeContext(cmd);
  // Loaded here so that client commands never pay for the server's modules.
  // Signals are handled from the very start, so a stop during start-up still cleans up.
  let stopRequested = false;
  let stopServer: (() => void) | null = null;
  const onSignal = (): void => {
    logger('hq::server').info('received a signal, stopping the server');
    stopRequested = true;
    stopServer?.();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  // A server owned by a client library's LocalCluster (a private variable) stops when its
  // owner's end of the stdin pipe closes, so even a SIGKILLed owner leaves no server behind.
  if (process.env['HQ_STOP_ON_STDIN_EOF'] === '1') {
    process.stdin.once('end', onSignal);
    process.stdin.once('error', onSignal);
    process.stdin.resume();
  }
  const { startServer } = await import('../server/bootstrap.js');
  const started = await startServer({
    serverDir: ctx.serverDir,
    host: opts.host ?? null,
    clientPort:
      opts.clientPort === undefined
        ? null
        : parseIntOption('--client-port <CLIENT_PORT>', opts.clientPort, 0, 65535),
    workerPort:
      opts.workerPort === undefined
        ? null
        : parseIntOption('--worker-port <WORKER_PORT>', opts.workerPort, 0, 65535),
    idleTimeoutMs:
      opts.idleTimeout === undefined
        ? null
        : durationOption('--idle-timeout <IDLE_TIMEOUT>', opts.idleTimeout),
    accessFile: opts.accessFile ?? null,
    journal: opts.journal ?? null,
    journalFlushPeriodMs: durationOption(
      '--journal-flush-period <JOURNAL_FLUSH_PERIOD>',
      opts.journalFlushPeriod ?? '30s',
    ),
  });
  printServerInfo(ctx, started.server.info(), ctx.serverDir);
  stopServer = () => started.server.stop();
  if (stopRequested) {
    stopServer();
  }
  await started.server.stoppedPromise;
  started.cleanup();
  return 0;
}

async function serverStop(_opts: unknown, cmd: Command): Promise<number> {
  return withSession(cmd, async (session, ctx) => {
    await session.call('server-stop', {});
    if (ctx.mode === 'json') {
      printJson({});
    } else {
      log.info('Stopping server');
    }
    return 0;
  });
}

async function serverInfo(_opts: unknown, cmd: Command): Promise<number> {
  return withSession(cmd, async (session, ctx) => {
    printServerInfo(ctx, await session.call('server-info', {}), null);
    return 0;
  });
}

async function serverDebugDump(file: string, _opts: unknown, cmd: Command): Promise<number> {
  return withSession(cmd, async (session) => {
    const dump = await session.call('debug-dump', {});
    writeFileSync(file, JSON.stringify(dump, null, 2));
    return 0;
  });
}

async function serverWait(opts: { timeout?: string }, cmd: Command): Promise<number> {
  const ctx = makeContext(cmd);
  const timeoutMs = durationOption('--timeout <TIMEOUT>', opts.timeout ?? '5m');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const session = await openSession(ctx.serverDir);
      session.close();
      log.info('Successfully connected to server');
      if (ctx.mode === 'json') {
        printJson({});
      }
      return 0;
    } catch {
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new HqError(
          'HQ_TIMEOUT',
          `Timeout after ${formatDuration(timeoutMs)}: Could not connect to server at \`${ctx.serverDir}\`. Make sure that the server is running.`,
        );
      }
      await new Promise((r) => setTimeout(r, Math.min(SERVER_WAIT_RETRY_MS, left)));
    }
  }
}

interface GenerateOpts {
  clientPort: string;
  workerPort: string;
  clientFile?: string;
  workerFile?: string;
  host?: string;
  clientHost?: string;
  workerHost?: string;
}

function generateAccess(file: string, opts: GenerateOpts, cmd: Command): number {
  makeContext(cmd);
  const host = opts.host ?? os.hostname();
  const record = {
    version: VERSION,
    server_uid: generateServerUid(),
    client: {
      host: opts.clientHost ?? host,
      port: parseIntOption('--client-port <CLIENT_PORT>', opts.clientPort, 0, 65535),
      secret_key: generateSecretKey(),
    },
    worker: {
      host: opts.workerHost ?? host,
      port: parseIntOption('--worker-port <WORKER_PORT>', opts.workerPort, 0, 65535),
      secret_key: generateSecretKey(),
    },
  };
  writePrivateJson(path.resolve(file), record);
  if (opts.clientFile !== undefined) {
    writePrivateJson(path.resolve(opts.clientFile), { version: VERSION, client: record.client });
  }
  if (opts.workerFile !== undefined) {
    writePrivateJson(path.resolve(opts.workerFile), { version: VERSION, worker: record.worker });
  }
  return 0;
}

export function serverCommand(run: (f: () => Promise<number> | number) => void): Command {
  const server = new Command('server').description(
    'Commands for controlling the HyperQueue server',
  );
  withGlobals(server);
  server.addCommand(
    withGlobals(new Command('start'))
      .description('Start the server')
      .option('--host <HOST>', 'Hostname/IP of the machine under which is visible to others')
      .option('--idle-timeout <IDLE_TIMEOUT>', 'Duration after which an idle worker is stopped')
      .option('--client-port <CLIENT_PORT>', 'Port for client connections (default: random)')
      .option('--worker-port <WORKER_PORT>', 'Port for worker connections (default: random)')
      .option(
        '--journal <JOURNAL>',
        'Path to a journal file: the server restores its state from it and records every event in it',
      )
      .option(
        '--journal-flush-period <PERIOD>',
        'How often the journal is flushed to the disk',
        '30s',
      )
      .option('--access-file <ACCESS_FILE>', 'Start with the keys and ports of this access file')
      .action((opts: StartOpts, cmd: Command) => run(() => serverStart(opts, cmd))),
  );
  server.addCommand(
    withGlobals(new Command('stop'))
      .description('Stop the server')
      .action((opts: unknown, cmd: Command) => run(() => serverStop(opts, cmd))),
  );
  server.addCommand(
    withGlobals(new Command('info'))
      .description('Show information about the running server')
      .action((opts: unknown, cmd: Command) => run(() => serverInfo(opts, cmd))),
  );
  server.addCommand(
    withGlobals(new Command('wait'))
      .description('Wait until the server is reachable')
      .option('--timeout <TIMEOUT>', 'How long to wait', '5m')
      .action((opts: { timeout?: string }, cmd: Command) => run(() => serverWait(opts, cmd))),
  );
  server.addCommand(
    withGlobals(new Command('debug-dump'))
      .description('Dump the internal state of the server into a JSON file')
      .argument('<PATH>')
      .action((file: string, opts: unknown, cmd: Command) =>
        run(() => serverDebugDump(file, opts, cmd)),
      ),
  );
  server.addCommand(
    withGlobals(new Command('generate-access'))
      .description('Generate an access file without starting a server')
      .argument('<FILE>')
      .requiredOption('--client-port <CLIENT_PORT>', 'Port for clients')
      .requiredOption('--worker-port <WORKER_PORT>', 'Port for workers')
      .option('--client-file <CLIENT_FILE>', 'Also write a client-only access file')
      .option('--worker-file <WORKER_FILE>', 'Also write a worker-only access file')
      .option('--host <HOST>', 'Host for both clients and workers')
      .option('--client-host <CLIENT_HOST>', 'Host for clients')
      .option('--worker-host <WORKER_HOST>', 'Host for workers')
      .action((file: string, opts: GenerateOpts, cmd: Command) =>
        run(() => generateAccess(file, opts, cmd)),
      ),
  );
  return server;
}
