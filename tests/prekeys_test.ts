/**
 * lib/e2e/prekeys.ts and lib/e2e/prekey_envelope.ts: signed and one-time
 * prekeys, bundles, the prekey envelope, and the rotation schedule.
 */

import assert from "node:assert/strict";
import { concat, fromUtf8, utf8 } from "../lib/core/bytes.ts";
import { cryptoBackend } from "../lib/crypto/crypto_backend.ts";
import { generateIdentity, type Identity } from "../lib/identity/identity.ts";
import {
  encodePrekeyBundle,
  generateOneTimePrekeys,
  generatePrekey,
  ONE_TIME_PREKEY_BATCH,
  PREKEY_LENGTH,
  type PrekeyBundle,
  PrekeyError,
  type PrekeyFailure,
  prekeyMaintenance,
  SIGNED_PREKEY_RETENTION_MS,
  SIGNED_PREKEY_ROTATION_MS,
  verifyPrekey,
  verifyPrekeyBundle,
} from "../lib/e2e/prekeys.ts";
import {
  MemoryPrekeyStore,
  openPrekeyEnvelope,
  peekPrekeyEnvelope,
  sealPrekeyEnvelope,
} from "../lib/e2e/prekey_envelope.ts";

const ROOM = "ops";
const NOW = 1_760_000_000_000;
const DAY = 24 * 60 * 60 * 1000;

function refusedWith(run: () => unknown, reason: PrekeyFailure, what: string = reason): void {
  assert.throws(run, (error) => error instanceof PrekeyError && error.reason === reason, what);
}

/** A recipient with a signed prekey (id 1), three one-time prekeys (ids 10..12) and their secrets. */
function recipient() {
  const identity = generateIdentity();
  const secrets = new MemoryPrekeyStore();
  const signed = generatePrekey({ identity, kind: "signed", id: 1, created: NOW });
  secrets.addSignedPrekey(1, signed.secretKey);
  const oneTime = generateOneTimePrekeys({ identity, firstId: 10, count: 3, created: NOW });
  for (const { id, secretKey } of oneTime) secrets.addOneTimePrekey(id, secretKey);
  return { identity, secrets, signed, oneTime };
}

function bundleOf(identity: Identity, signed: Uint8Array, oneTime?: Uint8Array): PrekeyBundle {
  return verifyPrekeyBundle({
    identityPublicKey: identity.publicKey,
    bundle: encodePrekeyBundle({ signedPrekey: signed, oneTimePrekey: oneTime }),
  });
}

Deno.test("prekeys: generated, signed, verified; ids, kinds and times round-trip", () => {
  const identity = generateIdentity();
  const { record, secretKey } = generatePrekey({ identity, kind: "signed", id: 7, created: NOW });
  assert.equal(record.length, PREKEY_LENGTH);
  assert.equal(secretKey.length, 32);
  const prekey = verifyPrekey({ identityPublicKey: identity.publicKey, kind: "signed", record });
  assert.deepEqual({ kind: prekey.kind, id: prekey.id, created: prekey.created }, {
    kind: "signed",
    id: 7,
    created: NOW,
  });
  assert.equal(prekey.publicKey.length, 1216);
  const batch = generateOneTimePrekeys({ identity, firstId: 100, count: 4, created: NOW });
  assert.deepEqual(batch.map((p) => p.id), [100, 101, 102, 103]);
  for (const { id, record } of batch) {
    assert.equal(
      verifyPrekey({ identityPublicKey: identity.publicKey, kind: "one-time", record }).id,
      id,
    );
  }
  assert.throws(
    () => generatePrekey({ identity, kind: "signed", id: -1, created: NOW }),
    RangeError,
  );
  assert.throws(
    () => generatePrekey({ identity, kind: "signed", id: 1, created: 2 ** 53 }),
    RangeError,
  );
});

