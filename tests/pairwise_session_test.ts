/**
 * lib/e2e/pairwise_session.ts: the protocol 2 pairwise handshake
 * (Noise KKpsk2 with an X-Wing psk) and its ratcheted data channel.
 */

import assert from "node:assert/strict";
import { concat, fromUtf8, toHex, utf8 } from "../lib/core/bytes.ts";
import { cryptoBackend } from "../lib/crypto/crypto_backend.ts";
import { xWing } from "../lib/crypto/kem.ts";
import { HandshakeState } from "../lib/crypto/noise.ts";
import { type ChainStepBudget, SymmetricChain } from "../lib/e2e/chain.ts";
import {
  isPairwiseInitiator,
  MAX_PAIRWISE_SKIP,
  PairwiseError,
  type PairwiseFailure,
  pairwiseMessageKind,
  PairwiseSession,
  type PairwiseSessionOptions,
} from "../lib/e2e/pairwise_session.ts";

const ROOM = "ops";

interface Member {
  identity: Uint8Array;
  presence: { publicKey: Uint8Array; secretKey: Uint8Array };
}

function member(): Member {
  const seed = crypto.getRandomValues(new Uint8Array(32));
  return {
    identity: cryptoBackend.ed25519PublicKey(seed),
    presence: cryptoBackend.x25519KeyPair(),
  };
}

function optionsFor(local: Member, remote: Member, room = ROOM): PairwiseSessionOptions {
  return {
    room,
    localIdentityPublicKey: local.identity,
    remoteIdentityPublicKey: remote.identity,
    localPresence: local.presence,
    remotePresencePublicKey: remote.presence.publicKey,
  };
}

/** Two members, the initiator (smaller presence key) first. */
function pairOfMembers(): [Member, Member] {
  const a = member();
  const b = member();
  return isPairwiseInitiator(a.presence.publicKey, b.presence.publicKey) ? [a, b] : [b, a];
}

function handshake(budget?: ChainStepBudget) {
  const [initiator, responder] = pairOfMembers();
  const started = PairwiseSession.initiate(optionsFor(initiator, responder));
  const answered = PairwiseSession.accept({
    ...optionsFor(responder, initiator),
    hello: started.hello,
    budget,
  });
  started.session.readAccept(answered.accept);
  return {
    initiator,
    responder,
    hello: started.hello,
    accept: answered.accept,
    alice: started.session,
    bob: answered.session,
  };
}

function refusedWith(run: () => unknown, reason: PairwiseFailure, what: string = reason): void {
  assert.throws(run, (error) => error instanceof PairwiseError && error.reason === reason, what);
}

function text(bytes: Uint8Array): string {
  return fromUtf8(bytes);
}

Deno.test("handshake and round trips both ways; confirmation on each side", () => {
  const [initiator, responder] = pairOfMembers();
  const { session: alice, hello } = PairwiseSession.initiate(optionsFor(initiator, responder));
  assert.equal(pairwiseMessageKind(hello), "hello");
  assert.equal(hello.length, 1 + 32 + 1216 + 16);
  assert.equal(alice.established, false);
  refusedWith(() => alice.encrypt(utf8("too early")), "not-established");

  const { session: bob, accept } = PairwiseSession.accept({
    ...optionsFor(responder, initiator),
    hello,
  });
  assert.equal(pairwiseMessageKind(accept), "accept");
  assert.equal(accept.length, 1 + 1120 + 32 + 16);
  assert.equal(bob.established, true);
  assert.equal(bob.confirmed, false, "the responder has seen nothing fresh from the initiator yet");
  // The responder sends its first data message right after accept.
  const fromBob = bob.encrypt(utf8("bob's sender key"));
  refusedWith(() => alice.decrypt(fromBob), "not-established");

  alice.readAccept(accept);
  assert.equal(alice.established, true);
  assert.equal(alice.confirmed, true);
  assert.equal(text(alice.decrypt(fromBob).plaintext), "bob's sender key");

  const fromAlice = alice.encrypt(utf8("alice's sender key"));
  assert.equal(pairwiseMessageKind(fromAlice), "data");
  assert.equal(text(bob.decrypt(fromAlice).plaintext), "alice's sender key");
  assert.equal(bob.confirmed, true);
  for (let i = 0; i < 20; i++) {
    assert.equal(text(bob.decrypt(alice.encrypt(utf8(`a${i}`))).plaintext), `a${i}`);
    assert.equal(text(alice.decrypt(bob.encrypt(utf8(`b${i}`))).plaintext), `b${i}`);
  }
  // An empty plaintext is still a data message.
  assert.equal(bob.decrypt(alice.encrypt(new Uint8Array(0))).plaintext.length, 0);
});

