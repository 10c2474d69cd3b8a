/**
 * Pruning one room of the JetStream store's view, applied as a log event so
 * every relay prunes identically: the SQLite store's three steps
 * (`sqlite_prune.ts`) on the in-memory room. Items every member they were
 * kept for acknowledged are deleted; items past the retention time are
 * deleted and recorded as expired gaps for whoever still needed them;
 * removed entries past the retention time are forgotten, and so is a room
 * left with no entries and no items.
 *
 * @module
 */

import { ItemKind, type ItemMeta } from "./room_items.ts";
import {
  GapReason,
  type GapState,
  type MemberState,
  type RoomLimits,
  type RoomState,
} from "./room_state.ts";

/** What pruning one room did. */
export interface RoomPruneResult {
  acknowledged: number;
  expired: number;
  /** Items looked at for expiry (counted against the prune's budget). */
  examined: number;
  forgotten: number;
  /** The budget stopped it: prune again. */
  more: boolean;
  /** The room has nothing left: the caller replaces it with a fresh one. */
  forgetRoom: boolean;
}

/** When and under which limits a prune runs, and how many items it may examine for expiry. */
export interface RoomPruneOptions {
  time: number;
  limits: RoomLimits;
  budget: number;
}

/**
 * Prunes one room (see the module comment).
 *
 * @example
 * ```ts
 * const result = pruneRoom(room, { time: Date.now(), limits, budget: 10_000 });
 * ```
 */
export function pruneRoom(room: RoomState, options: RoomPruneOptions): RoomPruneResult {
  const cutoff = options.time - options.limits.retentionMs;
  const result: RoomPruneResult = {
    acknowledged: 0,
    expired: 0,
    examined: 0,
    forgotten: 0,
    more: false,
    forgetRoom: false,
  };
  if (room.items.count > 0) {
    result.acknowledged = deleteAcknowledged(room).length;
    if (options.budget > 0) {
      const expired = expire(room, cutoff, options.budget, options.limits);
      result.expired = expired.count;
      result.examined = expired.examined;
      result.more = expired.stopped;
    } else {
      result.more = true;
    }
  }
  for (const member of [...room.members.values()]) {
    if (member.removedAt !== undefined && member.removedAt < cutoff) {
      room.members.delete(member.memberId);
      result.forgotten++;
    }
  }
  for (const memberId of [...room.gaps.keys()]) {
    if (room.current(memberId) === undefined) room.gaps.delete(memberId);
  }
  // A room that was never created (only refused calls reached its log) has nothing to forget.
  if (room.createdAt !== 0 && room.items.count === 0 && room.members.size === 0) {
    result.forgotten++;
    result.forgetRoom = true;
  }
  return result;
}

/**
 * Whether {@linkcode pruneRoom} would change anything now (so a relay
 * publishes a prune event only for rooms that need one).
 *
 * @example
 * ```ts
 * if (pruneWouldChange(room, { time, limits, budget })) publish();
 * ```
 */
export function pruneWouldChange(room: RoomState, options: RoomPruneOptions): boolean {
  const cutoff = options.time - options.limits.retentionMs;
  const first = room.items.first();
  if (first !== undefined) {
    if (first.time < cutoff && options.budget > 0) return true;
    const [laggard, next] = lowestAcks(room);
    if (laggard === undefined || first.seq <= laggard.lastAck) return true;
    const high = next === undefined ? Number.MAX_SAFE_INTEGER : next.lastAck;
    for (const item of room.items.after(laggard.lastAck)) {
      if (item.seq > high) break;
      if (notForLaggard(room, laggard, item)) return true;
    }
  }
  for (const member of room.members.values()) {
    if (member.removedAt !== undefined && member.removedAt < cutoff) return true;
  }
  return room.createdAt !== 0 && room.items.count === 0 && room.members.size === 0;
}

