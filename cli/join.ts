/**
 * `securechat join HOST:PORT`: joins a room through a relay.
 *
 * When stdin is not a terminal it runs in line mode for scripts: each stdin
 * line is one message, each received message one stdout line, and at EOF it
 * exits 0 once the relay has acknowledged everything it sent. On a terminal
 * it runs an interactive prompt.
 *
 * @module
 */

import { Command, InvalidArgumentError } from "commander";
import process from "node:process";
import { validateNick, validateRoom } from "../lib/e2e/announcement.ts";
import { normalizeName } from "../lib/identity/nick.ts";
import { utf8 } from "../lib/core/bytes.ts";
import { ChatClient } from "../lib/client/client.ts";
import {
  type ConnectionHandlers,
  type ConnectionStatus,
  ReconnectingClient,
} from "../lib/client/reconnecting_client.ts";
import { MAX_TEXT_BYTES } from "../lib/e2e/content.ts";
import { NetworkError } from "../lib/core/errors.ts";
import { parseFingerprint } from "../lib/identity/fingerprint.ts";
import type { Identity } from "../lib/identity/identity.ts";
import type { MemberInfo, RoomEvent } from "../lib/e2e/room.ts";
import {
  formatServerAddress,
  KnownPeers,
  KnownServers,
  loadFingerprintList,
  type ServerAddress,
} from "../lib/identity/trust_store.ts";
import { CliError, ExitCode } from "./exit_codes.ts";
import { loadOrCreateIdentity } from "./identity_option.ts";
import { positiveInteger, serverAddress } from "./options.ts";
import { runInteractive } from "./interactive.ts";
import { JoinOutput } from "./output.ts";
import { keyChangedText, PeerTrust } from "./peer_trust.ts";
import { knownPeersPath, knownServersPath, prepareHome } from "./paths.ts";
import { openClientStore, verifyRelay } from "./relay_check.ts";
import type { LocalStore } from "../lib/client/local_store.ts";
import { type InputLine, LineSplitter } from "./lines.ts";

/** Parsed `join` options. */
interface JoinOptions {
  room: string;
  nick?: string;
  identity?: string;
  passphraseFile?: string;
  serverFingerprint?: string;
  trust?: string;
  json?: boolean;
  stay?: boolean;
  count?: number;
  allowInvalidUtf8?: boolean;
  /** Commander's negation of `--no-history`. */
  history?: boolean;
  waitRead?: boolean;
}

