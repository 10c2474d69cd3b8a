/**
 * Connection scenarios: how fast members can connect (handshakes), and what
 * many idle members cost the relay (scale).
 *
 * @module
 */

import { ChatClient } from "../lib/client/client.ts";
import { benchIdentity, inParallel, SecureMember, TlsMember } from "./members.ts";
import type { Server } from "./servers.ts";
import { median } from "./stats.ts";
import { ownCpuSeconds, sleep } from "./system.ts";

/** What the handshake scenario measured. */
export interface HandshakeResult {
  kind: "securechat" | "ncat";
  attempted: number;
  completed: number;
  concurrency: number;
  /** Connections per second that completed (securechat: handshake, identity proof, join, welcome). */
  perSecond: number;
  /** Relay CPU per completed connection, µs. */
  relayCpuMicros: number | null;
  /** Load-generator CPU per completed connection, µs (client side of the handshake). */
  loadCpuMicros: number;
  /** What one relay core could sustain at that cost: 1 s / relay CPU per connection. */
  relayCoreCapacityPerSecond: number | null;
  error?: string;
}

/** Options for {@linkcode runHandshakes}. */
export interface HandshakeOptions {
  server: Server;
  count: number;
  concurrency: number;
}

/**
 * Opens `count` connections, `concurrency` at a time; each completes the
 * full handshake (securechat: proves its identity, joins a room of 10 and
 * waits for the welcome). Connections stay open until all are done, then
 * close: ncat's chat mode exits when a client leaves before it has looked at
 * it ("getpeername ... failed. QUITTING"), so closing each at once would
 * measure ncat's crash, not its speed.
 *
 * @example
 * ```ts
 * const result = await runHandshakes({ server, count: 3000, concurrency: 64 });
 * ```
 */
export async function runHandshakes(options: HandshakeOptions): Promise<HandshakeResult> {
  const { server, count, concurrency } = options;
  // A handful of identities, as a relay sees from real users; each connection still proves one.
  const identities = Array.from({ length: Math.min(count, 64) }, () => benchIdentity());
  const open: { close(): void }[] = [];
  const relayBefore = server.stats();
  const loadBefore = ownCpuSeconds();
  const start = performance.now();
  const results = await inParallel(count, concurrency, async (i) => {
    const member = server.kind === "ncat"
      ? await TlsMember.connect(server, 30_000)
      : await SecureMember.join({
        server,
        identity: identities[i % identities.length],
        room: `hs-${Math.floor(i / 10)}`,
        nick: `m${i}`,
      });
    open.push(member);
    return true;
  });
  const elapsed = (performance.now() - start) / 1000;
  const relayAfter = server.stats();
  const loadCpu = ownCpuSeconds() - loadBefore;
  for (const member of open) member.close();
  const completed = results.filter((result) => result === true).length;
  const failure = results.find((result) => result instanceof Error) as Error | undefined;
  const relayCpu = relayBefore && relayAfter
    ? relayAfter.cpuSeconds - relayBefore.cpuSeconds
    : null;
  const perConnection = (seconds: number) =>
    completed === 0 ? 0 : Math.round((seconds / completed) * 1e6);
  await sleep(200);
  return {
    kind: server.kind,
    attempted: count,
    completed,
    concurrency,
    perSecond: Math.round(completed / elapsed),
    relayCpuMicros: relayCpu === null ? null : perConnection(relayCpu),
    loadCpuMicros: perConnection(loadCpu),
    relayCoreCapacityPerSecond: relayCpu && completed > 0 ? Math.round(completed / relayCpu) : null,
    ...(failure ? { error: `${count - completed} failed; first: ${failure.message}` } : {}),
  };
}

/** What the scale scenario measured. */
export interface ScaleResult {
  kind: "securechat" | "ncat";
  attempted: number;
  connected: number;
  /** Relay RSS before the members connected (after one warm-up connection). */
  baselineRssBytes: number | null;
  /** Relay RSS one second after the last member connected (garbage of the burst included). */
  rssBytes: number | null;
  /**
   * Relay RSS once the members have stayed idle for `settleMs`: V8's memory reducer collects
   * the handshakes' garbage after several idle seconds. The figure for "idle members".
   */
  settledRssBytes: number | null;
  settleMs: number;
  /** (settled RSS − baseline) / members. */
  bytesPerConnection: number | null;
  /** Time to fill the relay. */
  connectSeconds: number;
  /** One more member joining a full room: handshake, join and welcome (median of a few), ms. */
  joinMs: number | null;
  /** The same with the real client, ready to send (room state set up), ms. */
  clientJoinMs: number | null;
  roomSize: number;
  error?: string;
}

