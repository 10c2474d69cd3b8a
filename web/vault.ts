/**
 * The page's identity: created here or imported from an identity file, kept
 * in IndexedDB as identity-file text sealed with the passphrase (scrypt
 * logN 17 and XChaCha20-Poly1305, the command line's format, by the same
 * lib/ code), and exported as that text, which `securechat join --identity`
 * reads. The secret key exists in memory only after an unlock.
 *
 * @module
 */

import {
  decodeIdentityFile,
  encodeIdentityFile,
  IdentityFileError,
  openIdentityFile,
} from "../lib/identity/identity_file.ts";
import { generateIdentity, type Identity } from "../lib/identity/identity.ts";
import { fingerprint } from "../lib/identity/fingerprint.ts";
import type { PageDatabase } from "./idb.ts";

const KEY = "identity";
/** How the stored identity is named in messages. */
export const STORED_NAME = "the identity stored in this browser";

/** Shortest passphrase the page accepts for new and imported identities. */
export const MIN_PASSPHRASE_LENGTH = 8;

function checkNewPassphrase(passphrase: string): void {
  if (passphrase.length < MIN_PASSPHRASE_LENGTH) {
    throw new RangeError(
      `choose a passphrase of at least ${MIN_PASSPHRASE_LENGTH} characters: it protects the key ` +
        "stored in this browser and in the file you export",
    );
  }
}

/**
 * The identity kept in the page's database.
 *
 * @example
 * ```ts
 * const vault = new IdentityVault(db);
 * const identity = (await vault.stored()) ? await vault.unlock(passphrase) : await vault.create(passphrase);
 * ```
 */
export class IdentityVault {
  #db: PageDatabase;

  /** @example `new IdentityVault(await PageDatabase.open())` */
  constructor(db: PageDatabase) {
    this.#db = db;
  }

  /**
   * The stored identity's fingerprint (read without the passphrase), or
   * undefined when there is none.
   *
   * @example
   * ```ts
   * const stored = await vault.stored(); // { fingerprint: "k3b7-..." } | undefined
   * ```
   */
  async stored(): Promise<{ fingerprint: string } | undefined> {
    const text = await this.#db.get<string>("identity", KEY);
    if (text === undefined) return undefined;
    const contents = decodeIdentityFile({ text, path: STORED_NAME });
    return { fingerprint: fingerprint(contents.publicKey) };
  }

  /**
   * Creates a new identity and stores it sealed with `passphrase`.
   *
   * @example
   * ```ts
   * const identity = await vault.create("correct horse battery staple");
   * ```
   */
  async create(passphrase: string): Promise<Identity> {
    checkNewPassphrase(passphrase);
    const identity = generateIdentity();
    const text = await encodeIdentityFile({ identity, passphrase });
    await this.#db.put("identity", KEY, text);
    return identity;
  }

  /**
   * Imports an identity file. A sealed file is opened with `passphrase` and
   * stored as it is; a file without a passphrase is sealed with
   * `passphrase` first (the page never stores a key in the clear).
   *
   * @example
   * ```ts
   * const identity = await vault.importFile({ text, name: "identity", passphrase });
   * ```
   */
  async importFile(
    { text, name, passphrase }: { text: string; name: string; passphrase: string },
  ): Promise<Identity> {
    const contents = decodeIdentityFile({ text, path: name });
    if (contents.encryption === null) checkNewPassphrase(passphrase);
    const identity = await openIdentityFile({
      contents,
      path: name,
      passphrase: () => Promise.resolve(passphrase),
    });
    const stored = contents.encryption === null
      ? await encodeIdentityFile({ identity, passphrase })
      : text;
    await this.#db.put("identity", KEY, stored);
    return identity;
  }

  /**
   * Opens the stored identity; a wrong passphrase rejects with an
   * {@linkcode IdentityFileError} whose reason is `"passphrase"`.
   *
   * @example
   * ```ts
   * const identity = await vault.unlock(passphrase);
   * ```
   */
  async unlock(passphrase: string): Promise<Identity> {
    const text = await this.#db.get<string>("identity", KEY);
    if (text === undefined) {
      throw new IdentityFileError({
        path: STORED_NAME,
        reason: "missing",
        message: "there is no identity in this browser; create or import one",
      });
    }
    const contents = decodeIdentityFile({ text, path: STORED_NAME });
    return await openIdentityFile({
      contents,
      path: STORED_NAME,
      passphrase: () => Promise.resolve(passphrase),
    });
  }

  /**
   * The stored identity file's text, for download.
   *
   * @example
   * ```ts
   * const blob = new Blob([await vault.exportText()]);
   * ```
   */
  async exportText(): Promise<string> {
    const text = await this.#db.get<string>("identity", KEY);
    if (text === undefined) throw new Error("there is no identity in this browser to export");
    return text;
  }

  /** Deletes the stored identity. @example `await vault.forget()` */
  async forget(): Promise<void> {
    await this.#db.delete("identity", KEY);
  }
}
