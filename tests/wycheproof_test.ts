/**
 * Project Wycheproof's edge-case vectors through every implementation of
 * every primitive securechat uses: the native and noble backends of
 * lib/crypto/crypto_backend.ts, and for the noble-only primitives (XChaCha,
 * HKDF, HMAC) noble plus whatever native equivalent the runtime has.
 *
 * `valid` vectors must be accepted with the exact output, `invalid` ones
 * refused. `acceptable` vectors get the answer PROTOCOL.md's rule gives, and
 * each is counted under the rule that decided it. Where a library's raw
 * answer differs from the rule (a stock Ed25519 verifier accepting the
 * identity as a public key, say), the count shows it and the backend's own
 * check must still give the rule's answer.
 *
 * ML-KEM-768 runs through noble and, where the runtime has one that passes
 * its self-test, the native implementation (Deno 2.9 has none; Node 26 does,
 * see tests/kem_test.ts).
 *
 * The vectors are read from ../shared; a missing file fails its test.
 */

import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import * as nodeCrypto from "node:crypto";
import { Buffer } from "node:buffer";
import { xchacha20poly1305 } from "@noble/ciphers/chacha.js";
import { ed25519 } from "@noble/curves/ed25519.js";
import { hkdf } from "@noble/hashes/hkdf.js";
import { hmac } from "@noble/hashes/hmac.js";
import { sha256, sha512 } from "@noble/hashes/sha2.js";
import { concat, constantTimeEqual, fromHex, toHex } from "../lib/core/bytes.ts";
import {
  type CryptoBackend,
  LowOrderPointError,
  nativeBackend,
  nobleBackend,
} from "../lib/crypto/crypto_backend.ts";
import {
  hasNativeMlKem768,
  KemError,
  type KemFailure,
  type MlKem768,
  nativeMlKem768,
  nobleMlKem768,
} from "../lib/crypto/kem.ts";

const VECTOR_DIR = new URL("../../shared/test-vectors/wycheproof/", import.meta.url);

interface WycheproofTest {
  tcId: number;
  comment?: string;
  flags?: string[];
  result: "valid" | "invalid" | "acceptable";
  // deno-lint-ignore no-explicit-any
  [field: string]: any;
}

interface WycheproofGroup {
  tests: WycheproofTest[];
  // deno-lint-ignore no-explicit-any
  [field: string]: any;
}

interface WycheproofFile {
  algorithm: string;
  numberOfTests: number;
  testGroups: WycheproofGroup[];
}

/** Reads one vector file; throws (failing the test) when it is missing or has no tests. */
async function load(name: string): Promise<WycheproofFile> {
  const file: WycheproofFile = JSON.parse(await readFile(new URL(name, VECTOR_DIR), "utf8"));
  const count = file.testGroups.reduce((sum, group) => sum + group.tests.length, 0);
  assert.ok(count > 0, `${name} holds no tests`);
  assert.equal(count, file.numberOfTests, `${name}: numberOfTests does not match the tests`);
  return file;
}

/** Counts outcomes by label and checks every vector was counted once. */
class Tally {
  #counts = new Map<string, number>();
  #total = 0;

  count(label: string): void {
    this.#counts.set(label, (this.#counts.get(label) ?? 0) + 1);
    this.#total++;
  }

  get(label: string): number {
    return this.#counts.get(label) ?? 0;
  }

