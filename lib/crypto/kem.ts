/**
 * Key encapsulation: ML-KEM-768 (FIPS 203) and X-Wing, the ML-KEM-768 +
 * X25519 hybrid of draft-connolly-cfrg-xwing-kem (the combiner
 * `@noble/post-quantum` exports as `ml_kem768_x25519`, and the one
 * ../shared/test-vectors/pq/mlkem768x25519.json defines). X-Wing protects
 * securechat's pairwise handshakes and prekeys: its secret stays safe as long
 * as either ML-KEM-768 or X25519 does.
 *
 * ML-KEM-768 comes from the runtime's `node:crypto` when it has it (Node 24.7
 * and later with OpenSSL 3.5; not Deno 2.9) and the native code passes a
 * known-answer self-test and agrees with `@noble/post-quantum` on a round
 * trip both ways; otherwise from `@noble/post-quantum`.
 * `SECURECHAT_CRYPTO=noble` forces noble, as for the other primitives. The
 * self-test runs once, on first use. Encapsulation with caller-given
 * randomness (test vectors) always uses noble, which is the only one that
 * takes it.
 *
 * Inputs are checked before any arithmetic, the same way for both
 * implementations (PROTOCOL.md, "Hybrid KEM"): lengths; an ML-KEM
 * encapsulation key whose coefficients are not all below q = 3329 (FIPS 203
 * 7.2 modulus check); an ML-KEM decapsulation key whose embedded hash does
 * not match its embedded encapsulation key (FIPS 203 7.3 hash check); an
 * X-Wing public key or ciphertext whose X25519 part gives an all-zero shared
 * secret. A wrong ciphertext of the right length is not refused: ML-KEM's
 * implicit rejection returns an unrelated secret, so the caller's next
 * authenticated step fails.
 *
 * @example
 * ```ts
 * const { publicKey, secretKey } = xWing.keygen();
 * const { cipherText, sharedSecret } = xWing.encapsulate(publicKey);
 * xWing.decapsulate(cipherText, secretKey); // equals sharedSecret
 * ```
 *
 * @module
 */

import type * as NodeBuffer from "node:buffer";
import type * as NodeCrypto from "node:crypto";
import { ml_kem768 } from "@noble/post-quantum/ml-kem.js";
import { sha3_256, shake256 } from "@noble/hashes/sha3.js";
import { randomBytes } from "@noble/hashes/utils.js";
import { concat, constantTimeEqual, fromHex, toHex, utf8 } from "../core/bytes.ts";
import { environmentVariable, nodeBuiltin } from "../core/runtime.ts";
import { cryptoBackend, LowOrderPointError } from "./crypto_backend.ts";

/** Which implementation ML-KEM-768 uses. */
export type KemBackendName = "native" | "noble";

/** A KEM key pair. */
export interface KemKeyPair {
  /** The encapsulation (public) key. */
  publicKey: Uint8Array;
  /** The decapsulation (secret) key; wipe it with `fill(0)` when done. */
  secretKey: Uint8Array;
}

/** The result of an encapsulation. */
export interface Encapsulation {
  /** Sent to the holder of the secret key. */
  cipherText: Uint8Array;
  /** 32 bytes both sides now share. */
  sharedSecret: Uint8Array;
}

/** What an input was refused for. */
export type KemFailure = "public-key" | "secret-key" | "ciphertext" | "seed" | "randomness";

/**
 * Raised when a KEM input breaks a rule of PROTOCOL.md ("Hybrid KEM"). The
 * message names the rule, never key bytes.
 *
 * @example
 * ```ts
 * try {
 *   xWing.encapsulate(peerKey);
 * } catch (error) {
 *   if (error instanceof KemError && error.reason === "public-key") refusePeer();
 * }
 * ```
 */
export class KemError extends Error {
  /** Which input was refused. */
  readonly reason: KemFailure;

  /** @example `new KemError("public-key", "an ML-KEM-768 public key must be 1184 bytes")` */
  constructor(reason: KemFailure, message: string) {
    super(message);
    this.name = "KemError";
    this.reason = reason;
  }
}

