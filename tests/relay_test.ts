import assert from "node:assert/strict";
import type { Socket } from "node:net";
import { concat, utf8 } from "../lib/core/bytes.ts";
import { connectHandshake, SecureChannel } from "../lib/transport/channel.ts";
import { openSocket } from "../lib/client/client.ts";
import { AuthenticationError, ProtocolError } from "../lib/core/errors.ts";
import { generateIdentity, type Identity } from "../lib/identity/identity.ts";
import {
  decodeRecord,
  encodeRecord,
  RelayErrorCode,
  type RelayRecord,
} from "../lib/transport/records.ts";
import { RoomSession } from "../lib/e2e/room.ts";
import { connectVictim, HostileRelay } from "./adversarial/support/hostile_relay.ts";
import {
  containsBytes,
  delay,
  joinRoom,
  rejection,
  startProxy,
  startRelay,
  type TestClient,
  waitFor,
  within,
} from "./support/in_process.ts";

const ROOM = "ops";

/** Waits until every client sees all the others. */
async function allJoined(clients: TestClient[]): Promise<void> {
  await waitFor(
    () => clients.every((c) => c.client.members().length === clients.length - 1),
    { what: "every member to see the others" },
  );
}

/** A client speaking records directly, for behaviour ChatClient never shows. */
interface RawClient {
  identity: Identity;
  channel: SecureChannel;
  socket: Socket;
  records: RelayRecord[];
  closed: { error?: Error } | undefined;
}

async function rawClient(port: number, relayFingerprint: string): Promise<RawClient> {
  const identity = generateIdentity();
  const socket = await openSocket({ host: "127.0.0.1", port }, 3_000);
  const channel = await connectHandshake({
    socket,
    identity,
    verifyRelay: ({ fingerprint }) => assert.equal(fingerprint, relayFingerprint),
    timeoutMs: 3_000,
  });
  const state: RawClient = { identity, channel, socket, records: [], closed: undefined };
  channel.onRecord = (bytes) => state.records.push(decodeRecord(bytes));
  channel.onClose = (error) => {
    state.closed = { error };
  };
  return state;
}

/** A join record for `nick`, announced by the raw client's own identity. */
function joinRecord(client: RawClient, nick: string, room = ROOM): Uint8Array {
  const session = new RoomSession({ identity: client.identity, room, nick });
  return encodeRecord({ type: "join", announcement: session.announcement });
}

Deno.test("relay: three clients exchange messages in order", async () => {
  const { relay } = await startRelay();
  const clients: TestClient[] = [];
  try {
    for (const nick of ["alice", "bob", "carol"]) {
      clients.push(await joinRoom({ relay, room: ROOM, nick }));
    }
    await allJoined(clients);
    assert.deepEqual(relay.roomSizes(), new Map([[ROOM, 3]]));
    const sent = new Map<string, string[]>();
    for (let round = 0; round < 20; round++) {
      await Promise.all(clients.map(async (c) => {
        const texts = [`${c.client.nick} ${round}a`, `${c.client.nick} ${round}b`];
        sent.set(c.client.nick, [...(sent.get(c.client.nick) ?? []), ...texts]);
        const recipients = await c.client.send(texts);
        assert.deepEqual(recipients.map((delivery) => delivery.online), [2]);
      }));
    }
    // A burst without waiting for acknowledgements.
    const burst = Array.from({ length: 300 }, (_, i) => `burst ${i}`);
    const pending = burst.map((text) => clients[0].client.send([text]));
    sent.set("alice", [...sent.get("alice")!, ...burst]);
    await Promise.all(pending);
    for (const reader of clients) {
      await waitFor(
        () =>
          reader.texts().length === [...sent].filter(([n]) => n !== reader.client.nick)
            .reduce((sum, [, t]) => sum + t.length, 0),
        { what: `${reader.client.nick}'s messages` },
      );
      for (const writer of clients) {
        if (writer === reader) continue;
        const fromWriter = reader.events.flatMap((e) =>
          e.type === "message" && e.from.nick === writer.client.nick ? [e.text] : []
        );
        assert.deepEqual(fromWriter, sent.get(writer.client.nick));
      }
      assert.deepEqual(reader.warnings(), []);
    }
  } finally {
    await Promise.all(clients.map((c) => c.client.close()));
    await relay.close();
  }
});

