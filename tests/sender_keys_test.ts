import assert from "node:assert/strict";
import {
  createCipheriv,
  createHmac,
  createPrivateKey,
  hkdfSync,
  sign as nodeSign,
} from "node:crypto";
import { ed25519 } from "@noble/curves/ed25519.js";
import { ByteWriter, concat, toHex, utf8 } from "../lib/core/bytes.ts";
import {
  groupContext,
  GroupMessageError,
  type GroupMessageFailure,
  InboundSenderKey,
  MAX_SKIPPED_MESSAGES,
  OutboundSenderKey,
  peekGroupMessageHeader,
  type SenderKeyState,
  type SigningIdentity,
} from "../lib/e2e/sender_keys.ts";

function newIdentity(): SigningIdentity {
  const { secretKey, publicKey } = ed25519.keygen();
  return { secretKey, publicKey };
}

const ROOM = groupContext("lobby");

function assertRejects(fn: () => unknown, reason: GroupMessageFailure): GroupMessageError {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  if (!(caught instanceof GroupMessageError)) {
    throw new Error(`expected GroupMessageError(${reason}), got ${caught}`);
  }
  assert.equal(caught.reason, reason, caught.message);
  return caught;
}

function sameState(a: SenderKeyState, b: SenderKeyState): void {
  assert.equal(a.epoch, b.epoch);
  assert.equal(a.iteration, b.iteration);
  assert.deepEqual(a.chainKey, b.chainKey);
}

function hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array {
  return new Uint8Array(createHmac("sha256", key).update(data).digest());
}

/**
 * An independent implementation of the documented message format, built on
 * node:crypto only. It lets tests play a malicious member: anyone holding a
 * chain key can build a message for any iteration and sign it with any key.
 */
function buildMessage(options: {
  state: SenderKeyState;
  iteration: number;
  context: Uint8Array;
  plaintext: Uint8Array;
  signer: SigningIdentity;
  claimedSender?: Uint8Array;
  epoch?: number;
}): Uint8Array {
  const { state, iteration, context, plaintext, signer } = options;
  const epoch = options.epoch ?? state.epoch;
  let chainKey = state.chainKey;
  for (let i = state.iteration; i < iteration; i++) {
    chainKey = hmacSha256(chainKey, Uint8Array.of(2));
  }
  const messageKey = hmacSha256(chainKey, Uint8Array.of(1));
  const okm = new Uint8Array(
    hkdfSync("sha256", messageKey, new Uint8Array(0), "securechat/2 message key", 44),
  );
  const header = new ByteWriter().u8(2).u32(epoch).u32(iteration).finish().slice();
  const cipher = createCipheriv("chacha20-poly1305", okm.subarray(0, 32), okm.subarray(32), {
    authTagLength: 16,
  });
  cipher.setAAD(concat(context, header), { plaintextLength: plaintext.length });
  const ciphertext = concat(cipher.update(plaintext), cipher.final(), cipher.getAuthTag());
  const body = new ByteWriter().raw(header).u32(ciphertext.length).raw(ciphertext).finish();
  const signed = new ByteWriter()
    .raw(utf8("securechat/2 group message\0"))
    .bytes16(context)
    .raw(options.claimedSender ?? signer.publicKey)
    .raw(body)
    .finish();
  const pkcs8 = concat(
    Uint8Array.from([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70]),
    Uint8Array.from([0x04, 0x22, 0x04, 0x20]),
    signer.secretKey,
  );
  const key = createPrivateKey({ key: Buffer.from(pkcs8), format: "der", type: "pkcs8" });
  const signature = new Uint8Array(nodeSign(null, signed, key));
  return concat(body, signature);
}

