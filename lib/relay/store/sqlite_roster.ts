/**
 * Rosters in the SQLite store (`members` table): one row per membership,
 * keyed by (room, member id). A current member has `removed_at` NULL; its
 * nick is unique among the room's current members (a partial unique index).
 * Removing a member keeps its row (a tombstone, forgotten by `prune` after
 * the retention time) and deletes what was kept for it.
 *
 * @module
 */

import type { DatabaseSync, StatementSync } from "node:sqlite";
import {
  type AddMemberResult,
  checkBytes,
  checkIdentityKey,
  checkMemberId,
  MAX_MEMBER_ID,
  nameBytes,
  type NewMember,
  type RenameResult,
  type RosterMember,
  type StoreLimits,
} from "./relay_store.ts";
import { ItemKind } from "./sqlite_database.ts";
import type { RoomTable } from "./sqlite_rooms.ts";

/** A `members` row as the other tables need it. */
export interface MemberRow {
  memberId: number;
  lastAck: number;
  joinedSeq: number;
  /** 1 while `pending` is kept up to date (the member is far enough behind to reach the limit). */
  tracked: number;
  /** Items kept for it after `lastAck`, while `tracked`. */
  pending: number;
  /** `gap_id` of the member's open refused range, 0 when none. */
  refusing: number;
}

interface RawMember {
  member_id: number;
  identity_key: Uint8Array;
  nick: Uint8Array;
  announcement: Uint8Array;
  joined_at: number;
  joined_seq: number;
  last_ack: number;
  removed_at: number | null;
}

const COLUMNS = "member_id, identity_key, nick, announcement, joined_at, joined_seq, last_ack, " +
  "removed_at";

const decoder = new TextDecoder();

/** Options for {@linkcode RosterTable}. */
export interface RosterTableOptions {
  db: DatabaseSync;
  rooms: RoomTable;
  limits: Readonly<StoreLimits>;
  /** The store's clock, in ms. */
  now: () => number;
}

/**
 * Adds, finds, renames and removes roster entries.
 *
 * @example
 * ```ts
 * const roster = new RosterTable({ db, rooms, limits, now: Date.now });
 * roster.add("ops", { identityKey, nick: "alice", announcement });
 * ```
 */
export class RosterTable {
  #rooms: RoomTable;
  #limits: Readonly<StoreLimits>;
  #now: () => number;
  #byNick: StatementSync;
  #byIdentity: StatementSync;
  #byId: StatementSync;
  #current: StatementSync;
  #list: StatementSync;
  #listAll: StatementSync;
  #insert: StatementSync;
  #setAnnouncement: StatementSync;
  #rename: StatementSync;
  #remove: StatementSync;
  #dropEnvelopes: StatementSync;
  #dropGaps: StatementSync;

