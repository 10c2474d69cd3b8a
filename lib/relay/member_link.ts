/**
 * What a durable room needs of one member's connection, and nothing more:
 * a way to send a record (under the relay's queue cap), to refuse with an
 * error and close, and the identity the handshake proved. The relay
 * (relay.ts) implements it; the durable rooms (durable_rooms.ts) use it, so
 * neither knows the other's insides.
 *
 * @module
 */

import type { RefusalReason } from "./observer.ts";
import type { RelayRecord } from "../transport/records.ts";

/**
 * One joined connection as a durable room sees it.
 *
 * @example
 * ```ts
 * link.send({ type: "caughtUp", seq: 41 });
 * if (link.gone) return;
 * ```
 */
export interface MemberLink {
  /** `host:port`, for logs. */
  readonly peer: string;
  /** The Ed25519 key the handshake proved. */
  readonly identityKey: Uint8Array;
  /** Its fingerprint, for logs. */
  readonly fingerprint: string;
  /** Bytes queued for the peer and not yet taken by the network. */
  readonly bufferedBytes: number;
  /** The queue cap the relay drops a slow reader at. */
  readonly maxQueuedBytes: number;
  /** True once the connection closed, was refused or was dropped: send does nothing more. */
  readonly gone: boolean;
  /** Queues a record; a reader that stopped reading past the cap is dropped (gone). */
  send(record: RelayRecord): void;
  /** Logs `line` as a refusal of `reason`, sends error `code` with `message`, and closes. */
  refuse(reason: RefusalReason, code: number, message: string, line: string): void;
  /** Closes the connection without an error (after a leave). */
  close(): void;
}
