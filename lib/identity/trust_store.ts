/**
 * The trust store: small text files recording which key belongs to which
 * relay or member, for trust on first use (TOFU), and lists of trusted or
 * allowed fingerprints.
 *
 * - `known_servers`: lines `<host:port> <fingerprint>`, one per relay address.
 * - `known_peers`: lines `<fingerprint> <verified|seen> <nick>...`, one per
 *   member key (lib/identity/known_peers.ts).
 * - fingerprint lists (`--trust`, `--allow`): one fingerprint per line,
 *   optionally followed by whitespace and a free comment.
 *
 * In every file, fields are separated by spaces or tabs, blank lines and
 * lines whose first non-blank character is `#` are comments, and CRLF line
 * ends are accepted. In `known_servers` and `known_peers` a `#` field ends the
 * entry and starts a comment (lib/identity/trust_file.ts). Fingerprints may be written in any form
 * {@linkcode parseFingerprint} accepts within one field. Parsing is strict:
 * any other line is an error naming the file and line, and a file that does
 * not parse is never rewritten, so nothing is silently dropped. Updates
 * re-read the file, change one line in place (keeping comments) and replace
 * the file atomically with mode 0600.
 *
 * @module
 */

import { withFileLock } from "../core/file_lock.ts";
import { parseFingerprint } from "./fingerprint.ts";
import { canonicalServerAddress } from "./server_address.ts";
import { compareFingerprints, type TofuResult } from "./tofu.ts";
import {
  type Line,
  lineError,
  parseFingerprintField,
  readTrustFile,
  splitEntry,
  splitLines,
  TrustStoreError,
  writeTrustFile,
} from "./trust_file.ts";

export * from "./server_address.ts";
export * from "./tofu.ts";
export { TrustStoreError } from "./trust_file.ts";
export {
  checkPeerNick,
  type KnownPeer,
  KnownPeers,
  MAX_KNOWN_KEYS,
  MAX_NICKS_PER_KEY,
  type PeerCheck,
  type PeerKey,
  type RememberResult,
} from "./known_peers.ts";

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
    return compareFingerprints(this.lookup(address), fingerprint);
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
    await withFileLock(this.#path, async () => {
      const fresh = await KnownServers.load(this.#path);
      const text = `${key} ${fp}`;
      replaceOrAppend(fresh.#lines, key, (comment) => text + comment, text);
      await writeTrustFile(this.#path, fresh.#lines);
      fresh.#entries.set(key, { fingerprint: fp, line: 0 });
      this.#lines = fresh.#lines;
      this.#entries = fresh.#entries;
    });
  }

  /**
   * Forgets a relay address (any accepted form) and saves the file, as
   * `ssh-keygen -R` does; returns the fingerprint that was remembered, or
   * undefined when the address was not in the file (which is then left
   * untouched).
   *
   * @example
   * ```ts
   * await known.remove("localhost:7878"); // "k3b7-..."
   * ```
   */
  async remove(address: string): Promise<string | undefined> {
    const key = canonicalServerAddress(address);
    return await withFileLock(this.#path, async () => {
      const fresh = await KnownServers.load(this.#path);
      const removed = fresh.#entries.get(key)?.fingerprint;
      if (removed !== undefined) {
        fresh.#lines = fresh.#lines.filter((line) => line.key !== key);
        fresh.#entries.delete(key);
        await writeTrustFile(this.#path, fresh.#lines);
      }
      this.#lines = fresh.#lines;
      this.#entries = fresh.#entries;
      return removed;
    });
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
