/** Behaviour of the Noise implementation beyond the published vectors: attacks and limits. */

import assert from "node:assert/strict";
import { chacha20poly1305 } from "@noble/ciphers/chacha.js";
import { gcm } from "@noble/ciphers/aes.js";
import { randomBytes } from "@noble/ciphers/utils.js";
import { toHex, utf8 } from "../lib/core/bytes.ts";
import {
  CipherState,
  generateKeyPair,
  HandshakeState,
  type HandshakeStateOptions,
  MAX_MESSAGE_LENGTH,
  MAX_NONCE,
  NoiseError,
  parsePattern,
  PATTERN_NAMES,
} from "../lib/crypto/noise.ts";

type SideOptions = Omit<HandshakeStateOptions, "protocolName" | "initiator">;

/** Runs a full handshake, returning both sides; messages carry a small payload. */
function handshake(protocolName: string, initiator: SideOptions, responder: SideOptions) {
  const i = new HandshakeState({ protocolName, initiator: true, ...initiator });
  const r = new HandshakeState({ protocolName, initiator: false, ...responder });
  for (let step = 0; step < 10 && !(i.isComplete && r.isComplete); step++) {
    const [writer, reader] = i.isMyTurn ? [i, r] : [r, i];
    const payload = utf8(`payload ${step}`);
    assert.deepEqual(reader.readMessage(writer.writeMessage(payload)), payload);
  }
  assert.ok(i.isComplete && r.isComplete);
  return { i, r };
}

function xxPair() {
  const alice = generateKeyPair("25519");
  const bob = generateKeyPair("25519");
  const { i, r } = handshake(
    "Noise_XX_25519_ChaChaPoly_SHA256",
    { staticKeyPair: alice },
    { staticKeyPair: bob },
  );
  return { alice, bob, i, r, a: i.split(), b: r.split() };
}

Deno.test("pattern table covers every named pattern of the spec", () => {
  assert.equal(PATTERN_NAMES.length, 3 + 12 + 23);
  assert.deepEqual(parsePattern("XXpsk3").messages.map((m) => m.tokens), [
    ["e"],
    ["e", "ee", "s", "es"],
    ["s", "se", "psk"],
  ]);
  assert.deepEqual(parsePattern("NNpsk0+psk2").messages.map((m) => m.tokens), [
    ["psk", "e"],
    ["e", "ee", "psk"],
  ]);
  assert.throws(() => parsePattern("XXfallback"), NoiseError);
  assert.throws(() => parsePattern("NNpsk3"), NoiseError);
  assert.throws(() => parsePattern("QQ"), NoiseError);
});

Deno.test("XX transport round trip in both directions, hashes and static keys agree", () => {
  const { alice, bob, i, r, a, b } = xxPair();
  assert.equal(toHex(i.handshakeHash), toHex(r.handshakeHash));
  assert.equal(toHex(i.remoteStaticPublicKey!), toHex(bob.publicKey));
  assert.equal(toHex(r.remoteStaticPublicKey!), toHex(alice.publicKey));
  for (let n = 0; n < 20; n++) {
    const up = utf8(`up ${n}`);
    const down = utf8(`down ${n}`);
    const sealed = a.send.encrypt(up);
    assert.notEqual(toHex(sealed).includes(toHex(up)), true);
    assert.deepEqual(b.receive.decrypt(sealed), up);
    assert.deepEqual(a.receive.decrypt(b.send.encrypt(down)), down);
  }
  assert.equal(a.send.nonce, 20n);
  assert.equal(b.receive.nonce, 20n);
});

Deno.test("every handshake pattern completes and interoperates over 25519 and 448", () => {
  for (const dh of ["25519", "448"] as const) {
    for (const name of PATTERN_NAMES) {
      const pattern = parsePattern(name);
      const initiatorStatic = generateKeyPair(dh);
      const responderStatic = generateKeyPair(dh);
      const sendsStatic = (initiator: boolean) =>
        (initiator ? pattern.initiatorPreMessage : pattern.responderPreMessage).includes("s") ||
        pattern.messages.some((m) => m.fromInitiator === initiator && m.tokens.includes("s"));
      const { i, r } = handshake(
        `Noise_${name}_${dh}_ChaChaPoly_BLAKE2s`,
        {
          staticKeyPair: sendsStatic(true) ? initiatorStatic : undefined,
          remoteStaticPublicKey: pattern.responderPreMessage.includes("s")
            ? responderStatic.publicKey
            : undefined,
        },
        {
          staticKeyPair: sendsStatic(false) ? responderStatic : undefined,
          remoteStaticPublicKey: pattern.initiatorPreMessage.includes("s")
            ? initiatorStatic.publicKey
            : undefined,
        },
      );
      assert.equal(toHex(i.handshakeHash), toHex(r.handshakeHash), name);
      const a = i.split();
      const b = r.split();
      assert.deepEqual(b.receive.decrypt(a.send.encrypt(utf8(name))), utf8(name));
    }
  }
});

