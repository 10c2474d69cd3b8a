/**
 * `join --stay` across real relay restarts (a real `serve` process stopped
 * and started again on the same port, with the same identity): a permanent
 * refusal ends it with its exit code after one attempt; a transient one
 * backs off with jitter and never fills the relay's per-address cap. Set
 * SECURECHAT_BIN to run these against a built program.
 */

import assert from "node:assert/strict";
import { connect, createServer, type Socket } from "node:net";
import { ChatClient } from "../lib/client/client.ts";
import { generateIdentity } from "../lib/identity/identity.ts";
import { CliProcess, runCli, startRelay, TempDirs } from "./support/cli_process.ts";

/** A member that holds a room in the test process, pinned to the relay's fingerprint. */
function squat(address: string, fingerprint: string, nick: string) {
  const [host, port] = [address.replace(/:\d+$/, ""), Number(address.split(":").pop())];
  return ChatClient.connect({
    host,
    port,
    identity: generateIdentity(),
    room: "stay",
    nick,
    verifyRelay: (relay) => {
      if (relay.fingerprint !== fingerprint) throw new Error("unexpected relay");
    },
    onEvent: () => {},
  });
}

function count(text: string, pattern: RegExp): number {
  return text.match(new RegExp(pattern.source, "g"))?.length ?? 0;
}

/**
 * A TCP gate in front of the relay: while shut it closes every new
 * connection at once (as a network that is still down would), so a test
 * decides who gets to the restarted relay first.
 */
async function gate(target: { host: string; port: number }) {
  let open = true;
  const sockets = new Set<Socket>();
  const server = createServer((inbound) => {
    if (!open) {
      inbound.destroy();
      return;
    }
    const outbound = connect(target);
    for (const [from, to] of [[inbound, outbound], [outbound, inbound]]) {
      sockets.add(from);
      from.pipe(to);
      from.on("error", () => to.destroy());
      from.on("close", () => {
        to.destroy();
        sockets.delete(from);
      });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    address: `127.0.0.1:${(server.address() as { port: number }).port}`,
    shut: () => open = false,
    open: () => open = true,
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

Deno.test("join --stay: a nick taken while the relay restarted ends it with exit 2, after one try", async () => {
  const dirs = new TempDirs();
  const relayHome = dirs.make("relay");
  // Ephemeral rooms: a restarted relay remembers no roster, so the nick is free to take.
  let relay = await startRelay({ home: relayHome, extraArgs: ["--ephemeral"] });
  const address = relay.address;
  const port = Number(address.split(":").pop());
  const front = await gate({ host: "127.0.0.1", port });
  const alice = CliProcess.start(
    ["join", front.address, "--room", "stay", "--nick", "alice", "--stay"],
    { home: dirs.make() },
  );
  let impostor: ChatClient | undefined;
  try {
    await alice.waitFor("stderr", /joined room "stay" as alice/);
    // A real restart; alice cannot get back in until someone else has taken her nick.
    front.shut();
    await relay.proc.stop();
    await alice.waitFor("stderr", /connection to the relay lost/);
    relay = await startRelay({ home: relayHome, listen: address, extraArgs: ["--ephemeral"] });
    impostor = await squat(address, relay.fingerprint, "alice");
    front.open();
    const status = await alice.wait(30_000);
    assert.equal(status.code, 2, alice.describe());
    assert.match(alice.stderr, /nick "alice" is taken in room "stay"/);
    assert.doesNotMatch(alice.stderr, /unexpected error/);
    // One refused join, then silence: no loop, nothing left for the per-address cap.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    assert.equal(count(relay.proc.stderr, /nick alice is taken/), 1, relay.proc.stderr);
  } finally {
    await impostor?.close();
    if (alice.child.exitCode === null) await alice.stop();
    await front.close();
    await relay.proc.stop();
    dirs.cleanup();
  }
});

Deno.test("join --stay: a relay that refuses the client (--allow) after a restart ends it with exit 4", async () => {
  const dirs = new TempDirs();
  const relayHome = dirs.make("relay");
  let relay = await startRelay({ home: relayHome });
  const address = relay.address;
  const alice = CliProcess.start(["join", address, "--room", "stay", "--nick", "alice", "--stay"], {
    home: dirs.make(),
  });
  try {
    await alice.waitFor("stderr", /joined room "stay" as alice/);
    await relay.proc.stop();
    const allow = `${relayHome}/allow`;
    Deno.writeTextFileSync(allow, `${generateIdentity().fingerprint} someone else\n`);
    relay = await startRelay({ home: relayHome, listen: address, extraArgs: ["--allow", allow] });
    const status = await alice.wait(20_000);
    assert.equal(status.code, 4, alice.describe());
    assert.match(alice.stderr, /allow list/);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    assert.equal(count(relay.proc.stderr, /not on the allow list/), 1, relay.proc.stderr);
  } finally {
    if (alice.child.exitCode === null) await alice.stop();
    await relay.proc.stop();
    dirs.cleanup();
  }
});

Deno.test("join --stay: a full room after a restart is retried with jittered backoff, the per-address cap stays free, and it rejoins", async () => {
  const dirs = new TempDirs();
  const relayHome = dirs.make("relay");
  // Ephemeral rooms: a restarted relay remembers no roster, so the nick is free to take.
  let relay = await startRelay({ home: relayHome, extraArgs: ["--ephemeral"] });
  const address = relay.address;
  const front = await gate({ host: "127.0.0.1", port: Number(address.split(":").pop()) });
  const alice = CliProcess.start(
    ["join", front.address, "--room", "stay", "--nick", "alice", "--stay"],
    { home: dirs.make() },
  );
  let squatter: ChatClient | undefined;
  try {
    await alice.waitFor("stderr", /joined room "stay" as alice/);
    front.shut();
    await relay.proc.stop();
    relay = await startRelay({
      home: relayHome,
      listen: address,
      extraArgs: ["--ephemeral", "--max-room-members", "1", "--max-connections-per-address", "3"],
    });
    squatter = await squat(address, relay.fingerprint, "bob");
    front.open();
    await alice.waitFor("stderr", /reconnecting failed: the relay refused: room "stay" is full/);
    // Over the next 6 s: a handful of attempts, never a flood.
    await new Promise((resolve) => setTimeout(resolve, 6_000));
    const refusals = count(relay.proc.stderr, /refused \S+ join: room "stay" is full/);
    assert.ok(refusals >= 2 && refusals <= 6, `${refusals} attempts in ~6 s\n${relay.proc.stderr}`);
    // The per-address cap (3) is not filled by retries: another program still gets in.
    const fingerprint = await runCli(["fingerprint", address], { home: dirs.make() });
    assert.equal(fingerprint.code, 0, fingerprint.stderr);
    // Delays have jitter and double up to the cap.
    const delays = [...alice.stderr.matchAll(/reconnecting in ([\d.]+) s/g)].map((m) =>
      Number(m[1])
    );
    assert.ok(delays.every((delay) => delay > 0 && delay <= 10), delays.join(", "));
    assert.ok(delays.some((delay) => ![0.5, 1, 2, 4, 8, 10].includes(delay)), delays.join(", "));
    // Space in the room: alice is back.
    await squatter.close();
    squatter = undefined;
    await alice.waitFor("stderr", /reconnected: joined room "stay" as alice/, 20_000);
  } finally {
    await squatter?.close();
    if (alice.child.exitCode === null) await alice.stop();
    await front.close();
    await relay.proc.stop();
    dirs.cleanup();
  }
});
