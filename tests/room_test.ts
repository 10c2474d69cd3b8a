/**
 * RoomSession against a relay played by hand. The fake relay routes records
 * like the real one (one FIFO queue, so every link stays in order) and keeps
 * a log of every record it sees, which is everything a hostile relay has.
 */

import assert from "node:assert/strict";
import { signAnnouncement } from "../lib/e2e/announcement.ts";
import { utf8 } from "../lib/core/bytes.ts";
import { generateIdentity, type Identity } from "../lib/identity/identity.ts";
import { generateKeyPair } from "../lib/crypto/noise.ts";
import { encodeRecord, type MemberEntry, type RelayRecord } from "../lib/transport/records.ts";
import {
  RECEIVE_LIMITS,
  type RoomEvent,
  RoomSession,
  type RoomSessionOptions,
} from "../lib/e2e/room.ts";
import {
  MAX_SKIPPED_MESSAGES,
  OutboundSenderKey,
  peekGroupMessageHeader,
} from "../lib/e2e/sender_keys.ts";
import { pairwiseMessageKind } from "../lib/e2e/pairwise_session.ts";
import { containsBytes } from "./support/in_process.ts";

const ROOM = "ops";
const TIME = 1_700_000_000_000;

interface Member {
  id: number;
  nick: string;
  identity: Identity;
  session: RoomSession;
  entry: MemberEntry;
  events: RoomEvent[];
  /** Every record this member's session asked to send. */
  sent: RelayRecord[];
}

/** Everything the relay saw, in order, with who sent or received it. */
interface LogEntry {
  direction: "from" | "to";
  memberId: number;
  record: RelayRecord;
}

class FakeRelay {
  members = new Map<number, Member>();
  /** Sessions of members who left, kept to play a colluding ex-member. */
  departed = new Map<number, Member>();
  log: LogEntry[] = [];
  #queue: { to: Member; record: RelayRecord }[] = [];
  #nextId = 1;

  join(
    nick: string,
    options: Partial<RoomSessionOptions> = {},
  ): Member {
    const identity = options.identity ?? generateIdentity();
    const session = new RoomSession({ identity, room: ROOM, nick, now: () => TIME, ...options });
    const id = this.#nextId++;
    const entry: MemberEntry = {
      memberId: id,
      identityPublicKey: identity.publicKey,
      online: true,
      announcement: session.announcement,
    };
    const member: Member = { id, nick, identity, session, entry, events: [], sent: [] };
    this.log.push({
      direction: "from",
      memberId: id,
      record: { type: "join", announcement: entry.announcement },
    });
    const others = [...this.members.values()];
    this.members.set(id, member);
    this.enqueue(member, {
      type: "welcome",
      memberId: id,
      durable: false,
      head: 0,
      members: others.map((m) => m.entry),
    });
    for (const other of others) this.enqueue(other, { type: "memberOnline", member: entry });
    this.pump();
    return member;
  }

  leave(member: Member): void {
    this.members.delete(member.id);
    this.departed.set(member.id, member);
    for (const other of this.members.values()) {
      this.enqueue(other, { type: "memberOffline", memberId: member.id, reason: 1 });
    }
    this.pump();
  }

  /** Encrypts `texts` as `from` and delivers them to `to` (default: everyone else). */
  publish(from: Member, texts: string[], to?: Member[]): Uint8Array {
    const { send, message } = from.session.encryptTexts(texts);
    this.#routeFrom(from, send);
    this.pump();
    this.log.push({
      direction: "from",
      memberId: from.id,
      record: { type: "publish", id: 1, message },
    });
    for (const other of to ?? this.members.values()) {
      if (other !== from) this.enqueue(other, { type: "deliver", seq: 0, from: from.id, message });
    }
    this.pump();
    return message;
  }

  /** Has `sender` send a direct text to `target`; routes it. */
  direct(sender: Member, target: Member, text: string): RelayRecord {
    const record = sender.session.directText(target.id, text);
    this.#routeFrom(sender, [record]);
    this.pump();
    return record;
  }

  /** Hands `record` to `to` at once, as a hostile relay may, and routes what it answers. */
  inject(to: Member, record: RelayRecord): RoomEvent[] {
    this.log.push({ direction: "to", memberId: to.id, record });
    const { send, events } = to.session.handle(record);
    to.events.push(...events);
    this.#routeFrom(to, send);
    this.pump();
    return events;
  }