/** ML-KEM-768 with FIPS 203's encodings (2400-byte expanded decapsulation key). */
export interface MlKem768 {
  /** Which implementation encapsulates and decapsulates. */
  readonly backend: KemBackendName;
  readonly PUBLIC_KEY_LENGTH: 1184;
  readonly SECRET_KEY_LENGTH: 2400;
  readonly CIPHERTEXT_LENGTH: 1088;
  readonly SEED_LENGTH: 64;
  readonly RANDOMNESS_LENGTH: 32;
  readonly SHARED_SECRET_LENGTH: 32;
  /** ML-KEM.KeyGen_internal(d, z) from `seed = d || z` (64 bytes), or a random seed. */
  keygen(seed?: Uint8Array): KemKeyPair;
  /** ML-KEM.Encaps; `randomness` (32 bytes, the message m) only for known-answer tests. */
  encapsulate(publicKey: Uint8Array, randomness?: Uint8Array): Encapsulation;
  /** ML-KEM.Decaps (implicit rejection: a wrong ciphertext gives an unrelated secret). */
  decapsulate(cipherText: Uint8Array, secretKey: Uint8Array): Uint8Array;
}

/** X-Wing: a 32-byte seed is the secret key. */
export interface XWing {
  /** Which implementation its ML-KEM-768 part uses (X25519 is the crypto backend's). */
  readonly backend: KemBackendName;
  readonly PUBLIC_KEY_LENGTH: 1216;
  readonly SECRET_KEY_LENGTH: 32;
  readonly CIPHERTEXT_LENGTH: 1120;
  readonly SEED_LENGTH: 32;
  readonly RANDOMNESS_LENGTH: 64;
  readonly SHARED_SECRET_LENGTH: 32;
  /** Key pair from a 32-byte seed (the secret key is a copy of it), or from a random one. */
  keygen(seed?: Uint8Array): KemKeyPair;
  /** Encapsulates; `randomness` (64 bytes) only for known-answer tests. */
  encapsulate(publicKey: Uint8Array, randomness?: Uint8Array): Encapsulation;
  /** Decapsulates; throws {@linkcode KemError} only for a malformed input. */
  decapsulate(cipherText: Uint8Array, secretKey: Uint8Array): Uint8Array;
}

const ML_KEM = {
  publicKey: 1184,
  secretKey: 2400,
  cipherText: 1088,
  seed: 64,
  randomness: 32,
  // dk = dk_PKE (1152) || ek (1184) || H(ek) (32) || z (32)
  embeddedKeyStart: 1152,
  embeddedHashStart: 1152 + 1184,
} as const;
const X25519_LENGTH = 32;
const Q = 3329;
// draft-connolly-cfrg-xwing-kem: the label closes the combiner's input.
const XWING_LABEL = fromHex("5c2e2f2f5e5c"); // "\.//^\"

function requireLength(bytes: Uint8Array, length: number, reason: KemFailure, what: string) {
  if (!(bytes instanceof Uint8Array) || bytes.length !== length) {
    throw new KemError(reason, `${what} must be ${length} bytes`);
  }
}

/**
 * FIPS 203 7.2: the encapsulation key's 768 coefficients, 12 bits each, must
 * all be below q (ByteEncode12(ByteDecode12(ek)) = ek).
 */
function checkEncapsulationKey(publicKey: Uint8Array): void {
  requireLength(publicKey, ML_KEM.publicKey, "public-key", "an ML-KEM-768 public key");
  for (let i = 0; i < ML_KEM.embeddedKeyStart; i += 3) {
    const low = publicKey[i] | ((publicKey[i + 1] & 0x0f) << 8);
    const high = (publicKey[i + 1] >> 4) | (publicKey[i + 2] << 4);
    if (low >= Q || high >= Q) {
      throw new KemError(
        "public-key",
        "the ML-KEM-768 public key has a coefficient ≥ 3329 (FIPS 203 modulus check); it is forged or corrupt",
      );
    }
  }
}

/** FIPS 203 7.3: length, and H(ek) stored in the key must match the ek stored in it. */
function checkDecapsulationKey(secretKey: Uint8Array): void {
  requireLength(secretKey, ML_KEM.secretKey, "secret-key", "an ML-KEM-768 secret key");
  const ek = secretKey.subarray(ML_KEM.embeddedKeyStart, ML_KEM.embeddedHashStart);
  const h = secretKey.subarray(ML_KEM.embeddedHashStart, ML_KEM.embeddedHashStart + 32);
  if (!constantTimeEqual(sha3_256(ek), h)) {
    throw new KemError(
      "secret-key",
      "the ML-KEM-768 secret key fails its hash check (FIPS 203); it is corrupt",
    );
  }
}

