/**
 * Length-prefixed framing over a byte stream. TCP delivers bytes in pieces of
 * any size; this module turns those pieces back into whole frames, however
 * they were split or merged, and refuses frames over a limit before
 * buffering them.
 *
 * securechat uses it twice: 2-byte prefixes for Noise messages on the socket,
 * and 4-byte prefixes for records inside the decrypted transport stream.
 *
 * @module
 */

import { uninitializedBytes } from "../core/runtime.ts";

/**
 * A plain Uint8Array of `length` bytes whose memory is not zeroed: frames are
 * filled from the stream before anyone reads them.
 */
const uninitialized = (length: number) => uninitializedBytes(length);

const NO_BYTES = new Uint8Array(0);

/** Raised when a frame's declared length exceeds the decoder's limit. */
export class FrameTooLargeError extends Error {
  /** The length the frame's prefix declared. */
  readonly length: number;
  /** The decoder's limit. */
  readonly limit: number;

  /**
   * @example
   * ```ts
   * new FrameTooLargeError(70000, 65535);
   * ```
   */
  constructor(length: number, limit: number) {
    super(`frame of ${length} bytes exceeds the limit of ${limit} bytes`);
    this.name = "FrameTooLargeError";
    this.length = length;
    this.limit = limit;
  }
}

/** Options for {@linkcode FrameDecoder}. */
export interface FrameDecoderOptions {
  /** Size of the big-endian length prefix in bytes. */
  prefixBytes: 2 | 4;
  /** Largest frame body accepted; larger declared lengths throw {@linkcode FrameTooLargeError}. */
  maxFrameBytes: number;
}

/**
 * Reassembles length-prefixed frames from arbitrary chunks.
 *
 * @example
 * ```ts
 * const decoder = new FrameDecoder({ prefixBytes: 2, maxFrameBytes: 65535 });
 * for (const frame of decoder.push(chunk)) handle(frame);
 * ```
 */
export class FrameDecoder {
  #prefixBytes: 2 | 4;
  #maxFrameBytes: number;
  /** A length prefix split across chunks, as far as it has arrived (made when first needed). */
  #prefix: Uint8Array | undefined;
  #prefixFill = 0;
  /** The frame being assembled across chunks: its declared length and the bytes so far. */
  #frameLength = -1;
  #frame: Uint8Array = NO_BYTES;
  #frameFill = 0;

  /** @example `new FrameDecoder({ prefixBytes: 4, maxFrameBytes: 1 << 20 })` */
  constructor(options: FrameDecoderOptions) {
    this.#prefixBytes = options.prefixBytes;
    this.#maxFrameBytes = options.maxFrameBytes;
  }

  /** Bytes received but not yet returned as frames. @example `decoder.buffered` */
  get buffered(): number {
    return this.#prefixFill + (this.#frameLength >= 0 ? this.#prefixBytes + this.#frameFill : 0);
  }

  /**
   * Adds a chunk and returns every frame it completes, in order. Returned
   * frames may be views into `chunk`; copy them before keeping them past the
   * next call if the caller reuses the chunk's memory. The decoder itself
   * never keeps a view into `chunk`.
   *
   * @example
   * ```ts
   * const frames = decoder.push(new Uint8Array([0, 2, 104, 105]));
   * ```
   */
  push(chunk: Uint8Array): Uint8Array[] {
    const frames: Uint8Array[] = [];
    const prefixBytes = this.#prefixBytes;
    let offset = 0;
    while (offset < chunk.length) {
      if (this.#frameLength >= 0) {
        offset = this.#fill(chunk, offset);
        if (this.#frameFill === this.#frameLength) frames.push(this.#finishFrame());
        continue;
      }
      if (this.#prefixFill > 0 || chunk.length - offset < prefixBytes) {
        // Idle connections are the common case: their decoders hold no buffer at all.
        const prefix = this.#prefix ??= new Uint8Array(4);
        while (this.#prefixFill < prefixBytes && offset < chunk.length) {
          prefix[this.#prefixFill++] = chunk[offset++];
        }
        if (this.#prefixFill < prefixBytes) break;
        this.#prefixFill = 0;
        const length = this.#readLength(prefix, 0);
        if (length === 0) frames.push(new Uint8Array(0));
        else this.#startFrame(length, chunk.length - offset);
        continue;
      }
      // Fast path: a whole frame inside the chunk is returned as a view, without copying.
      const length = this.#readLength(chunk, offset);
      const end = offset + prefixBytes + length;
      if (end <= chunk.length) {
        frames.push(chunk.subarray(offset + prefixBytes, end));
        offset = end;
        continue;
      }
      offset += prefixBytes;
      this.#startFrame(length, chunk.length - offset);
    }
    return frames;
  }

  #readLength(bytes: Uint8Array, offset: number): number {
    const length = this.#prefixBytes === 2
      ? (bytes[offset] << 8) | bytes[offset + 1]
      : ((bytes[offset] << 24) >>> 0) + (bytes[offset + 1] << 16) + (bytes[offset + 2] << 8) +
        bytes[offset + 3];
    if (length > this.#maxFrameBytes) throw new FrameTooLargeError(length, this.#maxFrameBytes);
    return length;
  }

  #startFrame(length: number, available: number): void {
    this.#frameLength = length;
    this.#frameFill = 0;
    // Sized to what has arrived (doubled), not to the declared length: a peer that sends
    // only a length prefix must not make us hold the whole frame's memory.
    this.#frame = uninitialized(Math.min(length, Math.max(2 * available, 1024)));
  }

  /** Copies what `chunk` holds of the current frame; returns the new offset. */
  #fill(chunk: Uint8Array, offset: number): number {
    const take = Math.min(this.#frameLength - this.#frameFill, chunk.length - offset);
    const needed = this.#frameFill + take;
    if (needed > this.#frame.length) {
      const grown = uninitialized(
        Math.min(this.#frameLength, Math.max(needed, 2 * this.#frame.length)),
      );
      grown.set(this.#frame.subarray(0, this.#frameFill));
      this.#frame = grown;
    }
    this.#frame.set(chunk.subarray(offset, offset + take), this.#frameFill);
    this.#frameFill = needed;
    return offset + take;
  }

  #finishFrame(): Uint8Array {
    const frame = this.#frame;
    this.#frame = NO_BYTES;
    this.#frameLength = -1;
    this.#frameFill = 0;
    return frame;
  }
}

/**
 * Prepends a big-endian length prefix to `body`.
 *
 * @example
 * ```ts
 * encodeFrame(new Uint8Array([104, 105]), 2); // Uint8Array [0, 2, 104, 105]
 * ```
 */
export function encodeFrame(body: Uint8Array, prefixBytes: 2 | 4): Uint8Array {
  const limit = prefixBytes === 2 ? 0xffff : 0xffffffff;
  if (body.length > limit) throw new FrameTooLargeError(body.length, limit);
  const out = new Uint8Array(prefixBytes + body.length);
  const view = new DataView(out.buffer);
  if (prefixBytes === 2) view.setUint16(0, body.length);
  else view.setUint32(0, body.length);
  out.set(body, prefixBytes);
  return out;
}
