/**
 * A chat client: connects to a relay, authenticates it before revealing
 * anything, joins one room and runs that room's end-to-end session.
 *
 * @module
 */

import { connectHandshake, type SecureChannel } from "../transport/channel.ts";
import type { ByteStream } from "../transport/byte_stream.ts";
import {
  DEFAULT_CONNECT_TIMEOUT_MS,
  openSocket,
  openTcpStream,
  type RelayAddress,
} from "../transport/tcp.ts";
import {
  AuthenticationError,
  NetworkError,
  NickTakenError,
  ProtocolError,
} from "../core/errors.ts";
import { generateIdentity, type Identity } from "../identity/identity.ts";
import {
  decodeRecord,
  DirectFailure,
  encodeRecord,
  RelayErrorCode,
  type RelayRecord,
} from "../transport/records.ts";
import { type MemberInfo, type RoomEvent, RoomSession } from "../e2e/room.ts";
import { MAX_TEXT_BYTES } from "../e2e/content.ts";
import { utf8 } from "../core/bytes.ts";
import type { ClientStore } from "./client_store.ts";
import { RoomKeeper } from "./room_keeper.ts";
import { type Delivery, Publisher } from "./publisher.ts";

export type { Delivery } from "./publisher.ts";

export { DEFAULT_CONNECT_TIMEOUT_MS, openSocket, type RelayAddress };

/** Bytes of text packed into one group message at most. */
export const MAX_BATCH_TEXT_BYTES = 128 * 1024;
/** A direct-failed answer this soon after a direct text to that member is about the text. */
const DIRECT_FAILURE_WINDOW_MS = 10_000;
/** How often the room session is asked what time alone reveals. */
const TICK_MS = 1_000;
/** The relay's stock of one-time prekeys, before it says: no top-up until it does. */
const ONE_TIME_PREKEYS_UNKNOWN = Number.MAX_SAFE_INTEGER;
/** How long close() lets messages being prepared go out. */
const CLOSE_WAIT_MS = 5_000;
/** Acknowledge stored items read at most this often... */
const ACK_DELAY_MS = 100;
/** ...or after this many. */
const ACK_EVERY = 256;

/**
 * Completes a handshake with a relay using a throwaway identity and returns
 * the relay's fingerprint, like `ssh-keyscan`.
 *
 * @example
 * ```ts
 * const fingerprint = await fetchRelayFingerprint({ host: "127.0.0.1", port: 7878 });
 * ```
 */
export async function fetchRelayFingerprint(
  address: RelayAddress & { timeoutMs?: number },
): Promise<string> {
  const stream = await openTcpStream(address, address.timeoutMs);
  let relayFingerprint = "";
  const channel = await connectHandshake({
    stream,
    identity: generateIdentity(),
    verifyRelay: ({ fingerprint }) => {
      relayFingerprint = fingerprint;
    },
    timeoutMs: address.timeoutMs,
  });
  channel.destroy();
  return relayFingerprint;
}

/** Options for {@linkcode ChatClient.connect}. */
export interface ChatClientOptions extends RelayAddress {
  /** This member's identity. */
  identity: Identity;
  /** Room to join. */
  room: string;
  /** Nick to use in the room. */
  nick: string;
  /**
   * Checks the relay's identity before anything identifying is sent; throw to abort.
   * `remoteAddress` and `remotePort` are the address actually connected to (what the
   * name resolved to), for checks that follow ssh's CheckHostIP.
   */
  verifyRelay: (
    relay: {
      publicKey: Uint8Array;
      fingerprint: string;
      remoteAddress?: string;
      remotePort?: number;
    },
  ) => void | Promise<void>;
  /** Whom to share keys with and accept messages from; default: everyone. */
  isTrusted?: (member: { nick: string; fingerprint: string }) => boolean;
  /** Receives every room event, in order, from the welcome on. */
  onEvent: (event: RoomEvent) => void;
  /** Called once when the connection ends, with the reason unless it was closed by {@linkcode ChatClient.close}. */
  onClose?: (error?: Error) => void;
  /** Deadline for connecting, for the handshake and for the welcome. Default 10 s. */
  timeoutMs?: number;
  /**
   * Opens the connection to the relay; default: TCP to `host:port`. A
   * browser passes a WebSocket opener (`openWebSocketStream`); `host` and
   * `port` then only name the relay.
   */
  openStream?: (timeoutMs: number) => Promise<ByteStream>;
  /**
   * Where a durable room's state, this identity's prekeys and the history
   * are kept (encrypted). Without one, a durable room still works for this
   * connection, but nothing read or sent survives it.
   */
  store?: ClientStore;
  /** Keep received and sent messages in `store` (default true). */
  history?: boolean;
}

