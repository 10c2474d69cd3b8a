/**
 * Byte helpers shared by every securechat module: encodings, constant-time
 * comparison and a small bounds-checked binary reader and writer.
 *
 * The reader never reads past its input: every shortfall throws a
 * {@linkcode DecodeError}, which callers turn into a protocol error.
 *
 * @module
 */

const textEncoder = new TextEncoder();
// ignoreBOM keeps a leading U+FEFF in the text instead of silently dropping it, so decoding is exact.
const strictDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Raised when bytes do not decode as the expected structure. */
export class DecodeError extends Error {
  /**
   * @example
   * ```ts
   * throw new DecodeError("record is truncated");
   * ```
   */
  constructor(message: string) {
    super(message);
    this.name = "DecodeError";
  }
}

/**
 * Encodes a string as UTF-8.
 *
 * @example
 * ```ts
 * utf8("hi"); // Uint8Array [104, 105]
 * ```
 */
export function utf8(text: string): Uint8Array {
  return textEncoder.encode(text);
}

/**
 * Decodes UTF-8 strictly: invalid sequences throw a {@linkcode DecodeError}.
 *
 * @example
 * ```ts
 * fromUtf8(utf8("hi")); // "hi"
 * ```
 */
export function fromUtf8(bytes: Uint8Array): string {
  try {
    return strictDecoder.decode(bytes);
  } catch {
    throw new DecodeError("text is not valid UTF-8");
  }
}

/**
 * Concatenates byte arrays into a new array.
 *
 * @example
 * ```ts
 * concat(new Uint8Array([1]), new Uint8Array([2])); // Uint8Array [1, 2]
 * ```
 */
export function concat(...parts: Uint8Array[]): Uint8Array {
  let length = 0;
  for (const part of parts) length += part.length;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/**
 * Compares two byte arrays in time that depends only on their lengths.
 *
 * @example
 * ```ts
 * constantTimeEqual(new Uint8Array([1]), new Uint8Array([1])); // true
 * ```
 */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

/**
 * Encodes bytes as lowercase hexadecimal.
 *
 * @example
 * ```ts
 * toHex(new Uint8Array([255, 1])); // "ff01"
 * ```
 */
export function toHex(bytes: Uint8Array): string {
  let out = "";
  for (const byte of bytes) out += byte.toString(16).padStart(2, "0");
  return out;
}

/**
 * Decodes hexadecimal (either case); throws {@linkcode DecodeError} on bad input.
 *
 * @example
 * ```ts
 * fromHex("ff01"); // Uint8Array [255, 1]
 * ```
 */
export function fromHex(hex: string): Uint8Array {
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) {
    throw new DecodeError("not a hexadecimal string");
  }
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/**
 * Encodes bytes as standard base64 with padding.
 *
 * @example
 * ```ts
 * toBase64(new Uint8Array([1, 2, 3])); // "AQID"
 * ```
 */
export function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

/**
 * Decodes standard base64 (padding required); throws {@linkcode DecodeError} on bad input.
 *
 * @example
 * ```ts
 * fromBase64("AQID"); // Uint8Array [1, 2, 3]
 * ```
 */
export function fromBase64(text: string): Uint8Array {
  if (text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) {
    throw new DecodeError("not a base64 string");
  }
  const binary = atob(text);
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}

const BASE32_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567";

/**
 * Encodes bytes as unpadded lowercase RFC 4648 base32.
 *
 * @example
 * ```ts
 * toBase32(new Uint8Array([0xff])); // "74"
 * ```
 */
export function toBase32(bytes: Uint8Array): string {
  let out = "";
  let buffer = 0;
  let bits = 0;
  for (const byte of bytes) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32_ALPHABET[(buffer >>> (bits - 5)) & 31];
      bits -= 5;
    }
    buffer &= (1 << bits) - 1;
  }
  if (bits > 0) out += BASE32_ALPHABET[(buffer << (5 - bits)) & 31];
  return out;
}

/**
 * Appends fixed-width big-endian integers and length-prefixed byte strings
 * to a growing buffer.
 *
 * @example
 * ```ts
 * const bytes = new ByteWriter().u8(1).u32(7).bytes16(utf8("room")).finish();
 * ```
 */
export class ByteWriter {
  #buffer: Uint8Array;
  #view: DataView;
  #length = 0;

  /**
   * @example
   * ```ts
   * new ByteWriter(64);
   * ```
   */
  constructor(initialCapacity = 64) {
    this.#buffer = new Uint8Array(initialCapacity);
    this.#view = new DataView(this.#buffer.buffer);
  }

