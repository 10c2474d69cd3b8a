/**
 * The web client in a real Chromium (issue 12): pages served by the real
 * `securechat web`, relays on loopback, a terminal member started as the
 * real CLI. Two pages use two origins (127.0.0.1 and localhost), so each has
 * its own storage and identity. Screenshots of the main screens go to a
 * temporary directory, or to `$SECURECHAT_SCREENSHOTS`: run with
 * `SECURECHAT_SCREENSHOTS=docs/screenshots` to refresh the README's images
 * (a plain test run leaves the work tree as it was).
 */

import assert from "node:assert/strict";
import { chmod, mkdir, mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import process from "node:process";
import { connect } from "node:net";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { Page } from "playwright-core";
import { utf8 } from "../lib/core/bytes.ts";
import { generateIdentity } from "../lib/identity/identity.ts";
import { Relay } from "../lib/relay/relay.ts";
import { CliProcess, runCli, TempDirs } from "./support/cli_process.ts";
import { containsBytes, startProxy } from "./support/in_process.ts";
import { webSocketPayload } from "./support/websocket.ts";
import {
  browserTest,
  createIdentity,
  expectMessage,
  joinFromPage,
  launchBrowser,
  PASSPHRASE,
  startWebServer,
  typeLine,
} from "./support/browser.ts";

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const SHOTS = process.env.SECURECHAT_SCREENSHOTS
  ? resolve(ROOT, process.env.SECURECHAT_SCREENSHOTS)
  : await mkdtemp(join(tmpdir(), "securechat-screenshots-"));

/** Sends `GET /` with the given Host header and returns the response head. */
async function rawGet(port: number, host: string): Promise<string> {
  const socket = connect({ host: "127.0.0.1", port });
  let received = "";
  socket.on("data", (chunk: Uint8Array) => received += new TextDecoder().decode(chunk));
  socket.on("error", () => {});
  await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
  socket.write(`GET / HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
  await new Promise<void>((resolve) => socket.once("close", () => resolve()));
  return received;
}

async function screenshot(page: Page, name: string): Promise<void> {
  await mkdir(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, `${name}.png`) });
}

/** The JSON lines a `join --json` printed, parsed. */
function jsonLines(proc: CliProcess): Record<string, string>[] {
  return proc.stdoutLines().flatMap((line) => {
    try {
      return [JSON.parse(line)];
    } catch {
      return [];
    }
  });
}

async function waitForJson(
  proc: CliProcess,
  match: (line: Record<string, string>) => boolean,
  what: string,
): Promise<Record<string, string>> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    const found = jsonLines(proc).find(match);
    if (found) return found;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`timed out waiting for ${what}\n${proc.describe()}`);
}

browserTest(
  "web: two pages and a terminal member talk in one room, each seen with its own fingerprint",
  async () => {
    const dirs = new TempDirs();
    const relay = await Relay.listen({ identity: generateIdentity(), port: 0 });
    const relayAddress = `127.0.0.1:${relay.address.port}`;
    const proxy = await startProxy({ target: { host: "127.0.0.1", port: relay.address.port } });
    const web = await startWebServer(dirs.make("web"));
    const browser = await launchBrowser();
    let carol: CliProcess | undefined;
    try {
      const alice = await browser.newPage();
      const response = await alice.goto(web.url);
      const csp = response!.headers()["content-security-policy"];
      assert.match(csp, /default-src 'none'/);
      assert.match(csp, /script-src 'self'/);
      await alice.getByTestId("create-form").waitFor();
      await screenshot(alice, "identity");
      const aliceFingerprint = await createIdentity(alice);
      await screenshot(alice, "join");
      await joinFromPage(alice, { relay: relayAddress, room: "garden", nick: "alice" });

      // Bob's page comes from another origin (its own storage) and goes through a recording proxy.
      const bob = await browser.newPage();
      await bob.goto(`http://localhost:${web.port}/`);
      const bobFingerprint = await createIdentity(bob);
      assert.notEqual(bobFingerprint, aliceFingerprint);
      await joinFromPage(bob, { relay: `127.0.0.1:${proxy.port}`, room: "garden", nick: "bob" });

      carol = CliProcess.start(
        ["join", relayAddress, "--room", "garden", "--nick", "carol", "--json", "--stay"],
        { home: dirs.make("carol") },
      );
      const welcome = await waitForJson(
        carol,
        (line) => line.type === "welcome",
        "carol's welcome",
      );
      const carolFingerprint = welcome.fingerprint;
      for (const page of [alice, bob]) {
        for (const nick of ["alice", "bob", "carol"]) {
          if ((page === alice && nick === "alice") || (page === bob && nick === "bob")) continue;
          await page.locator(`[data-testid=member-item][data-nick=${nick}]`).waitFor();
        }
      }

      await typeLine(alice, "hello from alice");
      await expectMessage(bob, {
        text: "hello from alice",
        nick: "alice",
        fingerprint: aliceFingerprint,
      });
      await waitForJson(
        carol,
        (l) => l.text === "hello from alice" && l.fingerprint === aliceFingerprint,
        "alice's line at carol",
      );
      await typeLine(bob, "hello from bob");
      await expectMessage(alice, {
        text: "hello from bob",
        nick: "bob",
        fingerprint: bobFingerprint,
      });
      await waitForJson(
        carol,
        (l) => l.text === "hello from bob" && l.fingerprint === bobFingerprint,
        "bob's line at carol",
      );
      carol.write("hello from carol\n");
      for (const page of [alice, bob]) {
        await expectMessage(page, {
          text: "hello from carol",
          nick: "carol",
          fingerprint: carolFingerprint,
        });
      }
      // Alice's own line says how many members it reached.
      await alice.locator("[data-kind=own]", { hasText: "hello from alice" })
        .getByText("delivered to 2").waitFor();

      // Direct messages: unread at bob until he opens the conversation; the CLI gets its own.
      await typeLine(alice, "/msg bob psst bob");
      const unread = bob.locator("[data-testid=member-item][data-nick=alice] [data-testid=unread]");
      await unread.waitFor();
      assert.equal(await unread.textContent(), "1");
      assert.match(await bob.title(), /^\(1\) /);
      await bob.locator("[data-testid=member-item][data-nick=alice] button.open").click();
      await expectMessage(bob, { text: "psst bob", nick: "alice", fingerprint: aliceFingerprint });
      assert.equal(await unread.count(), 0);
      await typeLine(alice, "/msg carol psst carol");
      await waitForJson(
        carol,
        (l) => l.type === "direct" && l.text === "psst carol" && l.fingerprint === aliceFingerprint,
        "alice's direct message at carol",
      );

      // The safety number dialog, and the verified marker it leads to.
      await alice.keyboard.press("Escape");
      await alice.locator("[data-testid=member-item][data-nick=bob] [data-testid=verify]").click();
      const number = await alice.getByTestId("safety-number").textContent();
      assert.match(number!, /^(\d{5} ){3}\d{5}(\n(\d{5} ){3}\d{5}){2}$/);
      await screenshot(alice, "safety-number");
      await alice.getByTestId("mark-verified").click();
      await alice.locator("[data-testid=member-item][data-nick=bob][data-status=verified]")
        .waitFor();
      await screenshot(alice, "chat");
      await alice.setViewportSize({ width: 390, height: 760 });
      await screenshot(alice, "chat-phone");

      // Nothing readable crossed the proxy, in the frames or in what they carried.
      const up = webSocketPayload(proxy.captured["to-server"], "client");
      const down = webSocketPayload(proxy.captured["to-client"], "server");
      assert.ok(containsBytes(up, utf8("SECCHAT")), "the recording holds bob's preamble");
      for (
        const secret of [
          "hello from alice",
          "hello from bob",
          "hello from carol",
          "psst bob",
          "garden",
        ]
      ) {
        for (
          const bytes of [up, down, ...proxy.captured["to-server"], ...proxy.captured["to-client"]]
        ) {
          assert.equal(containsBytes(bytes, utf8(secret)), false, `"${secret}" crossed the wire`);
        }
      }
      assert.deepEqual(browser.problems, []);
    } finally {
      await carol?.stop();
      await browser.close();
      await web.proc.stop();
      await proxy.close();
      await relay.close();
      dirs.cleanup();
    }
  },
);

