/**
 * This client's prekeys on one relay (PROTOCOL.md, "Prekeys"): the secrets
 * of its signed and one-time prekeys, kept in the local store so that
 * envelopes left for it while it was away can be opened when it returns,
 * the digests of envelopes opened under each signed prekey, and the schedule
 * (a signed prekey every 7 days, kept 14 more; one-time prekeys topped up).
 *
 * It is the {@linkcode PrekeySecretStore} the room layer opens envelopes with:
 * synchronous reads from memory; every change marks it dirty, and
 * {@linkcode PrekeyKeeper.save} writes it (encrypted by the local store)
 * before the client acknowledges what it read, so a used one-time secret is
 * gone from disk before the relay deletes the envelope.
 *
 * Bytes kept:
 *
 * ```text
 * u8 version = 1 | u32 next signed id | u32 next one-time id
 * u16 n, n × signed:  u32 id | u64 created | 32 secret | bytes16 record | u32 m, m × 32 digest
 * u32 k, k × one-time: u32 id | 32 secret
 * ```
 *
 * @module
 */

import { ByteReader, ByteWriter, fromHex, toHex } from "../core/bytes.ts";
import type { Identity } from "../identity/identity.ts";
import type { PrekeySecretStore } from "../e2e/prekey_envelope.ts";
import { generateOneTimePrekeys, generatePrekey, prekeyMaintenance } from "../e2e/prekeys.ts";
import type { ClientStore, StateKey } from "./client_store.ts";

const VERSION = 1;
/** Not a room or nick anyone can have (the name profile refuses controls). */
const PREKEY_SLOT = "\u0000";

interface SignedSecret {
  id: number;
  created: number;
  secretKey: Uint8Array;
  record: Uint8Array;
  opened: Set<string>;
}

/** Options for {@linkcode PrekeyKeeper.load}. */
export interface PrekeyKeeperOptions {
  /** The local store, or undefined to keep prekeys in memory only (they die with the process). */
  store?: ClientStore;
  /** The relay's fingerprint: prekeys are per relay. */
  relay: string;
  identity: Identity;
  /** Clock in milliseconds since the Unix epoch. */
  now?: () => number;
}

/**
 * Prekey secrets for one relay, persisted.
 *
 * @example
 * ```ts
 * const prekeys = await PrekeyKeeper.load({ store, relay: relayFingerprint, identity });
 * const upload = prekeys.upload({ oneTimeOnRelay: 12 });
 * if (upload) relay.send({ type: "putPrekeys", ...upload });
 * await prekeys.save();
 * ```
 */
export class PrekeyKeeper implements PrekeySecretStore {
  #options: PrekeyKeeperOptions;
  #now: () => number;
  #signed = new Map<number, SignedSecret>();
  #oneTime = new Map<number, Uint8Array>();
  #nextSignedId = 1;
  #nextOneTimeId = 1;
  #dirty = false;

