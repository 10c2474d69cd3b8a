/**
 * A relay for attack tests, built from the real `lib/` pieces (the Noise
 * handshake of lib/transport/channel.ts, the records of lib/transport/records.ts, signed
 * announcements, room sessions) but under the test's control.
 *
 * It routes honestly by default, like lib/relay/relay.ts, and keeps a log of every
 * record in both directions, which is everything a malicious relay has. The
 * test can then misbehave: withhold records from one member (`filter`),
 * hand any record to any member (`inject`), re-send anything it logged, and
 * add puppet members: room sessions that run inside the relay, either with
 * an identity the relay holds (an intruder) or standing in for a genuine
 * member whose traffic the relay carries.
 *
 * @example
 * ```ts
 * const relay = await HostileRelay.start();
 * const alice = relay.addPuppet({ nick: "alice", room: "ops" });
 * const bob = await connectVictim({ relay, room: "ops", nick: "bob" });
 * alice.say(["hello"]);
 * relay.inject(relay.member(bob)!, relay.sentTo(bob).at(-1)!); // replay the last record
 * await relay.close();
 * ```
 *
 * @module
 */

import { createServer, type Server, type Socket } from "node:net";
import { verifyAnnouncement } from "../../../lib/e2e/announcement.ts";
import { acceptHandshake, type SecureChannel } from "../../../lib/transport/channel.ts";
import { ChatClient } from "../../../lib/client/client.ts";
import { generateIdentity, type Identity } from "../../../lib/identity/identity.ts";
import {
  decodeRecord,
  encodeRecord,
  type MemberEntry,
  type RelayRecord,
} from "../../../lib/transport/records.ts";
import { type RoomEvent, RoomSession } from "../../../lib/e2e/room.ts";
import type { TestClient } from "../../support/in_process.ts";

/** A member as the hostile relay sees it: a real connection or a puppet. */
export interface Endpoint {
  memberId: number;
  nick: string;
  room: string;
  entry: MemberEntry;
  /** Set for real connections. */
  channel?: SecureChannel;
  /** Set for puppets. */
  puppet?: Puppet;
}

/** One logged record. */
export interface Logged {
  /** `to`: the relay sent it to `memberId`; `from`: `memberId` sent it. */
  direction: "to" | "from";
  memberId: number;
  record: RelayRecord;
}

/** A room member simulated inside the relay with a real {@linkcode RoomSession}. */
export class Puppet {
  readonly identity: Identity;
  readonly session: RoomSession;
  readonly events: RoomEvent[] = [];
  endpoint!: Endpoint;
  #relay: HostileRelay;

  /** @example `relay.addPuppet({ nick: "alice", room: "ops" })` */
  constructor(relay: HostileRelay, identity: Identity, session: RoomSession) {
    this.#relay = relay;
    this.identity = identity;
    this.session = session;
  }

  /**
   * Publishes texts as one group message, routed to the room (subject to
   * the relay's filter). Returns the message bytes.
   *
   * @example
   * ```ts
   * const message = alice.say(["hi"]);
   * ```
   */
  say(texts: string[]): Uint8Array {
    const { send, message } = this.session.encryptTexts(texts);
    for (const record of send) this.#relay.route(this.endpoint, record);
    this.#relay.route(this.endpoint, { type: "publish", id: 0, message });
    return message;
  }

  /** Texts of the group messages this puppet was shown. @example `alice.texts()` */
  texts(): string[] {
    return this.events.flatMap((event) => event.type === "message" ? [event.text] : []);
  }
}

/**
 * The relay under test control.
 *
 * @example
 * ```ts
 * const relay = await HostileRelay.start();
 * relay.filter = (to, record) => !(to.nick === "bob" && record.type === "deliver");
 * ```
 */
export class HostileRelay {
  readonly identity: Identity;
  /** Every record sent or received, in order. */
  readonly log: Logged[] = [];
  /** Members currently in a room, by member id. */
  readonly members = new Map<number, Endpoint>();
  /** Return false to withhold `record` from `to` (honest routing only; `inject` ignores it). */
  filter: (to: Endpoint, record: RelayRecord) => boolean = () => true;
  /** Called for each join from a real connection; may change the welcome's member list. */
  onJoin: (joining: Endpoint, others: Endpoint[]) => MemberEntry[] = (_joining, others) =>
    others.map((other) => other.entry);
  #server: Server;
  #sockets = new Set<Socket>();
  #nextId = 1;
  #queue: { to: Endpoint; record: RelayRecord }[] = [];
  #pumping = false;
  #joinWaiters: ((endpoint: Endpoint) => void)[] = [];

  private constructor(server: Server, identity: Identity) {
    this.#server = server;
    this.identity = identity;
  }

