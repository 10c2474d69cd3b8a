/**
 * One member's end-to-end state for one room: who the members are, the
 * pairwise session with each, the sender key this member sends with, and the
 * sender keys it has received. It takes the relay's records in and says what
 * to send and what to show; it does no I/O, so tests can play a hostile relay
 * against it directly.
 *
 * Rules it enforces (PROTOCOL.md, "End-to-end layer"):
 * - a member's announcement must be signed by the identity the relay names,
 *   be for this room, carry a presence key never seen before, and a nick no
 *   other key holds;
 * - a member counts as present only once it completed a pairwise handshake
 *   with fresh keys: a relay replaying an old announcement gets nothing shown
 *   or counted;
 * - sender keys go only to trusted, present members, over pairwise sessions
 *   (forward secret, post-quantum hybrid, replay-proof);
 * - when a member leaves, this member starts a new sender key epoch before
 *   its next message; a newcomer gets the current chain state, from which
 *   earlier message keys cannot be derived;
 * - a group message is shown only if its signature, epoch, iteration order
 *   and AEAD tag all check out; anything else, and every message that was
 *   sent and will never be read, becomes a warning.
 *
 * @module
 */

import { cryptoBackend } from "../crypto/crypto_backend.ts";
import { generateKeyPair, type KeyPair } from "../crypto/noise.ts";
import { toHex } from "../core/bytes.ts";
import { fingerprint } from "../identity/fingerprint.ts";
import type { Identity } from "../identity/identity.ts";
import type { MemberEntry, RelayRecord } from "../transport/records.ts";
import { type Announcement, signAnnouncement, verifyAnnouncement } from "./announcement.ts";
import {
  decodeGroupContent,
  decodePairwiseContent,
  encodeGroupContent,
  encodePairwiseContent,
  type PairwiseContent,
} from "./content.ts";
import { type GroupOutcome, type MemberInfo, RECEIVE_LIMITS, RoomMember } from "./room_member.ts";
import { groupContext, OutboundSenderKey, type SenderKeyState } from "./sender_keys.ts";

export { type MemberInfo, RECEIVE_LIMITS } from "./room_member.ts";

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
  }
  | { type: "member-joined"; member: MemberInfo; initial: boolean }
  | { type: "member-left"; member: MemberInfo }
  | { type: "warning"; code: WarningCode; text: string; member?: MemberInfo };

/** What handling one relay record produced. */
export interface RoomOutput {
  /** Records to send to the relay, in order. */
  send: RelayRecord[];
  /** Events to show, in order. */
  events: RoomEvent[];
}

/** Options for {@linkcode RoomSession}. */
export interface RoomSessionOptions {
  /** This member's identity. */
  identity: Identity;
  /** Room name. */
  room: string;
  /** This member's nick. */
  nick: string;
  /** Decides whom to share keys with and accept messages from; default: everyone. */
  isTrusted?: (member: { nick: string; fingerprint: string }) => boolean;
  /** Clock, for tests. */
  now?: () => number;
}

function isUsablePresenceKey(ownSecretKey: Uint8Array, publicKey: Uint8Array): boolean {
  try {
    // Both backends refuse low-order points (all-zero shared secret).
    cryptoBackend.x25519(ownSecretKey, publicKey);
    return true;
  } catch {
    return false;
  }
}

/**
 * One member's end-to-end session in one room.
 *
 * @example
 * ```ts
 * const session = new RoomSession({ identity, room: "ops", nick: "alice" });
 * relay.send({ type: "join", announcement: session.announcement });
 * const { send, events } = session.handle(recordFromRelay);
 * ```
 */
export class RoomSession {
  /** The signed announcement to send in the join record. */
  readonly announcement: Uint8Array;
  /** Room name. */
  readonly room: string;
  /** This member's nick. */
  readonly nick: string;

  #identity: Identity;
  #presence: KeyPair = generateKeyPair("25519");
  #context: Uint8Array;
  #isTrusted: (member: { nick: string; fingerprint: string }) => boolean;
  #now: () => number;
  /** Every announced member, present or not yet, by relay member id. */
  #members = new Map<number, RoomMember>();
  /**
   * Presence keys of every announcement accepted in this session, this
   * member's own included. Each connection announces a fresh one, so a key
   * seen again is an announcement replayed by the relay, never a real member.
   */
  #announcedKeys = new Set<string>();
  /** Members that time may need to report on: not yet present, or with held messages. */
  #watched = new Set<RoomMember>();
  /** Bytes of group messages held for all members together. */
  #heldBytes = 0;
  #memberId?: number;
  #outbound?: OutboundSenderKey;
  #epoch = 0;
  /** A member who held our key left since our last message: new epoch before the next one. */
  #rekeyDue = false;

