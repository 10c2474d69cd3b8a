/**
 * The primitives on securechat's hot paths, from the runtime's native crypto
 * (`node:crypto`, OpenSSL under Node, Rust crates under Deno) when it is
 * there and passes a known-answer self-test, otherwise from the audited
 * `@noble` libraries. Both give byte-identical results for every input
 * (tests/crypto_backend_test.ts cross-checks them); native is 3 to 15 times
 * faster, which is what lets one relay core keep up with many members.
 *
 * - ChaCha20-Poly1305 (RFC 8439): transport messages and group messages.
 * - X25519 (RFC 7748): Noise handshakes and pairwise envelopes. Any 32 bytes
 *   are a public key (the top bit is ignored, u ≥ p is reduced mod p, points
 *   on the twist are used as they are); an all-zero shared secret (a
 *   low-order public key) is refused by both backends.
 * - Ed25519 (RFC 8032): identity signatures. Verification follows the rules
 *   of PROTOCOL.md ("Primitives") in both backends, checked here before any
 *   curve arithmetic: `S < L`; the public key A and the signature's R
 *   canonically encoded and not of small order; then the cofactorless
 *   equation `[S]B = R + [k]A`. Native verifiers compute that equation
 *   themselves; `@noble` checks the cofactored one, so the noble backend
 *   evaluates the cofactorless equation with noble's own point arithmetic.
 *   Both backends thus give the same answer for every input
 *   (tests/wycheproof_test.ts shows it vector by vector).
 *
 * Everything is synchronous: WebCrypto would offer the same algorithms only
 * through promises, and the Noise state machines are synchronous by design.
 * `node:crypto`'s synchronous Ed25519 and X25519 exist in Node 20 and in Deno
 * 2.9 alike. `node:crypto` is reached through {@linkcode nodeBuiltin}, not
 * imported, so this module also loads in a browser, where every primitive is
 * noble's (randomness comes from WebCrypto's `getRandomValues` either way).
 *
 * Set `SECURECHAT_CRYPTO=noble` in the environment to force the fallback
 * (for comparisons and tests).
 *
 * @module
 */

import type { Buffer } from "node:buffer";
import type * as NodeCrypto from "node:crypto";
import { ed25519, x25519 } from "@noble/curves/ed25519.js";
import { chacha20poly1305 } from "@noble/ciphers/chacha.js";
import { sha256, sha512 } from "@noble/hashes/sha2.js";
import { hkdf } from "@noble/hashes/hkdf.js";
import { hmac } from "@noble/hashes/hmac.js";
import { constantTimeEqual, fromHex, toHex, utf8 } from "../core/bytes.ts";
import { environmentVariable, nodeBuiltin, uninitializedBytes } from "../core/runtime.ts";

/** The runtime's `node:crypto`; undefined in a browser. */
const runtimeCrypto = nodeBuiltin<typeof NodeCrypto>("node:crypto");
// Only the native constructors below use it, and only when runtimeCrypto is there.
const nodeCrypto = runtimeCrypto as typeof NodeCrypto;

/** Which implementation a primitive uses. */
export type BackendName = "native" | "noble";

/** An X25519 key pair. */
export interface X25519KeyPair {
  /** 32-byte secret scalar (as generated; clamping happens inside X25519). */
  secretKey: Uint8Array;
  /** 32-byte public u-coordinate. */
  publicKey: Uint8Array;
}

