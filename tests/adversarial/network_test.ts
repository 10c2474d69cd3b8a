/**
 * Part 1 of the attack suite: a hostile network. A frame-aware proxy sits
 * between one victim and the relay and, in either direction, flips bits,
 * truncates, drops, duplicates, reorders, delays, replays (also from
 * earlier connections), injects random bytes, or cuts the stream into
 * 1-byte pieces or merges it. Other members talk to the relay directly.
 *
 * For every attempt: the victim never shows a corrupted, forged or replayed
 * message; a damaged connection fails with a clear error (never a hang or an
 * unexpected exception); the relay and every other member carry on, and no
 * confirmed message is lost without the receiver being told.
 */

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { createConnection } from "node:net";
import { AuthenticationError, NetworkError, ProtocolError } from "../../lib/core/errors.ts";
import type { Relay } from "../../lib/relay/relay.ts";
import { CliProcess, TempDirs } from "../support/cli_process.ts";
import {
  delay,
  joinRoom,
  seededRandom,
  startRelay,
  type TestClient,
  waitFor,
} from "../support/in_process.ts";
import {
  type Direction,
  type Emit,
  flipBit,
  HostileProxy,
  type Unit,
  type UnitHandler,
} from "./support/hostile_proxy.ts";
import { ADVERSARIAL_SEED, ATTEMPTS } from "./support/knobs.ts";
import { guarded, Ledger, type Shown } from "./support/observe.ts";
import { Attack } from "./support/scoreboard.ts";

const ROOM = "net";
const random = seededRandom(ADVERSARIAL_SEED);
console.log(`network attacks: seed ${ADVERSARIAL_SEED} (set ADVERSARIAL_SEED to replay)`);

function pick(max: number): number {
  return Math.floor(random() * max);
}

/** What one attack does to the victim's connection. */
interface NetworkAttack {
  name: string;
  /** True when the change must do no harm at all. */
  harmless?: boolean;
  /** Lowest unit index worth attacking (a replay needs something recorded before it). */
  minTarget?: number;
  /** The unit at `target` (or, if harmless, every unit) becomes what this returns. */
  apply(unit: Unit, proxy: HostileProxy, state: Map<string, unknown>): Emit[];
}

function frameOf(body: Uint8Array): Uint8Array {
  const out = new Uint8Array(2 + body.length);
  out[0] = body.length >>> 8;
  out[1] = body.length & 0xff;
  out.set(body, 2);
  return out;
}

const ATTACKS: NetworkAttack[] = [
  {
    name: "flip a bit",
    apply: (unit) => [{ bytes: flipBit(unit.bytes, pick(unit.bytes.length * 8)) }],
  },
  {
    name: "truncate a frame",
    apply: (unit) => {
      const cut = 1 + pick(Math.max(1, unit.bytes.length - 1));
      if (unit.kind === "frame" && unit.bytes.length > 3 && random() < 0.5) {
        // A consistent but shortened frame: the length prefix is rewritten.
        return [{ bytes: frameOf(unit.bytes.subarray(2, 2 + pick(unit.bytes.length - 2))) }];
      }
      // Cut mid-unit, then the connection ends.
      return [{ bytes: unit.bytes.subarray(0, cut), close: true }];
    },
  },
  { name: "drop a frame", apply: () => [] },
  { name: "duplicate a frame", apply: (unit) => [{ bytes: unit.bytes }, { bytes: unit.bytes }] },
  {
    name: "reorder frames",
    // The target is held back and sent after the next unit (see handlerFor).
    apply: (unit, _proxy, state) => {
      state.set("held", unit.bytes);
      return [];
    },
  },
  {
    name: "delay frames",
    harmless: true,
    apply: (unit, _proxy, state) => {
      const first = !state.has("delayed");
      state.set("delayed", true);
      return [{ bytes: unit.bytes, delayMs: first ? 300 : pick(15) }];
    },
  },
  {
    name: "replay a recorded frame",
    minTarget: 1,
    apply: (unit, proxy) => {
      const earlier = proxy.history.filter((old) =>
        old.direction === unit.direction && old !== unit &&
        (old.connection < unit.connection || old.index < unit.index)
      );
      const fromOlder = earlier.filter((old) => old.connection < unit.connection);
      const pool = fromOlder.length > 0 && random() < 0.5 ? fromOlder : earlier;
      if (pool.length === 0) return [{ bytes: unit.bytes }];
      return [{ bytes: pool[pick(pool.length)].bytes }, { bytes: unit.bytes }];
    },
  },
  {
    name: "inject random bytes",
    apply: (unit) => [{ bytes: randomBytes(1 + pick(64)) }, { bytes: unit.bytes }],
  },
  {
    name: "split writes into 1-byte pieces",
    harmless: true,
    apply: (unit) => [{ bytes: unit.bytes, pieceBytes: unit.bytes.length <= 600 ? 1 : 97 }],
  },
  {
    name: "merge writes",
    harmless: true,
    apply: (unit) => [{ bytes: unit.bytes, mergeMs: 3 }],
  },
];

