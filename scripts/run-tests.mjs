// Runs the project's tests with node:test. Node 20 has no glob for --test, so the file list is
// built here. `unit` runs only the unit tests; anything else runs unit and end-to-end tests.
// End-to-end tests start the built dist/hq, so `npm test` builds first.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

const which = process.argv[2] ?? 'all';
const dirs =
  which === 'unit' ? ['test/unit'] : which === 'e2e' ? ['test/e2e'] : ['test/unit', 'test/e2e'];
const files = dirs.flatMap((dir) =>
  readdirSync(dir)
    .filter((f) => f.endsWith('.test.ts'))
    .sort()
    .map((f) => join(dir, f)),
);
const result = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=2', '--test-timeout=1800000', ...files],
  { stdio: 'inherit' },
);
process.exit(result.status ?? 1);
