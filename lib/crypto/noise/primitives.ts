/**
 * The Noise "functions": Diffie-Hellman (25519, 448), AEAD ciphers
 * (ChaChaPoly, AESGCM) and hashes (SHA256, SHA512, BLAKE2s, BLAKE2b), each
 * behind a small interface. 25519 and ChaChaPoly, the ones securechat uses,
 * come from `lib/crypto/crypto_backend.ts` (the runtime's native crypto, or `@noble`
 * where it is missing); the others from `@noble` directly.
 *
 * @module
 */

import { x25519 } from "@noble/curves/ed25519.js";
import { x448 } from "@noble/curves/ed448.js";
import { gcm } from "@noble/ciphers/aes.js";
import { sha256, sha512 } from "@noble/hashes/sha2.js";
import { blake2b, blake2s } from "@noble/hashes/blake2.js";
import { hmac } from "@noble/hashes/hmac.js";
import { constantTimeEqual } from "../../core/bytes.ts";
import { cryptoBackend } from "../crypto_backend.ts";
import { NoiseError } from "./error.ts";

/** Names of the supported DH functions as they appear in protocol names. */
export type DhName = "25519" | "448";
/** Names of the supported cipher functions as they appear in protocol names. */
export type CipherName = "ChaChaPoly" | "AESGCM";
/** Names of the supported hash functions as they appear in protocol names. */
export type HashName = "SHA256" | "SHA512" | "BLAKE2s" | "BLAKE2b";

/** A Diffie-Hellman key pair; `secretKey` never leaves this process. */
export interface KeyPair {
  /** The private scalar (32 bytes for 25519, 56 for 448). */
  secretKey: Uint8Array;
  /** The public key (same length as the secret key). */
  publicKey: Uint8Array;
}

/** A Noise DH function (spec section 4.1). */
export interface DhFunction {
  /** Name as it appears in protocol names. */
  readonly name: DhName;
  /** DHLEN: length of public keys and of the shared secret. */
  readonly dhLen: number;
  /** Returns a fresh random key pair. */
  generateKeyPair(): KeyPair;
  /** Derives the public key of a secret key. */
  publicKey(secretKey: Uint8Array): Uint8Array;
  /** Returns the shared secret; throws {@linkcode NoiseError} for an invalid public key. */
  dh(secretKey: Uint8Array, publicKey: Uint8Array): Uint8Array;
}

/**
 * A Noise AEAD (spec section 4.2). This is the seam for a faster backend: it
 * receives the 64-bit counter and builds the 96-bit nonce itself.
 */
export interface CipherFunction {
  /** Name as it appears in protocol names. */
  readonly name: CipherName;
  /** Returns `ciphertext || 16-byte tag`. */
  encrypt(key: Uint8Array, nonce: bigint, ad: Uint8Array, plaintext: Uint8Array): Uint8Array;
  /** Returns the plaintext, or throws (any error) if authentication fails. */
  decrypt(key: Uint8Array, nonce: bigint, ad: Uint8Array, ciphertext: Uint8Array): Uint8Array;
}

/** A Noise hash function with its HMAC (spec section 4.3). */
export interface HashFunction {
  /** Name as it appears in protocol names. */
  readonly name: HashName;
  /** HASHLEN in bytes. */
  readonly hashLen: number;
  /** BLOCKLEN in bytes, which HMAC uses. */
  readonly blockLen: number;
  /** HASH(parts[0] || parts[1] || ...). */
  hash(...parts: Uint8Array[]): Uint8Array;
  /** HMAC-HASH(key, parts[0] || parts[1] || ...). */
  hmac(key: Uint8Array, ...parts: Uint8Array[]): Uint8Array;
}

type Montgomery = typeof x25519;

