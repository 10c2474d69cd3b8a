/**
 * The relay: accepts authenticated connections, keeps room membership, and
 * routes end-to-end ciphertext between the members of each room. It never
 * holds a key that can open a room message or a pairwise envelope; it sees
 * room names, nicks, identity keys, sizes and timing (PROTOCOL.md, threat
 * model).
 *
 * Members connect over TCP or, on the same port, over WebSocket: the first
 * byte tells them apart (`S` of the `SECCHAT` preamble, `G` of an HTTP
 * `GET`). Past the upgrade both are the same byte stream, under the same
 * caps, deadline and rate limit.
 *
 * @module
 */

import { createServer, type Server, type Socket } from "node:net";
import { type Announcement, verifyAnnouncement } from "../e2e/announcement.ts";
import {
  acceptHandshake,
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  MAX_RECORD_BYTES,
  type SecureChannel,
} from "../transport/channel.ts";
import { NetworkError, ProtocolError, socketErrorText } from "../core/errors.ts";
import { type ByteStream, firstBytes, socketStream } from "../transport/byte_stream.ts";
import { type OriginPolicy, originPolicy } from "../transport/http_upgrade.ts";
import { acceptWebSocket } from "../transport/websocket_server.ts";
import type { Identity } from "../identity/identity.ts";
import { TokenBucket } from "../core/rate_limit.ts";
import type { RelayStore } from "./store/relay_store.ts";
import { DurableRooms } from "./durable_rooms.ts";
import type { MemberLink } from "./member_link.ts";
import type { RoomFeed } from "./room_feed.ts";
import {
  handshakeFailureReason,
  type LogLevel,
  type RefusalReason,
  type RelayObserver,
  type RelayStats,
} from "./observer.ts";
import {
  decodeRecord,
  DirectFailure,
  encodeRecord,
  type MemberEntry,
  OfflineReason,
  RelayErrorCode,
  type RelayRecord,
} from "../transport/records.ts";

/** Options for {@linkcode Relay.listen}. */
export interface RelayOptions {
  /** The relay's identity; clients pin or remember its fingerprint. */
  identity: Identity;
  /** Address to bind; default `127.0.0.1`. */
  host?: string;
  /** Port to bind; `0` picks a free one. Default 7878. */
  port?: number;
  /** When set, only clients with these fingerprints are admitted. */
  allow?: ReadonlySet<string>;
  /**
   * Receives one line per connection event, never message content, with how
   * much it matters: refusals and drops are `warn`, the rest `info`.
   */
  log?: (line: string, level: LogLevel) => void;
  /** Receives the events metrics count (cli/metrics.ts wires it to Prometheus). */
  observer?: RelayObserver;
  /** Deadline for a client's handshake, from accept to its last message. Default 10 s. */
  handshakeTimeoutMs?: number;
  /**
   * Connections open at once, all addresses together, in their handshake or
   * past it. Default 11,024.
   */
  maxConnections?: number;
  /**
   * Connections open at once from one IP address (IPv6: one /64 network).
   * Default 64.
   */
  maxConnectionsPerAddress?: number;
  /** Connections still in their handshake, all addresses together. Default 256. */
  maxPendingHandshakes?: number;
  /** Bytes queued for one member before the relay drops it as too slow. Default 16 MiB. */
  maxQueuedBytesPerConnection?: number;
  /** Records per second one connection may send, sustained. Default 200. */
  rateLimitPerSecond?: number;
  /** Records one connection may send at once above the sustained rate. Default 1,000. */
  rateBurst?: number;
  /** Whether WebSocket clients (browsers) may connect on the same port. Default true. */
  webSocket?: boolean;
  /**
   * Web page origins, besides the loopback ones, whose pages may connect
   * over WebSocket (`https://chat.example`); `*` admits every page.
   * Requests without an `Origin` (programs, not pages) are always admitted.
   */
  webSocketOrigins?: Iterable<string>;
  /**
   * Members in one room. Default 956, the most whose welcome record always
   * fits in one record whatever their nicks; a larger value is still capped
   * by that record size.
   */
  maxRoomMembers?: number;
  /**
   * Where durable rooms are kept (PROTOCOL.md, "Durable rooms: the relay").
   * Without one every room is ephemeral: it lives while members are
   * connected, and a message reaches only those connected at the time.
   */
  store?: RelayStore;
  /** Rooms that stay ephemeral although there is a store. */
  ephemeralRooms?: Iterable<string>;
  /** How often the store deletes expired and acknowledged items, in ms. Default 60 s. */
  pruneIntervalMs?: number;
  /**
   * With a store shared by several relays (a cluster): how they hear of each
   * other's members and messages (room_feed.ts). Default: this relay alone.
   */
  feed?: RoomFeed;
}