  enqueue(to: Member, record: RelayRecord): void {
    this.#queue.push({ to, record });
  }

  pump(): void {
    for (let guard = 0; guard < 100_000 && this.#queue.length > 0; guard++) {
      const { to, record } = this.#queue.shift()!;
      if (!this.members.has(to.id)) continue;
      this.log.push({ direction: "to", memberId: to.id, record });
      const { send, events } = to.session.handle(record);
      to.events.push(...events);
      this.#routeFrom(to, send);
    }
    assert.equal(this.#queue.length, 0, "routing did not settle");
  }

  /** Return true to keep a direct record from reaching its target (a hostile relay). */
  hold: (from: Member, to: Member, record: RelayRecord) => boolean = () => false;

  #routeFrom(member: Member, records: RelayRecord[]): void {
    for (const record of records) {
      member.sent.push(record);
      this.log.push({ direction: "from", memberId: member.id, record });
      assert.equal(record.type, "direct", "a room session only ever sends direct records");
      if (record.type !== "direct") continue;
      const target = this.members.get(record.to);
      if (target === undefined || this.hold(member, target, record)) continue;
      this.enqueue(target, { type: "directFrom", from: member.id, envelope: record.envelope });
    }
  }

  /** Every direct record `from` sent to `to`, in order. */
  directs(from: Member, to: Member): Uint8Array[] {
    return from.sent.flatMap((r) => r.type === "direct" && r.to === to.id ? [r.envelope] : []);
  }

  /** The relay's whole view, as the bytes it would carry. */
  wireBytes(): Uint8Array[] {
    return this.log.map((entry) => encodeRecord(entry.record));
  }
}

/** Whether a direct record carries a pairwise data message (not a handshake message). */
function isData(record: RelayRecord): boolean {
  return record.type === "direct" && pairwiseMessageKind(record.envelope) === "data";
}

function texts(member: Member, from?: Member): string[] {
  return member.events.flatMap((event) =>
    event.type === "message" && !event.direct &&
      (from === undefined || event.from.memberId === from.id)
      ? [event.text]
      : []
  );
}

function directTexts(member: Member): string[] {
  return member.events.flatMap((event) =>
    event.type === "message" && event.direct ? [event.text] : []
  );
}

function warnings(events: RoomEvent[]): string[] {
  return events.flatMap((event) => event.type === "warning" ? [event.code] : []);
}

function messages(events: RoomEvent[]): RoomEvent[] {
  return events.filter((event) => event.type === "message");
}

/** Group messages `member` published, in order. */
function published(relay: FakeRelay, member: Member): Uint8Array[] {
  return relay.log.flatMap((entry) =>
    entry.record.type === "publish" && entry.memberId === member.id ? [entry.record.message] : []
  );
}

function threeMembers(): { relay: FakeRelay; a: Member; b: Member; c: Member } {
  const relay = new FakeRelay();
  const a = relay.join("alice");
  const b = relay.join("bob");
  const c = relay.join("carol");
  return { relay, a, b, c };
}

Deno.test("room: three members exchange sender keys and read each other's messages in order", () => {
  const { relay, a, b, c } = threeMembers();
  for (const member of [a, b, c]) {
    assert.ok(member.session.joined);
    assert.equal(member.session.epoch, 1);
    assert.deepEqual(
      member.session.members().map((m) => m.nick).sort(),
      ["alice", "bob", "carol"].filter((n) => n !== member.nick),
    );
    assert.deepEqual(warnings(member.events), [], `${member.nick} warned`);
  }
  // Each pair ran one handshake (hello or accept) and sent its sender key once each way.
  for (const from of [a, b, c]) {
    for (const to of [a, b, c]) {
      if (from !== to) {
        assert.equal(relay.directs(from, to).length, 2, `${from.nick} -> ${to.nick}`);
      }
    }
  }
  const sent: Record<string, string[]> = { alice: [], bob: [], carol: [] };
  for (let i = 0; i < 10; i++) {
    for (const from of [a, b, c]) {
      const text = `${from.nick} says secret number ${i} ✓`;
      relay.publish(from, [text]);
      sent[from.nick].push(text);
    }
  }
  relay.publish(a, ["batch one", "batch two"]);
  sent.alice.push("batch one", "batch two");
  for (const to of [a, b, c]) {
    for (const from of [a, b, c]) {
      if (from === to) continue;
      assert.deepEqual(texts(to, from), sent[from.nick], `${to.nick} reading ${from.nick}`);
    }
    assert.deepEqual(warnings(to.events), []);
  }
  const event = b.events.find((e) => e.type === "message");
  assert.ok(event?.type === "message" && event.time === TIME && event.from.nick === "alice");
});