  report(title: string, expectedTotal: number): void {
    assert.equal(this.#total, expectedTotal, `${title}: not every vector was run`);
    const parts = [...this.#counts].map(([label, n]) => `${n} ${label}`);
    console.log(`${title}: ${expectedTotal} vectors: ${parts.join(", ")}`);
  }
}

function where(name: string, test: WycheproofTest): string {
  return `${name} tcId ${test.tcId} (${test.comment ?? ""}; ${(test.flags ?? []).join(", ")})`;
}

function throws(run: () => unknown): boolean {
  try {
    run();
    return false;
  } catch {
    return true;
  }
}

const BACKENDS: [string, CryptoBackend][] = [["native", nativeBackend], ["noble", nobleBackend]];

// ------------------------------------------------------------------ AEADs

/** An AEAD as the tests see it: seal returns ciphertext || tag, open throws on failure. */
interface Aead {
  seal(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array): Uint8Array;
  open(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, sealed: Uint8Array): Uint8Array;
}

function runAead(title: string, file: WycheproofFile, aead: Aead): void {
  const tally = new Tally();
  for (const group of file.testGroups) {
    for (const test of group.tests) {
      const key = fromHex(test.key);
      const nonce = fromHex(test.iv);
      const aad = fromHex(test.aad);
      const msg = fromHex(test.msg);
      const sealed = concat(fromHex(test.ct), fromHex(test.tag));
      const at = where(title, test);
      if (test.result === "valid") {
        assert.equal(toHex(aead.seal(key, nonce, aad, msg)), toHex(sealed), at);
        assert.equal(toHex(aead.open(key, nonce, aad, sealed)), test.msg, at);
        tally.count("valid accepted with the exact output");
      } else {
        assert.equal(test.result, "invalid", `${at}: no rule for acceptable AEAD vectors`);
        assert.ok(throws(() => aead.open(key, nonce, aad, sealed)), `${at}: opened`);
        // A wrong nonce size must be refused when sealing too, never truncated or padded.
        if ((test.flags ?? []).includes("InvalidNonceSize")) {
          assert.ok(throws(() => aead.seal(key, nonce, aad, msg)), `${at}: sealed`);
        }
        tally.count("invalid refused");
      }
    }
  }
  tally.report(title, file.numberOfTests);
}

for (const [name, backend] of BACKENDS) {
  Deno.test(`Wycheproof ChaCha20-Poly1305, ${name} backend (${backend.names.aead})`, async () => {
    runAead(`ChaCha20-Poly1305 ${name}`, await load("chacha20_poly1305_test.json"), backend);
  });
}

/** XChaCha20-Poly1305 implementations: noble's, and the runtime's if it has one. */
function xchachaImplementations(): [string, Aead][] {
  const noble: Aead = {
    seal: (key, nonce, aad, plaintext) => xchacha20poly1305(key, nonce, aad).encrypt(plaintext),
    open: (key, nonce, aad, sealed) => xchacha20poly1305(key, nonce, aad).decrypt(sealed),
  };
  const out: [string, Aead][] = [["noble", noble]];
  if (nodeCrypto.getCiphers().includes("xchacha20-poly1305")) {
    out.push(["native", {
      seal(key, nonce, aad, plaintext) {
        const cipher = nodeCrypto.createCipheriv(
          "xchacha20-poly1305" as "chacha20-poly1305",
          key,
          nonce,
          {
            authTagLength: 16,
          },
        );
        cipher.setAAD(aad, { plaintextLength: plaintext.length });
        return concat(cipher.update(plaintext), cipher.final(), cipher.getAuthTag());
      },
      open(key, nonce, aad, sealed) {
        const decipher = nodeCrypto.createDecipheriv(
          "xchacha20-poly1305" as "chacha20-poly1305",
          key,
          nonce,
          { authTagLength: 16 },
        );
        decipher.setAuthTag(sealed.subarray(sealed.length - 16));
        decipher.setAAD(aad, { plaintextLength: sealed.length - 16 });
        return concat(decipher.update(sealed.subarray(0, sealed.length - 16)), decipher.final());
      },
    }]);
  }
  return out;
}

Deno.test("Wycheproof XChaCha20-Poly1305, noble and any native equivalent", async () => {
  const file = await load("xchacha20_poly1305_test.json");
  const implementations = xchachaImplementations();
  console.log(`XChaCha20-Poly1305 implementations here: ${implementations.map(([n]) => n)}`);
  for (const [name, aead] of implementations) runAead(`XChaCha20-Poly1305 ${name}`, file, aead);
});

// ------------------------------------------------------------------ X25519

/**
 * PROTOCOL.md's X25519 rule for a vector: an all-zero shared secret is
 * refused; anything else is accepted with RFC 7748's output (top bit of u
 * ignored, u ≥ p reduced mod p, points on the twist used as they are).
 */
function x25519Rule(test: WycheproofTest): { accept: boolean; rule: string } {
  if (/^(00)+$/.test(test.shared)) return { accept: false, rule: "all-zero shared secret refused" };
  if ((test.flags ?? []).includes("NonCanonicalPublic")) {
    return { accept: true, rule: "non-canonical u reduced mod p" };
  }
  if ((test.flags ?? []).includes("Twist")) return { accept: true, rule: "twist point accepted" };
  return { accept: true, rule: "accepted" };
}

for (const [name, backend] of BACKENDS) {
  Deno.test(`Wycheproof X25519, ${name} backend (${backend.names.x25519})`, async () => {
    const file = await load("x25519_test.json");
    const tally = new Tally();
    for (const group of file.testGroups) {
      for (const test of group.tests) {
        const at = where(`X25519 ${name}`, test);
        const secret = fromHex(test.private);
        const publicKey = fromHex(test.public);
        const { accept, rule } = x25519Rule(test);
        if (test.result === "invalid") {
          // None in this file today; an invalid vector must be refused whatever its output.
          assert.throws(() => backend.x25519(secret, publicKey), at);
          tally.count("invalid refused");
        } else if (accept) {
          assert.equal(toHex(backend.x25519(secret, publicKey)), test.shared, at);
          tally.count(test.result === "valid" ? "valid accepted" : `acceptable: ${rule}`);
        } else {
          assert.equal(test.result, "acceptable", `${at}: the rule refuses a valid vector`);
          assert.throws(() => backend.x25519(secret, publicKey), LowOrderPointError, at);
          tally.count(`acceptable: ${rule}`);
        }
      }
    }
    tally.report(`X25519 ${name}`, file.numberOfTests);
    assert.ok(tally.get("acceptable: all-zero shared secret refused") > 0);
    assert.ok(tally.get("acceptable: non-canonical u reduced mod p") > 0);
  });
}

// ------------------------------------------------------------------ Ed25519

const ED25519_SPKI = fromHex("302a300506032b6570032100");

/** The runtime's Ed25519 verifier with none of the project's checks. */
function rawNativeVerify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array) {
  try {
    const key = nodeCrypto.createPublicKey({
      key: Buffer.from(concat(ED25519_SPKI, publicKey)),
      format: "der",
      type: "spki",
    });
    return nodeCrypto.verify(null, message, key, signature);
  } catch {
    return false;
  }
}

/** noble's strict (zip215: false) verifier with none of the project's checks: cofactored. */
function rawNobleVerify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array) {
  try {
    return ed25519.verify(signature, message, publicKey, { zip215: false });
  } catch {
    return false;
  }
}

