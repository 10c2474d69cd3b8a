/**
 * Part 6 of the attack suite, second half: the client's local store on a
 * hostile disk. Someone who can write `client.db` but has not the identity
 * changes bytes of sealed values, moves rows between rooms, swaps records
 * and state values, and truncates them: the store must never show a row
 * that was not recorded for that room as it was, must count every damaged
 * row it skips, and must refuse a damaged state value rather than return it.
 */

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { generateIdentity } from "../../lib/identity/identity.ts";
import { LocalStoreError, openLocalStore, type StateKey } from "../../lib/client/local_store.ts";
import { seededRandom } from "../support/in_process.ts";
import { ADVERSARIAL_SEED, ATTEMPTS } from "./support/knobs.ts";
import { guarded } from "./support/observe.ts";
import { Attack } from "./support/scoreboard.ts";

const random = seededRandom(ADVERSARIAL_SEED + 8);
const RELAY = "o6kv-tmqc-57x2-bb5p-pvis-jnua-liox-4yhb";
const ROOMS = ["ops", "dev"];

type Mutation = (db: DatabaseSync) => string;

const pick = <T>(items: T[]): T => items[Math.floor(random() * items.length)];

function historyRows(db: DatabaseSync) {
  return db.prepare("SELECT id, room_tag, record FROM history").all() as {
    id: number;
    room_tag: Uint8Array;
    record: Uint8Array;
  }[];
}

/** One change an attacker with the disk could make to a history row or state value. */
const mutations: Mutation[] = [
  (db) => {
    const row = pick(historyRows(db));
    const record = row.record.slice();
    const at = Math.floor(random() * record.length);
    record[at] ^= 1 << Math.floor(random() * 8);
    db.prepare("UPDATE history SET record = ? WHERE id = ?").run(record, row.id);
    return `flip a bit at ${at} of history row ${row.id}`;
  },
  (db) => {
    const rows = historyRows(db);
    const row = pick(rows);
    const other = rows.find((r) => !r.room_tag.every((b, i) => b === row.room_tag[i]));
    if (!other) return "nothing to move";
    db.prepare("UPDATE history SET room_tag = ? WHERE id = ?").run(other.room_tag, row.id);
    return `move history row ${row.id} to another room`;
  },
  (db) => {
    const rows = historyRows(db);
    const [a, b] = [pick(rows), pick(rows)];
    if (a.id === b.id) return "nothing to swap";
    db.prepare("UPDATE history SET record = ? WHERE id = ?").run(b.record, a.id);
    db.prepare("UPDATE history SET record = ? WHERE id = ?").run(a.record, b.id);
    return `swap history records ${a.id} and ${b.id}`;
  },
  (db) => {
    const row = pick(historyRows(db));
    const cut = Math.floor(random() * row.record.length);
    db.prepare("UPDATE history SET record = ? WHERE id = ?").run(row.record.slice(0, cut), row.id);
    return `truncate history row ${row.id} to ${cut} bytes`;
  },
  (db) => {
    const row = pick(historyRows(db));
    const copy = db.prepare("INSERT INTO history (room_tag, record) VALUES (?, ?)")
      .run(row.room_tag, row.record);
    return `replay history row ${row.id} as row ${copy.lastInsertRowid}`;
  },
  (db) => {
    const state = db.prepare("SELECT tag, value FROM state").all() as {
      tag: Uint8Array;
      value: Uint8Array;
    }[];
    const [a, b] = [state[0], state[1]];
    db.prepare("UPDATE state SET value = ? WHERE tag = ?").run(b.value, a.tag);
    db.prepare("UPDATE state SET value = ? WHERE tag = ?").run(a.value, b.tag);
    return "swap two state values";
  },
];

Deno.test("local store: changed, moved, swapped, truncated and replayed rows are never shown", async () => {
  const attack = new Attack("local store: hostile disk");
  const home = mkdtempSync(join(tmpdir(), "securechat-localattack-"));
  try {
    await guarded(attack, async () => {
      const identity = generateIdentity();
      for (let round = 0; round < ATTEMPTS * 6; round++) {
        const path = join(home, `round-${round}`, "client.db");
        let store = await openLocalStore({ path, identity });
        const genuine = new Map<string, string[]>();
        for (let i = 0; i < 12; i++) {
          const room = ROOMS[i % 2];
          const text = `${room}-${i}`;
          await store.addHistory({
            relay: RELAY,
            room,
            time: 1_800_000_000_000 + i,
            sender: RELAY,
            nick: "bob",
            text,
            kind: "group",
            direction: "in",
          });
          genuine.set(room, [...(genuine.get(room) ?? []), text]);
        }
        const keys: StateKey[] = ROOMS.map((room) => ({
          relay: RELAY,
          room,
          nick: "a",
          name: "s",
        }));
        for (const [i, key] of keys.entries()) await store.putState(key, Uint8Array.of(i));
        await store.close();

        const db = new DatabaseSync(path);
        const what = pick(mutations)(db);
        db.close();
        if (what.startsWith("nothing")) continue;
        attack.attempt();

        store = await openLocalStore({ path, identity });
        try {
          let refused = 0;
          let problem = "";
          for (const room of ROOMS) {
            const result = await store.history(RELAY, room);
            refused += result.refused;
            const shown = result.rows.map((row) => row.text);
            // Shown rows: genuine ones of this room, in order, each once.
            const expected = genuine.get(room)!;
            let at = -1;
            for (const text of shown) {
              const index = expected.indexOf(text);
              if (index <= at) problem ||= `${room} showed ${text} (${what})`;
              at = Math.max(at, index);
            }
          }
          let stateRefused = 0;
          for (const [i, key] of keys.entries()) {
            try {
              const value = await store.getState(key);
              if (value?.[0] !== i) problem ||= `state ${key.room} came back as ${value} (${what})`;
            } catch (error) {
              if (!(error instanceof LocalStoreError)) throw error;
              stateRefused++;
            }
          }
          if (problem) attack.forged(problem);
          else if (refused > 0 || stateRefused > 0) attack.detected();
          else attack.lost(1, `${what}: nothing was noticed`);
        } finally {
          await store.close();
        }
      }
    });
  } finally {
    rmSync(home, { recursive: true, force: true });
    attack.save();
  }
  assert.equal(attack.row.detected, attack.row.attempts, attack.summary());
  assert.ok(attack.clean, attack.summary());
});