Deno.test("room: the relay's records never contain plaintext", () => {
  const { relay, a, b, c } = threeMembers();
  const secrets = [
    "the launch code is 0000",
    "meet at the old mill at noon",
    "carol's private reply",
  ];
  relay.publish(a, [secrets[0]]);
  relay.publish(b, [secrets[1]]);
  const directSecret = "only bob may read this direct note";
  relay.direct(c, b, directSecret);
  assert.deepEqual(texts(c, a), [secrets[0]]);
  assert.deepEqual(directTexts(b), [directSecret]);
  const wire = relay.wireBytes();
  assert.ok(wire.length > 10);
  for (const text of [...secrets.slice(0, 2), directSecret]) {
    // Whole text and an 8-byte piece of it (a partial leak is a leak).
    for (const needle of [utf8(text), utf8(text).subarray(4, 12)]) {
      for (const bytes of wire) assert.ok(!containsBytes(bytes, needle), `relay saw "${text}"`);
    }
  }
});

Deno.test("room: a member cannot send as another member", () => {
  const { relay, a, b, c } = threeMembers();
  relay.publish(a, ["genuine from alice"]);
  // Carol encrypts with her own key; the (colluding) relay delivers it as Alice's.
  const forged = c.session.encryptTexts(["I am alice, send money"]).message;
  assert.equal(peekGroupMessageHeader(forged).epoch, 1);
  const events = relay.inject(b, { type: "deliver", seq: 0, from: a.id, message: forged });
  assert.deepEqual(warnings(events), ["forged"]);
  assert.deepEqual(messages(events), []);
  // Carol's pairwise message relabelled as Alice's does not open either.
  const envelope = c.session.directText(b.id, "I am alice too");
  assert.equal(envelope.type, "direct");
  if (envelope.type !== "direct") return;
  const directEvents = relay.inject(b, {
    type: "directFrom",
    from: a.id,
    envelope: envelope.envelope,
  });
  assert.deepEqual(warnings(directEvents), ["bad-envelope"]);
  assert.deepEqual(messages(directEvents), []);
  // Alice's chain at Bob was not disturbed.
  relay.publish(a, ["still alice"]);
  assert.deepEqual(texts(b, a), ["genuine from alice", "still alice"]);
});

Deno.test("room: replayed, reordered and withheld messages are reported, never shown twice", () => {
  const { relay, a, b } = threeMembers();
  const first = relay.publish(a, ["one"]);
  // Replay.
  const replay = relay.inject(b, { type: "deliver", seq: 0, from: a.id, message: first });
  assert.deepEqual(warnings(replay), ["replayed"]);
  assert.deepEqual(messages(replay), []);

  // Reorder: Bob gets three before two.
  const two = relay.publish(a, ["two"], []);
  const three = relay.publish(a, ["three"], []);
  const early = relay.inject(b, { type: "deliver", seq: 0, from: a.id, message: three });
  assert.deepEqual(warnings(early), ["gap"]);
  assert.deepEqual(messages(early).length, 1);
  const late = relay.inject(b, { type: "deliver", seq: 0, from: a.id, message: two });
  assert.deepEqual(warnings(late), ["replayed"]);
  assert.deepEqual(messages(late), []);

  // Withheld: four never reaches Bob, five reports the gap.
  relay.publish(a, ["four"], []);
  const five = relay.publish(a, ["five"], []);
  const afterGap = relay.inject(b, { type: "deliver", seq: 0, from: a.id, message: five });
  assert.deepEqual(warnings(afterGap), ["gap"]);
  const gap = afterGap.find((e) => e.type === "warning");
  assert.ok(gap?.type === "warning" && gap.text.startsWith("1 message"), "gap names how many");
  assert.deepEqual(texts(b, a), ["one", "three", "five"]);
});