const RAW_VERIFIERS = { native: rawNativeVerify, noble: rawNobleVerify };

for (const [name, backend] of BACKENDS) {
  Deno.test(`Wycheproof Ed25519, ${name} backend (${backend.names.ed25519})`, async () => {
    const file = await load("ed25519_test.json");
    const tally = new Tally();
    const raw = RAW_VERIFIERS[name as keyof typeof RAW_VERIFIERS];
    let rawDiffers = 0;
    for (const group of file.testGroups) {
      const publicKey = fromHex(group.publicKey.pk);
      for (const test of group.tests) {
        const at = where(`Ed25519 ${name}`, test);
        const message = fromHex(test.msg);
        const signature = fromHex(test.sig);
        assert.notEqual(test.result, "acceptable", `${at}: no rule for acceptable vectors`);
        const expected = test.result === "valid";
        assert.equal(backend.ed25519Verify(publicKey, message, signature), expected, at);
        if (raw(publicKey, message, signature) !== expected) rawDiffers++;
        tally.count(expected ? "valid accepted" : "invalid refused");
      }
    }
    tally.report(`Ed25519 ${name}`, file.numberOfTests);
    console.log(`Ed25519 ${name}: raw library answer differs from the vector on ${rawDiffers}`);
  });
}

// ------------------------------------------------------------------ HKDF and HMAC

type Hkdf = (ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, size: number) => Uint8Array;