browserTest(
  "web: wrong passphrase, not a relay, a lost connection and a changed relay key, each said on the page",
  async () => {
    const dirs = new TempDirs();
    const relayIdentity = generateIdentity();
    let relay = await Relay.listen({ identity: relayIdentity, port: 0 });
    const port = relay.address.port;
    const web = await startWebServer(dirs.make("web"));
    const browser = await launchBrowser();
    try {
      const page = await browser.newPage();
      await page.goto(web.url);
      await createIdentity(page);

      // A web server is not a relay.
      await page.getByTestId("relay").fill(`127.0.0.1:${web.port}`);
      await page.getByTestId("nick").fill("dora");
      await page.getByTestId("join").click();
      await page.getByTestId("error").getByText(/did not open/).waitFor({ timeout: 20_000 });

      // A wrong passphrase, then the right one.
      await page.reload();
      await page.getByTestId("passphrase").fill("not the passphrase");
      await page.getByTestId("unlock").click();
      await page.getByTestId("error").getByText(/wrong passphrase/).waitFor({ timeout: 60_000 });
      await page.getByTestId("passphrase").fill(PASSPHRASE);
      await page.getByTestId("unlock").click();
      await joinFromPage(page, { relay: `127.0.0.1:${port}`, room: "r", nick: "dora" });

      // The relay goes away and comes back: the page says so and reconnects.
      await relay.close();
      await page.getByTestId("banner").getByText(/connection lost/).waitFor({ timeout: 15_000 });
      relay = await Relay.listen({ identity: relayIdentity, port });
      await page.getByTestId("status").getByText("connected").waitFor({ timeout: 20_000 });
      await page.locator("[data-kind=notice]", { hasText: "reconnected" }).waitFor();

      // A relay with another key at the same address is refused, on reconnect and on join.
      await relay.close();
      relay = await Relay.listen({ identity: generateIdentity(), port });
      await page.getByTestId("banner").getByText(/presented the key/).waitFor({ timeout: 20_000 });
      await page.getByRole("button", { name: "Leave" }).click();
      await page.getByTestId("join").click();
      const refusal = page.getByTestId("relay-key-changed");
      await refusal.waitFor({ timeout: 20_000 });
      assert.match((await refusal.textContent())!, new RegExp(relay.fingerprint));
      assert.match((await refusal.textContent())!, new RegExp(relayIdentity.fingerprint));
      assert.deepEqual(relay.roomSizes().size, 0, "nothing was sent to the impostor");
      await screenshot(page, "relay-key-changed");
      // Once the user forgets the old key, the new one is remembered on first contact.
      await page.getByTestId("forget-relay").click();
      await page.getByTestId("join").click();
      await page.getByTestId("chat").waitFor({ timeout: 20_000 });
      assert.equal(relay.roomSizes().get("r"), 1);
    } finally {
      await browser.close();
      await web.proc.stop();
      await relay.close();
      dirs.cleanup();
    }
  },
);

