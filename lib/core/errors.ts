/**
 * Error classes that tell the caller which party failed, so the CLI can pick
 * an exit code and the relay can decide whom to drop. Messages are meant for
 * users: they say what happened and what to do, and never contain secrets or
 * message text.
 *
 * @module
 */

/**
 * The peer broke the protocol: malformed or oversized frame, failed
 * decryption, failed or timed-out handshake, incompatible version.
 *
 * @example
 * ```ts
 * throw new ProtocolError("handshake timed out after 10 s");
 * ```
 */
export class ProtocolError extends Error {
  /**
   * True when trying again cannot help: the peer will answer the same way
   * (a version mismatch, a server that is not a relay, a refused join).
   * Reconnecting clients stop instead of retrying.
   */
  readonly permanent: boolean;

  /** @example `new ProtocolError("unknown record type 0x99")` */
  constructor(message: string, options: { permanent?: boolean } = {}) {
    super(message);
    this.name = "ProtocolError";
    this.permanent = options.permanent ?? false;
  }
}

/**
 * The relay refused a join because the nick is in use in that room: a
 * choice the user makes (exit code 2 in the CLI), and permanent for a
 * reconnecting client.
 *
 * @example
 * ```ts
 * throw new NickTakenError('the relay refused: nick "bob" is taken in room "ops"');
 * ```
 */
export class NickTakenError extends ProtocolError {
  /** @example `new NickTakenError("nick taken")` */
  constructor(message: string) {
    super(message, { permanent: true });
    this.name = "NickTakenError";
  }
}

/**
 * A peer could not be authenticated: wrong relay fingerprint, a client not on
 * the relay's allow list, a signature that does not verify.
 *
 * @example
 * ```ts
 * throw new AuthenticationError("relay fingerprint mismatch");
 * ```
 */
export class AuthenticationError extends Error {
  /** @example `new AuthenticationError("not on the allow list")` */
  constructor(message: string) {
    super(message);
    this.name = "AuthenticationError";
  }
}

/**
 * The network failed: cannot connect or listen, connection reset or closed.
 *
 * @example
 * ```ts
 * throw new NetworkError("cannot connect to 127.0.0.1:7878: connection refused");
 * ```
 */
export class NetworkError extends Error {
  /** @example `new NetworkError("connection closed by the relay")` */
  constructor(message: string) {
    super(message);
    this.name = "NetworkError";
  }
}

/**
 * Describes a socket error in one line, without a stack trace.
 *
 * @example
 * ```ts
 * socketErrorText(error); // "connection refused"
 * ```
 */
export function socketErrorText(error: unknown): string {
  const code = (error as { code?: string })?.code;
  switch (code) {
    case "ECONNREFUSED":
      return "connection refused";
    case "ECONNRESET":
      return "connection reset by peer";
    case "EADDRINUSE":
      return "address already in use";
    case "EADDRNOTAVAIL":
      return "address not available on this machine";
    case "EACCES":
      return "permission denied";
    case "ETIMEDOUT":
      return "connection timed out";
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return "host name not found";
    case "EPIPE":
      return "connection closed by peer";
    default:
      return error instanceof Error ? error.message : String(error);
  }
}