Deno.test("relay: a taken nick makes the second join fail", async () => {
  const { relay } = await startRelay();
  const alice = await joinRoom({ relay, room: ROOM, nick: "alice" });
  try {
    const error = await rejection(joinRoom({ relay, room: ROOM, nick: "alice" }));
    assert.ok(error instanceof ProtocolError, String(error));
    assert.match(error.message, /taken/);
    // The same nick in another room is fine.
    const other = await joinRoom({ relay, room: "elsewhere", nick: "alice" });
    await other.client.close();
    assert.equal(relay.roomSizes().get(ROOM), 1);
    assert.deepEqual(alice.events.filter((e) => e.type === "member-joined"), []);
  } finally {
    await alice.client.close();
    await relay.close();
  }
});

Deno.test("relay: an allow list refuses unlisted clients", async () => {
  const listed = generateIdentity();
  const { relay, logs } = await startRelay({ allow: new Set([listed.fingerprint]) });
  try {
    const stranger = generateIdentity();
    const error = await rejection(joinRoom({ relay, room: ROOM, nick: "eve", identity: stranger }));
    assert.ok(error instanceof AuthenticationError, String(error));
    assert.ok(logs.some((line) => line.includes(stranger.fingerprint) && /allow list/.test(line)));
    assert.equal(relay.roomSizes().size, 0);
    const member = await joinRoom({ relay, room: ROOM, nick: "alice", identity: listed });
    assert.equal(relay.roomSizes().get(ROOM), 1);
    await member.client.close();
  } finally {
    await relay.close();
  }
});

Deno.test("relay: a client sending garbage is dropped and the others carry on", async () => {
  const { relay, logs } = await startRelay();
  const alice = await joinRoom({ relay, room: ROOM, nick: "alice" });
  const bob = await joinRoom({ relay, room: ROOM, nick: "bob" });
  try {
    await allJoined([alice, bob]);
    // 1. A malformed record inside the encrypted stream, after joining.
    const mallory = await rawClient(relay.address.port, relay.fingerprint);
    mallory.channel.send(joinRecord(mallory, "mallory"));
    mallory.channel.start();
    await waitFor(() => mallory.records.some((r) => r.type === "welcome"), { what: "welcome" });
    await waitFor(() => relay.roomSizes().get(ROOM) === 3, { what: "mallory in the room" });
    mallory.channel.send(new Uint8Array([0x7f, 1, 2, 3]));
    await waitFor(() => mallory.closed !== undefined, { what: "mallory dropped" });
    const refusal = mallory.records.find((r) => r.type === "error");
    assert.ok(refusal?.type === "error" && refusal.code === RelayErrorCode.malformed);
    await waitFor(() => relay.roomSizes().get(ROOM) === 2, { what: "mallory out of the room" });

    // 2. Relay-only records from a client.
    const trudy = await rawClient(relay.address.port, relay.fingerprint);
    trudy.channel.send(joinRecord(trudy, "trudy"));
    trudy.channel.send(
      encodeRecord({ type: "deliver", seq: 0, from: 1, message: new Uint8Array(100) }),
    );
    trudy.channel.start();
    await waitFor(() => trudy.closed !== undefined, { what: "trudy dropped" });
    assert.ok(trudy.records.some((r) => r.type === "error" && r.code === RelayErrorCode.malformed));

    // 3. Raw bytes on the socket instead of transport messages.
    const oscar = await rawClient(relay.address.port, relay.fingerprint);
    oscar.channel.send(joinRecord(oscar, "oscar"));
    oscar.channel.start();
    await waitFor(() => oscar.records.some((r) => r.type === "welcome"), { what: "welcome" });
    await waitFor(() => relay.roomSizes().get(ROOM) === 3, { what: "oscar in the room" });
    oscar.socket.write(concat(new Uint8Array([0, 40]), new Uint8Array(40).fill(0x41)));
    await waitFor(() => oscar.closed !== undefined, { what: "oscar dropped" });
    await waitFor(() => relay.roomSizes().get(ROOM) === 2, { what: "oscar out of the room" });
    assert.ok(logs.some((line) => /failed authentication/.test(line)), "log names the reason");

    // 4. Records before joining.
    const early = await rawClient(relay.address.port, relay.fingerprint);
    early.channel.send(encodeRecord({ type: "publish", id: 1, message: new Uint8Array(10) }));
    early.channel.start();
    await waitFor(() => early.closed !== undefined, { what: "early publisher dropped" });
    assert.ok(early.records.some((r) => r.type === "error" && r.code === RelayErrorCode.notJoined));

    // Alice and bob are unaffected.
    await waitFor(() => alice.client.members().length === 1, { what: "room back to two" });
    await alice.client.send(["still here"]);
    await waitFor(() => bob.texts().includes("still here"), { what: "bob reads alice" });
    assert.equal(alice.closed, undefined);
    assert.equal(bob.closed, undefined);
  } finally {
    await alice.client.close();
    await bob.client.close();
    await relay.close();
  }
});

