/**
 * Writing to stdout and stderr when the reader may have gone away.
 *
 * `securechat join ... | head -n 1` closes the pipe after one line. A C
 * program is then killed by SIGPIPE, and the shell reports status 141
 * (128 + 13); Node and Deno ignore SIGPIPE instead, and the next write fails
 * with EPIPE: thrown at once under Deno, emitted as an `error` event under
 * Node. Either way this module ends the process quietly with
 * {@linkcode STDOUT_CLOSED_EXIT}, as the C program would. A closed stderr
 * only loses diagnostics: the program carries on.
 *
 * @module
 */

import process from "node:process";
import { ExitCode } from "./exit_codes.ts";

/** The status a shell reports for a program killed by SIGPIPE: 128 + 13. */
export const STDOUT_CLOSED_EXIT: number = ExitCode.stdoutClosed;

let guarded = false;

function isClosedPipe(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code;
  return code === "EPIPE" || code === "ERR_STREAM_DESTROYED" || code === "EBADF";
}

function stdoutClosed(): never {
  // Exit at once, as SIGPIPE would: nobody reads what else we could print.
  process.exit(STDOUT_CLOSED_EXIT);
}

/**
 * Installs the listeners that turn an asynchronous EPIPE on stdout into a
 * quiet exit and keep one on stderr from crashing the program. Idempotent.
 *
 * @example
 * ```ts
 * guardStdio();
 * ```
 */
export function guardStdio(): void {
  if (guarded) return;
  guarded = true;
  process.stdout.on("error", (error: unknown) => {
    if (isClosedPipe(error)) stdoutClosed();
    throw error;
  });
  process.stderr.on("error", () => {
    // Diagnostics nobody can read any more; not a reason to stop.
  });
}

/**
 * Writes to stdout; if the reader has closed the pipe, ends the process
 * quietly with status 141.
 *
 * @example
 * ```ts
 * writeStdout("o6kv-tmqc-57x2-bb5p-pvis-jnua-liox-4yhb\n");
 * ```
 */
export function writeStdout(text: string): void {
  try {
    process.stdout.write(text);
  } catch (error) {
    if (isClosedPipe(error)) stdoutClosed();
    throw error;
  }
}

/**
 * Writes to stderr, ignoring a closed stderr.
 *
 * @example
 * ```ts
 * writeStderr("securechat: bob joined\n");
 * ```
 */
export function writeStderr(text: string): void {
  try {
    process.stderr.write(text);
  } catch (error) {
    if (!isClosedPipe(error)) throw error;
  }
}
