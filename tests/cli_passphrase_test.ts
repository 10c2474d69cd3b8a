/**
 * Passphrases through the real CLI: a modified key file is reported as such
 * (not as a wrong passphrase), the passphrase comes from the controlling
 * terminal when stdin is a pipe (tmux gives a real one), from
 * --passphrase-file or SECURECHAT_PASSPHRASE without one, `passwd` changes it
 * keeping the key, and unlocking shows progress on a terminal. Set
 * SECURECHAT_BIN to run these against a built program.
 */

import assert from "node:assert/strict";
import { chmodSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fromBase64, toBase64 } from "../lib/core/bytes.ts";
import { generateIdentity } from "../lib/identity/identity.ts";
import { securechatCommand } from "./support/cli_command.ts";
import { CliProcess, runCli, startRelay, TempDirs } from "./support/cli_process.ts";
import { shellQuote, tmuxAvailable, TmuxServer } from "./support/tmux.ts";

const PASSPHRASE = "correct horse battery staple";

Deno.test("an edited key file is reported as modified or corrupt, a wrong passphrase as wrong (exit 3)", async () => {
  const dirs = new TempDirs();
  try {
    const home = dirs.make();
    const env = { SECURECHAT_PASSPHRASE: PASSPHRASE };
    const sealed = join(home, "sealed");
    const plain = join(home, "plain");
    assert.equal((await runCli(["keygen", "--out", sealed], { home, env })).code, 0);
    assert.equal((await runCli(["keygen", "--no-passphrase", "--out", plain], { home })).code, 0);
    const original = { sealed: readFileSync(sealed, "utf8"), plain: readFileSync(plain, "utf8") };
    const flip = (b64: string) => {
      const bytes = fromBase64(b64);
      bytes[5] ^= 0x10;
      return toBase64(bytes);
    };
    const edits: Array<[string, "sealed" | "plain", (file: Record<string, string>) => void]> = [
      ["public key swapped", "sealed", (f) => f.publicKey = toBase64(generateIdentity().publicKey)],
      ["sealed key edited", "sealed", (f) => f.secretKey = flip(f.secretKey)],
      ["public key swapped", "plain", (f) => f.publicKey = toBase64(generateIdentity().publicKey)],
      ["secret key edited", "plain", (f) => f.secretKey = flip(f.secretKey)],
    ];
    for (const [what, which, edit] of edits) {
      const file = JSON.parse(original[which]);
      edit(file);
      const path = which === "sealed" ? sealed : plain;
      writeFileSync(path, JSON.stringify(file, null, 2), { mode: 0o600 });
      const result = await runCli(["join", "127.0.0.1:1", "--identity", path, "--nick", "x"], {
        home,
        env,
      });
      assert.equal(result.code, 3, `${which}, ${what}: ${result.stderr}`);
      assert.match(result.stderr, /was modified or is corrupt/, `${which}, ${what}`);
      assert.doesNotMatch(result.stderr, /wrong passphrase/, `${which}, ${what}`);
    }
    writeFileSync(sealed, original.sealed, { mode: 0o600 });
    const wrong = await runCli(["join", "127.0.0.1:1", "--identity", sealed, "--nick", "x"], {
      home,
      env: { SECURECHAT_PASSPHRASE: "not it" },
    });
    assert.equal(wrong.code, 3);
    assert.match(wrong.stderr, /^securechat: wrong passphrase for identity file /m);
  } finally {
    dirs.cleanup();
  }
});

// ---------------------------------------------------------------- terminals

const HAVE_TMUX = tmuxAvailable();

/** A shell command line that runs securechat with ARGS. */
function securechatLine(args: string[]): string {
  const { command, args: lead } = securechatCommand();
  return [command, ...lead, ...args].map(shellQuote).join(" ");
}

