/**
 * `securechat known-servers [--remove HOST:PORT]`: lists the relays whose
 * keys `join` remembers (`$SECURECHAT_HOME/known_servers`), or forgets one,
 * as `ssh-keygen -R` does for `known_hosts`. Forgetting is how a relay whose
 * key really changed is accepted again: the next `join` remembers its new key.
 *
 * @module
 */

import { Command, InvalidArgumentError } from "commander";
import { canonicalServerAddress, KnownServers } from "../lib/identity/trust_store.ts";
import { CliError, ExitCode } from "./exit_codes.ts";
import { knownServersPath } from "./paths.ts";
import { writeStderr, writeStdout } from "./stdio.ts";

function addressOption(text: string): string {
  try {
    return canonicalServerAddress(text);
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
}

/**
 * Builds the `known-servers` sub-command.
 *
 * @example
 * ```ts
 * program.addCommand(knownServersCommand());
 * ```
 */
export function knownServersCommand(): Command {
  return new Command("known-servers")
    .description(
      "List the relays whose fingerprints join remembers (known_servers), one `HOST:PORT " +
        "FINGERPRINT` per line, or forget one with --remove.",
    )
    .option(
      "--remove <host:port>",
      "forget this relay address (any form: localhost:7878, [::1]:7878)",
      addressOption,
    )
    .action(async (options: { remove?: string }) => {
      const known = await KnownServers.load(knownServersPath());
      if (options.remove === undefined) {
        const lines = known.entries().map(([address, fp]) => `${address} ${fp}\n`);
        writeStdout(lines.join(""));
        return;
      }
      const removed = await known.remove(options.remove);
      if (removed === undefined) {
        throw new CliError(
          `${options.remove} is not in ${known.path}; nothing was changed ` +
            "(`securechat known-servers` lists what is)",
          ExitCode.usage,
        );
      }
      writeStderr(
        `securechat: removed ${options.remove} (${removed}) from ${known.path}\n`,
      );
    });
}
