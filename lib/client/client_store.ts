/**
 * What a chat client keeps between connections, whatever holds it: the
 * {@linkcode ClientStore} interface, and the sealing both stores share
 * (lookup tags and the place each sealed value belongs to, PROTOCOL.md
 * "The client's local store"). `local_store.ts` keeps it in SQLite for the
 * command line; the web page keeps it in IndexedDB (`web/page_store.ts`).
 * Free of `node:` modules, so the page can bundle it.
 *
 * @module
 */

import { utf8 } from "../core/bytes.ts";
import { randomBytes } from "@noble/ciphers/utils.js";
import { LocalStoreKeys, SALT_BYTES, type ValuePlace } from "./local_store_keys.ts";
import {
  checkName,
  decodeRecord,
  type HistoryEntry,
  type HistoryRow,
  LocalStoreInputError,
} from "./local_store_records.ts";

/** Largest state value. */
export const MAX_STATE_BYTES = 16 * 1024 * 1024;

/** Rows a history query returns at most. */
export const MAX_HISTORY_LIMIT = 100_000;

/** Where the key check sits. */
export const CHECK: ValuePlace = { table: "meta", row: utf8("check"), column: "value" };

/**
 * The local store could not be opened, read or written, or belongs to
 * another identity. One line naming the file, with what to do.
 *
 * @example
 * ```ts
 * throw new LocalStoreError("client store /h/client.db belongs to another identity; ...");
 * ```
 */
export class LocalStoreError extends Error {
  /** @example `new LocalStoreError("client store /h/client.db: disk full")` */
  constructor(message: string) {
    super(message);
    this.name = "LocalStoreError";
  }
}

/** Which state blob: per relay, room and nick, several named blobs. */
export interface StateKey {
  /** Fingerprint of the relay. */
  relay: string;
  room: string;
  nick: string;
  /** What it is, chosen by the room layer: `sender-keys`, `prekeys`, `position`. */
  name: string;
}

/** A history query. */
export interface HistoryQuery {
  /** Only rows recorded at or after this time (ms). */
  since?: number;
  /** At most this many rows, the latest ones (default 1,000). */
  limit?: number;
}

/** What a history query found. */
export interface HistoryResult {
  /** Oldest first. */
  rows: HistoryRow[];
  /** Rows that did not open or decode (changed or damaged): skipped, never shown. */
  refused: number;
}

/**
 * Where a client keeps room state, prekeys and history. Every value is
 * sealed (XChaCha20-Poly1305) under a key derived from the identity, bound
 * to its place, so a value moved elsewhere does not open.
 *
 * @example
 * ```ts
 * async function keep(store: ClientStore, key: StateKey, bytes: Uint8Array) {
 *   await store.putState(key, bytes);
 * }
 * ```
 */
export interface ClientStore {
  /** Stores (replacing) the state blob `key`. */
  putState(key: StateKey, value: Uint8Array): Promise<void>;
  /** The state blob `key`; throws {@linkcode LocalStoreError} when it does not open. */
  getState(key: StateKey): Promise<Uint8Array | undefined>;
  /** Deletes the state blob `key`; true if there was one. */
  deleteState(key: StateKey): Promise<boolean>;
  /** Records one message. */
  addHistory(entry: HistoryEntry): Promise<HistoryRow>;
  /** A room's history, oldest first. */
  history(relay: string, room: string, query?: HistoryQuery): Promise<HistoryResult>;
}

/**
 * The lookup tag of a state blob.
 *
 * @example
 * ```ts
 * const tag = stateTag(keys, { relay, room: "ops", nick: "alice", name: "position" });
 * ```
 */
export function stateTag(keys: LocalStoreKeys, key: StateKey): Uint8Array {
  return keys.tag("state", [
    checkName(key.relay, "relay"),
    checkName(key.room, "room"),
    checkName(key.nick, "nick"),
    checkName(key.name, "state name"),
  ]);
}

/** The lookup tag of a room's history. @example `roomTag(keys, relay, "ops")` */
export function roomTag(keys: LocalStoreKeys, relay: string, room: string): Uint8Array {
  return keys.tag("room", [checkName(relay, "relay"), checkName(room, "room")]);
}

