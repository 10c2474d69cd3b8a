/**
 * Helpers for tests that run relays, clients and raw sockets inside the test
 * process, all on 127.0.0.1 with ports picked by the system.
 *
 * @example
 * ```ts
 * const { relay } = await startRelay();
 * const alice = await joinRoom({ relay, room: "ops", nick: "alice" });
 * await alice.client.send(["hi"]);
 * await relay.close();
 * ```
 *
 * @module
 */

import { connect, createServer, type Server, type Socket } from "node:net";
import { ChatClient, type ChatClientOptions } from "../../lib/client/client.ts";
import { generateIdentity, type Identity } from "../../lib/identity/identity.ts";
import { Relay, type RelayOptions } from "../../lib/relay/relay.ts";
import type { RoomEvent } from "../../lib/e2e/room.ts";

/**
 * A small deterministic PRNG (mulberry32) so random tests can be replayed.
 *
 * @example
 * ```ts
 * const random = seededRandom(42);
 * random(); // 0 <= x < 1
 * ```
 */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Resolves once `condition` holds, polling every few milliseconds; rejects
 * after `timeoutMs` naming `what`.
 *
 * @example
 * ```ts
 * await waitFor(() => events.length === 3, { what: "three events" });
 * ```
 */
export async function waitFor(
  condition: () => boolean,
  options: { what: string; timeoutMs?: number },
): Promise<void> {
  const deadline = Date.now() + (options.timeoutMs ?? 5_000);
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${options.what}`);
    await delay(5);
  }
}

/**
 * Resolves after `ms` milliseconds.
 *
 * @example
 * ```ts
 * await delay(50);
 * ```
 */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Races `promise` against a deadline, so a hanging operation fails the test
 * instead of stalling it.
 *
 * @example
 * ```ts
 * await within(relay.close(), 2_000, "relay close");
 * ```
 */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** Both ends of one loopback TCP connection. */
export interface SocketPair {
  /** The end that connected. */
  client: Socket;
  /** The end that was accepted. */
  server: Socket;
  /** Destroys both ends and closes the listener. */
  close(): Promise<void>;
}

/**
 * Opens a TCP connection to itself on 127.0.0.1 and returns both ends.
 *
 * @example
 * ```ts
 * const pair = await socketPair();
 * pair.client.write(new Uint8Array([1]));
 * await pair.close();
 * ```
 */
export async function socketPair(): Promise<SocketPair> {
  const server = createServer();
  await listen(server);
  const accepted = new Promise<Socket>((resolve) => server.once("connection", resolve));
  const client = connect({ host: "127.0.0.1", port: portOf(server) });
  await new Promise<void>((resolve, reject) => {
    client.once("connect", () => resolve());
    client.once("error", reject);
  });
  const serverSide = await accepted;
  return {
    client,
    server: serverSide,
    async close() {
      client.destroy();
      serverSide.destroy();
      await closeServer(server);
    },
  };
}

function listen(server: Server): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host: "127.0.0.1", port: 0 }, () => resolve());
  });
}

function portOf(server: Server): number {
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("server is not listening");
  return address.port;
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

/** Which way bytes travel through a {@linkcode TcpProxy}. */
export type Direction = "to-server" | "to-client";

/** Options for {@linkcode startProxy}. */
export interface ProxyOptions {
  /** Where to forward connections. */
  target: { host: string; port: number };
  /**
   * Rewrites each chunk before it is forwarded; return an empty array to
   * swallow it. `connection` counts accepted connections from 0.
   */
  transform?: (chunk: Uint8Array, direction: Direction, connection: number) => Uint8Array;
}

/** A recording TCP proxy on 127.0.0.1. */
export interface TcpProxy {
  /** Port clients should connect to. */
  port: number;
  /** Every chunk forwarded (after `transform`), per direction, in order. */
  captured: Record<Direction, Uint8Array[]>;
  /** Destroys every connection and stops listening. */
  close(): Promise<void>;
}

/**
 * Starts a TCP proxy that forwards to `target`, records what it forwards
 * and optionally rewrites it (to flip bits in transit).
 *
 * @example
 * ```ts
 * const proxy = await startProxy({ target: { host: "127.0.0.1", port: relay.address.port } });
 * // connect clients to proxy.port, then inspect proxy.captured
 * ```
 */
export async function startProxy(options: ProxyOptions): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  const captured: Record<Direction, Uint8Array[]> = { "to-server": [], "to-client": [] };
  let connections = 0;
  const server = createServer((inbound) => {
    const connection = connections++;
    const outbound = connect(options.target);
    sockets.add(inbound).add(outbound);
    const forward = (from: Socket, to: Socket, direction: Direction) => {
      from.on("data", (chunk: Uint8Array) => {
        const bytes = options.transform?.(chunk, direction, connection) ?? chunk;
        captured[direction].push(Uint8Array.from(bytes));
        if (bytes.length > 0 && !to.destroyed) to.write(bytes);
      });
      from.on("end", () => to.end());
      from.on("error", () => to.destroy());
      from.on("close", () => {
        to.destroy();
        sockets.delete(from);
      });
    };
    forward(inbound, outbound, "to-server");
    forward(outbound, inbound, "to-client");
  });
  await listen(server);
  return {
    port: portOf(server),
    captured,
    async close() {
      for (const socket of sockets) socket.destroy();
      await closeServer(server);
    },
  };
}

/** A relay started for a test, with its log lines. */
export interface TestRelay {
  /** The running relay. */
  relay: Relay;
  /** Its identity. */
  identity: Identity;
  /** Every log line so far. */
  logs: string[];
  /** Its port on 127.0.0.1. */
  port: number;
}

/**
 * Starts a relay on 127.0.0.1 with a fresh identity and a free port.
 *
 * @example
 * ```ts
 * const { relay, port } = await startRelay({ maxQueuedBytesPerConnection: 1 << 20 });
 * ```
 */
export async function startRelay(options: Partial<RelayOptions> = {}): Promise<TestRelay> {
  const identity = options.identity ?? generateIdentity();
  const logs: string[] = [];
  const relay = await Relay.listen({
    host: "127.0.0.1",
    port: 0,
    log: (line) => logs.push(line),
    ...options,
    identity,
  });
  return { relay, identity, logs, port: relay.address.port };
}

/** A joined client and everything it reported. */
export interface TestClient {
  /** The client. */
  client: ChatClient;
  /** Its identity. */
  identity: Identity;
  /** Every room event, in order. */
  events: RoomEvent[];
  /** Set once the connection ended: `null` for a clean close, else the error. */
  closed: { error: Error | null } | undefined;
  /** Texts of the group messages received, in order. */
  texts(): string[];
  /** Warning codes received, in order. */
  warnings(): string[];
}

/** Options for {@linkcode joinRoom}. */
export interface JoinOptions extends Partial<Omit<ChatClientOptions, "onEvent" | "onClose">> {
  /** The relay to join (its fingerprint is pinned unless `verifyRelay` is given). */
  relay: Relay;
  /** Port to connect to; default the relay's own (set it to go through a proxy). */
  port?: number;
  /** Room to join. */
  room: string;
  /** Nick. */
  nick: string;
}

/**
 * Connects a {@linkcode ChatClient} that pins the relay's fingerprint and
 * records its events.
 *
 * @example
 * ```ts
 * const bob = await joinRoom({ relay, room: "ops", nick: "bob" });
 * await waitFor(() => bob.texts().length === 1, { what: "bob's message" });
 * ```
 */
export async function joinRoom(options: JoinOptions): Promise<TestClient> {
  const identity = options.identity ?? generateIdentity();
  const events: RoomEvent[] = [];
  const result: Omit<TestClient, "client"> = {
    identity,
    events,
    closed: undefined,
    texts: () =>
      events.flatMap((event) => event.type === "message" && !event.direct ? [event.text] : []),
    warnings: () => events.flatMap((event) => event.type === "warning" ? [event.code] : []),
  };
  const expected = options.relay.fingerprint;
  const client = await ChatClient.connect({
    host: "127.0.0.1",
    verifyRelay: ({ fingerprint }) => {
      if (fingerprint !== expected) throw new Error("unexpected relay fingerprint");
    },
    timeoutMs: 5_000,
    ...options,
    port: options.port ?? options.relay.address.port,
    identity,
    onEvent: (event) => events.push(event),
    onClose: (error) => {
      result.closed = { error: error ?? null };
    },
  });
  return Object.assign(result, { client });
}

/**
 * Whether `needle` occurs anywhere in `haystack`.
 *
 * @example
 * ```ts
 * containsBytes(recorded, new TextEncoder().encode("secret")); // false
 * ```
 */
export function containsBytes(haystack: Uint8Array, needle: Uint8Array): boolean {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return true;
  }
  return false;
}

/**
 * Resolves with the error `promise` rejects with; throws if it resolves.
 *
 * @example
 * ```ts
 * const error = await rejection(client.send(["x"]));
 * ```
 */
export async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error("expected a rejection");
}
