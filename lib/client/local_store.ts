/**
 * The client's local store: one SQLite file in `$SECURECHAT_HOME`
 * (`client.db`, mode 0600) holding (a) state blobs the room layer hands it
 * per (relay fingerprint, room, nick, name) — sender keys, prekey secrets,
 * the last acknowledged sequence — and (b) the history of messages received
 * and sent, unless the user keeps none.
 *
 * Everything in it is sealed under keys derived from the identity's secret
 * key (`local_store_keys.ts`), so a passphrase-protected identity protects
 * history too, another identity cannot read it, a changed value is refused,
 * and a value moved to another row, room or column no longer opens. Lookups
 * use keyed hashes of the names, so the file does not show which relays,
 * rooms or nicks it is about either. History is a plaintext copy the user
 * chose to keep, protected at rest; message keys are still deleted after
 * use.
 *
 * Writes are group-committed like the relay's store: every call of one
 * event-loop turn in one transaction, fsynced (WAL, `synchronous=FULL`)
 * before any of them resolves.
 *
 * @example
 * ```ts
 * const store = await openLocalStore({ path: join(home, LOCAL_STORE_FILE), identity });
 * await store.addHistory({ relay, room: "ops", time, sender, nick: "bob", text: "hi",
 *   kind: "group", direction: "in", seq: 17 });
 * const { rows } = await store.history(relay, "ops", { since: Date.now() - 3_600_000 });
 * await store.close();
 * ```
 *
 * @module
 */

import type { DatabaseSync, StatementSync } from "node:sqlite";
import { CommitQueue } from "../core/commit_queue.ts";
import { describeSqliteError, openSqliteFile, SqliteFileError } from "../core/sqlite_file.ts";
import type { LocalStoreKeys } from "./local_store_keys.ts";
import {
  encodeRecord,
  type HistoryEntry,
  type HistoryRow,
  LocalStoreInputError,
} from "./local_store_records.ts";
import {
  type ClientStore,
  historyPlace,
  type HistoryQuery,
  historyQuery,
  type HistoryResult,
  LocalStoreError,
  MAX_STATE_BYTES,
  openHistory,
  roomTag,
  stateDoesNotOpen,
  type StateKey,
  statePlace,
  stateTag,
  unlockStore,
} from "./client_store.ts";

export { type HistoryEntry, type HistoryRow, LocalStoreInputError };
export {
  type ClientStore,
  type HistoryQuery,
  type HistoryResult,
  LocalStoreError,
  MAX_HISTORY_LIMIT,
  MAX_STATE_BYTES,
  type StateKey,
} from "./client_store.ts";

/** The store's file name in `$SECURECHAT_HOME`. */
export const LOCAL_STORE_FILE = "client.db";

/** `PRAGMA application_id`: "SCCS", securechat client store. */
const APPLICATION_ID = 0x53434353;
const SCHEMA_VERSION = 1;

const SCHEMA = `
CREATE TABLE meta (name TEXT PRIMARY KEY, value BLOB NOT NULL) STRICT;
CREATE TABLE state (tag BLOB PRIMARY KEY, value BLOB NOT NULL) STRICT;
CREATE TABLE history (
  id       INTEGER PRIMARY KEY AUTOINCREMENT,
  room_tag BLOB NOT NULL,
  record   BLOB NOT NULL
) STRICT;
CREATE INDEX history_room ON history (room_tag, id);
PRAGMA application_id = ${APPLICATION_ID};
PRAGMA user_version = ${SCHEMA_VERSION};
`;

/** Options of {@linkcode openLocalStore}. */
export interface LocalStoreOptions {
  /** The file, usually `$SECURECHAT_HOME/client.db`. */
  path: string;
  /** The identity whose secret key protects the store. */
  identity: { secretKey: Uint8Array };
  /** Clock in ms (default `Date.now`). */
  now?: () => number;
}

/**
 * Opens (creating if needed) the local store at `path` for `identity`.
 * Throws a {@linkcode LocalStoreError} when the file is not a store, is
 * damaged, cannot be written, or was made by another identity; the file is
 * then left as it was.
 *
 * @example
 * ```ts
 * const store = await openLocalStore({ path: "/home/me/.config/securechat/client.db", identity });
 * ```
 */
