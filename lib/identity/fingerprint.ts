/**
 * Fingerprints: the short, human-comparable name of an Ed25519 public key.
 *
 * A fingerprint is the first 20 bytes of
 * `SHA-256(utf8("securechat fingerprint v1\0") || publicKey)`, written as
 * lowercase RFC 4648 base32 without padding (32 characters) in eight groups of
 * four joined by `-`: `k3b7-q2xa-...`. 160 bits keep second-preimage attacks
 * far out of reach while staying short enough to read aloud; the prefix
 * separates this hash from any other use of SHA-256 over a public key.
 *
 * @module
 */

import { sha256 } from "@noble/hashes/sha2.js";
import { concat, constantTimeEqual, toBase32, utf8 } from "../core/bytes.ts";

/** Domain-separation prefix hashed before the public key. */
const FINGERPRINT_PREFIX = utf8("securechat fingerprint v1\0");
/** Bytes of the hash kept: 20 bytes = 160 bits = 32 base32 characters. */
const FINGERPRINT_BYTES = 20;
const GROUP = 4;
const CANONICAL = /^[a-z2-7]{4}(?:-[a-z2-7]{4}){7}$/;

/** Length of an Ed25519 public key in bytes. */
export const PUBLIC_KEY_LENGTH = 32;

/**
 * Computes the fingerprint of an Ed25519 public key.
 *
 * @example
 * ```ts
 * const fp = fingerprint(identity.publicKey); // "k3b7-q2xa-...-" (39 characters)
 * ```
 */
export function fingerprint(publicKey: Uint8Array): string {
  if (publicKey.length !== PUBLIC_KEY_LENGTH) {
    throw new RangeError(`an Ed25519 public key has 32 bytes, not ${publicKey.length}`);
  }
  const digest = sha256(concat(FINGERPRINT_PREFIX, publicKey)).subarray(0, FINGERPRINT_BYTES);
  const text = toBase32(digest);
  const groups: string[] = [];
  for (let i = 0; i < text.length; i += GROUP) groups.push(text.slice(i, i + GROUP));
  return groups.join("-");
}

/**
 * Parses a fingerprint typed or pasted by a person: any case, with or without
 * `-` or spaces between characters. Returns the canonical form; throws a
 * `SyntaxError` that says what is wrong otherwise.
 *
 * @example
 * ```ts
 * parseFingerprint("K3B7 Q2XA ..."); // "k3b7-q2xa-..."
 * ```
 */
export function parseFingerprint(text: string): string {
  const compact = text.replace(/[\s-]/g, "").toLowerCase();
  if (compact.length !== 32) {
    throw new SyntaxError(
      `not a fingerprint: expected 32 base32 characters (a-z, 2-7), got ${compact.length}`,
    );
  }
  if (!/^[a-z2-7]+$/.test(compact)) {
    throw new SyntaxError("not a fingerprint: only the letters a-z and digits 2-7 may appear");
  }
  const groups: string[] = [];
  for (let i = 0; i < compact.length; i += GROUP) groups.push(compact.slice(i, i + GROUP));
  return groups.join("-");
}

/**
 * Tells whether `text` is a fingerprint in canonical form.
 *
 * @example
 * ```ts
 * isCanonicalFingerprint(fingerprint(publicKey)); // true
 * ```
 */
export function isCanonicalFingerprint(text: string): boolean {
  return CANONICAL.test(text);
}

/**
 * Compares two fingerprints, each in any form {@linkcode parseFingerprint}
 * accepts, in time independent of where they differ. Returns false if either
 * is not a fingerprint.
 *
 * @example
 * ```ts
 * fingerprintsEqual(expected, fingerprint(peerKey)); // true when they name the same key
 * ```
 */
export function fingerprintsEqual(a: string, b: string): boolean {
  let left: string;
  let right: string;
  try {
    left = parseFingerprint(a);
    right = parseFingerprint(b);
  } catch {
    return false;
  }
  return constantTimeEqual(utf8(left), utf8(right));
}
