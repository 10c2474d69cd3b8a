/**
 * Layer 5, relay: accepts connections, keeps rooms, routes opaque
 * ciphertext and enforces the relay's limits; keeps rooms durable through
 * its store (store/). Uses every layer below; never
 * lib/client.
 *
 * @module
 */

export * from "./relay.ts";
export * from "./store/mod.ts";
