/**
 * A child process for the store tests that need a second process: a stream
 * of appends to be killed with SIGKILL, a prekey taker racing another, and
 * an open attempt under another user's rights.
 *
 * Usage (`deno run -A store_child.ts MODE DIR ...`):
 * - `append DIR COUNT INFLIGHT START`: adds `alice` and `bob` to room `ops`,
 *   then appends COUNT group items (`item-<i>`, i from START) from alice,
 *   INFLIGHT at a time, printing `acked <seq> <i>` once each append has
 *   resolved (is durable);
 * - `take DIR COUNT`: takes prekeys of identity `key(9)` COUNT times,
 *   printing `took <one-time id>` or `took none`;
 * - `open DIR`: opens the store and adds a member; prints `ok`, or `error`
 *   and the error's message on one line.
 *
 * @module
 */

import process from "node:process";
import { openSqliteRelayStore } from "../../lib/relay/store/sqlite_store.ts";
import { body, key, member } from "./store_contract.ts";

/** One line on stdout. */
const out = (line: string) => process.stdout.write(`${line}\n`);

async function append(dir: string, count: number, inflight: number, start: number) {
  const store = await openSqliteRelayStore({ dir });
  const alice = await store.addMember("ops", member(1, "alice"));
  await store.addMember("ops", member(2, "bob"));
  const from = alice.status === "added" || alice.status === "existing" ? alice.member.memberId : 0;
  out("ready");
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = start + next++;
      const result = await store.appendGroup("ops", { from, body: body(`item-${i}`) });
      if (result.status !== "stored") throw new Error(`append ${i}: ${result.status}`);
      out(`acked ${result.seq} ${i}`);
    }
  };
  await Promise.all(Array.from({ length: inflight }, worker));
  await store.close();
}

async function take(dir: string, count: number): Promise<void> {
  const store = await openSqliteRelayStore({ dir });
  out("ready");
  for (let i = 0; i < count; i++) {
    const handout = await store.takePrekeys(key(9));
    out(`took ${handout?.oneTime?.id ?? "none"}`);
  }
  await store.close();
}

async function open(dir: string): Promise<void> {
  try {
    const store = await openSqliteRelayStore({ dir });
    await store.addMember("ops", member(1, "alice"));
    await store.close();
    out("ok");
  } catch (error) {
    out(`error ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`);
  }
}

if (import.meta.main) {
  const [mode, dir, a, b, c] = process.argv.slice(2);
  if (mode === "append") await append(dir, Number(a), Number(b), Number(c));
  else if (mode === "take") await take(dir, Number(a));
  else if (mode === "open") await open(dir);
  else throw new Error(`unknown mode ${mode}`);
}
