/**
 * The relay: accepts authenticated connections, keeps room membership, and
 * routes end-to-end ciphertext between the members of each room. It never
 * holds a key that can open a room message or a pairwise envelope; it sees
 * room names, nicks, identity keys, sizes and timing (PROTOCOL.md, threat
 * model).
 *
 * @module
 */

import { createServer, type Server, type Socket } from "node:net";
import { type Announcement, verifyAnnouncement } from "./announcement.ts";
import {
  acceptHandshake,
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  MAX_RECORD_BYTES,
  type SecureChannel,
} from "./channel.ts";
import { NetworkError, socketErrorText } from "./errors.ts";
import type { Identity } from "./identity.ts";
import {
  decodeRecord,
  encodeRecord,
  type MemberEntry,
  RelayErrorCode,
  type RelayRecord,
} from "./records.ts";

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
  /** Receives one line per connection event; never message content. */
  log?: (line: string) => void;
  /** Deadline for a client's handshake. Default 10 s. */
  handshakeTimeoutMs?: number;
  /** Connections open at once, all addresses together. Default 10,000 + 1,024. */
  maxConnections?: number;
  /** Bytes queued for one member before the relay drops it as too slow. Default 16 MiB. */
  maxQueuedBytesPerConnection?: number;
}

/** Default relay port. */
export const DEFAULT_PORT = 7878;

interface Member {
  memberId: number;
  channel: SecureChannel;
  room: Room;
  nick: string;
  entry: MemberEntry;
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
  #rooms = new Map<string, Room>();
  #sockets = new Set<Socket>();
  /** Every connection past its handshake, joined or not: close() must reach them all. */
  #channels = new Set<SecureChannel>();
  #nextMemberId = 1;
  #log: (line: string) => void;

