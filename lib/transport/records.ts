/**
 * The records that clients and the relay exchange inside the encrypted
 * transport. Every record is `u8 type || body`; PROTOCOL.md lists each
 * layout. The relay reads only what it needs to route: end-to-end
 * ciphertext and envelopes pass through as opaque bytes.
 *
 * @module
 */

import { ByteReader, ByteWriter, DecodeError, utf8 } from "../core/bytes.ts";

/** Record type bytes. Client-to-relay types are below 0x80, relay-to-client at or above. */
export const RecordType = {
  join: 0x01,
  publish: 0x02,
  direct: 0x03,
  storeFor: 0x04,
  getPrekeys: 0x05,
  putPrekeys: 0x06,
  acknowledge: 0x07,
  leave: 0x08,
  rename: 0x09,
  watchRead: 0x0a,
  welcome: 0x81,
  memberOnline: 0x82,
  memberOffline: 0x83,
  deliver: 0x84,
  directFrom: 0x85,
  ack: 0x86,
  error: 0x87,
  directFailed: 0x88,
  prekeys: 0x89,
  prekeyCount: 0x8a,
  storedEnvelope: 0x8b,
  caughtUp: 0x8c,
  gap: 0x8d,
  renamed: 0x8e,
  read: 0x8f,
} as const;

/** Why the relay could not deliver a `direct` record (the `directFailed` reason byte). */
export const DirectFailure = {
  /** No member with that id is in the sender's room (it left, or never was). */
  noSuchMember: 1,
  /** The id is the sender's own. */
  self: 2,
} as const;

/** Why a member is no longer online (the `memberOffline` reason byte). */
export const OfflineReason = {
  /** Its connection ended; in a durable room it stays on the roster and messages wait for it. */
  wentOffline: 0,
  /** It left the room (a `leave`, or, in an ephemeral room, its connection ended). */
  left: 1,
  /** The relay took it off the roster. */
  removed: 2,
} as const;

/** Why stored items are missing (the `gap` reason byte). */
export const GapReason = {
  /** Deleted by the relay's retention time before the member acknowledged them. */
  expired: 1,
  /** Never kept for the member: its mailbox held the most items the relay keeps per member. */
  mailboxFull: 2,
} as const;

/** Bits of the welcome's `flags` byte; the others must be zero. */
export const WelcomeFlag = {
  /** The room is durable: a roster, stored messages, sequence numbers. */
  durable: 0x01,
} as const;

/** A roster entry: a room member as the relay describes it to the others. */
export interface MemberEntry {
  /** Relay-assigned id, stable for the membership (durable rooms) or the connection (ephemeral). */
  memberId: number;
  /** Ed25519 identity key the member proved in its handshake. */
  identityPublicKey: Uint8Array;
  /** Whether it is connected now (in an ephemeral room, always). */
  online: boolean;
  /** The member's latest signed announcement, forwarded untouched. */
  announcement: Uint8Array;
}

/** Error codes the relay sends before closing a connection. */
export const RelayErrorCode = {
  malformed: 1,
  notAllowed: 2,
  nickTaken: 3,
  badAnnouncement: 4,
  alreadyJoined: 5,
  notJoined: 6,
  tooLarge: 7,
  overloaded: 8,
  shuttingDown: 9,
  /** The same member connected again; this (older) connection is closed. */
  replaced: 10,
  /** The relay's store failed (disk full, I/O error): nothing of the request was kept. */
  storageFailed: 11,
  /** A prekey that is not signed by the connection's identity, or not a prekey. */
  badPrekey: 12,
} as const;

/** Every record, as a discriminated union on `type`. */
export type RelayRecord =
  | { type: "join"; announcement: Uint8Array }
  | { type: "publish"; id: number; message: Uint8Array }
  | { type: "direct"; to: number; envelope: Uint8Array }
  | { type: "storeFor"; id: number; to: number; envelope: Uint8Array }
  | { type: "getPrekeys"; id: number; memberId: number }
  | { type: "putPrekeys"; signedPrekey: Uint8Array; oneTimePrekeys: Uint8Array[] }
  | { type: "acknowledge"; seq: number }
  | { type: "leave" }
  | { type: "rename"; announcement: Uint8Array }
  | { type: "watchRead"; id: number; seq: number }
  | { type: "welcome"; memberId: number; durable: boolean; head: number; members: MemberEntry[] }
  | { type: "memberOnline"; member: MemberEntry }
  | { type: "memberOffline"; memberId: number; reason: number }
  | { type: "deliver"; seq: number; from: number; message: Uint8Array }
  | { type: "directFrom"; from: number; envelope: Uint8Array }
  | { type: "ack"; id: number; seq: number; online: number; stored: number; refused: number }
  | { type: "error"; code: number; message: string }
  | { type: "directFailed"; to: number; reason: number }
  | {
    type: "prekeys";
    id: number;
    memberId: number;
    signedPrekey: Uint8Array;
    oneTimePrekey: Uint8Array;
  }
  | { type: "prekeyCount"; count: number }
  | { type: "storedEnvelope"; seq: number; from: number; envelope: Uint8Array }
  | { type: "caughtUp"; seq: number }
  | { type: "gap"; first: number; last: number; reason: number }
  | { type: "renamed"; member: MemberEntry }
  | { type: "read"; id: number; seq: number };

