/**
 * What every trust file shares (PROTOCOL.md, "Trust files: common rules"):
 * reading with a size cap, splitting lines and fields with `#` comments,
 * strict errors that name the file and line, and atomic writes with mode
 * 0600. `known_servers` (lib/identity/trust_store.ts) and `known_peers`
 * (lib/identity/known_peers.ts) build on it.
 *
 * @module
 */

import { open } from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import { dirname } from "node:path";
import { fromUtf8 } from "../core/bytes.ts";
import { errorCode, writeFileAtomic } from "../core/atomic_file.ts";
import { ensureDirectory } from "../core/directory.ts";
import { parseFingerprint } from "./fingerprint.ts";

/** Trust files larger than this are refused rather than read into memory. */
export const MAX_TRUST_FILE_SIZE = 16 * 1024 * 1024;

/**
 * A trust file cannot be read, does not parse, or cannot be written. The
 * message names the file and, for syntax errors, the line.
 *
 * @example
 * ```ts
 * throw new TrustStoreError({ path, line: 3, message: `${path} line 3: not a fingerprint` });
 * ```
 */
export class TrustStoreError extends Error {
  /** The file concerned. */
  readonly path: string;
  /** The 1-based line number, for syntax errors. */
  readonly line?: number;

  /**
   * @example
   * ```ts
   * new TrustStoreError({ path, message: `cannot read ${path}` });
   * ```
   */
  constructor({ path, line, message }: { path: string; line?: number; message: string }) {
    super(message);
    this.name = "TrustStoreError";
    this.path = path;
    this.line = line;
  }
}

/**
 * Quotes user input for an error message, cut short so a pasted blob stays
 * one readable line.
 *
 * @example
 * ```ts
 * show("a\nb"); // "\"a\\nb\""
 * ```
 */
export function show(text: string): string {
  return JSON.stringify(text.length > 60 ? `${text.slice(0, 60)}...` : text);
}

/** One line of a trust file: its text, and the key it defines if it is an entry. */
export interface Line {
  text: string;
  key?: string;
}

/** A parsed entry: its fields before any `#` comment, and the comment with its leading blank. */
export interface Fields {
  fields: string[];
  comment: string;
}

/**
 * Splits an entry line into fields and trailing comment; undefined for a
 * blank or comment line.
 *
 * @example
 * ```ts
 * splitEntry("alice k3b7... # met"); // { fields: ["alice", "k3b7..."], comment: " # met" }
 * ```
 */
export function splitEntry(text: string): Fields | undefined {
  const trimmed = text.trim();
  if (trimmed === "" || trimmed.startsWith("#")) return undefined;
  const hash = /[ \t]#/.exec(trimmed);
  const body = hash ? trimmed.slice(0, hash.index).trimEnd() : trimmed;
  const comment = hash ? ` ${trimmed.slice(hash.index).trimStart()}` : "";
  return { fields: body.split(/[ \t]+/), comment };
}

/** A file's text and what identifies this version of it. */
export interface TrustFileContent {
  text: string;
  /** Inode, size and modification time: equal stamps mean the file was not replaced or grown. */
  stamp: string;
}

/**
 * Reads a trust file with its version stamp; undefined when it does not
 * exist. Throws {@linkcode TrustStoreError} for anything else.
 *
 * @example
 * ```ts
 * const content = await readTrustFileContent("known_peers");
 * ```
 */
export async function readTrustFileContent(path: string): Promise<TrustFileContent | undefined> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(path, "r");
    const stat = await handle.stat();
    if (!stat.isFile()) throw new Error("not a regular file");
    if (stat.size > MAX_TRUST_FILE_SIZE) throw new Error(`${stat.size} bytes is too large`);
    const text = fromUtf8(new Uint8Array(await handle.readFile()));
    return { text, stamp: `${stat.ino}:${stat.size}:${stat.mtimeMs}` };
  } catch (error) {
    if (errorCode(error) === "ENOENT") return undefined;
    throw new TrustStoreError({
      path,
      message: `cannot read ${path}: ${(error as Error).message}`,
    });
  } finally {
    await handle?.close().catch(() => {});
  }
}

/**
 * Reads a trust file's text; undefined when it does not exist.
 *
 * @example
 * ```ts
 * const text = await readTrustFile("team.txt");
 * ```
 */
export async function readTrustFile(path: string): Promise<string | undefined> {
  return (await readTrustFileContent(path))?.text;
}

/**
 * Splits text into lines, accepting CRLF, without the empty string after
 * a final newline.
 *
 * @example
 * ```ts
 * splitLines("a\r\nb\n"); // ["a", "b"]
 * ```
 */
export function splitLines(text: string): string[] {
  const lines = text.split("\n").map((line) => line.replace(/\r$/, ""));
  if (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
  return lines;
}

/**
 * Replaces a trust file atomically (mode 0600), creating its directory
 * (mode 0700) if needed.
 *
 * @example
 * ```ts
 * await writeTrustFile("known_servers", [{ text: "# relays" }]);
 * ```
 */
export async function writeTrustFile(path: string, lines: Line[]): Promise<void> {
  try {
    await ensureDirectory(dirname(path), 0o700);
    await writeFileAtomic(path, lines.map((line) => `${line.text}\n`).join(""), { mode: 0o600 });
  } catch (error) {
    throw new TrustStoreError({
      path,
      message: `cannot write ${path}: ${(error as Error).message}`,
    });
  }
}

/**
 * The error for line `line` of `path`.
 *
 * @example
 * ```ts
 * throw lineError(path, 3, "expected `HOST:PORT FINGERPRINT`");
 * ```
 */
export function lineError(path: string, line: number, detail: string): TrustStoreError {
  return new TrustStoreError({ path, line, message: `${path} line ${line}: ${detail}` });
}

/**
 * Parses a fingerprint field, or throws the line's error.
 *
 * @example
 * ```ts
 * parseFingerprintField(path, 3, "O6KVTMQC57X2BB5PPVISJNUALIOX4YHB"); // "o6kv-tmqc-..."
 * ```
 */
export function parseFingerprintField(path: string, line: number, field: string): string {
  try {
    return parseFingerprint(field);
  } catch {
    throw lineError(path, line, `not a fingerprint: ${show(field)}`);
  }
}