export function openLocalStore(options: LocalStoreOptions): Promise<LocalStore> {
  const label = `client store ${options.path}`;
  let db: DatabaseSync | undefined;
  try {
    db = openSqliteFile({
      path: options.path,
      name: "client store",
      directoryName: "state directory",
      elsewhere: "set SECURECHAT_HOME to another directory",
      applicationId: APPLICATION_ID,
      schemaVersion: SCHEMA_VERSION,
      schema: SCHEMA,
    });
    const keys = unlock(db, label, options.identity.secretKey);
    return Promise.resolve(
      new LocalStore({ db, keys, label, path: options.path, now: options.now }),
    );
  } catch (error) {
    try {
      db?.close();
    } catch {
      // The error below is what matters.
    }
    return Promise.reject(toLocalStoreError(error, label));
  }
}

/** Reads (or, in a new file, writes) the salt and the key check; derives the keys. */
function unlock(db: DatabaseSync, label: string, secretKey: Uint8Array): LocalStoreKeys {
  const read = db.prepare("SELECT value FROM meta WHERE name = ?");
  const value = (name: string) => (read.get(name) as { value: Uint8Array } | undefined)?.value;
  db.exec("BEGIN IMMEDIATE");
  try {
    const { keys, created } = unlockStore({
      label,
      secretKey,
      salt: value("salt"),
      check: value("check"),
    });
    if (created) {
      const write = db.prepare("INSERT INTO meta (name, value) VALUES (?, ?)");
      write.run("salt", created.salt);
      write.run("check", created.check);
    }
    db.exec("COMMIT");
    return keys;
  } catch (error) {
    db.exec("ROLLBACK");
    throw error;
  }
}

function toLocalStoreError(error: unknown, label: string): Error {
  if (error instanceof LocalStoreError || error instanceof LocalStoreInputError) return error;
  const described = error instanceof SqliteFileError ? error : describeSqliteError(error, label);
  return described instanceof SqliteFileError ? new LocalStoreError(described.message) : described;
}

interface LocalStoreParts {
  db: DatabaseSync;
  keys: LocalStoreKeys;
  label: string;
  path: string;
  now?: () => number;
}

/**
 * An open local store; made by {@linkcode openLocalStore}.
 *
 * @example
 * ```ts
 * await store.putState({ relay, room: "ops", nick: "alice", name: "position" }, bytes);
 * ```
 */
export class LocalStore implements ClientStore {
  /** The file. */
  readonly path: string;
  #db: DatabaseSync;
  #keys: LocalStoreKeys;
  #label: string;
  #now: () => number;
  #queue: CommitQueue;
  #putState: StatementSync;
  #getState: StatementSync;
  #deleteState: StatementSync;
  #insertHistory: StatementSync;
  #sealHistory: StatementSync;
  #newest: StatementSync;
  #page: StatementSync;
  #closed?: Promise<void>;

