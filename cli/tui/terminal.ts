/**
 * Takes over the terminal for the chat screen and gives it back exactly as
 * it was.
 *
 * While active: raw mode (keys arrive one by one, Ctrl-C is a key), the
 * alternate screen (the shell's screen comes back on exit, like less or
 * irssi), bracketed paste, and auto-wrap off. {@linkcode Terminal.restore}
 * undoes each of these and is idempotent; it also runs on process exit, and
 * SIGINT, SIGTERM and SIGHUP end the chat cleanly, so the shell is never
 * left in raw mode.
 *
 * @module
 */

import process from "node:process";
import type { ScreenSize } from "./screen.ts";

/** Enter: alternate screen, clear, bracketed paste on, auto-wrap off, keypad normal. */
const ENTER = "\x1b[?1049h\x1b[H\x1b[2J\x1b[?2004h\x1b[?7l";
/** Leave: reset attributes, auto-wrap on, bracketed paste off, cursor visible, main screen. */
const LEAVE = "\x1b[0m\x1b[?7h\x1b[?2004l\x1b[?25h\x1b[?1049l";

/** The streams a terminal is made of: TTY `process.stdin` and `process.stdout`. */
export interface TerminalStreams {
  input: NodeJS.ReadStream;
  output: NodeJS.WriteStream;
}

/**
 * The terminal, in chat-screen mode between {@linkcode Terminal.enter} and
 * {@linkcode Terminal.restore}.
 *
 * @example
 * ```ts
 * const terminal = new Terminal({ input: process.stdin, output: process.stdout });
 * terminal.enter({ onResize: () => screen.render(), onSignal: () => app.quit() });
 * try { await app.run(); } finally { terminal.restore(); }
 * ```
 */
export class Terminal {
  #input: NodeJS.ReadStream;
  #output: NodeJS.WriteStream;
  #active = false;
  #wasRaw = false;
  #cleanups: Array<() => void> = [];

  /** @example `new Terminal({ input: process.stdin, output: process.stdout })` */
  constructor(streams: TerminalStreams) {
    this.#input = streams.input;
    this.#output = streams.output;
  }

  /** The input stream, for the key reader. @example `terminal.input` */
  get input(): NodeJS.ReadStream {
    return this.#input;
  }

  /** The size in cells (80x24 if the terminal does not say). @example `terminal.size()` */
  size(): ScreenSize {
    return { columns: this.#output.columns || 80, rows: this.#output.rows || 24 };
  }

  /** Writes raw output. @example `terminal.write("\x07")` */
  write(data: string): void {
    if (this.#active) this.#send(data);
  }

  #send(data: string): void {
    try {
      this.#output.write(data);
    } catch {
      // The terminal went away (SIGHUP): there is nothing left to draw on.
    }
  }

  /**
   * Switches the terminal to chat-screen mode.
   *
   * @example
   * ```ts
   * terminal.enter({ onResize: () => screen.invalidate(), onSignal: () => quit() });
   * ```
   */
  enter(handlers: { onResize: () => void; onSignal: () => void }): void {
    if (this.#active) return;
    this.#active = true;
    this.#wasRaw = this.#input.isRaw === true;
    this.#input.setRawMode(true);
    this.#send(ENTER);
    const onResize = () => handlers.onResize();
    this.#output.on("resize", onResize);
    this.#cleanups.push(() => this.#output.off("resize", onResize));
    const onExit = () => this.restore();
    process.on("exit", onExit);
    this.#cleanups.push(() => process.off("exit", onExit));
    // Ctrl-C is a key in raw mode; these come from elsewhere (kill, a closed terminal window).
    for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
      const onSignal = () => handlers.onSignal();
      try {
        process.on(signal, onSignal);
        this.#cleanups.push(() => process.off(signal, onSignal));
      } catch {
        // A runtime that cannot listen for this signal keeps its default action.
      }
    }
  }

  /**
   * Gives the terminal back: main screen, cooked mode, cursor visible.
   *
   * @example
   * ```ts
   * terminal.restore();
   * ```
   */
  restore(): void {
    if (!this.#active) return;
    this.#active = false;
    for (const cleanup of this.#cleanups.splice(0)) cleanup();
    this.#send(LEAVE);
    try {
      this.#input.setRawMode(this.#wasRaw);
    } catch {
      // stdin already closed: nothing left to restore.
    }
  }
}