/** The ML-KEM-768 operations an implementation provides, inputs already checked. */
interface MlKemEngine {
  name: KemBackendName;
  /** Key pair from d || z, with the FIPS 203 expanded secret key. */
  keygen(seed: Uint8Array): KemKeyPair;
  /** The encapsulation key of d || z. */
  publicKeyFromSeed(seed: Uint8Array): Uint8Array;
  /** Encapsulation with fresh randomness. */
  encapsulate(publicKey: Uint8Array): Encapsulation;
  /** Decapsulation with the key given as d || z. */
  decapsulateWithSeed(cipherText: Uint8Array, seed: Uint8Array): Uint8Array;
  /** Decapsulation with the FIPS 203 expanded key. */
  decapsulate(cipherText: Uint8Array, secretKey: Uint8Array): Uint8Array;
}

const nobleEngine: MlKemEngine = {
  name: "noble",
  keygen: (seed) => ml_kem768.keygen(seed),
  publicKeyFromSeed(seed) {
    const { publicKey, secretKey } = ml_kem768.keygen(seed);
    secretKey.fill(0);
    return publicKey;
  },
  encapsulate: (publicKey) => ml_kem768.encapsulate(publicKey),
  decapsulateWithSeed(cipherText, seed) {
    const { secretKey } = ml_kem768.keygen(seed);
    try {
      return ml_kem768.decapsulate(cipherText, secretKey);
    } finally {
      secretKey.fill(0);
    }
  },
  decapsulate: (cipherText, secretKey) => ml_kem768.decapsulate(cipherText, secretKey),
};

// Reached through the runtime, not imported, so that the module also loads in a browser.
const nodeCrypto = nodeBuiltin<typeof NodeCrypto>("node:crypto");

/** node:crypto's ML-KEM API (Node 24.7+), which @types/node 22 does not describe. */
interface NodeKem {
  encapsulate(key: NodeCrypto.KeyObject): { sharedKey: Uint8Array; ciphertext: Uint8Array };
  decapsulate(key: NodeCrypto.KeyObject, ciphertext: Uint8Array): Uint8Array;
}

// PKCS #8 for an ML-KEM-768 expanded key (draft-ietf-lamps-kyber-certificates):
// SEQUENCE { INTEGER 0, SEQUENCE { OID 2.16.840.1.101.3.4.4.2 }, OCTET STRING { OCTET STRING dk } }
const EXPANDED_PKCS8_PREFIX = fromHex(
  "30820978020100300b060960864801650304040204820964" + "04820960",
);

const NodeBufferClass = nodeBuiltin<typeof NodeBuffer>("node:buffer")?.Buffer;

