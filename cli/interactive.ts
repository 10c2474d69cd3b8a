/**
 * The interactive prompt of `join` on a terminal: incoming lines are printed
 * above the prompt, which is then redrawn with what was being typed, so
 * messages never corrupt the input. Built on `node:readline`, which handles
 * line editing and history; a full-screen interface is a later step.
 *
 * @module
 */

import process from "node:process";
import { clearLine, createInterface, cursorTo } from "node:readline";
import type { ChatClient } from "../lib/client.ts";
import type { JoinOutput } from "./output.ts";

const HELP = [
  "/who    list the members of the room and their fingerprints",
  "/help   show this help",
  "/quit   leave the room (Ctrl-D too)",
  "anything else is sent to the room, end-to-end encrypted",
];

/** Options for {@linkcode runInteractive}. */
export interface InteractiveOptions {
  /** A joined client. */
  client: ChatClient;
  /** Where messages and notices go. */
  output: JoinOutput;
  /** Settles when the session must end (connection closed). */
  done: Promise<void>;
}

/**
 * Runs the prompt until `/quit`, Ctrl-D, Ctrl-C or the end of the connection.
 *
 * @example
 * ```ts
 * await runInteractive({ client, output, done });
 * ```
 */
export async function runInteractive(options: InteractiveOptions): Promise<void> {
  const { client, output } = options;
  const prompt = createInterface({
    input: process.stdin,
    output: process.stdout,
    prompt: `[${client.room}] ${client.nick}> `,
  });
  output.redirect((stream, line) => {
    clearLine(process.stdout, 0);
    cursorTo(process.stdout, 0);
    process[stream].write(`${line}\n`);
    prompt.prompt(true);
  });
  let quit!: () => void;
  const quitting = new Promise<void>((resolve) => quit = resolve);
  prompt.on("close", () => quit());
  prompt.on("SIGINT", () => quit());
  prompt.on("line", (line) => {
    const command = line.trim();
    if (command === "/quit") return quit();
    if (command === "/help") {
      for (const text of HELP) process.stdout.write(`${text}\n`);
    } else if (command === "/who") {
      const members = client.members();
      process.stdout.write(`${members.length} other member(s) in ${client.room}:\n`);
      for (const member of members) {
        const trust = member.trusted ? "" : " (not trusted)";
        process.stdout.write(`  ${member.nick}  ${member.fingerprint}${trust}\n`);
      }
    } else if (command.startsWith("/")) {
      process.stdout.write(`unknown command ${command}; /help lists them\n`);
    } else if (line.length > 0) {
      client.send([line]).catch((error: Error) =>
        output.notice("error", `not delivered: ${error.message}`)
      );
    }
    prompt.prompt();
  });
  prompt.prompt();
  try {
    await Promise.race([quitting, options.done]);
  } finally {
    prompt.close();
    process.stdout.write("\n");
  }
  await client.close();
}
