/**
 * Part 3 of the attack suite, second half: hostile clients against the real
 * `securechat serve` process and its limits (README, "Limits"): a thousand
 * connections that never finish the handshake, a client that floods, a
 * member that never reads, and the connection caps in total and per address.
 * The relay must stay up, keep its memory bounded, drop only the offender,
 * log why, and keep serving everyone else promptly.
 *
 * Connections come from several loopback addresses (127.0.0.x), so that the
 * per-address cap can be told apart from the total one.
 */

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createConnection, type Socket } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { connectHandshake, type SecureChannel } from "../../lib/transport/channel.ts";
import { generateIdentity, type Identity } from "../../lib/identity/identity.ts";
import {
  decodeRecord,
  encodeRecord,
  RelayErrorCode,
  type RelayRecord,
} from "../../lib/transport/records.ts";
import { RoomSession } from "../../lib/e2e/room.ts";
import { CliProcess, runCli, startRelay, TempDirs } from "../support/cli_process.ts";
import { delay, joinRoom, type TestClient, waitFor } from "../support/in_process.ts";
import type { Relay } from "../../lib/relay/relay.ts";
import { guarded } from "./support/observe.ts";
import { Attack } from "./support/scoreboard.ts";

const ROOT = dirname(dirname(dirname(fileURLToPath(import.meta.url))));

interface CliRelay {
  proc: CliProcess;
  port: number;
  fingerprint: string;
  /** Resident memory of the relay process, in bytes. */
  rss(): number;
}

async function serve(dirs: TempDirs, flags: string[]): Promise<CliRelay> {
  const { proc, address, fingerprint } = await startRelay({
    home: dirs.make("relay"),
    extraArgs: flags,
  });
  const port = Number(address.split(":").at(-1));
  const rss = () => {
    const status = readFileSync(`/proc/${proc.child.pid}/status`, "utf8");
    return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
  };
  return { proc, port, fingerprint, rss };
}

/** The in-process helpers want a Relay; a running `serve` process looks enough like one. */
function relayLike(relay: CliRelay): Relay {
  return {
    fingerprint: relay.fingerprint,
    address: { host: "127.0.0.1", port: relay.port },
  } as Relay;
}

/** A connection to the relay from `localAddress`, opened and left as it is. */
function openFrom(port: number, localAddress: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: "127.0.0.1", port, localAddress });
    socket.once("connect", () => resolve(socket));
    socket.once("error", reject);
  });
}

/** A member speaking records directly over a socket from `localAddress`. */
interface RawMember {
  identity: Identity;
  socket: Socket;
  channel: SecureChannel;
  records: RelayRecord[];
  closed: boolean;
}

async function rawMember(
  relay: CliRelay,
  options: { localAddress: string; room: string; nick: string },
): Promise<RawMember> {
  const identity = generateIdentity();
  const socket = await openFrom(relay.port, options.localAddress);
  socket.on("error", () => {});
  const channel = await connectHandshake({
    socket,
    identity,
    verifyRelay: ({ fingerprint }) => assert.equal(fingerprint, relay.fingerprint),
    timeoutMs: 3_000,
  });
  const member: RawMember = { identity, socket, channel, records: [], closed: false };
  channel.onRecord = (bytes) => member.records.push(decodeRecord(bytes));
  channel.onClose = () => member.closed = true;
  const session = new RoomSession({ identity, room: options.room, nick: options.nick });
  channel.send(encodeRecord({ type: "join", announcement: session.announcement }));
  channel.start();
  await waitFor(() => member.closed || member.records.some((r) => r.type === "welcome"), {
    what: `${options.nick}'s welcome`,
    timeoutMs: 3_000,
  });
  return member;
}

/** Tries to become a member; resolves with whether the relay admitted it. */
async function admitted(
  relay: CliRelay,
  localAddress: string,
  nick: string,
): Promise<RawMember | undefined> {
  try {
    const member = await rawMember(relay, { localAddress, room: "caps", nick });
    if (member.records.some((r) => r.type === "welcome") && !member.closed) return member;
    member.channel.destroy();
  } catch {
    // Refused before or during the handshake.
  }
  return undefined;
}

async function stop(relay: CliRelay, attack: Attack): Promise<void> {
  const status = await relay.proc.stop();
  if (status.code !== 0) {
    attack.crash(`serve exited ${status.code}/${status.signal}: ${relay.proc.stderr.slice(-400)}`);
  }
}