/** A Buffer over the same memory, as node:crypto's key inputs want (native only). */
function view(bytes: Uint8Array): NodeBuffer.Buffer {
  return NodeBufferClass!.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function copyOf(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(bytes.length);
  out.set(bytes);
  return out;
}

function makeNativeEngine(native: NodeKem, nodeCrypto: typeof NodeCrypto): MlKemEngine {
  const keyFromSeed = (seed: Uint8Array) =>
    nodeCrypto.createPrivateKey(
      {
        key: view(seed),
        format: "raw-seed",
        asymmetricKeyType: "ml-kem-768",
      } as unknown as NodeCrypto.PrivateKeyInput,
    );
  const publicKeyFromSeed = (seed: Uint8Array) =>
    copyOf(
      nodeCrypto.createPublicKey(keyFromSeed(seed)).export(
        { format: "raw-public" } as unknown as NodeCrypto.KeyExportOptions<"der">,
      ),
    );
  return {
    name: "native",
    // The native API cannot export the expanded key FIPS 203 encodes; noble derives it.
    keygen: (seed) => ml_kem768.keygen(seed),
    publicKeyFromSeed,
    encapsulate(publicKey) {
      const key = nodeCrypto.createPublicKey(
        {
          key: view(publicKey),
          format: "raw-public",
          asymmetricKeyType: "ml-kem-768",
        } as unknown as NodeCrypto.PublicKeyInput,
      );
      const { sharedKey, ciphertext } = native.encapsulate(key);
      const result = { cipherText: copyOf(ciphertext), sharedSecret: copyOf(sharedKey) };
      sharedKey.fill(0);
      return result;
    },
    decapsulateWithSeed(cipherText, seed) {
      const shared = native.decapsulate(keyFromSeed(seed), view(cipherText));
      const out = copyOf(shared);
      shared.fill(0);
      return out;
    },
    decapsulate(cipherText, secretKey) {
      const der = concat(EXPANDED_PKCS8_PREFIX, secretKey);
      let key: NodeCrypto.KeyObject;
      try {
        key = nodeCrypto.createPrivateKey({ key: view(der), format: "der", type: "pkcs8" });
      } finally {
        der.fill(0);
      }
      const shared = native.decapsulate(key, view(cipherText));
      const out = copyOf(shared);
      shared.fill(0);
      return out;
    },
  };
}

// Known answers: Wycheproof mlkem_768_keygen_seed_test tcId 1 (as the digest of its ek), and the
// implicit-rejection secret for a fixed pseudo-random ciphertext under that key.
const SELF_TEST = {
  seed: fromHex(
    "7c9935a0b07694aa0c6d10e4db6b1add2fd81a25ccb148032dcd739936737f2d" +
      "8626ed79d451140800e03b59b956f8210e556067407d13dc90fa9e8b872bfb8f",
  ),
  publicKeyDigest: "f57262661358cde8d3ebf990e5fd1d5b896c992ccfaadb5256b68bbf5943b132",
  rejectedCipherText: () => shake256(utf8("securechat ML-KEM-768 self-test"), { dkLen: 1088 }),
  rejectedSecret: "88a84728dce0cb5ca998719f327eca5c7b75585c7bd856739d4acb72aeb50ebd",
};

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && constantTimeEqual(a, b);
}

/** The native engine if the runtime has one that passes the self-test, else undefined. */
function nativeEngineIfWorking(): MlKemEngine | undefined {
  if (nodeCrypto === undefined) return undefined;
  const native = nodeCrypto as unknown as Partial<NodeKem>;
  if (typeof native.encapsulate !== "function" || typeof native.decapsulate !== "function") {
    return undefined;
  }
  try {
    const engine = makeNativeEngine(native as NodeKem, nodeCrypto);
    const { seed, publicKeyDigest, rejectedSecret } = SELF_TEST;
    const publicKey = engine.publicKeyFromSeed(seed);
    if (toHex(sha3_256(publicKey)) !== publicKeyDigest) return undefined;
    const rejected = SELF_TEST.rejectedCipherText();
    if (toHex(engine.decapsulateWithSeed(rejected, seed)) !== rejectedSecret) return undefined;
    // Round trips with noble both ways, through both secret-key forms.
    const { secretKey } = ml_kem768.keygen(seed);
    const fromNative = engine.encapsulate(publicKey);
    if (
      !sameBytes(ml_kem768.decapsulate(fromNative.cipherText, secretKey), fromNative.sharedSecret)
    ) {
      return undefined;
    }
    const fromNoble = ml_kem768.encapsulate(publicKey);
    if (!sameBytes(engine.decapsulate(fromNoble.cipherText, secretKey), fromNoble.sharedSecret)) {
      return undefined;
    }
    if (
      !sameBytes(engine.decapsulateWithSeed(fromNoble.cipherText, seed), fromNoble.sharedSecret)
    ) {
      return undefined;
    }
    return engine;
  } catch {
    return undefined;
  }
}

function makeMlKem768(engine: () => MlKemEngine): MlKem768 {
  return {
    get backend() {
      return engine().name;
    },
    PUBLIC_KEY_LENGTH: 1184,
    SECRET_KEY_LENGTH: 2400,
    CIPHERTEXT_LENGTH: 1088,
    SEED_LENGTH: 64,
    RANDOMNESS_LENGTH: 32,
    SHARED_SECRET_LENGTH: 32,
    keygen(seed?: Uint8Array): KemKeyPair {
      if (seed === undefined) {
        const fresh = randomBytes(ML_KEM.seed);
        try {
          return engine().keygen(fresh);
        } finally {
          fresh.fill(0);
        }
      }
      requireLength(seed, ML_KEM.seed, "seed", "an ML-KEM-768 seed (d || z)");
      return engine().keygen(seed);
    },
    encapsulate(publicKey: Uint8Array, randomness?: Uint8Array): Encapsulation {
      checkEncapsulationKey(publicKey);
      if (randomness === undefined) return engine().encapsulate(publicKey);
      requireLength(randomness, ML_KEM.randomness, "randomness", "ML-KEM-768 randomness");
      return ml_kem768.encapsulate(publicKey, randomness);
    },
    decapsulate(cipherText: Uint8Array, secretKey: Uint8Array): Uint8Array {
      requireLength(cipherText, ML_KEM.cipherText, "ciphertext", "an ML-KEM-768 ciphertext");
      checkDecapsulationKey(secretKey);
      return engine().decapsulate(cipherText, secretKey);
    },
  };
}

