/**
 * The trust-on-first-use rules for relay and member keys, apart from where
 * the remembered keys are kept (files for the command line, IndexedDB for
 * the web page), so that every client applies the same ones.
 *
 * @module
 */

import { fingerprintsEqual } from "./fingerprint.ts";

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

/**
 * Compares a presented fingerprint with the remembered one, if any.
 *
 * @example
 * ```ts
 * compareFingerprints(undefined, fp); // { status: "new" }
 * compareFingerprints(fp, fp); // { status: "match", expected: fp }
 * ```
 */
export function compareFingerprints(expected: string | undefined, presented: string): TofuResult {
  if (expected === undefined) return { status: "new" };
  return { status: fingerprintsEqual(expected, presented) ? "match" : "changed", expected };
}

/** What a client does with a relay's key: {@linkcode checkRelayKey}'s answer. */
export type RelayKeyDecision =
  /** Matches the pin or the remembered key: go on. */
  | { action: "accept"; expected: string }
  /** First contact, no pin: go on and remember the key for this address. */
  | { action: "remember" }
  /** Differs from the pin or the remembered key: stop before sending anything identifying. */
  | { action: "refuse"; expected: string; pinned: boolean };

/**
 * The relay rule every securechat client follows: a pinned fingerprint
 * (`--server-fingerprint`) must match and nothing is remembered; without a
 * pin, the key remembered for the address must match, and an address seen
 * for the first time has its key remembered. A changed key is refused, never
 * replaced: the user removes the old entry if the change is genuine.
 *
 * @example
 * ```ts
 * const decision = checkRelayKey({ presented, remembered: known.lookup(address) });
 * if (decision.action === "refuse") throw new AuthenticationError("relay key changed");
 * ```
 */
export function checkRelayKey(
  options: { presented: string; pinned?: string; remembered?: string },
): RelayKeyDecision {
  const { presented, pinned, remembered } = options;
  if (pinned !== undefined) {
    return fingerprintsEqual(pinned, presented)
      ? { action: "accept", expected: pinned }
      : { action: "refuse", expected: pinned, pinned: true };
  }
  const result = compareFingerprints(remembered, presented);
  if (result.status === "new") return { action: "remember" };
  if (result.status === "match") return { action: "accept", expected: result.expected! };
  return { action: "refuse", expected: result.expected!, pinned: false };
}
