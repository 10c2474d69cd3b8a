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

/** Raised when a frame's declared length exceeds the decoder's limit. */
export class FrameTooLargeError extends Error {
  /**
   * @example
   * ```ts
   * new FrameTooLargeError(70000, 65535);
   * ```
   */
  constructor(length: number, limit: number) {
    super(`frame of ${length} bytes exceeds the limit of ${limit} bytes`);
    this.name = "FrameTooLargeError";
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
  #chunks: Uint8Array[] = [];
  #buffered = 0;

  /** @example `new FrameDecoder({ prefixBytes: 4, maxFrameBytes: 1 << 20 })` */
  constructor(options: FrameDecoderOptions) {
    this.#prefixBytes = options.prefixBytes;
    this.#maxFrameBytes = options.maxFrameBytes;
  }

  /** Bytes received but not yet returned as frames. @example `decoder.buffered` */
  get buffered(): number {
    return this.#buffered;
  }

  /**
   * Adds a chunk and returns every frame it completes, in order. Returned
   * frames may be views into `chunk`; copy them before keeping them past the
   * next call if the caller reuses the chunk's memory.
   *
   * @example
   * ```ts
   * const frames = decoder.push(new Uint8Array([0, 2, 104, 105]));
   * ```
   */
  push(chunk: Uint8Array): Uint8Array[] {
    const frames: Uint8Array[] = [];
    if (chunk.length === 0) return frames;
    if (this.#buffered === 0) {
      // Fast path: parse straight out of the chunk without copying.
      let offset = 0;
      while (chunk.length - offset >= this.#prefixBytes) {
        const length = this.#readLength(chunk, offset);
        const end = offset + this.#prefixBytes + length;
        if (end > chunk.length) break;
        frames.push(chunk.subarray(offset + this.#prefixBytes, end));
        offset = end;
      }
      if (offset < chunk.length) this.#keep(chunk.subarray(offset));
      return frames;
    }
    this.#keep(chunk);
    while (this.#buffered >= this.#prefixBytes) {
      const head = this.#peek(this.#prefixBytes);
      const length = this.#readLength(head, 0);
      if (this.#buffered < this.#prefixBytes + length) break;
      this.#take(this.#prefixBytes);
      frames.push(this.#take(length));
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

  #keep(chunk: Uint8Array): void {
    // Copy: the caller may reuse its buffer, and a kept view would pin it.
    this.#chunks.push(chunk.slice());
    this.#buffered += chunk.length;
    if (this.#buffered >= this.#prefixBytes) this.#readLength(this.#peek(this.#prefixBytes), 0);
  }

  #peek(count: number): Uint8Array {
    if (this.#chunks[0].length >= count) return this.#chunks[0].subarray(0, count);
    const out = new Uint8Array(count);
    let filled = 0;
    for (const chunk of this.#chunks) {
      const part = chunk.subarray(0, count - filled);
      out.set(part, filled);
      filled += part.length;
      if (filled === count) break;
    }
    return out;
  }

  #take(count: number): Uint8Array {
    // An empty frame may complete exactly when the buffer runs dry: there is no chunk to cut.
    if (count === 0) return new Uint8Array(0);
    this.#buffered -= count;
    const first = this.#chunks[0];
    if (first.length === count) {
      this.#chunks.shift();
      return first;
    }
    if (first.length > count) {
      this.#chunks[0] = first.subarray(count);
      return first.subarray(0, count);
    }
    const out = new Uint8Array(count);
    let filled = 0;
    let used = 0;
    while (filled < count) {
      const chunk = this.#chunks[used];
      const part = chunk.subarray(0, count - filled);
      out.set(part, filled);
      filled += part.length;
      if (part.length === chunk.length) used++;
      else this.#chunks[used] = chunk.subarray(part.length);
    }
    // One splice, not a shift per chunk: a frame dripped in byte by byte would cost O(n²).
    this.#chunks.splice(0, used);
    return out;
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
