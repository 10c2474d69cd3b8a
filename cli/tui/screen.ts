/**
 * The chat screen: messages scroll in the area above a status bar and a
 * fixed input line at the bottom.
 *
 * It keeps its own scrollback and redraws from it, so an incoming message
 * never touches the input line, a resize simply re-wraps everything, and
 * PageUp/PageDown can scroll back. Each frame is compared with the previous
 * one and only rows that changed are rewritten, each addressed absolutely
 * and cleared first; the terminal's auto-wrap is off while the screen is
 * up, so a row can never spill into the next. Frames are wrapped in
 * synchronized-update markers (`ESC[?2026h`/`l`), which terminals that know
 * them use to avoid flicker and others ignore.
 *
 * @module
 */

import { renderSpans, type Span, type Style } from "./style.ts";
import { clusterWidth, graphemes } from "./width.ts";

/** Terminal size in character cells. */
export interface ScreenSize {
  columns: number;
  rows: number;
}

/** One item in the scrollback: logical lines; every row after the first is indented. */
export interface Entry {
  lines: Span[][];
  /** Columns of indentation for continuation rows (capped at half the width). */
  indent: number;
}

/** What the input line shows. */
export interface InputView {
  prompt: Span[];
  /**
   * A shorter prompt for narrow terminals; the prompt may take at most half
   * the width, and when neither fits a bare `> ` is used, so the prompt is
   * never cut into the text being typed.
   */
  compactPrompt?: Span[];
  text: string;
  /** UTF-16 index of the cursor in `text`. */
  cursor: number;
}

/** Options for {@linkcode ChatScreen}. */
export interface ChatScreenOptions {
  /** Writes to the terminal. */
  write: (data: string) => void;
  /** The current terminal size. */
  size: () => ScreenSize;
  /** Whether colours are shown. */
  colour: boolean;
  /** Entries kept for scrolling back; older ones are forgotten. Default 2000. */
  scrollback?: number;
}

interface Cell {
  text: string;
  width: number;
  style?: Style;
  /** Inside a URL, past its first character: a row that starts here is not indented. */
  urlTail?: boolean;
}

/** What counts as a URL for wrapping: a scheme and `://`, or `www.`, up to the next space. */
const URL_PATTERN = /\b[a-z][a-z0-9+.-]*:\/\/\S+|\bwww\.\S+/gi;

/** UTF-16 ranges of the URLs in `text`. */
function urlRanges(text: string): Array<[number, number]> {
  return [...text.matchAll(URL_PATTERN)].map((
    match,
  ) => [match.index!, match.index! + match[0].length]);
}

interface WrappedEntry {
  entry: Entry;
  width: number;
  rows: Span[][];
}

const NEWLINE_STYLE: Style = { dim: true };

/**
 * The full-screen chat layout.
 *
 * @example
 * ```ts
 * const screen = new ChatScreen({ write: (s) => process.stdout.write(s), size, colour: true });
 * screen.add({ lines: [[{ text: "12:00 alice: hi" }]], indent: 13 });
 * screen.setInput({ prompt: [{ text: "[ops] bob> " }], text: "", cursor: 0 });
 * screen.render();
 * ```
 */
export class ChatScreen {
  #options: ScreenSettings;
  #entries: WrappedEntry[] = [];
  #status: Span[] = [];
  #input: InputView = { prompt: [], text: "", cursor: 0 };
  #inputOffset = 0;
  #scroll = 0;
  #unseen = 0;
  #previous: string[] = [];
  #previousSize = "";
  #scheduled = false;
  #stopped = false;

  /** @example `new ChatScreen({ write, size, colour: false })` */
  constructor(options: ChatScreenOptions) {
    this.#options = { scrollback: 2000, ...options };
  }

