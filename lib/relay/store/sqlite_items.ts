/**
 * Stored items in the SQLite store (`items` and `gaps`): appends, a
 * member's catch-up, and acknowledgements. One sequence per room orders
 * group messages and envelopes together.
 *
 * Who an item is for is not stored per recipient (that would cost a row per
 * member per message). A group item is for every current member except its
 * sender whose `last_ack` is below it, unless the item lies in one of that
 * member's refused ranges (`gaps` with reason refused); an envelope is for
 * its recipient.
 *
 * The per-member limit costs an append nothing per member in the common
 * case: a member has at most `head - last_ack` items waiting, so only a
 * member at least `maxItemsPerMember` sequences behind can be over it. Such a
 * member is **tracked**: its exact count is taken once (`members.pending`)
 * and kept up to date until an acknowledgement brings it back within reach.
 * An append refuses a tracked member whose count reached the limit, and
 * extends that member's open refused range (`members.refusing`) until an
 * item is kept for it again.
 *
 * @module
 */

import type { DatabaseSync, StatementSync } from "node:sqlite";
import {
  checkBytes,
  checkMemberId,
  checkSequence,
  type EnvelopeAppendResult,
  type EnvelopeItem,
  type GapNotice,
  type GroupAppendResult,
  type GroupItem,
  MAX_READ_LIMIT,
  MAX_SEQUENCE,
  nameBytes,
  type ReadOptions,
  type ReadResult,
  type StoredEntry,
  type StoredItem,
  StoreInputError,
  type StoreLimits,
} from "./relay_store.ts";
import { GapReason, ItemKind } from "./sqlite_database.ts";
import type { RoomRow, RoomTable } from "./sqlite_rooms.ts";
import { type MemberRow, type RosterTable, sum } from "./sqlite_roster.ts";

/** Default `limit` of a read. */
const DEFAULT_READ_LIMIT = 1_000;

/** Whether an item at `items.seq` is for member `:m` (see the module comment). */
const FOR_MEMBER = `((kind = ${ItemKind.group} AND sender != :m) OR ` +
  `(kind = ${ItemKind.envelope} AND recipient = :m))`;
const NOT_REFUSED = `NOT (kind = ${ItemKind.group} AND EXISTS (SELECT 1 FROM gaps g ` +
  `WHERE g.room_id = :r AND g.member_id = :m AND g.reason = ${GapReason.refused} ` +
  "AND g.from_seq <= items.seq AND g.to_seq >= items.seq))";

interface RawItem {
  seq: number;
  kind: number;
  sender: number;
  recipient: number;
  stored_at: number;
  body: Uint8Array;
}

interface RawLaggard {
  member_id: number;
  last_ack: number;
  joined_seq: number;
  tracked: number;
  pending: number;
  refusing: number;
}

interface RawGap {
  from_seq: number;
  to_seq: number;
  count: number;
  reason: number;
}

/** Options for {@linkcode ItemTable}. */
export interface ItemTableOptions {
  db: DatabaseSync;
  rooms: RoomTable;
  roster: RosterTable;
  limits: Readonly<StoreLimits>;
  now: () => number;
}

/**
 * Appends, reads and acknowledges stored items.
 *
 * @example
 * ```ts
 * const items = new ItemTable({ db, rooms, roster, limits, now: Date.now });
 * items.appendGroup("ops", { from: 1, body });
 * ```
 */
export class ItemTable {
  #rooms: RoomTable;
  #roster: RosterTable;
  #limits: Readonly<StoreLimits>;
  #now: () => number;
  #laggards: StatementSync;
  #setPending: StatementSync;
  #insert: StatementSync;
  #openRefusal: StatementSync;
  #extendRefusal: StatementSync;
  #hasRefusals: StatementSync;
  #readFast: StatementSync;
  #readFull: StatementSync;
  #gaps: StatementSync;
  #countFast: StatementSync;
  #countFull: StatementSync;
  #ackMember: StatementSync;
  #dropEnvelopes: StatementSync;
  #dropGaps: StatementSync;