function montgomeryDh(name: DhName, curve: Montgomery, dhLen: number): DhFunction {
  return {
    name,
    dhLen,
    generateKeyPair() {
      const { secretKey, publicKey } = curve.keygen();
      return { secretKey, publicKey };
    },
    publicKey(secretKey) {
      if (secretKey.length !== dhLen) {
        throw new NoiseError(`a ${name} secret key must be ${dhLen} bytes`);
      }
      return curve.getPublicKey(secretKey);
    },
    dh(secretKey, publicKey) {
      if (secretKey.length !== dhLen || publicKey.length !== dhLen) {
        throw new NoiseError(`${name} keys must be ${dhLen} bytes`);
      }
      try {
        return curve.getSharedSecret(secretKey, publicKey);
      } catch {
        // noble rejects low-order points (all-zero shared secret); the spec allows aborting.
        throw new NoiseError(`the remote ${name} public key is invalid (low order)`);
      }
    },
  };
}

/** X25519 through the crypto backend: native where the runtime has it. */
function backendX25519(): DhFunction {
  const dh = montgomeryDh("25519", x25519, 32);
  return {
    ...dh,
    generateKeyPair() {
      return cryptoBackend.x25519KeyPair();
    },
    publicKey(secretKey) {
      if (secretKey.length !== 32) throw new NoiseError("a 25519 secret key must be 32 bytes");
      return cryptoBackend.x25519PublicKey(secretKey);
    },
    dh(secretKey, publicKey) {
      if (secretKey.length !== 32 || publicKey.length !== 32) {
        throw new NoiseError("25519 keys must be 32 bytes");
      }
      try {
        return cryptoBackend.x25519(secretKey, publicKey);
      } catch {
        throw new NoiseError("the remote 25519 public key is invalid (low order)");
      }
    },
  };
}

const DH_FUNCTIONS: Record<DhName, DhFunction> = {
  "25519": backendX25519(),
  "448": montgomeryDh("448", x448, 56),
};

// One scratch nonce per cipher: noble reads it synchronously during the call,
// so reusing it saves an allocation per transport frame.
function aead(
  name: CipherName,
  construct: typeof gcm,
  littleEndian: boolean,
): CipherFunction {
  const nonceBytes = new Uint8Array(12);
  const nonceView = new DataView(nonceBytes.buffer);
  const setNonce = (n: bigint) => nonceView.setBigUint64(4, n, littleEndian);
  return {
    name,
    encrypt(key, n, ad, plaintext) {
      setNonce(n);
      return construct(key, nonceBytes, ad).encrypt(plaintext);
    },
    decrypt(key, n, ad, ciphertext) {
      setNonce(n);
      return construct(key, nonceBytes, ad).decrypt(ciphertext);
    },
  };
}

/** ChaChaPoly through the crypto backend (spec 12.3: 32 zero bits, then the little-endian counter). */
function backendChaChaPoly(): CipherFunction {
  const nonceBytes = new Uint8Array(12);
  const nonceView = new DataView(nonceBytes.buffer);
  return {
    name: "ChaChaPoly",
    encrypt(key, n, ad, plaintext) {
      nonceView.setBigUint64(4, n, true);
      return cryptoBackend.seal(key, nonceBytes, ad, plaintext);
    },
    decrypt(key, n, ad, ciphertext) {
      nonceView.setBigUint64(4, n, true);
      return cryptoBackend.open(key, nonceBytes, ad, ciphertext);
    },
  };
}

const CIPHER_FUNCTIONS: Record<CipherName, CipherFunction> = {
  ChaChaPoly: backendChaChaPoly(),
  // Spec 12.4: 32 zero bits then the big-endian 64-bit counter.
  AESGCM: aead("AESGCM", gcm, false),
};

type NobleHash = typeof sha256 | typeof sha512 | typeof blake2s | typeof blake2b;

