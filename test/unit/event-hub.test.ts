import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { EventHub, passes } from '../../src/server/event-hub.js';
import { EVENT_FILTER, type TimedEvent } from '../../src/server/events.js';
import { decodeStreamRecord } from '../../src/transport/stream-records.js';
import { readJournal } from '../../src/server/journal/format.js';
import { JournalWriter } from '../../src/server/journal/writer.js';
import { ServerState } from '../../src/server/state.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hq-hub-unit-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

void describe('event filters', () => {
  void it('pass server start/stop always, and the rest by class and job', () => {
    const all = { flags: 0, jobs: null };
    const jobsOnly = { flags: EVENT_FILTER.job, jobs: null };
    const job2 = { flags: 0, jobs: new Set([2]) };
    assert.ok(passes(jobsOnly, { type: 'server-stop' }));
    assert.ok(passes(all, { type: 'task-finished', jobId: 1, taskId: 0 }));
    assert.ok(!passes(jobsOnly, { type: 'task-finished', jobId: 1, taskId: 0 }));
    assert.ok(passes(jobsOnly, { type: 'job-completed', job: 1 }));
    assert.ok(!passes(job2, { type: 'job-completed', job: 1 }));
    assert.ok(
      passes(job2, {
        type: 'task-canceled',
        tasks: [
          { jobId: 1, taskId: 0 },
          { jobId: 2, taskId: 0 },
        ],
      }),
    );
    assert.ok(passes(job2, { type: 'worker-lost', id: 1, reason: 'stopped' }), 'about no job');
  });
});

void describe('EventHub', () => {
  void it('applies, journals and streams each event; internal kinds are not streamed, stream-only kinds not journaled', async () => {
    const file = path.join(dir, 'journal');
    const journal = new JournalWriter(file, { validEnd: 0, needsHeader: true, flushPeriodMs: 0 });
    const state = new ServerState();
    const hub = new EventHub(state, journal);
    const got: TimedEvent[] = [];
    const unsubscribe = hub.subscribe({
      filter: { flags: 0, jobs: null },
      send: (records) => records.forEach((r) => assert.ok(decodeStreamRecord(r, got))),
    });
    hub.emit({ type: 'job-open', job: 1, name: 'x', maxFails: null }, 10);
    assert.equal(state.jobs.get(1)?.isOpen, true, 'applied at once');
    hub.emit({ type: 'job-forgotten', job: 1 }, 11);
    hub.emit({ type: 'job-idle', job: 1 }, 12);
    assert.equal(got.length, 0, 'streamed later, as one batch');
    await hub.sync();
    const deadline = Date.now() + 5000;
    while (got.length === 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 5));
    }
    assert.deepEqual(
      got.map((r) => r.event.type),
      ['job-open', 'job-idle'],
    );
    assert.deepEqual(
      readJournal(file).map((r) => r.event.type),
      ['job-open', 'job-forgotten'],
    );
    unsubscribe();
    hub.emit({ type: 'job-open', job: 2, name: 'y', maxFails: null }, 13);
    hub.flush();
    assert.equal(got.length, 2, 'no events after unsubscribing');
    journal.close();
  });
});
