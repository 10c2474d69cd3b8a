/**
 * What a member of a durable room asks of the relay once joined (PROTOCOL.md,
 * "Durable rooms: the relay"): publish and store-for (stored, then
 * delivered in the room's order, acknowledged once durable), direct
 * (live only), prekeys, acknowledgements and read receipts, leave and
 * rename.
 *
 * @module
 */

import { type Announcement, verifyAnnouncement } from "../e2e/announcement.ts";
import {
  DirectFailure,
  OfflineReason,
  RelayErrorCode,
  type RelayRecord,
} from "../transport/records.ts";
import type { LogLevel } from "./observer.ts";
import { type RelayStore, StoreInputError } from "./store/relay_store.ts";
import { BadPrekeyError, LOW_PREKEY_STOCK, type PrekeyDesk } from "./prekey_desk.ts";
import type { FeedEvent } from "./room_feed.ts";
import {
  currentMember,
  deliverStored,
  inOrder,
  onlineIds,
  type Present,
  type Room,
  rosterEntry,
  sendOrHold,
} from "./durable_room.ts";

/** Read watches (`watch-read`) one connection may have waiting. */
export const MAX_READ_WATCHES = 256;

/** Omit over each member of a union. */
export type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** What the requests need of the durable rooms that own them. */
export interface RequestContext {
  store: RelayStore;
  prekeys: PrekeyDesk;
  log: (line: string, level?: LogLevel) => void;
  /** Tells the other relays sharing the store (a no-op for a relay alone). */
  announce: (event: DistributiveOmit<FeedEvent, "origin">) => void;
  /** Takes a member off its room's present list; the others hear why. */
  disconnected: (member: Present, reason: number) => void;
  /** Every connection of an identity, in any room here. */
  connectionsOf: (identityKey: Uint8Array) => Iterable<Present>;
}

/**
 * The requests of joined members of durable rooms.
 *
 * @example
 * ```ts
 * const requests = new MemberRequests(context);
 * await requests.handle(member, { type: "acknowledge", seq: 41 });
 * ```
 */
export class MemberRequests {
  #ctx: RequestContext;

  /** @example `new MemberRequests({ store, prekeys, log, announce, disconnected, connectionsOf })` */
  constructor(context: RequestContext) {
    this.#ctx = context;
  }

  /** Handles one record of a joined member. */
  handle(member: Present, record: RelayRecord): Promise<void> | void {
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

  /**
   * Runs `then` with an append's result in the room's delivery order (the
   * append itself was handed to the store at once, to be batched); a store
   * failure ends that member's connection with error 11 instead.
   */
  #afterAppend<T>(
    member: Present,
    appended: Promise<T>,
    then: (result: T) => Promise<void>,
  ): void {
    appended.catch(() => {}); // Reported in order below.
    void inOrder(this.#ctx.log, member.room, async () => {
      let result: T;
      try {
        result = await appended;
      } catch (error) {
        this.#storeFailed(member, error);
        return;
      }
      await then(result);
    });
  }

  /** Stores a group message; delivers it in order and acks once it is durable. */
  #publish(member: Present, id: number, message: Uint8Array): void {
    const { room } = member;
    const appended = this.#ctx.store.appendGroup(room.name, {
      from: member.memberId,
      body: message,
    });
    this.#afterAppend(member, appended, async (result) => {
      if (result.status === "refused") {
        this.#ctx.log(
          `room ${room.name}: message from ${member.memberId} refused: ${result.reason}`,
        );
        const others = (await this.#ctx.store.listMembers(room.name)).length - 1;
        member.link.send({ type: "ack", id, seq: 0, online: 0, stored: 0, refused: others });
        return;
      }
      const refused = new Set(result.refused.map((entry) => entry.memberId));
      let online = 0;
      for (const id of onlineIds(room)) {
        if (id !== member.memberId && !refused.has(id)) online++;
      }
      this.#ctx.announce({ type: "appended", room: room.name, seq: result.seq });
      await deliverStored(this.#ctx.store, room, result.seq, (other) => {
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
    const appended = this.#ctx.store.appendEnvelope(room.name, {
      from: member.memberId,
      to,
      body: envelope,
    });
    this.#afterAppend(member, appended, async (result) => {
      if (result.status === "refused") {
        this.#ctx.log(`room ${room.name}: envelope to ${to} refused: ${result.reason}`);
        member.link.send({ type: "ack", id, seq: 0, online: 0, stored: 0, refused: 1 });
        return;
      }
      this.#ctx.announce({ type: "appended", room: room.name, seq: result.seq });
      await deliverStored(this.#ctx.store, room, result.seq, (other) => {
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
      this.#ctx.announce({
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
    if (!sendOrHold(target, record, envelope.length)) {
      member.link.send({ type: "directFailed", to, reason: DirectFailure.noSuchMember });
    }
  }

  async #getPrekeys(member: Present, id: number, memberId: number): Promise<void> {
    const { room } = member;
    const target = await currentMember(this.#ctx.store, room.name, memberId);
    if (target === undefined) {
      const none = new Uint8Array(0);
      member.link.send({ type: "prekeys", id, memberId, signedPrekey: none, oneTimePrekey: none });
      return;
    }
    const handout = await this.#ctx.prekeys.take({
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
      for (const other of this.#ctx.connectionsOf(target.identityKey)) {
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
      count = await this.#ctx.prekeys.put(member.link.identityKey, record);
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
      lastAck = await this.#ctx.store.ack(room.name, member.memberId, seq);
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
    this.#ctx.announce({ type: "acked", room: room.name, memberId: member.memberId, seq: lastAck });
    await this.checkWatches(room);
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
    await this.checkWatches(member.room);
  }

  /** Answers every watch whose sequence every other current member has acknowledged. */
  async checkWatches(room: Room): Promise<void> {
    const watchers = [...room.present.values()].filter((member) => member.watches.size > 0);
    if (watchers.length === 0) return;
    const roster = await this.#ctx.store.listMembers(room.name);
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
    await this.#ctx.store.removeMember(room.name, member.memberId);
    this.#ctx.log(`left room=${room.name} nick=${member.nick} member=${member.memberId} for good`);
    this.#ctx.disconnected(member, OfflineReason.left);
    member.link.close();
    this.#ctx.announce({
      type: "offline",
      room: room.name,
      memberId: member.memberId,
      reason: "left",
    });
    // Someone waiting for everyone to read may now be waiting for one member fewer.
    await this.checkWatches(room);
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
    const renamed = await this.#ctx.store.renameMember(
      room.name,
      member.memberId,
      announcement.nick,
    );
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
    const updated = await this.#ctx.store.addMember(room.name, {
      identityKey: link.identityKey,
      nick: announcement.nick,
      announcement: bytes,
    });
    if (updated.status !== "existing") return;
    this.#ctx.log(
      `rename room=${room.name} member=${member.memberId} ${member.nick} -> ${announcement.nick}`,
    );
    member.nick = announcement.nick;
    const entry = rosterEntry(room, updated.member);
    for (const other of room.present.values()) other.link.send({ type: "renamed", member: entry });
    this.#ctx.announce({ type: "renamed", room: room.name, memberId: member.memberId });
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
}
