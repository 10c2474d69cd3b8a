/**
 * The relay's store on NATS JetStream, for relays that share rooms
 * (`serve --cluster`): the same {@linkcode RelayStore} contract as the
 * SQLite store, with the same results, kept in JetStream so any number of
 * relays on any machines see one state.
 *
 * **Layout.** Every room is a log: events on the subject
 * `<prefix>.room.log.<room>` of the stream `<PREFIX>_ROOMS` (room names in
 * unpadded base64url). An event is a batch of operations (join, rename,
 * leave, group item, envelope, acknowledgement, prune) with the writer's
 * time and limits, appended only if the room's last event is still the one
 * the writer applied (`Nats-Expected-Last-Subject-Sequence`), so the
 * room's events form one chain in one order that every relay applies the
 * same way (`room_view.ts`). Item bodies live in the event that stored them
 * until the item is deleted; snapshots of each room (`nats_snapshots.ts`)
 * let the older part of a log be purged. Signed prekeys are a key-value
 * bucket and one-time prekeys a queue per identity (`nats_prekeys.ts`).
 *
 * **Order and sequences.** A room's items are numbered 1, 2, 3... in the
 * order of the log: the n-th item any relay stored is sequence n on every
 * relay, with no holes (the log's total order does it; no counter is shared).
 *
 * **Durability.** A call resolves once JetStream acknowledged its event:
 * stored on the stream's replicas (R of them). While NATS cannot be reached
 * a write retries for `timeoutMs` and then rejects with a one-line
 * {@linkcode StoreError}: nothing is acknowledged that is not stored.
 *
 * @module
 */

import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { toBase64 } from "../../core/bytes.ts";
import { connectNats, describeNatsError, parseNatsServers } from "./nats_connection.ts";
import type { NatsCredentials } from "./nats_credentials.ts";
import { BodyCache, LogReader } from "./nats_log_reader.ts";
import { NatsPrekeys } from "./nats_prekeys.ts";
import { RoomChannel } from "./nats_room_channel.ts";
import { ensureNatsResources, type NatsNames, natsNames } from "./nats_setup.ts";
import { SnapshotStore } from "./nats_snapshots.ts";
import { ATTEMPT_TIMEOUT_MS, retryable, retrying } from "./nats_retry.ts";
import type { RoomOp } from "./room_events.ts";
import { pruneChannel, readPage } from "./nats_room_ops.ts";
import { findMember } from "./room_roster.ts";
import type { RoomLimits, RoomState } from "./room_state.ts";
import { type OpResult, settledWithoutChange } from "./room_view.ts";
import { publicMember } from "./room_state.ts";
import {
  type AddMemberResult,
  checkBytes,
  checkIdentityKey,
  checkMemberId,
  checkSequence,
  type EnvelopeAppendResult,
  type EnvelopeItem,
  type GroupAppendResult,
  type GroupItem,
  MAX_READ_LIMIT,
  nameBytes,
  type NewMember,
  type PrekeyHandout,
  type PrekeyStatus,
  type PrekeyUpload,
  type PruneOptions,
  type PruneResult,
  type PutPrekeysResult,
  type ReadOptions,
  type ReadResult,
  type RelayStore,
  type RenameResult,
  resolveLimits,
  type RosterMember,
  type StoreCounts,
  StoreError,
  StoreInputError,
  type StoreLimits,
} from "./relay_store.ts";

/** Options for {@linkcode openNatsRelayStore}. */
export interface NatsStoreOptions {
  /** NATS servers (`nats://host:4222`, any of a cluster's); not with `connection`. */
  servers?: string | string[];
  /** A connection to use instead (left open by `close`). */
  connection?: NatsConnection;
  /** How to authenticate (see `nats_credentials.ts`); never from the command line. */
  credentials?: NatsCredentials;
  /** Copies JetStream keeps of everything: 1 on one server, 3 on a three-node cluster. */
  replicas?: number;
  /** Names of the streams, bucket and subjects (default `securechat`). */
  prefix?: string;
  limits?: Partial<StoreLimits>;
  /** The store's clock (ms); tests move it. */
  now?: () => number;
  /** How long a call keeps trying while NATS does not answer, ms (default 5,000). */
  timeoutMs?: number;
  /** Bytes the rooms stream may hold (default: no limit but the server's). */
  maxStoreBytes?: number;
  /** Events between two snapshots of a room (default 1,000). */
  snapshotEvery?: number;
  /** Item bodies kept in memory for catch-ups, bytes (default 32 MiB). */
  bodyCacheBytes?: number;
  /** Room views kept in memory; the least recently used beyond it reload when next used (default 10,000). */
  maxRoomsInMemory?: number;
}

