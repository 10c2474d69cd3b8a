/**
 * `known_peers`: the members' keys this user has seen, the nicks each key
 * used, and which keys the user verified. Trust follows keys: `verified`
 * belongs to a fingerprint, so a member who changes nick keeps it; the
 * changed-key warning is per nick: a nick already bound to one key that
 * arrives with another is flagged, and the binding stays until the user
 * verifies the new key.
 *
 * File format (PROTOCOL.md, "known_peers"), one line per key, oldest first:
 *
 * ```text
 * <fingerprint> <verified|seen> <nick> [<nick> ...]   [# comment]
 * ```
 *
 * Lines of the first format (`<nick> <fingerprint> [verified]`) are still
 * read, and rewritten in the new form at the next rewrite.
 *
 * Bounded and cheap under a flood of new members:
 * - at most {@linkcode MAX_KNOWN_KEYS} keys and {@linkcode MAX_NICKS_PER_KEY}
 *   nicks per key; past the cap, unverified keys are evicted oldest first,
 *   down to 90% of the cap, so a rewrite is due at most once per 1,000 new
 *   keys; verified keys are never evicted;
 * - new keys are batched ({@linkcode BATCH_MS}) and appended: one lock, one
 *   `stat`, one append and one `fsync` per batch. The file is re-read only
 *   when another process changed it since this one last read or wrote it.
 * - every update takes `known_peers.lock` (lib/core/file_lock.ts) and
 *   re-checks the file under it, so a key another process recorded or
 *   verified meanwhile is never overwritten: the update reports `changed`.
 *
 * Crash safety: rewrites are atomic (temp file, fsync, rename, mode 0600);
 * an append is one `write` and an `fsync`. An append cut short by a crash
 * leaves a last line without its newline: it is ignored when reading, and
 * the next update rewrites the file without it.
 *
 * @module
 */

import { open, stat } from "node:fs/promises";
import { withFileLock } from "../core/file_lock.ts";
import { fingerprintsEqual, parseFingerprint } from "./fingerprint.ts";
import { nickSkeleton } from "./nick.ts";
import {
  type Line,
  lineError,
  parseFingerprintField,
  readTrustFileContent,
  show,
  splitEntry,
  splitLines,
  TrustStoreError,
  writeTrustFile,
} from "./trust_file.ts";

/** Keys remembered at most; past this, unverified keys are evicted oldest first. */
export const MAX_KNOWN_KEYS = 10_000;
/** Nicks remembered per key, most recent last; an older one is forgotten. */
export const MAX_NICKS_PER_KEY = 4;
/** New keys are written together, at most this long after the first of a batch is seen. */
export const BATCH_MS = 50;
/** A batch is written at once when it reaches this many updates. */
const BATCH_LIMIT = 256;
/** Longest nick a `known_peers` line can hold, in UTF-16 code units. */
const MAX_STORED_NICK_LENGTH = 255;

/** What `known_peers` remembers about a nick: the key bound to it. */
export interface KnownPeer {
  fingerprint: string;
  /** True once the user compared this key out of band. */
  verified: boolean;
}

/** One remembered key. */
export interface PeerKey {
  fingerprint: string;
  verified: boolean;
  /** Nicks seen with this key, oldest first. */
  nicks: string[];
}

/**
 * How a presented (nick, key) compares with `known_peers`:
 * - `new`: neither the nick nor the key is known;
 * - `match`: the nick is bound to this key;
 * - `renamed`: the nick is new, the key is known under `knownAs`;
 * - `changed`: the nick is bound to another key, `expected`.
 * `verified` is the presented key's mark (never for `changed` or `new`).
 */
export interface PeerCheck {
  status: "new" | "match" | "renamed" | "changed";
  expected?: string;
  verified: boolean;
  knownAs?: string[];
}

/** The outcome of an update, decided under the lock against the file as it is then. */
export interface RememberResult extends PeerCheck {
  /** False when the key could not be stored: the file is full of verified keys. */
  stored: boolean;
}

/**
 * Checks that `nick` can be stored: one field of printable characters, not
 * starting with `#`, at most 255 code units. Every nick of the nick profile
 * (lib/identity/nick.ts) passes; older files may hold nicks outside it,
 * which are kept but can never match an announcement.
 *
 * @example
 * ```ts
 * checkPeerNick("alice"); // ok
 * ```
 */