  /** Listens on a free loopback port. @example `await HostileRelay.start()` */
  static start(options: { identity?: Identity } = {}): Promise<HostileRelay> {
    const server = createServer({ noDelay: true });
    const relay = new HostileRelay(server, options.identity ?? generateIdentity());
    server.on("connection", (socket) => relay.#accept(socket));
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen({ host: "127.0.0.1", port: 0 }, () => resolve(relay));
    });
  }

  /** The relay's fingerprint. @example `relay.fingerprint` */
  get fingerprint(): string {
    return this.identity.fingerprint;
  }

  /** The bound address. @example `relay.address.port` */
  get address(): { host: string; port: number } {
    const address = this.#server.address();
    if (address === null || typeof address === "string") throw new Error("not listening");
    return { host: address.address, port: address.port };
  }

  /** A fresh member id. @example `relay.nextMemberId()` */
  nextMemberId(): number {
    return this.#nextId++;
  }

  /** Resolves with the next member that joins over the network. @example `await relay.nextJoin()` */
  nextJoin(): Promise<Endpoint> {
    return new Promise((resolve) => this.#joinWaiters.push(resolve));
  }

  /** The endpoint of a connected client, by nick. @example `relay.byNick("bob")` */
  byNick(nick: string): Endpoint | undefined {
    return [...this.members.values()].find((member) => member.nick === nick);
  }

  /** Records logged in one direction for one member. @example `relay.logged("to", bob)` */
  logged(direction: "to" | "from", member: Endpoint): RelayRecord[] {
    return this.log.flatMap((entry) =>
      entry.direction === direction && entry.memberId === member.memberId ? [entry.record] : []
    );
  }

  /**
   * Adds a puppet member to `room`: a room session with `identity` (a new
   * one by default: an identity the relay holds). Existing members get a
   * member-joined record, the puppet a welcome.
   *
   * @example
   * ```ts
   * const mallory = relay.addPuppet({ nick: "mallory", room: "ops" });
   * ```
   */
  addPuppet(
    options: {
      nick: string;
      room: string;
      identity?: Identity;
      now?: () => number;
      /** Announce it only to these members (and list only them in its welcome). */
      only?: Endpoint[];
    },
  ): Puppet {
    const identity = options.identity ?? generateIdentity();
    const session = new RoomSession({
      identity,
      room: options.room,
      nick: options.nick,
      now: options.now,
    });
    const puppet = new Puppet(this, identity, session);
    const memberId = this.nextMemberId();
    const endpoint: Endpoint = {
      memberId,
      nick: options.nick,
      room: options.room,
      entry: {
        memberId,
        identityPublicKey: identity.publicKey,
        online: true,
        announcement: session.announcement,
      },
      puppet,
    };
    puppet.endpoint = endpoint;
    const audience = options.only ?? this.#roomOf(options.room);
    this.#admit(endpoint, audience.map((other) => other.entry), audience);
    return puppet;
  }

  /**
   * Removes a member and tells the others it left (or, with `silently`,
   * keeps quiet about it).
   *
   * @example
   * ```ts
   * relay.remove(alice.endpoint);
   * ```
   */
  remove(member: Endpoint, options: { silently?: boolean } = {}): void {
    if (!this.members.delete(member.memberId)) return;
    member.channel?.destroy();
    if (options.silently) return;
    for (const other of this.#roomOf(member.room)) {
      this.#enqueue(other, { type: "memberOffline", memberId: member.memberId, reason: 1 });
    }
    this.#pump();
  }

  /**
   * Hands `record` to `to` now, bypassing the filter, as a malicious relay
   * may at any time.
   *
   * @example
   * ```ts
   * relay.inject(bob, { type: "deliver", seq: 0, from: 99, message });
   * ```
   */
  inject(to: Endpoint, record: RelayRecord): void {
    this.#enqueue(to, record, true);
    this.#pump();
  }

  /** Routes a record as if `from` had sent it. @example `relay.route(alice.endpoint, record)` */
  route(from: Endpoint, record: RelayRecord): void {
    this.log.push({ direction: "from", memberId: from.memberId, record });
    const room = this.#roomOf(from.room);
    switch (record.type) {
      case "publish": {
        let recipients = 0;
        for (const other of room) {
          if (other === from) continue;
          this.#enqueue(other, {
            type: "deliver",
            seq: 0,
            from: from.memberId,
            message: record.message,
          });
          recipients++;
        }
        if (from.channel) {
          from.channel.send(
            encodeRecord({
              type: "ack",
              id: record.id,
              seq: 0,
              online: recipients,
              stored: 0,
              refused: 0,
            }),
          );
        }
        break;
      }
      case "direct": {
        const target = this.members.get(record.to);
        if (target && target.room === from.room && target !== from) {
          this.#enqueue(target, {
            type: "directFrom",
            from: from.memberId,
            envelope: record.envelope,
          });
        }
        break;
      }
      default:
        break;
    }
    this.#pump();
  }

  #roomOf(room: string): Endpoint[] {
    return [...this.members.values()].filter((member) => member.room === room);
  }

  #admit(
    endpoint: Endpoint,
    welcomeMembers: MemberEntry[],
    others: Endpoint[] = this.#roomOf(endpoint.room),
  ): void {
    this.members.set(endpoint.memberId, endpoint);
    this.#enqueue(endpoint, {
      type: "welcome",
      memberId: endpoint.memberId,
      durable: false,
      head: 0,
      members: welcomeMembers,
    });
    for (const other of others) {
      this.#enqueue(other, { type: "memberOnline", member: endpoint.entry });
    }
    this.#pump();
  }

  #enqueue(to: Endpoint, record: RelayRecord, bypass = false): void {
    if (!bypass && !this.filter(to, record)) return;
    this.#queue.push({ to, record });
  }

  #pump(): void {
    if (this.#pumping) return;
    this.#pumping = true;
    try {
      // Bounded: puppets answer only with directs, and only to new keys and members.
      for (let guard = 0; guard < 100_000 && this.#queue.length > 0; guard++) {
        const { to, record } = this.#queue.shift()!;
        this.log.push({ direction: "to", memberId: to.memberId, record });
        if (to.channel) {
          to.channel.send(encodeRecord(record));
        } else if (to.puppet) {
          const { send, events } = to.puppet.session.handle(record);
          to.puppet.events.push(...events);
          for (const out of send) this.route(to, out);
        }
      }
    } finally {
      this.#pumping = false;
    }
  }

  async #accept(socket: Socket): Promise<void> {
    this.#sockets.add(socket);
    socket.on("error", () => {});
    socket.on("close", () => this.#sockets.delete(socket));
    let channel: SecureChannel;
    try {
      channel = await acceptHandshake({ socket, identity: this.identity, timeoutMs: 3_000 });
    } catch {
      socket.destroy();
      return;
    }
    let endpoint: Endpoint | undefined;
    channel.onRecord = (bytes) => {
      const record = decodeRecord(bytes);
      if (endpoint === undefined) {
        if (record.type !== "join") return;
        const announcement = verifyAnnouncement({
          identityPublicKey: channel.remoteIdentityPublicKey,
          bytes: record.announcement,
        });
        const memberId = this.nextMemberId();
        endpoint = {
          memberId,
          nick: announcement.nick,
          room: announcement.room,
          entry: {
            memberId,
            identityPublicKey: channel.remoteIdentityPublicKey,
            online: true,
            announcement: record.announcement.slice(),
          },
          channel,
        };
        this.log.push({ direction: "from", memberId, record });
        const welcome = this.onJoin(endpoint, this.#roomOf(announcement.room));
        this.#admit(endpoint, welcome);
        for (const wake of this.#joinWaiters.splice(0)) wake(endpoint);
        return;
      }
      this.route(endpoint, record);
    };
    channel.onClose = () => {
      if (endpoint) this.remove(endpoint);
    };
    channel.start();
  }

  /** Cuts every connection and stops listening. @example `await relay.close()` */
  close(): Promise<void> {
    for (const member of this.members.values()) member.channel?.destroy();
    for (const socket of this.#sockets) socket.destroy();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }
}

/**
 * Connects a real {@linkcode ChatClient} to the hostile relay (pinning its
 * fingerprint) and records its events, like `joinRoom` does for the real
 * relay.
 *
 * @example
 * ```ts
 * const bob = await connectVictim({ relay, room: "ops", nick: "bob" });
 * ```
 */
export async function connectVictim(options: {
  relay: HostileRelay;
  room: string;
  nick: string;
  identity?: Identity;
  isTrusted?: (member: { nick: string; fingerprint: string }) => boolean;
}): Promise<TestClient & { endpoint: Endpoint }> {
  const identity = options.identity ?? generateIdentity();
  const events: RoomEvent[] = [];
  const joined = options.relay.nextJoin();
  const result = {
    identity,
    events,
    closed: undefined as { error: Error | null } | undefined,
    texts: () =>
      events.flatMap((event) => event.type === "message" && !event.direct ? [event.text] : []),
    warnings: () => events.flatMap((event) => event.type === "warning" ? [event.code] : []),
  };
  const client = await ChatClient.connect({
    host: "127.0.0.1",
    port: options.relay.address.port,
    identity,
    room: options.room,
    nick: options.nick,
    isTrusted: options.isTrusted,
    verifyRelay: ({ fingerprint }) => {
      if (fingerprint !== options.relay.fingerprint) throw new Error("unexpected relay");
    },
    timeoutMs: 3_000,
    onEvent: (event) => events.push(event),
    onClose: (error) => {
      result.closed = { error: error ?? null };
    },
  });
  return Object.assign(result, { client, endpoint: await joined });
}
