// Bundles src/main.ts into one executable CommonJS file, dist/hq (a `#!/usr/bin/env node` script,
// so running it keeps its PID: env execs node, nothing forks), and the TypeScript API
// (src/api/index.ts) into the ESM module dist/api/index.js with its declarations in
// dist/api/types (what package.json `exports` points at).
import { build } from 'esbuild';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
// uPlot, embedded in the page of `hq journal report` (src/report/uplot-assets.ts): its script and
// stylesheet go into the bundle as one object define, which esbuild emits once.
const requireHere = createRequire(import.meta.url);
const uplotText = (file) => readFileSync(requireHere.resolve(`uplot/dist/${file}`), 'utf8');
const uplotAssets = { js: uplotText('uPlot.iife.min.js'), css: uplotText('uPlot.min.css') };
// The API checks the access file's version as the CLI does, so both get the same one.
const version = JSON.stringify(process.env.HQ_BUILD_VERSION ?? pkg.version);
mkdirSync('dist', { recursive: true });
await build({
  entryPoints: ['src/main.ts'],
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  outfile: 'dist/hq',
  banner: { js: '#!/usr/bin/env node' },
  define: {
    HQ_VERSION: version,
    HQ_UPLOT_ASSETS: JSON.stringify(uplotAssets),
  },
  legalComments: 'none',
  minifyWhitespace: true,
  minifySyntax: true,
  logLevel: 'warning',
});
chmodSync('dist/hq', 0o755);
// esbuild leaves `import()` of a builtin (`await import('node:fs')`) as a real dynamic import,
// which Node's single executable cannot run ("A dynamic import callback was not specified").
const dynamicImport = /\bimport\(\s*["'`][^"'`]*["'`]\s*\)/.exec(readFileSync('dist/hq', 'utf8'));
if (dynamicImport !== null) {
  throw new Error(
    `dist/hq keeps the dynamic import ${dynamicImport[0]}: import it statically (the single executable cannot run it)`,
  );
}
// The project is ESM, the bundle is CommonJS: tell Node which one dist/hq is.
writeFileSync('dist/package.json', '{ "type": "commonjs" }\n');

// The API: ESM for `import`; bundled dependencies (msgpackr is CommonJS inside, hence a real
// `require` for its node: imports), so installing the package needs nothing else.
rmSync('dist/api', { recursive: true, force: true });
await build({
  entryPoints: ['src/api/index.ts'],
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  outfile: 'dist/api/index.js',
  banner: {
    js: "import { createRequire as __hqCreateRequire } from 'node:module'; const require = __hqCreateRequire(import.meta.url);",
  },
  define: { HQ_VERSION: version },
  legalComments: 'none',
  logLevel: 'warning',
});
// dist/package.json says commonjs (for dist/hq); this file is ESM.
writeFileSync('dist/api/package.json', '{ "type": "module" }\n');
const tsc = spawnSync(
  process.execPath,
  [requireHere.resolve('typescript/bin/tsc'), '-p', 'tsconfig.api.json'],
  { stdio: 'inherit' },
);
if (tsc.status !== 0) {
  throw new Error('tsc -p tsconfig.api.json failed (the API declarations)');
}