export function checkPeerNick(nick: string): void {
  // deno-lint-ignore no-control-regex
  if (nick === "" || /[\s\x00-\x1f\x7f-\x9f]/u.test(nick) || nick.startsWith("#")) {
    throw new SyntaxError(
      `nick ${show(nick)} cannot be stored: it has blanks, controls or a leading #`,
    );
  }
  if (nick.length > MAX_STORED_NICK_LENGTH) throw new SyntaxError("nick is too long to be stored");
}

interface KeyEntry extends PeerKey {
  /** First line that defines it, for error messages. */
  line: number;
}

interface Parsed {
  lines: Line[];
  keys: Map<string, KeyEntry>;
  nicks: Map<string, string>;
  /** The file did not end with a newline: its last line was an interrupted append. */
  torn: boolean;
  stamp: string | undefined;
}

interface Update {
  nick: string;
  fingerprint: string;
  verify: boolean;
  resolve: (result: RememberResult) => void;
  reject: (error: Error) => void;
}

function formatEntry(entry: PeerKey): string {
  return `${entry.fingerprint} ${entry.verified ? "verified" : "seen"} ${entry.nicks.join(" ")}`;
}

async function parseFile(path: string): Promise<Parsed> {
  const content = await readTrustFileContent(path);
  const text = content?.text ?? "";
  const torn = text !== "" && !text.endsWith("\n");
  const raw = splitLines(text);
  if (torn) raw.pop();
  const lines: Line[] = [];
  const keys = new Map<string, KeyEntry>();
  const nicks = new Map<string, string>();
  const nickLines = new Map<string, number>();
  const bind = (nick: string, fingerprint: string, line: number) => {
    try {
      checkPeerNick(nick);
    } catch (error) {
      throw lineError(path, line, (error as Error).message);
    }
    const earlier = nickLines.get(nick);
    if (earlier !== undefined) {
      throw lineError(path, line, `${show(nick)} is listed again (first on line ${earlier})`);
    }
    nickLines.set(nick, line);
    nicks.set(nick, fingerprint);
  };
  raw.forEach((text, index) => {
    const number = index + 1;
    const split = splitEntry(text);
    if (split === undefined) {
      lines.push({ text });
      return;
    }
    const { fields } = split;
    let fingerprint: string;
    if (fields.length >= 3 && (fields[1] === "verified" || fields[1] === "seen")) {
      fingerprint = parseFingerprintField(path, number, fields[0]);
      const earlier = keys.get(fingerprint);
      if (earlier !== undefined) {
        throw lineError(
          path,
          number,
          `${fingerprint} is listed again (first on line ${earlier.line})`,
        );
      }
      const entry: KeyEntry = {
        fingerprint,
        verified: fields[1] === "verified",
        nicks: [],
        line: number,
      };
      for (const nick of fields.slice(2)) {
        bind(nick, fingerprint, number);
        entry.nicks.push(nick);
      }
      keys.set(fingerprint, entry);
    } else if (
      (fields.length === 2 || (fields.length === 3 && fields[2] === "verified")) &&
      !(fields[1] === "verified" || fields[1] === "seen")
    ) {
      // The first format: one line per nick.
      fingerprint = parseFingerprintField(path, number, fields[1]);
      bind(fields[0], fingerprint, number);
      const entry: KeyEntry = keys.get(fingerprint) ??
        { fingerprint, verified: false, nicks: [], line: number };
      entry.nicks.push(fields[0]);
      entry.verified ||= fields.length === 3;
      keys.set(fingerprint, entry);
    } else {
      throw lineError(
        path,
        number,
        "expected `FINGERPRINT verified|seen NICK...` (or the older `NICK FINGERPRINT [verified]`)",
      );
    }
    lines.push({ text, key: fingerprint });
  });
  return { lines, keys, nicks, torn, stamp: content?.stamp };
}

/**
 * The `known_peers` file.
 *
 * @example
 * ```ts
 * const peers = await KnownPeers.load(knownPeersPath());
 * const result = await peers.remember("alice", fingerprint);
 * if (result.status === "changed") console.error("alice's key changed!");
 * ```
 */
export class KnownPeers {
  #path: string;
  #state: Parsed;
  #maxKeys: number;
  #pending: Update[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  #writing: Promise<void> = Promise.resolve();
  #skeletons: Map<string, string> | undefined;
  /** Set when this batch evicted keys: the file must be rewritten. */
  #evicted = false;

