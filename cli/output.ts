/**
 * How `join` prints: one stdout line per received message (`nick: text`, or
 * a JSON object with `--json`), and notices on stderr (or as typed JSON
 * objects on stdout with `--json`).
 *
 * Every string that came from the network is untrusted and escaped before
 * it is written, with one function per output mode: {@linkcode escapeTerminal}
 * for text (line mode, stderr, the chat screen) and {@linkcode jsonLine} for
 * `--json`.
 *
 * @module
 */

import type { MemberInfo } from "../lib/e2e/room.ts";
import { writeStderr, writeStdout } from "./stdio.ts";

/** Kinds of notice, as the `type` field of JSON notices. */
export type NoticeType =
  | "relay"
  | "welcome"
  | "join"
  | "leave"
  | "rename"
  | "new-member"
  | "key-changed"
  | "warning"
  | "error"
  | "sent"
  | "stored"
  | "history";

/** Trust status shown beside a member. */
export type PeerStatus = "new" | "known" | "verified" | "changed";

/**
 * Characters that can drive a terminal or make text read differently from
 * what was sent: C0 controls but tab, DEL, C1 controls (U+009B is a one-byte
 * CSI), the line and paragraph separators, and the bidirectional marks,
 * embeddings, overrides and isolates (U+061C, U+200E, U+200F, U+202A–U+202E,
 * U+2066–U+2069).
 */
