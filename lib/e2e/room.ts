/**
 * One member's end-to-end state for one room: who the members are, the
 * pairwise session with each member online, the sender key this member sends
 * with, and the sender keys it has received. It takes the relay's records in
 * and says what to send and what to show; it does no I/O, so tests can play a
 * hostile relay against it directly.
 *
 * Rules it enforces (PROTOCOL.md, "End-to-end layer"):
 * - a member's announcement must be signed by the identity the relay names,
 *   be for this room, carry a presence key never seen before, and a nick no
 *   other key holds;
 * - a member counts as present only once it completed a pairwise handshake
 *   with fresh keys: a relay replaying an old announcement gets nothing shown
 *   or counted;
 * - sender keys go only to trusted members: over pairwise sessions to those
 *   present (forward secret, post-quantum hybrid, replay-proof), in prekey
 *   envelopes stored by the relay to those offline (durable rooms);
 * - when a member who holds the current key leaves the room, this member
 *   starts a new epoch before its next message; a newcomer gets the current
 *   chain state, from which earlier message keys cannot be derived;
 * - a group message is shown only if its signature, epoch, iteration order
 *   and AEAD tag all check out; anything else, and every message that was
 *   sent and will never be read, becomes a warning.
 *
 * In a durable room the members are the relay's roster: going offline is not
 * leaving, messages come back from the relay's store on reconnection, and
 * {@linkcode RoomSession.exportState} gives what the client must keep.
 *
 * @module
 */

import { generateKeyPair, type KeyPair } from "../crypto/noise.ts";
import type { Identity } from "../identity/identity.ts";
import type { MemberEntry, RelayRecord } from "../transport/records.ts";
import { type Announcement, signAnnouncement, verifyAnnouncement } from "./announcement.ts";
import type { PrekeySecretStore } from "./prekey_envelope.ts";
import { type LeaveReason, RoomInbox, type RoomOutput, warn, warnUntrusted } from "./room_inbox.ts";
import { type MemberInfo, RECEIVE_LIMITS, type RoomMember } from "./room_member.ts";
import { RoomRoster } from "./room_roster.ts";
import { pairwiseTo, RoomSender } from "./room_sender.ts";
import type { RoomState } from "./room_state.ts";
import { groupContext } from "./sender_keys.ts";

export { type MemberInfo, RECEIVE_LIMITS } from "./room_member.ts";
export type { LeaveReason, RoomEvent, RoomOutput, WarningCode } from "./room_inbox.ts";

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
  /** What this member kept of the room from earlier connections (durable rooms). */
  saved?: RoomState;
  /** This member's prekey secrets, to open envelopes stored for it (durable rooms). */
  prekeys?: PrekeySecretStore;
  /** Clock, for tests. */
  now?: () => number;
}

