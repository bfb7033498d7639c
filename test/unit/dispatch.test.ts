import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { sentEvents } from '../../src/server/dispatch.js';
import type { Assignment } from '../../src/scheduler/scheduler.js';

void describe('sentEvents', () => {
  void it('groups a round by job and worker, with consecutive ids as one range', () => {
    const a = (jobId: number, taskId: number, workerId: number): Assignment => ({
      jobId,
      taskId,
      workerId,
      taken: new Map(),
    });
    const events = sentEvents([
      a(1, 0, 1),
      a(1, 1, 1),
      a(1, 2, 1),
      a(1, 3, 2),
      a(1, 5, 1),
      a(2, 7, 1),
      a(1, 6, 1),
    ]);
    assert.deepEqual(events, [
      { type: 'tasks-sent', jobId: 1, workerId: 1, ranges: [0, 3, 5, 2] },
      { type: 'tasks-sent', jobId: 1, workerId: 2, ranges: [3, 1] },
      { type: 'tasks-sent', jobId: 2, workerId: 1, ranges: [7, 1] },
    ]);
    assert.deepEqual(sentEvents([]), []);
  });
});
