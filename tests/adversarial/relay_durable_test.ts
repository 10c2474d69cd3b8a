/**
 * Hostile members against the relay's durable rooms (a real SQLite store in
 * a temporary directory): draining another member's one-time prekeys,
 * prekeys not signed by the uploader, renames to someone else's nick or
 * with someone else's announcement, acknowledgements out of range, a flood
 * of read watches, a store that fails, and a second connection of the same
 * member. Each has a row on the scoreboard; every honest member's message
 * must still arrive.
 */

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openSocket } from "../../lib/client/client.ts";
import { connectHandshake, type SecureChannel } from "../../lib/transport/channel.ts";
import { generateIdentity, type Identity } from "../../lib/identity/identity.ts";
import {
  decodeRecord,
  encodeRecord,
  RelayErrorCode,
  type RelayRecord,
} from "../../lib/transport/records.ts";
import { RoomSession } from "../../lib/e2e/room.ts";
import { generateOneTimePrekeys, generatePrekey } from "../../lib/e2e/prekeys.ts";
import { openSqliteRelayStore } from "../../lib/relay/store/sqlite_store.ts";
import { type RelayStore, StoreError } from "../../lib/relay/store/relay_store.ts";
import type { Relay } from "../../lib/relay/relay.ts";
import { openLocalStore } from "../../lib/client/local_store.ts";
import { joinRoom, startRelay, waitFor } from "../support/in_process.ts";
import { Attack } from "./support/scoreboard.ts";
import { guarded } from "./support/observe.ts";

const ROOM = "ops";

/** A member speaking raw records. */
interface Raw {
  identity: Identity;
  channel: SecureChannel;
  records: RelayRecord[];
  closed?: { error?: Error };
  send(record: RelayRecord): void;
  error(): number | undefined;
}

async function raw(relay: Relay, identity = generateIdentity()): Promise<Raw> {
  const socket = await openSocket({ host: "127.0.0.1", port: relay.address.port }, 3_000);
  const channel = await connectHandshake({
    socket,
    identity,
    verifyRelay: ({ fingerprint }) => assert.equal(fingerprint, relay.fingerprint),
    timeoutMs: 3_000,
  });
  const member: Raw = {
    identity,
    channel,
    records: [],
    send: (record) => channel.send(encodeRecord(record)),
    error: () => {
      const found = member.records.find((record) => record.type === "error");
      return found?.type === "error" ? found.code : undefined;
    },
  };
  channel.onRecord = (bytes) => member.records.push(decodeRecord(bytes));
  channel.onClose = (error) => member.closed = { error };
  channel.start();
  return member;
}

async function rawJoin(relay: Relay, nick: string, identity = generateIdentity()): Promise<Raw> {
  const member = await raw(relay, identity);
  const session = new RoomSession({ identity, room: ROOM, nick });
  member.send({ type: "join", announcement: session.announcement });
  await waitFor(
    () => member.records.some((r) => r.type === "welcome") || member.closed !== undefined,
    {
      what: `${nick}'s welcome`,
    },
  );
  return member;
}

