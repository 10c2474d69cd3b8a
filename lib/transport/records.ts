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
  welcome: 0x81,
  memberJoined: 0x82,
  memberLeft: 0x83,
  deliver: 0x84,
  directFrom: 0x85,
  ack: 0x86,
  error: 0x87,
  directFailed: 0x88,
} as const;

/** Why the relay could not deliver a `direct` record (the `directFailed` reason byte). */
export const DirectFailure = {
  /** No member with that id is in the sender's room (it left, or never was). */
  noSuchMember: 1,
  /** The id is the sender's own. */
  self: 2,
} as const;

/** A room member as the relay describes it to the others. */
export interface MemberEntry {
  /** Relay-assigned id, unique for the relay's lifetime. */
  memberId: number;
  /** Ed25519 identity key the member proved in its handshake. */
  identityPublicKey: Uint8Array;
  /** The member's signed announcement, forwarded untouched. */
  announcement: Uint8Array;
  /** PROVISIONAL: whether it is connected now (durable rooms list offline members too). */
  online?: boolean;
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
} as const;

/** Every record, as a discriminated union on `type`. */
export type RelayRecord =
  | { type: "join"; announcement: Uint8Array }
  | { type: "publish"; id: number; message: Uint8Array }
  | { type: "direct"; to: number; envelope: Uint8Array }
  | { type: "welcome"; memberId: number; members: MemberEntry[]; durable?: boolean; head?: number }
  | { type: "memberJoined"; member: MemberEntry }
  | { type: "memberLeft"; memberId: number }
  | { type: "deliver"; from: number; message: Uint8Array; seq?: number }
  | { type: "directFrom"; from: number; envelope: Uint8Array }
  | {
    type: "ack";
    id: number;
    recipients?: number;
    seq?: number;
    online?: number;
    stored?: number;
    refused?: number;
  }
  | { type: "error"; code: number; message: string }
  | { type: "directFailed"; to: number; reason: number }
  // PROVISIONAL (client2 branch): durable-room records until relay2's records.ts lands.
  | { type: "memberOnline"; member: MemberEntry }
  | { type: "memberOffline"; memberId: number; reason: number }
  | { type: "storedEnvelope"; seq: number; from: number; envelope: Uint8Array }
  | { type: "gap"; first: number; last: number; reason: number }
  | { type: "caughtUp"; seq: number }
  | { type: "renamed"; member: MemberEntry }
  | { type: "rename"; announcement: Uint8Array }
  | {
    type: "prekeys";
    id: number;
    memberId: number;
    signedPrekey: Uint8Array;
    oneTimePrekey: Uint8Array;
  }
  | { type: "read"; id: number; seq: number }
  | { type: "prekeyCount"; count: number }
  | { type: "acknowledge"; seq: number }
  | { type: "putPrekeys"; signedPrekey: Uint8Array; oneTimePrekeys: Uint8Array[] }
  | { type: "getPrekeys"; id: number; memberId: number }
  | { type: "storeFor"; id: number; to: number; envelope: Uint8Array }
  | { type: "leave" }
  | { type: "watchRead"; id: number; seq: number };

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
  writer.u32(member.memberId).raw(member.identityPublicKey).bytes16(member.announcement);
}

function readMember(reader: ByteReader): MemberEntry {
  return {
    memberId: reader.u32(),
    identityPublicKey: reader.raw(32),
    announcement: reader.bytes16(),
  };
}

/**
 * Encodes a record to bytes.
 *
 * @example
 * ```ts
 * const bytes = encodeRecord({ type: "ack", id: 7, recipients: 2 });
 * ```
 */
export function encodeRecord(record: RelayRecord): Uint8Array {
  const writer = new ByteWriter(16);
  writer.u8(RecordType[record.type as keyof typeof RecordType]); // PROVISIONAL cast (client2)
  switch (record.type) {
    case "join":
      writer.bytes16(record.announcement);
      break;
    case "publish":
      writer.u32(record.id).raw(record.message);
      break;
    case "direct":
      writer.u32(record.to).raw(record.envelope);
      break;
    case "welcome":
      writer.u32(record.memberId).u16(record.members.length);
      for (const member of record.members) writeMember(writer, member);
      break;
    case "memberJoined":
      writeMember(writer, record.member);
      break;
    case "memberLeft":
      writer.u32(record.memberId);
      break;
    case "deliver":
      writer.u32(record.from).raw(record.message);
      break;
    case "directFrom":
      writer.u32(record.from).raw(record.envelope);
      break;
    case "ack":
      writer.u32(record.id).u32(record.recipients ?? record.online ?? 0); // PROVISIONAL (client2)
      break;
    case "error":
      writer.u16(record.code).bytes8(utf8Prefix(record.message, 0xff));
      break;
    case "directFailed":
      writer.u32(record.to).u8(record.reason);
      break;
  }
  return writer.finish();
}

/**
 * Decodes a record; throws {@linkcode DecodeError} on anything malformed,
 * including unknown types and trailing bytes.
 *
 * @example
 * ```ts
 * const record = decodeRecord(bytes);
 * if (record.type === "deliver") console.log(record.from);
 * ```
 */
export function decodeRecord(bytes: Uint8Array): RelayRecord {
  const reader = new ByteReader(bytes);
  const type = reader.u8();
  let record: RelayRecord;
  switch (type) {
    case RecordType.join:
      record = { type: "join", announcement: reader.bytes16() };
      break;
    case RecordType.publish:
      record = { type: "publish", id: reader.u32(), message: reader.rest() };
      break;
    case RecordType.direct:
      record = { type: "direct", to: reader.u32(), envelope: reader.rest() };
      break;
    case RecordType.welcome: {
      const memberId = reader.u32();
      const count = reader.u16();
      const members: MemberEntry[] = [];
      for (let i = 0; i < count; i++) members.push(readMember(reader));
      record = { type: "welcome", memberId, members };
      break;
    }
    case RecordType.memberJoined:
      record = { type: "memberJoined", member: readMember(reader) };
      break;
    case RecordType.memberLeft:
      record = { type: "memberLeft", memberId: reader.u32() };
      break;
    case RecordType.deliver:
      record = { type: "deliver", from: reader.u32(), message: reader.rest() };
      break;
    case RecordType.directFrom:
      record = { type: "directFrom", from: reader.u32(), envelope: reader.rest() };
      break;
    case RecordType.ack:
      record = { type: "ack", id: reader.u32(), recipients: reader.u32() };
      break;
    case RecordType.error:
      record = { type: "error", code: reader.u16(), message: reader.string8() };
      break;
    case RecordType.directFailed:
      record = { type: "directFailed", to: reader.u32(), reason: reader.u8() };
      break;
    default:
      throw new DecodeError(`unknown record type 0x${type.toString(16).padStart(2, "0")}`);
  }
  reader.end();
  return record;
}