/**
 * Every relay limit's default, by {@linkcode RelayOptions} name; README.md
 * and PROTOCOL.md ("Limits") list them with the `serve` flag for each.
 *
 * @example
 * ```ts
 * RELAY_LIMIT_DEFAULTS.maxPendingHandshakes; // 256
 * ```
 */
export const RELAY_LIMIT_DEFAULTS = {
  handshakeTimeoutMs: DEFAULT_HANDSHAKE_TIMEOUT_MS,
  maxConnections: 11_024,
  maxConnectionsPerAddress: 64,
  maxPendingHandshakes: 256,
  maxQueuedBytesPerConnection: 16 * 1024 * 1024,
  rateLimitPerSecond: 200,
  rateBurst: 1_000,
  maxRoomMembers: 956,
} as const;

type RelayLimits = { -readonly [K in keyof typeof RELAY_LIMIT_DEFAULTS]: number };

/** Default relay port. */
export const DEFAULT_PORT = 7878;

/** `G`, as in `GET`: the first byte of a WebSocket upgrade (a preamble starts with `S`). */
const HTTP_GET_FIRST_BYTE = 0x47;

/**
 * A connection over a cap waits until arrivals have paused this long, so
 * that the first bytes of a burst are in before anyone is chosen to go...
 */
const TRIM_QUIET_MS = 10;
/** ...but never longer than this. */
const TRIM_LATEST_MS = 100;

interface Member {
  memberId: number;
  channel: SecureChannel;
  room: Room;
  nick: string;
  entry: MemberEntry;
  /** Set when the relay drops it; nothing more is queued for it. */
  dropped: boolean;
}

/** One accepted TCP connection, counted against the caps until its socket closes. */
interface Connection {
  socket: Socket;
  /** `host:port`, for logs. */
  peer: string;
  /** What the per-address cap counts: the IP address, or an IPv6 address's /64. */
  address: string;
  /** `performance.now()` at accept, to tell a silent connection from one not yet read. */
  acceptedAt: number;
  /** Closed by the relay to make room for a newer connection. */
  evicted: boolean;
  released: boolean;
}

/** Connections from one address; `pending` is in accept order, oldest first. */
interface AddressCount {
  connections: number;
  pending: Set<Connection>;
}

interface Room {
  name: string;
  members: Map<number, Member>;
}

/**
 * A running relay.
 *
 * @example
 * ```ts
 * const relay = await Relay.listen({ identity, host: "127.0.0.1", port: 0 });
 * console.log(relay.address.port, relay.fingerprint);
 * await relay.close();
 * ```
 */
