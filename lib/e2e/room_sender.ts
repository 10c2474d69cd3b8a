/**
 * The sending half of a room session: this member's sender key and its
 * epochs, which members hold which epoch, handing the key to members away
 * in prekey envelopes (durable rooms), and who can read a message encrypted
 * now (PROTOCOL.md, "Sender keys").
 *
 * @module
 */

import type { Identity } from "../identity/identity.ts";
import type { RelayRecord } from "../transport/records.ts";
import { encodeGroupContent, encodePairwiseContent, type PairwiseContent } from "./content.ts";
import { sealPrekeyEnvelope } from "./prekey_envelope.ts";
import { PrekeyError, verifyPrekeyBundle } from "./prekeys.ts";
import type { RoomMember } from "./room_member.ts";
import { OutboundSenderKey, type SenderKeyState } from "./sender_keys.ts";

/** Seconds from the Unix epoch to 2020-01-01: durable epochs never start below the clock. */
const EPOCH_CLOCK_ORIGIN_MS = 1_577_836_800_000;

/** Options for {@linkcode RoomSender}. */
export interface RoomSenderOptions {
  identity: Identity;
  room: string;
  /** The room's group-message context. */
  context: Uint8Array;
  /** The session's members, by id (shared, not copied). */
  members: Map<number, RoomMember>;
  now: () => number;
}

/**
 * This member's sender key in one room.
 *
 * @example
 * ```ts
 * const sender = new RoomSender({ identity, room, context, members, now: Date.now });
 * const records = sender.startEpoch({ durable: false });
 * ```
 */
export class RoomSender {
  /** A member who held our key left since our last message: new epoch before the next one. */
  rekeyDue = false;
  /** Whether the room keeps messages for members away. */
  durable = false;

  #options: RoomSenderOptions;
  #outbound?: OutboundSenderKey;
  #epoch = 0;

  /** @example `new RoomSender(options)` */
  constructor(options: RoomSenderOptions) {
    this.#options = options;
  }

  /** The current epoch (0 before the first). @example `sender.epoch` */
  get epoch(): number {
    return this.#epoch;
  }

  /** Whether there is a key to send with. @example `sender.ready` */
  get ready(): boolean {
    return this.#outbound !== undefined;
  }

  /** The current state, for persistence and for handing to members. @example `sender.state()` */
  state(): SenderKeyState | undefined {
    return this.#outbound?.exportState();
  }

  /**
   * Takes back the key kept from an earlier connection.
   *
   * @example
   * ```ts
   * sender.restore(saved.outbound, saved.rekeyDue);
   * ```
   */
  restore(state: SenderKeyState, rekeyDue: boolean): void {
    this.#epoch = state.epoch;
    this.#outbound = OutboundSenderKey.restore({ identity: this.#options.identity, state });
    this.rekeyDue = rekeyDue;
  }

  /**
   * Starts a new epoch (a fresh chain key, the iteration count continuing)
   * and returns its key for every present, trusted member.
   *
   * @example
   * ```ts
   * for (const record of sender.startEpoch()) relay.send(record);
   * ```
   */
  startEpoch(): RelayRecord[] {
    this.rekeyDue = false;
    // In a durable room the epoch also never falls below the clock, so a member that lost
    // its state starts above what the others hold instead of being refused as stale.
    const floor = this.durable
      ? Math.floor((this.#options.now() - EPOCH_CLOCK_ORIGIN_MS) / 1000)
      : 0;
    this.#epoch = Math.min(0xffff_ffff, Math.max(this.#epoch + 1, floor));
    this.#outbound = OutboundSenderKey.create({
      identity: this.#options.identity,
      epoch: this.#epoch,
      iteration: this.#outbound?.iteration ?? 0,
    });
    const state = this.#outbound.exportState();
    const send: RelayRecord[] = [];
    for (const member of this.#options.members.values()) {
      if (member.present && member.established && member.info.trusted) {
        send.push(this.keyTo(member, state));
      }
    }
    return send;
  }

