/**
 * securechat: end-to-end encrypted group chat.
 *
 * This module is the library's public API: run a relay, join a room, manage
 * identities. Run as the main module it is the command line:
 * `deno run -A mod.ts <command>`.
 *
 * @example
 * ```ts
 * import { ChatClient, generateIdentity, Relay } from "./mod.ts";
 *
 * const relay = await Relay.listen({ identity: generateIdentity(), port: 0 });
 * const client = await ChatClient.connect({
 *   ...relay.address,
 *   identity: generateIdentity(),
 *   room: "ops",
 *   nick: "alice",
 *   verifyRelay: ({ fingerprint }) => {
 *     if (fingerprint !== relay.fingerprint) throw new Error("wrong relay");
 *   },
 *   onEvent: (event) => console.log(event.type),
 * });
 * await client.send(["deploy done"]);
 * await client.close();
 * await relay.close();
 * ```
 *
 * @module
 */

import process from "node:process";
import { main } from "./cli/main.ts";

export { ChatClient, type ChatClientOptions, fetchRelayFingerprint } from "./lib/client/client.ts";
export { DEFAULT_PORT, Relay, type RelayOptions } from "./lib/relay/relay.ts";
export { type MemberInfo, type RoomEvent, RoomSession } from "./lib/e2e/room.ts";
export { generateIdentity, type Identity, identityFromSecretKey } from "./lib/identity/identity.ts";
export { fingerprint, fingerprintsEqual, parseFingerprint } from "./lib/identity/fingerprint.ts";
export { IdentityFileError, loadIdentity, saveIdentity } from "./lib/identity/identity_file.ts";
export { KnownPeers, KnownServers, loadFingerprintList } from "./lib/identity/trust_store.ts";
export { AuthenticationError, NetworkError, ProtocolError } from "./lib/core/errors.ts";
export { PROGRAM_VERSION, PROTOCOL_VERSION } from "./lib/core/version.ts";

if (import.meta.main) {
  await main(process.argv.slice(2));
}
