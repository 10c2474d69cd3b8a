/**
 * End-to-end tests through the real CLI: a relay and several `join`
 * processes, as users and scripts run them. Set SECURECHAT_BIN to run the
 * same tests against a built executable.
 */

import assert from "node:assert/strict";
import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CliProcess, runCli, startRelay, TempDirs } from "./support/cli_process.ts";

const JOINED = /joined room "([^"]+)" as (\S+)/;

/** Starts a receiver that exits after `count` messages; resolves once it has joined. */
async function startReceiver(
  address: string,
  options: { home: string; nick: string; room?: string; count: number; json?: boolean },
): Promise<CliProcess> {
  const args = [
    "join",
    address,
    "--room",
    options.room ?? "e2e",
    "--nick",
    options.nick,
    "--count",
    String(options.count),
  ];
  if (options.json) args.push("--json");
  const proc = CliProcess.start(args, { home: options.home });
  await proc.waitFor(
    options.json ? "stdout" : "stderr",
    options.json ? /"type":"welcome"/ : JOINED,
  );
  return proc;
}

Deno.test("three members: lines arrive whole and in order at every member, line mode", async () => {
  const dirs = new TempDirs();
  const relay = await startRelay({ home: dirs.make("relay") });
  try {
    const bob = await startReceiver(relay.address, { home: dirs.make(), nick: "bob", count: 3 });
    const carol = await startReceiver(relay.address, {
      home: dirs.make(),
      nick: "carol",
      count: 3,
    });
    const lines = ["first line", "second: with colon", "third ünïcödé ✓"];
    const alice = await runCli(["join", relay.address, "--room", "e2e", "--nick", "alice"], {
      home: dirs.make(),
      input: lines.map((line) => `${line}\n`).join(""),
    });
    assert.equal(alice.code, 0, alice.stderr);
    for (const receiver of [bob, carol]) {
      const status = await receiver.wait();
      assert.equal(status.code, 0, receiver.describe());
      assert.deepEqual(receiver.stdoutLines(), lines.map((line) => `alice: ${line}`));
    }
    // Members are shown with their fingerprints.
    assert.match(bob.stderr, /carol joined \([a-z2-7]{4}(-[a-z2-7]{4}){7}\)/);
  } finally {
    await relay.proc.stop();
    dirs.cleanup();
  }
});

Deno.test("JSON mode: one object per message with type, room, from, fingerprint, text, time", async () => {
  const dirs = new TempDirs();
  const relay = await startRelay({ home: dirs.make("relay") });
  try {
    const bob = await startReceiver(relay.address, {
      home: dirs.make(),
      nick: "bob",
      count: 2,
      json: true,
    });
    const aliceHome = dirs.make();
    const keygen = await runCli(["keygen", "--no-passphrase"], { home: aliceHome });
    assert.equal(keygen.code, 0, keygen.stderr);
    const aliceFingerprint = keygen.stdout.trim();
    const alice = await runCli([
      "join",
      relay.address,
      "--room",
      "e2e",
      "--nick",
      "alice",
      "--json",
    ], {
      home: aliceHome,
      input: 'plain\n{"not": "json"} \\ "quotes"\n',
    });
    assert.equal(alice.code, 0, alice.stderr);
    assert.equal((await bob.wait()).code, 0, bob.describe());
    const messages = bob.stdoutLines().map((line) => JSON.parse(line)).filter((o) =>
      o.type === "message"
    );
    assert.equal(messages.length, 2);
    assert.deepEqual(messages.map((m) => m.text), ["plain", '{"not": "json"} \\ "quotes"']);
    for (const message of messages) {
      assert.equal(message.room, "e2e");
      assert.equal(message.from, "alice");
      assert.equal(message.fingerprint, aliceFingerprint);
      assert.ok(!Number.isNaN(Date.parse(message.time)), message.time);
    }
    // Notices are typed JSON objects too, never bare text on stdout.
    const types = new Set(bob.stdoutLines().map((line) => JSON.parse(line).type));
    assert.ok(types.has("welcome") && types.has("new-member"), [...types].join(","));
  } finally {
    await relay.proc.stop();
    dirs.cleanup();
  }
});

