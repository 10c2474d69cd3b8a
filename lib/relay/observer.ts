/**
 * What a relay tells an operator's tooling: a small observer interface for
 * events that metrics count (handshake durations, refusals by reason) and
 * a snapshot of its counters and gauges. The relay takes no metrics library:
 * `securechat serve --metrics` wires these to Prometheus (cli/metrics.ts).
 *
 * @module
 */

/** How much a log line matters, from most to least. */
export type LogLevel = "error" | "warn" | "info" | "debug";

/** Every reason the relay refuses or drops a connection, a join or a member. */
export const REFUSAL_REASONS = [
  "connection-cap",
  "address-cap",
  "pending-cap",
  "handshake-timeout",
  "handshake-failed",
  "not-securechat",
  "version",
  "not-allowed",
  "rate-limit",
  "malformed",
  "too-large",
  "not-joined",
  "already-joined",
  "bad-announcement",
  "nick-taken",
  "room-full",
  "slow-reader",
  "replaced",
  "store-failed",
  "bad-prekey",
  "too-many-watches",
] as const;

/** One of {@linkcode REFUSAL_REASONS}. */
export type RefusalReason = typeof REFUSAL_REASONS[number];

/**
 * Receives relay events as they happen. Every method is optional and must
 * be cheap: it runs on the relay's event loop.
 *
 * @example
 * ```ts
 * const observer: RelayObserver = {
 *   handshake: (seconds) => histogram.observe(seconds),
 *   refusal: (reason) => refusals.inc({ reason }),
 * };
 * ```
 */
export interface RelayObserver {
  /** A client finished its handshake after `seconds`, accept to last message. */
  handshake?(seconds: number): void;
  /** The relay refused or dropped something, for `reason`. */
  refusal?(reason: RefusalReason): void;
}

/** Counters (since start) and gauges (now) of a running relay. */
export interface RelayStats {
  /** Connections accepted since start. */
  connectionsAccepted: number;
  /** Connections open now, in their handshake or past it. */
  connectionsOpen: number;
  /** Connections still in their handshake now. */
  handshakesPending: number;
  /** Rooms with at least one member now. */
  rooms: number;
  /** Members in all rooms now. */
  members: number;
  /** Records received from clients since start. */
  recordsReceived: number;
  /** Bytes of those records. */
  recordBytesReceived: number;
  /** Records queued to clients since start. */
  recordsSent: number;
  /** Bytes of those records. */
  recordBytesSent: number;
}

/**
 * The refusal reason of a failed handshake, from the error it failed with.
 *
 * @example
 * ```ts
 * handshakeFailureReason(new ProtocolError("handshake timed out after 10 s")); // "handshake-timeout"
 * ```
 */
export function handshakeFailureReason(error: unknown): RefusalReason {
  const message = error instanceof Error ? error.message : "";
  if (/timed out/.test(message)) return "handshake-timeout";
  if (/speaks securechat protocol/.test(message)) return "version";
  if (/not speaking the securechat protocol/.test(message)) return "not-securechat";
  return "handshake-failed";
}