function hkdfImplementations(): [string, Hkdf][] {
  const out: [string, Hkdf][] = [[
    "noble",
    (ikm, salt, info, size) => hkdf(sha256, ikm, salt, info, size),
  ]];
  if (typeof nodeCrypto.hkdfSync === "function") {
    out.push([
      "native",
      (ikm, salt, info, size) =>
        new Uint8Array(nodeCrypto.hkdfSync("sha256", ikm, salt, info, size)),
    ]);
  }
  return out;
}

Deno.test("Wycheproof HKDF-SHA256, noble and native (node:crypto hkdfSync)", async () => {
  const file = await load("hkdf_sha256_test.json");
  const implementations = hkdfImplementations();
  assert.deepEqual(implementations.map(([name]) => name), ["noble", "native"]);
  for (const [name, derive] of implementations) {
    const tally = new Tally();
    for (const group of file.testGroups) {
      for (const test of group.tests) {
        const at = where(`HKDF ${name}`, test);
        const args = [
          fromHex(test.ikm),
          fromHex(test.salt),
          fromHex(test.info),
          test.size,
        ] as const;
        if (test.result === "valid") {
          assert.equal(toHex(derive(...args)), test.okm, at);
          tally.count("valid accepted with the exact output");
        } else {
          assert.equal(test.result, "invalid", at);
          assert.ok(throws(() => derive(...args)), `${at}: derived`);
          tally.count("invalid refused");
        }
      }
    }
    tally.report(`HKDF-SHA256 ${name}`, file.numberOfTests);
  }
});

type Mac = (key: Uint8Array, message: Uint8Array) => Uint8Array;

/** Checks a (possibly truncated) tag the way a verifier must: full length match, constant time. */
function macVerifies(
  mac: Mac,
  key: Uint8Array,
  message: Uint8Array,
  tag: Uint8Array,
  tagBytes: number,
) {
  if (tag.length !== tagBytes) return false;
  return constantTimeEqual(mac(key, message).subarray(0, tagBytes), tag);
}

Deno.test("Wycheproof HMAC-SHA256, noble and native (node:crypto createHmac)", async () => {
  const file = await load("hmac_sha256_test.json");
  const implementations: [string, Mac][] = [
    ["noble", (key, message) => hmac(sha256, key, message)],
    [
      "native",
      (key, message) =>
        new Uint8Array(nodeCrypto.createHmac("sha256", key).update(message).digest()),
    ],
  ];
  for (const [name, mac] of implementations) {
    const tally = new Tally();
    for (const group of file.testGroups) {
      const tagBytes = group.tagSize / 8;
      for (const test of group.tests) {
        const at = where(`HMAC ${name}`, test);
        const key = fromHex(test.key);
        const message = fromHex(test.msg);
        const tag = fromHex(test.tag);
        if (test.result === "valid") {
          assert.equal(toHex(mac(key, message).subarray(0, tagBytes)), test.tag, at);
          assert.ok(macVerifies(mac, key, message, tag, tagBytes), at);
          tally.count("valid accepted with the exact output");
        } else {
          assert.equal(test.result, "invalid", at);
          assert.equal(macVerifies(mac, key, message, tag, tagBytes), false, at);
          tally.count("invalid refused");
        }
      }
    }
    tally.report(`HMAC-SHA256 ${name}`, file.numberOfTests);
  }
});

// ------------------------------------------------------------------ Ed25519 rules beyond Wycheproof

const { Point } = ed25519;
type EdPoint = ReturnType<typeof Point.fromBytes>;

function littleEndian(bytes: Uint8Array): bigint {
  let value = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) value = (value << 8n) | BigInt(bytes[i]);
  return value;
}

/** `k = SHA-512(R || A || M) mod L`, RFC 8032's challenge. */
function challenge(r: Uint8Array, a: Uint8Array, message: Uint8Array): bigint {
  return Point.Fn.create(littleEndian(sha512(concat(r, a, message))));
}

/**
 * A signature made with the secret scalar `a` of A = [a]B + torsionA, and
 * nonce R = [r]B + torsionR: exactly what a signer who built such a key can
 * produce. S = r + k·a mod L.
 */
