import assert from "node:assert/strict";
import { ed25519 } from "@noble/curves/ed25519.js";
import { x25519 } from "@noble/curves/ed25519.js";
import { ByteReader, ByteWriter, concat, toHex, utf8 } from "../lib/core/bytes.ts";
import {
  type Announcement,
  AnnouncementError,
  type AnnouncementFailure,
  signAnnouncement,
  validateNick,
  validateRoom,
  verifyAnnouncement,
} from "../lib/e2e/announcement.ts";
import type { SigningIdentity } from "../lib/e2e/sender_keys.ts";

function newIdentity(): SigningIdentity {
  const { secretKey, publicKey } = ed25519.keygen();
  return { secretKey, publicKey };
}

function sample(overrides: Partial<Announcement> = {}): Announcement {
  return {
    room: "lobby",
    nick: "alice",
    pairwisePublicKey: x25519.keygen().publicKey,
    time: 1_700_000_000_123,
    ...overrides,
  };
}

function assertRejects(fn: () => unknown, reason: AnnouncementFailure): void {
  assert.throws(fn, (error: unknown) => {
    if (!(error instanceof AnnouncementError)) {
      throw new Error(`expected AnnouncementError, got ${error}`);
    }
    assert.equal(error.reason, reason, error.message);
    return true;
  });
}

Deno.test("announcement round trip, with the documented layout", () => {
  const identity = newIdentity();
  const announcement = sample({ room: "café ops", nick: "ålice" });
  const bytes = signAnnouncement({ identity, announcement });
  assert.deepEqual(
    verifyAnnouncement({ identityPublicKey: identity.publicKey, bytes }),
    announcement,
  );

  // Decode by hand: version | string8 room | string8 nick | 32 key | u64 time | 64 signature.
  const reader = new ByteReader(bytes);
  assert.equal(reader.u8(), 2);
  assert.equal(reader.string8(), "café ops");
  assert.equal(reader.string8(), "ålice");
  assert.deepEqual(reader.raw(32), announcement.pairwisePublicKey);
  assert.equal(reader.u64(), announcement.time);
  const signature = reader.raw(64);
  reader.end();
  const signed = concat(
    utf8("securechat/2 announcement\0"),
    identity.publicKey,
    bytes.subarray(0, bytes.length - 64),
  );
  assert.ok(ed25519.verify(signature, signed, identity.publicKey));
});

Deno.test("modifying any single byte of an announcement is rejected", () => {
  const identity = newIdentity();
  const bytes = signAnnouncement({ identity, announcement: sample() });
  for (let i = 0; i < bytes.length; i++) {
    const tampered = bytes.slice();
    tampered[i] ^= 0x01;
    assert.throws(
      () => verifyAnnouncement({ identityPublicKey: identity.publicKey, bytes: tampered }),
      AnnouncementError,
      `byte ${i} was accepted`,
    );
  }
  assertRejects(
    () =>
      verifyAnnouncement({ identityPublicKey: identity.publicKey, bytes: bytes.subarray(0, 50) }),
    "malformed",
  );
  assertRejects(
    () =>
      verifyAnnouncement({
        identityPublicKey: identity.publicKey,
        bytes: concat(bytes, Uint8Array.of(0)),
      }),
    "malformed",
  );
});

Deno.test("an announcement cannot be attributed to another identity", () => {
  const alice = newIdentity();
  const mallory = newIdentity();
  const bytes = signAnnouncement({ identity: alice, announcement: sample() });
  assertRejects(
    () => verifyAnnouncement({ identityPublicKey: mallory.publicKey, bytes }),
    "forged",
  );
});

Deno.test("the relay cannot forge or swap nicks, rooms or pairwise keys", () => {
  const alice = newIdentity();
  const bob = newIdentity();
  const mallory = newIdentity();
  const aliceBytes = signAnnouncement({ identity: alice, announcement: sample({ nick: "alice" }) });
  const bobBytes = signAnnouncement({ identity: bob, announcement: sample({ nick: "bob" }) });

  // Swap the nick field: re-encode Alice's body with nick "bob", keep her signature.
  const rewrite = (bytes: Uint8Array, change: Partial<Announcement>): Uint8Array => {
    const decoded = verifyAnnouncement({
      identityPublicKey: bytes === aliceBytes ? alice.publicKey : bob.publicKey,
      bytes,
    });
    const merged = { ...decoded, ...change };
    return new ByteWriter()
      .u8(2)
      .string8(merged.room)
      .string8(merged.nick)
      .raw(merged.pairwisePublicKey)
      .u64(merged.time)
      .raw(bytes.subarray(bytes.length - 64))
      .finish();
  };
  assertRejects(
    () =>
      verifyAnnouncement({
        identityPublicKey: alice.publicKey,
        bytes: rewrite(aliceBytes, { nick: "bob" }),
      }),
    "forged",
  );
  assertRejects(
    () =>
      verifyAnnouncement({
        identityPublicKey: alice.publicKey,
        bytes: rewrite(aliceBytes, { room: "other" }),
      }),
    "forged",
  );
  const malloryKey = x25519.keygen().publicKey;
  assertRejects(
    () =>
      verifyAnnouncement({
        identityPublicKey: alice.publicKey,
        bytes: rewrite(aliceBytes, { pairwisePublicKey: malloryKey }),
      }),
    "forged",
  );
  assertRejects(
    () =>
      verifyAnnouncement({
        identityPublicKey: alice.publicKey,
        bytes: rewrite(aliceBytes, { time: Date.now() }),
      }),
    "forged",
  );
  // Presenting Bob's announcement as Alice's (or the reverse) fails.
  assertRejects(
    () => verifyAnnouncement({ identityPublicKey: alice.publicKey, bytes: bobBytes }),
    "forged",
  );
  assertRejects(
    () => verifyAnnouncement({ identityPublicKey: bob.publicKey, bytes: aliceBytes }),
    "forged",
  );
  // Mallory signing "alice" with her own key is valid only under Mallory's identity.
  const impostor = signAnnouncement({ identity: mallory, announcement: sample({ nick: "alice" }) });
  assertRejects(
    () => verifyAnnouncement({ identityPublicKey: alice.publicKey, bytes: impostor }),
    "forged",
  );
  assert.equal(
    verifyAnnouncement({ identityPublicKey: mallory.publicKey, bytes: impostor }).nick,
    "alice",
  );
});