/** The hot-path primitives, all synchronous. */
export interface CryptoBackend {
  /** Which implementation each primitive uses. */
  readonly names: {
    aead: BackendName;
    x25519: BackendName;
    ed25519: BackendName;
    hash: BackendName;
  };
  /**
   * ChaCha20-Poly1305 encryption: returns `ciphertext || 16-byte tag`, or
   * writes it into `output` (exactly `plaintext.length + 16` bytes) and
   * returns `output`.
   */
  seal(
    key: Uint8Array,
    nonce: Uint8Array,
    ad: Uint8Array,
    plaintext: Uint8Array,
    output?: Uint8Array,
  ): Uint8Array;
  /** ChaCha20-Poly1305 decryption of `ciphertext || tag`; throws if authentication fails. */
  open(key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, sealed: Uint8Array): Uint8Array;
  /** A fresh random X25519 key pair. */
  x25519KeyPair(): X25519KeyPair;
  /** The X25519 public key of a 32-byte secret key. */
  x25519PublicKey(secretKey: Uint8Array): Uint8Array;
  /** X25519(secretKey, publicKey); throws {@linkcode LowOrderPointError} for an all-zero result. */
  x25519(secretKey: Uint8Array, publicKey: Uint8Array): Uint8Array;
  /** Ed25519 public key of a 32-byte seed. */
  ed25519PublicKey(seed: Uint8Array): Uint8Array;
  /** Deterministic Ed25519 signature (64 bytes) of `message` with a 32-byte seed. */
  ed25519Sign(seed: Uint8Array, message: Uint8Array): Uint8Array;
  /** Ed25519 verification by the rules of PROTOCOL.md; false (never a throw) for anything invalid. */
  ed25519Verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean;
  /** HMAC-SHA256 (RFC 2104) of `data` under `key` (32 bytes out). */
  hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array;
  /** HKDF-SHA256 (RFC 5869): `length` bytes from `ikm`, `salt` and `info`. */
  hkdfSha256(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array;
}

/**
 * Raised by {@linkcode CryptoBackend.x25519} when the peer's public key is a
 * low-order point, which would give an all-zero shared secret.
 *
 * @example
 * ```ts
 * try {
 *   cryptoBackend.x25519(secretKey, new Uint8Array(32));
 * } catch (error) {
 *   if (error instanceof LowOrderPointError) refusePeer();
 * }
 * ```
 */
export class LowOrderPointError extends Error {
  /** @example `new LowOrderPointError()` */
  constructor() {
    super("the X25519 public key is a low-order point (all-zero shared secret)");
    this.name = "LowOrderPointError";
  }
}

const KEY_BYTES = 32;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const SIGNATURE_BYTES = 64;
// The group order L of Ed25519, little-endian, for the canonical-S check.
const ED25519_L = fromHex("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010");
// DER prefixes that wrap a raw 32-byte key (RFC 8410).
const X25519_PKCS8 = fromHex("302e020100300506032b656e04220420");
const X25519_SPKI = fromHex("302a300506032b656e032100");
const ED25519_PKCS8 = fromHex("302e020100300506032b657004220420");
const ED25519_SPKI = fromHex("302a300506032b6570032100");

function checkLength(bytes: Uint8Array, length: number, what: string): void {
  if (!(bytes instanceof Uint8Array) || bytes.length !== length) {
    throw new RangeError(`${what} must be ${length} bytes`);
  }
}

function isAllZero(bytes: Uint8Array): boolean {
  let acc = 0;
  for (let i = 0; i < bytes.length; i++) acc |= bytes[i];
  return acc === 0;
}

/** A plain Uint8Array over the same bytes: Buffer's `slice` would not copy, and callers expect it to. */
function plain(bytes: Uint8Array): Uint8Array {
  return Object.getPrototypeOf(bytes) === Uint8Array.prototype
    ? bytes
    : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** A fresh copy in its own memory (never a view into a pooled Buffer). */
function copyOf(bytes: Uint8Array, start = 0, end = bytes.length): Uint8Array {
  const out = new Uint8Array(end - start);
  out.set(bytes.subarray(start, end));
  return out;
}

/** `S < L`, compared as little-endian integers: RFC 8032's canonical-S rule. */
function isCanonicalScalar(s: Uint8Array): boolean {
  for (let i = 31; i >= 0; i--) {
    if (s[i] < ED25519_L[i]) return true;
    if (s[i] > ED25519_L[i]) return false;
  }
  return false;
}

/**
 * RFC 8032's canonical point encoding: y below p = 2^255 - 19, and no sign
 * bit on x = 0 (the points y = 1 and y = p - 1).
 */
function isCanonicalPointEncoding(point: Uint8Array): boolean {
  const hex = toHex(point);
  if (NEGATIVE_ZERO_X.has(hex)) return false;
  // y ≥ p only when the bytes are ed..ff ff..ff 7f (sign bit aside).
  if ((point[31] & 0x7f) !== 0x7f) return true;
  for (let i = 30; i >= 1; i--) if (point[i] !== 0xff) return true;
  return point[0] < 0xed;
}

/** The eight points of small order, canonically encoded (tests check the list with noble). */
export const ED25519_SMALL_ORDER_POINTS: ReadonlySet<string> = new Set([
  "0100000000000000000000000000000000000000000000000000000000000000",
  "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
  "0000000000000000000000000000000000000000000000000000000000000000",
  "0000000000000000000000000000000000000000000000000000000000000080",
  "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
  "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
  "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
  "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
]);

/** Encodings of x = 0 with the sign bit set (y = 1 and y = p - 1): not canonical. */
const NEGATIVE_ZERO_X = new Set([
  "0100000000000000000000000000000000000000000000000000000000000080",
  "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
]);

/**
 * The protocol's Ed25519 rules that need no curve arithmetic (PROTOCOL.md,
 * "Primitives"): 32-byte key, 64-byte signature, `S < L`, A and R encoded
 * canonically and neither of small order. An honest R = [r]B is of small
 * order only for r = 0 (probability 2^-252), so refusing it costs honest
 * signers nothing and removes the degenerate signatures (R = identity, or
 * small-order A and R) that hold for many messages at once.
 */
function passesEd25519EncodingRules(publicKey: Uint8Array, signature: Uint8Array): boolean {
  if (publicKey.length !== KEY_BYTES || signature.length !== SIGNATURE_BYTES) return false;
  const r = signature.subarray(0, 32);
  return isCanonicalScalar(signature.subarray(32)) &&
    isCanonicalPointEncoding(publicKey) && !ED25519_SMALL_ORDER_POINTS.has(toHex(publicKey)) &&
    isCanonicalPointEncoding(r) && !ED25519_SMALL_ORDER_POINTS.has(toHex(r));
}

const nobleAead = {
  seal(
    key: Uint8Array,
    nonce: Uint8Array,
    ad: Uint8Array,
    plaintext: Uint8Array,
    output?: Uint8Array,
  ): Uint8Array {
    checkLength(key, KEY_BYTES, "a ChaCha20-Poly1305 key");
    checkLength(nonce, NONCE_BYTES, "a ChaCha20-Poly1305 nonce");
    return chacha20poly1305(key, nonce, ad).encrypt(plaintext, output);
  },
  open(key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, sealed: Uint8Array): Uint8Array {
    checkLength(key, KEY_BYTES, "a ChaCha20-Poly1305 key");
    checkLength(nonce, NONCE_BYTES, "a ChaCha20-Poly1305 nonce");
    return chacha20poly1305(key, nonce, ad).decrypt(sealed);
  },
};

const nobleX25519 = {
  x25519KeyPair(): X25519KeyPair {
    const { secretKey, publicKey } = x25519.keygen();
    return { secretKey, publicKey };
  },
  x25519PublicKey(secretKey: Uint8Array): Uint8Array {
    checkLength(secretKey, KEY_BYTES, "an X25519 secret key");
    return x25519.getPublicKey(secretKey);
  },
  x25519(secretKey: Uint8Array, publicKey: Uint8Array): Uint8Array {
    checkLength(secretKey, KEY_BYTES, "an X25519 secret key");
    checkLength(publicKey, KEY_BYTES, "an X25519 public key");
    let shared: Uint8Array;
    try {
      shared = x25519.getSharedSecret(secretKey, publicKey);
    } catch {
      // noble refuses exactly the inputs whose result is all zero.
      throw new LowOrderPointError();
    }
    if (isAllZero(shared)) throw new LowOrderPointError();
    return shared;
  },
};

const nobleHash = {
  hmacSha256: (key: Uint8Array, data: Uint8Array): Uint8Array => hmac(sha256, key, data),
  hkdfSha256: (ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array =>
    hkdf(sha256, ikm, salt, info, length),
};

const nobleEd25519 = {
  ed25519PublicKey(seed: Uint8Array): Uint8Array {
    checkLength(seed, KEY_BYTES, "an Ed25519 secret key");
    return ed25519.getPublicKey(seed);
  },
  ed25519Sign(seed: Uint8Array, message: Uint8Array): Uint8Array {
    checkLength(seed, KEY_BYTES, "an Ed25519 secret key");
    return ed25519.sign(message, seed);
  },
  ed25519Verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
    if (!passesEd25519EncodingRules(publicKey, signature)) return false;
    try {
      // noble's verify() checks the cofactored equation; the protocol's is cofactorless.
      const { Point } = ed25519;
      const a = Point.fromBytes(publicKey, false);
      const r = Point.fromBytes(signature.subarray(0, 32), false);
      const s = littleEndianInteger(signature.subarray(32));
      const digest = sha512.create().update(signature.subarray(0, 32)).update(publicKey)
        .update(message).digest();
      const k = Point.Fn.create(littleEndianInteger(digest));
      return Point.BASE.multiplyUnsafe(s).equals(r.add(a.multiplyUnsafe(k)));
    } catch {
      return false;
    }
  },
};

function littleEndianInteger(bytes: Uint8Array): bigint {
  let value = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) value = (value << 8n) | BigInt(bytes[i]);
  return value;
}

/** Key objects keyed by the array they were made from, checked against a copy of its bytes. */
class KeyObjectCache {
  #entries = new WeakMap<Uint8Array, { bytes: Uint8Array; key: NodeCrypto.KeyObject }>();