Deno.test("a 64 KiB message arrives whole; a longer line is refused with exit code 7", async () => {
  const dirs = new TempDirs();
  const relay = await startRelay({ home: dirs.make("relay") });
  try {
    const bob = await startReceiver(relay.address, { home: dirs.make(), nick: "bob", count: 2 });
    const big = "x".repeat(65536);
    const tooBig = "y".repeat(65537);
    const alice = await runCli(["join", relay.address, "--room", "e2e", "--nick", "alice"], {
      home: dirs.make(),
      input: `${big}\n${tooBig}\nafter\n`,
    });
    assert.equal(alice.code, 7, alice.stderr);
    assert.match(alice.stderr, /line 2 not sent: 65537 bytes is over the 65536-byte message limit/);
    assert.equal((await bob.wait()).code, 0, bob.describe());
    assert.deepEqual(bob.stdoutLines(), [`alice: ${big}`, "alice: after"]);
  } finally {
    await relay.proc.stop();
    dirs.cleanup();
  }
});

Deno.test("fingerprint HOST:PORT prints the relay's fingerprint, as serve does", async () => {
  const dirs = new TempDirs();
  const relay = await startRelay({ home: dirs.make("relay") });
  try {
    const result = await runCli(["fingerprint", relay.address], { home: dirs.make() });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, `${relay.fingerprint}\n`);
  } finally {
    await relay.proc.stop();
    dirs.cleanup();
  }
});

Deno.test("a different relay key at a known address: join refuses before sending anything (exit 4)", async () => {
  const dirs = new TempDirs();
  const home = dirs.make();
  const first = await startRelay({ home: dirs.make("relay1") });
  const address = first.address;
  const firstRun = await runCli(["join", address, "--nick", "alice"], { home, input: "" });
  assert.equal(firstRun.code, 0, firstRun.stderr);
  assert.match(firstRun.stderr, /remembered its fingerprint/);
  await first.proc.stop();

  const impostor = await startRelay({ home: dirs.make("relay2"), listen: address });
  try {
    assert.notEqual(impostor.fingerprint, first.fingerprint);
    const result = await runCli(["join", address, "--nick", "alice"], {
      home,
      input: "secret plan\n",
    });
    assert.equal(result.code, 4, result.stderr);
    assert.ok(result.stderr.includes(first.fingerprint), result.stderr);
    assert.ok(result.stderr.includes(impostor.fingerprint), result.stderr);
    assert.equal(result.stderr.trim().split("\n").length, 1, result.stderr);
    // The impostor never saw the client finish the handshake, let alone join.
    await impostor.proc.waitFor("stderr", /handshake failed/);
    assert.doesNotMatch(impostor.proc.stderr, /connected|join room/);

    const pinned = await runCli(
      ["join", address, "--nick", "alice", "--server-fingerprint", first.fingerprint],
      { home: dirs.make(), input: "" },
    );
    assert.equal(pinned.code, 4, pinned.stderr);
  } finally {
    await impostor.proc.stop();
    dirs.cleanup();
  }
});