const DEFAULT_READ_LIMIT = 1_000;
/** Room for an event's header and NATS headers beside the largest item. */
const EVENT_OVERHEAD = 4096;
const DEFAULT_PRUNE_ITEMS = 10_000;

/**
 * Opens the store on NATS JetStream, creating its streams and bucket when
 * missing. Rejects with a one-line {@linkcode StoreError} when NATS cannot
 * be reached, refuses the credentials, or has JetStream disabled.
 *
 * @example
 * ```ts
 * const store = await openNatsRelayStore({ servers: "nats://127.0.0.1:4222", replicas: 1 });
 * try {
 *   await store.addMember("ops", { identityKey, nick: "alice", announcement });
 * } finally {
 *   await store.close();
 * }
 * ```
 */
export async function openNatsRelayStore(options: NatsStoreOptions): Promise<RelayStore> {
  const limits = resolveLimits(options.limits);
  const names = natsNames(options.prefix ?? "securechat");
  const timeoutMs = options.timeoutMs ?? 5_000;
  for (
    const [name, value] of Object.entries({ timeoutMs, maxRoomsInMemory: options.maxRoomsInMemory })
  ) {
    if (value !== undefined && (!Number.isSafeInteger(value) || value < 1)) {
      throw new StoreInputError(`${name} must be a positive whole number`);
    }
  }
  const servers = options.connection === undefined
    ? parseNatsServers(options.servers ?? [])
    : [options.connection.getServer()];
  const where = servers.join(",");
  const nc = options.connection ??
    await connectNats({ servers, credentials: options.credentials, timeoutMs });
  try {
    const maxPayload = nc.info?.max_payload ?? 1024 * 1024;
    if (limits.maxItemBytes + EVENT_OVERHEAD > maxPayload) {
      throw new StoreError(
        `NATS at ${where} takes messages of at most ${maxPayload} bytes, too small for items of ` +
          `${limits.maxItemBytes} bytes; raise max_payload in nats-server's configuration`,
      );
    }
    const attempt = Math.min(timeoutMs, ATTEMPT_TIMEOUT_MS);
    // Here "JetStream not enabled" is the answer, not a stream between leaders.
    const opening = (error: unknown) =>
      retryable(error) && (error as { name?: string })?.name !== "JetStreamNotEnabled";
    const jsm = await retrying(
      () => jetstreamManager(nc, { timeout: attempt }),
      timeoutMs,
      opening,
    );
    const signed = await retrying(
      () =>
        ensureNatsResources({
          nc,
          jsm,
          names,
          replicas: options.replicas ?? 1,
          maxStoreBytes: options.maxStoreBytes ?? 0,
        }),
      timeoutMs,
      opening,
    );
    return new NatsRelayStore({
      nc,
      ownConnection: options.connection === undefined,
      names,
      where,
      limits,
      now: options.now ?? Date.now,
      timeoutMs,
      snapshotEvery: options.snapshotEvery ?? 1_000,
      bodyCacheBytes: options.bodyCacheBytes ?? 32 * 1024 * 1024,
      maxRoomsInMemory: options.maxRoomsInMemory ?? 10_000,
      prekeys: (reader) =>
        new NatsPrekeys({
          js: jetstream(nc, { timeout: attempt }),
          jsm,
          reader,
          signed,
          stream: names.prekeys,
          queuePrefix: `${names.prefix}.prekey.once`,
          limits,
          timeoutMs,
        }),
      jsm,
    });
  } catch (error) {
    if (options.connection === undefined) await nc.close().catch(() => undefined);
    throw describeNatsError(error, where);
  }
}

interface NatsRelayStoreOptions {
  nc: NatsConnection;
  ownConnection: boolean;
  names: NatsNames;
  where: string;
  limits: Readonly<StoreLimits>;
  now: () => number;
  timeoutMs: number;
  snapshotEvery: number;
  bodyCacheBytes: number;
  maxRoomsInMemory: number;
  prekeys: (reader: LogReader) => NatsPrekeys;
  jsm: Awaited<ReturnType<typeof jetstreamManager>>;
}

