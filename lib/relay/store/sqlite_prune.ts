/**
 * Deleting what the SQLite store no longer needs, in three steps:
 *
 * 1. group items that every member they were kept for has acknowledged
 *    (envelopes go at the acknowledgement itself): everything up to the
 *    lowest acknowledgement in the room, and above it, up to the second
 *    lowest, what the member furthest behind does not need (its own items
 *    and its refused ranges: a member that only posts never holds the room
 *    back). Items two or more laggards need wait for them, or for retention;
 * 2. items past the retention time, oldest first: for every current member
 *    that had not acknowledged one kept for it, a gap notice (reason
 *    expired) records the range and the count, so its catch-up reports it;
 * 3. removed roster entries past the retention time, and rooms with no
 *    entries and no items left.
 *
 * Item times never go backwards within a room (`rooms.last_time`), so the
 * expired items of a room are always a prefix of its sequence.
 *
 * @module
 */

import type { DatabaseSync, StatementSync } from "node:sqlite";
import type { PruneOptions, PruneResult, StoreLimits } from "./relay_store.ts";
import { StoreInputError } from "./relay_store.ts";
import { GapReason, ItemKind } from "./sqlite_database.ts";
import type { RoomTable } from "./sqlite_rooms.ts";
import { sum } from "./sqlite_roster.ts";

/** Default work bound of one prune: items examined for expiry. */
const DEFAULT_PRUNE_ITEMS = 10_000;

/** Rows read at a time while looking for the end of a room's expired prefix. */
const EXPIRY_PAGE = 512;

interface ExpiredItem {
  seq: number;
  kind: number;
  sender: number;
  recipient: number;
  size: number;
  stored_at: number;
}

interface MemberState {
  member_id: number;
  last_ack: number;
  tracked: number;
  pending: number;
  refusing: number;
}

interface GapRow {
  gap_id: number;
  from_seq: number;
  to_seq: number;
  reason: number;
}

/** Options for {@linkcode Pruner}. */
export interface PrunerOptions {
  db: DatabaseSync;
  rooms: RoomTable;
  limits: Readonly<StoreLimits>;
  now: () => number;
}

/**
 * Runs the three prune steps inside the caller's transaction.
 *
 * @example
 * ```ts
 * const pruner = new Pruner({ db, rooms, limits, now: Date.now });
 * pruner.prune({ maxItems: 1_000 });
 * ```
 */
export class Pruner {
  #rooms: RoomTable;
  #limits: Readonly<StoreLimits>;
  #now: () => number;
  #roomsWithItems: StatementSync;
  #lowestAcks: StatementSync;
  #deleteBelow: StatementSync;
  #deleteForLaggard: StatementSync;
  #deleteAll: StatementSync;
  #oldest: StatementSync;
  #expiredPage: StatementSync;
  #members: StatementSync;
  #memberGaps: StatementSync;
  #insertGap: StatementSync;
  #extendGap: StatementSync;
  #updateMember: StatementSync;
  #forgetMembers: StatementSync;
  #forgetGaps: StatementSync;
  #forgetRooms: StatementSync;

