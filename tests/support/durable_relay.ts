/**
 * A durable relay played by hand, for tests of RoomSession in durable rooms:
 * a roster that outlives connections, a store with one sequence per room,
 * catch-up on reconnection, prekey bundles handed out once, and sessions
 * that pick up where the last connection left off through
 * exportState/saved. What a real relay does with SQLite, this one does with
 * arrays, so tests can also replay, reorder, withhold and leak stored items.
 *
 * @example
 * ```ts
 * const relay = new DurableRelay();
 * const alice = await relay.enrol("alice");
 * relay.connect(alice);
 * relay.say(alice, ["hello"]);
 * ```
 *
 * @module
 */

import assert from "node:assert/strict";
import { generateIdentity, type Identity } from "../../lib/identity/identity.ts";
import type { MemberEntry, RelayRecord } from "../../lib/transport/records.ts";
import { type RoomEvent, RoomSession } from "../../lib/e2e/room.ts";
import { decodeRoomState, encodeRoomState } from "../../lib/e2e/room_state.ts";
import { encodePrekeyBundle } from "../../lib/e2e/prekeys.ts";
import { PrekeyKeeper } from "../../lib/client/prekey_keeper.ts";

/** The room every test here uses. */
export const ROOM = "ops";

/** An item in the relay's store. */
export interface Stored {
  seq: number;
  from: number;
  /** Undefined: a group message for every member; else an envelope for one. */
  to?: number;
  bytes: Uint8Array;
}

/** A member as the relay knows it, with what its client keeps. */
export interface Person {
  nick: string;
  identity: Identity;
  memberId: number;
  prekeys: PrekeyKeeper;
  /** The signed prekey and one-time prekeys the relay holds for this person. */
  signedPrekey?: Uint8Array;
  oneTime: Uint8Array[];
  position: number;
  session?: RoomSession;
  /** Room state kept between connections (what the client's store keeps). */
  kept?: Uint8Array;
  events: RoomEvent[];
  removed: boolean;
}

/** The relay. */
export class DurableRelay {
  /**
   * Return false to keep a stored item from `to` during catch-up (a relay
   * that withholds); return a list to send those records instead (reorder,
   * replay, substitute).
   */
  catchUp: (to: Person, items: RelayRecord[]) => RelayRecord[] = (_to, items) => items;
  people = new Map<number, Person>();
  store: Stored[] = [];
  log: Uint8Array[] = [];
  #seq = 0;
  #nextId = 1;
  #now: () => number;

  /** @example `new DurableRelay({ now: () => clock })` */
  constructor(options: { now?: () => number } = {}) {
    this.#now = options.now ?? (() => 1_800_000_000_000);
  }
  #queue: { to: Person; record: RelayRecord }[] = [];

  async enrol(nick: string): Promise<Person> {
    const identity = generateIdentity();
    const prekeys = await PrekeyKeeper.load({ relay: "relay", identity });
    const upload = prekeys.upload({ oneTimeOnRelay: 0 })!;
    const person: Person = {
      nick,
      identity,
      memberId: this.#nextId++,
      prekeys,
      signedPrekey: upload.signedPrekey,
      oneTime: upload.oneTimePrekeys,
      position: 0,
      events: [],
      removed: false,
    };
    this.people.set(person.memberId, person);
    return person;
  }

  online(): Person[] {
    return [...this.people.values()].filter((p) => p.session !== undefined && !p.removed);
  }

  entry(person: Person, online: boolean): MemberEntry {
    const announcement = person.session?.announcement ??
      new RoomSession({ identity: person.identity, room: ROOM, nick: person.nick }).announcement;
    return {
      memberId: person.memberId,
      identityPublicKey: person.identity.publicKey,
      announcement,
      online,
    };
  }