Deno.test("the smaller presence key initiates; the other side cannot, and vice versa", () => {
  const [initiator, responder] = pairOfMembers();
  assert.equal(
    isPairwiseInitiator(initiator.presence.publicKey, responder.presence.publicKey),
    true,
  );
  assert.equal(
    isPairwiseInitiator(responder.presence.publicKey, initiator.presence.publicKey),
    false,
  );
  refusedWith(
    () => isPairwiseInitiator(initiator.presence.publicKey, initiator.presence.publicKey),
    "handshake-failed",
  );
  refusedWith(() => PairwiseSession.initiate(optionsFor(responder, initiator)), "handshake-failed");
  const { hello, session } = PairwiseSession.initiate(optionsFor(initiator, responder));
  refusedWith(
    () => PairwiseSession.accept({ ...optionsFor(initiator, responder), hello }),
    "handshake-failed",
  );
  const { session: bob, accept } = PairwiseSession.accept({
    ...optionsFor(responder, initiator),
    hello,
  });
  refusedWith(() => bob.readAccept(accept), "handshake-failed", "a responder reads no accept");
  session.readAccept(accept);
  refusedWith(() => session.readAccept(accept), "replayed", "one accept per hello");
});

Deno.test("replayed, duplicated and reordered data messages are refused; the session goes on", () => {
  const { alice, bob } = handshake();
  const messages = [0, 1, 2, 3].map((i) => alice.encrypt(utf8(`m${i}`)));
  assert.equal(bob.decrypt(messages[0]).skipped, 0);
  refusedWith(() => bob.decrypt(messages[0]), "replayed", "duplicate");
  const { plaintext, skipped } = bob.decrypt(messages[2]);
  assert.equal(text(plaintext), "m2");
  assert.equal(skipped, 1, "m1 is reported as never arrived");
  refusedWith(() => bob.decrypt(messages[1]), "replayed", "late (reordered)");
  refusedWith(() => bob.decrypt(messages[2]), "replayed", "replay");
  assert.equal(text(bob.decrypt(messages[3]).plaintext), "m3");
});

Deno.test("gaps are counted, up to the skip limit", () => {
  const { alice, bob } = handshake();
  const messages = Array.from(
    { length: MAX_PAIRWISE_SKIP + 8 },
    (_, i) => alice.encrypt(utf8(`${i}`)),
  );
  assert.equal(bob.decrypt(messages[5]).skipped, 5);
  refusedWith(() => bob.decrypt(messages[6 + MAX_PAIRWISE_SKIP + 1]), "too-far-ahead");
  const far = bob.decrypt(messages[6 + MAX_PAIRWISE_SKIP]);
  assert.equal(far.skipped, MAX_PAIRWISE_SKIP);
  assert.equal(text(far.plaintext), `${6 + MAX_PAIRWISE_SKIP}`);
});

Deno.test("a walk the step budget will not pay for is refused and changes nothing", () => {
  let tokens = 3;
  const asked: number[] = [];
  const budget = {
    take(steps: number) {
      asked.push(steps);
      if (steps > tokens) return false;
      tokens -= steps;
      return true;
    },
  };
  const { alice, bob } = handshake(budget);
  const messages = Array.from({ length: 10 }, (_, i) => alice.encrypt(utf8(`${i}`)));
  bob.decrypt(messages[0]); // no gap: free
  refusedWith(() => bob.decrypt(messages[5]), "over-budget"); // 4 steps > 3
  assert.equal(text(bob.decrypt(messages[4]).plaintext), "4"); // 3 steps: paid
  assert.deepEqual(asked, [4, 3]);
  assert.equal(text(bob.decrypt(messages[5]).plaintext), "5");
});

/** Positions to tamper with: every byte of the first and last 48, every 29th between. */
function positions(length: number): number[] {
  const out = new Set<number>();
  for (let i = 0; i < Math.min(48, length); i++) out.add(i);
  for (let i = 48; i < length - 48; i += 29) out.add(i);
  for (let i = Math.max(0, length - 48); i < length; i++) out.add(i);
  return [...out];
}

Deno.test("a tampered hello is refused at every tested byte position", () => {
  const [initiator, responder] = pairOfMembers();
  const { hello } = PairwiseSession.initiate(optionsFor(initiator, responder));
  for (const at of positions(hello.length)) {
    const bad = hello.slice();
    bad[at] ^= 0x04;
    assert.throws(
      () => PairwiseSession.accept({ ...optionsFor(responder, initiator), hello: bad }),
      (error) =>
        error instanceof PairwiseError &&
        error.reason === (at === 0 ? "malformed" : "handshake-failed"),
      `byte ${at}`,
    );
  }
});

