/**
 * The receiving half of a room session: what arrives from other members
 * (group messages, live or stored; pairwise contents; sender keys, over a
 * pairwise session or in a prekey envelope) becomes messages and warnings.
 * It applies PROTOCOL.md "Receiving group messages" through each member's
 * {@linkcode RoomMember} state and keeps the client-wide held-bytes count.
 *
 * @module
 */

import type { RelayRecord } from "../transport/records.ts";
import { decodeGroupContent, decodePairwiseContent, type PairwiseContent } from "./content.ts";
import { openPrekeyEnvelope, type PrekeySecretStore } from "./prekey_envelope.ts";
import { PrekeyError } from "./prekeys.ts";
import type { GroupOutcome, MemberInfo, RoomMember } from "./room_member.ts";
import type { SenderKeyState } from "./sender_keys.ts";

/** Why a warning was raised. */
export type WarningCode =
  | "bad-announcement"
  | "untrusted-member"
  | "no-answer"
  | "forged"
  | "replayed"
  | "tampered"
  | "malformed"
  | "gap"
  | "unknown-member"
  | "bad-envelope"
  | "stale-key"
  | "too-many-pending"
  | "over-budget"
  | "missing-key";

/** Why a member is no longer online. */
export type LeaveReason = "offline" | "left" | "removed";

/** What the room session reports to the user interface. */
export type RoomEvent =
  | {
    type: "message";
    from: MemberInfo;
    text: string;
    /** Sender's clock, ms since the Unix epoch. */
    time: number;
    /** True for a pairwise message only this member can read. */
    direct: boolean;
    /** The relay's sequence for a stored message (durable rooms), else absent. */
    seq?: number;
  }
  | { type: "member-joined"; member: MemberInfo; initial: boolean }
  | { type: "member-left"; member: MemberInfo; reason: LeaveReason }
  | { type: "member-renamed"; member: MemberInfo; previousNick: string }
  /** Every message stored for this member up to `seq` has been read (durable rooms). */
  | { type: "caught-up"; seq: number; stored: number }
  | { type: "warning"; code: WarningCode; text: string; member?: MemberInfo };

/** What handling one relay record produced. */
export interface RoomOutput {
  /** Records to send to the relay, in order. */
  send: RelayRecord[];
  /** Events to show, in order. */
  events: RoomEvent[];
}

/**
 * Adds a warning about `member` to `output`.
 *
 * @example
 * ```ts
 * warn(output, "gap", member, "2 message(s) from bob never arrived");
 * ```
 */
export function warn(
  output: RoomOutput,
  code: WarningCode,
  member: RoomMember,
  text: string,
): void {
  output.events.push({ type: "warning", code, member: member.info, text });
}

/**
 * Tells the user, once per member, that the member is not trusted.
 *
 * @example
 * ```ts
 * warnUntrusted(member, output);
 * ```
 */
export function warnUntrusted(member: RoomMember, output: RoomOutput): void {
  if (member.warnedUntrusted) return;
  member.warnedUntrusted = true;
  output.events.push({
    type: "warning",
    code: "untrusted-member",
    member: member.info,
    text: `${member.info.nick} (${member.info.fingerprint}) is not trusted: ` +
      "not sharing keys with it and ignoring its messages",
  });
}

/** Options for {@linkcode RoomInbox}. */
export interface RoomInboxOptions {
  /** The room's group-message context. */
  context: Uint8Array;
  /** Room name, for prekey envelopes. */
  room: string;
  /** This member's identity key, for prekey envelopes. */
  identityPublicKey: Uint8Array;
  /** This member's prekey secrets (durable rooms), if any. */
  prekeys?: PrekeySecretStore;
  /** Clock. */
  now: () => number;
  /** Members with held messages or unanswered handshakes: time may need to report them. */
  watch: (member: RoomMember) => void;
  /** Whether the room is durable (then every stored message was meant for this member). */
  durable: () => boolean;
}

/**
 * Turns what other members send into events.
 *
 * @example
 * ```ts
 * const inbox = new RoomInbox({ context, room, identityPublicKey, now: Date.now, watch });
 * inbox.deliver(member, message, output);
 * ```
 */
export class RoomInbox {
  #options: RoomInboxOptions;
  /** Bytes of group messages held for all members together. */
  #heldBytes = 0;

  /** @example `new RoomInbox(options)` */
  constructor(options: RoomInboxOptions) {
    this.#options = options;
  }

  /**
   * Forgets a member's held messages (it left) and returns how many there were.
   *
   * @example
   * ```ts
   * const unreadable = inbox.dropHeld(member);
   * ```
   */
  dropHeld(member: RoomMember): number {
    this.#heldBytes -= member.heldBytes;
    return member.dropHeld();
  }

  /**
   * Handles a group message from `member`, live or stored.
   *
   * @example
   * ```ts
   * inbox.deliver(member, message, output, 42);
   * ```
   */
  deliver(member: RoomMember, message: Uint8Array, output: RoomOutput, seq?: number): void {
    if (!member.info.trusted) {
      // Its messages are ignored by choice; the user was told once it appeared.
      if (member.present) warnUntrusted(member, output);
      return;
    }
    const heldBefore = member.heldBytes;
    const outcome = member.receiveGroup({
      context: this.#options.context,
      message,
      heldElsewhere: this.#heldBytes - heldBefore,
      now: this.#options.now(),
    });
    this.#heldBytes += member.heldBytes - heldBefore;
    if (outcome.kind === "held") this.#options.watch(member);
    this.#showGroupOutcome(member, outcome, output, seq);
  }

