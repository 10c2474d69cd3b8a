/**
 * What one member of a room knows about another: the other's signed
 * announcement, the pairwise session between the two, the other's sender key,
 * and the group messages held until that key arrives, within limits that keep
 * one hostile member (or relay) from spending this client's CPU and memory.
 *
 * The room session (room.ts) keeps one {@linkcode RoomMember} per announced
 * member and decides what to show and send; this module keeps the state and
 * applies the receive rules of PROTOCOL.md ("Receiving group messages").
 *
 * @module
 */

import { TokenBucket } from "../core/rate_limit.ts";
import type { KeyPair } from "../crypto/noise.ts";
import {
  isPairwiseInitiator,
  PairwiseError,
  type PairwiseMessageKind,
  pairwiseMessageKind,
  PairwiseSession,
} from "./pairwise_session.ts";
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
}

/** What a pairwise message from a member led to. */
export type PairwiseOutcome =
  /** This side answered a hello: send `accept`, then this side's first data message. */
  | { kind: "accepted"; accept: Uint8Array }
  /** The member's accept verified: it is present; send this side's first data message. */
  | { kind: "confirmed" }
  /** A data message opened; `confirmedNow` when it was the member's first. */
  | { kind: "data"; plaintext: Uint8Array; skipped: number; confirmedNow: boolean };

/** Why a pairwise message was refused, for the user's warning. */
export interface PairwiseRefusal {
  reason: PairwiseError["reason"] | "unexpected";
  text: string;
}

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
  /** The member's announced X25519 presence key. */
  presenceKey: Uint8Array;
  /** Room name, for the pairwise prologue and group-message context. */
  room: string;
  /** This client's identity public key. */
  localIdentityPublicKey: Uint8Array;
  /** This client's presence key pair. */
  localPresence: KeyPair;
  /** Whether the member was listed in the welcome (already there when this client joined). */
  initial: boolean;
  /** When the member was announced (this client's clock). */
  announcedAt: number;
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
  /** Whether the member was listed in the welcome. */
  readonly initial: boolean;
  /** When the member was announced. */
  readonly announcedAt: number;
  /** Whether this client starts the pairwise handshake with the member. */
  readonly isInitiator: boolean;
  /** Whether the user was told that the member did not answer in time. */
  warnedNoAnswer = false;
  /** Whether the user was told the member is not trusted. */
  warnedUntrusted = false;
  /** Whether the user was told that held messages are waiting for a key. */
  warnedMissingKey = false;
  /** This client's epoch that the member holds (0: none); it can read messages under it. */
  heldEpochOfOurs = 0;

  #options: RoomMemberOptions;
  #session?: PairwiseSession;
  #present = false;
  #inbound?: InboundSenderKey;
  #held: VerifiedGroupMessage[] = [];
  #heldBytes = 0;
  #heldSince = 0;
  #budget: TokenBucket;

  /** @example `new RoomMember(options)` */
  constructor(options: RoomMemberOptions) {
    this.#options = options;
    this.info = options.info;
    this.initial = options.initial;
    this.announcedAt = options.announcedAt;
    this.isInitiator = isPairwiseInitiator(options.localPresence.publicKey, options.presenceKey);
    this.#budget = new TokenBucket({
      ratePerSecond: RECEIVE_LIMITS.chainStepsPerSecond,
      burst: RECEIVE_LIMITS.chainStepBurst,
      now: options.now,
    });
  }

  /** Whether the member completed the pairwise handshake with fresh keys. @example `member.present` */
  get present(): boolean {
    return this.#present;
  }

  /** Whether data can be sent to the member. @example `member.established` */
  get established(): boolean {
    return this.#session?.established === true;
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
   * Starts the pairwise handshake if this side initiates it, returning the
   * hello to send; returns `undefined` when the member initiates.
   *
   * @example
   * ```ts
   * const hello = member.startHandshake();
   * ```
   */
  startHandshake(): Uint8Array | undefined {
    if (!this.isInitiator || this.#session !== undefined) return undefined;
    const { session, hello } = PairwiseSession.initiate(this.#sessionOptions());
    this.#session = session;
    return hello;
  }

  /**
   * Handles a pairwise message from the member. Returns what it led to, or a
   * refusal to report; refused messages change nothing.
   *
   * @example
   * ```ts
   * const outcome = member.receivePairwise(bytes);
   * ```
   */
  receivePairwise(bytes: Uint8Array): PairwiseOutcome | PairwiseRefusal {
    let kind: PairwiseMessageKind;
    try {
      kind = pairwiseMessageKind(bytes);
      switch (kind) {
        case "hello":
          return this.#acceptHello(bytes);
        case "accept":
          return this.#readAccept(bytes);
        case "data":
          return this.#openData(bytes);
      }
    } catch (error) {
      if (error instanceof PairwiseError) return { reason: error.reason, text: error.message };
      return { reason: "unexpected", text: (error as Error).message };
    }
  }

  #acceptHello(hello: Uint8Array): PairwiseOutcome | PairwiseRefusal {
    if (this.isInitiator) {
      return {
        reason: "malformed",
        text: "it sent a handshake hello although this side starts the handshake",
      };
    }
    if (this.#session !== undefined) {
      return { reason: "replayed", text: "a second handshake hello (replayed by the relay?)" };
    }
    const { session, accept } = PairwiseSession.accept({ ...this.#sessionOptions(), hello });
    this.#session = session;
    return { kind: "accepted", accept };
  }

  #readAccept(accept: Uint8Array): PairwiseOutcome | PairwiseRefusal {
    if (!this.isInitiator || this.#session === undefined) {
      return { reason: "malformed", text: "a handshake accept nobody asked for" };
    }
    if (this.#session.established) {
      return { reason: "replayed", text: "a second handshake accept (replayed by the relay?)" };
    }
    this.#session.readAccept(accept);
    this.#present = true;
    return { kind: "confirmed" };
  }

  #openData(message: Uint8Array): PairwiseOutcome | PairwiseRefusal {
    if (this.#session === undefined || !this.#session.established) {
      return { reason: "not-established", text: "a pairwise message before the handshake" };
    }
    const { plaintext, skipped } = this.#session.decrypt(message);
    const confirmedNow = !this.#present;
    this.#present = true;
    return { kind: "data", plaintext, skipped, confirmedNow };
  }

  /**
   * Encrypts a pairwise plaintext for the member.
   *
   * @example
   * ```ts
   * relay.send({ type: "direct", to: member.info.memberId, envelope: member.seal(plaintext) });
   * ```
   */
  seal(plaintext: Uint8Array): Uint8Array {
    if (this.#session === undefined || !this.#session.established) {
      throw new Error(`no pairwise session with ${this.info.nick} yet`);
    }
    return this.#session.encrypt(plaintext);
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
  installSenderKey(state: SenderKeyState): KeyInstalled | "stale" {
    const previous = this.#inbound;
    if (previous !== undefined && state.epoch <= previous.epoch) return "stale";
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

  #sessionOptions() {
    const options = this.#options;
    return {
      room: options.room,
      localIdentityPublicKey: options.localIdentityPublicKey,
      remoteIdentityPublicKey: options.info.identityPublicKey,
      localPresence: options.localPresence,
      remotePresencePublicKey: options.presenceKey,
      budget: this.#budget,
    };
  }
}

function groupRefusal(error: unknown): GroupOutcome {
  if (error instanceof GroupMessageError) {
    return { kind: "refused", reason: error.reason, text: error.message };
  }
  throw error;
}
