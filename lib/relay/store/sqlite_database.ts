/**
 * Opening the relay's SQLite file safely, and its schema. A file that is not
 * ours, is damaged, or cannot be written makes {@linkcode openDatabase} fail
 * with one line that names the file and says what to do, and the file is
 * left exactly as it was: every check reads before anything is written.
 *
 * Layout: `<dir>/relay.db` (mode 0600) in a directory of mode 0700, plus
 * SQLite's `relay.db-wal` and `relay.db-shm` beside it (same mode).
 * PROTOCOL.md ("Files on disk") documents every table and column.
 *
 * `node:sqlite` is loaded when a store is opened, not when this module is
 * imported: the CLI's other commands do not pay for it, and a Node without
 * it gets a message saying which Node to use.
 *
 * @module
 */

import {
  accessSync,
  closeSync,
  constants,
  fsyncSync,
  mkdirSync,
  openSync,
  statSync,
} from "node:fs";
import { join } from "node:path";
import process from "node:process";
import type { DatabaseSync } from "node:sqlite";
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

type SqliteModule = typeof import("node:sqlite");

/** Loads `node:sqlite`, or explains which runtime has it. */
function loadSqlite(): SqliteModule {
  let module: SqliteModule | undefined;
  try {
    module = process.getBuiltinModule?.("node:sqlite") as SqliteModule | undefined;
  } catch {
    module = undefined;
  }
  if (module?.DatabaseSync === undefined) {
    throw new StoreError(
      `the relay store needs node:sqlite, which this runtime (Node ${process.version}) lacks; ` +
        "run securechat with Node 22.13 or newer, the single executable, or Deno 2.9",
    );
  }
  return module;
}

/**
 * Opens (creating if needed) the relay's database, checks that it is ours
 * and intact, and sets WAL mode with `synchronous=FULL`.
 *
 * @example
 * ```ts
 * const { db, location } = openDatabase({ dir: "/var/lib/securechat" });
 * ```
 */
export function openDatabase(where: DatabaseLocation): OpenedDatabase {
  const sqlite = loadSqlite();
  if ("memory" in where) {
    const db = new sqlite.DatabaseSync(":memory:");
    db.exec(SCHEMA);
    return { db, location: "memory" };
  }
  const path = join(where.dir, DATABASE_FILE);
  prepareFiles(where.dir, path);
  // Checked through a read-only connection: closing a read-write one would checkpoint the
  // write-ahead log into the file, and a file that fails its checks must stay as it is.
  const empty = isEmptyFile(path);
  if (!empty) withDatabase(sqlite, path, true, (db) => checkDatabase(db, path));
  const db = withDatabase(sqlite, path, false, (db) => {
    if (empty) {
      // Before WAL mode, which writes the header: a crash in between leaves an empty file.
      db.exec(`BEGIN IMMEDIATE;${SCHEMA}COMMIT;`);
    }
    configure(db, path);
    return db;
  }, { keepOpen: true });
  return { db, location: path };
}

/** Opens `path`, runs `work`, closes (unless `keepOpen` and it succeeded); errors in one line. */
function withDatabase<T>(
  sqlite: SqliteModule,
  path: string,
  readOnly: boolean,
  work: (db: DatabaseSync) => T,
  options: { keepOpen?: boolean } = {},
): T {
  let db: DatabaseSync;
  try {
    db = new sqlite.DatabaseSync(path, { readOnly });
  } catch (error) {
    throw describeSqliteError(error, path);
  }
  let ok = false;
  try {
    const result = work(db);
    ok = true;
    return result;
  } catch (error) {
    throw error instanceof StoreError ? error : describeSqliteError(error, path);
  } finally {
    if (!ok || !options.keepOpen) {
      try {
        db.close();
      } catch {
        // Closing after a failure; the error thrown above is what matters.
      }
    }
  }
}

