/**
 * Faults: workers that die under their tasks, and what the server must still get right (crash
 * limits, instance ids, nothing lost).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';

import { waitFor, withEnv } from './harness.js';

/**
 * A task that records its instance id, then SIGKILLs the `hq worker` it runs under, with shell
 * builtins only: well within the worker's 2 ms update batching, so the start of the task is
 * never reported. Its parent is the launcher helper, whose parent is the worker; the walk up
 * the tree is the fallback for other launchers.
 */
function workerKiller(instancesFile: string): string[] {
  const script = `echo "$HQ_INSTANCE_ID" >> '${instancesFile}'
read -r _ _ _ w _ < /proc/$PPID/stat
read -r _ comm _ < /proc/$w/stat
if [ "$comm" = "(node)" ]; then kill -9 "$w"; exit 0; fi
p=$PPID
while [ "$p" -gt 1 ]; do
  if tr '\\0' ' ' < /proc/$p/cmdline | grep -q 'worker start'; then kill -9 "$p"; exit 0; fi
  p=$(awk '{print $4}' /proc/$p/stat)
done
exit 1`;
  return ['sh', '-c', script];
}

void describe('faults: workers lost under their tasks', () => {
  void it('a task that kills its worker at once still meets its crash limit, with a new instance each run', () =>
    withEnv(async (env) => {
      const instances = env.path('instances');
      await env.startServer();
      await env.command(['submit', '--crash-limit', '2', '--', ...workerKiller(instances)]);
      const runs = (): string[] =>
        fs.existsSync(instances) ? fs.readFileSync(instances, 'utf8').trim().split('\n') : [];
      for (let run = 1; run <= 2; run++) {
        const w = await env.startWorker({ hostname: `victim${run}`, wait: false });
        await waitFor(() => runs().length >= run, { message: `run ${run} of the task` });
        await w.process.waitForExit();
      }
      await env.waitForJobState(1, 'FAILED');
      assert.deepEqual(runs(), ['0', '1'], 'every run had its own instance id');
      const info = await env.json<{ error: string }[]>(['task', 'info', '1', '0']);
      assert.match(JSON.stringify(info), /limit was reached/);
    }));
});
