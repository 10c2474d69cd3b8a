/**
 * `securechat keygen`: creates an identity file and its `.pub` file.
 *
 * @module
 */

import { Command } from "commander";
import { resolve } from "node:path";
import { generateIdentity } from "../lib/identity/identity.ts";
import {
  IdentityFileError,
  saveIdentity,
  savePublicKeyFile,
} from "../lib/identity/identity_file.ts";
import { pathExists } from "../lib/core/atomic_file.ts";
import { fsErrorText } from "../lib/core/directory.ts";
import { CliError, ExitCode } from "./exit_codes.ts";
import { readPassphrase, showProgress } from "./passphrase.ts";
import process from "node:process";
import { writeStderr, writeStdout } from "./stdio.ts";
import { defaultIdentityPath, prepareHome, publicKeyPathFor } from "./paths.ts";

/** Options of `securechat keygen`, as commander parses them. */
interface KeygenOptions {
  out?: string;
  force?: boolean;
  /** False with `--no-passphrase`. */
  passphrase: boolean;
  passphraseFile?: string;
}

/**
 * Builds the `keygen` sub-command. It prints the new fingerprint as the only
 * line on stdout and says on stderr where the files went.
 *
 * @example
 * ```ts
 * program.addCommand(keygenCommand());
 * ```
 */
export function keygenCommand(): Command {
  return new Command("keygen")
    .description(
      "create a new identity (Ed25519 key pair) and print its fingerprint; the secret key is " +
        "encrypted with a passphrase from --passphrase-file, SECURECHAT_PASSPHRASE or the terminal",
    )
    .option("-o, --out <path>", "where to write the identity (default: $SECURECHAT_HOME/identity)")
    .option("-f, --force", "replace an existing identity file (the old identity is lost)")
    .option(
      "--no-passphrase",
      "store the secret key unencrypted (protected by file permissions only)",
    )
    .option("--passphrase-file <file>", "read the new passphrase from the file's first line")
    .action(async (options: KeygenOptions) => {
      await keygen(options);
    });
}

async function keygen(options: KeygenOptions): Promise<void> {
  if (options.out === undefined) await prepareHome();
  const path = resolve(options.out ?? defaultIdentityPath());
  const force = options.force === true;
  // Check before asking for a passphrase; saveIdentity checks again atomically.
  if (!force && await existsOrFail(path)) throw alreadyExists(path);

  const passphrase = options.passphrase
    ? await readPassphrase({
      prompt: `Passphrase for the new identity ${path}: `,
      confirm: true,
      file: options.passphraseFile,
    })
    : null;
  const identity = generateIdentity();
  const publicPath = publicKeyPathFor(path);
  const done = showProgress(process.stderr, passphrase === null ? "Writing" : "Encrypting");
  try {
    await saveIdentity({ path, identity, passphrase, force });
    // The .pub file is derived from the identity just written, so a stale one is always replaced.
    await savePublicKeyFile({ path: publicPath, publicKey: identity.publicKey, force: true });
  } catch (error) {
    if (error instanceof IdentityFileError) {
      if (error.reason === "exists") throw alreadyExists(path);
      throw new CliError(error.message, ExitCode.keyFile);
    }
    throw error;
  } finally {
    done();
  }
  writeStdout(`${identity.fingerprint}\n`);
  writeStderr(
    `Wrote identity to ${path} (${passphrase === null ? "NOT encrypted" : "encrypted"}).\n` +
      `Wrote public key to ${publicPath}.\n`,
  );
}

function alreadyExists(path: string): CliError {
  return new CliError(
    `${path} already exists; use --force to replace it (the old identity will be lost)`,
    ExitCode.keyFile,
  );
}

async function existsOrFail(path: string): Promise<boolean> {
  try {
    return await pathExists(path);
  } catch (error) {
    throw new CliError(`cannot use ${path}: ${fsErrorText(error)}`, ExitCode.keyFile);
  }
}
