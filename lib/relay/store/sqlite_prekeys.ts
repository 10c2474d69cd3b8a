/**
 * Prekeys in the SQLite store: one signed prekey per identity
 * (`signed_prekeys`) and a queue of one-time prekeys (`one_time_prekeys`,
 * handed out oldest first). A take reads and deletes a one-time prekey in
 * the same `BEGIN IMMEDIATE` transaction, so two relays on one file never
 * hand out the same one.
 *
 * @module
 */

import type { DatabaseSync, StatementSync } from "node:sqlite";
import {
  checkBytes,
  checkIdentityKey,
  checkPrekeyId,
  type Prekey,
  type PrekeyHandout,
  type PrekeyStatus,
  type PrekeyUpload,
  type PutPrekeysResult,
  StoreInputError,
  type StoreLimits,
} from "./relay_store.ts";

/** Options for {@linkcode PrekeyTable}. */
export interface PrekeyTableOptions {
  db: DatabaseSync;
  limits: Readonly<StoreLimits>;
  now: () => number;
}

/**
 * Publishes and hands out prekeys.
 *
 * @example
 * ```ts
 * const prekeys = new PrekeyTable({ db, limits, now: Date.now });
 * prekeys.take(identityKey);
 * ```
 */
export class PrekeyTable {
  #limits: Readonly<StoreLimits>;
  #now: () => number;
  #putSigned: StatementSync;
  #getSigned: StatementSync;
  #addOneTime: StatementSync;
  #countOneTime: StatementSync;
  #oldestOneTime: StatementSync;
  #deleteOneTime: StatementSync;

  /** @example `new PrekeyTable({ db, limits, now })` */
  constructor(options: PrekeyTableOptions) {
    const { db } = options;
    this.#limits = options.limits;
    this.#now = options.now;
    this.#putSigned = db.prepare(
      "INSERT INTO signed_prekeys (identity_key, prekey_id, body, updated_at) VALUES (?, ?, ?, ?) " +
        "ON CONFLICT (identity_key) DO UPDATE SET prekey_id = excluded.prekey_id, " +
        "body = excluded.body, updated_at = excluded.updated_at",
    );
    this.#getSigned = db.prepare(
      "SELECT prekey_id, body FROM signed_prekeys WHERE identity_key = ?",
    );
    this.#addOneTime = db.prepare(
      "INSERT OR IGNORE INTO one_time_prekeys (identity_key, prekey_id, body, added_at) " +
        "VALUES (?, ?, ?, ?)",
    );
    this.#countOneTime = db.prepare(
      "SELECT count(*) AS n FROM one_time_prekeys WHERE identity_key = ?",
    );
    this.#oldestOneTime = db.prepare(
      "SELECT prekey_row, prekey_id, body FROM one_time_prekeys WHERE identity_key = ? " +
        "ORDER BY prekey_row LIMIT 1",
    );
    this.#deleteOneTime = db.prepare("DELETE FROM one_time_prekeys WHERE prekey_row = ?");
  }

  /** See {@linkcode RelayStore.putPrekeys}. @example `prekeys.put(key, { oneTime })` */
  put(identityKey: Uint8Array, upload: PrekeyUpload): PutPrekeysResult {
    checkIdentityKey(identityKey);
    const oneTime = upload.oneTime ?? [];
    if (!Array.isArray(oneTime) || oneTime.length > this.#limits.maxOneTimePrekeys) {
      throw new StoreInputError(
        `one upload holds at most ${this.#limits.maxOneTimePrekeys} one-time prekeys`,
      );
    }
    if (upload.signed !== undefined) this.#check(upload.signed, "signed prekey");
    for (const prekey of oneTime) this.#check(prekey, "one-time prekey");
    const now = this.#now();
    if (upload.signed !== undefined) {
      this.#putSigned.run(identityKey, upload.signed.id, upload.signed.body, now);
    }
    let count = this.#count(identityKey);
    let added = 0;
    for (const prekey of oneTime) {
      if (count >= this.#limits.maxOneTimePrekeys) break;
      if (Number(this.#addOneTime.run(identityKey, prekey.id, prekey.body, now).changes) > 0) {
        added++;
        count++;
      }
    }
    return { added, skipped: oneTime.length - added, oneTimeCount: count };
  }

  /** See {@linkcode RelayStore.takePrekeys}. @example `prekeys.take(key)` */
  take(identityKey: Uint8Array): PrekeyHandout | undefined {
    checkIdentityKey(identityKey);
    const signed = this.#getSigned.get(identityKey) as
      | { prekey_id: number; body: Uint8Array }
      | undefined;
    if (signed === undefined) return undefined;
    const handout: PrekeyHandout = { signed: { id: signed.prekey_id, body: signed.body } };
    const oneTime = this.#oldestOneTime.get(identityKey) as
      | { prekey_row: number; prekey_id: number; body: Uint8Array }
      | undefined;
    if (oneTime !== undefined) {
      this.#deleteOneTime.run(oneTime.prekey_row);
      handout.oneTime = { id: oneTime.prekey_id, body: oneTime.body };
    }
    return handout;
  }

  /** See {@linkcode RelayStore.prekeyStatus}. @example `prekeys.status(key)` */
  status(identityKey: Uint8Array): PrekeyStatus {
    checkIdentityKey(identityKey);
    const signed = this.#getSigned.get(identityKey) as { prekey_id: number } | undefined;
    const status: PrekeyStatus = { oneTimeCount: this.#count(identityKey) };
    if (signed !== undefined) status.signedId = signed.prekey_id;
    return status;
  }

  #count(identityKey: Uint8Array): number {
    return (this.#countOneTime.get(identityKey) as { n: number }).n;
  }

  #check(prekey: Prekey, what: string): void {
    if (typeof prekey !== "object" || prekey === null) {
      throw new StoreInputError(`${what} must be { id, body }`);
    }
    checkPrekeyId(prekey.id);
    checkBytes(prekey.body, what, this.#limits.maxPrekeyBytes, 1);
  }
}
