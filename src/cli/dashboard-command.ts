/**
 * `hq dashboard [stream]` (a running server's history, then live) and `hq dashboard replay
 * <JOURNAL>` (a journal file, no server needed): the terminal dashboard.
 */
import * as path from 'node:path';
import { Command } from 'commander';
import { openSession } from '../client/session.js';
import { makeContext, withGlobals } from './context.js';

async function stream(cmd: Command): Promise<number> {
  const ctx = makeContext(cmd);
  const { runDashboard } = await import('../dashboard/tui/run.js');
  const session = await openSession(ctx.serverDir);
  const info = await session.call('server-info', {});
  return runDashboard({ kind: 'stream', session, journal: info.journalPath !== null });
}

async function replay(file: string, cmd: Command): Promise<number> {
  makeContext(cmd);
  const { readJournalFile } = await import('./journal-commands.js');
  const records = await readJournalFile(path.resolve(file));
  const { runDashboard } = await import('../dashboard/tui/run.js');
  return runDashboard({ kind: 'replay', records });
}

interface WebOpts {
  bind: string;
  replay?: string;
  allowRemote?: boolean;
}

async function web(opts: WebOpts, cmd: Command): Promise<number> {
  const ctx = makeContext(cmd);
  const { parseBind, runWebDashboard } = await import('../dashboard/web/run.js');
  const bind = parseBind(opts.bind, opts.allowRemote === true);
  const print = (line: string): void => {
    process.stdout.write(`${line}\n`);
  };
  if (opts.replay !== undefined) {
    const { readJournalFile } = await import('./journal-commands.js');
    const records = await readJournalFile(path.resolve(opts.replay));
    return runWebDashboard({ kind: 'replay', records }, bind, print);
  }
  const session = await openSession(ctx.serverDir);
  return runWebDashboard({ kind: 'stream', session }, bind, print);
}

export function dashboardCommand(run: (f: () => Promise<number> | number) => void): Command {
  const dashboard = withGlobals(new Command('dashboard')).description(
    'Open a terminal dashboard of the server: its history, then live events',
  );
  dashboard.addCommand(
    withGlobals(new Command('stream'))
      .description('Stream the history and the live events of the running server (the default)')
      .action((_o: unknown, cmd: Command) => run(() => stream(cmd))),
    { isDefault: true },
  );
  dashboard.addCommand(
    withGlobals(new Command('replay'))
      .description('Show what a journal file recorded (no server needed)')
      .argument('<JOURNAL>', 'Path to a journal (created with `hq server start --journal=<PATH>`)')
      .action((file: string, _o: unknown, cmd: Command) => run(() => replay(file, cmd))),
  );
  dashboard.addCommand(
    withGlobals(new Command('web'))
      .description(
        'Serve the dashboard to a browser (loopback; prints the URL with its access token)',
      )
      .option(
        '--bind <ADDRESS>',
        'HOST:PORT or PORT to listen on (port 0: any free one)',
        '127.0.0.1:0',
      )
      .option('--replay <JOURNAL>', 'Show a journal file instead of a running server')
      .option('--allow-remote', 'Allow a --bind address other than loopback (plain HTTP)')
      .action((opts: WebOpts, cmd: Command) => run(() => web(opts, cmd))),
  );
  return dashboard;
}
