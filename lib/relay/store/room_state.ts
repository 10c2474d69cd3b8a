/**
 * One room as the JetStream store sees it: roster, kept items (without
 * bodies), gap notices and counters, changed only by applying the room's
 * log events in log order. Applying is deterministic (the time and the
 * limits come from the event, never from the process), so every relay that
 * applies the same log holds the same room and hands out the same results:
 * the log is the room, this is a view of it.
 *
 * The rules are the SQLite store's, line for line (`sqlite_items.ts`,
 * `sqlite_roster.ts`): sequences 1, 2, 3... per room with no holes (the n-th
 * stored item of the log is sequence n), per-member limits counted the same
 * way (a member at least `maxItemsPerMember` behind is tracked), refused and
 * expired ranges kept as gap notices.
 *
 * @module
 */

import {
  type EnvelopeAppendResult,
  type GapNotice,
  type GroupAppendResult,
  MAX_SEQUENCE,
  type RosterMember,
  StoreError,
} from "./relay_store.ts";
import { ItemIndex, ItemKind, type ItemMeta } from "./room_items.ts";

/** Gap reasons, as in the SQLite store. */
export const GapReason = { expired: 1, refused: 2 } as const;

/** The limits an event is applied under (carried by each event). */
export interface RoomLimits {
  retentionMs: number;
  maxRoomBytes: number;
  maxItemsPerMember: number;
  maxMembersPerRoom: number;
}

/** A roster entry with the counters behind the per-member limit. */
export interface MemberState extends RosterMember {
  /** True while `pending` is kept up to date (the member is far behind). */
  tracked: boolean;
  /** Items kept for it after `lastAck`, while tracked. */
  pending: number;
  /** Id of its open refused gap, 0 when none. */
  refusing: number;
}

/** A gap notice as kept for one member. */
export interface GapState {
  id: number;
  from: number;
  to: number;
  count: number;
  reason: 1 | 2;
}

/** Where an applied operation's body lies: the event's stream sequence and the operation's index. */
export interface BodyPlace {
  at: number;
  op: number;
}

/** An entry of a catch-up before the bodies are fetched. */
export type PlannedEntry = { kind: "item"; item: ItemMeta } | GapNotice;

/**
 * A room's state; see the module comment. Every method that changes it is
 * called only while applying a log event.
 *
 * @example
 * ```ts
 * const room = new RoomState();
 * addMember(room, member, { time, limits }); // room_roster.ts
 * ```
 */
export class RoomState {
  head = 0;
  /** Stream sequence of the event that created the room (0: not created): rooms are pruned in this order. */
  createdAt = 0;
  nextMember = 1;
  memberCount = 0;
  lastTime = 0;
  nextGap = 1;
  /** Every entry, current and removed, in id order. */
  readonly members = new Map<number, MemberState>();
  /** Current members by nick. */
  readonly nicks = new Map<string, number>();
  readonly items = new ItemIndex();
  /** Gap notices per member, ordered by first sequence. */
  readonly gaps = new Map<number, GapState[]>();

  /** The current member with this id. @example `room.current(3)` */
  current(memberId: number): MemberState | undefined {
    const member = this.members.get(memberId);
    return member === undefined || member.removedAt !== undefined ? undefined : member;
  }

  /** Gap notices kept, for counts. @example `room.gapCount()` */
  gapCount(): number {
    let n = 0;
    for (const list of this.gaps.values()) n += list.length;
    return n;
  }