Deno.test("a signature from another protocol context is not an announcement signature", () => {
  const alice = newIdentity();
  const bytes = signAnnouncement({ identity: alice, announcement: sample() });
  // Signing the body without the domain prefix (as a careless other protocol might) is rejected.
  const body = bytes.subarray(0, bytes.length - 64);
  const bare = concat(body, ed25519.sign(concat(alice.publicKey, body), alice.secretKey));
  assertRejects(
    () => verifyAnnouncement({ identityPublicKey: alice.publicKey, bytes: bare }),
    "forged",
  );
});

Deno.test("unknown versions and invalid names are malformed", () => {
  const alice = newIdentity();
  const bytes = signAnnouncement({ identity: alice, announcement: sample() });
  for (const version of [1, 3]) {
    const other = bytes.slice();
    other[0] = version;
    assertRejects(
      () => verifyAnnouncement({ identityPublicKey: alice.publicKey, bytes: other }),
      "malformed",
    );
  }

  // A correctly signed announcement with a bad nick is still refused.
  const body = new ByteWriter()
    .u8(2)
    .string8("lobby")
    .string8("bad\u202enick")
    .raw(new Uint8Array(32).fill(7))
    .u64(1)
    .finish();
  const signed = concat(utf8("securechat/2 announcement\0"), alice.publicKey, body);
  const badNick = concat(body, ed25519.sign(signed, alice.secretKey));
  assertRejects(
    () => verifyAnnouncement({ identityPublicKey: alice.publicKey, bytes: badNick }),
    "malformed",
  );

  // Invalid UTF-8 in the room.
  const badUtf8 = bytes.slice();
  badUtf8[2] = 0xff;
  assertRejects(
    () => verifyAnnouncement({ identityPublicKey: alice.publicKey, bytes: badUtf8 }),
    "malformed",
  );
});

Deno.test("signAnnouncement refuses invalid fields", () => {
  const identity = newIdentity();
  assert.throws(
    () => signAnnouncement({ identity, announcement: sample({ nick: "a b" }) }),
    RangeError,
  );
  assert.throws(
    () => signAnnouncement({ identity, announcement: sample({ room: "" }) }),
    RangeError,
  );
  assert.throws(
    () =>
      signAnnouncement({
        identity,
        announcement: sample({ pairwisePublicKey: new Uint8Array(31) }),
      }),
    RangeError,
  );
  assert.throws(
    () => signAnnouncement({ identity, announcement: sample({ time: -1 }) }),
    RangeError,
  );
  assert.throws(
    () => signAnnouncement({ identity, announcement: sample({ time: 1.5 }) }),
    RangeError,
  );
});

Deno.test("validateNick and validateRoom", () => {
  for (const good of ["alice", "Ålice_99", "日本語", "a".repeat(64), "é".repeat(32)]) {
    assert.equal(validateNick(good), null, good);
    assert.equal(validateRoom(good), null, good);
  }
  assert.equal(validateRoom("rust users"), null);
  const badBoth = [
    "",
    "a".repeat(65),
    "é".repeat(33), // 66 bytes
    "tab\there",
    "new\nline",
    "nul\0",
    "del\x7f",
    "c1\u0085",
    "rlo\u202egnp.exe",
    "zero\u200bwidth",
    "bom\ufeff",
    "line\u2028sep",
    "lone\ud800",
    "\udc00",
  ];
  for (const bad of badBoth) {
    assert.equal(typeof validateNick(bad), "string", JSON.stringify(bad));
    assert.equal(typeof validateRoom(bad), "string", JSON.stringify(bad));
  }
  for (const bad of ["a b", "a\u00a0b", "a\u3000b", " alice", "alice "]) {
    assert.equal(typeof validateNick(bad), "string", JSON.stringify(bad));
  }
  assert.match(validateNick("")!, /1 to 64 bytes/);
  assert.match(validateNick("a b")!, /whitespace/);
  // The profile of lib/identity/nick.ts: emoji, invisible fillers and a leading # are out.
  for (const bad of ["😀", "bob\u034f", "#x", "e\u0301"]) {
    assert.equal(typeof validateNick(bad), "string", JSON.stringify(bad));
  }
});

Deno.test("errors name the problem, not the key", () => {
  const alice = newIdentity();
  const mallory = newIdentity();
  const bytes = signAnnouncement({ identity: alice, announcement: sample() });
  try {
    verifyAnnouncement({ identityPublicKey: mallory.publicKey, bytes });
    assert.fail("accepted");
  } catch (error) {
    if (!(error instanceof AnnouncementError)) throw error;
    assert.ok(!error.message.includes(toHex(alice.secretKey).slice(0, 8)));
    assert.match(error.message, /not signed/);
  }
});
