/**
 * Layer 5, client: connects to a relay, authenticates it, joins a room and
 * runs the room's end-to-end session over the connection, reconnecting when
 * asked; keeps its state and history in an encrypted local store. Uses every
 * layer below; never lib/relay.
 *
 * @module
 */

export * from "./client.ts";
export * from "./reconnecting_client.ts";
export * from "./local_store.ts";
export * from "./publisher.ts";
