/**
 * Layer 1, crypto: the primitives (native node:crypto with a self-tested
 * @noble fallback), the ML-KEM-768 and X-Wing KEMs, and the Noise Protocol
 * Framework engine built on them.
 * Uses only lib/core.
 *
 * @module
 */

export * from "./crypto_backend.ts";
export * from "./noise.ts";
export * from "./kem.ts";
