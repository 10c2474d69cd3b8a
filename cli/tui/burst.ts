/**
 * Telling a paste from typing when the terminal does not bracket pastes.
 *
 * Such a terminal sends pasted text as if it were typed: every newline
 * arrives as Enter, and the whole paste in one read or a few reads
 * milliseconds apart. A person never presses Enter and then another key
 * within a few milliseconds. So each Enter waits {@linkcode BURST_GAP_MS}:
 * if more input follows at once it was a newline inside a paste, and the
 * paste stays in the input line as one message (a trailing newline of the
 * paste is dropped, as with bracketed paste); otherwise it sends.
 *
 * @module
 */

/** How long an Enter waits for more input before it counts as typed. */
export const BURST_GAP_MS = 25;

/** What {@linkcode EnterBurst} calls. */
export interface EnterBurstHandlers {
  /** An Enter that was part of a paste: insert a newline in the input line. */
  newline: () => void;
  /** An Enter that was typed: send the input line. */
  submit: () => void;
  /** A paste with `lines` lines has ended; it is in the input line. */
  pasted: (lines: number) => void;
}

/**
 * Decides, for every Enter, whether it was typed or pasted.
 *
 * @example
 * ```ts
 * const burst = new EnterBurst({ newline: () => editor.insert("\n"), submit, pasted });
 * // on each key: if (key is Enter) burst.enter(); else { burst.other(); handle(key); }
 * ```
 */
export class EnterBurst {
  #handlers: EnterBurstHandlers;
  #gapMs: number;
  #pending = false;
  #newlines = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;

  /** @example `new EnterBurst({ newline, submit, pasted })` */
  constructor(handlers: EnterBurstHandlers, gapMs = BURST_GAP_MS) {
    this.#handlers = handlers;
    this.#gapMs = gapMs;
  }

  /** An Enter key. @example `burst.enter()` */
  enter(): void {
    this.#resolvePendingAsNewline();
    this.#pending = true;
    this.#arm();
  }

  /** Any other input, reported before it is handled. @example `burst.other()` */
  other(): void {
    if (this.#resolvePendingAsNewline() || this.#newlines > 0) this.#arm();
  }

  /** Forgets a pending Enter (leaving the chat). @example `burst.stop()` */
  stop(): void {
    clearTimeout(this.#timer);
    this.#pending = false;
    this.#newlines = 0;
  }

  /** A pending Enter followed at once by more input was a newline in a paste. */
  #resolvePendingAsNewline(): boolean {
    if (!this.#pending) return false;
    this.#pending = false;
    this.#newlines++;
    this.#handlers.newline();
    return true;
  }

  #arm(): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#quiet(), this.#gapMs);
  }

  #quiet(): void {
    const newlines = this.#newlines;
    const pending = this.#pending;
    this.#pending = false;
    this.#newlines = 0;
    if (newlines === 0) {
      if (pending) this.#handlers.submit();
      return;
    }
    // A paste ended; its final Enter, if any, is dropped rather than sending it unread.
    this.#handlers.pasted(newlines + 1);
  }
}
