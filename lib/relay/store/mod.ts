/**
 * The relay's store (part of layer 5, relay): rosters, stored items in one
 * total order per room, gap notices, acknowledgements and prekeys, behind
 * one async interface ({@linkcode RelayStore}, in `relay_store.ts`) so the
 * relay does not care which engine keeps them. Implemented here on SQLite
 * (`node:sqlite`, a file in a data directory, or memory), and on NATS
 * JetStream for relays that share rooms (`nats_store.ts`: room logs applied
 * identically by every relay, snapshots, prekeys; `nats_credentials.ts`:
 * credentials from a file or the environment). Holds opaque bytes and
 * routing fields only, never plaintext. Imports only lib/core.
 *
 * @module
 */

export * from "./relay_store.ts";
export { type CommitMode } from "../../core/commit_queue.ts";
export { DATABASE_FILE } from "./sqlite_database.ts";
export * from "./sqlite_store.ts";
export { describeNatsError, parseNatsServers } from "./nats_connection.ts";
export * from "./nats_credentials.ts";
export { type NatsStoreOptions, openNatsRelayStore } from "./nats_store.ts";
