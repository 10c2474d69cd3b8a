/**
 * Noise CipherState (spec section 5.1): an AEAD key plus a 64-bit counter
 * nonce. Used inside the handshake and, after `split()`, once per direction
 * for transport messages.
 *
 * @module
 */

import { MAX_MESSAGE_LENGTH, NoiseError, TAG_LENGTH } from "./error.ts";
import { type CipherFunction, cipherFunction, type CipherName } from "./primitives.ts";

/** 2^64 - 1: reserved by the spec for rekeying, never used for a message. */
export const MAX_NONCE = 0xffff_ffff_ffff_ffffn;

const EMPTY = new Uint8Array(0);
const ZEROS_32 = new Uint8Array(32);

/** Options for {@linkcode CipherState}. */
export interface CipherStateOptions {
  /** The AEAD: a protocol-name spelling or a {@linkcode CipherFunction}. */
  cipher: CipherName | CipherFunction;
  /** A 32-byte key; without one, encryption is the identity (as the spec requires). */
  key?: Uint8Array;
}

/**
 * A key and a nonce counter. The nonce advances only after a successful
 * encryption or decryption, so a forged or reordered message can be dropped
 * and the session continues.
 *
 * @example
 * ```ts
 * const { send, receive } = handshake.split();
 * const frame = send.encryptWithAd(new Uint8Array(0), utf8("hello"));
 * const text = peerReceive.decryptWithAd(new Uint8Array(0), frame);
 * ```
 */
export class CipherState {
  #cipher: CipherFunction;
  #key: Uint8Array | undefined;
  #nonce = 0n;
  #refusal: string | undefined;

  /**
   * @example
   * ```ts
   * const state = new CipherState({ cipher: "ChaChaPoly", key: randomBytes(32) });
   * ```
   */
  constructor(options: CipherStateOptions) {
    this.#cipher = typeof options.cipher === "string"
      ? cipherFunction(options.cipher)
      : options.cipher;
    this.initializeKey(options.key);
  }

  /**
   * A CipherState that throws on every use: the unused direction of a
   * one-way pattern (N, K, X), which must never carry messages.
   *
   * @example
   * ```ts
   * const unused = CipherState.refusing("ChaChaPoly", "one-way pattern");
   * ```
   */
  static refusing(cipher: CipherName | CipherFunction, reason: string): CipherState {
    const state = new CipherState({ cipher });
    state.#refusal = reason;
    return state;
  }

  /**
   * Sets a new 32-byte key (or none) and resets the nonce to zero.
   *
   * @example
   * ```ts
   * state.initializeKey(key);
   * ```
   */
  initializeKey(key: Uint8Array | undefined): void {
    if (key !== undefined && key.length !== 32) {
      throw new NoiseError("a cipher key must be 32 bytes");
    }
    this.#key?.fill(0);
    this.#key = key?.slice();
    this.#nonce = 0n;
  }

  /**
   * Whether a key is set.
   *
   * @example
   * ```ts
   * if (!state.hasKey()) throw new Error("no key");
   * ```
   */
  hasKey(): boolean {
    return this.#key !== undefined;
  }

  /**
   * The nonce the next message will use.
   *
   * @example
   * ```ts
   * console.log(state.nonce); // 0n
   * ```
   */
  get nonce(): bigint {
    return this.#nonce;
  }

  /**
   * Sets the nonce (for out-of-band or explicit-nonce transports).
   * Reusing a nonce with the same key destroys confidentiality; only do so
   * if you know why.
   *
   * @example
   * ```ts
   * state.setNonce(42n);
   * ```
   */
  setNonce(nonce: bigint): void {
    if (nonce < 0n || nonce > MAX_NONCE) {
      throw new NoiseError("a nonce must be between 0 and 2^64 - 1");
    }
    this.#nonce = nonce;
  }

  #checkUsable(): Uint8Array | undefined {
    if (this.#refusal !== undefined) {
      throw new NoiseError(`this cipher state must not be used: ${this.#refusal}`);
    }
    if (this.#key !== undefined && this.#nonce === MAX_NONCE) {
      throw new NoiseError("nonce space is exhausted; start a new session");
    }
    return this.#key;
  }

  /**
   * Encrypts `plaintext` bound to `ad` and advances the nonce. Returns
   * `ciphertext || tag`, at most 65535 bytes. Without a key it returns the
   * plaintext unchanged (spec behaviour used during handshakes).
   *
   * @example
   * ```ts
   * const frame = send.encryptWithAd(header, body);
   * ```
   */
  encryptWithAd(ad: Uint8Array, plaintext: Uint8Array): Uint8Array {
    const key = this.#checkUsable();
    if (key === undefined) {
      if (plaintext.length > MAX_MESSAGE_LENGTH) throw tooLong();
      return plaintext;
    }
    if (plaintext.length > MAX_MESSAGE_LENGTH - TAG_LENGTH) throw tooLong();
    const ciphertext = this.#cipher.encrypt(key, this.#nonce, ad, plaintext);
    this.#nonce++;
    return ciphertext;
  }

  /**
   * Authenticates and decrypts `ciphertext` bound to `ad`. On failure it
   * throws {@linkcode NoiseError} and leaves the nonce unchanged, so the
   * session survives a dropped forgery.
   *
   * @example
   * ```ts
   * const body = receive.decryptWithAd(header, frame);
   * ```
   */
  decryptWithAd(ad: Uint8Array, ciphertext: Uint8Array): Uint8Array {
    const key = this.#checkUsable();
    if (ciphertext.length > MAX_MESSAGE_LENGTH) throw tooLong();
    if (key === undefined) return ciphertext;
    if (ciphertext.length < TAG_LENGTH) {
      throw new NoiseError("encrypted message is shorter than its authentication tag");
    }
    let plaintext: Uint8Array;
    try {
      plaintext = this.#cipher.decrypt(key, this.#nonce, ad, ciphertext);
    } catch {
      throw new NoiseError(
        "message failed to authenticate: it was altered, reordered, replayed or sent with another key",
      );
    }
    this.#nonce++;
    return plaintext;
  }

  /**
   * {@linkcode encryptWithAd} with empty associated data.
   *
   * @example
   * ```ts
   * const frame = send.encrypt(body);
   * ```
   */
  encrypt(plaintext: Uint8Array): Uint8Array {
    return this.encryptWithAd(EMPTY, plaintext);
  }

  /**
   * {@linkcode decryptWithAd} with empty associated data.
   *
   * @example
   * ```ts
   * const body = receive.decrypt(frame);
   * ```
   */
  decrypt(ciphertext: Uint8Array): Uint8Array {
    return this.decryptWithAd(EMPTY, ciphertext);
  }

  /**
   * Replaces the key with REKEY(k) = the first 32 bytes of
   * ENCRYPT(k, 2^64 - 1, "", 32 zero bytes). The nonce is unchanged; both
   * sides must rekey at the same point in the stream.
   *
   * @example
   * ```ts
   * send.rekey();
   * ```
   */
  rekey(): void {
    if (this.#refusal !== undefined) this.#checkUsable();
    if (this.#key === undefined) throw new NoiseError("cannot rekey a cipher state without a key");
    const next = this.#cipher.encrypt(this.#key, MAX_NONCE, EMPTY, ZEROS_32).slice(0, 32);
    this.#key.fill(0);
    this.#key = next;
  }
}

function tooLong(): NoiseError {
  return new NoiseError(`Noise messages are limited to ${MAX_MESSAGE_LENGTH} bytes`);
}
