/**
 * The exit codes of the `securechat` command and the error type that carries
 * one. README.md lists them for users; keep the two in step.
 *
 * @module
 */

/** Every exit code the CLI uses, by meaning. */
export const ExitCode = {
  /** Success. */
  ok: 0,
  /** A runtime failure not covered below (for example the relay closed the connection). */
  failure: 1,
  /** The command line is wrong: unknown option, missing argument, bad value. */
  usage: 2,
  /** An identity or state file is missing, unreadable, corrupt, too open, or the passphrase is wrong. */
  keyFile: 3,
  /** The relay or a member could not be authenticated (fingerprint mismatch, not allowed). */
  authentication: 4,
  /** The network failed: cannot connect, cannot listen (port in use), connection lost. */
  network: 5,
  /** The peer broke the protocol: malformed frame, failed or timed-out handshake, version mismatch. */
  protocol: 6,
  /** Some messages could not be delivered or acknowledged before exit. */
  undelivered: 7,
} as const;

/** One of {@linkcode ExitCode}'s values. */
export type ExitCodeValue = typeof ExitCode[keyof typeof ExitCode];

/**
 * An error meant for the user: `message` is printed as one line after
 * `securechat: `, and the process exits with `exitCode`.
 *
 * @example
 * ```ts
 * throw new CliError("identity file not found: ./id; run `securechat keygen`", ExitCode.keyFile);
 * ```
 */
export class CliError extends Error {
  /** The process exit code. */
  readonly exitCode: ExitCodeValue;

  /**
   * @example
   * ```ts
   * new CliError("port 7878 is in use", ExitCode.network);
   * ```
   */
  constructor(message: string, exitCode: ExitCodeValue) {
    super(message);
    this.name = "CliError";
    this.exitCode = exitCode;
  }
}