function craftSignature(options: {
  a: bigint;
  torsionA: EdPoint;
  r: bigint;
  torsionR: EdPoint;
  message: Uint8Array;
}) {
  const { a, torsionA, r, torsionR, message } = options;
  const publicKey = Point.BASE.multiply(a).add(torsionA).toBytes();
  const rPoint = r === 0n ? torsionR : Point.BASE.multiply(r).add(torsionR);
  const rBytes = rPoint.toBytes();
  const k = challenge(rBytes, publicKey, message);
  const signature = concat(rBytes, Point.Fn.toBytes(Point.Fn.create(r + k * a)));
  return { publicKey, signature, k };
}

const SMALL_ORDER_CANONICAL = [
  "0100000000000000000000000000000000000000000000000000000000000000",
  "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
  "0000000000000000000000000000000000000000000000000000000000000000",
  "0000000000000000000000000000000000000000000000000000000000000080",
  "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
  "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
  "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
  "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
];
// The same points written non-canonically: y + p for y = 0 and y = 1, and x = 0 with its sign bit.
const SMALL_ORDER_NON_CANONICAL = [
  "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
  "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
  "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
  "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
  "0100000000000000000000000000000000000000000000000000000000000080",
  "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
];

interface RuleCase {
  name: string;
  publicKey: Uint8Array;
  message: Uint8Array;
  signature: Uint8Array;
  accept: boolean;
  rule: string;
}

function ruleCases(): RuleCase[] {
  const cases: RuleCase[] = [];
  const message = new TextEncoder().encode("any message at all");
  const identity = fromHex(SMALL_ORDER_CANONICAL[0]);
  // A small-order key with R = identity and S = 0: the cofactorless equation holds for A = identity
  // and any message, which is what a stock verifier accepts.
  for (const hex of [...SMALL_ORDER_CANONICAL, ...SMALL_ORDER_NON_CANONICAL]) {
    const canonical = SMALL_ORDER_CANONICAL.includes(hex);
    cases.push({
      name: `small-order public key ${hex.slice(0, 8)}…${hex.slice(-2)}, R = identity, S = 0`,
      publicKey: fromHex(hex),
      message,
      signature: concat(identity, new Uint8Array(32)),
      accept: false,
      rule: canonical ? "public key of small order refused" : "non-canonical public key refused",
    });
  }
  const a = 0x1234_5678_9abc_def0_1357_9bdf_2468_ace0n;
  const none = Point.ZERO;
  const order8 = Point.fromBytes(fromHex(SMALL_ORDER_CANONICAL[4]));
  // R = identity: S = k·a satisfies both equations for an ordinary key (and reveals a).
  const rIdentity = craftSignature({ a, torsionA: none, r: 0n, torsionR: none, message });
  cases.push({
    name: "ordinary key, R = identity, S = k·a",
    ...rIdentity,
    message,
    accept: false,
    rule: "R of small order refused",
  });
  for (const hex of SMALL_ORDER_CANONICAL.slice(1)) {
    cases.push({
      name: `ordinary key, R = small-order ${hex.slice(0, 8)}…`,
      publicKey: rIdentity.publicKey,
      message,
      signature: concat(fromHex(hex), rIdentity.signature.subarray(32)),
      accept: false,
      rule: "R of small order refused",
    });
  }
  // R with a torsion component: only the cofactored equation holds.
  cases.push({
    name: "ordinary key, R = [r]B + T8",
    ...craftSignature({ a, torsionA: none, r: 99n, torsionR: order8, message }),
    message,
    accept: false,
    rule: "cofactorless equation (cofactored-only signature refused)",
  });
  // A key with a torsion component, R clean, k not a multiple of 8: cofactored only.
  for (let i = 0;; i++) {
    const m = new TextEncoder().encode(`mixed-order key ${i}`);
    const crafted = craftSignature({ a, torsionA: order8, r: 77n, torsionR: none, message: m });
    if (crafted.k % 8n === 0n) continue;
    cases.push({
      name: "mixed-order key, R = [r]B, k mod 8 ≠ 0",
      ...crafted,
      message: m,
      accept: false,
      rule: "cofactorless equation (cofactored-only signature refused)",
    });
    break;
  }
  // A key with a torsion component and R = [r]B − [k]T8: the cofactorless equation holds.
  for (let i = 0; i < 10_000; i++) {
    const m = new TextEncoder().encode(`mixed-order key, both equations ${i}`);
    const torsionR = Point.fromBytes(fromHex(SMALL_ORDER_CANONICAL[i % 8]));
    const crafted = craftSignature({ a, torsionA: order8, r: 55n, torsionR, message: m });
    if (!torsionR.add(order8.multiplyUnsafe(crafted.k)).is0()) continue;
    cases.push({
      name: "mixed-order key, R = [r]B − [k]T8",
      ...crafted,
      message: m,
      accept: true,
      rule: "cofactorless equation holds (a torsion component in A is allowed)",
    });
    break;
  }
  // A point that is not of small order, written with y + p: refused for its encoding alone.
  for (let y = 2; y < 19; y++) {
    const bytes = new Uint8Array(32);
    let value = 0x7fff_ffff_ffff_ffff_ffff_ffff_ffff_ffff_ffff_ffff_ffff_ffff_ffff_ffff_ffff_ffedn +
      BigInt(y);
    for (let i = 0; i < 32; i++, value >>= 8n) bytes[i] = Number(value & 0xffn);
    let point: EdPoint;
    try {
      point = Point.fromBytes(bytes, true);
    } catch {
      continue;
    }
    if (point.isSmallOrder()) continue;
    cases.push({
      name: `public key with y = p + ${y}`,
      publicKey: bytes,
      message,
      signature: rIdentity.signature,
      accept: false,
      rule: "non-canonical public key refused",
    });
  }
  return cases;
}

