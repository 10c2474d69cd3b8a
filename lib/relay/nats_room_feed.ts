/**
 * A {@linkcode RoomFeed} on core NATS: how relays that share one store on
 * NATS JetStream (store/nats_store.ts) tell each other about rooms. Events
 * go on one subject per room, `<prefix>.feed.room.<room key>`; who is online
 * where is asked on `<prefix>.feed.who.<room key>` (every relay with members
 * in the room answers within 200 ms); each relay says it is alive on
 * `<prefix>.feed.alive` every second, and the members of a relay not heard
 * for 4 s are reported offline (`disconnected`). Every message is one JSON
 * object, checked field by field before use (PROTOCOL.md, "Relays sharing
 * one store"); anything else is dropped and counted.
 *
 * Core NATS delivers at most once: a lost `appended` only delays delivery
 * to another relay's members until the next item of the room, since items
 * themselves live in JetStream and are read from there.
 *
 * @module
 */

import type { Msg, NatsConnection, Subscription } from "@nats-io/nats-core";
import { fromBase64, toBase64 } from "../core/bytes.ts";
import type { FeedEvent, FeedListener, FeedOfflineReason, RoomFeed } from "./room_feed.ts";
import { roomKey } from "./store/nats_store.ts";

/** How often a relay says it is alive, ms. */
export const ALIVE_INTERVAL_MS = 1_000;
/** A relay not heard for this long has its members reported offline, ms. */
export const ALIVE_TIMEOUT_MS = 4_000;
/** How long `online(room)` waits for the other relays' answers, ms. */
export const WHO_WAIT_MS = 200;
/** Largest feed message accepted, bytes (a direct envelope plus its fields). */
export const MAX_FEED_MESSAGE_BYTES = 400 * 1024;

const MAX_ORIGIN_LENGTH = 64;
const MAX_U32 = 0xffff_ffff;
const REASONS: readonly FeedOfflineReason[] = ["disconnected", "left", "removed"];
const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** Options of {@linkcode NatsRoomFeed.open}. */
export interface NatsRoomFeedOptions {
  /** An open connection (the store's); left open by close(). */
  connection: NatsConnection;
  /** Subject prefix, as the store's (default `securechat`). */
  prefix?: string;
  /** This relay's name in the feed; default a random one. */
  origin?: string;
  /** Told about each message dropped as malformed (no content). */
  onRejected?: (why: string) => void;
}

/**
 * Relays' room feed on NATS.
 *
 * @example
 * ```ts
 * const feed = NatsRoomFeed.open({ connection: nc });
 * const stop = feed.subscribe("ops", (event) => console.log(event.type));
 * await feed.publish({ type: "appended", room: "ops", seq: 7, origin: feed.origin });
 * ```
 */
export class NatsRoomFeed implements RoomFeed {
  readonly origin: string;
  #nc: NatsConnection;
  #prefix: string;
  #onRejected: (why: string) => void;
  #rooms = new Map<string, { listeners: Set<FeedListener>; subscription: Subscription }>();
  /** Members online here, as this relay announced them: room → ids. */
  #here = new Map<string, Set<number>>();
  /** Members heard online elsewhere: origin → room → ids. */
  #elsewhere = new Map<string, Map<string, Set<number>>>();
  #lastHeard = new Map<string, number>();
  #timer: ReturnType<typeof setInterval>;
  #system: Subscription[];
  #closed = false;
  /** Messages dropped as malformed so far. */
  rejected = 0;

