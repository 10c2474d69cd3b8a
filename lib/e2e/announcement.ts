/**
 * Signed member announcements: who a member claims to be in a room and which
 * X25519 key others should use to reach it pairwise. The relay forwards them
 * but cannot forge or alter them, because they are signed by the member's
 * Ed25519 identity key.
 *
 * Bytes (big-endian):
 *
 * ```text
 * u8 version (2) | u8 len | room (UTF-8) | u8 len | nick (UTF-8)
 * | 32-byte X25519 pairwise public key | u64 time (ms since epoch) | 64-byte signature
 * signed = "securechat/2 announcement\0" || identity public key || every byte before the signature
 * ```
 *
 * @module
 */

import { cryptoBackend } from "../crypto/crypto_backend.ts";
import { ByteReader, ByteWriter, DecodeError, utf8 } from "../core/bytes.ts";
import type { SigningIdentity } from "./sender_keys.ts";
import { MAX_NAME_BYTES, nickProblem, roomProblem } from "../identity/nick.ts";

/** Wire version of announcements produced by this module. */
export const ANNOUNCEMENT_VERSION = 2;

export { MAX_NAME_BYTES };

const SIGNATURE_DOMAIN = utf8("securechat/2 announcement\0");
const KEY_LENGTH = 32;
const SIGNATURE_LENGTH = 64;

/** A member's claim, as signed by its identity key. */
export interface Announcement {
  /** Room the member is joining. */
  room: string;
  /** Display name chosen by the member (not unique, not verified). */
  nick: string;
  /** 32-byte X25519 public key for pairwise messages to this member. */
  pairwisePublicKey: Uint8Array;
  /** Milliseconds since the Unix epoch when the announcement was made. */
  time: number;
}

/** Why an announcement was refused. */
export type AnnouncementFailure = "malformed" | "forged";

/**
 * Raised when announcement bytes are malformed or not signed by the
 * expected identity.
 *
 * @example
 * ```ts
 * try {
 *   verifyAnnouncement({ identityPublicKey, bytes });
 * } catch (error) {
 *   if (error instanceof AnnouncementError) console.error(error.message);
 * }
 * ```
 */
export class AnnouncementError extends Error {
  /** Machine-readable cause. */
  readonly reason: AnnouncementFailure;

  /**
   * @example
   * ```ts
   * new AnnouncementError("forged", "announcement signature is invalid");
   * ```
   */
  constructor(reason: AnnouncementFailure, message: string) {
    super(message);
    this.name = "AnnouncementError";
    this.reason = reason;
  }
}

/**
 * Checks a room name against the name profile (lib/identity/nick.ts):
 * 1–64 bytes of UTF-8 in NFC, words of letters, digits and marks of one
 * script (or printable ASCII) separated by single spaces. Returns an error
 * message, or `null` when the name is valid.
 *
 * @example
 * ```ts
 * validateRoom("rust users"); // null
 * validateRoom(""); // "room name must be 1 to 64 bytes of UTF-8"
 * ```
 */
export function validateRoom(room: string): string | null {
  return roomProblem(room);
}

/**
 * Checks a nick against the nick profile (lib/identity/nick.ts): 1–64 bytes
 * of UTF-8 in NFC, letters, digits and marks of one script or printable
 * ASCII, no whitespace, no invisible characters, not starting with `#`.
 * Returns an error message, or `null` when the nick is valid.
 *
 * @example
 * ```ts
 * validateNick("alice"); // null
 * validateNick("al ice"); // "nick must not contain U+0020: ..."
 * ```
 */
export function validateNick(nick: string): string | null {
  return nickProblem(nick);
}

/**
 * Encodes and signs an announcement with the member's identity key.
 * Throws `RangeError` if a field is invalid.
 *
 * @example
 * ```ts
 * const bytes = signAnnouncement({
 *   identity,
 *   announcement: { room: "lobby", nick: "alice", pairwisePublicKey, time: Date.now() },
 * });
 * ```
 */