function parseFingerprintOption(text: string): string {
  try {
    return parseFingerprint(text);
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
}

function defaultNick(): string {
  const user = process.env.USER ?? process.env.USERNAME ?? "";
  return validateNick(user) === null ? user : "anonymous";
}

/**
 * Builds the `join` sub-command.
 *
 * @example
 * ```ts
 * program.addCommand(joinCommand());
 * ```
 */
export function joinCommand(): Command {
  return new Command("join")
    .description("join a room through a relay; line mode when stdin is not a terminal")
    .argument(
      "<host:port>",
      "the relay's address; several, comma-separated, for the relays of one cluster (tried in turn)",
      (text: string) => text.split(",").map((part) => serverAddress(part.trim())),
    )
    .option("--room <name>", "room to join", "lobby")
    .option("--nick <name>", "your nick in the room (default: $USER)")
    .option("--identity <path>", "identity file (default: created under $SECURECHAT_HOME)")
    .option("--passphrase-file <file>", "read the identity's passphrase from the file's first line")
    .option(
      "--server-fingerprint <fp>",
      "the relay's fingerprint; anything else is refused",
      parseFingerprintOption,
    )
    .option("--trust <file>", "share keys with and accept messages from only these fingerprints")
    .option("--json", "print messages and notices as one JSON object per line")
    .option("--stay", "keep receiving after stdin ends")
    .option("--count <n>", "exit after receiving n messages", positiveInteger)
    .option(
      "--no-history",
      "keep no copy of the messages (the room's keys and position are still kept)",
    )
    .option(
      "--wait-read",
      "in a durable room, exit only once every member has read what you sent",
    )
    .option(
      "--allow-invalid-utf8",
      "send stdin lines that are not valid UTF-8 with U+FFFD in place of the bad bytes (warns " +
        "once) instead of refusing them",
    )
    .action((addresses: ServerAddress[], options: JoinOptions) => runJoin(addresses, options));
}

async function runJoin(addresses: ServerAddress[], options: JoinOptions): Promise<void> {
  const address = addresses[0];
  const output = new JoinOutput({ json: options.json === true });
  // The same name profile as the relay and every receiver (lib/identity/nick.ts), after NFC.
  options.room = normalizeName(options.room);
  const roomProblem = validateRoom(options.room);
  if (roomProblem) throw new CliError(`--room: ${roomProblem}`, ExitCode.usage);
  options.nick = normalizeName(options.nick ?? defaultNick());
  const nickProblem = validateNick(options.nick);
  if (nickProblem) throw new CliError(`--nick: ${nickProblem}`, ExitCode.usage);
  await prepareHome();
  const identity = await loadOrCreateIdentity({
    path: options.identity,
    passphraseFile: options.passphraseFile,
    notice: (text) => output.notice("warning", text),
  });
  const trust = options.trust ? await loadFingerprintList(options.trust) : undefined;
  const store = await openClientStore(identity);
  const knownServers = options.serverFingerprint
    ? undefined
    : await KnownServers.load(knownServersPath());
  const peers = new PeerTrust({ knownPeers: await KnownPeers.load(knownPeersPath()), output });
  // The chat screen needs a terminal on both sides; a dumb one (an editor's shell) gets line mode.
  const interactive = process.stdin.isTTY === true && process.stdout.isTTY === true &&
    process.env.TERM !== "dumb" && !options.json;
  const session = new JoinSession({ address, options, identity, output, peers, interactive });
  const connectTo = (
    to: ServerAddress,
    handlers: ConnectionHandlers,
    target: { room: string; nick: string },
  ) =>
    ChatClient.connect({
      host: to.host,
      port: to.port,
      identity,
      room: target.room,
      nick: target.nick,
      verifyRelay: (relay) =>
        verifyRelay({
          address: to,
          relay,
          pinned: options.serverFingerprint,
          knownServers,
          output,
        }),
      isTrusted: trust ? ({ fingerprint }) => trust.has(fingerprint) : undefined,
      store,
      history: options.history !== false,
      ...handlers,
    });
  // The relays of a cluster, in turn: a relay that cannot be reached gives way to the next, with
  // the same checks (one cluster, one key); any other refusal (a changed key) ends the attempt.
  let current = 0;
  const connect = async (
    handlers: ConnectionHandlers,
    target: { room: string; nick: string } = { room: options.room, nick: options.nick! },
  ) => {
    for (let tried = 1;; tried++) {
      const to = addresses[current];
      try {
        return await connectTo(to, handlers, target);
      } catch (error) {
        if (!(error instanceof NetworkError) || tried >= addresses.length) throw error;
        current = (current + 1) % addresses.length;
        output.notice(
          "warning",
          `${formatServerAddress(to)}: ${error.message}; trying ${
            formatServerAddress(addresses[current])
          }`,
          { code: "failover" },
        );
      }
    }
  };
  const welcome = (client: ChatClient, verb: string) =>
    output.notice(
      "welcome",
      `${verb} room "${client.room}" as ${client.nick} (${identity.fingerprint}); ` +
        (client.durable
          ? `${client.roster().length} other member(s), ${client.members().length} online`
          : `${client.members().length} other member(s)`),
      { room: client.room, nick: client.nick, fingerprint: identity.fingerprint },
    );
  // The same words in line mode and on the chat screen.
  const onStatus = (status: ConnectionStatus) => {
    if (status.type === "reconnected") welcome(status.client, "reconnected: joined");
    else {
      const verb = status.type === "disconnected"
        ? "connection to the relay lost"
        : "reconnecting failed";
      output.notice(
        "warning",
        `${verb}: ${status.error.message}; reconnecting in ${secondsText(status.retryInMs)} s`,
        { code: status.type },
      );
    }
  };
  try {
    if (interactive) {
      // /nick and /join reconnect through here: same identity, same relay check. The chat
      // screen always survives relay restarts, by the rules of line mode's --stay.
      const open = async (target: { room: string; nick: string }) => {
        const joined = new JoinSession({
          address,
          options: { ...options, ...target },
          identity,
          output,
          peers,
          interactive,
        });
        const member = await ReconnectingClient.start({
          connect: (handlers) => connect(handlers, target),
          reconnect: true,
          onEvent: (event) => joined.handle(event),
          onStatus,
          onEnd: (error) => joined.connectionClosed(error),
        });
        welcome(member.client!, "joined");
        if (options.history !== false) {
          await showHistory({ output, store, client: member.client!, identity });
        }
        joined.release();
        return { member, done: joined.done };
      };
      await runInteractive({
        open,
        output,
        peers,
        identity: { publicKey: identity.publicKey, fingerprint: identity.fingerprint },
        room: options.room,
        nick: options.nick!,
      });
      return;
    }
    const member = await ReconnectingClient.start({
      connect,
      reconnect: options.stay === true,
      onEvent: (event) => session.handle(event),
      onStatus,
      onEnd: (error) => session.connectionClosed(error),
    });
    welcome(member.client!, "joined");
    session.release();
    await session.runLineMode(member);
  } finally {
    output.flush();
    await peers.settled();
    await store.close();
  }
}

interface JoinSessionOptions {
  address: ServerAddress;
  options: JoinOptions;
  identity: Identity;
  output: JoinOutput;
  peers: PeerTrust;
  interactive: boolean;
}

/** Turns room events into output and decides when `join` is done. */
class JoinSession {
  /** Resolves (or rejects) when `join` should exit. */
  readonly done: Promise<void>;
  #options: JoinSessionOptions;
  #received = 0;
  #held: RoomEvent[] | undefined = [];
  #leaving = new Map<string, { member: MemberInfo; timer: ReturnType<typeof setTimeout> }>();
  #finish!: () => void;
  #fail!: (error: Error) => void;

  constructor(options: JoinSessionOptions) {
    this.#options = options;
    this.done = new Promise((resolve, reject) => {
      this.#finish = resolve;
      this.#fail = reject;
    });
    // Nobody may be awaiting yet; the rejection is observed by whoever awaits `done` later.
    this.done.catch(() => {});
  }

  /** Shows the events held back while joining, after the welcome notice. */
  release(): void {
    const held = this.#held ?? [];
    this.#held = undefined;
    for (const event of held) this.handle(event);
  }

  handle(event: RoomEvent): void {
    if (this.#held) {
      this.#held.push(event);
      return;
    }
    const { output, peers, options } = this.#options;
    switch (event.type) {
      case "member-joined":
        this.#memberJoined(event.member, event.initial);
        return;
      case "member-left":
        if (event.reason === "offline") {
          output.notice(
            "leave",
            `${event.member.nick} (${event.member.fingerprint}) went offline; messages wait for it`,
            { nick: event.member.nick, fingerprint: event.member.fingerprint, reason: "offline" },
          );
          return;
        }
        if (event.reason === "removed") {
          this.#options.peers.release(event.member);
          output.notice(
            "leave",
            `${event.member.nick} (${event.member.fingerprint}) was removed from the room`,
            { nick: event.member.nick, fingerprint: event.member.fingerprint, reason: "removed" },
          );
          return;
        }
        this.#memberLeft(event.member);
        return;
      case "member-renamed": {
        const { status } = peers.admit(event.member);
        output.notice(
          "rename",
          `${event.previousNick} is now known as ${event.member.nick} ` +
            `(${event.member.fingerprint})${status === "verified" ? " (verified)" : ""}`,
          {
            nick: event.member.nick,
            fingerprint: event.member.fingerprint,
            status,
            previous: event.previousNick,
          },
        );
        return;
      }
      case "caught-up":
        if (event.stored > 0) {
          output.notice("stored", `read ${event.stored} message(s) kept by the relay while away`, {
            stored: event.stored,
            seq: event.seq,
          });
        }
        return;
      case "warning":
        output.notice("warning", event.text, {
          code: event.code,
          ...(event.member
            ? { nick: event.member.nick, fingerprint: event.member.fingerprint }
            : {}),
        });
        return;
      case "message":
        output.message({
          room: options.room,
          from: event.from,
          text: event.text,
          time: event.time,
          direct: event.direct,
          status: peers.statusOf(event.from),
        });
        this.#received++;
        if (options.count !== undefined && this.#received >= options.count) this.#finish();
        return;
    }
  }

  /**
   * A leave is shown after {@linkcode RENAME_WINDOW_MS}, unless the same key
   * joins again within it: `/nick` is a leave and a join under the new nick,
   * shown as one rename.
   */
  #memberLeft(member: MemberInfo): void {
    this.#options.peers.release(member);
    const held = this.#leaving.get(member.fingerprint);
    if (held) this.#showLeave(held.member);
    const timer = setTimeout(() => this.#showLeave(member), RENAME_WINDOW_MS);
    this.#leaving.set(member.fingerprint, { member, timer });
  }

  #showLeave(member: MemberInfo): void {
    const held = this.#leaving.get(member.fingerprint);
    if (held?.member === member) {
      clearTimeout(held.timer);
      this.#leaving.delete(member.fingerprint);
    }
    this.#options.output.notice("leave", `${member.nick} (${member.fingerprint}) left`, {
      nick: member.nick,
      fingerprint: member.fingerprint,
    });
  }

  /** Shows the leaves still held back for a rename (the connection is ending). */
  flushLeaves(): void {
    for (const { member } of [...this.#leaving.values()]) this.#showLeave(member);
  }

  #memberJoined(member: MemberInfo, initial: boolean): void {
    const { output, peers } = this.#options;
    const { status, expected, knownAs } = peers.admit(member);
    const fields = { nick: member.nick, fingerprint: member.fingerprint, status };
    if (status === "changed") {
      output.notice("key-changed", keyChangedText(member, expected), { ...fields, expected });
      return;
    }
    const left = this.#leaving.get(member.fingerprint);
    if (left !== undefined) {
      clearTimeout(left.timer);
      this.#leaving.delete(member.fingerprint);
      if (left.member.nick !== member.nick) {
        output.notice(
          "rename",
          `${left.member.nick} is now known as ${member.nick} (${member.fingerprint})` +
            (status === "verified" ? " (verified)" : ""),
          { ...fields, previous: left.member.nick },
        );
        return;
      }
      this.#showLeave(left.member);
    }
    const verb = initial ? "is here" : "joined";
    const suffix = status === "new"
      ? " (new member: first time seen, remembered)"
      : knownAs !== undefined && knownAs.length > 0
      ? ` (known key, seen before as ${knownAs.join(", ")}${
        status === "verified" ? "; verified" : ""
      })`
      : status === "verified"
      ? " (verified)"
      : "";
    output.notice(
      status === "new" ? "new-member" : "join",
      `${member.nick} ${verb} (${member.fingerprint})${suffix}`,
      fields,
    );
  }

  connectionClosed(error?: Error): void {
    this.flushLeaves();
    if (error) this.#fail(error);
    else this.#finish();
  }

  /** Line mode: stdin lines out, received messages to stdout. */
  async runLineMode(member: ReconnectingClient): Promise<void> {
    const { output, options } = this.#options;
    const sends: Promise<void>[] = [];
    /** Lines the relay confirmed, and the most members one of them reached now and later. */
    const stored = { lines: 0, online: 0, later: 0, seq: 0 };
    let unsent = 0;
    let notSent = 0;
    let warnedReplaced = false;
    let batch: string[] = [];
    let flushScheduled = false;
    const flush = () => {
      flushScheduled = false;
      const texts = batch;
      batch = [];
      if (texts.length === 0) return;
      sends.push(
        member.send(texts).then(
          (deliveries) => {
            for (const delivery of deliveries) {
              stored.online = Math.max(stored.online, delivery.online);
              stored.later = Math.max(stored.later, delivery.later);
              stored.seq = Math.max(stored.seq, delivery.seq);
            }
            const refused = Math.max(0, ...deliveries.map((delivery) => delivery.refused));
            if (refused > 0) {
              unsent += texts.length;
              output.notice(
                "error",
                `${texts.length} line(s) not kept for ${refused} member(s) away: the relay ` +
                  "refused to store them (see its error) or they have no prekeys yet",
              );
            } else if (deliveries.some((delivery) => delivery.online + delivery.later === 0)) {
              output.notice(
                "warning",
                `${texts.length} line(s) reached no one: no other members in the room`,
              );
            }
            stored.lines += texts.length;
          },
          (error: Error) => {
            unsent += texts.length;
            output.notice(
              "error",
              `${texts.length} line(s) not confirmed as delivered: ${error.message}`,
            );
          },
        ),
      );
    };
    const onLine = (line: InputLine) => {
      if (!("text" in line)) {
        unsent++;
        notSent++;
        output.notice(
          "error",
          `line ${line.lineNumber} not sent: not valid UTF-8 (byte ${
            line.invalidAt + 1
          } starts a bad sequence); ` +
            "--allow-invalid-utf8 sends such lines with U+FFFD",
        );
        return;
      }
      if (line.replaced && !warnedReplaced) {
        warnedReplaced = true;
        output.notice(
          "warning",
          `line ${line.lineNumber}: invalid UTF-8 replaced with U+FFFD (and in later lines ` +
            "without another warning)",
        );
      }
      if (line.bytes > MAX_TEXT_BYTES) {
        unsent++;
        notSent++;
        output.notice(
          "error",
          `line ${line.lineNumber} not sent: ${line.bytes} bytes is over the ${MAX_TEXT_BYTES}-byte message limit`,
        );
        return;
      }
      batch.push(line.text);
      if (!flushScheduled) {
        flushScheduled = true;
        setImmediate(flush);
      }
    };
    const lines = readStdinLines({ onLine, allowInvalid: options.allowInvalidUtf8 === true });
    const stdinDone = lines.done;
    let signaled = false;
    const stop = () => {
      signaled = true;
      this.#finish();
    };
    process.on("SIGINT", stop);
    process.on("SIGTERM", stop);
    const waitForMore = options.stay === true || options.count !== undefined;
    try {
      await (waitForMore ? this.done : Promise.race([stdinDone, this.done]));
      lines.close();
      flush();
      // Acknowledgements take milliseconds; a relay that never sends them must not hang us.
      await withinMs(Promise.all(sends), signaled ? 3_000 : 30_000);
      if (options.waitRead && member.durable && stored.seq > 0 && !signaled) {
        output.notice("stored", "waiting until every member of the room has read it", {
          seq: stored.seq,
        });
        await Promise.race([member.client?.waitRead(stored.seq), this.done]);
      }
    } catch (error) {
      throw connectionLost(error as Error, member.pending + unsent);
    } finally {
      lines.close();
      process.stdin.destroy();
      process.off("SIGINT", stop);
      process.off("SIGTERM", stop);
      await member.close();
      await Promise.all(sends);
      this.flushLeaves();
    }
    if (stored.lines > 0 && member.durable && stored.online + stored.later > 0) {
      output.notice(
        "stored",
        `${stored.lines} line(s) stored by the relay: reached ${stored.online} member(s) online, ` +
          `${stored.later} will get them when they come back`,
        { lines: stored.lines, online: stored.online, later: stored.later },
      );
    }
    if (unsent > 0) {
      throw new CliError(
        notSent === unsent
          ? `${unsent} line(s) were not sent (see above)`
          : `${unsent} line(s) were not sent or not confirmed as delivered (see above)`,
        ExitCode.undelivered,
      );
    }
  }
}