Deno.test("the documented format, rebuilt with node:crypto, matches byte for byte", () => {
  const alice = newIdentity();
  const outbound = OutboundSenderKey.create({ identity: alice, epoch: 7 });
  const initial = outbound.exportState();
  for (let i = 0; i < 3; i++) {
    const plaintext = utf8(`message number ${i}`);
    const message = outbound.encrypt({ context: ROOM, plaintext });
    // Ed25519 is deterministic, so an independent encoder must produce identical bytes.
    const expected = buildMessage({
      state: initial,
      iteration: i,
      context: ROOM,
      plaintext,
      signer: alice,
    });
    assert.equal(toHex(message), toHex(expected));
    assert.deepEqual(peekGroupMessageHeader(message), { version: 2, epoch: 7, iteration: i });
  }
});

Deno.test("round trip across several members, in both directions", () => {
  const names = ["alice", "bob", "carol", "dave"];
  const members = names.map((name) => {
    const identity = newIdentity();
    return { name, identity, outbound: OutboundSenderKey.create({ identity, epoch: 1 }) };
  });
  // Each member holds an inbound key for every other member.
  const inbound = new Map<string, InboundSenderKey>();
  for (const sender of members) {
    const state = sender.outbound.exportState();
    for (const receiver of members) {
      if (receiver === sender) continue;
      inbound.set(
        `${receiver.name}<-${sender.name}`,
        new InboundSenderKey({ senderPublicKey: sender.identity.publicKey, state }),
      );
    }
  }
  for (let round = 0; round < 3; round++) {
    for (const sender of members) {
      const text = `${sender.name} says ${round} ✓ ünïcødé`;
      const message = sender.outbound.encrypt({ context: ROOM, plaintext: utf8(text) });
      for (const receiver of members) {
        if (receiver === sender) continue;
        const key = inbound.get(`${receiver.name}<-${sender.name}`)!;
        const result = key.decrypt({ context: ROOM, message });
        assert.equal(new TextDecoder().decode(result.plaintext), text);
        assert.equal(result.iteration, round);
        assert.equal(result.epoch, 1);
        assert.equal(result.skipped, 0);
      }
    }
  }
  // Empty plaintexts work too.
  const alice = members[0];
  const empty = alice.outbound.encrypt({ context: ROOM, plaintext: new Uint8Array(0) });
  assert.equal(
    inbound.get("bob<-alice")!.decrypt({ context: ROOM, message: empty }).plaintext.length,
    0,
  );
});

Deno.test("a relay-style observer sees neither plaintext nor key material", () => {
  const alice = newIdentity();
  const outbound = OutboundSenderKey.create({ identity: alice, epoch: 1 });
  const state = outbound.exportState();
  const secret = "attack at dawn; the password is hunter2";
  const message = outbound.encrypt({ context: ROOM, plaintext: utf8(secret) });
  const hex = toHex(message);
  // No 6-byte window of the plaintext appears anywhere in the wire bytes.
  const plain = utf8(secret);
  for (let i = 0; i + 6 <= plain.length; i++) {
    assert.ok(!hex.includes(toHex(plain.subarray(i, i + 6))), `plaintext leaks at offset ${i}`);
  }
  assert.ok(!hex.includes(toHex(state.chainKey.subarray(0, 8))), "chain key leaks");
  assert.ok(!hex.includes(toHex(alice.secretKey.subarray(0, 8))), "identity secret leaks");
  // Two identical plaintexts give unrelated ciphertexts (fresh key per message).
  const again = outbound.encrypt({ context: ROOM, plaintext: utf8(secret) });
  assert.notEqual(
    toHex(again.subarray(13, 13 + plain.length)),
    toHex(message.subarray(13, 13 + plain.length)),
  );
});

