/**
 * `securechat history`: what a member received and sent, kept encrypted on
 * its machine, printed without connecting; `--json`, `--since`, another
 * identity refused, and `--no-history` keeping nothing. Real relay, real
 * `join` processes (SECURECHAT_BIN runs them against a build).
 */

import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { CliProcess, runCli, startRelay, TempDirs } from "./support/cli_process.ts";

Deno.test("history: what was said and received is printed back, in order, and only for its owner", async () => {
  const dirs = new TempDirs();
  const relay = await startRelay({ home: dirs.make("relay") });
  const aliceHome = dirs.make("alice");
  const bobHome = dirs.make("bob");
  const bob = CliProcess.start(
    ["join", relay.address, "--room", "ops", "--nick", "bob", "--stay"],
    { home: bobHome },
  );
  try {
    await bob.waitFor("stderr", /joined room/);
    const sent = await runCli(["join", relay.address, "--room", "ops", "--nick", "alice"], {
      home: aliceHome,
      input: "first line\nsecond line ✓\n",
    });
    assert.equal(sent.code, 0, sent.stderr);
    await bob.waitFor("stdout", /alice: second line ✓\n/);
    bob.write("a reply from bob\n");
    // Alice has gone: the relay keeps the reply for her, and she reads it when she comes back.
    const back = await runCli(
      ["join", relay.address, "--room", "ops", "--nick", "alice", "--count", "1"],
      { home: aliceHome, input: "" },
    );
    assert.equal(back.code, 0, back.stderr);
    assert.match(back.stdout, /^bob: a reply from bob\n$/);
    await bob.stop();

    const printed = await runCli(["history", relay.address, "--room", "ops"], { home: bobHome });
    assert.equal(printed.code, 0, printed.stderr);
    const lines = printed.stdout.trim().split("\n");
    assert.deepEqual(lines.map((line) => line.replace(/^\S+ \S+ /, "")), [
      "alice: first line",
      "alice: second line ✓",
      "bob: a reply from bob",
    ]);

    const json = await runCli(["history", relay.address, "--room", "ops", "--json"], {
      home: bobHome,
    });
    const rows = json.stdout.trim().split("\n").map((line) => JSON.parse(line));
    assert.deepEqual(rows.map((row) => [row.from, row.direction, row.text]), [
      ["alice", "in", "first line"],
      ["alice", "in", "second line ✓"],
      ["bob", "out", "a reply from bob"],
    ]);
    assert.ok(rows.every((row) => typeof row.fingerprint === "string" && row.time));

    const later = await runCli(["history", relay.address, "--room", "ops", "--since", "0s"], {
      home: bobHome,
    });
    assert.equal(later.stdout, "", "nothing was recorded in the future");
    const elsewhere = await runCli(["history", relay.address, "--room", "other"], {
      home: bobHome,
    });
    assert.equal(elsewhere.code, 0);
    assert.equal(elsewhere.stdout, "");

    // The history is encrypted at rest: no text in the file's bytes.
    const storeDir = join(bobHome, "store");
    for (const name of readdirSync(storeDir)) {
      const bytes = readFileSync(join(storeDir, name));
      assert.ok(!bytes.includes("second line"), `${name} holds plaintext`);
    }
  } finally {
    if (bob.child.exitCode === null) await bob.stop();
    await relay.proc.stop();
    dirs.cleanup();
  }
});

Deno.test("history: --no-history keeps nothing, and an unknown relay is a usage error", async () => {
  const dirs = new TempDirs();
  const relay = await startRelay({ home: dirs.make("relay") });
  const home = dirs.make("carol");
  try {
    const listener = CliProcess.start(
      ["join", relay.address, "--room", "r", "--nick", "dave", "--stay"],
      { home: dirs.make("dave") },
    );
    await listener.waitFor("stderr", /joined room/);
    const sent = await runCli(
      ["join", relay.address, "--room", "r", "--nick", "carol", "--no-history"],
      { home, input: "not kept\n" },
    );
    assert.equal(sent.code, 0, sent.stderr);
    await listener.stop();
    const printed = await runCli(["history", relay.address, "--room", "r"], { home });
    assert.equal(printed.code, 0, printed.stderr);
    assert.equal(printed.stdout, "");
    const unknown = await runCli(["history", "127.0.0.1:9", "--room", "r"], { home });
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /^securechat: 127\.0\.0\.1:9 is not in .*known_servers/);
  } finally {
    await relay.proc.stop();
    dirs.cleanup();
  }
});
