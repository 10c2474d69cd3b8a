/**
 * Prekeys in the JetStream store. The signed prekey of an identity is a key
 * of a key-value bucket (key: the identity key in hex; value: `u32 id`
 * then the prekey), replaced by each upload. The one-time prekeys of an
 * identity are a queue: messages on the subject `<prefix>.prekey.once.<hex>`
 * of the prekeys stream, oldest first, each `u32 id` then the prekey.
 *
 * **Each one-time prekey is handed out once, across relays**: a taker reads
 * the oldest message of the queue and deletes it by its stream sequence;
 * JetStream deletes a message once, and a second taker of the same message
 * is told it is gone and takes the next one. Uploads append on the
 * condition that the queue's last message is still the one read
 * (`Nats-Expected-Last-Subject-Sequence`), so the per-identity limit and
 * the "known id is skipped" rule hold across relays too.
 *
 * @module
 */

import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import { ByteReader, ByteWriter, toHex } from "../../core/bytes.ts";
import type { LogReader } from "./nats_log_reader.ts";
import { Mutex } from "./nats_room_channel.ts";
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

/** Options for {@linkcode NatsPrekeys}. */
export interface NatsPrekeysOptions {
  js: JetStreamClient;
  jsm: JetStreamManager;
  reader: LogReader;
  /** Bucket of signed prekeys. */
  signed: KV;
  /** Stream of one-time prekey queues. */
  stream: string;
  /** Subject prefix of the queues (`<prefix>.prekey.once`). */
  queuePrefix: string;
  limits: Readonly<StoreLimits>;
  timeoutMs: number;
}

/**
 * Publishes and hands out prekeys (see the module comment).
 *
 * @example
 * ```ts
 * const prekeys = new NatsPrekeys({ js, jsm, reader, signed, stream, queuePrefix, limits, timeoutMs });
 * await prekeys.take(identityKey);
 * ```
 */
export class NatsPrekeys {
  #options: NatsPrekeysOptions;
  #locks = new Map<string, { lock: Mutex; users: number }>();

  /** @example `new NatsPrekeys(options)` */
  constructor(options: NatsPrekeysOptions) {
    this.#options = options;
  }