Deno.test("a member holding another's state cannot forge messages as that sender", () => {
  const alice = newIdentity();
  const mallory = newIdentity();
  const outbound = OutboundSenderKey.create({ identity: alice, epoch: 1 });
  const aliceState = outbound.exportState();
  // Mallory and Bob both received Alice's state.
  const bob = new InboundSenderKey({ senderPublicKey: alice.publicKey, state: aliceState });
  const before = bob.exportState();

  const plaintext = utf8("send the money to mallory");
  // Correct chain and AEAD, claimed to be from Alice, signed by Mallory.
  const forged = buildMessage({
    state: aliceState,
    iteration: 0,
    context: ROOM,
    plaintext,
    signer: mallory,
    claimedSender: alice.publicKey,
  });
  assertRejects(() => bob.decrypt({ context: ROOM, message: forged }), "forged");
  // Also signed honestly as Mallory: still not Alice.
  const honest = buildMessage({
    state: aliceState,
    iteration: 0,
    context: ROOM,
    plaintext,
    signer: mallory,
  });
  assertRejects(() => bob.decrypt({ context: ROOM, message: honest }), "forged");
  // Mallory's own sender key messages are not accepted on Alice's key either.
  const malloryOutbound = OutboundSenderKey.create({ identity: mallory, epoch: 1 });
  assertRejects(
    () =>
      bob.decrypt({
        context: ROOM,
        message: malloryOutbound.encrypt({ context: ROOM, plaintext }),
      }),
    "forged",
  );
  sameState(bob.exportState(), before);

  // Positive control: the same builder signing with Alice's key is accepted,
  // so the rejections above are due to the signature alone.
  const genuine = buildMessage({
    state: aliceState,
    iteration: 0,
    context: ROOM,
    plaintext,
    signer: alice,
  });
  assert.deepEqual(bob.decrypt({ context: ROOM, message: genuine }).plaintext, plaintext);
});

Deno.test("modifying any single byte is rejected without changing state", () => {
  const alice = newIdentity();
  const outbound = OutboundSenderKey.create({ identity: alice, epoch: 1 });
  const bob = new InboundSenderKey({
    senderPublicKey: alice.publicKey,
    state: outbound.exportState(),
  });
  const message = outbound.encrypt({ context: ROOM, plaintext: utf8("hello bob") });
  const before = bob.exportState();
  for (let i = 0; i < message.length; i++) {
    for (const flip of [0x01, 0x80]) {
      const tampered = message.slice();
      tampered[i] ^= flip;
      assert.throws(
        () => bob.decrypt({ context: ROOM, message: tampered }),
        (error: unknown) => error instanceof GroupMessageError,
        `byte ${i} flip ${flip} was accepted`,
      );
      sameState(bob.exportState(), before);
    }
  }
  // Truncation and extension are rejected too.
  assertRejects(
    () => bob.decrypt({ context: ROOM, message: message.subarray(0, message.length - 1) }),
    "malformed",
  );
  assertRejects(
    () => bob.decrypt({ context: ROOM, message: concat(message, Uint8Array.of(0)) }),
    "malformed",
  );
  sameState(bob.exportState(), before);
  // The genuine message still decrypts, and so does the next one.
  assert.equal(
    new TextDecoder().decode(bob.decrypt({ context: ROOM, message }).plaintext),
    "hello bob",
  );
  const next = outbound.encrypt({ context: ROOM, plaintext: utf8("again") });
  assert.equal(bob.decrypt({ context: ROOM, message: next }).iteration, 1);
});

Deno.test("a validly signed message that fails the AEAD is 'tampered' and spends its iteration", () => {
  const alice = newIdentity();
  const outbound = OutboundSenderKey.create({ identity: alice, epoch: 1 });
  const state = outbound.exportState();
  const bob = new InboundSenderKey({ senderPublicKey: alice.publicKey, state });
  const wrongChain = { ...state, chainKey: new Uint8Array(32).fill(9) };
  const bad = buildMessage({
    state: wrongChain,
    iteration: 2,
    context: ROOM,
    plaintext: utf8("x"),
    signer: alice,
  });
  assertRejects(() => bob.decrypt({ context: ROOM, message: bad }), "tampered");
  // Only the sender could sign it, so the walk is kept: a replay is refused without another walk.
  assert.equal(bob.iteration, 3);
  assertRejects(() => bob.decrypt({ context: ROOM, message: bad }), "replayed");
  for (let i = 0; i < 3; i++) outbound.encrypt({ context: ROOM, plaintext: utf8("passed") });
  const fourth = outbound.encrypt({ context: ROOM, plaintext: utf8("fourth") });
  assert.equal(bob.decrypt({ context: ROOM, message: fourth }).skipped, 0);
});

