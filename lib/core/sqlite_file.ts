/**
 * Opening an SQLite file that securechat owns (the relay's store, the
 * client's local store) so that a bad file is never made worse: a file that
 * is not ours, is newer than we know, is damaged, or cannot be written makes
 * {@linkcode openSqliteFile} fail with one line that names the file and says
 * what to do, and the file is left exactly as it was. Every check reads,
 * through a read-only connection, before anything is written.
 *
 * A new file is created empty with mode 0600 (its directory 0700) before
 * SQLite opens it, so SQLite's `-wal` and `-shm` files, which copy its mode,
 * are private too. An existing file or directory open to other users is
 * refused, like SSH refuses a readable key.
 *
 * `node:sqlite` is loaded on first use, not when this module is imported: the
 * commands that do not store anything do not pay for it, and a runtime
 * without it gets a message saying which one to use.
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
import { dirname } from "node:path";
import process from "node:process";
import type { DatabaseSync } from "node:sqlite";

type SqliteModule = typeof import("node:sqlite");

/** How long a program waits for another one holding the same file's write lock. */
const BUSY_TIMEOUT_MS = 5_000;

/**
 * An SQLite file could not be opened, read or written. The message is one
 * line naming the file, with what to do.
 *
 * @example
 * ```ts
 * throw new SqliteFileError("relay store /srv/relay.db is corrupt; ...");
 * ```
 */
export class SqliteFileError extends Error {
  /** @example `new SqliteFileError("cannot write client store /h/local.db: disk full")` */
  constructor(message: string) {
    super(message);
    this.name = "SqliteFileError";
  }
}

/** What {@linkcode openSqliteFile} opens, and how its messages read. */
export interface SqliteFileOptions {
  /** The database file; its directory is created (mode 0700) when missing. */
  path: string;
  /** What the file is, for messages: `relay store`, `client store`. */
  name: string;
  /** What its directory is, for messages: `relay data directory`, `state directory`. */
  directoryName: string;
  /** What to do instead, for messages: `choose another --data directory`. */
  elsewhere: string;
  /** `PRAGMA application_id` of files of this kind. */
  applicationId: number;
  /** `PRAGMA user_version` this code writes; a larger one is refused. */
  schemaVersion: number;
  /** SQL that creates the schema in a new file (it sets the two pragmas too). */
  schema: string;
}

/**
 * Loads `node:sqlite`, or throws a {@linkcode SqliteFileError} that says
 * which runtimes have it.
 *
 * @example
 * ```ts
 * const { DatabaseSync } = loadSqlite();
 * ```
 */
export function loadSqlite(): SqliteModule {
  let module: SqliteModule | undefined;
  try {
    module = process.getBuiltinModule?.("node:sqlite") as SqliteModule | undefined;
  } catch {
    module = undefined;
  }
  if (module?.DatabaseSync === undefined) {
    throw new SqliteFileError(
      `securechat's stores need node:sqlite, which this runtime (Node ${process.version}) lacks; ` +
        "run securechat with Node 22.13 or newer, the single executable, or Deno 2.9",
    );
  }
  return module;
}

/**
 * Opens a new database in memory with `schema`.
 *
 * @example
 * ```ts
 * const db = openSqliteMemory("CREATE TABLE t (x)");
 * ```
 */
export function openSqliteMemory(schema: string): DatabaseSync {
  const db = new (loadSqlite().DatabaseSync)(":memory:");
  db.exec(schema);
  return db;
}

/**
 * Opens (creating if needed) a database file, checks that it is of this
 * kind and intact, and sets WAL mode with `synchronous=FULL` (each commit
 * fsyncs the log). Throws a {@linkcode SqliteFileError}.
 *
 * @example
 * ```ts
 * const db = openSqliteFile({
 *   path: "/var/lib/securechat/relay.db",
 *   name: "relay store",
 *   directoryName: "relay data directory",
 *   elsewhere: "choose another --data directory",
 *   applicationId: 0x53435253,
 *   schemaVersion: 1,
 *   schema,
 * });
 * ```
 */
export function openSqliteFile(options: SqliteFileOptions): DatabaseSync {
  const sqlite = loadSqlite();
  const { path, schema } = options;
  prepareFiles(options);
  const empty = isEmptyFile(path);
  // Checked through a read-only connection: closing a read-write one would checkpoint the
  // write-ahead log into the file, and a file that fails its checks must stay as it is.
  if (!empty) withDatabase(sqlite, options, true, (db) => checkDatabase(db, options));
  return withDatabase(sqlite, options, false, (db) => {
    if (empty) {
      // Before WAL mode, which writes the header: a crash in between leaves an empty file.
      // Several programs may find the file empty at once: the first to take the write lock
      // creates the schema, the others find it made.
      db.exec("BEGIN IMMEDIATE");
      try {
        const made = (db.prepare("SELECT count(*) AS n FROM sqlite_master").get() as { n: number })
          .n > 0;
        if (!made) db.exec(schema);
        db.exec("COMMIT");
      } catch (error) {
        db.exec("ROLLBACK");
        throw error;
      }
      if (!isEmptyFile(path)) checkDatabase(db, options);
    }
    configure(db, options);
    return db;
  }, { keepOpen: true });
}