  /**
   * Handles the plaintext of a pairwise data message from `member`.
   *
   * @example
   * ```ts
   * inbox.pairwiseContent(member, plaintext, output);
   * ```
   */
  pairwiseContent(member: RoomMember, plaintext: Uint8Array, output: RoomOutput): void {
    let content: PairwiseContent;
    try {
      content = decodePairwiseContent(plaintext);
    } catch (error) {
      warn(
        output,
        "malformed",
        member,
        `rejected a pairwise message from ${member.info.nick}: ${(error as Error).message}`,
      );
      return;
    } finally {
      plaintext.fill(0);
    }
    this.#content(member, content, output);
  }

  /**
   * Opens a prekey envelope `member` left for this member while it was away
   * (durable rooms) and handles its content.
   *
   * @example
   * ```ts
   * inbox.storedEnvelope(member, envelope, output, 17);
   * ```
   */
  storedEnvelope(member: RoomMember, envelope: Uint8Array, output: RoomOutput, seq: number): void {
    const secrets = this.#options.prekeys;
    if (secrets === undefined) {
      warn(output, "bad-envelope", member, "a stored envelope, but this client keeps no prekeys");
      return;
    }
    let content: PairwiseContent;
    try {
      const opened = openPrekeyEnvelope({
        room: this.#options.room,
        recipientIdentityPublicKey: this.#options.identityPublicKey,
        senderIdentityPublicKey: member.info.identityPublicKey,
        envelope,
        secrets,
      });
      try {
        content = decodePairwiseContent(opened.content);
      } finally {
        opened.content.fill(0);
      }
    } catch (error) {
      const replayed = error instanceof PrekeyError && error.reason === "replayed";
      warn(
        output,
        replayed ? "replayed" : "bad-envelope",
        member,
        `rejected a stored envelope from ${member.info.nick}: ${(error as Error).message}`,
      );
      return;
    }
    this.#content(member, content, output, seq);
  }

  #content(member: RoomMember, content: PairwiseContent, output: RoomOutput, seq?: number): void {
    if (content.kind === "confirm") return;
    if (!member.info.trusted) {
      warnUntrusted(member, output);
      return;
    }
    if (content.kind === "direct-text") {
      output.events.push({
        type: "message",
        from: member.info,
        text: content.text,
        time: content.time,
        direct: true,
        ...(seq === undefined ? {} : { seq }),
      });
      return;
    }
    this.#installSenderKey(member, content.state, output);
  }

  #installSenderKey(member: RoomMember, state: SenderKeyState, output: RoomOutput): void {
    const heldBefore = member.heldBytes;
    const installed = member.installSenderKey(state);
    this.#heldBytes += member.heldBytes - heldBefore;
    if (installed === "held") return;
    if (installed === "stale") {
      warn(
        output,
        "stale-key",
        member,
        `ignored an old sender key (epoch ${state.epoch}) from ${member.info.nick}: ` +
          "replayed or out of order",
      );
      return;
    }
    // In an ephemeral room, held messages older than the first key received were sent before
    // this member was there: not meant for it. In a durable room the relay kept them for it, so
    // one it cannot read is reported (its key was withheld, or it was sent as this member joined).
    if (installed.predating > 0 && this.#options.durable()) {
      warn(
        output,
        "missing-key",
        member,
        `${installed.predating} message(s) from ${member.info.nick} could not be read: they were ` +
          "sent under a key that never reached you (withheld by the relay, or sent as you joined)",
      );
    }
    if (installed.lost > 0) {
      warn(
        output,
        "gap",
        member,
        `${installed.lost} message(s) from ${member.info.nick} were sent before its key changed ` +
          "and never arrived or could not be read (withheld or lost)",
      );
    }
    for (const verified of installed.released) {
      this.#showGroupOutcome(member, member.openVerified(verified, this.#options.context), output);
    }
  }

  #showGroupOutcome(
    member: RoomMember,
    outcome: GroupOutcome,
    output: RoomOutput,
    seq?: number,
  ): void {
    const nick = member.info.nick;
    if (outcome.kind === "held") return;
    if (outcome.kind === "refused") {
      const code = outcome.reason === "held-full"
        ? "too-many-pending"
        : outcome.reason === "too-far-ahead" || outcome.reason === "wrong-epoch"
        ? "replayed"
        : outcome.reason;
      warn(output, code, member, `rejected a message from ${nick}: ${outcome.text}`);
      return;
    }
    if (outcome.skipped > 0) {
      warn(
        output,
        "gap",
        member,
        `${outcome.skipped} message(s) from ${nick} never arrived (withheld or lost)`,
      );
    }
    let texts: string[];
    let time: number;
    try {
      ({ texts, time } = decodeGroupContent(outcome.plaintext));
    } catch (error) {
      // The AEAD accepted it, so the sender's own client encoded it wrongly; the iteration is spent.
      warn(
        output,
        "malformed",
        member,
        `rejected a message from ${nick}: ${(error as Error).message}`,
      );
      return;
    }
    for (const text of texts) {
      output.events.push({
        type: "message",
        from: member.info,
        text,
        time,
        direct: false,
        ...(seq === undefined ? {} : { seq }),
      });
    }
  }
}
