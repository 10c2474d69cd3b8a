/**
 * The trust store: small text files recording which key belongs to which
 * relay or member, for trust on first use (TOFU), and lists of trusted or
 * allowed fingerprints.
 *
 * - `known_servers`: lines `<host:port> <fingerprint>`, one per relay address.
 * - `known_peers`: lines `<nick> <fingerprint> [verified]`, one per nick.
 * - fingerprint lists (`--trust`, `--allow`): one fingerprint per line,
 *   optionally followed by whitespace and a free comment.
 *
 * In every file, fields are separated by spaces or tabs, blank lines and
 * lines whose first non-blank character is `#` are comments, and CRLF line
 * ends are accepted. In `known_servers` and `known_peers` a `#` field ends the
 * entry and starts a comment. Fingerprints may be written in any form
 * {@linkcode parseFingerprint} accepts within one field. Parsing is strict:
 * any other line is an error naming the file and line, and a file that does
 * not parse is never rewritten, so nothing is silently dropped. Updates
 * re-read the file, change one line in place (keeping comments) and replace
 * the file atomically with mode 0600.
 *
 * @module
 */

import { mkdir, open } from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import { isIPv6 } from "node:net";
import { dirname } from "node:path";
import { fromUtf8 } from "../core/bytes.ts";
import { errorCode, writeFileAtomic } from "../core/atomic_file.ts";
import { fingerprintsEqual, parseFingerprint } from "./fingerprint.ts";

/** Trust files larger than this are refused rather than read into memory. */
const MAX_FILE_SIZE = 16 * 1024 * 1024;
/** Longest nick accepted in `known_peers`, in UTF-16 code units. */
const MAX_NICK_LENGTH = 255;

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

/** The outcome of comparing a presented key with what the store remembers. */
export type TofuStatus = "new" | "match" | "changed";

/**
 * The result of a trust-on-first-use check. `expected` is the remembered
 * fingerprint when `status` is `"match"` or `"changed"`.
 */
export interface TofuResult {
  status: TofuStatus;
  expected?: string;
}

/** A relay address split for connecting; `host` has no brackets. */
export interface ServerAddress {
  host: string;
  port: number;
}

/**
 * Parses `host:port`, `[ipv6]:port` or `ipv6:port` (the last `:` separates
 * the port) and returns the host in canonical form: hostnames in lowercase
 * (IDNA to punycode), IPv4 addresses as four decimal numbers, IPv6
 * addresses compressed and lowercase (RFC 5952), without brackets. Throws a
 * `SyntaxError` saying what is wrong.
 *
 * @example
 * ```ts
 * parseServerAddress("[::1]:7878"); // { host: "::1", port: 7878 }
 * parseServerAddress("Relay.Example:7878"); // { host: "relay.example", port: 7878 }
 * ```
 */
export function parseServerAddress(text: string): ServerAddress {
  let host: string;
  let portText: string;
  const bracketed = /^\[([^\]]*)\]:([^:]*)$/.exec(text);
  if (bracketed) {
    [, host, portText] = bracketed;
    if (!isIPv6(host)) throw new SyntaxError(`not an IPv6 address in brackets: ${show(text)}`);
  } else {
    const colon = text.lastIndexOf(":");
    if (colon <= 0) throw new SyntaxError(`expected HOST:PORT, got ${show(text)}`);
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (host.includes(":") && !isIPv6(host)) {
      throw new SyntaxError(`expected HOST:PORT or [IPV6]:PORT, got ${show(text)}`);
    }
  }
  if (!/^[0-9]{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) {
    throw new SyntaxError(`port must be a number from 1 to 65535, got ${show(portText)}`);
  }
  return { host: canonicalHost(host), port: Number(portText) };
}

/**
 * Formats an address in the canonical form used as the `known_servers` key:
 * `host:port`, with IPv6 addresses in brackets (`[::1]:7878`).
 *
 * @example
 * ```ts
 * formatServerAddress({ host: "::1", port: 7878 }); // "[::1]:7878"
 * ```
 */
