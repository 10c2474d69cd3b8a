/**
 * The cluster scenario of `deno task bench`: the relay's store on NATS
 * JetStream at its own layer, against real `nats-server` processes on
 * loopback (one server with one replica, then three routed servers with
 * three replicas), beside the SQLite figures of the storage scenario.
 *
 * - **appends/s**, `inflight` appends outstanding in one room (group commit:
 *   what arrives while an event is on its way goes out as the next event),
 *   and the latency of one append alone;
 * - **catch-up read**: a member that was away reads `readItems` items in
 *   pages of 1,000 with an acknowledgement each, through a relay that wrote
 *   them (bodies in its cache) and through one that never saw the room
 *   (snapshot, events, bodies from the log).
 *
 * Three servers on a 2-core machine share the cores with the load: the R3
 * figures show the cost of replication, not what three machines do.
 *
 * @module
 */

import { openNatsRelayStore } from "../lib/relay/store/nats_store.ts";
import type { RelayStore } from "../lib/relay/store/relay_store.ts";
import {
  HAVE_NATS,
  type NatsServer,
  startNatsCluster,
  startNatsServer,
} from "../tests/support/nats_server.ts";

/** Sizes of one cluster-store run. */
export interface ClusterStoreOptions {
  appends: number;
  inflight: number;
  members: number;
  bodyBytes: number;
  readItems: number;
}

/** Figures for one JetStream set-up. */
export interface ClusterStoreFigures {
  replicas: number;
  appendsPerSecond: number;
  singleAppendMs: number;
  /** Catch-up through the relay that wrote the items (bodies cached). */
  readWarmPerSecond: number;
  /** Catch-up through a relay that never saw the room. */
  readColdPerSecond: number;
}

/** What one cluster-store run measured. */
export interface ClusterStoreResult {
  members: number;
  bodyBytes: number;
  inflight: number;
  readItems: number;
  runs: ClusterStoreFigures[];
}

const body = (bytes: number) => crypto.getRandomValues(new Uint8Array(bytes));

/**
 * Runs the measurements; throws when `nats-server` is not installed.
 *
 * @example
 * ```ts
 * const result = await runClusterStore({ appends: 20_000, inflight: 64, members: 50,
 *   bodyBytes: 200, readItems: 10_000 });
 * ```
 */
export async function runClusterStore(options: ClusterStoreOptions): Promise<ClusterStoreResult> {
  if (!HAVE_NATS) throw new Error("nats-server is not installed (apt-get install -y nats-server)");
  const runs: ClusterStoreFigures[] = [];
  for (const replicas of [1, 3]) {
    const nodes = replicas === 1 ? [await startNatsServer()] : await startNatsCluster(3);
    try {
      runs.push(await measure(nodes, replicas, options));
    } finally {
      await Promise.all(nodes.map((node) => node.stop()));
    }
  }
  const { members, bodyBytes, inflight, readItems } = options;
  return { members, bodyBytes, inflight, readItems, runs };
}

async function measure(
  nodes: NatsServer[],
  replicas: number,
  options: ClusterStoreOptions,
): Promise<ClusterStoreFigures> {
  const servers = nodes.map((node) => node.url);
  const open = () =>
    openNatsRelayStore({
      servers,
      replicas,
      timeoutMs: 30_000,
      // Raised so that nothing the bench does is refused.
      limits: { maxRoomBytes: 2 ** 40, maxItemsPerMember: 10_000_000 },
    });
  const store = await open();
  try {
    const ids = await room(store, options.members);
    const payload = body(options.bodyBytes);
    let next = 0;
    let started = performance.now();
    await Promise.all(Array.from({ length: options.inflight }, async () => {
      while (next < options.appends) {
        next++;
        const result = await store.appendGroup("ops", { from: ids[0], body: payload });
        if (result.status !== "stored") throw new Error(`append refused: ${result.reason}`);
      }
    }));
    const appendsPerSecond = options.appends / ((performance.now() - started) / 1000);

    const times: number[] = [];
    for (let i = 0; i < 200; i++) {
      started = performance.now();
      await store.appendGroup("ops", { from: ids[0], body: payload });
      times.push(performance.now() - started);
    }
    times.sort((a, b) => a - b);
    const singleAppendMs = times[times.length >> 1];

    // A member that was away: the last readItems items are for it.
    const away = ids[ids.length - 1];
    const head = (await store.read("ops", away, { afterSeq: 0, limit: 1 }))!.head;
    const from = Math.max(0, head - options.readItems);
    const readWarmPerSecond = await catchUp(store, away, from, head);
    const cold = await open();
    try {
      const readColdPerSecond = await catchUp(cold, away, from, head);
      return { replicas, appendsPerSecond, singleAppendMs, readWarmPerSecond, readColdPerSecond };
    } finally {
      await cold.close();
    }
  } finally {
    await store.close();
  }
}

async function room(store: RelayStore, members: number): Promise<number[]> {
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
  return ids;
}

/** Reads (from, head] for `member` in pages of 1,000 without acknowledging; items/s. */
async function catchUp(store: RelayStore, member: number, from: number, head: number) {
  const started = performance.now();
  let after = from;
  let items = 0;
  for (let page = 0; page < 100_000 && after < head; page++) {
    const result = await store.read("ops", member, { afterSeq: after, limit: 1000 });
    if (result === undefined) throw new Error("the member is gone");
    items += result.entries.length;
    after = result.nextAfterSeq;
    if (!result.more) break;
  }
  return items / ((performance.now() - started) / 1000);
}
