/**
 * Property-based fuzzing helpers (fast-check): run a parser on generated
 * inputs, tell its documented refusal apart from a crash, and count both on
 * the scoreboard. A failure names the seed and the shrunk input, so it can
 * be replayed with `FUZZ_SEED`.
 *
 * @module
 */

import fc from "fast-check";
import { FUZZ_RUNS, FUZZ_SEED } from "./knobs.ts";
import type { Attack } from "./scoreboard.ts";

/** What a parser did with one input. */
export type Outcome =
  /** It accepted the input (fine for inputs that are valid or carry no integrity). */
  | "accepted"
  /** It refused the input with its documented error. */
  | "refused"
  /** It accepted something it must refuse (an altered signed or encrypted input). */
  | { forged: string };

/** Options for {@linkcode fuzzParser}. */
export interface FuzzOptions<T> {
  /** The scoreboard row. */
  attack: Attack;
  /** Generates inputs. */
  inputs: fc.Arbitrary<T>;
  /** Runs the parser on one input. */
  parse: (input: T) => Outcome | Promise<Outcome>;
  /** Whether an exception is the parser's documented refusal (anything else is a crash). */
  refusal: (error: unknown) => boolean;
  /** Inputs to generate; default `FUZZ_RUNS`. */
  runs?: number;
}

/**
 * Runs `parse` on `runs` generated inputs. Documented refusals count as
 * detected; other exceptions count as crashes and fail the property (with
 * its seed); accepted forgeries count as forged and fail it too.
 *
 * @example
 * ```ts
 * await fuzzParser({
 *   attack,
 *   inputs: fc.uint8Array(),
 *   parse: (bytes) => (decodeRecord(bytes), "accepted"),
 *   refusal: (error) => error instanceof DecodeError,
 * });
 * ```
 */
export async function fuzzParser<T>(options: FuzzOptions<T>): Promise<void> {
  const { attack, parse, refusal } = options;
  let failed = false;
  // Shrinking re-runs failing inputs; only the first pass is counted.
  const property = fc.asyncProperty(options.inputs, async (input) => {
    let outcome: Outcome;
    try {
      outcome = await parse(input);
    } catch (error) {
      if (refusal(error)) {
        if (!failed) {
          attack.attempt();
          attack.detected();
        }
        return true;
      }
      if (!failed) {
        attack.attempt();
        attack.crash(`${(error as Error)?.name}: ${(error as Error)?.message}`);
      }
      failed = true;
      throw error;
    }
    if (!failed) attack.attempt();
    if (outcome === "refused") {
      if (!failed) attack.detected();
      return true;
    }
    if (outcome === "accepted") return true;
    if (!failed) attack.forged(outcome.forged);
    failed = true;
    return false;
  });
  await fc.assert(property, { numRuns: options.runs ?? FUZZ_RUNS, seed: FUZZ_SEED });
}

/**
 * Inputs derived from genuine samples: each sample with one bit flipped, cut
 * short, extended, partly overwritten, or replaced by random bytes. The
 * result may (rarely) equal the sample; compare before calling it forged.
 *
 * @example
 * ```ts
 * fc.assert(fc.property(mutationsOf([message]), (bytes) => ...));
 * ```
 */
export function mutationsOf(samples: Uint8Array[]): fc.Arbitrary<Uint8Array> {
  return fc.constantFrom(...samples).chain((base) => {
    const last = Math.max(0, base.length - 1);
    return fc.oneof(
      fc.record({ at: fc.nat(last), bit: fc.nat(7) }).map(({ at, bit }) => {
        const out = base.slice();
        if (out.length > 0) out[at] ^= 1 << bit;
        return out;
      }),
      fc.nat(last).map((length) => base.slice(0, length)),
      fc.uint8Array({ minLength: 1, maxLength: 40 }).map((extra) => {
        const out = new Uint8Array(base.length + extra.length);
        out.set(base);
        out.set(extra, base.length);
        return out;
      }),
      fc.tuple(fc.nat(last), fc.uint8Array({ minLength: 1, maxLength: 24 })).map(
        ([at, bytes]) => {
          const out = base.slice();
          out.set(bytes.subarray(0, Math.max(0, out.length - at)), at);
          return out;
        },
      ),
      fc.uint8Array({ maxLength: base.length + 32 }),
    );
  });
}

/**
 * Whether two byte arrays hold the same bytes.
 *
 * @example
 * ```ts
 * sameBytes(a, b);
 * ```
 */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
