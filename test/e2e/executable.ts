/**
 * The single executable for the tests that run against it (single-executable, the Slurm test,
 * the seeds' commands a second time): where it is, why it cannot be built here, and building it
 * (`scripts/dist.mjs --skip-build`, about 20 s) when it is missing or older than the bundle.
 * Imports nothing of the harness: a test sets HQ_TEST_BIN before it loads the harness.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';

export const ROOT = path.resolve(import.meta.dirname, '..', '..');
export const BUNDLE = path.join(ROOT, 'dist', 'hq');
export const PLATFORM = `${process.platform}-${process.arch}`;
export const EXE = path.join(ROOT, 'dist', `hq-${PLATFORM}`);

/** Why the executable cannot be built here, or undefined. */
export function buildSkipReason(): string | undefined {
  if (process.platform !== 'linux') {
    return 'the single executable is built on Linux only';
  }
  try {
    createRequire(import.meta.url).resolve('postject/dist/cli.js');
  } catch {
    return 'postject is not installed (npm ci installs it): cannot build the single executable';
  }
  if (!fs.existsSync(BUNDLE)) {
    return `${BUNDLE} is missing: run \`npm run build\` first`;
  }
  return undefined;
}

let version: string | undefined;

/** What the bundle says `--version` (asked once per test process). */
export function bundleVersion(): string {
  version ??= execFileSync(process.execPath, [BUNDLE, '--version'], { encoding: 'utf8' }).trim();
  return version;
}

/** The release tarball `npm run dist` makes of the executable. */
export function tarballPath(): string {
  return path.join(ROOT, 'dist', `hq-v${bundleVersion()}-${PLATFORM}.tar.gz`);
}

/** Builds the executable and its tarball unless both are newer than the bundle. */
export function buildIfStale(): void {
  const bundleTime = fs.statSync(BUNDLE).mtimeMs;
  const fresh = (file: string): boolean => {
    try {
      return fs.statSync(file).mtimeMs >= bundleTime;
    } catch {
      return false;
    }
  };
  if (fresh(EXE) && fresh(tarballPath())) {
    return;
  }
  const r = spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'dist.mjs'), '--skip-build'], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 300_000,
  });
  assert.equal(r.status, 0, `npm run dist failed:\n${r.stdout}${r.stderr}`);
}

/**
 * Points the harness at the executable (building it when stale) unless HQ_TEST_BIN already names
 * a build; returns why the bundle stays in use, or undefined. Call before loading the harness.
 */
export function useExecutable(): string | undefined {
  if (process.env['HQ_TEST_BIN'] !== undefined) {
    return undefined;
  }
  const reason = buildSkipReason();
  if (reason === undefined) {
    buildIfStale();
    process.env['HQ_TEST_BIN'] = EXE;
  }
  return reason;
}