  /**
   * The first data message to a member whose handshake just completed: the
   * current key if this member trusts it (and no rekey is due: the retired
   * chain is never handed out), otherwise a confirmation.
   *
   * @example
   * ```ts
   * relay.send(sender.firstData(member));
   * ```
   */
  firstData(member: RoomMember): RelayRecord {
    if (member.info.trusted && this.#outbound !== undefined && !this.rekeyDue) {
      return this.keyTo(member, this.#outbound.exportState());
    }
    return pairwiseTo(member, { kind: "confirm" });
  }

  /**
   * The key `state` for a present member, over its pairwise session.
   *
   * @example
   * ```ts
   * relay.send(sender.keyTo(member, sender.state()!));
   * ```
   */
  keyTo(member: RoomMember, state: SenderKeyState): RelayRecord {
    const record = pairwiseTo(member, { kind: "sender-key", state });
    member.heldEpochOfOurs = state.epoch;
    return record;
  }

  /**
   * Who can read a message encrypted now: present members holding the
   * current key, and (durable rooms) members away that were handed it.
   *
   * @example
   * ```ts
   * const { online, later } = sender.readers();
   * ```
   */
  readers(): { online: number; later: number } {
    let online = 0;
    let later = 0;
    if (this.rekeyDue || this.#epoch === 0) return { online, later };
    for (const member of this.#options.members.values()) {
      if (member.heldEpochOfOurs !== this.#epoch) continue;
      if (member.present) online++;
      else if (this.durable) later++;
    }
    return { online, later };
  }

  /**
   * Trusted members that are not present and do not hold the current key
   * (durable rooms): each must be handed it before the next message.
   *
   * @example
   * ```ts
   * for (const memberId of sender.handoverNeeded()) fetchPrekeys(memberId);
   * ```
   */
  handoverNeeded(): number[] {
    if (!this.durable || this.rekeyDue) return [];
    return [...this.#options.members.values()].filter((member) =>
      member.info.trusted && !member.present && member.heldEpochOfOurs !== this.#epoch
    ).map((member) => member.info.memberId);
  }

  /**
   * Seals the current key to a member's prekey bundle and counts the member
   * as holding it; a warning when the bundle is not that member's.
   *
   * @example
   * ```ts
   * const sealed = sender.sealFor(member, bundle);
   * ```
   */
  sealFor(member: RoomMember, bundle: Uint8Array): { envelope: Uint8Array } | { warning: string } {
    if (this.#outbound === undefined) return { warning: "no sender key yet" };
    try {
      const verified = verifyPrekeyBundle({
        identityPublicKey: member.info.identityPublicKey,
        bundle,
      });
      const state = this.#outbound.exportState();
      const content = encodePairwiseContent({ kind: "sender-key", state });
      const envelope = sealPrekeyEnvelope({
        room: this.#options.room,
        sender: this.#options.identity,
        recipientIdentityPublicKey: member.info.identityPublicKey,
        bundle: verified,
        content,
      });
      content.fill(0);
      member.heldEpochOfOurs = state.epoch;
      return { envelope };
    } catch (error) {
      if (!(error instanceof PrekeyError)) throw error;
      return {
        warning: `could not hand ${member.info.nick} the room key: its prekeys were refused ` +
          `(${error.message})`,
      };
    }
  }

  /**
   * Encrypts and signs texts under the current key.
   *
   * @example
   * ```ts
   * const message = sender.encrypt(["hello"]);
   * ```
   */
  encrypt(texts: string[]): Uint8Array {
    const plaintext = encodeGroupContent({ time: this.#options.now(), texts });
    return this.#outbound!.encrypt({ context: this.#options.context, plaintext });
  }
}

/**
 * A direct record carrying `content` to a present member over its pairwise session.
 *
 * @example
 * ```ts
 * relay.send(pairwiseTo(member, { kind: "confirm" }));
 * ```
 */
export function pairwiseTo(member: RoomMember, content: PairwiseContent): RelayRecord {
  const envelope = member.seal(encodePairwiseContent(content));
  return { type: "direct", to: member.info.memberId, envelope };
}
