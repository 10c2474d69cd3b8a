/**
 * Who is in a room, as one member's session knows it: every member it has
 * accepted (the online ones, and in a durable room the whole roster), the
 * checks an announcement must pass before a member is accepted, and the
 * presence keys already seen (a key seen again is an announcement the relay
 * replays). The room session (room.ts) decides what membership changes mean
 * for keys and what to show; this module keeps the list and its rules
 * (PROTOCOL.md, "Member announcement").
 *
 * @module
 */

import { constantTimeEqual, toHex } from "../core/bytes.ts";
import { cryptoBackend } from "../crypto/crypto_backend.ts";
import type { KeyPair } from "../crypto/noise.ts";
import { fingerprint } from "../identity/fingerprint.ts";
import type { Identity } from "../identity/identity.ts";
import type { MemberEntry } from "../transport/records.ts";
import { type Announcement, verifyAnnouncement } from "./announcement.ts";
import type { RoomOutput } from "./room_inbox.ts";
import { RoomMember } from "./room_member.ts";
import type { RoomState } from "./room_state.ts";

/** Options for {@linkcode RoomRoster}. */
export interface RoomRosterOptions {
  identity: Identity;
  room: string;
  /** This member's presence key pair on this connection. */
  presence: KeyPair;
  /** This member's nick now (it can change). */
  nick: () => string;
  isTrusted: (member: { nick: string; fingerprint: string }) => boolean;
  now: () => number;
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
 * The members one session knows, by relay member id.
 *
 * @example
 * ```ts
 * const roster = new RoomRoster({ identity, room: "ops", presence, nick: () => "alice",
 *   isTrusted: () => true, now: Date.now });
 * const announcement = roster.verify(entry, output, { live: true });
 * ```
 */
export class RoomRoster {
  /** Every member accepted, by relay member id (shared with the sender, not copied). */
  readonly members = new Map<number, RoomMember>();

  #options: RoomRosterOptions;
  /**
   * Presence keys of every announcement accepted in this session, this
   * member's own included. Each connection announces a fresh one, so a key
   * seen again is an announcement replayed by the relay, never a real member.
   */
  #seenPresenceKeys = new Set<string>();

  /** @example `new RoomRoster(options)` */
  constructor(options: RoomRosterOptions) {
    this.#options = options;
    this.#seenPresenceKeys.add(toHex(options.presence.publicKey));
  }

  /**
   * Checks `entry`'s announcement: signed by the identity the relay names,
   * for this room, a nick no other key holds here, the identity the member
   * id had before; for a member online now (`live`), also a usable presence
   * key never seen before. Returns it, or adds a `bad-announcement` warning
   * to `output` and returns undefined.
   *
   * @example
   * ```ts
   * const announcement = roster.verify(entry, output, { live: true });
   * ```
   */
  verify(
    entry: MemberEntry,
    output: RoomOutput,
    options: { live: boolean },
  ): Announcement | undefined {
    const memberFingerprint = fingerprint(entry.identityPublicKey);
    try {
      const announcement = verifyAnnouncement({
        identityPublicKey: entry.identityPublicKey,
        bytes: entry.announcement,
      });
      if (announcement.room !== this.#options.room) {
        throw new Error("announcement is for another room");
      }
      const known = this.members.get(entry.memberId);
      if (
        known !== undefined &&
        !constantTimeEqual(known.info.identityPublicKey, entry.identityPublicKey)
      ) {
        throw new Error(`member ${entry.memberId} is another identity here; the relay swapped it`);
      }
      if (options.live) {
        const secret = this.#options.presence.secretKey;
        if (!isUsablePresenceKey(secret, announcement.pairwisePublicKey)) {
          throw new Error("announcement carries an invalid presence key");
        }
        if (this.#seenPresenceKeys.has(toHex(announcement.pairwisePublicKey))) {
          throw new Error("its announcement was seen before: the relay is replaying it");
        }
      }
      // An honest relay keeps nicks unique in a room; two keys under one nick is impersonation.
      const namesake = announcement.nick === this.#options.nick() &&
          !this.isOwnKey(entry.identityPublicKey)
        ? "you"
        : [...this.members.values()].find((member) =>
          member.info.memberId !== entry.memberId && member.info.nick === announcement.nick &&
          member.info.fingerprint !== memberFingerprint
        )?.info.fingerprint;
      if (namesake !== undefined) {
        throw new Error(
          `its nick "${announcement.nick}" is already used in this room by ${namesake}`,
        );
      }
      return announcement;
    } catch (error) {
      output.events.push({
        type: "warning",
        code: "bad-announcement",
        text: `ignoring member ${entry.memberId} (${memberFingerprint}): ${
          (error as Error).message
        }`,
      });
      return undefined;
    }
  }

  /**
   * Remembers a presence key as used (its member is coming online).
   *
   * @example
   * ```ts
   * roster.markPresenceKeySeen(announcement.pairwisePublicKey);
   * ```
   */
  markPresenceKeySeen(presenceKey: Uint8Array): void {
    this.#seenPresenceKeys.add(toHex(presenceKey));
  }

  /**
   * Adds a member.
   *
   * @example
   * ```ts
   * const member = roster.add({ memberId: 4, identityPublicKey, nick: "bob", online: true });
   * ```
   */
  add(
    options: { memberId: number; identityPublicKey: Uint8Array; nick: string; online: boolean },
  ): RoomMember {
    const { memberId, identityPublicKey, nick, online } = options;
    const memberFingerprint = fingerprint(identityPublicKey);
    const member = new RoomMember({
      info: {
        memberId,
        nick,
        fingerprint: memberFingerprint,
        identityPublicKey,
        trusted: this.#options.isTrusted({ nick, fingerprint: memberFingerprint }),
        online,
      },
      room: this.#options.room,
      localIdentityPublicKey: this.#options.identity.publicKey,
      localPresence: this.#options.presence,
      now: this.#options.now,
    });
    this.members.set(memberId, member);
    return member;
  }

  /**
   * Puts back the members kept from earlier connections that the relay still
   * lists, with their keys; returns whether one that held this member's key
   * is gone from the roster (it was removed meanwhile: a rekey is due).
   *
   * @example
   * ```ts
   * const removedHolder = roster.restore(saved.members, listedIds);
   * ```
   */
  restore(saved: RoomState["members"], listed: Set<number>): boolean {
    let removedHolder = false;
    for (const kept of saved) {
      if (!listed.has(kept.memberId)) {
        if (kept.heldEpochOfOurs !== 0) removedHolder = true;
        continue;
      }
      const member = this.add({
        memberId: kept.memberId,
        identityPublicKey: kept.identityPublicKey,
        nick: kept.nick,
        online: false,
      });
      member.heldEpochOfOurs = kept.heldEpochOfOurs;
      if (kept.inbound !== undefined) member.restoreSenderKey(kept.inbound);
    }
    return removedHolder;
  }

  /**
   * Whether `identityPublicKey` is this member's own.
   *
   * @example
   * ```ts
   * if (roster.isOwnKey(entry.identityPublicKey)) return;
   * ```
   */
  isOwnKey(identityPublicKey: Uint8Array): boolean {
    return constantTimeEqual(identityPublicKey, this.#options.identity.publicKey);
  }
}