/** X-Wing's expandDecapsulationKey: SHAKE256(seed, 96) = ML-KEM d || z (64) || X25519 secret (32). */
function expandSeed(seed: Uint8Array): Uint8Array {
  return shake256(seed, { dkLen: 96 });
}

function x25519OrRefuse(secret: Uint8Array, publicKey: Uint8Array, reason: KemFailure) {
  try {
    return cryptoBackend.x25519(secret, publicKey);
  } catch (error) {
    if (error instanceof LowOrderPointError) {
      throw new KemError(reason, `the X-Wing ${reason}'s X25519 part is a low-order point`);
    }
    throw error;
  }
}

function combine(
  mlKemSecret: Uint8Array,
  x25519Secret: Uint8Array,
  x25519CipherText: Uint8Array,
  x25519PublicKey: Uint8Array,
): Uint8Array {
  const input = concat(mlKemSecret, x25519Secret, x25519CipherText, x25519PublicKey, XWING_LABEL);
  try {
    return sha3_256(input);
  } finally {
    input.fill(0);
    mlKemSecret.fill(0);
    x25519Secret.fill(0);
  }
}

function makeXWing(engine: () => MlKemEngine): XWing {
  return {
    get backend() {
      return engine().name;
    },
    PUBLIC_KEY_LENGTH: 1216,
    SECRET_KEY_LENGTH: 32,
    CIPHERTEXT_LENGTH: 1120,
    SEED_LENGTH: 32,
    RANDOMNESS_LENGTH: 64,
    SHARED_SECRET_LENGTH: 32,
    keygen(seed?: Uint8Array): KemKeyPair {
      if (seed !== undefined) requireLength(seed, 32, "seed", "an X-Wing seed");
      const secretKey = seed === undefined ? randomBytes(32) : copyOf(seed);
      const expanded = expandSeed(secretKey);
      try {
        const mlKemPublic = engine().publicKeyFromSeed(expanded.subarray(0, 64));
        const x25519Public = cryptoBackend.x25519PublicKey(expanded.slice(64));
        return { publicKey: concat(mlKemPublic, x25519Public), secretKey };
      } finally {
        expanded.fill(0);
      }
    },
    encapsulate(publicKey: Uint8Array, randomness?: Uint8Array): Encapsulation {
      requireLength(publicKey, 1216, "public-key", "an X-Wing public key");
      const mlKemPublic = publicKey.subarray(0, ML_KEM.publicKey);
      const x25519Public = publicKey.subarray(ML_KEM.publicKey);
      checkEncapsulationKey(mlKemPublic);
      let mlKem: Encapsulation;
      let ephemeral: Uint8Array;
      if (randomness === undefined) {
        mlKem = engine().encapsulate(mlKemPublic);
        ephemeral = randomBytes(X25519_LENGTH);
      } else {
        requireLength(randomness, 64, "randomness", "X-Wing randomness");
        mlKem = ml_kem768.encapsulate(mlKemPublic, randomness.subarray(0, 32));
        ephemeral = randomness.slice(32);
      }
      try {
        const x25519CipherText = cryptoBackend.x25519PublicKey(ephemeral);
        const x25519Secret = x25519OrRefuse(ephemeral, x25519Public, "public-key");
        return {
          cipherText: concat(mlKem.cipherText, x25519CipherText),
          sharedSecret: combine(mlKem.sharedSecret, x25519Secret, x25519CipherText, x25519Public),
        };
      } finally {
        ephemeral.fill(0);
        mlKem.sharedSecret.fill(0);
      }
    },
    decapsulate(cipherText: Uint8Array, secretKey: Uint8Array): Uint8Array {
      requireLength(cipherText, 1120, "ciphertext", "an X-Wing ciphertext");
      requireLength(secretKey, 32, "secret-key", "an X-Wing secret key");
      const expanded = expandSeed(secretKey);
      const x25519SecretKey = expanded.slice(64);
      try {
        const x25519CipherText = cipherText.subarray(ML_KEM.cipherText);
        const x25519Secret = x25519OrRefuse(x25519SecretKey, x25519CipherText, "ciphertext");
        const mlKemSecret = engine().decapsulateWithSeed(
          cipherText.subarray(0, ML_KEM.cipherText),
          expanded.subarray(0, 64),
        );
        const x25519Public = cryptoBackend.x25519PublicKey(x25519SecretKey);
        return combine(mlKemSecret, x25519Secret, x25519CipherText, x25519Public);
      } finally {
        expanded.fill(0);
        x25519SecretKey.fill(0);
      }
    },
  };
}