/** Options for {@linkcode runScale}. */
export interface ScaleOptions {
  server: Server;
  members: number;
  roomSize: number;
  concurrency: number;
  /** How long to let the members idle before the settled RSS is read. */
  settleMs: number;
}

/**
 * Connects `members` idle members (rooms of `roomSize`), measures the relay's
 * memory one second later and again after `settleMs` of idleness, then times
 * one more member joining one of those rooms.
 *
 * @example
 * ```ts
 * const result = await runScale({
 *   server, members: 10_000, roomSize: 100, concurrency: 64, settleMs: 12_000,
 * });
 * ```
 */
export async function runScale(options: ScaleOptions): Promise<ScaleResult> {
  const { server, members, roomSize, concurrency, settleMs } = options;
  const identities = Array.from({ length: 64 }, () => benchIdentity());
  const open: { close(): void }[] = [];
  const result: ScaleResult = {
    kind: server.kind,
    attempted: members,
    connected: 0,
    baselineRssBytes: null,
    rssBytes: null,
    settledRssBytes: null,
    settleMs,
    bytesPerConnection: null,
    connectSeconds: 0,
    joinMs: null,
    clientJoinMs: null,
    roomSize,
  };
  const connectOne = async (i: number, nick = `m${i}`) => {
    if (server.kind === "ncat") return await TlsMember.connect(server, 30_000);
    return await SecureMember.join({
      server,
      identity: identities[Math.abs(i) % identities.length],
      room: i < 0 ? "warm-up" : `idle-${Math.floor(i / roomSize)}`,
      nick,
      timeoutMs: 60_000,
    });
  };
  try {
    // Warm the relay's code paths so the baseline is the empty relay, not a cold one.
    (await connectOne(-1)).close();
    await sleep(300);
    result.baselineRssBytes = server.stats()?.rssBytes ?? null;
    const start = performance.now();
    const outcomes = await inParallel(members, concurrency, async (i) => {
      const member = await connectOne(i);
      open.push(member);
      return member;
    });
    result.connectSeconds = Math.round((performance.now() - start) / 10) / 100;
    result.connected = outcomes.filter((outcome) => !(outcome instanceof Error)).length;
    const failure = outcomes.find((outcome) => outcome instanceof Error) as Error | undefined;
    if (failure) result.error = `${members - result.connected} failed; first: ${failure.message}`;
    await sleep(1000);
    result.rssBytes = server.stats()?.rssBytes ?? null;
    await sleep(Math.max(0, settleMs - 1000));
    const stats = server.stats();
    result.settledRssBytes = stats?.rssBytes ?? null;
    if (stats && result.baselineRssBytes !== null && result.connected > 0) {
      result.bytesPerConnection = Math.round(
        (stats.rssBytes - result.baselineRssBytes) / result.connected,
      );
    }
    if (server.kind === "securechat" && result.connected === members) {
      const joins: number[] = [];
      const clientJoins: number[] = [];
      for (let k = 0; k < 5; k++) {
        const t0 = performance.now();
        const member = await connectOne(k * roomSize, `extra${k}`);
        joins.push(performance.now() - t0);
        member.close();
        const t1 = performance.now();
        const client = await ChatClient.connect({
          host: server.host,
          port: server.port,
          identity: benchIdentity(),
          room: `idle-${k}`,
          nick: `late${k}`,
          verifyRelay: ({ fingerprint }) => {
            if (fingerprint !== server.fingerprint) throw new Error("wrong relay fingerprint");
          },
          onEvent: () => {},
        });
        clientJoins.push(performance.now() - t1);
        await client.close();
      }
      const round = (value: number | null) => value === null ? null : Math.round(value * 10) / 10;
      result.joinMs = round(median(joins));
      result.clientJoinMs = round(median(clientJoins));
    }
  } catch (error) {
    result.error = (error as Error).message;
  } finally {
    for (const member of open) member.close();
    await sleep(200);
  }
  return result;
}