Deno.test("prekeys: another signer, another kind, or any altered byte is refused", () => {
  const identity = generateIdentity();
  const other = generateIdentity();
  const { record } = generatePrekey({ identity, kind: "one-time", id: 3, created: NOW });
  refusedWith(
    () => verifyPrekey({ identityPublicKey: other.publicKey, kind: "one-time", record }),
    "forged",
    "signed by someone else",
  );
  refusedWith(
    () => verifyPrekey({ identityPublicKey: identity.publicKey, kind: "signed", record }),
    "malformed",
    "a one-time prekey presented as the signed one",
  );
  // Re-labelled as signed: the kind byte is covered, and the domain differs.
  const relabelled = record.slice();
  relabelled[0] = 1;
  refusedWith(
    () =>
      verifyPrekey({ identityPublicKey: identity.publicKey, kind: "signed", record: relabelled }),
    "forged",
  );
  for (const at of [1, 4, 5, 12, 13, 700, 1228, 1229, 1292]) {
    const bad = record.slice();
    bad[at] ^= 0x01;
    // The top byte of the time makes it exceed 2^53 - 1: malformed before the signature is checked.
    refusedWith(
      () => verifyPrekey({ identityPublicKey: identity.publicKey, kind: "one-time", record: bad }),
      at === 5 ? "malformed" : "forged",
      `byte ${at}`,
    );
  }
  refusedWith(
    () =>
      verifyPrekey({
        identityPublicKey: identity.publicKey,
        kind: "one-time",
        record: record.subarray(1),
      }),
    "malformed",
  );
});

Deno.test("bundles: with and without a one-time prekey; a swapped one-time prekey is refused", () => {
  const { identity, signed, oneTime } = recipient();
  const full = bundleOf(identity, signed.record, oneTime[0].record);
  assert.equal(full.signedPrekey.id, 1);
  assert.equal(full.oneTimePrekey?.id, 10);
  assert.equal(bundleOf(identity, signed.record).oneTimePrekey, undefined);
  // The relay swaps in a one-time prekey of another identity (whose secret it may know).
  const mallory = generateIdentity();
  const foreign = generatePrekey({ identity: mallory, kind: "one-time", id: 10, created: NOW });
  refusedWith(
    () =>
      verifyPrekeyBundle({
        identityPublicKey: identity.publicKey,
        bundle: encodePrekeyBundle({ signedPrekey: signed.record, oneTimePrekey: foreign.record }),
      }),
    "forged",
  );
  // ... or renumbers a genuine one.
  const renumbered = oneTime[1].record.slice();
  renumbered[4] = 10;
  refusedWith(
    () =>
      verifyPrekeyBundle({
        identityPublicKey: identity.publicKey,
        bundle: encodePrekeyBundle({ signedPrekey: signed.record, oneTimePrekey: renumbered }),
      }),
    "forged",
  );
  const bytes = encodePrekeyBundle({
    signedPrekey: signed.record,
    oneTimePrekey: oneTime[0].record,
  });
  for (
    const bad of [
      bytes.subarray(0, 1293),
      bytes.subarray(0, 1294),
      Uint8Array.of(...bytes.subarray(0, 1293), 2),
    ]
  ) {
    refusedWith(
      () => verifyPrekeyBundle({ identityPublicKey: identity.publicKey, bundle: bad }),
      "malformed",
    );
  }
});

