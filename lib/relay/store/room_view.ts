/**
 * A relay's view of one room of the JetStream store: the room's state as of
 * one event of its log, and the application of further events. Each event's
 * operations run in order under the event's own time and limits, so the
 * result of an operation is the same on every relay.
 *
 * @module
 */

import type { RoomEvent, RoomOp } from "./room_events.ts";
import { pruneRoom, type RoomPruneResult } from "./room_prune.ts";
import { addMember, removeMember, renameMember } from "./room_roster.ts";
import { publicMember, type RoomLimits, RoomState, sameBytes } from "./room_state.ts";
import {
  type AddMemberResult,
  type EnvelopeAppendResult,
  type GroupAppendResult,
  MAX_MEMBER_ID,
  type RenameResult,
} from "./relay_store.ts";

/** What one operation returned, by operation type. */
export type OpResult =
  | AddMemberResult
  | RenameResult
  | GroupAppendResult
  | EnvelopeAppendResult
  | RoomPruneResult
  | boolean
  | number
  | undefined;

/**
 * A room's state plus the stream sequence of the last event applied.
 *
 * @example
 * ```ts
 * const view = new RoomView();
 * const results = view.apply(event, 42);
 * view.logSeq; // 42
 * ```
 */
export class RoomView {
  state = new RoomState();
  /** Stream sequence of the last event applied (0: none). */
  logSeq = 0;
  /** Events applied since the view was loaded or last snapshotted. */
  eventsSinceSnapshot = 0;

  /**
   * Applies one event stored at stream sequence `at`; returns each
   * operation's result.
   *
   * @example
   * ```ts
   * view.apply(decodeEvent(message.data), message.seq);
   * ```
   */
  apply(event: RoomEvent, at: number): OpResult[] {
    const when = { time: event.time, limits: event.limits };
    const results = event.ops.map((op, index): OpResult => {
      const state = this.state;
      switch (op.type) {
        case "add":
          // As a room is created by its first join in relay.db.
          if (state.createdAt === 0) state.createdAt = at;
          return addMember(state, op, when);
        case "rename":
          return renameMember(state, op.memberId, op.nick);
        case "remove":
          return removeMember(state, op.memberId, event.time);
        case "group":
          return state.appendGroup(op.from, op.body.length, { at, op: index }, when);
        case "envelope":
          return state.appendEnvelope(op.from, op.to, op.body.length, { at, op: index }, when);
        case "ack":
          return state.ack(op.memberId, op.seq, event.limits);
        case "prune": {
          const result = pruneRoom(state, { ...when, budget: op.budget });
          // Nothing left: the room starts again from scratch, as a new one would.
          if (result.forgetRoom) this.state = new RoomState();
          return result;
        }
      }
    });
    this.logSeq = at;
    this.eventsSinceSnapshot++;
    return results;
  }

  /** True while the room holds anything (a roster entry or an item). @example `view.exists` */
  get exists(): boolean {
    return this.state.members.size > 0 || this.state.items.count > 0;
  }
}

/**
 * The result of `op` when the room's state already decides it without any
 * change (a refusal, an acknowledgement that moves nothing), so that no
 * event need be written; undefined when the operation must go through the
 * log. Only ever a refusal the log would give too: a caller that gets one
 * from a view it has not just refreshed refreshes and asks again.
 *
 * @example
 * ```ts
 * const settled = settledWithoutChange(view.state, op, limits);
 * if (settled !== undefined) return settled.result;
 * ```
 */
export function settledWithoutChange(
  state: RoomState,
  op: RoomOp,
  limits: RoomLimits,
): { result: OpResult } | undefined {
  switch (op.type) {
    case "add": {
      const holder = state.nicks.get(op.nick);
      if (holder !== undefined) {
        const member = state.members.get(holder)!;
        if (!sameBytes(member.identityKey, op.identityKey)) {
          return { result: { status: "nickTaken", holder } };
        }
        // Rejoining with the same announcement changes nothing.
        return sameBytes(member.announcement, op.announcement)
          ? { result: { status: "existing", member: publicMember(member) } }
          : undefined;
      }
      return state.memberCount >= limits.maxMembersPerRoom || state.nextMember > MAX_MEMBER_ID
        ? { result: { status: "rosterFull" } }
        : undefined;
    }
    case "rename": {
      if (state.current(op.memberId) === undefined) return { result: { status: "unknownMember" } };
      const holder = state.nicks.get(op.nick);
      return holder !== undefined && holder !== op.memberId
        ? { result: { status: "nickTaken", holder } }
        : undefined;
    }
    case "remove":
      return state.current(op.memberId) === undefined ? { result: false } : undefined;
    case "group":
    case "envelope": {
      if (state.current(op.from) === undefined) {
        return { result: { status: "refused", reason: "unknownSender" } };
      }
      if (
        op.type === "envelope" && (op.to === op.from || state.current(op.to) === undefined)
      ) {
        return { result: { status: "refused", reason: "unknownRecipient" } };
      }
      return state.items.bytes + op.body.length > limits.maxRoomBytes
        ? { result: { status: "refused", reason: "roomFull" } }
        : undefined;
    }
    case "ack": {
      const member = state.current(op.memberId);
      if (member === undefined) return { result: undefined };
      return Math.min(op.seq, state.head) <= member.lastAck
        ? { result: member.lastAck }
        : undefined;
    }
    case "prune":
      return undefined;
  }
}
