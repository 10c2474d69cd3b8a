/**
 * Prekeys for offline delivery (protocol 2, PROTOCOL.md "Prekeys"): each
 * identity publishes a **signed prekey** and a batch of **one-time
 * prekeys**, each an X-Wing key pair (lib/crypto/kem.ts) with an id and a
 * creation time, signed by the Ed25519 identity key under a domain string
 * of its own. The relay hands out a bundle: the signed prekey and, while it
 * has any, one one-time prekey (each handed out once).
 *
 * ```text
 * prekey = u8 kind (1 signed, 2 one-time) || u32 id || u64 created (ms)
 *          || X-Wing public key (1216) || Ed25519 signature (64)        1293 bytes
 * signed = "securechat/2 signed prekey\0" or "securechat/2 one-time prekey\0"
 *          || identity public key (32) || prekey[0..1229)
 * bundle = signed prekey (1293) || u8 count (0 or 1) || count × one-time prekey (1293)
 * ```
 *
 * Also the rotation schedule ({@linkcode prekeyMaintenance}), which says
 * what to do and leaves storing it to the caller.
 *
 * @module
 */

import { concat, utf8 } from "../core/bytes.ts";
import { cryptoBackend } from "../crypto/crypto_backend.ts";
import { xWing } from "../crypto/kem.ts";
import type { SigningIdentity } from "./sender_keys.ts";

/** Which of the two prekey kinds. */
export type PrekeyKind = "signed" | "one-time";

/** A verified prekey as a sender uses it. */
export interface Prekey {
  kind: PrekeyKind;
  /** u32 chosen by the owner, unique per kind. */
  id: number;
  /** Creation time, milliseconds since the Unix epoch. */
  created: number;
  /** X-Wing public key (1216 bytes). */
  publicKey: Uint8Array;
}

/** Why a prekey, bundle or prekey envelope was refused. */
export type PrekeyFailure =
  | "malformed"
  | "forged"
  | "unknown-prekey"
  | "replayed"
  | "tampered";

/**
 * Raised when prekey material cannot be used; the message holds no key
 * bytes or plaintext.
 *
 * @example
 * ```ts
 * try {
 *   verifyPrekeyBundle({ identityPublicKey, bundle });
 * } catch (error) {
 *   if (error instanceof PrekeyError) warn(`bad bundle: ${error.message}`);
 * }
 * ```
 */
export class PrekeyError extends Error {
  /** Machine-readable cause. */
  readonly reason: PrekeyFailure;

  /** @example `new PrekeyError("forged", "prekey signature does not verify")` */
  constructor(reason: PrekeyFailure, message: string) {
    super(message);
    this.name = "PrekeyError";
    this.reason = reason;
  }
}

/** Length of one prekey record. */
export const PREKEY_LENGTH = 1 + 4 + 8 + 1216 + 64;
const SIGNED_LENGTH = PREKEY_LENGTH - 64;
const KIND_BYTE: Record<PrekeyKind, number> = { "signed": 1, "one-time": 2 };
const DOMAIN: Record<PrekeyKind, Uint8Array> = {
  "signed": utf8("securechat/2 signed prekey\0"),
  "one-time": utf8("securechat/2 one-time prekey\0"),
};
const MAX_TIME = Number.MAX_SAFE_INTEGER;

const DAY = 24 * 60 * 60 * 1000;
/** A new signed prekey every 7 days. */
export const SIGNED_PREKEY_ROTATION_MS = 7 * DAY;
/** A replaced signed prekey's secret (and its envelope digests) is kept 14 days more. */
export const SIGNED_PREKEY_RETENTION_MS = 14 * DAY;
/** One-time prekeys are uploaded in batches that fill the relay's stock up to 100. */
export const ONE_TIME_PREKEY_BATCH = 100;
/** ... whenever fewer than 20 are left there. */
export const ONE_TIME_PREKEY_LOW_WATER = 20;

function checkU32(value: number, what: string): void {
  if (!Number.isInteger(value) || value < 0 || value > 0xffff_ffff) {
    throw new RangeError(`${what} must be an integer from 0 to 2^32 - 1`);
  }
}

function checkTime(value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError("a prekey creation time must be milliseconds from 0 to 2^53 - 1");
  }
}

function signedBytes(kind: PrekeyKind, identityPublicKey: Uint8Array, body: Uint8Array) {
  return concat(DOMAIN[kind], identityPublicKey, body);
}