browserTest(
  "web: an identity exported from the page works in the CLI, and a CLI identity in the page",
  async () => {
    const dirs = new TempDirs();
    const relay = await Relay.listen({ identity: generateIdentity(), port: 0 });
    const relayAddress = `127.0.0.1:${relay.address.port}`;
    const web = await startWebServer(dirs.make("web"));
    const browser = await launchBrowser();
    try {
      const page = await browser.newPage();
      await page.goto(web.url);
      const pageFingerprint = await createIdentity(page);
      const download = page.waitForEvent("download");
      await page.getByTestId("export").click();
      const exported = join(dirs.make("exported"), "identity");
      await (await download).saveAs(exported);
      assert.match(await readFile(exported, "utf8"), /"kdf": "scrypt",\s+"logN": 17/);
      await chmod(exported, 0o600);
      const joined = await runCli(
        [
          "join",
          relayAddress,
          "--identity",
          exported,
          "--room",
          "r",
          "--nick",
          "exported",
          "--json",
        ],
        { home: dirs.make("cli"), env: { SECURECHAT_PASSPHRASE: PASSPHRASE }, input: "" },
      );
      assert.equal(joined.code, 0, joined.stderr);
      assert.match(
        joined.stdout,
        new RegExp(`"type":"welcome".*"fingerprint":"${pageFingerprint}"`),
      );

      // And back: a key made by `securechat keygen`, imported into a page of another origin.
      const keyDir = dirs.make("keygen");
      const keyPath = join(keyDir, "identity");
      const keygen = await runCli(["keygen", "--out", keyPath], {
        home: keyDir,
        env: { SECURECHAT_PASSPHRASE: "the terminal's passphrase" },
      });
      assert.equal(keygen.code, 0, keygen.stderr);
      const cliFingerprint = (await runCli(["fingerprint", keyPath], { home: keyDir })).stdout
        .trim()
        .split(/\s+/).find((word) => /^[a-z2-7]{4}(-[a-z2-7]{4}){7}$/.test(word))!;
      const other = await startWebServer(dirs.make("web2"));
      try {
        const second = await browser.newPage();
        await second.goto(other.url);
        await second.getByTestId("import-file").setInputFiles(keyPath);
        await second.getByTestId("import-passphrase").fill("the terminal's passphrase");
        await second.getByTestId("import").click();
        const imported = await second.getByTestId("own-fingerprint").textContent({
          timeout: 60_000,
        });
        assert.equal(imported, cliFingerprint);
        await joinFromPage(second, { relay: relayAddress, room: "r", nick: "imported" });
      } finally {
        await other.proc.stop();
      }
      assert.deepEqual(browser.problems, []);
    } finally {
      await browser.close();
      await web.proc.stop();
      await relay.close();
      dirs.cleanup();
    }
  },
);

browserTest("web: the page server refuses other hosts and non-loopback listening", async () => {
  const dirs = new TempDirs();
  const web = await startWebServer(dirs.make("web"));
  try {
    // A site that rebinds its name to 127.0.0.1 sends its own name as Host (fetch cannot forge it).
    const rebound = await rawGet(web.port, `attacker.example:${web.port}`);
    assert.match(rebound, /^HTTP\/1\.1 421 /);
    assert.match(await rawGet(web.port, `localhost:${web.port}`), /^HTTP\/1\.1 200 /);
    const page = await fetch(web.url);
    assert.equal(page.status, 200);
    assert.match(page.headers.get("content-security-policy")!, /frame-ancestors 'none'/);
    await page.body?.cancel();
    const script = await fetch(new URL("/app.js", web.url));
    assert.match(script.headers.get("content-type")!, /javascript/);
    await script.body?.cancel();
    const refused = await runCli(["web", "--listen", "0.0.0.0:0"], { home: dirs.make("b") });
    assert.equal(refused.code, 2, refused.stderr);
    assert.match(refused.stderr, /not a loopback address.*--allow-remote/);
  } finally {
    await web.proc.stop();
    dirs.cleanup();
  }
});
