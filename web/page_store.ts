/// <reference lib="dom" />
/**
 * The page's client store: what the command line keeps in `client.db`
 * (a durable room's keys and position, this identity's prekeys, the
 * history), kept in this browser's IndexedDB with the same sealing
 * (lib/client/client_store.ts): every value XChaCha20-Poly1305-sealed under
 * keys derived from the identity's secret key and bound to its place, and
 * looked up by HMAC tags, so the database shows neither texts nor room
 * names and nothing opens without the unlocked identity.
 *
 * @module
 */

import { toHex } from "../lib/core/bytes.ts";
import type { LocalStoreKeys } from "../lib/client/local_store_keys.ts";
import {
  type ClientStore,
  historyPlace,
  type HistoryQuery,
  historyQuery,
  type HistoryResult,
  MAX_STATE_BYTES,
  openHistory,
  roomTag,
  stateDoesNotOpen,
  type StateKey,
  statePlace,
  stateTag,
  unlockStore,
} from "../lib/client/client_store.ts";
import {
  encodeRecord,
  type HistoryEntry,
  type HistoryRow,
  LocalStoreInputError,
} from "../lib/client/local_store_records.ts";
import type { PageDatabase } from "./idb.ts";

const LABEL = "the store in this browser";

/**
 * A {@linkcode ClientStore} in IndexedDB.
 *
 * @example
 * ```ts
 * const store = await PageStore.open(db, identity);
 * const { rows } = await store.history(relayFingerprint, "ops", { limit: 50 });
 * ```
 */
export class PageStore implements ClientStore {
  #db: PageDatabase;
  #keys: LocalStoreKeys;

  private constructor(db: PageDatabase, keys: LocalStoreKeys) {
    this.#db = db;
    this.#keys = keys;
  }

  /**
   * Opens the store for `identity`, creating its salt and key check the
   * first time. Throws {@linkcode LocalStoreError} when it was made by
   * another identity (or its check was changed).
   */
  static async open(db: PageDatabase, identity: { secretKey: Uint8Array }): Promise<PageStore> {
    const { keys, created } = unlockStore({
      label: LABEL,
      secretKey: identity.secretKey,
      salt: await db.get<Uint8Array>("clientMeta", "salt"),
      check: await db.get<Uint8Array>("clientMeta", "check"),
    });
    if (created) {
      await db.put("clientMeta", "salt", created.salt);
      await db.put("clientMeta", "check", created.check);
    }
    return new PageStore(db, keys);
  }

  async putState(key: StateKey, value: Uint8Array): Promise<void> {
    const tag = stateTag(this.#keys, key);
    if (!(value instanceof Uint8Array) || value.length > MAX_STATE_BYTES) {
      throw new LocalStoreInputError(`a state value is at most ${MAX_STATE_BYTES} bytes`);
    }
    await this.#db.put("clientState", toHex(tag), this.#keys.seal(statePlace(tag), value));
  }

  async getState(key: StateKey): Promise<Uint8Array | undefined> {
    const tag = stateTag(this.#keys, key);
    const sealed = await this.#db.get<unknown>("clientState", toHex(tag));
    if (sealed === undefined) return undefined;
    const value = sealed instanceof Uint8Array
      ? this.#keys.open(statePlace(tag), sealed)
      : undefined;
    if (value === undefined) throw stateDoesNotOpen(LABEL, key);
    return value;
  }

  async deleteState(key: StateKey): Promise<boolean> {
    const name = toHex(stateTag(this.#keys, key));
    const had = await this.#db.get("clientState", name) !== undefined;
    await this.#db.delete("clientState", name);
    return had;
  }

  async addHistory(entry: HistoryEntry): Promise<HistoryRow> {
    const tag = roomTag(this.#keys, entry.relay, entry.room);
    const room = toHex(tag);
    let newest = 0;
    await this.#db.scanHistory(room, (id, record) => {
      newest = openHistory(this.#keys, tag, { id, record })?.recordedAt ?? 0;
      return false;
    });
    // recordedAt never goes back within a room (history queries stop at the first older one).
    const recordedAt = Math.max(Date.now(), newest);
    const plaintext = encodeRecord(entry, recordedAt);
    const id = await this.#db.addHistory(
      room,
      (id) => this.#keys.seal(historyPlace(tag, id), plaintext),
    );
    return { ...entry, id, recordedAt };
  }

  async history(relay: string, room: string, query: HistoryQuery = {}): Promise<HistoryResult> {
    const { limit, since } = historyQuery(query);
    const tag = roomTag(this.#keys, relay, room);
    const rows: HistoryRow[] = [];
    let refused = 0;
    await this.#db.scanHistory(toHex(tag), (id, record) => {
      const row = openHistory(this.#keys, tag, { id, record });
      if (row === undefined || row.relay !== relay || row.room !== room) {
        refused++;
        return true;
      }
      if (row.recordedAt < since) return false;
      rows.push(row);
      return rows.length < limit;
    });
    return { rows: rows.reverse(), refused };
  }

  /** Deletes a room's history kept in this browser. @example `await store.forget(relay, "ops")` */
  async forgetHistory(relay: string, room: string): Promise<void> {
    await this.#db.deleteHistory(toHex(roomTag(this.#keys, relay, room)));
  }

  /** Forgets the keys; the store is unusable afterwards. @example `store.close()` */
  close(): void {
    this.#keys.destroy();
  }
}
