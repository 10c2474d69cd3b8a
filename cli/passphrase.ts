/**
 * Passphrases for identity files, and unlocking an identity with one.
 *
 * Where a passphrase comes from, first match wins:
 * 1. `--passphrase-file FILE` (`--new-passphrase-file` for a new one): the
 *    file's first line; the file must not be readable by group or others;
 * 2. `SECURECHAT_PASSPHRASE` (`SECURECHAT_NEW_PASSPHRASE`);
 * 3. the terminal: stdin when it is one, else the controlling terminal
 *    (`/dev/tty`), as ssh and age do, so `echo hi | securechat join ...`
 *    still asks where the user sits;
 * 4. nothing: a usage error that names the three ways.
 *
 * While scrypt works (about half a second) a terminal shows a small spinner.
 *
 * @module
 */

import { closeSync, openSync } from "node:fs";
import { open } from "node:fs/promises";
import process from "node:process";
import tty from "node:tty";
import { errorCode } from "../lib/core/atomic_file.ts";
import { fsErrorText } from "../lib/core/directory.ts";
import { IdentityFileError, loadIdentity } from "../lib/identity/identity_file.ts";
import type { Identity } from "../lib/identity/identity.ts";
import { CliError, ExitCode } from "./exit_codes.ts";

/** The environment variable that supplies the passphrase non-interactively. */
export const PASSPHRASE_VARIABLE = "SECURECHAT_PASSPHRASE";
/** The environment variable that supplies a new passphrase (`passwd`) non-interactively. */
export const NEW_PASSPHRASE_VARIABLE = "SECURECHAT_NEW_PASSPHRASE";

/** How many times a passphrase typed at the terminal may be wrong before giving up. */
const TERMINAL_ATTEMPTS = 3;
/** A passphrase file is read up to this size: a passphrase, not a document. */
const MAX_PASSPHRASE_FILE_BYTES = 64 * 1024;

/** A terminal to ask on: its input in raw mode, and where prompts go. */
interface Terminal {
  input: NodeJS.ReadStream;
  output: NodeJS.WritableStream & { isTTY?: boolean };
  close(): void;
}

/**
 * The terminal to ask on: stdin (prompts on stderr) when it is a terminal,
 * otherwise the controlling terminal `/dev/tty`, or `undefined` when the
 * process has none (a service, a CI job, a detached process).
 */
function openTerminal(): Terminal | undefined {
  if (process.stdin.isTTY) {
    return { input: process.stdin, output: process.stderr, close: () => {} };
  }
  let inputFd: number | undefined;
  let outputFd: number | undefined;
  try {
    inputFd = openSync("/dev/tty", "r");
    outputFd = openSync("/dev/tty", "w");
    const input = new tty.ReadStream(inputFd);
    const output = new tty.WriteStream(outputFd);
    return {
      input,
      output,
      close: () => {
        input.destroy();
        output.destroy();
      },
    };
  } catch {
    for (const fd of [inputFd, outputFd]) {
      if (fd !== undefined) {
        try {
          closeSync(fd);
        } catch {
          // Already closed by a stream that took it.
        }
      }
    }
    return undefined;
  }
}

/** Where `readPassphrase` may look besides the terminal. */
export interface PassphraseSources {
  /** `--passphrase-file` (or `--new-passphrase-file`). */
  file?: string;
  /** The environment variable to read; default {@linkcode PASSPHRASE_VARIABLE}. */
  variable?: string;
}

/** A passphrase and, when it was typed, the terminal it was typed on (still open). */
interface ReadPassphrase {
  passphrase: string;
  terminal?: Terminal;
}

/**
 * Reads the first line of a passphrase file, refusing one that group or
 * others may read. Throws a one-line {@linkcode CliError}.
 *
 * @example
 * ```ts
 * const passphrase = await readPassphraseFile("/run/secrets/securechat");
 * ```
 */
