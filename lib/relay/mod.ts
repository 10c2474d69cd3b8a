/**
 * Layer 5, relay: accepts connections, keeps rooms, routes opaque
 * ciphertext and enforces the relay's limits. Uses every layer below; never
 * lib/client.
 *
 * @module
 */

export * from "./relay.ts";
