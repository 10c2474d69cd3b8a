/**
 * Run by tests/kem_test.ts under Node (which strips the types): checks
 * lib/crypto/kem.ts's native ML-KEM-768 path, which Deno 2.9 lacks, against
 * the X-Wing vectors and against noble. Prints one JSON line.
 *
 * Usage: node native_kem_check.ts <lib/crypto/kem.ts> <mlkem768x25519.json> <wycheproof dir>
 *
 * @module
 */

import * as nodeCrypto from "node:crypto";
import { readFileSync } from "node:fs";
import process from "node:process";

const [kemPath, vectorsPath, wycheproofDir] = process.argv.slice(2);
const kem = await import(kemPath);
const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");
const unhex = (text: string) => new Uint8Array(Buffer.from(text, "hex"));

const report = {
  version: process.version,
  hasEncapsulate: typeof (nodeCrypto as unknown as { encapsulate?: unknown }).encapsulate ===
    "function",
  backend: kem.mlKem768.backend,
  vectorsPassed: 0,
  crossChecks: 0,
  crossChecksPassed: 0,
  wycheproof: {} as Record<string, { total: number; passed: number }>,
};

/** Whether `run` throws a KemError for `reason`. */
function refused(run: () => unknown, reason: string): boolean {
  try {
    run();
    return false;
  } catch (error) {
    return error instanceof kem.KemError && (error as { reason?: string }).reason === reason;
  }
}

// deno-lint-ignore no-explicit-any
type Test = Record<string, any>;

/** Runs every test of one Wycheproof ML-KEM file through native ML-KEM-768. */
function wycheproof(file: string, passes: (test: Test) => boolean): void {
  const data = JSON.parse(readFileSync(`${wycheproofDir}/${file}`, "utf8"));
  const entry = { total: 0, passed: 0 };
  for (const group of data.testGroups) {
    for (const test of group.tests) {
      entry.total++;
      if (passes(test)) entry.passed++;
    }
  }
  report.wycheproof[file] = entry;
}

if (report.hasEncapsulate && kem.hasNativeMlKem768()) {
  const vectors = JSON.parse(readFileSync(vectorsPath, "utf8"));
  for (const v of vectors) {
    const pair = kem.nativeXWing.keygen(unhex(v.seed));
    const encapsulated = kem.nativeXWing.encapsulate(unhex(v.pk), unhex(v.randomness));
    const opened = kem.nativeXWing.decapsulate(unhex(v.ct), unhex(v.sk));
    if (
      hex(pair.publicKey) === v.pk && hex(encapsulated.cipherText) === v.ct &&
      hex(encapsulated.sharedSecret) === v.ss && hex(opened) === v.ss
    ) {
      report.vectorsPassed++;
    }
  }
  const check = (ok: boolean) => {
    report.crossChecks++;
    if (ok) report.crossChecksPassed++;
  };
  for (let i = 0; i < 5; i++) {
    const seed = new Uint8Array(nodeCrypto.randomBytes(32));
    const native = kem.nativeXWing.keygen(seed);
    check(hex(native.publicKey) === hex(kem.nobleXWing.keygen(seed).publicKey));
    const fromNative = kem.nativeXWing.encapsulate(native.publicKey);
    check(
      hex(kem.nobleXWing.decapsulate(fromNative.cipherText, native.secretKey)) ===
        hex(fromNative.sharedSecret),
    );
    const fromNoble = kem.nobleXWing.encapsulate(native.publicKey);
    check(
      hex(kem.nativeXWing.decapsulate(fromNoble.cipherText, native.secretKey)) ===
        hex(fromNoble.sharedSecret),
    );
    // ML-KEM-768 with the expanded FIPS 203 secret key.
    const pair = kem.nobleMlKem768.keygen();
    const a = kem.nativeMlKem768.encapsulate(pair.publicKey);
    check(hex(kem.nobleMlKem768.decapsulate(a.cipherText, pair.secretKey)) === hex(a.sharedSecret));
    const b = kem.nobleMlKem768.encapsulate(pair.publicKey);
    check(
      hex(kem.nativeMlKem768.decapsulate(b.cipherText, pair.secretKey)) === hex(b.sharedSecret),
    );
    const garbage = new Uint8Array(nodeCrypto.randomBytes(1088));
    check(
      hex(kem.nativeMlKem768.decapsulate(garbage, pair.secretKey)) ===
        hex(kem.nobleMlKem768.decapsulate(garbage, pair.secretKey)),
    );
  }
}

if (report.hasEncapsulate && kem.hasNativeMlKem768()) {
  const native = kem.nativeMlKem768;
  wycheproof("mlkem_768_keygen_seed_test.json", (t) => {
    const pair = native.keygen(unhex(t.seed));
    return hex(pair.publicKey) === t.ek && hex(pair.secretKey) === t.dk;
  });
  wycheproof("mlkem_768_test.json", (t) => {
    const seed = unhex(t.seed);
    if (seed.length !== 64) {
      return t.result === "invalid" && refused(() => native.keygen(seed), "seed");
    }
    const pair = native.keygen(seed);
    if (t.result === "valid") return hex(native.decapsulate(unhex(t.c), pair.secretKey)) === t.K;
    return refused(() => native.decapsulate(unhex(t.c), pair.secretKey), "ciphertext");
  });
  wycheproof("mlkem_768_encaps_test.json", (t) => {
    const ek = unhex(t.ek);
    if (t.result !== "valid") return refused(() => native.encapsulate(ek), "public-key");
    const fixed = native.encapsulate(ek, unhex(t.m));
    return hex(fixed.cipherText) === t.c && hex(fixed.sharedSecret) === t.K &&
      native.encapsulate(ek).cipherText.length === 1088;
  });
  wycheproof("mlkem_768_semi_expanded_decaps_test.json", (t) => {
    const dk = unhex(t.dk);
    const c = unhex(t.c);
    if (t.result === "valid") return hex(native.decapsulate(c, dk)) === t.K;
    const reason = (t.flags ?? []).includes("IncorrectCiphertextLength")
      ? "ciphertext"
      : "secret-key";
    return refused(() => native.decapsulate(c, dk), reason);
  });
}

console.log(JSON.stringify(report));
