/**
 * A token bucket: the relay's per-connection limit on records per second.
 *
 * The bucket holds up to `burst` tokens and gains `ratePerSecond` of them
 * every second; each record takes one. A client may therefore send `burst`
 * records at once (a rekey sends one record per other member) and
 * `ratePerSecond` records per second for as long as it likes, but no more.
 *
 * @module
 */

/** Options for {@linkcode TokenBucket}. */
export interface TokenBucketOptions {
  /** Tokens gained per second; a positive finite number. */
  ratePerSecond: number;
  /** Most tokens held at once, and the number the bucket starts with; at least 1. */
  burst: number;
  /** Clock in milliseconds; default `performance.now`. Tests pass a fake one. */
  now?: () => number;
}

/**
 * Counts events against a rate, refilling lazily from the clock (no timers).
 *
 * @example
 * ```ts
 * const bucket = new TokenBucket({ ratePerSecond: 200, burst: 1_000 });
 * if (!bucket.take()) console.log("over the limit");
 * ```
 */
export class TokenBucket {
  #ratePerMs: number;
  #burst: number;
  #tokens: number;
  #last: number;
  #now: () => number;

  /**
   * Creates a full bucket. Throws `RangeError` for a rate that is not a
   * positive finite number or a burst below 1.
   *
   * @example
   * ```ts
   * new TokenBucket({ ratePerSecond: 10, burst: 20 });
   * ```
   */
  constructor(options: TokenBucketOptions) {
    const { ratePerSecond, burst } = options;
    if (!(ratePerSecond > 0) || !Number.isFinite(ratePerSecond)) {
      throw new RangeError(
        `rate must be a positive number of events per second, not ${ratePerSecond}`,
      );
    }
    if (!(burst >= 1) || !Number.isFinite(burst)) {
      throw new RangeError(`burst must be at least 1, not ${burst}`);
    }
    this.#ratePerMs = ratePerSecond / 1000;
    this.#burst = burst;
    this.#tokens = burst;
    this.#now = options.now ?? (() => performance.now());
    this.#last = this.#now();
  }

  /**
   * Takes `count` tokens if the bucket holds them and returns `true`;
   * otherwise takes nothing and returns `false`.
   *
   * @example
   * ```ts
   * const bucket = new TokenBucket({ ratePerSecond: 1, burst: 2 });
   * bucket.take(); // true
   * bucket.take(); // true
   * bucket.take(); // false, until half a second or more has passed
   * ```
   */
  take(count = 1): boolean {
    this.#refill();
    if (this.#tokens < count) return false;
    this.#tokens -= count;
    return true;
  }

  /**
   * Tokens available now (a fraction while one is refilling).
   *
   * @example
   * ```ts
   * new TokenBucket({ ratePerSecond: 5, burst: 10 }).available; // 10
   * ```
   */
  get available(): number {
    this.#refill();
    return this.#tokens;
  }

  #refill(): void {
    const now = this.#now();
    // A clock that steps back (a fake one in a test) must not drain the bucket.
    const elapsed = Math.max(0, now - this.#last);
    this.#last = now;
    this.#tokens = Math.min(this.#burst, this.#tokens + elapsed * this.#ratePerMs);
  }
}
