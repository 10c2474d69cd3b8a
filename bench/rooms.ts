/**
 * Bench of rooms that remember, through real `securechat serve` processes:
 * fan-out (deliveries/s) of a durable room against an ephemeral one, one
 * relay against three relays sharing NATS JetStream (`serve --cluster`),
 * latency from a member on one relay to members on the others, and the
 * catch-up rate of a member coming back.
 *
 * Members here speak raw relay records (the relay cannot tell: it never
 * opens a message), so the figures are the relay's and the store's, not the
 * clients' crypto. Each message body carries its send time.
 *
 * @module
 */

import { openSocket } from "../lib/client/client.ts";
import { connectHandshake, type SecureChannel } from "../lib/transport/channel.ts";
import { decodeRecord, encodeRecord, type RelayRecord } from "../lib/transport/records.ts";
import { generateIdentity, type Identity } from "../lib/identity/identity.ts";
import { RoomSession } from "../lib/e2e/room.ts";
import type { Server } from "./servers.ts";

/** Where the relays kept the room: nowhere (ephemeral), relay.db, or NATS JetStream. */
export type RoomStore = "none" | "sqlite" | "jetstream";

/** Figures of one fan-out run. */
export interface RoomFanout {
  relays: number;
  store: RoomStore;
  members: number;
  messages: number;
  deliveriesPerSecond: number;
  /** Send to receipt, ms, over every delivery. */
  p50: number;
  p99: number;
}

/** Figures of one catch-up. */
export interface RoomCatchUp {
  relays: number;
  store: RoomStore;
  messages: number;
  /** Stored messages per second a member coming back receives, welcome to caught-up. */
  messagesPerSecond: number;
}

/** What `deno task bench --only rooms` measured. */
export interface RoomsResult {
  bodyBytes: number;
  fanout: RoomFanout[];
  catchUp: RoomCatchUp[];
  notes: string[];
}

/** A room of its own for each run: durable rosters outlive runs. */
const freshRoom = () => `bench-${crypto.randomUUID().slice(0, 8)}`;

/** A member speaking raw records. */
class RawMember {
  records: RelayRecord[] = [];
  onRecord: (record: RelayRecord) => void = () => {};
  memberId = 0;
  #channel: SecureChannel;

  private constructor(channel: SecureChannel) {
    this.#channel = channel;
    channel.onRecord = (bytes) => {
      const record = decodeRecord(bytes);
      if (record.type === "welcome") this.memberId = record.memberId;
      this.onRecord(record);
    };
    channel.onClose = () => {};
  }

  /** Joins; `listen` gets every record from the welcome on (a catch-up follows it at once). */
  static async join(
    server: Server,
    identity: Identity,
    room: string,
    nick: string,
    listen: (record: RelayRecord) => void = () => {},
  ): Promise<RawMember> {
    const socket = await openSocket({ host: server.host, port: server.port }, 10_000);
    const channel = await connectHandshake({
      socket,
      identity,
      verifyRelay: ({ fingerprint }) => {
        if (fingerprint !== server.fingerprint) throw new Error("unexpected relay key");
      },
      timeoutMs: 10_000,
    });
    const member = new RawMember(channel);
    const welcomed = new Promise<void>((resolve, reject) => {
      member.onRecord = (record) => {
        if (record.type === "welcome") resolve();
        if (record.type === "error") reject(new Error(record.message));
        listen(record);
      };
    });
    channel.start();
    const announcement = new RoomSession({ identity, room, nick }).announcement;
    channel.send(encodeRecord({ type: "join", announcement }));
    await welcomed;
    return member;
  }

  send(record: RelayRecord): void {
    this.#channel.send(encodeRecord(record));
  }

  close(): void {
    this.#channel.close();
  }
}

function body(bytes: number): Uint8Array {
  const message = crypto.getRandomValues(new Uint8Array(bytes));
  new DataView(message.buffer).setFloat64(0, performance.timeOrigin + performance.now());
  return message;
}