  /** Connects `person`: welcome with the roster, then what was stored for it, then live. */
  connect(person: Person): void {
    const saved = person.kept ? decodeRoomState(person.kept) : undefined;
    person.session = new RoomSession({
      identity: person.identity,
      room: ROOM,
      nick: person.nick,
      saved,
      prekeys: person.prekeys,
      now: this.#now,
    });
    const others = [...this.people.values()].filter((p) => p !== person && !p.removed);
    this.#enqueue(person, {
      type: "welcome",
      memberId: person.memberId,
      durable: true,
      head: this.#seq,
      members: others.map((p) => this.entry(p, p.session !== undefined)),
    });
    for (const other of this.online()) {
      if (other !== person) {
        this.#enqueue(other, { type: "memberOnline", member: this.entry(person, true) });
      }
    }
    const stored: RelayRecord[] = [];
    for (const item of this.store) {
      if (item.seq <= person.position) continue;
      if (item.to === undefined && item.from !== person.memberId) {
        stored.push({ type: "deliver", seq: item.seq, from: item.from, message: item.bytes });
      } else if (item.to === person.memberId) {
        stored.push({
          type: "storedEnvelope",
          seq: item.seq,
          from: item.from,
          envelope: item.bytes,
        });
      }
    }
    for (const record of this.catchUp(person, stored)) this.#enqueue(person, record);
    this.#enqueue(person, { type: "caughtUp", seq: this.#seq });
    this.pump();
  }

  /** Disconnects `person`, keeping what its client would keep. */
  disconnect(person: Person, reason: 0 | 1 | 2 = 0): void {
    const state = person.session?.exportState();
    if (state) person.kept = encodeRoomState(state);
    person.position = person.session?.lastSeq ?? person.position;
    person.session = undefined;
    if (reason !== 0) person.removed = true;
    for (const other of this.online()) {
      this.#enqueue(other, { type: "memberOffline", memberId: person.memberId, reason });
    }
    this.pump();
  }

  /** `from` sends `texts`, handing its key to members away first. */
  say(from: Person, texts: string[]): Uint8Array {
    const session = from.session!;
    this.#route(from, session.prepareToSend());
    for (const memberId of session.keyHandoverNeeded()) {
      const to = this.people.get(memberId)!;
      const bundle = encodePrekeyBundle({
        signedPrekey: to.signedPrekey!,
        oneTimePrekey: to.oneTime.shift(),
      });
      const sealed = session.sealKeyFor(memberId, bundle);
      assert.ok("envelope" in sealed, "the bundle was accepted");
      this.#append({ from: from.memberId, to: memberId, bytes: sealed.envelope });
    }
    const { send, message } = session.encryptTexts(texts);
    this.#route(from, send);
    const seq = this.#append({ from: from.memberId, bytes: message });
    for (const other of this.online()) {
      if (other !== from) {
        this.#enqueue(other, { type: "deliver", seq, from: from.memberId, message });
      }
    }
    this.pump();
    return message;
  }

  inject(to: Person, record: RelayRecord): RoomEvent[] {
    const { send, events } = to.session!.handle(record);
    to.events.push(...events);
    this.#route(to, send);
    this.pump();
    return events;
  }

  pump(): void {
    for (let guard = 0; guard < 100_000 && this.#queue.length > 0; guard++) {
      const { to, record } = this.#queue.shift()!;
      if (to.session === undefined) continue;
      const { send, events } = to.session.handle(record);
      to.events.push(...events);
      this.#route(to, send);
    }
  }

  #append(item: Omit<Stored, "seq">): number {
    const seq = ++this.#seq;
    this.store.push({ ...item, seq });
    this.log.push(item.bytes);
    return seq;
  }

  #enqueue(to: Person, record: RelayRecord): void {
    this.#queue.push({ to, record });
  }

  #route(from: Person, records: RelayRecord[]): void {
    for (const record of records) {
      if (record.type !== "direct") continue;
      this.log.push(record.envelope);
      const target = this.people.get(record.to);
      if (target?.session === undefined) continue;
      this.#enqueue(target, { type: "directFrom", from: from.memberId, envelope: record.envelope });
    }
  }
}