/** Creates the directory (0700) and an empty file (0600) when missing; checks both when present. */
function prepareFiles(dir: string, path: string): void {
  const posix = process.platform !== "win32";
  let madeDir = false;
  try {
    if (!statSync(dir).isDirectory()) {
      throw new StoreError(
        `relay data directory ${dir} is not a directory; choose another --data directory`,
      );
    }
  } catch (error) {
    if (error instanceof StoreError) throw error;
    if ((error as { code?: string }).code !== "ENOENT") throw fileError(error, dir, "directory");
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      madeDir = true;
    } catch (mkdirError) {
      throw fileError(mkdirError, dir, "directory");
    }
  }
  if (posix && !madeDir) {
    const mode = statSync(dir).mode & 0o777;
    if (mode & 0o077) {
      throw new StoreError(
        `relay data directory ${dir} is open to other users (mode ${octal(mode)}); ` +
          `run chmod 700 ${dir}`,
      );
    }
  }
  try {
    // Created by us, empty, owner-only, so SQLite's -wal and -shm files inherit mode 0600.
    closeSync(openSync(path, "wx", 0o600));
    syncDirectory(dir);
  } catch (error) {
    if ((error as { code?: string }).code !== "EEXIST") throw fileError(error, path, "file");
  }
  const stats = statSync(path);
  if (!stats.isFile()) {
    throw new StoreError(`relay store ${path} is not a regular file; move it away`);
  }
  if (posix && stats.mode & 0o077) {
    throw new StoreError(
      `relay store ${path} can be read by other users (mode ${octal(stats.mode & 0o777)}); ` +
        `run chmod 600 ${path}`,
    );
  }
  try {
    // SQLite would otherwise open an unwritable file read-only and fail at the first write.
    accessSync(path, constants.R_OK | constants.W_OK);
    accessSync(dir, constants.W_OK | constants.X_OK);
  } catch (error) {
    throw fileError(error, (error as { path?: string }).path ?? path, "file");
  }
}

/** A database that is not empty must be ours, of a schema we know, and intact; reads only. */
function checkDatabase(db: DatabaseSync, path: string): void {
  if (pragmaNumber(db, "page_count") === 0) {
    // SQLite takes a file shorter than its header for an empty database; we never write one.
    throw new StoreError(
      `relay store ${path} is not an SQLite database (too short); it was left as it is: ` +
        "move it away to start an empty store, or restore it from a backup",
    );
  }
  const applicationId = pragmaNumber(db, "application_id");
  if (applicationId !== APPLICATION_ID) {
    throw new StoreError(
      `relay store ${path} is an SQLite database of another program (application_id ` +
        `0x${applicationId.toString(16)}); it was left as it is: choose another --data directory`,
    );
  }
  const version = pragmaNumber(db, "user_version");
  if (version > SCHEMA_VERSION) {
    throw new StoreError(
      `relay store ${path} has schema version ${version}, newer than this securechat knows ` +
        `(${SCHEMA_VERSION}); it was left as it is: run a newer securechat`,
    );
  }
  const rows = db.prepare("PRAGMA quick_check(3)").all() as { quick_check: string }[];
  const verdict = rows.map((row) => row.quick_check);
  if (verdict.length !== 1 || verdict[0] !== "ok") {
    throw new StoreError(
      `relay store ${path} is corrupt (${oneLine(verdict.join("; "))}); it was left as it is: ` +
        "restore it from a backup, or move it away to start an empty store",
    );
  }
}

function configure(db: DatabaseSync, path: string): void {
  const mode = (db.prepare("PRAGMA journal_mode = WAL").get() as { journal_mode: string })
    .journal_mode;
  if (mode.toLowerCase() !== "wal") {
    throw new StoreError(
      `relay store ${path}: SQLite could not switch to WAL mode (got ${mode}); ` +
        "put the data directory on a local file system",
    );
  }
  // FULL: each commit fsyncs the write-ahead log, so an acknowledged append survives a crash.
  db.exec("PRAGMA synchronous = FULL");
  // Another process on the same file (a second relay, a test) waits instead of failing.
  db.exec("PRAGMA busy_timeout = 5000");
  db.exec("PRAGMA journal_size_limit = 67108864");
  db.exec("PRAGMA cell_size_check = ON");
  db.exec("PRAGMA trusted_schema = OFF");
}