  /** @example `new ItemTable({ db, rooms, roster, limits, now })` */
  constructor(options: ItemTableOptions) {
    const { db } = options;
    this.#rooms = options.rooms;
    this.#roster = options.roster;
    this.#limits = options.limits;
    this.#now = options.now;
    // Uses members_lag: in the common case it finds nobody.
    this.#laggards = db.prepare(
      "SELECT member_id, last_ack, joined_seq, tracked, pending, refusing FROM members " +
        "WHERE room_id = ? AND removed_at IS NULL AND last_ack <= ? AND member_id != ? " +
        "ORDER BY member_id",
    );
    this.#setPending = db.prepare(
      "UPDATE members SET tracked = 1, pending = ?, refusing = ? " +
        "WHERE room_id = ? AND member_id = ?",
    );
    this.#insert = db.prepare(
      "INSERT INTO items (room_id, seq, kind, sender, recipient, stored_at, body) " +
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
    );
    this.#openRefusal = db.prepare(
      "INSERT INTO gaps (room_id, member_id, from_seq, to_seq, count, reason) " +
        `VALUES (?, ?, ?, ?, 1, ${GapReason.refused})`,
    );
    this.#extendRefusal = db.prepare(
      "UPDATE gaps SET to_seq = ?, count = count + 1 WHERE gap_id = ?",
    );
    this.#hasRefusals = db.prepare(
      "SELECT 1 AS yes FROM gaps WHERE room_id = ? AND member_id = ? " +
        `AND reason = ${GapReason.refused} LIMIT 1`,
    );
    const read = "SELECT seq, kind, sender, recipient, stored_at, body FROM items " +
      `WHERE room_id = :r AND seq > :after AND ${FOR_MEMBER}`;
    this.#readFast = db.prepare(`${read} ORDER BY seq LIMIT :n`);
    this.#readFull = db.prepare(`${read} AND ${NOT_REFUSED} ORDER BY seq LIMIT :n`);
    this.#gaps = db.prepare(
      "SELECT from_seq, to_seq, count, reason FROM gaps " +
        "WHERE room_id = ? AND member_id = ? AND to_seq > ? ORDER BY from_seq LIMIT ?",
    );
    const count = "SELECT count(*) AS n FROM items " +
      `WHERE room_id = :r AND seq > :after AND seq <= :upto AND ${FOR_MEMBER}`;
    this.#countFast = db.prepare(count);
    this.#countFull = db.prepare(`${count} AND ${NOT_REFUSED}`);
    this.#ackMember = db.prepare(
      "UPDATE members SET last_ack = ?, tracked = ?, pending = ?, refusing = ? " +
        "WHERE room_id = ? AND member_id = ?",
    );
    this.#dropEnvelopes = db.prepare(
      `DELETE FROM items WHERE room_id = ? AND recipient = ? AND kind = ${ItemKind.envelope} ` +
        "AND seq <= ? RETURNING length(body) AS size",
    );
    this.#dropGaps = db.prepare(
      "DELETE FROM gaps WHERE room_id = ? AND member_id = ? AND to_seq <= ? RETURNING gap_id",
    );
  }

  /** See {@linkcode RelayStore.appendGroup}. @example `items.appendGroup("ops", item)` */
  appendGroup(room: string, item: GroupItem): GroupAppendResult {
    const name = nameBytes(room, "room name");
    checkMemberId(item.from, "sender");
    const body = checkBytes(item.body, "item body", Number.MAX_SAFE_INTEGER, 1);
    if (body.length > this.#limits.maxItemBytes) return { status: "refused", reason: "tooLarge" };
    const row = this.#rooms.find(name);
    if (row === undefined || this.#roster.current(row.roomId, item.from) === undefined) {
      return { status: "refused", reason: "unknownSender" };
    }
    if (row.itemBytes + body.length > this.#limits.maxRoomBytes) {
      return { status: "refused", reason: "roomFull" };
    }
    const seq = nextSequence(row);
    const time = Math.max(this.#now(), row.lastTime);
    const refused: { memberId: number; reason: "recipientFull" }[] = [];
    const laggards = this.#laggards.all(
      row.roomId,
      row.headSeq - this.#limits.maxItemsPerMember,
      item.from,
    ) as unknown as RawLaggard[];
    for (const laggard of laggards.map(toMemberRow)) {
      const pending = this.#pendingOf(row, laggard);
      if (pending < this.#limits.maxItemsPerMember) {
        // Kept for it: its refused range, if any, ends here.
        this.#setPending.run(pending + 1, 0, row.roomId, laggard.memberId);
        continue;
      }
      refused.push({ memberId: laggard.memberId, reason: "recipientFull" });
      let refusing = laggard.refusing;
      if (refusing !== 0) {
        this.#extendRefusal.run(seq, refusing);
      } else {
        refusing = Number(
          this.#openRefusal.run(row.roomId, laggard.memberId, seq, seq).lastInsertRowid,
        );
      }
      this.#setPending.run(pending, refusing, row.roomId, laggard.memberId);
    }
    const recipients = row.memberCount - 1 - refused.length;
    const kept = recipients > 0;
    if (kept) this.#insert.run(row.roomId, seq, ItemKind.group, item.from, 0, time, body);
    this.#rooms.appended(row.roomId, {
      seq,
      time,
      items: kept ? 1 : 0,
      bytes: kept ? body.length : 0,
    });
    return { status: "stored", seq, recipients, refused };
  }

  /** See {@linkcode RelayStore.appendEnvelope}. @example `items.appendEnvelope("ops", item)` */
  appendEnvelope(room: string, item: EnvelopeItem): EnvelopeAppendResult {
    const name = nameBytes(room, "room name");
    checkMemberId(item.from, "sender");
    checkMemberId(item.to, "recipient");
    const body = checkBytes(item.body, "item body", Number.MAX_SAFE_INTEGER, 1);
    if (body.length > this.#limits.maxItemBytes) return { status: "refused", reason: "tooLarge" };
    const row = this.#rooms.find(name);
    if (row === undefined || this.#roster.current(row.roomId, item.from) === undefined) {
      return { status: "refused", reason: "unknownSender" };
    }
    const recipient = item.to === item.from ? undefined : this.#roster.current(row.roomId, item.to);
    if (recipient === undefined) return { status: "refused", reason: "unknownRecipient" };
    if (row.itemBytes + body.length > this.#limits.maxRoomBytes) {
      return { status: "refused", reason: "roomFull" };
    }
    const seq = nextSequence(row);
    if (row.headSeq - recipient.lastAck >= this.#limits.maxItemsPerMember) {
      const pending = this.#pendingOf(row, recipient);
      if (pending >= this.#limits.maxItemsPerMember) {
        // No sequence is used: the sender is told, and the recipient has nothing to learn.
        this.#setPending.run(pending, recipient.refusing, row.roomId, item.to);
        return { status: "refused", reason: "recipientFull" };
      }
      this.#setPending.run(pending + 1, 0, row.roomId, item.to);
    }
    const time = Math.max(this.#now(), row.lastTime);
    this.#insert.run(row.roomId, seq, ItemKind.envelope, item.from, item.to, time, body);
    this.#rooms.appended(row.roomId, { seq, time, items: 1, bytes: body.length });
    return { status: "stored", seq };
  }

  /** See {@linkcode RelayStore.read}. @example `items.read("ops", 2, { afterSeq: 0 })` */
  read(room: string, memberId: number, options: ReadOptions): ReadResult | undefined {
    const name = nameBytes(room, "room name");
    checkMemberId(memberId);
    checkSequence(options.afterSeq, "afterSeq");
    const limit = options.limit ?? DEFAULT_READ_LIMIT;
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_READ_LIMIT) {
      throw new StoreInputError(`read limit must be a whole number from 1 to ${MAX_READ_LIMIT}`);
    }
    const found = this.#member(name, memberId);
    if (found === undefined) return undefined;
    const { row, member } = found;
    const after = Math.max(options.afterSeq, member.joinedSeq);
    const statement = this.#refuses(row.roomId, memberId) ? this.#readFull : this.#readFast;
    const items =
      (statement.all({ r: row.roomId, m: memberId, after, n: limit + 1 }) as unknown as RawItem[])
        .map(toItem);
    const gaps = (this.#gaps.all(row.roomId, memberId, after, limit + 1) as unknown as RawGap[])
      .map(toGap);
    const merged: StoredEntry[] = [];
    let i = 0;
    let g = 0;
    while (merged.length <= limit && (i < items.length || g < gaps.length)) {
      if (g >= gaps.length || (i < items.length && items[i].seq < gaps[g].seq)) {
        merged.push(items[i++]);
      } else {
        merged.push(gaps[g++]);
      }
    }
    const more = merged.length > limit;
    const entries = more ? merged.slice(0, limit) : merged;
    let nextAfterSeq = Math.max(after, row.headSeq);
    if (more) {
      const last = entries[entries.length - 1];
      nextAfterSeq = last.kind === "gap" ? last.toSeq : last.seq;
    }
    return { entries, nextAfterSeq, more, head: row.headSeq };
  }

  /** See {@linkcode RelayStore.ack}. @example `items.ack("ops", 2, 17)` */
  ack(room: string, memberId: number, seq: number): number | undefined {
    const name = nameBytes(room, "room name");
    checkMemberId(memberId);
    checkSequence(seq);
    const found = this.#member(name, memberId);
    if (found === undefined) return undefined;
    const { row, member } = found;
    const upto = Math.min(seq, row.headSeq);
    if (upto <= member.lastAck) return member.lastAck;
    // Still far behind: keep its count; back within reach: stop counting.
    const stillBehind = member.tracked !== 0 &&
      row.headSeq - upto >= this.#limits.maxItemsPerMember;
    const pending = stillBehind
      ? Math.max(0, member.pending - this.#count(row.roomId, memberId, member.lastAck, upto))
      : 0;
    // Envelopes are for one member: once it has them, nobody needs them.
    const dropped = this.#dropEnvelopes.all(row.roomId, memberId, upto) as { size: number }[];
    this.#rooms.removed(row.roomId, dropped.length, sum(dropped));
    const closed = (this.#dropGaps.all(row.roomId, memberId, upto) as { gap_id: number }[])
      .some((gap) => gap.gap_id === member.refusing);
    const refusing = stillBehind && !closed && pending >= this.#limits.maxItemsPerMember
      ? member.refusing
      : 0;
    this.#ackMember.run(upto, stillBehind ? 1 : 0, pending, refusing, row.roomId, memberId);
    return upto;
  }

  /** A laggard's exact count of waiting items: kept while tracked, else counted now (once). */
  #pendingOf(row: RoomRow, member: MemberRow): number {
    if (member.tracked !== 0) return member.pending;
    return this.#count(row.roomId, member.memberId, member.lastAck, row.headSeq);
  }

  /** Items for the member with sequences in (after, upto]. */
  #count(roomId: number, memberId: number, after: number, upto: number): number {
    const statement = this.#refuses(roomId, memberId) ? this.#countFull : this.#countFast;
    return (statement.get({ r: roomId, m: memberId, after, upto }) as { n: number }).n;
  }

  #member(name: Uint8Array, memberId: number): { row: RoomRow; member: MemberRow } | undefined {
    const row = this.#rooms.find(name);
    if (row === undefined) return undefined;
    const member = this.#roster.current(row.roomId, memberId);
    return member === undefined ? undefined : { row, member };
  }

  #refuses(roomId: number, memberId: number): boolean {
    return this.#hasRefusals.get(roomId, memberId) !== undefined;
  }
}

function toMemberRow(raw: RawLaggard): MemberRow {
  return {
    memberId: raw.member_id,
    lastAck: raw.last_ack,
    joinedSeq: raw.joined_seq,
    tracked: raw.tracked,
    pending: raw.pending,
    refusing: raw.refusing,
  };
}

function nextSequence(row: RoomRow): number {
  if (row.headSeq >= MAX_SEQUENCE) {
    // 2^53 items in one room: unreachable in practice, but never wrap.
    throw new StoreInputError("the room has used every sequence number");
  }
  return row.headSeq + 1;
}

function toItem(raw: RawItem): StoredItem {
  return raw.kind === ItemKind.group
    ? { kind: "group", seq: raw.seq, from: raw.sender, time: raw.stored_at, body: raw.body }
    : {
      kind: "envelope",
      seq: raw.seq,
      from: raw.sender,
      to: raw.recipient,
      time: raw.stored_at,
      body: raw.body,
    };
}

function toGap(raw: RawGap): GapNotice {
  return {
    kind: "gap",
    seq: raw.from_seq,
    toSeq: raw.to_seq,
    count: raw.count,
    reason: raw.reason === GapReason.refused ? "refused" : "expired",
  };
}
