/**
 * The chart library that `hq journal report` embeds in its page: uPlot (MIT), pinned to exactly
 * 1.6.32 in package.json. Embedding it, instead of loading it from a CDN as upstream loads Plotly,
 * is what makes the report work offline.
 *
 * How the text gets here: scripts/build.mjs reads `uplot/dist/uPlot.iife.min.js` and
 * `uplot/dist/uPlot.min.css` and hands them to esbuild as one `define` object, HQ_UPLOT_ASSETS
 * (the same mechanism as HQ_VERSION). esbuild hoists an object define into a single variable, so
 * dist/hq carries one copy and needs no node_modules at run time. Unbundled (tests under tsx) the
 * identifier is undeclared, `typeof` says so, and the two files are read from node_modules once,
 * resolved like `require('uplot/...')` from the working directory (the project root or below).
 * No `import.meta`: the bundle is CommonJS.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

/** The embedded library: its minified IIFE script (defines the global `uPlot`) and stylesheet. */
export interface UplotAssets {
  js: string;
  css: string;
}

declare const HQ_UPLOT_ASSETS: UplotAssets | undefined;

let cached: UplotAssets | undefined;

/**
 * The uPlot script and stylesheet. Throws (only when unbundled) if `uplot` is not installed.
 */
export function uplotAssets(): UplotAssets {
  if (cached === undefined) {
    if (typeof HQ_UPLOT_ASSETS === 'object') {
      cached = HQ_UPLOT_ASSETS;
    } else {
      const require = createRequire(join(process.cwd(), 'package.json'));
      const read = (file: string): string =>
        readFileSync(require.resolve(`uplot/dist/${file}`), 'utf8');
      cached = { js: read('uPlot.iife.min.js'), css: read('uPlot.min.css') };
    }
  }
  return cached;
}