Deno.test("limits: 1,000 connections that never finish the handshake do not keep a client out", async () => {
  const attack = new Attack("relay: 1,000 connections that never finish the handshake");
  const dirs = new TempDirs();
  const relay = await serve(dirs, ["--handshake-timeout", "2"]);
  const stalled: Socket[] = [];
  let closedByRelay = 0;
  try {
    await guarded(attack, async () => {
      // Ten addresses, 100 connections each: past the per-address cap (64) and, together,
      // far past the pending-handshake cap (256). Half send nothing, half a preamble and a bit.
      const opening: Promise<void>[] = [];
      for (let i = 0; i < 1_000; i++) {
        const localAddress = `127.0.0.${10 + (i % 10)}`;
        opening.push(
          openFrom(relay.port, localAddress).then((socket) => {
            socket.on("error", () => {});
            socket.on("close", () => closedByRelay++);
            // Reading, so that the relay's close is noticed (a paused socket never sees the FIN).
            socket.on("data", () => {});
            if (i % 2 === 1) socket.write(new TextEncoder().encode("SECCHAT\x01\x00\x20partial"));
            stalled.push(socket);
          }, () => {
            closedByRelay++;
          }),
        );
      }
      await Promise.all(opening);
      attack.attempt(1_000);
      await delay(300);
      // A legitimate client from another address joins within 1 s.
      const started = performance.now();
      const alice = await joinRoom({
        relay: relayLike(relay),
        room: "r",
        nick: "alice",
        timeoutMs: 3_000,
      });
      const joinMs = performance.now() - started;
      const bob = await joinRoom({
        relay: relayLike(relay),
        room: "r",
        nick: "bob",
        timeoutMs: 3_000,
      });
      await waitFor(() => alice.client.members().length === 1, { what: "alice sees bob" });
      await alice.client.send(["through the siege"]);
      await waitFor(() => bob.texts().includes("through the siege"), { what: "bob reads alice" });
      console.log(`joined in ${joinMs.toFixed(0)} ms with 1,000 stalled connections open`);
      assert.ok(joinMs < 1_000, `the client needed ${joinMs.toFixed(0)} ms to join`);
      // Every stalled connection is closed by the relay: evicted, refused, or at its deadline.
      await waitFor(() => closedByRelay >= 1_000, {
        what: "the relay to close them all",
        timeoutMs: 6_000,
      })
        .catch(() => {});
      attack.detected(Math.min(closedByRelay, 1_000));
      if (closedByRelay < 1_000) {
        attack.lost(0, `${1_000 - closedByRelay} stalled connections still open`);
      }
      assert.match(relay.proc.stderr, /dropping .*(handshake|cap)/);
      await alice.client.close();
      await bob.client.close();
    });
  } finally {
    for (const socket of stalled) socket.destroy();
    await stop(relay, attack);
    attack.save();
    dirs.cleanup();
  }
  assert.equal(attack.row.detected, 1_000, attack.summary());
  assert.ok(attack.clean, attack.summary());
});

