/**
 * Part 7 of the attack suite: the cluster store (NATS JetStream) under
 * hostile input, against a real `nats-server`. A client controls room
 * names, nicks, member ids, sizes and acknowledgements: none of it may
 * crash the store, reach another room's subjects, or change the store. A
 * writer on the stream that is not a securechat relay (garbage on a room's
 * log, an event out of the room's chain) is detected in one line and stops
 * only that room. Relays racing on one room lose and duplicate nothing.
 */

import assert from "node:assert/strict";
import { connect } from "@nats-io/transport-node";
import { jetstream } from "@nats-io/jetstream";
import { openNatsRelayStore, roomKey } from "../../lib/relay/store/nats_store.ts";
import { encodeEvent } from "../../lib/relay/store/room_events.ts";
import {
  MAX_MEMBER_ID,
  type RelayStore,
  StoreError,
  StoreInputError,
} from "../../lib/relay/store/relay_store.ts";
import { body, member, readAll } from "../support/store_contract.ts";
import { HAVE_NATS, requireNatsServer, startNatsServer } from "../support/nats_server.ts";
import { ATTEMPTS } from "./support/knobs.ts";
import { guarded } from "./support/observe.ts";
import { Attack } from "./support/scoreboard.ts";

requireNatsServer("tests/adversarial/cluster_store_test.ts");

const clusterTest = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name, ignore: !HAVE_NATS, sanitizeOps: false, sanitizeResources: false, fn });

async function added(store: RelayStore, room: string, n: number, nick: string): Promise<number> {
  const result = await store.addMember(room, member(n, nick));
  assert.ok(result.status === "added", `${nick}: ${result.status}`);
  return result.member.memberId;
}

clusterTest("cluster store: hostile names, ids and sizes are refused or kept apart", async () => {
  const attack = new Attack("cluster store: hostile names and ids");
  const server = await startNatsServer();
  const store = await openNatsRelayStore({ servers: server.url, limits: { maxItemBytes: 4096 } });
  try {
    await guarded(attack, async () => {
      const a = await added(store, "ops", 1, "alice");
      const b = await added(store, "ops", 2, "bob");
      await store.appendGroup("ops", { from: a, body: body("secret for ops") });
      const before = JSON.stringify(await store.counts());
      const bad: [string, () => Promise<unknown>][] = [
        ["member id 0", () => store.appendGroup("ops", { from: 0, body: body("x") })],
        ["member id 2^32", () => store.ack("ops", MAX_MEMBER_ID + 1, 1)],
        ["sequence 2^60", () => store.ack("ops", b, 2 ** 60)],
        ["NaN sequence", () => store.read("ops", b, { afterSeq: Number.NaN })],
        ["huge body", () => store.appendGroup("ops", { from: a, body: new Uint8Array(1 << 20) })],
        ["empty room", () => store.addMember("", member(3, "carol"))],
        ["lone surrogate", () => store.addMember("ops", member(3, "c\udc00"))],
        ["unknown sender", () => store.appendGroup("ops", { from: 999, body: body("x") })],
        [
          "envelope to self",
          () => store.appendEnvelope("ops", { from: a, to: a, body: body("x") }),
        ],
      ];
      for (let round = 0; round < ATTEMPTS; round++) {
        for (const [what, call] of bad) {
          attack.attempt();
          const outcome = await call().then(
            (result) => result,
            (error: unknown) => error,
          );
          const refused = outcome instanceof StoreInputError ||
            (outcome as { status?: string })?.status === "refused";
          if (outcome instanceof Error && !(outcome instanceof StoreInputError)) {
            attack.crash(`${what}: ${outcome.stack}`);
          } else if (!refused) {
            attack.forged(`${what}: accepted (${JSON.stringify(outcome)})`);
          } else {
            attack.detected();
          }
        }
      }
      if (JSON.stringify(await store.counts()) !== before) attack.forged("the store changed");
      // Names made of subject syntax are rooms of their own, never a wildcard over others.
      for (const name of ["ops.>", ">", "*", "ops.*", "a b", "ops\u0000"]) {
        attack.attempt();
        const id = await added(store, name, 9, "mallory");
        const read = await readAll(store, name, id, 0);
        const listed = await store.listMembers(name);
        if (read.entries.length > 0 || listed.length !== 1 || roomKey(name).includes(".")) {
          attack.forged(`room ${JSON.stringify(name)} reached another room`);
        } else {
          attack.detected();
        }
      }
      const forBob = await readAll(store, "ops", b, 0);
      if (forBob.entries.length !== 1) attack.lost(1, "ops lost its item");
    });
  } finally {
    await store.close();
    await server.stop();
    attack.save();
  }
  assert.equal(attack.row.detected, attack.row.attempts, attack.summary());
  assert.ok(attack.clean, attack.summary());
});