export class Relay {
  #server: Server;
  #identity: Identity;
  #options: RelayOptions;
  #limits: RelayLimits;
  #rooms = new Map<string, Room>();
  /** Connections still in their handshake, oldest first (including those waiting to start). */
  #pending = new Set<Connection>();
  /** Connections over a cap, waiting for #trim to start or close them. */
  #waiting = new Set<Connection>();
  #trimTimer?: ReturnType<typeof setTimeout>;
  #trimDeadline?: number;
  /** Open connections per address (see {@linkcode addressKey}). */
  #addresses = new Map<string, AddressCount>();
  #connectionCount = 0;
  /** Every connection past its handshake, joined or not: close() must reach them all. */
  #channels = new Set<SecureChannel>();
  #nextMemberId = 1;
  #closing = false;
  #log: (line: string, level?: LogLevel) => void;
  #observer: RelayObserver;
  #counters = {
    connectionsAccepted: 0,
    members: 0,
    recordsReceived: 0,
    recordBytesReceived: 0,
    recordsSent: 0,
    recordBytesSent: 0,
  };
  /** Which pages may connect over WebSocket; undefined when WebSocket is off. */
  #allowOrigin: OriginPolicy | undefined;
  /** The durable rooms, when there is a store. */
  #durable: DurableRooms | undefined;
  #ephemeralRooms: ReadonlySet<string>;

  private constructor(server: Server, options: RelayOptions, limits: RelayLimits) {
    this.#server = server;
    this.#identity = options.identity;
    this.#options = options;
    this.#limits = limits;
    const log = options.log ?? (() => {});
    this.#log = (line, level = "info") => log(line, level);
    this.#observer = options.observer ?? {};
    this.#allowOrigin = options.webSocket === false
      ? undefined
      : originPolicy(options.webSocketOrigins);
    this.#ephemeralRooms = new Set(options.ephemeralRooms ?? []);
    this.#durable = options.store === undefined ? undefined : new DurableRooms({
      store: options.store,
      log: this.#log,
      pruneIntervalMs: options.pruneIntervalMs,
      feed: options.feed,
    });
  }

  /** Logs a refusal or drop as a warning and counts it by reason. */
  #refused(reason: RefusalReason, line: string): void {
    this.#log(line, "warn");
    this.#observer.refusal?.(reason);
  }

  /**
   * Binds and starts serving. Rejects with {@linkcode NetworkError} when the
   * address cannot be bound (for example, the port is in use).
   *
   * @example
   * ```ts
   * const relay = await Relay.listen({ identity, port: 0 });
   * ```
   */
  static listen(options: RelayOptions): Promise<Relay> {
    const host = options.host ?? "127.0.0.1";
    const port = options.port ?? DEFAULT_PORT;
    let limits: RelayLimits;
    try {
      limits = resolveLimits(options);
    } catch (error) {
      return Promise.reject(error);
    }
    const server = createServer({ noDelay: true });
    const relay = new Relay(server, options, limits);
    // The caps are enforced in #accept, which logs and can make room; server.maxConnections
    // would refuse silently, counting sockets this relay has already let go.
    server.on("connection", (socket) => relay.#accept(socket));
    return new Promise((resolve, reject) => {
      server.once("error", (error) => {
        // Nothing of a relay that never listened may keep the process alive (the prune timer).
        relay.#durable?.close();
        reject(new NetworkError(`cannot listen on ${host}:${port}: ${socketErrorText(error)}`));
      });
      // A deep accept queue: a burst of connections waits for #accept, which
      // disposes of surplus ones in microseconds, instead of having its SYNs
      // dropped and retried a second later (the kernel caps this at somaxconn).
      server.listen({ host, port, backlog: 4096 }, () => {
        server.on(
          "error",
          (error) => relay.#log(`listener error: ${socketErrorText(error)}`, "error"),
        );
        resolve(relay);
      });
    });
  }

  /** The bound address. @example `relay.address.port` */
  get address(): { host: string; port: number } {
    const address = this.#server.address();
    if (address === null || typeof address === "string") throw new Error("relay is not listening");
    return { host: address.address, port: address.port };
  }

  /** The relay's fingerprint. @example `relay.fingerprint` */
  get fingerprint(): string {
    return this.#identity.fingerprint;
  }

  /**
   * Counters since start and gauges now, for metrics; cheap to call.
   *
   * @example
   * ```ts
   * const { members, recordsReceived } = relay.stats();
   * ```
   */
  stats(): RelayStats {
    return {
      ...this.#counters,
      connectionsOpen: this.#connectionCount,
      handshakesPending: this.#pending.size,
      rooms: this.roomSizes().size,
      members: [...this.roomSizes().values()].reduce((sum, size) => sum + size, 0),
    };
  }

  /** Members connected now in each room, for diagnostics. @example `relay.roomSizes()` */
  roomSizes(): Map<string, number> {
    const sizes = new Map([...this.#rooms].map(([name, room]) => [name, room.members.size]));
    for (const [name, size] of this.#durable?.sizes() ?? []) sizes.set(name, size);
    return sizes;
  }

  /**
   * Connections counted against the caps, for diagnostics: all open ones,
   * and those still in their handshake.
   *
   * @example
   * ```ts
   * const { open, pendingHandshakes } = relay.connectionCounts();
   * ```
   */
  connectionCounts(): { open: number; pendingHandshakes: number } {
    return { open: this.#connectionCount, pendingHandshakes: this.#pending.size };
  }

  /**
   * Stops accepting, closes every connection and resolves when the listener is closed.
   *
   * @example
   * ```ts
   * await relay.close();
   * ```
   */
  close(): Promise<void> {
    this.#closing = true;
    clearTimeout(this.#trimTimer);
    this.#durable?.close();
    return new Promise((resolve) => {
      this.#server.close(() => resolve());
      for (const channel of this.#channels) {
        channel.send(encodeRecord({
          type: "error",
          code: RelayErrorCode.shuttingDown,
          message: "relay is shutting down",
        }));
        channel.close();
      }
      for (const connection of this.#pending) connection.socket.destroy();
    });
  }

  /**
   * Counts a new connection against the caps. Within them, its handshake
   * starts at once. Over one, it waits for {@linkcode Relay.#trim}, which
   * decides who gives way once everyone's first bytes have had time to
   * arrive. It is refused here, before any crypto, only when no pending
   * handshake could give way to it. The policy is in PROTOCOL.md, Limits.
   */
  #accept(socket: Socket): void {
    socket.on("error", () => {});
    const host = socket.remoteAddress;
    // Reset before it was accepted: nothing left to serve or to count.
    if (host === undefined || this.#closing) {
      socket.destroy();
      return;
    }
    const peer = `${host}:${socket.remotePort}`;
    const address = addressKey(host);
    const refusal = this.#refusal(address);
    if (refusal !== undefined) {
      this.#refused(refusal.reason, `refused ${peer}: ${refusal.text}`);
      socket.destroy();
      return;
    }
    this.#counters.connectionsAccepted++;
    this.#makeWaitingRoom(address);
    const connection: Connection = {
      socket,
      peer,
      address,
      acceptedAt: performance.now(),
      evicted: false,
      released: false,
    };
    let count = this.#addresses.get(address);
    if (count === undefined) {
      count = { connections: 0, pending: new Set() };
      this.#addresses.set(address, count);
    }
    count.connections++;
    count.pending.add(connection);
    this.#pending.add(connection);
    this.#connectionCount++;
    socket.once("close", () => this.#release(connection));
    const limits = this.#limits;
    const overCap = count.connections > limits.maxConnectionsPerAddress ||
      this.#connectionCount > limits.maxConnections ||
      this.#pending.size > limits.maxPendingHandshakes;
    if (overCap) {
      this.#wait(connection);
    } else {
      this.#serve(connection);
    }
  }

  /** Why a newcomer from `address` may not even wait for a slot, or undefined. */
  #refusal(address: string): { reason: RefusalReason; text: string } | undefined {
    const limits = this.#limits;
    const count = this.#addresses.get(address);
    if (
      count !== undefined && count.connections >= limits.maxConnectionsPerAddress &&
      count.pending.size === 0
    ) {
      return {
        reason: "address-cap",
        text: `${count.connections} connections from ${address} are open ` +
          `(limit ${limits.maxConnectionsPerAddress} per address)`,
      };
    }
    if (this.#connectionCount >= limits.maxConnections && this.#pending.size === 0) {
      return {
        reason: "connection-cap",
        text: `${this.#connectionCount} connections are open (limit ${limits.maxConnections})`,
      };
    }
    return undefined;
  }

  /**
   * Keeps the connections waiting for #trim under maxPendingHandshakes when a
   * burst outruns it: the oldest silent waiter goes, else the oldest waiter,
   * from the newcomer's own address first. Oldest first means a client that
   * arrives while a flood is under way is the last to go.
   */
  #makeWaitingRoom(address: string): void {
    const waiting = this.#waiting;
    if (waiting.size < this.#limits.maxPendingHandshakes) return;
    const own = [...(this.#addresses.get(address)?.pending ?? [])].filter((c) => waiting.has(c));
    const all = [...waiting];
    const victim = oldestSilent(own) ?? oldestSilent(all) ?? own[0] ?? all[0];
    this.#evict(victim, `${waiting.size} connections waiting for a handshake slot`, "pending-cap");
  }

  /**
   * Parks a connection that is over a cap: its socket reads (so its first
   * bytes are counted) but nothing is answered or computed until the trim,
   * which runs once arrivals pause for a moment, and soon in any case.
   */
  #wait(connection: Connection): void {
    this.#waiting.add(connection);
    const now = performance.now();
    this.#trimDeadline ??= now + TRIM_LATEST_MS;
    clearTimeout(this.#trimTimer);
    const delay = Math.max(0, Math.min(TRIM_QUIET_MS, this.#trimDeadline - now));
    this.#trimTimer = setTimeout(() => this.#trim(), delay);
  }

  /**
   * Brings every cap back within its limit by closing pending handshakes,
   * those that have sent nothing first, oldest first; then starts the
   * handshakes of the connections that waited and are still here.
   */
  #trim(): void {
    clearTimeout(this.#trimTimer);
    this.#trimTimer = undefined;
    this.#trimDeadline = undefined;
    const limits = this.#limits;
    const perAddress = `limit ${limits.maxConnectionsPerAddress} connections per address`;
    for (const address of new Set([...this.#waiting].map((connection) => connection.address))) {
      const count = this.#addresses.get(address);
      while (count !== undefined && count.connections > limits.maxConnectionsPerAddress) {
        const victim = oldestPending(count.pending);
        if (victim === undefined) break;
        this.#evict(victim, perAddress, "address-cap");
      }
    }
    while (this.#connectionCount > limits.maxConnections) {
      const victim = oldestPending(this.#pending);
      if (victim === undefined) break;
      this.#evict(victim, `limit ${limits.maxConnections} connections`, "connection-cap");
    }
    while (this.#pending.size > limits.maxPendingHandshakes) {
      this.#evict(
        oldestPending(this.#pending)!,
        `limit ${limits.maxPendingHandshakes} pending`,
        "pending-cap",
      );
    }
    const admitted = [...this.#waiting];
    this.#waiting.clear();
    for (const connection of admitted) this.#serve(connection);
  }

  #evict(connection: Connection, limit: string, reason: RefusalReason): void {
    const sent = connection.socket.bytesRead;
    this.#refused(
      reason,
      `dropping ${connection.peer}: handshake unfinished (${sent} bytes received) ` +
        `and the connection cap is full (${limit})`,
    );
    connection.evicted = true;
    this.#release(connection);
    connection.socket.destroy();
  }

  /** Uncounts a connection; runs when its socket closes, or earlier when evicted. */
  #release(connection: Connection): void {
    if (connection.released) return;
    connection.released = true;
    this.#connectionCount--;
    this.#pending.delete(connection);
    this.#waiting.delete(connection);
    const count = this.#addresses.get(connection.address);
    if (count === undefined) return;
    count.pending.delete(connection);
    if (--count.connections === 0) this.#addresses.delete(connection.address);
  }

  async #serve(connection: Connection): Promise<void> {
    const { socket, peer } = connection;
    const started = performance.now();
    const timeoutMs = this.#limits.handshakeTimeoutMs;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let channel: SecureChannel;
    try {
      // One deadline from the first byte read to the last handshake message, WebSocket
      // upgrade included.
      const handshake = this.#openStream(connection).then((stream) =>
        acceptHandshake({
          stream,
          identity: this.#identity,
          timeoutMs: Math.max(1, timeoutMs - (performance.now() - started)),
        })
      );
      handshake.catch(() => {}); // It may lose the race below and fail afterwards.
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          socket.destroy();
          reject(new ProtocolError(`handshake timed out after ${timeoutMs / 1000} s`));
        }, timeoutMs);
      });
      channel = await Promise.race([handshake, deadline]);
    } catch (error) {
      if (!connection.evicted && !this.#closing) {
        const after = Math.round(performance.now() - started);
        this.#refused(
          handshakeFailureReason(error),
          `dropping ${peer}: handshake failed after ${after} ms: ${(error as Error).message}`,
        );
      }
      // A refused WebSocket upgrade or preamble is ending gracefully, so the client reads why.
      if (!socket.writableEnded) socket.destroy();
      return;
    } finally {
      clearTimeout(timer);
    }
    if (connection.evicted || this.#closing) {
      channel.destroy();
      return;
    }
    this.#pending.delete(connection);
    this.#addresses.get(connection.address)?.pending.delete(connection);
    this.#channels.add(channel);
    this.#observer.handshake?.((performance.now() - started) / 1000);
    const allow = this.#options.allow;
    if (allow && !allow.has(channel.remoteFingerprint)) {
      this.#refused(
        "not-allowed",
        `refused ${peer} ${channel.remoteFingerprint}: not on the allow list`,
      );
      this.#refuse(
        channel,
        RelayErrorCode.notAllowed,
        "your fingerprint is not on this relay's allow list",
      );
      channel.onClose = () => this.#channels.delete(channel);
      channel.start();
      return;
    }
    this.#log(`connected ${peer} ${channel.remoteFingerprint}`);
    const { rateLimitPerSecond, rateBurst } = this.#limits;
    const bucket = new TokenBucket({ ratePerSecond: rateLimitPerSecond, burst: rateBurst });
    let member: Member | undefined;
    let durable: { receive: (record: RelayRecord) => void; ended: () => void } | undefined;
    channel.onRecord = (bytes) => {
      // Once refused, the rest of the batch (a join, a publish) must not be acted on.
      if (channel.closed || member?.dropped) return;
      this.#counters.recordsReceived++;
      this.#counters.recordBytesReceived += bytes.length;
      if (!bucket.take()) {
        this.#refused(
          "rate-limit",
          `dropping ${peer} ${channel.remoteFingerprint}: over the rate limit ` +
            `(${rateLimitPerSecond} records/s, burst ${rateBurst})`,
        );
        if (member) this.#drop(member);
        this.#refuse(
          channel,
          RelayErrorCode.overloaded,
          `overloaded: more than ${rateLimitPerSecond} records per second ` +
            `(burst ${rateBurst}); slow down`,
        );
        // Stop reading: the rest of a flood would otherwise be decrypted while the close completes.
        socket.pause();
        return;
      }
      let record: RelayRecord;
      try {
        record = decodeRecord(bytes);
      } catch (error) {
        this.#refused(
          "malformed",
          `dropping ${peer}: malformed record: ${(error as Error).message}`,
        );
        this.#refuse(
          channel,
          RelayErrorCode.malformed,
          `malformed record: ${(error as Error).message}`,
        );
        return;
      }
      if (durable !== undefined) {
        durable.receive(record);
        return;
      }
      if (member === undefined) {
        if (record.type !== "join") {
          this.#refused("not-joined", `dropping ${peer}: sent ${record.type} before joining`);
          this.#refuse(channel, RelayErrorCode.notJoined, "send a join record first");
          return;
        }
        const announcement = this.#verifyJoin(channel, peer, record.announcement);
        if (announcement === undefined) return;
        if (this.#durable !== undefined && !this.#ephemeralRooms.has(announcement.room)) {
          durable = this.#durable.join(
            this.#memberLink(channel, peer),
            announcement,
            record.announcement,
          );
          return;
        }
        member = this.#join(channel, peer, announcement, record.announcement);
        return;
      }
      this.#route(member, record);
    };
    channel.onRecordTooLarge = (length) => {
      this.#refused(
        "too-large",
        `dropping ${peer} ${channel.remoteFingerprint}: record of ${length} bytes ` +
          `(limit ${MAX_RECORD_BYTES})`,
      );
      if (member) this.#drop(member);
      this.#refuse(
        channel,
        RelayErrorCode.tooLarge,
        `too large: a record of ${length} bytes; the limit is ${MAX_RECORD_BYTES} bytes`,
      );
    };
    channel.onClose = (error) => {
      this.#channels.delete(channel);
      if (member) this.#leave(member);
      durable?.ended();
      const reason = error ? `: ${error.message}` : "";
      this.#log(`disconnected ${peer} ${channel.remoteFingerprint}${reason}`);
    };
    channel.start();
  }

  /**
   * Reads the first bytes and returns the connection's byte stream: the
   * socket itself, or the WebSocket it upgrades to.
   */
  async #openStream(connection: Connection): Promise<ByteStream> {
    const { socket, peer } = connection;
    const first = await firstBytes(socket);
    if (this.#allowOrigin === undefined || first[0] !== HTTP_GET_FIRST_BYTE) {
      return socketStream(socket, { initialBytes: first });
    }
    const { stream, origin } = await acceptWebSocket({
      socket,
      initialBytes: first,
      allowOrigin: this.#allowOrigin,
    });
    this.#log(`websocket ${peer}${origin === undefined ? "" : ` origin ${origin}`}`);
    return stream;
  }

  #refuse(channel: SecureChannel, code: number, message: string): void {
    channel.send(encodeRecord({ type: "error", code, message }));
    channel.close();
  }

  /** The join's announcement, verified under the connection's identity; undefined when refused. */
  #verifyJoin(
    channel: SecureChannel,
    peer: string,
    announcementBytes: Uint8Array,
  ): Announcement | undefined {
    try {
      return verifyAnnouncement({
        identityPublicKey: channel.remoteIdentityPublicKey,
        bytes: announcementBytes,
      });
    } catch (error) {
      this.#refused(
        "bad-announcement",
        `dropping ${peer}: bad announcement: ${(error as Error).message}`,
      );
      this.#refuse(
        channel,
        RelayErrorCode.badAnnouncement,
        `bad announcement: ${(error as Error).message}`,
      );
      return undefined;
    }
  }

  /** A joined connection as a durable room uses it (member_link.ts). */
  #memberLink(channel: SecureChannel, peer: string): MemberLink {
    const maxQueuedBytes = this.#limits.maxQueuedBytesPerConnection;
    let dropped = false;
    return {
      peer,
      identityKey: channel.remoteIdentityPublicKey,
      fingerprint: channel.remoteFingerprint,
      maxQueuedBytes,
      get bufferedBytes() {
        return channel.bufferedBytes;
      },
      get gone() {
        return dropped || channel.closed;
      },
      send: (record) => {
        if (dropped || channel.closed) return;
        const bytes = encodeRecord(record);
        channel.send(bytes);
        this.#counters.recordsSent++;
        this.#counters.recordBytesSent += bytes.length;
        if (channel.bufferedBytes > maxQueuedBytes) {
          dropped = true;
          this.#refused(
            "slow-reader",
            `dropping ${peer} ${channel.remoteFingerprint}: it stopped reading ` +
              `(over ${maxQueuedBytes} bytes queued)`,
          );
          channel.destroy();
        }
      },
      refuse: (reason, code, message, line) => {
        if (dropped || channel.closed) return;
        dropped = true;
        this.#refused(reason, line);
        this.#refuse(channel, code, message);
      },
      close: () => {
        dropped = true;
        channel.close();
      },
    };
  }

  #join(
    channel: SecureChannel,
    peer: string,
    announcement: Announcement,
    announcementBytes: Uint8Array,
  ): Member | undefined {
    let room = this.#rooms.get(announcement.room);
    if (room === undefined) {
      room = { name: announcement.room, members: new Map() };
      this.#rooms.set(room.name, room);
    }
    for (const other of room.members.values()) {
      if (other.nick === announcement.nick) {
        this.#refused(
          "nick-taken",
          `refused ${peer} join: nick ${announcement.nick} is taken in ${room.name}`,
        );
        this.#refuse(
          channel,
          RelayErrorCode.nickTaken,
          `nick "${announcement.nick}" is taken in room "${room.name}"; choose another with --nick`,
        );
        return undefined;
      }
    }
    const full = `room "${room.name}" is full (${room.members.size} members)`;
    if (room.members.size >= this.#limits.maxRoomMembers) {
      this.#refused("room-full", `refused ${peer} join: ${full}`);
      this.#refuse(channel, RelayErrorCode.overloaded, full);
      return undefined;
    }
    const memberId = this.#nextMemberId++;
    const entry: MemberEntry = {
      memberId,
      identityPublicKey: channel.remoteIdentityPublicKey,
      online: true,
      announcement: announcementBytes.slice(),
    };
    const member: Member = {
      memberId,
      channel,
      room,
      nick: announcement.nick,
      entry,
      dropped: false,
    };
    const welcome = encodeRecord({
      type: "welcome",
      memberId,
      durable: false,
      head: 0,
      members: [...room.members.values()].map((other) => other.entry),
    });
    // 956 members with the longest names fill one record; more would throw out of the socket
    // handler. Only a maxRoomMembers above the default gets here.
    if (welcome.length > MAX_RECORD_BYTES) {
      this.#refused("room-full", `refused ${peer} join: ${full}`);
      this.#refuse(channel, RelayErrorCode.overloaded, full);
      return undefined;
    }
    channel.send(welcome);
    // In the room before the others hear of it: if telling one of them drops it (its queue is
    // full), the newcomer, whose welcome listed it, must get that member's leave notice too.
    room.members.set(memberId, member);
    this.#counters.members++;
    const joined = encodeRecord({ type: "memberOnline", member: entry });
    for (const other of room.members.values()) if (other !== member) this.#deliver(other, joined);
    this.#log(
      `join room=${room.name} nick=${member.nick} member=${memberId} ${channel.remoteFingerprint}`,
    );
    return member;
  }

  #route(member: Member, record: RelayRecord): void {
    switch (record.type) {
      case "publish": {
        const deliver = encodeRecord({
          type: "deliver",
          seq: 0,
          from: member.memberId,
          message: record.message,
        });
        let recipients = 0;
        for (const other of member.room.members.values()) {
          if (other === member) continue;
          this.#deliver(other, deliver);
          recipients++;
        }
        // Through #deliver: a client that publishes and never reads is bounded by its acks too.
        this.#deliver(
          member,
          encodeRecord({
            type: "ack",
            id: record.id,
            seq: 0,
            online: recipients,
            stored: 0,
            refused: 0,
          }),
        );
        return;
      }
      case "direct": {
        const target = member.room.members.get(record.to);
        // Never dropped silently: the sender learns which direct did not go out, and why. A
        // target that just left is normal (its leave notice is on its way); the connection stays.
        if (target === undefined || target === member) {
          this.#deliver(
            member,
            encodeRecord({
              type: "directFailed",
              to: record.to,
              reason: target === member ? DirectFailure.self : DirectFailure.noSuchMember,
            }),
          );
          return;
        }
        this.#deliver(
          target,
          encodeRecord({ type: "directFrom", from: member.memberId, envelope: record.envelope }),
        );
        return;
      }
      case "join":
        this.#refused("already-joined", `dropping member ${member.memberId}: sent a second join`);
        this.#refuse(
          member.channel,
          RelayErrorCode.alreadyJoined,
          "this connection already joined a room",
        );
        return;
      default:
        this.#refused(
          "malformed",
          `dropping member ${member.memberId}: sent a relay-only record (${record.type})`,
        );
        this.#refuse(
          member.channel,
          RelayErrorCode.malformed,
          `clients may not send ${record.type} records`,
        );
    }
  }

  #deliver(member: Member, record: Uint8Array): void {
    if (member.dropped) return;
    member.channel.send(record);
    this.#counters.recordsSent++;
    this.#counters.recordBytesSent += record.length;
    if (member.channel.bufferedBytes > this.#limits.maxQueuedBytesPerConnection) {
      this.#refused(
        "slow-reader",
        `dropping member ${member.memberId} (${member.nick}): it stopped reading ` +
          `(over ${this.#limits.maxQueuedBytesPerConnection} bytes queued)`,
      );
      // destroy() discards the queue; #drop keeps anything more from being queued behind it.
      member.channel.destroy();
      this.#drop(member);
    }
  }

  /**
   * Takes a member out of its room now rather than when its socket reports
   * the close, so that the rest of this turn neither queues records for it
   * nor counts it as a recipient.
   */
  #drop(member: Member): void {
    member.dropped = true;
    this.#leave(member);
  }

  #leave(member: Member): void {
    const room = member.room;
    if (!room.members.delete(member.memberId)) return;
    this.#counters.members--;
    this.#log(`leave room=${room.name} nick=${member.nick} member=${member.memberId}`);
    if (room.members.size === 0) {
      this.#rooms.delete(room.name);
      return;
    }
    const left = encodeRecord({
      type: "memberOffline",
      memberId: member.memberId,
      reason: OfflineReason.left,
    });
    for (const other of room.members.values()) this.#deliver(other, left);
  }
}

