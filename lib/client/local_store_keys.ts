/**
 * The keys of the client's local store and what they do: every stored value
 * is sealed with XChaCha20-Poly1305 under a key derived from the identity's
 * secret key, and every lookup key (which relay, room, nick) is replaced by
 * a keyed hash, so the file shows neither contents nor names to someone
 * without the identity. PROTOCOL.md ("Files on disk", the client store) is
 * the normative description.
 *
 * - `valueKey || tagKey = HKDF-SHA256(ikm = identity secret key (32),
 *   salt = the file's random salt (32), info = "securechat/2 client store keys", 64)`
 * - a sealed value is `nonce (24, random) || XChaCha20-Poly1305(valueKey,
 *   nonce, aad, plaintext)`, with `aad = "securechat/2 client store\0" ||
 *   string8 table || bytes8 row || string8 column`: a value moved to another
 *   table, row or column no longer opens;
 * - a tag is the first 16 bytes of `HMAC-SHA256(tagKey, string8 kind ||
 *   string8 field || ...)`.
 *
 * @module
 */

import { xchacha20poly1305 } from "@noble/ciphers/chacha.js";
import { randomBytes } from "@noble/ciphers/utils.js";
import { hkdf } from "@noble/hashes/hkdf.js";
import { hmac } from "@noble/hashes/hmac.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { ByteWriter, utf8 } from "../core/bytes.ts";

/** HKDF `info` of the store's keys. */
const KEYS_INFO = utf8("securechat/2 client store keys");
/** Prefix of every AAD. */
const AAD_DOMAIN = utf8("securechat/2 client store\0");
/** Bytes of the random nonce in front of every sealed value. */
export const NONCE_BYTES = 24;
/** Bytes of a tag (a truncated HMAC). */
export const TAG_BYTES = 16;
/** Bytes of the file's salt. */
export const SALT_BYTES = 32;

/** Where a sealed value sits: its AAD. */
export interface ValuePlace {
  /** `meta`, `state`, `history`. */
  table: string;
  /** The row's key bytes (a tag, an id). */
  row: Uint8Array;
  /** `check`, `value`, `record`. */
  column: string;
}

/**
 * The two keys of one store file, derived from an identity's secret key
 * and the file's salt.
 *
 * @example
 * ```ts
 * const keys = LocalStoreKeys.derive(identity.secretKey, salt);
 * const sealed = keys.seal({ table: "state", row: tag, column: "value" }, bytes);
 * ```
 */
export class LocalStoreKeys {
  #valueKey: Uint8Array;
  #tagKey: Uint8Array;

  private constructor(valueKey: Uint8Array, tagKey: Uint8Array) {
    this.#valueKey = valueKey;
    this.#tagKey = tagKey;
  }

  /**
   * Derives the keys with HKDF-SHA256.
   *
   * @example
   * ```ts
   * const keys = LocalStoreKeys.derive(identity.secretKey, salt);
   * ```
   */
  static derive(secretKey: Uint8Array, salt: Uint8Array): LocalStoreKeys {
    if (secretKey.length !== 32) throw new RangeError("identity secret key must be 32 bytes");
    if (salt.length !== SALT_BYTES) throw new RangeError(`salt must be ${SALT_BYTES} bytes`);
    const okm = hkdf(sha256, secretKey, salt, KEYS_INFO, 64);
    const keys = new LocalStoreKeys(okm.slice(0, 32), okm.slice(32, 64));
    okm.fill(0);
    return keys;
  }

  /**
   * Seals `plaintext` for `place` with a fresh random nonce.
   *
   * @example
   * ```ts
   * keys.seal({ table: "meta", row: utf8("check"), column: "value" }, new Uint8Array(0));
   * ```
   */
  seal(place: ValuePlace, plaintext: Uint8Array): Uint8Array {
    const nonce = randomBytes(NONCE_BYTES);
    const sealed = xchacha20poly1305(this.#valueKey, nonce, aad(place)).encrypt(plaintext);
    const out = new Uint8Array(NONCE_BYTES + sealed.length);
    out.set(nonce);
    out.set(sealed, NONCE_BYTES);
    return out;
  }

  /**
   * Opens a value sealed for `place`; undefined when it does not open (another
   * key, another place, or altered bytes).
   *
   * @example
   * ```ts
   * const bytes = keys.open({ table: "state", row: tag, column: "value" }, sealed);
   * ```
   */
  open(place: ValuePlace, sealed: Uint8Array): Uint8Array | undefined {
    if (sealed.length < NONCE_BYTES + 16) return undefined;
    try {
      return xchacha20poly1305(this.#valueKey, sealed.subarray(0, NONCE_BYTES), aad(place))
        .decrypt(sealed.subarray(NONCE_BYTES));
    } catch {
      return undefined;
    }
  }

  /**
   * A tag for lookups: the first 16 bytes of HMAC-SHA256 over `kind` and
   * `fields`, each a `string8`.
   *
   * @example
   * ```ts
   * keys.tag("room", [relayFingerprint, "ops"]);
   * ```
   */
  tag(kind: string, fields: string[]): Uint8Array {
    const writer = new ByteWriter(64).string8(kind);
    for (const field of fields) writer.string8(field);
    return hmac(sha256, this.#tagKey, writer.finish()).slice(0, TAG_BYTES);
  }

  /** Overwrites the keys; the object is unusable afterwards. @example `keys.destroy()` */
  destroy(): void {
    this.#valueKey.fill(0);
    this.#tagKey.fill(0);
  }
}

function aad(place: ValuePlace): Uint8Array {
  return new ByteWriter(64)
    .raw(AAD_DOMAIN)
    .string8(place.table)
    .bytes8(place.row)
    .string8(place.column)
    .finish();
}