/** True for a zero-length file without a log: a database we created and have not yet written. */
function isEmptyFile(path: string): boolean {
  if (statSync(path).size !== 0) return false;
  try {
    return statSync(`${path}-wal`).size === 0;
  } catch {
    return true;
  }
}

function pragmaNumber(db: DatabaseSync, name: string): number {
  const row = db.prepare(`PRAGMA ${name}`).get() as Record<string, number>;
  return Number(row[name]);
}

function syncDirectory(dir: string): void {
  if (process.platform === "win32") return;
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** A file-system error on the data directory or file, in one line. */
function fileError(error: unknown, path: string, what: "file" | "directory"): StoreError {
  const code = (error as { code?: string }).code;
  const name = what === "directory" ? `relay data directory ${path}` : `relay store ${path}`;
  switch (code) {
    case "EACCES":
    case "EPERM":
      return new StoreError(
        `cannot write ${name}: permission denied; make it writable by this user ` +
          "or choose another --data directory",
      );
    case "EROFS":
      return new StoreError(
        `cannot write ${name}: read-only file system; choose another --data directory`,
      );
    case "ENOTDIR":
      return new StoreError(
        `cannot create ${name}: a part of the path is not a directory; choose another --data directory`,
      );
    case "ENOSPC":
      return new StoreError(`cannot create ${name}: the disk is full; free some space`);
    default:
      return new StoreError(
        `cannot open ${name}: ${oneLine((error as Error)?.message ?? String(error))}`,
      );
  }
}

/**
 * Describes an SQLite error in one line naming the file, with what to do.
 * Returns errors that are not SQLite's unchanged.
 *
 * @example
 * ```ts
 * throw describeSqliteError(error, "/var/lib/securechat/relay.db");
 * ```
 */
export function describeSqliteError(error: unknown, location: string): Error {
  if (!(error instanceof Error)) return new StoreError(`relay store ${location}: ${String(error)}`);
  const code = (error as { code?: string }).code;
  if (code !== "ERR_SQLITE_ERROR") return error;
  const detail = oneLine((error as { errstr?: string }).errstr ?? error.message);
  const name = `relay store ${location}`;
  const untouched = "it was left as it is";
  switch (primaryCode(error)) {
    case 26: // SQLITE_NOTADB
      return new StoreError(
        `${name} is not an SQLite database (${detail}); ${untouched}: move it away to start an ` +
          "empty store, or restore it from a backup",
      );
    case 11: // SQLITE_CORRUPT
      return new StoreError(
        `${name} is corrupt (${detail}); ${untouched}: restore it from a backup, or move it away ` +
          "to start an empty store",
      );
    case 14: // SQLITE_CANTOPEN
      return new StoreError(
        `cannot open ${name} (${detail}); check that it and its directory are writable by this user`,
      );
    case 8: // SQLITE_READONLY
      return new StoreError(
        `cannot write ${name} (${detail}); make it and its directory writable by this user`,
      );
    case 13: // SQLITE_FULL
      return new StoreError(`cannot write ${name}: the disk is full; free some space`);
    case 10: // SQLITE_IOERR
      return new StoreError(`${name}: I/O error (${detail}); check the disk`);
    case 5: // SQLITE_BUSY
    case 6: // SQLITE_LOCKED
      return new StoreError(
        `${name} stayed locked by another process for 5 s (${detail}); try again`,
      );
    default:
      return new StoreError(`${name}: ${oneLine(error.message)}`);
  }
}

/** SQLite's primary result code, from `errcode` (Node) or the message (Deno lacks `errcode`). */
function primaryCode(error: Error): number {
  const errcode = (error as { errcode?: number }).errcode;
  if (typeof errcode === "number") return errcode & 0xff;
  const message = error.message;
  const known: [RegExp, number][] = [
    [/file is not a database/, 26],
    [/malformed|corrupt/, 11],
    [/unable to open database file/, 14],
    [/readonly database/, 8],
    [/database or disk is full/, 13],
    [/disk I\/O error/, 10],
    [/database is locked/, 5],
    [/database table is locked/, 6],
  ];
  return known.find(([pattern]) => pattern.test(message))?.[1] ?? 0;
}

function octal(mode: number): string {
  return `0${mode.toString(8)}`;
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, " ").trim();
}