  /** Use {@linkcode openLocalStore}. */
  constructor(parts: LocalStoreParts) {
    const { db } = parts;
    this.path = parts.path;
    this.#db = db;
    this.#keys = parts.keys;
    this.#label = parts.label;
    this.#now = parts.now ?? Date.now;
    this.#queue = new CommitQueue({
      database: db,
      describeError: (error) => toLocalStoreError(error, parts.label),
    });
    this.#putState = db.prepare(
      "INSERT INTO state (tag, value) VALUES (?, ?) ON CONFLICT (tag) DO UPDATE SET value = excluded.value",
    );
    this.#getState = db.prepare("SELECT value FROM state WHERE tag = ?");
    this.#deleteState = db.prepare("DELETE FROM state WHERE tag = ?");
    this.#insertHistory = db.prepare(
      "INSERT INTO history (room_tag, record) VALUES (?, x'') RETURNING id",
    );
    this.#sealHistory = db.prepare("UPDATE history SET record = ? WHERE id = ?");
    this.#newest = db.prepare(
      "SELECT id, record FROM history WHERE room_tag = ? ORDER BY id DESC LIMIT 1",
    );
    this.#page = db.prepare(
      "SELECT id, record FROM history WHERE room_tag = ? AND id < ? ORDER BY id DESC LIMIT ?",
    );
  }

  /**
   * Stores (replacing) the state blob `key`.
   *
   * @example
   * ```ts
   * await store.putState({ relay, room: "ops", nick: "alice", name: "sender-keys" }, bytes);
   * ```
   */
  putState(key: StateKey, value: Uint8Array): Promise<void> {
    return this.#queue.run(() => {
      const tag = this.#stateTag(key);
      if (!(value instanceof Uint8Array) || value.length > MAX_STATE_BYTES) {
        throw new LocalStoreInputError(`a state value is at most ${MAX_STATE_BYTES} bytes`);
      }
      this.#putState.run(tag, this.#keys.seal(statePlace(tag), value));
    });
  }

  /**
   * The state blob `key`, or undefined when there is none. Throws a
   * {@linkcode LocalStoreError} when it was changed or damaged.
   *
   * @example
   * ```ts
   * const bytes = await store.getState({ relay, room: "ops", nick: "alice", name: "position" });
   * ```
   */
  getState(key: StateKey): Promise<Uint8Array | undefined> {
    return this.#queue.run(() => {
      const tag = this.#stateTag(key);
      const row = this.#getState.get(tag) as { value: Uint8Array } | undefined;
      if (row === undefined) return undefined;
      const value = this.#keys.open(statePlace(tag), row.value);
      if (value === undefined) throw stateDoesNotOpen(this.#label, key);
      return value;
    });
  }

  /** Deletes the state blob `key`; true if there was one. @example `await store.deleteState(key)` */
  deleteState(key: StateKey): Promise<boolean> {
    return this.#queue.run(() => Number(this.#deleteState.run(this.#stateTag(key)).changes) > 0);
  }

  /**
   * Records one message. Its `recordedAt` is now, or the room's latest one
   * if the clock went back.
   *
   * @example
   * ```ts
   * const row = await store.addHistory(entry);
   * ```
   */
  addHistory(entry: HistoryEntry): Promise<HistoryRow> {
    return this.#queue.run(() => {
      const roomTag = this.#roomTag(entry.relay, entry.room);
      const newest = this.#newest.get(roomTag) as { id: number; record: Uint8Array } | undefined;
      const recordedAt = Math.max(
        this.#now(),
        newest === undefined ? 0 : this.#decode(roomTag, newest)?.recordedAt ?? 0,
      );
      const plaintext = encodeRecord(entry, recordedAt);
      const id = (this.#insertHistory.get(roomTag) as { id: number }).id;
      this.#sealHistory.run(this.#keys.seal(historyPlace(roomTag, id), plaintext), id);
      return { ...entry, id, recordedAt };
    });
  }

  /**
   * The history of one room of one relay, oldest first: the latest `limit`
   * rows, only those recorded since `since` when given.
   *
   * @example
   * ```ts
   * const { rows, refused } = await store.history(relay, "ops", { since, limit: 50 });
   * ```
   */
  history(relay: string, room: string, query: HistoryQuery = {}): Promise<HistoryResult> {
    return this.#queue.run(() => {
      const roomTag = this.#roomTag(relay, room);
      const { limit, since } = historyQuery(query);
      const rows: HistoryRow[] = [];
      let refused = 0;
      let before = Number.MAX_SAFE_INTEGER;
      // Newest first, stopping at the first row recorded before `since` (recordedAt never goes
      // backwards within a room), so a query costs what it returns.
      scan: while (rows.length < limit) {
        const page = this.#page.all(roomTag, before, 256) as { id: number; record: Uint8Array }[];
        for (const raw of page) {
          before = raw.id;
          const row = this.#decode(roomTag, raw);
          if (row === undefined || row.relay !== relay || row.room !== room) {
            refused++;
            continue;
          }
          if (row.recordedAt < since) break scan;
          rows.push(row);
          if (rows.length >= limit) break scan;
        }
        if (page.length < 256) break;
      }
      return { rows: rows.reverse(), refused };
    });
  }

  /** Finishes pending calls, forgets the keys and closes the file. @example `await store.close()` */
  close(): Promise<void> {
    this.#closed ??= this.#queue.close().then(() => {
      this.#keys.destroy();
      this.#db.close();
    });
    return this.#closed;
  }

  #decode(tag: Uint8Array, raw: { id: number; record: Uint8Array }): HistoryRow | undefined {
    return openHistory(this.#keys, tag, raw);
  }

  #stateTag(key: StateKey): Uint8Array {
    return stateTag(this.#keys, key);
  }

  #roomTag(relay: string, room: string): Uint8Array {
    return roomTag(this.#keys, relay, room);
  }
}
