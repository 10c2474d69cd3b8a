/**
 * What `join` knows about each member's key, for display: checks every
 * member against `known_peers`, records new ones, and turns what the locked
 * re-check finds into notices. Trust follows keys: a verified key stays
 * verified under a new nick. A write that fails is reported once as a
 * warning and the chat goes on; it never ends the process.
 *
 * @module
 */

import type { KnownPeers, RememberResult } from "../lib/identity/known_peers.ts";
import type { MemberInfo } from "../lib/e2e/room.ts";
import { confusableNick } from "../lib/identity/nick.ts";
import type { JoinOutput, PeerStatus } from "./output.ts";

/** What {@linkcode PeerTrust.admit} found out about a member. */
export interface Admission {
  status: PeerStatus;
  /** The fingerprint remembered for this nick, when the key changed. */
  expected?: string;
  /** Other nicks this key used before, when the nick is new but the key is known. */
  knownAs?: string[];
}

/**
 * The text of the changed-key warning.
 *
 * @example
 * ```ts
 * keyChangedText({ nick: "bob", fingerprint: now }, before);
 * ```
 */
export function keyChangedText(
  member: { nick: string; fingerprint: string },
  expected: string | undefined,
): string {
  return `WARNING: ${member.nick}'s key has CHANGED: ${member.fingerprint} now, ${expected} ` +
    `before. Someone may be impersonating ${member.nick}; verify with them before trusting ` +
    "these messages";
}

/**
 * Trust status of the members of one `join`.
 *
 * @example
 * ```ts
 * const peers = new PeerTrust({ knownPeers: await KnownPeers.load(path), output });
 * const { status } = peers.admit(member);
 * ```
 */
export class PeerTrust {
  #knownPeers: KnownPeers;
  #output: JoinOutput;
  #status = new Map<number, PeerStatus>();
  #present = new Map<number, MemberInfo>();
  #writes = new Set<Promise<unknown>>();
  #reported = new Set<string>();

  /** @example `new PeerTrust({ knownPeers, output })` */
  constructor(options: { knownPeers: KnownPeers; output: JoinOutput }) {
    this.#knownPeers = options.knownPeers;
    this.#output = options.output;
  }

  /**
   * Checks a member against `known_peers` and records it (batched, under
   * the file's lock). A look-alike of a remembered nick or of a member here
   * is warned about at once; a key that the locked re-check finds changed
   * (another process recorded the nick meanwhile) is warned about when the
   * check completes.
   *
   * @example
   * ```ts
   * const { status, expected } = peers.admit(member);
   * ```
   */
  admit(member: MemberInfo): Admission {
    const result = this.#knownPeers.check(member.nick, member.fingerprint);
    let status: PeerStatus;
    if (result.status === "changed") {
      // Keep the old binding: the warning must persist until the user re-verifies.
      status = "changed";
    } else if (result.status === "new") {
      status = "new";
    } else {
      status = result.verified ? "verified" : "known";
    }
    this.#status.set(member.memberId, status);
    if (status === "new") this.#warnLookalike(member);
    this.#present.set(member.memberId, member);
    if (result.status !== "match" && result.status !== "changed") this.#remember(member);
    return { status, expected: result.expected, knownAs: result.knownAs };
  }

  /** Forgets a member that left (it is no longer compared for look-alikes). @example `peers.release(member)` */
  release(member: MemberInfo): void {
    this.#present.delete(member.memberId);
  }

  /**
   * The member's trust status now.
   *
   * @example
   * ```ts
   * peers.statusOf(member); // "verified"
   * ```
   */
  statusOf(member: MemberInfo): PeerStatus {
    const status = this.#status.get(member.memberId) ?? "new";
    if (status === "changed") return status;
    // Verification belongs to the key: it may have been given under another nick meanwhile.
    return this.#knownPeers.statusOfKey(member.fingerprint)?.verified ? "verified" : status;
  }

  /**
   * Records `member`'s key as verified in `known_peers` (after the user
   * compared safety numbers) and shows it as verified from now on.
   *
   * @example
   * ```ts
   * await peers.markVerified(member);
   * ```
   */
  async markVerified(member: MemberInfo): Promise<void> {
    await this.#knownPeers.markVerified(member.nick, member.fingerprint);
    for (const [memberId, present] of this.#present) {
      if (present.fingerprint === member.fingerprint) this.#status.set(memberId, "verified");
    }
    this.#status.set(member.memberId, "verified");
  }

  /**
   * Writes what is queued and waits for it; failures were reported as
   * warnings and do not reject.
   *
   * @example
   * ```ts
   * await peers.settled();
   * ```
   */
  async settled(): Promise<void> {
    await this.#knownPeers.flush().catch(() => {});
    await Promise.all(this.#writes);
  }

  #remember(member: MemberInfo): void {
    const write = this.#knownPeers.remember(member.nick, member.fingerprint).then(
      (result) => this.#checked(member, result),
      (error: Error) => this.#failed(member, error),
    );
    this.#writes.add(write);
    write.finally(() => this.#writes.delete(write)).catch(() => {});
  }

  /** The locked re-check's verdict: another process may have recorded this nick meanwhile. */
  #checked(member: MemberInfo, result: RememberResult): void {
    if (result.status === "changed" && this.#status.get(member.memberId) !== "changed") {
      this.#status.set(member.memberId, "changed");
      this.#output.notice("key-changed", keyChangedText(member, result.expected), {
        nick: member.nick,
        fingerprint: member.fingerprint,
        status: "changed",
        expected: result.expected,
      });
    }
    if (!result.stored) {
      this.#reportOnce(
        "full",
        `${this.#knownPeers.path} is full of verified keys: ${member.nick}'s key ` +
          `(${member.fingerprint}) is not remembered`,
      );
    }
  }

  #failed(member: MemberInfo, error: Error): void {
    this.#reportOnce(
      error.message,
      `could not remember ${member.nick}'s key in known_peers: ${error.message}; ` +
        "the chat goes on, but new keys are not being saved",
    );
  }

  #reportOnce(key: string, text: string): void {
    if (this.#reported.has(key)) return;
    this.#reported.add(key);
    this.#output.notice("warning", text, { code: "known-peers" });
  }

  #warnLookalike(member: MemberInfo): void {
    let other = this.#knownPeers.lookalike(member.nick, member.fingerprint);
    if (other === undefined) {
      for (const present of this.#present.values()) {
        if (present.fingerprint === member.fingerprint) continue;
        if (confusableNick(member.nick, [present.nick]) !== undefined) {
          other = { nick: present.nick, fingerprint: present.fingerprint };
          break;
        }
      }
    }
    if (other === undefined) return;
    this.#output.notice(
      "warning",
      `WARNING: ${member.nick} (${member.fingerprint}) looks like ${other.nick} ` +
        `(${other.fingerprint}) but has another key: possible impersonation; verify before ` +
        "trusting its messages",
      { code: "lookalike", nick: member.nick, fingerprint: member.fingerprint, like: other.nick },
    );
  }
}