/** {@linkcode RelayStore} on JetStream; made by {@linkcode openNatsRelayStore}. */
class NatsRelayStore implements RelayStore {
  readonly location: string;
  readonly limits: Readonly<StoreLimits>;
  #options: NatsRelayStoreOptions;
  #roomLimits: RoomLimits;
  #channels = new Map<string, RoomChannel>();
  #context: ConstructorParameters<typeof RoomChannel>[0];
  #prekeys: NatsPrekeys;
  #pending = new Set<Promise<unknown>>();
  #closed?: Promise<void>;

  constructor(options: NatsRelayStoreOptions) {
    const { nc, names, limits, timeoutMs, jsm } = options;
    this.#options = options;
    this.location = `${options.where} (JetStream stream ${names.rooms})`;
    this.limits = limits;
    this.#roomLimits = {
      retentionMs: limits.retentionMs,
      maxRoomBytes: limits.maxRoomBytes,
      maxItemsPerMember: limits.maxItemsPerMember,
      maxMembersPerRoom: limits.maxMembersPerRoom,
    };
    const js = jetstream(nc, { timeout: Math.min(timeoutMs, ATTEMPT_TIMEOUT_MS) });
    const reader = new LogReader({ js, jsm, stream: names.rooms, timeoutMs });
    const maxPayload = nc.info?.max_payload ?? 1024 * 1024;
    this.#context = {
      js,
      reader,
      snapshots: new SnapshotStore({ js, jsm, reader, stream: names.rooms, timeoutMs }),
      bodies: new BodyCache(options.bodyCacheBytes),
      limits: this.#roomLimits,
      now: options.now,
      timeoutMs,
      maxEventBytes: maxPayload - EVENT_OVERHEAD,
      snapshotEvery: options.snapshotEvery,
      describe: (error) => describeNatsError(error, options.where, { opened: true }),
      background: (task) => this.#track(task),
    };
    const prekeyReader = new LogReader({ js, jsm, stream: names.prekeys, timeoutMs });
    this.#prekeys = options.prekeys(prekeyReader);
  }

  close(): Promise<void> {
    this.#closed ??= (async () => {
      while (this.#pending.size > 0) await Promise.allSettled([...this.#pending]);
      if (this.#options.ownConnection) await this.#options.nc.close().catch(() => undefined);
    })();
    return this.#closed;
  }

  addMember(room: string, member: NewMember): Promise<AddMemberResult> {
    return this.#call(() => {
      nameBytes(room, "room name");
      nameBytes(member.nick, "nick");
      checkIdentityKey(member.identityKey);
      checkBytes(member.announcement, "announcement", this.limits.maxAnnouncementBytes, 1);
      return this.#write(room, { type: "add", ...member }) as Promise<AddMemberResult>;
    });
  }

  findMember(room: string, identityKey: Uint8Array, nick: string) {
    return this.#call(() => {
      nameBytes(room, "room name");
      nameBytes(nick, "nick");
      checkIdentityKey(identityKey);
      return this.#read(room, (state) => findMember(state, identityKey, nick));
    });
  }

  getMember(room: string, memberId: number): Promise<RosterMember | undefined> {
    return this.#call(() => {
      nameBytes(room, "room name");
      checkMemberId(memberId);
      return this.#read(room, (state) => {
        const member = state.members.get(memberId);
        return member === undefined ? undefined : publicMember(member);
      });
    });
  }

  listMembers(room: string, options: { includeRemoved?: boolean } = {}) {
    return this.#call(() => {
      nameBytes(room, "room name");
      return this.#read(room, (state) =>
        [...state.members.values()]
          .filter((member) => options.includeRemoved === true || member.removedAt === undefined)
          .map(publicMember));
    });
  }

  renameMember(room: string, memberId: number, nick: string): Promise<RenameResult> {
    return this.#call(() => {
      nameBytes(room, "room name");
      checkMemberId(memberId);
      nameBytes(nick, "nick");
      return this.#write(room, { type: "rename", memberId, nick }) as Promise<RenameResult>;
    });
  }

  removeMember(room: string, memberId: number): Promise<boolean> {
    return this.#call(() => {
      nameBytes(room, "room name");
      checkMemberId(memberId);
      return this.#write(room, { type: "remove", memberId }) as Promise<boolean>;
    });
  }

  appendGroup(room: string, item: GroupItem): Promise<GroupAppendResult> {
    return this.#call(async () => {
      nameBytes(room, "room name");
      checkMemberId(item.from, "sender");
      const body = checkBytes(item.body, "item body", Number.MAX_SAFE_INTEGER, 1);
      if (body.length > this.limits.maxItemBytes) return { status: "refused", reason: "tooLarge" };
      return await this.#write(room, { type: "group", from: item.from, body }) as GroupAppendResult;
    });
  }

  appendEnvelope(room: string, item: EnvelopeItem): Promise<EnvelopeAppendResult> {
    return this.#call(async () => {
      nameBytes(room, "room name");
      checkMemberId(item.from, "sender");
      checkMemberId(item.to, "recipient");
      const body = checkBytes(item.body, "item body", Number.MAX_SAFE_INTEGER, 1);
      if (body.length > this.limits.maxItemBytes) return { status: "refused", reason: "tooLarge" };
      const op: RoomOp = { type: "envelope", from: item.from, to: item.to, body };
      return await this.#write(room, op) as EnvelopeAppendResult;
    });
  }

  read(room: string, memberId: number, options: ReadOptions): Promise<ReadResult | undefined> {
    return this.#call(async () => {
      nameBytes(room, "room name");
      checkMemberId(memberId);
      checkSequence(options.afterSeq, "afterSeq");
      const limit = options.limit ?? DEFAULT_READ_LIMIT;
      if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_READ_LIMIT) {
        throw new StoreInputError(`read limit must be a whole number from 1 to ${MAX_READ_LIMIT}`);
      }
      return await readPage(this.#channel(room), { memberId, afterSeq: options.afterSeq, limit });
    });
  }

  ack(room: string, memberId: number, seq: number): Promise<number | undefined> {
    return this.#call(() => {
      nameBytes(room, "room name");
      checkMemberId(memberId);
      checkSequence(seq);
      return this.#write(room, { type: "ack", memberId, seq }) as Promise<number | undefined>;
    });
  }

  prune(options: PruneOptions = {}): Promise<PruneResult> {
    return this.#call(async () => {
      const budget = options.maxItems ?? DEFAULT_PRUNE_ITEMS;
      if (!Number.isSafeInteger(budget) || budget < 1) {
        throw new StoreInputError("prune maxItems must be a positive whole number");
      }
      const result: PruneResult = { acknowledged: 0, expired: 0, forgotten: 0, more: false };
      let left = budget;
      // Rooms in the order they were created, as relay.db prunes them (the budget is shared).
      const rooms = await Promise.all(
        (await this.#rooms()).map(async (room) => ({
          room,
          createdAt: await this.#channel(room).read((view) => view.state.createdAt),
        })),
      );
      rooms.sort((a, b) => a.createdAt - b.createdAt);
      for (const { room } of rooms) {
        const { outcome, more } = await pruneChannel(this.#channel(room), {
          now: this.#options.now,
          limits: this.#roomLimits,
          budget: left,
        });
        result.more ||= more;
        if (outcome === undefined) continue;
        result.acknowledged += outcome.acknowledged;
        result.expired += outcome.expired;
        result.forgotten += outcome.forgotten;
        left -= outcome.examined;
        if (outcome.forgetRoom) this.#channels.delete(room);
      }
      return result;
    });
  }

  putPrekeys(identityKey: Uint8Array, upload: PrekeyUpload): Promise<PutPrekeysResult> {
    return this.#call(() => this.#retrying(() => this.#prekeys.put(identityKey, upload)));
  }

  takePrekeys(identityKey: Uint8Array): Promise<PrekeyHandout | undefined> {
    return this.#call(() => this.#retrying(() => this.#prekeys.take(identityKey)));
  }

  prekeyStatus(identityKey: Uint8Array): Promise<PrekeyStatus> {
    return this.#call(() => this.#retrying(() => this.#prekeys.status(identityKey)));
  }

  counts(): Promise<StoreCounts> {
    return this.#call(async () => {
      const counts: StoreCounts = {
        rooms: 0,
        members: 0,
        items: 0,
        itemBytes: 0,
        gaps: 0,
        ...await this.#retrying(() => this.#prekeys.counts()),
      };
      for (const room of await this.#rooms()) {
        await this.#channel(room).read((view) => {
          if (!view.exists) return;
          counts.rooms++;
          counts.members += view.state.memberCount;
          counts.items += view.state.items.count;
          counts.itemBytes += view.state.items.bytes;
          counts.gaps += view.state.gapCount();
        });
      }
      return counts;
    });
  }

  /** Runs a call unless closed; close waits for it; NATS errors become one-line StoreErrors. */
  #call<T>(task: () => T | Promise<T>): Promise<T> {
    if (this.#closed !== undefined) {
      return Promise.reject(new StoreError(`relay store ${this.location} is closed`));
    }
    const run = (async () => {
      try {
        return await task();
      } catch (error) {
        if (error instanceof StoreInputError || error instanceof StoreError) throw error;
        throw describeNatsError(error, this.#options.where, { opened: true });
      }
    })();
    return this.#track(run);
  }

  #retrying<T>(task: () => Promise<T>): Promise<T> {
    return retrying(task, this.#options.timeoutMs);
  }

  #track<T>(task: Promise<T>): Promise<T> {
    this.#pending.add(task);
    const done = () => this.#pending.delete(task);
    task.then(done, done);
    return task;
  }

  #write(room: string, op: RoomOp): Promise<OpResult> {
    return this.#channel(room).write(
      op,
      (view) => settledWithoutChange(view.state, op, this.#roomLimits),
    );
  }

  async #read<T>(room: string, task: (state: RoomState) => T): Promise<T> {
    const channel = this.#channel(room);
    const result = await channel.read((view) => ({ value: task(view.state), exists: view.exists }));
    // Looking up a room that does not exist must not leave anything behind.
    if (!result.exists && this.#channels.get(room) === channel && channel.idle) {
      this.#channels.delete(room);
    }
    return result.value;
  }

  #channel(room: string): RoomChannel {
    let channel = this.#channels.get(room);
    if (channel !== undefined) {
      // Most recently used last: the first idle ones are dropped when there are too many.
      this.#channels.delete(room);
      this.#channels.set(room, channel);
    } else {
      const key = roomKey(room);
      const prefix = `${this.#options.names.prefix}.room`;
      channel = new RoomChannel(this.#context, {
        log: `${prefix}.log.${key}`,
        snapshot: `${prefix}.snap.${key}`,
        head: `${prefix}.head.${key}`,
      });
      this.#channels.set(room, channel);
      this.#evict();
    }
    return channel;
  }

  /** Forgets the least recently used idle views past `maxRoomsInMemory` (they reload on use). */
  #evict(): void {
    let excess = this.#channels.size - this.#options.maxRoomsInMemory;
    for (const [room, channel] of this.#channels) {
      if (excess <= 0) break;
      if (!channel.idle) continue;
      this.#channels.delete(room);
      excess--;
    }
  }

  /** Every room with a log, in name order. */
  async #rooms(): Promise<string[]> {
    const prefix = `${this.#options.names.prefix}.room.log.`;
    const info = await this.#retrying(() =>
      this.#options.jsm.streams.info(this.#options.names.rooms, { subjects_filter: `${prefix}>` })
    );
    return Object.keys(info.state.subjects ?? {})
      .map((subject) => roomName(subject.slice(prefix.length)))
      .sort();
  }
}

/**
 * A room name as a subject token: its UTF-8 in unpadded base64url.
 *
 * @example
 * ```ts
 * roomKey("ops"); // "b3Bz"
 * ```
 */
export function roomKey(room: string): string {
  return toBase64(nameBytes(room, "room name")).replaceAll("+", "-").replaceAll("/", "_")
    .replace(/=+$/, "");
}

function roomName(key: string): string {
  const base64 = key.replaceAll("-", "+").replaceAll("_", "/");
  const padded = base64 + "=".repeat((4 - base64.length % 4) % 4);
  const binary = atob(padded);
  return new TextDecoder().decode(Uint8Array.from(binary, (c) => c.charCodeAt(0)));
}