  get(raw: Uint8Array, make: () => NodeCrypto.KeyObject): NodeCrypto.KeyObject {
    const entry = this.#entries.get(raw);
    // The caller may have changed the bytes in place since: then the cached key is stale.
    if (entry !== undefined && constantTimeEqual(entry.bytes, raw)) return entry.key;
    const key = make();
    this.#entries.set(raw, { bytes: copyOf(raw), key });
    return key;
  }

  remember(raw: Uint8Array, key: NodeCrypto.KeyObject): void {
    this.#entries.set(raw, { bytes: copyOf(raw), key });
  }
}

function derKey(prefix: Uint8Array, raw: Uint8Array): Uint8Array {
  const der = new Uint8Array(prefix.length + raw.length);
  der.set(prefix);
  der.set(raw, prefix.length);
  return der;
}

function importPrivate(prefix: Uint8Array, raw: Uint8Array): NodeCrypto.KeyObject {
  const der = derKey(prefix, raw);
  try {
    return nodeCrypto.createPrivateKey({ key: der as Buffer, format: "der", type: "pkcs8" });
  } finally {
    der.fill(0);
  }
}

function importPublic(prefix: Uint8Array, raw: Uint8Array): NodeCrypto.KeyObject {
  return nodeCrypto.createPublicKey({
    key: derKey(prefix, raw) as Buffer,
    format: "der",
    type: "spki",
  });
}

function rawPublicKey(key: NodeCrypto.KeyObject): Uint8Array {
  const der = key.export({ format: "der", type: "spki" });
  return copyOf(der, der.length - KEY_BYTES);
}

function makeNativeAead() {
  return {
    seal(
      key: Uint8Array,
      nonce: Uint8Array,
      ad: Uint8Array,
      plaintext: Uint8Array,
      output?: Uint8Array,
    ): Uint8Array {
      checkLength(key, KEY_BYTES, "a ChaCha20-Poly1305 key");
      checkLength(nonce, NONCE_BYTES, "a ChaCha20-Poly1305 nonce");
      if (output !== undefined && output.length !== plaintext.length + TAG_BYTES) {
        throw new RangeError("the output must be 16 bytes longer than the plaintext");
      }
      const cipher = nodeCrypto.createCipheriv("chacha20-poly1305", key, nonce, {
        authTagLength: TAG_BYTES,
      });
      if (ad.length > 0) cipher.setAAD(ad, { plaintextLength: plaintext.length });
      const body = cipher.update(plaintext);
      const rest = cipher.final();
      const tag = cipher.getAuthTag();
      if (body.length + rest.length !== plaintext.length || tag.length !== TAG_BYTES) {
        throw new Error("native ChaCha20-Poly1305 returned an unexpected length");
      }
      // Every byte of a new buffer is written below, so it need not be zeroed first.
      const out = output ?? uninitializedBytes(plaintext.length + TAG_BYTES);
      out.set(body);
      if (rest.length > 0) out.set(rest, body.length);
      out.set(tag, plaintext.length);
      return out;
    },
    open(key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, sealed: Uint8Array): Uint8Array {
      checkLength(key, KEY_BYTES, "a ChaCha20-Poly1305 key");
      checkLength(nonce, NONCE_BYTES, "a ChaCha20-Poly1305 nonce");
      if (sealed.length < TAG_BYTES) throw new Error("ciphertext is shorter than its tag");
      const length = sealed.length - TAG_BYTES;
      const decipher = nodeCrypto.createDecipheriv("chacha20-poly1305", key, nonce, {
        authTagLength: TAG_BYTES,
      });
      decipher.setAuthTag(sealed.subarray(length));
      if (ad.length > 0) decipher.setAAD(ad, { plaintextLength: length });
      const body = decipher.update(sealed.subarray(0, length));
      // final() throws when the tag does not match; nothing is returned before that.
      const rest = decipher.final();
      if (rest.length === 0) return plain(body);
      const out = new Uint8Array(length);
      out.set(body);
      out.set(rest, body.length);
      return out;
    },
  };
}

function makeNativeX25519() {
  const secrets = new KeyObjectCache();
  const secretKeyObject = (secretKey: Uint8Array) =>
    secrets.get(secretKey, () => importPrivate(X25519_PKCS8, secretKey));
  return {
    x25519KeyPair(): X25519KeyPair {
      const { privateKey, publicKey } = nodeCrypto.generateKeyPairSync("x25519");
      const pkcs8 = privateKey.export({ format: "der", type: "pkcs8" });
      const secretKey = copyOf(pkcs8, pkcs8.length - KEY_BYTES);
      pkcs8.fill(0);
      secrets.remember(secretKey, privateKey);
      return { secretKey, publicKey: rawPublicKey(publicKey) };
    },
    x25519PublicKey(secretKey: Uint8Array): Uint8Array {
      checkLength(secretKey, KEY_BYTES, "an X25519 secret key");
      return rawPublicKey(nodeCrypto.createPublicKey(secretKeyObject(secretKey)));
    },
    x25519(secretKey: Uint8Array, publicKey: Uint8Array): Uint8Array {
      checkLength(secretKey, KEY_BYTES, "an X25519 secret key");
      checkLength(publicKey, KEY_BYTES, "an X25519 public key");
      let shared: Uint8Array;
      try {
        shared = nodeCrypto.diffieHellman({
          privateKey: secretKeyObject(secretKey),
          publicKey: importPublic(X25519_SPKI, publicKey),
        });
      } catch {
        // Some builds refuse low-order points themselves, others return zeros; noble settles it.
        return nobleX25519.x25519(secretKey, publicKey);
      }
      if (isAllZero(shared)) throw new LowOrderPointError();
      return copyOf(shared);
    },
  };
}

function makeNativeEd25519() {
  const secrets = new KeyObjectCache();
  const publics = new KeyObjectCache();
  return {
    ed25519PublicKey(seed: Uint8Array): Uint8Array {
      checkLength(seed, KEY_BYTES, "an Ed25519 secret key");
      const key = secrets.get(seed, () => importPrivate(ED25519_PKCS8, seed));
      return rawPublicKey(nodeCrypto.createPublicKey(key));
    },
    ed25519Sign(seed: Uint8Array, message: Uint8Array): Uint8Array {
      checkLength(seed, KEY_BYTES, "an Ed25519 secret key");
      const key = secrets.get(seed, () => importPrivate(ED25519_PKCS8, seed));
      return copyOf(nodeCrypto.sign(null, message, key));
    },
    ed25519Verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
      // A stock verifier accepts, e.g., the identity as public key with S = 0 for any message.
      if (!passesEd25519EncodingRules(publicKey, signature)) return false;
      try {
        const key = publics.get(publicKey, () => importPublic(ED25519_SPKI, publicKey));
        return nodeCrypto.verify(null, message, key, signature);
      } catch {
        return false;
      }
    },
  };
}