Deno.test("a forged or malformed message changes nothing", () => {
  const alice = newIdentity();
  const mallory = newIdentity();
  const outbound = OutboundSenderKey.create({ identity: alice, epoch: 1 });
  const state = outbound.exportState();
  const bob = new InboundSenderKey({ senderPublicKey: alice.publicKey, state });
  const forged = buildMessage({
    state,
    iteration: 5,
    context: ROOM,
    plaintext: utf8("x"),
    signer: mallory,
    claimedSender: alice.publicKey,
  });
  assertRejects(() => bob.decrypt({ context: ROOM, message: forged }), "forged");
  sameState(bob.exportState(), state);
});

Deno.test("a budget of skipped steps refuses a walk before doing it", () => {
  const alice = newIdentity();
  const outbound = OutboundSenderKey.create({ identity: alice, epoch: 1 });
  const state = outbound.exportState();
  const bob = new InboundSenderKey({ senderPublicKey: alice.publicKey, state });
  let left = 10;
  const budget = {
    take(steps: number) {
      if (steps > left) return false;
      left -= steps;
      return true;
    },
  };
  const ahead = buildMessage({
    state,
    iteration: 11,
    context: ROOM,
    plaintext: utf8("x"),
    signer: alice,
  });
  assertRejects(() => bob.decrypt({ context: ROOM, message: ahead, budget }), "over-budget");
  sameState(bob.exportState(), state);
  const near = buildMessage({
    state,
    iteration: 4,
    context: ROOM,
    plaintext: utf8("y"),
    signer: alice,
  });
  assert.equal(bob.decrypt({ context: ROOM, message: near, budget }).skipped, 4);
  assert.equal(left, 6);
  // In-order messages cost nothing.
  const next = buildMessage({
    state,
    iteration: 5,
    context: ROOM,
    plaintext: utf8("z"),
    signer: alice,
  });
  bob.decrypt({ context: ROOM, message: next, budget });
  assert.equal(left, 6);
});

Deno.test("a new epoch continues the iteration count", () => {
  const alice = newIdentity();
  const first = OutboundSenderKey.create({ identity: alice, epoch: 1 });
  for (let i = 0; i < 3; i++) first.encrypt({ context: ROOM, plaintext: utf8("m") });
  const second = OutboundSenderKey.create({
    identity: alice,
    epoch: 2,
    iteration: first.iteration,
  });
  assert.deepEqual([second.epoch, second.iteration], [2, 3]);
  const message = second.encrypt({ context: ROOM, plaintext: utf8("m") });
  assert.deepEqual(peekGroupMessageHeader(message), { version: 2, epoch: 2, iteration: 3 });
  // The last usable iteration is 2^32 - 2; past it the count starts again.
  const wrapped = OutboundSenderKey.create({ identity: alice, epoch: 3, iteration: 2 ** 32 - 1 });
  assert.equal(wrapped.iteration, 0);
});

Deno.test("replays and duplicates are rejected", () => {
  const alice = newIdentity();
  const outbound = OutboundSenderKey.create({ identity: alice, epoch: 1 });
  const bob = new InboundSenderKey({
    senderPublicKey: alice.publicKey,
    state: outbound.exportState(),
  });
  const m0 = outbound.encrypt({ context: ROOM, plaintext: utf8("zero") });
  const m1 = outbound.encrypt({ context: ROOM, plaintext: utf8("one") });
  bob.decrypt({ context: ROOM, message: m0 });
  assertRejects(() => bob.decrypt({ context: ROOM, message: m0 }), "replayed");
  bob.decrypt({ context: ROOM, message: m1 });
  assertRejects(() => bob.decrypt({ context: ROOM, message: m1 }), "replayed");
  assertRejects(() => bob.decrypt({ context: ROOM, message: m0 }), "replayed");
  assert.equal(bob.iteration, 2);
});

