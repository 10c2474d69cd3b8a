/**
 * RoomSession in a durable room, against a relay played by hand: a roster
 * that outlives connections, a store with one sequence per room, catch-up on
 * reconnection, prekey bundles handed out once, and sessions that pick up
 * where the last connection left off through exportState/saved. What a real
 * relay does with SQLite, this one does with arrays, so the tests can also
 * replay, reorder, withhold and leak stored items at will.
 */

import assert from "node:assert/strict";
import { utf8 } from "../lib/core/bytes.ts";
import { generateIdentity, type Identity } from "../lib/identity/identity.ts";
import type { MemberEntry, RelayRecord } from "../lib/transport/records.ts";
import { type RoomEvent, RoomSession } from "../lib/e2e/room.ts";
import { decodeRoomState, encodeRoomState } from "../lib/e2e/room_state.ts";
import { encodePrekeyBundle } from "../lib/e2e/prekeys.ts";
import { PrekeyKeeper } from "../lib/client/prekey_keeper.ts";
import { containsBytes } from "./support/in_process.ts";

const ROOM = "ops";

interface Stored {
  seq: number;
  from: number;
  /** Undefined: a group message for every member; else an envelope for one. */
  to?: number;
  bytes: Uint8Array;
}

interface Person {
  nick: string;
  identity: Identity;
  memberId: number;
  prekeys: PrekeyKeeper;
  /** The signed prekey and one-time prekeys the relay holds for this person. */
  signedPrekey?: Uint8Array;
  oneTime: Uint8Array[];
  position: number;
  session?: RoomSession;
  /** Room state kept between connections (what the client's store keeps). */
  kept?: Uint8Array;
  events: RoomEvent[];
  removed: boolean;
}

class DurableRelay {
  people = new Map<number, Person>();
  store: Stored[] = [];
  log: Uint8Array[] = [];
  #seq = 0;
  #nextId = 1;
  #queue: { to: Person; record: RelayRecord }[] = [];

  async enrol(nick: string): Promise<Person> {
    const identity = generateIdentity();
    const prekeys = await PrekeyKeeper.load({ relay: "relay", identity });
    const upload = prekeys.upload({ oneTimeOnRelay: 0 });
    const person: Person = {
      nick,
      identity,
      memberId: this.#nextId++,
      prekeys,
      signedPrekey: upload.signedPrekey,
      oneTime: upload.oneTimePrekeys,
      position: 0,
      events: [],
      removed: false,
    };
    this.people.set(person.memberId, person);
    return person;
  }

  online(): Person[] {
    return [...this.people.values()].filter((p) => p.session !== undefined && !p.removed);
  }

  entry(person: Person, online: boolean): MemberEntry {
    const announcement = person.session?.announcement ??
      new RoomSession({ identity: person.identity, room: ROOM, nick: person.nick }).announcement;
    return {
      memberId: person.memberId,
      identityPublicKey: person.identity.publicKey,
      announcement,
      online,
    };
  }

  /** Connects `person`: welcome with the roster, then what was stored for it, then live. */
  connect(person: Person): void {
    const saved = person.kept ? decodeRoomState(person.kept) : undefined;
    person.session = new RoomSession({
      identity: person.identity,
      room: ROOM,
      nick: person.nick,
      saved,
      prekeys: person.prekeys,
      now: () => 1_800_000_000_000,
    });
    const others = [...this.people.values()].filter((p) => p !== person && !p.removed);
    this.#enqueue(person, {
      type: "welcome",
      memberId: person.memberId,
      durable: true,
      head: this.#seq,
      members: others.map((p) => this.entry(p, p.session !== undefined)),
    });
    for (const other of this.online()) {
      if (other !== person) {
        this.#enqueue(other, { type: "memberOnline", member: this.entry(person, true) });
      }
    }
    for (const item of this.store) {
      if (item.seq <= person.position) continue;
      if (item.to === undefined && item.from !== person.memberId) {
        this.#enqueue(person, {
          type: "deliver",
          seq: item.seq,
          from: item.from,
          message: item.bytes,
        });
      } else if (item.to === person.memberId) {
        this.#enqueue(person, {
          type: "storedEnvelope",
          seq: item.seq,
          from: item.from,
          envelope: item.bytes,
        });
      }
    }
    this.#enqueue(person, { type: "caughtUp", seq: this.#seq });
    this.pump();
  }

  /** Disconnects `person`, keeping what its client would keep. */
  disconnect(person: Person, reason: 0 | 1 | 2 = 0): void {
    const state = person.session?.exportState();
    if (state) person.kept = encodeRoomState(state);
    person.position = person.session?.lastSeq ?? person.position;
    person.session = undefined;
    if (reason !== 0) person.removed = true;
    for (const other of this.online()) {
      this.#enqueue(other, { type: "memberOffline", memberId: person.memberId, reason });
    }
    this.pump();
  }

  /** `from` sends `texts`, handing its key to members away first. */
  say(from: Person, texts: string[]): Uint8Array {
    const session = from.session!;
    this.#route(from, session.prepareToSend());
    for (const memberId of session.keyHandoverNeeded()) {
      const to = this.people.get(memberId)!;
      const bundle = encodePrekeyBundle({
        signedPrekey: to.signedPrekey!,
        oneTimePrekey: to.oneTime.shift(),
      });
      const sealed = session.sealKeyFor(memberId, bundle);
      assert.ok("envelope" in sealed, "the bundle was accepted");
      this.#append({ from: from.memberId, to: memberId, bytes: sealed.envelope });
    }
    const { send, message } = session.encryptTexts(texts);
    this.#route(from, send);
    const seq = this.#append({ from: from.memberId, bytes: message });
    for (const other of this.online()) {
      if (other !== from) {
        this.#enqueue(other, { type: "deliver", seq, from: from.memberId, message });
      }
    }
    this.pump();
    return message;
  }

  inject(to: Person, record: RelayRecord): RoomEvent[] {
    const { send, events } = to.session!.handle(record);
    to.events.push(...events);
    this.#route(to, send);
    this.pump();
    return events;
  }

  pump(): void {
    for (let guard = 0; guard < 100_000 && this.#queue.length > 0; guard++) {
      const { to, record } = this.#queue.shift()!;
      if (to.session === undefined) continue;
      const { send, events } = to.session.handle(record);
      to.events.push(...events);
      this.#route(to, send);
    }
  }

  #append(item: Omit<Stored, "seq">): number {
    const seq = ++this.#seq;
    this.store.push({ ...item, seq });
    this.log.push(item.bytes);
    return seq;
  }

  #enqueue(to: Person, record: RelayRecord): void {
    this.#queue.push({ to, record });
  }

  #route(from: Person, records: RelayRecord[]): void {
    for (const record of records) {
      if (record.type !== "direct") continue;
      this.log.push(record.envelope);
      const target = this.people.get(record.to);
      if (target?.session === undefined) continue;
      this.#enqueue(target, { type: "directFrom", from: from.memberId, envelope: record.envelope });
    }
  }
}

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
