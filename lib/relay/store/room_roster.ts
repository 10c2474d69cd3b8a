/**
 * The roster of a room in the JetStream store's view: joining (a new entry,
 * or a new announcement for the same identity and nick), finding, renaming
 * and removing entries, with the SQLite store's rules (`sqlite_roster.ts`).
 * Called only while applying a log event (`findMember` also on reads).
 *
 * @module
 */

import {
  type AddMemberResult,
  MAX_MEMBER_ID,
  type NewMember,
  type RenameResult,
  type RosterMember,
} from "./relay_store.ts";
import {
  type MemberState,
  publicMember,
  type RoomLimits,
  type RoomState,
  sameBytes,
} from "./room_state.ts";

/** See `RelayStore.addMember`. @example `addMember(room, member, { time, limits })` */
export function addMember(
  room: RoomState,
  member: NewMember,
  at: { time: number; limits: RoomLimits },
): AddMemberResult {
  const holderId = room.nicks.get(member.nick);
  if (holderId !== undefined) {
    const holder = room.members.get(holderId)!;
    if (!sameBytes(holder.identityKey, member.identityKey)) {
      return { status: "nickTaken", holder: holderId };
    }
    holder.announcement = new Uint8Array(member.announcement);
    return { status: "existing", member: publicMember(holder) };
  }
  if (room.memberCount >= at.limits.maxMembersPerRoom || room.nextMember > MAX_MEMBER_ID) {
    return { status: "rosterFull" };
  }
  const entry: MemberState = {
    memberId: room.nextMember++,
    identityKey: new Uint8Array(member.identityKey),
    nick: member.nick,
    announcement: new Uint8Array(member.announcement),
    joinedAt: at.time,
    joinedSeq: room.head,
    lastAck: room.head,
    tracked: false,
    pending: 0,
    refusing: 0,
  };
  room.memberCount++;
  room.members.set(entry.memberId, entry);
  room.nicks.set(entry.nick, entry.memberId);
  return { status: "added", member: publicMember(entry) };
}

/** See `RelayStore.findMember`. @example `findMember(room, key, "alice")` */
export function findMember(
  room: RoomState,
  identityKey: Uint8Array,
  nick: string,
): RosterMember | undefined {
  let best: MemberState | undefined;
  for (const member of room.members.values()) {
    if (member.nick !== nick || !sameBytes(member.identityKey, identityKey)) continue;
    // A current entry first, else the latest removed one.
    if (member.removedAt === undefined) return publicMember(member);
    best = member;
  }
  return best === undefined ? undefined : publicMember(best);
}

/** See `RelayStore.renameMember`. @example `renameMember(room, 3, "al")` */
export function renameMember(room: RoomState, memberId: number, nick: string): RenameResult {
  const member = room.current(memberId);
  if (member === undefined) return { status: "unknownMember" };
  const holder = room.nicks.get(nick);
  if (holder !== undefined && holder !== memberId) return { status: "nickTaken", holder };
  room.nicks.delete(member.nick);
  member.nick = nick;
  room.nicks.set(nick, memberId);
  return { status: "renamed", member: publicMember(member) };
}

/** See `RelayStore.removeMember`. @example `removeMember(room, 3, time)` */
export function removeMember(room: RoomState, memberId: number, time: number): boolean {
  const member = room.current(memberId);
  if (member === undefined) return false;
  member.removedAt = time;
  member.tracked = false;
  member.pending = 0;
  member.refusing = 0;
  room.memberCount--;
  room.nicks.delete(member.nick);
  room.items.dropEnvelopes(memberId);
  room.gaps.delete(memberId);
  return true;
}
