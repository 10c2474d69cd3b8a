/**
 * `securechat history HOST:PORT --room R`: prints the messages this identity
 * kept of a room (its local store, encrypted under the identity), oldest
 * first, without connecting to anything. The relay is named by its address
 * (looked up in `known_servers`) or by `--server-fingerprint`.
 *
 * History is a plaintext copy the user chose to keep, protected at rest by
 * the identity (and its passphrase, if it has one); `join --no-history`
 * keeps none.
 *
 * @module
 */

import { Command, InvalidArgumentError } from "commander";
import { parseFingerprint } from "../lib/identity/fingerprint.ts";
import { normalizeName } from "../lib/identity/nick.ts";
import { validateRoom } from "../lib/e2e/announcement.ts";
import {
  formatServerAddress,
  KnownServers,
  type ServerAddress,
} from "../lib/identity/trust_store.ts";
import { CliError, ExitCode } from "./exit_codes.ts";
import { unlockIdentity } from "./passphrase.ts";
import { positiveInteger, serverAddress } from "./options.ts";
import { escapeTerminal, jsonLine } from "./output.ts";
import { defaultIdentityPath, knownServersPath, prepareHome } from "./paths.ts";
import { openClientStore } from "./relay_check.ts";
import { writeStdout } from "./stdio.ts";

interface HistoryOptions {
  room: string;
  identity?: string;
  passphraseFile?: string;
  serverFingerprint?: string;
  since?: number;
  limit?: number;
  json?: boolean;
}

const UNITS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * Parses `--since`: a duration back from now (`90s`, `30m`, `2h`, `7d`) or a
 * date and time (`2026-12-01`, `2026-12-01T09:30`), as milliseconds since
 * the Unix epoch.
 *
 * @example
 * ```ts
 * parseSince("2h", Date.now()); // two hours ago
 * ```
 */
export function parseSince(text: string, now: number = Date.now()): number {
  const relative = /^(\d+)([smhd])$/.exec(text.trim());
  if (relative) return now - Number(relative[1]) * UNITS[relative[2]];
  const time = Date.parse(text);
  if (Number.isNaN(time)) {
    throw new InvalidArgumentError(
      `"${text}" is neither a duration (30m, 2h, 7d) nor a date (2026-12-01, 2026-12-01T09:30)`,
    );
  }
  return time;
}

/**
 * Builds the `history` sub-command.
 *
 * @example
 * ```ts
 * program.addCommand(historyCommand());
 * ```
 */
export function historyCommand(): Command {
  return new Command("history")
    .description(
      "print the messages kept of a room (this machine's encrypted history; nothing is fetched)",
    )
    .argument("<host:port>", "the relay's address", (text: string) => serverAddress(text))
    .option("--room <name>", "the room", "lobby")
    .option(
      "--since <when>",
      "only messages since a duration ago (2h, 7d) or a date",
      (text) => parseSince(text),
    )
    .option("--limit <n>", "at most the last n messages (default 1,000)", positiveInteger)
    .option("--identity <path>", "identity file (default: under $SECURECHAT_HOME)")
    .option("--passphrase-file <file>", "read the identity's passphrase from the file's first line")
    .option(
      "--server-fingerprint <fp>",
      "the relay's fingerprint, instead of looking the address up in known_servers",
      (text: string) => {
        try {
          return parseFingerprint(text);
        } catch (error) {
          throw new InvalidArgumentError((error as Error).message);
        }
      },
    )
    .option("--json", "one JSON object per message")
    .action((address: ServerAddress, options: HistoryOptions) => runHistory(address, options));
}

async function runHistory(address: ServerAddress, options: HistoryOptions): Promise<void> {
  const room = normalizeName(options.room);
  const problem = validateRoom(room);
  if (problem) throw new CliError(`--room: ${problem}`, ExitCode.usage);
  await prepareHome();
  const shown = formatServerAddress(address);
  let relay = options.serverFingerprint;
  if (relay === undefined) {
    const known = await KnownServers.load(knownServersPath());
    relay = known.lookup(shown);
    if (relay === undefined) {
      throw new CliError(
        `${shown} is not in ${known.path}: this machine never joined it (or give ` +
          "--server-fingerprint)",
        ExitCode.usage,
      );
    }
  }
  const identity = await unlockIdentity(options.identity ?? defaultIdentityPath(), {
    passphraseFile: options.passphraseFile,
  });
  const store = await openClientStore(identity);
  try {
    const { rows, refused } = await store.history(relay, room, {
      since: options.since,
      limit: options.limit,
    });
    const lines = rows.map((row) => {
      if (options.json) {
        return jsonLine({
          type: "message",
          room,
          from: row.nick,
          fingerprint: row.sender,
          text: row.text,
          time: new Date(row.time).toISOString(),
          direct: row.kind === "direct",
          direction: row.direction,
          ...(row.seq === undefined ? {} : { seq: row.seq }),
        }) + "\n";
      }
      const when = new Date(row.time).toISOString().replace("T", " ").slice(0, 19);
      const arrow = row.kind === "direct" ? (row.direction === "out" ? " → them" : " → you") : "";
      return `${when} ${escapeTerminal(row.nick)}${arrow}: ${escapeTerminal(row.text)}\n`;
    });
    writeStdout(lines.join(""));
    if (refused > 0) {
      throw new CliError(
        `${refused} kept message(s) did not open (changed or damaged) and were not shown`,
        ExitCode.keyFile,
      );
    }
  } finally {
    await store.close();
  }
}
