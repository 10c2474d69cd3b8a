/// <reference lib="dom" />
/**
 * The web client's figures, in a real Chromium (Debian's, driven by
 * playwright-core; the bench is skipped without it): the page's weight as
 * `securechat web` serves it (gzipped), the time from opening the page to
 * being in the room (unlock with scrypt, then WebSocket, handshake and
 * welcome), and how many messages a page receives and renders per second
 * when a terminal member sends as fast as it can, one group message (one
 * signature to verify, one line to draw) per text.
 *
 * @module
 */

import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { ChatClient } from "../lib/client/client.ts";
import { generateIdentity } from "../lib/identity/identity.ts";
import { Child, securechatCommand } from "./processes.ts";
import type { Server } from "./servers.ts";

const CHROMIUM = "/usr/bin/chromium";
const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
const PASSPHRASE = "bench passphrase, long enough";

/** What the web scenario measured. */
export interface WebResult {
  /** The page's HTML, CSS and script as served, gzipped. */
  pageGzipBytes: number;
  /** The script alone, gzipped. */
  scriptGzipBytes: number;
  /** Page opened (identity stored) to chat screen, unlock included. */
  openToJoinedMs: number;
  /** Of which: unlocking the identity (scrypt logN 17 in JavaScript). */
  unlockMs: number;
  /** Of which: the join button to the chat screen (WebSocket, handshake, welcome). */
  connectMs: number;
  /** Messages sent to the page. */
  messages: number;
  /** Messages received, decrypted, verified and drawn per second. */
  renderPerSecond: number;
}

/**
 * Runs the web scenario against a running relay; resolves with a reason
 * string instead when Chromium is not installed.
 *
 * @example
 * ```ts
 * const result = await runWebBench({ server, dir, messages: 2000 });
 * ```
 */
export async function runWebBench(
  options: { server: Server; dir: string; messages: number },
): Promise<WebResult | string> {
  if (!existsSync(CHROMIUM)) return `no Chromium at ${CHROMIUM} (apt-get install chromium)`;
  const { server, messages } = options;
  const { command, args } = securechatCommand();
  const web = Child.spawn(command, [...args, "web", "--listen", "127.0.0.1:0"], {
    env: { SECURECHAT_HOME: join(options.dir, "web-home") },
  });
  const profile = mkdtempSync(join(tmpdir(), "securechat-bench-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: FLAGS,
  });
  let sender: ChatClient | undefined;
  try {
    const [, url] = await web.waitFor("stdout", /serving the web client on (\S+)/, 30_000);
    const weights = await Promise.all(["", "app.js", "app.css"].map(async (path) => {
      const response = await fetch(new URL(path, url), { headers: { "Accept-Encoding": "gzip" } });
      await response.arrayBuffer();
      return Number(response.headers.get("content-length"));
    }));
    const page = await context.newPage();
    const relay = `${server.host}:${server.port}`;
    // Set-up, not measured: an identity in the page's storage and the join form filled once.
    await page.goto(url);
    await page.getByTestId("new-passphrase").fill(PASSPHRASE);
    await page.getByTestId("repeat-passphrase").fill(PASSPHRASE);
    await page.getByTestId("create").click();
    await page.getByTestId("relay").fill(relay, { timeout: 60_000 });
    await page.getByTestId("room").fill("bench-web");
    await page.getByTestId("nick").fill("reader");
    await page.getByTestId("join").click();
    await page.getByTestId("chat").waitFor({ timeout: 30_000 });
    await page.getByRole("button", { name: "Leave" }).click();

    const opened = performance.now();
    await page.goto(url);
    await page.getByTestId("passphrase").fill(PASSPHRASE);
    const unlockStart = performance.now();
    await page.getByTestId("unlock").click();
    await page.getByTestId("join").waitFor({ timeout: 60_000 });
    const unlocked = performance.now();
    await page.getByTestId("join").click();
    await page.getByTestId("chat").waitFor({ timeout: 30_000 });
    const joined = performance.now();

    sender = await ChatClient.connect({
      host: server.host,
      port: server.port,
      identity: generateIdentity(),
      room: "bench-web",
      nick: "sender",
      verifyRelay: () => {},
      onEvent: () => {},
    });
    await page.locator("[data-testid=member-item][data-nick=sender]").waitFor({ timeout: 30_000 });
    // The page must hold the sender's key before the burst, or it would wait for it.
    await sender.send(["warm-up"]);
    await page.locator("[data-kind=message]", { hasText: "warm-up" }).waitFor({ timeout: 30_000 });
    const last = `bench message ${messages - 1} end`;
    const started = performance.now();
    const acks: Promise<unknown>[] = [];
    for (let i = 0; i < messages; i++) acks.push(sender.send([`bench message ${i} end`]));
    await page.waitForFunction(
      (text) =>
        document.querySelector("[data-testid=lines]")?.lastElementChild?.textContent?.includes(
          text,
        ),
      last,
      { timeout: 120_000, polling: 10 },
    );
    const rendered = performance.now();
    await Promise.all(acks);
    return {
      pageGzipBytes: weights.reduce((sum, size) => sum + size, 0),
      scriptGzipBytes: weights[1],
      openToJoinedMs: Math.round(joined - opened),
      unlockMs: Math.round(unlocked - unlockStart),
      connectMs: Math.round(joined - unlocked),
      messages,
      renderPerSecond: Math.round(messages / ((rendered - started) / 1000)),
    };
  } finally {
    await sender?.close().catch(() => {});
    await context.close().catch(() => {});
    rmSync(profile, { recursive: true, force: true });
    await web.stop("SIGTERM", 5000);
  }
}
