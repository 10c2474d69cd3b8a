/**
 * How `join` prints: one stdout line per received message (`nick: text`, or
 * a JSON object with `--json`), and notices on stderr (or as typed JSON
 * objects on stdout with `--json`).
 *
 * Text from other members is untrusted: control characters are escaped so
 * that a message can neither forge extra lines nor drive the terminal.
 *
 * @module
 */

import process from "node:process";
import type { MemberInfo } from "../lib/e2e/room.ts";

/** Kinds of notice, as the `type` field of JSON notices. */
export type NoticeType =
  | "relay"
  | "welcome"
  | "join"
  | "leave"
  | "new-member"
  | "key-changed"
  | "warning"
  | "error"
  | "sent";

/** Trust status shown beside a member. */
export type PeerStatus = "new" | "known" | "verified" | "changed";

/**
 * Escapes control characters (C0, DEL, C1) and line and paragraph separators
 * as `\n`, `\u001b` and so on, leaving tabs and printable text alone.
 *
 * @example
 * ```ts
 * escapeControls("a\nb\x1b[2J"); // "a\\nb\\u001b[2J"
 * ```
 */
export function escapeControls(text: string): string {
  // deno-lint-ignore no-control-regex -- matching control characters is the point
  return text.replace(/[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]/g, (char) => {
    if (char === "\n") return "\\n";
    if (char === "\r") return "\\r";
    return `\\u${char.charCodeAt(0).toString(16).padStart(4, "0")}`;
  });
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
      process.stderr.write(`${line}\n`);
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
    process.stdout.write(text);
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
      this.#stdout(JSON.stringify({
        type: message.direct ? "direct" : "message",
        room: message.room,
        from: message.from.nick,
        fingerprint: message.from.fingerprint,
        text: message.text,
        time: new Date(message.time).toISOString(),
        status: message.status,
      }));
      return;
    }
    const marker = message.direct
      ? " (direct)"
      : message.status === "changed"
      ? " [KEY CHANGED]"
      : "";
    this.#stdout(`${message.from.nick}${marker}: ${escapeControls(message.text)}`);
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
      this.#stdout(JSON.stringify({ type, ...fields, text, time: new Date().toISOString() }));
      return;
    }
    this.#write("stderr", `securechat: ${escapeControls(text)}`);
  }

  #stdout(line: string): void {
    this.#write("stdout", line);
  }
}