Deno.test("a tampered accept is refused at every tested byte position, and ends that session", () => {
  const [initiator, responder] = pairOfMembers();
  for (const at of positions(1169)) {
    const { session, hello } = PairwiseSession.initiate(optionsFor(initiator, responder));
    const { accept } = PairwiseSession.accept({ ...optionsFor(responder, initiator), hello });
    const bad = accept.slice();
    bad[at] ^= 0x10;
    assert.throws(
      () => session.readAccept(bad),
      (error) =>
        error instanceof PairwiseError &&
        error.reason === (at === 0 ? "malformed" : "handshake-failed"),
      `byte ${at}`,
    );
    assert.equal(session.established, false);
    if (at !== 0) {
      refusedWith(() => session.readAccept(accept), "replayed", "the genuine one after");
    }
  }
});

Deno.test("tampered data is refused at every byte position, and the session is unchanged", () => {
  const { alice, bob } = handshake();
  const message = alice.encrypt(utf8("a direct text"));
  const next = alice.encrypt(utf8("the next one"));
  for (let at = 0; at < message.length; at++) {
    for (const bit of [0x01, 0x80]) {
      const bad = message.slice();
      bad[at] ^= bit;
      assert.throws(() => bob.decrypt(bad), PairwiseError, `byte ${at}`);
    }
  }
  refusedWith(() => bob.decrypt(message.subarray(0, 20)), "malformed");
  assert.equal(text(bob.decrypt(message).plaintext), "a direct text");
  assert.equal(bob.decrypt(next).skipped, 0);
});

Deno.test("a hello replayed to a new responder session never yields a confirmed session", () => {
  const { initiator, responder, hello, alice, bob } = handshake();
  const genuine = alice.encrypt(utf8("for the first session"));
  assert.equal(text(bob.decrypt(genuine).plaintext), "for the first session");
  // The relay replays the hello: the responder answers (it cannot tell yet) ...
  const replayed = PairwiseSession.accept({ ...optionsFor(responder, initiator), hello });
  const victim = replayed.session;
  assert.equal(victim.established, true);
  assert.equal(victim.confirmed, false);
  // ... but nobody can produce data for it: the initiator's ephemeral and KEM secrets are gone,
  refusedWith(() => victim.decrypt(genuine), "tampered", "data from the real session");
  refusedWith(() => victim.decrypt(alice.encrypt(utf8("again"))), "tampered", "new real data");
  const forged = concat(Uint8Array.of(3, 0, 0, 0, 0), crypto.getRandomValues(new Uint8Array(40)));
  refusedWith(() => victim.decrypt(forged), "tampered", "made-up data");
  assert.equal(victim.confirmed, false);
  // and the initiator refuses the second accept.
  refusedWith(() => alice.readAccept(replayed.accept), "replayed");
});

Deno.test("a different room, identity or presence key in either view fails the handshake", () => {
  const [initiator, responder] = pairOfMembers();
  const stranger = member();
  const { hello } = PairwiseSession.initiate(optionsFor(initiator, responder));
  const variants: [string, PairwiseSessionOptions][] = [
    ["room", optionsFor(responder, initiator, "dev")],
    ["initiator identity", {
      ...optionsFor(responder, initiator),
      remoteIdentityPublicKey: stranger.identity,
    }],
    ["responder identity", {
      ...optionsFor(responder, initiator),
      localIdentityPublicKey: stranger.identity,
    }],
    ["identities swapped", {
      ...optionsFor(responder, initiator),
      localIdentityPublicKey: initiator.identity,
      remoteIdentityPublicKey: responder.identity,
    }],
  ];
  for (const [what, options] of variants) {
    refusedWith(() => PairwiseSession.accept({ ...options, hello }), "handshake-failed", what);
  }
  // A responder that expects another initiator presence key (smaller than its own) fails too.
  let other = member();
  while (!isPairwiseInitiator(other.presence.publicKey, responder.presence.publicKey)) {
    other = member();
  }
  refusedWith(
    () =>
      PairwiseSession.accept({
        ...optionsFor(responder, initiator),
        remotePresencePublicKey: other.presence.publicKey,
        hello,
      }),
    "handshake-failed",
    "presence key",
  );
});

