/**
 * Snapshots of a room of the JetStream store: the whole room state (roster,
 * counters, gap notices, the index of kept items, never a body) as of one
 * event of the room's log, so a relay that opens the room reads the snapshot
 * and the events after it instead of the whole log, and the log's older
 * events can be purged. PROTOCOL.md ("Cluster store") documents the bytes.
 *
 * ```
 * snapshot = u8 version (1), u64 log seq, u64 head, u64 created at, u64 next member,
 *            u64 last time, u64 next gap, u32 n, n × member, u32 n, n × gap list, u32 n, n × item
 * member   = u32 id, 32 identity key, string8 nick, bytes32 announcement, u64 joined at,
 *            u64 joined seq, u64 last ack, u8 flags (1 tracked, 2 removed), u64 pending,
 *            u64 refusing gap, u64 removed at (0 unless removed)
 * gap list = u32 member id, u32 n, n × (u64 id, u64 from, u64 to, u64 count, u8 reason)
 * item     = u64 seq, u8 kind, u32 sender, u32 recipient, u64 time, u32 size, u64 at, u32 op
 * ```
 *
 * @module
 */

import { ByteReader, ByteWriter, DecodeError } from "../../core/bytes.ts";
import { RoomState } from "./room_state.ts";

/** The version byte this code writes and reads. */
export const SNAPSHOT_VERSION = 1;

/**
 * Encodes a room's state as of stream sequence `logSeq`.
 *
 * @example
 * ```ts
 * const bytes = encodeSnapshot(view.state, view.logSeq);
 * ```
 */
export function encodeSnapshot(room: RoomState, logSeq: number): Uint8Array {
  const writer = new ByteWriter(256 + room.items.count * 45)
    .u8(SNAPSHOT_VERSION)
    .u64(logSeq)
    .u64(room.head)
    .u64(room.createdAt)
    .u64(room.nextMember)
    .u64(room.lastTime)
    .u64(room.nextGap)
    .u32(room.members.size);
  for (const member of room.members.values()) {
    const removed = member.removedAt !== undefined;
    writer.u32(member.memberId).raw(member.identityKey).string8(member.nick)
      .bytes32(member.announcement).u64(member.joinedAt).u64(member.joinedSeq)
      .u64(member.lastAck).u8((member.tracked ? 1 : 0) | (removed ? 2 : 0))
      .u64(member.pending).u64(member.refusing).u64(member.removedAt ?? 0);
  }
  writer.u32(room.gaps.size);
  for (const [memberId, list] of room.gaps) {
    writer.u32(memberId).u32(list.length);
    for (const gap of list) {
      writer.u64(gap.id).u64(gap.from).u64(gap.to).u64(gap.count).u8(gap.reason);
    }
  }
  writer.u32(room.items.count);
  for (const item of room.items.after(0)) {
    writer.u64(item.seq).u8(item.kind).u32(item.sender).u32(item.recipient).u64(item.time)
      .u32(item.size).u64(item.at).u32(item.op);
  }
  return writer.finish();
}

/**
 * Decodes a snapshot; throws {@linkcode DecodeError} on anything malformed.
 *
 * @example
 * ```ts
 * const { room, logSeq } = decodeSnapshot(bytes);
 * ```
 */
export function decodeSnapshot(bytes: Uint8Array): { room: RoomState; logSeq: number } {
  const reader = new ByteReader(bytes);
  const version = reader.u8();
  if (version !== SNAPSHOT_VERSION) throw new DecodeError(`room snapshot version ${version}`);
  const logSeq = reader.u64();
  const room = new RoomState();
  room.head = reader.u64();
  room.createdAt = reader.u64();
  room.nextMember = reader.u64();
  room.lastTime = reader.u64();
  room.nextGap = reader.u64();
  const members = reader.u32();
  for (let i = 0; i < members; i++) {
    const memberId = reader.u32();
    const identityKey = reader.raw(32).slice();
    const nick = reader.string8();
    const announcement = reader.bytes32().slice();
    const joinedAt = reader.u64();
    const joinedSeq = reader.u64();
    const lastAck = reader.u64();
    const flags = reader.u8();
    const pending = reader.u64();
    const refusing = reader.u64();
    const removedAt = reader.u64();
    room.members.set(memberId, {
      memberId,
      identityKey,
      nick,
      announcement,
      joinedAt,
      joinedSeq,
      lastAck,
      tracked: (flags & 1) !== 0,
      pending,
      refusing,
      ...((flags & 2) !== 0 ? { removedAt } : {}),
    });
    if ((flags & 2) === 0) {
      room.memberCount++;
      room.nicks.set(nick, memberId);
    }
  }
  const lists = reader.u32();
  for (let i = 0; i < lists; i++) {
    const memberId = reader.u32();
    const n = reader.u32();
    const list = [];
    for (let j = 0; j < n; j++) {
      const gap = { id: reader.u64(), from: reader.u64(), to: reader.u64(), count: reader.u64() };
      const reason = reader.u8();
      if (reason !== 1 && reason !== 2) throw new DecodeError(`gap reason ${reason}`);
      list.push({ ...gap, reason: reason as 1 | 2 });
    }
    room.gaps.set(memberId, list);
  }
  const items = reader.u32();
  for (let i = 0; i < items; i++) {
    const seq = reader.u64();
    const kind = reader.u8();
    if (kind !== 1 && kind !== 2) throw new DecodeError(`item kind ${kind}`);
    room.items.add({
      seq,
      kind: kind as 1 | 2,
      sender: reader.u32(),
      recipient: reader.u32(),
      time: reader.u64(),
      size: reader.u32(),
      at: reader.u64(),
      op: reader.u32(),
    });
  }
  reader.end();
  return { room, logSeq };
}
