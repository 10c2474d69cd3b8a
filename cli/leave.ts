/**
 * `securechat leave HOST:PORT --room R`: leaves a durable room for good. The
 * relay takes this membership off the room's roster and stops keeping
 * messages for it; the other members move to keys it never gets, whether
 * they are online now or later. What this machine kept of the room's keys
 * is forgotten (its history is not: `history` still shows it).
 *
 * Disconnecting is not leaving: a member that only goes away stays on the
 * roster and gets everything on its return.
 *
 * @module
 */

import { Command, InvalidArgumentError } from "commander";
import { validateNick, validateRoom } from "../lib/e2e/announcement.ts";
import { normalizeName } from "../lib/identity/nick.ts";
import { parseFingerprint } from "../lib/identity/fingerprint.ts";
import { ChatClient } from "../lib/client/client.ts";
import { KnownServers, type ServerAddress } from "../lib/identity/trust_store.ts";
import { CliError, ExitCode } from "./exit_codes.ts";
import { loadOrCreateIdentity } from "./identity_option.ts";
import { JoinOutput } from "./output.ts";
import { knownServersPath, prepareHome } from "./paths.ts";
import { openClientStore, verifyRelay } from "./relay_check.ts";
import { serverAddress } from "./options.ts";
import process from "node:process";

interface LeaveOptions {
  room: string;
  nick?: string;
  identity?: string;
  passphraseFile?: string;
  serverFingerprint?: string;
}

/**
 * Builds the `leave` sub-command.
 *
 * @example
 * ```ts
 * program.addCommand(leaveCommand());
 * ```
 */
export function leaveCommand(): Command {
  return new Command("leave")
    .description("leave a durable room for good: taken off its roster, no more messages kept")
    .argument("<host:port>", "the relay's address", (text: string) => serverAddress(text))
    .option("--room <name>", "the room to leave", "lobby")
    .option("--nick <name>", "the nick you are a member under (default: $USER)")
    .option("--identity <path>", "identity file (default: under $SECURECHAT_HOME)")
    .option("--passphrase-file <file>", "read the identity's passphrase from the file's first line")
    .option(
      "--server-fingerprint <fp>",
      "the relay's fingerprint; anything else is refused",
      (text: string) => {
        try {
          return parseFingerprint(text);
        } catch (error) {
          throw new InvalidArgumentError((error as Error).message);
        }
      },
    )
    .action((address: ServerAddress, options: LeaveOptions) => runLeave(address, options));
}

async function runLeave(address: ServerAddress, options: LeaveOptions): Promise<void> {
  const output = new JoinOutput({ json: false });
  const room = normalizeName(options.room);
  const roomProblem = validateRoom(room);
  if (roomProblem) throw new CliError(`--room: ${roomProblem}`, ExitCode.usage);
  const nick = normalizeName(options.nick ?? process.env.USER ?? "");
  const nickProblem = validateNick(nick);
  if (nickProblem) throw new CliError(`--nick: ${nickProblem}`, ExitCode.usage);
  await prepareHome();
  const identity = await loadOrCreateIdentity({
    path: options.identity,
    passphraseFile: options.passphraseFile,
    notice: (text) => output.notice("warning", text),
  });
  const knownServers = options.serverFingerprint
    ? undefined
    : await KnownServers.load(knownServersPath());
  const store = await openClientStore(identity);
  try {
    const client = await ChatClient.connect({
      host: address.host,
      port: address.port,
      identity,
      room,
      nick,
      verifyRelay: (relay) =>
        verifyRelay({ address, relay, pinned: options.serverFingerprint, knownServers, output }),
      store,
      history: false,
      onEvent: () => {},
    });
    if (!client.durable) {
      await client.close();
      throw new CliError(
        `room "${room}" on this relay keeps no members who are away (serve --ephemeral): ` +
          "there is nothing to leave",
        ExitCode.usage,
      );
    }
    await client.leave();
    output.notice("leave", `left room "${room}" (as ${nick}); its members will not send you more`);
  } finally {
    output.flush();
    await store.close();
  }
}