Deno.test("forward secrecy: after message N the session cannot open message N - 1", () => {
  const { alice, bob } = handshake();
  const messages = Array.from({ length: 6 }, (_, i) => alice.encrypt(utf8(`secret ${i}`)));
  for (const message of messages) bob.decrypt(message);
  // Its message key was deleted with the step; the state only moves forward.
  refusedWith(() => bob.decrypt(messages[5]), "replayed");
  refusedWith(() => bob.decrypt(messages[4]), "replayed");
  // Closing wipes the rest: nothing opens any more.
  bob.close();
  refusedWith(() => bob.decrypt(alice.encrypt(utf8("after close"))), "not-established");
  refusedWith(() => bob.encrypt(utf8("x")), "not-established");
});

/** The prologue exactly as PROTOCOL.md writes it. */
function documentedPrologue(room: string, initiator: Member, responder: Member): Uint8Array {
  const roomBytes = utf8(room);
  return concat(
    utf8("securechat/2 pairwise\0"),
    Uint8Array.of(roomBytes.length),
    roomBytes,
    initiator.identity,
    responder.identity,
  );
}

Deno.test("the psk matters: all X25519 secrets without the KEM secret open nothing", () => {
  const [initiator, responder] = pairOfMembers();
  const ephemeral = cryptoBackend.x25519KeyPair();
  const kem = xWing.keygen();
  // The initiator, driven by hand with a known ephemeral, exactly as PROTOCOL.md describes.
  const start = () =>
    new HandshakeState({
      protocolName: "Noise_KKpsk2_25519_ChaChaPoly_SHA256",
      initiator: true,
      prologue: documentedPrologue(ROOM, initiator, responder),
      staticKeyPair: initiator.presence,
      remoteStaticPublicKey: responder.presence.publicKey,
      ephemeralKeyPair: ephemeral,
      deferPsks: true,
    });
  const hello = concat(Uint8Array.of(1), start().writeMessage(kem.publicKey));
  const { session: bob, accept } = PairwiseSession.accept({
    ...optionsFor(responder, initiator),
    hello,
  });
  const secret = bob.encrypt(utf8("the launch code"));

  // An attacker who later learns every X25519 secret of the initiator (static and ephemeral;
  // with them ee, es, se and ss are all computable) replays the initiator's side.
  const cipherText = accept.subarray(1, 1121);
  const message2 = accept.subarray(1121);
  const attempt = (psk: Uint8Array): Uint8Array | undefined => {
    const replay = start();
    replay.writeMessage(kem.publicKey);
    replay.supplyPsk(psk);
    try {
      replay.readMessage(message2);
    } catch {
      return undefined;
    }
    const { responderToInitiator } = replay.splitKeys();
    const chain = new SymmetricChain({
      chainKey: responderToInitiator,
      info: utf8("securechat/2 pairwise message key"),
    });
    const key = chain.next();
    return cryptoBackend.open(key.key, key.nonce, secret.subarray(0, 5), secret.subarray(5));
  };
  // Without the ML-KEM part of the KEM secret, no psk works: zeros, a random one, or the
  // decapsulation under another X-Wing key.
  assert.equal(attempt(new Uint8Array(32)), undefined);
  assert.equal(attempt(crypto.getRandomValues(new Uint8Array(32))), undefined);
  assert.equal(attempt(xWing.decapsulate(cipherText, xWing.keygen().secretKey)), undefined);
  // With it, the same replay reads the data: the KEM secret is the only thing missing.
  const opened = attempt(xWing.decapsulate(cipherText, kem.secretKey));
  assert.equal(opened && text(opened), "the launch code");
});

Deno.test("malformed messages and error texts: kinds, lengths, no secrets in messages", () => {
  for (
    const bad of [
      new Uint8Array(0),
      Uint8Array.of(0),
      Uint8Array.of(4, 1, 2),
      new Uint8Array(1265), // kind 0
      Uint8Array.of(1, ...new Uint8Array(10)),
      concat(Uint8Array.of(2), new Uint8Array(1167)),
      Uint8Array.of(3, 0, 0, 0, 0, 1, 2, 3),
    ]
  ) {
    refusedWith(() => pairwiseMessageKind(bad), "malformed", `length ${bad.length}`);
  }
  const { alice, bob } = handshake();
  const plaintext = utf8("do not print me");
  const message = alice.encrypt(plaintext);
  const bad = message.slice();
  bad[bad.length - 1] ^= 1;
  try {
    bob.decrypt(bad);
    assert.fail("tampered data was accepted");
  } catch (error) {
    const text = (error as Error).message;
    assert.ok(!text.includes("do not print me"));
    assert.ok(!text.includes(toHex(message.subarray(5, 13))));
  }
  refusedWith(
    () => bob.decrypt(Uint8Array.from(alice.encrypt(plaintext).subarray(0, 1))),
    "malformed",
  );
});