Deno.test("relay: the relay never handles chat plaintext", async () => {
  const { relay, logs } = await startRelay();
  const proxy = await startProxy({ target: { host: "127.0.0.1", port: relay.address.port } });
  // Everything the relay decrypts or encrypts passes through its SecureChannels:
  // record it at that seam (relay-side channels are the ones whose peer is not the relay).
  const seen: Uint8Array[] = [];
  const prototype = SecureChannel.prototype;
  const originalStart = prototype.start;
  const originalSend = prototype.send;
  const atRelay = (channel: SecureChannel) => channel.remoteFingerprint !== relay.fingerprint;
  prototype.start = function (this: SecureChannel) {
    if (atRelay(this)) {
      const inner = this.onRecord;
      this.onRecord = (record) => {
        seen.push(record.slice());
        inner(record);
      };
    }
    return originalStart.call(this);
  };
  prototype.send = function (this: SecureChannel, record: Uint8Array) {
    if (atRelay(this)) seen.push(record.slice());
    return originalSend.call(this, record);
  };
  const clients: TestClient[] = [];
  try {
    for (const nick of ["alice", "bob", "carol"]) {
      clients.push(await joinRoom({ relay, port: proxy.port, room: ROOM, nick }));
    }
    await allJoined(clients);
    const secrets = [
      "the eagle lands at midnight",
      "password: correct horse battery staple",
      "ünïcödé sécret ✓ with emoji 😀",
    ];
    await clients[0].client.send([secrets[0], secrets[1]]);
    await clients[1].client.send([secrets[2]]);
    const bobId = clients[0].client.members().find((m) => m.nick === "bob")!.memberId;
    const directSecret = "a direct whisper for bob";
    clients[0].client.sendDirect(bobId, directSecret);
    await waitFor(
      () =>
        clients[2].texts().length === 3 &&
        clients[1].events.some((e) => e.type === "message" && e.direct),
      { what: "messages delivered" },
    );
    assert.deepEqual(clients[2].texts(), secrets);

    const publishes = seen.filter((record) => record[0] === 0x02).length;
    assert.ok(publishes >= 2, `the hook saw ${publishes} publish records`);
    const wire = [...proxy.captured["to-server"], ...proxy.captured["to-client"]];
    assert.ok(wire.length > 0);
    for (const text of [...secrets, directSecret]) {
      for (const needle of [utf8(text), utf8(text).subarray(2, 10)]) {
        for (const record of seen) {
          assert.ok(!containsBytes(record, needle), `relay handled "${text}"`);
        }
        for (const chunk of wire) {
          assert.ok(!containsBytes(chunk, needle), `wire carried "${text}"`);
        }
      }
      assert.ok(!logs.some((line) => line.includes(text)), `relay logged "${text}"`);
    }
  } finally {
    prototype.start = originalStart;
    prototype.send = originalSend;
    await Promise.all(clients.map((c) => c.client.close()));
    await proxy.close();
    await relay.close();
  }
});