  private constructor(server: Server, options: RelayOptions) {
    this.#server = server;
    this.#identity = options.identity;
    this.#options = options;
    this.#log = options.log ?? (() => {});
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
    const server = createServer({ noDelay: true });
    const relay = new Relay(server, options);
    server.maxConnections = options.maxConnections ?? 11_024;
    server.on("connection", (socket) => relay.#accept(socket));
    return new Promise((resolve, reject) => {
      server.once("error", (error) => {
        reject(new NetworkError(`cannot listen on ${host}:${port}: ${socketErrorText(error)}`));
      });
      server.listen({ host, port }, () => {
        server.on("error", (error) => relay.#log(`listener error: ${socketErrorText(error)}`));
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

  /** Members in each room, for diagnostics. @example `relay.roomSizes()` */
  roomSizes(): Map<string, number> {
    return new Map([...this.#rooms].map(([name, room]) => [name, room.members.size]));
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
      for (const socket of this.#sockets) socket.destroy();
    });
  }

  async #accept(socket: Socket): Promise<void> {
    const peer = `${socket.remoteAddress}:${socket.remotePort}`;
    this.#sockets.add(socket);
    socket.on("error", () => {});
    socket.on("close", () => this.#sockets.delete(socket));
    let channel: SecureChannel;
    try {
      channel = await acceptHandshake({
        socket,
        identity: this.#identity,
        timeoutMs: this.#options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS,
      });
    } catch (error) {
      this.#log(`handshake failed from ${peer}: ${(error as Error).message}`);
      socket.destroy();
      return;
    }
    this.#sockets.delete(socket);
    this.#channels.add(channel);
    const allow = this.#options.allow;
    if (allow && !allow.has(channel.remoteFingerprint)) {
      this.#log(`refused ${peer} ${channel.remoteFingerprint}: not on the allow list`);
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
    let member: Member | undefined;
    channel.onRecord = (bytes) => {
      // Once refused, the rest of the batch (a join, a publish) must not be acted on.
      if (channel.closed) return;
      let record: RelayRecord;
      try {
        record = decodeRecord(bytes);
      } catch (error) {
        this.#log(`dropping ${peer}: malformed record: ${(error as Error).message}`);
        this.#refuse(
          channel,
          RelayErrorCode.malformed,
          `malformed record: ${(error as Error).message}`,
        );
        return;
      }
      if (member === undefined) {
        if (record.type !== "join") {
          this.#refuse(channel, RelayErrorCode.notJoined, "send a join record first");
          return;
        }
        member = this.#join(channel, peer, record.announcement);
        return;
      }
      this.#route(member, record);
    };
    channel.onClose = (error) => {
      this.#channels.delete(channel);
      if (member) this.#leave(member);
      const reason = error ? `: ${error.message}` : "";
      this.#log(`disconnected ${peer} ${channel.remoteFingerprint}${reason}`);
    };
    channel.start();
  }

  #refuse(channel: SecureChannel, code: number, message: string): void {
    channel.send(encodeRecord({ type: "error", code, message }));
    channel.close();
  }

  #join(channel: SecureChannel, peer: string, announcementBytes: Uint8Array): Member | undefined {
    let announcement: Announcement;
    try {
      announcement = verifyAnnouncement({
        identityPublicKey: channel.remoteIdentityPublicKey,
        bytes: announcementBytes,
      });
    } catch (error) {
      this.#log(`dropping ${peer}: bad announcement: ${(error as Error).message}`);
      this.#refuse(
        channel,
        RelayErrorCode.badAnnouncement,
        `bad announcement: ${(error as Error).message}`,
      );
      return undefined;
    }
    let room = this.#rooms.get(announcement.room);
    if (room === undefined) {
      room = { name: announcement.room, members: new Map() };
      this.#rooms.set(room.name, room);
    }
    for (const other of room.members.values()) {
      if (other.nick === announcement.nick) {
        this.#refuse(
          channel,
          RelayErrorCode.nickTaken,
          `nick "${announcement.nick}" is taken in room "${room.name}"; choose another with --nick`,
        );
        return undefined;
      }
    }
    const memberId = this.#nextMemberId++;
    const entry: MemberEntry = {
      memberId,
      identityPublicKey: channel.remoteIdentityPublicKey,
      announcement: announcementBytes.slice(),
    };
    const member: Member = { memberId, channel, room, nick: announcement.nick, entry };
    const welcome = encodeRecord({
      type: "welcome",
      memberId,
      members: [...room.members.values()].map((other) => other.entry),
    });
    // About 960 members fill one record; sending more would throw out of the socket handler.
    if (welcome.length > MAX_RECORD_BYTES) {
      this.#refuse(channel, RelayErrorCode.overloaded, `room "${room.name}" is full`);
      return undefined;
    }
    channel.send(welcome);
    const joined = encodeRecord({ type: "memberJoined", member: entry });
    for (const other of room.members.values()) this.#deliver(other, joined);
    room.members.set(memberId, member);
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
          from: member.memberId,
          message: record.message,
        });
        let recipients = 0;
        for (const other of member.room.members.values()) {
          if (other === member) continue;
          this.#deliver(other, deliver);
          recipients++;
        }
        member.channel.send(encodeRecord({ type: "ack", id: record.id, recipients }));
        return;
      }
      case "direct": {
        const target = member.room.members.get(record.to);
        // A target that just left is normal; its leave notice is on its way to the sender.
        if (target === undefined || target === member) return;
        this.#deliver(
          target,
          encodeRecord({ type: "directFrom", from: member.memberId, envelope: record.envelope }),
        );
        return;
      }
      case "join":
        this.#refuse(
          member.channel,
          RelayErrorCode.alreadyJoined,
          "this connection already joined a room",
        );
        return;
      default:
        this.#log(`dropping member ${member.memberId}: sent a relay-only record (${record.type})`);
        this.#refuse(
          member.channel,
          RelayErrorCode.malformed,
          `clients may not send ${record.type} records`,
        );
    }
  }

  #deliver(member: Member, record: Uint8Array): void {
    member.channel.send(record);
    const limit = this.#options.maxQueuedBytesPerConnection ?? 16 * 1024 * 1024;
    if (member.channel.bufferedBytes > limit) {
      this.#log(`dropping member ${member.memberId} (${member.nick}): it stopped reading`);
      member.channel.destroy();
    }
  }

  #leave(member: Member): void {
    const room = member.room;
    if (!room.members.delete(member.memberId)) return;
    this.#log(`leave room=${room.name} nick=${member.nick} member=${member.memberId}`);
    if (room.members.size === 0) {
      this.#rooms.delete(room.name);
      return;
    }
    const left = encodeRecord({ type: "memberLeft", memberId: member.memberId });
    for (const other of room.members.values()) this.#deliver(other, left);
  }
}