  /** See `RelayStore.putPrekeys`. @example `await prekeys.put(key, { oneTime })` */
  async put(identityKey: Uint8Array, upload: PrekeyUpload): Promise<PutPrekeysResult> {
    checkIdentityKey(identityKey);
    const { limits } = this.#options;
    const oneTime = upload.oneTime ?? [];
    if (!Array.isArray(oneTime) || oneTime.length > limits.maxOneTimePrekeys) {
      throw new StoreInputError(
        `one upload holds at most ${limits.maxOneTimePrekeys} one-time prekeys`,
      );
    }
    if (upload.signed !== undefined) this.#check(upload.signed, "signed prekey");
    for (const prekey of oneTime) this.#check(prekey, "one-time prekey");
    const hex = toHex(identityKey);
    return await this.#locked(hex, async () => {
      if (upload.signed !== undefined) {
        await this.#options.signed.put(hex, encodePrekey(upload.signed));
      }
      return await this.#append(hex, oneTime);
    });
  }

  /** See `RelayStore.takePrekeys`. @example `await prekeys.take(key)` */
  async take(identityKey: Uint8Array): Promise<PrekeyHandout | undefined> {
    checkIdentityKey(identityKey);
    const hex = toHex(identityKey);
    return await this.#locked(hex, async () => {
      const signed = await this.#signed(hex);
      if (signed === undefined) return undefined;
      const { jsm, reader, stream } = this.#options;
      const subject = this.#queue(hex);
      for (let attempt = 0; attempt < 10_000; attempt++) {
        const oldest = await reader.next(subject, 1);
        if (oldest === undefined) return { signed };
        try {
          await jsm.streams.deleteMessage(stream, oldest.seq, false);
          return { signed, oneTime: decodePrekey(oldest.data) };
        } catch (error) {
          // Another relay took it first: take the next one.
          if ((error as { code?: number }).code !== 10057) throw error;
        }
      }
      throw new StoreInputError("one-time prekeys are being taken too fast to hand one out");
    });
  }

  /** See `RelayStore.prekeyStatus`. @example `await prekeys.status(key)` */
  async status(identityKey: Uint8Array): Promise<PrekeyStatus> {
    checkIdentityKey(identityKey);
    const hex = toHex(identityKey);
    const signed = await this.#signed(hex);
    const status: PrekeyStatus = { oneTimeCount: await this.#count(this.#queue(hex)) };
    if (signed !== undefined) status.signedId = signed.id;
    return status;
  }

  /** Signed prekeys and one-time prekeys stored, for `counts`. @example `await prekeys.counts()` */
  async counts(): Promise<{ signedPrekeys: number; oneTimePrekeys: number }> {
    let signedPrekeys = 0;
    for await (const _key of await this.#options.signed.keys()) signedPrekeys++;
    const info = await this.#options.jsm.streams.info(this.#options.stream, {
      subjects_filter: `${this.#options.queuePrefix}.>`,
    });
    const subjects = info.state.subjects ?? {};
    const oneTimePrekeys = Object.values(subjects).reduce((sum, n) => sum + n, 0);
    return { signedPrekeys, oneTimePrekeys };
  }

  /** Appends the prekeys whose ids are not queued yet, up to the limit. */
  async #append(hex: string, oneTime: Prekey[]): Promise<PutPrekeysResult> {
    const { js, reader, limits, timeoutMs } = this.#options;
    const subject = this.#queue(hex);
    let added = 0;
    let remaining = oneTime;
    for (let attempt = 0; attempt < 1_000; attempt++) {
      let last = await reader.lastSeq(subject);
      const known = new Set<number>();
      for await (const message of reader.range(subject, 1, last)) {
        known.add(decodePrekey(message.data).id);
      }
      let conflict = false;
      for (let i = 0; i < remaining.length; i++) {
        const prekey = remaining[i];
        if (known.size >= limits.maxOneTimePrekeys) break;
        if (known.has(prekey.id)) continue;
        try {
          const ack = await js.publish(subject, encodePrekey(prekey), {
            expect: { lastSubjectSequence: last },
            timeout: timeoutMs,
          });
          last = ack.seq;
        } catch (error) {
          if ((error as { code?: number }).code !== 10071) throw error;
          // Another relay changed the queue: read it again and go on from here.
          remaining = remaining.slice(i);
          conflict = true;
          break;
        }
        known.add(prekey.id);
        added++;
      }
      if (!conflict) {
        return { added, skipped: oneTime.length - added, oneTimeCount: known.size };
      }
    }
    throw new StoreInputError("the one-time prekey queue keeps changing; try again");
  }

  async #signed(hex: string): Promise<Prekey | undefined> {
    const entry = await this.#options.signed.get(hex);
    if (entry === null || entry.operation !== "PUT" || entry.value.length === 0) return undefined;
    return decodePrekey(new Uint8Array(entry.value));
  }

  async #count(subject: string): Promise<number> {
    const info = await this.#options.jsm.streams.info(this.#options.stream, {
      subjects_filter: subject,
    });
    return info.state.subjects?.[subject] ?? 0;
  }

  #queue(hex: string): string {
    return `${this.#options.queuePrefix}.${hex}`;
  }

  #check(prekey: Prekey, what: string): void {
    if (typeof prekey !== "object" || prekey === null) {
      throw new StoreInputError(`${what} must be { id, body }`);
    }
    checkPrekeyId(prekey.id);
    checkBytes(prekey.body, what, this.#options.limits.maxPrekeyBytes, 1);
  }

  /** One take or upload per identity at a time on this relay; other relays race through JetStream. */
  async #locked<T>(hex: string, task: () => Promise<T>): Promise<T> {
    let entry = this.#locks.get(hex);
    if (entry === undefined) {
      entry = { lock: new Mutex(), users: 0 };
      this.#locks.set(hex, entry);
    }
    entry.users++;
    try {
      return await entry.lock.run(task);
    } finally {
      if (--entry.users === 0) this.#locks.delete(hex);
    }
  }
}

function encodePrekey(prekey: Prekey): Uint8Array {
  return new ByteWriter(4 + prekey.body.length).u32(prekey.id).raw(prekey.body).finish();
}

function decodePrekey(bytes: Uint8Array): Prekey {
  const reader = new ByteReader(bytes);
  const id = reader.u32();
  return { id, body: reader.rest().slice() };
}
