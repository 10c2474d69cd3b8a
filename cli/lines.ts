/**
 * Lines of stdin as `join` sends them: split on `\n` (a `\r` before it is
 * dropped), each decoded as UTF-8 on its own, so a line that is not valid
 * UTF-8 is caught and named instead of silently getting U+FFFD.
 *
 * @module
 */

/** One line read from the stream. */
export type InputLine =
  | { lineNumber: number; text: string; bytes: number; replaced: boolean }
  | { lineNumber: number; invalidAt: number; bytes: number };

/** Options for {@linkcode LineSplitter}. */
export interface LineSplitterOptions {
  /** Receives every line, in order. */
  onLine: (line: InputLine) => void;
  /** Decode invalid UTF-8 with U+FFFD instead of reporting it. */
  allowInvalid: boolean;
}

const NEWLINE = 0x0a;
const CARRIAGE_RETURN = 0x0d;

/**
 * Splits byte chunks into lines and decodes each.
 *
 * @example
 * ```ts
 * const splitter = new LineSplitter({ onLine: (line) => console.log(line), allowInvalid: false });
 * splitter.push(new TextEncoder().encode("one\ntwo"));
 * splitter.end(); // "two" is a line too
 * ```
 */
export class LineSplitter {
  #options: LineSplitterOptions;
  #strict = new TextDecoder("utf-8", { fatal: true });
  #lenient = new TextDecoder("utf-8");
  #partial: Uint8Array[] = [];
  #lineNumber = 0;

  /** @example `new LineSplitter({ onLine, allowInvalid: false })` */
  constructor(options: LineSplitterOptions) {
    this.#options = options;
  }

  /** Adds a chunk; every line it completes is reported. @example `splitter.push(chunk)` */
  push(chunk: Uint8Array): void {
    let start = 0;
    while (start < chunk.length) {
      const end = chunk.indexOf(NEWLINE, start);
      if (end === -1) {
        // Kept as a copy: the stream may reuse the chunk's memory.
        this.#partial.push(chunk.slice(start));
        return;
      }
      let line = chunk.subarray(start, end);
      if (this.#partial.length > 0) {
        this.#partial.push(line);
        line = joinBytes(this.#partial);
        this.#partial = [];
      }
      this.#emit(line);
      start = end + 1;
    }
  }

  /** Reports what is left as a last line (input that does not end in a newline). @example `splitter.end()` */
  end(): void {
    if (this.#partial.length === 0) return;
    const line = joinBytes(this.#partial);
    this.#partial = [];
    this.#emit(line);
  }

  #emit(raw: Uint8Array): void {
    const lineNumber = ++this.#lineNumber;
    const line = raw.length > 0 && raw[raw.length - 1] === CARRIAGE_RETURN
      ? raw.subarray(0, raw.length - 1)
      : raw;
    try {
      const text = this.#strict.decode(line);
      this.#options.onLine({ lineNumber, text, bytes: line.length, replaced: false });
    } catch {
      if (this.#options.allowInvalid) {
        const text = this.#lenient.decode(line);
        this.#options.onLine({ lineNumber, text, bytes: line.length, replaced: true });
      } else {
        this.#options.onLine({ lineNumber, invalidAt: firstInvalidByte(line), bytes: line.length });
      }
    }
  }
}

function joinBytes(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/**
 * The 0-based offset of the first byte that starts an invalid UTF-8
 * sequence (RFC 3629: no overlong forms, no surrogates, at most U+10FFFF).
 *
 * @example
 * ```ts
 * firstInvalidByte(new Uint8Array([0x61, 0xff])); // 1
 * ```
 */
export function firstInvalidByte(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i];
    let length: number;
    let min = 0x80;
    let max = 0xbf;
    if (b < 0x80) {
      i++;
      continue;
    } else if (b >= 0xc2 && b <= 0xdf) length = 2;
    else if (b >= 0xe0 && b <= 0xef) {
      length = 3;
      if (b === 0xe0) min = 0xa0;
      if (b === 0xed) max = 0x9f;
    } else if (b >= 0xf0 && b <= 0xf4) {
      length = 4;
      if (b === 0xf0) min = 0x90;
      if (b === 0xf4) max = 0x8f;
    } else return i;
    if (i + length > bytes.length) return i;
    if (bytes[i + 1] < min || bytes[i + 1] > max) return i;
    for (let k = 2; k < length; k++) {
      if (bytes[i + k] < 0x80 || bytes[i + k] > 0xbf) return i;
    }
    i += length;
  }
  return -1;
}
