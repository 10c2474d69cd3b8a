/**
 * The relay's store on NATS JetStream, against real `nats-server`
 * processes: the contract suite every store meets (once as configured, once
 * with a snapshot every three events so that snapshots, log compaction and
 * reloading run all the time), then what only a shared store has: two stores
 * on one JetStream see each other's writes and never hand out a one-time
 * prekey twice.
 */

import assert from "node:assert/strict";
import { connect } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { openNatsRelayStore } from "../lib/relay/store/nats_store.ts";
import type { RelayStore } from "../lib/relay/store/relay_store.ts";
import { body, key, member, readAll, relayStoreContract } from "./support/store_contract.ts";
import { HAVE_NATS, requireNatsServer, startNatsServer } from "./support/nats_server.ts";

requireNatsServer("tests/nats_store_test.ts");

if (HAVE_NATS) {
  relayStoreContract("nats", async () => {
    const server = await startNatsServer();
    return {
      open: (options) => openNatsRelayStore({ servers: server.url, ...options }),
      durable: true,
      cleanup: () => server.stop(),
    };
  });

  relayStoreContract("nats, snapshot every 3 events", async () => {
    const server = await startNatsServer();
    return {
      open: (options) =>
        openNatsRelayStore({
          servers: server.url,
          snapshotEvery: 3,
          bodyCacheBytes: 1,
          ...options,
        }),
      durable: true,
      cleanup: () => server.stop(),
    };
  });
}

const natsTest = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name, ignore: !HAVE_NATS, fn });

natsTest("nats: two relays on one JetStream share rooms, in one order", async () => {
  const server = await startNatsServer();
  const stores: RelayStore[] = [];
  try {
    const a = await openNatsRelayStore({ servers: server.url });
    const b = await openNatsRelayStore({ servers: server.url });
    stores.push(a, b);
    const alice = await a.addMember("ops", member(1, "alice"));
    const bob = await b.addMember("ops", member(2, "bob"));
    assert.ok(alice.status === "added" && bob.status === "added");
    // The nick alice holds on relay A is taken on relay B too.
    assert.equal((await b.addMember("ops", member(3, "alice"))).status, "nickTaken");
    // Appends from both relays at once: one gap-free order, the same everywhere.
    const writes = [];
    for (let i = 0; i < 40; i++) {
      const [store, from] = i % 2 === 0 ? [a, alice.member.memberId] : [b, bob.member.memberId];
      writes.push(store.appendGroup("ops", { from, body: body(`m${i}`) }));
    }
    const results = await Promise.all(writes);
    const seqs = results.map((r) => (r.status === "stored" ? r.seq : -1)).sort((x, y) => x - y);
    assert.deepEqual(seqs, Array.from({ length: 40 }, (_, i) => i + 1));
    const c = await openNatsRelayStore({ servers: server.url });
    stores.push(c);
    const carol = await c.addMember("ops", member(3, "carol"));
    assert.ok(carol.status === "added");
    assert.equal(carol.member.joinedSeq, 40);
    await a.appendGroup("ops", { from: alice.member.memberId, body: body("late") });
    const viaC = await readAll(c, "ops", carol.member.memberId, 0);
    assert.deepEqual(
      viaC.entries.map((e) => e.kind !== "gap" && new TextDecoder().decode(e.body)),
      [
        "late",
      ],
    );
    const forBobViaA = await readAll(a, "ops", bob.member.memberId, 0);
    const forBobViaC = await readAll(c, "ops", bob.member.memberId, 0);
    assert.deepEqual(forBobViaA.entries, forBobViaC.entries);
    assert.equal(forBobViaA.entries.length, 21);
  } finally {
    await Promise.all(stores.map((store) => store.close()));
    await server.stop();
  }
});

natsTest("nats: one-time prekeys are handed out once across relays", async () => {
  const server = await startNatsServer();
  const stores: RelayStore[] = [];
  try {
    for (let i = 0; i < 3; i++) stores.push(await openNatsRelayStore({ servers: server.url }));
    await stores[0].putPrekeys(key(9), {
      signed: { id: 1, body: body("signed") },
      oneTime: Array.from({ length: 60 }, (_, id) => ({ id, body: body(`once-${id}`) })),
    });
    const handouts = await Promise.all(
      Array.from({ length: 90 }, (_, i) => stores[i % 3].takePrekeys(key(9))),
    );
    const ids = handouts.flatMap((h) => (h?.oneTime ? [h.oneTime.id] : []));
    assert.equal(ids.length, 60);
    assert.equal(new Set(ids).size, 60);
    assert.equal((await stores[1].prekeyStatus(key(9))).oneTimeCount, 0);
  } finally {
    await Promise.all(stores.map((store) => store.close()));
    await server.stop();
  }
});

natsTest("nats: snapshots let the log be purged, and a new relay starts from them", async () => {
  const server = await startNatsServer();
  const stores: RelayStore[] = [];
  try {
    const a = await openNatsRelayStore({ servers: server.url, snapshotEvery: 10 });
    stores.push(a);
    const alice = await a.addMember("ops", member(1, "alice"));
    const bob = await a.addMember("ops", member(2, "bob"));
    assert.ok(alice.status === "added" && bob.status === "added");
    for (let i = 0; i < 200; i++) {
      const stored = await a.appendGroup("ops", {
        from: alice.member.memberId,
        body: body(`m${i}`),
      });
      assert.ok(stored.status === "stored");
      if (i % 20 === 19) await a.ack("ops", bob.member.memberId, stored.seq - 5);
    }
    await a.prune();
    await a.close(); // waits for the snapshot writes
    const logMessages = await subjectCount(server.url, "securechat.room.log.b3Bz");
    assert.ok(logMessages < 30, `${logMessages} events left of about 212`);
    // A relay that never saw the room: the snapshot, the events after it, the bodies still kept.
    const b = await openNatsRelayStore({ servers: server.url });
    stores.push(b);
    const rest = await readAll(b, "ops", bob.member.memberId, 195);
    assert.deepEqual(
      rest.entries.map((e) => e.kind !== "gap" && new TextDecoder().decode(e.body)),
      ["m195", "m196", "m197", "m198", "m199"],
    );
    const next = await b.appendGroup("ops", { from: bob.member.memberId, body: body("next") });
    assert.ok(next.status === "stored" && next.seq === 201);
    assert.equal((await b.counts()).items, 6);
  } finally {
    await Promise.all(stores.map((store) => store.close()));
    await server.stop();
  }
});

async function subjectCount(url: string, subject: string): Promise<number> {
  const nc = await connect({ servers: url });
  try {
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info("SECURECHAT_ROOMS", { subjects_filter: subject });
    return info.state.subjects?.[subject] ?? 0;
  } finally {
    await nc.close();
  }
}