function makeNativeHash(): typeof nobleHash {
  return {
    hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array {
      const mac = nodeCrypto.createHmac("sha256", key).update(data).digest();
      const out = copyOf(mac);
      mac.fill(0);
      return out;
    },
    hkdfSha256(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array {
      return new Uint8Array(nodeCrypto.hkdfSync("sha256", ikm, salt, info, length));
    },
  };
}

// Known answers (RFC 8439 2.8.2, RFC 7748 6.1, RFC 8032 7.1 test 2): a native
// primitive is used only if it reproduces them.
const AEAD_KAT = {
  key: fromHex("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"),
  nonce: fromHex("070000004041424344454647"),
  ad: fromHex("50515253c0c1c2c3c4c5c6c7"),
  plaintext: utf8(
    "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the " +
      "future, sunscreen would be it.",
  ),
  sealed: fromHex(
    "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92728b" +
      "1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc" +
      "3ff4def08e4b7a9de576d26586cec64b61161ae10b594f09e26a7e902ecbd0600691",
  ),
};
const X25519_KAT = {
  alice: fromHex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"),
  alicePublic: fromHex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"),
  bobPublic: fromHex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"),
  shared: fromHex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"),
};
const ED25519_KAT = {
  seed: fromHex("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb"),
  publicKey: fromHex("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c"),
  message: fromHex("72"),
  signature: fromHex(
    "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da" +
      "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
  ),
};

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && constantTimeEqual(a, b);
}

