/// <reference lib="dom" />
/**
 * Tampering with what the web page keeps in IndexedDB (a real Chromium, a
 * real durable relay): a history record with one byte flipped, or moved to
 * another row, is refused and never shown; a room state with one byte
 * flipped stops the join with a clear message on the page, never a blank
 * screen and never a silently fresh state.
 */

import assert from "node:assert/strict";
import type { Page } from "playwright-core";
import { generateIdentity } from "../../lib/identity/identity.ts";
import { Relay } from "../../lib/relay/relay.ts";
import { openSqliteRelayStore } from "../../lib/relay/store/sqlite_store.ts";
import { CliProcess, TempDirs } from "../support/cli_process.ts";
import {
  browserTest,
  createIdentity,
  joinFromPage,
  launchBrowser,
  startWebServer,
  typeLine,
  unlockAndJoin,
} from "../support/browser.ts";
import { Attack } from "./support/scoreboard.ts";

/** Changes IndexedDB records of one object store in the page: `how` edits each value's bytes. */
async function tamper(page: Page, store: string, how: "flip" | "swap"): Promise<number> {
  return await page.evaluate(async ({ store, how }) => {
    const db = await new Promise<IDBDatabase>((resolve, reject) => {
      const request = indexedDB.open("securechat");
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
    const objects = db.transaction(store, "readwrite").objectStore(store);
    const entries = await new Promise<[IDBValidKey, unknown][]>((resolve) => {
      const keys = objects.getAllKeys();
      const values = objects.getAll();
      values.onsuccess = () => resolve(keys.result.map((key, i) => [key, values.result[i]]));
    });
    const bytesOf = (value: unknown) =>
      value instanceof Uint8Array ? value : (value as { record: Uint8Array }).record;
    const withBytes = (value: unknown, bytes: Uint8Array) =>
      value instanceof Uint8Array ? bytes : { ...(value as object), record: bytes };
    const changes: [IDBValidKey, unknown][] = [];
    if (how === "flip") {
      for (const [key, value] of entries) {
        const bytes = bytesOf(value).slice();
        bytes[bytes.length - 1] ^= 1;
        changes.push([key, withBytes(value, bytes)]);
      }
    } else if (entries.length >= 2) {
      // Two records swap places: each is intact, in the wrong row.
      changes.push([entries[0][0], withBytes(entries[0][1], bytesOf(entries[1][1]))]);
      changes.push([entries[1][0], withBytes(entries[1][1], bytesOf(entries[0][1]))]);
    }
    const tx = db.transaction(store, "readwrite");
    for (const [key, value] of changes) tx.objectStore(store).put(value, key);
    await new Promise((resolve) => tx.oncomplete = resolve);
    db.close();
    return changes.length;
  }, { store, how });
}

browserTest("web store: tampered IndexedDB records are refused, with a clear message", async () => {
  const history = new Attack("browser storage: flip or move a history record");
  const state = new Attack("browser storage: flip a byte of a room's kept state");
  const dirs = new TempDirs();
  const store = await openSqliteRelayStore({ dir: dirs.make("relay-data") });
  const relay = await Relay.listen({ identity: generateIdentity(), port: 0, store });
  const address = `127.0.0.1:${relay.address.port}`;
  const web = await startWebServer(dirs.make("web"));
  const browser = await launchBrowser();
  let bob: CliProcess | undefined;
  try {
    const page = await browser.newPage();
    await page.goto(web.url);
    await createIdentity(page);
    await joinFromPage(page, { relay: address, room: "garden", nick: "alice" });
    bob = CliProcess.start(
      ["join", address, "--room", "garden", "--nick", "bob", "--stay"],
      { home: dirs.make("bob") },
    );
    await bob.waitFor("stderr", /joined room "garden" as bob/);
    for (const text of ["one", "two", "three"]) {
      await typeLine(page, text);
      await bob.waitFor("stdout", new RegExp(`alice: ${text}\\n`));
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
    await page.close();

    // History: records swapped between rows, then one flipped: none of them is shown.
    const again = await browser.newPage();
    await again.goto(web.url);
    history.attempt(2);
    const swapped = await tamper(again, "clientHistory", "swap");
    assert.ok(swapped >= 2, "there was history to tamper with");
    await unlockAndJoin(again, web.url, { relay: address, room: "garden", nick: "alice" });
    await again.getByTestId("chat").waitFor({ timeout: 20_000 });
    await again.waitForTimeout(1_000);
    const shown = await again.locator("[data-testid=lines] li[data-kind=own]").allTextContents();
    const moved = ["one", "two", "three"].slice(0, 2).filter((t) =>
      shown.some((s) => s.includes(t))
    );
    if (moved.length === 0) history.detected();
    else history.forged(`moved records shown: ${moved.join(", ")}`);
    await again.close();
    const third = await browser.newPage();
    await third.goto(web.url);
    await tamper(third, "clientHistory", "flip");
    await unlockAndJoin(third, web.url, { relay: address, room: "garden", nick: "alice" });
    await third.getByTestId("chat").waitFor({ timeout: 20_000 });
    await third.waitForTimeout(1_000);
    const after = await third.locator("[data-testid=lines] li[data-kind=own]").count();
    if (after === 0) history.detected();
    else history.forged(`${after} flipped records shown`);
    await third.close();

    // State: the room's keys and position do not open: the join stops, and says why.
    const fourth = await browser.newPage();
    await fourth.goto(web.url);
    state.attempt();
    assert.ok(await tamper(fourth, "clientState", "flip") >= 1, "there was state to tamper with");
    await unlockAndJoin(fourth, web.url, { relay: address, room: "garden", nick: "alice" });
    const error = fourth.getByTestId("error");
    await error.waitFor({ state: "visible", timeout: 20_000 });
    const text = (await error.textContent()) ?? "";
    if (/does not open \(changed or damaged\)/.test(text)) state.detected();
    assert.match(text, /does not open \(changed or damaged\)/);
    assert.deepEqual(browser.problems.filter((p) => !/does not open/.test(p)), []);
  } finally {
    history.save();
    state.save();
    if (bob && bob.child.exitCode === null) await bob.stop();
    await browser.close();
    await web.proc.stop();
    await relay.close();
    await store.close();
    dirs.cleanup();
  }
  assert.ok(history.clean && history.row.detected === history.row.attempts, history.summary());
  assert.ok(state.clean && state.row.detected === state.row.attempts, state.summary());
});
