/**
 * `securechat fingerprint [PATH | HOST:PORT]`: prints the fingerprint of an
 * identity file, a public-key file, or a running relay.
 *
 * @module
 */

import { Command } from "commander";
import { resolve } from "node:path";
import { fingerprint } from "../lib/identity/fingerprint.ts";
import { IdentityFileError, readPublicKey } from "../lib/identity/identity_file.ts";
import { parseServerAddress, type ServerAddress } from "../lib/identity/trust_store.ts";
import { fetchRelayFingerprint } from "../lib/client/client.ts";
import { pathExists } from "../lib/core/atomic_file.ts";
import { CliError, ExitCode } from "./exit_codes.ts";
import { defaultIdentityPath } from "./paths.ts";
import { writeStderr, writeStdout } from "./stdio.ts";

/**
 * Builds the `fingerprint` sub-command. It prints the fingerprint as the
 * only line on stdout.
 *
 * @example
 * ```ts
 * program.addCommand(fingerprintCommand());
 * ```
 */
export function fingerprintCommand(): Command {
  return new Command("fingerprint")
    .description(
      "print the fingerprint of an identity file (no passphrase needed), a .pub file, or the " +
        "relay listening at HOST:PORT; without an argument, of your default identity",
    )
    .argument("[target]", "identity file, .pub file, or HOST:PORT of a relay")
    .action(async (target: string | undefined) => {
      writeStdout(`${await fingerprintOf(target)}\n`);
    });
}

async function fingerprintOf(target: string | undefined): Promise<string> {
  // A file of that name wins over an address; an unreadable one is reported as a file.
  if (target !== undefined && !(await pathExists(target).catch(() => true))) {
    const address = relayAddress(target);
    if (address !== undefined) return await fetchRelayFingerprint(address);
  }
  const path = resolve(target ?? defaultIdentityPath());
  try {
    const info = await readPublicKey(path);
    if (info.tooOpenMode !== undefined) {
      const octal = info.tooOpenMode.toString(8).padStart(4, "0");
      writeStderr(
        `securechat: warning: permissions ${octal} for ${path} are too open; run chmod 600 ${path}\n`,
      );
    }
    return fingerprint(info.publicKey);
  } catch (error) {
    if (error instanceof IdentityFileError && error.reason === "missing" && target === undefined) {
      throw new CliError(`no identity at ${path}; run \`securechat keygen\``, ExitCode.keyFile);
    }
    throw error;
  }
}

/** `HOST:PORT`, `[IPV6]:PORT` or `IPV6:PORT` as a relay address, else undefined. */
function relayAddress(target: string): ServerAddress | undefined {
  if (target.includes("/") || target.includes("\\")) return undefined;
  try {
    return parseServerAddress(target);
  } catch {
    return undefined;
  }
}
