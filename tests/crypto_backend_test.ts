/**
 * The native and noble crypto backends must be interchangeable: same bytes
 * out for the same bytes in, the same refusals, and the published vectors.
 */

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { ed25519 } from "@noble/curves/ed25519.js";
import { fromHex, toHex, utf8 } from "../lib/core/bytes.ts";
import {
  type CryptoBackend,
  cryptoBackend,
  ED25519_SMALL_ORDER_POINTS,
  LowOrderPointError,
  nativeBackend,
  nobleBackend,
} from "../lib/crypto/crypto_backend.ts";

const BACKENDS: [string, CryptoBackend][] = [["native", nativeBackend], ["noble", nobleBackend]];

function random(length: number): Uint8Array {
  return new Uint8Array(randomBytes(length));
}

Deno.test("Deno offers every native primitive, and it is the default", () => {
  assert.deepEqual(nativeBackend.names, {
    aead: "native",
    x25519: "native",
    ed25519: "native",
    hash: "native",
  });
  assert.deepEqual(nobleBackend.names, {
    aead: "noble",
    x25519: "noble",
    ed25519: "noble",
    hash: "noble",
  });
  assert.equal(cryptoBackend, nativeBackend);
});

Deno.test("SECURECHAT_CRYPTO=noble selects the noble fallback", async () => {
  const script = 'import { cryptoBackend } from "./lib/crypto/crypto_backend.ts";' +
    "console.log(JSON.stringify(cryptoBackend.names));";
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["eval", script],
    env: { SECURECHAT_CRYPTO: "noble" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
  assert.deepEqual(JSON.parse(new TextDecoder().decode(output.stdout)), nobleBackend.names);
});

// RFC 8439, section 2.8.2.
const AEAD_VECTOR = {
  key: fromHex("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"),
  nonce: fromHex("070000004041424344454647"),
  ad: fromHex("50515253c0c1c2c3c4c5c6c7"),
  plaintext: utf8(
    "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the " +
      "future, sunscreen would be it.",
  ),
  ciphertext:
    "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fa" +
    "fb69da92728b1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad6" +
    "75945585808b4831d7bc3ff4def08e4b7a9de576d26586cec64b6116",
  tag: "1ae10b594f09e26a7e902ecbd0600691",
};

for (const [name, backend] of BACKENDS) {
  Deno.test(`${name}: ChaCha20-Poly1305 reproduces RFC 8439 and refuses forgeries`, () => {
    const { key, nonce, ad, plaintext, ciphertext, tag } = AEAD_VECTOR;
    const sealed = backend.seal(key, nonce, ad, plaintext);
    assert.equal(toHex(sealed), ciphertext + tag);
    assert.deepEqual(backend.open(key, nonce, ad, sealed), plaintext);
    for (const index of [0, 50, sealed.length - 16, sealed.length - 1]) {
      const forged = sealed.slice();
      forged[index] ^= 0x01;
      assert.throws(() => backend.open(key, nonce, ad, forged));
    }
    assert.throws(() => backend.open(key, nonce, ad.subarray(1), sealed));
    assert.throws(() => backend.open(key, random(12), ad, sealed));
    assert.throws(() => backend.open(random(32), nonce, ad, sealed));
    assert.throws(() => backend.open(key, nonce, ad, sealed.subarray(0, 15)));
    assert.throws(() => backend.seal(key.subarray(1), nonce, ad, plaintext), RangeError);
    assert.throws(() => backend.seal(key, nonce.subarray(1), ad, plaintext), RangeError);
  });
}

Deno.test("ChaCha20-Poly1305: native and noble agree on every size", () => {
  for (const size of [0, 1, 15, 16, 17, 63, 64, 65, 100, 1000, 4096, 65519, 200_000]) {
    const key = random(32);
    const nonce = random(12);
    const ad = random(size % 40);
    const plaintext = random(size);
    const native = nativeBackend.seal(key, nonce, ad, plaintext);
    const noble = nobleBackend.seal(key, nonce, ad, plaintext);
    assert.equal(toHex(native), toHex(noble), `size ${size}`);
    assert.deepEqual(nativeBackend.open(key, nonce, ad, noble), plaintext);
    assert.deepEqual(nobleBackend.open(key, nonce, ad, native), plaintext);
    const into = new Uint8Array(size + 16);
    assert.equal(nativeBackend.seal(key, nonce, ad, plaintext, into), into);
    assert.equal(toHex(into), toHex(noble));
  }
});

Deno.test("native AEAD output is a plain Uint8Array whose slice() copies", () => {
  const key = random(32);
  const nonce = random(12);
  const opened = nativeBackend.open(
    key,
    nonce,
    new Uint8Array(0),
    nativeBackend.seal(key, nonce, new Uint8Array(0), utf8("hello")),
  );
  assert.equal(Object.getPrototypeOf(opened), Uint8Array.prototype);
  const copy = opened.slice();
  copy[0] = 0;
  assert.equal(opened[0], "h".charCodeAt(0));
});

// RFC 7748, section 6.1.
const X25519_VECTOR = {
  alice: fromHex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"),
  alicePublic: "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a",
  bob: fromHex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"),
  bobPublic: "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f",
  shared: "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742",
};

// u-coordinates that give an all-zero shared secret: 0, 1, the two points of order 8,
// p - 1, p, p + 1 and the same with the (ignored) top bit set.
const LOW_ORDER_U = [
  "0000000000000000000000000000000000000000000000000000000000000000",
  "0100000000000000000000000000000000000000000000000000000000000000",
  "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
  "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
  "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
  "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
  "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
  "0000000000000000000000000000000000000000000000000000000000000080",
  "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b880",
];

for (const [name, backend] of BACKENDS) {
  Deno.test(`${name}: X25519 reproduces RFC 7748 and refuses low-order points`, () => {
    const { alice, alicePublic, bob, bobPublic, shared } = X25519_VECTOR;
    assert.equal(toHex(backend.x25519PublicKey(alice)), alicePublic);
    assert.equal(toHex(backend.x25519PublicKey(bob)), bobPublic);
    assert.equal(toHex(backend.x25519(alice, fromHex(bobPublic))), shared);
    assert.equal(toHex(backend.x25519(bob, fromHex(alicePublic))), shared);
    for (const u of LOW_ORDER_U) {
      assert.throws(() => backend.x25519(alice, fromHex(u)), LowOrderPointError, u);
    }
    assert.throws(() => backend.x25519(alice.subarray(1), fromHex(bobPublic)), RangeError);
    assert.throws(() => backend.x25519(alice, fromHex(bobPublic).subarray(1)), RangeError);
  });
}

Deno.test("X25519: native and noble agree on random keys, including non-canonical u", () => {
  for (let i = 0; i < 40; i++) {
    const pair = nativeBackend.x25519KeyPair();
    assert.equal(toHex(nobleBackend.x25519PublicKey(pair.secretKey)), toHex(pair.publicKey));
    const other = nobleBackend.x25519KeyPair();
    assert.equal(
      toHex(nativeBackend.x25519(pair.secretKey, other.publicKey)),
      toHex(nobleBackend.x25519(other.secretKey, pair.publicKey)),
    );
    // Arbitrary 32 bytes, top bit included: RFC 7748 masks it, both must too.
    const secret = random(32);
    const u = random(32);
    if (i % 2 === 0) u[31] |= 0x80;
    assert.equal(
      toHex(nativeBackend.x25519PublicKey(secret)),
      toHex(nobleBackend.x25519PublicKey(secret)),
    );
    assert.equal(toHex(nativeBackend.x25519(secret, u)), toHex(nobleBackend.x25519(secret, u)));
  }
});

Deno.test("X25519: a secret key changed in place is not served from the cache", () => {
  const pair = nativeBackend.x25519KeyPair();
  const peer = nobleBackend.x25519KeyPair();
  const before = nativeBackend.x25519(pair.secretKey, peer.publicKey);
  pair.secretKey.set(random(32));
  const after = nativeBackend.x25519(pair.secretKey, peer.publicKey);
  assert.notEqual(toHex(after), toHex(before));
  assert.equal(toHex(after), toHex(nobleBackend.x25519(pair.secretKey, peer.publicKey)));
});

// RFC 8032, section 7.1, tests 1 to 3.
const ED25519_VECTORS = [
  {
    seed: "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
    publicKey: "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
    message: "",
    signature:
      "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc6" +
      "1e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
  },
  {
    seed: "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
    publicKey: "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
    message: "72",
    signature:
      "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e45" +
      "8f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
  },
  {
    seed: "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
    publicKey: "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
    message: "af82",
    signature:
      "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae" +
      "67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
  },
];

// L, the order of the base point, little-endian.
const L = fromHex("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010");

/** `s + L` as 32 little-endian bytes: the same scalar mod L, but not canonical. */
function addL(s: Uint8Array): Uint8Array {
  const out = new Uint8Array(32);
  let carry = 0;
  for (let i = 0; i < 32; i++) {
    const sum = s[i] + L[i] + carry;
    out[i] = sum & 0xff;
    carry = sum >> 8;
  }
  return out;
}

for (const [name, backend] of BACKENDS) {
  Deno.test(`${name}: Ed25519 reproduces RFC 8032 and verifies strictly`, () => {
    for (const vector of ED25519_VECTORS) {
      const seed = fromHex(vector.seed);
      const message = fromHex(vector.message);
      const publicKey = fromHex(vector.publicKey);
      assert.equal(toHex(backend.ed25519PublicKey(seed)), vector.publicKey);
      assert.equal(toHex(backend.ed25519Sign(seed, message)), vector.signature);
      const signature = fromHex(vector.signature);
      assert.equal(backend.ed25519Verify(publicKey, message, signature), true);
      // Malleated S (S + L): the same equation, refused as non-canonical.
      const malleated = signature.slice();
      malleated.set(addL(signature.subarray(32)), 32);
      assert.equal(backend.ed25519Verify(publicKey, message, malleated), false);
      const flipped = signature.slice();
      flipped[10] ^= 0x20;
      assert.equal(backend.ed25519Verify(publicKey, message, flipped), false);
      assert.equal(backend.ed25519Verify(publicKey, utf8("other"), signature), false);
      assert.equal(backend.ed25519Verify(publicKey.subarray(1), message, signature), false);
      assert.equal(backend.ed25519Verify(publicKey, message, signature.subarray(1)), false);
    }
  });

  Deno.test(`${name}: Ed25519 refuses small-order keys and non-canonical encodings`, () => {
    const message = utf8("anything");
    // With A and R of small order and S = 0, the cofactorless equation holds for any
    // message; a strict verifier must still refuse.
    const identity = fromHex("0100000000000000000000000000000000000000000000000000000000000000");
    const trivial = new Uint8Array(64);
    trivial.set(identity);
    for (const point of ED25519_SMALL_ORDER_POINTS) {
      assert.equal(backend.ed25519Verify(fromHex(point), message, trivial), false, point);
    }
    // y = p (not reduced) and x = 0 with the sign bit set are non-canonical.
    const nonCanonical = [
      "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
      "0100000000000000000000000000000000000000000000000000000000000080",
      "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
    ];
    const seed = random(32);
    const signature = backend.ed25519Sign(seed, message);
    for (const point of nonCanonical) {
      assert.equal(backend.ed25519Verify(fromHex(point), message, signature), false, point);
      const badR = signature.slice();
      badR.set(fromHex(point));
      assert.equal(
        backend.ed25519Verify(backend.ed25519PublicKey(seed), message, badR),
        false,
        point,
      );
    }
  });
}

Deno.test("the small-order list holds exactly the eight small-order points (checked with noble)", () => {
  assert.equal(ED25519_SMALL_ORDER_POINTS.size, 8);
  for (const hex of ED25519_SMALL_ORDER_POINTS) {
    const point = ed25519.Point.fromBytes(fromHex(hex), false);
    assert.equal(point.isSmallOrder(), true, hex);
    assert.equal(toHex(point.toBytes()), hex, "canonical encoding");
  }
});

Deno.test("Ed25519: native and noble agree on random keys, messages and forgeries", () => {
  for (let i = 0; i < 40; i++) {
    const seed = random(32);
    const message = random(i * 97);
    const publicKey = nobleBackend.ed25519PublicKey(seed);
    assert.equal(toHex(nativeBackend.ed25519PublicKey(seed)), toHex(publicKey));
    const signature = nativeBackend.ed25519Sign(seed, message);
    assert.equal(toHex(nobleBackend.ed25519Sign(seed, message)), toHex(signature));
    const forged = signature.slice();
    forged[i % 64] ^= 1 << (i % 8);
    const otherKey = random(32);
    for (const [key, sig] of [[publicKey, signature], [publicKey, forged], [otherKey, signature]]) {
      assert.equal(
        nativeBackend.ed25519Verify(key, message, sig),
        nobleBackend.ed25519Verify(key, message, sig),
      );
    }
    assert.equal(nativeBackend.ed25519Verify(publicKey, message, signature), true);
  }
});

Deno.test("Ed25519: a seed changed in place is not served from the cache", () => {
  const seed = random(32);
  const message = utf8("cache");
  nativeBackend.ed25519Sign(seed, message);
  seed.set(random(32));
  assert.equal(
    toHex(nativeBackend.ed25519Sign(seed, message)),
    toHex(nobleBackend.ed25519Sign(seed, message)),
  );
  const publicKey = nobleBackend.ed25519PublicKey(seed);
  const signature = nobleBackend.ed25519Sign(seed, message);
  assert.equal(nativeBackend.ed25519Verify(publicKey, message, signature), true);
  publicKey.set(nobleBackend.ed25519PublicKey(random(32)));
  assert.equal(nativeBackend.ed25519Verify(publicKey, message, signature), false);
});

Deno.test("HMAC-SHA256 and HKDF-SHA256: RFC 4231 / RFC 5869 answers, native and noble agree", () => {
  for (const backend of [nativeBackend, nobleBackend]) {
    assert.equal(
      toHex(backend.hmacSha256(utf8("Jefe"), utf8("what do ya want for nothing?"))),
      "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
    );
    assert.equal(
      toHex(backend.hkdfSha256(
        fromHex("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b"),
        fromHex("000102030405060708090a0b0c"),
        fromHex("f0f1f2f3f4f5f6f7f8f9"),
        42,
      )),
      "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865",
    );
  }
  for (let i = 0; i < 200; i++) {
    const key = crypto.getRandomValues(new Uint8Array(i % 70));
    const data = crypto.getRandomValues(new Uint8Array((i * 7) % 300));
    assert.deepEqual(nativeBackend.hmacSha256(key, data), nobleBackend.hmacSha256(key, data));
    const length = 1 + (i % 80);
    assert.deepEqual(
      nativeBackend.hkdfSha256(data, key, key.subarray(0, i % 20), length),
      nobleBackend.hkdfSha256(data, key, key.subarray(0, i % 20), length),
    );
  }
});
