/**
 * The one-way symmetric ratchet shared by sender keys and pairwise sessions:
 *
 * ```text
 * mk_n     = HMAC-SHA256(ck_n, 0x01)
 * ck_{n+1} = HMAC-SHA256(ck_n, 0x02)
 * key (32) || nonce (12) = HKDF-SHA256(ikm = mk_n, salt = empty, info, 44)
 * ```
 *
 * `info` is the caller's domain string. A chain holds only `ck` for its next
 * index, so whoever takes its state later cannot compute earlier keys.
 * Receivers walk forward on a scratch copy ({@linkcode SymmetricChain.walk})
 * and commit only once the message has proved itself (its AEAD opened), so a
 * forged message cannot move the chain; a walk is bounded by `maxSkip` and,
 * optionally, by a step budget the caller shares per remote member.
 *
 * @module
 */

import { cryptoBackend } from "../crypto/crypto_backend.ts";

const MESSAGE_KEY_SEED = Uint8Array.of(0x01);
const CHAIN_KEY_SEED = Uint8Array.of(0x02);
const EMPTY = new Uint8Array(0);
const CHAIN_KEY_LENGTH = 32;
const KEY_LENGTH = 32;
const NONCE_LENGTH = 12;
/** The largest index a chain can reach; `0xffff_ffff` stays free so "next" fits in a u32. */
export const LAST_CHAIN_INDEX = 0xffff_fffe;

/**
 * A budget of chain steps, shared by the caller across the chains of one
 * remote member (a token bucket): a walk asks for its skipped steps before
 * computing them, and is refused if the budget says no.
 */
export interface ChainStepBudget {
  /** Takes `steps` tokens if available and returns true; otherwise takes none and returns false. */
  take(steps: number): boolean;
}

/** Why a walk was refused. */
export type ChainFailure = "replayed" | "too-far-ahead" | "over-budget" | "exhausted";

/**
 * Raised when a chain cannot give the requested key. Carries the numbers a
 * caller needs for its own message; never key material.
 *
 * @example
 * ```ts
 * try {
 *   chain.walk(counter);
 * } catch (error) {
 *   if (error instanceof ChainError && error.reason === "replayed") dropQuietly();
 * }
 * ```
 */
export class ChainError extends Error {
  /** Machine-readable cause. */
  readonly reason: ChainFailure;
  /** The chain's next index when the walk was asked for. */
  readonly next: number;
  /** The index asked for. */
  readonly target: number;

  /** @example `new ChainError("replayed", 5, 3)` */
  constructor(reason: ChainFailure, next: number, target: number) {
    super(ChainError.#describe(reason, next, target));
    this.name = "ChainError";
    this.reason = reason;
    this.next = next;
    this.target = target;
  }

  static #describe(reason: ChainFailure, next: number, target: number): string {
    switch (reason) {
      case "replayed":
        return `index ${target} was already passed (next is ${next}): a replay, duplicate or reordering`;
      case "too-far-ahead":
        return `index ${target} is ${target - next} steps ahead of ${next}, beyond the skip limit`;
      case "over-budget":
        return `walking ${target - next} steps from ${next} exceeds the step budget for now`;
      case "exhausted":
        return "the chain has used its last index; start a new one";
    }
  }
}

/** One message's key and nonce, from {@linkcode SymmetricChain.next} or a walk. */
export interface MessageKey {
  /** The chain index the key belongs to. */
  readonly index: number;
  /** 32-byte ChaCha20-Poly1305 key. */
  readonly key: Uint8Array;
  /** 12-byte nonce. */
  readonly nonce: Uint8Array;
}

/** Options for {@linkcode SymmetricChain}. */
export interface SymmetricChainOptions {
  /** The 32-byte chain key for `index` (copied). */
  chainKey: Uint8Array;
  /** The index `chainKey` belongs to (default 0). */
  index?: number;
  /** HKDF info: the caller's domain string. */
  info: Uint8Array;
  /** The most steps a walk may skip (default 2,000). */
  maxSkip?: number;
}

function advance(chainKey: Uint8Array): Uint8Array {
  return cryptoBackend.hmacSha256(chainKey, CHAIN_KEY_SEED);
}

