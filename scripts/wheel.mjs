// `npm run wheel`: the Python package as a wheel that carries the single executable, built
// offline with Debian's pip, setuptools and wheel (`pip wheel --no-build-isolation --no-index`).
// Installing it gives `import hyperqueue` and a working `hq` (<prefix>/bin/hq) with nothing
// else, as upstream's wheel does. Builds the executable first when it is missing or older than
// the bundle (`npm run dist`). Writes dist/hyperqueue-<version>-py3-none-<platform>.whl.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
process.chdir(ROOT);
const exe = `dist/hq-${process.platform}-${process.arch}`;
const python = process.env.HQ_WHEEL_PYTHON ?? '/usr/bin/python3';

function run(program, args) {
  const r = spawnSync(program, args, { stdio: 'inherit' });
  if (r.error !== undefined || r.status !== 0) {
    throw new Error(
      `${program} ${args.join(' ')} failed (${r.error?.message ?? `exit ${r.status}`})`,
    );
  }
}

if (
  !existsSync(exe) ||
  statSync(exe).mtimeMs < statSync('dist/hq', { throwIfNoEntry: false })?.mtimeMs
) {
  run(process.execPath, ['scripts/dist.mjs']);
}
const staged = 'python/build-bin';
rmSync(staged, { recursive: true, force: true });
rmSync('python/build', { recursive: true, force: true });
mkdirSync(staged);
try {
  copyFileSync(exe, join(staged, 'hq'));
  for (const old of readdirSync('dist').filter((f) => f.endsWith('.whl'))) {
    rmSync(join('dist', old));
  }
  run(python, [
    '-m',
    'pip',
    'wheel',
    '--no-build-isolation',
    '--no-index',
    '--no-deps',
    '-w',
    'dist',
    './python',
  ]);
} finally {
  rmSync(staged, { recursive: true, force: true });
  rmSync('python/build', { recursive: true, force: true });
}
const wheel = readdirSync('dist').find((f) => f.endsWith('.whl'));
console.log(`dist/${wheel} (${(statSync(join('dist', wheel)).size / 1e6).toFixed(1)} MB)`);