export function signAnnouncement(
  options: { identity: SigningIdentity; announcement: Announcement },
): Uint8Array {
  const { identity, announcement } = options;
  const { room, nick, pairwisePublicKey, time } = announcement;
  const problem = validateRoom(room) ?? validateNick(nick);
  if (problem !== null) throw new RangeError(problem);
  if (pairwisePublicKey.length !== KEY_LENGTH) {
    throw new RangeError("pairwise public key must be 32 bytes");
  }
  if (!Number.isSafeInteger(time) || time < 0) {
    throw new RangeError("time must be a non-negative safe integer of milliseconds");
  }
  if (identity.publicKey.length !== KEY_LENGTH) {
    throw new RangeError("identity public key must be 32 bytes");
  }

  const writer = new ByteWriter(256)
    .raw(SIGNATURE_DOMAIN)
    .raw(identity.publicKey);
  const bodyStart = SIGNATURE_DOMAIN.length + KEY_LENGTH;
  writer.u8(ANNOUNCEMENT_VERSION).string8(room).string8(nick).raw(pairwisePublicKey).u64(time);
  const signed = writer.finish();
  const signature = cryptoBackend.ed25519Sign(identity.secretKey, signed);
  writer.raw(signature);
  return writer.finish().slice(bodyStart);
}

/**
 * Verifies an announcement against the identity key it is claimed to come
 * from and decodes it. Throws {@linkcode AnnouncementError} on any problem.
 *
 * The caller still decides whether the room matches and whether the time is
 * recent enough; a valid old announcement can be replayed by the relay.
 *
 * @example
 * ```ts
 * const { room, nick, pairwisePublicKey, time } = verifyAnnouncement({ identityPublicKey, bytes });
 * ```
 */
export function verifyAnnouncement(
  options: { identityPublicKey: Uint8Array; bytes: Uint8Array },
): Announcement {
  const { identityPublicKey, bytes } = options;
  if (identityPublicKey.length !== KEY_LENGTH) {
    throw new AnnouncementError("malformed", "identity public key must be 32 bytes");
  }

  let room: string;
  let nick: string;
  let pairwisePublicKey: Uint8Array;
  let time: number;
  let signature: Uint8Array;
  try {
    const reader = new ByteReader(bytes);
    const version = reader.u8();
    if (version !== ANNOUNCEMENT_VERSION) {
      throw new DecodeError(
        `announcement version ${version} is not supported (expected ${ANNOUNCEMENT_VERSION})`,
      );
    }
    room = reader.string8();
    nick = reader.string8();
    pairwisePublicKey = reader.raw(KEY_LENGTH).slice();
    time = reader.u64();
    signature = reader.raw(SIGNATURE_LENGTH);
    reader.end();
  } catch (error) {
    const detail = error instanceof DecodeError ? `: ${error.message}` : "";
    throw new AnnouncementError("malformed", `announcement cannot be decoded${detail}`);
  }

  const body = bytes.subarray(0, bytes.length - SIGNATURE_LENGTH);
  const signed = new Uint8Array(SIGNATURE_DOMAIN.length + KEY_LENGTH + body.length);
  signed.set(SIGNATURE_DOMAIN);
  signed.set(identityPublicKey, SIGNATURE_DOMAIN.length);
  signed.set(body, SIGNATURE_DOMAIN.length + KEY_LENGTH);
  let valid = false;
  try {
    valid = cryptoBackend.ed25519Verify(identityPublicKey, signed, signature);
  } catch {
    valid = false;
  }
  if (!valid) {
    throw new AnnouncementError(
      "forged",
      "announcement is not signed by this identity; ignore it",
    );
  }

  // Checked after the signature: a signed but invalid name is the member's bug, not an attack.
  const problem = validateRoom(room) ?? validateNick(nick);
  if (problem !== null) throw new AnnouncementError("malformed", `announcement ${problem}`);
  return { room, nick, pairwisePublicKey, time };
}
