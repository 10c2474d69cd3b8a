/**
 * Hostile publishers on the cluster's NATS room feed (a real nats-server):
 * garbage and forged events on the feed's subjects. Whoever can publish on
 * the cluster's NATS is inside its trust boundary for presence (PROTOCOL.md),
 * but must not be able to stop a relay from delivering, crash it, or make a
 * member accept anything: messages stay end-to-end authenticated.
 */

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NatsConnection } from "@nats-io/nats-core";
import { generateIdentity, type Identity } from "../../lib/identity/identity.ts";
import { type LocalStore, openLocalStore } from "../../lib/client/local_store.ts";
import { connectNats } from "../../lib/relay/store/nats_connection.ts";
import { openNatsRelayStore, roomKey } from "../../lib/relay/store/nats_store.ts";
import type { RelayStore } from "../../lib/relay/store/relay_store.ts";
import { encodeFeedEvent, NatsRoomFeed } from "../../lib/relay/nats_room_feed.ts";
import type { Relay } from "../../lib/relay/relay.ts";
import { joinRoom, startRelay, type TestClient, waitFor } from "../support/in_process.ts";
import { HAVE_NATS, requireNatsServer, startNatsServer } from "../support/nats_server.ts";
import { Attack } from "./support/scoreboard.ts";
import { guarded } from "./support/observe.ts";

requireNatsServer("tests/adversarial/cluster_feed_test.ts");

interface Node {
  relay: Relay;
  connection: NatsConnection;
  store: RelayStore;
  feed: NatsRoomFeed;
}

async function node(url: string, identity: Identity, origin: string): Promise<Node> {
  const connection = await connectNats({ servers: [url] });
  const store = await openNatsRelayStore({ connection });
  const feed = NatsRoomFeed.open({ connection, origin });
  const { relay } = await startRelay({ identity, store, feed });
  return { relay, connection, store, feed };
}

Deno.test({
  name: "cluster feed: garbage and forged events neither stop delivery nor crash a relay",
  ignore: !HAVE_NATS,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    // Harmless is the bar: no message lost, none shown that was not sent, no relay down.
    const attack = new Attack("NATS publisher: garbage and forged room-feed events", {
      harmless: true,
    });
    const server = await startNatsServer();
    const dir = mkdtempSync(join(tmpdir(), "securechat-adv-feed-"));
    const identity = generateIdentity();
    const nodes: Node[] = [];
    const clients: TestClient[] = [];
    const stores: LocalStore[] = [];
    const hostile = await connectNats({ servers: [server.url] });
    try {
      await guarded(attack, async () => {
        nodes.push(await node(server.url, identity, "a"), await node(server.url, identity, "b"));
        const join = async (nick: string, at: Node) => {
          const id = generateIdentity();
          const local = await openLocalStore({ path: join_(dir, `${nick}.db`), identity: id });
          stores.push(local);
          const client = await joinRoom({
            relay: at.relay,
            room: "ops",
            nick,
            identity: id,
            store: local,
          });
          clients.push(client);
          return client;
        };
        const alice = await join("alice", nodes[0]);
        const bob = await join("bob", nodes[1]);
        const subject = `securechat.feed.room.${roomKey("ops")}`;
        const forged = [
          new Uint8Array([0, 1, 2, 255]),
          new TextEncoder().encode(
            '{"v":1,"type":"appended","room":"ops","seq":1e300,"origin":"x"}',
          ),
          encodeFeedEvent({ type: "appended", room: "ops", seq: 2 ** 53 - 1, origin: "x" }),
          encodeFeedEvent({ type: "online", room: "ops", memberId: 4242, origin: "x" }),
          encodeFeedEvent({
            type: "offline",
            room: "ops",
            memberId: 1,
            reason: "left",
            origin: "x",
          }),
          encodeFeedEvent({
            type: "direct",
            room: "ops",
            from: 2,
            to: 1,
            envelope: new Uint8Array(100).fill(9),
            origin: "x",
          }),
          encodeFeedEvent({
            type: "acked",
            room: "ops",
            memberId: 2,
            seq: 2 ** 53 - 1,
            origin: "x",
          }),
        ];
        for (const bytes of forged) {
          attack.attempt();
          hostile.publish(subject, bytes);
        }
        hostile.publish("securechat.feed.alive", new Uint8Array([1, 2, 3]));
        await hostile.flush();
        await new Promise((resolve) => setTimeout(resolve, 300));
        assert.ok(nodes.every((n) => n.feed.rejected >= 2), "garbage is counted as rejected");
        for (let i = 0; i < 3; i++) {
          await alice.client.send([`after the forgeries ${i}`]);
          await bob.client.send([`bob ${i}`]);
        }
        await waitFor(() => bob.texts().length === 3 && alice.texts().length === 3, {
          what: "both sides' messages after the forgeries",
          timeoutMs: 10_000,
        }).catch(() => {
          attack.lost(6 - bob.texts().length - alice.texts().length, "delivery stopped");
        });
        // The junk direct is a pairwise message that does not open: reported, never shown.
        const shown = [...alice.texts(), ...bob.texts()].filter((t) =>
          !/^(after the|bob )/.test(t)
        );
        if (shown.length > 0) attack.forged(`shown: ${shown.join(", ")}`);
        assert.equal(alice.closed, undefined);
        assert.equal(bob.closed, undefined);
      });
    } finally {
      for (const client of clients) if (!client.closed) await client.client.close();
      for (const n of nodes) {
        await n.relay.close();
        await n.feed.close();
        await n.store.close();
        await n.connection.close();
      }
      for (const local of stores) await local.close();
      await hostile.close();
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
      attack.save();
    }
    assert.ok(attack.clean, attack.summary());
  },
});

function join_(...parts: string[]): string {
  return join(...parts);
}
