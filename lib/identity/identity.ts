/**
 * Identities: long-term Ed25519 key pairs that name a user or a relay.
 *
 * The secret key is the 32-byte RFC 8032 seed; the public key and the
 * fingerprint are derived from it. Verification is strict RFC 8032 (no
 * ZIP-215 leniency), so a signature has exactly one valid encoding.
 *
 * @module
 */

import { ed25519 } from "@noble/curves/ed25519.js";
import { cryptoBackend } from "../crypto/crypto_backend.ts";
import { fingerprint, PUBLIC_KEY_LENGTH } from "./fingerprint.ts";

/** Length of an Ed25519 secret seed in bytes. */
export const SECRET_KEY_LENGTH = 32;
/** Length of an Ed25519 signature in bytes. */
export const SIGNATURE_LENGTH = 64;

/** A long-term Ed25519 key pair and its fingerprint. */
export interface Identity {
  /** The 32-byte Ed25519 seed. Never log, print or send it. */
  secretKey: Uint8Array;
  /** The 32-byte Ed25519 public key. */
  publicKey: Uint8Array;
  /** The canonical fingerprint of `publicKey` (see `lib/identity/fingerprint.ts`). */
  fingerprint: string;
}

/**
 * Generates a fresh identity from the platform's secure random source.
 *
 * @example
 * ```ts
 * const identity = generateIdentity();
 * console.log(identity.fingerprint);
 * ```
 */
export function generateIdentity(): Identity {
  const { secretKey } = ed25519.keygen();
  return identityFromSecretKey(secretKey);
}

/**
 * Rebuilds an identity from its 32-byte secret seed.
 *
 * @example
 * ```ts
 * const same = identityFromSecretKey(identity.secretKey);
 * ```
 */
export function identityFromSecretKey(secretKey: Uint8Array): Identity {
  if (secretKey.length !== SECRET_KEY_LENGTH) {
    throw new RangeError(`an Ed25519 secret key has 32 bytes, not ${secretKey.length}`);
  }
  const seed = Uint8Array.from(secretKey);
  const publicKey = cryptoBackend.ed25519PublicKey(seed);
  return { secretKey: seed, publicKey, fingerprint: fingerprint(publicKey) };
}

/**
 * Signs `message` with the identity's secret key (deterministic Ed25519).
 *
 * @example
 * ```ts
 * const signature = signWithIdentity(identity, utf8("hello"));
 * ```
 */
export function signWithIdentity(identity: Identity, message: Uint8Array): Uint8Array {
  return cryptoBackend.ed25519Sign(identity.secretKey, message);
}

/**
 * Tells whether `publicKey` is a canonically encoded Ed25519 point that is
 * not of small order, which is what a key from {@linkcode generateIdentity}
 * always is. Files and peers offering anything else are malformed.
 *
 * @example
 * ```ts
 * isValidPublicKey(identity.publicKey); // true
 * isValidPublicKey(new Uint8Array(32)); // false
 * ```
 */
export function isValidPublicKey(publicKey: Uint8Array): boolean {
  if (publicKey.length !== PUBLIC_KEY_LENGTH) return false;
  try {
    return !ed25519.Point.fromBytes(publicKey, false).isSmallOrder();
  } catch {
    return false;
  }
}

/**
 * Verifies an Ed25519 signature. Returns false, never throws, for any input
 * that is not a valid signature by `publicKey` over `message`, including
 * inputs of the wrong length and public keys that are not curve points.
 *
 * @example
 * ```ts
 * verifyIdentitySignature({ publicKey, message, signature }); // true or false
 * ```
 */
export function verifyIdentitySignature(
  { publicKey, message, signature }: {
    publicKey: Uint8Array;
    message: Uint8Array;
    signature: Uint8Array;
  },
): boolean {
  if (publicKey.length !== PUBLIC_KEY_LENGTH || signature.length !== SIGNATURE_LENGTH) {
    return false;
  }
  try {
    return cryptoBackend.ed25519Verify(publicKey, message, signature);
  } catch {
    return false;
  }
}