Deno.test("limits: a flooding client is dropped with 'overloaded'; a polite one and the others carry on", async () => {
  const attack = new Attack("relay: a client that floods");
  const dirs = new TempDirs();
  const relay = await serve(dirs, ["--rate-limit", "50", "--rate-burst", "20"]);
  try {
    await guarded(attack, async () => {
      const alice = await joinRoom({ relay: relayLike(relay), room: "r", nick: "alice" });
      const bob = await joinRoom({ relay: relayLike(relay), room: "r", nick: "bob" });
      await waitFor(() => alice.client.members().length === 1, { what: "alice sees bob" });
      for (let round = 0; round < 3; round++) {
        attack.attempt();
        const flooder = await rawMember(relay, {
          localAddress: "127.0.0.2",
          room: "flood",
          nick: `f${round}`,
        });
        // 2,000 records in one go, as fast as the socket takes them.
        for (let i = 0; i < 2_000 && !flooder.closed; i++) {
          flooder.channel.send(
            encodeRecord({ type: "publish", id: i, message: new Uint8Array(100) }),
          );
        }
        const during = `during flood ${round}`;
        await alice.client.send([during]);
        await waitFor(() => flooder.closed, { what: "the flooder to be dropped", timeoutMs: 3_000 })
          .catch(() => {});
        const overloaded = flooder.records.some((r) =>
          r.type === "error" && r.code === RelayErrorCode.overloaded
        );
        if (flooder.closed && overloaded) attack.detected();
        await waitFor(() => bob.texts().includes(during), {
          what: "bob reads alice during the flood",
        })
          .catch(() => attack.lost(1, "bob missed a message during the flood"));
        flooder.channel.destroy();
      }
      // A client that keeps to the rate (30/s against 50/s, past its burst of 20) stays.
      const polite = await rawMember(relay, {
        localAddress: "127.0.0.3",
        room: "r",
        nick: "polite",
      });
      for (let i = 0; i < 60 && !polite.closed; i++) {
        polite.channel.send(encodeRecord({ type: "publish", id: i, message: new Uint8Array(100) }));
        await delay(33);
      }
      await delay(100);
      assert.equal(polite.closed, false, "a client within the rate was dropped");
      assert.equal(polite.records.filter((r) => r.type === "ack").length, 60);
      assert.match(relay.proc.stderr, /dropping .*rate limit/);
      polite.channel.destroy();
      for (const member of [alice, bob]) {
        assert.equal(member.closed, undefined, `${member.client.nick} lost its connection`);
        await member.client.close();
      }
    });
  } finally {
    await stop(relay, attack);
    attack.save();
    dirs.cleanup();
  }
  assert.equal(attack.row.detected, attack.row.attempts, attack.summary());
  assert.ok(attack.clean, attack.summary());
});

Deno.test("limits: a member that never reads is dropped at its queue limit; the relay's memory stays flat", async () => {
  const attack = new Attack("relay: a member that never reads");
  const dirs = new TempDirs();
  const relay = await serve(dirs, [
    "--max-queue",
    "2",
    "--rate-limit",
    "100000",
    "--rate-burst",
    "100000",
  ]);
  try {
    await guarded(attack, async () => {
      const alice = await joinRoom({ relay: relayLike(relay), room: "r", nick: "alice" });
      const bob = await joinRoom({ relay: relayLike(relay), room: "r", nick: "bob" });
      await waitFor(() => alice.client.members().length === 1, { what: "alice sees bob" });
      const text = "x".repeat(60_000);
      let read = 0;
      /** About 33 MiB per `size` from alice, at the pace bob reads. */
      const traffic = async (label: string, size = 1) => {
        for (let batch = 0; batch < 112 * size; batch++) {
          const texts = Array.from({ length: 5 }, (_, i) => `${label}.${batch}.${i} ${text}`);
          await alice.client.send(texts);
          read += texts.length;
          const behind = read - 10;
          await waitFor(() => bob.texts().length >= behind, { what: "bob to keep up" }).catch(
            () => {},
          );
        }
        await waitFor(() => bob.texts().length >= read, {
          what: "bob to read everything",
          timeoutMs: 10_000,
        })
          .catch(() => attack.lost(read - bob.texts().length, "bob missed messages"));
      };
      let peak = 0;
      const sampler = setInterval(() => peak = Math.max(peak, relay.rss()), 25);
      const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
      try {
        // Control: the same traffic with every member reading, so the heap reaches its working size.
        const start = relay.rss();
        await traffic("warm-up");
        await traffic("control");
        const control = peak;
        peak = 0;
        for (let round = 0; round < 2; round++) {
          attack.attempt();
          const sloth = await rawMember(relay, {
            localAddress: "127.0.0.4",
            room: "r",
            nick: `sloth${round}`,
          });
          sloth.socket.pause();
          // A raw member runs no pairwise handshake, so members never show it: the relay's log
          // says it is in the room.
          await waitFor(() => relay.proc.stderr.includes(`nick=sloth${round} `), {
            what: "the sloth in the room",
          });
          const logsBefore = relay.proc.stderr.length;
          await traffic(`round${round}`, 2);
          const dropped = /stopped reading/.test(relay.proc.stderr.slice(logsBefore));
          // An ephemeral room logs a leave; a durable one (the default) a member gone offline.
          const left = () =>
            new RegExp(`(leave|offline) room=r nick=sloth${round} `).test(relay.proc.stderr);
          await waitFor(left, { what: "the sloth to leave" }).catch(() => {});
          if (dropped && left()) attack.detected();
          sloth.channel.destroy();
        }
        console.log(
          `relay RSS: ${mib(start)} at the start, peak ${
            mib(control)
          } with every member reading, ` +
            `peak ${mib(peak)} with a member that never reads (2 rounds of 66 MiB, --max-queue 2)`,
        );
        // A relay that kept what the sloth never read would hold up to 66 MiB more.
        assert.ok(peak - control < 24 * 1024 * 1024, `the relay grew by ${mib(peak - control)}`);
      } finally {
        clearInterval(sampler);
      }
      // The sloths never ran a pairwise handshake: "did not answer" is the right warning.
      assert.deepEqual(bob.warnings().filter((code) => code !== "no-answer"), []);
      assert.equal(bob.closed, undefined, "bob, who reads, was dropped");
      await alice.client.close();
      await bob.client.close();
    });
  } finally {
    await stop(relay, attack);
    attack.save();
    dirs.cleanup();
  }
  assert.equal(attack.row.detected, attack.row.attempts, attack.summary());
  assert.ok(attack.clean, attack.summary());
});