export function formatServerAddress({ host, port }: ServerAddress): string {
  const canonical = canonicalHost(host);
  return canonical.includes(":") ? `[${canonical}]:${port}` : `${canonical}:${port}`;
}

/**
 * Normalises an address given in any form {@linkcode parseServerAddress}
 * accepts to the canonical `known_servers` key.
 *
 * @example
 * ```ts
 * canonicalServerAddress("::1:7878"); // "[::1]:7878"
 * ```
 */
export function canonicalServerAddress(text: string): string {
  return formatServerAddress(parseServerAddress(text));
}

function canonicalHost(host: string): string {
  if (isIPv6(host)) {
    if (host.includes("%")) throw new SyntaxError("IPv6 zone identifiers are not supported");
    return new URL(`http://[${host}]/`).hostname.slice(1, -1);
  }
  if (!/^[A-Za-z0-9._-]+$/.test(host) || host.length > 253) {
    throw new SyntaxError(`not a host name or IP address: ${show(host)}`);
  }
  try {
    // The URL parser lowercases names and rewrites IPv4 shorthands such as 127.1.
    return new URL(`http://${host}/`).hostname;
  } catch {
    throw new SyntaxError(`not a host name or IP address: ${show(host)}`);
  }
}

/** Quotes user input for an error message, cut short so a pasted blob stays one readable line. */
function show(text: string): string {
  return JSON.stringify(text.length > 60 ? `${text.slice(0, 60)}...` : text);
}

/** One line of a trust file: its text, and the key it defines if it is an entry. */
interface Line {
  text: string;
  key?: string;
}

/** A parsed entry: its fields before any `#` comment, and the comment with its leading blank. */
interface Fields {
  fields: string[];
  comment: string;
}

function splitEntry(text: string): Fields | undefined {
  const trimmed = text.trim();
  if (trimmed === "" || trimmed.startsWith("#")) return undefined;
  const hash = /[ \t]#/.exec(trimmed);
  const body = hash ? trimmed.slice(0, hash.index).trimEnd() : trimmed;
  const comment = hash ? ` ${trimmed.slice(hash.index).trimStart()}` : "";
  return { fields: body.split(/[ \t]+/), comment };
}

async function readTrustFile(path: string): Promise<string | undefined> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(path, "r");
    const stat = await handle.stat();
    if (!stat.isFile()) throw new Error("not a regular file");
    if (stat.size > MAX_FILE_SIZE) throw new Error(`${stat.size} bytes is too large`);
    return fromUtf8(new Uint8Array(await handle.readFile()));
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