/**
 * Makes a prekey: a fresh X-Wing key pair, its public record signed by the
 * identity. Keep `secretKey` (32 bytes) until the schedule says to delete it.
 *
 * @example
 * ```ts
 * const { record, secretKey } = generatePrekey({ identity, kind: "signed", id: 1, created: Date.now() });
 * ```
 */
export function generatePrekey(options: {
  identity: SigningIdentity;
  kind: PrekeyKind;
  id: number;
  created: number;
}): { record: Uint8Array; secretKey: Uint8Array } {
  const { identity, kind, id, created } = options;
  checkU32(id, "a prekey id");
  checkTime(created);
  const { publicKey, secretKey } = xWing.keygen();
  const record = new Uint8Array(PREKEY_LENGTH);
  const view = new DataView(record.buffer);
  record[0] = KIND_BYTE[kind];
  view.setUint32(1, id);
  view.setBigUint64(5, BigInt(created));
  record.set(publicKey, 13);
  const signature = cryptoBackend.ed25519Sign(
    identity.secretKey,
    signedBytes(kind, identity.publicKey, record.subarray(0, SIGNED_LENGTH)),
  );
  record.set(signature, SIGNED_LENGTH);
  return { record, secretKey };
}

/**
 * Makes `count` one-time prekeys with ids `firstId`, `firstId + 1`, ...
 *
 * @example
 * ```ts
 * const batch = generateOneTimePrekeys({ identity, firstId: 101, count: 80, created: Date.now() });
 * ```
 */
export function generateOneTimePrekeys(options: {
  identity: SigningIdentity;
  firstId: number;
  count: number;
  created: number;
}): { id: number; record: Uint8Array; secretKey: Uint8Array }[] {
  const { identity, firstId, count, created } = options;
  checkU32(firstId + Math.max(0, count - 1), "the last prekey id");
  return Array.from({ length: count }, (_, i) => ({
    id: firstId + i,
    ...generatePrekey({ identity, kind: "one-time", id: firstId + i, created }),
  }));
}

/**
 * Checks one prekey record: length, kind, time range, and the identity's
 * signature. Throws {@linkcode PrekeyError} (`malformed`, `forged`).
 *
 * @example
 * ```ts
 * const prekey = verifyPrekey({ identityPublicKey, kind: "signed", record });
 * ```
 */
export function verifyPrekey(options: {
  identityPublicKey: Uint8Array;
  kind: PrekeyKind;
  record: Uint8Array;
}): Prekey {
  const { identityPublicKey, kind, record } = options;
  if (record.length !== PREKEY_LENGTH) {
    throw new PrekeyError("malformed", `a prekey must be ${PREKEY_LENGTH} bytes`);
  }
  if (record[0] !== KIND_BYTE[kind]) {
    throw new PrekeyError("malformed", `expected a ${kind} prekey, got kind ${record[0]}`);
  }
  const view = new DataView(record.buffer, record.byteOffset, record.byteLength);
  const created = view.getBigUint64(5);
  if (created > BigInt(MAX_TIME)) {
    throw new PrekeyError("malformed", "a prekey creation time is beyond 2^53 - 1");
  }
  const body = record.subarray(0, SIGNED_LENGTH);
  const signature = record.subarray(SIGNED_LENGTH);
  if (
    !cryptoBackend.ed25519Verify(
      identityPublicKey,
      signedBytes(kind, identityPublicKey, body),
      signature,
    )
  ) {
    throw new PrekeyError(
      "forged",
      `the ${kind} prekey is not signed by this identity; the relay or someone else altered it`,
    );
  }
  return {
    kind,
    id: view.getUint32(1),
    created: Number(created),
    publicKey: record.slice(13, SIGNED_LENGTH),
  };
}

/**
 * A bundle as the relay hands it out.
 *
 * @example
 * ```ts
 * const bundle = encodePrekeyBundle({ signedPrekey, oneTimePrekey });
 * ```
 */
export function encodePrekeyBundle(options: {
  signedPrekey: Uint8Array;
  oneTimePrekey?: Uint8Array;
}): Uint8Array {
  const { signedPrekey, oneTimePrekey } = options;
  for (const record of [signedPrekey, oneTimePrekey]) {
    if (record !== undefined && record.length !== PREKEY_LENGTH) {
      throw new RangeError(`a prekey must be ${PREKEY_LENGTH} bytes`);
    }
  }
  return oneTimePrekey === undefined
    ? concat(signedPrekey, Uint8Array.of(0))
    : concat(signedPrekey, Uint8Array.of(1), oneTimePrekey);
}