Deno.test("a flipped bit anywhere in a handshake message is rejected and kills the handshake", () => {
  const protocolName = "Noise_XX_25519_ChaChaPoly_SHA256";
  const bob = generateKeyPair("25519");
  const alice = generateKeyPair("25519");
  // Message 2 carries e, an encrypted s and an encrypted payload: cover every byte.
  const probe = new HandshakeState({ protocolName, initiator: false, staticKeyPair: bob });
  probe.readMessage(new HandshakeState({ protocolName, initiator: true, staticKeyPair: alice })
    .writeMessage());
  const length = probe.writeMessage(utf8("hi")).length;
  for (let byte = 0; byte < length; byte++) {
    const i = new HandshakeState({ protocolName, initiator: true, staticKeyPair: alice });
    const r = new HandshakeState({ protocolName, initiator: false, staticKeyPair: bob });
    r.readMessage(i.writeMessage());
    const message = r.writeMessage(utf8("hi"));
    message[byte] ^= 1 << (byte % 8);
    assert.throws(() => i.readMessage(message), NoiseError, `byte ${byte}`);
    assert.throws(() => i.writeMessage(), /already failed/);
    assert.throws(() => i.split(), /already failed/);
  }
});

Deno.test("a tampered first message of IK is rejected by the responder", () => {
  const protocolName = "Noise_IK_25519_ChaChaPoly_SHA256";
  const server = generateKeyPair("25519");
  const client = generateKeyPair("25519");
  const message = new HandshakeState({
    protocolName,
    initiator: true,
    staticKeyPair: client,
    remoteStaticPublicKey: server.publicKey,
  }).writeMessage(utf8("hello"));
  for (const byte of [0, 31, 32, 40, 79, 80, message.length - 1]) {
    const tampered = message.slice();
    tampered[byte] ^= 0x80;
    const r = new HandshakeState({ protocolName, initiator: false, staticKeyPair: server });
    assert.throws(() => r.readMessage(tampered), NoiseError, `byte ${byte}`);
  }
  const r = new HandshakeState({ protocolName, initiator: false, staticKeyPair: server });
  assert.deepEqual(r.readMessage(message), utf8("hello"));
  assert.equal(toHex(r.remoteStaticPublicKey!), toHex(client.publicKey));
});

Deno.test("KK and IK fail when a side uses the wrong remote static key", () => {
  const alice = generateKeyPair("25519");
  const bob = generateKeyPair("25519");
  const mallory = generateKeyPair("25519");
  const kk = "Noise_KK_25519_ChaChaPoly_SHA256";
  // Initiator believes the responder is mallory.
  let i = new HandshakeState({
    protocolName: kk,
    initiator: true,
    staticKeyPair: alice,
    remoteStaticPublicKey: mallory.publicKey,
  });
  let r = new HandshakeState({
    protocolName: kk,
    initiator: false,
    staticKeyPair: bob,
    remoteStaticPublicKey: alice.publicKey,
  });
  assert.throws(() => r.readMessage(i.writeMessage(utf8("x"))), NoiseError);
  // Responder believes the initiator is mallory.
  i = new HandshakeState({
    protocolName: kk,
    initiator: true,
    staticKeyPair: alice,
    remoteStaticPublicKey: bob.publicKey,
  });
  r = new HandshakeState({
    protocolName: kk,
    initiator: false,
    staticKeyPair: bob,
    remoteStaticPublicKey: mallory.publicKey,
  });
  assert.throws(() => r.readMessage(i.writeMessage(utf8("x"))), NoiseError);

  const ik = "Noise_IK_25519_ChaChaPoly_SHA256";
  i = new HandshakeState({
    protocolName: ik,
    initiator: true,
    staticKeyPair: alice,
    remoteStaticPublicKey: mallory.publicKey,
  });
  r = new HandshakeState({ protocolName: ik, initiator: false, staticKeyPair: bob });
  assert.throws(() => r.readMessage(i.writeMessage()), NoiseError);
});

