/**
 * Latency bookkeeping cheap enough for millions of deliveries per second: a
 * fixed histogram (10 µs buckets to 100 ms, then 1 ms buckets to 60 s)
 * instead of a sample array.
 *
 * @module
 */

const FINE_MS = 0.01;
const FINE_BUCKETS = 10_000; // 0 to 100 ms
const COARSE_MS = 1;
const COARSE_BUCKETS = 59_900; // 100 ms to 60 s

/**
 * A latency histogram.
 *
 * @example
 * ```ts
 * const histogram = new LatencyHistogram();
 * histogram.record(1.25);
 * histogram.percentile(99); // about 1.25
 * ```
 */
export class LatencyHistogram {
  #fine = new Float64Array(FINE_BUCKETS);
  #coarse = new Float64Array(COARSE_BUCKETS + 1);
  #count = 0;
  #sum = 0;
  #max = 0;

  /** Records `count` samples of `ms` milliseconds. @example `histogram.record(0.8, 10)` */
  record(ms: number, count = 1): void {
    const value = ms > 0 ? ms : 0;
    if (value < FINE_BUCKETS * FINE_MS) this.#fine[Math.floor(value / FINE_MS)] += count;
    else {
      const index = Math.floor((value - FINE_BUCKETS * FINE_MS) / COARSE_MS);
      this.#coarse[Math.min(index, COARSE_BUCKETS)] += count;
    }
    this.#count += count;
    this.#sum += value * count;
    if (value > this.#max) this.#max = value;
  }

  /** Samples recorded. @example `histogram.count` */
  get count(): number {
    return this.#count;
  }

  /** Mean in ms (0 when empty). @example `histogram.mean` */
  get mean(): number {
    return this.#count === 0 ? 0 : this.#sum / this.#count;
  }

  /** Largest sample in ms. @example `histogram.max` */
  get max(): number {
    return this.#max;
  }

  /**
   * The `p`th percentile in ms (upper edge of its bucket); null when empty.
   *
   * @example
   * ```ts
   * const p99 = histogram.percentile(99);
   * ```
   */
  percentile(p: number): number | null {
    if (this.#count === 0) return null;
    const rank = (p / 100) * this.#count;
    let seen = 0;
    for (let i = 0; i < FINE_BUCKETS; i++) {
      seen += this.#fine[i];
      if (seen >= rank && this.#fine[i] > 0) return Math.min((i + 1) * FINE_MS, this.#max);
    }
    for (let i = 0; i <= COARSE_BUCKETS; i++) {
      seen += this.#coarse[i];
      if (seen >= rank && this.#coarse[i] > 0) {
        return Math.min(FINE_BUCKETS * FINE_MS + (i + 1) * COARSE_MS, this.#max);
      }
    }
    return this.#max;
  }

  /** Forgets every sample. @example `histogram.reset()` */
  reset(): void {
    this.#fine.fill(0);
    this.#coarse.fill(0);
    this.#count = 0;
    this.#sum = 0;
    this.#max = 0;
  }

  /** p50, p99 and max, rounded to 0.01 ms. @example `histogram.summary()` */
  summary(): { p50: number | null; p99: number | null; max: number | null; samples: number } {
    const round = (value: number | null) => value === null ? null : Math.round(value * 100) / 100;
    return {
      p50: round(this.percentile(50)),
      p99: round(this.percentile(99)),
      max: this.#count === 0 ? null : round(this.#max),
      samples: this.#count,
    };
  }
}

/**
 * The median of some numbers (null for none).
 *
 * @example
 * ```ts
 * median([3, 1, 2]); // 2
 * ```
 */
export function median(values: number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}
