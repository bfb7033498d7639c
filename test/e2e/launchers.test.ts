/**
 * The three ways a worker starts task programs (the C helper, the Perl helper, plain spawn)
 * must be indistinguishable from outside: the same outputs, exit states, error texts, stdin,
 * streamed output and time limits.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';

import { childNames, read, waitFor, withEnv, type HqEnv } from './harness.js';

type LauncherKind = 'native' | 'perl' | 'node';

interface TaskJson {
  id: number;
  state: string;
  error?: string | null;
}

async function states(env: HqEnv, jobId: number): Promise<TaskJson[]> {
  const [job] = await env.json<{ tasks: TaskJson[] }[]>(['job', 'info', String(jobId)]);
  assert.ok(job);
  return job.tasks.map((t) => ({ id: t.id, state: t.state, error: t.error ?? null }));
}

/** Runs the same small workload under one launcher and returns what a user can observe. */
async function observe(kind: LauncherKind): Promise<Record<string, unknown>> {
  return withEnv(async (env) => {
    await env.startServer();
    const worker = await env.startWorker({
      cpus: 2,
      ...(kind === 'native' ? {} : { env: { HQ_LAUNCHER: kind } }),
    });
    // The worker starts its helper once registered, compiling the C one first on a fresh
    // machine: every poll below samples the worker's children, and the verdict is taken on all.
    const seen = new Set<string>();
    const sample = (): void => {
      for (const name of childNames(worker.process.pid)) {
        seen.add(name.startsWith('launcher-') ? 'launcher-*' : name);
      }
    };
    if (kind !== 'node') {
      const expected = kind === 'native' ? 'launcher-*' : 'perl';
      await waitFor(
        () => {
          sample();
          return seen.has(expected);
        },
        { message: `the ${kind} helper to run` },
      );
    }
    fs.mkdirSync(env.path('streams'));
    const script = 'echo "out $HQ_TASK_ID $(pwd)"; echo "err $HQ_TASK_ID" >&2; exit $HQ_TASK_ID';
    await env.command(['submit', '--array=0-1', '--', 'bash', '-c', script]);
    await env.command(['submit', '--', '/nonexistent/program']);
    await env.command(['submit', '--stdin', '--', 'cat'], { stdin: 'from stdin\n' });
    await env.command([
      'submit',
      '--stream',
      'streams',
      '--',
      'bash',
      '-c',
      'echo streamed; echo oops >&2',
    ]);
    await env.command(['submit', '--time-limit', '1s', '--', 'sleep', '30']);
    await waitFor(
      async () => {
        sample();
        const jobs = await env.json<{ id: number; task_stats: Record<string, number> }[]>([
          'job',
          'list',
          '--all',
        ]);
        return (
          jobs.length === 5 &&
          jobs.every((j) => (j.task_stats['running'] ?? 0) + (j.task_stats['waiting'] ?? 0) === 0)
        );
      },
      { timeoutMs: 60_000, message: 'all five jobs to end' },
    );
    if (kind === 'node') {
      assert.ok(!seen.has('perl') && !seen.has('launcher-*'), `no helper (${[...seen].join(',')})`);
    }
    const streamed = await env.output(['output-log', 'streams', 'show']);
    return {
      array: await states(env, 1),
      arrayOut: [read(env.path('job-1', '0.stdout')), read(env.path('job-1', '1.stdout'))],
      arrayErr: [read(env.path('job-1', '0.stderr')), read(env.path('job-1', '1.stderr'))],
      missing: await states(env, 2),
      stdin: read(env.path('job-3', '0.stdout')),
      stream: streamed
        .split('\n')
        .filter((l) => l !== '')
        .sort(),
      timeLimit: await states(env, 5),
    };
  });
}

void describe('task launchers', () => {
  void it('behave identically: C helper, Perl helper and plain spawn', async () => {
    const native = await observe('native');
    const cwdLine = (native['arrayOut'] as string[])[0]!;
    assert.match(cwdLine, /^out 0 \/.+\n$/);
    assert.deepEqual(native['array'], [
      { id: 0, state: 'finished', error: null },
      { id: 1, state: 'failed', error: 'Program terminated with exit code 1.' },
    ]);
    assert.deepEqual(native['arrayErr'], ['err 0\n', 'err 1\n']);
    const [missing] = native['missing'] as TaskJson[];
    assert.equal(missing?.state, 'failed');
    assert.match(missing?.error ?? '', /No such file or directory/);
    assert.equal(native['stdin'], 'from stdin\n');
    assert.deepEqual(native['stream'], ['4.0:0> streamed', '4.0:1> oops']);
    assert.deepEqual(native['timeLimit'], [
      { id: 0, state: 'failed', error: 'Time limit reached' },
    ]);
    const perl = await observe('perl');
    const node = await observe('node');
    // The working directories differ per environment; everything else must be the same.
    const strip = (o: Record<string, unknown>): Record<string, unknown> => ({
      ...o,
      arrayOut: (o['arrayOut'] as string[]).map((l) => l.replace(/ \/.*$/m, ' <cwd>')),
    });
    assert.deepEqual(strip(perl), strip(native));
    assert.deepEqual(strip(node), strip(native));
  });
});
