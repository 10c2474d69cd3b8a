/**
 * Trust on first use in the page, with the command line's rules
 * (lib/identity/tofu.ts): a relay's key is pinned by the fingerprint the
 * user typed, or remembered per address on first contact and refused if it
 * changes; a member's key is remembered per nick, a different key under a
 * known nick is a changed key (the old one is kept, so the warning stays
 * until the user verifies), and a key the user compared out of band is
 * marked verified.
 *
 * @module
 */

import { checkRelayKey, compareFingerprints } from "../lib/identity/tofu.ts";
import type { PageDatabase } from "./idb.ts";

/** How a member's key compares with what the page remembers. */
export type PeerStatus = "new" | "known" | "verified" | "changed";

/** What the page remembers about a nick. */
export interface KnownPeer {
  fingerprint: string;
  verified: boolean;
}

/** The outcome of checking a relay's key. */
export type RelayCheck =
  | { ok: true; firstContact: boolean }
  | { ok: false; expected: string; pinned: boolean };

/**
 * The relays and members this browser has seen.
 *
 * @example
 * ```ts
 * const trust = new PageTrust(db);
 * const check = await trust.checkRelay({ address: "127.0.0.1:7878", presented });
 * ```
 */
export class PageTrust {
  #db: PageDatabase;

  /** @example `new PageTrust(db)` */
  constructor(db: PageDatabase) {
    this.#db = db;
  }

  /**
   * Applies the relay rule to a presented fingerprint, remembering it on
   * first contact (never when pinned).
   *
   * @example
   * ```ts
   * const check = await trust.checkRelay({ address, presented, pinned });
   * if (!check.ok) refuse(check.expected);
   * ```
   */
  async checkRelay(
    options: { address: string; presented: string; pinned?: string },
  ): Promise<RelayCheck> {
    const remembered = options.pinned === undefined
      ? await this.#db.get<string>("relays", options.address)
      : undefined;
    const decision = checkRelayKey({ ...options, remembered });
    if (decision.action === "refuse") {
      return { ok: false, expected: decision.expected, pinned: decision.pinned };
    }
    if (decision.action === "remember") {
      await this.#db.put("relays", options.address, options.presented);
      return { ok: true, firstContact: true };
    }
    return { ok: true, firstContact: false };
  }

  /**
   * Forgets a relay's remembered key (after the user confirmed that it
   * really changed).
   *
   * @example
   * ```ts
   * await trust.forgetRelay("127.0.0.1:7878");
   * ```
   */
  async forgetRelay(address: string): Promise<void> {
    await this.#db.delete("relays", address);
  }

  /**
   * Checks a member's key against the one remembered for its nick,
   * remembering a new nick's key. Returns the status and, for a changed key,
   * the remembered fingerprint.
   *
   * @example
   * ```ts
   * const { status } = await trust.admitPeer("alice", fingerprint);
   * ```
   */
  async admitPeer(
    nick: string,
    fingerprint: string,
  ): Promise<{ status: PeerStatus; expected?: string }> {
    const known = await this.#db.get<KnownPeer>("peers", nick);
    const result = compareFingerprints(known?.fingerprint, fingerprint);
    if (result.status === "new") {
      await this.#db.put("peers", nick, { fingerprint, verified: false });
      return { status: "new" };
    }
    if (result.status === "changed") return { status: "changed", expected: result.expected };
    return { status: known!.verified ? "verified" : "known" };
  }

  /**
   * Records `fingerprint` as verified for `nick`, replacing a changed key.
   *
   * @example
   * ```ts
   * await trust.markVerified("alice", fingerprint);
   * ```
   */
  async markVerified(nick: string, fingerprint: string): Promise<void> {
    await this.#db.put("peers", nick, { fingerprint, verified: true });
  }
}
