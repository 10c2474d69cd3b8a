/**
 * The input line's editing state: text, cursor, history and tab completion,
 * with no I/O so it can be tested directly.
 *
 * The cursor moves by grapheme cluster, so an emoji with a skin tone or a
 * letter with a combining accent is one step and one deletion. History is
 * kept in memory only: what was typed in an end-to-end encrypted chat is not
 * written to disk.
 *
 * @module
 */

import { graphemes } from "./width.ts";

/** Lines of history kept. */
const HISTORY_LIMIT = 500;

/** What a completion provider found for the word at the cursor. */
export interface Completion {
  /** Where the word being completed starts (UTF-16 index). */
  start: number;
  /** Full replacements for the text from `start` to the cursor, best first. */
  candidates: string[];
}

/** Finds completions for `text` with the cursor at `cursor`. */
export type CompletionProvider = (text: string, cursor: number) => Completion;

interface CompletionCycle {
  start: number;
  candidates: string[];
  index: number;
}

/**
 * An editable line with history and completion.
 *
 * @example
 * ```ts
 * const editor = new LineEditor();
 * editor.insert("helo");
 * editor.left();
 * editor.insert("l");
 * editor.submit(); // "hello", now in history
 * ```
 */
export class LineEditor {
  #text = "";
  #cursor = 0;
  #history: string[] = [];
  /** Position in history while browsing it; equals history length when not browsing. */
  #historyIndex = 0;
  #draft = "";
  #cycle: CompletionCycle | undefined;

  /** The text being edited. @example `editor.text` */
  get text(): string {
    return this.#text;
  }

  /** The cursor, a UTF-16 index on a cluster boundary. @example `editor.cursor` */
  get cursor(): number {
    return this.#cursor;
  }

  /** Past submitted lines, oldest first. @example `editor.history` */
  get history(): readonly string[] {
    return this.#history;
  }

  /**
   * Replaces the text, putting the cursor at the end (or at `cursor`).
   *
   * @example
   * ```ts
   * editor.set("/msg bob ");
   * ```
   */
  set(text: string, cursor: number = text.length): void {
    this.#text = text;
    this.#cursor = Math.max(0, Math.min(cursor, text.length));
    this.#cycle = undefined;
  }