Deno.test("different prologues or psks make the handshake fail", () => {
  const nn = "Noise_NN_25519_ChaChaPoly_SHA256";
  const i = new HandshakeState({ protocolName: nn, initiator: true, prologue: utf8("room a") });
  const r = new HandshakeState({ protocolName: nn, initiator: false, prologue: utf8("room b") });
  r.readMessage(i.writeMessage()); // first NN message is unauthenticated
  assert.throws(() => i.readMessage(r.writeMessage()), NoiseError);

  const psk = "Noise_NNpsk0_25519_ChaChaPoly_SHA256";
  const pi = new HandshakeState({ protocolName: psk, initiator: true, psks: [randomBytes(32)] });
  const pr = new HandshakeState({ protocolName: psk, initiator: false, psks: [randomBytes(32)] });
  assert.throws(() => pr.readMessage(pi.writeMessage()), NoiseError);
});

Deno.test("configuration errors are reported before any message", () => {
  const pair = generateKeyPair("25519");
  const other = generateKeyPair("25519");
  const make = (options: Partial<HandshakeStateOptions>) => () =>
    new HandshakeState({
      protocolName: "Noise_XX_25519_ChaChaPoly_SHA256",
      initiator: true,
      ...options,
    });
  assert.throws(make({ protocolName: "Noise_XX_25519_ChaChaPoly" }), NoiseError);
  assert.throws(make({ protocolName: "Noise_XX_P256_ChaChaPoly_SHA256" }), /unsupported DH/);
  assert.throws(make({ protocolName: "Noise_XX_25519_AESOCB_SHA256" }), /unsupported cipher/);
  assert.throws(make({ protocolName: "Noise_XX_25519_ChaChaPoly_SHA3" }), /unsupported hash/);
  assert.throws(make({}), /needs staticKeyPair/);
  assert.throws(
    make({ staticKeyPair: pair, remoteStaticPublicKey: other.publicKey }),
    /does not use remoteStaticPublicKey/,
  );
  assert.throws(
    make({ staticKeyPair: { secretKey: pair.secretKey, publicKey: other.publicKey } }),
    /does not belong/,
  );
  assert.throws(make({ staticKeyPair: pair, psks: [randomBytes(32)] }), /needs 0 psks/);
  assert.throws(
    make({
      protocolName: "Noise_XXpsk3_25519_ChaChaPoly_SHA256",
      staticKeyPair: pair,
      psks: [randomBytes(31)],
    }),
    /32 bytes/,
  );
  assert.throws(make({ protocolName: "Noise_NK_25519_ChaChaPoly_SHA256" }), /needs remoteStatic/);
  assert.throws(
    make({ protocolName: "Noise_XX_448_ChaChaPoly_SHA256", staticKeyPair: pair }),
    /56-byte/,
  );
});

Deno.test("turn order, split once, and one-way patterns refuse the reverse direction", () => {
  const nn = "Noise_NN_25519_ChaChaPoly_SHA256";
  const i = new HandshakeState({ protocolName: nn, initiator: true });
  const r = new HandshakeState({ protocolName: nn, initiator: false });
  assert.throws(() => r.writeMessage(), /turn to read/);
  assert.throws(() => i.readMessage(new Uint8Array(32)), /turn to write/);
  assert.throws(() => i.split(), /before the handshake completed/);
  r.readMessage(i.writeMessage());
  i.readMessage(r.writeMessage());
  assert.throws(() => i.writeMessage(), /complete/);
  i.split();
  assert.throws(() => i.split(), /already called/);

  const server = generateKeyPair("25519");
  const n = "Noise_N_25519_ChaChaPoly_SHA256";
  const ni = new HandshakeState({
    protocolName: n,
    initiator: true,
    remoteStaticPublicKey: server.publicKey,
  });
  const nr = new HandshakeState({ protocolName: n, initiator: false, staticKeyPair: server });
  nr.readMessage(ni.writeMessage());
  const a = ni.split();
  const b = nr.split();
  assert.deepEqual(b.receive.decrypt(a.send.encrypt(utf8("one way"))), utf8("one way"));
  assert.throws(() => b.send.encrypt(utf8("back")), /one-way/);
  assert.throws(() => a.receive.decrypt(new Uint8Array(16)), /one-way/);
});

