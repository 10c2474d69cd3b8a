/**
 * Where securechat keeps its files: `$SECURECHAT_HOME`, or
 * `~/.config/securechat` when that variable is unset or empty.
 *
 * @module
 */

import { homedir } from "node:os";
import { join, resolve } from "node:path";
import process from "node:process";

/**
 * The securechat state directory, as an absolute path.
 *
 * @example
 * ```ts
 * securechatHome(); // "/home/me/.config/securechat"
 * ```
 */
export function securechatHome(): string {
  const fromEnvironment = process.env.SECURECHAT_HOME;
  if (fromEnvironment !== undefined && fromEnvironment !== "") return resolve(fromEnvironment);
  return join(homedir(), ".config", "securechat");
}

/**
 * The identity file used when no `--identity`/`--out` is given.
 *
 * @example
 * ```ts
 * defaultIdentityPath(); // "/home/me/.config/securechat/identity"
 * ```
 */
export function defaultIdentityPath(): string {
  return join(securechatHome(), "identity");
}

/**
 * The public-key file written beside an identity file.
 *
 * @example
 * ```ts
 * publicKeyPathFor("/home/me/.config/securechat/identity"); // ".../identity.pub"
 * ```
 */
export function publicKeyPathFor(identityPath: string): string {
  return `${identityPath}.pub`;
}

/**
 * The relay fingerprints remembered on first use.
 *
 * @example
 * ```ts
 * const known = await KnownServers.load(knownServersPath());
 * ```
 */
export function knownServersPath(): string {
  return join(securechatHome(), "known_servers");
}

/**
 * The member fingerprints remembered on first use.
 *
 * @example
 * ```ts
 * const peers = await KnownPeers.load(knownPeersPath());
 * ```
 */
export function knownPeersPath(): string {
  return join(securechatHome(), "known_peers");
}
