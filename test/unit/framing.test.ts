import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { HqError } from '../../src/common/errors.js';
import { FrameDecoder, MAX_FRAME_BYTES, encodeFrame } from '../../src/transport/framing.js';

function header(size: number): Buffer {
  const h = Buffer.alloc(4);
  h.writeUInt32BE(size, 0);
  return h;
}

function assertProtocolError(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof HqError);
    assert.equal(e.code, 'HQ_PROTOCOL');
    assert.match(e.message, message);
    return true;
  });
}

const messages: unknown[] = [
  { op: 'job-list', reqId: 1 },
  { op: 'submit', reqId: 2, name: 'ünïcødé ✓', array: { ids: [{ start: 0, count: 3, step: 1 }] } },
  { nested: { deep: [1, -2, 3.5, null, true, 'x'.repeat(1000)] }, big: 2 ** 40 },
  [],
  'just a string',
  0,
];

void describe('encodeFrame', () => {
  void it('writes a 4-byte big-endian length followed by the body', () => {
    const frame = encodeFrame({ a: 1 });
    assert.equal(frame.readUInt32BE(0), frame.length - 4);
    assert.ok(frame.length > 4);
  });
});

void describe('FrameDecoder', () => {
  void it('decodes what encodeFrame wrote', () => {
    for (const m of messages) {
      assert.deepEqual(new FrameDecoder().push(encodeFrame(m)), [m]);
    }
  });

  void it('decodes many frames arriving in one chunk, in order', () => {
    const decoder = new FrameDecoder();
    const chunk = Buffer.concat(messages.map((m) => encodeFrame(m)));
    assert.deepEqual(decoder.push(chunk), messages);
    assert.equal(decoder.pendingBytes(), 0);
  });

  void it('reassembles frames split at every possible byte boundary', () => {
    const stream = Buffer.concat(messages.map((m) => encodeFrame(m)));
    for (const cut of [1, 2, 3, 4, 5, 7, 13, stream.length - 1]) {
      const decoder = new FrameDecoder();
      const out = [...decoder.push(stream.subarray(0, cut)), ...decoder.push(stream.subarray(cut))];
      assert.deepEqual(out, messages, `cut at ${cut}`);
    }
  });

  void it('reassembles a stream fed one byte at a time', () => {
    const stream = Buffer.concat(messages.map((m) => encodeFrame(m)));
    const decoder = new FrameDecoder();
    const out: unknown[] = [];
    for (let i = 0; i < stream.length; i++) {
      out.push(...decoder.push(stream.subarray(i, i + 1)));
    }
    assert.deepEqual(out, messages);
    assert.equal(decoder.pendingBytes(), 0);
  });

  void it('keeps an incomplete frame pending without decoding it', () => {
    const decoder = new FrameDecoder();
    const frame = encodeFrame({ op: 'x', data: 'y'.repeat(100) });
    assert.deepEqual(decoder.push(frame.subarray(0, 50)), []);
    assert.equal(decoder.pendingBytes(), 50);
    // A complete frame followed by the start of the next one.
    const both = Buffer.concat([frame.subarray(50), frame.subarray(0, 3)]);
    assert.deepEqual(decoder.push(both), [{ op: 'x', data: 'y'.repeat(100) }]);
    assert.equal(decoder.pendingBytes(), 3);
  });

  void it('refuses an oversize frame from its header alone', () => {
    for (const size of [MAX_FRAME_BYTES + 1, 0xffffffff]) {
      const decoder = new FrameDecoder();
      assertProtocolError(() => decoder.push(header(size)), /exceeds the limit/);
    }
    // Even behind a valid frame in the same chunk.
    const decoder = new FrameDecoder();
    assertProtocolError(
      () => decoder.push(Buffer.concat([encodeFrame({ ok: 1 }), header(0xffffffff)])),
      /exceeds the limit/,
    );
  });

  void it('accepts a header of exactly the limit and waits for the body', () => {
    const decoder = new FrameDecoder();
    assert.deepEqual(decoder.push(Buffer.concat([header(MAX_FRAME_BYTES), Buffer.alloc(10)])), []);
    assert.equal(decoder.pendingBytes(), 14);
  });

  void it('refuses a body that is not valid msgpack', () => {
    const bodies: Buffer[] = [
      Buffer.from([0xa4, 0x61]), // a string announcing 4 bytes, with 1
      Buffer.from([0x01, 0x02, 0x03]), // a value followed by more bytes
      Buffer.from([0x91]), // an array announcing one element, with none
      Buffer.alloc(0), // an empty body
    ];
    for (const body of bodies) {
      const decoder = new FrameDecoder();
      assertProtocolError(
        () => decoder.push(Buffer.concat([header(body.length), body])),
        /not valid msgpack/,
      );
    }
  });

  void it('refuses the reserved msgpack byte 0xc1', () => {
    const decoder = new FrameDecoder();
    assertProtocolError(
      () => decoder.push(Buffer.concat([header(1), Buffer.from([0xc1])])),
      /not valid msgpack/,
    );
  });
});

void describe('FrameDecoder with a large frame in many chunks', () => {
  void it('joins the chunks once and decodes the frame when its last byte arrives', () => {
    const big = { op: 'x', data: 'a'.repeat(3_000_000) };
    const frame = Buffer.concat([encodeFrame(big), encodeFrame({ op: 'after' })]);
    const d = new FrameDecoder();
    const out: unknown[] = [];
    for (let i = 0; i < frame.length; i += 65_536) {
      out.push(...d.push(frame.subarray(i, Math.min(frame.length, i + 65_536))));
    }
    assert.deepEqual(out, [big, { op: 'after' }]);
    assert.equal(d.pendingBytes(), 0);
  });
});
