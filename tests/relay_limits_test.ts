/**
 * The relay's limits, one at a time, in process: connection caps and which
 * pending handshake makes room, the per-connection rate limit, the slow
 * reader's bounded queue, the room cap, and the `serve` flags that set them.
 */
import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import { connectHandshake, encodePreamble, SecureChannel } from "../lib/transport/channel.ts";
import { openSocket } from "../lib/client/client.ts";
import { ProtocolError } from "../lib/core/errors.ts";
import { generateIdentity, type Identity } from "../lib/identity/identity.ts";
import {
  decodeRecord,
  encodeRecord,
  RelayErrorCode,
  type RelayRecord,
} from "../lib/transport/records.ts";
import { addressKey, Relay, RELAY_LIMIT_DEFAULTS, SILENT_AFTER_MS } from "../lib/relay/relay.ts";
import { RoomSession } from "../lib/e2e/room.ts";
import { startRelay as startCliRelay, TempDirs } from "./support/cli_process.ts";
import { delay, joinRoom, startRelay, type TestClient, waitFor } from "./support/in_process.ts";

const ROOM = "ops";

/** A bare TCP connection that counts what the relay sends it and notices the close. */
interface Probe {
  socket: Socket;
  received: number;
  closed: boolean;
}

/** Connects without waiting; `send` goes out as soon as the connection is up. */
function probe(port: number, options: { send?: Uint8Array; localAddress?: string } = {}): Probe {
  const socket = connect({ host: "127.0.0.1", port, localAddress: options.localAddress });
  const state: Probe = { socket, received: 0, closed: false };
  socket.on("error", () => {});
  socket.on("data", (chunk: Uint8Array) => (state.received += chunk.length));
  socket.on("close", () => (state.closed = true));
  if (options.send) {
    const bytes = options.send;
    socket.on("connect", () => socket.write(bytes));
  }
  return state;
}

/** The client's preamble and a well-formed handshake message 1: the relay answers with message 2. */
function messageOne(): Uint8Array {
  const bytes = new Uint8Array(8 + 2 + 32);
  bytes.set(encodePreamble());
  bytes[9] = 32;
  crypto.getRandomValues(bytes.subarray(10));
  return bytes;
}

/** A client speaking records directly. */
interface RawClient {
  identity: Identity;
  channel: SecureChannel;
  socket: Socket;
  records: RelayRecord[];
  closed: boolean;
}

async function rawMember(relay: Relay, nick: string): Promise<RawClient> {
  const identity = generateIdentity();
  const socket = await openSocket({ host: "127.0.0.1", port: relay.address.port }, 3_000);
  const channel = await connectHandshake({
    socket,
    identity,
    verifyRelay: ({ fingerprint }) => assert.equal(fingerprint, relay.fingerprint),
    timeoutMs: 3_000,
  });
  const client: RawClient = { identity, channel, socket, records: [], closed: false };
  channel.onRecord = (bytes) => client.records.push(decodeRecord(bytes));
  channel.onClose = () => (client.closed = true);
  const session = new RoomSession({ identity, room: ROOM, nick });
  channel.send(encodeRecord({ type: "join", announcement: session.announcement }));
  channel.start();
  await waitFor(() => client.records.some((r) => r.type === "welcome"), {
    what: `${nick}'s welcome`,
  });
  return client;
}

function publish(id: number): Uint8Array {
  return encodeRecord({ type: "publish", id, message: new Uint8Array(100) });
}

function errorCode(client: RawClient): number | undefined {
  const error = client.records.find((r) => r.type === "error");
  return error?.type === "error" ? error.code : undefined;
}

async function closeAll(clients: TestClient[], relay: Relay, probes: Probe[] = []): Promise<void> {
  for (const p of probes) p.socket.destroy();
  await Promise.all(clients.map((c) => c.client.close()));
  await relay.close();
}

