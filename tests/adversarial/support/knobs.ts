/**
 * Sizes and seeds of the adversarial suite, from the environment, so CI can
 * run a smaller suite than the full one and any run can be replayed.
 *
 * - `FUZZ_RUNS`: generated inputs per parser (CI default 1,000; the full run
 *   `deno task test:adversarial:full` sets 10,000).
 * - `FUZZ_SEED`: fast-check seed; printed by every run, set it to replay.
 * - `ADVERSARIAL_ATTEMPTS`: attempts per network attack and direction.
 * - `ADVERSARIAL_SEED`: seed of the network attacks' choices.
 *
 * @module
 */

import process from "node:process";

function positiveInteger(name: string, fallback: number): number {
  const text = process.env[name];
  if (text === undefined || text === "") return fallback;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new Error(`${name} must be a positive whole number, got ${JSON.stringify(text)}`);
  }
  return value;
}

/** Generated inputs per parser. @example `fc.assert(property, { numRuns: FUZZ_RUNS })` */
export const FUZZ_RUNS = positiveInteger("FUZZ_RUNS", 1_000);

/**
 * A default seed that changes from run to run but is the same in every test
 * file of one run (they share the process), so the report can name it.
 */
const RUN_SEED = 1 + (Math.imul(process.pid, 2654435761) >>> 2);

/** The fast-check seed of this run. @example `fc.assert(property, { seed: FUZZ_SEED })` */
export const FUZZ_SEED = positiveInteger("FUZZ_SEED", RUN_SEED);

/** Attempts per network attack and direction. @example `for (let i = 0; i < ATTEMPTS; i++)` */
export const ATTEMPTS = positiveInteger("ADVERSARIAL_ATTEMPTS", 4);

/** Seed of the network attacks' random choices. @example `seededRandom(ADVERSARIAL_SEED)` */
export const ADVERSARIAL_SEED = positiveInteger("ADVERSARIAL_SEED", RUN_SEED);
