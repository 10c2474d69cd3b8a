/**
 * `securechat serve` keeps rooms durable, tested with real processes: a
 * line sent while its reader is away reaches it later, even across a
 * `kill -9` of the relay; `--ephemeral` keeps nothing; a relay.db that is
 * not the relay's stops serve with one line and exit 3.
 */

import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CliProcess, runCli, startRelay, TempDirs } from "./support/cli_process.ts";

Deno.test("serve: a line sent while its reader is away survives kill -9 of the relay and reaches it", async () => {
  const dirs = new TempDirs();
  const relayHome = dirs.make("relay");
  let relay = await startRelay({ home: relayHome });
  const address = relay.address;
  const bobHome = dirs.make("bob");
  try {
    // Bob joins once (the relay keeps him on the roster, with his prekeys), then goes away.
    const enrol = await runCli(["join", address, "--room", "ops", "--nick", "bob"], {
      home: bobHome,
      input: "",
    });
    assert.equal(enrol.code, 0, enrol.stderr);
    const sent = await runCli(["join", address, "--room", "ops", "--nick", "ci"], {
      home: dirs.make("ci"),
      input: "deploy done\n",
    });
    assert.equal(sent.code, 0, sent.stderr);
    assert.match(
      sent.stderr,
      /1 line\(s\) stored by the relay: reached 0 member\(s\) online, 1 will get them when they come back/,
    );
    // The ack came after the commit: nothing a clean shutdown would add is needed.
    await relay.proc.stop("SIGKILL");
    relay = await startRelay({ home: relayHome, listen: address });
    const read = await runCli(["join", address, "--room", "ops", "--nick", "bob", "--count", "1"], {
      home: bobHome,
      input: "",
    });
    assert.equal(read.code, 0, read.stderr);
    assert.equal(read.stdout, "ci: deploy done\n");
    assert.match(read.stderr, /read \d+ message\(s\) kept by the relay while away/);
    const mode = Deno.statSync(join(relayHome, "relay", "relay.db")).mode! & 0o777;
    assert.equal(mode, 0o600);
  } finally {
    await relay.proc.stop();
    dirs.cleanup();
  }
});

Deno.test("serve --ephemeral: a line with nobody there reaches no one, and nothing is written", async () => {
  const dirs = new TempDirs();
  const relayHome = dirs.make("relay");
  const relay = await startRelay({ home: relayHome, extraArgs: ["--ephemeral"] });
  try {
    const sent = await runCli(["join", relay.address, "--room", "ops", "--nick", "ci"], {
      home: dirs.make("ci"),
      input: "anyone?\n",
    });
    assert.equal(sent.code, 0, sent.stderr);
    assert.match(sent.stderr, /1 line\(s\) reached no one/);
    assert.throws(() => Deno.statSync(join(relayHome, "relay")), "no data directory");
    assert.match(relay.proc.stderr, /rooms are ephemeral/);
  } finally {
    await relay.proc.stop();
    dirs.cleanup();
  }
});

Deno.test("serve: a relay.db that is not the relay's stops it with one line and exit 3, untouched", async () => {
  const dirs = new TempDirs();
  const data = dirs.make("data");
  const file = join(data, "relay.db");
  writeFileSync(file, "this is not a database, it is someone's notes\n".repeat(100), {
    mode: 0o600,
  });
  const before = readFileSync(file);
  const serve = CliProcess.start(
    ["serve", "--listen", "127.0.0.1:0", "--data", data],
    { home: dirs.make("relay") },
  );
  try {
    const status = await serve.wait(20_000);
    assert.equal(status.code, 3, serve.describe());
    const lines = serve.stderr.trim().split("\n").filter((line) => /relay\.db/.test(line));
    assert.equal(lines.length, 1, serve.stderr);
    assert.match(lines[0], /^securechat: .*relay\.db.*not an SQLite database/);
    assert.doesNotMatch(serve.stderr, /\n\s+at /);
    assert.deepEqual(readFileSync(file), before, "the file is left as it was");
  } finally {
    if (serve.child.exitCode === null) await serve.stop();
    dirs.cleanup();
  }
});
