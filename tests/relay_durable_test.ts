/**
 * The relay's durable rooms with a real SQLite store in a temporary
 * directory and real clients (ChatClient, each with its own local store):
 * offline delivery, order, restarts, leave, rename, replaced connections,
 * read receipts and limits reported to the sender.
 */

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateIdentity, type Identity } from "../lib/identity/identity.ts";
import { type LocalStore, openLocalStore } from "../lib/client/local_store.ts";
import { openSqliteRelayStore } from "../lib/relay/store/sqlite_store.ts";
import type { RelayStore } from "../lib/relay/store/relay_store.ts";
import { type Relay } from "../lib/relay/relay.ts";
import { MemoryFeedHub } from "../lib/relay/room_feed.ts";
import { joinRoom, startRelay, type TestClient, waitFor } from "./support/in_process.ts";

const ROOM = "ops";

/** One person: an identity and the local store its client keeps between connections. */
interface Person {
  nick: string;
  identity: Identity;
  store: LocalStore;
}

class World {
  dir = mkdtempSync(join(tmpdir(), "securechat-durable-"));
  relay!: Relay;
  store!: RelayStore;
  identity = generateIdentity();
  people: Person[] = [];
  clients: TestClient[] = [];

  async start(limits: Parameters<typeof openSqliteRelayStore>[0]["limits"] = {}): Promise<void> {
    this.store = await openSqliteRelayStore({ dir: join(this.dir, "relay"), limits });
    ({ relay: this.relay } = await startRelay({ identity: this.identity, store: this.store }));
  }

  async restart(): Promise<void> {
    await this.relay.close();
    await this.store.close();
    await this.start();
  }

  async person(nick: string): Promise<Person> {
    const identity = generateIdentity();
    const store = await openLocalStore({ path: join(this.dir, `${nick}.db`), identity });
    const person = { nick, identity, store };
    this.people.push(person);
    return person;
  }

  async join(person: Person, options: { nick?: string } = {}): Promise<TestClient> {
    const client = await joinRoom({
      relay: this.relay,
      room: ROOM,
      nick: options.nick ?? person.nick,
      identity: person.identity,
      store: person.store,
    });
    this.clients.push(client);
    return client;
  }

