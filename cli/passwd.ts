/**
 * `securechat passwd [PATH]`: changes, adds or removes the passphrase of an
 * identity file, keeping the key (and so the fingerprint everyone knows).
 * Like `ssh-keygen -p`.
 *
 * @module
 */

import { Command } from "commander";
import { resolve } from "node:path";
import process from "node:process";
import { IdentityFileError, readPublicKey, saveIdentity } from "../lib/identity/identity_file.ts";
import { CliError, ExitCode } from "./exit_codes.ts";
import {
  NEW_PASSPHRASE_VARIABLE,
  readPassphrase,
  showProgress,
  unlockIdentity,
} from "./passphrase.ts";
import { defaultIdentityPath } from "./paths.ts";
import { writeStderr } from "./stdio.ts";

/** Options of `securechat passwd`, as commander parses them. */
interface PasswdOptions {
  /** False with `--no-passphrase`. */
  passphrase: boolean;
  passphraseFile?: string;
  newPassphraseFile?: string;
}

/**
 * Builds the `passwd` sub-command.
 *
 * @example
 * ```ts
 * program.addCommand(passwdCommand());
 * ```
 */
export function passwdCommand(): Command {
  return new Command("passwd")
    .description(
      "change, add or remove the passphrase of an identity file, keeping the key and its " +
        "fingerprint; the current passphrase is asked for only if there is one",
    )
    .argument("[path]", "identity file (default: $SECURECHAT_HOME/identity)")
    .option("--no-passphrase", "remove the passphrase: store the key unencrypted")
    .option("--passphrase-file <file>", "read the current passphrase from the file's first line")
    .option(
      "--new-passphrase-file <file>",
      `read the new passphrase from the file's first line (else ${NEW_PASSPHRASE_VARIABLE}, ` +
        "else typed twice)",
    )
    .action(async (path: string | undefined, options: PasswdOptions) => {
      await passwd(resolve(path ?? defaultIdentityPath()), options);
    });
}

async function passwd(path: string, options: PasswdOptions): Promise<void> {
  let encrypted: boolean;
  try {
    const info = await readPublicKey(path);
    if (info.kind !== "identity") {
      throw new CliError(`${path} is a public key file; give the identity file`, ExitCode.keyFile);
    }
    encrypted = info.encrypted;
  } catch (error) {
    if (error instanceof IdentityFileError) {
      const message = error.reason === "missing"
        ? `no identity at ${path}; run \`securechat keygen\``
        : error.message;
      throw new CliError(message, ExitCode.keyFile);
    }
    throw error;
  }
  if (!encrypted && !options.passphrase) {
    writeStderr(`${path} has no passphrase already; nothing changed.\n`);
    return;
  }
  const identity = await unlockIdentity(path, { passphraseFile: options.passphraseFile });
  const passphrase = options.passphrase
    ? await readPassphrase({
      prompt: `New passphrase for ${path}: `,
      confirm: true,
      file: options.newPassphraseFile,
      variable: NEW_PASSPHRASE_VARIABLE,
    })
    : null;
  const done = showProgress(process.stderr, passphrase === null ? "Writing" : "Encrypting");
  try {
    // Replaces the file in one step (temporary file, fsync, rename): a crash leaves the old one.
    await saveIdentity({ path, identity, passphrase, force: true });
  } catch (error) {
    if (error instanceof IdentityFileError) throw new CliError(error.message, ExitCode.keyFile);
    throw error;
  } finally {
    done();
  }
  const what = passphrase === null
    ? "Removed the passphrase of"
    : encrypted
    ? "Changed the passphrase of"
    : "Added a passphrase to";
  writeStderr(
    `${what} ${path}; the key and its fingerprint ${identity.fingerprint} are unchanged.\n` +
      (passphrase === null
        ? "The key is NOT encrypted now: only the file's mode protects it.\n"
        : ""),
  );
}
