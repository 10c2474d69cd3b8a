/**
 * The JetStream store's room log records: one message on the room's log
 * subject is one **event**, a batch of operations applied together, in
 * order, under the time and limits the event carries (so every relay applies
 * it the same way, whatever its own clock and configuration). PROTOCOL.md
 * ("Cluster store") documents the bytes; `u64` is 8-byte big-endian.
 *
 * ```
 * event = u8 version (1), 16 id, u64 prev, u64 time, u64 retention ms,
 *         u64 max room bytes, u64 max items per member, u64 max members per room,
 *         u32 n, n × op
 * op    = u8 type, then:
 *   1 add       32 identity key, string8 nick, bytes32 announcement
 *   2 rename    u32 member id, string8 nick
 *   3 remove    u32 member id
 *   4 group     u32 from, bytes32 body
 *   5 envelope  u32 from, u32 to, bytes32 body
 *   6 ack       u32 member id, u64 seq
 *   7 prune     u64 budget (items to examine for expiry)
 * ```
 *
 * @module
 */

import { ByteReader, ByteWriter, DecodeError } from "../../core/bytes.ts";
import type { RoomLimits } from "./room_state.ts";

/** The version byte this code writes and reads. */
export const EVENT_VERSION = 1;

/** Bytes of an event id. */
export const EVENT_ID_BYTES = 16;

/** One operation of an event. */
export type RoomOp =
  | { type: "add"; identityKey: Uint8Array; nick: string; announcement: Uint8Array }
  | { type: "rename"; memberId: number; nick: string }
  | { type: "remove"; memberId: number }
  | { type: "group"; from: number; body: Uint8Array }
  | { type: "envelope"; from: number; to: number; body: Uint8Array }
  | { type: "ack"; memberId: number; seq: number }
  | { type: "prune"; budget: number };

/** One log event. */
export interface RoomEvent {
  /** Random; lets a writer that lost the publish acknowledgement find its event. */
  id: Uint8Array;
  /**
   * Stream sequence of the room's previous event (0 for the first): the
   * publish is conditional on it, so the events of a room form a chain a
   * reader can check for holes.
   */
  prev: number;
  /** The writer's clock when it published (ms). */
  time: number;
  limits: RoomLimits;
  ops: RoomOp[];
}

const OP_CODES = { add: 1, rename: 2, remove: 3, group: 4, envelope: 5, ack: 6, prune: 7 } as const;

/**
 * Bytes an operation adds to an event (close to exact), to keep events under
 * the server's largest message.
 *
 * @example
 * ```ts
 * opSize({ type: "ack", memberId: 2, seq: 9 }); // 13
 * ```
 */
export function opSize(op: RoomOp): number {
  switch (op.type) {
    case "add":
      return 1 + 32 + 1 + op.nick.length * 3 + 4 + op.announcement.length;
    case "rename":
      return 1 + 4 + 1 + op.nick.length * 3;
    case "group":
      return 1 + 4 + 4 + op.body.length;
    case "envelope":
      return 1 + 8 + 4 + op.body.length;
    default:
      return 13;
  }
}

/** Bytes of an event without its operations. */
export const EVENT_HEADER_BYTES = 1 + EVENT_ID_BYTES + 8 * 6 + 4;

/**
 * Encodes an event.
 *
 * @example
 * ```ts
 * const ops: RoomOp[] = [{ type: "remove", memberId: 3 }];
 * const bytes = encodeEvent({ id, prev: 41, time: Date.now(), limits, ops });
 * ```
 */
export function encodeEvent(event: RoomEvent): Uint8Array {
  const writer = new ByteWriter(EVENT_HEADER_BYTES + event.ops.reduce((n, op) => n + opSize(op), 0))
    .u8(EVENT_VERSION)
    .raw(event.id)
    .u64(event.prev)
    .u64(event.time)
    .u64(event.limits.retentionMs)
    .u64(event.limits.maxRoomBytes)
    .u64(event.limits.maxItemsPerMember)
    .u64(event.limits.maxMembersPerRoom)
    .u32(event.ops.length);
  for (const op of event.ops) {
    writer.u8(OP_CODES[op.type]);
    switch (op.type) {
      case "add":
        writer.raw(op.identityKey).string8(op.nick).bytes32(op.announcement);
        break;
      case "rename":
        writer.u32(op.memberId).string8(op.nick);
        break;
      case "remove":
        writer.u32(op.memberId);
        break;
      case "group":
        writer.u32(op.from).bytes32(op.body);
        break;
      case "envelope":
        writer.u32(op.from).u32(op.to).bytes32(op.body);
        break;
      case "ack":
        writer.u32(op.memberId).u64(op.seq);
        break;
      case "prune":
        writer.u64(op.budget);
        break;
    }
  }
  return writer.finish();
}

/**
 * Decodes an event; throws {@linkcode DecodeError} on anything malformed.
 * Byte fields are views into `bytes`.
 *
 * @example
 * ```ts
 * const event = decodeEvent(message.data);
 * ```
 */
export function decodeEvent(bytes: Uint8Array): RoomEvent {
  const reader = new ByteReader(bytes);
  const version = reader.u8();
  if (version !== EVENT_VERSION) throw new DecodeError(`room log event version ${version}`);
  const id = reader.raw(EVENT_ID_BYTES);
  const prev = reader.u64();
  const time = reader.u64();
  const limits: RoomLimits = {
    retentionMs: reader.u64(),
    maxRoomBytes: reader.u64(),
    maxItemsPerMember: reader.u64(),
    maxMembersPerRoom: reader.u64(),
  };
  const count = reader.u32();
  const ops: RoomOp[] = [];
  for (let i = 0; i < count; i++) ops.push(readOp(reader));
  reader.end();
  return { id, prev, time, limits, ops };
}

/**
 * Reads only the body of operation `index` of an encoded event (a group
 * item or an envelope), for catch-up.
 *
 * @example
 * ```ts
 * const body = eventBody(message.data, 0);
 * ```
 */
export function eventBody(bytes: Uint8Array, index: number): Uint8Array {
  const op = decodeEvent(bytes).ops[index];
  if (op === undefined || (op.type !== "group" && op.type !== "envelope")) {
    throw new DecodeError(`room log event has no item at operation ${index}`);
  }
  return op.body;
}

function readOp(reader: ByteReader): RoomOp {
  const code = reader.u8();
  switch (code) {
    case OP_CODES.add:
      return {
        type: "add",
        identityKey: reader.raw(32),
        nick: reader.string8(),
        announcement: reader.bytes32(),
      };
    case OP_CODES.rename:
      return { type: "rename", memberId: reader.u32(), nick: reader.string8() };
    case OP_CODES.remove:
      return { type: "remove", memberId: reader.u32() };
    case OP_CODES.group:
      return { type: "group", from: reader.u32(), body: reader.bytes32() };
    case OP_CODES.envelope:
      return { type: "envelope", from: reader.u32(), to: reader.u32(), body: reader.bytes32() };
    case OP_CODES.ack:
      return { type: "ack", memberId: reader.u32(), seq: reader.u64() };
    case OP_CODES.prune:
      return { type: "prune", budget: reader.u64() };
    default:
      throw new DecodeError(`room log operation ${code} is unknown`);
  }
}