Deno.test("reordering: after message 2, message 1 is rejected", () => {
  const alice = newIdentity();
  const outbound = OutboundSenderKey.create({ identity: alice, epoch: 1 });
  const bob = new InboundSenderKey({
    senderPublicKey: alice.publicKey,
    state: outbound.exportState(),
  });
  const m0 = outbound.encrypt({ context: ROOM, plaintext: utf8("zero") });
  const m1 = outbound.encrypt({ context: ROOM, plaintext: utf8("one") });
  const m2 = outbound.encrypt({ context: ROOM, plaintext: utf8("two") });
  bob.decrypt({ context: ROOM, message: m0 });
  const result = bob.decrypt({ context: ROOM, message: m2 });
  assert.equal(new TextDecoder().decode(result.plaintext), "two");
  assert.equal(result.skipped, 1);
  assertRejects(() => bob.decrypt({ context: ROOM, message: m1 }), "replayed");
});

Deno.test("gaps are reported as skipped and bounded", () => {
  const alice = newIdentity();
  const outbound = OutboundSenderKey.create({ identity: alice, epoch: 1 });
  const state = outbound.exportState();
  const bob = new InboundSenderKey({ senderPublicKey: alice.publicKey, state });
  const messages = Array.from(
    { length: 5 },
    (_, i) => outbound.encrypt({ context: ROOM, plaintext: utf8(`m${i}`) }),
  );
  assert.equal(bob.decrypt({ context: ROOM, message: messages[0] }).skipped, 0);
  const result = bob.decrypt({ context: ROOM, message: messages[4] });
  assert.equal(result.skipped, 3);
  assert.equal(result.iteration, 4);
  assert.equal(new TextDecoder().decode(result.plaintext), "m4");

  // Exactly the bound is bridged; one more is refused without a state change.
  const carol = new InboundSenderKey({ senderPublicKey: alice.publicKey, state });
  const plaintext = utf8("far");
  const tooFar = buildMessage({
    state,
    iteration: MAX_SKIPPED_MESSAGES + 1,
    context: ROOM,
    plaintext,
    signer: alice,
  });
  assertRejects(() => carol.decrypt({ context: ROOM, message: tooFar }), "too-far-ahead");
  sameState(carol.exportState(), state);
  const atBound = buildMessage({
    state,
    iteration: MAX_SKIPPED_MESSAGES,
    context: ROOM,
    plaintext,
    signer: alice,
  });
  assert.equal(carol.decrypt({ context: ROOM, message: atBound }).skipped, MAX_SKIPPED_MESSAGES);
});

Deno.test("forward secrecy: a stolen current state cannot decrypt earlier messages", () => {
  const alice = newIdentity();
  const outbound = OutboundSenderKey.create({ identity: alice, epoch: 1 });
  const bob = new InboundSenderKey({
    senderPublicKey: alice.publicKey,
    state: outbound.exportState(),
  });
  const captured = Array.from(
    { length: 4 },
    (_, i) => outbound.encrypt({ context: ROOM, plaintext: utf8(`secret ${i}`) }),
  );
  for (const message of captured) bob.decrypt({ context: ROOM, message });

  for (const stolen of [bob.exportState(), outbound.exportState()]) {
    assert.equal(stolen.iteration, 4);
    // As given, the state refuses older iterations.
    const thief = new InboundSenderKey({ senderPublicKey: alice.publicKey, state: stolen });
    assertRejects(() => thief.decrypt({ context: ROOM, message: captured[3] }), "replayed");
    // Rewinding the iteration number does not help: the chain key only runs forward,
    // so the derived message key is wrong and the AEAD fails.
    for (let j = 0; j < captured.length; j++) {
      const rewound = new InboundSenderKey({
        senderPublicKey: alice.publicKey,
        state: { ...stolen, iteration: j },
      });
      assertRejects(() => rewound.decrypt({ context: ROOM, message: captured[j] }), "tampered");
    }
  }
  // The stolen state does read what comes next (that is what rekeying is for).
  const thief = new InboundSenderKey({
    senderPublicKey: alice.publicKey,
    state: bob.exportState(),
  });
  const later = outbound.encrypt({ context: ROOM, plaintext: utf8("later") });
  assert.equal(
    new TextDecoder().decode(thief.decrypt({ context: ROOM, message: later }).plaintext),
    "later",
  );
});