  private constructor(path: string, state: Parsed, maxKeys: number) {
    this.#path = path;
    this.#state = state;
    this.#maxKeys = maxKeys;
  }

  /**
   * Reads the file; a missing file is an empty store. Throws
   * {@linkcode TrustStoreError} for an unreadable or malformed file.
   * `maxKeys` lowers the cap (for tests).
   *
   * @example
   * ```ts
   * const peers = await KnownPeers.load("/home/me/.config/securechat/known_peers");
   * ```
   */
  static async load(path: string, options: { maxKeys?: number } = {}): Promise<KnownPeers> {
    return new KnownPeers(path, await parseFile(path), options.maxKeys ?? MAX_KNOWN_KEYS);
  }

  /** The file this store reads and writes. @example `peers.path` */
  get path(): string {
    return this.#path;
  }

  /**
   * The key bound to `nick`, or undefined.
   *
   * @example
   * ```ts
   * peers.lookup("alice"); // { fingerprint: "k3b7-...", verified: false }
   * ```
   */
  lookup(nick: string): KnownPeer | undefined {
    const fingerprint = this.#state.nicks.get(nick);
    const entry = fingerprint === undefined ? undefined : this.#state.keys.get(fingerprint);
    return entry && { fingerprint: entry.fingerprint, verified: entry.verified };
  }

  /**
   * What is known about a key: whether it is verified and the nicks it used.
   *
   * @example
   * ```ts
   * peers.statusOfKey(fp); // { fingerprint: fp, verified: true, nicks: ["alice", "alicia"] }
   * ```
   */
  statusOfKey(fingerprint: string): PeerKey | undefined {
    const entry = this.#state.keys.get(parseFingerprint(fingerprint));
    return entry &&
      { fingerprint: entry.fingerprint, verified: entry.verified, nicks: [...entry.nicks] };
  }

  /**
   * Compares a presented (nick, key) with what this process last read.
   * {@linkcode KnownPeers.remember} decides again under the lock.
   *
   * @example
   * ```ts
   * peers.check("alice", presented); // { status: "match", expected: "k3b7-...", verified: true }
   * ```
   */
  check(nick: string, fingerprint: string): PeerCheck {
    return decide(this.#state, nick, parseFingerprint(fingerprint));
  }

  /**
   * A remembered nick bound to another key that looks like `nick` (same
   * UTS #39 skeleton, case-blind), or undefined.
   *
   * @example
   * ```ts
   * peers.lookalike("AIice", fp); // { nick: "alice", fingerprint: "k3b7-..." }
   * ```
   */
  lookalike(nick: string, fingerprint: string): { nick: string; fingerprint: string } | undefined {
    if (this.#skeletons === undefined) {
      this.#skeletons = new Map();
      for (const known of this.#state.nicks.keys()) this.#skeletons.set(nickSkeleton(known), known);
    }
    const other = this.#skeletons.get(nickSkeleton(nick));
    if (other === undefined || other === nick) return undefined;
    const bound = this.#state.nicks.get(other)!;
    return fingerprintsEqual(bound, fingerprint) ? undefined : { nick: other, fingerprint: bound };
  }

  /**
   * Records that `nick` was seen with `fingerprint`, batched with other
   * updates and decided under the lock against the file as it is then: a
   * new key is appended; a known key under a new nick gets the nick (the
   * trust mark stays); a nick bound to another key is left as it is and the
   * result says `changed`.
   *
   * @example
   * ```ts
   * const { status } = await peers.remember("alice", presented);
   * ```
   */
  remember(nick: string, fingerprint: string): Promise<RememberResult> {
    return this.#queue(nick, fingerprint, false);
  }

  /**
   * Records `fingerprint` as verified out of band and binds `nick` to it
   * (taking the nick from any other key), then saves at once.
   *
   * @example
   * ```ts
   * await peers.markVerified("alice", "k3b7-q2xa-...");
   * ```
   */
  markVerified(nick: string, fingerprint: string): Promise<RememberResult> {
    return this.#queue(nick, fingerprint, true);
  }

  /**
   * Writes every queued update now and waits for it.
   *
   * @example
   * ```ts
   * await peers.flush();
   * ```
   */
  flush(): Promise<void> {
    this.#schedule(true);
    return this.#writing;
  }

  /**
   * Every remembered nick with its key, in file order.
   *
   * @example
   * ```ts
   * for (const [nick, { fingerprint, verified }] of peers.entries()) console.log(nick, fingerprint, verified);
   * ```
   */
  entries(): [string, KnownPeer][] {
    return [...this.#state.keys.values()].flatMap((entry) =>
      entry.nicks.map((nick) =>
        [nick, { fingerprint: entry.fingerprint, verified: entry.verified }] as [string, KnownPeer]
      )
    );
  }

  /**
   * Every remembered key, oldest first.
   *
   * @example
   * ```ts
   * peers.keys().filter((key) => key.verified).length;
   * ```
   */
  keys(): PeerKey[] {
    return [...this.#state.keys.values()].map((entry) => ({
      fingerprint: entry.fingerprint,
      verified: entry.verified,
      nicks: [...entry.nicks],
    }));
  }

