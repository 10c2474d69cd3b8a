/**
 * The storage scenario of `deno task bench`: what the relay's store costs
 * at its own layer, on real SQLite files in a scratch directory (the
 * end-to-end figures, a returning member's catch-up through the relay and
 * fan-out with durable storage, come once the relay uses the store).
 *
 * - **appends/s** with the store's fsync policy (group commit: one fsync per
 *   event-loop turn), `inflight` appends outstanding as a busy relay has
 *   them, in a room of `members`; beside it one commit per append (what
 *   `synchronous=FULL` costs without grouping), and the latency of one
 *   append alone (one fsync);
 * - **CPU per append** without fsync (the same code on an in-memory database);
 * - **bytes per stored message**: the file's growth per item, after a
 *   checkpoint, against the item's body size;
 * - **catch-up read**: a member that was away reads `readItems` items in
 *   pages of 1,000, acknowledging each page.
 *
 * @module
 */

import { join } from "node:path";
import { statSync } from "node:fs";
import type { RelayStore } from "../lib/relay/store/relay_store.ts";
import {
  openMemoryRelayStore,
  openSqliteRelayStore,
  type SqliteStoreOptions,
} from "../lib/relay/store/sqlite_store.ts";

/** Sizes of one storage run. */
export interface StorageOptions {
  /** Scratch directory; each measurement gets a store below it. */
  dir: string;
  /** Appends in the group-commit measurement. */
  appends: number;
  /** Appends in the commit-per-append measurement (slow: one fsync each). */
  eachAppends: number;
  /** Appends outstanding at once. */
  inflight: number;
  /** Members of the room. */
  members: number;
  /** Bytes of each item body (a group message of a short text is about 200). */
  bodyBytes: number;
  /** Items a returning member reads. */
  readItems: number;
}

/** What one storage run measured. */
export interface StorageResult {
  members: number;
  bodyBytes: number;
  inflight: number;
  /** Group commit (the store's policy): appends per second. */
  groupAppendsPerSecond: number;
  /** One commit per append: appends per second. */
  eachAppendsPerSecond: number;
  /** Median ms for one durable append with nothing else in flight. */
  singleAppendMs: number;
  /** In memory (no fsync): appends per second, i.e. the store's CPU cost. */
  memoryAppendsPerSecond: number;
  /** Growth of `relay.db` per stored item (after a checkpoint). */
  bytesPerItem: number;
  /** Items read by a returning member, per second, in pages of 1,000 with an ack each. */
  readItemsPerSecond: number;
  readItems: number;
}

const body = (bytes: number) => crypto.getRandomValues(new Uint8Array(bytes));

/** A room `ops` with `members` members; returns the first one's id (the sender). */
async function room(store: RelayStore, members: number): Promise<{ from: number; away: number }> {
  const ids: number[] = [];
  for (let i = 1; i <= members; i++) {
    const key = new Uint8Array(32).fill(i % 256);
    key[0] = i >> 8;
    const added = await store.addMember("ops", {
      identityKey: key,
      nick: `member-${i}`,
      announcement: body(200),
    });
    if (added.status !== "added") throw new Error(`could not add member ${i}: ${added.status}`);
    ids.push(added.member.memberId);
  }
  return { from: ids[0], away: ids[ids.length - 1] };
}

/** `count` appends from `from`, `inflight` at a time; appends per second. */
async function appendMany(
  store: RelayStore,
  options: { from: number; count: number; inflight: number; bodyBytes: number },
): Promise<number> {
  const payload = body(options.bodyBytes);
  let next = 0;
  const started = performance.now();
  await Promise.all(Array.from({ length: options.inflight }, async () => {
    while (next < options.count) {
      next++;
      const result = await store.appendGroup("ops", { from: options.from, body: payload });
      if (result.status !== "stored") throw new Error(`append refused: ${result.reason}`);
    }
  }));
  return options.count / ((performance.now() - started) / 1000);
}

