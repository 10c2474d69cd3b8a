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

import { type Announcement, verifyAnnouncement } from "../e2e/announcement.ts";
import {
  DirectFailure,
  type MemberEntry,
  OfflineReason,
  RelayErrorCode,
  type RelayRecord,
} from "../transport/records.ts";
import type { LogLevel } from "./observer.ts";
import type { MemberLink } from "./member_link.ts";
import { type RelayStore, type RosterMember, StoreInputError } from "./store/relay_store.ts";
import { sendStored } from "./catch_up.ts";
import { BadPrekeyError, LOW_PREKEY_STOCK, PrekeyDesk } from "./prekey_desk.ts";
import type { FeedEvent, FeedOfflineReason, RoomFeed } from "./room_feed.ts";

/** Bytes of pairwise messages held for one member while its catch-up runs. */
export const MAX_HELD_BYTES = 4 * 1024 * 1024;

/** Read watches (`watch-read`) one connection may have waiting. */
export const MAX_READ_WATCHES = 256;

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

/** A member connected now. */
interface Present {
  link: MemberLink;
  room: Room;
  memberId: number;
  nick: string;
  /** Every item for it up to here has been sent (catch-up, then live). */
  sentUpTo: number;
  /** False while its catch-up runs: live items then reach it through the catch-up. */
  live: boolean;
  /**
   * Pairwise messages that came for it during its catch-up, sent right after
   * it: a key its sender re-sends on seeing it online must not overtake the
   * stored messages under that sender's earlier iterations.
   */
  held: { record: RelayRecord; bytes: number }[];
  heldBytes: number;
  /** watch-read id → sequence. */
  watches: Map<number, number>;
  /** Set once it left, was replaced or disconnected. */
  gone: boolean;
}

interface Room {
  name: string;
  present: Map<number, Present>;
  /** Members connected to other relays sharing the store: member id → relay. */
  remote: Map<number, string>;
  /** Every item up to here has been handled for the live members. */
  deliveredTo: number;
  /** Stops hearing the room's feed. */
  unsubscribe?: () => void;
  /** Deliveries, in the order of the appends (sequence order). */
  chain: Promise<void>;
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
  #prekeys: PrekeyDesk;
  #pruneTimer: ReturnType<typeof setInterval>;
  #feed: RoomFeed | undefined;
  #pruning = false;

  /** @example `new DurableRooms({ store, log })` */
  constructor(options: DurableRoomsOptions) {
    this.#store = options.store;
    this.#log = options.log;
    this.#prekeys = new PrekeyDesk(options.store);
    this.#feed = options.feed;
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
      receive: (record) => after((member) => this.#handle(member, record)),
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
        .map((other) => this.#entry(room, other)),
    });
    room.present.set(member.memberId, present);
    this.#toOthers(present, { type: "memberOnline", member: this.#entry(room, member) });
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
    await this.#inOrder(room, async () => {
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

  /** Runs `step` after every delivery already chained in `room`; resolves when it ran. */
  #inOrder(room: Room, step: () => Promise<void> | void): Promise<void> {
    const done = room.chain.then(step);
    room.chain = done.catch((error) =>
      this.#log(`room ${room.name}: delivery failed: ${(error as Error).message}`, "error")
    );
    return done;
  }

