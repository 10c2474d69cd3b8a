/**
 * The JetStream resources of the cluster store, created on first use and
 * shared by every relay of a cluster: the rooms stream (room logs, snapshot
 * chunks and snapshot heads), the one-time prekeys stream, and the signed
 * prekeys bucket. Names derive from one prefix (default `securechat`), so
 * two clusters can share one NATS account.
 *
 * Both streams keep everything until the store deletes it (limits retention,
 * no age limit: a room log must never lose an event the store did not
 * purge), refuse new messages when full (`discard: new`, so nothing stored
 * is dropped to make room), and keep `replicas` copies (1 on one server, 3
 * on a three-node cluster). PROTOCOL.md ("Cluster store") maps the store's
 * limits onto JetStream's.
 *
 * @module
 */

import {
  DiscardPolicy,
  type JetStreamManager,
  RetentionPolicy,
  StorageType,
  type StreamConfig,
} from "@nats-io/jetstream";
import { type KV, Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import { StoreError, StoreInputError } from "./relay_store.ts";

/** Names of one store's resources. */
export interface NatsNames {
  /** Subject prefix, e.g. `securechat`. */
  prefix: string;
  rooms: string;
  prekeys: string;
  signedBucket: string;
}

/**
 * Names for a prefix: lowercase letters, digits, `-` and `_`, 1 to 32.
 *
 * @example
 * ```ts
 * natsNames("securechat").rooms; // "SECURECHAT_ROOMS"
 * ```
 */
export function natsNames(prefix: string): NatsNames {
  if (!/^[a-z0-9_-]{1,32}$/.test(prefix)) {
    throw new StoreInputError(
      "the cluster prefix must be 1 to 32 lowercase letters, digits, - or _",
    );
  }
  const upper = prefix.toUpperCase().replaceAll("-", "_");
  return {
    prefix,
    rooms: `${upper}_ROOMS`,
    prekeys: `${upper}_PREKEYS`,
    signedBucket: `${prefix}_signed_prekeys`,
  };
}

/** What {@linkcode ensureNatsResources} needs. */
export interface EnsureOptions {
  nc: NatsConnection;
  jsm: JetStreamManager;
  names: NatsNames;
  /** Copies of every message (1, or 3 on a three-node cluster). */
  replicas: number;
  /** Bytes the rooms stream may hold (0: no limit but the server's). */
  maxStoreBytes: number;
}

/**
 * Creates the streams and the bucket when missing; brings the replica count
 * of existing ones to `replicas`. Returns the signed prekeys bucket.
 *
 * @example
 * ```ts
 * const signed = await ensureNatsResources({ nc, jsm, names, replicas: 3, maxStoreBytes: 0 });
 * ```
 */
export async function ensureNatsResources(options: EnsureOptions): Promise<KV> {
  const { jsm, names, replicas } = options;
  if (!Number.isSafeInteger(replicas) || replicas < 1 || replicas > 5) {
    throw new StoreInputError("replicas must be a whole number from 1 to 5");
  }
  const common: Partial<StreamConfig> = {
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    discard: DiscardPolicy.New,
    num_replicas: replicas,
    duplicate_window: 120_000_000_000, // 2 min in ns: a retried publish is stored once
    allow_rollup_hdrs: true,
    max_age: 0,
  };
  await ensureStream(jsm, {
    ...common,
    name: names.rooms,
    subjects: [`${names.prefix}.room.>`],
    max_bytes: options.maxStoreBytes > 0 ? options.maxStoreBytes : -1,
  });
  await ensureStream(jsm, {
    ...common,
    name: names.prekeys,
    subjects: [`${names.prefix}.prekey.>`],
  });
  await ensureStream(jsm, {
    ...common,
    name: `KV_${names.signedBucket}`,
    subjects: [`$KV.${names.signedBucket}.>`],
    max_msgs_per_subject: 1,
    allow_direct: true,
    deny_delete: true,
    deny_purge: false,
    duplicate_window: 120_000_000_000,
  });
  return await new Kvm(options.nc).open(names.signedBucket);
}

async function ensureStream(
  jsm: JetStreamManager,
  config: Partial<StreamConfig> & { name: string },
): Promise<void> {
  const name = config.name;
  const existing = await jsm.streams.info(name).catch((error) => {
    if ((error as { code?: number }).code === 10059) return undefined;
    throw error;
  });
  if (existing === undefined) {
    await jsm.streams.add(config);
    return;
  }
  const subjects = existing.config.subjects ?? [];
  if (!config.subjects!.every((subject) => subjects.includes(subject))) {
    throw new StoreError(
      `JetStream stream ${name} exists with other subjects (${subjects.join(", ")}); ` +
        "choose another cluster prefix",
    );
  }
  // Relays of one cluster must agree; changing what is stored is an operator's decision.
  if (existing.config.num_replicas !== config.num_replicas) {
    throw new StoreError(
      `JetStream stream ${name} keeps ${existing.config.num_replicas} replica(s), but this relay ` +
        `was started with ${config.num_replicas}; start every relay of the cluster with the same ` +
        "replicas (changing it is a decision for the NATS operator)",
    );
  }
  const maxBytes = config.max_bytes ?? -1;
  if (maxBytes !== -1 && existing.config.max_bytes !== maxBytes) {
    throw new StoreError(
      `JetStream stream ${name} may hold ${existing.config.max_bytes} bytes, but this relay was ` +
        `started with ${maxBytes}; start every relay of the cluster with the same limit`,
    );
  }
}
