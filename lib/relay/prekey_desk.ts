/**
 * The relay's prekey desk: takes an identity's prekeys (checked against its
 * signature, so the relay never hands out a key its owner did not sign) and
 * hands them out, each one-time prekey once. One member may take at most
 * {@linkcode HANDOUT_BURST} one-time prekeys of another member at once, then
 * one per {@linkcode HANDOUT_REFILL_MS}; past that it gets the signed prekey
 * alone, so no member can drain another's stock (PROTOCOL.md, "Durable
 * rooms: the relay").
 *
 * @module
 */

import { PrekeyError, verifyPrekey } from "../e2e/prekeys.ts";
import { TokenBucket } from "../core/rate_limit.ts";
import { toHex } from "../core/bytes.ts";
import type { Prekey, RelayStore } from "./store/relay_store.ts";

/** One-time prekeys of one target a requester may take at once. */
export const HANDOUT_BURST = 10;
/** Then one more per this many milliseconds. */
export const HANDOUT_REFILL_MS = 60_000;
/** One-time prekeys one put-prekeys record may carry. */
export const MAX_PREKEYS_PER_UPLOAD = 200;
/** Below this many one-time prekeys the owner is told (prekey-count). */
export const LOW_PREKEY_STOCK = 20;
/** Requester/target pairs whose budgets are remembered; the oldest are forgotten first. */
const MAX_BUDGETS = 100_000;
/** Signed prekeys remembered to answer a requester over its budget. */
const MAX_SIGNED_CACHE = 100_000;

/** Why a put-prekeys was refused: the message is one line for the error record. */
export class BadPrekeyError extends Error {
  /** @example `new BadPrekeyError("the signed prekey is not signed by your identity")` */
  constructor(message: string) {
    super(message);
    this.name = "BadPrekeyError";
  }
}

/** What get-prekeys answers: empty bytes for a field there is none of. */
export interface Handout {
  signedPrekey: Uint8Array;
  oneTimePrekey: Uint8Array;
  /** One-time prekeys the target has left, when one was taken (else undefined). */
  left?: number;
}

const EMPTY = new Uint8Array(0);

/**
 * Checks and stores prekeys, and hands them out under a budget.
 *
 * @example
 * ```ts
 * const desk = new PrekeyDesk(store);
 * const count = await desk.put(identityKey, { signedPrekey, oneTimePrekeys });
 * const handout = await desk.take({ requester: "ops/3", target: bobKey });
 * ```
 */
export class PrekeyDesk {
  #store: RelayStore;
  #budgets = new Map<string, TokenBucket>();
  #signed = new Map<string, Uint8Array>();

  /** @example `new PrekeyDesk(store)` */
  constructor(store: RelayStore) {
    this.#store = store;
  }

  /**
   * Verifies and stores an upload; returns the one-time prekeys now queued.
   * Throws {@linkcode BadPrekeyError} when one is not a prekey of its kind
   * signed by `identityKey` (nothing is stored then).
   */
  async put(
    identityKey: Uint8Array,
    upload: { signedPrekey: Uint8Array; oneTimePrekeys: Uint8Array[] },
  ): Promise<number> {
    if (upload.oneTimePrekeys.length > MAX_PREKEYS_PER_UPLOAD) {
      throw new BadPrekeyError(
        `${upload.oneTimePrekeys.length} one-time prekeys in one record; ` +
          `send at most ${MAX_PREKEYS_PER_UPLOAD} at a time`,
      );
    }
    const check = (record: Uint8Array, kind: "signed" | "one-time"): Prekey => {
      try {
        const prekey = verifyPrekey({ identityPublicKey: identityKey, kind, record });
        return { id: prekey.id, body: record.slice() };
      } catch (error) {
        if (error instanceof PrekeyError) throw new BadPrekeyError(error.message);
        throw error;
      }
    };
    const signed = upload.signedPrekey.length === 0
      ? undefined
      : check(upload.signedPrekey, "signed");
    const oneTime = upload.oneTimePrekeys.map((record) => check(record, "one-time"));
    const result = await this.#store.putPrekeys(identityKey, { signed, oneTime });
    if (signed) this.#remember(identityKey, signed.body);
    return result.oneTimeCount;
  }

  /**
   * Hands out `target`'s prekeys to `requester` (a name unique per member):
   * the signed one, and a one-time one while the requester's budget for
   * this target lasts. Empty fields when the target published nothing.
   */
  async take(options: { requester: string; target: Uint8Array }): Promise<Handout> {
    const key = toHex(options.target);
    const pair = `${options.requester} ${key}`;
    let budget = this.#budgets.get(pair);
    if (budget === undefined) {
      if (this.#budgets.size >= MAX_BUDGETS) this.#budgets.delete(first(this.#budgets.keys())!);
      budget = new TokenBucket({ ratePerSecond: 1000 / HANDOUT_REFILL_MS, burst: HANDOUT_BURST });
      this.#budgets.set(pair, budget);
    }
    const cached = this.#signed.get(key);
    if (cached !== undefined && !budget.take()) {
      return { signedPrekey: cached, oneTimePrekey: EMPTY };
    }
    const handout = await this.#store.takePrekeys(options.target);
    if (handout === undefined) return { signedPrekey: EMPTY, oneTimePrekey: EMPTY };
    this.#remember(options.target, handout.signed.body);
    if (handout.oneTime === undefined) {
      return { signedPrekey: handout.signed.body, oneTimePrekey: EMPTY, left: 0 };
    }
    const { oneTimeCount } = await this.#store.prekeyStatus(options.target);
    return {
      signedPrekey: handout.signed.body,
      oneTimePrekey: handout.oneTime.body,
      left: oneTimeCount,
    };
  }

  #remember(identityKey: Uint8Array, signed: Uint8Array): void {
    const key = toHex(identityKey);
    this.#signed.delete(key);
    if (this.#signed.size >= MAX_SIGNED_CACHE) this.#signed.delete(first(this.#signed.keys())!);
    this.#signed.set(key, signed);
  }
}

function first<T>(items: Iterable<T>): T | undefined {
  for (const item of items) return item;
  return undefined;
}
