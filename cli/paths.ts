/**
 * Where securechat keeps its files: `$SECURECHAT_HOME`, or
 * `~/.config/securechat` when that variable is unset or empty.
 *
 * @module
 */

import { homedir } from "node:os";
import { join, resolve } from "node:path";
import process from "node:process";
import { DirectoryError, ensureDirectory } from "../lib/core/directory.ts";
import { CliError, ExitCode } from "./exit_codes.ts";

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
 * Makes sure the state directory exists (creating it with mode 0700) and
 * returns it; a path that cannot be a directory (a file, a read-only or
 * special file system such as /proc) fails at once with exit code 3.
 *
 * @example
 * ```ts
 * const home = await prepareHome();
 * ```
 */
export async function prepareHome(): Promise<string> {
  const home = securechatHome();
  try {
    await ensureDirectory(home, 0o700);
  } catch (error) {
    if (!(error instanceof DirectoryError)) throw error;
    const variable = process.env.SECURECHAT_HOME ? "SECURECHAT_HOME" : "the state directory";
    throw new CliError(`${variable}: ${error.message}`, ExitCode.keyFile);
  }
  return home;
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

/**
 * The local store of one identity: room state, prekeys and history,
 * encrypted under that identity (one file per identity, since a store opens
 * only for the identity that made it).
 *
 * @example
 * ```ts
 * const store = await openLocalStore({ path: clientStorePath(identity.fingerprint), identity });
 * ```
 */
export function clientStorePath(fingerprint: string): string {
  return join(securechatHome(), "store", `${fingerprint}.db`);
}