function selfTest(test: () => boolean): boolean {
  try {
    return test();
  } catch {
    return false;
  }
}

function nativeAeadIfWorking(): typeof nobleAead | undefined {
  if (!selfTest(() => nodeCrypto.getCiphers().includes("chacha20-poly1305"))) return undefined;
  const aead = makeNativeAead();
  const { key, nonce, ad, plaintext, sealed } = AEAD_KAT;
  const works = selfTest(() => {
    if (!sameBytes(aead.seal(key, nonce, ad, plaintext), sealed)) return false;
    if (!sameBytes(aead.open(key, nonce, ad, sealed), plaintext)) return false;
    const forged = sealed.slice();
    forged[forged.length - 1] ^= 1;
    try {
      aead.open(key, nonce, ad, forged);
      return false;
    } catch {
      return true;
    }
  });
  return works ? aead : undefined;
}

function nativeX25519IfWorking(): typeof nobleX25519 | undefined {
  const x = makeNativeX25519();
  const { alice, alicePublic, bobPublic, shared } = X25519_KAT;
  const works = selfTest(() => {
    if (!sameBytes(x.x25519PublicKey(alice), alicePublic)) return false;
    if (!sameBytes(x.x25519(alice.slice(), bobPublic), shared)) return false;
    // Exported keys must round-trip (no noble here: its first use costs tens of ms at start-up).
    const pair = x.x25519KeyPair();
    return sameBytes(x.x25519PublicKey(pair.secretKey.slice()), pair.publicKey);
  });
  return works ? x : undefined;
}