Deno.test("limits: 1,000 connections that never finish the handshake do not keep a client out", async () => {
  // Default limits: all of these come from 127.0.0.1, like the clients.
  const { relay, port, logs } = await startRelay();
  const attackers: Probe[] = [];
  const clients: TestClient[] = [];
  try {
    // A thousand silent connections, then a client.
    for (let i = 0; i < 1_000; i++) attackers.push(probe(port));
    let start = performance.now();
    clients.push(await joinRoom({ relay, room: ROOM, nick: "first" }));
    const firstMs = performance.now() - start;

    // A thousand connections that each send a valid message 1, which costs the relay a
    // message 2, and stop there; then a client.
    for (let i = 0; i < 1_000; i++) attackers.push(probe(port, { send: messageOne() }));
    start = performance.now();
    clients.push(await joinRoom({ relay, room: ROOM, nick: "second" }));
    const secondMs = performance.now() - start;

    assert.ok(firstMs < 1_000, `joined ${firstMs.toFixed(0)} ms after 1,000 silent connections`);
    assert.ok(
      secondMs < 1_000,
      `joined ${secondMs.toFixed(0)} ms after 1,000 message-1 connections`,
    );
    const { open, pendingHandshakes } = relay.connectionCounts();
    assert.ok(open <= RELAY_LIMIT_DEFAULTS.maxConnectionsPerAddress, `${open} open`);
    assert.ok(pendingHandshakes <= open - 2);
    const evictions = logs.filter((line) =>
      /^dropping .* the connection cap is full/.test(line)
    ).length;
    assert.ok(evictions >= 2_000 - 64, `${evictions} evictions logged`);
    await clients[0].client.send(["still works"]);
    await waitFor(() => clients[1].texts().includes("still works"), { what: "the message" });
  } finally {
    await closeAll(clients, relay, attackers);
  }
});

Deno.test("limits: a full pending-handshake cap closes the oldest silent one, else the oldest", async () => {
  const { relay, port, logs } = await startRelay({ maxPendingHandshakes: 3 });
  const probes: Probe[] = [];
  const opened = (p: Probe) => (probes.push(p), p);
  try {
    const working = opened(probe(port, { send: messageOne() }));
    await waitFor(() => working.received > 8, { what: "message 2" });
    const speaking = opened(probe(port, { send: encodePreamble() }));
    const silent = opened(probe(port));
    await waitFor(() => relay.connectionCounts().pendingHandshakes === 3, { what: "3 pending" });
    await delay(SILENT_AFTER_MS + 50);

    // The newcomer (silent too) pushes out the older silent one, though the others are older still.
    const newcomer = opened(probe(port));
    await waitFor(() => silent.closed, { what: "the older silent connection to be closed" });
    await delay(50);
    assert.deepEqual([working.closed, speaking.closed, newcomer.closed], [false, false, false]);
    assert.equal(relay.connectionCounts().pendingHandshakes, 3);

    // With nobody silent, the oldest goes, however far along.
    newcomer.socket.write(encodePreamble());
    await delay(50);
    const last = opened(probe(port, { send: encodePreamble() }));
    await waitFor(() => working.closed, { what: "the oldest connection to be closed" });
    await delay(50);
    assert.deepEqual([speaking.closed, newcomer.closed, last.closed], [false, false, false]);
    const evictions = logs.filter((line) => /limit 3 pending\)/.test(line));
    assert.equal(evictions.length, 2, evictions.join("\n"));
    assert.match(evictions[0], /^dropping 127\.0\.0\.1:\d+: handshake unfinished \(0 bytes/);
  } finally {
    await closeAll([], relay, probes);
  }
});

Deno.test("limits: the per-address cap makes room from pending handshakes, else refuses before any crypto", async () => {
  const { relay, port, logs } = await startRelay({ maxConnectionsPerAddress: 2 });
  const clients: TestClient[] = [];
  const probes: Probe[] = [];
  try {
    clients.push(await joinRoom({ relay, room: ROOM, nick: "alice" }));
    const idle = probe(port);
    probes.push(idle);
    await waitFor(() => relay.connectionCounts().open === 2, { what: "2 open" });
    // Bob arrives with the address full: the idle connection gives way.
    clients.push(await joinRoom({ relay, room: ROOM, nick: "bob" }));
    await waitFor(() => idle.closed, { what: "the idle connection to be closed" });

    // Two members, no pending handshake: the next one is refused at accept.
    const refused = probe(port);
    probes.push(refused);
    await waitFor(() => refused.closed, { what: "the refusal" });
    assert.equal(refused.received, 0, "a refused connection got the relay's preamble");
    assert.ok(
      logs.some((line) => /^refused 127\.0\.0\.1:\d+: 2 connections from 127\.0\.0\.1/.test(line)),
      logs.join("\n"),
    );
    assert.equal(relay.connectionCounts().open, 2);

    // Another address is not affected (Linux routes all of 127/8 to loopback).
    const elsewhere = probe(port, { localAddress: "127.0.0.2", send: encodePreamble() });
    probes.push(elsewhere);
    await waitFor(() => elsewhere.received >= 8 || elsewhere.closed, { what: "127.0.0.2" });
    if (elsewhere.received === 0) {
      console.log("skipped the 127.0.0.2 check: that address is not usable here");
    } else {
      assert.equal(elsewhere.closed, false);
    }
  } finally {
    await closeAll(clients, relay, probes);
  }
});

