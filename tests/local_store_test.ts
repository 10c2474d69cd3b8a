/**
 * The client's local store, on real SQLite files: what goes in comes back;
 * another identity cannot open it; a changed row is refused; rows and
 * values cannot be moved between rooms, rows or keys; the file shows no
 * text, names or keys; a bad file is refused in one line and left as it was.
 */

import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { generateIdentity, type Identity } from "../lib/identity/identity.ts";
import {
  type HistoryEntry,
  LOCAL_STORE_FILE,
  type LocalStore,
  LocalStoreError,
  LocalStoreInputError,
  openLocalStore,
  type StateKey,
} from "../lib/client/local_store.ts";

const RELAY = "o6kv-tmqc-57x2-bb5p-pvis-jnua-liox-4yhb";
const OTHER_RELAY = "j2gv-iof2-3dcw-uas3-h4a6-owu4-dmac-vusa";
const MARKER = "HISTORY-MARKER-4be1";

function entry(text: string, options: Partial<HistoryEntry> = {}): HistoryEntry {
  return {
    relay: RELAY,
    room: "ops",
    time: 1_800_000_000_000,
    sender: "d2jm-wivv-oa7g-4w6i-sr7a-mozo-xf5g-26ad",
    nick: "bob",
    text,
    kind: "group",
    direction: "in",
    ...options,
  };
}

const stateKey = (name: string, room = "ops"): StateKey => ({
  relay: RELAY,
  room,
  nick: "alice",
  name,
});

async function withStore(
  body: (
    open: (identity?: Identity, now?: () => number) => Promise<LocalStore>,
    path: string,
  ) => Promise<void>,
): Promise<void> {
  const home = mkdtempSync(join(tmpdir(), "securechat-local-"));
  const identity = generateIdentity();
  const path = join(home, "state", LOCAL_STORE_FILE);
  const opened: LocalStore[] = [];
  try {
    await body(async (who = identity, now) => {
      const store = await openLocalStore({ path, identity: who, now });
      opened.push(store);
      return store;
    }, path);
  } finally {
    for (const store of opened) await store.close();
    rmSync(home, { recursive: true, force: true });
  }
}

Deno.test("local store: state and history come back, per room, after reopening", async () => {
  await withStore(async (open, path) => {
    let store = await open();
    await store.putState(stateKey("position"), Uint8Array.of(0, 0, 0, 17));
    await store.putState(stateKey("position", "dev"), Uint8Array.of(9));
    const first = await store.addHistory(entry("one", { seq: 1 }));
    await store.addHistory(entry("two", { kind: "direct", direction: "out", nick: "alice" }));
    await store.addHistory(entry("elsewhere", { room: "dev" }));
    await store.addHistory(entry("other relay", { relay: OTHER_RELAY }));
    assert.equal(first.seq, 1);
    await store.close();
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.equal(statSync(join(path, "..")).mode & 0o777, 0o700);

    store = await open();
    assert.deepEqual(await store.getState(stateKey("position")), Uint8Array.of(0, 0, 0, 17));
    assert.deepEqual(await store.getState(stateKey("position", "dev")), Uint8Array.of(9));
    assert.equal(await store.getState(stateKey("sender-keys")), undefined);
    const { rows, refused } = await store.history(RELAY, "ops");
    assert.equal(refused, 0);
    assert.deepEqual(rows.map((row) => row.text), ["one", "two"]);
    assert.deepEqual(
      { ...rows[1], id: 0, recordedAt: 0 },
      {
        ...entry("two", { kind: "direct", direction: "out", nick: "alice" }),
        id: 0,
        recordedAt: 0,
      },
    );
    assert.equal(rows[0].seq, 1);
    assert.equal(rows[1].seq, undefined);
    assert.deepEqual((await store.history(RELAY, "dev")).rows.map((row) => row.text), [
      "elsewhere",
    ]);
    assert.deepEqual(
      (await store.history(OTHER_RELAY, "ops")).rows.map((row) => row.text),
      ["other relay"],
    );
    assert.equal(await store.deleteState(stateKey("position")), true);
    assert.equal(await store.deleteState(stateKey("position")), false);
    assert.equal(await store.getState(stateKey("position")), undefined);
  });
});

