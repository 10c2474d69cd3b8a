/**
 * Plaintext codecs: what goes inside a group message and inside a pairwise
 * envelope. Decoders are strict (no trailing bytes, valid UTF-8 only, known
 * kinds only) and throw {@linkcode DecodeError}.
 *
 * Group content (big-endian):
 *
 * ```text
 * u8 kind (1 = texts) | u64 time (ms) | u16 count (>= 1) | count × (u32 length | UTF-8 text)
 * ```
 *
 * Pairwise content:
 *
 * ```text
 * u8 kind = 1 (sender key)  | u32 epoch | u32 iteration | 32-byte chain key
 * u8 kind = 2 (direct text) | u64 time (ms) | u32 length | UTF-8 text
 * u8 kind = 3 (confirm)     (nothing else)
 * ```
 *
 * @module
 */

import { ByteReader, ByteWriter, DecodeError, fromUtf8, utf8 } from "../core/bytes.ts";
import type { SenderKeyState } from "./sender_keys.ts";

/** Largest single text, in UTF-8 bytes (64 KiB). */
export const MAX_TEXT_BYTES = 65536;

/** Most texts in one group batch (the count is a u16). */
export const MAX_TEXTS_PER_BATCH = 0xffff;

const GROUP_KIND_TEXTS = 1;
const PAIRWISE_KIND_SENDER_KEY = 1;
const PAIRWISE_KIND_DIRECT_TEXT = 2;
const PAIRWISE_KIND_CONFIRM = 3;
const CHAIN_KEY_LENGTH = 32;
const MAX_U32 = 0xffff_ffff;
const LONE_SURROGATE = /\p{Cs}/u;

/** A burst of texts sent together; each is shown as its own message. */
export interface GroupContent {
  /** Sender's clock, milliseconds since the Unix epoch. */
  time: number;
  /** At least one text, each at most {@linkcode MAX_TEXT_BYTES} bytes. */
  texts: string[];
}

/** What one member sends another over their pairwise session. */
export type PairwiseContent =
  | { kind: "sender-key"; state: SenderKeyState }
  | { kind: "direct-text"; time: number; text: string }
  /** "I am here", from a member that does not share its sender key with this one. */
  | { kind: "confirm" };

/**
 * Encodes a batch of texts for a group message. Throws `RangeError` on
 * invalid input (empty batch, oversized text, bad time).
 *
 * @example
 * ```ts
 * const plaintext = encodeGroupContent({ time: Date.now(), texts: ["hi", "all"] });
 * ```
 */
export function encodeGroupContent(content: GroupContent): Uint8Array {
  const { time, texts } = content;
  assertTime(time);
  if (texts.length < 1 || texts.length > MAX_TEXTS_PER_BATCH) {
    throw new RangeError(`a batch must hold 1 to ${MAX_TEXTS_PER_BATCH} texts`);
  }
  const encoded = texts.map(encodeText);
  let size = 1 + 8 + 2;
  for (const text of encoded) size += 4 + text.length;
  const writer = new ByteWriter(size).u8(GROUP_KIND_TEXTS).u64(time).u16(encoded.length);
  for (const text of encoded) writer.bytes32(text);
  return writer.finish();
}

/**
 * Decodes group content strictly. Throws {@linkcode DecodeError}.
 *
 * @example
 * ```ts
 * const { time, texts } = decodeGroupContent(plaintext);
 * ```
 */
export function decodeGroupContent(bytes: Uint8Array): GroupContent {
  const reader = new ByteReader(bytes);
  const kind = reader.u8();
  if (kind !== GROUP_KIND_TEXTS) {
    throw new DecodeError(`group content kind ${kind} is not supported; upgrade securechat`);
  }
  const time = reader.u64();
  const count = reader.u16();
  if (count === 0) throw new DecodeError("group content holds no texts");
  const texts: string[] = [];
  for (let i = 0; i < count; i++) texts.push(readText(reader));
  reader.end();
  return { time, texts };
}

/**
 * Encodes a pairwise plaintext. Throws `RangeError` on invalid input.
 *
 * @example
 * ```ts
 * const plaintext = encodePairwiseContent({ kind: "sender-key", state: outbound.exportState() });
 * ```
 */
export function encodePairwiseContent(content: PairwiseContent): Uint8Array {
  switch (content.kind) {
    case "sender-key": {
      const { epoch, iteration, chainKey } = content.state;
      assertU32(epoch, "epoch");
      assertU32(iteration, "iteration");
      if (chainKey.length !== CHAIN_KEY_LENGTH) throw new RangeError("chain key must be 32 bytes");
      return new ByteWriter(1 + 4 + 4 + CHAIN_KEY_LENGTH)
        .u8(PAIRWISE_KIND_SENDER_KEY).u32(epoch).u32(iteration).raw(chainKey).finish();
    }
    case "direct-text": {
      assertTime(content.time);
      const text = encodeText(content.text);
      return new ByteWriter(1 + 8 + 4 + text.length)
        .u8(PAIRWISE_KIND_DIRECT_TEXT).u64(content.time).bytes32(text).finish();
    }
    case "confirm":
      return Uint8Array.of(PAIRWISE_KIND_CONFIRM);
    default:
      throw new RangeError("unknown pairwise content kind");
  }
}

/**
 * Decodes a pairwise plaintext strictly. Throws {@linkcode DecodeError}.
 *
 * @example
 * ```ts
 * const content = decodePairwiseContent(plaintext);
 * if (content.kind === "sender-key") install(content.state);
 * ```
 */
export function decodePairwiseContent(bytes: Uint8Array): PairwiseContent {
  const reader = new ByteReader(bytes);
  const kind = reader.u8();
  let content: PairwiseContent;
  switch (kind) {
    case PAIRWISE_KIND_SENDER_KEY: {
      const epoch = reader.u32();
      const iteration = reader.u32();
      // A copy, so the caller can wipe the decrypted buffer.
      const chainKey = reader.raw(CHAIN_KEY_LENGTH).slice();
      content = { kind: "sender-key", state: { epoch, iteration, chainKey } };
      break;
    }
    case PAIRWISE_KIND_DIRECT_TEXT: {
      const time = reader.u64();
      content = { kind: "direct-text", time, text: readText(reader) };
      break;
    }
    case PAIRWISE_KIND_CONFIRM:
      content = { kind: "confirm" };
      break;
    default:
      throw new DecodeError(`pairwise content kind ${kind} is not supported; upgrade securechat`);
  }
  reader.end();
  return content;
}

function encodeText(text: string): Uint8Array {
  // The encoder would silently turn lone surrogates into U+FFFD; refuse instead.
  if (LONE_SURROGATE.test(text)) throw new RangeError("text contains a lone UTF-16 surrogate");
  const bytes = utf8(text);
  if (bytes.length > MAX_TEXT_BYTES) {
    throw new RangeError(`text is ${bytes.length} bytes; the limit is ${MAX_TEXT_BYTES}`);
  }
  return bytes;
}

function readText(reader: ByteReader): string {
  const length = reader.u32();
  if (length > MAX_TEXT_BYTES) {
    throw new DecodeError(`text is ${length} bytes; the limit is ${MAX_TEXT_BYTES}`);
  }
  return fromUtf8(reader.raw(length));
}

function assertTime(time: number): void {
  if (!Number.isSafeInteger(time) || time < 0) {
    throw new RangeError("time must be a non-negative safe integer of milliseconds");
  }
}

function assertU32(value: number, name: string): void {
  if (!Number.isInteger(value) || value < 0 || value > MAX_U32) {
    throw new RangeError(`${name} must be an integer from 0 to ${MAX_U32}`);
  }
}
