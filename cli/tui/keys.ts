/**
 * Keyboard input: `node:readline`'s keypress decoder (escape sequences,
 * Alt/Meta, UTF-8 split across reads) turned into two kinds of event, a key
 * and a paste.
 *
 * A paste arrives between the bracketed-paste markers `ESC[200~` and
 * `ESC[201~` (the terminal sends them once the screen has enabled the mode
 * with `ESC[?2004h`); everything in between, newlines included, becomes one
 * paste event, so a multi-line paste is one message, never several. Node
 * names the markers `paste-start` and `paste-end`; Deno's port of readline
 * reports them as `ESC[200` followed by a separate `~`, which is handled
 * here too.
 *
 * @module
 */

import { emitKeypressEvents } from "node:readline";

/** One key press. */
export interface Key {
  /** readline's name: "a", "return", "up", "backspace", "tab", "pageup", ...; may be undefined for other characters. */
  name?: string;
  /** The character typed, for printable keys. */
  text?: string;
  ctrl: boolean;
  meta: boolean;
  shift: boolean;
}

/** What the reader reports. */
export type InputEvent = { type: "key"; key: Key } | { type: "paste"; text: string };

interface ReadlineKey {
  name?: string;
  sequence?: string;
  ctrl?: boolean;
  meta?: boolean;
  shift?: boolean;
}

/** The stream side of a terminal's input: a TTY `process.stdin`. */
export interface KeyInput {
  on(event: "keypress", listener: (text: string | undefined, key?: ReadlineKey) => void): unknown;
  off(event: "keypress", listener: (text: string | undefined, key?: ReadlineKey) => void): unknown;
  resume(): unknown;
  pause(): unknown;
}

const PASTE_START = "\x1b[200~";
const PASTE_END = "\x1b[201~";

/**
 * Reads keys and pastes from a terminal in raw mode.
 *
 * @example
 * ```ts
 * const reader = new KeyReader(process.stdin, (event) => console.log(event));
 * reader.start();
 * // ...
 * reader.stop();
 * ```
 */
export class KeyReader {
  #input: KeyInput;
  #onEvent: (event: InputEvent) => void;
  #paste: string | undefined;
  #swallowTilde = false;
  #listener = (text: string | undefined, key?: ReadlineKey) => this.#keypress(text, key);

  /** @example `new KeyReader(process.stdin, handle)` */
  constructor(input: KeyInput, onEvent: (event: InputEvent) => void) {
    this.#input = input;
    this.#onEvent = onEvent;
  }

  /** Starts reading. @example `reader.start()` */
  start(): void {
    emitKeypressEvents(this.#input as unknown as NodeJS.ReadableStream);
    this.#input.on("keypress", this.#listener);
    this.#input.resume();
  }

  /** Stops reading and lets the input go idle. @example `reader.stop()` */
  stop(): void {
    this.#input.off("keypress", this.#listener);
    this.#input.pause();
  }

  #keypress(text: string | undefined, key?: ReadlineKey): void {
    const sequence = key?.sequence ?? text ?? "";
    if (this.#swallowTilde) {
      this.#swallowTilde = false;
      if (text === "~") return;
    }
    if (key?.name === "paste-start" || sequence === PASTE_START || sequence === "\x1b[200") {
      this.#swallowTilde = sequence === "\x1b[200";
      this.#paste = "";
      return;
    }
    if (key?.name === "paste-end" || sequence === PASTE_END || sequence === "\x1b[201") {
      this.#swallowTilde = sequence === "\x1b[201";
      const pasted = this.#paste ?? "";
      this.#paste = undefined;
      this.#onEvent({ type: "paste", text: pasted });
      return;
    }
    if (this.#paste !== undefined) {
      // Escape sequences inside a paste (text undefined) are dropped: they are not text.
      if (text !== undefined) this.#paste += text;
      return;
    }
    this.#onEvent({
      type: "key",
      key: {
        name: key?.name,
        text,
        ctrl: key?.ctrl === true,
        meta: key?.meta === true,
        shift: key?.shift === true,
      },
    });
  }
}

/**
 * Normalises pasted text: CRLF and CR become LF, one trailing newline is
 * dropped, and control characters other than newline and tab are removed.
 *
 * @example
 * ```ts
 * cleanPaste("one\r\ntwo\r\n"); // "one\ntwo"
 * ```
 */
export function cleanPaste(text: string): string {
  return text
    .replace(/\r\n?/g, "\n")
    .replace(/\n$/, "")
    // deno-lint-ignore no-control-regex -- removing control characters is the point
    .replace(/[\x00-\x08\x0b-\x1f\x7f-\x9f]/g, "");
}
