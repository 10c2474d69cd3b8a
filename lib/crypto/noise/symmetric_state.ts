/**
 * Noise SymmetricState (spec section 5.2): the chaining key, the handshake
 * hash and the handshake's CipherState, plus HKDF built from HMAC-HASH.
 *
 * @module
 */

import { utf8 } from "../../core/bytes.ts";
import { CipherState } from "./cipher_state.ts";
import { NoiseError } from "./error.ts";
import type { CipherFunction, HashFunction } from "./primitives.ts";

const BYTE_1 = new Uint8Array([1]);
const BYTE_2 = new Uint8Array([2]);
const BYTE_3 = new Uint8Array([3]);
const EMPTY = new Uint8Array(0);

/** Options for {@linkcode SymmetricState}. */
export interface SymmetricStateOptions {
  /** Full protocol name, e.g. `Noise_XX_25519_ChaChaPoly_SHA256`. */
  protocolName: string;
  /** The suite's cipher function. */
  cipher: CipherFunction;
  /** The suite's hash function. */
  hash: HashFunction;
}

/**
 * The spec's HKDF: `temp = HMAC(ck, ikm)`, `out1 = HMAC(temp, 0x01)`,
 * `out_i = HMAC(temp, out_{i-1} || i)`.
 *
 * @example
 * ```ts
 * const [ck, k] = noiseHkdf(hashFunction("SHA256"), ck0, dhOutput, 2);
 * ```
 */
export function noiseHkdf(
  hash: HashFunction,
  chainingKey: Uint8Array,
  inputKeyMaterial: Uint8Array,
  outputs: 2 | 3,
): Uint8Array[] {
  const tempKey = hash.hmac(chainingKey, inputKeyMaterial);
  const out1 = hash.hmac(tempKey, BYTE_1);
  const out2 = hash.hmac(tempKey, out1, BYTE_2);
  const result = [out1, out2];
  if (outputs === 3) result.push(hash.hmac(tempKey, out2, BYTE_3));
  tempKey.fill(0);
  return result;
}

/**
 * Mixes DH outputs and transcript data into the chaining key and handshake
 * hash, and encrypts handshake fields under the current key.
 *
 * @example
 * ```ts
 * const state = new SymmetricState({ protocolName, cipher, hash });
 * state.mixHash(prologue);
 * ```
 */
export class SymmetricState {
  #hash: HashFunction;
  #cipher: CipherFunction;
  #cipherState: CipherState;
  #chainingKey: Uint8Array;
  #handshakeHash: Uint8Array;

  /**
   * InitializeSymmetric: `h` is the protocol name zero-padded to HASHLEN, or
   * its hash if longer; `ck = h`; no key.
   *
   * @example
   * ```ts
   * new SymmetricState({ protocolName: "Noise_NN_25519_ChaChaPoly_SHA256", cipher, hash });
   * ```
   */
  constructor(options: SymmetricStateOptions) {
    this.#hash = options.hash;
    this.#cipher = options.cipher;
    const name = utf8(options.protocolName);
    if (name.length <= this.#hash.hashLen) {
      this.#handshakeHash = new Uint8Array(this.#hash.hashLen);
      this.#handshakeHash.set(name);
    } else {
      this.#handshakeHash = this.#hash.hash(name);
    }
    this.#chainingKey = this.#handshakeHash.slice();
    this.#cipherState = new CipherState({ cipher: this.#cipher });
  }

  /** Whether handshake fields are currently encrypted. @example `state.hasKey()` */
  hasKey(): boolean {
    return this.#cipherState.hasKey();
  }

  /** A copy of the handshake hash `h`. @example `state.handshakeHash` */
  get handshakeHash(): Uint8Array {
    return this.#handshakeHash.slice();
  }