async function withStore<T>(
  options: Omit<SqliteStoreOptions, "dir"> & { dir?: string },
  work: (store: RelayStore) => Promise<T>,
): Promise<T> {
  // Limits raised so that nothing the bench does is refused.
  const limits = { maxRoomBytes: 2 ** 40, maxItemsPerMember: 10_000_000, ...options.limits };
  const store = options.dir
    ? await openSqliteRelayStore({ ...options, dir: options.dir, limits })
    : await openMemoryRelayStore({ ...options, limits });
  try {
    return await work(store);
  } finally {
    await store.close();
  }
}

/**
 * Runs the storage measurements.
 *
 * @example
 * ```ts
 * const result = await runStorage({ dir, appends: 20_000, eachAppends: 1_000, inflight: 64,
 *   members: 50, bodyBytes: 200, readItems: 10_000 });
 * ```
 */
export async function runStorage(options: StorageOptions): Promise<StorageResult> {
  const { members, inflight, bodyBytes } = options;
  const group = join(options.dir, "group");
  const groupAppendsPerSecond = await withStore({ dir: group }, async (store) => {
    const { from } = await room(store, members);
    return appendMany(store, { from, count: options.appends, inflight, bodyBytes });
  });

  const eachAppendsPerSecond = await withStore(
    { dir: join(options.dir, "each"), commit: "each" },
    async (store) => {
      const { from } = await room(store, members);
      return appendMany(store, { from, count: options.eachAppends, inflight, bodyBytes });
    },
  );

  const singleAppendMs = await withStore({ dir: join(options.dir, "single") }, async (store) => {
    const { from } = await room(store, members);
    const times: number[] = [];
    const payload = body(bodyBytes);
    for (let i = 0; i < Math.min(200, options.eachAppends); i++) {
      const started = performance.now();
      await store.appendGroup("ops", { from, body: payload });
      times.push(performance.now() - started);
    }
    return median(times);
  });

  const memoryAppendsPerSecond = await withStore({}, async (store) => {
    const { from } = await room(store, members);
    return appendMany(store, { from, count: options.appends, inflight, bodyBytes });
  });

  // Bytes per item: the file's growth from a room with no items to one holding `readItems`
  // items for a member who is away (each size taken after close, which checkpoints the log).
  const catchUp = join(options.dir, "catch-up");
  const { from, away } = await withStore({ dir: catchUp }, (store) => room(store, members));
  const emptyBytes = statSync(join(catchUp, "relay.db")).size;
  await withStore(
    { dir: catchUp },
    (store) => appendMany(store, { from, count: options.readItems, inflight, bodyBytes }),
  );
  const bytesPerItem = (statSync(join(catchUp, "relay.db")).size - emptyBytes) / options.readItems;

  const readItemsPerSecond = await withStore({ dir: catchUp }, async (store) => {
    let after = 0;
    let read = 0;
    const started = performance.now();
    for (let page = 0; page < 100_000; page++) {
      const result = await store.read("ops", away, { afterSeq: after, limit: 1_000 });
      if (result === undefined) throw new Error("the returning member is not on the roster");
      read += result.entries.length;
      await store.ack("ops", away, result.nextAfterSeq);
      after = result.nextAfterSeq;
      if (!result.more) break;
    }
    const seconds = (performance.now() - started) / 1000;
    if (read !== options.readItems) {
      throw new Error(`the returning member read ${read} items, not ${options.readItems}`);
    }
    return read / seconds;
  });

  return {
    members,
    bodyBytes,
    inflight,
    groupAppendsPerSecond: Math.round(groupAppendsPerSecond),
    eachAppendsPerSecond: Math.round(eachAppendsPerSecond),
    singleAppendMs: Math.round(singleAppendMs * 100) / 100,
    memoryAppendsPerSecond: Math.round(memoryAppendsPerSecond),
    bytesPerItem: Math.round(bytesPerItem),
    readItemsPerSecond: Math.round(readItemsPerSecond),
    readItems: options.readItems,
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}
