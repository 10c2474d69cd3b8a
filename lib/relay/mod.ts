/**
 * Layer 5, relay: accepts connections, keeps rooms, routes opaque
 * ciphertext and enforces the relay's limits; keeps rooms durable through
 * its store (store/); reports what metrics count through a small observer
 * interface (no metrics library here). Uses every layer below; never
 * lib/client.
 *
 * @module
 */

export * from "./observer.ts";
export * from "./relay.ts";
export * from "./room_feed.ts";
// The store has a RefusalReason of its own (why an item was not kept), hence the namespace.
export * as store from "./store/mod.ts";