function sentAt(message: Uint8Array): number {
  return new DataView(message.buffer, message.byteOffset).getFloat64(0);
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

/**
 * One writer on the first relay, `members - 1` readers spread over the
 * relays; `messages` publishes with `window` unacknowledged at most.
 *
 * @example
 * ```ts
 * const result = await runRoomFanout({ relays: [server], store: "sqlite", members: 10, messages: 2000 });
 * ```
 */
export async function runRoomFanout(options: {
  relays: Server[];
  store: RoomStore;
  members: number;
  messages: number;
  window?: number;
  bodyBytes?: number;
}): Promise<RoomFanout> {
  const { relays, members, messages } = options;
  const window = options.window ?? 256;
  const bytes = options.bodyBytes ?? 200;
  const latencies: number[] = [];
  const readers: RawMember[] = [];
  const room = freshRoom();
  let delivered = 0;
  const expected = messages * (members - 1);
  let allDelivered!: () => void;
  const done = new Promise<void>((resolve) => allDelivered = resolve);
  for (let i = 1; i < members; i++) {
    const reader = await RawMember.join(
      relays[i % relays.length],
      generateIdentity(),
      room,
      `r${i}`,
      (record) => {
        if (record.type !== "deliver") return;
        latencies.push(performance.timeOrigin + performance.now() - sentAt(record.message));
        if (++delivered === expected) allDelivered();
      },
    );
    readers.push(reader);
  }
  const writer = await RawMember.join(relays[0], generateIdentity(), room, "writer");
  // Let presence settle across relays before timing.
  await new Promise((resolve) => setTimeout(resolve, relays.length > 1 ? 500 : 50));
  let acked = 0;
  let sent = 0;
  const started = performance.now();
  await new Promise<void>((resolve, reject) => {
    const pump = () => {
      while (sent < messages && sent - acked < window) {
        writer.send({ type: "publish", id: ++sent, message: body(bytes) });
      }
    };
    writer.onRecord = (record) => {
      if (record.type === "error") reject(new Error(record.message));
      if (record.type !== "ack") return;
      acked++;
      if (acked === messages) resolve();
      else pump();
    };
    pump();
  });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<void>((_, reject) =>
    timer = setTimeout(() => reject(new Error(`${delivered} of ${expected} deliveries`)), 60_000)
  );
  await Promise.race([done, timeout]);
  clearTimeout(timer);
  const seconds = (performance.now() - started) / 1000;
  for (const member of [writer, ...readers]) member.close();
  latencies.sort((a, b) => a - b);
  return {
    relays: relays.length,
    store: options.store,
    members,
    messages,
    deliveriesPerSecond: Math.round(expected / seconds),
    p50: Math.round(percentile(latencies, 0.5) * 100) / 100,
    p99: Math.round(percentile(latencies, 0.99) * 100) / 100,
  };
}

/**
 * A reader joins (going on the roster) and leaves; `messages` are stored
 * for it through the first relay; it comes back through the last relay and
 * the time from its join to `caught-up` is measured.
 *
 * @example
 * ```ts
 * const { messagesPerSecond } = await runRoomCatchUp({ relays: [server], store: "sqlite", messages: 10_000 });
 * ```
 */
export async function runRoomCatchUp(options: {
  relays: Server[];
  store: RoomStore;
  messages: number;
  bodyBytes?: number;
}): Promise<RoomCatchUp> {
  const { relays, messages } = options;
  const identity = generateIdentity();
  const room = freshRoom();
  (await RawMember.join(relays[0], identity, room, "away")).close();
  const writer = await RawMember.join(relays[0], generateIdentity(), room, "writer");
  let acked = 0;
  let sent = 0;
  await new Promise<void>((resolve, reject) => {
    const pump = () => {
      while (sent < messages && sent - acked < 256) {
        writer.send({ type: "publish", id: ++sent, message: body(options.bodyBytes ?? 200) });
      }
    };
    writer.onRecord = (record) => {
      if (record.type === "error") reject(new Error(record.message));
      if (record.type !== "ack") return;
      if (++acked === messages) resolve();
      else pump();
    };
    pump();
  });
  writer.close();
  const started = performance.now();
  let received = 0;
  let caughtUp!: () => void;
  const done = new Promise<void>((resolve) => caughtUp = resolve);
  const back = await RawMember.join(relays[relays.length - 1], identity, room, "away", (record) => {
    if (record.type === "deliver") received++;
    if (record.type === "caughtUp") caughtUp();
  });
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    done,
    new Promise<void>((_, reject) =>
      timer = setTimeout(() => reject(new Error(`caught up ${received} of ${messages}`)), 60_000)
    ),
  ]);
  clearTimeout(timer);
  const seconds = (performance.now() - started) / 1000;
  back.close();
  if (received !== messages) throw new Error(`caught up ${received} of ${messages} messages`);
  return {
    relays: relays.length,
    store: options.store,
    messages,
    messagesPerSecond: Math.round(messages / seconds),
  };
}