function splitLines(text: string): string[] {
  const lines = text.split("\n").map((line) => line.replace(/\r$/, ""));
  if (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
  return lines;
}

async function writeTrustFile(path: string, lines: Line[]): Promise<void> {
  try {
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    await writeFileAtomic(path, lines.map((line) => `${line.text}\n`).join(""), { mode: 0o600 });
  } catch (error) {
    throw new TrustStoreError({
      path,
      message: `cannot write ${path}: ${(error as Error).message}`,
    });
  }
}

/**
 * Reads a trust file of one entry per key: blank and comment lines are kept
 * as they are (so updates preserve them), `parse` turns an entry's fields
 * into its key and value, and a key listed twice is an error.
 */
async function loadKeyedFile<E extends { line: number }>(
  path: string,
  parse: (fields: string[], line: number) => { key: string; label: string; entry: E },
): Promise<{ lines: Line[]; entries: Map<string, E> }> {
  const lines: Line[] = [];
  const entries = new Map<string, E>();
  splitLines(await readTrustFile(path) ?? "").forEach((raw, index) => {
    const number = index + 1;
    const split = splitEntry(raw);
    if (split === undefined) {
      lines.push({ text: raw });
      return;
    }
    const { key, label, entry } = parse(split.fields, number);
    const earlier = entries.get(key);
    if (earlier !== undefined) {
      throw lineError(path, number, `${label} is listed again (first on line ${earlier.line})`);
    }
    entries.set(key, entry);
    lines.push({ text: raw, key });
  });
  return { lines, entries };
}

function lineError(path: string, line: number, detail: string): TrustStoreError {
  return new TrustStoreError({ path, line, message: `${path} line ${line}: ${detail}` });
}

function parseFingerprintField(path: string, line: number, field: string): string {
  try {
    return parseFingerprint(field);
  } catch {
    throw lineError(path, line, `not a fingerprint: ${show(field)}`);
  }
}

/** A `known_servers` entry. */
interface ServerEntry {
  fingerprint: string;
  line: number;
}

/**
 * The `known_servers` file: the fingerprint seen for each relay address.
 *
 * @example
 * ```ts
 * const known = await KnownServers.load(knownServersPath());
 * const result = known.check("relay.example:7878", relayFingerprint);
 * if (result.status === "new") await known.remember("relay.example:7878", relayFingerprint);
 * ```
 */
export class KnownServers {
  #path: string;
  #lines: Line[];
  #entries: Map<string, ServerEntry>;

  private constructor(path: string, lines: Line[], entries: Map<string, ServerEntry>) {
    this.#path = path;
    this.#lines = lines;
    this.#entries = entries;
  }

  /**
   * Reads the file; a missing file is an empty store. Throws
   * {@linkcode TrustStoreError} for an unreadable or malformed file.
   *
   * @example
   * ```ts
   * const known = await KnownServers.load("/home/me/.config/securechat/known_servers");
   * ```
   */
  static async load(path: string): Promise<KnownServers> {
    const { lines, entries } = await loadKeyedFile<ServerEntry>(path, (fields, line) => {
      if (fields.length !== 2) throw lineError(path, line, "expected `HOST:PORT FINGERPRINT`");
      let address: string;
      try {
        address = canonicalServerAddress(fields[0]);
      } catch (error) {
        throw lineError(path, line, (error as Error).message);
      }
      const fingerprint = parseFingerprintField(path, line, fields[1]);
      return { key: address, label: address, entry: { fingerprint, line } };
    });
    return new KnownServers(path, lines, entries);
  }

  /** The file this store reads and writes. @example `known.path` */
  get path(): string {
    return this.#path;
  }

  /**
   * The remembered fingerprint of a relay address (any accepted form), or
   * undefined.
   *
   * @example
   * ```ts
   * known.lookup("[::1]:7878"); // "k3b7-..." or undefined
   * ```
   */
  lookup(address: string): string | undefined {
    return this.#entries.get(canonicalServerAddress(address))?.fingerprint;
  }

  /**
   * Compares a presented fingerprint with the remembered one.
   *
   * @example
   * ```ts
   * known.check("relay:7878", presented); // { status: "changed", expected: "k3b7-..." }
   * ```
   */
  check(address: string, fingerprint: string): TofuResult {
    return tofu(this.lookup(address), fingerprint);
  }

  /**
   * Records (or replaces) the fingerprint of a relay address and saves the
   * file. The file is re-read first so that entries added meanwhile by
   * another process are kept.
   *
   * @example
   * ```ts
   * await known.remember("relay.example:7878", presented);
   * ```
   */
  async remember(address: string, fingerprint: string): Promise<void> {
    const key = canonicalServerAddress(address);
    const fp = parseFingerprint(fingerprint);
    const fresh = await KnownServers.load(this.#path);
    const text = `${key} ${fp}`;
    replaceOrAppend(fresh.#lines, key, (comment) => text + comment, text);
    await writeTrustFile(this.#path, fresh.#lines);
    fresh.#entries.set(key, { fingerprint: fp, line: 0 });
    this.#lines = fresh.#lines;
    this.#entries = fresh.#entries;
  }

  /**
   * Every remembered address and fingerprint, in file order.
   *
   * @example
   * ```ts
   * for (const [address, fp] of known.entries()) console.log(address, fp);
   * ```
   */
  entries(): [string, string][] {
    return [...this.#entries].map(([address, entry]) => [address, entry.fingerprint]);
  }
}

/** What `known_peers` remembers about a nick. */
export interface KnownPeer {
  fingerprint: string;
  /** True once the user compared the fingerprint out of band (`verified` on the line). */
  verified: boolean;
}

/** The result of {@linkcode KnownPeers.check}: a TOFU result and whether the match is verified. */
export interface PeerTofuResult extends TofuResult {
  /** True only when `status` is `"match"` and the entry is marked verified. */
  verified: boolean;
}

/**
 * Checks that `nick` can be a `known_peers` key: one field of printable
 * characters, not starting with `#`. Throws a `SyntaxError` otherwise.
 *
 * @example
 * ```ts
 * checkPeerNick("alice"); // ok
 * ```
 */
export function checkPeerNick(nick: string): void {
  // deno-lint-ignore no-control-regex
  if (nick === "" || /[\s\x00-\x1f\x7f]/.test(nick) || nick.startsWith("#")) {
    throw new SyntaxError(
      `nick ${show(nick)} cannot be stored: it has blanks, controls or a leading #`,
    );
  }
  if (nick.length > MAX_NICK_LENGTH) throw new SyntaxError("nick is too long to be stored");
}

/** A `known_peers` entry. */
interface PeerEntry extends KnownPeer {
  line: number;
}

/**
 * The `known_peers` file: the fingerprint seen for each member's nick, and
 * whether the user verified it.
 *
 * @example
 * ```ts
 * const peers = await KnownPeers.load(knownPeersPath());
 * if (peers.check("alice", fp).status === "new") await peers.remember("alice", fp);
 * ```
 */
export class KnownPeers {
  #path: string;
  #lines: Line[];
  #entries: Map<string, PeerEntry>;

  private constructor(path: string, lines: Line[], entries: Map<string, PeerEntry>) {
    this.#path = path;
    this.#lines = lines;
    this.#entries = entries;
  }

  /**
   * Reads the file; a missing file is an empty store. Throws
   * {@linkcode TrustStoreError} for an unreadable or malformed file.
   *
   * @example
   * ```ts
   * const peers = await KnownPeers.load("/home/me/.config/securechat/known_peers");
   * ```
   */
  static async load(path: string): Promise<KnownPeers> {
    const { lines, entries } = await loadKeyedFile<PeerEntry>(path, (fields, line) => {
      if (
        fields.length < 2 || fields.length > 3 || (fields.length === 3 && fields[2] !== "verified")
      ) {
        throw lineError(path, line, "expected `NICK FINGERPRINT` or `NICK FINGERPRINT verified`");
      }
      const nick = fields[0];
      try {
        checkPeerNick(nick);
      } catch (error) {
        throw lineError(path, line, (error as Error).message);
      }
      const fingerprint = parseFingerprintField(path, line, fields[1]);
      const entry = { fingerprint, verified: fields.length === 3, line };
      return { key: nick, label: show(nick), entry };
    });
    return new KnownPeers(path, lines, entries);
  }

  /** The file this store reads and writes. @example `peers.path` */
  get path(): string {
    return this.#path;
  }

  /**
   * What is remembered about `nick`, or undefined.
   *
   * @example
   * ```ts
   * peers.lookup("alice"); // { fingerprint: "k3b7-...", verified: false }
   * ```
   */
  lookup(nick: string): KnownPeer | undefined {
    const entry = this.#entries.get(nick);
    return entry && { fingerprint: entry.fingerprint, verified: entry.verified };
  }

  /**
   * Compares a presented fingerprint with the one remembered for `nick`.
   *
   * @example
   * ```ts
   * peers.check("alice", presented); // { status: "match", expected: "k3b7-...", verified: true }
   * ```
   */
  check(nick: string, fingerprint: string): PeerTofuResult {
    const known = this.lookup(nick);
    const result = tofu(known?.fingerprint, fingerprint);
    return { ...result, verified: result.status === "match" && known?.verified === true };
  }

  /**
   * Records the fingerprint of `nick` and saves the file. Remembering the
   * fingerprint already stored changes nothing (a `verified` mark stays);
   * a different fingerprint replaces the entry and drops the mark.
   *
   * @example
   * ```ts
   * await peers.remember("alice", presented);
   * ```
   */
  async remember(nick: string, fingerprint: string): Promise<void> {
    await this.#update(nick, parseFingerprint(fingerprint), false);
  }

  /**
   * Records `fingerprint` for `nick` as verified out of band and saves the
   * file.
   *
   * @example
   * ```ts
   * await peers.markVerified("alice", "k3b7-q2xa-...");
   * ```
   */
  async markVerified(nick: string, fingerprint: string): Promise<void> {
    await this.#update(nick, parseFingerprint(fingerprint), true);
  }

  async #update(nick: string, fp: string, verify: boolean): Promise<void> {
    checkPeerNick(nick);
    const fresh = await KnownPeers.load(this.#path);
    const existing = fresh.#entries.get(nick);
    const same = existing !== undefined && existing.fingerprint === fp;
    if (same && (existing.verified || !verify)) {
      this.#lines = fresh.#lines;
      this.#entries = fresh.#entries;
      return;
    }
    const text = verify ? `${nick} ${fp} verified` : `${nick} ${fp}`;
    replaceOrAppend(fresh.#lines, nick, (comment) => text + comment, text);
    await writeTrustFile(this.#path, fresh.#lines);
    fresh.#entries.set(nick, { fingerprint: fp, verified: verify, line: 0 });
    this.#lines = fresh.#lines;
    this.#entries = fresh.#entries;
  }

  /**
   * Every remembered nick, in file order.
   *
   * @example
   * ```ts
   * for (const [nick, { fingerprint, verified }] of peers.entries()) console.log(nick, fingerprint, verified);
   * ```
   */
  entries(): [string, KnownPeer][] {
    return [...this.#entries].map((
      [nick, entry],
    ) => [nick, { fingerprint: entry.fingerprint, verified: entry.verified }]);
  }
}

function tofu(expected: string | undefined, presented: string): TofuResult {
  if (expected === undefined) return { status: "new" };
  return { status: fingerprintsEqual(expected, presented) ? "match" : "changed", expected };
}

/** Rewrites the line defining `key`, keeping its trailing comment, or appends `text`. */
function replaceOrAppend(
  lines: Line[],
  key: string,
  rewrite: (comment: string) => string,
  text: string,
): void {
  const line = lines.find((candidate) => candidate.key === key);
  if (line === undefined) {
    lines.push({ text, key });
    return;
  }
  line.text = rewrite(splitEntry(line.text)?.comment ?? "");
}

/**
 * Reads a fingerprint list (for `--trust` or `--allow`): one fingerprint per
 * line, optionally followed by blanks and a free comment. Returns the
 * canonical fingerprints. Unlike the TOFU files, a missing list is an error,
 * since the user named it.
 *
 * @example
 * ```ts
 * const allowed = await loadFingerprintList("team.txt");
 * allowed.has(memberFingerprint);
 * ```
 */
export async function loadFingerprintList(path: string): Promise<Set<string>> {
  const text = await readTrustFile(path);
  if (text === undefined) {
    throw new TrustStoreError({ path, message: `fingerprint list ${path} does not exist` });
  }
  const fingerprints = new Set<string>();
  splitLines(text).forEach((raw, index) => {
    const trimmed = raw.trim();
    if (trimmed === "" || trimmed.startsWith("#")) return;
    const field = trimmed.split(/[ \t]/, 1)[0];
    fingerprints.add(parseFingerprintField(path, index + 1, field));
  });
  return fingerprints;
}