Deno.test("room: any single bit flipped in a group message is refused", () => {
  const { relay, a, b } = threeMembers();
  const message = relay.publish(a, ["flip me if you can"], []);
  let warned = 0;
  for (let position = 0; position < message.length; position++) {
    const mutated = message.slice();
    mutated[position] ^= 1 << (position % 8);
    const events = relay.inject(b, { type: "deliver", seq: 0, from: a.id, message: mutated });
    assert.deepEqual(messages(events), [], `byte ${position} flipped was accepted`);
    if (warnings(events).length > 0) {
      warned++;
      continue;
    }
    // Silence is only acceptable when the flip announced a later epoch: the message
    // waits for a key that never comes (and fails its signature if one does).
    assert.ok(peekGroupMessageHeader(mutated).epoch > 1, `byte ${position} flipped: no warning`);
  }
  assert.ok(warned >= message.length - 4);
  // The original still decrypts: failed attempts did not move Bob's chain.
  const events = relay.inject(b, { type: "deliver", seq: 0, from: a.id, message });
  assert.deepEqual(warnings(events), []);
  assert.deepEqual(texts(b, a), ["flip me if you can"]);
  // A truncated message is malformed, not a crash.
  const cut = relay.inject(b, {
    type: "deliver",
    seq: 0,
    from: a.id,
    message: message.subarray(0, 20),
  });
  assert.deepEqual(warnings(cut), ["malformed"]);
});

Deno.test("room: after a member leaves the others rekey and the leaver reads nothing new", () => {
  const { relay, a, b, c } = threeMembers();
  relay.publish(a, ["before carol left"]);
  assert.deepEqual(texts(c, a), ["before carol left"]);
  const oldAliceToBob = relay.directs(a, b)[1];
  relay.leave(c);
  assert.ok(a.events.some((e) => e.type === "member-left" && e.member.nick === "carol"));
  // Nobody rekeys until it speaks: idle members send nothing.
  assert.equal(a.session.epoch, 1);
  assert.equal(relay.directs(a, b).length, 2);

  const after = [
    relay.publish(a, ["after carol left, from alice"]),
    relay.publish(b, ["after carol left, from bob"]),
  ];
  assert.equal(a.session.epoch, 2);
  assert.equal(b.session.epoch, 2);
  assert.equal(peekGroupMessageHeader(after[0]).epoch, 2);
  assert.equal(peekGroupMessageHeader(after[1]).epoch, 2);
  // The new keys went only to the members who remain, before the first new message.
  assert.equal(relay.directs(a, b).length, 3);
  assert.equal(relay.directs(a, c).length, 2);
  assert.equal(relay.directs(b, c).length, 2);
  assert.deepEqual(texts(b, a), ["before carol left", "after carol left, from alice"]);
  assert.deepEqual(texts(a, b), ["after carol left, from bob"]);

  // The relay leaks everything to carol: the new messages and the new key envelopes.
  const leaked: RoomEvent[] = [];
  for (const [from, message] of [[a, after[0]], [b, after[1]]] as const) {
    leaked.push(...c.session.handle({ type: "deliver", seq: 0, from: from.id, message }).events);
  }
  for (const envelope of relay.directs(a, b).slice(2)) {
    leaked.push(...c.session.handle({ type: "directFrom", from: a.id, envelope }).events);
  }
  assert.deepEqual(messages(leaked), []);
  assert.deepEqual(warnings(leaked), ["bad-envelope"]);
  assert.deepEqual(texts(c), ["before carol left"]);

  // Alice's epoch-1 message replayed to bob after the rekey is refused.
  const [oldMessage] = published(relay, a);
  assert.equal(peekGroupMessageHeader(oldMessage).epoch, 1);
  const replayOld = relay.inject(b, { type: "deliver", seq: 0, from: a.id, message: oldMessage });
  assert.deepEqual(warnings(replayOld), ["replayed"]);

  // Replaying alice's epoch-1 sender key to bob is refused: its counter was passed.
  const replayKey = relay.inject(b, { type: "directFrom", from: a.id, envelope: oldAliceToBob });
  assert.deepEqual(warnings(replayKey), ["replayed"]);
  relay.publish(a, ["alice still readable by bob"]);
  assert.equal(texts(b, a).at(-1), "alice still readable by bob");
});