  #handle(member: Present, record: RelayRecord): Promise<void> | void {
    switch (record.type) {
      case "publish":
        return this.#publish(member, record.id, record.message);
      case "storeFor":
        return this.#storeFor(member, record.id, record.to, record.envelope);
      case "direct":
        return this.#direct(member, record.to, record.envelope);
      case "getPrekeys":
        return this.#getPrekeys(member, record.id, record.memberId);
      case "putPrekeys":
        return this.#putPrekeys(member, record);
      case "acknowledge":
        return this.#acknowledge(member, record.seq);
      case "watchRead":
        return this.#watchRead(member, record.id, record.seq);
      case "leave":
        return this.#leave(member);
      case "rename":
        return this.#rename(member, record.announcement);
      case "join":
        member.link.refuse(
          "already-joined",
          RelayErrorCode.alreadyJoined,
          "this connection already joined a room",
          `dropping member ${member.memberId}: sent a second join`,
        );
        return;
      default:
        member.link.refuse(
          "malformed",
          RelayErrorCode.malformed,
          `clients may not send ${record.type} records`,
          `dropping member ${member.memberId}: sent a relay-only record (${record.type})`,
        );
    }
  }

  /** Stores a group message; delivers it in order and acks once it is durable. */
  #publish(member: Present, id: number, message: Uint8Array): void {
    const { room } = member;
    const appended = this.#store.appendGroup(room.name, { from: member.memberId, body: message });
    appended.catch(() => {}); // Reported in order below.
    void this.#inOrder(room, async () => {
      let result;
      try {
        result = await appended;
      } catch (error) {
        this.#storeFailed(member, error);
        return;
      }
      if (result.status === "refused") {
        this.#log(`room ${room.name}: message from ${member.memberId} refused: ${result.reason}`);
        const others = (await this.#store.listMembers(room.name)).length - 1;
        member.link.send({ type: "ack", id, seq: 0, online: 0, stored: 0, refused: others });
        return;
      }
      const refused = new Set(result.refused.map((entry) => entry.memberId));
      let online = 0;
      for (const id of this.#onlineIds(room)) {
        if (id !== member.memberId && !refused.has(id)) online++;
      }
      this.#announce({ type: "appended", room: room.name, seq: result.seq });
      await this.#deliverStored(room, result.seq, (other) => {
        if (refused.has(other.memberId) || other === member) return;
        other.link.send({ type: "deliver", seq: result.seq, from: member.memberId, message });
      });
      member.link.send({
        type: "ack",
        id,
        seq: result.seq,
        online,
        stored: Math.max(0, result.recipients - online),
        refused: refused.size,
      });
    });
  }

  /** Stores a prekey envelope for one roster member, delivered now if it is here. */
  #storeFor(member: Present, id: number, to: number, envelope: Uint8Array): void {
    const { room } = member;
    const appended = this.#store.appendEnvelope(room.name, {
      from: member.memberId,
      to,
      body: envelope,
    });
    appended.catch(() => {});
    void this.#inOrder(room, async () => {
      let result;
      try {
        result = await appended;
      } catch (error) {
        this.#storeFailed(member, error);
        return;
      }
      if (result.status === "refused") {
        this.#log(`room ${room.name}: envelope to ${to} refused: ${result.reason}`);
        member.link.send({ type: "ack", id, seq: 0, online: 0, stored: 0, refused: 1 });
        return;
      }
      this.#announce({ type: "appended", room: room.name, seq: result.seq });
      await this.#deliverStored(room, result.seq, (other) => {
        if (other.memberId !== to) return;
        other.link.send({
          type: "storedEnvelope",
          seq: result.seq,
          from: member.memberId,
          envelope,
        });
      });
      const here = room.present.has(to) || room.remote.has(to) ? 1 : 0;
      member.link.send({
        type: "ack",
        id,
        seq: result.seq,
        online: here,
        stored: 1 - here,
        refused: 0,
      });
    });
  }

  /** A pairwise message to a member connected now; never stored. */
  #direct(member: Present, to: number, envelope: Uint8Array): void {
    const target = member.room.present.get(to);
    if (target === undefined && member.room.remote.has(to)) {
      this.#announce({
        type: "direct",
        room: member.room.name,
        from: member.memberId,
        to,
        envelope,
      });
      return;
    }
    if (target === undefined || target === member) {
      member.link.send({
        type: "directFailed",
        to,
        reason: target === member ? DirectFailure.self : DirectFailure.noSuchMember,
      });
      return;
    }
    const record: RelayRecord = { type: "directFrom", from: member.memberId, envelope };
    if (target.live) {
      target.link.send(record);
      return;
    }
    if (target.heldBytes + envelope.length > MAX_HELD_BYTES) {
      member.link.send({ type: "directFailed", to, reason: DirectFailure.noSuchMember });
      return;
    }
    target.held.push({ record, bytes: envelope.length });
    target.heldBytes += envelope.length;
  }

  async #getPrekeys(member: Present, id: number, memberId: number): Promise<void> {
    const { room } = member;
    const target = await this.#current(room.name, memberId);
    if (target === undefined) {
      const none = new Uint8Array(0);
      member.link.send({ type: "prekeys", id, memberId, signedPrekey: none, oneTimePrekey: none });
      return;
    }
    const handout = await this.#prekeys.take({
      requester: `${room.name}/${member.memberId}`,
      target: target.identityKey,
    });
    member.link.send({
      type: "prekeys",
      id,
      memberId,
      signedPrekey: handout.signedPrekey,
      oneTimePrekey: handout.oneTimePrekey,
    });
    if (handout.left !== undefined && handout.left < LOW_PREKEY_STOCK) {
      // Every connection of that identity, in any room here, can top the stock up.
      for (const other of this.#connectionsOf(target.identityKey)) {
        other.link.send({ type: "prekeyCount", count: handout.left });
      }
    }
  }

  async #putPrekeys(
    member: Present,
    record: { signedPrekey: Uint8Array; oneTimePrekeys: Uint8Array[] },
  ): Promise<void> {
    let count: number;
    try {
      count = await this.#prekeys.put(member.link.identityKey, record);
    } catch (error) {
      if (!(error instanceof BadPrekeyError)) throw error;
      member.link.refuse(
        "bad-prekey",
        RelayErrorCode.badPrekey,
        `bad prekey: ${error.message}`,
        `dropping member ${member.memberId} in ${member.room.name}: bad prekey: ${error.message}`,
      );
      return;
    }
    member.link.send({ type: "prekeyCount", count });
  }

  async #acknowledge(member: Present, seq: number): Promise<void> {
    const { room } = member;
    let lastAck: number | undefined;
    try {
      lastAck = await this.#store.ack(room.name, member.memberId, seq);
    } catch (error) {
      if (!(error instanceof StoreInputError)) throw error;
      member.link.refuse(
        "malformed",
        RelayErrorCode.malformed,
        `acknowledged sequence ${seq} is not a position in this room`,
        `dropping member ${member.memberId} in ${room.name}: ack of ${seq}: ${error.message}`,
      );
      return;
    }
    if (lastAck === undefined) return;
    this.#announce({ type: "acked", room: room.name, memberId: member.memberId, seq: lastAck });
    await this.#checkWatches(room);
  }

  async #watchRead(member: Present, id: number, seq: number): Promise<void> {
    if (member.watches.size >= MAX_READ_WATCHES && !member.watches.has(id)) {
      member.link.refuse(
        "too-many-watches",
        RelayErrorCode.overloaded,
        `more than ${MAX_READ_WATCHES} read watches waiting; wait for their answers first`,
        `dropping member ${member.memberId}: over ${MAX_READ_WATCHES} read watches`,
      );
      return;
    }
    member.watches.set(id, seq);
    await this.#checkWatches(member.room);
  }

  /** Answers every watch whose sequence every other current member has acknowledged. */
  async #checkWatches(room: Room): Promise<void> {
    const watchers = [...room.present.values()].filter((member) => member.watches.size > 0);
    if (watchers.length === 0) return;
    const roster = await this.#store.listMembers(room.name);
    for (const watcher of watchers) {
      const others = roster.filter((entry) => entry.memberId !== watcher.memberId);
      const readTo = others.length === 0 ? Infinity : Math.min(...others.map((e) => e.lastAck));
      for (const [id, seq] of watcher.watches) {
        if (seq > readTo) continue;
        watcher.watches.delete(id);
        watcher.link.send({ type: "read", id, seq });
      }
    }
  }

  async #leave(member: Present): Promise<void> {
    const { room } = member;
    await this.#store.removeMember(room.name, member.memberId);
    this.#log(`left room=${room.name} nick=${member.nick} member=${member.memberId} for good`);
    this.#disconnected(member, OfflineReason.left);
    member.link.close();
    this.#announce({
      type: "offline",
      room: room.name,
      memberId: member.memberId,
      reason: "left",
    });
    // Someone waiting for everyone to read may now be waiting for one member fewer.
    await this.#checkWatches(room);
  }

  async #rename(member: Present, bytes: Uint8Array): Promise<void> {
    const { room, link } = member;
    let announcement: Announcement;
    try {
      announcement = verifyAnnouncement({ identityPublicKey: link.identityKey, bytes });
      if (announcement.room !== room.name) throw new Error("it names another room");
    } catch (error) {
      link.refuse(
        "bad-announcement",
        RelayErrorCode.badAnnouncement,
        `bad announcement in rename: ${(error as Error).message}`,
        `dropping member ${member.memberId}: bad rename: ${(error as Error).message}`,
      );
      return;
    }
    const renamed = await this.#store.renameMember(room.name, member.memberId, announcement.nick);
    if (renamed.status !== "renamed") {
      link.refuse(
        "nick-taken",
        RelayErrorCode.nickTaken,
        `nick "${announcement.nick}" is taken in room "${room.name}"; choose another`,
        `refused rename of member ${member.memberId} in ${room.name}: nick taken`,
      );
      return;
    }
    // The same identity under its new nick: this replaces the stored announcement.
    const updated = await this.#store.addMember(room.name, {
      identityKey: link.identityKey,
      nick: announcement.nick,
      announcement: bytes,
    });
    if (updated.status !== "existing") return;
    this.#log(
      `rename room=${room.name} member=${member.memberId} ${member.nick} -> ${announcement.nick}`,
    );
    member.nick = announcement.nick;
    const entry = this.#entry(room, updated.member);
    for (const other of room.present.values()) other.link.send({ type: "renamed", member: entry });
    this.#announce({ type: "renamed", room: room.name, memberId: member.memberId });
  }

  /** Takes a member off the present list; the others hear why. */
  #disconnected(member: Present, reason: number): void {
    if (member.gone) return;
    member.gone = true;
    const { room } = member;
    if (room.present.get(member.memberId) !== member) return;
    room.present.delete(member.memberId);
    this.#toOthers(member, { type: "memberOffline", memberId: member.memberId, reason });
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

  #storeFailed(member: Present, error: unknown): void {
    member.link.refuse(
      "store-failed",
      RelayErrorCode.storageFailed,
      "the relay's store failed; nothing of that request was kept; try again later",
      `store failed for member ${member.memberId} in ${member.room.name}: ${
        (error as Error).message
      }`,
    );
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

  #toOthers(member: Present, record: RelayRecord): void {
    for (const other of member.room.present.values()) {
      if (other !== member) other.link.send(record);
    }
  }

  #entry(room: Room, member: RosterMember): MemberEntry {
    return {
      memberId: member.memberId,
      identityPublicKey: member.identityKey,
      online: room.present.has(member.memberId) || room.remote.has(member.memberId),
      announcement: member.announcement,
    };
  }

  async #current(room: string, memberId: number): Promise<RosterMember | undefined> {
    const member = await this.#store.getMember(room, memberId);
    return member === undefined || member.removedAt !== undefined ? undefined : member;
  }

  *#connectionsOf(identityKey: Uint8Array): Iterable<Present> {
    for (const room of this.#rooms.values()) {
      for (const member of room.present.values()) {
        if (equalBytes(member.link.identityKey, identityKey)) yield member;
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

  /** Members online here or at another relay. */
  *#onlineIds(room: Room): Iterable<number> {
    yield* room.present.keys();
    for (const id of room.remote.keys()) if (!room.present.has(id)) yield id;
  }

  /**
   * Hands the item `seq` to the live members: at once through `push` when
   * every item before it has been handled (one relay: always), else by
   * reading from the store what each live member has not had (another relay
   * appended in between), which keeps every member's order.
   */
  async #deliverStored(room: Room, seq: number, push?: (member: Present) => void): Promise<void> {
    if (seq <= room.deliveredTo) return;
    if (push !== undefined && seq === room.deliveredTo + 1) {
      room.deliveredTo = seq;
      for (const member of room.present.values()) {
        if (!member.live || seq <= member.sentUpTo) continue;
        member.sentUpTo = seq;
        push(member);
      }
      return;
    }
    // Never past the store's own head: a feed event claiming a later item (another relay's
    // bug, or a hostile NATS publisher) must not stop the items that really come next.
    let head = room.deliveredTo;
    for (const member of [...room.present.values()]) {
      if (!member.live) continue;
      const position = await sendStored({
        store: this.#store,
        room: room.name,
        memberId: member.memberId,
        afterSeq: member.sentUpTo,
        link: member.link,
      });
      if (position === undefined) continue;
      member.sentUpTo = Math.max(member.sentUpTo, position.sentUpTo);
      head = Math.max(head, position.head);
    }
    room.deliveredTo = Math.max(room.deliveredTo, Math.min(seq, head));
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
        void this.#inOrder(room, () => this.#deliverStored(room, event.seq));
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
        if (event.reason !== "disconnected") void this.#checkWatches(room);
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
        void this.#checkWatches(room);
        return;
      case "direct": {
        const target = room.present.get(event.to);
        if (target === undefined) return;
        const record: RelayRecord = {
          type: "directFrom",
          from: event.from,
          envelope: event.envelope,
        };
        if (target.live) target.link.send(record);
        else if (target.heldBytes + event.envelope.length <= MAX_HELD_BYTES) {
          target.held.push({ record, bytes: event.envelope.length });
          target.heldBytes += event.envelope.length;
        }
        return;
      }
    }
  }

  async #rosterEntry(room: Room, memberId: number): Promise<MemberEntry | undefined> {
    const member = await this.#current(room.name, memberId).catch(() => undefined);
    return member === undefined ? undefined : this.#entry(room, member);
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

/** Omit over each member of a union. */
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