Deno.test("Ed25519 rules on the cases Wycheproof leaves out: both backends agree with PROTOCOL.md", () => {
  const cases = ruleCases();
  const tally = new Tally();
  const differs = { native: 0, noble: 0 };
  for (const c of cases) {
    for (const [name, backend] of BACKENDS) {
      assert.equal(
        backend.ed25519Verify(c.publicKey, c.message, c.signature),
        c.accept,
        `${name}: ${c.name}`,
      );
    }
    for (const [name, raw] of Object.entries(RAW_VERIFIERS)) {
      if (raw(c.publicKey, c.message, c.signature) !== c.accept) {
        differs[name as "native" | "noble"]++;
      }
    }
    tally.count(`${c.accept ? "accepted" : "refused"}: ${c.rule}`);
  }
  tally.report("Ed25519 securechat rule vectors", cases.length);
  console.log(
    `raw library answers that the project's check overrules: native ${differs.native}, noble ${differs.noble}`,
  );
  // The reason these checks exist: each library alone gets some of them wrong.
  assert.ok(differs.native > 0 && differs.noble > 0);
  assert.ok(
    tally.get("accepted: cofactorless equation holds (a torsion component in A is allowed)") === 1,
  );
  assert.ok(tally.get("refused: cofactorless equation (cofactored-only signature refused)") === 2);
});

// ------------------------------------------------------------------ ML-KEM-768

function mlKemImplementations(): [string, MlKem768][] {
  const out: [string, MlKem768][] = [["noble", nobleMlKem768]];
  if (hasNativeMlKem768()) out.push(["native", nativeMlKem768]);
  return out;
}

function refusedWith(run: () => unknown, reason: KemFailure, at: string): void {
  assert.throws(run, (error) => error instanceof KemError && error.reason === reason, at);
}

Deno.test("Wycheproof ML-KEM-768 keygen from seed (every implementation)", async () => {
  const file = await load("mlkem_768_keygen_seed_test.json");
  for (const [name, kem] of mlKemImplementations()) {
    const tally = new Tally();
    for (const group of file.testGroups) {
      for (const test of group.tests) {
        const at = where(`ML-KEM keygen ${name}`, test);
        assert.equal(test.result, "valid", at);
        const { publicKey, secretKey } = kem.keygen(fromHex(test.seed));
        assert.equal(toHex(publicKey), test.ek, at);
        assert.equal(toHex(secretKey), test.dk, at);
        tally.count("valid: exact ek and dk");
      }
    }
    tally.report(`ML-KEM-768 keygen ${name}`, file.numberOfTests);
  }
});