/** A relay on a real SQLite store; `wrap` may put a faulty layer in front of the store. */
async function world(wrap: (store: RelayStore) => RelayStore = (store) => store) {
  const dir = mkdtempSync(join(tmpdir(), "securechat-adv-durable-"));
  const store = await openSqliteRelayStore({ dir });
  const { relay } = await startRelay({ store: wrap(store) });
  return {
    dir,
    store,
    relay,
    async close() {
      await relay.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Checks that an honest pair (in a room of its own, so silent raw members do not slow its join) still chats. */
async function honestStillServed(relay: Relay, dir: string, text: string): Promise<boolean> {
  const aliceId = generateIdentity();
  const bobId = generateIdentity();
  const aliceStore = await openLocalStore({ path: join(dir, `${text}-a.db`), identity: aliceId });
  const bobStore = await openLocalStore({ path: join(dir, `${text}-b.db`), identity: bobId });
  const alice = await joinRoom({
    relay,
    room: `honest-${text}`,
    nick: "alice",
    identity: aliceId,
    store: aliceStore,
  });
  const bob = await joinRoom({
    relay,
    room: `honest-${text}`,
    nick: "bob",
    identity: bobId,
    store: bobStore,
  });
  try {
    await alice.client.send([text]);
    await waitFor(() => bob.texts().includes(text), { what: `bob's ${text}` });
    return true;
  } catch {
    return false;
  } finally {
    await alice.client.close();
    await bob.client.close();
    await aliceStore.close();
    await bobStore.close();
  }
}

Deno.test("durable relay: a member cannot drain another member's one-time prekeys", async () => {
  const attack = new Attack("member (durable): drain another member's one-time prekeys");
  const w = await world();
  try {
    await guarded(attack, async () => {
      const victimId = generateIdentity();
      const victim = await rawJoin(w.relay, "victim", victimId);
      const signed = generatePrekey({
        identity: victimId,
        kind: "signed",
        id: 1,
        created: Date.now(),
      });
      const oneTime = generateOneTimePrekeys({
        identity: victimId,
        firstId: 1,
        count: 50,
        created: Date.now(),
      });
      victim.send({
        type: "putPrekeys",
        signedPrekey: signed.record,
        oneTimePrekeys: oneTime.map((p) => p.record),
      });
      await waitFor(() => victim.records.some((r) => r.type === "prekeyCount"), {
        what: "prekey-count",
      });
      const thief = await rawJoin(w.relay, "thief");
      const victimId32 = (victim.records.find((r) =>
        r.type === "welcome"
      ) as { memberId: number }).memberId;
      for (let i = 0; i < 50; i++) {
        attack.attempt();
        thief.send({ type: "getPrekeys", id: i + 1, memberId: victimId32 });
      }
      await waitFor(() => thief.records.filter((r) => r.type === "prekeys").length === 50, {
        what: "50 answers",
      });
      const withOneTime = thief.records.filter((r) =>
        r.type === "prekeys" && r.oneTimePrekey.length > 0
      ).length;
      attack.detected(50 - withOneTime);
      const left = (await w.store.prekeyStatus(victimId.publicKey)).oneTimeCount;
      assert.ok(withOneTime <= 11, `${withOneTime} one-time prekeys handed to one member`);
      assert.ok(left >= 39, `${left} of 50 left`);
      assert.ok(thief.records.every((r) => r.type !== "prekeys" || r.signedPrekey.length > 0));
      if (!(await honestStillServed(w.relay, w.dir, "after-drain"))) {
        attack.lost(1, "honest message");
      }
    });
  } finally {
    attack.save();
    await w.close();
  }
  assert.ok(attack.clean, attack.summary());
});

Deno.test("durable relay: prekeys not signed by the uploader are refused with error 12, nothing kept", async () => {
  const attack = new Attack("member (durable): upload prekeys signed by another identity");
  const w = await world();
  try {
    await guarded(attack, async () => {
      const mallory = await rawJoin(w.relay, "mallory");
      const other = generateIdentity();
      const forged = generatePrekey({
        identity: other,
        kind: "signed",
        id: 7,
        created: Date.now(),
      });
      attack.attempt();
      mallory.send({ type: "putPrekeys", signedPrekey: forged.record, oneTimePrekeys: [] });
      await waitFor(() => mallory.closed !== undefined, { what: "mallory refused" });
      if (mallory.error() === RelayErrorCode.badPrekey) attack.detected();
      assert.equal(mallory.error(), RelayErrorCode.badPrekey);
      assert.equal((await w.store.prekeyStatus(mallory.identity.publicKey)).signedId, undefined);
      if (!(await honestStillServed(w.relay, w.dir, "after-forged"))) {
        attack.lost(1, "honest message");
      }
    });
  } finally {
    attack.save();
    await w.close();
  }
  assert.ok(attack.clean, attack.summary());
});

Deno.test("durable relay: a rename cannot take a roster nick or use another identity's announcement", async () => {
  const attack = new Attack("member (durable): rename onto another member's nick or announcement");
  const w = await world();
  try {
    await guarded(attack, async () => {
      const aliceId = generateIdentity();
      const alice = await rawJoin(w.relay, "alice", aliceId);
      alice.channel.close(); // alice is away; her nick stays hers
      await waitFor(() => alice.closed !== undefined, { what: "alice gone" });
      const first = await rawJoin(w.relay, "mallory");
      attack.attempt();
      first.send({
        type: "rename",
        announcement:
          new RoomSession({ identity: first.identity, room: ROOM, nick: "alice" }).announcement,
      });
      await waitFor(() => first.closed !== undefined, { what: "the rename refused" });
      if (first.error() === RelayErrorCode.nickTaken) attack.detected();
      const second = await rawJoin(w.relay, "mallory", first.identity);
      attack.attempt();
      second.send({
        type: "rename",
        announcement:
          new RoomSession({ identity: aliceId, room: ROOM, nick: "alicia" }).announcement,
      });
      await waitFor(() => second.closed !== undefined, {
        what: "the foreign announcement refused",
      });
      if (second.error() === RelayErrorCode.badAnnouncement) attack.detected();
      const nicks = (await w.store.listMembers(ROOM)).map((m) => m.nick).sort();
      assert.deepEqual(nicks, ["alice", "mallory"]);
      const taken = await rawJoin(w.relay, "alice");
      attack.attempt();
      if (taken.error() === RelayErrorCode.nickTaken) attack.detected();
      if (!(await honestStillServed(w.relay, w.dir, "after-rename"))) {
        attack.lost(1, "honest message");
      }
    });
  } finally {
    attack.save();
    await w.close();
  }
  assert.equal(attack.row.detected, attack.row.attempts, attack.summary());
  assert.ok(attack.clean, attack.summary());
});

Deno.test("durable relay: acknowledgements past the head or backwards cost others nothing", async () => {
  const attack = new Attack("member (durable): acknowledge past the head, then backwards", {
    harmless: true,
  });
  const w = await world();
  try {
    await guarded(attack, async () => {
      const mallory = await rawJoin(w.relay, "mallory");
      for (const seq of [2 ** 53 - 1, 0, 5, 1]) {
        attack.attempt();
        mallory.send({ type: "acknowledge", seq });
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.equal(mallory.closed, undefined, "a member's own position is its own business");
      if (!(await honestStillServed(w.relay, w.dir, "after-acks"))) {
        attack.lost(1, "honest message");
      }
    });
  } finally {
    attack.save();
    await w.close();
  }
  assert.ok(attack.clean, attack.summary());
});

Deno.test("durable relay: a flood of read watches ends only that connection", async () => {
  const attack = new Attack("member (durable): 300 read watches");
  const w = await world();
  try {
    await guarded(attack, async () => {
      const mallory = await rawJoin(w.relay, "mallory");
      await rawJoin(w.relay, "bystander"); // someone who never acknowledges
      attack.attempt();
      for (let id = 1; id <= 300; id++) mallory.send({ type: "watchRead", id, seq: 1_000 + id });
      await waitFor(() => mallory.closed !== undefined, { what: "mallory dropped" });
      if (mallory.error() === RelayErrorCode.overloaded) attack.detected();
      if (!(await honestStillServed(w.relay, w.dir, "after-watches"))) {
        attack.lost(1, "honest message");
      }
    });
  } finally {
    attack.save();
    await w.close();
  }
  assert.ok(attack.clean, attack.summary());
});

Deno.test("durable relay: a store that fails answers error 11 to that member, and the relay serves on", async () => {
  const attack = new Attack("store fails under a member (durable)");
  let failing = false;
  const w = await world((store) =>
    new Proxy(store, {
      get(target, property, receiver) {
        const value = Reflect.get(target, property, receiver);
        if (property !== "appendGroup" || typeof value !== "function") {
          return typeof value === "function" ? value.bind(target) : value;
        }
        return (...args: unknown[]) =>
          failing
            ? Promise.reject(new StoreError("relay store: disk I/O error (injected)"))
            : value.apply(target, args);
      },
    })
  );
  try {
    await guarded(attack, async () => {
      const victim = await rawJoin(w.relay, "writer");
      failing = true;
      attack.attempt();
      victim.send({ type: "publish", id: 1, message: new Uint8Array(40).fill(7) });
      await waitFor(() => victim.closed !== undefined, { what: "the writer told" });
      if (victim.error() === RelayErrorCode.storageFailed) attack.detected();
      assert.ok(!victim.records.some((r) => r.type === "ack"), "no ack for what was not kept");
      failing = false;
      if (!(await honestStillServed(w.relay, w.dir, "after-failure"))) {
        attack.lost(1, "honest message");
      }
    });
  } finally {
    attack.save();
    await w.close();
  }
  assert.ok(attack.clean, attack.summary());
});

Deno.test("durable relay: a second connection of a member replaces the first; nothing is delivered twice", async () => {
  const attack = new Attack("member (durable): connect twice as the same member");
  const w = await world();
  try {
    await guarded(attack, async () => {
      const id = generateIdentity();
      const first = await rawJoin(w.relay, "twin", id);
      attack.attempt();
      const second = await rawJoin(w.relay, "twin", id);
      await waitFor(() => first.closed !== undefined, { what: "the older connection closed" });
      if (first.error() === RelayErrorCode.replaced) attack.detected();
      const sender = await rawJoin(w.relay, "sender");
      sender.send({ type: "publish", id: 1, message: new Uint8Array(64).fill(1) });
      await waitFor(() => second.records.some((r) => r.type === "deliver"), { what: "delivery" });
      await new Promise((resolve) => setTimeout(resolve, 100));
      const delivered = [...first.records, ...second.records].filter((r) => r.type === "deliver");
      if (delivered.length !== 1) attack.forged(`delivered ${delivered.length} times`);
    });
  } finally {
    attack.save();
    await w.close();
  }
  assert.ok(attack.clean, attack.summary());
});
