/// <reference lib="dom" />
/**
 * The web page in a durable room, in a real Chromium with a real SQLite
 * relay store: the page keeps the room's keys and its history in IndexedDB,
 * sealed under its identity, so a message sent while the page was closed
 * reaches it when it comes back, earlier messages are shown again, nothing
 * is shown twice, and IndexedDB holds no plaintext.
 */

import assert from "node:assert/strict";
import { mkdir } from "node:fs/promises";
import { join, resolve } from "node:path";
import { tmpdir } from "node:os";
import process from "node:process";
import type { Page } from "playwright-core";
import { utf8 } from "../lib/core/bytes.ts";
import { generateIdentity } from "../lib/identity/identity.ts";
import { Relay } from "../lib/relay/relay.ts";
import { openSqliteRelayStore } from "../lib/relay/store/sqlite_store.ts";
import { containsBytes } from "./support/in_process.ts";
import { CliProcess, runCli, TempDirs } from "./support/cli_process.ts";
import {
  browserTest,
  createIdentity,
  expectMessage,
  joinFromPage,
  launchBrowser,
  startWebServer,
  typeLine,
  unlockAndJoin,
} from "./support/browser.ts";

const SHOTS = process.env.SECURECHAT_SCREENSHOTS
  ? resolve(process.env.SECURECHAT_SCREENSHOTS)
  : join(tmpdir(), "securechat-screenshots");

/** Every byte IndexedDB holds for the page (values and keys), read in the page. */
async function indexedDbBytes(page: Page): Promise<Uint8Array> {
  const numbers = await page.evaluate(async () => {
    const db = await new Promise<IDBDatabase>((resolve, reject) => {
      const request = indexedDB.open("securechat");
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
    const out: number[] = [];
    const add = (value: unknown): void => {
      if (value instanceof Uint8Array) out.push(...value);
      else if (typeof value === "string") out.push(...new TextEncoder().encode(value));
      else if (typeof value === "number") out.push(...new TextEncoder().encode(String(value)));
      else if (value !== null && typeof value === "object") {
        for (const item of Object.values(value)) add(item);
      }
    };
    for (const name of Array.from(db.objectStoreNames)) {
      const store = db.transaction(name, "readonly").objectStore(name);
      const [keys, values] = await Promise.all([
        new Promise<unknown[]>((resolve) => {
          const request = store.getAllKeys();
          request.onsuccess = () => resolve(request.result);
        }),
        new Promise<unknown[]>((resolve) => {
          const request = store.getAll();
          request.onsuccess = () => resolve(request.result);
        }),
      ]);
      add(keys);
      add(values);
    }
    db.close();
    return out;
  });
  return Uint8Array.from(numbers);
}

browserTest(
  "web: a durable room's history and what was sent while the page was closed are there when it comes back, once, and IndexedDB holds no plaintext",
  async () => {
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
      const bobHome = dirs.make("bob");
      bob = CliProcess.start(
        [
          "join",
          address,
          "--room",
          "garden",
          "--nick",
          "bob",
          "--stay",
          "--server-fingerprint",
          relay.fingerprint,
        ],
        { home: bobHome },
      );
      await bob.waitFor("stderr", /joined room "garden" as bob/);
      const bobFingerprint = (await runCli(["fingerprint"], { home: bobHome })).stdout.trim();
      await typeLine(page, "first from alice");
      await bob.waitFor("stdout", /alice: first from alice\n/);
      bob.write("hello alice\n");
      await expectMessage(page, { text: "hello alice", nick: "bob", fingerprint: bobFingerprint });

      // The page goes away (history is written within 100 ms of a message); bob writes; the page
      // comes back in the same browser.
      await new Promise((resolve) => setTimeout(resolve, 500));
      await page.close();
      await bob.waitFor("stderr", /alice .*went offline|alice .*offline/, 15_000).catch(() => {});
      bob.write("while you were away\n");
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      const again = await browser.newPage();
      await unlockAndJoin(again, web.url, { relay: address, room: "garden", nick: "alice" });
      await again.getByTestId("chat").waitFor({ timeout: 20_000 });
      await expectMessage(again, {
        text: "while you were away",
        nick: "bob",
        fingerprint: bobFingerprint,
      });
      const lines = again.locator("[data-testid=lines] li");
      await lines.filter({ hasText: "kept in this browser" }).first().waitFor({ timeout: 15_000 });
      await lines.filter({ hasText: "first from alice" }).first().waitFor();
      await lines.filter({ hasText: "hello alice" }).first().waitFor();
      assert.equal(await lines.filter({ hasText: "while you were away" }).count(), 1);
      assert.equal(await lines.filter({ hasText: "hello alice" }).count(), 1);
      await mkdir(SHOTS, { recursive: true });
      await again.screenshot({ path: join(SHOTS, "history.png") });

      const stored = await indexedDbBytes(again);
      assert.ok(stored.length > 1000, "the page keeps something");
      for (const secret of ["while you were away", "hello alice", "first from alice", "garden"]) {
        assert.ok(!containsBytes(stored, utf8(secret)), `IndexedDB holds "${secret}" in clear`);
      }

      // "Forget history" deletes what this browser kept of the room.
      again.once("dialog", (dialog) => dialog.accept());
      await again.getByTestId("forget-history").click();
      await lines.filter({ hasText: "deleted from this browser" }).first().waitFor();
      await again.close();
      const third = await browser.newPage();
      await unlockAndJoin(third, web.url, { relay: address, room: "garden", nick: "alice" });
      await third.getByTestId("chat").waitFor({ timeout: 20_000 });
      await third.waitForTimeout(1_500);
      const later = third.locator("[data-testid=lines] li");
      assert.equal(await later.filter({ hasText: "kept in this browser" }).count(), 0);
      assert.equal(await later.filter({ hasText: "first from alice" }).count(), 0);
      assert.deepEqual(browser.problems, []);
    } finally {
      if (bob && bob.child.exitCode === null) await bob.stop();
      await browser.close();
      await web.proc.stop();
      await relay.close();
      await store.close();
      dirs.cleanup();
    }
  },
);