Deno.test("room: a newcomer cannot read what was sent before it joined", () => {
  const relay = new FakeRelay();
  const a = relay.join("alice");
  const b = relay.join("bob");
  const before = [relay.publish(a, ["before dave, 1"]), relay.publish(a, ["before dave, 2"])];
  const d = relay.join("dave");
  for (const message of before) relay.inject(d, { type: "deliver", seq: 0, from: a.id, message });
  assert.deepEqual(messages(d.events), []);
  assert.ok(warnings(d.events).every((code) => code === "replayed"));
  relay.publish(a, ["welcome dave"]);
  assert.deepEqual(texts(d, a), ["welcome dave"]);
  assert.deepEqual(texts(b, a), ["before dave, 1", "before dave, 2", "welcome dave"]);
});

Deno.test("room: a newcomer's pending messages older than its key are dropped, newer ones shown", () => {
  const relay = new FakeRelay();
  const a = relay.join("alice");
  // Erin joins; the relay holds back alice's first data message (her sender key) for a while.
  let heldBack: RelayRecord | undefined;
  relay.hold = (from, to, record) => {
    if (from === a && to.nick === "erin" && heldBack === undefined && isData(record)) {
      heldBack = record;
      return true;
    }
    return false;
  };
  const old = a.session.encryptTexts(["old, before erin"]).message;
  const erin = relay.join("erin");
  assert.ok(heldBack !== undefined, "alice's key to erin was held back");
  assert.ok(heldBack.type === "direct");
  const fresh = a.session.encryptTexts(["new, after erin"]).message;
  // Both messages reach erin before the key: they wait.
  assert.deepEqual(relay.inject(erin, { type: "deliver", seq: 0, from: a.id, message: old }), []);
  assert.deepEqual(relay.inject(erin, { type: "deliver", seq: 0, from: a.id, message: fresh }), []);
  const events = relay.inject(erin, {
    type: "directFrom",
    from: a.id,
    envelope: heldBack.envelope,
  });
  assert.deepEqual(warnings(events), []);
  assert.deepEqual(messages(events).map((e) => e.type === "message" ? e.text : ""), [
    "new, after erin",
  ]);
});

Deno.test("room: announcements not signed by the named identity, or for another room, are ignored", () => {
  const relay = new FakeRelay();
  const a = relay.join("alice");
  const mallory = generateIdentity();
  const victim = generateIdentity();
  const pairwise = generateKeyPair("25519");
  const sign = (identity: Identity, room: string, pairwisePublicKey = pairwise.publicKey) =>
    signAnnouncement({
      identity,
      announcement: { room, nick: "bob", pairwisePublicKey, time: TIME },
    });
  const cases: { what: string; entry: MemberEntry }[] = [
    {
      what: "signed by another identity",
      entry: {
        memberId: 90,
        identityPublicKey: victim.publicKey,
        online: true,
        announcement: sign(mallory, ROOM),
      },
    },
    {
      what: "for another room",
      entry: {
        memberId: 91,
        identityPublicKey: mallory.publicKey,
        online: true,
        announcement: sign(mallory, "elsewhere"),
      },
    },
    {
      what: "garbage",
      entry: {
        memberId: 92,
        identityPublicKey: mallory.publicKey,
        online: true,
        announcement: new Uint8Array(10),
      },
    },
    {
      // A low-order X25519 key makes every envelope to the member fail to seal.
      what: "with an all-zero pairwise key",
      entry: {
        memberId: 93,
        identityPublicKey: mallory.publicKey,
        online: true,
        announcement: sign(mallory, ROOM, new Uint8Array(32)),
      },
    },
  ];
  for (const { what, entry } of cases) {
    const sentBefore = a.sent.length;
    let events: RoomEvent[] = [];
    assert.doesNotThrow(() => {
      events = relay.inject(a, { type: "memberOnline", member: entry });
    }, what);
    assert.deepEqual(warnings(events), ["bad-announcement"], what);
    assert.equal(a.sent.length, sentBefore, `${what}: a key was sent`);
    assert.ok(!a.session.members().some((m) => m.memberId === entry.memberId), what);
    // Nothing it sends is accepted.
    const message = relay.inject(a, {
      type: "deliver",
      seq: 0,
      from: entry.memberId,
      message: new Uint8Array(200),
    });
    assert.deepEqual(warnings(message), ["unknown-member"], what);
  }
  // The same checks hold for members listed in the welcome.
  const fresh = new RoomSession({ identity: generateIdentity(), room: ROOM, nick: "zed" });
  const { send, events } = fresh.handle({
    type: "welcome",
    memberId: 99,
    durable: false,
    head: 0,
    members: cases.map((c) => c.entry),
  });
  assert.deepEqual(send, []);
  assert.deepEqual(warnings(events), cases.map(() => "bad-announcement"));
  assert.deepEqual(fresh.members(), []);
});

