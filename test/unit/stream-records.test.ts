import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { Packr } from 'msgpackr';
import type { TimedEvent } from '../../src/server/events.js';
import {
  FRAME_WEIGHT,
  StreamBatch,
  decodeStreamRecord,
  type StreamRecord,
} from '../../src/transport/stream-records.js';

function started(time: number, taskId: number, workers = [4]): TimedEvent {
  return {
    time,
    event: { type: 'task-started', jobId: 2, taskId, instance: 1, workers, variant: 0 },
  };
}

function decodeAll(frames: StreamRecord[][]): TimedEvent[] {
  // Through msgpack, as on the wire: blocks arrive as Buffers at any offset.
  const packr = new Packr();
  const out: TimedEvent[] = [];
  for (const frame of frames) {
    for (const r of packr.unpack(packr.pack(frame)) as unknown[]) {
      assert.ok(decodeStreamRecord(r, out), 'a record of a known shape');
    }
  }
  return out;
}

void describe('stream records', () => {
  void it('gather task starts and finishes into blocks, in order with everything else', () => {
    const events: TimedEvent[] = [
      started(5.5, 9),
      { time: 6, event: { type: 'task-finished', jobId: 2, taskId: 9 } },
      started(7, 8, [4, 5]),
      started(7, 10),
      { time: 8, event: { type: 'job-completed', job: 2 } },
    ];
    const batch = new StreamBatch();
    for (const r of events) {
      batch.add(r.time, r.event);
    }
    assert.equal(batch.size, 5);
    const frames = batch.take();
    assert.equal(frames.length, 1);
    const kinds = frames[0]!.map((r) => (Array.isArray(r) ? 'block' : r.event.type));
    assert.deepEqual(kinds, ['block', 'task-started', 'block', 'job-completed']);
    assert.deepEqual(frames[0]![1], events[2], 'a multi-node start keeps its full form');
    assert.deepEqual(decodeAll(frames), events);
    assert.equal(batch.size, 0);
    assert.deepEqual(batch.take(), [], 'taken once');
  });

  void it('split a long history into frames of bounded weight', () => {
    const batch = new StreamBatch();
    const n = FRAME_WEIGHT * 2 + 100;
    for (let i = 0; i < n; i++) {
      batch.add(i, i % 1000 === 0 ? { type: 'job-idle', job: i } : started(i, i).event);
    }
    const frames = batch.take();
    assert.equal(frames.length, 3);
    const got = decodeAll(frames);
    assert.equal(got.length, n);
    assert.deepEqual(
      got.map((r) => r.time),
      Array.from({ length: n }, (_, i) => i),
    );
  });

  void it('refuse records of unknown shapes and append nothing for them', () => {
    const out: TimedEvent[] = [];
    assert.equal(decodeStreamRecord([1, 7, 2], out), false);
    assert.equal(decodeStreamRecord([1, 3, Buffer.alloc(27)], out), false, 'a torn block');
    const badKind = Buffer.alloc(28);
    badKind.writeInt32LE(9, 8);
    assert.equal(decodeStreamRecord([1, 3, badKind], out), false, 'an unknown kind');
    assert.equal(decodeStreamRecord(['x', 3, Buffer.alloc(28)], out), false);
    assert.equal(decodeStreamRecord(null, out), false);
    assert.equal(out.length, 0);
  });
});
