/**
 * The client store's history record: the plaintext sealed in
 * `history.record`, and the checks on what a caller may store. PROTOCOL.md
 * ("Files on disk", the client store) lists the layout.
 *
 * ```text
 * u8 version = 1 || string8 relay fingerprint || string8 room || u64 time ||
 * u64 recorded at || string8 sender fingerprint || string8 nick ||
 * u8 kind (1 group, 2 direct) || u8 direction (1 in, 2 out) ||
 * u8 has sequence || u64 sequence || bytes32 text (UTF-8)
 * ```
 *
 * @module
 */

import { ByteReader, ByteWriter, DecodeError, fromUtf8, utf8 } from "../core/bytes.ts";
import { MAX_TEXT_BYTES } from "../e2e/content.ts";

/** Version byte of a history record. */
const RECORD_VERSION = 1;

/** One message as the client keeps it. */
export interface HistoryEntry {
  /** Fingerprint of the relay it went through. */
  relay: string;
  room: string;
  /** The message's time (ms since the epoch): the sender's clock. */
  time: number;
  /** Fingerprint of the member who sent it (ours for an outgoing one). */
  sender: string;
  /** The nick it was sent under. */
  nick: string;
  text: string;
  /** To the room, or to one member. */
  kind: "group" | "direct";
  direction: "in" | "out";
  /** The relay's sequence, when the relay stored it. */
  seq?: number;
}

/** A history entry as read back. */
export interface HistoryRow extends HistoryEntry {
  /** Row id: the order rows were recorded in. */
  id: number;
  /** When this client recorded it (ms; never goes backwards within a room). */
  recordedAt: number;
}

/**
 * A caller broke the local store's rules (a name too long, a bad time):
 * nothing was stored.
 *
 * @example
 * ```ts
 * throw new LocalStoreInputError("room must be 1 to 255 bytes of UTF-8");
 * ```
 */
export class LocalStoreInputError extends Error {
  /** @example `new LocalStoreInputError("time must be a whole number of ms")` */
  constructor(message: string) {
    super(message);
    this.name = "LocalStoreInputError";
  }
}

/**
 * Checks a relay fingerprint, room, nick or state name: 1 to 255 bytes of
 * well-formed UTF-8.
 *
 * @example
 * ```ts
 * checkName("ops", "room");
 * ```
 */
export function checkName(value: string, what: string): string {
  if (typeof value !== "string" || !value.isWellFormed()) {
    throw new LocalStoreInputError(`${what} must be a well-formed string`);
  }
  const length = utf8(value).length;
  if (length < 1 || length > 255) {
    throw new LocalStoreInputError(`${what} must be 1 to 255 bytes of UTF-8`);
  }
  return value;
}

function checkCount(value: number, what: string): number {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new LocalStoreInputError(`${what} must be a whole number from 0 to 2^53 - 1`);
  }
  return value;
}

/**
 * Encodes a history record (checking every field).
 *
 * @example
 * ```ts
 * const plaintext = encodeRecord(entry, Date.now());
 * ```
 */
export function encodeRecord(entry: HistoryEntry, recordedAt: number): Uint8Array {
  checkName(entry.relay, "relay");
  checkName(entry.room, "room");
  checkName(entry.sender, "sender");
  checkName(entry.nick, "nick");
  checkCount(entry.time, "time");
  checkCount(recordedAt, "recorded time");
  if (entry.seq !== undefined) checkCount(entry.seq, "sequence");
  if (entry.kind !== "group" && entry.kind !== "direct") {
    throw new LocalStoreInputError("kind must be group or direct");
  }
  if (entry.direction !== "in" && entry.direction !== "out") {
    throw new LocalStoreInputError("direction must be in or out");
  }
  if (typeof entry.text !== "string" || !entry.text.isWellFormed()) {
    throw new LocalStoreInputError("text must be a well-formed string");
  }
  const text = utf8(entry.text);
  if (text.length > MAX_TEXT_BYTES) {
    throw new LocalStoreInputError(`text must be at most ${MAX_TEXT_BYTES} bytes of UTF-8`);
  }
  return new ByteWriter(128 + text.length)
    .u8(RECORD_VERSION)
    .string8(entry.relay)
    .string8(entry.room)
    .u64(entry.time)
    .u64(recordedAt)
    .string8(entry.sender)
    .string8(entry.nick)
    .u8(entry.kind === "group" ? 1 : 2)
    .u8(entry.direction === "in" ? 1 : 2)
    .u8(entry.seq === undefined ? 0 : 1)
    .u64(entry.seq ?? 0)
    .bytes32(text)
    .finish()
    .slice();
}

/**
 * Decodes a history record; throws {@linkcode DecodeError} on anything
 * malformed.
 *
 * @example
 * ```ts
 * const row = { id, ...decodeRecord(plaintext) };
 * ```
 */
export function decodeRecord(bytes: Uint8Array): Omit<HistoryRow, "id"> {
  const reader = new ByteReader(bytes);
  const version = reader.u8();
  if (version !== RECORD_VERSION) {
    throw new DecodeError(`unknown history record version ${version}`);
  }
  const relay = reader.string8();
  const room = reader.string8();
  const time = reader.u64();
  const recordedAt = reader.u64();
  const sender = reader.string8();
  const nick = reader.string8();
  const kind = reader.u8();
  const direction = reader.u8();
  const hasSeq = reader.u8();
  const seq = reader.u64();
  const text = fromUtf8(reader.bytes32());
  reader.end();
  if (kind !== 1 && kind !== 2) throw new DecodeError("bad history kind");
  if (direction !== 1 && direction !== 2) throw new DecodeError("bad history direction");
  if (hasSeq > 1) throw new DecodeError("bad history sequence flag");
  const row: Omit<HistoryRow, "id"> = {
    relay,
    room,
    time,
    recordedAt,
    sender,
    nick,
    text,
    kind: kind === 1 ? "group" : "direct",
    direction: direction === 1 ? "in" : "out",
  };
  if (hasSeq === 1) row.seq = seq;
  return row;
}