/** A request to the relay waiting for its answer. */
interface Pending {
  resolve: (record: RelayRecord) => void;
  reject: (error: Error) => void;
}

/**
 * A joined member of one room.
 *
 * @example
 * ```ts
 * const client = await ChatClient.connect({
 *   host: "127.0.0.1", port: 7878, identity, room: "ops", nick: "alice",
 *   verifyRelay: () => {}, onEvent: (event) => console.log(event.type),
 * });
 * await client.send(["deploy done"]);
 * await client.close();
 * ```
 */
export class ChatClient {
  #channel: SecureChannel;
  #session: RoomSession;
  #options: ChatClientOptions;
  #keeper: RoomKeeper;
  #nextRequestId = 1;
  /** Publishes, stored envelopes, prekey requests and read watches, by id. */
  #pending = new Map<number, Pending>();
  #publisher: Publisher;
  #ackTimer?: ReturnType<typeof setTimeout>;
  #unacknowledgedReads = 0;
  /**
   * Events of stored-stream records that arrived before the join settled:
   * the records are handled at once (in the relay's order, so a key a member
   * re-sends as the join settles cannot overtake what was stored under its
   * earlier iterations), their events shown right after the join.
   */
  #early?: RoomEvent[] = [];
  #closing = false;
  /** The latest prekey upload, kept then sent: close() waits for it, or a brief join offers none. */
  #prekeyUpload: Promise<void> = Promise.resolve();
  /** Set once connect() has resolved; before that, a failure belongs to connect() alone. */
  #joined = false;
  #closed: Promise<void>;
  /** When this client last sent a direct text to each member, to report a failed one. */
  #directTextsSent = new Map<number, number>();
  /** Reports what time alone reveals (members that never answered, keys that never came). */
  #ticker?: ReturnType<typeof setInterval>;

