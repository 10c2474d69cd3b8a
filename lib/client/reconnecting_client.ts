/**
 * Keeps a member in its room across relay restarts: when the connection
 * drops it reconnects with exponential backoff, runs the full handshake
 * again (with the same relay check), rejoins with a fresh announcement and
 * sender key, and sends what was queued while it was away.
 *
 * It stops for good, with the reason, on a permanent refusal: a different
 * relay key, a client not on the relay's allow list, a nick that someone
 * else took meanwhile, another protocol version, a server that is not a
 * relay. Everything else (connection refused, a full room, a relay shutting
 * down) is retried with exponential backoff, each delay drawn at random
 * between half and all of its nominal value (so clients cut off together do
 * not come back together), capped at `maxDelayMs`; there is never more than
 * one attempt in flight.
 *
 * Nothing is lost silently: texts queued while disconnected are sent after
 * reconnecting or rejected when the queue is full; texts that were in flight
 * when the connection dropped reject, because the relay never acknowledged
 * them, and the caller reports them as not confirmed.
 *
 * @module
 */

import type { ChatClient, Delivery } from "./client.ts";
import { AuthenticationError, NetworkError, ProtocolError } from "../core/errors.ts";
import type { MemberInfo, RoomEvent } from "../e2e/room.ts";

/** Handlers a connection attempt must wire into the new {@linkcode ChatClient}. */
export interface ConnectionHandlers {
  onEvent: (event: RoomEvent) => void;
  onClose: (error?: Error) => void;
}

/** What {@linkcode ReconnectingClient} reports about its connection. */
export type ConnectionStatus =
  | { type: "disconnected"; error: Error; retryInMs: number }
  | { type: "retry-failed"; error: Error; retryInMs: number }
  | { type: "reconnected"; attempts: number; client: ChatClient };

/** Options for {@linkcode ReconnectingClient.start}. */
export interface ReconnectingClientOptions {
  /** Opens one connection and joins; must pass `handlers` to `ChatClient.connect`. */
  connect: (handlers: ConnectionHandlers) => Promise<ChatClient>;
  /** Room events from every connection, in order. */
  onEvent: (event: RoomEvent) => void;
  /** Connection status changes. */
  onStatus: (status: ConnectionStatus) => void;
  /** Called once when it stops for good: closed by the caller (no error) or a fatal error. */
  onEnd: (error?: Error) => void;
  /** Whether to reconnect after a loss; when false a loss ends it, like a plain client. */
  reconnect: boolean;
  /** Texts held while disconnected, at most. Default 10,000. */
  maxQueuedTexts?: number;
  /** First retry delay, before jitter. Default 500 ms. */
  initialDelayMs?: number;
  /** Longest retry delay. Default 10 s. */
  maxDelayMs?: number;
  /** Random numbers in [0, 1) for the jitter; default `Math.random`. */
  random?: () => number;
}

/**
 * Whether retrying after `error` is pointless: the relay would refuse the
 * same way, or is not the relay it should be.
 *
 * @example
 * ```ts
 * isPermanentFailure(new NickTakenError("nick taken")); // true
 * isPermanentFailure(new NetworkError("connection refused")); // false
 * ```
 */
export function isPermanentFailure(error: Error): boolean {
  return error instanceof AuthenticationError ||
    (error instanceof ProtocolError && error.permanent);
}

interface QueuedSend {
  texts: string[];
  resolve: (deliveries: Delivery[]) => void;
  reject: (error: Error) => void;
}

/**
 * A room membership that survives relay restarts.
 *
 * @example
 * ```ts
 * const member = await ReconnectingClient.start({
 *   connect: (handlers) => ChatClient.connect({ ...options, ...handlers }),
 *   onEvent: show,
 *   onStatus: (status) => console.error(status.type),
 *   onEnd: (error) => error && console.error(error.message),
 * });
 * await member.send(["still here"]);
 * ```
 */
export class ReconnectingClient {
  #options: ReconnectingClientOptions;
  #client?: ChatClient;
  /** The connection that was lost, until what it read is kept. */
  #previous?: Promise<void>;
  #durable = false;
  #queue: QueuedSend[] = [];
  #queuedTexts = 0;
  #closing = false;
  #ended = false;
  #timer?: ReturnType<typeof setTimeout>;

  private constructor(options: ReconnectingClientOptions) {
    this.#options = options;
  }

  /**
   * Connects for the first time; a failure here is thrown, not retried.
   *
   * @example
   * ```ts
   * const member = await ReconnectingClient.start(options);
   * ```
   */
  static async start(options: ReconnectingClientOptions): Promise<ReconnectingClient> {
    const member = new ReconnectingClient(options);
    member.#client = await options.connect(member.#handlers());
    member.#durable = member.#client.durable;
    return member;
  }

  /** The current connection, if any. @example `member.client?.members()` */
  get client(): ChatClient | undefined {
    return this.#client;
  }

  /** Whether a connection is up now (false while reconnecting). @example `member.connected` */
  get connected(): boolean {
    return this.#client !== undefined;
  }

  /** Whether the room (on the current or last connection) keeps messages for members away. @example `member.durable` */
  get durable(): boolean {
    return this.#durable;
  }

  /** The other members on the current connection. @example `member.members()` */
  members(): MemberInfo[] {
    return this.#client?.members() ?? [];
  }

