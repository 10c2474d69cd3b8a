/**
 * Safety numbers: one number that two members compare aloud to check both
 * of their identity keys at once, like Signal's.
 *
 * ```text
 * digest = SHA-512( "securechat safety number v1" || 0x00 || lower key || higher key )
 * group i (0..11) = big-endian uint40( digest[5i .. 5i+5) ) mod 100000, as 5 digits
 * ```
 *
 * The two 32-byte Ed25519 identity keys are sorted bytewise, so both members
 * compute the same number. Sixty digits carry about 199 bits: a key made to
 * collide with someone's safety number costs far more than guessing a key.
 * Unlike a fingerprint, the number covers both full keys, so one comparison
 * checks both directions. PROTOCOL.md, "Safety numbers", is normative.
 *
 * @module
 */

import { sha512 } from "@noble/hashes/sha2.js";
import { concat, utf8 } from "../core/bytes.ts";
import { PUBLIC_KEY_LENGTH } from "./fingerprint.ts";

/** Domain-separation prefix hashed before the two keys. */
const SAFETY_NUMBER_PREFIX = utf8("securechat safety number v1\0");
/** Groups of digits shown, as in Signal. */
export const SAFETY_NUMBER_GROUPS = 12;
/** Digits per group. */
const GROUP_DIGITS = 5;
/** Hash bytes behind one group: 40 bits, so reducing mod 100000 has negligible bias. */
const GROUP_BYTES = 5;

/**
 * Computes the safety number of two identity public keys: 12 groups of 5
 * digits joined by single spaces. The order of the keys does not matter.
 *
 * @example
 * ```ts
 * const number = safetyNumber(alice.publicKey, bob.publicKey);
 * number === safetyNumber(bob.publicKey, alice.publicKey); // true
 * // "12345 67890 ... " (71 characters)
 * ```
 */
export function safetyNumber(keyA: Uint8Array, keyB: Uint8Array): string {
  for (const key of [keyA, keyB]) {
    if (key.length !== PUBLIC_KEY_LENGTH) {
      throw new RangeError(`an Ed25519 public key has 32 bytes, not ${key.length}`);
    }
  }
  const [lower, higher] = compareBytes(keyA, keyB) <= 0 ? [keyA, keyB] : [keyB, keyA];
  const digest = sha512(concat(SAFETY_NUMBER_PREFIX, lower, higher));
  const groups: string[] = [];
  for (let i = 0; i < SAFETY_NUMBER_GROUPS; i++) {
    let value = 0;
    // 40 bits stay exact in a double (< 2^53).
    for (const byte of digest.subarray(i * GROUP_BYTES, (i + 1) * GROUP_BYTES)) {
      value = value * 256 + byte;
    }
    groups.push(String(value % 10 ** GROUP_DIGITS).padStart(GROUP_DIGITS, "0"));
  }
  return groups.join(" ");
}

/**
 * Splits a safety number into rows of four groups, the way it is shown.
 *
 * @example
 * ```ts
 * safetyNumberRows(safetyNumber(a, b)); // ["12345 67890 12345 67890", "...", "..."]
 * ```
 */
export function safetyNumberRows(number: string): string[] {
  const groups = number.split(" ");
  const rows: string[] = [];
  for (let i = 0; i < groups.length; i += 4) rows.push(groups.slice(i, i + 4).join(" "));
  return rows;
}

/** Bytewise lexicographic order; public keys are not secret, so no constant time is needed. */
function compareBytes(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    if (a[i] !== b[i]) return a[i] - b[i];
  }
  return a.length - b.length;
}
