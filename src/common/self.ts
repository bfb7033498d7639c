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
 * The absolute path that runs this same `hq` when executed: the single executable, else the
 * bundle (`hq` resolved against the working directory when there is no script path at all).
 */
export function hqPath(): string {
  return isSingleExecutable() ? process.execPath : path.resolve(process.argv[1] ?? 'hq');
}