  private constructor(
    channel: SecureChannel,
    session: RoomSession,
    keeper: RoomKeeper,
    options: ChatClientOptions,
  ) {
    this.#channel = channel;
    this.#session = session;
    this.#keeper = keeper;
    this.#options = options;
    this.#publisher = new Publisher({
      session,
      keeper,
      link: {
        send: (record) => this.#channel.send(encodeRecord(record)),
        request: (make) => this.#request(make),
        closed: () => this.#channel.closed,
        onEvent: (event) => options.onEvent(event),
      },
    });
    let markClosed: () => void;
    this.#closed = new Promise((resolve) => markClosed = resolve);
    channel.onClose = (error) => {
      clearInterval(this.#ticker);
      clearTimeout(this.#ackTimer);
      const reason = error ??
        (this.#closing ? undefined : new NetworkError("the relay closed the connection"));
      for (const pending of this.#pending.values()) {
        pending.reject(
          reason ?? new NetworkError("connection closed before the relay acknowledged"),
        );
      }
      this.#pending.clear();
      // What was shown is kept before the next connection loads the state: the relay sends again
      // what was not acknowledged yet, and the kept state makes those items "already read".
      const kept = this.#joined && this.#session.durable
        ? this.#keeper.save(this.#session).catch(() => {})
        : Promise.resolve();
      // A join that failed rejects connect(); reporting it as a lost connection too would make a
      // reconnecting caller schedule a second retry for the same failure.
      if (this.#joined) options.onClose?.(reason);
      void kept.then(markClosed);
    };
  }

  /**
   * Connects, authenticates the relay, joins the room and resolves once the
   * relay has welcomed this member.
   *
   * @example
   * ```ts
   * const client = await ChatClient.connect(options);
   * ```
   */
  static async connect(options: ChatClientOptions): Promise<ChatClient> {
    const timeoutMs = options.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    const stream = options.openStream
      ? await options.openStream(timeoutMs)
      : await openTcpStream(options, timeoutMs);
    const channel = await connectHandshake({
      stream,
      identity: options.identity,
      verifyRelay: (relay) =>
        options.verifyRelay({
          ...relay,
          remoteAddress: stream.remoteHost,
          remotePort: stream.remotePort,
        }),
      timeoutMs,
    });
    let keeper: RoomKeeper;
    try {
      keeper = await RoomKeeper.open({
        store: options.store,
        history: options.history,
        relay: channel.remoteFingerprint,
        room: options.room,
        nick: options.nick,
        identity: options.identity,
      });
    } catch (error) {
      channel.destroy();
      throw error;
    }
    const session = new RoomSession({
      identity: options.identity,
      room: options.room,
      nick: options.nick,
      isTrusted: options.isTrusted,
      saved: keeper.saved,
      prekeys: keeper.prekeys,
    });
    const client = new ChatClient(channel, session, keeper, options);
    await client.#join(timeoutMs);
    // What the relay kept for this member is handled after the caller has seen the join.
    setTimeout(() => client.#drainEarly(), 0);
    return client;
  }

  /**
   * Sends the join and resolves once the relay has welcomed this member and
   * every member already there has completed its pairwise handshake or been
   * reported as not answering, so that a message sent next reaches everyone
   * who is really here.
   */
  #join(timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      let welcomed = false;
      const timer = setTimeout(() => {
        this.#channel.destroy();
        reject(new ProtocolError(`the relay did not answer the join within ${timeoutMs / 1000} s`));
      }, timeoutMs);
      const settle = (error?: Error) => {
        clearTimeout(timer);
        if (error) {
          this.#channel.destroy();
          reject(error);
        } else {
          this.#joined = true;
          resolve();
        }
      };
      const settleWhenReady = () => {
        if (welcomed && this.#session.settled) {
          this.#afterSettled = undefined;
          settle();
        }
      };
      this.#channel.onRecord = (bytes) => {
        let record: RelayRecord;
        try {
          record = decodeRecord(bytes);
        } catch (error) {
          settle(
            new ProtocolError(`the relay sent a malformed record: ${(error as Error).message}`),
          );
          return;
        }
        if (record.type === "error") {
          settle(relayRefusal(record.code, record.message));
          return;
        }
        if (record.type !== "welcome") {
          settle(new ProtocolError(`the relay sent ${record.type} before its welcome`));
          return;
        }
        welcomed = true;
        // From here the room settles on its own clock: within a few seconds every member
        // already there has answered or been reported as not answering.
        clearTimeout(timer);
        this.#channel.onRecord = (next) => this.#receive(next);
        this.#afterSettled = settleWhenReady;
        this.#ticker = setInterval(() => this.#tick(), TICK_MS);
        this.#apply(record);
        // A new signed prekey when due; one-time prekeys when the relay says it is low
        // (prekey-count, which follows a durable welcome whenever fewer than 20 are left).
        if (this.#session.durable) this.#uploadPrekeys(ONE_TIME_PREKEYS_UNKNOWN);
        settleWhenReady();
      };
      const closeHandler = this.#channel.onClose;
      this.#channel.onClose = (error) => {
        settle(error ?? new NetworkError("the relay closed the connection before the welcome"));
        closeHandler(error);
      };
      this.#channel.send(encodeRecord({ type: "join", announcement: this.#session.announcement }));
      this.#channel.start();
    });
  }

  /** While joining: resolves the join once the room has settled. */
  #afterSettled?: () => void;

  #tick(): void {
    const { send, events } = this.#session.tick();
    this.#emit(send, events);
  }

  #receive(bytes: Uint8Array): void {
    let record: RelayRecord;
    try {
      record = decodeRecord(bytes);
    } catch (error) {
      this.#channel.destroy(
        new ProtocolError(`the relay sent a malformed record: ${(error as Error).message}`),
      );
      return;
    }
    switch (record.type) {
      case "ack":
      case "prekeys":
      case "read": {
        const pending = this.#pending.get(record.id);
        if (pending) {
          this.#pending.delete(record.id);
          pending.resolve(record);
        }
        return;
      }
      case "prekeyCount":
        this.#uploadPrekeys(record.count);
        return;
      case "deliver":
      case "storedEnvelope":
      case "gap":
      case "caughtUp":
        this.#apply(record, this.#early);
        return;
      case "error":
        this.#channel.destroy(relayRefusal(record.code, record.message));
        return;
      case "directFailed": {
        // The relay's answer to a direct it could not deliver (PROTOCOL.md, relay records).
        // Handshakes and keys to a member who just left do not matter (its leave notice says
        // it is gone); a text the user sent it does.
        const sentAt = this.#directTextsSent.get(record.to);
        if (
          record.reason !== DirectFailure.self &&
          (sentAt === undefined || performance.now() - sentAt > DIRECT_FAILURE_WINDOW_MS)
        ) {
          return;
        }
        const member = this.#session.members().find((m) => m.memberId === record.to);
        const whom = member ? member.nick : `member ${record.to}`;
        const why = record.reason === DirectFailure.self
          ? "that is you"
          : "not in the room (it left)";
        this.#options.onEvent({
          type: "warning",
          code: "unknown-member",
          member,
          text: `a direct message to ${whom} was not delivered: ${why}`,
        });
        return;
      }
      default:
        this.#apply(record);
    }
  }

  /** Handles a record; with `hold`, its events wait there instead of being shown. */
  #apply(record: RelayRecord, hold?: RoomEvent[]): void {
    const before = this.#session.lastSeq;
    const { send, events } = this.#session.handle(record);
    this.#emit(send, events, hold);
    if (this.#session.lastSeq > before) this.#readStored(this.#session.lastSeq - before);
  }

  #emit(send: RelayRecord[], events: RoomEvent[], hold?: RoomEvent[]): void {
    for (const out of send) this.#channel.send(encodeRecord(out));
    this.#keeper.noteEvents(events);
    if (hold !== undefined) hold.push(...events);
    else for (const event of events) this.#options.onEvent(event);
    this.#afterSettled?.();
  }

  #drainEarly(): void {
    const early = this.#early ?? [];
    this.#early = undefined;
    for (const event of early) this.#options.onEvent(event);
  }

  /** Schedules the acknowledgement of stored items read, after their state is kept. */
  #readStored(count: number): void {
    this.#unacknowledgedReads += count;
    if (this.#unacknowledgedReads >= ACK_EVERY) {
      clearTimeout(this.#ackTimer);
      this.#ackTimer = undefined;
      void this.#acknowledge();
    } else {
      this.#ackTimer ??= setTimeout(() => {
        this.#ackTimer = undefined;
        void this.#acknowledge();
      }, ACK_DELAY_MS);
    }
  }

  /** Keeps the state, then tells the relay how far this member has read. */
  async #acknowledge(): Promise<void> {
    this.#unacknowledgedReads = 0;
    const seq = this.#session.lastSeq;
    try {
      await this.#keeper.save(this.#session);
    } catch (error) {
      // Not acknowledged: the relay keeps the items and sends them again next time.
      this.#options.onEvent({
        type: "warning",
        code: "missing-key",
        text: `could not keep what was read (${(error as Error).message}); ` +
          "the relay will send it again",
      });
      return;
    }
    if (!this.#channel.closed) this.#channel.send(encodeRecord({ type: "acknowledge", seq }));
  }

  /** Sends the prekeys the schedule asks for (durable rooms). */
  #uploadPrekeys(oneTimeOnRelay: number): void {
    const upload = this.#keeper.prekeys.upload({ oneTimeOnRelay });
    if (upload === undefined) return;
    // Kept before they are offered, so every prekey the relay hands out has its secret here.
    this.#prekeyUpload = this.#keeper.save(this.#session).then(() => {
      if (this.#channel.closed) return;
      this.#channel.send(encodeRecord({ type: "putPrekeys", ...upload }));
    }, (error) =>
      this.#options.onEvent({
        type: "warning",
        code: "missing-key",
        text: `could not keep new prekeys (${(error as Error).message}); none were offered`,
      }));
  }

  /** Sends `record` (given a fresh id) and resolves with the relay's answer to that id. */
  #request(make: (id: number) => RelayRecord): Promise<RelayRecord> {
    if (this.#channel.closed) return Promise.reject(new NetworkError("not connected to the relay"));
    const id = this.#nextRequestId++;
    const answer = new Promise<RelayRecord>((resolve, reject) =>
      this.#pending.set(id, { resolve, reject })
    );
    this.#channel.send(encodeRecord(make(id)));
    return answer;
  }

  /** The relay's fingerprint (what its history is kept under). @example `client.relayFingerprint` */
  get relayFingerprint(): string {
    return this.#channel.remoteFingerprint;
  }

  /** Room name. @example `client.room` */
  get room(): string {
    return this.#session.room;
  }

  /** This member's nick. @example `client.nick` */
  get nick(): string {
    return this.#session.nick;
  }

  /** The other members. @example `client.members()` */
  members(): MemberInfo[] {
    return this.#session.members();
  }

  /** Requests (messages sent, keys stored) not yet answered by the relay. @example `client.unacknowledged` */
  get unacknowledged(): number {
    return this.#pending.size;
  }

  /** Whether the room keeps messages for members who are away. @example `client.durable` */
  get durable(): boolean {
    return this.#session.durable;
  }

  /** Every member of a durable room, online or not. @example `client.roster()` */
  roster(): MemberInfo[] {
    return this.#session.roster();
  }

  /**
   * Sends texts as end-to-end encrypted group messages, packing them into as
   * few messages as fit. Resolves, once the relay has acknowledged them all,
   * with the number of members each reached: those the relay forwarded it
   * to, but at most those that held this member's key when it was encrypted.
   * A member the relay has let in but whose join this client has not seen
   * yet gets the message and cannot read it, so it is not counted.
   *
   * @example
   * ```ts
   * const [delivery] = await client.send(["line one", "line two"]);
   * console.log(delivery.online, delivery.later);
   * ```
   */
  send(texts: string[]): Promise<Delivery[]> {
    const batches: string[][] = [];
    let batch: string[] = [];
    let batchBytes = 0;
    for (const text of texts) {
      const bytes = utf8(text).length;
      if (bytes > MAX_TEXT_BYTES) {
        return Promise.reject(
          new RangeError(
            `a message of ${bytes} bytes exceeds the limit of ${MAX_TEXT_BYTES} bytes`,
          ),
        );
      }
      if (batch.length > 0 && (batchBytes + bytes > MAX_BATCH_TEXT_BYTES || batch.length >= 4096)) {
        batches.push(batch);
        batch = [];
        batchBytes = 0;
      }
      batch.push(text);
      batchBytes += bytes + 4;
    }
    if (batch.length > 0) batches.push(batch);
    if (this.#channel.closed) return Promise.reject(new NetworkError("not connected to the relay"));
    return Promise.all(batches.map((texts) => this.#publisher.publish(texts)));
  }

  /**
   * Sends a direct message that only the member with `memberId` can read.
   *
   * @example
   * ```ts
   * client.sendDirect(bob.memberId, "just for you");
   * ```
   */
  sendDirect(memberId: number, text: string): void {
    this.#channel.send(encodeRecord(this.#session.directText(memberId, text)));
    this.#directTextsSent.set(memberId, performance.now());
  }

  /**
   * Waits until every member of the (durable) room has read the message the
   * relay stored as `seq` (`join --wait-read`). Rejects if the connection
   * ends first.
   *
   * @example
   * ```ts
   * const [delivery] = await client.send(["deploy done"]);
   * await client.waitRead(delivery.seq);
   * ```
   */
  async waitRead(seq: number): Promise<void> {
    await this.#request((id) => ({ type: "watchRead", id, seq }));
  }

  /**
   * Renames this member in a durable room; resolves once the relay has told
   * the room (others see "alice is now known as alicia").
   *
   * @example
   * ```ts
   * await client.rename("alicia");
   * ```
   */
  rename(nick: string): void {
    this.#channel.send(encodeRecord(this.#session.renameTo(nick)));
  }

  /**
   * Resolves once the connection has ended and what this client read is
   * kept (a durable room's state): the next connection starts from there.
   *
   * @example
   * ```ts
   * await client.finished;
   * ```
   */
  get finished(): Promise<void> {
    return this.#closed;
  }

  /**
   * Leaves a durable room for good: the relay takes this member off the
   * roster, the others move to keys it will never see, and what this client
   * kept of the room (not its history) is forgotten. Resolves when the
   * connection is closed.
   *
   * @example
   * ```ts
   * await client.leave();
   * ```
   */
  async leave(): Promise<void> {
    this.#closing = true;
    this.#channel.send(encodeRecord({ type: "leave" }));
    this.#channel.close();
    await this.#closed;
    await this.#keeper.forget();
  }

  /**
   * Leaves the room: sends what is queued, closes the connection and
   * resolves when it is closed.
   *
   * @example
   * ```ts
   * await client.close();
   * ```
   */
  async close(): Promise<void> {
    this.#closing = true;
    clearTimeout(this.#ackTimer);
    // Messages being prepared (a key handover under way) and prekeys being kept still go out
    // first, unless the relay keeps them waiting.
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.all([this.#publisher.idle(), this.#prekeyUpload]),
      new Promise((resolve) => timer = setTimeout(resolve, CLOSE_WAIT_MS)),
    ]);
    clearTimeout(timer);
    // What was read is kept and acknowledged before the connection ends.
    if (this.#session.durable && !this.#channel.closed) await this.#acknowledge();
    await this.#keeper.flushHistory().catch(() => {});
    this.#channel.close();
    return this.#closed;
  }
}

/**
 * The error for a relay's `error` record. Only "overloaded" (a full room,
 * the rate limit) and "shutting down" can change by themselves; every other
 * refusal would be repeated, so it is permanent.
 */
function relayRefusal(code: number, message: string): Error {
  const text = `the relay refused: ${message}`;
  switch (code) {
    case RelayErrorCode.notAllowed:
      return new AuthenticationError(text);
    case RelayErrorCode.shuttingDown:
      return new NetworkError(text);
    case RelayErrorCode.nickTaken:
      return new NickTakenError(text);
    case RelayErrorCode.overloaded:
      return new ProtocolError(text);
    default:
      return new ProtocolError(text, { permanent: true });
  }
}
