/**
 * The relay check every command that connects shares (`join`, `leave`):
 * the relay's key against `--server-fingerprint`, or against `known_servers`
 * by the address as typed and the address it resolved to, remembered on
 * first use. Also opens the identity's local store.
 *
 * @module
 */

import { AuthenticationError } from "../lib/core/errors.ts";
import { fingerprintsEqual } from "../lib/identity/fingerprint.ts";
import type { Identity } from "../lib/identity/identity.ts";
import {
  formatServerAddress,
  KnownServers,
  type ServerAddress,
} from "../lib/identity/trust_store.ts";
import { type LocalStore, LocalStoreError, openLocalStore } from "../lib/client/local_store.ts";
import { CliError, ExitCode } from "./exit_codes.ts";
import type { JoinOutput } from "./output.ts";
import { clientStorePath } from "./paths.ts";

/**
 * Opens the local store of `identity` (room state, prekeys, history).
 * A store that cannot be opened is a state-file problem (exit 3).
 *
 * @example
 * ```ts
 * const store = await openClientStore(identity);
 * ```
 */
export async function openClientStore(identity: Identity): Promise<LocalStore> {
  try {
    return await openLocalStore({ path: clientStorePath(identity.fingerprint), identity });
  } catch (error) {
    if (error instanceof LocalStoreError) throw new CliError(error.message, ExitCode.keyFile);
    throw error;
  }
}

/**
 * Checks the relay's key against the pin or `known_servers`, following ssh:
 * by the address as typed, and also by the address it resolved to (so
 * `localhost:7878` and `127.0.0.1:7878` cannot hold two keys unnoticed). A
 * key that differs from the one remembered for the typed address, or for the
 * resolved address when the typed one is new, stops the join; a difference
 * only at the resolved address of a known name is a warning (addresses get
 * reassigned). Both entries are remembered on first use.
 *
 * @example
 * ```ts
 * await verifyRelay({ address, relay, knownServers, output });
 * ```
 */
export async function verifyRelay(options: {
  address: ServerAddress;
  relay: { fingerprint: string; remoteAddress?: string; remotePort?: number };
  pinned?: string;
  knownServers?: KnownServers;
  output: JoinOutput;
}): Promise<void> {
  const { relay, pinned, knownServers, output } = options;
  const shown = formatServerAddress(options.address);
  if (pinned !== undefined) {
    if (!fingerprintsEqual(pinned, relay.fingerprint)) {
      throw new AuthenticationError(
        `relay at ${shown} presented fingerprint ${relay.fingerprint}, but --server-fingerprint ` +
          `expects ${pinned}: possible man-in-the-middle; nothing was sent`,
      );
    }
    return;
  }
  const known = knownServers!;
  const result = known.check(shown, relay.fingerprint);
  const resolved = resolvedAddress(relay);
  const byAddress = resolved !== undefined && resolved !== shown
    ? known.check(resolved, relay.fingerprint)
    : undefined;
  const mitm = (where: string, expected: string | undefined) =>
    new AuthenticationError(
      `relay at ${where} presented fingerprint ${relay.fingerprint}, but ${known.path} ` +
        `expects ${expected}: possible man-in-the-middle; nothing was sent. If the relay's ` +
        `key really changed, run \`securechat known-servers --remove ${where}\``,
    );
  if (result.status === "changed") throw mitm(shown, result.expected);
  if (byAddress?.status === "changed") {
    if (result.status === "new") throw mitm(`${shown} (${resolved})`, byAddress.expected);
    output.notice(
      "warning",
      `the relay at ${shown} matches known_servers, but ${resolved}, the address it resolved ` +
        `to, is remembered with another key (${byAddress.expected}); if that address was ` +
        `reassigned, run \`securechat known-servers --remove ${resolved}\``,
      { code: "relay-address", address: resolved },
    );
  }
  if (result.status === "new") {
    await known.remember(shown, relay.fingerprint);
    output.notice(
      "relay",
      `first connection to ${shown}: remembered its fingerprint ${relay.fingerprint} in ` +
        `${known.path}; compare it with the relay operator's`,
      { address: shown, fingerprint: relay.fingerprint },
    );
  }
  if (byAddress?.status === "new") await known.remember(resolved!, relay.fingerprint);
}

/** The address a connection reached, as a `known_servers` key, or undefined. */
function resolvedAddress(
  relay: { remoteAddress?: string; remotePort?: number },
): string | undefined {
  if (relay.remoteAddress === undefined || relay.remotePort === undefined) return undefined;
  const host = relay.remoteAddress.replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/i, "$1");
  try {
    return formatServerAddress({ host, port: relay.remotePort });
  } catch {
    return undefined;
  }
}
