/**
 * The contract every {@linkcode RelayStore} must meet, as one suite each
 * engine runs against itself: SQLite on a file and in memory
 * (tests/relay_store_test.ts), and later NATS JetStream. It uses only the
 * interface, so it holds for any engine; it assumes sequences strictly
 * increase within a room, never that they are contiguous.
 *
 * @example
 * ```ts
 * relayStoreContract("sqlite file", async () => {
 *   const dir = await Deno.makeTempDir();
 *   return {
 *     open: (options) => openSqliteRelayStore({ dir, ...options }),
 *     cleanup: () => Deno.remove(dir, { recursive: true }),
 *   };
 * });
 * ```
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  type GapNotice,
  type NewMember,
  type RelayStore,
  type StoredEntry,
  type StoredItem,
  StoreInputError,
  type StoreLimits,
} from "../../lib/relay/store/relay_store.ts";

/** Options the suite opens a store with. */
export interface ContractOpenOptions {
  limits?: Partial<StoreLimits>;
  now?: () => number;
}

/** One engine under test: a fresh, empty place to open stores in. */
export interface StoreFixture {
  /** Opens the store of this fixture (the same data on every call). */
  open(options?: ContractOpenOptions): Promise<RelayStore>;
  /** True when data survives `close` and a new `open` (not for memory stores). */
  durable: boolean;
  /** Removes everything the fixture made. */
  cleanup(): Promise<void>;
}

/**
 * A 32-byte identity key whose bytes are all `n`.
 *
 * @example
 * ```ts
 * key(1); // Uint8Array(32) [1, 1, ...]
 * ```
 */
export function key(n: number): Uint8Array {
  return new Uint8Array(32).fill(n);
}

/**
 * A roster member with identity key `key(n)`.
 *
 * @example
 * ```ts
 * await store.addMember("ops", member(1, "alice"));
 * ```
 */
export function member(n: number, nick: string, announcement = `signed:${nick}`): NewMember {
  return { identityKey: key(n), nick, announcement: new TextEncoder().encode(announcement) };
}

/**
 * An item body: the UTF-8 of `text` (the store treats it as opaque bytes).
 *
 * @example
 * ```ts
 * await store.appendGroup("ops", { from: 1, body: body("one") });
 * ```
 */
