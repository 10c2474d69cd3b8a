/**
 * Part 6 of the attack suite: the relay's store under hostile input. A
 * client controls much of what reaches the store (item sizes, member ids it
 * names, acknowledgements, room names and nicks); none of it may crash the
 * store, change what others get, or make an item disappear without a gap
 * notice. A damaged database file is refused in one line and left as it was.
 */

import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import {
  MAX_MEMBER_ID,
  type RelayStore,
  StoreError,
  StoreInputError,
} from "../../lib/relay/store/relay_store.ts";
import { openMemoryRelayStore, openSqliteRelayStore } from "../../lib/relay/store/sqlite_store.ts";
import { seededRandom } from "../support/in_process.ts";
import { body, key, member, readAll } from "../support/store_contract.ts";
import { ADVERSARIAL_SEED, ATTEMPTS, FUZZ_RUNS, FUZZ_SEED } from "./support/knobs.ts";
import { guarded } from "./support/observe.ts";
import { Attack } from "./support/scoreboard.ts";

const random = seededRandom(ADVERSARIAL_SEED + 7);

/** A store with alice (1) and bob (2) in room `ops`; returns their ids. */
async function twoMembers(store: RelayStore): Promise<{ a: number; b: number }> {
  const a = await store.addMember("ops", member(1, "alice"));
  const b = await store.addMember("ops", member(2, "bob"));
  assert.ok(a.status === "added" && b.status === "added");
  return { a: a.member.memberId, b: b.member.memberId };
}

/**
 * Runs one hostile call: it must be refused (a refusal result or a
 * StoreInputError), leave the store's counts as they were, and leave the
 * store serving.
 */
async function hostile(
  attack: Attack,
  store: RelayStore,
  what: string,
  call: () => Promise<unknown>,
  refused: (result: unknown) => boolean,
): Promise<void> {
  attack.attempt();
  const before = await store.counts();
  let result: unknown;
  try {
    result = await call();
  } catch (error) {
    if (!(error instanceof StoreInputError)) {
      attack.crash(`${what}: ${error instanceof Error ? error.stack : String(error)}`);
      return;
    }
    result = error;
  }
  const after = await store.counts();
  if (JSON.stringify(after) !== JSON.stringify(before)) {
    attack.forged(
      `${what}: changed the store (${JSON.stringify(before)} -> ${JSON.stringify(after)})`,
    );
  } else if (result instanceof StoreInputError || refused(result)) {
    attack.detected();
  } else {
    attack.forged(`${what}: accepted (${JSON.stringify(result)})`);
  }
}

const refusedWith = (reason: string) => (result: unknown) =>
  (result as { status?: string; reason?: string })?.status === "refused" &&
  (result as { reason?: string }).reason === reason;

Deno.test("store: oversized and empty items are refused, and the store keeps serving", async () => {
  const attack = new Attack("store: oversized items");
  const store = await openMemoryRelayStore({ limits: { maxItemBytes: 4096 } });
  try {
    await guarded(attack, async () => {
      const { a, b } = await twoMembers(store);
      for (const size of [4097, 65_537, 1 << 20, 16 << 20]) {
        const big = new Uint8Array(size);
        await hostile(
          attack,
          store,
          `group of ${size} bytes`,
          () => store.appendGroup("ops", { from: a, body: big }),
          refusedWith("tooLarge"),
        );
        await hostile(
          attack,
          store,
          `envelope of ${size} bytes`,
          () => store.appendEnvelope("ops", { from: a, to: b, body: big }),
          refusedWith("tooLarge"),
        );
      }
      await hostile(
        attack,
        store,
        "empty group item",
        () => store.appendGroup("ops", { from: a, body: new Uint8Array(0) }),
        () => false,
      );
      await hostile(
        attack,
        store,
        "a body that is not bytes",
        () => store.appendGroup("ops", { from: a, body: "text" as unknown as Uint8Array }),
        () => false,
      );
      const fine = await store.appendGroup("ops", { from: a, body: new Uint8Array(4096) });
      if (fine.status !== "stored") attack.lost(1, "a valid item was refused after the attack");
    });
  } finally {
    await store.close();
    attack.save();
  }
  assert.equal(attack.row.detected, attack.row.attempts, attack.summary());
  assert.ok(attack.clean, attack.summary());
});

