/**
 * Passphrases for identity files: from `SECURECHAT_PASSPHRASE`, else typed
 * at a hidden prompt on the terminal; and unlocking an identity with one.
 *
 * @module
 */

import process from "node:process";
import { IdentityFileError, loadIdentity } from "../lib/identity/identity_file.ts";
import type { Identity } from "../lib/identity/identity.ts";
import { CliError, ExitCode } from "./exit_codes.ts";

/** The environment variable that supplies the passphrase non-interactively. */
export const PASSPHRASE_VARIABLE = "SECURECHAT_PASSPHRASE";

/** How many times a passphrase typed at the terminal may be wrong before giving up. */
const TERMINAL_ATTEMPTS = 3;

/**
 * Returns the passphrase from `SECURECHAT_PASSPHRASE` if it is set, else
 * reads it from the terminal without echo (prompt on stderr). With
 * `confirm`, the passphrase is new: it must be typed twice and may not be
 * empty. Throws a {@linkcode CliError} when there is neither a variable nor a
 * terminal, when the user presses Ctrl-C or Ctrl-D, or when the two typed
 * passphrases differ.
 *
 * @example
 * ```ts
 * const passphrase = await readPassphrase({ prompt: "New passphrase: ", confirm: true });
 * ```
 */
export async function readPassphrase(
  { prompt, confirm = false }: { prompt: string; confirm?: boolean },
): Promise<string> {
  const fromEnvironment = process.env[PASSPHRASE_VARIABLE];
  if (fromEnvironment !== undefined) {
    if (confirm && fromEnvironment === "") throw emptyPassphrase(`${PASSPHRASE_VARIABLE} is empty`);
    return fromEnvironment;
  }
  if (!process.stdin.isTTY) {
    throw new CliError(
      `a passphrase is needed but stdin is not a terminal; set ${PASSPHRASE_VARIABLE}` +
        (confirm ? " or use --no-passphrase" : ""),
      ExitCode.usage,
    );
  }
  const passphrase = await readHidden(prompt);
  if (!confirm) return passphrase;
  if (passphrase === "") throw emptyPassphrase("the passphrase is empty");
  const again = await readHidden("Repeat passphrase: ");
  if (again !== passphrase) throw new CliError("the passphrases do not match", ExitCode.usage);
  return passphrase;
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
function readHidden(prompt: string): Promise<string> {
  const stdin = process.stdin;
  process.stderr.write(prompt);
  const decoder = new TextDecoder();
  const wasRaw = stdin.isRaw;
  const restore = () => {
    if (stdin.isTTY) stdin.setRawMode(wasRaw);
  };
  return new Promise((resolve, reject) => {
    let text = "";
    const finish = (error?: CliError) => {
      stdin.off("data", onData);
      process.off("exit", restore);
      restore();
      stdin.pause();
      process.stderr.write("\n");
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
    stdin.setRawMode(true);
    stdin.on("data", onData);
    stdin.resume();
  });
}

/**
 * Loads an identity for a sub-command: asks for the passphrase only if the
 * file is encrypted (up to three tries at a terminal, one from
 * `SECURECHAT_PASSPHRASE`), and turns every identity-file problem into a
 * one-line {@linkcode CliError} with exit code `keyFile`.
 *
 * @example
 * ```ts
 * const identity = await unlockIdentity(options.identity ?? defaultIdentityPath());
 * ```
 */
export async function unlockIdentity(path: string): Promise<Identity> {
  const attempts = process.env[PASSPHRASE_VARIABLE] === undefined ? TERMINAL_ATTEMPTS : 1;
  for (let attempt = 1;; attempt++) {
    try {
      return await loadIdentity({
        path,
        passphrase: () => readPassphrase({ prompt: `Passphrase for ${path}: ` }),
      });
    } catch (error) {
      if (!(error instanceof IdentityFileError)) throw error;
      if (error.reason === "passphrase" && attempt < attempts) {
        process.stderr.write("Wrong passphrase, try again.\n");
        continue;
      }
      throw new CliError(error.message, ExitCode.keyFile);
    }
  }
}