/** How long a leave waits for the same key to join under a new nick (a rename). */
const RENAME_WINDOW_MS = 1_500;

/** Milliseconds as seconds with at most two decimals: `370` → `"0.37"`, `2000` → `"2"`. */
function secondsText(ms: number): string {
  return String(Math.round(ms / 10) / 100);
}

/**
 * Reads stdin as lines without decoding the stream as a whole, so each
 * line's UTF-8 is judged on its own. `close()` stops reading; `done`
 * resolves at the end of input (or on close).
 */
function readStdinLines(
  options: { onLine: (line: InputLine) => void; allowInvalid: boolean },
): { done: Promise<void>; close: () => void } {
  const splitter = new LineSplitter(options);
  const stdin = process.stdin;
  let finish!: () => void;
  const done = new Promise<void>((resolve) => finish = resolve);
  let closed = false;
  const onData = (chunk: Uint8Array | string) => {
    if (closed) return;
    splitter.push(typeof chunk === "string" ? utf8(chunk) : chunk);
  };
  const onEnd = () => {
    if (!closed) splitter.end();
    close();
  };
  const close = () => {
    if (closed) return;
    closed = true;
    stdin.off("data", onData);
    stdin.off("end", onEnd);
    stdin.off("error", onEnd);
    finish();
  };
  stdin.on("data", onData);
  stdin.on("end", onEnd);
  stdin.on("error", onEnd);
  return { done, close };
}

