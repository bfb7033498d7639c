/**
 * `hq api`, the JSON-lines bridge of the Python package, spoken to directly: what a client
 * library may send wrongly gets one error reply naming the problem and changes nothing; the
 * bridge ends with its stdin.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as readline from 'node:readline';

import { HQ_BIN, withEnv } from './harness.js';

interface Reply {
  id?: number | null;
  ok?: boolean;
  code?: string;
  error?: string;
  data?: unknown;
  ready?: boolean;
  progress?: unknown;
}

void describe('hq api bridge', () => {
  void it('answers malformed requests with errors, creates nothing, and ends with its stdin', () =>
    withEnv(async (env) => {
      await env.startServer();
      const bridge = spawn(HQ_BIN, ['--server-dir', env.serverDir, 'api'], {
        env: env.processEnv(),
        stdio: ['pipe', 'pipe', 'ignore'],
      });
      const lines = readline.createInterface({ input: bridge.stdout });
      const replies: Reply[] = [];
      const waiting: ((r: Reply) => void)[] = [];
      lines.on('line', (l) => {
        const r = JSON.parse(l) as Reply;
        const w = waiting.shift();
        if (w) {
          w(r);
        } else {
          replies.push(r);
        }
      });
      const next = (): Promise<Reply> =>
        replies.length > 0
          ? Promise.resolve(replies.shift()!)
          : new Promise((resolve) => waiting.push(resolve));
      const send = async (line: string): Promise<Reply> => {
        bridge.stdin.write(`${line}\n`);
        return next();
      };
      const exited = new Promise<number | null>((resolve) => bridge.once('exit', resolve));
      try {
        const ready = await next();
        assert.equal(ready.ready, true);
        const cases: [string, RegExp][] = [
          ['not json', /invalid JSON/],
          ['[1, 2]', /a request must be an object/],
          ['{"id": 1, "op": "launch-rockets"}', /unknown op "launch-rockets"/],
          ['{"id": 2, "op": "submit"}', /Invalid job: job: expected \{tasks, submitDir\}/],
          [
            '{"id": 3, "op": "submit", "job": {"tasks": [], "submitDir": "/tmp"}}',
            /Submitted job must have at least a single task/,
          ],
          [
            '{"id": 4, "op": "submit", "job": {"tasks": [{"id": 0, "args": ["true"], "priority": "high"}], "submitDir": "/tmp"}}',
            /task 0.priority: expected an integer/,
          ],
          [
            '{"id": 5, "op": "submit", "job": {"tasks": [{"id": 0, "args": ["true"], "resources": [{"resources": {"cpus": "lots"}}]}], "submitDir": "/tmp"}}',
            /task 0.resources\[0\].resources.cpus/,
          ],
          [
            '{"id": 6, "op": "submit", "job": {"tasks": [{"id": 0, "args": ["true"]}, {"id": 0, "args": ["true"]}], "submitDir": "/tmp"}}',
            /Non unique IDs in submitted task graph/,
          ],
          [
            '{"id": 7, "op": "submit", "job": {"tasks": [{"id": 0, "args": ["true"], "deps": [9]}], "submitDir": "/tmp"}}',
            /Invalid dependency id/,
          ],
          [
            '{"id": 8, "op": "submit", "job": {"tasks": [{"id": 0, "args": ["true"], "stdin": "%%%"}], "submitDir": "/tmp"}}',
            /task 0.stdin: expected base64/,
          ],
          ['{"id": 9, "op": "wait", "jobs": "all"}', /expected "jobs": a list of job ids/],
          ['{"id": 10, "op": "wait", "jobs": [-1]}', /Invalid job id -1/],
          ['{"id": 11, "op": "forget", "job": 77}', /Cannot forget job 77/],
        ];
        for (const [line, expected] of cases) {
          const reply = await send(line);
          assert.equal(reply.ok, false, line);
          assert.match(reply.error ?? '', expected, line);
          assert.ok(!(reply.error ?? '').includes('\n'), `one line: ${reply.error}`);
        }
        assert.deepEqual(await env.json(['job', 'list', '--all']), []);
        // Still serving after all that.
        const ok = await send(
          `{"id": 12, "op": "submit", "job": {"tasks": [{"id": 0, "args": ["true"]}], "submitDir": ${JSON.stringify(env.dir)}}}`,
        );
        assert.deepEqual(ok, { id: 12, ok: true, data: { jobId: 1 } });
      } finally {
        bridge.stdin.end();
      }
      assert.equal(await exited, 0);
    }));

  void it('says why it cannot start when no server runs', () =>
    withEnv(async (env) => {
      const bridge = spawn(HQ_BIN, ['--server-dir', env.path('nowhere'), 'api'], {
        env: env.processEnv(),
        stdio: ['pipe', 'pipe', 'ignore'],
      });
      let out = '';
      bridge.stdout.on('data', (d: Buffer) => (out += d.toString()));
      const code = await new Promise<number | null>((resolve) => bridge.once('exit', resolve));
      assert.equal(code, 1);
      const first = JSON.parse(out.split('\n')[0]!) as Reply & { code: string };
      assert.equal(first.ready, false);
      assert.equal(first.code, 'HQ_SERVER_NOT_FOUND');
      assert.match(first.error ?? '', /No running instance of HQ found/);
    }));
});