export async function readPassphraseFile(path: string): Promise<string> {
  let text: string;
  try {
    const handle = await open(path, "r");
    try {
      const stat = await handle.stat();
      if (!stat.isFile()) {
        throw new CliError(`passphrase file ${path} is not a regular file`, ExitCode.keyFile);
      }
      if (process.platform !== "win32" && (stat.mode & 0o077) !== 0) {
        const octal = (stat.mode & 0o777).toString(8).padStart(4, "0");
        throw new CliError(
          `permissions ${octal} for passphrase file ${path} are too open; run chmod 600 ${path}`,
          ExitCode.keyFile,
        );
      }
      const buffer = new Uint8Array(Math.min(stat.size, MAX_PASSPHRASE_FILE_BYTES));
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
      text = new TextDecoder("utf-8", { fatal: true }).decode(buffer.subarray(0, bytesRead));
    } finally {
      await handle.close();
    }
  } catch (error) {
    if (error instanceof CliError) throw error;
    if (error instanceof TypeError) {
      throw new CliError(`passphrase file ${path} is not UTF-8 text`, ExitCode.keyFile);
    }
    const what = errorCode(error) === "ENOENT" ? "no such file" : fsErrorText(error);
    throw new CliError(`cannot read passphrase file ${path}: ${what}`, ExitCode.keyFile);
  }
  const passphrase = text.split(/\r?\n/, 1)[0];
  if (passphrase === "") {
    throw new CliError(`passphrase file ${path} has an empty first line`, ExitCode.usage);
  }
  return passphrase;
}

/**
 * Returns a passphrase from the sources in the module's order. With
 * `confirm`, the passphrase is new: typed twice at a terminal, and never
 * empty. Throws a {@linkcode CliError} when there is no source, when the
 * user presses Ctrl-C (exit 130) or Ctrl-D, or when the two typed
 * passphrases differ.
 *
 * @example
 * ```ts
 * const passphrase = await readPassphrase({ prompt: "New passphrase: ", confirm: true });
 * ```
 */
export async function readPassphrase(
  options: { prompt: string; confirm?: boolean } & PassphraseSources,
): Promise<string> {
  const read = await readPassphraseKeepingTerminal(options);
  read.terminal?.close();
  return read.passphrase;
}

async function readPassphraseKeepingTerminal(
  { prompt, confirm = false, file, variable = PASSPHRASE_VARIABLE }:
    & { prompt: string; confirm?: boolean }
    & PassphraseSources,
): Promise<ReadPassphrase> {
  if (file !== undefined) return { passphrase: await readPassphraseFile(file) };
  const fromEnvironment = process.env[variable];
  if (fromEnvironment !== undefined) {
    if (confirm && fromEnvironment === "") throw emptyPassphrase(`${variable} is empty`);
    return { passphrase: fromEnvironment };
  }
  const terminal = openTerminal();
  if (terminal === undefined) {
    const flag = variable === NEW_PASSPHRASE_VARIABLE
      ? "--new-passphrase-file"
      : "--passphrase-file";
    throw new CliError(
      `a passphrase is needed but there is no terminal to ask on; set ${variable}, or use ${flag}` +
        (confirm ? " or --no-passphrase" : ""),
      ExitCode.usage,
    );
  }
  try {
    const passphrase = await readHidden(terminal, prompt);
    if (confirm) {
      if (passphrase === "") throw emptyPassphrase("the passphrase is empty");
      const again = await readHidden(terminal, "Repeat passphrase: ");
      if (again !== passphrase) throw new CliError("the passphrases do not match", ExitCode.usage);
    }
    return { passphrase, terminal };
  } catch (error) {
    terminal.close();
    throw error;
  }
}

function emptyPassphrase(what: string): CliError {
  return new CliError(
    `${what}; choose a passphrase, or use --no-passphrase to store the key unencrypted`,
    ExitCode.usage,
  );
}

/**
 * Reads one line from the terminal in raw mode, echoing nothing. Backspace
 * and Ctrl-U edit; Enter ends; Ctrl-C and Ctrl-D on an empty line cancel.
 * The terminal mode is restored on every path, including process exit.
 */