  /** @example `new RosterTable({ db, rooms, limits, now })` */
  constructor(options: RosterTableOptions) {
    const { db } = options;
    this.#rooms = options.rooms;
    this.#limits = options.limits;
    this.#now = options.now;
    this.#byNick = db.prepare(
      `SELECT ${COLUMNS} FROM members WHERE room_id = ? AND nick = ? AND removed_at IS NULL`,
    );
    this.#byIdentity = db.prepare(
      `SELECT ${COLUMNS} FROM members WHERE room_id = ? AND identity_key = ? AND nick = ? ` +
        "ORDER BY removed_at IS NULL DESC, member_id DESC LIMIT 1",
    );
    this.#byId = db.prepare(`SELECT ${COLUMNS} FROM members WHERE room_id = ? AND member_id = ?`);
    this.#current = db.prepare(
      "SELECT member_id, last_ack, joined_seq, tracked, pending, refusing FROM members " +
        "WHERE room_id = ? AND member_id = ? AND removed_at IS NULL",
    );
    this.#list = db.prepare(
      `SELECT ${COLUMNS} FROM members WHERE room_id = ? AND removed_at IS NULL ORDER BY member_id`,
    );
    this.#listAll = db.prepare(
      `SELECT ${COLUMNS} FROM members WHERE room_id = ? ORDER BY member_id`,
    );
    this.#insert = db.prepare(
      "INSERT INTO members (room_id, member_id, identity_key, nick, announcement, joined_at, " +
        "joined_seq, last_ack) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    );
    this.#setAnnouncement = db.prepare(
      "UPDATE members SET announcement = ? WHERE room_id = ? AND member_id = ?",
    );
    this.#rename = db.prepare("UPDATE members SET nick = ? WHERE room_id = ? AND member_id = ?");
    this.#remove = db.prepare(
      "UPDATE members SET removed_at = ?, tracked = 0, pending = 0, refusing = 0 " +
        "WHERE room_id = ? AND member_id = ?",
    );
    this.#dropEnvelopes = db.prepare(
      `DELETE FROM items WHERE room_id = ? AND recipient = ? AND kind = ${ItemKind.envelope} ` +
        "RETURNING length(body) AS size",
    );
    this.#dropGaps = db.prepare("DELETE FROM gaps WHERE room_id = ? AND member_id = ?");
  }

  /** See {@linkcode RelayStore.addMember}. @example `roster.add("ops", member)` */
  add(room: string, member: NewMember): AddMemberResult {
    const name = nameBytes(room, "room name");
    const nick = nameBytes(member.nick, "nick");
    const identityKey = checkIdentityKey(member.identityKey);
    const announcement = checkBytes(
      member.announcement,
      "announcement",
      this.#limits.maxAnnouncementBytes,
      1,
    );
    const row = this.#rooms.findOrCreate(name);
    const holder = this.#byNick.get(row.roomId, nick) as RawMember | undefined;
    if (holder !== undefined) {
      if (!sameBytes(holder.identity_key, identityKey)) {
        return { status: "nickTaken", holder: holder.member_id };
      }
      this.#setAnnouncement.run(announcement, row.roomId, holder.member_id);
      return { status: "existing", member: toMember({ ...holder, announcement }) };
    }
    if (row.memberCount >= this.#limits.maxMembersPerRoom || row.nextMember > MAX_MEMBER_ID) {
      return { status: "rosterFull" };
    }
    const memberId = this.#rooms.takeMemberId(row.roomId);
    const joinedAt = this.#now();
    this.#insert.run(
      row.roomId,
      memberId,
      identityKey,
      nick,
      announcement,
      joinedAt,
      row.headSeq,
      row.headSeq,
    );
    return {
      status: "added",
      member: {
        memberId,
        identityKey: identityKey.slice(),
        nick: member.nick,
        announcement: announcement.slice(),
        joinedAt,
        joinedSeq: row.headSeq,
        lastAck: row.headSeq,
      },
    };
  }

  /** See {@linkcode RelayStore.findMember}. @example `roster.find("ops", key, "alice")` */
  find(room: string, identityKey: Uint8Array, nick: string): RosterMember | undefined {
    const name = nameBytes(room, "room name");
    const nickBytes = nameBytes(nick, "nick");
    checkIdentityKey(identityKey);
    const row = this.#rooms.find(name);
    if (row === undefined) return undefined;
    const raw = this.#byIdentity.get(row.roomId, identityKey, nickBytes) as RawMember | undefined;
    return raw === undefined ? undefined : toMember(raw);
  }

  /** See {@linkcode RelayStore.getMember}. @example `roster.get("ops", 3)` */
  get(room: string, memberId: number): RosterMember | undefined {
    const name = nameBytes(room, "room name");
    checkMemberId(memberId);
    const row = this.#rooms.find(name);
    if (row === undefined) return undefined;
    const raw = this.#byId.get(row.roomId, memberId) as RawMember | undefined;
    return raw === undefined ? undefined : toMember(raw);
  }

  /** See {@linkcode RelayStore.listMembers}. @example `roster.list("ops", false)` */
  list(room: string, includeRemoved: boolean): RosterMember[] {
    const name = nameBytes(room, "room name");
    const row = this.#rooms.find(name);
    if (row === undefined) return [];
    const statement = includeRemoved ? this.#listAll : this.#list;
    return (statement.all(row.roomId) as unknown as RawMember[]).map(toMember);
  }

  /** See {@linkcode RelayStore.renameMember}. @example `roster.rename("ops", 3, "al")` */
  rename(room: string, memberId: number, nick: string): RenameResult {
    const name = nameBytes(room, "room name");
    checkMemberId(memberId);
    const nickBytes = nameBytes(nick, "nick");
    const row = this.#rooms.find(name);
    if (row === undefined || this.#current.get(row.roomId, memberId) === undefined) {
      return { status: "unknownMember" };
    }
    const holder = this.#byNick.get(row.roomId, nickBytes) as RawMember | undefined;
    if (holder !== undefined && holder.member_id !== memberId) {
      return { status: "nickTaken", holder: holder.member_id };
    }
    this.#rename.run(nickBytes, row.roomId, memberId);
    return {
      status: "renamed",
      member: toMember(this.#byId.get(row.roomId, memberId) as unknown as RawMember),
    };
  }

  /** See {@linkcode RelayStore.removeMember}. @example `roster.remove("ops", 3)` */
  remove(room: string, memberId: number): boolean {
    const name = nameBytes(room, "room name");
    checkMemberId(memberId);
    const row = this.#rooms.find(name);
    if (row === undefined || this.#current.get(row.roomId, memberId) === undefined) return false;
    this.#remove.run(this.#now(), row.roomId, memberId);
    this.#rooms.memberRemoved(row.roomId);
    const dropped = this.#dropEnvelopes.all(row.roomId, memberId) as { size: number }[];
    this.#rooms.removed(row.roomId, dropped.length, sum(dropped));
    this.#dropGaps.run(row.roomId, memberId);
    return true;
  }

  /**
   * The current member with this id, for the item and prune operations.
   *
   * @example
   * ```ts
   * const sender = roster.current(room.roomId, item.from);
   * ```
   */
  current(roomId: number, memberId: number): MemberRow | undefined {
    const raw = this.#current.get(roomId, memberId) as
      | {
        member_id: number;
        last_ack: number;
        joined_seq: number;
        tracked: number;
        pending: number;
        refusing: number;
      }
      | undefined;
    if (raw === undefined) return undefined;
    return {
      memberId: raw.member_id,
      lastAck: raw.last_ack,
      joinedSeq: raw.joined_seq,
      tracked: raw.tracked,
      pending: raw.pending,
      refusing: raw.refusing,
    };
  }
}

function toMember(raw: RawMember): RosterMember {
  const member: RosterMember = {
    memberId: raw.member_id,
    identityKey: raw.identity_key,
    nick: decoder.decode(raw.nick),
    announcement: raw.announcement,
    joinedAt: raw.joined_at,
    joinedSeq: raw.joined_seq,
    lastAck: raw.last_ack,
  };
  if (raw.removed_at !== null) member.removedAt = raw.removed_at;
  return member;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  // Public keys, not secrets: an ordinary comparison is fine.
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

/**
 * Sums the `size` column of deleted rows.
 *
 * @example
 * ```ts
 * sum([{ size: 3 }, { size: 4 }]); // 7
 * ```
 */
export function sum(rows: { size: number }[]): number {
  let total = 0;
  for (const row of rows) total += row.size;
  return total;
}
