/**
 * One member's end-to-end state for one room: who the members are, the
 * sender key this member sends with, and the sender keys it has received.
 * It takes the relay's records in and says what to send and what to show;
 * it does no I/O, so tests can play a hostile relay against it directly.
 *
 * Rules it enforces (PROTOCOL.md, "End-to-end layer"):
 * - a member's announcement must be signed by the identity the relay names,
 *   and be for this room;
 * - sender keys go only to trusted members, in pairwise envelopes;
 * - when a member leaves, this member starts a new sender key epoch before
 *   its next message and sends it to the members that remain; a newcomer gets the current chain
 *   state, from which earlier message keys cannot be derived;
 * - a group message is shown only if its signature, epoch, iteration order
 *   and AEAD tag all check out; anything else becomes a warning.
 *
 * @module
 */

import { cryptoBackend } from "../crypto/crypto_backend.ts";
import { type Announcement, signAnnouncement, verifyAnnouncement } from "./announcement.ts";
import { ByteWriter, toHex, utf8 } from "../core/bytes.ts";
import {
  decodeGroupContent,
  decodePairwiseContent,
  encodeGroupContent,
  encodePairwiseContent,
} from "./content.ts";
import { openEnvelope, sealEnvelope } from "./envelope.ts";
import { fingerprint } from "../identity/fingerprint.ts";
import type { Identity } from "../identity/identity.ts";
import { generateKeyPair } from "../crypto/noise.ts";
import type { MemberEntry, RelayRecord } from "../transport/records.ts";
import {
  groupContext,
  GroupMessageError,
  InboundSenderKey,
  OutboundSenderKey,
  peekGroupMessageHeader,
  type SenderKeyState,
} from "./sender_keys.ts";

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

/** Why a warning was raised. */
export type WarningCode =
  | "bad-announcement"
  | "untrusted-member"
  | "forged"
  | "replayed"
  | "tampered"
  | "malformed"
  | "gap"
  | "unknown-member"
  | "bad-envelope"
  | "stale-key"
  | "too-many-pending"
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

function isUsablePairwiseKey(ownSecretKey: Uint8Array, publicKey: Uint8Array): boolean {
  try {
    // noble refuses low-order points (all-zero shared secret).
    cryptoBackend.x25519(ownSecretKey, publicKey);
    return true;
  } catch {
    return false;
  }
}

/** Group messages held per member until its sender key arrives. */
const MAX_PENDING_PER_MEMBER = 1024;
/** How long messages may wait for their sender's key before the user is told. */
const KEY_WAIT_MS = 5_000;
const PAIRWISE_CONTEXT = utf8("securechat/1 pairwise\0");