  /** Appends an entry to the scrollback. @example `screen.add({ lines: [[{ text: "hi" }]], indent: 0 })` */
  add(entry: Entry): void {
    const wrapped: WrappedEntry = { entry, width: -1, rows: [] };
    this.#entries.push(wrapped);
    if (this.#entries.length > this.#options.scrollback) this.#entries.shift();
    if (this.#scroll > 0) {
      this.#scroll += this.#rowsOf(wrapped).length;
      this.#unseen++;
    }
    this.#schedule();
  }

  /** Sets the status bar. @example `screen.setStatus([{ text: "[ops] alice" }])` */
  setStatus(spans: Span[]): void {
    this.#status = spans;
    this.#schedule();
  }

  /** Sets the input line. @example `screen.setInput({ prompt, text: editor.text, cursor: editor.cursor })` */
  setInput(view: InputView): void {
    this.#input = view;
    this.#schedule();
  }

  /** Scrolls back half a screen. @example `screen.pageUp()` */
  pageUp(): void {
    const page = Math.max(1, Math.floor(this.#messageRows() / 2));
    const limit = Math.max(0, this.#allRows().length - this.#messageRows());
    this.#scroll = Math.min(limit, this.#scroll + page);
    this.#schedule();
  }

  /** Scrolls forward half a screen. @example `screen.pageDown()` */
  pageDown(): void {
    const page = Math.max(1, Math.floor(this.#messageRows() / 2));
    this.#scroll = Math.max(0, this.#scroll - page);
    if (this.#scroll === 0) this.#unseen = 0;
    this.#schedule();
  }

  /** Forgets what is on the terminal, so the next render redraws every row. @example `screen.invalidate()` */
  invalidate(): void {
    this.#previous = [];
    this.#schedule();
  }

  /** Stops rendering (the terminal is being restored). @example `screen.stop()` */
  stop(): void {
    this.#stopped = true;
  }

  #schedule(): void {
    if (this.#scheduled || this.#stopped) return;
    this.#scheduled = true;
    // Events that arrive together (one read, one record) make one frame.
    queueMicrotask(() => {
      this.#scheduled = false;
      this.render();
    });
  }

  #messageRows(): number {
    return Math.max(0, this.#options.size().rows - 2);
  }

  #rowsOf(wrapped: WrappedEntry): Span[][] {
    const width = Math.max(1, this.#options.size().columns);
    if (wrapped.width !== width) {
      wrapped.rows = wrapEntry(wrapped.entry, width);
      wrapped.width = width;
    }
    return wrapped.rows;
  }

  #allRows(): Span[][] {
    return this.#entries.flatMap((wrapped) => this.#rowsOf(wrapped));
  }

  /** Draws what changed since the last frame. @example `screen.render()` */
  render(): void {
    if (this.#stopped) return;
    const { columns, rows } = this.#options.size();
    const sizeKey = `${columns}x${rows}`;
    if (sizeKey !== this.#previousSize) {
      this.#previousSize = sizeKey;
      this.#previous = [];
    }
    const colour = this.#options.colour;
    const frame: string[] = [];
    const messageRows = this.#messageRows();
    const all = this.#allRows();
    this.#scroll = Math.min(this.#scroll, Math.max(0, all.length - messageRows));
    if (this.#scroll === 0) this.#unseen = 0;
    const end = all.length - this.#scroll;
    const visible = all.slice(Math.max(0, end - messageRows), end);
    for (let i = visible.length; i < messageRows; i++) frame.push("");
    for (const row of visible) frame.push(renderSpans(clipSpans(row, columns), colour));
    if (rows >= 2) frame.push(renderSpans(this.#statusRow(columns), colour));
    const { text: inputRow, cursorColumn } = this.#inputRow(columns);
    frame.push(renderSpans(inputRow, colour));
    const shown = frame.slice(-rows);
    let out = "\x1b[?2026h\x1b[?25l";
    shown.forEach((row, index) => {
      if (this.#previous[index] === row) return;
      out += `\x1b[${index + 1};1H\x1b[0m\x1b[2K${row}`;
    });
    this.#previous = shown;
    out += `\x1b[${Math.max(1, rows)};${cursorColumn + 1}H\x1b[?25h\x1b[?2026l`;
    this.#options.write(out);
  }

  #statusRow(columns: number): Span[] {
    const spans = [...this.#status];
    if (this.#scroll > 0) {
      const more = this.#unseen > 0 ? `${this.#unseen} new below` : "more below";
      spans.push({ text: ` │ ${more} (PgDn)`, style: { bold: true } });
    }
    const clipped = clipSpans(spans, columns);
    const used = clipped.reduce((sum, span) => sum + textWidth(span.text), 0);
    clipped.push({ text: " ".repeat(Math.max(0, columns - used)) });
    return clipped.map((span) => ({ text: span.text, style: { ...span.style, reverse: true } }));
  }

  #inputRow(columns: number): { text: Span[]; cursorColumn: number } {
    const half = Math.max(2, Math.floor(columns / 2));
    const spansWidth = (spans: Span[]) =>
      spans.reduce((sum, span) => sum + textWidth(span.text), 0);
    const candidates = [this.#input.prompt, this.#input.compactPrompt ?? [], [{ text: "> " }]];
    const chosen = candidates.find((spans) => spans.length > 0 && spansWidth(spans) <= half)!;
    const prompt = clipSpans(chosen, half);
    const promptWidth = spansWidth(prompt);
    // One column stays free for the cursor at the end of the line.
    const available = Math.max(1, columns - promptWidth - 1);
    const cells = inputCells(this.#input.text);
    let cursorWidth = 0;
    let offset = 0;
    for (const cell of cells) {
      if (offset >= this.#input.cursor) break;
      offset += cell.source.length;
      cursorWidth += cell.width;
    }
    if (cursorWidth < this.#inputOffset) this.#inputOffset = cursorWidth;
    if (cursorWidth > this.#inputOffset + available) this.#inputOffset = cursorWidth - available;
    const total = cells.reduce((sum, cell) => sum + cell.width, 0);
    // Keep the line full when text was deleted at the end.
    this.#inputOffset = Math.max(0, Math.min(this.#inputOffset, total - available + 1));
    const spans: Span[] = [...prompt];
    let column = 0;
    for (const cell of cells) {
      const start = column;
      column += cell.width;
      if (start < this.#inputOffset || column > this.#inputOffset + available) continue;
      spans.push({ text: cell.text, style: cell.style });
    }
    return { text: spans, cursorColumn: promptWidth + cursorWidth - this.#inputOffset };
  }
}

type ScreenSettings = ChatScreenOptions & { scrollback: number };

interface InputCell {
  source: string;
  text: string;
  width: number;
  style?: Style;
}

/** The input text as cells: newlines and tabs get visible stand-ins. */
function inputCells(text: string): InputCell[] {
  return graphemes(text).map((cluster) => {
    if (cluster === "\n" || cluster === "\r\n") {
      return { source: cluster, text: "⏎", width: 1, style: NEWLINE_STYLE };
    }
    if (cluster === "\t") return { source: cluster, text: "⇥", width: 1, style: NEWLINE_STYLE };
    return { source: cluster, text: cluster, width: clusterWidth(cluster) };
  });
}

function textWidth(text: string): number {
  let width = 0;
  for (const cluster of graphemes(text)) width += clusterWidth(cluster);
  return width;
}

/**
 * Cuts spans to `columns` columns.
 *
 * @example
 * ```ts
 * clipSpans([{ text: "hello" }], 3); // [{ text: "hel" }]
 * ```
 */
export function clipSpans(spans: readonly Span[], columns: number): Span[] {
  const result: Span[] = [];
  let used = 0;
  for (const span of spans) {
    let text = "";
    for (const cluster of graphemes(span.text)) {
      const width = clusterWidth(cluster);
      if (used + width > columns) {
        if (text !== "") result.push({ text, style: span.style });
        return result;
      }
      used += width;
      text += cluster;
    }
    if (text !== "") result.push({ text, style: span.style });
  }
  return result;
}

/**
 * Wraps an entry to `width` columns: at spaces where possible, inside a
 * word only when it is longer than a row. Rows after the first are
 * indented, except rows that continue a URL: those start at the first
 * column, so that a URL copied from the screen has no spaces in it.
 *
 * @example
 * ```ts
 * wrapEntry({ lines: [[{ text: "alice: a long message" }]], indent: 7 }, 16);
 * // [[{ text: "alice: a long" }], [{ text: "       " }, { text: "message" }]]
 * ```
 */
export function wrapEntry(entry: Entry, width: number): Span[][] {
  const indent = width >= 8 ? Math.min(entry.indent, Math.floor(width / 2)) : 0;
  const rows: Span[][] = [];
  entry.lines.forEach((line, lineIndex) => {
    let cells: Cell[] = [];
    const urls = urlRanges(line.map((span) => span.text).join(""));
    let offset = 0;
    for (const span of line) {
      for (const cluster of graphemes(span.text)) {
        const urlTail = urls.some(([start, end]) => offset > start && offset < end);
        cells.push({ text: cluster, width: clusterWidth(cluster), style: span.style, urlTail });
        offset += cluster.length;
      }
    }
    let first = lineIndex === 0;
    do {
      const rowIndent = first || cells[0]?.urlTail ? 0 : indent;
      const available = Math.max(1, width - rowIndent);
      let used = 0;
      let cut = cells.length;
      for (let i = 0; i < cells.length; i++) {
        if (used + cells[i].width > available && i > 0) {
          cut = i;
          break;
        }
        used += cells[i].width;
      }
      let rest = cells.slice(cut);
      let row = cells.slice(0, cut);
      if (rest.length > 0) {
        // Break at the last space, but not inside the first row's prefix (time and nick).
        let space = -1;
        let column = 0;
        const minimum = first ? indent : 1;
        row.forEach((cell, index) => {
          if (cell.text === " " && column >= minimum) space = index;
          column += cell.width;
        });
        if (space > 0) {
          rest = [...row.slice(space + 1), ...rest];
          row = row.slice(0, space);
        }
        while (rest.length > 0 && rest[0].text === " ") rest = rest.slice(1);
      }
      const spans = cellsToSpans(row);
      rows.push(rowIndent === 0 ? spans : [{ text: " ".repeat(rowIndent) }, ...spans]);
      cells = rest;
      first = false;
    } while (cells.length > 0);
  });
  return rows;
}

function cellsToSpans(cells: Cell[]): Span[] {
  const spans: Span[] = [];
  for (const cell of cells) {
    const last = spans[spans.length - 1];
    if (last !== undefined && last.style === cell.style) last.text += cell.text;
    else spans.push({ text: cell.text, style: cell.style });
  }
  return spans;
}