/** Messages of the history shown when the chat screen opens a room. */
const HISTORY_SHOWN = 50;

/**
 * Shows what this machine kept of the room before the chat goes live: the
 * last messages of the history, between two separators.
 */
async function showHistory(options: {
  output: JoinOutput;
  store: LocalStore;
  client: ChatClient;
  identity: Identity;
}): Promise<void> {
  const { output, store, client, identity } = options;
  let rows;
  try {
    ({ rows } = await store.history(client.relayFingerprint, client.room, {
      limit: HISTORY_SHOWN,
    }));
  } catch (error) {
    output.notice("warning", `could not read the history: ${(error as Error).message}`, {});
    return;
  }
  if (rows.length === 0) return;
  output.notice("history", `— the last ${rows.length} message(s) kept on this machine —`, {});
  for (const row of rows) {
    const mine = row.direction === "out";
    output.message({
      room: client.room,
      from: {
        memberId: 0,
        nick: row.nick,
        fingerprint: row.sender,
        identityPublicKey: mine ? identity.publicKey : new Uint8Array(32),
        trusted: true,
        online: false,
      },
      text: row.text,
      time: row.time,
      direct: row.kind === "direct",
      status: "known",
      earlier: true,
    });
  }
  output.notice("history", "— now —", {});
}

function withinMs(work: Promise<unknown>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<void>((resolve) => timer = setTimeout(resolve, ms));
  return Promise.race([work.then(() => {}), timeout]).finally(() => clearTimeout(timer));
}

/**
 * Wraps the reason the connection ended, counting what was not acknowledged.
 *
 * @example
 * ```ts
 * throw connectionLost(new NetworkError("reset"), 3);
 * ```
 */
function connectionLost(error: Error, unacknowledged: number): Error {
  if (!(error instanceof NetworkError) || unacknowledged === 0) return error;
  return new CliError(
    `${error.message}; ${unacknowledged} message(s) were not acknowledged by the relay`,
    ExitCode.undelivered,
  );
}
