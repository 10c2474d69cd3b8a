/**
 * Durable rooms: the relay's side of rooms that outlive connections
 * (PROTOCOL.md, "Durable rooms: the relay"). The roster, the messages and
 * the envelopes live in a {@linkcode RelayStore}; this module keeps only
 * who is connected now, and the order in which stored items reach them.
 *
 * Every append is handed to the store at once (so the store batches them
 * into one transaction) and its delivery is chained per room in the order
 * the appends were made, which is the order of their sequence numbers: each
 * live member receives the room's items in order, and a sender's ack says
 * its message is durable. A member who comes back is sent what was kept for
 * it first (catch_up.ts), then joins the live order at the sequence its
 * catch-up reached, so nothing is sent twice or skipped.
 *
 * @module
 */

import type { Announcement } from "../e2e/announcement.ts";
import {
  type MemberEntry,
  OfflineReason,
  RelayErrorCode,
  type RelayRecord,
} from "../transport/records.ts";
import type { LogLevel } from "./observer.ts";
import type { MemberLink } from "./member_link.ts";
import { type RelayStore, StoreInputError } from "./store/relay_store.ts";
import { sendStored } from "./catch_up.ts";
import { PrekeyDesk } from "./prekey_desk.ts";
import { constantTimeEqual } from "../core/bytes.ts";
import type { FeedEvent, FeedOfflineReason, RoomFeed } from "./room_feed.ts";
import { type DistributiveOmit, MemberRequests } from "./member_requests.ts";
import {
  currentMember,
  deliverStored,
  inOrder,
  type Present,
  type Room,
  rosterEntry,
  sendOrHold,
  toOthers,
} from "./durable_room.ts";

export { MAX_HELD_BYTES } from "./durable_room.ts";
export { MAX_READ_WATCHES } from "./member_requests.ts";

/** Options of {@linkcode DurableRooms}. */
export interface DurableRoomsOptions {
  store: RelayStore;
  /** Receives one line per event, never content. */
  log: (line: string, level?: LogLevel) => void;
  /** How often expired and acknowledged items are deleted, in ms; default 60 s. */
  pruneIntervalMs?: number;
  /**
   * How relays sharing the store hear of each other's members and appends
   * (room_feed.ts); without one, this relay is the store's only user.
   */
  feed?: RoomFeed;
}

/**
 * The durable rooms of one relay.
 *
 * @example
 * ```ts
 * const rooms = new DurableRooms({ store, log: console.log });
 * const receive = rooms.join(link, announcement, announcementBytes);
 * receive({ type: "publish", id: 1, message });
 * ```
 */
export class DurableRooms {
  #store: RelayStore;
  #log: (line: string, level?: LogLevel) => void;
  #rooms = new Map<string, Room>();
  #requests: MemberRequests;
  #pruneTimer: ReturnType<typeof setInterval>;
  #feed: RoomFeed | undefined;
  #pruning = false;