interface MemberState {
  info: MemberInfo;
  pairwisePublicKey: Uint8Array;
  inbound?: InboundSenderKey;
  inboundEpoch: number;
  pending: Uint8Array[];
  /** When the oldest message in `pending` arrived (this session's clock). */
  pendingSince: number;
  /** Whether the user was told that `pending` is waiting for a key. */
  warnedMissingKey: boolean;
  warnedUntrusted: boolean;
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
  #pairwise = generateKeyPair("25519");
  #context: Uint8Array;
  #isTrusted: (member: { nick: string; fingerprint: string }) => boolean;
  #now: () => number;
  #members = new Map<number, MemberState>();
  /** Members with messages held for their key: checked on each record, so kept apart. */
  #awaitingKeys = new Set<MemberState>();
  /**
   * Pairwise keys of every announcement accepted in this session, this
   * member's own included. Each connection announces a fresh one, so a key
   * seen again is an announcement replayed by the relay (with the member's
   * old envelopes and messages behind it), never a real member.
   */
  #announcedKeys = new Set<string>();
  #memberId?: number;
  #outbound?: OutboundSenderKey;
  #epoch = 0;
  /** A member left since our last message: start a new epoch before the next one. */
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
      pairwisePublicKey: this.#pairwise.publicKey,
      time: this.#now(),
    };
    this.announcement = signAnnouncement({ identity: this.#identity, announcement });
    this.#announcedKeys.add(toHex(this.#pairwise.publicKey));
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

  /** The other members, in join order. @example `session.members()` */
  members(): MemberInfo[] {
    return [...this.#members.values()].map((state) => state.info);
  }

  /**
   * Encrypts and signs a batch of texts as one group message. `send` holds
   * the records that must go out before it: when a member has left since the
   * last message, the envelopes of a new sender key epoch for the members
   * who remain.
   *
   * @example
   * ```ts
   * const { send, message } = session.encryptTexts(["hello"]);
   * for (const record of send) relay.send(record);
   * relay.send({ type: "publish", id: 1, message });
   * ```
   */
  encryptTexts(texts: string[]): { send: RelayRecord[]; message: Uint8Array } {
    if (this.#outbound === undefined) throw new Error("cannot send before the relay's welcome");
    const output: RoomOutput = { send: [], events: [] };
    if (this.#rekeyDue) this.#startEpoch(output);
    const plaintext = encodeGroupContent({ time: this.#now(), texts });
    return {
      send: output.send,
      message: this.#outbound!.encrypt({ context: this.#context, plaintext }),
    };
  }

  /**
   * Seals a direct text that only `memberId` can read.
   *
   * @example
   * ```ts
   * relay.send(session.directText(bob.memberId, "hi bob"));
   * ```
   */
  directText(memberId: number, text: string): RelayRecord {
    const member = this.#members.get(memberId);
    if (member === undefined) throw new Error(`no member ${memberId} in room ${this.room}`);
    return this.#envelopeTo(member, { kind: "direct-text", time: this.#now(), text });
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
    const output: RoomOutput = { send: [], events: [] };
    this.#checkWaitingForKeys(output);
    switch (record.type) {
      case "welcome":
        this.#welcome(record.memberId, record.members, output);
        break;
      case "memberJoined":
        this.#memberJoined(record.member, false, output);
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

  #welcome(memberId: number, members: MemberEntry[], output: RoomOutput): void {
    if (this.#memberId !== undefined) return;
    this.#memberId = memberId;
    this.#startEpoch(output);
    for (const entry of members) this.#memberJoined(entry, true, output);
  }

  #startEpoch(output: RoomOutput): void {
    this.#rekeyDue = false;
    this.#epoch++;
    this.#outbound = OutboundSenderKey.create({ identity: this.#identity, epoch: this.#epoch });
    const state = this.#outbound.exportState();
    for (const member of this.#members.values()) {
      if (member.info.trusted) output.send.push(this.#senderKeyTo(member, state));
    }
  }

  #memberJoined(entry: MemberEntry, initial: boolean, output: RoomOutput): void {
    if (entry.memberId === this.#memberId || this.#members.has(entry.memberId)) return;
    let announcement: Announcement;
    const memberFingerprint = fingerprint(entry.identityPublicKey);
    try {
      announcement = verifyAnnouncement({
        identityPublicKey: entry.identityPublicKey,
        bytes: entry.announcement,
      });
      if (announcement.room !== this.room) throw new Error("announcement is for another room");
      // A low-order key would make sealing every envelope to this member throw, later.
      if (!isUsablePairwiseKey(this.#pairwise.secretKey, announcement.pairwisePublicKey)) {
        throw new Error("announcement carries an invalid pairwise key");
      }
      if (this.#announcedKeys.has(toHex(announcement.pairwisePublicKey))) {
        throw new Error("its announcement was seen before: the relay is replaying it");
      }
      // An honest relay keeps nicks unique in a room; two keys under one nick is impersonation.
      const namesake = announcement.nick === this.nick && !this.#isOwnKey(entry.identityPublicKey)
        ? "you"
        : this.members().find((member) =>
          member.nick === announcement.nick && member.fingerprint !== memberFingerprint
        )?.fingerprint;
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
    const state: MemberState = {
      info,
      pairwisePublicKey: announcement.pairwisePublicKey,
      inboundEpoch: 0,
      pending: [],
      pendingSince: 0,
      warnedMissingKey: false,
      warnedUntrusted: false,
    };
    this.#announcedKeys.add(toHex(announcement.pairwisePublicKey));
    this.#members.set(entry.memberId, state);
    output.events.push({ type: "member-joined", member: info, initial });
    if (!info.trusted) {
      this.#warnUntrusted(state, output);
      return;
    }
    // With a rekey due, the current chain is retired: the newcomer gets the next one instead.
    if (this.#outbound && !this.#rekeyDue) {
      output.send.push(this.#senderKeyTo(state, this.#outbound.exportState()));
    }
  }

  #warnUntrusted(member: MemberState, output: RoomOutput): void {
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
    output.events.push({ type: "member-left", member: member.info });
    if (member.pending.length > 0) {
      this.#warn(
        output,
        "missing-key",
        member,
        `${member.pending.length} message(s) from ${member.info.nick} could not be read: ` +
          `its key never arrived (withheld by the relay, or ${member.info.nick} did not trust you)`,
      );
    }
    // The member who left holds our current chain key: nothing more is sent under it. The new
    // epoch starts with our next message, so a burst of leaves costs one rekey, and idle
    // members send nothing.
    if (this.#outbound) this.#rekeyDue = true;
  }

  #pairwisePrologue(sender: Uint8Array, recipient: Uint8Array): Uint8Array {
    return new ByteWriter(128).raw(PAIRWISE_CONTEXT).string8(this.room).raw(sender).raw(recipient)
      .finish();
  }

  #envelopeTo(
    member: MemberState,
    content: Parameters<typeof encodePairwiseContent>[0],
  ): RelayRecord {
    const envelope = sealEnvelope({
      senderStaticKeyPair: this.#pairwise,
      recipientStaticPublicKey: member.pairwisePublicKey,
      prologue: this.#pairwisePrologue(this.#identity.publicKey, member.info.identityPublicKey),
      plaintext: encodePairwiseContent(content),
    });
    return { type: "direct", to: member.info.memberId, envelope };
  }

  #senderKeyTo(member: MemberState, state: SenderKeyState): RelayRecord {
    return this.#envelopeTo(member, { kind: "sender-key", state });
  }

  /** The member `from` if it may send to us; otherwise warns and returns undefined. */
  #trustedSender(from: number, what: string, output: RoomOutput): MemberState | undefined {
    const member = this.#members.get(from);
    if (member === undefined) {
      output.events.push({
        type: "warning",
        code: "unknown-member",
        text: `ignoring ${what} from unknown member ${from}`,
      });
      return undefined;
    }
    if (!member.info.trusted) {
      this.#warnUntrusted(member, output);
      return undefined;
    }
    return member;
  }

  #directFrom(from: number, envelope: Uint8Array, output: RoomOutput): void {
    const member = this.#trustedSender(from, "an envelope", output);
    if (member === undefined) return;
    let content: ReturnType<typeof decodePairwiseContent>;
    try {
      content = decodePairwiseContent(openEnvelope({
        recipientStaticKeyPair: this.#pairwise,
        senderStaticPublicKey: member.pairwisePublicKey,
        prologue: this.#pairwisePrologue(member.info.identityPublicKey, this.#identity.publicKey),
        envelope,
      }));
    } catch {
      output.events.push({
        type: "warning",
        code: "bad-envelope",
        member: member.info,
        text: `rejected a pairwise envelope claiming to be from ${member.info.nick}: ` +
          "it failed authentication",
      });
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
    if (content.state.epoch <= member.inboundEpoch) {
      output.events.push({
        type: "warning",
        code: "stale-key",
        member: member.info,
        text:
          `ignored an old sender key (epoch ${content.state.epoch}) from ${member.info.nick}: ` +
          "replayed or out of order",
      });
      return;
    }
    member.inbound = new InboundSenderKey({
      senderPublicKey: member.info.identityPublicKey,
      state: content.state,
    });
    member.inboundEpoch = content.state.epoch;
    member.warnedMissingKey = false;
    const pending = member.pending.splice(0);
    for (const message of pending) this.#decrypt(member, message, output, true);
  }

  #deliver(from: number, message: Uint8Array, output: RoomOutput): void {
    const member = this.#trustedSender(from, "a message", output);
    if (member) this.#decrypt(member, message, output, false);
  }

  #decrypt(
    member: MemberState,
    message: Uint8Array,
    output: RoomOutput,
    fromPending: boolean,
  ): void {
    let epoch: number;
    try {
      epoch = peekGroupMessageHeader(message).epoch;
    } catch {
      this.#warn(
        output,
        "malformed",
        member,
        `rejected a malformed message from ${member.info.nick}`,
      );
      return;
    }
    if (member.inbound === undefined || epoch > member.inboundEpoch) {
      // Its sender key is still on the way (envelopes and messages share one ordered stream).
      if (member.pending.length >= MAX_PENDING_PER_MEMBER) {
        this.#warn(
          output,
          "too-many-pending",
          member,
          `dropped a message from ${member.info.nick}: its sender key never arrived`,
        );
        return;
      }
      if (member.pending.length === 0) member.pendingSince = this.#now();
      member.pending.push(message.slice());
      this.#awaitingKeys.add(member);
      return;
    }
    try {
      const result = member.inbound.decrypt({ context: this.#context, message });
      if (result.skipped > 0) {
        this.#warn(
          output,
          "gap",
          member,
          `${result.skipped} message(s) from ${member.info.nick} never arrived (withheld or lost)`,
        );
      }
      const content = decodeGroupContent(result.plaintext);
      for (const text of content.texts) {
        output.events.push({
          type: "message",
          from: member.info,
          text,
          time: content.time,
          direct: false,
        });
      }
    } catch (error) {
      if (!(error instanceof GroupMessageError)) {
        this.#warn(
          output,
          "malformed",
          member,
          `rejected a malformed message from ${member.info.nick}`,
        );
        return;
      }
      // Messages sent before this member held the key predate its membership: not for it.
      if (fromPending && (error.reason === "replayed" || error.reason === "wrong-epoch")) return;
      const code = error.reason === "forged"
        ? "forged"
        : error.reason === "tampered"
        ? "tampered"
        : error.reason === "malformed"
        ? "malformed"
        : "replayed";
      this.#warn(
        output,
        code,
        member,
        `rejected a message from ${member.info.nick}: ${error.message}`,
      );
    }
  }

  #isOwnKey(identityPublicKey: Uint8Array): boolean {
    return toHex(identityPublicKey) === toHex(this.#identity.publicKey);
  }

  /** Tells the user, once per member, about messages stuck waiting for a key. */
  #checkWaitingForKeys(output: RoomOutput): void {
    if (this.#awaitingKeys.size === 0) return;
    const now = this.#now();
    for (const member of this.#awaitingKeys) {
      if (member.pending.length === 0 || !this.#members.has(member.info.memberId)) {
        this.#awaitingKeys.delete(member);
        continue;
      }
      if (member.warnedMissingKey || now - member.pendingSince < KEY_WAIT_MS) continue;
      member.warnedMissingKey = true;
      this.#warn(
        output,
        "missing-key",
        member,
        `${member.pending.length} message(s) from ${member.info.nick} cannot be read yet: ` +
          `its key has not arrived for ${Math.round((now - member.pendingSince) / 1000)} s ` +
          `(withheld by the relay, or ${member.info.nick} does not trust you)`,
      );
    }
  }

  #warn(output: RoomOutput, code: WarningCode, member: MemberState, text: string): void {
    output.events.push({ type: "warning", code, member: member.info, text });
  }
}
