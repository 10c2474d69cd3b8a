/**
 * The relay store's SQLite schema, and opening its file: `<dir>/relay.db`
 * (mode 0600) in a directory of mode 0700, plus SQLite's `relay.db-wal` and
 * `relay.db-shm` beside it (same mode), through `lib/core/sqlite_file.ts`,
 * which refuses a foreign, newer, damaged or unwritable file in one line and
 * leaves it as it was. PROTOCOL.md ("Files on disk") documents every table
 * and column.
 *
 * @module
 */

import { join } from "node:path";
import type { DatabaseSync } from "node:sqlite";
import {
  describeSqliteError,
  openSqliteFile,
  openSqliteMemory,
  SqliteFileError,
} from "../../core/sqlite_file.ts";
import { StoreError } from "./relay_store.ts";

/** The file name inside the data directory. */
export const DATABASE_FILE = "relay.db";

/** `PRAGMA application_id`: "SCRS", securechat relay store. */
export const APPLICATION_ID = 0x53435253;

/** `PRAGMA user_version`: the schema below. */
export const SCHEMA_VERSION = 1;

/** The schema; PROTOCOL.md "Files on disk" explains each column. */
const SCHEMA = `
CREATE TABLE rooms (
  room_id     INTEGER PRIMARY KEY,
  name        BLOB NOT NULL UNIQUE,
  head_seq    INTEGER NOT NULL DEFAULT 0,
  next_member INTEGER NOT NULL DEFAULT 1,
  member_count INTEGER NOT NULL DEFAULT 0,
  item_count  INTEGER NOT NULL DEFAULT 0,
  item_bytes  INTEGER NOT NULL DEFAULT 0,
  last_time   INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE TABLE members (
  room_id      INTEGER NOT NULL,
  member_id    INTEGER NOT NULL,
  identity_key BLOB NOT NULL,
  nick         BLOB NOT NULL,
  announcement BLOB NOT NULL,
  joined_at    INTEGER NOT NULL,
  joined_seq   INTEGER NOT NULL,
  last_ack     INTEGER NOT NULL,
  tracked      INTEGER NOT NULL DEFAULT 0,
  pending      INTEGER NOT NULL DEFAULT 0,
  refusing     INTEGER NOT NULL DEFAULT 0,
  removed_at   INTEGER,
  PRIMARY KEY (room_id, member_id)
) STRICT, WITHOUT ROWID;
CREATE UNIQUE INDEX members_current_nick ON members (room_id, nick) WHERE removed_at IS NULL;
CREATE INDEX members_identity ON members (room_id, identity_key, nick);
CREATE INDEX members_lag ON members (room_id, last_ack) WHERE removed_at IS NULL;
CREATE TABLE items (
  room_id    INTEGER NOT NULL,
  seq        INTEGER NOT NULL,
  kind       INTEGER NOT NULL,
  sender     INTEGER NOT NULL,
  recipient  INTEGER NOT NULL,
  stored_at  INTEGER NOT NULL,
  body       BLOB NOT NULL,
  PRIMARY KEY (room_id, seq)
) STRICT, WITHOUT ROWID;
CREATE INDEX items_envelopes ON items (room_id, recipient, seq) WHERE kind = 2;
CREATE TABLE gaps (
  gap_id    INTEGER PRIMARY KEY,
  room_id   INTEGER NOT NULL,
  member_id INTEGER NOT NULL,
  from_seq  INTEGER NOT NULL,
  to_seq    INTEGER NOT NULL,
  count     INTEGER NOT NULL,
  reason    INTEGER NOT NULL
) STRICT;
CREATE INDEX gaps_member ON gaps (room_id, member_id, from_seq);
CREATE TABLE signed_prekeys (
  identity_key BLOB PRIMARY KEY,
  prekey_id    INTEGER NOT NULL,
  body         BLOB NOT NULL,
  updated_at   INTEGER NOT NULL
) STRICT;
CREATE TABLE one_time_prekeys (
  prekey_row   INTEGER PRIMARY KEY,
  identity_key BLOB NOT NULL,
  prekey_id    INTEGER NOT NULL,
  body         BLOB NOT NULL,
  added_at     INTEGER NOT NULL,
  UNIQUE (identity_key, prekey_id)
) STRICT;
PRAGMA application_id = ${APPLICATION_ID};
PRAGMA user_version = ${SCHEMA_VERSION};
`;

/** Item kinds in `items.kind`. */
export const ItemKind = { group: 1, envelope: 2 } as const;

/** Gap reasons in `gaps.reason`. */
export const GapReason = { expired: 1, refused: 2 } as const;

/** Where a database lives: a data directory, or memory (for `serve --ephemeral` and tests). */
export type DatabaseLocation = { dir: string } | { memory: true };

/** An open database and the name to use in messages. */
export interface OpenedDatabase {
  db: DatabaseSync;
  /** The file's path, or `memory`. */
  location: string;
}

/**
 * Opens (creating if needed) the relay's database: a file checked to be
 * ours and intact, in WAL mode with `synchronous=FULL`; or memory.
 *
 * @example
 * ```ts
 * const { db, location } = openDatabase({ dir: "/var/lib/securechat" });
 * ```
 */
export function openDatabase(where: DatabaseLocation): OpenedDatabase {
  try {
    if ("memory" in where) return { db: openSqliteMemory(SCHEMA), location: "memory" };
    const path = join(where.dir, DATABASE_FILE);
    const db = openSqliteFile({
      path,
      name: "relay store",
      directoryName: "relay data directory",
      elsewhere: "choose another --data directory",
      applicationId: APPLICATION_ID,
      schemaVersion: SCHEMA_VERSION,
      schema: SCHEMA,
    });
    return { db, location: path };
  } catch (error) {
    throw describeStoreError(error, "relay store");
  }
}

/**
 * Turns an SQLite or file error into a one-line {@linkcode StoreError}
 * naming the store's file; returns other errors unchanged.
 *
 * @example
 * ```ts
 * throw describeStoreError(error, "relay store /var/lib/securechat/relay.db");
 * ```
 */
export function describeStoreError(error: unknown, label: string): Error {
  const described = error instanceof SqliteFileError ? error : describeSqliteError(error, label);
  return described instanceof SqliteFileError ? new StoreError(described.message) : described;
}