Deno.test({
  name:
    "a pipe into join asks for the passphrase on the controlling terminal, with a spinner while unlocking",
  ignore: !HAVE_TMUX,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const dirs = new TempDirs();
    const relay = await startRelay({ home: dirs.make("relay") });
    const server = new TmuxServer(dirs.make("tmux"));
    const bob = CliProcess.start([
      "join",
      relay.address,
      "--room",
      "r",
      "--nick",
      "bob",
      "--count",
      "1",
    ], {
      home: dirs.make(),
    });
    try {
      await bob.waitFor("stderr", /joined room/);
      const home = dirs.make();
      const keygen = await runCli(["keygen"], { home, env: { SECURECHAT_PASSPHRASE: PASSPHRASE } });
      assert.equal(keygen.code, 0, keygen.stderr);
      const terminal = await server.terminal("alice", { columns: 120, rows: 20 });
      await terminal.record();
      // The README's first pipe example, after its own encrypted keygen.
      await terminal.run(
        `unset SECURECHAT_PASSPHRASE; export SECURECHAT_HOME=${shellQuote(home)}; ` +
          `echo "hello bob" | ${
            securechatLine(["join", relay.address, "--room", "r", "--nick", "alice"])
          }; ` +
          `echo "exit status $?"`,
      );
      await terminal.waitFor(/Passphrase for .*identity:$/m, "the prompt");
      await terminal.type("not the passphrase");
      await terminal.keys("Enter");
      await terminal.waitFor(/Wrong passphrase, try again\./, "the retry");
      await terminal.waitFor(/Passphrase for .*identity:$/m, "the second prompt");
      await terminal.type(PASSPHRASE);
      await terminal.keys("Enter");
      const screen = await terminal.waitFor(/^exit status \d+$/m, "join to finish", 20_000);
      assert.ok(screen.includes("exit status 0"), screen.join("\n"));
      assert.ok(!screen.join("\n").includes(PASSPHRASE), "the passphrase was echoed");
      assert.ok(!screen.join("\n").includes("not the passphrase"), "the wrong one was echoed");
      assert.equal((await bob.wait()).code, 0);
      assert.equal(bob.stdout, "alice: hello bob\n");
      // A spinner ran while scrypt worked, on the same terminal, and was erased.
      const raw = await terminal.waitForRecording((text) => text.includes("Unlocking"), "progress");
      assert.match(raw, /Unlocking \S+identity [⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]/);
      assert.ok(raw.slice(raw.lastIndexOf("Unlocking")).includes("\r\x1b[2K"), "not erased");
      assert.ok(!screen.some((line) => line.includes("Unlocking")), "the spinner line stayed");
    } finally {
      await server.kill();
      if (bob.child.exitCode === null) await bob.stop();
      await relay.proc.stop();
      dirs.cleanup();
    }
  },
});

Deno.test("without any terminal a passphrase comes from SECURECHAT_PASSPHRASE or --passphrase-file, else exit 2", async () => {
  const dirs = new TempDirs();
  try {
    const home = dirs.make();
    const keygen = await runCli(["keygen"], { home, env: { SECURECHAT_PASSPHRASE: PASSPHRASE } });
    assert.equal(keygen.code, 0);
    // No terminal at all (the test's children have no controlling terminal).
    const none = await runCli(["join", "127.0.0.1:1", "--nick", "x"], { home, input: "hi\n" });
    assert.equal(none.code, 2, none.stderr);
    assert.match(
      none.stderr,
      /^securechat: a passphrase is needed but there is no terminal to ask on; set SECURECHAT_PASSPHRASE, or use --passphrase-file$/m,
    );
    const file = join(dirs.make("secret"), "passphrase");
    writeFileSync(file, `${PASSPHRASE}\n`, { mode: 0o600 });
    // Unlocked from the file: the next failure is the closed port (5), not the key.
    const fromFile = await runCli(
      ["join", "127.0.0.1:1", "--nick", "x", "--passphrase-file", file],
      { home, input: "hi\n" },
    );
    assert.equal(fromFile.code, 5, fromFile.stderr);
    chmodSync(file, 0o644);
    const open = await runCli(["join", "127.0.0.1:1", "--nick", "x", "--passphrase-file", file], {
      home,
    });
    assert.equal(open.code, 3);
    assert.match(
      open.stderr,
      /permissions 0644 for passphrase file .* are too open; run chmod 600/,
    );
    const missing = await runCli(
      ["join", "127.0.0.1:1", "--nick", "x", "--passphrase-file", `${file}.nope`],
      { home },
    );
    assert.equal(missing.code, 3);
    assert.match(missing.stderr, /cannot read passphrase file .*nope: no such file/);
  } finally {
    dirs.cleanup();
  }
});

