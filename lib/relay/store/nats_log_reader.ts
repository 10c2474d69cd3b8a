/**
 * Reading a room's log subject from JetStream: the last event's sequence,
 * the events in a range of stream sequences (a few by direct requests, many
 * through a short-lived ordered consumer), and single events by sequence;
 * plus a byte-bounded cache of item bodies, so a catch-up soon after the
 * appends does not read the log again.
 *
 * @module
 */

import {
  DeliverPolicy,
  type JetStreamClient,
  type JetStreamManager,
  type MsgRequest,
} from "@nats-io/jetstream";

/** An event as read from the log. */
export interface LogMessage {
  seq: number;
  subject: string;
  data: Uint8Array;
}

/** Ranges up to this many stream sequences are read message by message. */
const DIRECT_RANGE = 32;

/** Messages per fetch of an ordered consumer. */
const FETCH_BATCH = 512;

/**
 * Reads one stream's subjects.
 *
 * @example
 * ```ts
 * const reader = new LogReader({ js, jsm, stream: "SECURECHAT_ROOMS", timeoutMs: 5_000 });
 * const last = await reader.lastSeq("securechat.room.log.b3Bz");
 * ```
 */
export class LogReader {
  #js: JetStreamClient;
  #jsm: JetStreamManager;
  #stream: string;
  #timeoutMs: number;

  /** @example `new LogReader({ js, jsm, stream, timeoutMs })` */
  constructor(options: {
    js: JetStreamClient;
    jsm: JetStreamManager;
    stream: string;
    timeoutMs: number;
  }) {
    this.#js = options.js;
    this.#jsm = options.jsm;
    this.#stream = options.stream;
    this.#timeoutMs = options.timeoutMs;
  }

  /** The last message on a subject, or undefined when it has none. @example `await reader.last(subject)` */
  async last(subject: string): Promise<LogMessage | undefined> {
    const message = await this.#jsm.streams.getMessage(this.#stream, { last_by_subj: subject });
    return message === null ? undefined : toLogMessage(message);
  }

  /** Stream sequence of the last message on a subject (0: none). @example `await reader.lastSeq(subject)` */
  async lastSeq(subject: string): Promise<number> {
    return (await this.last(subject))?.seq ?? 0;
  }

  /** The first message on a subject at or after stream sequence `from`. @example `await reader.next(subject, 1)` */
  async next(subject: string, from: number): Promise<LogMessage | undefined> {
    const message = await this.#jsm.streams.getMessage(this.#stream, nextBySubject(subject, from));
    return message === null ? undefined : toLogMessage(message);
  }

  /** The message at a stream sequence, if it is still there. @example `await reader.at(41)` */
  async at(seq: number): Promise<LogMessage | undefined> {
    const message = await this.#jsm.streams.getMessage(this.#stream, { seq });
    return message === null ? undefined : toLogMessage(message);
  }

  /**
   * The messages on `subject` with stream sequences in [from, to], in order.
   *
   * @example
   * ```ts
   * for await (const message of reader.range(subject, 1, 99)) apply(message);
   * ```
   */
  async *range(subject: string, from: number, to: number): AsyncGenerator<LogMessage> {
    if (to < from) return;
    if (to - from < DIRECT_RANGE) {
      let seq = from;
      while (seq <= to) {
        const message = await this.#jsm.streams.getMessage(
          this.#stream,
          nextBySubject(subject, seq),
        );
        if (message === null || message.seq > to) return;
        yield toLogMessage(message);
        seq = message.seq + 1;
      }
      return;
    }
    const consumer = await this.#js.consumers.get(this.#stream, {
      filter_subjects: subject,
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: from,
    });
    try {
      for (;;) {
        const batch = await consumer.fetch({ max_messages: FETCH_BATCH, expires: this.#timeoutMs });
        let got = 0;
        for await (const message of batch) {
          got++;
          if (message.seq > to) return;
          yield toLogMessage(message);
          if (message.seq === to) return;
        }
        // Nothing more arrived: what is missing up to `to` was purged meanwhile.
        if (got === 0) return;
      }
    } finally {
      await consumer.delete().catch(() => false);
    }
  }
}

/**
 * "The first message on `subject` at or after `seq`": a request the
 * server's message API takes since 2.9 but the client's types leave out.
 */
function nextBySubject(subject: string, seq: number): MsgRequest {
  return { seq, next_by_subj: subject } as unknown as MsgRequest;
}

/**
 * Copies the client's bytes (a Node `Buffer`, perhaps a view of a larger
 * one) into a plain `Uint8Array`, so that what the store keeps and hands
 * out is plain bytes that do not hold the client's buffers.
 */
function toLogMessage(message: { seq: number; subject: string; data: Uint8Array }): LogMessage {
  return { seq: message.seq, subject: message.subject, data: new Uint8Array(message.data) };
}

/**
 * Item bodies by (event stream sequence, operation index), kept up to a
 * byte budget and dropped oldest first.
 *
 * @example
 * ```ts
 * const cache = new BodyCache(32 << 20);
 * cache.put(41, 0, body);
 * cache.get(41, 0);
 * ```
 */
export class BodyCache {
  #entries = new Map<string, Uint8Array>();
  #bytes = 0;
  #budget: number;

  /** @example `new BodyCache(32 << 20)` */
  constructor(budget: number) {
    this.#budget = budget;
  }

  /** Keeps a body (a copy). @example `cache.put(41, 0, body)` */
  put(at: number, op: number, body: Uint8Array): void {
    if (body.length > this.#budget) return;
    const key = `${at}:${op}`;
    if (this.#entries.has(key)) return;
    this.#entries.set(key, new Uint8Array(body));
    this.#bytes += body.length;
    for (const [old, value] of this.#entries) {
      if (this.#bytes <= this.#budget) break;
      this.#entries.delete(old);
      this.#bytes -= value.length;
    }
  }

  /** A kept body. @example `cache.get(41, 0)` */
  get(at: number, op: number): Uint8Array | undefined {
    return this.#entries.get(`${at}:${op}`);
  }
}
