/**
 * Relays in a cluster on a real `nats-server -js`: several relays sharing
 * the JetStream store and the NATS room feed are one room to their members
 * (live chat across relays in one order, offline delivery across relays,
 * a relay killed with kill -9 and its member failing over to another, a relay
 * whose NATS is gone refusing new messages with error 11), and
 * `serve --cluster` refuses a NATS it cannot use with one line.
 */

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NatsConnection } from "@nats-io/nats-core";
import { generateIdentity, type Identity } from "../lib/identity/identity.ts";
import { type LocalStore, openLocalStore } from "../lib/client/local_store.ts";
import { connectNats } from "../lib/relay/store/nats_connection.ts";
import { openNatsRelayStore } from "../lib/relay/store/nats_store.ts";
import type { RelayStore } from "../lib/relay/store/relay_store.ts";
import { decodeFeedEvent, encodeFeedEvent, NatsRoomFeed } from "../lib/relay/nats_room_feed.ts";
import type { FeedEvent } from "../lib/relay/room_feed.ts";
import type { Relay } from "../lib/relay/relay.ts";
import { joinRoom, rejection, startRelay, type TestClient, waitFor } from "./support/in_process.ts";
import { CliProcess, runCli, startRelay as startServe, TempDirs } from "./support/cli_process.ts";
import {
  freePort,
  HAVE_NATS,
  type NatsServer,
  requireNatsServer,
  startNatsServer,
} from "./support/nats_server.ts";

requireNatsServer("tests/cluster_test.ts");

const natsTest = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name, ignore: !HAVE_NATS, sanitizeOps: false, sanitizeResources: false, fn });

const ROOM = "ops";

/** One relay of the cluster, in this process, with its own NATS connection. */
interface Node {
  relay: Relay;
  connection: NatsConnection;
  store: RelayStore;
  feed: NatsRoomFeed;
}

async function startNode(server: NatsServer, identity: Identity, origin: string): Promise<Node> {
  const connection = await connectNats({ servers: [server.url] });
  const store = await openNatsRelayStore({ connection });
  const feed = NatsRoomFeed.open({ connection, origin });
  const { relay } = await startRelay({ identity, store, feed });
  return { relay, connection, store, feed };
}

async function stopNode(node: Node): Promise<void> {
  await node.relay.close();
  await node.feed.close();
  await node.store.close();
  await node.connection.close();
}

Deno.test("cluster: feed events round-trip, and malformed ones are refused", () => {
  const events: FeedEvent[] = [
    { type: "appended", room: "ops", seq: 9, origin: "a" },
    { type: "online", room: "ops", memberId: 3, origin: "a" },
    { type: "offline", room: "ops", memberId: 3, reason: "left", origin: "a" },
    { type: "renamed", room: "ops", memberId: 3, origin: "a" },
    { type: "acked", room: "ops", memberId: 3, seq: 9, origin: "a" },
    {
      type: "direct",
      room: "ops",
      from: 1,
      to: 2,
      envelope: new Uint8Array([1, 2, 3]),
      origin: "a",
    },
  ];
  for (const event of events) assert.deepEqual(decodeFeedEvent(encodeFeedEvent(event)), event);
  const text = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
  for (
    const bad of [
      new Uint8Array([0xff, 0xfe]),
      text([1, 2]),
      text({ v: 2, type: "appended", room: "ops", seq: 1, origin: "a" }),
      text({ v: 1, type: "appended", room: "", seq: 1, origin: "a" }),
      text({ v: 1, type: "appended", room: "ops", seq: -1, origin: "a" }),
      text({ v: 1, type: "online", room: "ops", memberId: 0, origin: "a" }),
      text({ v: 1, type: "offline", room: "ops", memberId: 2, reason: "gone", origin: "a" }),
      text({ v: 1, type: "direct", room: "ops", from: 1, to: 2, envelope: "%%", origin: "a" }),
      text({ v: 1, type: "nuke", room: "ops", origin: "a" }),
      text({ v: 1, type: "appended", room: "ops", seq: 1, origin: "x".repeat(65) }),
    ]
  ) {
    assert.equal(decodeFeedEvent(bad), undefined, new TextDecoder().decode(bad));
  }
});

