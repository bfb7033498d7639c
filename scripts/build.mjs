// Bundles src/main.ts into one executable CommonJS file, dist/hq (a `#!/usr/bin/env node` script,
// so running it keeps its PID: env execs node, nothing forks).
import { build } from 'esbuild';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
mkdirSync('dist', { recursive: true });
await build({
  entryPoints: ['src/main.ts'],
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  outfile: 'dist/hq',
  banner: { js: '#!/usr/bin/env node' },
  define: { HQ_VERSION: JSON.stringify(process.env.HQ_BUILD_VERSION ?? pkg.version) },
  legalComments: 'none',
  logLevel: 'warning',
});
chmodSync('dist/hq', 0o755);
// The project is ESM, the bundle is CommonJS: tell Node which one dist/hq is.
writeFileSync('dist/package.json', '{ "type": "commonjs" }\n');
