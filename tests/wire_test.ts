/**
 * What crosses the wire, watched and attacked through a TCP proxy between
 * the real CLI clients and the real relay.
 */

import assert from "node:assert/strict";
import { concat } from "../lib/core/bytes.ts";
import { CliProcess, runCli, startRelay, TempDirs } from "./support/cli_process.ts";
import { containsBytes, startProxy } from "./support/in_process.ts";

const encoder = new TextEncoder();

function upstreamOf(address: string): { host: string; port: number } {
  const [, host, port] = /^(.*):(\d+)$/.exec(address)!;
  return { host, port: Number(port) };
}

Deno.test("no message plaintext, nick or room name crosses the wire, and the relay never logs content", async () => {
  const dirs = new TempDirs();
  const relay = await startRelay({ home: dirs.make("relay") });
  const proxy = await startProxy({ target: upstreamOf(relay.address) });
  const proxyAddress = `127.0.0.1:${proxy.port}`;
  try {
    const secrets = ["attack at dawn", "the password is hunter2", "ünïcödé sécret ✓"];
    const bob = CliProcess.start(
      ["join", proxyAddress, "--room", "war-room", "--nick", "bobthebuilder", "--count", "3"],
      { home: dirs.make() },
    );
    await bob.waitFor("stderr", /joined room/);
    const alice = await runCli([
      "join",
      proxyAddress,
      "--room",
      "war-room",
      "--nick",
      "alicewonder",
    ], {
      home: dirs.make(),
      input: secrets.map((line) => `${line}\n`).join(""),
    });
    assert.equal(alice.code, 0, alice.stderr);
    assert.equal((await bob.wait()).code, 0, bob.describe());
    assert.deepEqual(bob.stdoutLines(), secrets.map((line) => `alicewonder: ${line}`));

    const wire = [concat(...proxy.captured["to-server"]), concat(...proxy.captured["to-client"])];
    assert.ok(wire[0].length > 500 && wire[1].length > 500, "the proxy saw the traffic");
    for (const secret of [...secrets, "hunter2", "alicewonder", "bobthebuilder", "war-room"]) {
      for (const bytes of wire) {
        assert.ok(
          !containsBytes(bytes, encoder.encode(secret)),
          `"${secret}" crossed the wire in clear`,
        );
      }
      if (secrets.includes(secret)) {
        assert.ok(!relay.proc.stderr.includes(secret), `relay logged "${secret}"`);
      }
    }
  } finally {
    await proxy.close();
    await relay.proc.stop();
    dirs.cleanup();
  }
});

Deno.test("a bit flipped on the wire kills that connection: nothing corrupted is shown, others carry on", async () => {
  const dirs = new TempDirs();
  const relay = await startRelay({ home: dirs.make("relay") });
  let armed = false;
  const proxy = await startProxy({
    target: upstreamOf(relay.address),
    transform: (chunk, direction) => {
      if (armed && direction === "to-client" && chunk.length > 0) {
        chunk[chunk.length - 1] ^= 0x01;
        armed = false;
      }
      return chunk;
    },
  });
  const proxyAddress = `127.0.0.1:${proxy.port}`;
  try {
    const victim = CliProcess.start(
      ["join", proxyAddress, "--room", "r", "--nick", "victim", "--count", "1"],
      { home: dirs.make() },
    );
    await victim.waitFor("stderr", /joined room/);
    const carol = CliProcess.start(
      ["join", relay.address, "--room", "r", "--nick", "carol", "--count", "1"],
      { home: dirs.make() },
    );
    await carol.waitFor("stderr", /joined room/);
    await victim.waitFor("stderr", /carol joined/);
    armed = true;
    const alice = await runCli(["join", relay.address, "--room", "r", "--nick", "alice"], {
      home: dirs.make(),
      input: "hello\n",
    });
    assert.equal(alice.code, 0, alice.stderr);
    const victimStatus = await victim.wait();
    assert.equal(victimStatus.code, 6, victim.describe());
    assert.match(victim.stderr, /failed authentication/);
    assert.equal(victim.stdout, "", "nothing from the damaged stream is shown");
    assert.equal((await carol.wait()).code, 0, carol.describe());
    assert.deepEqual(carol.stdoutLines(), ["alice: hello"]);
  } finally {
    await proxy.close();
    await relay.proc.stop();
    dirs.cleanup();
  }
});

Deno.test("garbage and stalled handshakes are dropped while the relay keeps serving", async () => {
  const dirs = new TempDirs();
  const relay = await startRelay({
    home: dirs.make("relay"),
    extraArgs: ["--handshake-timeout", "1"],
  });
  const { createConnection } = await import("node:net");
  const upstream = upstreamOf(relay.address);
  const garbage = createConnection(
    upstream,
    () => garbage.write(encoder.encode("GET / HTTP/1.0\r\n\r\n")),
  );
  garbage.on("error", () => {});
  // Not HTTP either: the first bytes of a TLS ClientHello.
  const tls = createConnection(
    upstream,
    () => tls.write(new Uint8Array([22, 3, 1, 2, 0, 1, 0, 1])),
  );
  tls.on("error", () => {});
  const silent = createConnection(upstream);
  silent.on("error", () => {});
  try {
    await relay.proc.waitFor("stderr", /handshake failed .*WebSocket upgrade refused \(400\)/);
    await relay.proc.waitFor("stderr", /handshake failed .*not speaking the securechat protocol/);
    await relay.proc.waitFor("stderr", /handshake failed .*timed out/, 5_000);
    const bob = CliProcess.start(["join", relay.address, "--nick", "bob", "--count", "1"], {
      home: dirs.make(),
    });
    await bob.waitFor("stderr", /joined room/);
    const alice = await runCli(["join", relay.address, "--nick", "alice"], {
      home: dirs.make(),
      input: "still up\n",
    });
    assert.equal(alice.code, 0, alice.stderr);
    assert.equal((await bob.wait()).code, 0, bob.describe());
    assert.deepEqual(bob.stdoutLines(), ["alice: still up"]);
  } finally {
    garbage.destroy();
    tls.destroy();
    silent.destroy();
    await relay.proc.stop();
    dirs.cleanup();
  }
});
