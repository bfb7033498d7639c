import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { horizontalTable, verticalMap, withEnv } from './harness.js';

interface WorkerJson {
  id: number;
  configuration: {
    hostname: string;
    group: string;
    heartbeat_interval: number;
    work_dir: string;
    resources: unknown;
  };
  ended: { at: string } | null;
}

void describe('hq worker list / info', () => {
  void it('shows running workers with their hostname and cpus', () =>
    withEnv(async (env) => {
      await env.startServer();
      const w1 = await env.startWorker({ cpus: 2 });
      const w2 = await env.startWorker({ cpus: 3, hostname: 'custom-host' });
      assert.deepEqual([w1.id, w2.id], [1, 2]);

      const rows = horizontalTable(await env.output(['worker', 'list']));
      assert.deepEqual(rows, [
        {
          ID: '1',
          State: 'RUNNING',
          Hostname: 'worker1',
          Resources: 'cpus 2',
          Manager: 'None',
          'Manager Job ID': 'N/A',
        },
        {
          ID: '2',
          State: 'RUNNING',
          Hostname: 'custom-host',
          Resources: 'cpus 3',
          Manager: 'None',
          'Manager Job ID': 'N/A',
        },
      ]);

      const info = verticalMap(await env.output(['worker', 'info', '1']));
      assert.equal(info.get('Worker'), '1');
      assert.equal(info.get('State'), 'RUNNING');
      assert.equal(info.get('Hostname'), 'worker1');
      assert.equal(info.get('Heartbeat'), '8s');
      assert.equal(info.get('Group'), 'default');
      assert.equal(info.get('Resources'), 'cpus: 2');
      assert.equal(info.get('Working directory'), w1.workDir);
      assert.equal(info.get('Idle timeout'), 'None');
      assert.equal(info.get('Time Limit'), 'None');
      assert.equal(info.get('Manager'), 'None');
      assert.equal(info.get('Process pid'), String(w1.process.pid));
      assert.match(info.get('Started') ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);

      const json = await env.json<WorkerJson[]>(['worker', 'list']);
      assert.deepEqual(
        json.map((w) => [w.id, w.configuration.hostname, w.configuration.group, w.ended]),
        [
          [1, 'worker1', 'default', null],
          [2, 'custom-host', 'default', null],
        ],
      );
      assert.equal(json[0]!.configuration.heartbeat_interval, 8);
      assert.equal(json[1]!.configuration.work_dir, w2.workDir);
    }));
});

void describe('stopping and losing workers', () => {
  void it('hq worker stop stops one worker, which exits with code 0', () =>
    withEnv(async (env) => {
      await env.startServer();
      const w1 = await env.startWorker();
      const w2 = await env.startWorker();
      const stop = await env.command(['worker', 'stop', String(w1.id)]);
      assert.match(stop.stderr, /INFO\s+Worker 1 stopped\n$/);
      await env.waitForWorkerState(w1.id, 'STOPPED');
      assert.deepEqual(await w1.process.waitForExit(), { code: 0, signal: null });

      // Only running workers are listed by default; the other one is untouched.
      const running = horizontalTable(await env.output(['worker', 'list']));
      assert.deepEqual(
        running.map((r) => [r['ID'], r['State']]),
        [['2', 'RUNNING']],
      );
      assert.ok(w2.process.isRunning);

      const again = await env.command(['worker', 'stop', '1']);
      assert.match(again.stderr, /Stopping worker 1 failed; worker is already stopped/);
      const unknown = await env.command(['worker', 'stop', '42']);
      assert.equal(unknown.code, 0);
      assert.match(unknown.stderr, /ERROR\s+Stopping worker 42 failed; worker not found\n$/);
      assert.deepEqual(
        (await env.workerRows()).map((r) => [r['ID'], r['State']]),
        [
          ['1', 'STOPPED'],
          ['2', 'RUNNING'],
        ],
      );
    }));

  void it('a worker killed by SIGTERM or SIGKILL is CONNECTION LOST', () =>
    withEnv(async (env) => {
      await env.startServer();
      const w1 = await env.startWorker();
      const w2 = await env.startWorker();
      const w3 = await env.startWorker();
      assert.equal((await env.killWorker(w1.id, 'SIGTERM')).code, 0);
      assert.equal((await env.killWorker(w2.id, 'SIGKILL')).signal, 'SIGKILL');
      await env.waitForWorkerState(w1.id, 'CONNECTION LOST');
      await env.waitForWorkerState(w2.id, 'CONNECTION LOST');
      assert.deepEqual(
        (await env.workerRows()).map((r) => [r['ID'], r['State']]),
        [
          ['1', 'CONNECTION LOST'],
          ['2', 'CONNECTION LOST'],
          ['3', 'RUNNING'],
        ],
      );
      assert.ok(w3.process.isRunning);
    }));

  void it('--time-limit stops the worker with TIME LIMIT REACHED', () =>
    withEnv(async (env) => {
      await env.startServer();
      const w = await env.startWorker({ args: ['--time-limit', '1s'], wait: false });
      const row = await env.waitForWorkerState(w.hostname, 'TIME LIMIT REACHED');
      assert.equal(row['ID'], '1');
      assert.deepEqual(await w.process.waitForExit(), { code: 0, signal: null });
      const info = verticalMap(await env.output(['worker', 'info', '1']));
      assert.equal(info.get('Time Limit'), '1s');
    }));

  void it('--idle-timeout stops an idle worker with IDLE TIMEOUT and exit code 0', () =>
    withEnv(async (env) => {
      await env.startServer();
      const w = await env.startWorker({ args: ['--idle-timeout', '1s'], wait: false });
      await env.waitForWorkerState(w.hostname, 'IDLE TIMEOUT');
      assert.deepEqual(await w.process.waitForExit(), { code: 0, signal: null });
      const info = verticalMap(await env.output(['worker', 'info', '1']));
      assert.equal(info.get('Idle timeout'), '1s');
    }));

  void it('--idle-timeout does not stop a worker that is running a task', () =>
    withEnv(async (env) => {
      await env.startServer();
      // The job waits for the worker, so the worker has work from the moment it registers.
      await env.command(['submit', '--', 'bash', '-c', 'sleep 2']);
      const w = await env.startWorker({ args: ['--idle-timeout', '1s'], wait: false });
      await env.waitForJobState(1, 'FINISHED');
      const rows = await env.workerRows();
      assert.equal(rows.find((r) => r['Hostname'] === w.hostname)?.['State'], 'RUNNING');
      await env.waitForWorkerState(w.hostname, 'IDLE TIMEOUT');
      assert.equal((await w.process.waitForExit()).code, 0);
    }));

  void it('stopping the server makes every worker exit with code 1', () =>
    withEnv(async (env) => {
      const server = await env.startServer();
      const workers = [await env.startWorker(), await env.startWorker({ cpus: 2 })];
      await env.command(['server', 'stop']);
      assert.deepEqual(await server.waitForExit(), { code: 0, signal: null });
      for (const w of workers) {
        assert.deepEqual(await w.process.waitForExit(), { code: 1, signal: null });
      }
    }));
});
