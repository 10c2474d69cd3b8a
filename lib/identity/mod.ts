/**
 * Layer 2, identity and trust: Ed25519 identities, fingerprints, safety
 * numbers, identity files (scrypt + XChaCha20-Poly1305 at rest), and the trust
 * files known_servers, known_peers and fingerprint lists. Uses lib/core and
 * lib/crypto.
 *
 * @module
 */

export * from "./fingerprint.ts";
export * from "./identity.ts";
export * from "./identity_file.ts";
export * from "./safety_number.ts";
export * from "./server_address.ts";
export * from "./tofu.ts";
export * from "./trust_store.ts";