/** Relay reasons for a member going away (records `member-offline`). */
const LEAVE_REASONS: Record<number, LeaveReason> = { 0: "offline", 1: "left", 2: "removed" };

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

  #nick: string;
  #identity: Identity;
  #presence: KeyPair = generateKeyPair("25519");
  #context: Uint8Array;
  #now: () => number;
  #saved?: RoomState;
  #roster: RoomRoster;
  /** Every member this client knows: the online ones, and in a durable room the roster. */
  #members: Map<number, RoomMember>;
  /** Members that time may need to report on: not yet present, or with held messages. */
  #watched = new Set<RoomMember>();
  #inbox: RoomInbox;
  #memberId?: number;
  #sender: RoomSender;
  /** The highest relay sequence read (durable rooms). */
  #lastSeq = 0;
  /** Stored items read since the welcome, for the caught-up event. */
  #storedRead = 0;

  /** @example `new RoomSession({ identity, room: "ops", nick: "alice" })` */
  constructor(options: RoomSessionOptions) {
    this.#identity = options.identity;
    this.room = options.room;
    this.#nick = options.nick;
    this.#context = groupContext(options.room);
    this.#now = options.now ?? Date.now;
    this.#saved = options.saved;
    this.announcement = this.#announce(options.nick);
    this.#roster = new RoomRoster({
      identity: options.identity,
      room: options.room,
      presence: this.#presence,
      nick: () => this.#nick,
      isTrusted: options.isTrusted ?? (() => true),
      now: this.#now,
    });
    this.#members = this.#roster.members;
    this.#inbox = new RoomInbox({
      context: this.#context,
      room: options.room,
      identityPublicKey: options.identity.publicKey,
      prekeys: options.prekeys,
      now: this.#now,
      watch: (member) => this.#watched.add(member),
      durable: () => this.#sender.durable,
    });
    this.#sender = new RoomSender({
      identity: options.identity,
      room: options.room,
      context: this.#context,
      members: this.#members,
      now: this.#now,
    });
  }

  /** This member's nick. @example `session.nick` */
  get nick(): string {
    return this.#nick;
  }

  /** Whether the relay's welcome has arrived. @example `session.joined` */
  get joined(): boolean {
    return this.#memberId !== undefined;
  }

  /** Whether the room keeps messages for members who are away. @example `session.durable` */
  get durable(): boolean {
    return this.#sender.durable;
  }

  /** This member's relay-assigned id, once joined. @example `session.memberId` */
  get memberId(): number | undefined {
    return this.#memberId;
  }

  /** The current sender key epoch (0 before joining). @example `session.epoch` */
  get epoch(): number {
    return this.#sender.epoch;
  }

  /** The highest relay sequence read (durable rooms; 0 otherwise). @example `session.lastSeq` */
  get lastSeq(): number {
    return this.#lastSeq;
  }

  /**
   * Whether every member online has either completed its pairwise handshake
   * or been reported as not answering: from then on, a message sent reaches
   * everyone who is really here.
   *
   * @example
   * ```ts
   * if (session.settled) await client.send(["deploy done"]);
   * ```
   */
  get settled(): boolean {
    if (!this.joined) return false;
    for (const member of this.#members.values()) {
      const presence = member.presence;
      if (presence !== undefined && !presence.present && !presence.warnedNoAnswer) return false;
    }
    return true;
  }

  /** The present members, in join order. @example `session.members()` */
  members(): MemberInfo[] {
    return [...this.#members.values()].filter((member) => member.present).map((m) => m.info);
  }

  /**
   * Every member this client knows: in a durable room the whole roster, with
   * `online` telling who is connected now.
   *
   * @example
   * ```ts
   * const away = session.roster().filter((member) => !member.online);
   * ```
   */
  roster(): MemberInfo[] {
    return [...this.#members.values()].map((member) => member.info);
  }

  /**
   * Who can read a message encrypted now: present members that hold the
   * current sender key (`online`), and members away that were handed it in
   * a stored prekey envelope (`later`).
   *
   * @example
   * ```ts
   * const { online, later } = session.readers();
   * ```
   */
  readers(): { online: number; later: number } {
    return this.#sender.readers();
  }

  /**
   * Starts the new epoch a departure made due, sending it to the present
   * trusted members. Call before {@linkcode RoomSession.keyHandoverNeeded}
   * so that members away are handed the new key, not the retired one.
   *
   * @example
   * ```ts
   * for (const record of session.prepareToSend()) relay.send(record);
   * ```
   */
  prepareToSend(): RelayRecord[] {
    if (!this.#sender.ready) throw new Error("cannot send before the relay's welcome");
    return this.#sender.rekeyDue ? this.#sender.startEpoch() : [];
  }

  /**
   * The trusted members (durable rooms) that are not present and do not hold
   * the current sender key: before a message, each must be handed the key in
   * a prekey envelope ({@linkcode RoomSession.sealKeyFor}).
   *
   * @example
   * ```ts
   * for (const memberId of session.keyHandoverNeeded()) relay.send(getPrekeys(memberId));
   * ```
   */
  keyHandoverNeeded(): number[] {
    return this.#sender.handoverNeeded();
  }

  /**
   * Seals the current sender key for a member away, to the prekey bundle the
   * relay handed out for it, and counts the member as holding it. Returns the
   * envelope for a `store-for` record, or a warning when the bundle is not
   * that member's (the relay substituted it).
   *
   * @example
   * ```ts
   * const sealed = session.sealKeyFor(memberId, bundle);
   * if ("envelope" in sealed) relay.send({ type: "storeFor", id, to: memberId, envelope: sealed.envelope });
   * ```
   */
  sealKeyFor(memberId: number, bundle: Uint8Array): { envelope: Uint8Array } | { warning: string } {
    const member = this.#members.get(memberId);
    if (member === undefined) return { warning: `no member ${memberId} to hand a key to` };
    return this.#sender.sealFor(member, bundle);
  }

  /**
   * The relay did not store a key handed to `memberId` (a limit): it does not
   * hold the current epoch after all.
   *
   * @example
   * ```ts
   * session.keyHandoverFailed(memberId);
   * ```
   */
  keyHandoverFailed(memberId: number): void {
    const member = this.#members.get(memberId);
    if (member !== undefined && member.heldEpochOfOurs === this.#sender.epoch) {
      member.heldEpochOfOurs = 0;
    }
  }

  /**
   * Encrypts and signs a batch of texts as one group message. `send` holds
   * records that must go out before it (a new epoch for present members, if
   * {@linkcode RoomSession.prepareToSend} was not called).
   *
   * @example
   * ```ts
   * const { send, message, readers } = session.encryptTexts(["hello"]);
   * for (const record of send) relay.send(record);
   * relay.send({ type: "publish", id: 1, message });
   * ```
   */
  encryptTexts(
    texts: string[],
  ): { send: RelayRecord[]; message: Uint8Array; readers: { online: number; later: number } } {
    const send = this.prepareToSend();
    const readers = this.readers();
    return { send, message: this.#sender.encrypt(texts), readers };
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
    return pairwiseTo(member, { kind: "direct-text", time: this.#now(), text });
  }

  /**
   * A rename record: a new announcement under `nick` (durable rooms; the
   * relay checks the nick and tells everyone).
   *
   * @example
   * ```ts
   * relay.send(session.renameTo("alicia"));
   * ```
   */
  renameTo(nick: string): RelayRecord {
    return { type: "rename", announcement: this.#announce(nick) };
  }

  /**
   * What this member must keep of a durable room to pick up where it left
   * off (undefined before the welcome, and in ephemeral rooms).
   *
   * @example
   * ```ts
   * await store.putState(key, encodeRoomState(session.exportState()!));
   * ```
   */
  exportState(): RoomState | undefined {
    if (!this.#sender.durable || this.#memberId === undefined) return undefined;
    return {
      memberId: this.#memberId,
      outbound: this.#sender.state(),
      rekeyDue: this.#sender.rekeyDue,
      lastSeq: this.#lastSeq,
      members: [...this.#members.values()].map((member) => ({
        memberId: member.info.memberId,
        identityPublicKey: member.info.identityPublicKey,
        nick: member.info.nick,
        heldEpochOfOurs: member.heldEpochOfOurs,
        inbound: member.inboundState(),
      })),
    };
  }

  /**
   * Processes one record from the relay.
   *
   * @example
   * ```ts
   * const { send, events } = session.handle({ type: "memberOffline", memberId: 4, reason: 1 });
   * ```
   */
  handle(record: RelayRecord): RoomOutput {
    const output = this.tick();
    switch (record.type) {
      case "welcome":
        this.#welcome(record, output);
        break;
      case "memberOnline":
        this.#memberOnline(record.member, false, output);
        break;
      case "memberOffline":
        this.#memberGone(record.memberId, LEAVE_REASONS[record.reason] ?? "left", output);
        break;
      case "renamed":
        this.#renamed(record.member, output);
        break;
      case "directFrom":
        this.#directFrom(record.from, record.envelope, output);
        break;
      case "deliver":
        this.#stored(
          record.seq,
          output,
          (into) =>
            this.#withMember(
              record.from,
              "a message",
              into,
              (member) =>
                this.#inbox.deliver(member, record.message, into, record.seq || undefined),
            ),
        );
        break;
      case "storedEnvelope":
        this.#stored(
          record.seq,
          output,
          (into) =>
            this.#withMember(
              record.from,
              "a stored envelope",
              into,
              (member) => this.#inbox.storedEnvelope(member, record.envelope, into, record.seq),
            ),
        );
        break;
      case "gap":
        this.#gap(record.first, record.last, record.reason, output);
        break;
      case "caughtUp":
        this.#lastSeq = Math.max(this.#lastSeq, record.seq);
        output.events.push({ type: "caught-up", seq: record.seq, stored: this.#storedRead });
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
      const presence = member.presence;
      const waiting = presence !== undefined && !presence.present && !presence.warnedNoAnswer;
      if (!this.#members.has(member.info.memberId) || (!waiting && member.heldCount === 0)) {
        this.#watched.delete(member);
        continue;
      }
      if (waiting && now - presence.announcedAt >= RECEIVE_LIMITS.answerWaitMs) {
        presence.warnedNoAnswer = true;
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
        warn(
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

  #announce(nick: string): Uint8Array {
    const announcement: Announcement = {
      room: this.room,
      nick,
      pairwisePublicKey: this.#presence.publicKey,
      time: this.#now(),
    };
    return signAnnouncement({ identity: this.#identity, announcement });
  }

  #welcome(
    record: Extract<RelayRecord, { type: "welcome" }>,
    output: RoomOutput,
  ): void {
    if (this.#memberId !== undefined) return;
    this.#memberId = record.memberId;
    this.#sender.durable = record.durable;
    const saved = this.#sender.durable && this.#saved?.memberId === record.memberId
      ? this.#saved
      : undefined;
    const listed = new Set(record.members.map((entry) => entry.memberId));
    if (saved !== undefined) this.#restore(saved, listed);
    if (!this.#sender.ready || this.#sender.rekeyDue) {
      output.send.push(...this.#sender.startEpoch());
    }
    for (const entry of record.members) {
      if (entry.online === false) this.#rosterMember(entry, output);
      else this.#memberOnline(entry, true, output);
    }
  }

  /** Puts back what this member kept; members gone from the roster meanwhile force a rekey. */
  #restore(saved: RoomState, listed: Set<number>): void {
    this.#lastSeq = saved.lastSeq;
    if (saved.outbound !== undefined) this.#sender.restore(saved.outbound, saved.rekeyDue);
    // Removed while this member was away: it may hold the current key.
    if (this.#roster.restore(saved.members, listed)) this.#sender.rekeyDue = true;
  }

  /** A roster member that is away (durable rooms): known, not online. */
  #rosterMember(entry: MemberEntry, output: RoomOutput): void {
    if (entry.memberId === this.#memberId) return;
    const announcement = this.#roster.verify(entry, output, { live: false });
    if (announcement === undefined) return;
    const member = this.#members.get(entry.memberId) ?? this.#roster.add({
      memberId: entry.memberId,
      identityPublicKey: entry.identityPublicKey,
      nick: announcement.nick,
      online: false,
    });
    member.info.nick = announcement.nick;
  }

  #memberOnline(entry: MemberEntry, initial: boolean, output: RoomOutput): void {
    if (entry.memberId === this.#memberId) return;
    const existing = this.#members.get(entry.memberId);
    if (existing?.presence !== undefined) return;
    const announcement = this.#roster.verify(entry, output, { live: true });
    if (announcement === undefined) return;
    const member = existing ?? this.#roster.add({
      memberId: entry.memberId,
      identityPublicKey: entry.identityPublicKey,
      nick: announcement.nick,
      online: true,
    });
    if (member.info.nick !== announcement.nick) {
      const previousNick = member.info.nick;
      member.info.nick = announcement.nick;
      output.events.push({ type: "member-renamed", member: member.info, previousNick });
    }
    this.#roster.markPresenceKeySeen(announcement.pairwisePublicKey);
    const presence = member.goOnline({
      presenceKey: announcement.pairwisePublicKey,
      initial,
      announcedAt: this.#now(),
    });
    this.#watched.add(member);
    const hello = presence.startHandshake();
    if (hello !== undefined) {
      output.send.push({ type: "direct", to: entry.memberId, envelope: hello });
    }
  }

  #renamed(entry: MemberEntry, output: RoomOutput): void {
    if (entry.memberId === this.#memberId) {
      try {
        const own = verifyAnnouncement({
          identityPublicKey: this.#identity.publicKey,
          bytes: entry.announcement,
        });
        if (own.room === this.room && this.#roster.isOwnKey(entry.identityPublicKey)) {
          this.#nick = own.nick;
        }
      } catch {
        // Not ours after all: nothing to change.
      }
      return;
    }
    const member = this.#members.get(entry.memberId);
    if (member === undefined) return;
    const announcement = this.#roster.verify(entry, output, { live: false });
    if (announcement === undefined || announcement.nick === member.info.nick) return;
    const previousNick = member.info.nick;
    member.info.nick = announcement.nick;
    output.events.push({ type: "member-renamed", member: member.info, previousNick });
  }

  /** A member completed its handshake: show it. */
  #memberPresent(member: RoomMember, output: RoomOutput): void {
    output.events.push({
      type: "member-joined",
      member: member.info,
      initial: member.presence?.initial ?? false,
    });
    if (!member.info.trusted) warnUntrusted(member, output);
  }

  #memberGone(memberId: number, reason: LeaveReason, output: RoomOutput): void {
    const member = this.#members.get(memberId);
    if (member === undefined) return;
    const wasPresent = member.present;
    if (reason === "offline" && this.#sender.durable) {
      member.goOffline();
      if (wasPresent) output.events.push({ type: "member-left", member: member.info, reason });
      return;
    }
    member.goOffline();
    this.#members.delete(memberId);
    this.#watched.delete(member);
    const unreadable = this.#inbox.dropHeld(member);
    if (wasPresent || this.#sender.durable) {
      output.events.push({ type: "member-left", member: member.info, reason });
    }
    if (unreadable > 0) {
      warn(
        output,
        "missing-key",
        member,
        `${unreadable} message(s) from ${member.info.nick} could not be read: its key never ` +
          `arrived (withheld by the relay, or ${member.info.nick} did not trust you)`,
      );
    }
    // The member who left may hold our current chain key: nothing more is sent under it. The new
    // epoch starts with our next message, so a burst of leaves costs one rekey, and idle
    // members send nothing.
    if (member.heldEpochOfOurs !== 0) this.#sender.rekeyDue = true;
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
      warn(
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
        output.send.push(this.#sender.firstData(member));
        return;
      case "confirmed":
        output.send.push(this.#sender.firstData(member));
        this.#memberPresent(member, output);
        return;
      case "data":
        if (outcome.confirmedNow) this.#memberPresent(member, output);
        if (outcome.skipped > 0) {
          warn(
            output,
            "gap",
            member,
            `${outcome.skipped} pairwise message(s) from ${member.info.nick} never arrived ` +
              "(withheld or lost: a key or a direct message may be missing)",
          );
        }
        this.#inbox.pairwiseContent(member, outcome.plaintext, output);
        return;
    }
  }

  #withMember(
    from: number,
    what: string,
    output: RoomOutput,
    handle: (member: RoomMember) => void,
  ): void {
    const member = this.#members.get(from);
    if (member === undefined) {
      output.events.push({
        type: "warning",
        code: "unknown-member",
        text: `ignoring ${what} from unknown member ${from}`,
      });
      return;
    }
    handle(member);
  }

  /**
   * Handles a stored item (or a live one, seq 0). An item at or below what
   * was already read is one the relay sends again after a reconnection that
   * came before this member's acknowledgement: it is still checked like any
   * other (the sequence is the relay's word, not proof), and only its
   * "already read" refusal is kept quiet.
   */
  #stored(seq: number | undefined, output: RoomOutput, handle: (into: RoomOutput) => void): void {
    const counted = this.#sender.durable && seq !== undefined && seq > 0;
    const resent = counted && seq! <= this.#lastSeq;
    const into: RoomOutput = { send: output.send, events: [] };
    handle(into);
    for (const event of into.events) {
      if (resent && event.type === "warning" && event.code === "replayed") continue;
      output.events.push(event);
    }
    if (counted && !resent) {
      this.#lastSeq = seq!;
      this.#storedRead++;
    }
  }

  #gap(first: number, last: number, reason: number, output: RoomOutput): void {
    const why = reason === 1
      ? "they expired on the relay before you came back (retention)"
      : reason === 2
      ? "the relay stopped keeping messages for you (your mailbox was full)"
      : "the relay did not keep them";
    const count = Math.max(1, last - first + 1);
    output.events.push({
      type: "warning",
      code: "gap",
      text: `up to ${count} stored message(s) (${first}–${last}) were lost: ${why}`,
    });
    this.#lastSeq = Math.max(this.#lastSeq, last);
  }
}