/** The relay, the proxy and two members who talk to the relay directly. */
interface Scene {
  relay: Relay;
  logs: string[];
  proxy: HostileProxy;
  alice: TestClient;
  carol: TestClient;
  ledger: Ledger;
}

async function scene(): Promise<Scene> {
  const { relay, logs, port } = await startRelay({ handshakeTimeoutMs: 1_500 });
  const proxy = await HostileProxy.start({ upstream: { host: "127.0.0.1", port } });
  const alice = await joinRoom({ relay, room: ROOM, nick: "alice" });
  const carol = await joinRoom({ relay, room: ROOM, nick: "carol" });
  await waitFor(() => alice.client.members().length === 1, { what: "alice sees carol" });
  return { relay, logs, proxy, alice, carol, ledger: new Ledger() };
}

async function closeScene(scene: Scene): Promise<void> {
  await scene.alice.client.close();
  await scene.carol.client.close();
  await scene.proxy.close();
  await scene.relay.close();
}

function shownSince(client: TestClient, from: number): Shown[] {
  return client.events.slice(from).flatMap((event) =>
    event.type === "message" ? [{ from: event.from.fingerprint, text: event.text }] : []
  );
}

function warnedSince(client: TestClient, from: number): boolean {
  return client.events.slice(from).some((event) => event.type === "warning");
}

/** A send, and whether the relay confirmed it. */
interface Sent {
  text: string;
  settled: boolean;
  confirmed: boolean;
}

function send(ledger: Ledger, member: TestClient, label: string, padding = 0): Sent {
  const text = ledger.next(member.identity.fingerprint, label, padding);
  const sent: Sent = { text, settled: false, confirmed: false };
  member.client.send([text]).then(
    () => {
      sent.settled = true;
      sent.confirmed = true;
    },
    () => {
      sent.settled = true;
    },
  );
  return sent;
}

function isClearError(error: unknown): boolean {
  return (error instanceof ProtocolError || error instanceof NetworkError ||
    error instanceof AuthenticationError) && error.message.length > 10;
}

/** Builds the proxy handler for one attempt on connection `connection`. */
function handlerFor(
  attack: NetworkAttack,
  options: { connection: number; direction: Direction; target: number; fired: () => void },
): UnitHandler {
  const state = new Map<string, unknown>();
  return (unit, proxy) => {
    if (unit.connection !== options.connection || unit.direction !== options.direction) {
      return undefined;
    }
    if (attack.harmless) {
      options.fired();
      return attack.apply(unit, proxy, state);
    }
    const held = state.get("held") as Uint8Array | undefined;
    if (held && unit.index === options.target + 1) {
      state.delete("held");
      return [{ bytes: unit.bytes }, { bytes: held }];
    }
    if (unit.index !== options.target) return undefined;
    options.fired();
    return attack.apply(unit, proxy, state);
  };
}

/**
 * One attempt: a victim joins through the proxy, everyone talks, the attack
 * fires on one unit, then everyone talks more so that the damage surfaces.
 */