Deno.test("relay: a member that stops reading is dropped and the others continue", async () => {
  const limit = 512 * 1024;
  const { relay, logs } = await startRelay({ maxQueuedBytesPerConnection: limit });
  const alice = await joinRoom({ relay, room: ROOM, nick: "alice" });
  const bob = await joinRoom({ relay, room: ROOM, nick: "bob" });
  // The sloth joins, then never reads again: its channel is never started after the welcome.
  const sloth = await rawClient(relay.address.port, relay.fingerprint);
  try {
    sloth.channel.send(joinRecord(sloth, "sloth"));
    sloth.channel.start();
    await waitFor(() => sloth.records.some((r) => r.type === "welcome"), { what: "welcome" });
    sloth.socket.pause();
    await waitFor(() => relay.roomSizes().get(ROOM) === 3, { what: "the sloth in the room" });
    const text = "x".repeat(60_000);
    let sent = 0;
    // Bounded: 40 MiB at most, far more than socket buffers and the limit together.
    for (let i = 0; i < 700 && relay.roomSizes().get(ROOM) === 3; i++) {
      await alice.client.send([`${i} ${text}`]);
      sent++;
    }
    await waitFor(() => relay.roomSizes().get(ROOM) === 2, { what: "the sloth to be dropped" });
    assert.ok(logs.some((line) => /stopped reading/.test(line)), "log names the reason");
    await waitFor(() => bob.texts().length === sent, { what: "bob reads everything" });
    await alice.client.send(["after the sloth"]);
    await waitFor(() => bob.texts().at(-1) === "after the sloth", { what: "bob still reads" });
    assert.equal(bob.closed, undefined);
  } finally {
    sloth.channel.destroy();
    await alice.client.close();
    await bob.client.close();
    await relay.close();
  }
});

Deno.test("relay: close() finishes even with a connected client that never joined", async () => {
  const { relay } = await startRelay();
  const idle = await rawClient(relay.address.port, relay.fingerprint);
  idle.channel.start();
  const member = await joinRoom({ relay, room: ROOM, nick: "alice" });
  try {
    await within(relay.close(), 3_000, "relay.close()");
    await waitFor(() => idle.closed !== undefined, { what: "idle client closed" });
    await waitFor(() => member.closed !== undefined, { what: "member closed" });
  } finally {
    idle.channel.destroy();
    await member.client.close();
  }
});

Deno.test("relay: a member's departure reaches the others and rekeys them", async () => {
  const { relay } = await startRelay();
  const alice = await joinRoom({ relay, room: ROOM, nick: "alice" });
  const bob = await joinRoom({ relay, room: ROOM, nick: "bob" });
  const carol = await joinRoom({ relay, room: ROOM, nick: "carol" });
  try {
    await allJoined([alice, bob, carol]);
    await carol.client.close();
    await waitFor(() => alice.client.members().length === 1 && bob.client.members().length === 1, {
      what: "carol's departure",
    });
    await delay(20);
    await alice.client.send(["after carol"]);
    await waitFor(() => bob.texts().includes("after carol"), { what: "bob reads alice" });
    assert.deepEqual(carol.texts(), []);
    assert.deepEqual(bob.warnings(), []);
  } finally {
    await alice.client.close();
    await bob.client.close();
    await relay.close();
  }
});

