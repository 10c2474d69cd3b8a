/**
 * The cluster store gives the SQLite store's results, call for call: random
 * sequences of operations (joins, renames, leaves, group items, envelopes,
 * reads, acknowledgements, prunes as the clock moves, prekeys) run against
 * an in-memory SQLite store and against JetStream through several relays in
 * turn, under small limits so that every refusal, gap notice and expiry
 * happens (one relay keeps a single room view in memory, so it reloads
 * rooms from their snapshots and logs all the time); every result must be
 * the same. `STORE_DIFF_SEED` replays a run.
 */

import assert from "node:assert/strict";
import process from "node:process";
import { openNatsRelayStore } from "../lib/relay/store/nats_store.ts";
import type { RelayStore, StoreLimits } from "../lib/relay/store/relay_store.ts";
import { openMemoryRelayStore } from "../lib/relay/store/sqlite_store.ts";
import { seededRandom } from "./support/in_process.ts";
import { body, key, member } from "./support/store_contract.ts";
import { HAVE_NATS, requireNatsServer, startNatsServer } from "./support/nats_server.ts";

requireNatsServer("tests/nats_store_differential_test.ts");

const SEED = Number(process.env.STORE_DIFF_SEED ?? Date.now() % 1_000_000);
const STEPS = Number(process.env.STORE_DIFF_STEPS ?? 600);

const LIMITS: Partial<StoreLimits> = {
  retentionMs: 5_000,
  maxRoomBytes: 400,
  maxItemsPerMember: 4,
  maxMembersPerRoom: 4,
  maxItemBytes: 60,
  maxOneTimePrekeys: 5,
};

/** A comparable form of a result: bytes as text, errors by class and message. */
function plain(value: unknown): string {
  return JSON.stringify(value, (_key, v) => v instanceof Uint8Array ? `bytes:${[...v]}` : v);
}

Deno.test({
  name: `nats store gives the SQLite store's results (seed ${SEED}, ${STEPS} steps, 3 relays)`,
  ignore: !HAVE_NATS,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const random = seededRandom(SEED);
    const pick = <T>(items: T[]): T => items[Math.floor(random() * items.length)];
    const int = (n: number) => Math.floor(random() * n);
    let time = 1_800_000_000_000;
    const now = () => time;
    const server = await startNatsServer();
    const reference = await openMemoryRelayStore({ limits: LIMITS, now });
    const relays: RelayStore[] = [];
    try {
      for (let i = 0; i < 3; i++) {
        // The third relay keeps one room view and no bodies: it reloads rooms all the time.
        const lean = i === 2 ? { maxRoomsInMemory: 1, bodyCacheBytes: 1 } : {};
        relays.push(
          await openNatsRelayStore({
            servers: server.url,
            limits: LIMITS,
            now,
            snapshotEvery: 7,
            ...lean,
          }),
        );
      }
      const rooms = ["ops", "dev"];
      const nicks = ["alice", "bob", "carol", "dave", "erin"];
      const ops: [string, (store: RelayStore) => Promise<unknown>][] = [];
      for (let step = 0; step < STEPS; step++) {
        const room = pick(rooms);
        const id = 1 + int(7);
        const roll = random();
        let label: string;
        let call: (store: RelayStore) => Promise<unknown>;
        if (roll < 0.14) {
          const n = int(5);
          // Sometimes another identity wants the nick.
          const identity = int(4) === 0 ? n + 2 : n + 1;
          const announcement = `a${int(2)}`;
          label = `add ${room} ${nicks[n]} as ${identity}`;
          call = (s) => s.addMember(room, member(identity, nicks[n], announcement));
        } else if (roll < 0.18) {
          label = `rename ${room} ${id}`;
          const nick = pick(nicks);
          call = (s) => s.renameMember(room, id, nick);
        } else if (roll < 0.22) {
          label = `remove ${room} ${id}`;
          call = (s) => s.removeMember(room, id);
        } else if (roll < 0.45) {
          const size = 1 + int(70);
          label = `group ${room} ${id} ${size}`;
          const bytes = body(`g${step}`.padEnd(size, "."));
          call = (s) => s.appendGroup(room, { from: id, body: bytes });
        } else if (roll < 0.55) {
          const to = 1 + int(7);
          label = `envelope ${room} ${id}->${to}`;
          const bytes = body(`e${step}`);
          call = (s) => s.appendEnvelope(room, { from: id, to, body: bytes });
        } else if (roll < 0.72) {
          const after = int(4) === 0 ? 0 : int(40);
          const limit = 1 + int(6);
          label = `read ${room} ${id} after ${after} limit ${limit}`;
          call = (s) => s.read(room, id, { afterSeq: after, limit });
        } else if (roll < 0.85) {
          const seq = int(50);
          label = `ack ${room} ${id} ${seq}`;
          call = (s) => s.ack(room, id, seq);
        } else if (roll < 0.91) {
          time += int(3_000);
          const maxItems = 1 + int(8);
          label = `prune at +${time - 1_800_000_000_000} max ${maxItems}`;
          call = (s) => s.prune({ maxItems });
        } else if (roll < 0.94) {
          const who = key(1 + int(3));
          const first = int(8);
          const signed = int(2) === 0 ? { id: int(3), body: body("signed") } : undefined;
          const oneTime = Array.from({ length: int(4) }, (_, i) => ({
            id: first + i,
            body: body(`o${first + i}`),
          }));
          label = `put prekeys ${who[0]} from ${first}`;
          call = (s) => s.putPrekeys(who, { signed, oneTime });
        } else if (roll < 0.97) {
          const who = key(1 + int(3));
          label = `take prekeys ${who[0]}`;
          call = (s) => s.takePrekeys(who);
        } else {
          const includeRemoved = int(2) === 0;
          label = `list ${room}`;
          call = (s) => s.listMembers(room, { includeRemoved });
        }
        time += int(50);
        ops.push([label, call]);
        const expected = await call(reference).then(plain, (e: Error) => `${e.name}`);
        const relay = relays[step % relays.length];
        const actual = await call(relay).then(plain, (e: Error) => `${e.name}: ${e.message}`);
        assert.equal(
          actual,
          expected,
          `step ${step} (${label}) through relay ${step % relays.length}; seed ${SEED}\n` +
            ops.slice(-8).map(([l]) => l).join("\n"),
        );
      }
      assert.equal(plain(await relays[0].counts()), plain(await reference.counts()));
    } finally {
      await reference.close();
      await Promise.all(relays.map((relay) => relay.close()));
      await server.stop();
    }
  },
});