async function attempt(
  scene: Scene,
  attack: NetworkAttack,
  score: Attack,
  direction: Direction,
  number: number,
  falseAlarms: string[],
): Promise<void> {
  const { relay, proxy, alice, carol, ledger } = scene;
  // First attempt of each kind hits the handshake, the others the record stream.
  const target = attack.harmless
    ? 0
    : number === 0
    ? Math.max(attack.minTarget ?? 0, pick(direction === "toRelay" ? 3 : 2))
    : (direction === "toRelay" ? 3 : 2) + pick(5);
  let fired = false;
  proxy.handler = handlerFor(attack, {
    connection: proxy.connections,
    direction,
    target,
    fired: () => fired = true,
  });
  const aliceStart = alice.events.length;
  const carolStart = carol.events.length;
  const nick = `bob${number}`;
  let bob: TestClient | undefined;
  let joinError: unknown;
  try {
    bob = await joinRoom({ relay, port: proxy.port, room: ROOM, nick, timeoutMs: 1_500 });
  } catch (error) {
    joinError = error;
  }
  const bobFingerprint = bob?.identity.fingerprint;
  const inRoom = (member: TestClient) =>
    bobFingerprint !== undefined &&
    member.client.members().some((m) => m.fingerprint === bobFingerprint);
  if (bob) {
    await waitFor(() => bob!.closed !== undefined || (inRoom(alice) && inRoom(carol)), {
      what: "everyone to see the victim",
      timeoutMs: 2_000,
    }).catch(() => {});
  }
  const fromAlice: { sent: Sent; bobPresent: boolean }[] = [];
  const fromBob: Sent[] = [];
  const talk = (padding = 0) => {
    fromAlice.push({
      sent: send(ledger, alice, "alice", padding),
      bobPresent: inRoom(alice) && bob?.closed === undefined,
    });
    if (bob && bob.closed === undefined) fromBob.push(send(ledger, bob, nick, padding));
  };
  const settled = () => [...fromAlice.map((a) => a.sent), ...fromBob].every((s) => s.settled);
  // Rounds of traffic until the attack has fired (bounded).
  for (let round = 0; round < 8 && (round < 2 || !fired); round++) {
    talk();
    await waitFor(() => settled() || bob?.closed !== undefined, {
      what: "a round of messages",
      timeoutMs: 400,
    }).catch(() => {});
  }
  // Big messages (over 64 KiB in all) complete any partial frame the damage left behind.
  if (fired) { for (let i = 0; i < 3; i++) talk(attack.harmless ? 2_000 : 25_000); }
  const expectedAtBob = () =>
    fromAlice.filter((a) => a.bobPresent && a.sent.confirmed).map((a) => a.sent.text);
  const done = () => {
    const bobShown = bob ? new Set(shownSince(bob, 0).map((s) => s.text)) : new Set<string>();
    const carolShown = new Set(shownSince(carol, carolStart).map((s) => s.text));
    const aliceShown = new Set(shownSince(alice, aliceStart).map((s) => s.text));
    const bobDone = bob === undefined || bob.closed !== undefined ||
      expectedAtBob().every((text) => bobShown.has(text));
    return bobDone && settled() &&
      fromAlice.every((a) => !a.sent.confirmed || carolShown.has(a.sent.text)) &&
      fromBob.every((s) => !s.confirmed || (carolShown.has(s.text) && aliceShown.has(s.text)));
  };
  await waitFor(done, { what: "the attempt to settle", timeoutMs: 4_000 }).catch(() => {});
  if (!fired) {
    await bob?.client.close();
    return;
  }
  score.attempt();
  const error = joinError ?? bob?.closed?.error ?? undefined;
  if (error !== undefined && error !== null && !isClearError(error)) {
    score.crash(`unclear error: ${(error as Error)?.stack ?? String(error)}`);
  }
  const broken = joinError !== undefined || (bob?.closed?.error ?? null) !== null;
  const bobWarned = bob !== undefined && warnedSince(bob, 0);
  if (attack.harmless) {
    if (broken || bobWarned) {
      falseAlarms.push(`${attack.name} (${direction}): ${(error as Error)?.message ?? "warning"}`);
    }
  } else if (broken || bobWarned) {
    score.detected();
  }
  if (bob) {
    ledger.audit(score, {
      name: nick,
      shown: shownSince(bob, 0),
      expected: expectedAtBob(),
      reported: broken || bobWarned,
    });
  }
  ledger.audit(score, {
    name: "carol",
    shown: shownSince(carol, carolStart),
    expected: [
      ...fromAlice.filter((a) => a.sent.confirmed).map((a) => a.sent.text),
      ...fromBob.filter((s) => s.confirmed).map((s) => s.text),
    ],
    reported: carol.closed !== undefined || warnedSince(carol, carolStart),
  });
  ledger.audit(score, {
    name: "alice",
    shown: shownSince(alice, aliceStart),
    expected: fromBob.filter((s) => s.confirmed).map((s) => s.text),
    reported: alice.closed !== undefined || warnedSince(alice, aliceStart),
  });
  if (alice.closed !== undefined || carol.closed !== undefined) {
    score.crash(`a bystander lost its connection: ${alice.closed?.error ?? carol.closed?.error}`);
  }
  await bob?.client.close();
  // The next attempt starts once the bystanders have seen the victim go.
  await waitFor(() => !inRoom(alice) && !inRoom(carol), {
    what: "the victim to leave",
    timeoutMs: 2_000,
  }).catch(() => {});
}

