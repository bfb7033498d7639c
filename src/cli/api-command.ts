/**
 * `hq api` (hidden): the JSON Lines bridge that client libraries in other languages start once
 * per client and talk to over stdin/stdout (src/api/bridge.ts has the protocol).
 */
import { Command } from 'commander';
import { openSession } from '../client/session.js';
import { runBridge } from '../api/bridge.js';
import { makeContext, withGlobals } from './context.js';

export function apiCommand(run: (f: () => Promise<number> | number) => void): Command {
  return withGlobals(new Command('api'))
    .description('Serve API requests as JSON lines on stdin/stdout (for client libraries)')
    .action((_opts: unknown, cmd: Command) =>
      run(() => {
        const ctx = makeContext(cmd);
        return runBridge(
          () => openSession(ctx.serverDir),
          process.stdin,
          (message) => process.stdout.write(`${JSON.stringify(message)}\n`),
        );
      }),
    );
}
