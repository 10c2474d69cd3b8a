/**
 * Where the JetStream store keeps room snapshots, and compaction of room
 * logs. A snapshot is written as chunks (messages on the room's snapshot
 * subject, each at most 256 KiB) and then made current by a **head**
 * message on the room's head subject, published on the condition that the
 * head is still the one the writer read (and with a rollup header, so only
 * the latest head is kept). Chunks are never overwritten, so a reader never
 * sees a torn snapshot: it reads the head, then the chunks it names, and
 * tries again if a newer snapshot replaced them meanwhile.
 *
 * Once a head is published, older chunks are purged, and so is the room's
 * log below both the snapshot's event and the event holding the oldest
 * item still kept (its body lives there). Heads only move forward: a writer
 * holding an older state than the current head writes nothing, so the log
 * after a head is always complete.
 *
 * ```
 * head = u8 version (1), u64 log seq, u32 bytes, u32 n, n × u64 chunk stream sequence
 * ```
 *
 * @module
 */

import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import { headers } from "@nats-io/nats-core";
import { ByteReader, ByteWriter, concat, DecodeError } from "../../core/bytes.ts";
import type { LogReader } from "./nats_log_reader.ts";
import { decodeSnapshot } from "./room_snapshot.ts";
import type { RoomState } from "./room_state.ts";
import { StoreError } from "./relay_store.ts";

/** Bytes of one snapshot chunk. */
export const SNAPSHOT_CHUNK_BYTES = 256 * 1024;

const HEAD_VERSION = 1;

/** The three subjects of a room. */
export interface RoomSubjects {
  log: string;
  snapshot: string;
  head: string;
}

/** A snapshot to write: the encoded state, its event, and the log's purge bound. */
export interface SnapshotWrite {
  bytes: Uint8Array;
  logSeq: number;
  /** Stream sequence of the event holding the oldest kept item (Infinity when none). */
  oldestItemAt: number;
}

/**
 * Reads and writes room snapshots on one stream.
 *
 * @example
 * ```ts
 * const snapshots = new SnapshotStore({ js, jsm, reader, stream, timeoutMs: 5_000 });
 * const loaded = await snapshots.read(subjects);
 * ```
 */
export class SnapshotStore {
  #js: JetStreamClient;
  #jsm: JetStreamManager;
  #reader: LogReader;
  #stream: string;
  #timeoutMs: number;

  /** @example `new SnapshotStore({ js, jsm, reader, stream, timeoutMs })` */
  constructor(options: {
    js: JetStreamClient;
    jsm: JetStreamManager;
    reader: LogReader;
    stream: string;
    timeoutMs: number;
  }) {
    this.#js = options.js;
    this.#jsm = options.jsm;
    this.#reader = options.reader;
    this.#stream = options.stream;
    this.#timeoutMs = options.timeoutMs;
  }

  /**
   * The room's current snapshot, or undefined when it has none.
   *
   * @example
   * ```ts
   * const { room, logSeq } = (await snapshots.read(subjects)) ?? fresh();
   * ```
   */
  async read(subjects: RoomSubjects): Promise<{ room: RoomState; logSeq: number } | undefined> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const head = await this.#reader.last(subjects.head);
      if (head === undefined) return undefined;
      const manifest = decodeHead(head.data);
      const chunks = await Promise.all(manifest.chunks.map((seq) => this.#reader.at(seq)));
      if (chunks.some((chunk) => chunk === undefined || chunk.subject !== subjects.snapshot)) {
        continue; // replaced by a newer snapshot while being read
      }
      const bytes = concat(...chunks.map((chunk) => chunk!.data));
      if (bytes.length !== manifest.bytes) {
        throw new StoreError(`room snapshot on ${subjects.head} is damaged (size mismatch)`);
      }
      const snapshot = decodeSnapshot(bytes);
      if (snapshot.logSeq !== manifest.logSeq) {
        throw new StoreError(`room snapshot on ${subjects.head} is damaged (wrong event)`);
      }
      return snapshot;
    }
    throw new StoreError(`room snapshot on ${subjects.head} kept changing while being read`);
  }

  /**
   * Writes a snapshot unless the current one is as new; then purges older
   * chunks and the log before it. True when it became current.
   *
   * @example
   * ```ts
   * await snapshots.write(subjects, { bytes, logSeq, oldestItemAt });
   * ```
   */
  async write(subjects: RoomSubjects, snapshot: SnapshotWrite): Promise<boolean> {
    const head = await this.#reader.last(subjects.head);
    if (head !== undefined && decodeHead(head.data).logSeq >= snapshot.logSeq) return false;
    const chunks: number[] = [];
    for (
      let at = 0;
      at < snapshot.bytes.length || chunks.length === 0;
      at += SNAPSHOT_CHUNK_BYTES
    ) {
      const chunk = snapshot.bytes.subarray(at, at + SNAPSHOT_CHUNK_BYTES);
      const ack = await this.#js.publish(subjects.snapshot, chunk, { timeout: this.#timeoutMs });
      chunks.push(ack.seq);
    }
    const rollup = headers();
    rollup.set("Nats-Rollup", "sub");
    try {
      await this.#js.publish(
        subjects.head,
        encodeHead({ logSeq: snapshot.logSeq, bytes: snapshot.bytes.length, chunks }),
        {
          expect: { lastSubjectSequence: head?.seq ?? 0 },
          headers: rollup,
          timeout: this.#timeoutMs,
        },
      );
    } catch (error) {
      // Another relay made its snapshot current first: ours is garbage.
      await Promise.all(
        chunks.map((seq) => this.#jsm.streams.deleteMessage(this.#stream, seq, false)),
      ).catch(() => undefined);
      if ((error as { code?: number }).code === 10071) return false;
      throw error;
    }
    await this.#jsm.streams.purge(this.#stream, { filter: subjects.snapshot, seq: chunks[0] });
    const bound = Math.min(snapshot.logSeq, snapshot.oldestItemAt);
    await this.#jsm.streams.purge(this.#stream, { filter: subjects.log, seq: bound });
    return true;
  }
}

interface Head {
  logSeq: number;
  bytes: number;
  chunks: number[];
}

function encodeHead(head: Head): Uint8Array {
  const writer = new ByteWriter(24 + 8 * head.chunks.length)
    .u8(HEAD_VERSION).u64(head.logSeq).u32(head.bytes).u32(head.chunks.length);
  for (const seq of head.chunks) writer.u64(seq);
  return writer.finish();
}

function decodeHead(bytes: Uint8Array): Head {
  const reader = new ByteReader(bytes);
  const version = reader.u8();
  if (version !== HEAD_VERSION) throw new DecodeError(`room snapshot head version ${version}`);
  const logSeq = reader.u64();
  const size = reader.u32();
  const n = reader.u32();
  const chunks: number[] = [];
  for (let i = 0; i < n; i++) chunks.push(reader.u64());
  reader.end();
  return { logSeq, bytes: size, chunks };
}