clusterTest(
  "cluster store: garbage and out-of-chain events on a room's log stop that room only",
  async () => {
    const attack = new Attack("cluster store: foreign writes to a room log");
    const server = await startNatsServer();
    const store = await openNatsRelayStore({ servers: server.url, timeoutMs: 2_000 });
    const nc = await connect({ servers: server.url });
    try {
      await guarded(attack, async () => {
        const js = jetstream(nc);
        const limits = {
          retentionMs: 1,
          maxRoomBytes: 1,
          maxItemsPerMember: 1,
          maxMembersPerRoom: 1,
        };
        const forged = encodeEvent({
          id: new Uint8Array(16),
          prev: 1, // no room's chain starts there
          time: Date.now(),
          limits,
          ops: [{ type: "remove", memberId: 1 }],
        });
        const writes: [string, Uint8Array][] = [
          ["random bytes", crypto.getRandomValues(new Uint8Array(300))],
          ["an empty message", new Uint8Array(0)],
          ["a truncated event", forged.subarray(0, 20)],
          ["an event out of the chain", forged],
        ];
        const a = await added(store, "ops", 1, "alice");
        const b = await added(store, "ops", 2, "bob");
        const kept = await store.appendGroup("ops", { from: a, body: body("kept") });
        for (const [what, data] of writes) {
          const room = `victim-${what.replaceAll(" ", "-")}`;
          const v = await added(store, room, 1, "alice");
          await store.appendGroup(room, { from: v, body: body("before") });
          attack.attempt();
          await js.publish(`securechat.room.log.${roomKey(room)}`, data);
          // A relay that opens the room now must refuse it in one line, not apply it.
          const fresh = await openNatsRelayStore({ servers: server.url, timeoutMs: 2_000 });
          try {
            const outcome = await fresh.listMembers(room).then((r) => r, (e: unknown) => e);
            if (outcome instanceof StoreError && !outcome.message.includes("\n")) {
              attack.detected();
            } else if (outcome instanceof Error) {
              attack.crash(`${what}: ${outcome.stack}`);
            } else {
              attack.forged(`${what}: applied (${JSON.stringify(outcome)})`);
            }
            // Other rooms keep serving, through both relays.
            const forBob = await readAll(fresh, "ops", b, 0);
            if (forBob.entries.length !== 1 || kept.status !== "stored") {
              attack.lost(1, `${what}: ops lost its item`);
            }
            const more = await store.appendGroup("ops", { from: b, body: body(`after ${what}`) });
            if (more.status !== "stored") attack.lost(1, `${what}: ops refused an append`);
          } finally {
            await fresh.close();
          }
        }
      });
    } finally {
      await nc.close();
      await store.close();
      await server.stop();
      attack.save();
    }
    assert.equal(attack.row.detected, attack.row.attempts, attack.summary());
    assert.ok(attack.clean, attack.summary());
  },
);

clusterTest("cluster store: relays racing on one room lose and duplicate nothing", async () => {
  const attack = new Attack("cluster store: racing relays", { harmless: true });
  const server = await startNatsServer();
  const stores: RelayStore[] = [];
  try {
    await guarded(attack, async () => {
      for (let i = 0; i < 4; i++) stores.push(await openNatsRelayStore({ servers: server.url }));
      const ids = [];
      for (let i = 0; i < 4; i++) ids.push(await added(stores[i], "ops", i + 1, `m${i}`));
      const reader = await added(stores[0], "ops", 9, "reader");
      const acked = new Map<number, string>();
      const writes = [];
      const perRelay = 25 * ATTEMPTS;
      for (let i = 0; i < 4; i++) {
        for (let j = 0; j < perRelay; j++) {
          const text = `r${i}-${j}`;
          attack.attempt();
          writes.push(
            stores[i].appendGroup("ops", { from: ids[i], body: body(text) }).then((result) => {
              if (result.status === "stored") acked.set(result.seq, text);
            }),
          );
        }
      }
      await Promise.all(writes);
      const seen = await readAll(stores[3], "ops", reader, 0);
      const texts = new Map<number, string>();
      for (const entry of seen.entries) {
        if (entry.kind === "gap") continue;
        if (texts.has(entry.seq)) attack.forged(`sequence ${entry.seq} twice`);
        texts.set(entry.seq, new TextDecoder().decode(entry.body));
      }
      const values = [...texts.values()];
      if (new Set(values).size !== values.length) attack.forged("an item stored twice");
      let missing = 0;
      for (const [seq, text] of acked) if (texts.get(seq) !== text) missing++;
      if (missing > 0) attack.lost(missing, "acknowledged items missing");
      if (acked.size !== 4 * perRelay) attack.lost(4 * perRelay - acked.size, "appends refused");
      const seqs = [...texts.keys()];
      if (seqs.some((seq, i) => seq !== i + 1)) attack.forged("holes in the room's sequence");
    });
  } finally {
    await Promise.all(stores.map((store) => store.close()));
    await server.stop();
    attack.save();
  }
  assert.ok(attack.clean, attack.summary());
});