Deno.test("local store: --since and limit; recorded times never go backwards", async () => {
  let time = 1_000_000;
  await withStore(async (open) => {
    const store = await open(undefined, () => time);
    for (let i = 0; i < 600; i++) {
      await store.addHistory(entry(`m${i}`));
      time += i === 300 ? -500 : 10; // the clock jumps back once
    }
    const all = await store.history(RELAY, "ops", { limit: 100_000 });
    assert.equal(all.rows.length, 600);
    for (let i = 1; i < all.rows.length; i++) {
      assert.ok(all.rows[i].recordedAt >= all.rows[i - 1].recordedAt);
      assert.ok(all.rows[i].id > all.rows[i - 1].id);
    }
    const recent = await store.history(RELAY, "ops", { since: all.rows[550].recordedAt });
    assert.deepEqual(
      recent.rows.map((row) => row.text),
      all.rows.slice(550).map((row) => row.text),
    );
    const last = await store.history(RELAY, "ops", { limit: 5 });
    assert.deepEqual(last.rows.map((row) => row.text), ["m595", "m596", "m597", "m598", "m599"]);
    assert.deepEqual((await store.history(RELAY, "ops", { since: time + 1 })).rows, []);
    await assert.rejects(store.history(RELAY, "ops", { limit: 0 }), LocalStoreInputError);
  });
});

Deno.test("local store: another identity cannot open it, and the file is left as it was", async () => {
  await withStore(async (open, path) => {
    const store = await open();
    await store.addHistory(entry(MARKER));
    await store.close();
    const before = readFileSync(path);
    const error = await open(generateIdentity()).catch((e) => e);
    assert.ok(error instanceof LocalStoreError, String(error));
    assert.match(error.message, /belongs to another identity/);
    assert.ok(error.message.includes(path));
    assert.doesNotMatch(error.message, /\n/);
    assert.deepEqual(readFileSync(path), before);
  });
});

/** Opens the store's SQLite file directly, as someone with the disk but not the key would. */
function tamper(path: string, sql: string, ...params: (Uint8Array | number)[]): void {
  const db = new DatabaseSync(path);
  try {
    db.prepare(sql).run(...params);
  } finally {
    db.close();
  }
}

function rows(path: string, sql: string): Record<string, unknown>[] {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    return db.prepare(sql).all() as Record<string, unknown>[];
  } finally {
    db.close();
  }
}

Deno.test("local store: a changed history row or state value is refused", async () => {
  await withStore(async (open, path) => {
    let store = await open();
    for (const text of ["a", "b", "c"]) await store.addHistory(entry(text));
    await store.putState(stateKey("sender-keys"), Uint8Array.of(1, 2, 3));
    await store.close();
    const [second] = rows(path, "SELECT id, record FROM history ORDER BY id LIMIT 1 OFFSET 1") as {
      id: number;
      record: Uint8Array;
    }[];
    const changed = second.record.slice();
    changed[changed.length - 20] ^= 0x01;
    tamper(path, "UPDATE history SET record = ? WHERE id = ?", changed, second.id);
    const [state] = rows(path, "SELECT tag, value FROM state") as {
      tag: Uint8Array;
      value: Uint8Array;
    }[];
    const value = state.value.slice();
    value[value.length - 1] ^= 0x80;
    tamper(path, "UPDATE state SET value = ? WHERE tag = ?", value, state.tag);

    store = await open();
    const read = await store.history(RELAY, "ops");
    assert.deepEqual(read.rows.map((row) => row.text), ["a", "c"]);
    assert.equal(read.refused, 1);
    await assert.rejects(
      store.getState(stateKey("sender-keys")),
      (error: unknown) =>
        error instanceof LocalStoreError && /does not open/.test(error.message) &&
        !/\n/.test(error.message),
    );
  });
});

Deno.test("local store: rows and values cannot be moved between rooms, rows or keys", async () => {
  await withStore(async (open, path) => {
    let store = await open();
    await store.addHistory(entry("secret plan", { room: "ops" }));
    await store.addHistory(entry("in dev", { room: "dev" }));
    await store.addHistory(entry("in dev 2", { room: "dev" }));
    await store.putState(stateKey("position", "ops"), Uint8Array.of(1));
    await store.putState(stateKey("position", "dev"), Uint8Array.of(2));
    await store.close();
    const history = rows(path, "SELECT id, room_tag, record FROM history ORDER BY id") as {
      id: number;
      room_tag: Uint8Array;
      record: Uint8Array;
    }[];
    // 1. Move the ops row into dev (its room tag).
    tamper(
      path,
      "UPDATE history SET room_tag = ? WHERE id = ?",
      history[1].room_tag,
      history[0].id,
    );
    // 2. Swap the two dev records between their rows.
    tamper(path, "UPDATE history SET record = ? WHERE id = ?", history[2].record, history[1].id);
    tamper(path, "UPDATE history SET record = ? WHERE id = ?", history[1].record, history[2].id);
    // 3. Swap the two state values between their keys.
    const state = rows(path, "SELECT tag, value FROM state ORDER BY tag") as {
      tag: Uint8Array;
      value: Uint8Array;
    }[];
    tamper(path, "UPDATE state SET value = ? WHERE tag = ?", state[1].value, state[0].tag);
    tamper(path, "UPDATE state SET value = ? WHERE tag = ?", state[0].value, state[1].tag);

    store = await open();
    const dev = await store.history(RELAY, "dev");
    assert.deepEqual(dev.rows, [], "a moved or swapped row was shown");
    assert.equal(dev.refused, 3);
    assert.deepEqual((await store.history(RELAY, "ops")).rows, []);
    await assert.rejects(store.getState(stateKey("position", "ops")), LocalStoreError);
    await assert.rejects(store.getState(stateKey("position", "dev")), LocalStoreError);
  });
});