  /** Sent texts not yet acknowledged, plus texts queued while disconnected. @example `member.pending` */
  get pending(): number {
    return (this.#client?.unacknowledged ?? 0) + this.#queuedTexts;
  }

  #handlers(): ConnectionHandlers {
    let open = true;
    return {
      onEvent: (event) => this.#options.onEvent(event),
      onClose: (error) => {
        if (!open) return;
        open = false;
        this.#previous = this.#client?.finished;
        this.#client = undefined;
        this.#lost(error);
      },
    };
  }

  #lost(error?: Error): void {
    if (this.#closing || this.#ended) return this.#end();
    const reason = error ?? new NetworkError("the relay closed the connection");
    if (!this.#options.reconnect || isPermanentFailure(reason)) return this.#end(reason);
    const delay = this.#delay(0);
    this.#options.onStatus({ type: "disconnected", error: reason, retryInMs: delay });
    this.#schedule(1, delay);
  }

  /** The wait before retry `attempt + 1`: nominal `initial * 2^attempt` up to the cap, jittered. */
  #delay(attempt: number): number {
    const initial = this.#options.initialDelayMs ?? 500;
    const max = this.#options.maxDelayMs ?? 10_000;
    const nominal = Math.min(max, initial * 2 ** Math.min(attempt, 30));
    const random = this.#options.random ?? Math.random;
    return Math.round(nominal / 2 + random() * (nominal / 2));
  }

  #schedule(attempt: number, delay: number): void {
    // One chain of attempts at a time, whatever reported the failure.
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#retry(attempt), delay);
  }

  async #retry(attempt: number): Promise<void> {
    if (this.#closing) return this.#end();
    try {
      // The last connection's state is on disk before the next one loads it.
      await this.#previous;
      this.#client = await this.#options.connect(this.#handlers());
      this.#durable = this.#client.durable;
    } catch (error) {
      if (isPermanentFailure(error as Error)) {
        // A different relay key, a refusal that would repeat: stop, and say why.
        this.#failQueue(error as Error);
        return this.#end(error as Error);
      }
      const delay = this.#delay(attempt);
      this.#options.onStatus({ type: "retry-failed", error: error as Error, retryInMs: delay });
      this.#schedule(attempt + 1, delay);
      return;
    }
    if (this.#closing) {
      await this.#client.close();
      return;
    }
    this.#options.onStatus({ type: "reconnected", attempts: attempt, client: this.#client });
    this.#flushQueue();
  }

  #flushQueue(): void {
    const queued = this.#queue.splice(0);
    this.#queuedTexts = 0;
    for (const item of queued) this.send(item.texts).then(item.resolve, item.reject);
  }

  #failQueue(error: Error): void {
    for (const item of this.#queue.splice(0)) item.reject(error);
    this.#queuedTexts = 0;
  }

  #end(error?: Error): void {
    if (this.#ended) return;
    this.#ended = true;
    clearTimeout(this.#timer);
    this.#failQueue(error ?? new NetworkError("closed before these could be sent"));
    this.#options.onEnd(error);
  }

  /**
   * Sends texts now, or queues them until the next connection. Resolves
   * with the recipients of each group message once the relay acknowledged
   * it; rejects if the queue is full, the connection drops before the
   * acknowledgement, or the member stops for good.
   *
   * @example
   * ```ts
   * await member.send(["line"]);
   * ```
   */
  send(texts: string[]): Promise<Delivery[]> {
    if (this.#ended) return Promise.reject(new NetworkError("no longer connected"));
    if (this.#client) return this.#client.send(texts);
    const limit = this.#options.maxQueuedTexts ?? 10_000;
    if (this.#queuedTexts + texts.length > limit) {
      return Promise.reject(
        new NetworkError(`disconnected, and ${limit} lines are already waiting to be sent`),
      );
    }
    this.#queuedTexts += texts.length;
    return new Promise((resolve, reject) => this.#queue.push({ texts, resolve, reject }));
  }

  /**
   * Sends a direct message on the current connection. Unlike group texts it
   * is not queued while disconnected (the recipient's member id would not
   * survive a rejoin): it throws {@linkcode NetworkError} then.
   *
   * @example
   * ```ts
   * member.sendDirect(bob.memberId, "just for you");
   * ```
   */
  sendDirect(memberId: number, text: string): void {
    if (this.#client === undefined) {
      throw new NetworkError("not connected to the relay (reconnecting); try again in a moment");
    }
    this.#client.sendDirect(memberId, text);
  }

  /**
   * Renames this member in a durable room (see {@linkcode ChatClient.rename});
   * later reconnections use the new nick only if the caller's `connect` does.
   *
   * @example
   * ```ts
   * member.rename("alicia");
   * ```
   */
  rename(nick: string): void {
    if (this.#client === undefined) throw new NetworkError("not connected to the relay");
    this.#client.rename(nick);
  }

  /**
   * Leaves a durable room for good (see {@linkcode ChatClient.leave}) and
   * stops reconnecting.
   *
   * @example
   * ```ts
   * await member.leave();
   * ```
   */
  async leave(): Promise<void> {
    if (this.#client === undefined) throw new NetworkError("not connected to the relay");
    this.#closing = true;
    clearTimeout(this.#timer);
    await this.#client.leave();
  }

  /**
   * Stops reconnecting and closes the current connection.
   *
   * @example
   * ```ts
   * await member.close();
   * ```
   */
  async close(): Promise<void> {
    this.#closing = true;
    clearTimeout(this.#timer);
    if (this.#client) await this.#client.close();
    else this.#end();
  }
}