/** A verified bundle. */
export interface PrekeyBundle {
  signedPrekey: Prekey;
  oneTimePrekey?: Prekey;
}

/**
 * Parses a bundle and verifies both prekeys against the recipient's
 * identity. Throws {@linkcode PrekeyError} (`malformed`, `forged`).
 *
 * @example
 * ```ts
 * const bundle = verifyPrekeyBundle({ identityPublicKey: bobIdentity, bundle: bytes });
 * const envelope = sealPrekeyEnvelope({ ..., bundle });
 * ```
 */
export function verifyPrekeyBundle(options: {
  identityPublicKey: Uint8Array;
  bundle: Uint8Array;
}): PrekeyBundle {
  const { identityPublicKey, bundle } = options;
  const count = bundle[PREKEY_LENGTH];
  if (
    bundle.length < PREKEY_LENGTH + 1 || count > 1 ||
    bundle.length !== PREKEY_LENGTH + 1 + count * PREKEY_LENGTH
  ) {
    throw new PrekeyError(
      "malformed",
      "a prekey bundle is a signed prekey and at most one one-time prekey",
    );
  }
  const signedPrekey = verifyPrekey({
    identityPublicKey,
    kind: "signed",
    record: bundle.subarray(0, PREKEY_LENGTH),
  });
  if (count === 0) return { signedPrekey };
  const oneTimePrekey = verifyPrekey({
    identityPublicKey,
    kind: "one-time",
    record: bundle.subarray(PREKEY_LENGTH + 1),
  });
  return { signedPrekey, oneTimePrekey };
}

/** What the owner knows about its prekeys, for {@linkcode prekeyMaintenance}. */
export interface PrekeyInventory {
  /** Now, in milliseconds since the Unix epoch. */
  now: number;
  /** Every signed prekey whose secret is still kept. */
  signedPrekeys: { id: number; created: number }[];
  /** One-time prekeys the relay still holds (it says so). */
  oneTimePrekeysOnRelay: number;
}

/** What to do now; the caller generates, uploads, deletes and persists. */
export interface PrekeyActions {
  /** Generate and upload a new signed prekey (none yet, or the newest is 7 days old). */
  rotateSignedPrekey: boolean;
  /** Delete these signed prekeys' secrets and envelope digests (replaced 14 days ago or more). */
  deleteSignedPrekeys: number[];
  /** Generate and upload this many one-time prekeys (0 unless fewer than 20 are left). */
  oneTimePrekeysToAdd: number;
}

/**
 * The rotation schedule: a signed prekey every 7 days, a replaced one kept
 * 14 days after its successor was made; one-time prekeys topped up to 100
 * when fewer than 20 remain on the relay.
 *
 * @example
 * ```ts
 * const todo = prekeyMaintenance({ now: Date.now(), signedPrekeys, oneTimePrekeysOnRelay: 12 });
 * if (todo.oneTimePrekeysToAdd > 0) upload(generateOneTimePrekeys({ ...,count: todo.oneTimePrekeysToAdd }));
 * ```
 */
export function prekeyMaintenance(inventory: PrekeyInventory): PrekeyActions {
  const { now, oneTimePrekeysOnRelay } = inventory;
  const signed = [...inventory.signedPrekeys].sort((a, b) => a.created - b.created || a.id - b.id);
  const newest = signed.at(-1);
  const deleteSignedPrekeys: number[] = [];
  for (let i = 0; i < signed.length - 1; i++) {
    // Replaced when its successor was made.
    if (now - signed[i + 1].created >= SIGNED_PREKEY_RETENTION_MS) {
      deleteSignedPrekeys.push(signed[i].id);
    }
  }
  return {
    rotateSignedPrekey: newest === undefined || now - newest.created >= SIGNED_PREKEY_ROTATION_MS,
    deleteSignedPrekeys,
    oneTimePrekeysToAdd: oneTimePrekeysOnRelay < ONE_TIME_PREKEY_LOW_WATER
      ? ONE_TIME_PREKEY_BATCH - Math.max(0, oneTimePrekeysOnRelay)
      : 0,
  };
}
