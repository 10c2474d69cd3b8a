/**
 * Relays in a cluster on a real `nats-server -js`: several relays sharing
 * the JetStream store and the NATS room feed are one room to their members
 * (live chat across relays in one order, offline delivery across relays,
 * a relay killed with kill -9 and its member failing over to another), and
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
import { joinRoom, startRelay, type TestClient, waitFor } from "./support/in_process.ts";
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