  /** See `RelayStore.appendGroup` (size and sender checked here too). @example `room.appendGroup(1, 9, place, at)` */
  appendGroup(
    from: number,
    size: number,
    place: BodyPlace,
    at: { time: number; limits: RoomLimits },
  ): GroupAppendResult {
    if (this.current(from) === undefined) return { status: "refused", reason: "unknownSender" };
    if (this.items.bytes + size > at.limits.maxRoomBytes) {
      return { status: "refused", reason: "roomFull" };
    }
    const seq = this.#nextSequence();
    const time = Math.max(at.time, this.lastTime);
    const max = at.limits.maxItemsPerMember;
    const refused: { memberId: number; reason: "recipientFull" }[] = [];
    for (const laggard of this.members.values()) {
      if (laggard.removedAt !== undefined || laggard.memberId === from) continue;
      if (laggard.lastAck > this.head - max) continue;
      const pending = this.#pendingOf(laggard);
      laggard.tracked = true;
      if (pending < max) {
        // Kept for it: its refused range, if any, ends here.
        laggard.pending = pending + 1;
        laggard.refusing = 0;
        continue;
      }
      refused.push({ memberId: laggard.memberId, reason: "recipientFull" });
      laggard.pending = pending;
      const open = laggard.refusing === 0
        ? undefined
        : this.gaps.get(laggard.memberId)?.find((gap) => gap.id === laggard.refusing);
      if (open !== undefined) {
        open.to = seq;
        open.count++;
      } else {
        laggard.refusing = this.#addGap(laggard.memberId, {
          from: seq,
          to: seq,
          count: 1,
          reason: GapReason.refused,
        });
      }
    }
    const recipients = this.memberCount - 1 - refused.length;
    if (recipients > 0) {
      this.items.add({
        seq,
        kind: ItemKind.group,
        sender: from,
        recipient: 0,
        time,
        size,
        ...place,
      });
    }
    this.head = seq;
    this.lastTime = time;
    return { status: "stored", seq, recipients, refused };
  }

  /** See `RelayStore.appendEnvelope`. @example `room.appendEnvelope(1, 2, 9, place, at)` */
  appendEnvelope(
    from: number,
    to: number,
    size: number,
    place: BodyPlace,
    at: { time: number; limits: RoomLimits },
  ): EnvelopeAppendResult {
    if (this.current(from) === undefined) return { status: "refused", reason: "unknownSender" };
    const recipient = to === from ? undefined : this.current(to);
    if (recipient === undefined) return { status: "refused", reason: "unknownRecipient" };
    if (this.items.bytes + size > at.limits.maxRoomBytes) {
      return { status: "refused", reason: "roomFull" };
    }
    const seq = this.#nextSequence();
    const max = at.limits.maxItemsPerMember;
    if (this.head - recipient.lastAck >= max) {
      const pending = this.#pendingOf(recipient);
      recipient.tracked = true;
      recipient.pending = pending;
      // No sequence is used: the sender is told, and the recipient has nothing to learn.
      if (pending >= max) return { status: "refused", reason: "recipientFull" };
      recipient.pending = pending + 1;
      recipient.refusing = 0;
    }
    const time = Math.max(at.time, this.lastTime);
    this.items.add({
      seq,
      kind: ItemKind.envelope,
      sender: from,
      recipient: to,
      time,
      size,
      ...place,
    });
    this.head = seq;
    this.lastTime = time;
    return { status: "stored", seq };
  }

  /**
   * See `RelayStore.ack`: the member's new `lastAck`, or undefined when it
   * is not a current member.
   *
   * @example
   * ```ts
   * room.ack(2, 17, limits);
   * ```
   */
  ack(memberId: number, seq: number, limits: RoomLimits): number | undefined {
    const member = this.current(memberId);
    if (member === undefined) return undefined;
    const upto = Math.min(seq, this.head);
    if (upto <= member.lastAck) return member.lastAck;
    const max = limits.maxItemsPerMember;
    // Still far behind: keep its count; back within reach: stop counting.
    const stillBehind = member.tracked && this.head - upto >= max;
    const pending = stillBehind
      ? Math.max(0, member.pending - this.countFor(member, member.lastAck, upto))
      : 0;
    // Envelopes are for one member: once it has them, nobody needs them.
    this.items.dropEnvelopes(memberId, upto);
    const list = this.gaps.get(memberId) ?? [];
    const kept = list.filter((gap) => gap.to > upto);
    const closed = list.some((gap) => gap.id === member.refusing && gap.to <= upto);
    if (kept.length === 0) this.gaps.delete(memberId);
    else if (kept.length < list.length) this.gaps.set(memberId, kept);
    member.refusing = stillBehind && !closed && pending >= max ? member.refusing : 0;
    member.lastAck = upto;
    member.tracked = stillBehind;
    member.pending = pending;
    return upto;
  }

  /**
   * What a catch-up holds for a member after `afterSeq`: items (without
   * bodies) and gap notices in order, at most `limit` entries, with where
   * the next page starts. Undefined when it is not a current member.
   *
   * @example
   * ```ts
   * room.plan(2, 0, 1000);
   * ```
   */
  plan(memberId: number, afterSeq: number, limit: number):
    | { entries: PlannedEntry[]; nextAfterSeq: number; more: boolean; head: number }
    | undefined {
    const member = this.current(memberId);
    if (member === undefined) return undefined;
    const after = Math.max(afterSeq, member.joinedSeq);
    const items: ItemMeta[] = [];
    for (const item of this.items.after(after)) {
      if (items.length > limit) break;
      if (this.isFor(member, item)) items.push(item);
    }
    const gaps = (this.gaps.get(memberId) ?? []).filter((gap) => gap.to > after).slice(
      0,
      limit + 1,
    );
    const merged: PlannedEntry[] = [];
    let i = 0;
    let g = 0;
    while (merged.length <= limit && (i < items.length || g < gaps.length)) {
      if (g >= gaps.length || (i < items.length && items[i].seq < gaps[g].from)) {
        merged.push({ kind: "item", item: items[i++] });
      } else {
        merged.push(toNotice(gaps[g++]));
      }
    }
    const more = merged.length > limit;
    const entries = more ? merged.slice(0, limit) : merged;
    let nextAfterSeq = Math.max(after, this.head);
    if (more) {
      const last = entries[entries.length - 1];
      nextAfterSeq = last.kind === "gap" ? last.toSeq : last.item.seq;
    }
    return { entries, nextAfterSeq, more, head: this.head };
  }

  /** Whether a kept item is for this member (see sqlite_items.ts). @example `room.isFor(member, item)` */
  isFor(member: MemberState, item: ItemMeta): boolean {
    if (item.kind === ItemKind.envelope) return item.recipient === member.memberId;
    return item.sender !== member.memberId && !this.refusedAt(member.memberId, item.seq);
  }

  /** Whether `seq` lies in one of the member's refused ranges. @example `room.refusedAt(2, 9)` */
  refusedAt(memberId: number, seq: number): boolean {
    const list = this.gaps.get(memberId);
    if (list === undefined) return false;
    return list.some((gap) => gap.reason === GapReason.refused && gap.from <= seq && seq <= gap.to);
  }

  /** Items for the member with sequences in (after, upto]. @example `room.countFor(member, 0, 9)` */
  countFor(member: MemberState, after: number, upto: number): number {
    let n = 0;
    for (const item of this.items.after(after)) {
      if (item.seq > upto) break;
      if (this.isFor(member, item)) n++;
    }
    return n;
  }

  /** Adds a gap notice in order; returns its id. @example `room.addGap(2, gap)` */
  addGap(memberId: number, gap: Omit<GapState, "id">): number {
    return this.#addGap(memberId, gap);
  }

  #addGap(memberId: number, gap: Omit<GapState, "id">): number {
    const entry: GapState = { id: this.nextGap++, ...gap };
    const list = this.gaps.get(memberId);
    if (list === undefined) {
      this.gaps.set(memberId, [entry]);
    } else {
      list.push(entry);
      list.sort((a, b) => a.from - b.from);
    }
    return entry.id;
  }

  /** A laggard's exact count of waiting items: kept while tracked, else counted now. */
  #pendingOf(member: MemberState): number {
    if (member.tracked) return member.pending;
    return this.countFor(member, member.lastAck, this.head);
  }

  #nextSequence(): number {
    if (this.head >= MAX_SEQUENCE) {
      // 2^53 items in one room: unreachable in practice, but never wrap.
      throw new StoreError("the room has used every sequence number");
    }
    return this.head + 1;
  }
}

/**
 * A roster entry as the interface hands it out (a copy, without counters).
 *
 * @example
 * ```ts
 * publicMember(room.current(3)!).nick;
 * ```
 */
export function publicMember(member: MemberState): RosterMember {
  const out: RosterMember = {
    memberId: member.memberId,
    identityKey: new Uint8Array(member.identityKey),
    nick: member.nick,
    announcement: new Uint8Array(member.announcement),
    joinedAt: member.joinedAt,
    joinedSeq: member.joinedSeq,
    lastAck: member.lastAck,
  };
  if (member.removedAt !== undefined) out.removedAt = member.removedAt;
  return out;
}

function toNotice(gap: GapState): GapNotice {
  return {
    kind: "gap",
    seq: gap.from,
    toSeq: gap.to,
    count: gap.count,
    reason: gap.reason === GapReason.expired ? "expired" : "refused",
  };
}

/**
 * Compares public bytes (keys, announcements): an ordinary comparison, no secrets.
 *
 * @example
 * ```ts
 * sameBytes(member.identityKey, key); // true
 * ```
 */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  // Public keys, not secrets: an ordinary comparison is fine.
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}