Deno.test("Wycheproof ML-KEM-768 keygen + decapsulation, incl. malformed seeds and ciphertexts", async () => {
  const file = await load("mlkem_768_test.json");
  for (const [name, kem] of mlKemImplementations()) {
    const tally = new Tally();
    for (const group of file.testGroups) {
      for (const test of group.tests) {
        const at = where(`ML-KEM ${name}`, test);
        const seed = fromHex(test.seed);
        const cipherText = fromHex(test.c);
        if (seed.length !== kem.SEED_LENGTH) {
          assert.equal(test.result, "invalid", at);
          refusedWith(() => kem.keygen(seed), "seed", at);
          tally.count("invalid seed length refused");
          continue;
        }
        const { publicKey, secretKey } = kem.keygen(seed);
        assert.equal(toHex(publicKey), test.ek, at);
        if (test.result === "valid") {
          assert.equal(toHex(kem.decapsulate(cipherText, secretKey)), test.K, at);
          tally.count("valid: exact shared secret (incl. implicit rejection)");
        } else {
          assert.equal(test.result, "invalid", at);
          assert.notEqual(cipherText.length, kem.CIPHERTEXT_LENGTH, `${at}: no rule refuses it`);
          refusedWith(() => kem.decapsulate(cipherText, secretKey), "ciphertext", at);
          tally.count("invalid ciphertext length refused");
        }
      }
    }
    tally.report(`ML-KEM-768 decaps ${name}`, file.numberOfTests);
  }
});

Deno.test("Wycheproof ML-KEM-768 encapsulation, incl. unreduced and mis-sized keys", async () => {
  const file = await load("mlkem_768_encaps_test.json");
  for (const [name, kem] of mlKemImplementations()) {
    const tally = new Tally();
    for (const group of file.testGroups) {
      for (const test of group.tests) {
        const at = where(`ML-KEM encaps ${name}`, test);
        const publicKey = fromHex(test.ek);
        const m = fromHex(test.m);
        if (test.result === "valid") {
          const { cipherText, sharedSecret } = kem.encapsulate(publicKey, m);
          assert.equal(toHex(cipherText), test.c, at);
          assert.equal(toHex(sharedSecret), test.K, at);
          // And with the implementation's own randomness (native encapsulates here).
          assert.equal(kem.encapsulate(publicKey).cipherText.length, kem.CIPHERTEXT_LENGTH, at);
          tally.count("valid: exact ciphertext and shared secret");
        } else {
          assert.equal(test.result, "invalid", at);
          refusedWith(() => kem.encapsulate(publicKey, m), "public-key", at);
          refusedWith(() => kem.encapsulate(publicKey), "public-key", at);
          tally.count(
            publicKey.length === kem.PUBLIC_KEY_LENGTH
              ? "invalid: modulus check refused"
              : "invalid: length refused",
          );
        }
      }
    }
    tally.report(`ML-KEM-768 encaps ${name}`, file.numberOfTests);
  }
});

Deno.test("Wycheproof ML-KEM-768 decapsulation with the expanded key, incl. corrupt keys", async () => {
  const file = await load("mlkem_768_semi_expanded_decaps_test.json");
  for (const [name, kem] of mlKemImplementations()) {
    const tally = new Tally();
    for (const group of file.testGroups) {
      for (const test of group.tests) {
        const at = where(`ML-KEM expanded decaps ${name}`, test);
        const secretKey = fromHex(test.dk);
        const cipherText = fromHex(test.c);
        if (test.result === "valid") {
          assert.equal(toHex(kem.decapsulate(cipherText, secretKey)), test.K, at);
          tally.count("valid: exact shared secret");
        } else {
          assert.equal(test.result, "invalid", at);
          const reason = (test.flags ?? []).includes("IncorrectCiphertextLength")
            ? "ciphertext"
            : "secret-key";
          refusedWith(() => kem.decapsulate(cipherText, secretKey), reason, at);
          tally.count(`invalid: ${reason} refused`);
        }
      }
    }
    tally.report(`ML-KEM-768 expanded decaps ${name}`, file.numberOfTests);
  }
});
