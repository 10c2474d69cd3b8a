/**
 * What one member of a room knows about another: the other's identity and
 * nick, its presence on this connection (the pairwise session, when it is
 * online), its sender key, which of this member's epochs it holds, and the
 * group messages held until its key arrives, within limits that keep one
 * hostile member (or relay) from spending this client's CPU and memory.
 *
 * In a durable room a member outlives connections: it goes offline and comes
 * back with a new presence, and its sender key and what it holds of ours are
 * kept (and persisted by the client) meanwhile.
 *
 * The room session (room.ts) keeps one {@linkcode RoomMember} per member and
 * decides what to show and send; this module keeps the state and applies the
 * receive rules of PROTOCOL.md ("Receiving group messages").
 *
 * @module
 */

import { TokenBucket } from "../core/rate_limit.ts";
import type { KeyPair } from "../crypto/noise.ts";
import { type PairwiseOutcome, type PairwiseRefusal, Presence } from "./presence.ts";
import {
  GroupMessageError,
  type GroupMessageFailure,
  InboundSenderKey,
  type SenderKeyState,
  type VerifiedGroupMessage,
  verifyGroupMessage,
} from "./sender_keys.ts";

/**
 * The receive limits, per member and per client (PROTOCOL.md, "Limits").
 *
 * @example
 * ```ts
 * RECEIVE_LIMITS.heldBytesPerClient; // 33554432
 * ```
 */
export const RECEIVE_LIMITS = {
  /** Group messages held for one sender while its key is on the way. */
  heldMessagesPerSender: 1024,
  /** Bytes of group messages held for one sender. */
  heldBytesPerSender: 4 * 1024 * 1024,
  /** Bytes of group messages held for all senders together. */
  heldBytesPerClient: 32 * 1024 * 1024,
  /** Skipped chain steps (messages jumped over) per second per member. */
  chainStepsPerSecond: 2_000,
  /** Skipped chain steps a member may cause at once: two full gaps of 2,000. */
  chainStepBurst: 4_000,
  /** How long an announced member has to complete its pairwise handshake. */
  answerWaitMs: 5_000,
  /** How long messages may wait for their sender's key before the user is told. */
  keyWaitMs: 5_000,
} as const;

/** A room member as this client knows it. */
export interface MemberInfo {
  /** Relay-assigned id for this connection. */
  memberId: number;
  /** Nick from the member's signed announcement. */
  nick: string;
  /** Fingerprint of the member's identity key. */
  fingerprint: string;
  /** The member's Ed25519 identity key. */
  identityPublicKey: Uint8Array;
  /** Whether this client shares its sender key with the member and accepts its messages. */
  trusted: boolean;
  /** Whether the member is connected now (in an ephemeral room, always). */
  online: boolean;
}

export type { PairwiseOutcome, PairwiseRefusal } from "./presence.ts";

/** What handing a member's group message to its state led to. */
export type GroupOutcome =
  | { kind: "held" }
  | { kind: "refused"; reason: GroupMessageFailure | "held-full" | "over-budget"; text: string }
  | { kind: "opened"; plaintext: Uint8Array; skipped: number };

/** What installing a new sender key did to the member's held messages and counters. */
export interface KeyInstalled {
  /** Messages of this sender that were sent and that this member will never read. */
  lost: number;
  /** Held messages that predate this member's first key from the sender: not meant for it. */
  predating: number;
  /** Held messages now readable, in arrival order. */
  released: VerifiedGroupMessage[];
  /** The sender's counter went back (it lost its state): not a gap. */
  counterReset: boolean;
}

/** Options for {@linkcode RoomMember}. */
export interface RoomMemberOptions {
  info: MemberInfo;
  /** Room name, for the pairwise prologue and group-message context. */
  room: string;
  /** This client's identity public key. */
  localIdentityPublicKey: Uint8Array;
  /** This client's presence key pair on this connection. */
  localPresence: KeyPair;
  /** Clock in milliseconds for the work budget. */
  now: () => number;
}

/**
 * One announced member and everything this client holds for it.
 *
 * @example
 * ```ts
 * const member = new RoomMember({ info, presenceKey, room, localIdentityPublicKey, localPresence,
 *   initial: true, announcedAt: Date.now(), now: Date.now });
 * const hello = member.startHandshake(); // undefined when the member initiates
 * ```
 */