// RFC 4231 test case 2 (HMAC-SHA256) and RFC 5869 test case 1 (HKDF-SHA256).
const HASH_KAT = {
  hmacKey: utf8("Jefe"),
  hmacData: utf8("what do ya want for nothing?"),
  hmac: fromHex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
  ikm: fromHex("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b"),
  salt: fromHex("000102030405060708090a0b0c"),
  info: fromHex("f0f1f2f3f4f5f6f7f8f9"),
  okm: fromHex(
    "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865",
  ),
};

function nativeHashIfWorking(): typeof nobleHash | undefined {
  const hash = makeNativeHash();
  const { hmacKey, hmacData, ikm, salt, info, okm } = HASH_KAT;
  const works = selfTest(() =>
    sameBytes(hash.hmacSha256(hmacKey, hmacData), HASH_KAT.hmac) &&
    sameBytes(hash.hkdfSha256(ikm, salt, info, okm.length), okm)
  );
  return works ? hash : undefined;
}

function nativeEd25519IfWorking(): typeof nobleEd25519 | undefined {
  const ed = makeNativeEd25519();
  const { seed, publicKey, message, signature } = ED25519_KAT;
  const works = selfTest(() => {
    if (!sameBytes(ed.ed25519PublicKey(seed), publicKey)) return false;
    if (!sameBytes(ed.ed25519Sign(seed, message), signature)) return false;
    if (!ed.ed25519Verify(publicKey, message, signature)) return false;
    const forged = signature.slice();
    forged[0] ^= 1;
    return !ed.ed25519Verify(publicKey, message, forged);
  });
  return works ? ed : undefined;
}