Deno.test("room: a replayed sender key is refused and cannot reset the chain", () => {
  const { relay, a, b } = threeMembers();
  relay.publish(a, ["m1"]);
  const [handshake, keyMessage] = relay.directs(a, b);
  // Same epoch, replayed: it must not reset bob's chain to an earlier iteration.
  const replay = relay.inject(b, { type: "directFrom", from: a.id, envelope: keyMessage });
  assert.deepEqual(warnings(replay), ["replayed"]);
  // Nor can the handshake be run again.
  const rehandshake = relay.inject(b, { type: "directFrom", from: a.id, envelope: handshake });
  assert.deepEqual(warnings(rehandshake), ["replayed"]);
  const again = relay.inject(b, {
    type: "deliver",
    seq: 0,
    from: a.id,
    message: published(relay, a)[0],
  });
  assert.deepEqual(warnings(again), ["replayed"]);
  assert.deepEqual(texts(b, a), ["m1"]);
});

Deno.test("room: untrusted members get no keys and their messages are ignored", () => {
  const relay = new FakeRelay();
  const a = relay.join("alice", { isTrusted: ({ nick }) => nick !== "carol" });
  const b = relay.join("bob");
  const c = relay.join("carol");
  const carol = a.session.members().find((m) => m.nick === "carol");
  assert.equal(carol?.trusted, false);
  assert.equal(carol?.fingerprint, c.identity.fingerprint);
  // Alice ran the handshake with carol (so carol is shown as present) and sent a confirmation,
  // not her key; carol offered hers anyway.
  assert.equal(relay.directs(a, c).length, 2);
  assert.equal(relay.directs(a, b).length, 2);
  assert.equal(relay.directs(c, a).length, 2);

  relay.publish(c, ["carol talking"]);
  relay.direct(c, a, "carol whispering");
  relay.publish(a, ["alice talking"]);
  assert.deepEqual(messages(a.events), []);
  assert.deepEqual(texts(b, a), ["alice talking"]);
  assert.deepEqual(texts(b, c), ["carol talking"]);
  assert.deepEqual(texts(c, a), [], "carol read alice without her key");
  const untrusted = a.events.filter((e) => e.type === "warning" && e.code === "untrusted-member");
  assert.equal(untrusted.length, 1, "warned once");
  assert.ok(untrusted[0].type === "warning" && untrusted[0].member?.memberId === c.id);

  // A rekey (bob leaves, alice speaks) still skips carol.
  relay.leave(b);
  relay.publish(a, ["after bob left"]);
  assert.equal(a.session.epoch, 2);
  assert.equal(relay.directs(a, c).length, 2, "the new key went to carol");
  assert.deepEqual(texts(c, a), []);
});

Deno.test("room: a direct text is readable only by its target", () => {
  const { relay, a, b, c } = threeMembers();
  const record = relay.direct(a, b, "for bob's eyes only");
  assert.deepEqual(directTexts(b), ["for bob's eyes only"]);
  const event = b.events.find((e) => e.type === "message" && e.direct);
  assert.ok(event?.type === "message" && event.from.nick === "alice");
  assert.deepEqual(directTexts(c), []);
  assert.ok(record.type === "direct");
  if (record.type !== "direct") return;
  // The relay forwards the same envelope to carol, as from alice and as from bob.
  const asAlice = relay.inject(c, { type: "directFrom", from: a.id, envelope: record.envelope });
  const asBob = relay.inject(c, { type: "directFrom", from: b.id, envelope: record.envelope });
  assert.deepEqual(warnings([...asAlice, ...asBob]), ["bad-envelope", "bad-envelope"]);
  assert.deepEqual(directTexts(c), []);
  // Flipping any byte of the message makes bob refuse it (a changed counter may read as a
  // replay), and no failed attempt moves bob's chain.
  for (let position = 0; position < record.envelope.length; position += 3) {
    const mutated = record.envelope.slice();
    mutated[position] ^= 0x20;
    const events = relay.inject(b, { type: "directFrom", from: a.id, envelope: mutated });
    assert.deepEqual(messages(events), [], `byte ${position}`);
    assert.equal(warnings(events).length, 1, `byte ${position}`);
  }
  relay.direct(a, b, "and a second one");
  assert.deepEqual(directTexts(b), ["for bob's eyes only", "and a second one"]);
  // The same direct message replayed is refused, never shown twice.
  const replayed = relay.inject(b, { type: "directFrom", from: a.id, envelope: record.envelope });
  assert.deepEqual(warnings(replayed), ["replayed"]);
  assert.deepEqual(messages(replayed), []);
  assert.deepEqual(directTexts(b), ["for bob's eyes only", "and a second one"]);
});