for (const attack of ATTACKS) {
  for (const direction of ["toClient", "toRelay"] as const) {
    const label = direction === "toClient" ? "relay to client" : "client to relay";
    Deno.test(`network: ${attack.name} (${label})`, async () => {
      const score = new Attack(`network: ${attack.name} (${label})`, {
        harmless: attack.harmless,
      });
      const falseAlarms: string[] = [];
      const setting = await scene();
      try {
        await guarded(score, async () => {
          for (let number = 0; number < ATTEMPTS; number++) {
            await attempt(setting, attack, score, direction, number, falseAlarms);
          }
          // The relay still serves newcomers, and the bystanders still talk.
          const late = await joinRoom({ relay: setting.relay, room: ROOM, nick: "late" });
          const text = setting.ledger.next(setting.alice.identity.fingerprint, "alice");
          await waitFor(() => setting.alice.client.members().length === 2, { what: "late" });
          await setting.alice.client.send([text]);
          await waitFor(() => late.texts().includes(text), { what: "late reads alice" });
          await late.client.close();
        });
      } finally {
        score.save();
        await closeScene(setting);
      }
      assert.ok(score.row.attempts >= Math.min(ATTEMPTS, 1), `${attack.name} never fired`);
      assert.deepEqual(falseAlarms, [], "a harmless change broke or alarmed a connection");
      if (!attack.harmless) {
        assert.equal(score.row.detected, score.row.attempts, score.summary());
      }
      assert.ok(score.clean, score.summary());
    });
  }
}

Deno.test("network: replay a whole recorded connection to the relay and to a client", async () => {
  const score = new Attack("network: replay a whole earlier connection");
  const setting = await scene();
  try {
    await guarded(score, async () => {
      // Record one genuine session through the proxy.
      const genuine = await joinRoom({
        relay: setting.relay,
        port: setting.proxy.port,
        room: ROOM,
        nick: "recorded",
      });
      await genuine.client.send([setting.ledger.next(genuine.identity.fingerprint, "recorded")]);
      await genuine.client.close();
      const toRelay = setting.proxy.stream(0, "toRelay");
      const toClient = setting.proxy.stream(0, "toClient");
      for (let i = 0; i < 3; i++) {
        // The client's bytes again, to the relay: its handshake must fail.
        score.attempt();
        const logsBefore = setting.logs.length;
        const replayer = createConnection({ host: "127.0.0.1", port: setting.relay.address.port });
        replayer.on("error", () => {});
        replayer.write(toRelay);
        await waitFor(
          () => setting.logs.slice(logsBefore).some((line) => /handshake failed/.test(line)),
          { what: "the relay to refuse the replay", timeoutMs: 3_000 },
        ).then(() => score.detected(), () => {});
        replayer.destroy();
        assert.equal(setting.relay.roomSizes().get(ROOM), 2, "the replay joined the room");

        // The relay's bytes again, to a new client: it must refuse the relay.
        score.attempt();
        setting.proxy.answerWith = toClient;
        try {
          const fooled = await joinRoom({
            relay: setting.relay,
            port: setting.proxy.port,
            room: ROOM,
            nick: `fooled${i}`,
            timeoutMs: 1_500,
          });
          score.forged(`a client accepted a replayed relay session (${fooled.texts().length})`);
          await fooled.client.close();
        } catch (error) {
          if (isClearError(error)) score.detected();
          else score.crash(`unclear error: ${(error as Error).stack}`);
        } finally {
          setting.proxy.answerWith = undefined;
        }
      }
    });
  } finally {
    score.save();
    await closeScene(setting);
  }
  assert.equal(score.row.detected, score.row.attempts, score.summary());
  assert.ok(score.clean, score.summary());
});

/**
 * The real `join` command as the victim: whatever the network does, it shows
 * only genuine messages and exits with a one-line error and a documented exit
 * code (5 network, 6 protocol, 7 undelivered), never a crash (1) or a hang.
 */