Deno.test("limits: the total cap refuses newcomers when every slot is a member, and frees slots", async () => {
  const { relay, port, logs } = await startRelay({ maxConnections: 2 });
  const clients: TestClient[] = [];
  const probes: Probe[] = [];
  try {
    clients.push(await joinRoom({ relay, room: ROOM, nick: "alice" }));
    const bob = await joinRoom({ relay, room: ROOM, nick: "bob" });
    const refused = probe(port);
    probes.push(refused);
    await waitFor(() => refused.closed, { what: "the refusal" });
    assert.equal(refused.received, 0);
    assert.ok(logs.some((line) => /^refused .*: 2 connections are open \(limit 2\)/.test(line)));
    await bob.client.close();
    await waitFor(() => relay.connectionCounts().open === 1, { what: "bob's slot to be freed" });
    clients.push(await joinRoom({ relay, room: ROOM, nick: "carol" }));
    assert.equal(relay.roomSizes().get(ROOM), 2);
  } finally {
    await closeAll(clients, relay, probes);
  }
});

Deno.test("limits: a flooding client gets 'overloaded' and is dropped; the others carry on", async () => {
  const { relay, logs } = await startRelay({ rateLimitPerSecond: 20, rateBurst: 50 });
  const alice = await joinRoom({ relay, room: ROOM, nick: "alice" });
  const bob = await joinRoom({ relay, room: ROOM, nick: "bob" });
  const flooder = await rawMember(relay, "flood");
  try {
    await waitFor(() => relay.roomSizes().get(ROOM) === 3, { what: "the flooder in the room" });
    for (let id = 1; id <= 500; id++) flooder.channel.send(publish(id));
    await waitFor(() => flooder.closed, { what: "the flooder to be dropped" });
    assert.equal(errorCode(flooder), RelayErrorCode.overloaded);
    const acks = flooder.records.filter((r) => r.type === "ack").length;
    // The join took one token of the 50; refill during the batch is a fraction of one.
    assert.ok(acks >= 45 && acks <= 50, `${acks} publishes went through`);
    assert.ok(
      logs.some((line) => /^dropping .*over the rate limit \(20 records\/s, burst 50\)/.test(line)),
      logs.join("\n"),
    );
    // It left the room at once, not after its socket finished closing.
    await waitFor(() => relay.roomSizes().get(ROOM) === 2, { what: "the flooder to leave" });
    await alice.client.send(["after the flood"]);
    await waitFor(() => bob.texts().includes("after the flood"), { what: "bob reads alice" });
    assert.equal(alice.closed, undefined);
    assert.equal(bob.closed, undefined);
  } finally {
    flooder.channel.destroy();
    await closeAll([alice, bob], relay);
  }
});

Deno.test("limits: a client that keeps to the rate is never dropped, even past its burst", async () => {
  const { relay } = await startRelay({ rateLimitPerSecond: 50, rateBurst: 10 });
  const alice = await joinRoom({ relay, room: ROOM, nick: "alice" });
  const steady = await rawMember(relay, "steady");
  try {
    let id = 0;
    // 5 records every 200 ms is 25 per second: 50 records, five times the burst.
    for (let round = 0; round < 10; round++) {
      for (let i = 0; i < 5; i++) steady.channel.send(publish(++id));
      await delay(200);
    }
    await waitFor(() => steady.records.filter((r) => r.type === "ack").length === 50, {
      what: "50 acks",
    });
    assert.equal(steady.closed, false);
    assert.equal(errorCode(steady), undefined);
  } finally {
    steady.channel.destroy();
    await closeAll([alice], relay);
  }
});

