/**
 * The `securechat` command line: assembles the sub-commands and turns every
 * error into one line on stderr and an exit code from {@linkcode ExitCode}.
 *
 * @module
 */

import { Command, CommanderError } from "commander";
import process from "node:process";
import { CliError, ExitCode } from "./exit_codes.ts";
import { escapeTerminal } from "./output.ts";
import { PROGRAM_VERSION, PROTOCOL_VERSION } from "../lib/core/version.ts";
import { keygenCommand } from "./keygen.ts";
import { fingerprintCommand } from "./fingerprint.ts";
import { serveCommand } from "./serve.ts";
import { joinCommand } from "./join.ts";
import { knownServersCommand } from "./known_servers.ts";
import { historyCommand } from "./history.ts";
import { leaveCommand } from "./leave.ts";
import { webCommand } from "./web.ts";
import { passwdCommand } from "./passwd.ts";
import { completionsCommand, manCommand } from "./docs_commands.ts";
import {
  AuthenticationError,
  NetworkError,
  NickTakenError,
  ProtocolError,
} from "../lib/core/errors.ts";
import { IdentityFileError } from "../lib/identity/identity_file.ts";
import { TrustStoreError } from "../lib/identity/trust_store.ts";
import { StoreError } from "../lib/relay/store/relay_store.ts";
import { FileLockError } from "../lib/core/file_lock.ts";
import { DirectoryError } from "../lib/core/directory.ts";
import { guardStdio, writeStderr } from "./stdio.ts";
import { addHelpSections } from "./help.ts";

/**
 * Builds the commander program with every sub-command.
 *
 * @example
 * ```ts
 * await buildProgram().parseAsync(["node", "securechat", "keygen", "--no-passphrase"]);
 * ```
 */
export function buildProgram(): Command {
  const program = new Command("securechat")
    .description(
      "End-to-end encrypted group chat: a relay that sees only ciphertext, and its clients.",
    )
    .version(`securechat ${PROGRAM_VERSION} (protocol ${PROTOCOL_VERSION})`, "-V, --version");
  usageErrorsAsOneLine(program);
  const commands = [
    keygenCommand(),
    passwdCommand(),
    fingerprintCommand(),
    serveCommand(),
    joinCommand(),
    leaveCommand(),
    historyCommand(),
    knownServersCommand(),
    webCommand(),
    completionsCommand(),
    manCommand(),
  ];
  for (const command of commands) {
    program.addCommand(usageErrorsAsOneLine(command));
  }
  addHelpSections(program);
  return program;
}

/**
 * Commander's usage errors ("error: unknown option '--x'") as the one-line
 * `securechat: ...` every other error uses, with where to look for usage.
 */
function usageErrorsAsOneLine(command: Command): Command {
  return command.exitOverride().configureOutput({
    outputError: (text, write) => {
      const path = command.parent ? `securechat ${command.name()}` : "securechat";
      const message = oneLine(text.trim().replace(/^error: /, ""));
      write(`securechat: ${message}; run \`${path} --help\` for usage\n`);
    },
  });
}

/**
 * Runs the CLI with `argv` (without the runtime and script) and returns the exit code.
 *
 * @example
 * ```ts
 * const code = await runCli(["fingerprint", "identity.pub"]);
 * ```
 */
export async function runCli(argv: string[]): Promise<number> {
  guardStdio();
  try {
    await buildProgram().parseAsync(argv, { from: "user" });
    return ExitCode.ok;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version exit through here with code 0; usage errors were already printed.
      return error.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
    }
    const known = asCliError(error);
    if (known) {
      writeStderr(`securechat: ${oneLine(known.message)}\n`);
      return known.exitCode;
    }
    const detail = error instanceof Error ? error.message : String(error);
    writeStderr(`securechat: unexpected error: ${oneLine(detail)}\n`);
    return ExitCode.failure;
  }
}

/** Maps the library's error classes to exit codes; `undefined` for unexpected errors. */
function asCliError(error: unknown): CliError | undefined {
  if (error instanceof CliError) return error;
  if (
    error instanceof IdentityFileError || error instanceof TrustStoreError ||
    error instanceof FileLockError || error instanceof DirectoryError ||
    error instanceof StoreError
  ) {
    return new CliError(error.message, ExitCode.keyFile);
  }
  if (error instanceof AuthenticationError) {
    return new CliError(error.message, ExitCode.authentication);
  }
  if (error instanceof NetworkError) return new CliError(error.message, ExitCode.network);
  // A taken nick is the user's choice to change, not a broken peer.
  if (error instanceof NickTakenError) return new CliError(error.message, ExitCode.usage);
  if (error instanceof ProtocolError) return new CliError(error.message, ExitCode.protocol);
  return undefined;
}

/** One line, safe for a terminal: the message may carry text from the network (a relay's error). */
function oneLine(text: string): string {
  return escapeTerminal(text.replace(/\s*\n\s*/g, " "));
}

/**
 * The process-wide policy for errors nothing caught, installed once by both
 * entry points (mod.ts through {@linkcode main}, and cli/bin.ts):
 *
 * - a rejected promise nobody handled is a bug in one task (a failed write,
 *   a notice that could not be shown), not in the whole program: it is
 *   reported as one line, `securechat: internal error (continuing): ...`,
 *   and the chat goes on;
 * - an exception thrown out of an event handler may have left state half
 *   changed: it is reported as one line and the process exits 1.
 *
 * Neither ever prints a stack trace. Returns a function that removes the
 * handlers (for tests).
 *
 * @example
 * ```ts
 * installCrashPolicy();
 * ```
 */
export function installCrashPolicy(
  write: (line: string) => void = (line) => process.stderr.write(line),
): () => void {
  const detail = (error: unknown) =>
    oneLine(error instanceof Error ? error.message : String(error)).slice(0, 500);
  const onRejection = (reason: unknown) => {
    write(`securechat: internal error (continuing): ${detail(reason)}\n`);
  };
  const onException = (error: unknown) => {
    write(`securechat: unexpected error: ${detail(error)}\n`);
    process.exit(ExitCode.failure);
  };
  process.on("unhandledRejection", onRejection);
  process.on("uncaughtException", onException);
  return () => {
    process.off("unhandledRejection", onRejection);
    process.off("uncaughtException", onException);
  };
}

/**
 * Runs the CLI, waits for stdout and stderr to drain, and exits the process
 * with the command's exit code, so no open handle keeps it alive.
 *
 * @example
 * ```ts
 * await main(process.argv.slice(2));
 * ```
 */
export async function main(argv: string[]): Promise<never> {
  installCrashPolicy();
  const code = await runCli(argv);
  await Promise.all([drain(process.stdout), drain(process.stderr)]);
  process.exit(code);
}

function drain(stream: NodeJS.WritableStream): Promise<void> {
  return new Promise((resolve) => {
    try {
      stream.write("", () => resolve());
    } catch {
      resolve(); // Closed already: nothing left to drain.
    }
  });
}
