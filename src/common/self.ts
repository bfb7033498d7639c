/**
 * Where this `hq` is, for everything that runs it again: the worker command in autoalloc's
 * sbatch/qsub scripts, `$HQ` in a task's environment, the remote command of `hq worker
 * deploy-ssh`, and `hq doc`'s search for the pages installed next to it.
 *
 * Two builds run this code. The bundle `dist/hq` is a script with a `#!/usr/bin/env node` line,
 * so its own path runs it (Node is `process.execPath`, the bundle `process.argv[1]`). The single
 * executable (`npm run dist`, Node's single-executable application) is Node and the bundle in
 * one file: there `process.execPath` is the executable, while `process.argv[1]` is only the name
 * it was started by (`hq` when found on PATH), so it must not be resolved against the working
 * directory.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

let sea: boolean | undefined;

/** Whether this process is the single executable. False on a Node without `node:sea`. */
export function isSingleExecutable(): boolean {
  if (sea === undefined) {
    // Through getBuiltinModule, so that loading the bundle never fails for want of node:sea.
    const host = process as { getBuiltinModule?: typeof process.getBuiltinModule };
    try {
      sea = host.getBuiltinModule?.('node:sea').isSea() ?? false;
    } catch {
      sea = false;
    }
  }
  return sea;
}

/**
 * The path the single executable was started by, when it names this same file: `argv0` as typed
 * (a path with a slash, resolved against the working directory) or found on PATH. So a symlink
 * (`~/bin/hq` -> `~/hq-0.26/hq`) stays what scripts name, as with the bundle, whose `argv[1]` is
 * the path it was started by. Null when nothing names it (then `process.execPath`, the file).
 */
function startedAs(): string | null {
  const name = process.argv0;
  const candidates = name.includes('/')
    ? [path.resolve(name)]
    : (process.env['PATH'] ?? '')
        .split(':')
        .filter((dir) => dir !== '')
        .map((dir) => path.resolve(dir, name));
  let self: string;
  try {
    self = fs.realpathSync(process.execPath);
  } catch {
    return null;
  }
  for (const candidate of candidates) {
    try {
      if (fs.realpathSync(candidate) === self) {
        return candidate;
      }
    } catch {
      // Not there: the next one.
    }
  }
  return null;
}

let cached: string | undefined;

/**
 * The absolute path that runs this same `hq` when executed: the single executable (by the path
 * it was started by when that is this file), else the bundle (`hq` resolved against the working
 * directory when there is no script path at all).
 */
export function hqPath(): string {
  cached ??= isSingleExecutable()
    ? (startedAs() ?? process.execPath)
    : path.resolve(process.argv[1] ?? 'hq');
  return cached;
}