Deno.test("envelope to a one-time prekey: opens once, the secret is deleted, a replay is refused", () => {
  const bob = recipient();
  const alice = generateIdentity();
  const bundle = bundleOf(bob.identity, bob.signed.record, bob.oneTime[0].record);
  const envelope = sealPrekeyEnvelope({
    room: ROOM,
    sender: alice,
    recipientIdentityPublicKey: bob.identity.publicKey,
    bundle,
    content: utf8("alice's sender key"),
  });
  assert.deepEqual(peekPrekeyEnvelope(envelope), { signedPrekeyId: 1, oneTimePrekeyId: 10 });
  const open = () =>
    openPrekeyEnvelope({
      room: ROOM,
      recipientIdentityPublicKey: bob.identity.publicKey,
      senderIdentityPublicKey: alice.publicKey,
      envelope,
      secrets: bob.secrets,
    });
  const opened = open();
  assert.equal(fromUtf8(opened.content), "alice's sender key");
  assert.equal(opened.oneTimePrekeyId, 10);
  assert.equal(bob.secrets.oneTimePrekeySecret(10), undefined, "deleted after use");
  assert.equal(bob.secrets.oneTimePrekeyCount, 2);
  refusedWith(open, "replayed");
  // The relay hands the same one-time prekey to a second sender: that envelope cannot open either.
  const carol = generateIdentity();
  const second = sealPrekeyEnvelope({
    room: ROOM,
    sender: carol,
    recipientIdentityPublicKey: bob.identity.publicKey,
    bundle,
    content: utf8("carol's sender key"),
  });
  refusedWith(
    () =>
      openPrekeyEnvelope({
        room: ROOM,
        recipientIdentityPublicKey: bob.identity.publicKey,
        senderIdentityPublicKey: carol.publicKey,
        envelope: second,
        secrets: bob.secrets,
      }),
    "replayed",
  );
});

Deno.test("envelope to the signed prekey: digest remembered, replay refused, gone after deletion", () => {
  const bob = recipient();
  const alice = generateIdentity();
  const bundle = bundleOf(bob.identity, bob.signed.record);
  const seal = (text: string) =>
    sealPrekeyEnvelope({
      room: ROOM,
      sender: alice,
      recipientIdentityPublicKey: bob.identity.publicKey,
      bundle,
      content: utf8(text),
    });
  const open = (envelope: Uint8Array) =>
    openPrekeyEnvelope({
      room: ROOM,
      recipientIdentityPublicKey: bob.identity.publicKey,
      senderIdentityPublicKey: alice.publicKey,
      envelope,
      secrets: bob.secrets,
    });
  const first = seal("one");
  const second = seal("two");
  assert.deepEqual(peekPrekeyEnvelope(first), { signedPrekeyId: 1 });
  assert.equal(fromUtf8(open(first).content), "one");
  refusedWith(() => open(first), "replayed");
  assert.equal(fromUtf8(open(second).content), "two");
  assert.equal(bob.secrets.oneTimePrekeyCount, 3, "one-time prekeys untouched");
  bob.secrets.deleteSignedPrekey(1);
  refusedWith(() => open(seal("three")), "unknown-prekey");
});

Deno.test("envelope: wrong recipient, wrong room, another signer: refused, nothing consumed", () => {
  const bob = recipient();
  const dave = recipient();
  const alice = generateIdentity();
  const mallory = generateIdentity();
  const bundle = bundleOf(bob.identity, bob.signed.record, bob.oneTime[0].record);
  const envelope = sealPrekeyEnvelope({
    room: ROOM,
    sender: alice,
    recipientIdentityPublicKey: bob.identity.publicKey,
    bundle,
    content: utf8("for bob"),
  });
  const attempt = (options: {
    room?: string;
    recipient?: ReturnType<typeof recipient>;
    sender?: Uint8Array;
    envelope?: Uint8Array;
  }) =>
    openPrekeyEnvelope({
      room: options.room ?? ROOM,
      recipientIdentityPublicKey: (options.recipient ?? bob).identity.publicKey,
      senderIdentityPublicKey: options.sender ?? alice.publicKey,
      envelope: options.envelope ?? envelope,
      secrets: (options.recipient ?? bob).secrets,
    });
  refusedWith(() => attempt({ recipient: dave }), "forged", "wrong recipient");
  refusedWith(() => attempt({ room: "dev" }), "forged", "wrong room");
  refusedWith(() => attempt({ sender: mallory.publicKey }), "forged", "claimed by another sender");
  // Mallory re-signs Alice's envelope as her own (signed bytes exactly as PROTOCOL.md writes them):
  // the signature holds, but the keys are bound to the sender's identity, so it does not open.
  const body = envelope.subarray(0, envelope.length - 64);
  const signed = concat(
    utf8("securechat/2 prekey envelope\0"),
    Uint8Array.of(ROOM.length),
    utf8(ROOM),
    bob.identity.publicKey,
    body,
  );
  const resigned = concat(body, cryptoBackend.ed25519Sign(mallory.secretKey, signed));
  refusedWith(
    () => attempt({ sender: mallory.publicKey, envelope: resigned }),
    "tampered",
    "re-signed",
  );
  assert.ok(
    bob.secrets.oneTimePrekeySecret(10) !== undefined,
    "no refusal consumed the one-time prekey",
  );
  assert.equal(fromUtf8(attempt({}).content), "for bob");
});

