/**
 * One room of the JetStream store on one relay: its view, kept current by
 * reading the room's log, and its writes. A write is an operation appended
 * to the room's log subject with JetStream's `Nats-Expected-Last-Subject-
 * Sequence` set to the last event this view applied, so it is stored only
 * if no other relay wrote in between; otherwise the view reads what the
 * others wrote and tries again. The stored event's place in the log is the
 * single point at which the operation takes effect, on every relay alike.
 *
 * Operations submitted while an event is on its way are sent together as
 * the next event (group commit). A call resolves once JetStream has
 * acknowledged the event, i.e. it is stored on the stream's replicas.
 * Reads first ask for the last event on the subject (one request) and apply
 * what this view has not seen, so each sees every write acknowledged before
 * it started.
 *
 * @module
 */

import type { JetStreamClient } from "@nats-io/jetstream";
import { toHex } from "../../core/bytes.ts";
import { type BodyCache, type LogReader } from "./nats_log_reader.ts";
import type { RoomSubjects, SnapshotStore } from "./nats_snapshots.ts";
import {
  decodeEvent,
  encodeEvent,
  EVENT_HEADER_BYTES,
  EVENT_ID_BYTES,
  opSize,
  type RoomEvent,
  type RoomOp,
} from "./room_events.ts";
import type { ItemMeta } from "./room_items.ts";
import { encodeSnapshot } from "./room_snapshot.ts";
import type { RoomLimits } from "./room_state.ts";
import { type OpResult, RoomView } from "./room_view.ts";
import { ATTEMPT_TIMEOUT_MS, retryable, retrying } from "./nats_retry.ts";
import { StoreError } from "./relay_store.ts";

/** What every room of one store shares. */
export interface RoomChannelContext {
  js: JetStreamClient;
  reader: LogReader;
  snapshots: SnapshotStore;
  bodies: BodyCache;
  limits: RoomLimits;
  now: () => number;
  /** How long a write keeps trying while NATS does not answer, ms. */
  timeoutMs: number;
  /** Largest event, bytes (below the server's largest message). */
  maxEventBytes: number;
  /** A snapshot is written after this many events. */
  snapshotEvery: number;
  /** Turns a NATS error into a one-line StoreError. */
  describe: (error: unknown) => StoreError;
  /** Keeps track of background work (snapshots) so that close can wait for it. */
  background: (task: Promise<unknown>) => void;
}

interface Pending {
  op: RoomOp;
  resolve: (result: OpResult) => void;
  reject: (error: unknown) => void;
}

/**
 * Runs async tasks one at a time, in call order.
 *
 * @example
 * ```ts
 * const lock = new Mutex();
 * await lock.run(async () => work());
 * ```
 */
export class Mutex {
  #tail: Promise<unknown> = Promise.resolve();

  /** Runs `task` after every task queued before it. @example `lock.run(() => refresh())` */
  run<T>(task: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(task);
    this.#tail = result.then(() => undefined, () => undefined);
    return result;
  }
}

/**
 * One room's view and writes (see the module comment).
 *
 * @example
 * ```ts
 * const channel = new RoomChannel(context, subjects);
 * const result = await channel.submit({ type: "group", from: 1, body });
 * ```
 */
export class RoomChannel {
  readonly subjects: RoomSubjects;
  #context: RoomChannelContext;
  #view = new RoomView();
  #loaded = false;
  #lock = new Mutex();
  #queue: Pending[] = [];
  #flushing = false;

  /** @example `new RoomChannel(context, subjects)` */
  constructor(context: RoomChannelContext, subjects: RoomSubjects) {
    this.#context = context;
    this.subjects = subjects;
  }

  /** True when no write is queued or on its way. @example `channel.idle` */
  get idle(): boolean {
    return !this.#flushing && this.#queue.length === 0;
  }