const UNSAFE_FOR_TERMINAL =
  // deno-lint-ignore no-control-regex -- matching control characters is the point
  /[\x00-\x08\x0a-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
/** What JSON.stringify leaves raw but a terminal showing the JSON would act on. */
const UNSAFE_IN_JSON = /[\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

function unicodeEscape(char: string): string {
  return `\\u${char.charCodeAt(0).toString(16).padStart(4, "0")}`;
}

/**
 * The escaping of every string from the network printed as text (line mode,
 * stderr notices and errors, the relay's log, the chat screen): the
 * characters above become `\n`, `\r` or `\u001b`-style escapes, so a
 * message can neither forge extra lines, nor drive the terminal (window
 * title, clear screen, OSC 52 clipboard writes), nor reorder what is shown.
 * Tabs and printable text are left alone.
 *
 * @example
 * ```ts
 * escapeTerminal("a\nb\x1b[2J\u202e"); // "a\\nb\\u001b[2J\\u202e"
 * ```
 */
export function escapeTerminal(text: string): string {
  return text.replace(UNSAFE_FOR_TERMINAL, (char) => {
    if (char === "\n") return "\\n";
    if (char === "\r") return "\\r";
    return unicodeEscape(char);
  });
}

/**
 * The escaping of `--json` output: one JSON text per line, in which
 * JSON.stringify's escapes (C0 controls, quotes) are completed with
 * `\uXXXX` escapes for DEL, the C1 controls, the line separators and the
 * bidi controls, which JSON allows raw but which would act on a terminal or
 * a log viewer showing the line. The value parses back unchanged.
 *
 * @example
 * ```ts
 * jsonLine({ text: "\u009b2J\u202e" }); // '{"text":"\\u009b2J\\u202e"}'
 * ```
 */
export function jsonLine(value: unknown): string {
  return JSON.stringify(value).replace(UNSAFE_IN_JSON, unicodeEscape);
}

/** A sender's clock further than this from ours is not shown as the message's time. */
const CLOCK_SKEW_MS = 24 * 60 * 60 * 1000;

/**
 * The `time` of a message in `--json` (PROTOCOL.md, "Plaintexts"): the
 * sender's claimed time when it is within a day of this clock, otherwise
 * this clock's time of receipt with the claim kept as `sentTime`
 * (milliseconds, as received). A claim cannot make output fail: times up to
 * 2^53 − 1 are beyond what a Date can show.
 *
 * @example
 * ```ts
 * messageTime(Date.now(), Date.now()); // { time: "2024-..." }
 * messageTime(2 ** 53 - 1, 0); // { time: "1970-01-01T00:00:00.000Z", sentTime: 9007199254740991 }
 * ```
 */
export function messageTime(sent: number, now: number): { time: string; sentTime?: number } {
  if (Math.abs(sent - now) <= CLOCK_SKEW_MS) return { time: new Date(sent).toISOString() };
  return { time: new Date(now).toISOString(), sentTime: sent };
}

/** Writes one line (without its newline) to stdout or stderr. */
export type LineWriter = (stream: "stdout" | "stderr", line: string) => void;

/** A received message as `join` prints it. */
export interface PrintedMessage {
  room: string;
  from: MemberInfo;
  text: string;
  time: number;
  direct: boolean;
  status: PeerStatus;
  /** From this machine's history, shown when the room opens (its `time` is when it was sent). */
  earlier?: boolean;
}

/**
 * Receives messages and notices as data instead of lines, so the interactive
 * screen can style them; it must make the text safe to display itself.
 */
export interface OutputSink {
  message(message: PrintedMessage): void;
  notice(type: NoticeType, text: string, fields: Record<string, unknown>): void;
}

/**
 * Writes messages and notices in line or JSON form.
 *
 * @example
 * ```ts
 * const output = new JoinOutput({ json: false });
 * output.notice("join", "alice joined");
 * ```
 */
export class JoinOutput {
  #json: boolean;
  #write: LineWriter = (stream, line) => {
    if (stream === "stderr") {
      writeStderr(`${line}\n`);
      return;
    }
    // One write per event-loop turn, not one per line: a burst of a thousand lines is one syscall.
    this.#stdoutLines.push(line);
    if (this.#stdoutLines.length >= 4096) this.flush();
    else if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      setImmediate(() => this.flush());
    }
  };
  #stdoutLines: string[] = [];
  #flushScheduled = false;

  /** Writes the stdout lines held for this turn. @example `output.flush()` */
  flush(): void {
    this.#flushScheduled = false;
    if (this.#stdoutLines.length === 0) return;
    const text = this.#stdoutLines.join("\n") + "\n";
    this.#stdoutLines = [];
    writeStdout(text);
  }
  #sink: OutputSink | undefined;

  /** @example `new JoinOutput({ json: true })` */
  constructor(options: { json: boolean }) {
    this.#json = options.json;
  }

  /**
   * Hands every message and notice to `sink` from now on (or, with
   * `undefined`, prints them again).
   *
   * @example
   * ```ts
   * output.attach({ message: (m) => screen.show(m), notice: (type, text) => screen.note(text) });
   * ```
   */
  attach(sink: OutputSink | undefined): void {
    this.#sink = sink;
  }

  /**
   * Prints one received message.
   *
   * @example
   * ```ts
   * output.message({ room: "ops", from, text: "hi", time: Date.now(), direct: false, status: "known" });
   * ```
   */
  message(message: PrintedMessage): void {
    if (this.#sink) {
      this.#sink.message(message);
      return;
    }
    if (this.#json) {
      this.#stdout(jsonLine({
        type: message.direct ? "direct" : "message",
        room: message.room,
        from: message.from.nick,
        fingerprint: message.from.fingerprint,
        text: message.text,
        ...messageTime(message.time, Date.now()),
        status: message.status,
      }));
      return;
    }
    const marker = message.direct
      ? " (direct)"
      : message.status === "changed"
      ? " [KEY CHANGED]"
      : "";
    this.#stdout(`${escapeTerminal(message.from.nick)}${marker}: ${escapeTerminal(message.text)}`);
  }

  /**
   * Prints a notice: stderr as `securechat: text`, or a JSON object on stdout.
   *
   * @example
   * ```ts
   * output.notice("leave", "bob left", { nick: "bob" });
   * ```
   */
  notice(type: NoticeType, text: string, fields: Record<string, unknown> = {}): void {
    if (this.#sink) {
      this.#sink.notice(type, text, fields);
      return;
    }
    if (this.#json) {
      this.#stdout(jsonLine({ type, ...fields, text, time: new Date().toISOString() }));
      return;
    }
    this.#write("stderr", `securechat: ${escapeTerminal(text)}`);
  }

  #stdout(line: string): void {
    this.#write("stdout", line);
  }
}
