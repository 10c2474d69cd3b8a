/**
 * Loads the identity for `serve` and `join`, creating one at the default
 * path on a first run so that no set-up is needed.
 *
 * @module
 */

import process from "node:process";
import { generateIdentity, type Identity } from "../lib/identity/identity.ts";
import { pathExists } from "../lib/core/atomic_file.ts";
import { saveIdentity, savePublicKeyFile } from "../lib/identity/identity_file.ts";
import { unlockIdentity } from "./passphrase.ts";
import { defaultIdentityPath, publicKeyPathFor } from "./paths.ts";

/** Options for {@linkcode loadOrCreateIdentity}. */
export interface IdentityOptions {
  /** `--identity PATH`; when absent the default path is used and created if missing. */
  path?: string;
  /** Receives a one-line notice when a new identity is created. */
  notice: (text: string) => void;
}

/**
 * Returns the identity at `path`, or at the default path, creating the
 * latter on first use: encrypted with `SECURECHAT_PASSPHRASE` when it is set,
 * otherwise unencrypted, and says which.
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
    const passphrase = process.env.SECURECHAT_PASSPHRASE || null;
    await saveIdentity({ path, identity, passphrase });
    await savePublicKeyFile({
      path: publicKeyPathFor(path),
      publicKey: identity.publicKey,
      force: true,
    });
    options.notice(
      `created a new identity at ${path} (${
        passphrase
          ? "encrypted with SECURECHAT_PASSPHRASE"
          : "not encrypted; run `securechat keygen --force` to add a passphrase"
      }); fingerprint ${identity.fingerprint}`,
    );
    return identity;
  }
  return await unlockIdentity(path);
}