  #queue(nick: string, fingerprint: string, verify: boolean): Promise<RememberResult> {
    try {
      checkPeerNick(nick);
      fingerprint = parseFingerprint(fingerprint);
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise((resolve, reject) => {
      this.#pending.push({ nick, fingerprint, verify, resolve, reject });
      this.#schedule(verify || this.#pending.length >= BATCH_LIMIT);
    });
  }

  #schedule(now: boolean): void {
    if (now) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
      const batch = this.#pending.splice(0);
      if (batch.length > 0) this.#writing = this.#writing.then(() => this.#write(batch));
      return;
    }
    this.#timer ??= setTimeout(() => {
      this.#timer = undefined;
      this.#schedule(true);
    }, BATCH_MS);
  }

  async #write(batch: Update[]): Promise<void> {
    try {
      const results = await withFileLock(this.#path, () => this.#apply(batch));
      batch.forEach((update, index) => update.resolve(results[index]));
    } catch (error) {
      const failure = error instanceof TrustStoreError || error instanceof SyntaxError
        ? error
        : new TrustStoreError({
          path: this.#path,
          message: `cannot update ${this.#path}: ${(error as Error).message}`,
        });
      for (const update of batch) update.reject(failure);
    }
  }

  /** Under the lock: brings the view up to date, decides each update, writes once. */
  async #apply(batch: Update[]): Promise<RememberResult[]> {
    const current = await stampOf(this.#path);
    if (current !== this.#state.stamp) {
      this.#state = await parseFile(this.#path);
      this.#skeletons = undefined;
    }
    const state = this.#state;
    let rewrite = state.torn;
    const appended: KeyEntry[] = [];
    const results = batch.map((update): RememberResult => {
      const { nick, fingerprint, verify } = update;
      const before = decide(state, nick, fingerprint);
      if (verify) {
        if (before.status === "changed") {
          const old = state.keys.get(before.expected!)!;
          old.nicks = old.nicks.filter((name) => name !== nick);
          if (old.nicks.length === 0) state.keys.delete(old.fingerprint);
          state.nicks.delete(nick);
          rewrite = true;
        }
        let entry = state.keys.get(fingerprint);
        if (entry === undefined) {
          entry = this.#add(state, nick, fingerprint, true, appended);
          if (entry === undefined) return { ...before, stored: false };
        } else {
          if (!entry.verified || !entry.nicks.includes(nick)) rewrite = true;
          entry.verified = true;
          this.#bindNick(state, entry, nick);
        }
        return { ...before, stored: true };
      }
      if (before.status === "match" || before.status === "changed") {
        return { ...before, stored: true };
      }
      if (before.status === "renamed") {
        this.#bindNick(state, state.keys.get(fingerprint)!, nick);
        rewrite = true;
        return { ...before, stored: true };
      }
      const added = this.#add(state, nick, fingerprint, false, appended);
      return { ...before, stored: added !== undefined };
    });
    if (this.#evicted) rewrite = true;
    this.#evicted = false;
    if (rewrite || state.stamp === undefined) {
      await writeTrustFile(this.#path, this.#render(state, appended));
    } else if (appended.length > 0) {
      await this.#append(appended.map((entry) => `${formatEntry(entry)}\n`).join(""));
      for (const entry of appended) {
        state.lines.push({ text: formatEntry(entry), key: entry.fingerprint });
      }
    } else {
      return results;
    }
    state.torn = false;
    state.stamp = await stampOf(this.#path);
    return results;
  }

  #add(
    state: Parsed,
    nick: string,
    fingerprint: string,
    verified: boolean,
    appended: KeyEntry[],
  ): KeyEntry | undefined {
    if (state.keys.size >= this.#maxKeys && !this.#makeRoom(state, appended)) return undefined;
    const entry: KeyEntry = { fingerprint, verified, nicks: [], line: 0 };
    state.keys.set(fingerprint, entry);
    this.#bindNick(state, entry, nick);
    appended.push(entry);
    return entry;
  }

  #bindNick(state: Parsed, entry: KeyEntry, nick: string): void {
    if (entry.nicks.includes(nick)) return;
    entry.nicks.push(nick);
    state.nicks.set(nick, entry.fingerprint);
    this.#skeletons?.set(nickSkeleton(nick), nick);
    while (entry.nicks.length > MAX_NICKS_PER_KEY) {
      const dropped = entry.nicks.shift()!;
      state.nicks.delete(dropped);
      this.#skeletons = undefined;
    }
  }

  /** Evicts unverified keys, oldest first, down to 90% of the cap; false if none could go. */
  #makeRoom(state: Parsed, appended: KeyEntry[]): boolean {
    const target = Math.floor(this.#maxKeys * 0.9);
    let evicted = false;
    for (const entry of [...state.keys.values()]) {
      if (state.keys.size <= target) break;
      if (entry.verified) continue;
      state.keys.delete(entry.fingerprint);
      for (const nick of entry.nicks) state.nicks.delete(nick);
      const index = appended.indexOf(entry);
      if (index >= 0) appended.splice(index, 1);
      evicted = true;
    }
    if (evicted) {
      this.#skeletons = undefined;
      this.#evicted = true;
    }
    return state.keys.size < this.#maxKeys;
  }

  /** The whole file: every line as it was (comments kept), each entry in its current form. */
  #render(state: Parsed, appended: KeyEntry[]): Line[] {
    const lines: Line[] = [];
    const written = new Set<string>();
    for (const line of state.lines) {
      if (line.key === undefined) {
        lines.push(line);
        continue;
      }
      const entry = state.keys.get(line.key);
      if (entry === undefined || written.has(line.key)) continue;
      written.add(line.key);
      lines.push({
        text: formatEntry(entry) + (splitEntry(line.text)?.comment ?? ""),
        key: line.key,
      });
    }
    for (const entry of appended) {
      if (written.has(entry.fingerprint) || !state.keys.has(entry.fingerprint)) continue;
      written.add(entry.fingerprint);
      lines.push({ text: formatEntry(entry), key: entry.fingerprint });
    }
    // Keys added earlier in this process and rendered nowhere yet (after a re-read) are kept too.
    for (const entry of state.keys.values()) {
      if (written.has(entry.fingerprint)) continue;
      written.add(entry.fingerprint);
      lines.push({ text: formatEntry(entry), key: entry.fingerprint });
    }
    state.lines = lines;
    return lines;
  }

  async #append(text: string): Promise<void> {
    try {
      const handle = await open(this.#path, "a", 0o600);
      try {
        await handle.write(text);
        await handle.sync();
      } finally {
        await handle.close();
      }
    } catch (error) {
      throw new TrustStoreError({
        path: this.#path,
        message: `cannot write ${this.#path}: ${(error as Error).message}`,
      });
    }
  }
}

/** The same stamp readTrustFileContent gives; undefined for a missing file. */
function stampOf(path: string): Promise<string | undefined> {
  return stat(path).then((s) => `${s.ino}:${s.size}:${s.mtimeMs}`, () => undefined);
}

function decide(state: Parsed, nick: string, fingerprint: string): PeerCheck {
  const bound = state.nicks.get(nick);
  const key = state.keys.get(fingerprint);
  if (bound !== undefined) {
    if (fingerprintsEqual(bound, fingerprint)) {
      return { status: "match", expected: bound, verified: key?.verified === true };
    }
    return { status: "changed", expected: bound, verified: false };
  }
  if (key !== undefined) {
    return { status: "renamed", verified: key.verified, knownAs: [...key.nicks] };
  }
  return { status: "new", verified: false };
}