Deno.test("store: huge, negative and fractional member ids and sequences are refused", async () => {
  const attack = new Attack("store: huge member ids");
  const store = await openMemoryRelayStore();
  try {
    await guarded(attack, async () => {
      const { a, b } = await twoMembers(store);
      const ids = [0, -1, MAX_MEMBER_ID + 1, 2 ** 53, 2 ** 64, 1.5, Number.NaN, Infinity, -0.5];
      for (const id of ids) {
        const label = `member id ${id}`;
        await hostile(
          attack,
          store,
          `${label} as sender`,
          () => store.appendGroup("ops", { from: id, body: body("x") }),
          () => false,
        );
        await hostile(
          attack,
          store,
          `${label} as recipient`,
          () => store.appendEnvelope("ops", { from: a, to: id, body: body("x") }),
          () => false,
        );
        await hostile(
          attack,
          store,
          `${label} reads`,
          () => store.read("ops", id, { afterSeq: 0 }),
          () => false,
        );
        await hostile(
          attack,
          store,
          `${label} acknowledges`,
          () => store.ack("ops", id, 1),
          () => false,
        );
        await hostile(
          attack,
          store,
          `${label} removed`,
          () => store.removeMember("ops", id),
          () => false,
        );
      }
      // Well-formed ids that name nobody: refused for what they are.
      await hostile(
        attack,
        store,
        "an unknown recipient id",
        () => store.appendEnvelope("ops", { from: a, to: MAX_MEMBER_ID, body: body("x") }),
        refusedWith("unknownRecipient"),
      );
      await hostile(
        attack,
        store,
        "an unknown sender id",
        () => store.appendGroup("ops", { from: MAX_MEMBER_ID, body: body("x") }),
        refusedWith("unknownSender"),
      );
      for (const seq of [-1, 2 ** 53, 1.5, Number.NaN]) {
        await hostile(
          attack,
          store,
          `sequence ${seq}`,
          () => store.read("ops", b, { afterSeq: seq }),
          () => false,
        );
      }
      for (const limit of [0, -5, 10_001, 2 ** 40, 0.5]) {
        await hostile(
          attack,
          store,
          `read limit ${limit}`,
          () => store.read("ops", b, { afterSeq: 0, limit }),
          () => false,
        );
      }
    });
  } finally {
    await store.close();
    attack.save();
  }
  assert.equal(attack.row.detected, attack.row.attempts, attack.summary());
  assert.ok(attack.clean, attack.summary());
});

Deno.test("store: hostile room names, nicks, keys and announcements are refused", async () => {
  const attack = new Attack("store: hostile names and keys");
  const store = await openMemoryRelayStore({ limits: { maxAnnouncementBytes: 1024 } });
  try {
    await guarded(attack, async () => {
      await twoMembers(store);
      const names = [
        "",
        "x".repeat(256),
        "é".repeat(128),
        "a\ud800",
        "\udfff",
        "x".repeat(1 << 20),
      ];
      for (const name of names) {
        const label = `${name.length}-character name`;
        await hostile(
          attack,
          store,
          `room ${label}`,
          () => store.addMember(name, member(3, "carol")),
          () => false,
        );
        await hostile(
          attack,
          store,
          `nick ${label}`,
          () => store.addMember("ops", member(3, name)),
          () => false,
        );
        await hostile(
          attack,
          store,
          `rename to ${label}`,
          () => store.renameMember("ops", 1, name),
          () => false,
        );
      }
      await hostile(
        attack,
        store,
        "a room name that is not a string",
        () => store.addMember(42 as unknown as string, member(3, "carol")),
        () => false,
      );
      for (const length of [0, 31, 33, 64]) {
        await hostile(
          attack,
          store,
          `${length}-byte identity key`,
          () =>
            store.addMember("ops", { ...member(3, "carol"), identityKey: new Uint8Array(length) }),
          () => false,
        );
        await hostile(
          attack,
          store,
          `${length}-byte prekey identity`,
          () => store.putPrekeys(new Uint8Array(length), { signed: { id: 1, body: body("x") } }),
          () => false,
        );
      }
      await hostile(
        attack,
        store,
        "an oversized announcement",
        () => store.addMember("ops", { ...member(3, "carol"), announcement: new Uint8Array(1025) }),
        () => false,
      );
      await hostile(
        attack,
        store,
        "an oversized prekey",
        () => store.putPrekeys(key(3), { signed: { id: 1, body: new Uint8Array(8193) } }),
        () => false,
      );
      await hostile(
        attack,
        store,
        "too many one-time prekeys at once",
        () =>
          store.putPrekeys(key(3), {
            oneTime: Array.from({ length: 1001 }, (_, id) => ({ id, body: body("x") })),
          }),
        () => false,
      );
      // Another identity cannot take over a nick.
      await hostile(
        attack,
        store,
        "another identity under a member's nick",
        () => store.addMember("ops", member(9, "alice")),
        (r) => (r as { status?: string }).status === "nickTaken",
      );
      // Names that look alike stay apart: NUL, zero-width, Cyrillic, composed and decomposed.
      attack.attempt();
      const look = ["ops\u0000", "ops\u200b", "o\u0440s", "caf\u00e9", "cafe\u0301"];
      const rooms = await Promise.all(look.map((name) => store.addMember(name, member(3, "c"))));
      const ops = await store.listMembers("ops");
      if (
        ops.some((m) => m.nick === "c")
      ) attack.forged("a look-alike room name joined `ops`");
      else if (rooms.some((r) => r.status !== "added")) {
        attack.forged("look-alike room names were merged");
      } else attack.detected();
    });
  } finally {
    await store.close();
    attack.save();
  }
  assert.equal(attack.row.detected, attack.row.attempts, attack.summary());
  assert.ok(attack.clean, attack.summary());
});

