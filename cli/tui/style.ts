/**
 * Styled text for the chat screen: spans of text with attributes, turned into
 * ANSI SGR sequences, with colour only where the terminal and the user want
 * it.
 *
 * Colour is off when `NO_COLOR` is set to anything non-empty
 * (https://no-color.org), when `TERM` is `dumb`, or when the terminal reports
 * fewer than 8 colours. Without colour, bold, reverse and underline still
 * mark what matters (warnings, mentions): they are attributes, not colours.
 *
 * @module
 */

import process from "node:process";
import { escapeTerminal } from "../output.ts";

/** ANSI foreground colours (SGR codes 31–37 and bright 91–97). */
export const Colour = {
  red: 31,
  green: 32,
  yellow: 33,
  blue: 34,
  magenta: 35,
  cyan: 36,
  brightRed: 91,
  brightGreen: 92,
  brightYellow: 93,
  brightBlue: 94,
  brightMagenta: 95,
  brightCyan: 96,
} as const;

/** Attributes of a span. */
export interface Style {
  /** Foreground colour, an SGR code from {@linkcode Colour}. */
  fg?: number;
  bold?: boolean;
  dim?: boolean;
  underline?: boolean;
  reverse?: boolean;
}

/** A run of text in one style. */
export interface Span {
  text: string;
  style?: Style;
}

/** Nick colours: red is kept for warnings. */
const NICK_COLOURS = [
  Colour.green,
  Colour.yellow,
  Colour.blue,
  Colour.magenta,
  Colour.cyan,
  Colour.brightGreen,
  Colour.brightYellow,
  Colour.brightBlue,
  Colour.brightMagenta,
  Colour.brightCyan,
];

/**
 * A stable colour for a nick, so each person keeps one colour.
 *
 * @example
 * ```ts
 * const style = { fg: nickColour("alice"), bold: true };
 * ```
 */
export function nickColour(nick: string): number {
  // FNV-1a: small, stable across runs and platforms.
  let hash = 0x811c9dc5;
  for (let i = 0; i < nick.length; i++) {
    hash ^= nick.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return NICK_COLOURS[hash % NICK_COLOURS.length];
}

/**
 * Whether to use colour on this terminal, from the environment and what the
 * output stream reports.
 *
 * @example
 * ```ts
 * const colour = colourWanted(process.env, process.stdout);
 * ```
 */
export function colourWanted(
  env: Record<string, string | undefined> = process.env,
  stream: { getColorDepth?: () => number } = process.stdout,
): boolean {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== "") return false;
  if (env.TERM === "dumb") return false;
  try {
    return (stream.getColorDepth?.() ?? 8) >= 3;
  } catch {
    return true;
  }
}

/**
 * The SGR sequence that switches from any state to `style` (it starts with a
 * reset, so spans never inherit attributes from one another).
 *
 * @example
 * ```ts
 * sgr({ fg: Colour.red, bold: true }, true); // "\x1b[0;1;31m"
 * sgr({ fg: Colour.red, bold: true }, false); // "\x1b[0;1m"
 * ```
 */
export function sgr(style: Style | undefined, colour: boolean): string {
  const codes = ["0"];
  if (style?.bold) codes.push("1");
  if (style?.dim) codes.push("2");
  if (style?.underline) codes.push("4");
  if (style?.reverse) codes.push("7");
  if (colour && style?.fg !== undefined) codes.push(String(style.fg));
  return `\x1b[${codes.join(";")}m`;
}

/**
 * Renders spans as text with SGR sequences, ending in a reset. Span text
 * goes through the terminal escaping once more ({@linkcode escapeTerminal}),
 * so no string that reaches the screen by any path can carry a control
 * sequence; text escaped before is unchanged by it.
 *
 * @example
 * ```ts
 * renderSpans([{ text: "alice", style: { bold: true } }, { text: ": hi" }], true);
 * ```
 */
export function renderSpans(spans: readonly Span[], colour: boolean): string {
  let out = "";
  let current = "";
  for (const span of spans) {
    if (span.text === "") continue;
    const code = sgr(span.style, colour);
    if (code !== current) {
      out += code;
      current = code;
    }
    out += escapeTerminal(span.text);
  }
  return current === "" || current === "\x1b[0m" ? out : `${out}\x1b[0m`;
}
