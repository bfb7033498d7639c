import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { eventPayloadJson, formatEventLine } from '../../src/cli/journal-format.js';
import type { ServerEvent } from '../../src/server/events.js';

function line(event: ServerEvent, time = Date.UTC(2026, 0, 2, 3, 4, 5, 6)): unknown {
  const text = formatEventLine({ time, event });
  assert.ok(text !== null);
  assert.ok(!text.includes('\n'));
  return JSON.parse(text);
}

void describe('journal export lines', () => {
  void it('wraps every payload with its RFC 3339 time', () => {
    assert.deepEqual(line({ type: 'server-stop' }), {
      event: { type: 'server-stop' },
      time: '2026-01-02T03:04:05.006Z',
    });
  });

  void it('writes task-started as upstream: one worker or many, variant only when not 0', () => {
    const base = { type: 'task-started', jobId: 1, taskId: 0, instance: 0 } as const;
    assert.deepEqual(eventPayloadJson({ ...base, workers: [1], variant: 2 }), {
      instance: 0,
      job: 1,
      task: 0,
      type: 'task-started',
      variant: 2,
      worker: 1,
    });
    assert.deepEqual(eventPayloadJson({ ...base, workers: [1, 2], variant: 0 }), {
      instance: 0,
      job: 1,
      task: 0,
      type: 'task-started',
      workers: [1, 2],
    });
  });

  void it('uses serde variant names for lost reasons and task id pairs for cancels', () => {
    assert.deepEqual(eventPayloadJson({ type: 'worker-lost', id: 3, reason: 'time-limit' }), {
      type: 'worker-lost',
      id: 3,
      reason: 'TimeLimitReached',
    });
    assert.deepEqual(
      eventPayloadJson({ type: 'task-canceled', tasks: [{ jobId: 1, taskId: 2 }] }),
      { type: 'task-canceled', tasks: [{ job_id: 1, job_task_id: 2 }] },
    );
  });

  void it('keeps overview floats floats, even whole ones', () => {
    const text = formatEventLine({
      time: 0,
      event: {
        type: 'worker-overview',
        id: 1,
        hwState: {
          cpu_usage: { cpu_per_core_percent_usage: [10, 2.5] },
          memory_usage: { total: 100, free: 50 },
          network_usage: {
            rx_bytes: 1,
            tx_bytes: 2,
            rx_packets: 3,
            tx_packets: 4,
            rx_errors: 0,
            tx_errors: 0,
          },
          nvidia_gpus: { gpus: [{ id: 'BUS1', processor_usage: 10, mem_usage: 50 }] },
          amd_gpus: null,
          timestamp: 1700000000,
        },
      },
    });
    assert.ok(text?.includes('"cpu_per_core_percent_usage":[10.0,2.5]'));
    assert.ok(text?.includes('"mem_usage":50.0'));
    assert.ok(text?.includes('"memory_usage":{"free":50,"total":100}'));
    assert.ok(text?.includes('"timestamp":1700000000'));
  });

  void it('never exports internal kinds and writes stream-only kinds without a type', () => {
    assert.equal(
      formatEventLine({
        time: 0,
        event: { type: 'task-restarted', jobId: 1, taskId: 0, crashed: true },
      }),
      null,
    );
    assert.equal(
      formatEventLine({ time: 0, event: { type: 'id-counters', job: 1, worker: 1, queue: 1 } }),
      null,
    );
    assert.deepEqual(
      eventPayloadJson({ type: 'task-notify', jobId: 1, taskId: 2, workerId: 3, message: 'hi' }),
      { task_id: { job_id: 1, job_task_id: 2 }, worker_id: 3, message: [104, 105] },
    );
  });
});