/** Opens the file, runs `work`, closes (unless `keepOpen` and it succeeded); errors in one line. */
function withDatabase<T>(
  sqlite: SqliteModule,
  options: SqliteFileOptions,
  readOnly: boolean,
  work: (db: DatabaseSync) => T,
  { keepOpen = false } = {},
): T {
  const label = `${options.name} ${options.path}`;
  let db: DatabaseSync;
  try {
    db = new sqlite.DatabaseSync(options.path, { readOnly });
    // First of all: another program opening, creating or switching the same file to WAL at the
    // same moment is waited for, never taken for a broken file.
    db.exec(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
  } catch (error) {
    throw describeSqliteError(error, label);
  }
  let ok = false;
  try {
    const result = work(db);
    ok = true;
    return result;
  } catch (error) {
    throw error instanceof SqliteFileError ? error : describeSqliteError(error, label);
  } finally {
    if (!ok || !keepOpen) {
      try {
        db.close();
      } catch {
        // Closing after a failure; the error thrown above is what matters.
      }
    }
  }
}

/** Creates the directory (0700) and an empty file (0600) when missing; checks both when present. */
function prepareFiles(options: SqliteFileOptions): void {
  const { path, name, directoryName, elsewhere } = options;
  const dir = dirname(path);
  const posix = process.platform !== "win32";
  let madeDir = false;
  try {
    if (!statSync(dir).isDirectory()) {
      throw new SqliteFileError(`${directoryName} ${dir} is not a directory; ${elsewhere}`);
    }
  } catch (error) {
    if (error instanceof SqliteFileError) throw error;
    if ((error as { code?: string }).code !== "ENOENT") {
      throw fileError(error, `${directoryName} ${dir}`, elsewhere);
    }
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      madeDir = true;
    } catch (mkdirError) {
      throw fileError(mkdirError, `${directoryName} ${dir}`, elsewhere);
    }
  }
  if (posix && !madeDir) {
    const mode = statSync(dir).mode & 0o777;
    if (mode & 0o077) {
      throw new SqliteFileError(
        `${directoryName} ${dir} is open to other users (mode ${
          octal(mode)
        }); run chmod 700 ${dir}`,
      );
    }
  }
  try {
    closeSync(openSync(path, "wx", 0o600));
    syncDirectory(dir);
  } catch (error) {
    if ((error as { code?: string }).code !== "EEXIST") {
      throw fileError(error, `${name} ${path}`, elsewhere);
    }
  }
  const stats = statSync(path);
  if (!stats.isFile()) {
    throw new SqliteFileError(`${name} ${path} is not a regular file; move it away`);
  }
  if (posix && stats.mode & 0o077) {
    throw new SqliteFileError(
      `${name} ${path} can be read by other users (mode ${octal(stats.mode & 0o777)}); ` +
        `run chmod 600 ${path}`,
    );
  }
  try {
    // SQLite would otherwise open an unwritable file read-only and fail at the first write.
    accessSync(path, constants.R_OK | constants.W_OK);
    accessSync(dir, constants.W_OK | constants.X_OK);
  } catch (error) {
    throw fileError(error, `${name} ${path}`, elsewhere);
  }
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

/** A database that is not empty must be of this kind, of a schema we know, and intact; reads only. */
function checkDatabase(db: DatabaseSync, options: SqliteFileOptions): void {
  const label = `${options.name} ${options.path}`;
  const untouched = "it was left as it is";
  if (pragmaNumber(db, "page_count") === 0) {
    // SQLite takes a file shorter than its header for an empty database; we never write one.
    throw new SqliteFileError(
      `${label} is not an SQLite database (too short); ${untouched}: move it away to start ` +
        "an empty one, or restore it from a backup",
    );
  }
  const applicationId = pragmaNumber(db, "application_id");
  if (applicationId !== options.applicationId) {
    throw new SqliteFileError(
      `${label} is an SQLite database of another program (application_id ` +
        `0x${applicationId.toString(16)}); ${untouched}: ${options.elsewhere}`,
    );
  }
  const version = pragmaNumber(db, "user_version");
  if (version > options.schemaVersion) {
    throw new SqliteFileError(
      `${label} has schema version ${version}, newer than this securechat knows ` +
        `(${options.schemaVersion}); ${untouched}: run a newer securechat`,
    );
  }
  const rows = db.prepare("PRAGMA quick_check(3)").all() as { quick_check: string }[];
  const verdict = rows.map((row) => row.quick_check);
  if (verdict.length !== 1 || verdict[0] !== "ok") {
    throw new SqliteFileError(
      `${label} is corrupt (${oneLine(verdict.join("; "))}); ${untouched}: restore it from a ` +
        "backup, or move it away to start an empty one",
    );
  }
}

function configure(db: DatabaseSync, options: SqliteFileOptions): void {
  const mode = (db.prepare("PRAGMA journal_mode = WAL").get() as { journal_mode: string })
    .journal_mode;
  if (mode.toLowerCase() !== "wal") {
    throw new SqliteFileError(
      `${options.name} ${options.path}: SQLite could not switch to WAL mode (got ${mode}); ` +
        "put it on a local file system",
    );
  }
  // FULL: each commit fsyncs the write-ahead log, so what was committed survives a crash.
  db.exec("PRAGMA synchronous = FULL");
  db.exec("PRAGMA journal_size_limit = 67108864");
  db.exec("PRAGMA cell_size_check = ON");
  db.exec("PRAGMA trusted_schema = OFF");
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

/** A file-system error on a database file or its directory (`label` names it), in one line. */
function fileError(error: unknown, label: string, elsewhere: string): SqliteFileError {
  switch ((error as { code?: string }).code) {
    case "EACCES":
    case "EPERM":
      return new SqliteFileError(
        `cannot write ${label}: permission denied; make it writable by this user or ${elsewhere}`,
      );
    case "EROFS":
      return new SqliteFileError(`cannot write ${label}: read-only file system; ${elsewhere}`);
    case "ENOTDIR":
      return new SqliteFileError(
        `cannot create ${label}: a part of the path is not a directory; ${elsewhere}`,
      );
    case "ENOSPC":
      return new SqliteFileError(`cannot create ${label}: the disk is full; free some space`);
    default:
      return new SqliteFileError(
        `cannot open ${label}: ${oneLine((error as Error)?.message ?? String(error))}`,
      );
  }
}

/**
 * Describes an SQLite error in one line starting with `label` (what and
 * which file), with what to do. Returns errors that are not SQLite's
 * unchanged.
 *
 * @example
 * ```ts
 * throw describeSqliteError(error, "relay store /var/lib/securechat/relay.db");
 * ```
 */
export function describeSqliteError(error: unknown, label: string): Error {
  if (!(error instanceof Error)) return new SqliteFileError(`${label}: ${String(error)}`);
  if ((error as { code?: string }).code !== "ERR_SQLITE_ERROR") return error;
  const detail = oneLine((error as { errstr?: string }).errstr ?? error.message);
  const untouched = "it was left as it is";
  switch (primaryCode(error)) {
    case 26: // SQLITE_NOTADB
      return new SqliteFileError(
        `${label} is not an SQLite database (${detail}); ${untouched}: move it away to start an ` +
          "empty one, or restore it from a backup",
      );
    case 11: // SQLITE_CORRUPT
      return new SqliteFileError(
        `${label} is corrupt (${detail}); ${untouched}: restore it from a backup, or move it ` +
          "away to start an empty one",
      );
    case 14: // SQLITE_CANTOPEN
      return new SqliteFileError(
        `cannot open ${label} (${detail}); check that it and its directory are writable by this user`,
      );
    case 8: // SQLITE_READONLY
      return new SqliteFileError(
        `cannot write ${label} (${detail}); make it and its directory writable by this user`,
      );
    case 13: // SQLITE_FULL
      return new SqliteFileError(`cannot write ${label}: the disk is full; free some space`);
    case 10: // SQLITE_IOERR
      return new SqliteFileError(`${label}: I/O error (${detail}); check the disk`);
    case 5: // SQLITE_BUSY
    case 6: // SQLITE_LOCKED
      return new SqliteFileError(
        `${label} stayed locked by another process for ${BUSY_TIMEOUT_MS / 1000} s ` +
          `(${detail}); try again`,
      );
    default:
      return new SqliteFileError(`${label}: ${oneLine(error.message)}`);
  }
}

/** SQLite's primary result code, from `errcode` (Node) or the message (Deno has no `errcode`). */
function primaryCode(error: Error): number {
  const errcode = (error as { errcode?: number }).errcode;
  if (typeof errcode === "number") return errcode & 0xff;
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
  return known.find(([pattern]) => pattern.test(error.message))?.[1] ?? 0;
}

function octal(mode: number): string {
  return `0${mode.toString(8)}`;
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, " ").trim();
}
