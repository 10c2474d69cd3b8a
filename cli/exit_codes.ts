/**
 * The exit codes of the `securechat` command and the error type that carries
 * one. {@linkcode EXIT_CODE_TABLE} is the one description of them: `--help`,
 * the man page and README.md's table come from it (a test compares README.md
 * with it).
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
  /** Ctrl-C at a passphrase prompt: 128 + SIGINT, as a shell reports it. */
  interrupted: 130,
  /** stdout was closed by its reader (`| head`): 128 + SIGPIPE, as a shell reports it. */
  stdoutClosed: 141,
} as const;

/**
 * What each exit code means, in the words users read: one row per code.
 *
 * @example
 * ```ts
 * for (const { code, meaning } of EXIT_CODE_TABLE) console.log(code, meaning);
 * ```
 */
export const EXIT_CODE_TABLE: ReadonlyArray<{ code: number; meaning: string }> = [
  { code: ExitCode.ok, meaning: "success" },
  { code: ExitCode.failure, meaning: "unexpected failure (a bug: please report it)" },
  {
    code: ExitCode.usage,
    meaning: "usage: unknown option, bad argument or address, a nick already taken in the room, " +
      "a passphrase needed with no terminal, no SECURECHAT_PASSPHRASE and no --passphrase-file",
  },
  {
    code: ExitCode.keyFile,
    meaning: "identity or state file: missing, unreadable, unusable path, corrupt or modified, " +
      "too open (not 0600), already exists (keygen without --force), wrong passphrase; a " +
      "malformed known_servers, known_peers or trust list",
  },
  {
    code: ExitCode.authentication,
    meaning: "authentication: the relay's fingerprint does not match the pin or known_servers " +
      "(possible man in the middle), or the relay does not admit this client (--allow)",
  },
  {
    code: ExitCode.network,
    meaning: "network: cannot connect, cannot listen (port in use), connection lost, relay " +
      "shutting down",
  },
  {
    code: ExitCode.protocol,
    meaning: "protocol: not a securechat relay, versions differ, malformed or corrupted data, " +
      "handshake failed or timed out",
  },
  {
    code: ExitCode.undelivered,
    meaning: "undelivered: some lines were not sent (over the size limit, not UTF-8) or not " +
      "acknowledged by the relay before the end (the error says how many)",
  },
  { code: ExitCode.interrupted, meaning: "interrupted: Ctrl-C at a passphrase prompt" },
  {
    code: ExitCode.stdoutClosed,
    meaning: "stdout closed by its reader (head -n 1 after its line, for example); nothing more " +
      "is printed",
  },
];

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