  async close(): Promise<void> {
    for (const client of this.clients) if (!client.closed) await client.client.close();
    await this.relay.close();
    await this.store.close();
    for (const person of this.people) await person.store.close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Joins and leaves again once, so the relay has the member's roster entry and prekeys. */
async function enrol(world: World, person: Person): Promise<void> {
  const client = await world.join(person);
  await client.client.close();
}

Deno.test("durable: a message sent while a member is away reaches it when it comes back, once", async () => {
  const world = new World();
  await world.start();
  try {
    const alice = await world.person("alice");
    const bob = await world.person("bob");
    await enrol(world, bob);
    const a = await world.join(alice);
    assert.equal(a.client.durable, true);
    const deliveries = await a.client.send(["first", "second"]);
    assert.deepEqual(deliveries.map(({ online, later, refused }) => ({ online, later, refused })), [
      { online: 0, later: 1, refused: 0 },
    ]);
    assert.ok(deliveries[0].seq > 0, "a stored message has a sequence");
    const b = await world.join(bob);
    await waitFor(() => b.texts().length === 2, { what: "bob's stored messages" });
    assert.deepEqual(b.texts(), ["first", "second"]);
    const from = b.events.find((event) => event.type === "message");
    assert.ok(from?.type === "message" && from.from.fingerprint === alice.identity.fingerprint);
    await b.client.close();
    const again = await world.join(bob);
    await a.client.send(["third"]);
    await waitFor(() => again.texts().length === 1, { what: "bob's live message" });
    assert.deepEqual(again.texts(), ["third"], "nothing read before is sent again");
  } finally {
    await world.close();
  }
});

Deno.test("durable: stored messages survive a relay restart on the same data directory", async () => {
  const world = new World();
  await world.start();
  try {
    const alice = await world.person("alice");
    const bob = await world.person("bob");
    await enrol(world, bob);
    const a = await world.join(alice);
    await a.client.send(["kept across the restart"]);
    await a.client.close();
    await world.restart();
    const b = await world.join(bob);
    await waitFor(() => b.texts().length === 1, { what: "the message stored before the restart" });
    assert.deepEqual(b.texts(), ["kept across the restart"]);
    const roster = b.client.roster().map((member) => member.nick).sort();
    assert.deepEqual(roster, ["alice", "bob"].filter((nick) => nick !== "bob"));
  } finally {
    await world.close();
  }
});

Deno.test("durable: a member coming back while others send gets every message in order, none twice", async () => {
  const world = new World();
  await world.start();
  try {
    const alice = await world.person("alice");
    const bob = await world.person("bob");
    await enrol(world, bob);
    const a = await world.join(alice);
    const texts = Array.from({ length: 60 }, (_, i) => `m${i}`);
    await a.client.send(texts.slice(0, 30).map((text) => text));
    // The second half goes out one by one while bob's catch-up is under way.
    const sending = (async () => {
      for (const text of texts.slice(30)) await a.client.send([text]);
    })();
    const b = await world.join(bob);
    await sending;
    await waitFor(() => b.texts().length >= 60, { what: "all 60 messages", timeoutMs: 15_000 });
    assert.deepEqual(b.texts(), texts);
  } finally {
    await world.close();
  }
});

Deno.test("durable: a member who leaves is off the roster, and nothing more is kept for it", async () => {
  const world = new World();
  await world.start();
  try {
    const alice = await world.person("alice");
    const bob = await world.person("bob");
    const a = await world.join(alice);
    const b = await world.join(bob);
    await b.client.leave();
    await waitFor(
      () => a.events.some((event) => event.type === "member-left"),
      { what: "alice hearing that bob left" },
    );
    const [delivery] = await a.client.send(["after bob left"]);
    assert.equal(delivery.online + delivery.later, 0, "bob is not counted");
    const roster = await world.store.listMembers(ROOM);
    assert.deepEqual(roster.map((member) => member.nick), ["alice"]);
  } finally {
    await world.close();
  }
});

Deno.test("durable: a second connection of the same member replaces the first", async () => {
  const world = new World();
  await world.start();
  try {
    const alice = await world.person("alice");
    const first = await world.join(alice);
    const second = await world.join(alice);
    await waitFor(() => first.closed !== undefined, { what: "the older connection to close" });
    assert.match(first.closed!.error?.message ?? "", /replaced by a newer connection/);
    assert.equal(second.closed, undefined);
    assert.equal(world.relay.roomSizes().get(ROOM), 1);
  } finally {
    await world.close();
  }
});

Deno.test("durable: a rename keeps the member and its messages, and others see the new nick", async () => {
  const world = new World();
  await world.start();
  try {
    const alice = await world.person("alice");
    const bob = await world.person("bob");
    const a = await world.join(alice);
    const b = await world.join(bob);
    b.client.rename("robert");
    await waitFor(
      () => a.events.some((event) => event.type === "member-renamed"),
      { what: "alice seeing the rename" },
    );
    const renamed = a.events.find((event) => event.type === "member-renamed");
    assert.ok(renamed?.type === "member-renamed");
    assert.equal(renamed.member.nick, "robert");
    assert.equal(renamed.previousNick, "bob");
    const roster = await world.store.listMembers(ROOM);
    assert.deepEqual(roster.map((member) => member.nick).sort(), ["alice", "robert"]);
    await a.client.send(["hi robert"]);
    await waitFor(() => b.texts().length === 1, { what: "robert's message" });
  } finally {
    await world.close();
  }
});

Deno.test("durable: read receipts wait until every other member has acknowledged", async () => {
  const world = new World();
  await world.start();
  try {
    const alice = await world.person("alice");
    const bob = await world.person("bob");
    await enrol(world, bob);
    const a = await world.join(alice);
    const [delivery] = await a.client.send(["read me"]);
    let read = false;
    const waiting = a.client.waitRead(delivery.seq).then(() => read = true);
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(read, false, "bob has not read it yet");
    const b = await world.join(bob);
    await waitFor(() => b.texts().length === 1, { what: "bob reading it" });
    await waitFor(() => read, { what: "the read receipt", timeoutMs: 5_000 });
    await waiting;
  } finally {
    await world.close();
  }
});

Deno.test("durable: a full room refuses new messages and the sender is told, never silently", async () => {
  const world = new World();
  await world.start({ maxRoomBytes: 4_000 });
  try {
    const alice = await world.person("alice");
    const bob = await world.person("bob");
    await enrol(world, bob);
    const a = await world.join(alice);
    let refused = 0;
    for (let i = 0; i < 20 && refused === 0; i++) {
      const [delivery] = await a.client.send([`filler ${i} ${"x".repeat(300)}`]);
      refused += delivery.refused;
    }
    assert.ok(refused > 0, "the relay said a message was not kept");
    assert.equal(a.closed, undefined, "the sender stays connected");
  } finally {
    await world.close();
  }
});

Deno.test("durable: two relays sharing one store and a feed are one room to their members", async () => {
  const dir = mkdtempSync(join(tmpdir(), "securechat-two-relays-"));
  const store = await openSqliteRelayStore({ dir });
  const hub = new MemoryFeedHub();
  const identity = generateIdentity();
  const a = await startRelay({ identity, store, feed: hub.feed("a") });
  const b = await startRelay({ identity, store, feed: hub.feed("b") });
  const clients: TestClient[] = [];
  const stores: LocalStore[] = [];
  const person = async (nick: string, relay: Relay) => {
    const id = generateIdentity();
    const local = await openLocalStore({ path: join(dir, `${nick}.db`), identity: id });
    stores.push(local);
    const joinVia = async (via: Relay) => {
      const client = await joinRoom({ relay: via, room: ROOM, nick, identity: id, store: local });
      clients.push(client);
      return client;
    };
    return { join: joinVia, first: await joinVia(relay) };
  };
  try {
    const alice = await person("alice", a.relay);
    const bob = await person("bob", b.relay);
    // Online at the other relay, then present: the pairwise handshake went through the feed.
    await waitFor(() => alice.first.client.members().some((m) => m.nick === "bob"), {
      what: "alice and bob, on two relays, present to each other",
    });
    const [live] = await alice.first.client.send(["across relays"]);
    assert.equal(live.online, 1);
    await waitFor(() => bob.first.texts().length === 1, { what: "bob's live message via b" });
    await bob.first.client.send(["and back"]);
    await waitFor(() => alice.first.texts().length === 1, { what: "alice's message via a" });
    // Bob goes away; alice writes through a; bob comes back through a.
    await bob.first.client.close();
    await waitFor(() => !alice.first.client.roster().some((m) => m.nick === "bob" && m.online), {
      what: "alice seeing bob go offline",
    });
    const [stored] = await alice.first.client.send(["while you were away"]);
    assert.equal(stored.later, 1);
    const back = await bob.join(a.relay);
    await waitFor(() => back.texts().length === 1, { what: "bob's stored message" });
    assert.deepEqual(back.texts(), ["while you were away"]);
  } finally {
    for (const client of clients) if (!client.closed) await client.client.close();
    await a.relay.close();
    await b.relay.close();
    await store.close();
    for (const local of stores) await local.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

Deno.test("durable: a relay that cannot listen leaves nothing running, so its process can end", async () => {
  const world = new World();
  await world.start();
  try {
    // In a process of its own: listen on the port already taken, close the store, and return.
    // Nothing may keep that process alive afterwards (a prune timer once did, under Node).
    const script = `
      import { Relay } from ${
      JSON.stringify(new URL("../lib/relay/relay.ts", import.meta.url).href)
    };
      import { openMemoryRelayStore } from ${
      JSON.stringify(new URL("../lib/relay/store/sqlite_store.ts", import.meta.url).href)
    };
      import { generateIdentity } from ${
      JSON.stringify(new URL("../lib/identity/identity.ts", import.meta.url).href)
    };
      const store = await openMemoryRelayStore();
      try {
        await Relay.listen({ identity: generateIdentity(), port: ${world.relay.address.port}, store });
      } catch (error) {
        console.log(error.message);
      }
      await store.close();
    `;
    const child = new Deno.Command(Deno.execPath(), {
      args: ["eval", "--ext=ts", script],
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(20_000),
    });
    const started = Date.now();
    const { stdout, code } = await child.output();
    assert.equal(code, 0);
    assert.match(new TextDecoder().decode(stdout), /address already in use/);
    assert.ok(Date.now() - started < 15_000, "the process ended by itself");
  } finally {
    await world.close();
  }
});
