// `npm run dist`: the single executable and its release tarball.
//
// 1. dist/hq as `npm run build` makes it (scripts/build.mjs);
// 2. dist/hq-linux-<arch>: Node's single-executable application (SEA) of that bundle. The
//    bundle becomes a blob with V8's code cache (`node --experimental-sea-config`), a copy of
//    this Node is stripped of its symbols, and postject injects the blob into it. The result
//    needs no Node on the machine;
// 3. dist/hq-v<version>-linux-<arch>.tar.gz, laid out as upstream's release archives are (the
//    files at the top, `hq` among them): hq, LICENSE, a README for the archive, and docs/ (where
//    `hq doc` looks: next to the executable).
//
// `--skip-build` reuses dist/hq as it is. Needs `strip` (binutils; without it the executable is
// left unstripped, 10 MB larger) and `tar`.
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  cpSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
process.chdir(ROOT);
const pkg = JSON.parse(readFileSync('package.json', 'utf8'));
const version = process.env.HQ_BUILD_VERSION ?? pkg.version;
const platform = `${process.platform}-${process.arch}`;
const exe = `dist/hq-${platform}`;
const tarball = `dist/hq-v${version}-${platform}.tar.gz`;
// The sentinel Node's binary carries for SEA (the same in every Node 20 build).
const FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

/** Runs a command; throws with its output when it fails. Returns its stdout and stderr. */
function run(program, args, options = {}) {
  const r = spawnSync(program, args, { encoding: 'utf8', ...options });
  if (r.error !== undefined || r.status !== 0) {
    const out = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim();
    throw new Error(
      `${program} ${args.join(' ')} failed (${r.error?.message ?? `exit ${r.status}`})${out === '' ? '' : `:\n${out}`}`,
    );
  }
  return `${r.stdout ?? ''}${r.stderr ?? ''}`;
}

function megabytes(file) {
  return `${(statSync(file).size / 1e6).toFixed(1)} MB`;
}

const started = Date.now();
if (!process.argv.includes('--skip-build')) {
  run(process.execPath, ['scripts/build.mjs'], { stdio: 'inherit' });
}

const work = mkdtempSync(join(tmpdir(), 'hq-dist-'));
try {
  // The blob: the bundle is the main script (CommonJS, requiring only builtins), compiled ahead
  // with its code cache so the CLI starts without parsing 700 KB of JavaScript.
  const blob = join(work, 'hq.blob');
  writeFileSync(
    join(work, 'sea-config.json'),
    JSON.stringify({
      main: 'dist/hq',
      output: blob,
      disableExperimentalSEAWarning: true,
      useCodeCache: true,
    }),
  );
  run(process.execPath, ['--experimental-sea-config', join(work, 'sea-config.json')]);

  const tmpExe = join(work, 'hq');
  copyFileSync(process.execPath, tmpExe);
  chmodSync(tmpExe, 0o755);
  const strip = spawnSync('strip', ['--strip-all', tmpExe], { encoding: 'utf8' });
  if (strip.error !== undefined || strip.status !== 0) {
    console.warn(`strip failed or is missing; the executable stays unstripped`);
  }
  const postject = createRequire(import.meta.url).resolve('postject/dist/cli.js');
  // postject warns about ELF note sections it cannot name; harmless, so only failures show.
  run(process.execPath, [postject, tmpExe, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', FUSE]);
  const said = run(tmpExe, ['--version'], { env: { ...process.env, NODE_OPTIONS: '' } }).trim();
  if (!said.endsWith(version)) {
    throw new Error(`the executable says ${JSON.stringify(said)}, not version ${version}`);
  }
  // Renamed into place, so that an `hq` running from dist/ meanwhile never sees half a file.
  copyFileSync(tmpExe, `${exe}.tmp`);
  chmodSync(`${exe}.tmp`, 0o755);
  renameSync(`${exe}.tmp`, exe);

  // The archive: everything at its top, as upstream's (`tar xzf ... && ./hq`).
  const stage = join(work, 'stage');
  mkdirSync(stage);
  renameSync(tmpExe, join(stage, 'hq'));
  copyFileSync('LICENSE', join(stage, 'LICENSE'));
  copyFileSync('scripts/dist-README.md', join(stage, 'README.md'));
  cpSync('docs', join(stage, 'docs'), { recursive: true });
  run('tar', [
    '--create',
    '--gzip',
    '--file',
    join(ROOT, `${tarball}.tmp`),
    '--directory',
    stage,
    '--sort=name',
    '--owner=0',
    '--group=0',
    '--numeric-owner',
    'hq',
    'LICENSE',
    'README.md',
    'docs',
  ]);
  renameSync(`${tarball}.tmp`, tarball);
} finally {
  rmSync(work, { recursive: true, force: true });
}
console.log(`${exe}: ${megabytes(exe)}`);
console.log(`${tarball}: ${megabytes(tarball)}`);
console.log(`dist done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