Deno.test("room: records about unknown members and a second welcome change nothing", () => {
  const { relay, a, b } = threeMembers();
  const unknown = relay.inject(a, {
    type: "deliver",
    seq: 0,
    from: 4242,
    message: new Uint8Array(100),
  });
  assert.deepEqual(warnings(unknown), ["unknown-member"]);
  const unknownDirect = relay.inject(a, {
    type: "directFrom",
    from: 4242,
    envelope: new Uint8Array(80),
  });
  assert.deepEqual(warnings(unknownDirect), ["unknown-member"]);
  assert.deepEqual(relay.inject(a, { type: "memberOffline", memberId: 4242, reason: 1 }), []);
  // A second welcome must not reset the member list or the epoch.
  const again = relay.inject(a, {
    type: "welcome",
    memberId: 77,
    durable: false,
    head: 0,
    members: [],
  });
  assert.deepEqual(again, []);
  assert.equal(a.session.memberId, a.id);
  assert.equal(a.session.epoch, 1);
  // A memberJoined that names alice herself, or repeats bob, is ignored.
  assert.deepEqual(relay.inject(a, { type: "memberOnline", member: a.entry }), []);
  assert.deepEqual(relay.inject(a, { type: "memberOnline", member: b.entry }), []);
  assert.equal(a.session.members().length, 2);
});

Deno.test("room: an announcement the relay replays from a departed member never shows or counts", () => {
  let now = TIME;
  const clock = () => now;
  const relay = new FakeRelay();
  const a = relay.join("alice", { now: clock });
  const b = relay.join("bob", { now: clock });
  relay.leave(a);
  // Carol joins later; the relay lists alice's old entry as if she were still here.
  const c = relay.join("carol", { now: clock });
  const replayed = relay.inject(c, { type: "memberOnline", member: { ...a.entry, memberId: 77 } });
  assert.deepEqual(warnings(replayed), []);
  assert.deepEqual(c.session.members().map((m) => m.nick), ["bob"]);
  assert.deepEqual(c.session.encryptTexts(["who is here?"]).readers, { online: 1, later: 0 });
  assert.equal(c.session.settled, false, "alice has not answered yet");
  now += 5_000;
  const { events } = c.session.tick();
  assert.deepEqual(warnings(events), ["no-answer"]);
  assert.ok(c.session.settled);
  assert.ok(!c.events.some((e) => e.type === "member-joined" && e.member.nick === "alice"));
  // Alice's old handshake messages, replayed to carol, open nothing.
  for (const envelope of relay.directs(a, b)) {
    const events = relay.inject(c, { type: "directFrom", from: 77, envelope });
    assert.deepEqual(messages(events), []);
  }
  assert.deepEqual(c.session.members().map((m) => m.nick), ["bob"]);
});

Deno.test("room: the withheld tail of an old epoch is reported when the new key arrives", () => {
  const { relay, a, b, c } = threeMembers();
  relay.publish(a, ["one"]);
  relay.publish(a, ["two"], [c]);
  relay.publish(a, ["three"], [c]);
  relay.leave(c);
  relay.publish(a, ["four, under a new key"]);
  assert.equal(a.session.epoch, 2);
  assert.deepEqual(texts(b, a), ["one", "four, under a new key"]);
  const gap = b.events.find((e) => e.type === "warning" && e.code === "gap");
  assert.ok(gap?.type === "warning" && gap.text.startsWith("2 message(s) from alice"), "gap of 2");
});