function readHidden(terminal: Terminal, prompt: string): Promise<string> {
  const { input, output } = terminal;
  output.write(prompt);
  const decoder = new TextDecoder();
  const wasRaw = input.isRaw;
  const restore = () => {
    if (input.isTTY) input.setRawMode(wasRaw);
  };
  return new Promise((resolve, reject) => {
    let text = "";
    const finish = (error?: CliError) => {
      input.off("data", onData);
      process.off("exit", restore);
      restore();
      input.pause();
      output.write("\n");
      if (error) reject(error);
      else resolve(text);
    };
    const onData = (chunk: Uint8Array | string) => {
      const characters = typeof chunk === "string"
        ? chunk
        : decoder.decode(chunk, { stream: true });
      for (const character of characters) {
        if (character === "\r" || character === "\n") return finish();
        if (character === "\u0003" || (character === "\u0004" && text === "")) {
          return finish(new CliError("passphrase entry cancelled", ExitCode.interrupted));
        }
        if (character === "\u0004") return finish();
        if (character === "\u007f" || character === "\b") {
          text = Array.from(text).slice(0, -1).join("");
        } else if (character === "\u0015") {
          text = "";
        } else if (character === "\u001b") {
          break; // An escape sequence (arrow key and the like): drop the rest of this chunk.
        } else if (character >= " ") {
          text += character;
        }
      }
    };
    process.on("exit", restore);
    input.setRawMode(true);
    input.on("data", onData);
    input.resume();
  });
}

/** Braille spinner frames, one every 80 ms. */
const SPINNER = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

/**
 * Shows `text` and a spinner on `output` if it is a terminal, until the
 * returned function is called, which erases the line. Nothing on a pipe.
 *
 * @example
 * ```ts
 * const done = showProgress(process.stderr, "Unlocking identity");
 * try { await work(); } finally { done(); }
 * ```
 */
export function showProgress(
  output: (NodeJS.WritableStream & { isTTY?: boolean }) | undefined,
  text: string,
): () => void {
  if (output === undefined || output.isTTY !== true) return () => {};
  let frame = 0;
  const draw = () => {
    try {
      output.write(`\r\x1b[2K${text} ${SPINNER[frame++ % SPINNER.length]}`);
    } catch {
      // The terminal went away; nothing to show progress on.
    }
  };
  draw();
  const timer = setInterval(draw, 80);
  return () => {
    clearInterval(timer);
    try {
      output.write("\r\x1b[2K");
    } catch {
      // As above.
    }
  };
}

/** Options for {@linkcode unlockIdentity}. */
export interface UnlockOptions {
  /** `--passphrase-file`, if given. */
  passphraseFile?: string;
}

/**
 * Loads an identity for a sub-command: asks for the passphrase only if the
 * file is encrypted (up to three tries at a terminal, one from a file or
 * `SECURECHAT_PASSPHRASE`), shows a spinner on the terminal while the key is
 * derived, and turns every identity-file problem into a one-line
 * {@linkcode CliError} with exit code `keyFile`.
 *
 * @example
 * ```ts
 * const identity = await unlockIdentity(options.identity ?? defaultIdentityPath());
 * ```
 */
export async function unlockIdentity(path: string, options: UnlockOptions = {}): Promise<Identity> {
  for (let attempt = 1;; attempt++) {
    let typedOn: Terminal | undefined;
    let stopProgress = () => {};
    try {
      return await loadIdentity({
        path,
        passphrase: async () => {
          const read = await readPassphraseKeepingTerminal({
            prompt: `Passphrase for ${path}: `,
            file: options.passphraseFile,
          });
          typedOn = read.terminal;
          stopProgress = showProgress(typedOn?.output ?? process.stderr, `Unlocking ${path}`);
          return read.passphrase;
        },
      });
    } catch (error) {
      if (!(error instanceof IdentityFileError)) throw error;
      if (error.reason === "passphrase" && typedOn !== undefined && attempt < TERMINAL_ATTEMPTS) {
        stopProgress();
        stopProgress = () => {};
        typedOn.output.write("Wrong passphrase, try again.\n");
        continue;
      }
      throw new CliError(error.message, ExitCode.keyFile);
    } finally {
      stopProgress();
      typedOn?.close();
    }
  }
}