  // HASHLEN 64 hashes yield 64-byte HKDF outputs; cipher keys are 32 bytes.
  #cipherKey(output: Uint8Array): Uint8Array {
    return output.length === 32 ? output : output.subarray(0, 32);
  }

  /** MixKey(ikm). @example `state.mixKey(dhOutput)` */
  mixKey(inputKeyMaterial: Uint8Array): void {
    const [chainingKey, tempKey] = noiseHkdf(
      this.#hash,
      this.#chainingKey,
      inputKeyMaterial,
      2,
    );
    this.#replaceChainingKey(chainingKey);
    this.#cipherState.initializeKey(this.#cipherKey(tempKey));
    tempKey.fill(0);
  }

  /** MixHash(data): `h = HASH(h || data)`. @example `state.mixHash(publicKey)` */
  mixHash(data: Uint8Array): void {
    this.#handshakeHash = this.#hash.hash(this.#handshakeHash, data);
  }

  /** MixKeyAndHash(ikm), used for pre-shared keys. @example `state.mixKeyAndHash(psk)` */
  mixKeyAndHash(inputKeyMaterial: Uint8Array): void {
    const [chainingKey, tempHash, tempKey] = noiseHkdf(
      this.#hash,
      this.#chainingKey,
      inputKeyMaterial,
      3,
    );
    this.#replaceChainingKey(chainingKey);
    this.mixHash(tempHash);
    this.#cipherState.initializeKey(this.#cipherKey(tempKey));
    tempKey.fill(0);
  }

  /** EncryptAndHash: encrypt with `ad = h`, then mix the ciphertext. @example `state.encryptAndHash(payload)` */
  encryptAndHash(plaintext: Uint8Array): Uint8Array {
    const ciphertext = this.#cipherState.encryptWithAd(this.#handshakeHash, plaintext);
    this.mixHash(ciphertext);
    return ciphertext;
  }

  /** DecryptAndHash: decrypt with `ad = h`, then mix the ciphertext. @example `state.decryptAndHash(field)` */
  decryptAndHash(ciphertext: Uint8Array): Uint8Array {
    const plaintext = this.#cipherState.decryptWithAd(this.#handshakeHash, ciphertext);
    this.mixHash(ciphertext);
    return plaintext;
  }

  /**
   * Split(): derives the two transport CipherStates (initiator-to-responder
   * first) and wipes the chaining key so it cannot be split twice.
   *
   * @example
   * ```ts
   * const [initiatorToResponder, responderToInitiator] = state.split();
   * ```
   */
  split(): [CipherState, CipherState] {
    const [key1, key2] = this.splitKeys();
    const first = new CipherState({ cipher: this.#cipher, key: key1 });
    const second = new CipherState({ cipher: this.#cipher, key: key2 });
    key1.fill(0);
    key2.fill(0);
    return [first, second];
  }

  /**
   * Split() that returns the two 32-byte cipher keys themselves
   * (initiator-to-responder first), for protocols that seed their own
   * ratchet with them; the caller wipes them. Also callable only once.
   *
   * @example
   * ```ts
   * const [initiatorToResponder, responderToInitiator] = state.splitKeys();
   * ```
   */
  splitKeys(): [Uint8Array, Uint8Array] {
    if (this.#chainingKey.length === 0) {
      throw new NoiseError("split() was already called; each handshake yields one pair of keys");
    }
    const [key1, key2] = noiseHkdf(this.#hash, this.#chainingKey, EMPTY, 2);
    this.#replaceChainingKey(new Uint8Array(0));
    const first = this.#cipherKey(key1).slice();
    const second = this.#cipherKey(key2).slice();
    key1.fill(0);
    key2.fill(0);
    return [first, second];
  }

  /**
   * Wipes the chaining key and the handshake cipher key; the state is
   * unusable afterwards (a failed or finished handshake).
   *
   * @example
   * ```ts
   * state.wipe();
   * ```
   */
  wipe(): void {
    this.#replaceChainingKey(new Uint8Array(0));
    this.#cipherState = new CipherState({ cipher: this.#cipher });
  }

  #replaceChainingKey(next: Uint8Array): void {
    this.#chainingKey.fill(0);
    this.#chainingKey = next;
  }
}