  private constructor(options: NatsRoomFeedOptions) {
    this.#nc = options.connection;
    this.#prefix = options.prefix ?? "securechat";
    this.origin = options.origin ?? `relay-${crypto.randomUUID().slice(0, 12)}`;
    if (this.origin.length > MAX_ORIGIN_LENGTH) throw new RangeError("origin is too long");
    this.#onRejected = options.onRejected ?? (() => {});
    this.#system = [
      this.#nc.subscribe(`${this.#prefix}.feed.alive`, {
        callback: (_error, msg) => this.#alive(msg),
      }),
      this.#nc.subscribe(`${this.#prefix}.feed.who.*`, {
        callback: (_error, msg) => this.#who(msg),
      }),
    ];
    this.#timer = setInterval(() => this.#tick(), ALIVE_INTERVAL_MS);
  }

  /** Starts a feed on an open NATS connection. @example `NatsRoomFeed.open({ connection })` */
  static open(options: NatsRoomFeedOptions): NatsRoomFeed {
    return new NatsRoomFeed(options);
  }

  publish(event: FeedEvent): Promise<void> {
    if (this.#closed || this.#nc.isClosed()) {
      return Promise.reject(new Error(`room feed ${this.origin} is closed`));
    }
    if (event.type === "online" || event.type === "offline") {
      const ids = this.#here.get(event.room) ?? new Set<number>();
      if (event.type === "online") ids.add(event.memberId);
      else ids.delete(event.memberId);
      if (ids.size === 0) this.#here.delete(event.room);
      else this.#here.set(event.room, ids);
    }
    try {
      this.#nc.publish(this.#roomSubject(event.room), encodeFeedEvent(event));
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(error);
    }
  }

  subscribe(room: string, listener: FeedListener): () => void {
    let entry = this.#rooms.get(room);
    if (entry === undefined) {
      const listeners = new Set<FeedListener>();
      const subscription = this.#nc.subscribe(this.#roomSubject(room), {
        callback: (_error, msg) => this.#heard(room, msg),
      });
      entry = { listeners, subscription };
      this.#rooms.set(room, entry);
    }
    const listeners = entry.listeners;
    listeners.add(listener);
    return () => {
      listeners.delete(listener);
      if (listeners.size === 0 && this.#rooms.get(room)?.listeners === listeners) {
        this.#rooms.get(room)!.subscription.unsubscribe();
        this.#rooms.delete(room);
      }
    };
  }

  async online(room: string): Promise<Map<number, string>> {
    const online = new Map<number, string>();
    if (this.#closed) return online;
    const replies = await this.#nc.requestMany(
      `${this.#prefix}.feed.who.${roomKey(room)}`,
      encoder.encode(JSON.stringify({ v: 1, origin: this.origin })),
      { strategy: "timer", maxWait: WHO_WAIT_MS },
    ).catch(() => undefined);
    if (replies === undefined) return online;
    for await (const reply of replies) {
      const answer = decodeWho(reply.data);
      if (answer === undefined) {
        this.#rejected("a presence answer");
        continue;
      }
      if (answer.origin === this.origin) continue;
      for (const id of answer.members) online.set(id, answer.origin);
      this.#remember(answer.origin, room, answer.members);
    }
    return online;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    for (const { subscription } of this.#rooms.values()) subscription.unsubscribe();
    for (const subscription of this.#system) subscription.unsubscribe();
    this.#rooms.clear();
    await this.#nc.flush().catch(() => {});
  }

  #roomSubject(room: string): string {
    return `${this.#prefix}.feed.room.${roomKey(room)}`;
  }

  #heard(room: string, msg: Msg): void {
    const event = decodeFeedEvent(msg.data);
    if (event === undefined || event.room !== room) {
      this.#rejected("a room event");
      return;
    }
    if (event.origin === this.origin) return;
    this.#lastHeard.set(event.origin, Date.now());
    if (event.type === "online") this.#remember(event.origin, room, [event.memberId]);
    if (event.type === "offline") {
      this.#elsewhere.get(event.origin)?.get(room)?.delete(event.memberId);
    }
    for (const listener of [...(this.#rooms.get(room)?.listeners ?? [])]) listener(event);
  }

  #remember(origin: string, room: string, ids: number[]): void {
    this.#lastHeard.set(origin, Date.now());
    let rooms = this.#elsewhere.get(origin);
    if (rooms === undefined) this.#elsewhere.set(origin, rooms = new Map());
    let set = rooms.get(room);
    if (set === undefined) rooms.set(room, set = new Set());
    for (const id of ids) set.add(id);
  }

  #alive(msg: Msg): void {
    const origin = decodeAlive(msg.data);
    if (origin === undefined) {
      this.#rejected("an alive message");
      return;
    }
    if (origin !== this.origin) this.#lastHeard.set(origin, Date.now());
  }

  #who(msg: Msg): void {
    const key = msg.subject.slice(`${this.#prefix}.feed.who.`.length);
    for (const [room, ids] of this.#here) {
      if (roomKey(room) !== key || ids.size === 0) continue;
      msg.respond(encoder.encode(JSON.stringify({ v: 1, origin: this.origin, members: [...ids] })));
      return;
    }
  }

  /** Says this relay is alive; reports the members of relays gone silent as offline. */
  #tick(): void {
    if (this.#closed || this.#nc.isClosed()) return;
    try {
      this.#nc.publish(
        `${this.#prefix}.feed.alive`,
        encoder.encode(JSON.stringify({ v: 1, origin: this.origin })),
      );
    } catch {
      // Reconnecting: the next tick tries again.
    }
    const now = Date.now();
    for (const [origin, rooms] of this.#elsewhere) {
      if (now - (this.#lastHeard.get(origin) ?? 0) < ALIVE_TIMEOUT_MS) continue;
      this.#elsewhere.delete(origin);
      this.#lastHeard.delete(origin);
      for (const [room, ids] of rooms) {
        for (const memberId of ids) {
          const event: FeedEvent = {
            type: "offline",
            room,
            memberId,
            reason: "disconnected",
            origin,
          };
          for (const listener of [...(this.#rooms.get(room)?.listeners ?? [])]) listener(event);
        }
      }
    }
  }

  #rejected(what: string): void {
    this.rejected++;
    this.#onRejected(`dropped ${what} on the room feed: malformed`);
  }
}

/**
 * The bytes of a feed event: one JSON object with `v` 1, the event's fields,
 * and for `direct` the envelope in standard base64.
 *
 * @example
 * ```ts
 * encodeFeedEvent({ type: "appended", room: "ops", seq: 3, origin: "a" });
 * ```
 */
export function encodeFeedEvent(event: FeedEvent): Uint8Array {
  const body = event.type === "direct" ? { ...event, envelope: toBase64(event.envelope) } : event;
  return encoder.encode(JSON.stringify({ v: 1, ...body }));
}

/**
 * Decodes and checks a feed event; undefined for anything malformed.
 *
 * @example
 * ```ts
 * decodeFeedEvent(encodeFeedEvent(event)); // the same event
 * ```
 */
export function decodeFeedEvent(bytes: Uint8Array): FeedEvent | undefined {
  const value = parse(bytes);
  if (value === undefined || value.v !== 1) return undefined;
  const { type, room, origin } = value;
  if (!isName(room) || !isOrigin(origin)) return undefined;
  switch (type) {
    case "appended":
      return isSeq(value.seq) ? { type, room, seq: value.seq, origin } : undefined;
    case "online":
    case "renamed":
      return isId(value.memberId) ? { type, room, memberId: value.memberId, origin } : undefined;
    case "offline":
      return isId(value.memberId) && REASONS.includes(value.reason as FeedOfflineReason)
        ? {
          type,
          room,
          memberId: value.memberId,
          reason: value.reason as FeedOfflineReason,
          origin,
        }
        : undefined;
    case "acked":
      return isId(value.memberId) && isSeq(value.seq)
        ? { type, room, memberId: value.memberId, seq: value.seq, origin }
        : undefined;
    case "direct": {
      if (!isId(value.from) || !isId(value.to) || typeof value.envelope !== "string") {
        return undefined;
      }
      let envelope: Uint8Array;
      try {
        envelope = fromBase64(value.envelope);
      } catch {
        return undefined;
      }
      return { type, room, from: value.from, to: value.to, envelope, origin };
    }
    default:
      return undefined;
  }
}

function decodeWho(bytes: Uint8Array): { origin: string; members: number[] } | undefined {
  const value = parse(bytes);
  if (value === undefined || value.v !== 1 || !isOrigin(value.origin)) return undefined;
  const members = value.members;
  if (!Array.isArray(members) || members.length > 100_000 || !members.every(isId)) {
    return undefined;
  }
  return { origin: value.origin, members: members as number[] };
}

function decodeAlive(bytes: Uint8Array): string | undefined {
  const value = parse(bytes);
  return value !== undefined && value.v === 1 && isOrigin(value.origin) ? value.origin : undefined;
}

function parse(bytes: Uint8Array): Record<string, unknown> | undefined {
  if (bytes.length > MAX_FEED_MESSAGE_BYTES) return undefined;
  try {
    const value = JSON.parse(decoder.decode(bytes));
    return typeof value === "object" && value !== null && !Array.isArray(value)
      ? value as Record<string, unknown>
      : undefined;
  } catch {
    return undefined;
  }
}

function isName(value: unknown): value is string {
  if (typeof value !== "string" || !value.isWellFormed()) return false;
  const length = encoder.encode(value).length;
  return length >= 1 && length <= 255;
}

function isOrigin(value: unknown): value is string {
  return typeof value === "string" && value.length >= 1 && value.length <= MAX_ORIGIN_LENGTH;
}

function isId(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 1 && (value as number) <= MAX_U32;
}

function isSeq(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}