  /** Inserts text at the cursor. @example `editor.insert("你好")` */
  insert(text: string): void {
    this.#edit(
      this.#text.slice(0, this.#cursor) + text + this.#text.slice(this.#cursor),
      this.#cursor + text.length,
    );
  }

  /** Deletes the cluster before the cursor. @example `editor.backspace()` */
  backspace(): void {
    const start = this.#previousBoundary(this.#cursor);
    this.#edit(this.#text.slice(0, start) + this.#text.slice(this.#cursor), start);
  }

  /** Deletes the cluster under the cursor. @example `editor.deleteForward()` */
  deleteForward(): void {
    const end = this.#nextBoundary(this.#cursor);
    this.#edit(this.#text.slice(0, this.#cursor) + this.#text.slice(end), this.#cursor);
  }

  /** Moves one cluster left. @example `editor.left()` */
  left(): void {
    this.#move(this.#previousBoundary(this.#cursor));
  }

  /** Moves one cluster right. @example `editor.right()` */
  right(): void {
    this.#move(this.#nextBoundary(this.#cursor));
  }

  /** Moves to the start. @example `editor.home()` */
  home(): void {
    this.#move(0);
  }

  /** Moves to the end. @example `editor.end()` */
  end(): void {
    this.#move(this.#text.length);
  }

  /** Moves to the start of the previous word. @example `editor.wordLeft()` */
  wordLeft(): void {
    this.#move(this.#wordStart());
  }

  /** Moves past the end of the next word. @example `editor.wordRight()` */
  wordRight(): void {
    let index = this.#cursor;
    while (index < this.#text.length && /\s/.test(this.#text[index])) index++;
    while (index < this.#text.length && !/\s/.test(this.#text[index])) index++;
    this.#move(index);
  }

  /** Deletes the word before the cursor (Ctrl-W). @example `editor.deleteWordBack()` */
  deleteWordBack(): void {
    const start = this.#wordStart();
    this.#edit(this.#text.slice(0, start) + this.#text.slice(this.#cursor), start);
  }

  /** Deletes from the start to the cursor (Ctrl-U). @example `editor.killToStart()` */
  killToStart(): void {
    this.#edit(this.#text.slice(this.#cursor), 0);
  }

  /** Deletes from the cursor to the end (Ctrl-K). @example `editor.killToEnd()` */
  killToEnd(): void {
    this.#edit(this.#text.slice(0, this.#cursor), this.#cursor);
  }

  /**
   * Shows the previous history line (the text being typed is kept as a draft).
   *
   * @example
   * ```ts
   * editor.historyUp();
   * ```
   */
  historyUp(): void {
    if (this.#historyIndex === 0) return;
    if (this.#historyIndex === this.#history.length) this.#draft = this.#text;
    this.#historyIndex--;
    this.set(this.#history[this.#historyIndex]);
  }

  /** Shows the next history line, then the draft. @example `editor.historyDown()` */
  historyDown(): void {
    if (this.#historyIndex >= this.#history.length) return;
    this.#historyIndex++;
    this.set(
      this.#historyIndex === this.#history.length ? this.#draft : this.#history[this.#historyIndex],
    );
  }

  /**
   * Returns the text, records it in history and empties the line.
   *
   * @example
   * ```ts
   * const line = editor.submit();
   * ```
   */
  submit(): string {
    const text = this.#text;
    if (text !== "" && this.#history[this.#history.length - 1] !== text) {
      this.#history.push(text);
      if (this.#history.length > HISTORY_LIMIT) this.#history.shift();
    }
    this.#historyIndex = this.#history.length;
    this.#draft = "";
    this.set("");
    return text;
  }

  /**
   * Completes the word at the cursor. The first press inserts the first
   * candidate; pressing again cycles through the others, like irssi and
   * weechat. Returns false when there is nothing to complete.
   *
   * @example
   * ```ts
   * editor.set("/ve");
   * editor.complete(() => ({ start: 0, candidates: ["/verify "] })); // "/verify "
   * ```
   */
  complete(provider: CompletionProvider): boolean {
    if (this.#cycle !== undefined) {
      const cycle = this.#cycle;
      cycle.index = (cycle.index + 1) % cycle.candidates.length;
      this.#replaceCompletion(cycle);
      return true;
    }
    const { start, candidates } = provider(this.#text, this.#cursor);
    if (candidates.length === 0) return false;
    const cycle = { start, candidates, index: 0 };
    this.#replaceCompletion(cycle);
    return true;
  }

  #replaceCompletion(cycle: CompletionCycle): void {
    const candidate = cycle.candidates[cycle.index];
    this.#text = this.#text.slice(0, cycle.start) + candidate + this.#text.slice(this.#cursor);
    this.#cursor = cycle.start + candidate.length;
    this.#cycle = cycle.candidates.length > 1 ? cycle : undefined;
  }

  #edit(text: string, cursor: number): void {
    this.#text = text;
    this.#cursor = cursor;
    this.#cycle = undefined;
  }

  #move(cursor: number): void {
    this.#cursor = cursor;
    this.#cycle = undefined;
  }

  #wordStart(): number {
    let index = this.#cursor;
    while (index > 0 && /\s/.test(this.#text[index - 1])) index--;
    while (index > 0 && !/\s/.test(this.#text[index - 1])) index--;
    // Never land inside a cluster (a space followed by a combining mark is one).
    return this.#boundaryAtOrBefore(index);
  }

  #boundaries(): number[] {
    const result = [0];
    let offset = 0;
    for (const cluster of graphemes(this.#text)) {
      offset += cluster.length;
      result.push(offset);
    }
    return result;
  }

  #boundaryAtOrBefore(index: number): number {
    let best = 0;
    for (const boundary of this.#boundaries()) if (boundary <= index) best = boundary;
    return best;
  }

  #previousBoundary(index: number): number {
    let best = 0;
    for (const boundary of this.#boundaries()) if (boundary < index) best = boundary;
    return best;
  }

  #nextBoundary(index: number): number {
    for (const boundary of this.#boundaries()) if (boundary > index) return boundary;
    return this.#text.length;
  }
}
