/**
 * Length-prefixed framing over a byte stream: every frame is a 4-byte big-endian length followed
 * by that many bytes of msgpack. Frames larger than MAX_FRAME_BYTES are refused, so a peer that
 * sends garbage cannot make us allocate unbounded memory.
 */
import { C1, Packr, Unpackr } from 'msgpackr';
import { HqError } from '../common/errors.js';

export const MAX_FRAME_BYTES = 512 * 1024 * 1024;
const HEADER_BYTES = 4;

// Plain maps (not msgpackr records): every connection is independent and messages are decoded
// one by one, so shared record structures would only add state to get wrong.
const packr = new Packr({ useRecords: false, moreTypes: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

export function encodeFrame(message: unknown): Buffer {
  const body = packr.pack(message);
  const frame = Buffer.allocUnsafe(HEADER_BYTES + body.length);
  frame.writeUInt32BE(body.length, 0);
  body.copy(frame, HEADER_BYTES);
  return frame;
}

/**
 * Accumulates chunks and yields decoded frames. Throws HqError('HQ_PROTOCOL') on an oversized
 * frame or a body that is not valid msgpack; the owner of the connection then closes it.
 */
export class FrameDecoder {
  /**
   * Received bytes not decoded yet. A large frame arrives in many chunks: they are only joined
   * once the whole frame is there, so receiving it costs one copy, not one per chunk.
   */
  private chunks: Buffer[] = [];
  private pending = 0;
  /** Total bytes (header included) of the frame in progress, once its header is known; else 0. */
  private needed = 0;

  push(chunk: Buffer): unknown[] {
    this.chunks.push(chunk);
    this.pending += chunk.length;
    if (this.needed > 0 && this.pending < this.needed) {
      return [];
    }
    const buffer =
      this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.pending);
    this.chunks = [];
    this.pending = 0;
    this.needed = 0;
    const out: unknown[] = [];
    let offset = 0;
    while (buffer.length - offset >= HEADER_BYTES) {
      const size = buffer.readUInt32BE(offset);
      if (size > MAX_FRAME_BYTES) {
        throw new HqError('HQ_PROTOCOL', `frame of ${size} bytes exceeds the limit`);
      }
      if (buffer.length - offset - HEADER_BYTES < size) {
        this.needed = HEADER_BYTES + size;
        break;
      }
      const body = buffer.subarray(offset + HEADER_BYTES, offset + HEADER_BYTES + size);
      offset += HEADER_BYTES + size;
      let value: unknown;
      try {
        value = unpackr.unpack(body);
      } catch (e) {
        throw new HqError('HQ_PROTOCOL', 'frame body is not valid msgpack', { cause: e });
      }
      // msgpackr decodes the reserved byte 0xc1 to a marker instead of failing.
      if (value === C1) {
        throw new HqError('HQ_PROTOCOL', 'frame body is not valid msgpack');
      }
      out.push(value);
    }
    if (offset < buffer.length) {
      const rest = buffer.subarray(offset);
      this.chunks.push(rest);
      this.pending = rest.length;
    }
    return out;
  }

  /** Bytes of an incomplete frame still waiting for the rest. */
  pendingBytes(): number {
    return this.pending;
  }
}
