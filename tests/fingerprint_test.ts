import assert from "node:assert/strict";
import { fromHex } from "../lib/core/bytes.ts";
import {
  fingerprint,
  fingerprintsEqual,
  isCanonicalFingerprint,
  parseFingerprint,
} from "../lib/identity/fingerprint.ts";
import { generateIdentity } from "../lib/identity/identity.ts";

// RFC 8032 section 7.1, test 1 public key.
const RFC8032_PUBLIC = fromHex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");

Deno.test("fingerprint known answers (computed independently with Python hashlib/base64)", () => {
  // python: sha256(b"securechat fingerprint v1\0" + pk).digest()[:20] -> b32encode().lower(), groups of 4
  assert.equal(fingerprint(RFC8032_PUBLIC), "o6kv-tmqc-57x2-bb5p-pvis-jnua-liox-4yhb");
  assert.equal(fingerprint(new Uint8Array(32)), "j2gv-iof2-3dcw-uas3-h4a6-owu4-dmac-vusa");
});

Deno.test("fingerprint shape and sensitivity to every key byte", () => {
  const base = generateIdentity().publicKey;
  const fp = fingerprint(base);
  assert.equal(fp.length, 39);
  assert.ok(isCanonicalFingerprint(fp));
  assert.match(fp, /^([a-z2-7]{4}-){7}[a-z2-7]{4}$/);
  for (let i = 0; i < 32; i++) {
    const changed = Uint8Array.from(base);
    changed[i] ^= 1;
    assert.notEqual(fingerprint(changed), fp, `byte ${i}`);
  }
  assert.throws(() => fingerprint(new Uint8Array(31)), RangeError);
  assert.throws(() => fingerprint(new Uint8Array(33)), RangeError);
});

Deno.test("parseFingerprint accepts any case, spaces and dashes", () => {
  const fp = "o6kv-tmqc-57x2-bb5p-pvis-jnua-liox-4yhb";
  for (
    const text of [
      fp,
      fp.toUpperCase(),
      fp.replaceAll("-", ""),
      fp.replaceAll("-", " "),
      `  ${fp.replaceAll("-", "")}\n`,
      "O6KVT MQC57 X2BB5P-PVIS jnua liox4yhb",
    ]
  ) {
    assert.equal(parseFingerprint(text), fp, text);
  }
});

Deno.test("parseFingerprint rejects what is not a fingerprint, with a clear message", () => {
  const fp = "o6kv-tmqc-57x2-bb5p-pvis-jnua-liox-4yhb";
  const cases: [string, RegExp][] = [
    ["", /got 0/],
    [fp.slice(0, -1), /32 base32 characters.*got 31/],
    [fp + "a", /got 33/],
    [fp.replace("o", "0"), /only the letters a-z and digits 2-7/],
    [fp.replace("o", "1"), /only the letters/],
    [fp.replace("o", "8"), /only the letters/],
    [fp.replace("-", "_"), /not a fingerprint/],
    [fp.replace("o", "é"), /only the letters/],
    ["d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", /got 64/],
  ];
  for (const [text, message] of cases) {
    assert.throws(() => parseFingerprint(text), (error: Error) => {
      assert.ok(error instanceof SyntaxError);
      assert.match(error.message, message);
      return true;
    }, text);
  }
  assert.ok(!isCanonicalFingerprint(fp.toUpperCase()));
  assert.ok(!isCanonicalFingerprint(fp.replaceAll("-", "")));
});

Deno.test("fingerprintsEqual compares canonical forms", () => {
  const a = fingerprint(generateIdentity().publicKey);
  const b = fingerprint(generateIdentity().publicKey);
  assert.ok(fingerprintsEqual(a, a));
  assert.ok(fingerprintsEqual(a, a.toUpperCase().replaceAll("-", " ")));
  assert.ok(!fingerprintsEqual(a, b));
  // Differs only in the last character.
  const last = a.endsWith("a") ? "b" : "a";
  assert.ok(!fingerprintsEqual(a, a.slice(0, -1) + last));
  assert.ok(!fingerprintsEqual(a, "garbage"));
  assert.ok(!fingerprintsEqual("garbage", "garbage"));
});