/**
 * The `@noble` implementation of every primitive: portable, audited, slower.
 *
 * @example
 * ```ts
 * const signature = nobleBackend.ed25519Sign(seed, message);
 * ```
 */
export const nobleBackend: CryptoBackend = {
  names: { aead: "noble", x25519: "noble", ed25519: "noble", hash: "noble" },
  ...nobleAead,
  ...nobleX25519,
  ...nobleEd25519,
  ...nobleHash,
};

function buildNativeBackend(): CryptoBackend {
  if (runtimeCrypto === undefined) return { ...nobleBackend };
  const aead = nativeAeadIfWorking();
  const x = nativeX25519IfWorking();
  const ed = nativeEd25519IfWorking();
  const hash = nativeHashIfWorking();
  return {
    names: {
      aead: aead ? "native" : "noble",
      x25519: x ? "native" : "noble",
      ed25519: ed ? "native" : "noble",
      hash: hash ? "native" : "noble",
    },
    ...(aead ?? nobleAead),
    ...(x ?? nobleX25519),
    ...(ed ?? nobleEd25519),
    ...(hash ?? nobleHash),
  };
}

/**
 * The runtime's native primitives where each passes its self-test, and noble
 * for any that does not.
 *
 * @example
 * ```ts
 * console.log(nativeBackend.names); // { aead: "native", x25519: "native", ed25519: "native" }
 * ```
 */
export const nativeBackend: CryptoBackend = buildNativeBackend();

function chooseBackend(): CryptoBackend {
  // Unset, denied or absent (a browser): the default applies.
  return environmentVariable("SECURECHAT_CRYPTO") === "noble" ? nobleBackend : nativeBackend;
}

/**
 * The backend securechat uses: {@linkcode nativeBackend}, unless
 * `SECURECHAT_CRYPTO=noble` is set.
 *
 * @example
 * ```ts
 * const sealed = cryptoBackend.seal(key, nonce, ad, plaintext);
 * const opened = cryptoBackend.open(key, nonce, ad, sealed);
 * ```
 */
export const cryptoBackend: CryptoBackend = chooseBackend();