  /** @example `new DurableRooms({ store, log })` */
  constructor(options: DurableRoomsOptions) {
    this.#store = options.store;
    this.#log = options.log;
    this.#feed = options.feed;
    this.#requests = new MemberRequests({
      store: options.store,
      prekeys: new PrekeyDesk(options.store),
      log: options.log,
      announce: (event) => this.#announce(event),
      disconnected: (member, reason) => this.#disconnected(member, reason),
      connectionsOf: (identityKey) => this.#connectionsOf(identityKey),
    });
    this.#pruneTimer = setInterval(() => this.#prune(), options.pruneIntervalMs ?? 60_000);
  }

  /** Members connected now, by room. @example `rooms.sizes()` */
  sizes(): Map<string, number> {
    return new Map([...this.#rooms].map(([name, room]) => [name, room.present.size]));
  }

  /** Stops the prune timer; the store stays open (its owner closes it). */
  close(): void {
    clearInterval(this.#pruneTimer);
  }

  /**
   * Joins `link` to the durable room its verified announcement names, and
   * returns the function its later records go to (in order; records that
   * come before the join is done wait for it), and the one to call when the
   * connection ends.
   */
  join(
    link: MemberLink,
    announcement: Announcement,
    bytes: Uint8Array,
  ): { receive: (record: RelayRecord) => void; ended: () => void } {
    let present: Present | undefined;
    let queue = this.#admit(link, announcement, bytes).then((admitted) => {
      present = admitted;
    }).catch((error) => this.#failed(link, error));
    const after = (step: (member: Present) => Promise<void> | void) => {
      queue = queue.then(() => present && !present.gone && !link.gone ? step(present) : undefined)
        .catch((error) => this.#failed(link, error));
    };
    return {
      receive: (record) => after((member) => this.#requests.handle(member, record)),
      ended: () => {
        queue = queue.then(() => {
          if (present) this.#disconnected(present, OfflineReason.wentOffline);
        });
      },
    };
  }

  async #admit(
    link: MemberLink,
    announcement: Announcement,
    bytes: Uint8Array,
  ): Promise<Present | undefined> {
    const store = this.#store;
    const name = announcement.room;
    const added = await store.addMember(name, {
      identityKey: link.identityKey,
      nick: announcement.nick,
      announcement: bytes,
    });
    if (added.status === "nickTaken") {
      link.refuse(
        "nick-taken",
        RelayErrorCode.nickTaken,
        `nick "${announcement.nick}" is taken in room "${name}"; choose another with --nick`,
        `refused ${link.peer} join: nick ${announcement.nick} is taken in ${name}`,
      );
      return undefined;
    }
    if (added.status === "rosterFull") {
      const full = `room "${name}" is full (its roster holds ${store.limits.maxMembersPerRoom})`;
      link.refuse("room-full", RelayErrorCode.overloaded, full, `refused ${link.peer}: ${full}`);
      return undefined;
    }
    const member = added.member;
    const roster = await store.listMembers(name);
    const first = await store.read(name, member.memberId, { afterSeq: member.lastAck, limit: 1 });
    const remote = await this.#feed?.online(name) ?? new Map<number, string>();
    if (link.gone || first === undefined) return undefined;
    // From here to the welcome nothing waits: the room's present list cannot change meanwhile.
    const older = this.#rooms.get(name)?.present.get(member.memberId);
    if (older !== undefined) {
      older.link.refuse(
        "replaced",
        RelayErrorCode.replaced,
        "replaced by a newer connection of the same member",
        `replacing ${older.link.peer} member ${member.memberId} in ${name}: it connected again`,
      );
      this.#disconnected(older, OfflineReason.wentOffline);
    }
    const room = this.#room(name, first.head, remote);
    room.remote.delete(member.memberId);
    const present: Present = {
      link,
      room,
      memberId: member.memberId,
      nick: member.nick,
      sentUpTo: member.lastAck,
      live: false,
      held: [],
      heldBytes: 0,
      watches: new Map(),
      gone: false,
    };
    link.send({
      type: "welcome",
      memberId: member.memberId,
      durable: true,
      head: first.head,
      members: roster.filter((other) => other.memberId !== member.memberId)
        .map((other) => rosterEntry(room, other)),
    });
    room.present.set(member.memberId, present);
    toOthers(present, { type: "memberOnline", member: rosterEntry(room, member) });
    this.#announce({ type: "online", room: name, memberId: member.memberId });
    this.#log(
      `join room=${name} nick=${member.nick} member=${member.memberId} durable ${link.fingerprint}`,
    );
    await this.#catchUp(present);
    return present;
  }

  /**
   * Sends what was kept for the member, most of it outside the room's
   * delivery chain (others are not held up), the rest inside it, where it
   * goes live.
   */
  async #catchUp(member: Present): Promise<void> {
    const { room, link } = member;
    const options = { store: this.#store, room: room.name, memberId: member.memberId, link };
    const early = await sendStored({ ...options, afterSeq: member.sentUpTo });
    if (early === undefined) return;
    member.sentUpTo = early.sentUpTo;
    await inOrder(this.#log, room, async () => {
      const rest = await sendStored({ ...options, afterSeq: member.sentUpTo });
      if (rest === undefined || member.gone) return;
      member.sentUpTo = rest.sentUpTo;
      member.live = true;
      link.send({ type: "caughtUp", seq: rest.sentUpTo });
      for (const { record } of member.held) link.send(record);
      member.held = [];
      member.heldBytes = 0;
    });
  }

  /** Takes a member off the present list; the others hear why. */
  #disconnected(member: Present, reason: number): void {
    if (member.gone) return;
    member.gone = true;
    const { room } = member;
    if (room.present.get(member.memberId) !== member) return;
    room.present.delete(member.memberId);
    toOthers(member, { type: "memberOffline", memberId: member.memberId, reason });
    if (reason === OfflineReason.wentOffline) {
      this.#log(`offline room=${room.name} nick=${member.nick} member=${member.memberId}`);
      this.#announce({
        type: "offline",
        room: room.name,
        memberId: member.memberId,
        reason: "disconnected",
      });
    }
    if (room.present.size === 0) {
      room.unsubscribe?.();
      this.#rooms.delete(room.name);
    }
  }

  #failed(link: MemberLink, error: unknown): void {
    if (link.gone) return;
    if (error instanceof StoreInputError) {
      link.refuse(
        "malformed",
        RelayErrorCode.malformed,
        `malformed request: ${error.message}`,
        `dropping ${link.peer}: ${error.message}`,
      );
      return;
    }
    link.refuse(
      "store-failed",
      RelayErrorCode.storageFailed,
      "the relay's store failed; nothing of that request was kept; try again later",
      `store failed for ${link.peer}: ${(error as Error).message}`,
    );
  }

  *#connectionsOf(identityKey: Uint8Array): Iterable<Present> {
    for (const room of this.#rooms.values()) {
      for (const member of room.present.values()) {
        if (constantTimeEqual(member.link.identityKey, identityKey)) yield member;
      }
    }
  }

  #room(name: string, head: number, remote: Map<number, string>): Room {
    let room = this.#rooms.get(name);
    if (room === undefined) {
      const created: Room = {
        name,
        present: new Map(),
        remote,
        deliveredTo: head,
        chain: Promise.resolve(),
      };
      created.unsubscribe = this.#feed?.subscribe(name, (event) => this.#heard(created, event));
      this.#rooms.set(name, created);
      room = created;
    }
    return room;
  }

  /** Tells the other relays sharing the store; a feed that fails is logged (the store has it all). */
  #announce(event: DistributiveOmit<FeedEvent, "origin">): void {
    const feed = this.#feed;
    if (feed === undefined) return;
    feed.publish({ ...event, origin: feed.origin } as FeedEvent).catch((error) =>
      this.#log(`room feed: could not announce ${event.type}: ${(error as Error).message}`, "warn")
    );
  }

  /** An event from another relay sharing the store. */
  #heard(room: Room, event: FeedEvent): void {
    switch (event.type) {
      case "appended":
        void inOrder(this.#log, room, () => deliverStored(this.#store, room, event.seq));
        return;
      case "online": {
        room.remote.set(event.memberId, event.origin);
        const here = room.present.get(event.memberId);
        if (here !== undefined) {
          here.link.refuse(
            "replaced",
            RelayErrorCode.replaced,
            "replaced by a newer connection of the same member",
            `replacing member ${event.memberId} in ${room.name}: it connected to ${event.origin}`,
          );
          this.#disconnected(here, OfflineReason.wentOffline);
        }
        void this.#rosterEntry(room, event.memberId).then((entry) => {
          if (entry === undefined) return;
          for (const member of room.present.values()) {
            member.link.send({ type: "memberOnline", member: entry });
          }
        });
        return;
      }
      case "offline": {
        if (room.remote.get(event.memberId) !== event.origin) return;
        room.remote.delete(event.memberId);
        const reason = OFFLINE_REASONS[event.reason];
        for (const member of room.present.values()) {
          member.link.send({ type: "memberOffline", memberId: event.memberId, reason });
        }
        if (event.reason !== "disconnected") void this.#requests.checkWatches(room);
        return;
      }
      case "renamed":
        void this.#rosterEntry(room, event.memberId).then((entry) => {
          if (entry === undefined) return;
          for (const member of room.present.values()) {
            member.link.send({ type: "renamed", member: entry });
          }
        });
        return;
      case "acked":
        void this.#requests.checkWatches(room);
        return;
      case "direct": {
        const target = room.present.get(event.to);
        if (target === undefined) return;
        const record: RelayRecord = {
          type: "directFrom",
          from: event.from,
          envelope: event.envelope,
        };
        sendOrHold(target, record, event.envelope.length);
        return;
      }
    }
  }

  async #rosterEntry(room: Room, memberId: number): Promise<MemberEntry | undefined> {
    const member = await currentMember(this.#store, room.name, memberId).catch(() => undefined);
    return member === undefined ? undefined : rosterEntry(room, member);
  }

  async #prune(): Promise<void> {
    if (this.#pruning) return;
    this.#pruning = true;
    try {
      for (let round = 0; round < 100; round++) {
        const result = await this.#store.prune();
        if (result.expired > 0) this.#log(`pruned ${result.expired} expired item(s)`);
        if (!result.more) break;
      }
    } catch (error) {
      this.#log(`prune failed: ${(error as Error).message}`, "error");
    } finally {
      this.#pruning = false;
    }
  }
}

const OFFLINE_REASONS: Record<FeedOfflineReason, number> = {
  disconnected: OfflineReason.wentOffline,
  left: OfflineReason.left,
  removed: OfflineReason.removed,
};