  /** @example `new Pruner({ db, rooms, limits, now })` */
  constructor(options: PrunerOptions) {
    const { db } = options;
    this.#rooms = options.rooms;
    this.#limits = options.limits;
    this.#now = options.now;
    this.#roomsWithItems = db.prepare(
      "SELECT room_id FROM rooms WHERE item_count > 0 ORDER BY room_id",
    );
    this.#lowestAcks = db.prepare(
      "SELECT member_id, last_ack FROM members WHERE room_id = ? AND removed_at IS NULL " +
        "ORDER BY last_ack LIMIT 2",
    );
    this.#deleteBelow = db.prepare(
      "DELETE FROM items WHERE room_id = ? AND seq <= ? RETURNING length(body) AS size",
    );
    this.#deleteForLaggard = db.prepare(
      `DELETE FROM items WHERE room_id = :r AND seq > :low AND seq <= :high ` +
        `AND kind = ${ItemKind.group} AND (sender = :m OR EXISTS (SELECT 1 FROM gaps g ` +
        `WHERE g.room_id = :r AND g.member_id = :m AND g.reason = ${GapReason.refused} ` +
        "AND g.from_seq <= items.seq AND g.to_seq >= items.seq)) RETURNING length(body) AS size",
    );
    this.#deleteAll = db.prepare(
      "DELETE FROM items WHERE room_id = ? RETURNING length(body) AS size",
    );
    this.#oldest = db.prepare(
      "SELECT stored_at FROM items WHERE room_id = ? ORDER BY seq LIMIT 1",
    );
    this.#expiredPage = db.prepare(
      "SELECT seq, kind, sender, recipient, length(body) AS size, stored_at FROM items " +
        "WHERE room_id = ? AND seq > ? ORDER BY seq LIMIT ?",
    );
    this.#members = db.prepare(
      "SELECT member_id, last_ack, tracked, pending, refusing FROM members " +
        "WHERE room_id = ? AND removed_at IS NULL AND last_ack < ?",
    );
    this.#memberGaps = db.prepare(
      "SELECT gap_id, from_seq, to_seq, reason FROM gaps WHERE room_id = ? AND member_id = ? " +
        "ORDER BY from_seq",
    );
    this.#insertGap = db.prepare(
      "INSERT INTO gaps (room_id, member_id, from_seq, to_seq, count, reason) " +
        `VALUES (?, ?, ?, ?, ?, ${GapReason.expired})`,
    );
    this.#extendGap = db.prepare(
      "UPDATE gaps SET to_seq = ?, count = count + ? WHERE gap_id = ?",
    );
    this.#updateMember = db.prepare(
      "UPDATE members SET pending = ?, refusing = ? WHERE room_id = ? AND member_id = ?",
    );
    this.#forgetMembers = db.prepare(
      "DELETE FROM members WHERE removed_at IS NOT NULL AND removed_at < ?",
    );
    this.#forgetGaps = db.prepare(
      "DELETE FROM gaps WHERE NOT EXISTS (SELECT 1 FROM members m WHERE m.room_id = gaps.room_id " +
        "AND m.member_id = gaps.member_id AND m.removed_at IS NULL)",
    );
    this.#forgetRooms = db.prepare(
      "DELETE FROM rooms WHERE item_count = 0 AND NOT EXISTS " +
        "(SELECT 1 FROM members m WHERE m.room_id = rooms.room_id)",
    );
  }

  /** See {@linkcode RelayStore.prune}. @example `pruner.prune({})` */
  prune(options: PruneOptions = {}): PruneResult {
    const budget = options.maxItems ?? DEFAULT_PRUNE_ITEMS;
    if (!Number.isSafeInteger(budget) || budget < 1) {
      throw new StoreInputError("prune maxItems must be a positive whole number");
    }
    const cutoff = this.#now() - this.#limits.retentionMs;
    const result: PruneResult = { acknowledged: 0, expired: 0, forgotten: 0, more: false };
    let left = budget;
    const rooms = (this.#roomsWithItems.all() as { room_id: number }[]).map((row) => row.room_id);
    for (const roomId of rooms) {
      result.acknowledged += this.#deleteAcknowledgedItems(roomId);
      if (left > 0) {
        const expired = this.#expire(roomId, cutoff, left);
        result.expired += expired.count;
        left -= expired.examined;
        if (expired.stopped) result.more = true;
      } else {
        result.more = true;
      }
    }
    result.forgotten += Number(this.#forgetMembers.run(cutoff).changes);
    this.#forgetGaps.run();
    result.forgotten += Number(this.#forgetRooms.run().changes);
    return result;
  }

  #deleteAcknowledgedItems(roomId: number): number {
    const lowest = this.#lowestAcks.all(roomId) as { member_id: number; last_ack: number }[];
    let deleted: { size: number }[];
    if (lowest.length === 0) {
      deleted = this.#deleteAll.all(roomId) as { size: number }[];
    } else {
      const [laggard, next] = lowest;
      deleted = this.#deleteBelow.all(roomId, laggard.last_ack) as { size: number }[];
      const high = next === undefined ? Number.MAX_SAFE_INTEGER : next.last_ack;
      if (high > laggard.last_ack) {
        deleted = deleted.concat(
          this.#deleteForLaggard.all({
            r: roomId,
            low: laggard.last_ack,
            high,
            m: laggard.member_id,
          }) as { size: number }[],
        );
      }
    }
    this.#rooms.removed(roomId, deleted.length, sum(deleted));
    return deleted.length;
  }

  /** Deletes the room's expired prefix (at most `budget` items), recording gaps. */
  #expire(
    roomId: number,
    cutoff: number,
    budget: number,
  ): { count: number; examined: number; stopped: boolean } {
    const oldest = this.#oldest.get(roomId) as { stored_at: number } | undefined;
    if (oldest === undefined || oldest.stored_at >= cutoff) {
      return { count: 0, examined: 0, stopped: false };
    }
    const expired: ExpiredItem[] = [];
    let after = 0;
    let stopped = false;
    let reachedLive = false;
    while (!reachedLive && !stopped) {
      const page = this.#expiredPage.all(roomId, after, EXPIRY_PAGE) as unknown as ExpiredItem[];
      for (const item of page) {
        if (item.stored_at >= cutoff) {
          reachedLive = true;
          break;
        }
        if (expired.length >= budget) {
          stopped = true;
          break;
        }
        expired.push(item);
      }
      if (page.length < EXPIRY_PAGE) reachedLive = true;
      after = page.at(-1)?.seq ?? after;
    }
    if (expired.length === 0) return { count: 0, examined: 0, stopped };
    const lastSeq = expired[expired.length - 1].seq;
    for (const member of this.#members.all(roomId, lastSeq) as unknown as MemberState[]) {
      this.#recordExpiry(roomId, member, expired);
    }
    const deleted = this.#deleteBelow.all(roomId, lastSeq) as { size: number }[];
    this.#rooms.removed(roomId, deleted.length, sum(deleted));
    return { count: deleted.length, examined: expired.length, stopped };
  }

  /** Records, for one member, the expired items that were kept for it and not acknowledged. */
  #recordExpiry(roomId: number, member: MemberState, expired: ExpiredItem[]): void {
    const gaps = this.#memberGaps.all(roomId, member.member_id) as unknown as GapRow[];
    const refused = gaps.filter((gap) => gap.reason === GapReason.refused);
    const inRefused = (seq: number) =>
      refused.some((gap) => gap.from_seq <= seq && seq <= gap.to_seq);
    const lost = expired.filter((item) =>
      item.seq > member.last_ack &&
      (item.kind === ItemKind.group
        ? item.sender !== member.member_id && !inRefused(item.seq)
        : item.recipient === member.member_id)
    );
    if (lost.length === 0) return;
    // Runs of lost items not separated by a refused range: each becomes one gap, or extends the
    // gap just before it when that one is an expired gap too (nothing for the member between).
    const sorted = [...gaps];
    let start = 0;
    for (let i = 1; i <= lost.length; i++) {
      const split = i === lost.length ||
        refused.some((gap) => gap.from_seq > lost[i - 1].seq && gap.to_seq < lost[i].seq);
      if (!split) continue;
      const from = lost[start].seq;
      const to = lost[i - 1].seq;
      const count = i - start;
      start = i;
      const before = sorted.filter((gap) => gap.from_seq < from).at(-1);
      if (before !== undefined && before.reason === GapReason.expired) {
        this.#extendGap.run(to, count, before.gap_id);
        before.to_seq = to;
        continue;
      }
      const gapId = Number(
        this.#insertGap.run(roomId, member.member_id, from, to, count).lastInsertRowid,
      );
      sorted.push({ gap_id: gapId, from_seq: from, to_seq: to, reason: GapReason.expired });
      sorted.sort((a, b) => a.from_seq - b.from_seq);
    }
    if (member.tracked === 0) return;
    const pending = Math.max(0, member.pending - lost.length);
    const refusing = pending < this.#limits.maxItemsPerMember ? 0 : member.refusing;
    this.#updateMember.run(pending, refusing, roomId, member.member_id);
  }
}
