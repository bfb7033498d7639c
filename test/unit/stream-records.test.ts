import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import type { TimedEvent } from '../../src/server/events.js';
import { fromStreamRecord, toStreamRecord } from '../../src/transport/stream-records.js';

void describe('stream records', () => {
  void it('send task starts and finishes as tuples and everything else as it is', () => {
    const events: TimedEvent[] = [
      {
        time: 5,
        event: { type: 'task-started', jobId: 2, taskId: 9, instance: 1, workers: [4], variant: 0 },
      },
      { time: 6, event: { type: 'task-finished', jobId: 2, taskId: 9 } },
      {
        time: 7,
        event: {
          type: 'task-started',
          jobId: 2,
          taskId: 8,
          instance: 0,
          workers: [4, 5],
          variant: 0,
        },
      },
      { time: 8, event: { type: 'job-completed', job: 2 } },
    ];
    const sent = events.map(toStreamRecord);
    assert.deepEqual(sent.slice(0, 2), [
      [5, 1, 2, 9, 1, 4],
      [6, 2, 2, 9],
    ]);
    assert.equal(sent[2], events[2], 'a multi-node start keeps its full form');
    assert.deepEqual(sent.map(fromStreamRecord), events);
    assert.equal(fromStreamRecord([1, 7, 2]), null);
    assert.equal(fromStreamRecord(['x', 1, 2, 3, 4, 5]), null);
    assert.equal(fromStreamRecord(null), null);
  });
});