function resolveLimits(options: RelayOptions): RelayLimits {
  const limits = { ...RELAY_LIMIT_DEFAULTS } as RelayLimits;
  for (const name of Object.keys(limits) as (keyof RelayLimits)[]) {
    const value = options[name];
    if (value === undefined) continue;
    if (!(value > 0) || !Number.isFinite(value)) {
      throw new RangeError(`relay option ${name} must be a positive number, not ${value}`);
    }
    limits[name] = value;
  }
  return limits;
}

/**
 * What the per-address cap counts for a peer address: IPv4 addresses (also
 * IPv4-mapped IPv6 ones) as they are; IPv6 addresses by their /64 prefix,
 * since one host is usually handed a whole /64.
 *
 * @example
 * ```ts
 * addressKey("::ffff:192.0.2.7"); // "192.0.2.7"
 * addressKey("2001:db8:1:2:aa::1"); // "2001:db8:1:2::/64"
 * ```
 */
export function addressKey(host: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(host);
  if (mapped) return mapped[1];
  if (!host.includes(":")) return host;
  const bare = host.replace(/%.*$/, "").toLowerCase();
  const [head, tail] = bare.includes("::") ? bare.split("::", 2) : [bare, undefined];
  const headGroups = head === "" ? [] : head.split(":");
  const tailGroups = tail === undefined || tail === "" ? [] : tail.split(":");
  const zeros = tail === undefined ? 0 : Math.max(0, 8 - headGroups.length - tailGroups.length);
  const groups = [...headGroups, ...Array(zeros).fill("0"), ...tailGroups];
  const prefix = groups.slice(0, 4).map((group) => group.replace(/^0+(?=.)/, ""));
  return `${prefix.join(":")}::/64`;
}

/**
 * How long a connection must have said nothing to count as silent. A client
 * sends its preamble the moment it connects, but a busy relay may not have
 * read it yet: a connection younger than this is never judged by its bytes,
 * or a loaded relay would evict the one real client in a flood.
 */
export const SILENT_AFTER_MS = 1_000;

function isSilent(connection: Connection, now: number): boolean {
  return connection.socket.bytesRead === 0 && now - connection.acceptedAt >= SILENT_AFTER_MS;
}

/**
 * The oldest pending connection that has been silent for
 * {@linkcode SILENT_AFTER_MS}: one that may never speak, having cost the
 * relay nothing but a socket and a timer. It goes first.
 */
function oldestSilent(pending: Iterable<Connection>): Connection | undefined {
  const now = performance.now();
  for (const connection of pending) {
    if (isSilent(connection, now)) return connection;
  }
  return undefined;
}

/** Silent first, then the oldest of all. */
function oldestPending(pending: Set<Connection>): Connection | undefined {
  return oldestSilent(pending) ?? first(pending);
}

function first<T>(set: Set<T>): T | undefined {
  for (const item of set) return item;
  return undefined;
}