Deno.test("limits: a member that never reads costs at most its queue limit, then nothing", async () => {
  const limit = 1024 * 1024;
  const logs: string[] = [];
  let dropped = false;
  const { relay } = await startRelay({
    maxQueuedBytesPerConnection: limit,
    log: (line) => {
      logs.push(line);
      if (/stopped reading/.test(line)) dropped = true;
    },
  });
  const alice = await joinRoom({ relay, room: ROOM, nick: "alice" });
  const bob = await joinRoom({ relay, room: ROOM, nick: "bob" });
  const sloth = await rawMember(relay, "sloth");
  // Every record the relay queues for the sloth passes through its relay-side channel.
  const prototype = SecureChannel.prototype;
  const originalSend = prototype.send;
  let maxQueued = 0;
  let queuedAfterDrop = 0;
  prototype.send = function (this: SecureChannel, record: Uint8Array) {
    originalSend.call(this, record);
    if (this.remoteFingerprint !== sloth.identity.fingerprint) return;
    if (dropped) queuedAfterDrop += record.length;
    maxQueued = Math.max(maxQueued, this.bufferedBytes);
  };
  try {
    sloth.socket.pause();
    await waitFor(() => relay.roomSizes().get(ROOM) === 3, { what: "the sloth in the room" });
    const text = "x".repeat(60_000);
    let sent = 0;
    // Bounded: 42 MiB at most; the sloth goes after about 1 MiB plus the socket buffers.
    for (let i = 0; i < 700 && !dropped; i++, sent++) await alice.client.send([`${i} ${text}`]);
    assert.ok(dropped, "the sloth was never dropped");
    assert.equal(relay.roomSizes().get(ROOM), 2, "the sloth is out of the room at once");
    // Another 6 MB: none of it may be queued for the sloth.
    for (let i = 0; i < 100; i++, sent++) await alice.client.send([`after ${i} ${text}`]);
    assert.equal(queuedAfterDrop, 0, `${queuedAfterDrop} bytes queued for a dropped member`);
    assert.ok(maxQueued <= limit + 70_000, `${maxQueued} bytes were queued for the sloth`);
    await waitFor(() => bob.texts().length === sent, { what: "bob reads everything" });
    assert.deepEqual(bob.warnings(), []);
    assert.equal(bob.closed, undefined);
  } finally {
    prototype.send = originalSend;
    sloth.channel.destroy();
    await closeAll([alice, bob], relay);
  }
});

Deno.test("limits: a member dropped while a newcomer is announced does not hold the newcomer up", async () => {
  // Sized so that announcing bob (a 64-byte nick) overflows alice's queue, while bob's own
  // welcome and alice's leave notice fit in his.
  const announcement = (nick: string) =>
    new RoomSession({ identity: generateIdentity(), room: ROOM, nick }).announcement;
  const entry = (nick: string) => ({
    memberId: 1,
    identityPublicKey: new Uint8Array(32),
    online: true,
    announcement: announcement(nick),
  });
  const bobNick = "b".repeat(64);
  const joined = 4 + encodeRecord({ type: "memberOnline", member: entry(bobNick) }).length;
  const bobQueue = 4 +
    encodeRecord({ type: "welcome", memberId: 2, durable: false, head: 0, members: [entry("a")] })
      .length +
    4 + encodeRecord({ type: "memberOffline", memberId: 1, reason: 1 }).length;
  assert.ok(bobQueue < joined - 1);
  const { relay, logs } = await startRelay({ maxQueuedBytesPerConnection: joined - 1 });
  const alice = await joinRoom({ relay, room: ROOM, nick: "a" });
  const bob = await joinRoom({ relay, room: ROOM, nick: bobNick });
  try {
    // Bob's welcome listed alice, but she was gone before any handshake: bob's join settled
    // (it resolved) without ever showing her.
    assert.ok(logs.some((line) => /dropping member \d+ \(a\): it stopped reading/.test(line)));
    assert.deepEqual(relay.roomSizes(), new Map([[ROOM, 1]]));
    assert.deepEqual(bob.client.members(), []);
    assert.ok(!bob.events.some((e) => e.type === "member-joined"));
    assert.equal(bob.closed, undefined);
  } finally {
    await closeAll([alice, bob], relay);
  }
});