  private constructor(options: PrekeyKeeperOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  /**
   * Loads the prekeys kept for this relay (none the first time).
   *
   * @example
   * ```ts
   * const prekeys = await PrekeyKeeper.load({ store, relay, identity });
   * ```
   */
  static async load(options: PrekeyKeeperOptions): Promise<PrekeyKeeper> {
    const keeper = new PrekeyKeeper(options);
    const bytes = await options.store?.getState(keeper.#key());
    if (bytes !== undefined) keeper.#decode(bytes);
    return keeper;
  }

  /** Whether there are changes not yet saved. @example `prekeys.dirty` */
  get dirty(): boolean {
    return this.#dirty;
  }

  /** One-time prekey secrets kept (unused so far). @example `prekeys.oneTimeCount` */
  get oneTimeCount(): number {
    return this.#oneTime.size;
  }

  /**
   * What to upload now: a new signed prekey when the schedule says so (or
   * none exists yet), and enough one-time prekeys to bring the relay's stock
   * to 100 when it holds fewer than 20. Applies the schedule's deletions.
   * Returns the records of a `put-prekeys` (`signedPrekey` empty when the
   * signed prekey did not change), or undefined when there is nothing to send.
   *
   * @example
   * ```ts
   * const upload = prekeys.upload({ oneTimeOnRelay: 0 });
   * if (upload) relay.send({ type: "putPrekeys", ...upload });
   * ```
   */
  upload(options: { oneTimeOnRelay: number }): {
    signedPrekey: Uint8Array;
    oneTimePrekeys: Uint8Array[];
  } | undefined {
    const now = this.#now();
    const todo = prekeyMaintenance({
      now,
      signedPrekeys: [...this.#signed.values()].map(({ id, created }) => ({ id, created })),
      oneTimePrekeysOnRelay: options.oneTimeOnRelay,
    });
    for (const id of todo.deleteSignedPrekeys) {
      this.#signed.get(id)?.secretKey.fill(0);
      this.#signed.delete(id);
      this.#dirty = true;
    }
    if (todo.rotateSignedPrekey) {
      const id = this.#nextSignedId++;
      const { record, secretKey } = generatePrekey({
        identity: this.#options.identity,
        kind: "signed",
        id,
        created: now,
      });
      this.#signed.set(id, { id, created: now, secretKey, record, opened: new Set() });
      this.#dirty = true;
    }
    const oneTimePrekeys: Uint8Array[] = [];
    if (todo.oneTimePrekeysToAdd > 0) {
      const made = generateOneTimePrekeys({
        identity: this.#options.identity,
        firstId: this.#nextOneTimeId,
        count: todo.oneTimePrekeysToAdd,
        created: now,
      });
      this.#nextOneTimeId += todo.oneTimePrekeysToAdd;
      for (const { id, record, secretKey } of made) {
        this.#oneTime.set(id, secretKey);
        oneTimePrekeys.push(record);
      }
      this.#dirty = true;
    }
    if (!todo.rotateSignedPrekey && oneTimePrekeys.length === 0) return undefined;
    const newest = [...this.#signed.values()].sort((a, b) => b.created - a.created)[0];
    return {
      signedPrekey: todo.rotateSignedPrekey ? newest.record : new Uint8Array(0),
      oneTimePrekeys,
    };
  }

  /** @example `prekeys.signedPrekeySecret(1)` */
  signedPrekeySecret(id: number): Uint8Array | undefined {
    return this.#signed.get(id)?.secretKey;
  }

  /** @example `prekeys.oneTimePrekeySecret(7)` */
  oneTimePrekeySecret(id: number): Uint8Array | undefined {
    return this.#oneTime.get(id);
  }

  /** @example `prekeys.deleteOneTimePrekey(7)` */
  deleteOneTimePrekey(id: number): void {
    this.#oneTime.get(id)?.fill(0);
    if (this.#oneTime.delete(id)) this.#dirty = true;
  }

  /** @example `prekeys.hasOpened(1, digest)` */
  hasOpened(signedPrekeyId: number, digest: Uint8Array): boolean {
    return this.#signed.get(signedPrekeyId)?.opened.has(toHex(digest)) === true;
  }

  /** @example `prekeys.rememberOpened(1, digest)` */
  rememberOpened(signedPrekeyId: number, digest: Uint8Array): void {
    const signed = this.#signed.get(signedPrekeyId);
    if (signed === undefined) return;
    signed.opened.add(toHex(digest));
    this.#dirty = true;
  }

  /**
   * Writes the prekeys to the local store if anything changed.
   *
   * @example
   * ```ts
   * await prekeys.save();
   * ```
   */
  async save(): Promise<void> {
    if (!this.#dirty) return;
    this.#dirty = false;
    if (this.#options.store === undefined) return;
    await this.#options.store.putState(this.#key(), this.#encode());
  }

  #key(): StateKey {
    return { relay: this.#options.relay, room: PREKEY_SLOT, nick: PREKEY_SLOT, name: "prekeys" };
  }

  #encode(): Uint8Array {
    const writer = new ByteWriter(1024)
      .u8(VERSION)
      .u32(this.#nextSignedId)
      .u32(this.#nextOneTimeId)
      .u16(this.#signed.size);
    for (const signed of this.#signed.values()) {
      writer.u32(signed.id).u64(signed.created).raw(signed.secretKey).bytes16(signed.record)
        .u32(signed.opened.size);
      for (const digest of signed.opened) writer.raw(fromHex(digest));
    }
    writer.u32(this.#oneTime.size);
    for (const [id, secret] of this.#oneTime) writer.u32(id).raw(secret);
    return writer.finish();
  }

  #decode(bytes: Uint8Array): void {
    const reader = new ByteReader(bytes);
    if (reader.u8() !== VERSION) throw new Error("kept prekeys are of an unknown version");
    this.#nextSignedId = reader.u32();
    this.#nextOneTimeId = reader.u32();
    const signedCount = reader.u16();
    for (let i = 0; i < signedCount; i++) {
      const id = reader.u32();
      const created = reader.u64();
      const secretKey = reader.raw(32).slice();
      const record = reader.bytes16().slice();
      const opened = new Set<string>();
      const digests = reader.u32();
      for (let j = 0; j < digests; j++) opened.add(toHex(reader.raw(32)));
      this.#signed.set(id, { id, created, secretKey, record, opened });
    }
    const oneTimeCount = reader.u32();
    for (let i = 0; i < oneTimeCount; i++) {
      const id = reader.u32();
      this.#oneTime.set(id, reader.raw(32).slice());
    }
    reader.end();
  }
}