/** Where a state value belongs. @example `keys.seal(statePlace(tag), bytes)` */
export function statePlace(tag: Uint8Array): ValuePlace {
  return { table: "state", row: tag, column: "value" };
}

/** Where a history record belongs: its room and its row. @example `historyPlace(tag, 7)` */
export function historyPlace(roomTag: Uint8Array, id: number): ValuePlace {
  // The row is its room's tag and its id: a record moved to another room or row does not open.
  const row = new Uint8Array(roomTag.length + 8);
  row.set(roomTag);
  new DataView(row.buffer).setBigUint64(roomTag.length, BigInt(id));
  return { table: "history", row, column: "record" };
}

/** The error for a state value that does not open. @example `throw stateDoesNotOpen(label, key)` */
export function stateDoesNotOpen(label: string, key: StateKey): LocalStoreError {
  return new LocalStoreError(
    `${label}: the state "${key.name}" of room ${key.room} does not open (changed or ` +
      "damaged); it was left as it is: delete it to start that room's state afresh",
  );
}

/**
 * Opens and decodes a history record; undefined when it does not open or
 * decode (changed, damaged, or moved from another room or row).
 *
 * @example
 * ```ts
 * const row = openHistory(keys, tag, { id, record });
 * ```
 */
export function openHistory(
  keys: LocalStoreKeys,
  tag: Uint8Array,
  raw: { id: number; record: Uint8Array },
): HistoryRow | undefined {
  const plaintext = keys.open(historyPlace(tag, raw.id), raw.record);
  if (plaintext === undefined) return undefined;
  try {
    return { id: raw.id, ...decodeRecord(plaintext) };
  } catch {
    return undefined;
  }
}

/**
 * Checks a history query and fills in its defaults.
 *
 * @example
 * ```ts
 * const { limit, since } = historyQuery({ limit: 50 });
 * ```
 */
export function historyQuery(query: HistoryQuery = {}): { limit: number; since: number } {
  const limit = query.limit ?? 1_000;
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_HISTORY_LIMIT) {
    throw new LocalStoreInputError(`limit must be a whole number from 1 to ${MAX_HISTORY_LIMIT}`);
  }
  const since = query.since ?? 0;
  if (!Number.isSafeInteger(since)) throw new LocalStoreInputError("since must be a time in ms");
  return { limit, since };
}

/**
 * Derives a store's keys from the identity and its stored salt and key
 * check; for a new store (neither stored), makes both, to be stored by the
 * caller. Throws {@linkcode LocalStoreError} when the check is missing or
 * does not open (another identity's store, or a changed check).
 *
 * @example
 * ```ts
 * const { keys, created } = unlockStore({ label, secretKey, salt, check });
 * if (created) await save(created.salt, created.check);
 * ```
 */
export function unlockStore(options: {
  label: string;
  secretKey: Uint8Array;
  salt?: Uint8Array;
  check?: Uint8Array;
}): { keys: LocalStoreKeys; created?: { salt: Uint8Array; check: Uint8Array } } {
  const { label, secretKey, salt, check } = options;
  if (salt === undefined && check === undefined) {
    const fresh = randomBytes(SALT_BYTES);
    const keys = LocalStoreKeys.derive(secretKey, fresh);
    return { keys, created: { salt: fresh, check: keys.seal(CHECK, new Uint8Array(0)) } };
  }
  if (
    !(salt instanceof Uint8Array) || !(check instanceof Uint8Array) || salt.length !== SALT_BYTES
  ) {
    throw new LocalStoreError(
      `${label} has lost its key check; it was left as it is: move it away to start an empty one`,
    );
  }
  const keys = LocalStoreKeys.derive(secretKey, salt);
  if (keys.open(CHECK, check) === undefined) {
    keys.destroy();
    throw new LocalStoreError(
      `${label} belongs to another identity (or its key check was changed); it was left as ` +
        "it is: use the identity it was made with, or move it away",
    );
  }
  return { keys };
}