Deno.test("oversize handshake and transport messages are rejected without state damage", () => {
  const nn = "Noise_NN_25519_ChaChaPoly_SHA256";
  const i = new HandshakeState({ protocolName: nn, initiator: true });
  const r = new HandshakeState({ protocolName: nn, initiator: false });
  // First NN message: 32-byte e plus a plaintext payload.
  assert.throws(() => i.writeMessage(new Uint8Array(MAX_MESSAGE_LENGTH - 31)), /exceed 65535/);
  const biggest = i.writeMessage(new Uint8Array(MAX_MESSAGE_LENGTH - 32));
  assert.equal(biggest.length, MAX_MESSAGE_LENGTH);
  assert.throws(() => r.readMessage(new Uint8Array(MAX_MESSAGE_LENGTH + 1)), /exceeds 65535/);
  assert.throws(() => r.readMessage(new Uint8Array(31)), /too short/);
  r.readMessage(biggest);
  // Second message: e, then an encrypted payload with a tag.
  assert.throws(() => r.writeMessage(new Uint8Array(MAX_MESSAGE_LENGTH - 47)), /exceed/);
  i.readMessage(r.writeMessage(new Uint8Array(MAX_MESSAGE_LENGTH - 48)));
  const a = i.split();
  const b = r.split();
  assert.throws(() => a.send.encrypt(new Uint8Array(MAX_MESSAGE_LENGTH - 15)), NoiseError);
  assert.equal(a.send.nonce, 0n);
  const max = a.send.encrypt(new Uint8Array(MAX_MESSAGE_LENGTH - 16));
  assert.equal(max.length, MAX_MESSAGE_LENGTH);
  assert.throws(() => b.receive.decrypt(new Uint8Array(MAX_MESSAGE_LENGTH + 1)), NoiseError);
  assert.throws(() => b.receive.decrypt(new Uint8Array(15)), /shorter than/);
  assert.equal(b.receive.decrypt(max).length, MAX_MESSAGE_LENGTH - 16);
});

Deno.test("a failed decrypt does not advance the nonce", () => {
  const { a, b } = xxPair();
  const sealed = a.send.encrypt(utf8("first"));
  const forged = sealed.slice();
  forged[0] ^= 1;
  assert.throws(() => b.receive.decrypt(forged), /failed to authenticate/);
  assert.throws(() => b.receive.decrypt(sealed.subarray(0, sealed.length - 1)), NoiseError);
  assert.throws(() => b.receive.decryptWithAd(utf8("other ad"), sealed), NoiseError);
  assert.equal(b.receive.nonce, 0n);
  assert.deepEqual(b.receive.decrypt(sealed), utf8("first"));
  assert.equal(b.receive.nonce, 1n);
});

Deno.test("out-of-order and replayed transport messages fail", () => {
  const { a, b } = xxPair();
  const m0 = a.send.encrypt(utf8("zero"));
  const m1 = a.send.encrypt(utf8("one"));
  assert.throws(() => b.receive.decrypt(m1), NoiseError);
  assert.deepEqual(b.receive.decrypt(m0), utf8("zero"));
  assert.throws(() => b.receive.decrypt(m0), NoiseError, "replay");
  assert.deepEqual(b.receive.decrypt(m1), utf8("one"));
  // A frame from the other direction does not decrypt either.
  assert.throws(() => a.receive.decrypt(a.send.encrypt(utf8("self"))), NoiseError);
});

Deno.test("nonce exhaustion is an error; 2^64-1 is never used for a message", () => {
  const key = randomBytes(32);
  const send = new CipherState({ cipher: "ChaChaPoly", key });
  const receive = new CipherState({ cipher: "ChaChaPoly", key });
  send.setNonce(MAX_NONCE - 1n);
  receive.setNonce(MAX_NONCE - 1n);
  assert.deepEqual(receive.decrypt(send.encrypt(utf8("last"))), utf8("last"));
  assert.equal(send.nonce, MAX_NONCE);
  assert.throws(() => send.encrypt(utf8("more")), /exhausted/);
  assert.throws(() => receive.decrypt(new Uint8Array(32)), /exhausted/);
  assert.throws(() => send.setNonce(MAX_NONCE + 1n), NoiseError);
  assert.throws(() => send.setNonce(-1n), NoiseError);
});

Deno.test("nonce encoding: ChaChaPoly little-endian, AESGCM big-endian, 4 zero bytes first", () => {
  const key = randomBytes(32);
  const ad = utf8("ad");
  const plaintext = utf8("nonce layout");
  const n = 0x0102030405060708n;
  const le = new Uint8Array([0, 0, 0, 0, 8, 7, 6, 5, 4, 3, 2, 1]);
  const be = new Uint8Array([0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8]);
  const chacha = new CipherState({ cipher: "ChaChaPoly", key });
  chacha.setNonce(n);
  assert.equal(
    toHex(chacha.encryptWithAd(ad, plaintext)),
    toHex(chacha20poly1305(key, le, ad).encrypt(plaintext)),
  );
  const aes = new CipherState({ cipher: "AESGCM", key });
  aes.setNonce(n);
  assert.equal(toHex(aes.encryptWithAd(ad, plaintext)), toHex(gcm(key, be, ad).encrypt(plaintext)));
});

