/**
 * Loads the identity for `serve` and `join`, creating one at the default
 * path on a first run so that no set-up is needed.
 *
 * @module
 */

import process from "node:process";
import { generateIdentity, type Identity } from "../lib/identity/identity.ts";
import { pathExists } from "../lib/core/atomic_file.ts";
import {
  IdentityFileError,
  saveIdentity,
  savePublicKeyFile,
} from "../lib/identity/identity_file.ts";
import { readPassphraseFile, unlockIdentity } from "./passphrase.ts";
import { defaultIdentityPath, publicKeyPathFor } from "./paths.ts";

/** Options for {@linkcode loadOrCreateIdentity}. */
export interface IdentityOptions {
  /** `--identity PATH`; when absent the default path is used and created if missing. */
  path?: string;
  /** Receives a one-line notice when a new identity is created. */
  notice: (text: string) => void;
  /** `--passphrase-file`: unlocks the identity, and encrypts a new one. */
  passphraseFile?: string;
}

/**
 * Returns the identity at `path`, or at the default path, creating the
 * latter on first use: encrypted with `SECURECHAT_PASSPHRASE` when it is set,
 * otherwise unencrypted, and says which. When several programs create it at
 * the same moment, one wins and the others load its identity.
 *
 * @example
 * ```ts
 * const identity = await loadOrCreateIdentity({ notice: (text) => console.error(text) });
 * ```
 */
export async function loadOrCreateIdentity(options: IdentityOptions): Promise<Identity> {
  const path = options.path ?? defaultIdentityPath();
  if (options.path === undefined && !(await pathExists(path))) {
    const identity = generateIdentity();
    const passphrase = options.passphraseFile !== undefined
      ? await readPassphraseFile(options.passphraseFile)
      : process.env.SECURECHAT_PASSPHRASE || null;
    try {
      // Never replaces a file: of several programs starting at once, exactly one creates it...
      await saveIdentity({ path, identity, passphrase });
    } catch (error) {
      // ...and the others use the one it wrote, complete since it appears in one step.
      if (error instanceof IdentityFileError && error.reason === "exists") {
        return await unlockIdentity(path, { passphraseFile: options.passphraseFile });
      }
      throw error;
    }
    await savePublicKeyFile({
      path: publicKeyPathFor(path),
      publicKey: identity.publicKey,
      force: true,
    });
    options.notice(
      `created a new identity at ${path} (${
        passphrase === null
          ? "not encrypted; run `securechat passwd` to add a passphrase"
          : options.passphraseFile !== undefined
          ? "encrypted with the passphrase in --passphrase-file"
          : "encrypted with SECURECHAT_PASSPHRASE"
      }); fingerprint ${identity.fingerprint}`,
    );
    return identity;
  }
  return await unlockIdentity(path, { passphraseFile: options.passphraseFile });
}