let nativeChecked = false;
let nativeEngine: MlKemEngine | undefined;

function native(): MlKemEngine | undefined {
  if (!nativeChecked) {
    nativeEngine = nativeEngineIfWorking();
    nativeChecked = true;
  }
  return nativeEngine;
}

function forcedNoble(): boolean {
  return environmentVariable("SECURECHAT_CRYPTO") === "noble";
}

const FORCE_NOBLE = forcedNoble();
const chosenEngine = () => (FORCE_NOBLE ? nobleEngine : native() ?? nobleEngine);

/**
 * Whether this runtime has a native ML-KEM-768 that passes the self-test
 * (runs the self-test on first call).
 *
 * @example
 * ```ts
 * console.log(hasNativeMlKem768() ? "native ML-KEM" : "noble ML-KEM");
 * ```
 */
export function hasNativeMlKem768(): boolean {
  return native() !== undefined;
}

/**
 * ML-KEM-768 from `@noble/post-quantum`, whatever the runtime has.
 *
 * @example
 * ```ts
 * const { publicKey, secretKey } = nobleMlKem768.keygen();
 * ```
 */
export const nobleMlKem768: MlKem768 = makeMlKem768(() => nobleEngine);

/**
 * ML-KEM-768 from the runtime's `node:crypto`. Throws on use when
 * {@linkcode hasNativeMlKem768} is false.
 *
 * @example
 * ```ts
 * if (hasNativeMlKem768()) nativeMlKem768.encapsulate(publicKey);
 * ```
 */
export const nativeMlKem768: MlKem768 = makeMlKem768(() => {
  const engine = native();
  if (engine === undefined) throw new Error("this runtime has no working native ML-KEM-768");
  return engine;
});

/**
 * ML-KEM-768 as securechat uses it: native when available and self-tested,
 * else noble (see the module notes).
 *
 * @example
 * ```ts
 * const { publicKey, secretKey } = mlKem768.keygen();
 * const { cipherText, sharedSecret } = mlKem768.encapsulate(publicKey);
 * mlKem768.decapsulate(cipherText, secretKey); // equals sharedSecret
 * ```
 */
export const mlKem768: MlKem768 = makeMlKem768(chosenEngine);

/**
 * X-Wing with noble's ML-KEM-768, for cross-checks.
 *
 * @example
 * ```ts
 * const { publicKey } = nobleXWing.keygen(seed);
 * ```
 */
export const nobleXWing: XWing = makeXWing(() => nobleEngine);

/**
 * X-Wing with the runtime's ML-KEM-768; throws on use when
 * {@linkcode hasNativeMlKem768} is false.
 *
 * @example
 * ```ts
 * if (hasNativeMlKem768()) nativeXWing.keygen();
 * ```
 */
export const nativeXWing: XWing = makeXWing(() => {
  const engine = native();
  if (engine === undefined) throw new Error("this runtime has no working native ML-KEM-768");
  return engine;
});

/**
 * X-Wing (ML-KEM-768 + X25519) as securechat uses it: public key 1216 bytes,
 * ciphertext 1120, secret key a 32-byte seed, shared secret 32.
 *
 * @example
 * ```ts
 * const { publicKey, secretKey } = xWing.keygen();
 * const { cipherText, sharedSecret } = xWing.encapsulate(publicKey);
 * const same = xWing.decapsulate(cipherText, secretKey);
 * ```
 */
export const xWing: XWing = makeXWing(chosenEngine);
