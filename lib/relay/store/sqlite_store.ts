/**
 * The relay's store on SQLite (`node:sqlite`), the embedded default:
 * `<dir>/relay.db` in WAL mode. {@linkcode openMemoryRelayStore} is the same
 * code on an in-memory database, for `serve --ephemeral` and tests.
 *
 * **Durability.** Every call made during one event-loop turn runs in one
 * `BEGIN IMMEDIATE` transaction, committed with `synchronous=FULL` (the
 * write-ahead log is fsynced at each commit) before any of those calls
 * resolves: an append the relay has acknowledged survives `kill -9` of the
 * relay and a power cut (as far as the disk honours fsync). `commit: "each"`
 * commits every call on its own, which the bench uses as the baseline.
 *
 * Several processes may open the same file (SQLite serialises their
 * transactions; each waits up to 5 s for another's); nothing is cached
 * between calls, so each sees the others' writes.
 *
 * @module
 */

import type { DatabaseSync } from "node:sqlite";
import { type CommitMode, CommitQueue } from "../../core/commit_queue.ts";
import {
  type AddMemberResult,
  checkIdentityKey,
  type EnvelopeAppendResult,
  type EnvelopeItem,
  type GroupAppendResult,
  type GroupItem,
  type NewMember,
  type PrekeyHandout,
  type PrekeyStatus,
  type PrekeyUpload,
  type PruneOptions,
  type PruneResult,
  type PutPrekeysResult,
  type ReadOptions,
  type ReadResult,
  type RelayStore,
  type RenameResult,
  resolveLimits,
  type RosterMember,
  type StoreCounts,
  StoreError,
  type StoreLimits,
} from "./relay_store.ts";
import { type DatabaseLocation, describeStoreError, openDatabase } from "./sqlite_database.ts";
import { ItemTable } from "./sqlite_items.ts";
import { PrekeyTable } from "./sqlite_prekeys.ts";
import { Pruner } from "./sqlite_prune.ts";
import { RoomTable } from "./sqlite_rooms.ts";
import { RosterTable } from "./sqlite_roster.ts";

/** Options shared by both ways of opening a store. */
export interface StoreOptions {
  /** Limits; each one not given takes its default (`STORE_LIMIT_DEFAULTS`). */
  limits?: Partial<StoreLimits>;
  /** The store's clock in ms since the epoch (default `Date.now`); tests move it. */
  now?: () => number;
  /** `group` (default): one transaction per event-loop turn; `each`: one per call. */
  commit?: CommitMode;
}

/** Options for {@linkcode openSqliteRelayStore}. */
export interface SqliteStoreOptions extends StoreOptions {
  /** The data directory: created with mode 0700 when missing; holds `relay.db`. */
  dir: string;
}

/**
 * Opens the relay store in `dir` (creating it when missing). Throws a
 * {@linkcode StoreError} with one line naming the file when it cannot be
 * used (not a database, corrupt, another program's, unwritable, open to
 * other users); the file is then left exactly as it was.
 *
 * @example
 * ```ts
 * const store = await openSqliteRelayStore({ dir: "/var/lib/securechat" });
 * try {
 *   await store.addMember("ops", { identityKey, nick: "alice", announcement });
 * } finally {
 *   await store.close();
 * }
 * ```
 */
export function openSqliteRelayStore(options: SqliteStoreOptions): Promise<RelayStore> {
  return open({ dir: options.dir }, options);
}

/**
 * Opens an empty store held in memory: the same code and behaviour as the
 * file store, gone when closed.
 *
 * @example
 * ```ts
 * const store = await openMemoryRelayStore({ limits: { retentionMs: 60_000 } });
 * ```
 */
export function openMemoryRelayStore(options: StoreOptions = {}): Promise<RelayStore> {
  return open({ memory: true }, options);
}

function open(where: DatabaseLocation, options: StoreOptions): Promise<RelayStore> {
  try {
    const limits = resolveLimits(options.limits);
    const { db, location } = openDatabase(where);
    try {
      return Promise.resolve(
        new SqliteRelayStore({ db, location, limits, now: options.now, commit: options.commit }),
      );
    } catch (error) {
      db.close();
      throw error instanceof StoreError
        ? error
        : describeStoreError(error, `relay store ${location}`);
    }
  } catch (error) {
    return Promise.reject(error);
  }
}

interface SqliteRelayStoreOptions {
  db: DatabaseSync;
  location: string;
  limits: Readonly<StoreLimits>;
  now?: () => number;
  commit?: CommitMode;
}