/** The two current members with the lowest `lastAck`. */
function lowestAcks(room: RoomState): MemberState[] {
  const current = [...room.members.values()].filter((member) => member.removedAt === undefined);
  current.sort((a, b) => a.lastAck - b.lastAck);
  return current.slice(0, 2);
}

function notForLaggard(room: RoomState, laggard: MemberState, item: ItemMeta): boolean {
  return item.kind === ItemKind.group &&
    (item.sender === laggard.memberId || room.refusedAt(laggard.memberId, item.seq));
}

function deleteAcknowledged(room: RoomState): ItemMeta[] {
  const [laggard, next] = lowestAcks(room);
  if (laggard === undefined) return room.items.deleteUpTo(Number.MAX_SAFE_INTEGER);
  const deleted = room.items.deleteUpTo(laggard.lastAck);
  const high = next === undefined ? Number.MAX_SAFE_INTEGER : next.lastAck;
  if (high > laggard.lastAck) {
    // Acknowledged by all but the laggard, and not for the laggard.
    const gone: ItemMeta[] = [];
    for (const item of room.items.after(laggard.lastAck)) {
      if (item.seq > high) break;
      if (notForLaggard(room, laggard, item)) gone.push(item);
    }
    for (const item of gone) room.items.delete(item.seq);
    deleted.push(...gone);
  }
  return deleted;
}

/** Deletes the room's expired prefix (at most `budget` items), recording gaps. */
function expire(
  room: RoomState,
  cutoff: number,
  budget: number,
  limits: RoomLimits,
): { count: number; examined: number; stopped: boolean } {
  const first = room.items.first();
  if (first === undefined || first.time >= cutoff) return { count: 0, examined: 0, stopped: false };
  const expired: ItemMeta[] = [];
  let stopped = false;
  for (const item of room.items.after(0)) {
    if (item.time >= cutoff) break;
    if (expired.length >= budget) {
      stopped = true;
      break;
    }
    expired.push(item);
  }
  const lastSeq = expired[expired.length - 1].seq;
  for (const member of room.members.values()) {
    if (member.removedAt === undefined && member.lastAck < lastSeq) {
      recordExpiry(room, member, expired, limits);
    }
  }
  const deleted = room.items.deleteUpTo(lastSeq);
  return { count: deleted.length, examined: expired.length, stopped };
}

/** Records, for one member, the expired items that were kept for it and not acknowledged. */
function recordExpiry(
  room: RoomState,
  member: MemberState,
  expired: ItemMeta[],
  limits: RoomLimits,
): void {
  const id = member.memberId;
  const gaps = room.gaps.get(id) ?? [];
  const refused = gaps.filter((gap) => gap.reason === GapReason.refused);
  const inRefused = (seq: number) => refused.some((gap) => gap.from <= seq && seq <= gap.to);
  const lost = expired.filter((item) =>
    item.seq > member.lastAck &&
    (item.kind === ItemKind.group
      ? item.sender !== id && !inRefused(item.seq)
      : item.recipient === id)
  );
  if (lost.length === 0) return;
  // Runs of lost items not separated by a refused range: each becomes one gap, or extends the
  // gap just before it when that one is an expired gap too (nothing for the member between).
  let start = 0;
  for (let i = 1; i <= lost.length; i++) {
    const split = i === lost.length ||
      refused.some((gap) => gap.from > lost[i - 1].seq && gap.to < lost[i].seq);
    if (!split) continue;
    const from = lost[start].seq;
    const to = lost[i - 1].seq;
    const count = i - start;
    start = i;
    const before: GapState | undefined = (room.gaps.get(id) ?? [])
      .filter((gap) => gap.from < from).at(-1);
    if (before !== undefined && before.reason === GapReason.expired) {
      before.to = to;
      before.count += count;
      continue;
    }
    room.addGap(id, { from, to, count, reason: GapReason.expired });
  }
  if (!member.tracked) return;
  member.pending = Math.max(0, member.pending - lost.length);
  if (member.pending < limits.maxItemsPerMember) member.refusing = 0;
}
