/**
 * Safety numbers: fixed vectors (computed independently, with Python's
 * hashlib), order independence, sensitivity to every key, and an independent
 * re-derivation with node:crypto.
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { fromHex, toHex } from "../lib/core/bytes.ts";
import { generateIdentity } from "../lib/identity/identity.ts";
import { safetyNumber, safetyNumberRows } from "../lib/identity/safety_number.ts";

const RFC8032_KEY_1 = fromHex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
const RFC8032_KEY_2 = fromHex("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c");
const ZERO_KEY = new Uint8Array(32);

const SHAPE = /^[0-9]{5}( [0-9]{5}){11}$/;

Deno.test("safety number: published test vectors", () => {
  assert.equal(
    safetyNumber(RFC8032_KEY_1, ZERO_KEY),
    "94338 25340 90014 21518 17897 23946 26863 59438 63301 80571 13761 69450",
  );
  assert.equal(
    safetyNumber(RFC8032_KEY_1, RFC8032_KEY_2),
    "15195 66477 17612 19767 14120 97915 76901 68692 20507 59189 99428 00148",
  );
});

Deno.test("safety number: both members compute the same number", () => {
  for (let i = 0; i < 20; i++) {
    const a = generateIdentity().publicKey;
    const b = generateIdentity().publicKey;
    const number = safetyNumber(a, b);
    assert.match(number, SHAPE);
    assert.equal(safetyNumber(b, a), number);
  }
});

Deno.test("safety number: matches an independent derivation with node:crypto", () => {
  for (let i = 0; i < 20; i++) {
    const a = generateIdentity().publicKey;
    const b = generateIdentity().publicKey;
    const [lower, higher] = [toHex(a), toHex(b)].sort();
    const digest = createHash("sha512")
      .update("securechat safety number v1\0")
      .update(Buffer.from(lower + higher, "hex"))
      .digest();
    const groups = [];
    for (let g = 0; g < 12; g++) {
      const value = digest.readUIntBE(g * 5, 5) % 100000;
      groups.push(String(value).padStart(5, "0"));
    }
    assert.equal(safetyNumber(a, b), groups.join(" "));
  }
});

Deno.test("safety number: changes when either key changes, even by one bit", () => {
  const a = generateIdentity().publicKey;
  const b = generateIdentity().publicKey;
  const number = safetyNumber(a, b);
  for (const [index, which] of [[0, "a"], [31, "a"], [0, "b"], [17, "b"]] as const) {
    const flipped = new Uint8Array(which === "a" ? a : b);
    flipped[index] ^= 1;
    const changed = which === "a" ? safetyNumber(flipped, b) : safetyNumber(a, flipped);
    assert.notEqual(changed, number, `flipping a bit of key ${which} must change the number`);
  }
  // A third member gets a different number with each of the other two.
  const c = generateIdentity().publicKey;
  assert.notEqual(safetyNumber(a, c), number);
  assert.notEqual(safetyNumber(b, c), number);
});

Deno.test("safety number: refuses keys that are not 32 bytes", () => {
  assert.throws(() => safetyNumber(new Uint8Array(31), ZERO_KEY), /32 bytes, not 31/);
  assert.throws(() => safetyNumber(ZERO_KEY, new Uint8Array(33)), /32 bytes, not 33/);
});

Deno.test("safety number: shown as three rows of four groups", () => {
  const rows = safetyNumberRows(safetyNumber(RFC8032_KEY_1, ZERO_KEY));
  assert.deepEqual(rows, [
    "94338 25340 90014 21518",
    "17897 23946 26863 59438",
    "63301 80571 13761 69450",
  ]);
});
