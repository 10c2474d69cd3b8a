/**
 * What a client keeps of one durable room in its local store
 * (lib/client/local_store.ts, encrypted under a key derived from the
 * identity): the room state (sender keys, who holds which epoch, how far it
 * has read), its prekeys on the relay, and, unless history is off, every
 * message it sent or received.
 *
 * The order of writes is what makes durable rooms safe:
 * - before a message leaves, the sender key state after it is kept, so a
 *   crash can never make this client encrypt under the same iteration twice;
 * - before the relay is told a stored item was read (its acknowledgement,
 *   after which the relay may delete it), the state that read it is kept.
 *
 * @module
 */

import type { Identity } from "../identity/identity.ts";
import type { RoomEvent } from "../e2e/room.ts";
import type { RoomSession } from "../e2e/room.ts";
import { decodeRoomState, encodeRoomState, type RoomState } from "../e2e/room_state.ts";
import type { ClientStore, StateKey } from "./client_store.ts";
import type { HistoryEntry } from "./local_store_records.ts";
import { PrekeyKeeper } from "./prekey_keeper.ts";

/** History waits at most this long for a state write to carry it. */
const HISTORY_DELAY_MS = 100;

/** Options for {@linkcode RoomKeeper.open}. */
export interface RoomKeeperOptions {
  /** The local store; without one, nothing outlives the process. */
  store?: ClientStore;
  /** Keep the messages too (default true when there is a store). */
  history?: boolean;
  /** The relay's fingerprint. */
  relay: string;
  room: string;
  nick: string;
  identity: Identity;
  /** Clock in milliseconds since the Unix epoch. */
  now?: () => number;
}

/**
 * One room's persistence.
 *
 * @example
 * ```ts
 * const keeper = await RoomKeeper.open({ store, relay, room: "ops", nick: "alice", identity });
 * const session = new RoomSession({ ..., saved: keeper.saved, prekeys: keeper.prekeys });
 * await keeper.save(session);
 * ```
 */
export class RoomKeeper {
  /** What was kept from earlier connections, if anything. */
  readonly saved?: RoomState;
  /** The prekeys on this relay. */
  readonly prekeys: PrekeyKeeper;

  #options: RoomKeeperOptions;
  #history: HistoryEntry[] = [];
  #writes: Promise<void> = Promise.resolve();
  #historyTimer?: ReturnType<typeof setTimeout>;

  private constructor(options: RoomKeeperOptions, prekeys: PrekeyKeeper, saved?: RoomState) {
    this.#options = options;
    this.prekeys = prekeys;
    this.saved = saved;
  }

  /**
   * Loads what the store keeps for this relay, room and nick.
   *
   * @example
   * ```ts
   * const keeper = await RoomKeeper.open({ store, relay, room, nick, identity });
   * ```
   */
  static async open(options: RoomKeeperOptions): Promise<RoomKeeper> {
    const prekeys = await PrekeyKeeper.load({
      store: options.store,
      relay: options.relay,
      identity: options.identity,
      now: options.now,
    });
    const bytes = await options.store?.getState(stateKey(options));
    let saved: RoomState | undefined;
    if (bytes !== undefined) saved = decodeRoomState(bytes);
    return new RoomKeeper(options, prekeys, saved);
  }

  /** Whether messages are kept. @example `keeper.keepsHistory` */
  get keepsHistory(): boolean {
    return this.#options.store !== undefined && this.#options.history !== false;
  }

  /**
   * Queues the messages among `events` for the history.
   *
   * @example
   * ```ts
   * keeper.noteEvents(events);
   * ```
   */
  noteEvents(events: RoomEvent[]): void {
    if (!this.keepsHistory) return;
    for (const event of events) {
      if (event.type !== "message") continue;
      this.#history.push({
        relay: this.#options.relay,
        room: this.#options.room,
        time: event.time,
        sender: event.from.fingerprint,
        nick: event.from.nick,
        text: event.text,
        kind: event.direct ? "direct" : "group",
        direction: "in",
        ...(event.seq === undefined ? {} : { seq: event.seq }),
      });
    }
    this.#scheduleHistory();
  }

  /**
   * Queues messages this client sent for the history.
   *
   * @example
   * ```ts
   * keeper.noteSent({ texts: ["hi"], time: Date.now(), nick: "alice", direct: false });
   * ```
   */
  noteSent(options: { texts: string[]; time: number; nick: string; direct: boolean }): void {
    if (!this.keepsHistory) return;
    for (const text of options.texts) {
      this.#history.push({
        relay: this.#options.relay,
        room: this.#options.room,
        time: options.time,
        sender: this.#options.identity.fingerprint,
        nick: options.nick,
        text,
        kind: options.direct ? "direct" : "group",
        direction: "out",
      });
    }
    this.#scheduleHistory();
  }

  /**
   * Writes the queued history now, and resolves when every write so far is
   * on disk (before closing).
   *
   * @example
   * ```ts
   * await keeper.flushHistory();
   * ```
   */
  flushHistory(): Promise<void> {
    clearTimeout(this.#historyTimer);
    this.#historyTimer = undefined;
    const store = this.#options.store;
    const history = this.#history.splice(0);
    const write = this.#writes.then(async () => {
      if (store === undefined) return;
      for (const entry of history) await store.addHistory(entry);
    });
    this.#writes = write.catch(() => {});
    return write;
  }

  /** History is written within a moment even when no state write carries it (ephemeral rooms). */
  #scheduleHistory(): void {
    if (this.#history.length === 0 || this.#historyTimer !== undefined) return;
    this.#historyTimer = setTimeout(() => {
      this.#historyTimer = undefined;
      this.flushHistory().catch(() => {
        // Reported by the next save or flush, which runs after this one.
      });
    }, HISTORY_DELAY_MS);
  }

  /**
   * Keeps the session's state, the prekeys and the queued history, in that
   * order, one write after another. Resolves when all are on disk.
   *
   * @example
   * ```ts
   * await keeper.save(session);
   * relay.send({ type: "acknowledge", seq: session.lastSeq });
   * ```
   */
  save(session: RoomSession): Promise<void> {
    clearTimeout(this.#historyTimer);
    this.#historyTimer = undefined;
    const store = this.#options.store;
    const state = session.exportState();
    const history = this.#history.splice(0);
    const write = this.#writes.then(async () => {
      if (store === undefined) return;
      if (state !== undefined) {
        await store.putState(stateKey(this.#options), encodeRoomState(state));
      }
      await this.prekeys.save();
      for (const entry of history) await store.addHistory(entry);
    });
    // A failed write is the caller's to report; the next one still runs.
    this.#writes = write.catch(() => {});
    return write;
  }

  /**
   * Forgets the room (after leaving it): its state, not its history.
   *
   * @example
   * ```ts
   * await keeper.forget();
   * ```
   */
  async forget(): Promise<void> {
    await this.#writes;
    await this.#options.store?.deleteState(stateKey(this.#options));
  }
}

function stateKey(options: RoomKeeperOptions): StateKey {
  return { relay: options.relay, room: options.room, nick: options.nick, name: "room" };
}