Deno.test("limits: a full room refuses the next member with 'overloaded'", async () => {
  const { relay, logs } = await startRelay({ maxRoomMembers: 2 });
  const clients = [
    await joinRoom({ relay, room: ROOM, nick: "alice" }),
    await joinRoom({ relay, room: ROOM, nick: "bob" }),
  ];
  try {
    await assert.rejects(
      joinRoom({ relay, room: ROOM, nick: "carol" }),
      (error: Error) => error instanceof ProtocolError && /room "ops" is full/.test(error.message),
    );
    assert.ok(logs.some((line) => /^refused .* join: room "ops" is full/.test(line)));
    clients.push(await joinRoom({ relay, room: "other", nick: "carol" }));
    assert.deepEqual(relay.roomSizes(), new Map([[ROOM, 2], ["other", 1]]));
  } finally {
    await closeAll(clients, relay);
  }
});

Deno.test("limits: the default room cap always fits a welcome in one record", () => {
  const longest = new RoomSession({
    identity: generateIdentity(),
    room: "r".repeat(64),
    nick: "n".repeat(64),
  }).announcement;
  const members = Array.from({ length: RELAY_LIMIT_DEFAULTS.maxRoomMembers }, (_, i) => ({
    memberId: i + 1,
    identityPublicKey: new Uint8Array(32),
    online: true,
    announcement: longest,
  }));
  const welcome = encodeRecord({
    type: "welcome",
    memberId: 1_000,
    durable: false,
    head: 0,
    members,
  });
  assert.ok(welcome.length <= 256 * 1024, `${welcome.length} bytes`);
  // The burst covers the rekey a member sends when someone leaves the fullest room.
  assert.ok(RELAY_LIMIT_DEFAULTS.rateBurst >= RELAY_LIMIT_DEFAULTS.maxRoomMembers - 1);
});

Deno.test("limits: per-address keys: IPv4 as is, mapped IPv4 unwrapped, IPv6 by /64", () => {
  assert.equal(addressKey("127.0.0.1"), "127.0.0.1");
  assert.equal(addressKey("::ffff:192.0.2.7"), "192.0.2.7");
  assert.equal(addressKey("::FFFF:192.0.2.7"), "192.0.2.7");
  assert.equal(addressKey("2001:db8:1:2:aa::1"), "2001:db8:1:2::/64");
  assert.equal(addressKey("2001:0db8:0001:0002:ffff:1:2:3"), "2001:db8:1:2::/64");
  assert.equal(addressKey("2001:db8::1"), "2001:db8:0:0::/64");
  assert.equal(addressKey("2001:db8::"), "2001:db8:0:0::/64");
  assert.equal(addressKey("::1"), "0:0:0:0::/64");
  assert.equal(addressKey("fe80::1%eth0"), "fe80:0:0:0::/64");
  assert.equal(addressKey("2001:db8:1:2::5"), addressKey("2001:db8:1:2:ffff::9"));
  assert.notEqual(addressKey("2001:db8:1:2::5"), addressKey("2001:db8:1:3::5"));
});

Deno.test("limits: nonsense limits are refused when the relay starts", async () => {
  for (const options of [{ rateBurst: 0 }, { maxConnections: -1 }, { maxPendingHandshakes: NaN }]) {
    await assert.rejects(
      Relay.listen({ identity: generateIdentity(), port: 0, ...options }),
      RangeError,
    );
  }
});

Deno.test("limits: serve's flags reach the relay", async () => {
  const dirs = new TempDirs();
  const relay = await startCliRelay({
    home: dirs.make("relay"),
    extraArgs: [
      "--max-connections-per-address",
      "1",
      "--max-pending-handshakes",
      "1",
      "--rate-limit",
      "5",
      "--rate-burst",
      "5",
      "--max-room-members",
      "3",
    ],
  });
  const port = Number(relay.address.split(":").at(-1));
  const probes: Probe[] = [];
  try {
    const first = probe(port, { send: encodePreamble() });
    probes.push(first);
    await waitFor(() => first.received >= 8, { what: "the preamble" });
    // Per address 1 with a handshake pending: the newcomer takes its slot.
    const second = probe(port, { send: encodePreamble() });
    probes.push(second);
    await waitFor(() => first.closed && second.received >= 8, { what: "the eviction" });
    await relay.proc.waitFor("stderr", /dropping 127\.0\.0\.1:\d+: .*limit 1 connections per/);
  } finally {
    for (const p of probes) p.socket.destroy();
    await relay.proc.stop();
    dirs.cleanup();
  }
});