Deno.test("store: forged acknowledgements and reads cannot hide or leak items", async () => {
  const attack = new Attack("store: forged acknowledgements and reads");
  const store = await openMemoryRelayStore();
  try {
    await guarded(attack, async () => {
      const { a, b } = await twoMembers(store);
      const c = await store.addMember("ops", member(3, "carol"));
      assert.ok(c.status === "added");
      const carol = c.member.memberId;
      await store.appendEnvelope("ops", { from: a, to: b, body: body("for bob only") });

      // Carol acknowledges far past the head: capped, so later items still reach her.
      attack.attempt();
      const acked = await store.ack("ops", carol, 2 ** 53 - 1);
      await store.appendGroup("ops", { from: a, body: body("after the forged ack") });
      const forCarol = await readAll(store, "ops", carol, acked ?? 0);
      const texts = forCarol.entries.map((e) =>
        e.kind === "gap" ? "gap" : new TextDecoder().decode(e.body)
      );
      if (texts.includes("for bob only")) attack.forged("carol read bob's envelope");
      else if (!texts.includes("after the forged ack")) {
        attack.lost(1, "an ack past the head hid a later item");
      } else attack.detected();

      // Nobody reads bob's envelope but bob, whatever position it claims.
      attack.attempt();
      const fromZero = await readAll(store, "ops", carol, 0);
      if (fromZero.entries.some((e) => e.kind === "envelope")) attack.forged("an envelope leaked");
      else attack.detected();

      // A newcomer reading from 0 gets nothing from before it joined.
      attack.attempt();
      const d = await store.addMember("ops", member(4, "dave"));
      assert.ok(d.status === "added");
      const early = await readAll(store, "ops", d.member.memberId, 0);
      if (early.entries.length > 0) attack.forged("a newcomer read items from before it joined");
      else attack.detected();

      // A removed member reads nothing, and its acknowledgements are refused.
      attack.attempt();
      await store.removeMember("ops", b);
      const removedRead = await store.read("ops", b, { afterSeq: 0 });
      const removedAck = await store.ack("ops", b, 1);
      if (removedRead !== undefined || removedAck !== undefined) {
        attack.forged("a removed member still reads or acknowledges");
      } else attack.detected();

      // Bob rejoins: a new member, nothing from before.
      attack.attempt();
      const back = await store.addMember("ops", member(2, "bob"));
      assert.ok(back.status === "added");
      const again = await readAll(store, "ops", back.member.memberId, 0);
      if (again.entries.length > 0) attack.forged("a rejoined member read its old items");
      else attack.detected();
    });
  } finally {
    await store.close();
    attack.save();
  }
  assert.equal(attack.row.detected, attack.row.attempts, attack.summary());
  assert.ok(attack.clean, attack.summary());
});

/** One step of the random sequences below. */
type Step =
  | { op: "add"; who: number }
  | { op: "remove"; who: number }
  | { op: "group"; who: number; size: number }
  | { op: "envelope"; who: number; to: number; size: number }
  | { op: "catchUp"; who: number; limit: number }
  | { op: "time"; ms: number }
  | { op: "prune"; maxItems: number };

