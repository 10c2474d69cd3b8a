/**
 * A durable room as one relay sees it: the members connected here (each
 * with how far it has been sent the room's items), those connected to other
 * relays sharing the store, and the order in which stored items reach the
 * members here. Used by durable_rooms.ts and member_requests.ts.
 *
 * @module
 */

import type { MemberEntry, RelayRecord } from "../transport/records.ts";
import type { LogLevel } from "./observer.ts";
import type { MemberLink } from "./member_link.ts";
import type { RelayStore, RosterMember } from "./store/relay_store.ts";
import { sendStored } from "./catch_up.ts";

/** Bytes of pairwise messages held for one member while its catch-up runs. */
export const MAX_HELD_BYTES = 4 * 1024 * 1024;

/** A member connected now. */
export interface Present {
  link: MemberLink;
  room: Room;
  memberId: number;
  nick: string;
  /** Every item for it up to here has been sent (catch-up, then live). */
  sentUpTo: number;
  /** False while its catch-up runs: live items then reach it through the catch-up. */
  live: boolean;
  /**
   * Pairwise messages that came for it during its catch-up, sent right after
   * it: a key its sender re-sends on seeing it online must not overtake the
   * stored messages under that sender's earlier iterations.
   */
  held: { record: RelayRecord; bytes: number }[];
  heldBytes: number;
  /** watch-read id → sequence. */
  watches: Map<number, number>;
  /** Set once it left, was replaced or disconnected. */
  gone: boolean;
}

/** A durable room with members here. */
export interface Room {
  name: string;
  present: Map<number, Present>;
  /** Members connected to other relays sharing the store: member id → relay. */
  remote: Map<number, string>;
  /** Every item up to here has been handled for the live members. */
  deliveredTo: number;
  /** Stops hearing the room's feed. */
  unsubscribe?: () => void;
  /** Deliveries, in the order of the appends (sequence order). */
  chain: Promise<void>;
}

/**
 * Runs `step` after every delivery already chained in `room` (the order of
 * the appends, which is the order of their sequence numbers); resolves when
 * it ran.
 *
 * @example
 * ```ts
 * await inOrder(log, room, () => deliverStored(store, room, seq));
 * ```
 */
export function inOrder(
  log: (line: string, level?: LogLevel) => void,
  room: Room,
  step: () => Promise<void> | void,
): Promise<void> {
  const done = room.chain.then(step);
  room.chain = done.catch((error) =>
    log(`room ${room.name}: delivery failed: ${(error as Error).message}`, "error")
  );
  return done;
}

/**
 * Hands the item `seq` to the live members: at once through `push` when
 * every item before it has been handled (one relay: always), else by
 * reading from the store what each live member has not had (another relay
 * appended in between), which keeps every member's order.
 *
 * @example
 * ```ts
 * await deliverStored(store, room, 42, (member) => member.link.send(record));
 * ```
 */
export async function deliverStored(
  store: RelayStore,
  room: Room,
  seq: number,
  push?: (member: Present) => void,
): Promise<void> {
  if (seq <= room.deliveredTo) return;
  if (push !== undefined && seq === room.deliveredTo + 1) {
    room.deliveredTo = seq;
    for (const member of room.present.values()) {
      if (!member.live || seq <= member.sentUpTo) continue;
      member.sentUpTo = seq;
      push(member);
    }
    return;
  }
  // Never past the store's own head: a feed event claiming a later item (another relay's
  // bug, or a hostile NATS publisher) must not stop the items that really come next.
  let head = room.deliveredTo;
  for (const member of [...room.present.values()]) {
    if (!member.live) continue;
    const position = await sendStored({
      store,
      room: room.name,
      memberId: member.memberId,
      afterSeq: member.sentUpTo,
      link: member.link,
    });
    if (position === undefined) continue;
    member.sentUpTo = Math.max(member.sentUpTo, position.sentUpTo);
    head = Math.max(head, position.head);
  }
  room.deliveredTo = Math.max(room.deliveredTo, Math.min(seq, head));
}

/** Members online here or at another relay. @example `[...onlineIds(room)]` */

export function* onlineIds(room: Room): Iterable<number> {
  yield* room.present.keys();
  for (const id of room.remote.keys()) if (!room.present.has(id)) yield id;
}

/** @example `link.send({ type: "memberOnline", member: rosterEntry(room, member) })` */

/** The roster entry of `member`, online when it is here or at another relay. */
export function rosterEntry(room: Room, member: RosterMember): MemberEntry {
  return {
    memberId: member.memberId,
    identityPublicKey: member.identityKey,
    online: room.present.has(member.memberId) || room.remote.has(member.memberId),
    announcement: member.announcement,
  };
}

/** @example `toOthers(member, { type: "memberOffline", memberId: 3, reason: 0 })` */

/** Sends `record` to every member of the room connected here but `member`. */
export function toOthers(member: Present, record: RelayRecord): void {
  for (const other of member.room.present.values()) {
    if (other !== member) other.link.send(record);
  }
}

/**
 * Sends a pairwise message to `target` now, or holds it until its catch-up
 * is sent; false when the held bytes would pass {@linkcode MAX_HELD_BYTES}.
 *
 * @example
 * ```ts
 * if (!sendOrHold(target, record, envelope.length)) refuse();
 * ```
 */
export function sendOrHold(target: Present, record: RelayRecord, bytes: number): boolean {
  if (target.live) {
    target.link.send(record);
    return true;
  }
  if (target.heldBytes + bytes > MAX_HELD_BYTES) return false;
  target.held.push({ record, bytes });
  target.heldBytes += bytes;
  return true;
}

/** @example `await currentMember(store, "ops", 3)` */

/** The current (not removed) roster entry `memberId` of `room`. */
export async function currentMember(
  store: RelayStore,
  room: string,
  memberId: number,
): Promise<RosterMember | undefined> {
  const member = await store.getMember(room, memberId);
  return member === undefined || member.removedAt !== undefined ? undefined : member;
}
