/**
 * Global flags (accepted anywhere on the command line, as with upstream's clap `global = true`)
 * and the context every command runs with.
 */
import { Option, type Command } from 'commander';
import { parseDuration, parseHumantime } from '../common/duration.js';
import { HqError, errorMessage } from '../common/errors.js';
import { configureLogging } from '../common/log.js';
import { resolveServerDir } from '../common/server-dir.js';
import { openSession, type ClientSession } from '../client/session.js';
import type { OutputMode } from './output.js';
import type { RenderContext } from './render.js';

export interface GlobalOptions {
  serverDir?: string;
  outputMode?: string;
  colors?: string;
  debug?: boolean;
}

export interface CommandContext extends RenderContext {
  serverDir: string;
  debug: boolean;
}

/** Adds the global flags to `cmd` so they parse wherever they appear. */
export function withGlobals(cmd: Command): Command {
  return cmd
    .enablePositionalOptions()
    .addOption(
      new Option(
        '--server-dir <SERVER_DIR>',
        'Path to a directory that stores HQ server access files',
      ).env('HQ_SERVER_DIR'),
    )
    .addOption(
      new Option('--output-mode <OUTPUT_MODE>', 'How should the output of the command be formatted')
        .choices(['cli', 'json', 'quiet'])
        .env('HQ_OUTPUT_MODE'),
    )
    .addOption(
      new Option('--colors <COLORS>', 'Console color policy').choices(['auto', 'always', 'never']),
    )
    .addOption(new Option('--debug', 'Turn on a more detailed log output').env('HQ_DEBUG'));
}

export function makeContext(cmd: Command): CommandContext {
  const o = cmd.optsWithGlobals<GlobalOptions>();
  const mode = (o.outputMode ?? 'cli') as OutputMode;
  const colorChoice = o.colors ?? 'auto';
  const colors =
    colorChoice === 'always' ||
    (colorChoice === 'auto' &&
      process.stdout.isTTY === true &&
      process.env['NO_COLOR'] === undefined);
  const debug = o.debug === true;
  configureLogging({ debug });
  return { mode, colors, debug, serverDir: resolveServerDir(o.serverDir) };
}

/** Upstream's clap wording for the parse errors users and scripts match on. */
export function clapStyle(message: string): string {
  return message
    .replace(/^error: unknown option '([^'=]*)(=[^']*)?'/, "error: unexpected argument '$1' found")
    .replace(/^error: too many arguments.*/, 'error: unexpected argument found')
    .replace(
      /^error: option '([^']*)' argument missing/,
      "error: a value is required for '$1' but none was supplied",
    );
}

/** A duration flag (`1h 30m` or `HH:MM:SS`), with clap's error prefix naming the flag. */
export function durationOption(flag: string, text: string, humantimeOnly = false): number {
  try {
    return humantimeOnly ? parseHumantime(text) : parseDuration(text);
  } catch (e) {
    throw new HqError(
      'HQ_INVALID_DURATION',
      `invalid value '${text}' for '${flag}': ${errorMessage(e)}`,
    );
  }
}

export function parseIntOption(name: string, text: string, min = 0, max = 2 ** 32 - 1): number {
  const clean = text.replaceAll('_', '');
  if (!/^[+-]?\d+$/.test(clean)) {
    throw new HqError(
      'HQ_INVALID_ARGUMENT',
      `invalid value '${text}' for '${name}': invalid digit found in string`,
    );
  }
  const n = Number(clean);
  if (n < min || n > max) {
    throw new HqError(
      'HQ_INVALID_ARGUMENT',
      `invalid value '${text}' for '${name}': number out of range`,
    );
  }
  return n;
}

/** Accumulates a repeatable option (`--env A=1 --env B=2`). */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** Runs `f` with a session to the server of `cmd`'s server dir, closing it afterwards. */
export async function withSession<T>(
  cmd: Command,
  f: (session: ClientSession, ctx: CommandContext) => Promise<T>,
): Promise<T> {
  const ctx = makeContext(cmd);
  const session = await openSession(ctx.serverDir);
  try {
    return await f(session, ctx);
  } finally {
    session.close();
  }
}
