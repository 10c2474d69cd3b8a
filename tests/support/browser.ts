/**
 * A real browser for the web client's tests: Debian's Chromium at
 * /usr/bin/chromium, driven by playwright-core (never a downloaded
 * browser), headless, with a fresh profile directory per launch and the
 * background services that would reach the network turned off. Without
 * Chromium the tests skip, unless `CI` is set: then they fail, so CI cannot
 * pass without them. Also: `securechat web` started as a real process, and
 * helpers that drive the page the way a user does.
 *
 * @module
 */

import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { type BrowserContext, chromium, type Page } from "playwright-core";
import { CliProcess } from "./cli_process.ts";

/** Where Debian's chromium package puts the browser. */
export const CHROMIUM = "/usr/bin/chromium";

/** Chromium's flags for the tests (the profile directory is added per launch). */
export const CHROMIUM_FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

const available = existsSync(CHROMIUM);
const inCi = (process.env.CI ?? "") !== "" && process.env.CI !== "false";

/**
 * Registers a test that needs Chromium: skipped without it, except under CI,
 * where it fails and says how to install it.
 *
 * @example
 * ```ts
 * browserTest("the page joins a room", async () => { ... });
 * ```
 */
export function browserTest(name: string, fn: () => Promise<void>): void {
  Deno.test({
    name,
    ignore: !available && !inCi,
    // playwright keeps a few timers and pipes of its own between tests.
    sanitizeOps: false,
    sanitizeResources: false,
    fn: async () => {
      if (!available) {
        throw new Error(
          `no Chromium at ${CHROMIUM}: install it with \`apt-get install -y chromium\` (.ci/run ` +
            "does); CI is set, so the browser tests fail rather than skip",
        );
      }
      await fn();
    },
  });
}

/** A launched browser with its own fresh profile. */
export interface TestBrowser {
  context: BrowserContext;
  /** Console errors and uncaught page errors seen so far, for every page. */
  problems: string[];
  newPage(): Promise<Page>;
  close(): Promise<void>;
}

/**
 * Launches Chromium with a fresh `--user-data-dir`.
 *
 * @example
 * ```ts
 * const browser = await launchBrowser();
 * const page = await browser.newPage();
 * ```
 */
export async function launchBrowser(): Promise<TestBrowser> {
  const profile = await mkdtemp(join(tmpdir(), "securechat-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_FLAGS,
    acceptDownloads: true,
    viewport: { width: 1100, height: 700 },
  });
  const problems: string[] = [];
  const watch = (page: Page) => {
    page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
    page.on("console", (message) => {
      if (message.type() === "error") problems.push(`console error: ${message.text()}`);
    });
  };
  context.on("page", watch);
  for (const page of context.pages()) watch(page);
  return {
    context,
    problems,
    async newPage() {
      return await context.newPage();
    },
    async close() {
      await context.close().catch(() => {});
      await rm(profile, { recursive: true, force: true });
    },
  };
}

/** A running `securechat web`. */
export interface WebServer {
  proc: CliProcess;
  /** `http://127.0.0.1:PORT/`. */
  url: string;
  port: number;
}

/**
 * Starts `securechat web --listen 127.0.0.1:0` and reads the page's URL.
 *
 * @example
 * ```ts
 * const web = await startWebServer(dirs.make());
 * await page.goto(web.url);
 * ```
 */
export async function startWebServer(home: string): Promise<WebServer> {
  const proc = CliProcess.start(["web", "--listen", "127.0.0.1:0"], { home });
  const [, url, port] = await proc.waitFor(
    "stdout",
    /serving the web client on (http:\/\/127\.0\.0\.1:(\d+)\/)/,
  );
  return { proc, url, port: Number(port) };
}

/** A passphrase for pages in tests. */
export const PASSPHRASE = "correct horse battery staple";

/**
 * Creates an identity on the setup screen and returns its fingerprint
 * (shown on the join screen that follows).
 *
 * @example
 * ```ts
 * const fingerprint = await createIdentity(page);
 * ```
 */
export async function createIdentity(page: Page, passphrase = PASSPHRASE): Promise<string> {
  await page.getByTestId("new-passphrase").fill(passphrase);
  await page.getByTestId("repeat-passphrase").fill(passphrase);
  await page.getByTestId("create").click();
  return (await page.getByTestId("own-fingerprint").textContent({ timeout: 60_000 }))!;
}

/**
 * Fills the join form and waits for the chat screen.
 *
 * @example
 * ```ts
 * await joinFromPage(page, { relay: "127.0.0.1:7878", room: "garden", nick: "alice" });
 * ```
 */
export async function joinFromPage(
  page: Page,
  options: { relay: string; room: string; nick: string; pin?: string },
): Promise<void> {
  await page.getByTestId("relay").fill(options.relay);
  await page.getByTestId("relay-fingerprint").fill(options.pin ?? "");
  await page.getByTestId("room").fill(options.room);
  await page.getByTestId("nick").fill(options.nick);
  await page.getByTestId("join").click();
  await page.getByTestId("chat").waitFor({ timeout: 20_000 });
}

/**
 * Types a line into the page's input and presses Enter, as a user would.
 *
 * @example
 * ```ts
 * await typeLine(page, "hello");
 * ```
 */
export async function typeLine(page: Page, text: string): Promise<void> {
  const input = page.getByTestId("message-input");
  await input.fill(text);
  await input.press("Enter");
}

/**
 * Waits until the open conversation shows a message with `text` from the
 * member with `fingerprint`.
 *
 * @example
 * ```ts
 * await expectMessage(page, { text: "hi", nick: "bob", fingerprint: bobFingerprint });
 * ```
 */
export async function expectMessage(
  page: Page,
  options: { text: string; nick: string; fingerprint: string },
): Promise<void> {
  const line = page.locator(
    `[data-testid=lines] li[data-kind=message][data-fingerprint="${options.fingerprint}"]` +
      `[data-nick="${options.nick}"]`,
    { hasText: options.text },
  );
  await line.first().waitFor({ timeout: 15_000 });
}

/**
 * Opens the page again, unlocks the identity it keeps, and joins a room
 * (without waiting for the chat screen: a refusal shows on the join form).
 *
 * @example
 * ```ts
 * await unlockAndJoin(page, web.url, { relay: address, room: "garden", nick: "alice" });
 * ```
 */
export async function unlockAndJoin(
  page: Page,
  url: string,
  options: { relay: string; room: string; nick: string },
): Promise<void> {
  await page.goto(url);
  await page.getByTestId("passphrase").fill(PASSPHRASE);
  await page.getByTestId("unlock").click();
  await page.getByTestId("own-fingerprint").waitFor({ timeout: 60_000 });
  await page.getByTestId("relay").fill(options.relay);
  await page.getByTestId("relay-fingerprint").fill("");
  await page.getByTestId("room").fill(options.room);
  await page.getByTestId("nick").fill(options.nick);
  await page.getByTestId("join").click();
}