Deno.test("envelope: a tampered byte anywhere is refused and consumes nothing", () => {
  const bob = recipient();
  const alice = generateIdentity();
  const bundle = bundleOf(bob.identity, bob.signed.record, bob.oneTime[1].record);
  const envelope = sealPrekeyEnvelope({
    room: ROOM,
    sender: alice,
    recipientIdentityPublicKey: bob.identity.publicKey,
    bundle,
    content: utf8("sender key bytes"),
  });
  const positions = new Set<number>();
  for (let i = 0; i < 40; i++) positions.add(i);
  for (let i = 40; i < envelope.length - 100; i += 31) positions.add(i);
  for (let i = envelope.length - 100; i < envelope.length; i++) positions.add(i);
  for (const at of positions) {
    const bad = envelope.slice();
    bad[at] ^= 0x02;
    assert.throws(
      () =>
        openPrekeyEnvelope({
          room: ROOM,
          recipientIdentityPublicKey: bob.identity.publicKey,
          senderIdentityPublicKey: alice.publicKey,
          envelope: bad,
          secrets: bob.secrets,
        }),
      (error) => error instanceof PrekeyError && ["malformed", "forged"].includes(error.reason),
      `byte ${at}`,
    );
  }
  refusedWith(() => peekPrekeyEnvelope(envelope.subarray(0, 100)), "malformed");
  assert.ok(bob.secrets.oneTimePrekeySecret(11) !== undefined);
});

Deno.test("the rotation schedule: 7-day signed prekeys kept 14 days after replacement, one-time top-up", () => {
  assert.deepEqual(prekeyMaintenance({ now: NOW, signedPrekeys: [], oneTimePrekeysOnRelay: 0 }), {
    rotateSignedPrekey: true,
    deleteSignedPrekeys: [],
    oneTimePrekeysToAdd: ONE_TIME_PREKEY_BATCH,
  });
  const fresh = {
    now: NOW + DAY,
    signedPrekeys: [{ id: 1, created: NOW }],
    oneTimePrekeysOnRelay: 20,
  };
  assert.deepEqual(prekeyMaintenance(fresh), {
    rotateSignedPrekey: false,
    deleteSignedPrekeys: [],
    oneTimePrekeysToAdd: 0,
  });
  assert.equal(prekeyMaintenance({ ...fresh, oneTimePrekeysOnRelay: 19 }).oneTimePrekeysToAdd, 81);
  assert.equal(
    prekeyMaintenance({ ...fresh, now: NOW + SIGNED_PREKEY_ROTATION_MS }).rotateSignedPrekey,
    true,
  );
  // Prekey 1 was replaced by 2 at NOW + 7 days: kept until 14 days after that.
  const replaced = [{ id: 2, created: NOW + SIGNED_PREKEY_ROTATION_MS }, { id: 1, created: NOW }];
  const at = (now: number) =>
    prekeyMaintenance({ now, signedPrekeys: replaced, oneTimePrekeysOnRelay: 50 });
  assert.deepEqual(
    at(NOW + SIGNED_PREKEY_ROTATION_MS + SIGNED_PREKEY_RETENTION_MS - 1).deleteSignedPrekeys,
    [],
  );
  assert.deepEqual(
    at(NOW + SIGNED_PREKEY_ROTATION_MS + SIGNED_PREKEY_RETENTION_MS).deleteSignedPrekeys,
    [1],
  );
});