Deno.test("local store: the file holds no text, names or keys in the clear", async () => {
  await withStore(async (open, path) => {
    const identity = generateIdentity();
    const store = await open(identity);
    for (let i = 0; i < 20; i++) {
      await store.addHistory(
        entry(`${MARKER} ${i}`, { room: "room-marker-77", nick: "nick-marker-55" }),
      );
    }
    await store.putState(
      { relay: RELAY, room: "room-marker-77", nick: "nick-marker-55", name: "state-marker-33" },
      new TextEncoder().encode(`${MARKER} state`),
    );
    const files = () =>
      readdirSync(join(path, "..")).map((name) => readFileSync(join(path, "..", name)));
    const live = files();
    await store.close();
    const text = [...live, ...files()].map((bytes) => new TextDecoder("latin1").decode(bytes)).join(
      "",
    );
    for (
      const needle of [
        MARKER,
        "room-marker-77",
        "nick-marker-55",
        "state-marker-33",
        RELAY,
        "d2jm-wivv",
      ]
    ) {
      assert.ok(!text.includes(needle), `${needle} is in the file`);
    }
    const hex = (bytes: Uint8Array) => Array.from(bytes, (b) => String.fromCharCode(b)).join("");
    assert.ok(!text.includes(hex(identity.secretKey)), "the identity's secret key is in the file");
    // The scan can find what is there: the schema's own words.
    assert.ok(text.includes("room_tag"));
  });
});

Deno.test("local store: bad files are refused in one line and left as they were", async () => {
  const home = mkdtempSync(join(tmpdir(), "securechat-local-"));
  try {
    const identity = generateIdentity();
    const cases: [string, Uint8Array | string, RegExp][] = [
      ["random.db", crypto.getRandomValues(new Uint8Array(8192)), /not an SQLite database/],
      ["text.db", "some notes\n".repeat(100), /not an SQLite database/],
    ];
    for (const [name, content, pattern] of cases) {
      const path = join(home, name);
      writeFileSync(path, content, { mode: 0o600 });
      const before = readFileSync(path);
      const error = await openLocalStore({ path, identity }).catch((e) => e);
      assert.ok(error instanceof LocalStoreError, String(error));
      assert.match(error.message, pattern);
      assert.ok(error.message.startsWith(`client store ${path}`), error.message);
      assert.deepEqual(readFileSync(path), before);
    }
    // A relay store is not a client store.
    const { openSqliteRelayStore } = await import("../lib/relay/store/sqlite_store.ts");
    const relayDir = join(home, "relay");
    await (await openSqliteRelayStore({ dir: relayDir })).close();
    const error = await openLocalStore({ path: join(relayDir, "relay.db"), identity }).catch((e) =>
      e
    );
    assert.ok(error instanceof LocalStoreError);
    assert.match(error.message, /another program/);
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});

Deno.test("local store: input outside its rules is refused and stores nothing", async () => {
  await withStore(async (open) => {
    const store = await open();
    const bad: [string, () => Promise<unknown>][] = [
      ["empty room", () => store.addHistory(entry("x", { room: "" }))],
      ["256-byte nick", () => store.addHistory(entry("x", { nick: "n".repeat(256) }))],
      ["lone surrogate text", () => store.addHistory(entry("x\ud800"))],
      ["text over 64 KiB", () => store.addHistory(entry("x".repeat(65_537)))],
      ["negative time", () => store.addHistory(entry("x", { time: -1 }))],
      ["fractional sequence", () => store.addHistory(entry("x", { seq: 1.5 }))],
      ["bad kind", () => store.addHistory(entry("x", { kind: "broadcast" as "group" }))],
      ["empty state name", () => store.putState(stateKey(""), Uint8Array.of(1))],
    ];
    for (const [what, call] of bad) await assert.rejects(call(), LocalStoreInputError, what);
    assert.deepEqual(await store.history(RELAY, "ops"), { rows: [], refused: 0 });
  });
});