Deno.test("rekey: both sides must rekey together; a key-less state passes data through", () => {
  const { a, b } = xxPair();
  a.send.rekey();
  const afterOneSided = a.send.encrypt(utf8("x"));
  assert.throws(() => b.receive.decrypt(afterOneSided), NoiseError);
  b.receive.rekey();
  assert.deepEqual(b.receive.decrypt(afterOneSided), utf8("x"));
  assert.deepEqual(b.receive.decrypt(a.send.encrypt(utf8("y"))), utf8("y"));

  const empty = new CipherState({ cipher: "ChaChaPoly" });
  assert.equal(empty.hasKey(), false);
  assert.deepEqual(empty.encrypt(utf8("plain")), utf8("plain"));
  assert.throws(() => empty.rekey(), NoiseError);
  assert.throws(
    () => new CipherState({ cipher: "ChaChaPoly", key: new Uint8Array(16) }),
    NoiseError,
  );
});

Deno.test("low-order remote keys are rejected", () => {
  const server = generateKeyPair("25519");
  const n = "Noise_N_25519_ChaChaPoly_SHA256";
  const i = new HandshakeState({
    protocolName: n,
    initiator: true,
    remoteStaticPublicKey: new Uint8Array(32),
  });
  assert.throws(() => i.writeMessage(), /invalid/);
  const r = new HandshakeState({ protocolName: n, initiator: false, staticKeyPair: server });
  assert.throws(() => r.readMessage(new Uint8Array(48)), /invalid/);
});

Deno.test("deferred psks: supplied before their token, checked, and equal to psks given upfront", () => {
  const psk = randomBytes(32);
  const initiatorStatic = generateKeyPair("25519");
  const responderStatic = generateKeyPair("25519");
  const options = (initiator: boolean) => ({
    protocolName: "Noise_KKpsk2_25519_ChaChaPoly_SHA256",
    initiator,
    staticKeyPair: initiator ? initiatorStatic : responderStatic,
    remoteStaticPublicKey: initiator ? responderStatic.publicKey : initiatorStatic.publicKey,
  });
  const upfront = new HandshakeState({ ...options(true), psks: [psk] });
  const deferredResponder = new HandshakeState({ ...options(false), deferPsks: true });
  deferredResponder.readMessage(upfront.writeMessage(utf8("one")));
  // The psk token comes in message 2: writing it without the psk fails and kills the handshake.
  const missing = new HandshakeState({ ...options(false), deferPsks: true });
  missing.readMessage(new HandshakeState({ ...options(true), psks: [psk] }).writeMessage());
  assert.throws(() => missing.writeMessage(), /supplyPsk/);
  assert.throws(() => deferredResponder.supplyPsk(psk.subarray(1)), /32 bytes/);
  deferredResponder.supplyPsk(psk);
  assert.throws(() => deferredResponder.supplyPsk(psk), /no more psks/);
  upfront.readMessage(deferredResponder.writeMessage(utf8("two")));
  assert.equal(toHex(upfront.handshakeHash), toHex(deferredResponder.handshakeHash));
  // splitKeys() gives the keys split() would have put in the CipherStates.
  const { send } = upfront.split();
  const keys = deferredResponder.splitKeys();
  const sealed = send.encrypt(utf8("transport"));
  const nonce = new Uint8Array(12);
  assert.equal(
    new TextDecoder().decode(
      chacha20poly1305(keys.initiatorToResponder, nonce, new Uint8Array(0)).decrypt(sealed),
    ),
    "transport",
  );
  assert.throws(() => deferredResponder.splitKeys(), /already called/);
  assert.throws(
    () => new HandshakeState({ ...options(true), psks: [psk], deferPsks: true }),
    /supplyPsk/,
  );
  assert.throws(
    () =>
      new HandshakeState({
        protocolName: "Noise_NN_25519_ChaChaPoly_SHA256",
        initiator: true,
        deferPsks: true,
      }),
    /no psk to defer/,
  );
});

Deno.test("wipe() ends a handshake midway", () => {
  const initiator = new HandshakeState({
    protocolName: "Noise_XX_25519_ChaChaPoly_SHA256",
    initiator: true,
    staticKeyPair: generateKeyPair("25519"),
  });
  initiator.writeMessage();
  initiator.wipe();
  assert.throws(() => initiator.readMessage(new Uint8Array(48)), /already failed/);
  assert.throws(() => initiator.split(), /already failed/);
});