Deno.test("limits: connection caps hold in total and per address, and free up again", async () => {
  const attack = new Attack("relay: connection caps (total, per address)");
  const dirs = new TempDirs();
  const relay = await serve(dirs, [
    "--max-connections",
    "12",
    "--max-connections-per-address",
    "4",
  ]);
  const members: RawMember[] = [];
  try {
    await guarded(attack, async () => {
      for (let i = 0; i < 4; i++) {
        const member = await admitted(relay, "127.0.0.20", `a${i}`);
        assert.ok(member, `member ${i} from 127.0.0.20 was refused under the cap`);
        members.push(member);
      }
      // A fifth from the same address is refused; another address is welcome.
      for (let i = 0; i < 3; i++) {
        attack.attempt();
        const extra = await admitted(relay, "127.0.0.20", `a-extra${i}`);
        if (extra === undefined) attack.detected();
        else {
          attack.lost(0, "a fifth connection from one address was admitted");
          members.push(extra);
        }
      }
      const other = await admitted(relay, "127.0.0.21", "b0");
      assert.ok(other, "another address was refused");
      members.push(other);
      // Fill the relay to 12 from fresh addresses; the 13th is refused, wherever it comes from.
      for (let i = 0; members.length < 12 && i < 20; i++) {
        const member = await admitted(relay, `127.0.0.${22 + Math.floor(i / 4)}`, `c${i}`);
        if (member) members.push(member);
      }
      assert.equal(members.length, 12);
      for (let i = 0; i < 3; i++) {
        attack.attempt();
        const extra = await admitted(relay, `127.0.0.${40 + i}`, `over${i}`);
        if (extra === undefined) attack.detected();
        else members.push(extra);
      }
      assert.match(relay.proc.stderr, /refused|dropping/);
      // One leaves: a newcomer fits again.
      members.shift()!.channel.destroy();
      await delay(200);
      const late = await admitted(relay, "127.0.0.50", "late");
      assert.ok(late, "a freed slot was not reused");
      members.push(late);
    });
  } finally {
    for (const member of members) member.channel.destroy();
    await stop(relay, attack);
    attack.save();
    dirs.cleanup();
  }
  assert.equal(attack.row.detected, attack.row.attempts, attack.summary());
  assert.ok(attack.clean, attack.summary());
});

Deno.test("limits: every relay limit has a serve flag and a line in README's Limits table", async () => {
  const help = await runCli(["serve", "--help"], { home: "/nonexistent" });
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  const limits = readme.slice(
    readme.indexOf("## Limits"),
    readme.indexOf("\n## ", readme.indexOf("## Limits") + 5),
  );
  const flags = [
    "--handshake-timeout",
    "--max-connections",
    "--max-connections-per-address",
    "--max-pending-handshakes",
    "--max-queue",
    "--rate-limit",
    "--rate-burst",
  ];
  for (const flag of flags) {
    assert.match(
      help.stdout,
      new RegExp(`${flag} <[^>]+>[^]*?\\(default: \\d+\\)`),
      `serve --help: ${flag}`,
    );
    assert.ok(limits.includes(flag), `README's Limits table does not mention ${flag}`);
  }
});

export type { TestClient };