Deno.test("a newcomer given the state at iteration n cannot read iterations below n", () => {
  const alice = newIdentity();
  const outbound = OutboundSenderKey.create({ identity: alice, epoch: 1 });
  const history = Array.from(
    { length: 3 },
    (_, i) => outbound.encrypt({ context: ROOM, plaintext: utf8(`old ${i}`) }),
  );
  const newcomerState = outbound.exportState();
  assert.equal(newcomerState.iteration, 3);
  const newcomer = new InboundSenderKey({ senderPublicKey: alice.publicKey, state: newcomerState });
  for (const message of history) {
    assertRejects(() => newcomer.decrypt({ context: ROOM, message }), "replayed");
  }
  for (let j = 0; j < history.length; j++) {
    const rewound = new InboundSenderKey({
      senderPublicKey: alice.publicKey,
      state: { ...newcomerState, iteration: j },
    });
    assertRejects(() => rewound.decrypt({ context: ROOM, message: history[j] }), "tampered");
  }
  const fresh = outbound.encrypt({ context: ROOM, plaintext: utf8("welcome") });
  assert.equal(newcomer.decrypt({ context: ROOM, message: fresh }).skipped, 0);
});

Deno.test("rekey: a member holding epoch 1 cannot read epoch 2", () => {
  const alice = newIdentity();
  const epoch1 = OutboundSenderKey.create({ identity: alice, epoch: 1 });
  const removed = new InboundSenderKey({
    senderPublicKey: alice.publicKey,
    state: epoch1.exportState(),
  });
  const epoch2 = OutboundSenderKey.create({ identity: alice, epoch: 2 });
  const stays = new InboundSenderKey({
    senderPublicKey: alice.publicKey,
    state: epoch2.exportState(),
  });
  const message = epoch2.encrypt({ context: ROOM, plaintext: utf8("after the rekey") });
  assertRejects(() => removed.decrypt({ context: ROOM, message }), "wrong-epoch");
  // Relabelling the old state as epoch 2 does not help: the chain is unrelated.
  const relabelled = new InboundSenderKey({
    senderPublicKey: alice.publicKey,
    state: { ...epoch1.exportState(), epoch: 2 },
  });
  assertRejects(() => relabelled.decrypt({ context: ROOM, message }), "tampered");
  assert.equal(
    new TextDecoder().decode(stays.decrypt({ context: ROOM, message }).plaintext),
    "after the rekey",
  );
  // And old-epoch messages are refused by the new key.
  const old = epoch1.encrypt({ context: ROOM, plaintext: utf8("before") });
  assertRejects(() => stays.decrypt({ context: ROOM, message: old }), "wrong-epoch");
});

Deno.test("a message for one room is rejected in another", () => {
  const alice = newIdentity();
  const outbound = OutboundSenderKey.create({ identity: alice, epoch: 1 });
  const state = outbound.exportState();
  const bob = new InboundSenderKey({ senderPublicKey: alice.publicKey, state });
  const message = outbound.encrypt({ context: groupContext("lobby"), plaintext: utf8("hi") });
  assertRejects(() => bob.decrypt({ context: groupContext("lobby2"), message }), "forged");
  assertRejects(() => bob.decrypt({ context: groupContext("Lobby"), message }), "forged");
  assertRejects(() => bob.decrypt({ context: new Uint8Array(0), message }), "forged");
  sameState(bob.exportState(), state);
  assert.equal(bob.decrypt({ context: groupContext("lobby"), message }).iteration, 0);
});