/** The longest prefix of `text` whose UTF-8 fits in `limit` bytes, cut between characters. */
function utf8Prefix(text: string, limit: number): Uint8Array {
  // Slicing UTF-16 units is not enough: 200 of them can take 600 bytes, over a u8 length.
  const bytes = utf8(text);
  if (bytes.length <= limit) return bytes;
  let end = limit;
  while (end > 0 && (bytes[end] & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end);
}

function writeMember(writer: ByteWriter, member: MemberEntry): void {
  writer.u32(member.memberId).raw(member.identityPublicKey).u8(member.online ? 1 : 0)
    .bytes16(member.announcement);
}

function readMember(reader: ByteReader): MemberEntry {
  const memberId = reader.u32();
  const identityPublicKey = reader.raw(32);
  const online = readFlag(reader.u8(), "a roster entry's online byte");
  return { memberId, identityPublicKey, online, announcement: reader.bytes16() };
}

function readFlag(value: number, what: string): boolean {
  if (value > 1) throw new DecodeError(`${what} must be 0 or 1, got ${value}`);
  return value === 1;
}

function readReason(value: number, allowed: Record<string, number>, what: string): number {
  if (!Object.values(allowed).includes(value)) {
    throw new DecodeError(`unknown ${what} reason ${value}`);
  }
  return value;
}

/**
 * Encodes a record to bytes.
 *
 * @example
 * ```ts
 * const bytes = encodeRecord({ type: "ack", id: 7, seq: 41, online: 2, stored: 1, refused: 0 });
 * ```
 */
export function encodeRecord(record: RelayRecord): Uint8Array {
  const writer = new ByteWriter(16);
  writer.u8(RecordType[record.type]);
  switch (record.type) {
    case "join":
    case "rename":
      writer.bytes16(record.announcement);
      break;
    case "publish":
      writer.u32(record.id).raw(record.message);
      break;
    case "direct":
      writer.u32(record.to).raw(record.envelope);
      break;
    case "storeFor":
      writer.u32(record.id).u32(record.to).raw(record.envelope);
      break;
    case "getPrekeys":
      writer.u32(record.id).u32(record.memberId);
      break;
    case "putPrekeys":
      if (record.oneTimePrekeys.length > 0xffff) {
        throw new RangeError("a put-prekeys record holds at most 65535 one-time prekeys");
      }
      writer.bytes16(record.signedPrekey).u16(record.oneTimePrekeys.length);
      for (const prekey of record.oneTimePrekeys) writer.bytes16(prekey);
      break;
    case "acknowledge":
    case "caughtUp":
      writer.u64(record.seq);
      break;
    case "leave":
      break;
    case "watchRead":
    case "read":
      writer.u32(record.id).u64(record.seq);
      break;
    case "welcome":
      writer.u32(record.memberId).u8(record.durable ? WelcomeFlag.durable : 0).u64(record.head)
        .u16(record.members.length);
      for (const member of record.members) writeMember(writer, member);
      break;
    case "memberOnline":
    case "renamed":
      writeMember(writer, record.member);
      break;
    case "memberOffline":
      writer.u32(record.memberId).u8(record.reason);
      break;
    case "deliver":
      writer.u64(record.seq).u32(record.from).raw(record.message);
      break;
    case "directFrom":
      writer.u32(record.from).raw(record.envelope);
      break;
    case "ack":
      writer.u32(record.id).u64(record.seq).u32(record.online).u32(record.stored)
        .u32(record.refused);
      break;
    case "error":
      writer.u16(record.code).bytes8(utf8Prefix(record.message, 0xff));
      break;
    case "directFailed":
      writer.u32(record.to).u8(record.reason);
      break;
    case "prekeys":
      writer.u32(record.id).u32(record.memberId).bytes16(record.signedPrekey)
        .bytes16(record.oneTimePrekey);
      break;
    case "prekeyCount":
      writer.u32(record.count);
      break;
    case "storedEnvelope":
      writer.u64(record.seq).u32(record.from).raw(record.envelope);
      break;
    case "gap":
      writer.u64(record.first).u64(record.last).u8(record.reason);
      break;
  }
  return writer.finish();
}

/**
 * Decodes a record; throws {@linkcode DecodeError} on anything malformed:
 * unknown types, short bodies, trailing bytes, a flag or reason byte with a
 * value the protocol does not define, a gap whose first sequence is above
 * its last, and sequences beyond 2^53 − 1.
 *
 * @example
 * ```ts
 * const record = decodeRecord(bytes);
 * if (record.type === "deliver") console.log(record.seq, record.from);
 * ```
 */
export function decodeRecord(bytes: Uint8Array): RelayRecord {
  const reader = new ByteReader(bytes);
  const type = reader.u8();
  const record = decodeBody(type, reader);
  reader.end();
  return record;
}

function decodeBody(type: number, reader: ByteReader): RelayRecord {
  switch (type) {
    case RecordType.join:
      return { type: "join", announcement: reader.bytes16() };
    case RecordType.publish:
      return { type: "publish", id: reader.u32(), message: reader.rest() };
    case RecordType.direct:
      return { type: "direct", to: reader.u32(), envelope: reader.rest() };
    case RecordType.storeFor:
      return { type: "storeFor", id: reader.u32(), to: reader.u32(), envelope: reader.rest() };
    case RecordType.getPrekeys:
      return { type: "getPrekeys", id: reader.u32(), memberId: reader.u32() };
    case RecordType.putPrekeys: {
      const signedPrekey = reader.bytes16();
      const count = reader.u16();
      const oneTimePrekeys: Uint8Array[] = [];
      for (let i = 0; i < count; i++) oneTimePrekeys.push(reader.bytes16());
      return { type: "putPrekeys", signedPrekey, oneTimePrekeys };
    }
    case RecordType.acknowledge:
      return { type: "acknowledge", seq: reader.u64() };
    case RecordType.leave:
      return { type: "leave" };
    case RecordType.rename:
      return { type: "rename", announcement: reader.bytes16() };
    case RecordType.watchRead:
      return { type: "watchRead", id: reader.u32(), seq: reader.u64() };
    case RecordType.welcome: {
      const memberId = reader.u32();
      const flags = reader.u8();
      if ((flags & ~WelcomeFlag.durable) !== 0) {
        throw new DecodeError(`unknown welcome flags 0x${flags.toString(16).padStart(2, "0")}`);
      }
      const head = reader.u64();
      const count = reader.u16();
      const members: MemberEntry[] = [];
      for (let i = 0; i < count; i++) members.push(readMember(reader));
      return { type: "welcome", memberId, durable: flags === WelcomeFlag.durable, head, members };
    }
    case RecordType.memberOnline:
      return { type: "memberOnline", member: readMember(reader) };
    case RecordType.memberOffline:
      return {
        type: "memberOffline",
        memberId: reader.u32(),
        reason: readReason(reader.u8(), OfflineReason, "member-offline"),
      };
    case RecordType.deliver:
      return { type: "deliver", seq: reader.u64(), from: reader.u32(), message: reader.rest() };
    case RecordType.directFrom:
      return { type: "directFrom", from: reader.u32(), envelope: reader.rest() };
    case RecordType.ack:
      return {
        type: "ack",
        id: reader.u32(),
        seq: reader.u64(),
        online: reader.u32(),
        stored: reader.u32(),
        refused: reader.u32(),
      };
    case RecordType.error:
      return { type: "error", code: reader.u16(), message: reader.string8() };
    case RecordType.directFailed:
      return { type: "directFailed", to: reader.u32(), reason: reader.u8() };
    case RecordType.prekeys:
      return {
        type: "prekeys",
        id: reader.u32(),
        memberId: reader.u32(),
        signedPrekey: reader.bytes16(),
        oneTimePrekey: reader.bytes16(),
      };
    case RecordType.prekeyCount:
      return { type: "prekeyCount", count: reader.u32() };
    case RecordType.storedEnvelope:
      return {
        type: "storedEnvelope",
        seq: reader.u64(),
        from: reader.u32(),
        envelope: reader.rest(),
      };
    case RecordType.caughtUp:
      return { type: "caughtUp", seq: reader.u64() };
    case RecordType.gap: {
      const first = reader.u64();
      const last = reader.u64();
      if (first > last) throw new DecodeError(`a gap from ${first} to ${last} is empty`);
      return { type: "gap", first, last, reason: readReason(reader.u8(), GapReason, "gap") };
    }
    case RecordType.renamed:
      return { type: "renamed", member: readMember(reader) };
    case RecordType.read:
      return { type: "read", id: reader.u32(), seq: reader.u64() };
    default:
      throw new DecodeError(`unknown record type 0x${type.toString(16).padStart(2, "0")}`);
  }
}