  // Callers must call this before touching #buffer or #view: it may replace both.
  #reserve(extra: number): number {
    const needed = this.#length + extra;
    if (needed > this.#buffer.length) {
      const grown = new Uint8Array(Math.max(needed, this.#buffer.length * 2));
      grown.set(this.#buffer.subarray(0, this.#length));
      this.#buffer = grown;
      this.#view = new DataView(grown.buffer);
    }
    const at = this.#length;
    this.#length = needed;
    return at;
  }

  /** Appends one byte. @example `writer.u8(1)` */
  u8(value: number): this {
    const at = this.#reserve(1);
    this.#view.setUint8(at, value);
    return this;
  }

  /** Appends a big-endian 16-bit integer. @example `writer.u16(513)` */
  u16(value: number): this {
    const at = this.#reserve(2);
    this.#view.setUint16(at, value);
    return this;
  }

  /** Appends a big-endian 32-bit integer. @example `writer.u32(70000)` */
  u32(value: number): this {
    const at = this.#reserve(4);
    this.#view.setUint32(at, value);
    return this;
  }

  /** Appends a big-endian 64-bit integer. @example `writer.u64(Date.now())` */
  u64(value: number | bigint): this {
    const at = this.#reserve(8);
    this.#view.setBigUint64(at, BigInt(value));
    return this;
  }

  /** Appends bytes as they are. @example `writer.raw(publicKey)` */
  raw(bytes: Uint8Array): this {
    const at = this.#reserve(bytes.length);
    this.#buffer.set(bytes, at);
    return this;
  }

  /** Appends bytes behind a one-byte length. @example `writer.bytes8(utf8("nick"))` */
  bytes8(bytes: Uint8Array): this {
    if (bytes.length > 0xff) throw new RangeError("field is longer than 255 bytes");
    return this.u8(bytes.length).raw(bytes);
  }

  /** Appends bytes behind a two-byte length. @example `writer.bytes16(payload)` */
  bytes16(bytes: Uint8Array): this {
    if (bytes.length > 0xffff) throw new RangeError("field is longer than 65535 bytes");
    return this.u16(bytes.length).raw(bytes);
  }

  /** Appends bytes behind a four-byte length. @example `writer.bytes32(message)` */
  bytes32(bytes: Uint8Array): this {
    return this.u32(bytes.length).raw(bytes);
  }

  /** Appends a UTF-8 string behind a one-byte length. @example `writer.string8("alice")` */
  string8(text: string): this {
    return this.bytes8(utf8(text));
  }

  /** Returns the bytes written so far (a view, not a copy). @example `writer.finish()` */
  finish(): Uint8Array {
    return this.#buffer.subarray(0, this.#length);
  }
}

/**
 * Reads what {@linkcode ByteWriter} wrote, throwing {@linkcode DecodeError}
 * instead of reading past the end.
 *
 * @example
 * ```ts
 * const reader = new ByteReader(bytes);
 * const type = reader.u8();
 * const room = reader.string8();
 * reader.end();
 * ```
 */
export class ByteReader {
  #bytes: Uint8Array;
  #view: DataView;
  #offset = 0;

  /** @example `new ByteReader(bytes)` */
  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** Bytes not yet read. @example `reader.remaining` */
  get remaining(): number {
    return this.#bytes.length - this.#offset;
  }

  #take(count: number): number {
    if (count > this.remaining) throw new DecodeError("input is truncated");
    const at = this.#offset;
    this.#offset += count;
    return at;
  }

  /** @example `reader.u8()` */
  u8(): number {
    return this.#view.getUint8(this.#take(1));
  }

  /** @example `reader.u16()` */
  u16(): number {
    return this.#view.getUint16(this.#take(2));
  }

  /** @example `reader.u32()` */
  u32(): number {
    return this.#view.getUint32(this.#take(4));
  }

  /** Reads a 64-bit integer; throws if it exceeds `Number.MAX_SAFE_INTEGER`. @example `reader.u64()` */
  u64(): number {
    const value = this.#view.getBigUint64(this.#take(8));
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new DecodeError("integer is too large");
    return Number(value);
  }

  /** Reads `count` bytes (a view into the input). @example `reader.raw(32)` */
  raw(count: number): Uint8Array {
    const at = this.#take(count);
    return this.#bytes.subarray(at, at + count);
  }

  /** @example `reader.bytes8()` */
  bytes8(): Uint8Array {
    return this.raw(this.u8());
  }

  /** @example `reader.bytes16()` */
  bytes16(): Uint8Array {
    return this.raw(this.u16());
  }

  /** @example `reader.bytes32()` */
  bytes32(): Uint8Array {
    return this.raw(this.u32());
  }

  /** @example `reader.string8()` */
  string8(): string {
    return fromUtf8(this.bytes8());
  }

  /** Returns everything not yet read. @example `reader.rest()` */
  rest(): Uint8Array {
    return this.raw(this.remaining);
  }

  /** Throws unless every byte was read. @example `reader.end()` */
  end(): void {
    if (this.remaining !== 0) throw new DecodeError("input has trailing bytes");
  }
}
