/**
 * What a member keeps of a durable room between connections, and its bytes:
 * its own sender key (epoch, iteration, chain key), which of its epochs each
 * other member holds, the other members' sender keys, and how far into the
 * relay's stored stream it has read. The client stores these bytes encrypted
 * (lib/client/local_store.ts); this module only encodes and decodes them.
 *
 * ```text
 * u8 version = 1
 * u32 own member id
 * u8 has outbound (0/1) [ u32 epoch | u32 iteration | 32 chain key ]
 * u8 rekey due (0/1)
 * u64 last sequence read
 * u32 n, n × member:
 *   u32 member id | 32 identity key | string8 nick | u32 epoch of ours it holds
 *   | u8 has inbound (0/1) [ u32 epoch | u32 iteration | 32 chain key ]
 * ```
 *
 * @module
 */

import { ByteReader, ByteWriter, DecodeError, fromUtf8, utf8 } from "../core/bytes.ts";
import type { SenderKeyState } from "./sender_keys.ts";

const VERSION = 1;
const KEY_LENGTH = 32;

/** One other member as remembered between connections. */
export interface SavedMember {
  memberId: number;
  identityPublicKey: Uint8Array;
  nick: string;
  /** Which of this member's epochs it holds (0: none). */
  heldEpochOfOurs: number;
  /** Its sender key as last held here. */
  inbound?: SenderKeyState;
}

/** A member's state in one durable room. */
export interface RoomState {
  /** This member's roster id in the room. */
  memberId: number;
  /** This member's sender key. */
  outbound?: SenderKeyState;
  /** A member who held the current key left: a new epoch before the next message. */
  rekeyDue: boolean;
  /** The highest relay sequence read and kept. */
  lastSeq: number;
  members: SavedMember[];
}

function writeKey(writer: ByteWriter, state: SenderKeyState | undefined): void {
  if (state === undefined) {
    writer.u8(0);
    return;
  }
  writer.u8(1).u32(state.epoch).u32(state.iteration).raw(state.chainKey);
}

function readKey(reader: ByteReader): SenderKeyState | undefined {
  const present = reader.u8();
  if (present === 0) return undefined;
  if (present !== 1) throw new DecodeError("room state: a key flag must be 0 or 1");
  const epoch = reader.u32();
  const iteration = reader.u32();
  return { epoch, iteration, chainKey: reader.raw(KEY_LENGTH).slice() };
}

/**
 * Encodes a room state. The result holds chain keys: store it encrypted.
 *
 * @example
 * ```ts
 * const bytes = encodeRoomState(session.exportState()!);
 * ```
 */
export function encodeRoomState(state: RoomState): Uint8Array {
  const writer = new ByteWriter(64 + state.members.length * 128)
    .u8(VERSION)
    .u32(state.memberId);
  writeKey(writer, state.outbound);
  writer.u8(state.rekeyDue ? 1 : 0).u64(state.lastSeq).u32(state.members.length);
  for (const member of state.members) {
    writer.u32(member.memberId).raw(member.identityPublicKey).bytes8(utf8(member.nick))
      .u32(member.heldEpochOfOurs);
    writeKey(writer, member.inbound);
  }
  return writer.finish();
}

/**
 * Decodes a room state strictly. Throws {@linkcode DecodeError}.
 *
 * @example
 * ```ts
 * const state = decodeRoomState(bytes);
 * ```
 */
export function decodeRoomState(bytes: Uint8Array): RoomState {
  const reader = new ByteReader(bytes);
  const version = reader.u8();
  if (version !== VERSION) {
    throw new DecodeError(`room state version ${version} is not supported; upgrade securechat`);
  }
  const memberId = reader.u32();
  const outbound = readKey(reader);
  const rekeyDue = reader.u8() === 1;
  const lastSeq = reader.u64();
  const count = reader.u32();
  const members: SavedMember[] = [];
  for (let i = 0; i < count; i++) {
    const id = reader.u32();
    const identityPublicKey = reader.raw(KEY_LENGTH).slice();
    const nick = fromUtf8(reader.bytes8());
    const heldEpochOfOurs = reader.u32();
    members.push({
      memberId: id,
      identityPublicKey,
      nick,
      heldEpochOfOurs,
      inbound: readKey(reader),
    });
  }
  reader.end();
  return { memberId, outbound, rekeyDue, lastSeq, members };
}
