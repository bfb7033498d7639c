import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { onClientConnection } from '../../src/server/client-handlers.js';
import type { HqServer } from '../../src/server/server.js';
import type { JobRecord } from '../../src/server/state.js';
import { JobWaiters } from '../../src/server/waiters.js';
import type { Connection } from '../../src/transport/connection.js';

/** Only what the waiters read of a job: its counters, task count and open flag. */
function job(id: number, done: boolean): JobRecord {
  return {
    id,
    isOpen: false,
    tasks: { size: 1 },
    counters: { running: 0, finished: done ? 1 : 0, failed: 0, canceled: 0, aborted: 0 },
  } as unknown as JobRecord;
}

/** A connection that records what is sent and lets the test deliver frames and close it. */
class FakeConnection {
  sent: unknown[] = [];
  handler: ((m: unknown) => void) | null = null;
  closeHandlers: ((reason: string) => void)[] = [];
  listen(h: (m: unknown) => void): void {
    this.handler = h;
  }
  onClose(h: (reason: string) => void): void {
    this.closeHandlers.push(h);
  }
  send(m: unknown): void {
    this.sent.push(m);
  }
  close(): void {
    for (const h of this.closeHandlers.splice(0)) {
      h('closed');
    }
  }
}

void describe('job waiters', () => {
  void it('are answered once their jobs complete, unless dropped before', () => {
    const jobs = new Map([[1, job(1, false)]]);
    const waiters = new JobWaiters(jobs);
    const answers: string[] = [];
    waiters.add([1], 0, false, () => answers.push('kept'), null);
    const drop = waiters.add([1], 0, false, () => answers.push('dropped'), null);
    drop();
    jobs.set(1, job(1, true));
    waiters.wake();
    assert.deepEqual(answers, ['kept']);
    // Answered at once: dropping it afterwards is harmless.
    waiters.add([1], 0, false, () => answers.push('at once'), null)();
    assert.deepEqual(answers, ['kept', 'at once']);
  });

  void it('of a client that hangs up are dropped with its connection', () => {
    const dropped: number[] = [];
    const respond: ((data: unknown) => void)[] = [];
    let next = 0;
    const server = {
      clients: new Set(),
      waitJobs: (_s: unknown, _w: boolean, r: (data: unknown) => void): (() => void) => {
        const n = next++;
        respond.push(r);
        return () => dropped.push(n);
      },
    } as unknown as HqServer;
    const connection = new FakeConnection();
    onClientConnection(server, connection as unknown as Connection);
    const wait = (reqId: number): void =>
      connection.handler!({
        op: 'wait-jobs',
        reqId,
        selector: { kind: 'all' },
        withoutClose: false,
      });
    wait(1);
    wait(2);
    // The first is answered: only the second is still waiting when the client goes away.
    respond[0]!({ finished: 1, failed: 0, canceled: 0, invalid: 0, jobs: [1] });
    assert.deepEqual(connection.sent, [
      {
        op: 'response',
        reqId: 1,
        ok: true,
        data: { finished: 1, failed: 0, canceled: 0, invalid: 0, jobs: [1] },
      },
    ]);
    connection.close();
    assert.deepEqual(dropped, [1]);
  });
});
