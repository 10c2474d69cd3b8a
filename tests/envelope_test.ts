/** Pairwise envelopes: round trip and every way an envelope must fail to open. */

import assert from "node:assert/strict";
import { toHex, utf8 } from "../lib/core/bytes.ts";
import {
  ENVELOPE_OVERHEAD,
  ENVELOPE_PROTOCOL,
  EnvelopeError,
  MAX_ENVELOPE_PLAINTEXT,
  openEnvelope,
  sealEnvelope,
} from "../lib/e2e/envelope.ts";
import { generateKeyPair, HandshakeState } from "../lib/crypto/noise.ts";

const alice = generateKeyPair("25519");
const bob = generateKeyPair("25519");
const carol = generateKeyPair("25519");
const prologue = utf8("securechat/pairwise/v1|room-1|alice|bob");
const plaintext = utf8("meet at the usual place, 7pm");

function seal(text = plaintext): Uint8Array {
  return sealEnvelope({
    senderStaticKeyPair: alice,
    recipientStaticPublicKey: bob.publicKey,
    prologue,
    plaintext: text,
  });
}

function open(envelope: Uint8Array, overrides: Partial<Parameters<typeof openEnvelope>[0]> = {}) {
  return openEnvelope({
    recipientStaticKeyPair: bob,
    senderStaticPublicKey: alice.publicKey,
    prologue,
    envelope,
    ...overrides,
  });
}

function assertRejected(fn: () => unknown, label: string): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof EnvelopeError, `${label}: wrong error type`);
    assert.match(error.message, /could not be opened/, label);
    assert.ok(!error.message.includes(toHex(bob.secretKey)), "no secrets in errors");
    return true;
  }, label);
}

Deno.test("envelope round trip, size, and it is a plain Noise K message", () => {
  const envelope = seal();
  assert.equal(envelope.length, plaintext.length + ENVELOPE_OVERHEAD);
  assert.deepEqual(open(envelope), plaintext);
  assert.deepEqual(open(seal(new Uint8Array(0))), new Uint8Array(0));

  const responder = new HandshakeState({
    protocolName: ENVELOPE_PROTOCOL,
    initiator: false,
    prologue,
    staticKeyPair: bob,
    remoteStaticPublicKey: alice.publicKey,
  });
  assert.deepEqual(responder.readMessage(envelope), plaintext);
  assert.ok(responder.isComplete);
});

Deno.test("largest plaintext fits; one byte more is refused when sealing", () => {
  const big = new Uint8Array(MAX_ENVELOPE_PLAINTEXT).fill(7);
  const envelope = seal(big);
  assert.equal(envelope.length, 65535);
  assert.deepEqual(open(envelope), big);
  assert.throws(() => seal(new Uint8Array(MAX_ENVELOPE_PLAINTEXT + 1)), EnvelopeError);
});

Deno.test("two seals of the same plaintext differ and hide the plaintext", () => {
  const first = seal();
  const second = seal();
  assert.notEqual(toHex(first), toHex(second));
  assert.notEqual(toHex(first.subarray(0, 32)), toHex(second.subarray(0, 32)), "fresh ephemeral");
  for (const envelope of [first, second]) {
    assert.ok(!toHex(envelope).includes(toHex(plaintext)), "plaintext visible");
    assert.ok(
      !toHex(envelope).includes(toHex(plaintext.subarray(0, 8))),
      "plaintext prefix visible",
    );
  }
});

Deno.test("wrong recipient, wrong claimed sender, or altered prologue all fail", () => {
  const envelope = seal();
  assertRejected(() => open(envelope, { recipientStaticKeyPair: carol }), "wrong recipient");
  assertRejected(
    () => open(envelope, { senderStaticPublicKey: carol.publicKey }),
    "wrong claimed sender",
  );
  assertRejected(
    () => open(envelope, { prologue: utf8("securechat/pairwise/v1|room-2|alice|bob") }),
    "other room",
  );
  assertRejected(
    () => open(envelope, { prologue: utf8("securechat/pairwise/v1|room-1|bob|alice") }),
    "swapped identities",
  );
  assertRejected(() => open(envelope, { prologue: new Uint8Array(0) }), "empty prologue");

  // Carol, who knows both public keys, cannot forge an envelope "from Alice".
  const forged = sealEnvelope({
    senderStaticKeyPair: carol,
    recipientStaticPublicKey: bob.publicKey,
    prologue,
    plaintext,
  });
  assertRejected(() => open(forged), "forged sender");
});

Deno.test("every flipped bit is detected", () => {
  const envelope = seal(utf8("short note"));
  for (let bit = 0; bit < envelope.length * 8; bit++) {
    const tampered = envelope.slice();
    tampered[bit >> 3] ^= 1 << (bit & 7);
    assertRejected(() => open(tampered), `bit ${bit}`);
  }
});

Deno.test("truncated or extended envelopes fail", () => {
  const envelope = seal(utf8("short note"));
  for (let length = 0; length < envelope.length; length++) {
    assertRejected(() => open(envelope.subarray(0, length)), `truncated to ${length}`);
  }
  const extended = new Uint8Array(envelope.length + 1);
  extended.set(envelope);
  assertRejected(() => open(extended), "extended");
  assertRejected(() => open(new Uint8Array(65536)), "oversize");
});

Deno.test("bad keys are reported clearly when sealing and opening", () => {
  assert.throws(
    () =>
      sealEnvelope({
        senderStaticKeyPair: alice,
        recipientStaticPublicKey: new Uint8Array(31),
        prologue,
        plaintext,
      }),
    /could not be sealed: .*32-byte/,
  );
  assert.throws(
    () =>
      sealEnvelope({
        senderStaticKeyPair: { secretKey: alice.secretKey, publicKey: bob.publicKey },
        recipientStaticPublicKey: bob.publicKey,
        prologue,
        plaintext,
      }),
    /does not belong/,
  );
  assert.throws(
    () =>
      sealEnvelope({
        senderStaticKeyPair: alice,
        recipientStaticPublicKey: new Uint8Array(32), // low-order point
        prologue,
        plaintext,
      }),
    EnvelopeError,
  );
  assert.throws(() => open(seal(), { senderStaticPublicKey: new Uint8Array(33) }), EnvelopeError);
});