Deno.test("room: held messages of an epoch whose key never came are reported, not dropped", () => {
  const { relay, a, b, c } = threeMembers();
  relay.publish(a, ["epoch one"]);
  // Carol leaves; alice's epoch-2 key to bob is withheld, her epoch-2 message reaches him.
  let withhold = true;
  relay.hold = (from, to, record) => withhold && from === a && to === b && isData(record);
  relay.leave(c);
  relay.publish(a, ["epoch two"]);
  assert.deepEqual(texts(b, a), ["epoch one"]);
  withhold = false;
  // Dave comes and goes: alice's next message is under epoch 3, whose key bob gets.
  const d = relay.join("dave");
  relay.leave(d);
  relay.publish(a, ["epoch three"]);
  assert.equal(a.session.epoch, 3);
  assert.deepEqual(texts(b, a), ["epoch one", "epoch three"]);
  const gaps = b.events.filter((e) => e.type === "warning" && e.code === "gap");
  // One pairwise message (the epoch-2 key) and one group message (held under epoch 2) missing.
  assert.ok(gaps.some((e) => e.type === "warning" && e.text.startsWith("1 pairwise message")));
  assert.ok(gaps.some((e) => e.type === "warning" && e.text.startsWith("1 message(s) from alice")));
});

Deno.test("room: a message for a future epoch is verified before it is held, and holding is capped", () => {
  const { relay, a, b, c } = threeMembers();
  // Carol signs a future-epoch message and the relay says it is alice's: refused at once.
  const carolsOwn = OutboundSenderKey.create({ identity: c.identity, epoch: 9 });
  const forged = carolsOwn.encrypt({ context: utf8(ROOM), plaintext: new Uint8Array(10) });
  assert.deepEqual(
    warnings(relay.inject(b, { type: "deliver", seq: 0, from: a.id, message: forged })),
    [
      "forged",
    ],
  );
  // Alice's own client floods future-epoch messages: bob holds 1,024, then refuses, loudly.
  const future = OutboundSenderKey.create({ identity: a.identity, epoch: 99 });
  const refused: string[] = [];
  for (let i = 0; i < RECEIVE_LIMITS.heldMessagesPerSender + 10; i++) {
    const message = future.encrypt({ context: utf8(ROOM), plaintext: new Uint8Array(16) });
    refused.push(...warnings(relay.inject(b, { type: "deliver", seq: 0, from: a.id, message })));
  }
  assert.deepEqual(refused, Array(10).fill("too-many-pending"));
  // Alice's real messages still arrive.
  relay.publish(a, ["still here"]);
  assert.deepEqual(texts(b, a), ["still here"]);
});

Deno.test("room: a far-ahead signed message with a bad ciphertext costs one walk and is not replayable", () => {
  const { relay, a, b } = threeMembers();
  relay.publish(a, ["hello"]);
  // Alice's (faulty or hostile) client signs messages under her epoch but with another chain.
  const far = (iteration: number) =>
    OutboundSenderKey.create({ identity: a.identity, epoch: 1, iteration }).encrypt({
      context: utf8(ROOM),
      plaintext: new Uint8Array(16),
    });
  const first = far(1 + MAX_SKIPPED_MESSAGES);
  assert.deepEqual(
    warnings(relay.inject(b, { type: "deliver", seq: 0, from: a.id, message: first })),
    [
      "tampered",
    ],
  );
  // The walk was committed: replaying the same message is a cheap refusal, every time.
  for (let i = 0; i < 5; i++) {
    assert.deepEqual(
      warnings(relay.inject(b, { type: "deliver", seq: 0, from: a.id, message: first })),
      [
        "replayed",
      ],
    );
  }
  // New far-ahead messages drain the sender's budget; then they are refused without a walk.
  const codes: string[] = [];
  for (let i = 2; i < 6; i++) {
    const message = far(i * (MAX_SKIPPED_MESSAGES + 1));
    codes.push(...warnings(relay.inject(b, { type: "deliver", seq: 0, from: a.id, message })));
  }
  assert.equal(codes[0], "tampered");
  assert.ok(codes.includes("over-budget"), codes.join(", "));
});