/** {@linkcode RelayStore} on one SQLite database; made by the two open functions. */
class SqliteRelayStore implements RelayStore {
  readonly location: string;
  readonly limits: Readonly<StoreLimits>;
  #db: DatabaseSync;
  #queue: CommitQueue;
  #roster: RosterTable;
  #items: ItemTable;
  #pruner: Pruner;
  #prekeys: PrekeyTable;
  #counts: () => StoreCounts;
  #closed?: Promise<void>;

  constructor(options: SqliteRelayStoreOptions) {
    const { db, limits } = options;
    const now = options.now ?? Date.now;
    this.location = options.location;
    this.limits = limits;
    this.#db = db;
    this.#queue = new CommitQueue({
      database: db,
      mode: options.commit,
      describeError: (error) => describeStoreError(error, `relay store ${options.location}`),
    });
    const rooms = new RoomTable(db);
    this.#roster = new RosterTable({ db, rooms, limits, now });
    this.#items = new ItemTable({ db, rooms, roster: this.#roster, limits, now });
    this.#pruner = new Pruner({ db, rooms, limits, now });
    this.#prekeys = new PrekeyTable({ db, limits, now });
    const counts = db.prepare(
      "SELECT (SELECT count(*) FROM rooms) AS rooms, " +
        "(SELECT count(*) FROM members WHERE removed_at IS NULL) AS members, " +
        "(SELECT coalesce(sum(item_count), 0) FROM rooms) AS items, " +
        "(SELECT coalesce(sum(item_bytes), 0) FROM rooms) AS itemBytes, " +
        "(SELECT count(*) FROM gaps) AS gaps, " +
        "(SELECT count(*) FROM signed_prekeys) AS signedPrekeys, " +
        "(SELECT count(*) FROM one_time_prekeys) AS oneTimePrekeys",
    );
    this.#counts = () => ({ ...(counts.get() as unknown as StoreCounts) });
  }

  close(): Promise<void> {
    this.#closed ??= this.#queue.close().then(() => this.#db.close());
    return this.#closed;
  }

  addMember(room: string, member: NewMember): Promise<AddMemberResult> {
    return this.#queue.run(() => this.#roster.add(room, member));
  }

  findMember(room: string, identityKey: Uint8Array, nick: string) {
    return this.#queue.run(() => this.#roster.find(room, identityKey, nick));
  }

  getMember(room: string, memberId: number): Promise<RosterMember | undefined> {
    return this.#queue.run(() => this.#roster.get(room, memberId));
  }

  listMembers(room: string, options: { includeRemoved?: boolean } = {}) {
    return this.#queue.run(() => this.#roster.list(room, options.includeRemoved === true));
  }

  renameMember(room: string, memberId: number, nick: string): Promise<RenameResult> {
    return this.#queue.run(() => this.#roster.rename(room, memberId, nick));
  }

  removeMember(room: string, memberId: number): Promise<boolean> {
    return this.#queue.run(() => this.#roster.remove(room, memberId));
  }

  appendGroup(room: string, item: GroupItem): Promise<GroupAppendResult> {
    return this.#queue.run(() => this.#items.appendGroup(room, item));
  }

  appendEnvelope(room: string, item: EnvelopeItem): Promise<EnvelopeAppendResult> {
    return this.#queue.run(() => this.#items.appendEnvelope(room, item));
  }

  read(room: string, memberId: number, options: ReadOptions): Promise<ReadResult | undefined> {
    return this.#queue.run(() => this.#items.read(room, memberId, options));
  }

  ack(room: string, memberId: number, seq: number): Promise<number | undefined> {
    return this.#queue.run(() => this.#items.ack(room, memberId, seq));
  }

  prune(options: PruneOptions = {}): Promise<PruneResult> {
    return this.#queue.run(() => this.#pruner.prune(options));
  }

  putPrekeys(identityKey: Uint8Array, upload: PrekeyUpload): Promise<PutPrekeysResult> {
    return this.#queue.run(() => this.#prekeys.put(identityKey, upload));
  }

  takePrekeys(identityKey: Uint8Array): Promise<PrekeyHandout | undefined> {
    return this.#queue.run(() => this.#prekeys.take(identityKey));
  }

  prekeyStatus(identityKey: Uint8Array): Promise<PrekeyStatus> {
    return this.#queue.run(() => this.#prekeys.status(checkIdentityKey(identityKey)));
  }

  counts(): Promise<StoreCounts> {
    return this.#queue.run(() => this.#counts());
  }
}