  /** @example `new RoomSession({ identity, room: "ops", nick: "alice" })` */
  constructor(options: RoomSessionOptions) {
    this.#identity = options.identity;
    this.room = options.room;
    this.nick = options.nick;
    this.#context = groupContext(options.room);
    this.#isTrusted = options.isTrusted ?? (() => true);
    this.#now = options.now ?? Date.now;
    const announcement: Announcement = {
      room: options.room,
      nick: options.nick,
      pairwisePublicKey: this.#presence.publicKey,
      time: this.#now(),
    };
    this.announcement = signAnnouncement({ identity: this.#identity, announcement });
    this.#announcedKeys.add(toHex(this.#presence.publicKey));
  }

  /** Whether the relay's welcome has arrived. @example `session.joined` */
  get joined(): boolean {
    return this.#memberId !== undefined;
  }

  /** This member's relay-assigned id, once joined. @example `session.memberId` */
  get memberId(): number | undefined {
    return this.#memberId;
  }

  /** The current sender key epoch (0 before joining). @example `session.epoch` */
  get epoch(): number {
    return this.#epoch;
  }

  /**
   * Whether every member announced so far has either completed its pairwise
   * handshake or been reported as not answering: from then on, a message
   * sent reaches everyone who is really here.
   *
   * @example
   * ```ts
   * if (session.settled) await client.send(["deploy done"]);
   * ```
   */
  get settled(): boolean {
    if (!this.joined) return false;
    for (const member of this.#members.values()) {
      if (!member.present && !member.warnedNoAnswer) return false;
    }
    return true;
  }

  /** The present members, in join order. @example `session.members()` */
  members(): MemberInfo[] {
    return [...this.#members.values()].filter((member) => member.present).map((m) => m.info);
  }

  /**
   * How many present members hold this member's current sender key: the
   * most a message encrypted now can reach.
   *
   * @example
   * ```ts
   * const readers = session.readers();
   * ```
   */
  readers(): number {
    let count = 0;
    for (const member of this.#members.values()) {
      if (member.present && member.heldEpochOfOurs === this.#epoch && !this.#rekeyDue) count++;
    }
    return count;
  }

  /**
   * Encrypts and signs a batch of texts as one group message. `send` holds
   * the records that must go out before it: when a member has left since the
   * last message, the new sender key for the members who remain.
   *
   * @example
   * ```ts
   * const { send, message } = session.encryptTexts(["hello"]);
   * for (const record of send) relay.send(record);
   * relay.send({ type: "publish", id: 1, message });
   * ```
   */
  encryptTexts(texts: string[]): { send: RelayRecord[]; message: Uint8Array; readers: number } {
    if (this.#outbound === undefined) throw new Error("cannot send before the relay's welcome");
    const output: RoomOutput = { send: [], events: [] };
    if (this.#rekeyDue) this.#startEpoch(output);
    const readers = this.readers();
    const plaintext = encodeGroupContent({ time: this.#now(), texts });
    return {
      send: output.send,
      message: this.#outbound!.encrypt({ context: this.#context, plaintext }),
      readers,
    };
  }

  /**
   * Seals a direct text that only `memberId` can read, over the pairwise
   * session with it. Throws if that member is not present.
   *
   * @example
   * ```ts
   * relay.send(session.directText(bob.memberId, "hi bob"));
   * ```
   */
  directText(memberId: number, text: string): RelayRecord {
    const member = this.#members.get(memberId);
    if (member === undefined || !member.present || !member.established) {
      throw new Error(`no member ${memberId} is present in room ${this.room}`);
    }
    return this.#pairwiseTo(member, { kind: "direct-text", time: this.#now(), text });
  }

  /**
   * Processes one record from the relay.
   *
   * @example
   * ```ts
   * const { send, events } = session.handle({ type: "memberLeft", memberId: 4 });
   * ```
   */
  handle(record: RelayRecord): RoomOutput {
    const output = this.tick();
    switch (record.type) {
      case "welcome":
        this.#welcome(record.memberId, record.members, output);
        break;
      case "memberJoined":
        this.#memberAnnounced(record.member, false, output);
        break;
      case "memberLeft":
        this.#memberLeft(record.memberId, output);
        break;
      case "directFrom":
        this.#directFrom(record.from, record.envelope, output);
        break;
      case "deliver":
        this.#deliver(record.from, record.message, output);
        break;
      default:
        break;
    }
    return output;
  }

  /**
   * Reports what time alone reveals: members that did not answer their
   * handshake, and messages still waiting for a key. Call it now and then
   * (the client does, every second) as well as with each record.
   *
   * @example
   * ```ts
   * const { events } = session.tick();
   * ```
   */
  tick(): RoomOutput {
    const output: RoomOutput = { send: [], events: [] };
    const now = this.#now();
    for (const member of this.#watched) {
      const waiting = !member.present && !member.warnedNoAnswer;
      if (!this.#members.has(member.info.memberId) || (!waiting && member.heldCount === 0)) {
        this.#watched.delete(member);
        continue;
      }
      if (
        !member.present && !member.warnedNoAnswer &&
        now - member.announcedAt >= RECEIVE_LIMITS.answerWaitMs
      ) {
        member.warnedNoAnswer = true;
        output.events.push({
          type: "warning",
          code: "no-answer",
          member: member.info,
          text: `ignoring member ${member.info.nick} (${member.info.fingerprint}): the relay ` +
            `announced it, but it did not complete a pairwise handshake within ` +
            `${RECEIVE_LIMITS.answerWaitMs / 1000} s (offline, or an announcement replayed by ` +
            "the relay)",
        });
      }
      if (
        member.heldCount > 0 && !member.warnedMissingKey &&
        now - member.heldSince >= RECEIVE_LIMITS.keyWaitMs
      ) {
        member.warnedMissingKey = true;
        this.#warn(
          output,
          "missing-key",
          member,
          `${member.heldCount} message(s) from ${member.info.nick} cannot be read yet: its key ` +
            `has not arrived for ${Math.round((now - member.heldSince) / 1000)} s (withheld by ` +
            `the relay, or ${member.info.nick} does not trust you)`,
        );
      }
    }
    return output;
  }

  #welcome(memberId: number, members: MemberEntry[], output: RoomOutput): void {
    if (this.#memberId !== undefined) return;
    this.#memberId = memberId;
    this.#startEpoch(output);
    for (const entry of members) this.#memberAnnounced(entry, true, output);
  }

  #startEpoch(output: RoomOutput): void {
    this.#rekeyDue = false;
    this.#epoch++;
    this.#outbound = OutboundSenderKey.create({
      identity: this.#identity,
      epoch: this.#epoch,
      iteration: this.#outbound?.iteration ?? 0,
    });
    const state = this.#outbound.exportState();
    for (const member of this.#members.values()) {
      if (member.present && member.established && member.info.trusted) {
        this.#sendSenderKey(member, state, output);
      }
    }
  }

  #memberAnnounced(entry: MemberEntry, initial: boolean, output: RoomOutput): void {
    if (entry.memberId === this.#memberId || this.#members.has(entry.memberId)) return;
    let announcement: Announcement;
    const memberFingerprint = fingerprint(entry.identityPublicKey);
    try {
      announcement = verifyAnnouncement({
        identityPublicKey: entry.identityPublicKey,
        bytes: entry.announcement,
      });
      if (announcement.room !== this.room) throw new Error("announcement is for another room");
      if (!isUsablePresenceKey(this.#presence.secretKey, announcement.pairwisePublicKey)) {
        throw new Error("announcement carries an invalid presence key");
      }
      if (this.#announcedKeys.has(toHex(announcement.pairwisePublicKey))) {
        throw new Error("its announcement was seen before: the relay is replaying it");
      }
      // An honest relay keeps nicks unique in a room; two keys under one nick is impersonation.
      const namesake = announcement.nick === this.nick && !this.#isOwnKey(entry.identityPublicKey)
        ? "you"
        : [...this.#members.values()].find((member) =>
          member.info.nick === announcement.nick && member.info.fingerprint !== memberFingerprint
        )?.info.fingerprint;
      if (namesake !== undefined) {
        throw new Error(
          `its nick "${announcement.nick}" is already used in this room by ${namesake}`,
        );
      }
    } catch (error) {
      output.events.push({
        type: "warning",
        code: "bad-announcement",
        text: `ignoring member ${entry.memberId} (${memberFingerprint}): ${
          (error as Error).message
        }`,
      });
      return;
    }
    const info: MemberInfo = {
      memberId: entry.memberId,
      nick: announcement.nick,
      fingerprint: memberFingerprint,
      identityPublicKey: entry.identityPublicKey,
      trusted: this.#isTrusted({ nick: announcement.nick, fingerprint: memberFingerprint }),
    };
    const member = new RoomMember({
      info,
      presenceKey: announcement.pairwisePublicKey,
      room: this.room,
      localIdentityPublicKey: this.#identity.publicKey,
      localPresence: this.#presence,
      initial,
      announcedAt: this.#now(),
      now: this.#now,
    });
    this.#announcedKeys.add(toHex(announcement.pairwisePublicKey));
    this.#members.set(entry.memberId, member);
    this.#watched.add(member);
    const hello = member.startHandshake();
    if (hello !== undefined) {
      output.send.push({ type: "direct", to: info.memberId, envelope: hello });
    }
  }

  /** A member completed its handshake: show it, and send it our key or a confirmation. */
  #memberPresent(member: RoomMember, output: RoomOutput): void {
    output.events.push({ type: "member-joined", member: member.info, initial: member.initial });
    if (!member.info.trusted) this.#warnUntrusted(member, output);
  }

  /** The first data message of this side of a session: our key if we trust the member. */
  #sendFirstData(member: RoomMember, output: RoomOutput): void {
    // With a rekey due, the current chain is retired: the member gets the next one instead.
    if (member.info.trusted && this.#outbound !== undefined && !this.#rekeyDue) {
      this.#sendSenderKey(member, this.#outbound.exportState(), output);
    } else {
      output.send.push(this.#pairwiseTo(member, { kind: "confirm" }));
    }
  }

  #sendSenderKey(member: RoomMember, state: SenderKeyState, output: RoomOutput): void {
    output.send.push(this.#pairwiseTo(member, { kind: "sender-key", state }));
    member.heldEpochOfOurs = state.epoch;
  }

  #pairwiseTo(member: RoomMember, content: PairwiseContent): RelayRecord {
    const envelope = member.seal(encodePairwiseContent(content));
    return { type: "direct", to: member.info.memberId, envelope };
  }

  #warnUntrusted(member: RoomMember, output: RoomOutput): void {
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

  #memberLeft(memberId: number, output: RoomOutput): void {
    const member = this.#members.get(memberId);
    if (member === undefined) return;
    this.#members.delete(memberId);
    this.#watched.delete(member);
    this.#heldBytes -= member.heldBytes;
    const unreadable = member.dropHeld();
    if (member.present) output.events.push({ type: "member-left", member: member.info });
    if (unreadable > 0) {
      this.#warn(
        output,
        "missing-key",
        member,
        `${unreadable} message(s) from ${member.info.nick} could not be read: its key never ` +
          `arrived (withheld by the relay, or ${member.info.nick} did not trust you)`,
      );
    }
    if (!member.present) return;
    // The member who left may hold our current chain key: nothing more is sent under it. The new
    // epoch starts with our next message, so a burst of leaves costs one rekey, and idle
    // members send nothing.
    if (member.heldEpochOfOurs !== 0) this.#rekeyDue = true;
  }

  #directFrom(from: number, bytes: Uint8Array, output: RoomOutput): void {
    const member = this.#members.get(from);
    if (member === undefined) {
      output.events.push({
        type: "warning",
        code: "unknown-member",
        text: `ignoring a pairwise message from unknown member ${from}`,
      });
      return;
    }
    const outcome = member.receivePairwise(bytes);
    if ("reason" in outcome) {
      this.#warn(
        output,
        outcome.reason === "replayed" ? "replayed" : "bad-envelope",
        member,
        `rejected a pairwise message claiming to be from ${member.info.nick}: ${outcome.text}`,
      );
      return;
    }
    switch (outcome.kind) {
      case "accepted":
        output.send.push({ type: "direct", to: member.info.memberId, envelope: outcome.accept });
        this.#sendFirstData(member, output);
        return;
      case "confirmed":
        this.#sendFirstData(member, output);
        this.#memberPresent(member, output);
        return;
      case "data":
        if (outcome.confirmedNow) this.#memberPresent(member, output);
        if (outcome.skipped > 0) {
          this.#warn(
            output,
            "gap",
            member,
            `${outcome.skipped} pairwise message(s) from ${member.info.nick} never arrived ` +
              "(withheld or lost: a key or a direct message may be missing)",
          );
        }
        this.#pairwiseContent(member, outcome.plaintext, output);
        return;
    }
  }

  #pairwiseContent(member: RoomMember, plaintext: Uint8Array, output: RoomOutput): void {
    let content: PairwiseContent;
    try {
      content = decodePairwiseContent(plaintext);
    } catch (error) {
      this.#warn(
        output,
        "malformed",
        member,
        `rejected a pairwise message from ${member.info.nick}: ${(error as Error).message}`,
      );
      return;
    } finally {
      plaintext.fill(0);
    }
    if (content.kind === "confirm") return;
    if (!member.info.trusted) {
      this.#warnUntrusted(member, output);
      return;
    }
    if (content.kind === "direct-text") {
      output.events.push({
        type: "message",
        from: member.info,
        text: content.text,
        time: content.time,
        direct: true,
      });
      return;
    }
    this.#installSenderKey(member, content.state, output);
  }

  #installSenderKey(member: RoomMember, state: SenderKeyState, output: RoomOutput): void {
    const heldBefore = member.heldBytes;
    const installed = member.installSenderKey(state);
    this.#heldBytes += member.heldBytes - heldBefore;
    if (installed === "stale") {
      this.#warn(
        output,
        "stale-key",
        member,
        `ignored an old sender key (epoch ${state.epoch}) from ${member.info.nick}: ` +
          "replayed or out of order",
      );
      return;
    }
    if (installed.lost > 0) {
      this.#warn(
        output,
        "gap",
        member,
        `${installed.lost} message(s) from ${member.info.nick} were sent before its key changed ` +
          "and never arrived or could not be read (withheld or lost)",
      );
    }
    for (const verified of installed.released) {
      this.#showGroupOutcome(member, member.openVerified(verified, this.#context), output);
    }
  }

  #deliver(from: number, message: Uint8Array, output: RoomOutput): void {
    const member = this.#members.get(from);
    if (member === undefined) {
      output.events.push({
        type: "warning",
        code: "unknown-member",
        text: `ignoring a message from unknown member ${from}`,
      });
      return;
    }
    if (!member.info.trusted) {
      // Its messages are ignored by choice; the user was told once it appeared.
      if (member.present) this.#warnUntrusted(member, output);
      return;
    }
    const heldBefore = member.heldBytes;
    const outcome = member.receiveGroup({
      context: this.#context,
      message,
      heldElsewhere: this.#heldBytes - heldBefore,
      now: this.#now(),
    });
    this.#heldBytes += member.heldBytes - heldBefore;
    if (outcome.kind === "held") this.#watched.add(member);
    this.#showGroupOutcome(member, outcome, output);
  }

  #showGroupOutcome(member: RoomMember, outcome: GroupOutcome, output: RoomOutput): void {
    const nick = member.info.nick;
    if (outcome.kind === "held") return;
    if (outcome.kind === "refused") {
      const code = outcome.reason === "held-full"
        ? "too-many-pending"
        : outcome.reason === "too-far-ahead" || outcome.reason === "wrong-epoch"
        ? "replayed"
        : outcome.reason;
      this.#warn(output, code, member, `rejected a message from ${nick}: ${outcome.text}`);
      return;
    }
    if (outcome.skipped > 0) {
      this.#warn(
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
      this.#warn(
        output,
        "malformed",
        member,
        `rejected a message from ${nick}: ${(error as Error).message}`,
      );
      return;
    }
    for (const text of texts) {
      output.events.push({ type: "message", from: member.info, text, time, direct: false });
    }
  }

  #isOwnKey(identityPublicKey: Uint8Array): boolean {
    return toHex(identityPublicKey) === toHex(this.#identity.publicKey);
  }

  #warn(output: RoomOutput, code: WarningCode, member: RoomMember, text: string): void {
    output.events.push({ type: "warning", code, member: member.info, text });
  }
}
