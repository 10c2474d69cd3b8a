/**
 * Layer 3, transport: the client-relay connection (preamble, Noise XX
 * handshake, encrypted record stream), its framing, and the relay records.
 * Uses the layers below (core, crypto, identity).
 *
 * @module
 */

export * from "./byte_stream.ts";
export * from "./channel.ts";
export * from "./framing.ts";
export * from "./records.ts";
export * from "./tcp.ts";