const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ op: fc.constant("add" as const), who: fc.integer({ min: 0, max: 4 }) }),
  fc.record({ op: fc.constant("remove" as const), who: fc.integer({ min: 0, max: 4 }) }),
  {
    arbitrary: fc.record({
      op: fc.constant("group" as const),
      who: fc.integer({ min: 0, max: 4 }),
      size: fc.integer({ min: 1, max: 40 }),
    }),
    weight: 4,
  },
  {
    arbitrary: fc.record({
      op: fc.constant("envelope" as const),
      who: fc.integer({ min: 0, max: 4 }),
      to: fc.integer({ min: 0, max: 4 }),
      size: fc.integer({ min: 1, max: 40 }),
    }),
    weight: 2,
  },
  {
    arbitrary: fc.record({
      op: fc.constant("catchUp" as const),
      who: fc.integer({ min: 0, max: 4 }),
      limit: fc.integer({ min: 1, max: 6 }),
    }),
    weight: 2,
  },
  fc.record({ op: fc.constant("time" as const), ms: fc.integer({ min: 1, max: 150 }) }),
  {
    arbitrary: fc.record({
      op: fc.constant("prune" as const),
      maxItems: fc.integer({ min: 1, max: 8 }),
    }),
    weight: 2,
  },
);

/** What the test knows of one current member. */
interface Tracked {
  id: number;
  /** Items stored for it and not yet read: seq -> text. */
  owed: Map<number, string>;
  /** Appends that refused it, to be reported by gap notices. */
  refused: number;
  /** Refused items reported so far. */
  reportedRefused: number;
  /** Where its next read starts (what it acknowledged). */
  position: number;
}

Deno.test("store: random operation sequences lose nothing silently", async () => {
  const attack = new Attack("store: random operation sequences", { harmless: true });
  const runs = Math.max(20, Math.floor(FUZZ_RUNS / 10));
  console.log(`store sequences: ${runs} runs, seed ${FUZZ_SEED}`);
  try {
    await guarded(attack, async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.array(step, { minLength: 10, maxLength: 80, size: "max" }),
          async (steps) => {
            attack.attempt();
            const problems = await runSteps(steps);
            for (const problem of problems.forged) attack.forged(problem);
            for (const problem of problems.lost) attack.lost(1, problem);
            // Thrown, so fast-check reports the problems of the smallest failing sequence.
            const all = [...problems.forged, ...problems.lost];
            if (all.length > 0) throw new Error(all.slice(0, 5).join("; "));
          },
        ),
        { numRuns: runs, seed: FUZZ_SEED },
      );
    });
  } finally {
    attack.save();
  }
  assert.ok(attack.clean, attack.summary());
});

/** Items per member in the random sequences: small, so the limit is often reached. */
const LIMIT = 3;

