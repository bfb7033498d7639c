// Bundles src/main.ts into one executable CommonJS file, dist/hq (a `#!/usr/bin/env node` script,
// so running it keeps its PID: env execs node, nothing forks).
import { build } from 'esbuild';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
// uPlot, embedded in the page of `hq journal report` (src/report/uplot-assets.ts): its script and
// stylesheet go into the bundle as one object define, which esbuild emits once.
const requireHere = createRequire(import.meta.url);
const uplotText = (file) => readFileSync(requireHere.resolve(`uplot/dist/${file}`), 'utf8');
const uplotAssets = { js: uplotText('uPlot.iife.min.js'), css: uplotText('uPlot.min.css') };
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
    HQ_VERSION: JSON.stringify(process.env.HQ_BUILD_VERSION ?? pkg.version),
    HQ_UPLOT_ASSETS: JSON.stringify(uplotAssets),
  },
  legalComments: 'none',
  minifyWhitespace: true,
  minifySyntax: true,
  logLevel: 'warning',
});
chmodSync('dist/hq', 0o755);
// The project is ESM, the bundle is CommonJS: tell Node which one dist/hq is.
writeFileSync('dist/package.json', '{ "type": "commonjs" }\n');
