/**
 * The relay's SQLite store: the contract suite on a real file and in
 * memory, then what only a file has: modes, WAL, reopening.
 */

import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openMemoryRelayStore, openSqliteRelayStore } from "../lib/relay/store/sqlite_store.ts";
import { body, member, relayStoreContract } from "./support/store_contract.ts";

relayStoreContract("sqlite file", async () => {
  const dir = await mkdtemp(join(tmpdir(), "securechat-store-"));
  return {
    open: (options) => openSqliteRelayStore({ dir: join(dir, "data"), ...options }),
    durable: true,
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});

relayStoreContract("sqlite memory", () =>
  Promise.resolve({
    open: (options) => openMemoryRelayStore(options),
    durable: false,
    cleanup: () => Promise.resolve(),
  }));

Deno.test("sqlite file: data directory 0700, relay.db and its WAL files 0600", async () => {
  const dir = await mkdtemp(join(tmpdir(), "securechat-store-"));
  try {
    const data = join(dir, "a", "data");
    const store = await openSqliteRelayStore({ dir: data });
    const added = await store.addMember("ops", member(1, "alice"));
    assert.equal(added.status, "added");
    assert.equal(statSync(data).mode & 0o777, 0o700);
    for (const name of ["relay.db", "relay.db-wal", "relay.db-shm"]) {
      assert.equal(statSync(join(data, name)).mode & 0o777, 0o600, name);
    }
    assert.equal(store.location, join(data, "relay.db"));
    await store.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

Deno.test("sqlite file: WAL mode, and the memory store is the same code without a file", async () => {
  const dir = await mkdtemp(join(tmpdir(), "securechat-store-"));
  try {
    const store = await openSqliteRelayStore({ dir });
    const a = await store.addMember("ops", member(1, "alice"));
    await store.addMember("ops", member(2, "bob"));
    if (a.status === "added") {
      await store.appendGroup("ops", { from: a.member.memberId, body: body("x") });
    }
    await store.close();
    // The header says WAL (bytes 18 and 19 are 2) once the store has been opened.
    const header = Deno.readFileSync(join(dir, "relay.db")).subarray(0, 20);
    assert.equal(new TextDecoder().decode(header.subarray(0, 15)), "SQLite format 3");
    assert.deepEqual([header[18], header[19]], [2, 2]);
    const memory = await openMemoryRelayStore();
    assert.equal(memory.location, "memory");
    await memory.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