Deno.test("relay: nothing a refused client sends afterwards is acted on", async () => {
  const { relay, logs } = await startRelay();
  const alice = await joinRoom({ relay, room: ROOM, nick: "alice" });
  try {
    // Refused for a malformed record, then a join in the same batch.
    const first = await rawClient(relay.address.port, relay.fingerprint);
    first.channel.send(new Uint8Array([0x7f]));
    first.channel.send(joinRecord(first, "ghost"));
    first.channel.start();
    await waitFor(() => first.closed !== undefined, { what: "ghost dropped" });
    // Joined, refused for a second join, then a publish in the same batch.
    const second = await rawClient(relay.address.port, relay.fingerprint);
    second.channel.send(joinRecord(second, "twice"));
    second.channel.start();
    await waitFor(() => second.records.some((r) => r.type === "welcome"), { what: "welcome" });
    second.channel.send(joinRecord(second, "twice"));
    second.channel.send(encodeRecord({ type: "publish", id: 1, message: new Uint8Array(120) }));
    await waitFor(() => second.closed !== undefined, { what: "twice dropped" });
    assert.ok(
      second.records.some((r) => r.type === "error" && r.code === RelayErrorCode.alreadyJoined),
    );
    assert.ok(!second.records.some((r) => r.type === "ack"), "the publish was routed");
    await delay(50);
    // Raw clients never run a pairwise handshake, so alice never shows them; the relay's log
    // says who it let in.
    const joined = logs.flatMap((line) => /join room=\S+ nick=(\S+)/.exec(line)?.[1] ?? []);
    assert.deepEqual(joined, ["alice", "twice"], "a refused client appeared in the room");
    assert.ok(
      !alice.events.some((e) => e.type === "warning"),
      "a refused client's publish arrived",
    );
  } finally {
    await alice.client.close();
    await relay.close();
  }
});

Deno.test("relay: a direct to an unknown member or to oneself is answered with direct-failed", async () => {
  const { relay } = await startRelay();
  const raw = await rawClient(relay.address.port, relay.fingerprint);
  const bob = await joinRoom({ relay, room: ROOM, nick: "bob" });
  try {
    raw.channel.start();
    raw.channel.send(joinRecord(raw, "alice"));
    await waitFor(() => raw.records.some((r) => r.type === "welcome"), { what: "the welcome" });
    const own = raw.records.find((r) => r.type === "welcome")! as { memberId: number };
    raw.channel.send(encodeRecord({ type: "direct", to: 999_999, envelope: new Uint8Array(48) }));
    raw.channel.send(
      encodeRecord({ type: "direct", to: own.memberId, envelope: new Uint8Array(48) }),
    );
    raw.channel.send(encodeRecord({ type: "publish", id: 5, message: new Uint8Array(100) }));
    await waitFor(() => raw.records.some((r) => r.type === "ack"), { what: "the ack" });
    const failed = raw.records.filter((r) => r.type === "directFailed");
    assert.deepEqual(failed, [
      { type: "directFailed", to: 999_999, reason: 1 },
      { type: "directFailed", to: own.memberId, reason: 2 },
    ]);
    assert.equal(raw.closed, undefined, "the connection stays open");

    // The client reports the answer for a direct text it sent, naming the member when it still
    // knows it; pairwise handshakes and keys to a member who just left need no report.
    const hostile = await HostileRelay.start();
    const carol = hostile.addPuppet({ nick: "carol", room: ROOM });
    const victim = await connectVictim({ relay: hostile, room: ROOM, nick: "dave" });
    try {
      const unasked = { type: "directFailed", to: carol.endpoint.memberId, reason: 1 } as const;
      hostile.inject(victim.endpoint, unasked);
      await delay(100);
      assert.deepEqual(victim.warnings(), []);
      victim.client.sendDirect(carol.endpoint.memberId, "are you there?");
      hostile.inject(victim.endpoint, {
        type: "directFailed",
        to: carol.endpoint.memberId,
        reason: 1,
      });
      await waitFor(
        () =>
          victim.events.some((e) =>
            e.type === "warning" && /direct message to carol was not delivered/.test(e.text)
          ),
        { what: "the victim told its direct was not delivered" },
      );
      assert.equal(victim.closed, undefined);
    } finally {
      await victim.client.close();
      await hostile.close();
    }
  } finally {
    raw.channel.destroy();
    await bob.client.close();
    await relay.close();
  }
});