function makeHash(name: HashName, fn: NobleHash, hashLen: number, blockLen: number) {
  // HMAC must use the spec's BLOCKLEN; noble derives it from the hash, so check once.
  if (fn.outputLen !== hashLen || fn.blockLen !== blockLen) {
    throw new Error(`@noble/hashes ${name} does not match the Noise HASHLEN/BLOCKLEN`);
  }
  const result: HashFunction = {
    name,
    hashLen,
    blockLen,
    hash(...parts) {
      const state = fn.create();
      for (const part of parts) state.update(part);
      return state.digest();
    },
    hmac(key, ...parts) {
      const state = hmac.create(fn, key);
      for (const part of parts) state.update(part);
      return state.digest();
    },
  };
  return result;
}

const HASH_FUNCTIONS: Record<HashName, HashFunction> = {
  SHA256: makeHash("SHA256", sha256, 32, 64),
  SHA512: makeHash("SHA512", sha512, 64, 128),
  BLAKE2s: makeHash("BLAKE2s", blake2s, 32, 64),
  BLAKE2b: makeHash("BLAKE2b", blake2b, 64, 128),
};

/**
 * Looks up a DH function by its protocol-name spelling.
 *
 * @example
 * ```ts
 * dhFunction("25519").dhLen; // 32
 * ```
 */
export function dhFunction(name: string): DhFunction {
  if (!Object.hasOwn(DH_FUNCTIONS, name)) {
    throw new NoiseError(`unsupported DH function "${name}"; use 25519 or 448`);
  }
  return DH_FUNCTIONS[name as DhName];
}

/**
 * Looks up a cipher function by its protocol-name spelling.
 *
 * @example
 * ```ts
 * cipherFunction("ChaChaPoly").name; // "ChaChaPoly"
 * ```
 */
export function cipherFunction(name: string): CipherFunction {
  if (!Object.hasOwn(CIPHER_FUNCTIONS, name)) {
    throw new NoiseError(`unsupported cipher "${name}"; use ChaChaPoly or AESGCM`);
  }
  return CIPHER_FUNCTIONS[name as CipherName];
}

/**
 * Looks up a hash function by its protocol-name spelling.
 *
 * @example
 * ```ts
 * hashFunction("BLAKE2b").hashLen; // 64
 * ```
 */
export function hashFunction(name: string): HashFunction {
  if (!Object.hasOwn(HASH_FUNCTIONS, name)) {
    throw new NoiseError(`unsupported hash "${name}"; use SHA256, SHA512, BLAKE2s or BLAKE2b`);
  }
  return HASH_FUNCTIONS[name as HashName];
}

/**
 * Generates a random static or ephemeral key pair for a Noise DH function.
 *
 * @example
 * ```ts
 * const { secretKey, publicKey } = generateKeyPair("25519");
 * ```
 */
export function generateKeyPair(dh: DhName): KeyPair {
  return dhFunction(dh).generateKeyPair();
}

/**
 * Rebuilds a key pair from a stored secret key.
 *
 * @example
 * ```ts
 * const pair = keyPairFromSecretKey("25519", storedSecretKey);
 * ```
 */
export function keyPairFromSecretKey(dh: DhName, secretKey: Uint8Array): KeyPair {
  const fn = dhFunction(dh);
  return { secretKey: secretKey.slice(), publicKey: fn.publicKey(secretKey) };
}

/**
 * Checks that a key pair has the right lengths and that its public key
 * belongs to its secret key, so a mismatched pair fails early and clearly.
 *
 * @example
 * ```ts
 * assertKeyPair(dhFunction("25519"), pair, "staticKeyPair");
 * ```
 */
export function assertKeyPair(dh: DhFunction, pair: KeyPair, label: string): void {
  if (pair.secretKey.length !== dh.dhLen || pair.publicKey.length !== dh.dhLen) {
    throw new NoiseError(`${label} must hold ${dh.dhLen}-byte ${dh.name} keys`);
  }
  if (!constantTimeEqual(dh.publicKey(pair.secretKey), pair.publicKey)) {
    throw new NoiseError(`${label}: the public key does not belong to the secret key`);
  }
}