export function body(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

/**
 * Reads everything kept for a member after `afterSeq`, page by page.
 *
 * @example
 * ```ts
 * const { entries, last } = await readAll(store, "ops", 2, 0);
 * ```
 */
export async function readAll(
  store: RelayStore,
  room: string,
  memberId: number,
  afterSeq: number,
  limit = 1000,
): Promise<{ entries: StoredEntry[]; last: number }> {
  const entries: StoredEntry[] = [];
  let after = afterSeq;
  for (let page = 0; page < 10_000; page++) {
    const result = await store.read(room, memberId, { afterSeq: after, limit });
    assert.ok(result, `member ${memberId} is not on the roster of ${room}`);
    entries.push(...result.entries);
    assert.ok(result.nextAfterSeq >= after, "nextAfterSeq went backwards");
    after = result.nextAfterSeq;
    if (!result.more) return { entries, last: after };
  }
  throw new Error("readAll: more than 10,000 pages");
}

function texts(entries: StoredEntry[]): string[] {
  return entries.map((entry) =>
    entry.kind === "gap" ? `gap:${entry.reason}:${entry.count}` : decode(entry.body)
  );
}

function items(entries: StoredEntry[]): StoredItem[] {
  return entries.filter((entry): entry is StoredItem => entry.kind !== "gap");
}

function gaps(entries: StoredEntry[]): GapNotice[] {
  return entries.filter((entry): entry is GapNotice => entry.kind === "gap");
}

function assertIncreasing(seqs: number[]): void {
  for (let i = 1; i < seqs.length; i++) {
    assert.ok(seqs[i] > seqs[i - 1], `sequence ${seqs[i]} after ${seqs[i - 1]}`);
  }
}

/** A clock the tests move by hand. */
class Clock {
  time = 1_800_000_000_000;
  now = () => this.time;
}

/**
 * Registers the contract tests for one engine, each prefixed with `name`.
 *
 * @example
 * ```ts
 * relayStoreContract("memory", async () => ({
 *   open: (options) => openMemoryRelayStore(options),
 *   durable: false,
 *   cleanup: async () => {},
 * }));
 * ```
 */
export function relayStoreContract(name: string, fixture: () => Promise<StoreFixture>): void {
  const test = (what: string, body: (fixture: StoreFixture) => Promise<void>) =>
    Deno.test(`${name}: ${what}`, async () => {
      const made = await fixture();
      try {
        await body(made);
      } finally {
        await made.cleanup();
      }
    });

  /** Opens, runs, closes. */
  const withStore = (
    what: string,
    options: ContractOpenOptions,
    body: (store: RelayStore) => Promise<void>,
  ) =>
    test(what, async (made) => {
      const store = await made.open(options);
      try {
        await body(store);
      } finally {
        await store.close();
      }
    });

  withStore("roster: add, find, get, list, rename, remove", {}, async (store) => {
    const alice = await store.addMember("ops", member(1, "alice"));
    assert.equal(alice.status, "added");
    const bob = await store.addMember("ops", member(2, "bob"));
    assert.equal(bob.status, "added");
    if (alice.status !== "added" || bob.status !== "added") return;
    assert.notEqual(alice.member.memberId, bob.member.memberId);
    assert.ok(alice.member.memberId >= 1 && bob.member.memberId >= 1);
    assert.equal(alice.member.nick, "alice");
    assert.deepEqual(alice.member.identityKey, key(1));
    assert.equal(alice.member.lastAck, alice.member.joinedSeq);

    // The same identity and nick again: the same entry, with the new announcement.
    const again = await store.addMember("ops", member(1, "alice", "signed:alice:v2"));
    assert.equal(again.status, "existing");
    if (again.status === "existing") assert.equal(again.member.memberId, alice.member.memberId);
    const found = await store.findMember("ops", key(1), "alice");
    assert.equal(found?.memberId, alice.member.memberId);
    assert.equal(decode(found!.announcement), "signed:alice:v2");

    // Another identity cannot take a current member's nick.
    const thief = await store.addMember("ops", member(3, "alice"));
    assert.deepEqual(thief, { status: "nickTaken", holder: alice.member.memberId });
    // One identity may hold two nicks; nicks are per room.
    assert.equal((await store.addMember("ops", member(1, "alice2"))).status, "added");
    assert.equal((await store.addMember("dev", member(3, "alice"))).status, "added");

    assert.deepEqual(
      (await store.listMembers("ops")).map((m) => m.nick),
      ["alice", "bob", "alice2"],
    );
    assert.equal((await store.getMember("ops", bob.member.memberId))?.nick, "bob");
    assert.equal(await store.getMember("ops", 999_999), undefined);
    assert.equal(await store.findMember("nowhere", key(1), "alice"), undefined);
    assert.deepEqual(await store.listMembers("nowhere"), []);

    assert.deepEqual(await store.renameMember("ops", bob.member.memberId, "alice"), {
      status: "nickTaken",
      holder: alice.member.memberId,
    });
    const renamed = await store.renameMember("ops", bob.member.memberId, "robert");
    assert.equal(renamed.status, "renamed");
    assert.equal((await store.getMember("ops", bob.member.memberId))?.nick, "robert");
    assert.deepEqual(await store.renameMember("ops", 999_999, "x"), { status: "unknownMember" });

    assert.equal(await store.removeMember("ops", bob.member.memberId), true);
    assert.equal(await store.removeMember("ops", bob.member.memberId), false);
    const removed = await store.getMember("ops", bob.member.memberId);
    assert.equal(typeof removed?.removedAt, "number");
    assert.deepEqual((await store.listMembers("ops")).map((m) => m.nick), ["alice", "alice2"]);
    assert.deepEqual(
      (await store.listMembers("ops", { includeRemoved: true })).map((m) => m.nick),
      ["alice", "robert", "alice2"],
    );
    // The nick is free again; rejoining is a new membership with a new id.
    const back = await store.addMember("ops", member(2, "robert"));
    assert.equal(back.status, "added");
    if (back.status === "added") {
      assert.notEqual(back.member.memberId, bob.member.memberId);
      assert.equal(
        (await store.findMember("ops", key(2), "robert"))?.memberId,
        back.member.memberId,
      );
    }
    assert.equal(
      await store.renameMember("ops", bob.member.memberId, "zed").then((r) => r.status),
      "unknownMember",
    );
  });

  withStore(
    "roster: the room's member limit",
    { limits: { maxMembersPerRoom: 2 } },
    async (store) => {
      assert.equal((await store.addMember("ops", member(1, "a"))).status, "added");
      const b = await store.addMember("ops", member(2, "b"));
      assert.equal((await store.addMember("ops", member(3, "c"))).status, "rosterFull");
      // An existing member is not refused; a removed one frees its place.
      assert.equal((await store.addMember("ops", member(2, "b"))).status, "existing");
      if (b.status === "added") await store.removeMember("ops", b.member.memberId);
      assert.equal((await store.addMember("ops", member(3, "c"))).status, "added");
    },
  );

  withStore(
    "items: one total order per room; group items reach everyone but the sender",
    {},
    async (store) => {
      const a = await added(store, "ops", member(1, "alice"));
      const b = await added(store, "ops", member(2, "bob"));
      const c = await added(store, "ops", member(3, "carol"));
      const seqs: number[] = [];
      const one = await store.appendGroup("ops", { from: a, body: body("one") });
      assert.equal(one.status, "stored");
      if (one.status !== "stored") return;
      assert.equal(one.recipients, 2, "bob and carol, not alice");
      assert.deepEqual(one.refused, []);
      seqs.push(one.seq);
      const env = await store.appendEnvelope("ops", { from: a, to: b, body: body("for bob") });
      assert.equal(env.status, "stored");
      if (env.status === "stored") seqs.push(env.seq);
      const two = await store.appendGroup("ops", { from: b, body: body("two") });
      if (two.status === "stored") seqs.push(two.seq);
      assertIncreasing(seqs);

      const forBob = await readAll(store, "ops", b, 0);
      assert.deepEqual(texts(forBob.entries), ["one", "for bob"]);
      const [first, second] = items(forBob.entries);
      assert.equal(first.kind, "group");
      assert.equal(first.from, a);
      assert.equal(first.seq, seqs[0]);
      assert.equal(second.kind, "envelope");
      if (second.kind === "envelope") assert.equal(second.to, b);
      assert.ok(first.time > 0 && second.time >= first.time);
      assert.deepEqual(texts((await readAll(store, "ops", c, 0)).entries), ["one", "two"]);
      assert.deepEqual(texts((await readAll(store, "ops", a, 0)).entries), ["two"]);
      // A newcomer starts after what is there.
      const d = await added(store, "ops", member(4, "dave"));
      assert.deepEqual((await readAll(store, "ops", d, 0)).entries, []);
      await store.appendGroup("ops", { from: a, body: body("three") });
      assert.deepEqual(texts((await readAll(store, "ops", d, 0)).entries), ["three"]);
      // Rooms are separate.
      const inDev = await added(store, "dev", member(1, "alice"));
      assert.deepEqual((await readAll(store, "dev", inDev, 0)).entries, []);
    },
  );

  withStore("items: appends in one turn keep call order", {}, async (store) => {
    const a = await added(store, "ops", member(1, "alice"));
    const b = await added(store, "ops", member(2, "bob"));
    const results = await Promise.all(
      Array.from(
        { length: 50 },
        (_, i) => store.appendGroup("ops", { from: a, body: body(`m${i}`) }),
      ),
    );
    assertIncreasing(results.map((r) => (r.status === "stored" ? r.seq : -1)));
    const read = await readAll(store, "ops", b, 0, 7);
    assert.deepEqual(texts(read.entries), Array.from({ length: 50 }, (_, i) => `m${i}`));
  });

  withStore("items: refusals for unknown members and oversized items", {
    limits: { maxItemBytes: 100 },
  }, async (store) => {
    const a = await added(store, "ops", member(1, "alice"));
    const b = await added(store, "ops", member(2, "bob"));
    assert.deepEqual(await store.appendGroup("ops", { from: 77, body: body("x") }), {
      status: "refused",
      reason: "unknownSender",
    });
    assert.deepEqual(await store.appendGroup("nowhere", { from: a, body: body("x") }), {
      status: "refused",
      reason: "unknownSender",
    });
    assert.deepEqual(await store.appendEnvelope("ops", { from: a, to: 77, body: body("x") }), {
      status: "refused",
      reason: "unknownRecipient",
    });
    assert.deepEqual(await store.appendEnvelope("ops", { from: a, to: a, body: body("x") }), {
      status: "refused",
      reason: "unknownRecipient",
    });
    assert.deepEqual(await store.appendGroup("ops", { from: a, body: new Uint8Array(101) }), {
      status: "refused",
      reason: "tooLarge",
    });
    assert.deepEqual(
      await store.appendEnvelope("ops", { from: a, to: b, body: new Uint8Array(101) }),
      { status: "refused", reason: "tooLarge" },
    );
    assert.equal(
      (await store.appendGroup("ops", { from: a, body: new Uint8Array(100) })).status,
      "stored",
    );
    await store.removeMember("ops", b);
    assert.deepEqual(await store.appendEnvelope("ops", { from: a, to: b, body: body("x") }), {
      status: "refused",
      reason: "unknownRecipient",
    });
    assert.deepEqual(await store.appendGroup("ops", { from: b, body: body("x") }), {
      status: "refused",
      reason: "unknownSender",
    });
    assert.equal(await store.read("ops", b, { afterSeq: 0 }), undefined);
    assert.equal(await store.ack("ops", b, 1), undefined);
  });

  withStore("read: pages cover everything once, in order", {}, async (store) => {
    const a = await added(store, "ops", member(1, "alice"));
    const b = await added(store, "ops", member(2, "bob"));
    for (let i = 0; i < 25; i++) {
      if (i % 5 === 4) await store.appendEnvelope("ops", { from: a, to: b, body: body(`e${i}`) });
      else await store.appendGroup("ops", { from: a, body: body(`g${i}`) });
    }
    const first = await store.read("ops", b, { afterSeq: 0, limit: 10 });
    assert.ok(first);
    assert.equal(first.entries.length, 10);
    assert.equal(first.more, true);
    const all = await readAll(store, "ops", b, 0, 10);
    assert.equal(all.entries.length, 25);
    assert.deepEqual(
      texts(all.entries),
      Array.from({ length: 25 }, (_, i) => (i % 5 === 4 ? `e${i}` : `g${i}`)),
    );
    assertIncreasing(items(all.entries).map((item) => item.seq));
    const end = await store.read("ops", b, { afterSeq: all.last });
    assert.deepEqual(end?.entries, []);
    assert.equal(end?.more, false);
    assert.equal(end?.head, all.last);
    await assert.rejects(store.read("ops", b, { afterSeq: 0, limit: 0 }), StoreInputError);
    await assert.rejects(store.read("ops", b, { afterSeq: -1 }), StoreInputError);
  });

  withStore("ack: moves forward only, up to the head; envelopes go at once", {}, async (store) => {
    const a = await added(store, "ops", member(1, "alice"));
    const b = await added(store, "ops", member(2, "bob"));
    await store.appendGroup("ops", { from: a, body: body("g1") });
    const env = await store.appendEnvelope("ops", { from: a, to: b, body: body("e1") });
    await store.appendGroup("ops", { from: a, body: body("g2") });
    const page = await store.read("ops", b, { afterSeq: 0 });
    assert.ok(page && env.status === "stored");
    assert.equal(await store.ack("ops", b, env.seq), env.seq);
    assert.equal((await store.getMember("ops", b))?.lastAck, env.seq);
    assert.equal(await store.ack("ops", b, 0), env.seq, "an ack never moves back");
    assert.deepEqual(texts((await readAll(store, "ops", b, env.seq)).entries), ["g2"]);
    // Past the head: up to the head.
    assert.equal(await store.ack("ops", b, 1_000_000), page.head);
    assert.equal(
      (await store.counts()).items,
      2,
      "the envelope is gone; alice's items wait for prune",
    );
    assert.equal(await store.ack("ops", 99, 1), undefined);
  });

  withStore("prune: deletes what every member it was for acknowledged", {}, async (store) => {
    const a = await added(store, "ops", member(1, "alice"));
    const b = await added(store, "ops", member(2, "bob"));
    const c = await added(store, "ops", member(3, "carol"));
    for (let i = 0; i < 4; i++) await store.appendGroup("ops", { from: a, body: body(`g${i}`) });
    const head = (await store.read("ops", b, { afterSeq: 0 }))!.head;
    await store.ack("ops", b, head);
    let pruned = await store.prune();
    assert.equal(pruned.acknowledged, 0, "carol has not acknowledged them");
    assert.equal((await store.counts()).items, 4);
    await store.ack("ops", c, head);
    pruned = await store.prune();
    assert.equal(pruned.acknowledged, 4);
    assert.equal(pruned.expired, 0);
    const counts = await store.counts();
    assert.equal(counts.items, 0);
    assert.equal(counts.itemBytes, 0);
    // A removed member does not hold items back.
    await store.appendGroup("ops", { from: a, body: body("late") });
    await store.ack("ops", b, 1_000_000);
    await store.removeMember("ops", c);
    assert.equal((await store.prune()).acknowledged, 1);
    // The sender's own items never wait for the sender.
    await store.appendGroup("ops", { from: b, body: body("from bob") });
    await store.ack("ops", a, 1_000_000);
    assert.equal((await store.prune()).acknowledged, 1);
  });

  withStore(
    "limits: a member over its item limit is refused, told by a gap, and served again after it acknowledges",
    { limits: { maxItemsPerMember: 3 } },
    async (store) => {
      const a = await added(store, "ops", member(1, "alice"));
      const b = await added(store, "ops", member(2, "bob"));
      const c = await added(store, "ops", member(3, "carol"));
      const refusedFor: number[][] = [];
      for (let i = 0; i < 6; i++) {
        const result = await store.appendGroup("ops", { from: a, body: body(`g${i}`) });
        assert.equal(result.status, "stored");
        if (result.status !== "stored") return;
        refusedFor.push(result.refused.map((r) => r.memberId));
        assert.ok(result.refused.every((r) => r.reason === "recipientFull"));
        // Carol keeps up; bob is away.
        await store.ack("ops", c, result.seq);
      }
      assert.deepEqual(refusedFor, [[], [], [], [b], [b], [b]]);
      assert.deepEqual(await store.appendEnvelope("ops", { from: a, to: b, body: body("e") }), {
        status: "refused",
        reason: "recipientFull",
      });
      assert.equal(
        (await store.appendEnvelope("ops", { from: a, to: c, body: body("e") })).status,
        "stored",
      );
      const away = await readAll(store, "ops", b, 0);
      assert.deepEqual(texts(away.entries), ["g0", "g1", "g2", "gap:refused:3"]);
      const [gap] = gaps(away.entries);
      assert.ok(gap.seq > items(away.entries)[2].seq && gap.toSeq >= gap.seq);
      // Back and caught up: served again, and the gap is gone once acknowledged.
      await store.ack("ops", b, away.last);
      const next = await store.appendGroup("ops", { from: a, body: body("g6") });
      assert.ok(next.status === "stored" && next.refused.length === 0 && next.recipients === 2);
      assert.deepEqual(texts((await readAll(store, "ops", b, away.last)).entries), ["g6"]);
      // Everything bob was refused is deletable once carol has it.
      await store.ack("ops", c, 1_000_000);
      await store.ack("ops", b, 1_000_000);
      await store.prune();
      assert.equal((await store.counts()).items, 0);
    },
  );

  withStore(
    "limits: a member far behind is counted exactly across partial acknowledgements",
    { limits: { maxItemsPerMember: 3 } },
    async (store) => {
      const a = await added(store, "ops", member(1, "alice"));
      const b = await added(store, "ops", member(2, "bob"));
      const refusedBob = async (item: () => Promise<{ status: string; refused?: unknown[] }>) => {
        const result = await item();
        return result.status === "refused" || (result.refused?.length ?? 0) > 0;
      };
      const group = (text: string) => () => store.appendGroup("ops", { from: a, body: body(text) });
      const envelope = (text: string) => () =>
        store.appendEnvelope("ops", { from: a, to: b, body: body(text) });
      const outcomes: boolean[] = [];
      for (const item of [group("g0"), envelope("e1"), group("g2"), group("g3"), envelope("e4")]) {
        outcomes.push(await refusedBob(item));
      }
      assert.deepEqual(outcomes, [false, false, false, true, true]);
      // Bob takes one item: room for exactly one more, then refused again.
      const first = await store.read("ops", b, { afterSeq: 0, limit: 1 });
      assert.ok(first);
      await store.ack("ops", b, first.nextAfterSeq);
      assert.deepEqual(
        [
          await refusedBob(group("g5")),
          await refusedBob(envelope("e6")),
          await refusedBob(group("g7")),
        ],
        [false, true, true],
      );
      const rest = await readAll(store, "ops", b, first.nextAfterSeq);
      assert.deepEqual(texts(rest.entries), ["e1", "g2", "gap:refused:1", "g5", "gap:refused:1"]);
    },
  );

  withStore(
    "limits: a full room refuses appends",
    { limits: { maxRoomBytes: 10 } },
    async (store) => {
      const a = await added(store, "ops", member(1, "alice"));
      const b = await added(store, "ops", member(2, "bob"));
      assert.equal(
        (await store.appendGroup("ops", { from: a, body: new Uint8Array(6) })).status,
        "stored",
      );
      assert.deepEqual(await store.appendGroup("ops", { from: a, body: new Uint8Array(6) }), {
        status: "refused",
        reason: "roomFull",
      });
      assert.deepEqual(
        await store.appendEnvelope("ops", { from: a, to: b, body: new Uint8Array(6) }),
        {
          status: "refused",
          reason: "roomFull",
        },
      );
      assert.equal(
        (await store.appendGroup("ops", { from: a, body: new Uint8Array(4) })).status,
        "stored",
      );
      await store.ack("ops", b, 1_000_000);
      await store.prune();
      assert.equal(
        (await store.appendGroup("ops", { from: a, body: new Uint8Array(6) })).status,
        "stored",
      );
    },
  );

  {
    const clock = new Clock();
    const day = 86_400_000;
    withStore(
      "retention: expired items are deleted and reported as gaps to whoever had not acknowledged them",
      { limits: { retentionMs: 7 * day }, now: clock.now },
      async (store) => {
        const a = await added(store, "ops", member(1, "alice"));
        const b = await added(store, "ops", member(2, "bob"));
        const c = await added(store, "ops", member(3, "carol"));
        for (let i = 0; i < 3; i++) {
          await store.appendGroup("ops", { from: a, body: body(`old${i}`) });
        }
        await store.appendEnvelope("ops", { from: a, to: b, body: body("old envelope") });
        await store.ack("ops", c, 1_000_000);
        clock.time += 5 * day;
        await store.appendGroup("ops", { from: a, body: body("newer") });
        clock.time += 3 * day;
        const pruned = await store.prune();
        assert.equal(pruned.expired, 3 + 1);
        assert.equal(pruned.more, false);
        const away = await readAll(store, "ops", b, 0);
        assert.deepEqual(texts(away.entries), ["gap:expired:4", "newer"]);
        assert.deepEqual(texts((await readAll(store, "ops", c, 0)).entries), ["newer"]);
        // Later expiries extend the same notice until bob acknowledges it.
        clock.time += 7 * day;
        assert.equal((await store.prune()).expired, 1);
        const later = await readAll(store, "ops", b, 0);
        assert.deepEqual(texts(later.entries), ["gap:expired:5"]);
        await store.ack("ops", b, later.last);
        assert.deepEqual((await readAll(store, "ops", b, 0)).entries, []);
        // Carol had acknowledged the old items but not "newer".
        const carol = await readAll(store, "ops", c, 0);
        assert.deepEqual(texts(carol.entries), ["gap:expired:1"]);
        await store.ack("ops", c, carol.last);
        assert.equal((await store.counts()).gaps, 0);
        assert.equal((await store.counts()).items, 0);
      },
    );
  }

  {
    const clock = new Clock();
    withStore(
      "retention: expired ranges never swallow a refused range",
      { limits: { maxItemsPerMember: 3, retentionMs: 1000 }, now: clock.now },
      async (store) => {
        const a = await added(store, "ops", member(1, "alice"));
        const b = await added(store, "ops", member(2, "bob"));
        await store.appendGroup("ops", { from: a, body: body("g1") });
        await store.appendEnvelope("ops", { from: a, to: b, body: body("e2") });
        await store.appendGroup("ops", { from: a, body: body("g3") });
        const fourth = await store.appendGroup("ops", { from: a, body: body("g4") });
        assert.ok(fourth.status === "stored" && fourth.refused.length === 1);
        const first = await store.read("ops", b, { afterSeq: 0, limit: 1 });
        assert.ok(first);
        await store.ack("ops", b, first.nextAfterSeq);
        const fifth = await store.appendGroup("ops", { from: a, body: body("g5") });
        assert.ok(fifth.status === "stored" && fifth.refused.length === 0);
        clock.time += 2000;
        await store.prune();
        const away = await readAll(store, "ops", b, first.nextAfterSeq);
        assert.deepEqual(texts(away.entries), [
          "gap:expired:2",
          "gap:refused:1",
          "gap:expired:1",
        ]);
        const ranges = gaps(away.entries).map((gap) => [gap.seq, gap.toSeq]);
        for (let i = 1; i < ranges.length; i++) assert.ok(ranges[i][0] > ranges[i - 1][1]);
      },
    );
  }

  {
    const clock = new Clock();
    withStore(
      "retention: a bounded prune reports more, and removed members and empty rooms are forgotten",
      { limits: { retentionMs: 1000 }, now: clock.now },
      async (store) => {
        const a = await added(store, "ops", member(1, "alice"));
        const b = await added(store, "ops", member(2, "bob"));
        for (let i = 0; i < 10; i++) {
          await store.appendGroup("ops", { from: a, body: body(`m${i}`) });
        }
        clock.time += 2000;
        const first = await store.prune({ maxItems: 4 });
        assert.equal(first.expired, 4);
        assert.equal(first.more, true);
        const rest = await store.prune({ maxItems: 100 });
        assert.equal(rest.expired, 6);
        assert.equal(rest.more, false);
        assert.deepEqual(texts((await readAll(store, "ops", b, 0)).entries), ["gap:expired:10"]);
        await store.removeMember("ops", a);
        await store.removeMember("ops", b);
        assert.equal((await store.listMembers("ops", { includeRemoved: true })).length, 2);
        clock.time += 2000;
        const forgot = await store.prune();
        assert.ok(forgot.forgotten >= 3, `forgot ${forgot.forgotten}`);
        assert.deepEqual(await store.listMembers("ops", { includeRemoved: true }), []);
        assert.equal((await store.counts()).rooms, 0);
      },
    );
  }

  withStore("prekeys: each one-time prekey once, oldest first, then the signed one", {
    limits: { maxOneTimePrekeys: 5 },
  }, async (store) => {
    const who = key(9);
    assert.equal(await store.takePrekeys(who), undefined);
    assert.deepEqual(await store.prekeyStatus(who), { oneTimeCount: 0 });
    const put = await store.putPrekeys(who, {
      signed: { id: 1, body: body("signed-1") },
      oneTime: [10, 11, 12].map((id) => ({ id, body: body(`one-${id}`) })),
    });
    assert.deepEqual(put, { added: 3, skipped: 0, oneTimeCount: 3 });
    // A known id is skipped; the queue holds at most 5.
    const more = await store.putPrekeys(who, {
      oneTime: [12, 13, 14, 15].map((id) => ({ id, body: body(`one-${id}`) })),
    });
    assert.deepEqual(more, { added: 2, skipped: 2, oneTimeCount: 5 });
    assert.deepEqual(await store.prekeyStatus(who), { signedId: 1, oneTimeCount: 5 });
    const taken: (number | undefined)[] = [];
    for (let i = 0; i < 7; i++) {
      const handout = await store.takePrekeys(who);
      assert.ok(handout);
      assert.equal(handout.signed.id, 1);
      assert.equal(decode(handout.signed.body), "signed-1");
      if (handout.oneTime) assert.equal(decode(handout.oneTime.body), `one-${handout.oneTime.id}`);
      taken.push(handout.oneTime?.id);
    }
    assert.deepEqual(taken, [10, 11, 12, 13, 14, undefined, undefined]);
    // Replacing the signed prekey.
    await store.putPrekeys(who, { signed: { id: 2, body: body("signed-2") } });
    assert.equal((await store.takePrekeys(who))?.signed.id, 2);
    assert.equal((await store.counts()).signedPrekeys, 1);
    // One-time prekeys without a signed one are never handed out.
    await store.putPrekeys(key(8), { oneTime: [{ id: 1, body: body("x") }] });
    assert.equal(await store.takePrekeys(key(8)), undefined);
    assert.equal((await store.prekeyStatus(key(8))).oneTimeCount, 1);
  });

  withStore(
    "prekeys: concurrent takers in one process never share a one-time prekey",
    {},
    async (store) => {
      const who = key(7);
      await store.putPrekeys(who, {
        signed: { id: 1, body: body("s") },
        oneTime: Array.from({ length: 40 }, (_, i) => ({ id: i, body: body(`o${i}`) })),
      });
      const handouts = await Promise.all(Array.from({ length: 60 }, () => store.takePrekeys(who)));
      const ids = handouts.flatMap((h) => (h?.oneTime ? [h.oneTime.id] : []));
      assert.equal(ids.length, 40);
      assert.equal(new Set(ids).size, 40);
    },
  );

  withStore(
    "input: values outside the interface's rules throw and change nothing",
    {},
    async (store) => {
      const a = await added(store, "ops", member(1, "alice"));
      const before = await store.counts();
      const bad: [string, () => Promise<unknown>][] = [
        ["member id 0", () => store.appendGroup("ops", { from: 0, body: body("x") })],
        ["member id 2^32", () => store.appendGroup("ops", { from: 2 ** 32, body: body("x") })],
        ["member id -1", () => store.read("ops", -1, { afterSeq: 0 })],
        ["member id 1.5", () => store.ack("ops", 1.5, 1)],
        ["member id NaN", () => store.getMember("ops", Number.NaN)],
        ["sequence 2^60", () => store.ack("ops", a, 2 ** 60)],
        ["empty room name", () => store.addMember("", member(2, "bob"))],
        ["256-byte room name", () => store.addMember("r".repeat(256), member(2, "bob"))],
        ["lone surrogate nick", () => store.addMember("ops", member(2, "b\ud800"))],
        [
          "31-byte identity key",
          () => store.addMember("ops", { ...member(2, "bob"), identityKey: new Uint8Array(31) }),
        ],
        [
          "empty announcement",
          () => store.addMember("ops", { ...member(2, "bob"), announcement: new Uint8Array(0) }),
        ],
        ["empty body", () => store.appendGroup("ops", { from: a, body: new Uint8Array(0) })],
        ["prekey id -1", () => store.putPrekeys(key(1), { signed: { id: -1, body: body("x") } })],
        ["short prekey identity", () => store.takePrekeys(new Uint8Array(5))],
      ];
      for (const [what, call] of bad) {
        await assert.rejects(call(), StoreInputError, what);
      }
      assert.deepEqual(await store.counts(), before);
    },
  );

  test("durability: everything is there after close and reopen", async (made) => {
    if (!made.durable) return;
    let store = await made.open();
    const a = await added(store, "ops", member(1, "alice"));
    const b = await added(store, "ops", member(2, "bob"));
    await store.appendGroup("ops", { from: a, body: body("kept") });
    await store.appendEnvelope("ops", { from: a, to: b, body: body("kept envelope") });
    await store.putPrekeys(key(1), {
      signed: { id: 1, body: body("s") },
      oneTime: [{ id: 5, body: body("o") }],
    });
    await store.close();
    store = await made.open();
    try {
      assert.deepEqual(texts((await readAll(store, "ops", b, 0)).entries), [
        "kept",
        "kept envelope",
      ]);
      assert.equal((await store.takePrekeys(key(1)))?.oneTime?.id, 5);
      const next = await store.appendGroup("ops", { from: a, body: body("after") });
      assert.ok(next.status === "stored");
      assert.deepEqual(texts((await readAll(store, "ops", b, 0)).entries), [
        "kept",
        "kept envelope",
        "after",
      ]);
    } finally {
      await store.close();
    }
  });

  test("close: later calls reject", async (made) => {
    const store = await made.open();
    const pending = store.counts();
    await store.close();
    await pending;
    await assert.rejects(store.counts());
  });
}

async function added(store: RelayStore, room: string, newMember: NewMember): Promise<number> {
  const result = await store.addMember(room, newMember);
  assert.equal(result.status, "added", `${newMember.nick}: ${result.status}`);
  return result.status === "added" ? result.member.memberId : -1;
}