Deno.test("network: the join command under each damaging attack", async () => {
  const score = new Attack("network: join command as the victim");
  const dirs = new TempDirs();
  const setting = await scene();
  const fingerprint = setting.relay.fingerprint;
  try {
    await guarded(score, async () => {
      for (const attack of ATTACKS.filter((a) => !a.harmless)) {
        for (const direction of ["toClient", "toRelay"] as const) {
          let fired = false;
          const target = direction === "toRelay" ? 4 + pick(3) : 4 + pick(3);
          setting.proxy.handler = handlerFor(attack, {
            connection: setting.proxy.connections,
            direction,
            target,
            fired: () => fired = true,
          });
          const victim = CliProcess.start(
            [
              "join",
              `127.0.0.1:${setting.proxy.port}`,
              "--room",
              ROOM,
              "--nick",
              "victim",
              "--server-fingerprint",
              fingerprint,
              "--json",
            ],
            { home: dirs.make() },
          );
          let exited = false;
          victim.exited.then(() => exited = true);
          const joined = await victim.waitFor("stdout", /"type":"welcome"/, 5_000).then(
            () => true,
            () => false,
          );
          let written = 0;
          const victimFp = () =>
            setting.alice.client.members().find((m) => m.nick === "victim")?.fingerprint;
          if (joined) {
            await waitFor(() => victimFp() !== undefined || exited, {
              what: "alice sees the victim",
              timeoutMs: 2_000,
            }).catch(() => {});
          }
          const fp = victimFp() ?? "?";
          const aliceSent: Sent[] = [];
          const victimLines: string[] = [];
          for (let round = 0; round < 8 && !exited && (round < 2 || !fired); round++) {
            aliceSent.push(send(setting.ledger, setting.alice, "alice"));
            const line = setting.ledger.next(fp, "victim");
            victimLines.push(line);
            victim.write(`${line}\n`);
            written++;
            await delay(60);
          }
          // Over 64 KiB each way, so that any partial frame left behind completes.
          for (let i = 0; fired && !exited && i < 3; i++) {
            aliceSent.push(send(setting.ledger, setting.alice, "alice", 25_000));
            const line = setting.ledger.next(fp, "victim", 25_000);
            victimLines.push(line);
            victim.write(`${line}\n`);
            written++;
          }
          const status = await victim.wait(8_000).catch(() => undefined);
          if (!fired) continue;
          score.attempt();
          if (status === undefined) {
            score.lost(1, `join hung after ${attack.name} (${direction})`);
            continue;
          }
          const stderrLines = victim.stderr.split("\n").filter((l) => l.trim() !== "");
          if (
            status.code === 1 || status.code === null || /\n\s+at /.test(victim.stderr) ||
            /unexpected/.test(victim.stderr)
          ) {
            score.crash(`join exit ${status.code}/${status.signal}: ${victim.stderr.slice(-400)}`);
          } else if ([5, 6, 7].includes(status.code)) {
            score.detected();
          } else {
            score.lost(
              0,
              `join exited ${status.code} after ${attack.name} (${direction}): ${
                stderrLines.at(-1)
              }`,
            );
          }
          const objects = victim.stdoutLines().map((line) => JSON.parse(line));
          const shown: Shown[] = objects.filter((o) => o.type === "message").map((o) => ({
            from: o.fingerprint,
            text: o.text,
          }));
          setting.ledger.audit(score, {
            name: `join (${attack.name}, ${direction})`,
            shown,
            expected: [],
            reported: true,
          });
          // Lines carol got from the victim must be genuine; the rest the victim reported
          // (its exit code says some were not confirmed).
          const carolShown = shownSince(setting.carol, 0).filter((s) => s.from === fp);
          for (const message of carolShown) {
            if (!victimLines.includes(message.text)) score.forged(`carol shown ${message.text}`);
          }
          if (status.code === 0 && carolShown.length < written) {
            score.lost(written - carolShown.length, `join exited 0 with lines undelivered`);
          }
          await waitFor(() => victimFp() === undefined, {
            what: "the victim to leave",
            timeoutMs: 2_000,
          }).catch(() => {});
        }
      }
    });
  } finally {
    score.save();
    await closeScene(setting);
    dirs.cleanup();
  }
  assert.equal(score.row.detected, score.row.attempts, score.summary());
  assert.ok(score.clean, score.summary());
});
