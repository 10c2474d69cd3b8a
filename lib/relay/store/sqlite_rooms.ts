/**
 * The `rooms` table of the SQLite store: one row per room with its last
 * sequence, its next member id and the size of what it keeps. Every
 * operation runs inside the caller's transaction.
 *
 * @module
 */

import type { DatabaseSync, StatementSync } from "node:sqlite";

/** A row of `rooms`. */
export interface RoomRow {
  roomId: number;
  /** Last sequence handed out (0 before the first). */
  headSeq: number;
  /** Member id the next new entry gets. */
  nextMember: number;
  /** Current members. */
  memberCount: number;
  itemCount: number;
  itemBytes: number;
  /** Latest `stored_at`: item times never go backwards within a room. */
  lastTime: number;
}

interface RawRoom {
  room_id: number;
  head_seq: number;
  next_member: number;
  member_count: number;
  item_count: number;
  item_bytes: number;
  last_time: number;
}

/**
 * Reads and updates `rooms`.
 *
 * @example
 * ```ts
 * const rooms = new RoomTable(db);
 * const room = rooms.find(utf8("ops"));
 * ```
 */
export class RoomTable {
  #find: StatementSync;
  #insert: StatementSync;
  #appended: StatementSync;
  #removed: StatementSync;
  #takeMemberId: StatementSync;
  #members: StatementSync;

  /** @example `new RoomTable(db)` */
  constructor(db: DatabaseSync) {
    this.#find = db.prepare(
      "SELECT room_id, head_seq, next_member, member_count, item_count, item_bytes, last_time " +
        "FROM rooms WHERE name = ?",
    );
    this.#insert = db.prepare("INSERT INTO rooms (name) VALUES (?)");
    this.#appended = db.prepare(
      "UPDATE rooms SET head_seq = ?, item_count = item_count + ?, " +
        "item_bytes = item_bytes + ?, last_time = ? WHERE room_id = ?",
    );
    this.#removed = db.prepare(
      "UPDATE rooms SET item_count = item_count - ?, item_bytes = item_bytes - ? " +
        "WHERE room_id = ?",
    );
    this.#takeMemberId = db.prepare(
      "UPDATE rooms SET next_member = next_member + 1, member_count = member_count + 1 " +
        "WHERE room_id = ? RETURNING next_member - 1 AS id",
    );
    this.#members = db.prepare(
      "UPDATE rooms SET member_count = member_count - 1 WHERE room_id = ?",
    );
  }

  /** The room with this name (UTF-8 bytes), if it exists. @example `rooms.find(name)` */
  find(name: Uint8Array): RoomRow | undefined {
    const raw = this.#find.get(name) as RawRoom | undefined;
    return raw === undefined ? undefined : toRoom(raw);
  }

  /** The room with this name, created when missing. @example `rooms.findOrCreate(name)` */
  findOrCreate(name: Uint8Array): RoomRow {
    const found = this.find(name);
    if (found !== undefined) return found;
    this.#insert.run(name);
    return this.find(name)!;
  }

  /**
   * Records an append: the new last sequence and time, and what was stored
   * (`items` 0 when the item was kept for nobody).
   *
   * @example
   * ```ts
   * rooms.appended(room.roomId, { seq, time, items: 1, bytes: body.length });
   * ```
   */
  appended(roomId: number, change: { seq: number; time: number; items: number; bytes: number }) {
    this.#appended.run(change.seq, change.items, change.bytes, change.time, roomId);
  }

  /** Records deleted items. @example `rooms.removed(roomId, 3, 600)` */
  removed(roomId: number, items: number, bytes: number): void {
    if (items > 0) this.#removed.run(items, bytes, roomId);
  }

  /**
   * Hands out the room's next member id and counts the new member.
   *
   * @example
   * ```ts
   * const id = rooms.takeMemberId(roomId);
   * ```
   */
  takeMemberId(roomId: number): number {
    return (this.#takeMemberId.get(roomId) as { id: number }).id;
  }

  /** Counts a member gone. @example `rooms.memberRemoved(roomId)` */
  memberRemoved(roomId: number): void {
    this.#members.run(roomId);
  }
}

function toRoom(raw: RawRoom): RoomRow {
  return {
    roomId: raw.room_id,
    headSeq: raw.head_seq,
    nextMember: raw.next_member,
    memberCount: raw.member_count,
    itemCount: raw.item_count,
    itemBytes: raw.item_bytes,
    lastTime: raw.last_time,
  };
}