Deno.test("malformed input is rejected with reason 'malformed'", () => {
  const alice = newIdentity();
  const outbound = OutboundSenderKey.create({ identity: alice, epoch: 1 });
  const bob = new InboundSenderKey({
    senderPublicKey: alice.publicKey,
    state: outbound.exportState(),
  });
  const message = outbound.encrypt({ context: ROOM, plaintext: utf8("hi") });
  const cases: Uint8Array[] = [
    new Uint8Array(0),
    message.subarray(0, 20),
    Uint8Array.from([1, ...message.subarray(1)]), // protocol 1's version
    Uint8Array.from([3, ...message.subarray(1)]), // unknown version
  ];
  const badLength = message.slice();
  badLength[12] ^= 1;
  cases.push(badLength);
  const lastIteration = message.slice();
  lastIteration.fill(0xff, 5, 9);
  cases.push(lastIteration);
  for (const bytes of cases) {
    assertRejects(() => bob.decrypt({ context: ROOM, message: bytes }), "malformed");
    assertRejects(() => peekGroupMessageHeader(bytes), "malformed");
  }
});

Deno.test("error messages carry no plaintext or key material", () => {
  const alice = newIdentity();
  const outbound = OutboundSenderKey.create({ identity: alice, epoch: 1 });
  const state = outbound.exportState();
  const bob = new InboundSenderKey({ senderPublicKey: alice.publicKey, state });
  const secret = "TOPSECRETPLAINTEXT";
  const m0 = outbound.encrypt({ context: ROOM, plaintext: utf8(secret) });
  bob.decrypt({ context: ROOM, message: m0 });
  const errors = [
    assertRejects(() => bob.decrypt({ context: ROOM, message: m0 }), "replayed"),
    assertRejects(() => bob.decrypt({ context: groupContext("x"), message: m0 }), "forged"),
  ];
  const bad = buildMessage({
    state: { ...state, chainKey: new Uint8Array(32) },
    iteration: 1,
    context: ROOM,
    plaintext: utf8(secret),
    signer: alice,
  });
  errors.push(assertRejects(() => bob.decrypt({ context: ROOM, message: bad }), "tampered"));
  for (const error of errors) {
    assert.ok(!error.message.includes(secret));
    assert.ok(!error.message.includes(toHex(state.chainKey).slice(0, 8)));
    assert.ok(error.message.length > 10);
  }
});

Deno.test("create and constructor validate their input", () => {
  const alice = newIdentity();
  const bob = newIdentity();
  assert.throws(() => OutboundSenderKey.create({ identity: alice, epoch: -1 }), RangeError);
  assert.throws(() => OutboundSenderKey.create({ identity: alice, epoch: 2 ** 32 }), RangeError);
  assert.throws(
    () =>
      OutboundSenderKey.create({
        identity: { secretKey: alice.secretKey, publicKey: bob.publicKey },
        epoch: 1,
      }),
    TypeError,
  );
  const state = OutboundSenderKey.create({ identity: alice, epoch: 1 }).exportState();
  assert.throws(
    () =>
      new InboundSenderKey({
        senderPublicKey: alice.publicKey,
        state: { ...state, chainKey: new Uint8Array(31) },
      }),
    TypeError,
  );
  assert.throws(
    () =>
      new InboundSenderKey({
        senderPublicKey: alice.publicKey,
        state: { ...state, iteration: 1.5 },
      }),
    RangeError,
  );
  // exportState returns copies: mutating them does not affect the key.
  const outbound = OutboundSenderKey.create({ identity: alice, epoch: 1 });
  const exported = outbound.exportState();
  const inbound = new InboundSenderKey({ senderPublicKey: alice.publicKey, state: exported });
  outbound.exportState().chainKey.fill(0);
  exported.chainKey.fill(0);
  const message = outbound.encrypt({ context: ROOM, plaintext: utf8("still fine") });
  assert.equal(inbound.decrypt({ context: ROOM, message }).iteration, 0);
});
