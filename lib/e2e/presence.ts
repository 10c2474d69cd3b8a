/**
 * One connection's pairwise session with another member (PROTOCOL.md,
 * "Pairwise sessions between members"): who starts the handshake, whether
 * the other side has proven it is here now, and the ratcheted channel that
 * carries sender keys and direct texts. A member going offline drops its
 * presence; coming back makes a new one with fresh keys on both sides.
 *
 * @module
 */

import type { KeyPair } from "../crypto/noise.ts";
import type { ChainStepBudget } from "./chain.ts";
import {
  isPairwiseInitiator,
  PairwiseError,
  type PairwiseMessageKind,
  pairwiseMessageKind,
  PairwiseSession,
} from "./pairwise_session.ts";

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

/** Options for {@linkcode Presence}. */
export interface PresenceOptions {
  /** Room name, for the pairwise prologue. */
  room: string;
  /** This client's identity public key. */
  localIdentityPublicKey: Uint8Array;
  /** The member's identity public key. */
  remoteIdentityPublicKey: Uint8Array;
  /** This client's presence key pair for this connection. */
  localPresence: KeyPair;
  /** The member's announced presence key. */
  presenceKey: Uint8Array;
  /** Whether the member was listed in the welcome. */
  initial: boolean;
  /** When the member was announced (this client's clock). */
  announcedAt: number;
  /** The member's work budget, shared with its sender key. */
  budget: ChainStepBudget;
}

/**
 * A member's presence on this connection.
 *
 * @example
 * ```ts
 * const presence = new Presence({ room, localIdentityPublicKey, remoteIdentityPublicKey,
 *   localPresence, presenceKey, initial: true, announcedAt: Date.now(), budget });
 * const hello = presence.startHandshake(); // undefined when the member initiates
 * ```
 */
export class Presence {
  /** The announced presence key. */
  readonly presenceKey: Uint8Array;
  /** Whether the member was listed in the welcome. */
  readonly initial: boolean;
  /** When the member was announced. */
  readonly announcedAt: number;
  /** Whether this client starts the pairwise handshake with the member. */
  readonly isInitiator: boolean;
  /** Whether the user was told that the member did not answer in time. */
  warnedNoAnswer = false;

  #options: PresenceOptions;
  #session?: PairwiseSession;
  #present = false;

  /** @example `new Presence(options)` */
  constructor(options: PresenceOptions) {
    this.#options = options;
    this.presenceKey = options.presenceKey;
    this.initial = options.initial;
    this.announcedAt = options.announcedAt;
    this.isInitiator = isPairwiseInitiator(options.localPresence.publicKey, options.presenceKey);
  }

  /** Whether the member completed the handshake with fresh keys. @example `presence.present` */
  get present(): boolean {
    return this.#present;
  }

  /** Whether data can be sent to the member. @example `presence.established` */
  get established(): boolean {
    return this.#session?.established === true;
  }

  /** Wipes the session's keys (the member went offline or left). @example `presence.close()` */
  close(): void {
    this.#session?.close();
  }

  /**
   * Starts the pairwise handshake if this side initiates it, returning the
   * hello to send; returns `undefined` when the member initiates.
   *
   * @example
   * ```ts
   * const hello = presence.startHandshake();
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
   * const outcome = presence.receivePairwise(bytes);
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
   * relay.send({ type: "direct", to: memberId, envelope: presence.seal(plaintext) });
   * ```
   */
  seal(plaintext: Uint8Array): Uint8Array {
    if (this.#session === undefined || !this.#session.established) {
      throw new Error("no pairwise session with this member yet");
    }
    return this.#session.encrypt(plaintext);
  }

  #sessionOptions() {
    const options = this.#options;
    return {
      room: options.room,
      localIdentityPublicKey: options.localIdentityPublicKey,
      remoteIdentityPublicKey: options.remoteIdentityPublicKey,
      localPresence: options.localPresence,
      remotePresencePublicKey: options.presenceKey,
      budget: options.budget,
    };
  }
}
