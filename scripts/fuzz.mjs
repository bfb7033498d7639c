// `npm run fuzz`: the full protocol fuzz run (test/fuzz/protocol-fuzz.ts) against a fresh server
// from dist/hq (build it first; `npm run fuzz` does). Prints the figures and exits 1 on a failed
// check, whose message names the seed and case to replay.
//
//   node --import tsx scripts/fuzz.mjs [--seed N] [--frames N] [--lanes N] [--check-every N]
//                                      [--journal] [--rss-growth MiB] [--case PORT:INDEX]
//
// --journal starts the server with a journal, so accepted frames also go through it.
//
// Without --seed a random seed is picked and printed. --case runs that one case alone (after a
// failure: the message says which one).
import { randomInt } from 'node:crypto';
import { formatReport, runFuzz } from '../test/fuzz/protocol-fuzz.ts';

function parseArgs(argv) {
  const out = {
    seed: randomInt(2 ** 31),
    frames: 100_000,
    lanes: 4,
    checkEvery: undefined,
    journal: false,
    rssGrowth: undefined,
    onlyCase: undefined,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = argv[i + 1];
    const number = () => {
      const n = Number(value);
      if (!Number.isSafeInteger(n) || n < 0) {
        throw new Error(`${arg} needs a non-negative integer, not ${value}`);
      }
      i++;
      return n;
    };
    if (arg === '--seed') {
      out.seed = number();
    } else if (arg === '--frames') {
      out.frames = number();
    } else if (arg === '--rss-growth') {
      out.rssGrowth = number();
    } else if (arg === '--journal') {
      out.journal = true;
    } else if (arg === '--check-every') {
      out.checkEvery = Math.max(1, number());
    } else if (arg === '--lanes') {
      out.lanes = Math.max(1, number());
    } else if (arg === '--case') {
      const m = /^(client|worker):(\d+)$/.exec(value ?? '');
      if (m === null) {
        throw new Error(`--case needs PORT:INDEX (client:12 or worker:7), not ${value}`);
      }
      out.onlyCase = { port: m[1], index: Number(m[2]) };
      i++;
    } else {
      throw new Error(`unknown argument ${arg}`);
    }
  }
  return out;
}

const args = parseArgs(process.argv.slice(2));
const started = Date.now();
try {
  const report = await runFuzz({
    seed: args.seed,
    framesPerPort: args.frames,
    lanes: args.lanes,
    ...(args.checkEvery === undefined ? {} : { checkEveryFrames: args.checkEvery }),
    journal: args.journal,
    ...(args.rssGrowth === undefined ? {} : { rssGrowthLimitMiB: args.rssGrowth }),
    ...(args.onlyCase === undefined ? {} : { onlyCase: args.onlyCase }),
    // Bounded: the full run takes minutes on a small machine; an hour means something is wrong.
    deadlineMs: 60 * 60_000,
    log: (line) => console.log(line),
  });
  console.log('');
  for (const line of formatReport(report)) {
    console.log(line);
  }
  console.log('result: PASS');
} catch (e) {
  console.error(e instanceof Error ? e.message : String(e));
  console.error(
    `result: FAIL after ${((Date.now() - started) / 1000).toFixed(1)} s (seed ${args.seed})`,
  );
  process.exitCode = 1;
}