  /**
   * Runs `task` on the view once it holds every event stored so far, with
   * no event applied while it runs.
   *
   * @example
   * ```ts
   * const members = await channel.read((view) => view.state.memberCount);
   * ```
   */
  read<T>(task: (view: RoomView) => T): Promise<T> {
    return this.#lock.run(async () => {
      await this.#guard(() => retrying(() => this.#catchUp(), this.#context.timeoutMs));
      return task(this.#view);
    });
  }

  /**
   * Appends an operation to the room's log; resolves with its result once
   * stored.
   *
   * @example
   * ```ts
   * await channel.submit({ type: "ack", memberId: 2, seq: 40 });
   * ```
   */
  submit(op: RoomOp): Promise<OpResult> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ op, resolve, reject });
      if (this.#flushing) return;
      this.#flushing = true;
      this.#lock.run(() => this.#flush());
    });
  }

  /**
   * Appends `op` unless `settle` finds that the room decides it without a
   * change (a refusal, an acknowledgement that moves nothing): such an
   * outcome is returned only after the view was brought up to date, and no
   * event is written for it.
   *
   * @example
   * ```ts
   * await channel.write(op, (view) => settledWithoutChange(view.state, op, limits));
   * ```
   */
  async write(
    op: RoomOp,
    settle: (view: RoomView) => { result: OpResult } | undefined,
  ): Promise<OpResult> {
    // The local view may be behind: trust it for "go ahead" (the conditional append checks
    // that), but refresh it before answering without the log.
    if (this.#loaded && settle(this.#view) === undefined) return await this.submit(op);
    const settled = await this.read(settle);
    return settled !== undefined ? settled.result : await this.submit(op);
  }

  /**
   * Bodies of items planned from this room's view, from the cache or the
   * log; undefined for an item whose event is gone (deleted since).
   *
   * @example
   * ```ts
   * const bodies = await channel.bodies(items);
   * ```
   */
  async bodies(items: ItemMeta[]): Promise<(Uint8Array | undefined)[]> {
    const { bodies, reader } = this.#context;
    const fetched = new Map<string, Uint8Array>();
    const keep = (at: number, data: Uint8Array) => {
      decodeEvent(data).ops.forEach((op, index) => {
        if (op.type !== "group" && op.type !== "envelope") return;
        fetched.set(`${at}:${index}`, op.body);
        bodies.put(at, index, op.body);
      });
    };
    const missing = [
      ...new Set(items.filter((item) => !bodies.get(item.at, item.op)).map((item) => item.at)),
    ];
    await this.#guard(() =>
      retrying(async () => {
        if (missing.length <= 16) {
          const events = await Promise.all(missing.map((at) => reader.at(at)));
          for (const event of events) {
            if (event?.subject === this.subjects.log) keep(event.seq, event.data);
          }
        } else {
          const wanted = new Set(missing);
          const last = missing.reduce((a, b) => Math.max(a, b));
          for await (const event of reader.range(this.subjects.log, Math.min(...missing), last)) {
            if (wanted.has(event.seq)) keep(event.seq, event.data);
          }
        }
      }, this.#context.timeoutMs)
    );
    return items.map((item) =>
      bodies.get(item.at, item.op) ?? fetched.get(`${item.at}:${item.op}`)
    );
  }

  async #flush(): Promise<void> {
    try {
      while (this.#queue.length > 0) {
        const batch = this.#takeBatch();
        try {
          const results = await this.#guard(() => this.#commit(batch.map((p) => p.op)));
          batch.forEach((pending, i) => pending.resolve(results[i]));
        } catch (error) {
          for (const pending of batch) pending.reject(error);
        }
      }
    } finally {
      this.#flushing = false;
    }
  }

  #takeBatch(): Pending[] {
    let size = EVENT_HEADER_BYTES;
    let n = 0;
    while (n < this.#queue.length) {
      size += opSize(this.#queue[n].op);
      if (n > 0 && size > this.#context.maxEventBytes) break;
      n++;
    }
    return this.#queue.splice(0, n);
  }

  /** Publishes one event on the condition that nothing came after this view; retries. */
  async #commit(ops: RoomOp[]): Promise<OpResult[]> {
    const { js, now, limits, timeoutMs } = this.#context;
    await this.#load();
    const id = crypto.getRandomValues(new Uint8Array(EVENT_ID_BYTES));
    const deadline = Date.now() + timeoutMs;
    let wait = 50;
    for (let attempt = 0;; attempt++) {
      if (attempt > 10_000) {
        throw new StoreError(`room log ${this.subjects.log}: too many conflicts`);
      }
      const event: RoomEvent = { id, prev: this.#view.logSeq, time: now(), limits, ops };
      try {
        const ack = await js.publish(this.subjects.log, encodeEvent(event), {
          expect: { lastSubjectSequence: this.#view.logSeq },
          msgID: toHex(id),
          // Short tries: after a reconnect a request sent before it is never answered.
          timeout: Math.min(ATTEMPT_TIMEOUT_MS, Math.max(500, deadline - Date.now())),
        });
        if (ack.duplicate) {
          // An earlier attempt was stored; its acknowledgement was lost.
          const found = await this.#catchUp(id);
          if (found !== undefined) return found;
          throw new StoreError(`room log ${this.subjects.log}: a stored event went missing`);
        }
        return this.#applied(event, ack.seq);
      } catch (error) {
        if ((error as { code?: number }).code === 10071) {
          // Another relay wrote first (or our earlier attempt was stored): read and retry.
          const found = await this.#catchUp(id);
          if (found !== undefined) return found;
          continue;
        }
        if (!retryable(error) || Date.now() + wait > deadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, wait));
        wait = Math.min(wait * 2, 1_000);
        const found = await this.#catchUp(id).catch(() => undefined);
        if (found !== undefined) return found;
      }
    }
  }

  #applied(event: RoomEvent, seq: number): OpResult[] {
    const results = this.#view.apply(event, seq);
    this.#cacheOps(seq, event.ops);
    this.#maybeSnapshot(event.ops.some((op) => op.type === "prune"));
    return results;
  }

  async #load(): Promise<void> {
    if (this.#loaded) return;
    const snapshot = await this.#context.snapshots.read(this.subjects);
    this.#view = new RoomView();
    if (snapshot !== undefined) {
      this.#view.state = snapshot.room;
      this.#view.logSeq = snapshot.logSeq;
    }
    this.#loaded = true;
  }

  /**
   * Applies every event after the view's; returns the results of the event
   * with id `want` if it is among them.
   */
  async #catchUp(want?: Uint8Array): Promise<OpResult[] | undefined> {
    await this.#load();
    const { reader } = this.#context;
    let found: OpResult[] | undefined;
    let brokenAt = 0;
    for (let reloads = 0; reloads < 3; reloads++) {
      const last = await reader.lastSeq(this.subjects.log);
      if (last === this.#view.logSeq) return found;
      if (last < this.#view.logSeq) {
        throw new StoreError(
          `room log ${this.subjects.log} ends before what this relay applied; ` +
            "was the stream deleted? restart the relay",
        );
      }
      let broken = false;
      let applied = 0;
      for await (const message of reader.range(this.subjects.log, this.#view.logSeq + 1, last)) {
        const event = readEvent(message.seq, message.data, this.subjects.log);
        if (event.prev !== this.#view.logSeq) {
          if (brokenAt === message.seq) {
            // Still there after starting again from the snapshot: not a relay's event.
            throw new StoreError(
              `room log ${this.subjects.log} is broken at stream sequence ${message.seq} (the ` +
                `event follows ${event.prev}, not ${this.#view.logSeq}); only securechat relays ` +
                "may write to its stream",
            );
          }
          // Events this view missed were compacted away: start again from the snapshot.
          brokenAt = message.seq;
          broken = true;
          break;
        }
        const results = this.#applied(event, message.seq);
        applied++;
        if (want !== undefined && sameId(event.id, want)) found = results;
      }
      if (!broken && this.#view.logSeq < last) {
        // The last event is never purged: the read was cut short, so it is tried again.
        if (applied === 0) throw new StoreError(`timeout reading room log ${this.subjects.log}`);
        reloads--;
        continue;
      }
      if (!broken) return found;
      this.#loaded = false;
      await this.#load();
    }
    throw new StoreError(`room log ${this.subjects.log} keeps changing under this relay`);
  }

  #cacheOps(at: number, ops: RoomOp[]): void {
    ops.forEach((op, index) => {
      if (op.type === "group" || op.type === "envelope") {
        this.#context.bodies.put(at, index, op.body);
      }
    });
  }

  #maybeSnapshot(force: boolean): void {
    const view = this.#view;
    if (!force && view.eventsSinceSnapshot < this.#context.snapshotEvery) return;
    view.eventsSinceSnapshot = 0;
    const write = {
      bytes: encodeSnapshot(view.state, view.logSeq),
      logSeq: view.logSeq,
      oldestItemAt: view.state.items.first()?.at ?? Number.POSITIVE_INFINITY,
    };
    this.#context.background(
      this.#context.snapshots.write(this.subjects, write).catch(() => false),
    );
  }

  /** Runs a NATS call, turning its failures into one-line StoreErrors. */
  async #guard<T>(task: () => Promise<T>): Promise<T> {
    try {
      return await task();
    } catch (error) {
      throw this.#context.describe(error);
    }
  }
}

/** Decodes a log event; anything else on a room's log stops the room with one line. */
function readEvent(seq: number, data: Uint8Array, subject: string): RoomEvent {
  try {
    return decodeEvent(data);
  } catch (error) {
    throw new StoreError(
      `room log ${subject} holds an unreadable event at stream sequence ${seq} ` +
        `(${(error as Error).message}); only securechat relays may write to its stream`,
    );
  }
}

function sameId(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}