Deno.test("--allow admits only listed clients; --trust keeps keys from unlisted members", async () => {
  const dirs = new TempDirs();
  const aliceHome = dirs.make();
  const bobHome = dirs.make();
  const malloryHome = dirs.make();
  const fingerprints: Record<string, string> = {};
  for (const [name, home] of [["alice", aliceHome], ["bob", bobHome], ["mallory", malloryHome]]) {
    const keygen = await runCli(["keygen", "--no-passphrase"], { home });
    fingerprints[name] = keygen.stdout.trim();
  }
  const allowFile = join(dirs.make(), "allow");
  writeFileSync(allowFile, `${fingerprints.alice} alice\n${fingerprints.bob} bob\n`);
  const relay = await startRelay({ home: dirs.make("relay"), extraArgs: ["--allow", allowFile] });
  try {
    const refused = await runCli(["join", relay.address, "--nick", "mallory"], {
      home: malloryHome,
      input: "",
    });
    assert.equal(refused.code, 4, refused.stderr);
    assert.match(refused.stderr, /allow list/);
  } finally {
    await relay.proc.stop();
  }
  // --trust: bob trusts only alice, so carol's messages are ignored, and carol gets no key.
  const open = await startRelay({ home: dirs.make("relay") });
  try {
    const trustFile = join(dirs.make(), "trust");
    writeFileSync(trustFile, `# only alice\n${fingerprints.alice}\n`);
    const bob = CliProcess.start(
      ["join", open.address, "--room", "t", "--nick", "bob", "--trust", trustFile, "--count", "1"],
      { home: bobHome },
    );
    await bob.waitFor("stderr", JOINED);
    const carol = await runCli(["join", open.address, "--room", "t", "--nick", "carol"], {
      home: malloryHome,
      input: "from carol\n",
    });
    assert.equal(carol.code, 0, carol.stderr);
    const alice = await runCli(["join", open.address, "--room", "t", "--nick", "alice"], {
      home: aliceHome,
      input: "from alice\n",
    });
    assert.equal(alice.code, 0, alice.stderr);
    assert.equal((await bob.wait()).code, 0, bob.describe());
    assert.deepEqual(bob.stdoutLines(), ["alice: from alice"]);
    assert.match(bob.stderr, /carol \([a-z2-7-]+\) is not trusted/);
  } finally {
    await open.proc.stop();
    dirs.cleanup();
  }
});

Deno.test("exit codes: bad address 2, closed port 5, port in use 5, wrong passphrase or open key file 3", async () => {
  const dirs = new TempDirs();
  const relay = await startRelay({ home: dirs.make("relay") });
  try {
    const badAddress = await runCli(["join", "no-port-here"], { home: dirs.make() });
    assert.equal(badAddress.code, 2, badAddress.stderr);

    const inUse = CliProcess.start(["serve", "--listen", relay.address], { home: dirs.make() });
    const inUseStatus = await inUse.wait();
    assert.equal(inUseStatus.code, 5, inUse.describe());
    assert.match(inUse.stderr, /address already in use/);
    assert.doesNotMatch(inUse.stderr, /\n\s+at /, "no stack trace");

    const home = dirs.make();
    const keygen = await runCli(["keygen"], {
      home,
      env: { SECURECHAT_PASSPHRASE: "right horse" },
    });
    assert.equal(keygen.code, 0, keygen.stderr);
    const wrong = await runCli(["join", relay.address, "--nick", "alice"], {
      home,
      input: "",
      env: { SECURECHAT_PASSPHRASE: "wrong horse" },
    });
    assert.equal(wrong.code, 3, wrong.stderr);
    assert.match(wrong.stderr, /wrong passphrase/);
    assert.equal(wrong.stderr.trim().split("\n").length, 1, wrong.stderr);

    chmodSync(join(home, "identity"), 0o644);
    const tooOpen = await runCli(["join", relay.address, "--nick", "alice"], {
      home,
      input: "",
      env: { SECURECHAT_PASSPHRASE: "right horse" },
    });
    assert.equal(tooOpen.code, 3, tooOpen.stderr);
    assert.match(tooOpen.stderr, /permissions 0644 .* are too open; run chmod 600/);
  } finally {
    await relay.proc.stop();
  }
  const closedPort = await runCli(["join", relay.address, "--nick", "alice"], {
    home: dirs.make(),
    input: "",
  });
  assert.equal(closedPort.code, 5, closedPort.stderr);
  assert.match(closedPort.stderr, /connection refused/);
  dirs.cleanup();
});

Deno.test("serve exits cleanly on SIGTERM and SIGINT", async () => {
  const dirs = new TempDirs();
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    const relay = await startRelay({ home: dirs.make("relay") });
    const status = await relay.proc.stop(signal);
    assert.equal(status.code, 0, relay.proc.describe());
  }
  dirs.cleanup();
});