natsTest(
  "cluster: members on three relays chat in one room, in one order, and get what was sent while away",
  async () => {
    const server = await startNatsServer();
    const dir = mkdtempSync(join(tmpdir(), "securechat-cluster-"));
    const identity = generateIdentity();
    const nodes: Node[] = [];
    const clients: TestClient[] = [];
    const stores: LocalStore[] = [];
    try {
      for (const origin of ["a", "b", "c"]) nodes.push(await startNode(server, identity, origin));
      const person = async (nick: string) => {
        const id = generateIdentity();
        const local = await openLocalStore({ path: join(dir, `${nick}.db`), identity: id });
        stores.push(local);
        return async (node: Node) => {
          const client = await joinRoom({
            relay: node.relay,
            room: ROOM,
            nick,
            identity: id,
            store: local,
          });
          clients.push(client);
          return client;
        };
      };
      const alice = await person("alice");
      const bob = await person("bob");
      const carol = await person("carol");
      const a = await alice(nodes[0]);
      const b = await bob(nodes[1]);
      const c = await carol(nodes[2]);
      await waitFor(() => a.client.roster().filter((m) => m.online).length === 2, {
        what: "alice seeing bob and carol online at other relays",
        timeoutMs: 10_000,
      });
      for (let i = 0; i < 5; i++) {
        await a.client.send([`a${i}`]);
        await b.client.send([`b${i}`]);
      }
      await waitFor(() => c.texts().length === 10, {
        what: "carol's 10 messages",
        timeoutMs: 10_000,
      });
      await waitFor(() => a.texts().length === 5 && b.texts().length === 5, {
        what: "alice and bob each other's",
        timeoutMs: 10_000,
      });
      assert.deepEqual(
        c.texts().filter((text) => text.startsWith("a")),
        ["a0", "a1", "a2", "a3", "a4"],
      );
      // Carol goes away; alice writes through relay a; carol comes back through relay b.
      await c.client.close();
      const [stored] = await a.client.send(["while you were away"]);
      assert.equal(stored.refused, 0, JSON.stringify(stored));
      const back = await carol(nodes[1]);
      await waitFor(() => back.texts().includes("while you were away"), {
        what: "carol's stored message through another relay",
        timeoutMs: 10_000,
      });
    } finally {
      for (const client of clients) if (!client.closed) await client.client.close();
      for (const node of nodes) await stopNode(node);
      for (const local of stores) await local.close();
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

natsTest(
  "cluster: a relay killed with kill -9 loses nothing; its member fails over to another",
  async () => {
    const server = await startNatsServer();
    const dirs = new TempDirs();
    const relayHome = dirs.make("relay");
    const serveArgs = ["--cluster", server.url];
    const first = await startServe({ home: relayHome, extraArgs: serveArgs });
    const second = await startServe({ home: relayHome, extraArgs: serveArgs });
    const both = `${first.address},${second.address}`;
    const ciHome = dirs.make("ci");
    const say = async (text: string) => {
      const sent = await runCli(["join", second.address, "--room", "ops", "--nick", "ci"], {
        home: ciHome,
        input: `${text}\n`,
      });
      assert.equal(sent.code, 0, sent.stderr);
    };
    let bob: CliProcess | undefined;
    try {
      assert.equal(first.fingerprint, second.fingerprint, "one identity for the cluster");
      bob = CliProcess.start(
        ["join", both, "--room", "ops", "--nick", "bob", "--stay", "--count", "3"],
        { home: dirs.make("bob") },
      );
      await bob.waitFor("stderr", /joined room "ops" as bob/);
      await first.proc.waitFor("stderr", /nick=bob /);
      await say("one");
      await bob.waitFor("stdout", /ci: one\n/);
      await first.proc.stop("SIGKILL");
      await bob.waitFor("stderr", /connection to the relay lost/);
      await bob.waitFor("stderr", /reconnected: joined/, 30_000);
      assert.match(bob.stderr, new RegExp(`${first.address}: .*; trying ${second.address}`));
      await say("two");
      await say("three");
      const status = await bob.wait(30_000);
      assert.equal(status.code, 0, bob.describe());
      assert.equal(bob.stdout, "ci: one\nci: two\nci: three\n", "nothing lost, nothing twice");
    } finally {
      if (bob && bob.child.exitCode === null) await bob.stop();
      if (first.proc.child.exitCode === null) await first.proc.stop();
      await second.proc.stop();
      await server.stop();
      dirs.cleanup();
    }
  },
);

natsTest(
  "serve --cluster: an unreachable NATS or a bad address is one line and a non-zero exit",
  async () => {
    const dirs = new TempDirs();
    try {
      const port = await freePort();
      const unreachable = CliProcess.start(
        ["serve", "--listen", "127.0.0.1:0", "--cluster", `nats://127.0.0.1:${port}`],
        { home: dirs.make("relay") },
      );
      const status = await unreachable.wait(30_000);
      assert.equal(status.code, 5, unreachable.describe());
      const lines = unreachable.stderr.trim().split("\n").filter((l) =>
        l.startsWith("securechat:")
      );
      assert.equal(lines.length, 1, unreachable.stderr);
      assert.match(lines[0], /NATS/);
      const bad = CliProcess.start(
        ["serve", "--listen", "127.0.0.1:0", "--cluster", "http://example"],
        { home: dirs.make("relay2") },
      );
      assert.equal((await bad.wait(30_000)).code, 2, bad.describe());
      assert.match(bad.stderr, /^securechat: --cluster: /m);
    } finally {
      dirs.cleanup();
    }
  },
);

natsTest(
  "cluster: a relay whose NATS is gone refuses a new message with error 11, and serves again when NATS is back",
  async () => {
    const server = await startNatsServer();
    const dir = mkdtempSync(join(tmpdir(), "securechat-cluster-"));
    const identity = generateIdentity();
    const clients: TestClient[] = [];
    const stores: LocalStore[] = [];
    let node: Node | undefined;
    try {
      const connection = await connectNats({ servers: [server.url] });
      const store = await openNatsRelayStore({ connection, timeoutMs: 2_000 });
      const feed = NatsRoomFeed.open({ connection, origin: "a" });
      const { relay } = await startRelay({ identity, store, feed });
      node = { relay, connection, store, feed };
      const member = async (nick: string) => {
        const id = generateIdentity();
        const local = await openLocalStore({ path: join(dir, `${nick}.db`), identity: id });
        stores.push(local);
        return async () => {
          const client = await joinRoom({ relay, room: ROOM, nick, identity: id, store: local });
          clients.push(client);
          return client;
        };
      };
      const alice = await member("alice");
      const bob = await member("bob");
      const a = await alice();
      const b = await bob();
      await a.client.send(["before"]);
      await waitFor(() => b.texts().includes("before"), { what: "bob's first", timeoutMs: 10_000 });

      await server.kill();
      const error = await rejection(a.client.send(["while NATS is down"]));
      assert.match(error.message, /store failed; nothing of that request was kept/, error.message);
      await waitFor(() => a.closed !== undefined, { what: "alice told", timeoutMs: 10_000 });
      assert.ok(!b.texts().includes("while NATS is down"), "a message nothing kept was delivered");

      await server.start();
      // Until the relay's connection is back and JetStream has a leader, joins are refused
      // with error 11 too (bounded: 30 tries, 0.5 s apart); then each member comes back.
      const rejoin = async (join: () => Promise<TestClient>) => {
        for (let attempt = 0; attempt < 30; attempt++) {
          const client = await join().catch((error: Error) => {
            assert.match(error.message, /store failed/, error.message);
            return new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 500));
          });
          if (client) return client;
        }
        throw new Error("could not join again after NATS came back");
      };
      const again = await rejoin(alice);
      // Bob's connection may have been ended with error 11 too (a write for him failed while
      // NATS was gone); if so he comes back, and the relay's store resumes him where he was.
      const bobNow = b.closed ? await rejoin(bob) : b;
      const [receipt] = await again.client.send(["after"]);
      assert.equal(receipt.refused, 0, JSON.stringify(receipt));
      await waitFor(() => bobNow.texts().includes("after"), {
        what: "bob's after",
        timeoutMs: 15_000,
      });
      const seen = [...b.texts(), ...(bobNow === b ? [] : bobNow.texts())];
      assert.ok(!seen.includes("while NATS is down"), "a refused message was delivered");
      assert.equal(seen.filter((t) => t === "before").length, 1, seen.join(","));
    } finally {
      for (const client of clients) if (!client.closed) await client.client.close();
      if (node) await stopNode(node);
      for (const local of stores) await local.close();
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
