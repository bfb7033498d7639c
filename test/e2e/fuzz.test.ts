/**
 * A short protocol fuzz run (test/fuzz/protocol-fuzz.ts) as part of `npm test`: one fixed seed,
 * so a regression shows the same way every time, and one random seed (in the test name and
 * the output), so every run also tries something new. The full run of 100,000 frames per port
 * is `npm run fuzz`; its figures are in docs/reliability.md.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';

import { CATEGORIES } from '../fuzz/fuzz-cases.js';
import { formatReport, runFuzz } from '../fuzz/protocol-fuzz.js';

const FRAMES_PER_PORT = 2500;
const CHECK_EVERY = 1000;
/** About 10 s each on an idle 2-core machine; the bound is for a busy one. */
const DEADLINE_MS = 120_000;
const SEEDS: [string, number][] = [
  ['fixed seed', 20_261_202],
  ['random seed', randomInt(2 ** 31)],
];

void describe('protocol fuzzing (short run)', () => {
  for (const [label, seed] of SEEDS) {
    void it(`keeps serving through ${FRAMES_PER_PORT} generated frames per port (${label} ${seed})`, async (t) => {
      t.diagnostic(
        `seed ${seed}; replay: node --import tsx scripts/fuzz.mjs --seed ${seed} --frames ${FRAMES_PER_PORT} --check-every ${CHECK_EVERY}`,
      );
      const report = await runFuzz({
        seed,
        framesPerPort: FRAMES_PER_PORT,
        deadlineMs: DEADLINE_MS,
        checkEveryFrames: CHECK_EVERY,
      });
      for (const line of formatReport(report)) {
        t.diagnostic(line);
      }
      for (const port of ['client', 'worker'] as const) {
        const r = report.ports[port];
        assert.ok(r.frames >= FRAMES_PER_PORT, `${port} port: ${r.frames} frames`);
        // Every kind of frame was tried, and the server did refuse some and accept others.
        for (const c of CATEGORIES) {
          assert.ok(r.byCategory[c] > 0, `${port} port: no ${c} frames (seed ${seed})`);
        }
        assert.ok(r.closedByServer > 0 && r.refusedHandshakes > 0, `${port} port refused nothing`);
      }
      assert.ok(report.ports.client.okAnswers > 0, 'no client frame was answered');
      assert.ok(report.ports.worker.registered > 0, 'no fuzz worker registered');
    });
  }
});