export class RoomMember {
  /** What the user is shown about the member. */
  readonly info: MemberInfo;
  /** Whether the user was told the member is not trusted. */
  warnedUntrusted = false;
  /** Whether the user was told that held messages are waiting for a key. */
  warnedMissingKey = false;
  /** This client's epoch that the member holds (0: none); it can read messages under it. */
  heldEpochOfOurs = 0;
  /** The member on this connection, while it is online. */
  presence?: Presence;

  #options: RoomMemberOptions;
  #inbound?: InboundSenderKey;
  #held: VerifiedGroupMessage[] = [];
  #heldBytes = 0;
  #heldSince = 0;
  #budget: TokenBucket;

  /** @example `new RoomMember(options)` */
  constructor(options: RoomMemberOptions) {
    this.#options = options;
    this.info = options.info;
    this.#budget = new TokenBucket({
      ratePerSecond: RECEIVE_LIMITS.chainStepsPerSecond,
      burst: RECEIVE_LIMITS.chainStepBurst,
      now: options.now,
    });
  }

  /**
   * The member came online with `presenceKey`: a fresh presence (and, after
   * the handshake, a fresh pairwise session) replaces any earlier one.
   *
   * @example
   * ```ts
   * member.goOnline({ presenceKey, initial: false, announcedAt: Date.now() });
   * const hello = member.presence!.startHandshake();
   * ```
   */
  goOnline(options: { presenceKey: Uint8Array; initial: boolean; announcedAt: number }): Presence {
    this.presence?.close();
    this.info.online = true;
    this.presence = new Presence({
      room: this.#options.room,
      localIdentityPublicKey: this.#options.localIdentityPublicKey,
      remoteIdentityPublicKey: this.info.identityPublicKey,
      localPresence: this.#options.localPresence,
      presenceKey: options.presenceKey,
      initial: options.initial,
      announcedAt: options.announcedAt,
      budget: this.#budget,
    });
    return this.presence;
  }

  /** The member went offline: its presence ends. @example `member.goOffline()` */
  goOffline(): void {
    this.presence?.close();
    this.presence = undefined;
    this.info.online = false;
  }

  /** Whether the member completed the pairwise handshake on this connection. @example `member.present` */
  get present(): boolean {
    return this.presence?.present === true;
  }

  /** Whether pairwise data can be sent to the member. @example `member.established` */
  get established(): boolean {
    return this.presence?.established === true;
  }

  /** The member's sender key state held here, for persistence. @example `member.inboundState()` */
  inboundState(): SenderKeyState | undefined {
    return this.#inbound?.exportState();
  }

  /** The epoch of the member's sender key held here (0: none). @example `member.inboundEpoch` */
  get inboundEpoch(): number {
    return this.#inbound?.epoch ?? 0;
  }

  /** Group messages held for the member's key. @example `member.heldCount` */
  get heldCount(): number {
    return this.#held.length;
  }

  /** Bytes held for the member's key. @example `member.heldBytes` */
  get heldBytes(): number {
    return this.#heldBytes;
  }

  /** When the oldest held message arrived. @example `member.heldSince` */
  get heldSince(): number {
    return this.#heldSince;
  }

  /**
   * Handles a pairwise message from the member on this connection.
   *
   * @example
   * ```ts
   * const outcome = member.receivePairwise(bytes);
   * ```
   */
  receivePairwise(bytes: Uint8Array): PairwiseOutcome | PairwiseRefusal {
    if (this.presence === undefined) {
      return { reason: "not-established", text: "a pairwise message while it is offline" };
    }
    return this.presence.receivePairwise(bytes);
  }

  /**
   * Encrypts a pairwise plaintext for the member over this connection's session.
   *
   * @example
   * ```ts
   * relay.send({ type: "direct", to: member.info.memberId, envelope: member.seal(plaintext) });
   * ```
   */
  seal(plaintext: Uint8Array): Uint8Array {
    if (this.presence === undefined) throw new Error(`${this.info.nick} is offline`);
    return this.presence.seal(plaintext);
  }

  /**
   * Verifies a group message from the member and opens it, or holds it
   * until the member's key arrives. Nothing unverified is held; holding is
   * capped per sender and, through `heldElsewhere`, per client.
   *
   * @example
   * ```ts
   * const outcome = member.receiveGroup({ context, message, heldElsewhere: 0 });
   * ```
   */
  receiveGroup(
    options: { context: Uint8Array; message: Uint8Array; heldElsewhere: number; now: number },
  ): GroupOutcome {
    let verified: VerifiedGroupMessage;
    try {
      verified = verifyGroupMessage({
        senderPublicKey: this.info.identityPublicKey,
        context: options.context,
        message: options.message,
      });
    } catch (error) {
      return groupRefusal(error);
    }
    const epoch = verified.header.epoch;
    if (this.#inbound === undefined || epoch > this.#inbound.epoch) {
      return this.#hold(verified, options.heldElsewhere, options.now);
    }
    return this.openVerified(verified, options.context);
  }

  /**
   * Opens a message whose signature was verified, with the member's key.
   *
   * @example
   * ```ts
   * const outcome = member.openVerified(verified, context);
   * ```
   */
  openVerified(verified: VerifiedGroupMessage, context: Uint8Array): GroupOutcome {
    if (this.#inbound === undefined) return { kind: "held" };
    try {
      const result = this.#inbound.decryptVerified({ verified, context, budget: this.#budget });
      return { kind: "opened", plaintext: result.plaintext, skipped: result.skipped };
    } catch (error) {
      return groupRefusal(error);
    }
  }

  #hold(verified: VerifiedGroupMessage, heldElsewhere: number, now: number): GroupOutcome {
    const size = verified.message.length;
    if (
      this.#held.length >= RECEIVE_LIMITS.heldMessagesPerSender ||
      this.#heldBytes + size > RECEIVE_LIMITS.heldBytesPerSender ||
      heldElsewhere + this.#heldBytes + size > RECEIVE_LIMITS.heldBytesPerClient
    ) {
      return {
        kind: "refused",
        reason: "held-full",
        text: "too many messages are already waiting for its key",
      };
    }
    if (this.#held.length === 0) this.#heldSince = now;
    this.#held.push(verified);
    this.#heldBytes += size;
    return { kind: "held" };
  }

  /**
   * Installs a sender key the member sent over the pairwise session. Counts
   * what this client will never read of the member's messages (a withheld
   * tail of the old epoch, whole epochs, held messages of skipped epochs) and
   * returns the held messages that the new key can open.
   *
   * @example
   * ```ts
   * const { lost, released } = member.installSenderKey(state);
   * ```
   */
  installSenderKey(state: SenderKeyState): KeyInstalled | "stale" | "held" {
    const previous = this.#inbound;
    // The same epoch again: a member re-sends its current key whenever it comes back online
    // (durable rooms), and the chain held here is already at or past it.
    if (previous !== undefined && state.epoch === previous.epoch) return "held";
    if (previous !== undefined && state.epoch < previous.epoch) return "stale";
    const kept: VerifiedGroupMessage[] = [];
    const released: VerifiedGroupMessage[] = [];
    let skippedHeld = 0;
    let predating = 0;
    for (const message of this.#held) {
      const { epoch, iteration } = message.header;
      if (epoch > state.epoch) kept.push(message);
      else if (epoch === state.epoch && iteration >= state.iteration) released.push(message);
      else if (previous === undefined) predating++;
      else skippedHeld++;
    }
    let lost = 0;
    let counterReset = false;
    if (previous !== undefined) {
      if (state.iteration >= previous.iteration) lost = state.iteration - previous.iteration;
      else counterReset = true;
      // Held messages of skipped epochs are part of that gap unless the counter was reset.
      if (counterReset) lost = skippedHeld;
    }
    this.#inbound = new InboundSenderKey({
      senderPublicKey: this.info.identityPublicKey,
      state,
    });
    this.#held = kept;
    this.#heldBytes = kept.reduce((sum, message) => sum + message.message.length, 0);
    if (kept.length > 0) this.#heldSince = this.#options.now();
    this.warnedMissingKey = false;
    return { lost, predating, released, counterReset };
  }

  /**
   * Puts back a sender key this client kept from an earlier connection.
   *
   * @example
   * ```ts
   * member.restoreSenderKey(saved);
   * ```
   */
  restoreSenderKey(state: SenderKeyState): void {
    this.#inbound = new InboundSenderKey({ senderPublicKey: this.info.identityPublicKey, state });
  }

  /**
   * Drops every held message (the member left) and returns how many there were.
   *
   * @example
   * ```ts
   * const unreadable = member.dropHeld();
   * ```
   */
  dropHeld(): number {
    const count = this.#held.length;
    this.#held = [];
    this.#heldBytes = 0;
    return count;
  }
}

function groupRefusal(error: unknown): GroupOutcome {
  if (error instanceof GroupMessageError) {
    return { kind: "refused", reason: error.reason, text: error.message };
  }
  throw error;
}