Deno.test({
  name: "passwd changes the passphrase at the terminal and keeps the key",
  ignore: !HAVE_TMUX,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const dirs = new TempDirs();
    const server = new TmuxServer(dirs.make("tmux"));
    try {
      const home = dirs.make();
      const keygen = await runCli(["keygen"], { home, env: { SECURECHAT_PASSPHRASE: PASSPHRASE } });
      const fingerprint = keygen.stdout.trim();
      const terminal = await server.terminal("t", { columns: 120, rows: 20 });
      await terminal.run(
        `unset SECURECHAT_PASSPHRASE; export SECURECHAT_HOME=${shellQuote(home)}; ` +
          `${securechatLine(["passwd"])}; echo "exit status $?"`,
      );
      await terminal.waitFor(/^Passphrase for .*identity:$/m, "the current passphrase");
      await terminal.type(PASSPHRASE);
      await terminal.keys("Enter");
      await terminal.waitFor(/^New passphrase for .*identity:$/m, "the new passphrase");
      await terminal.type("a brand new passphrase");
      await terminal.keys("Enter");
      await terminal.waitFor(/^Repeat passphrase:$/m, "the repeat");
      await terminal.type("a brand new passphrase");
      await terminal.keys("Enter");
      const screen = await terminal.waitFor(/^exit status \d+$/m, "passwd to finish", 20_000);
      assert.ok(screen.includes("exit status 0"), screen.join("\n"));
      assert.match(screen.join(""), new RegExp(`Changed the passphrase of .*${fingerprint}`));
      const path = join(home, "identity");
      assert.equal(statSync(path).mode & 0o777, 0o600);
      const old = await runCli(["passwd", "--no-passphrase"], {
        home,
        env: { SECURECHAT_PASSPHRASE: PASSPHRASE },
      });
      assert.equal(old.code, 3, "the old passphrase still opens it");
      assert.match(old.stderr, /wrong passphrase/);
      // The new one works, and removing it keeps the key too.
      const removed = await runCli(["passwd", "--no-passphrase"], {
        home,
        env: { SECURECHAT_PASSPHRASE: "a brand new passphrase" },
      });
      assert.equal(removed.code, 0, removed.stderr);
      assert.match(removed.stderr, /Removed the passphrase/);
      const now = await runCli(["fingerprint"], { home });
      assert.equal(now.stdout.trim(), fingerprint);
      assert.equal(JSON.parse(readFileSync(path, "utf8")).encryption, null);
    } finally {
      await server.kill();
      dirs.cleanup();
    }
  },
});

Deno.test("passwd adds a passphrase to a key made without one, and the hint points at passwd", async () => {
  const dirs = new TempDirs();
  const relay = await startRelay({ home: dirs.make("relay") });
  try {
    const home = dirs.make();
    // First use creates an unencrypted identity and says how to protect it.
    const first = await runCli(["join", relay.address, "--nick", "x"], { home, input: "" });
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stderr, /not encrypted; run `securechat passwd` to add a passphrase/);
    assert.doesNotMatch(first.stderr, /keygen --force/);
    const before = (await runCli(["fingerprint"], { home })).stdout.trim();
    const added = await runCli(["passwd"], {
      home,
      env: { SECURECHAT_NEW_PASSPHRASE: PASSPHRASE },
    });
    assert.equal(added.code, 0, added.stderr);
    assert.match(added.stderr, /Added a passphrase to/);
    assert.equal((await runCli(["fingerprint"], { home })).stdout.trim(), before);
    const file = JSON.parse(readFileSync(join(home, "identity"), "utf8"));
    assert.notEqual(file.encryption, null);
    // It now needs the passphrase; with it, join works as the same member.
    const locked = await runCli(["join", relay.address, "--nick", "x"], { home, input: "" });
    assert.equal(locked.code, 2, locked.stderr);
    const unlocked = await runCli(["join", relay.address, "--nick", "x"], {
      home,
      input: "",
      env: { SECURECHAT_PASSPHRASE: PASSPHRASE },
    });
    assert.equal(unlocked.code, 0, unlocked.stderr);
    assert.ok(unlocked.stderr.includes(`as x (${before})`), unlocked.stderr);
    // No identity, or a .pub file: one line, exit 3.
    const none = await runCli(["passwd", join(home, "nothing")], { home });
    assert.equal(none.code, 3);
    assert.match(none.stderr, /no identity at .*nothing; run `securechat keygen`/);
    const pub = await runCli(["passwd", join(home, "identity.pub")], { home });
    assert.equal(pub.code, 3);
    assert.match(pub.stderr, /is a public key file/);
  } finally {
    await relay.proc.stop();
    dirs.cleanup();
  }
});