function messageKey(chainKey: Uint8Array, index: number, info: Uint8Array): MessageKey {
  const mk = cryptoBackend.hmacSha256(chainKey, MESSAGE_KEY_SEED);
  const okm = cryptoBackend.hkdfSha256(mk, EMPTY, info, KEY_LENGTH + NONCE_LENGTH);
  mk.fill(0);
  return { index, key: okm.subarray(0, KEY_LENGTH), nonce: okm.subarray(KEY_LENGTH) };
}

/**
 * Wipes a message key once used (key and nonce share one buffer).
 *
 * @example
 * ```ts
 * const mk = chain.next();
 * try {
 *   seal(mk.key, mk.nonce, aad, plaintext);
 * } finally {
 *   wipeMessageKey(mk);
 * }
 * ```
 */
export function wipeMessageKey(key: MessageKey): void {
  key.key.fill(0);
  key.nonce.fill(0);
}

/**
 * One chain (one direction of one sender). Senders call
 * {@linkcode next}; receivers {@linkcode walk} then commit or discard.
 *
 * @example
 * ```ts
 * const info = utf8("securechat/2 pairwise message key");
 * const sending = new SymmetricChain({ chainKey, info });
 * const receiving = new SymmetricChain({ chainKey, info });
 * const mk = sending.next(); // index 0
 * const walk = receiving.walk(0);
 * // ... open with walk.key / walk.nonce, then:
 * walk.commit();
 * ```
 */
export class SymmetricChain {
  #chainKey: Uint8Array;
  #index: number;
  #info: Uint8Array;
  #maxSkip: number;
  // Bumped on every change, so a walk made before cannot be committed after.
  #generation = 0;

  /** @example `new SymmetricChain({ chainKey, index: 0, info: utf8("my domain") })` */
  constructor(options: SymmetricChainOptions) {
    const { chainKey, index = 0, info, maxSkip = 2000 } = options;
    if (!(chainKey instanceof Uint8Array) || chainKey.length !== CHAIN_KEY_LENGTH) {
      throw new TypeError("a chain key must be 32 bytes");
    }
    if (!Number.isInteger(index) || index < 0 || index > LAST_CHAIN_INDEX + 1) {
      throw new RangeError(`a chain index must be an integer from 0 to ${LAST_CHAIN_INDEX + 1}`);
    }
    if (!Number.isInteger(maxSkip) || maxSkip < 0) {
      throw new RangeError("maxSkip must be a whole number");
    }
    this.#chainKey = chainKey.slice();
    this.#index = index;
    this.#info = info.slice();
    this.#maxSkip = maxSkip;
  }

  /** The index the next message uses (sender) or the lowest still accepted (receiver). @example `chain.index` */
  get index(): number {
    return this.#index;
  }

  /**
   * A copy of the chain key for {@linkcode index}: it opens that message and
   * every later one, none before.
   *
   * @example
   * ```ts
   * const state = { index: chain.index, chainKey: chain.exportChainKey() };
   * ```
   */
  exportChainKey(): Uint8Array {
    return this.#chainKey.slice();
  }

