/**
 * Layer 1, crypto: the primitives (native node:crypto with a self-tested
 * @noble fallback) and the Noise Protocol Framework engine built on them.
 * Uses only lib/core.
 *
 * @module
 */

export * from "./crypto_backend.ts";
export * from "./noise.ts";
