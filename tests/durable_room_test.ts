/**
 * RoomSession in a durable room (tests/support/durable_relay.ts plays the
 * relay): catch-up in order, key handover to members away in prekey
 * envelopes, removal, newcomers, resends after a reconnection, and what the
 * store may hold.
 */

import assert from "node:assert/strict";
import { utf8 } from "../lib/core/bytes.ts";
import { RoomSession } from "../lib/e2e/room.ts";
import { decodeRoomState, encodeRoomState } from "../lib/e2e/room_state.ts";
import { containsBytes } from "./support/in_process.ts";
import { DurableRelay, type Person, ROOM } from "./support/durable_relay.ts";

function texts(person: Person, from?: Person): string[] {
  return person.events.flatMap((event) =>
    event.type === "message" && (from === undefined || event.from.memberId === from.memberId)
      ? [event.text]
      : []
  );
}

function warnings(person: Person): string[] {
  return person.events.flatMap((event) => event.type === "warning" ? [event.code] : []);
}

Deno.test("durable room: a member away gets, on its return, every message in order", async () => {
  const relay = new DurableRelay();
  const alice = await relay.enrol("alice");
  const bob = await relay.enrol("bob");
  relay.connect(alice);
  relay.connect(bob);
  assert.deepEqual(alice.session!.members().map((m) => m.nick), ["bob"]);
  relay.disconnect(bob);
  assert.deepEqual(alice.session!.roster().map((m) => [m.nick, m.online]), [["bob", false]]);
  for (const text of ["one", "two", "three"]) relay.say(alice, [text]);
  // Bob held alice's key when he left: nothing to hand over, the messages are just stored.
  assert.equal(relay.store.filter((item) => item.to !== undefined).length, 0);
  assert.deepEqual(alice.session!.readers(), { online: 0, later: 1 });
  relay.connect(bob);
  assert.deepEqual(texts(bob, alice), ["one", "two", "three"]);
  assert.deepEqual(warnings(bob), []);
  assert.ok(bob.events.some((event) => event.type === "caught-up"));
  const first = bob.events.find((event) => event.type === "message");
  assert.ok(first?.type === "message" && first.from.fingerprint === alice.identity.fingerprint);
});

Deno.test("durable room: a member who was never online with the sender gets the key in a prekey envelope", async () => {
  const relay = new DurableRelay();
  const alice = await relay.enrol("alice");
  const carol = await relay.enrol("carol");
  // Carol is on the roster (she joined once before alice ever came) but away.
  relay.connect(carol);
  relay.disconnect(carol);
  relay.connect(alice);
  relay.say(alice, ["for carol, later"]);
  const envelopes = relay.store.filter((item) => item.to === carol.memberId);
  assert.equal(envelopes.length, 1, "one envelope with alice's key, stored for carol");
  relay.connect(carol);
  assert.deepEqual(texts(carol, alice), ["for carol, later"]);
  assert.deepEqual(warnings(carol), []);
  // The one-time prekey is gone from carol's keeper: the envelope cannot be replayed.
  const replay = relay.inject(carol, {
    type: "storedEnvelope",
    seq: 0,
    from: alice.memberId,
    envelope: envelopes[0].bytes,
  });
  assert.deepEqual(replay.flatMap((e) => e.type === "warning" ? [e.code] : []), ["replayed"]);
});

Deno.test("durable room: a removed member reads nothing sent after its removal, even leaked", async () => {
  const relay = new DurableRelay();
  const alice = await relay.enrol("alice");
  const bob = await relay.enrol("bob");
  const mallory = await relay.enrol("mallory");
  for (const person of [alice, bob, mallory]) relay.connect(person);
  relay.say(alice, ["before"]);
  assert.deepEqual(texts(mallory, alice), ["before"]);
  relay.disconnect(mallory, 2);
  relay.disconnect(bob);
  const secret = relay.say(alice, ["after mallory was removed"]);
  // The new epoch went to bob (away) in a prekey envelope, never to mallory.
  assert.ok(relay.store.some((item) => item.to === bob.memberId));
  assert.ok(!relay.store.some((item) => item.to === mallory.memberId));
  relay.connect(bob);
  assert.deepEqual(texts(bob, alice), ["before", "after mallory was removed"]);
  // The relay leaks everything to mallory's old session: nothing opens.
  const leaked = new RoomSession({
    identity: mallory.identity,
    room: ROOM,
    nick: "mallory",
    saved: decodeRoomState(mallory.kept!),
    prekeys: mallory.prekeys,
  });
  leaked.handle({
    type: "welcome",
    memberId: mallory.memberId,
    durable: true,
    head: 0,
    members: [relay.entry(alice, false)],
  });
  const events =
    leaked.handle({ type: "deliver", seq: 99, from: alice.memberId, message: secret }).events;
  for (const item of relay.store.filter((i) => i.to !== undefined)) {
    events.push(
      ...leaked.handle({
        type: "storedEnvelope",
        seq: 100 + item.seq,
        from: alice.memberId,
        envelope: item.bytes,
      }).events,
    );
  }
  assert.ok(!events.some((event) => event.type === "message"), "mallory read something");
});

Deno.test("durable room: a newcomer cannot read what was stored before it joined", async () => {
  const relay = new DurableRelay();
  const alice = await relay.enrol("alice");
  relay.connect(alice);
  relay.say(alice, ["before dave existed"]);
  const dave = await relay.enrol("dave");
  // A hostile relay hands dave the old message anyway.
  relay.connect(dave);
  const old = relay.store[0];
  relay.inject(dave, { type: "deliver", seq: 50, from: alice.memberId, message: old.bytes });
  relay.say(alice, ["welcome dave"]);
  assert.deepEqual(texts(dave, alice), ["welcome dave"]);
});

Deno.test("durable room: items sent again after a reconnection are read once; state survives its bytes", async () => {
  const relay = new DurableRelay();
  const alice = await relay.enrol("alice");
  const bob = await relay.enrol("bob");
  relay.connect(alice);
  relay.connect(bob);
  relay.disconnect(bob);
  relay.say(alice, ["m1"]);
  relay.say(alice, ["m2"]);
  relay.connect(bob);
  // Bob's client crashed before acknowledging: the relay sends both again on the next connection.
  const kept = encodeRoomState(bob.session!.exportState()!);
  assert.deepEqual(encodeRoomState(decodeRoomState(kept)), kept);
  relay.disconnect(bob);
  relay.connect(bob);
  assert.deepEqual(texts(bob, alice), ["m1", "m2"]);
  assert.deepEqual(warnings(bob), []);
});

Deno.test("durable room: the relay's store holds no plaintext and no key", async () => {
  const relay = new DurableRelay();
  const alice = await relay.enrol("alice");
  const bob = await relay.enrol("bob");
  relay.connect(bob);
  relay.disconnect(bob);
  relay.connect(alice);
  const secret = "the vault code is 4242";
  relay.say(alice, [secret]);
  relay.connect(bob);
  assert.deepEqual(texts(bob, alice), [secret]);
  const state = alice.session!.exportState()!;
  for (const bytes of relay.log) {
    assert.ok(!containsBytes(bytes, utf8(secret)), "plaintext on the wire or in the store");
    assert.ok(!containsBytes(bytes, state.outbound!.chainKey), "a chain key on the wire");
  }
});