/** Runs `steps` on a small-limit store against a model; returns what went wrong. */
async function runSteps(steps: Step[]): Promise<{ forged: string[]; lost: string[] }> {
  let time = 1_000_000;
  const store = await openMemoryRelayStore({
    limits: { maxItemsPerMember: LIMIT, retentionMs: 150, maxRoomBytes: 1500 },
    now: () => time,
  });
  const forged: string[] = [];
  const lost: string[] = [];
  const members = new Map<number, Tracked>();
  let counter = 0;
  const catchUp = async (who: number, tracked: Tracked, limit: number) => {
    const page = await store.read("ops", tracked.id, { afterSeq: tracked.position, limit });
    if (page === undefined) {
      forged.push(`member ${who} is on the roster but cannot read`);
      return;
    }
    let last = tracked.position;
    for (const entry of page.entries) {
      if (entry.seq <= last && entry.kind !== "gap") forged.push(`out of order at ${entry.seq}`);
      if (entry.kind === "gap") {
        for (const seq of [...tracked.owed.keys()]) {
          if (seq >= entry.seq && seq <= entry.toSeq) tracked.owed.delete(seq);
        }
        if (entry.reason === "refused") tracked.reportedRefused += entry.count;
        last = Math.max(last, entry.toSeq);
        continue;
      }
      const text = new TextDecoder().decode(entry.body);
      if (tracked.owed.get(entry.seq) !== text) {
        forged.push(`member ${who} got ${text} at ${entry.seq}, not owed to it`);
      }
      tracked.owed.delete(entry.seq);
      last = entry.seq;
    }
    tracked.position = page.nextAfterSeq;
    await store.ack("ops", tracked.id, page.nextAfterSeq);
  };
  // Four members to start with; the steps add, remove and re-add them.
  const start: Step[] = [0, 1, 2, 3].map((who) => ({ op: "add", who }));
  try {
    for (const s of [...start, ...steps]) {
      const actor = "who" in s ? members.get(s.who) : undefined;
      if (s.op === "add") {
        const result = await store.addMember("ops", member(10 + s.who, `m${s.who}`));
        if (result.status === "added") {
          members.set(s.who, {
            id: result.member.memberId,
            owed: new Map(),
            refused: 0,
            reportedRefused: 0,
            position: result.member.lastAck,
          });
        }
      } else if (s.op === "remove" && actor) {
        await store.removeMember("ops", actor.id);
        members.delete(s.who);
      } else if (s.op === "group" && actor) {
        const text = `g${counter++}`.padEnd(s.size, ".");
        const result = await store.appendGroup("ops", { from: actor.id, body: body(text) });
        if (result.status !== "stored") continue;
        // Kept for every current member but the sender and the refused ones.
        if (result.recipients + result.refused.length !== members.size - 1) {
          lost.push(
            `item ${result.seq}: ${result.recipients} recipients and ` +
              `${result.refused.length} refused in a room of ${members.size}`,
          );
        }
        for (const [who, tracked] of members) {
          if (tracked === actor) continue;
          if (result.refused.some((r) => r.memberId === tracked.id)) {
            tracked.refused++;
            // Only a member with LIMIT items waiting (some maybe expired since) may be refused.
            if (tracked.owed.size < LIMIT) {
              forged.push(`member ${who} refused with ${tracked.owed.size}`);
            }
          } else {
            tracked.owed.set(result.seq, text);
          }
        }
      } else if (s.op === "envelope" && actor) {
        const target = members.get(s.to);
        if (!target) continue;
        const text = `e${counter++}`.padEnd(s.size, ".");
        const result = await store.appendEnvelope("ops", {
          from: actor.id,
          to: target.id,
          body: body(text),
        });
        if (result.status === "stored") target.owed.set(result.seq, text);
        else if (result.reason === "recipientFull" && target.owed.size < LIMIT) {
          forged.push(`envelope to ${s.to} refused with ${target.owed.size} waiting`);
        }
      } else if (s.op === "catchUp" && actor) {
        await catchUp(s.who, actor, s.limit);
      } else if (s.op === "time") {
        time += s.ms;
      } else if (s.op === "prune") {
        await store.prune({ maxItems: s.maxItems });
      }
    }
    // The end: everyone catches up fully; nothing may remain unexplained.
    for (const [who, tracked] of members) {
      for (let page = 0; page < 100; page++) {
        const before = tracked.position;
        await catchUp(who, tracked, 50);
        if (tracked.position === before) break;
      }
      for (const [seq, text] of tracked.owed) lost.push(`member ${who} never got ${text} (${seq})`);
      if (tracked.reportedRefused !== tracked.refused) {
        lost.push(`member ${who}: ${tracked.refused} refused, ${tracked.reportedRefused} reported`);
      }
    }
  } finally {
    await store.close();
  }
  return { forged, lost };
}

Deno.test("store: a damaged database file is refused in one line and left as it was", async () => {
  const attack = new Attack("store: damaged database file");
  const dir = mkdtempSync(join(tmpdir(), "securechat-storeflip-"));
  try {
    await guarded(attack, async () => {
      const source = join(dir, "source");
      const store = await openSqliteRelayStore({ dir: source });
      const { a } = await twoMembers(store);
      for (let i = 0; i < 100; i++) {
        await store.appendGroup("ops", { from: a, body: body(`m${i}`) });
      }
      await store.close();
      const original = readFileSync(join(source, "relay.db"));
      for (let round = 0; round < ATTEMPTS * 6; round++) {
        const data = join(dir, `flip-${round}`);
        const bytes = original.slice();
        const flips = 1 + Math.floor(random() * 8);
        // Half the rounds hit the header and the first pages, where damage is structural.
        const span = round % 2 === 0 ? Math.min(bytes.length, 12_288) : bytes.length;
        for (let i = 0; i < flips; i++) {
          bytes[Math.floor(random() * span)] ^= 1 << Math.floor(random() * 8);
        }
        const file = join(data, "relay.db");
        Deno.mkdirSync(data, { mode: 0o700 });
        writeFileSync(file, bytes, { mode: 0o600 });
        attack.attempt();
        try {
          const opened = await openSqliteRelayStore({ dir: data });
          // Accepted (the damage is inside a payload SQLite cannot check): it must still serve.
          try {
            await opened.listMembers("ops");
            await opened.counts();
          } catch (error) {
            if (!(error instanceof StoreError)) attack.crash(`after open: ${String(error)}`);
          } finally {
            await opened.close().catch(() => {});
          }
        } catch (error) {
          if (!(error instanceof StoreError) || /\n/.test(error.message)) {
            attack.crash(`open: ${error instanceof Error ? error.stack : String(error)}`);
          } else if (!readFileSync(file).equals(bytes)) {
            attack.forged("a refused file was changed");
          } else {
            attack.detected();
          }
        }
      }
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
    attack.save();
  }
  assert.ok(attack.clean, attack.summary());
});