  /**
   * The key for {@linkcode index}, advancing the chain past it (sender side).
   * Throws {@linkcode ChainError} (`exhausted`) after the last index.
   *
   * @example
   * ```ts
   * const { index, key, nonce } = chain.next();
   * ```
   */
  next(): MessageKey {
    if (this.#index > LAST_CHAIN_INDEX) {
      throw new ChainError("exhausted", this.#index, this.#index);
    }
    const key = messageKey(this.#chainKey, this.#index, this.#info);
    this.#replace(advance(this.#chainKey), this.#index + 1);
    return key;
  }

  /**
   * Walks a scratch copy of the chain to `target` and returns its key,
   * changing nothing until {@linkcode ChainWalk.commit}. Refuses (with
   * {@linkcode ChainError}) a target behind the chain (`replayed`), more than
   * `maxSkip` steps ahead (`too-far-ahead`), or, when a budget is given, a
   * walk whose skipped steps the budget will not pay for (`over-budget`;
   * a walk that skips nothing does not ask).
   *
   * @example
   * ```ts
   * const walk = chain.walk(counter, { budget });
   * try {
   *   plaintext = open(walk.key, walk.nonce, aad, ciphertext);
   * } catch {
   *   walk.discard();
   *   throw new Error("tampered");
   * }
   * walk.commit();
   * ```
   */
  walk(target: number, options: { budget?: ChainStepBudget } = {}): ChainWalk {
    if (!Number.isInteger(target) || target < 0) {
      throw new RangeError("a chain index must be a whole number");
    }
    if (target < this.#index) throw new ChainError("replayed", this.#index, target);
    if (target > LAST_CHAIN_INDEX) throw new ChainError("exhausted", this.#index, target);
    const skipped = target - this.#index;
    if (skipped > this.#maxSkip) throw new ChainError("too-far-ahead", this.#index, target);
    if (skipped > 0 && options.budget !== undefined && !options.budget.take(skipped)) {
      throw new ChainError("over-budget", this.#index, target);
    }
    let chainKey = this.#chainKey;
    for (let i = 0; i < skipped; i++) {
      const nextKey = advance(chainKey);
      if (chainKey !== this.#chainKey) chainKey.fill(0);
      chainKey = nextKey;
    }
    const key = messageKey(chainKey, target, this.#info);
    const after = advance(chainKey);
    if (chainKey !== this.#chainKey) chainKey.fill(0);
    const generation = this.#generation;
    return new ChainWalk({
      key,
      skipped,
      commit: () => {
        if (generation !== this.#generation) {
          after.fill(0);
          throw new Error("the chain moved since this walk began; walk again");
        }
        this.#replace(after, target + 1);
      },
      discard: () => after.fill(0),
    });
  }

  /**
   * Wipes the chain key; the chain is unusable afterwards.
   *
   * @example
   * ```ts
   * chain.wipe();
   * ```
   */
  wipe(): void {
    this.#chainKey.fill(0);
    this.#index = LAST_CHAIN_INDEX + 1;
    this.#generation++;
  }

  #replace(chainKey: Uint8Array, index: number): void {
    this.#chainKey.fill(0);
    this.#chainKey = chainKey;
    this.#index = index;
    this.#generation++;
  }
}

/**
 * A pending receive: the key for one index, computed on a scratch copy.
 * Exactly one of {@linkcode commit} or {@linkcode discard} must follow; both
 * wipe the key.
 *
 * @example
 * ```ts
 * const walk = chain.walk(7);
 * console.log(walk.skipped); // messages 0..6 that never arrived, if the chain was at 0
 * walk.discard();
 * ```
 */
export class ChainWalk implements MessageKey {
  #key: MessageKey;
  #skipped: number;
  #commit: () => void;
  #discard: () => void;
  #done = false;

  /** Made by {@linkcode SymmetricChain.walk} only. @example `chain.walk(0)` */
  constructor(options: {
    key: MessageKey;
    skipped: number;
    commit: () => void;
    discard: () => void;
  }) {
    this.#key = options.key;
    this.#skipped = options.skipped;
    this.#commit = options.commit;
    this.#discard = options.discard;
  }

  /** The index walked to. @example `walk.index` */
  get index(): number {
    return this.#key.index;
  }

  /** 32-byte key (wiped by commit or discard). @example `walk.key` */
  get key(): Uint8Array {
    return this.#key.key;
  }

  /** 12-byte nonce (wiped by commit or discard). @example `walk.nonce` */
  get nonce(): Uint8Array {
    return this.#key.nonce;
  }

  /** How many indexes the walk stepped over without a message. @example `walk.skipped` */
  get skipped(): number {
    return this.#skipped;
  }

  /**
   * Moves the chain past this index (the message proved itself) and wipes
   * the key.
   *
   * @example
   * ```ts
   * walk.commit();
   * ```
   */
  commit(): void {
    this.#finish();
    this.#commit();
  }

  /**
   * Leaves the chain as it was and wipes the key.
   *
   * @example
   * ```ts
   * walk.discard();
   * ```
   */
  discard(): void {
    this.#finish();
    this.#discard();
  }

  #finish(): void {
    if (this.#done) throw new Error("this walk was already committed or discarded");
    this.#done = true;
    wipeMessageKey(this.#key);
  }
}
