/**
 * What the chat screen shows for each message and notice: a timestamp, the
 * sender's nick in its colour with a trust marker, and text made safe to
 * display.
 *
 * Trust markers, beside every name:
 * - `✓` verified: you compared safety numbers (`/verify`);
 * - `·` known: the key seen before under this nick, not verified;
 * - `+` new: the first time this nick is seen; its key is now remembered;
 * - `!` changed: not the key remembered for this nick. Every message from
 *   that member carries `[KEY CHANGED]` until you verify the new key.
 *
 * Text from members is untrusted. Every string from the network goes
 * through the terminal escaping of cli/output.ts ({@linkcode escapeTerminal}):
 * control characters are shown escaped (`\u001b`), as are the bidirectional
 * overrides and isolates that could make text read differently from what
 * was sent; newlines in a message start a new indented row of the same
 * message.
 *
 * @module
 */

import type { PeerStatus } from "../output.ts";
import { escapeTerminal } from "../output.ts";
import type { Entry } from "./screen.ts";
import { Colour, nickColour, type Span, type Style } from "./style.ts";
import { stringWidth } from "./width.ts";

/** Kinds of notice the screen styles differently. */
export type NoticeKind = "join" | "leave" | "info" | "warning" | "error";

const TIME_STYLE: Style = { dim: true };
const MENTION_TIME_STYLE: Style = { fg: Colour.yellow, bold: true, reverse: true };
const CHANGED_STYLE: Style = { fg: Colour.red, bold: true, reverse: true };
const ALARM_STYLE: Style = { fg: Colour.red, bold: true, reverse: true };
const DIRECT_STYLE: Style = { fg: Colour.magenta, bold: true };

const NOTICE_STYLES: Record<NoticeKind, { mark: string; markStyle: Style; text?: Style }> = {
  join: { mark: "-->", markStyle: { fg: Colour.green, bold: true } },
  leave: { mark: "<--", markStyle: { fg: Colour.red }, text: { dim: true } },
  info: { mark: "-!-", markStyle: { fg: Colour.cyan, bold: true } },
  warning: {
    mark: "-!-",
    markStyle: { fg: Colour.yellow, bold: true },
    text: { fg: Colour.yellow, bold: true },
  },
  error: {
    mark: "-!-",
    markStyle: { fg: Colour.red, bold: true },
    text: { fg: Colour.red, bold: true },
  },
};

const TRUST_MARKERS: Record<PeerStatus, { text: string; style: Style }> = {
  verified: { text: "✓", style: { fg: Colour.green, bold: true } },
  known: { text: "·", style: { dim: true } },
  new: { text: "+", style: { fg: Colour.cyan } },
  changed: { text: "!", style: CHANGED_STYLE },
};

/** What each trust marker means, for `/help` and `/who`. */
export const TRUST_LEGEND = [
  "✓ verified (safety number compared)",
  "· known key, not verified",
  "+ first time seen",
  "! KEY CHANGED",
].join("   ");

/**
 * Formats a clock time as `HH:MM` in local time.
 *
 * @example
 * ```ts
 * timestamp(new Date(2024, 0, 1, 9, 5)); // "09:05"
 * ```
 */
export function timestamp(date: Date): string {
  return `${String(date.getHours()).padStart(2, "0")}:${
    String(date.getMinutes()).padStart(2, "0")
  }`;
}

/**
 * Splits untrusted text into display lines: control characters and bidi
 * controls escaped, tabs as spaces.
 *
 * @example
 * ```ts
 * displayLines("a\tb\nc\x1b[2J"); // ["a    b", "c\\u001b[2J"]
 * ```
 */
export function displayLines(text: string): string[] {
  return text.split("\n").map((line) => escapeTerminal(line.replace(/\t/g, "    ")));
}

/**
 * The marker and nick of a member, in the nick's colour.
 *
 * @example
 * ```ts
 * nickSpans("bob", "verified"); // [{ text: "✓", ... }, { text: "bob", ... }]
 * ```
 */
export function nickSpans(nick: string, status?: PeerStatus): Span[] {
  const spans: Span[] = [];
  if (status !== undefined) spans.push({ ...TRUST_MARKERS[status] });
  const shown = escapeTerminal(nick);
  spans.push({
    text: shown,
    style: status === "changed" ? CHANGED_STYLE : { fg: nickColour(nick), bold: true },
  });
  return spans;
}

/** A message to show. */
export interface MessageView {
  time: Date;
  /** The sender. */
  nick: string;
  /** The sender's trust status; undefined for this user's own messages. */
  status?: PeerStatus;
  text: string;
  /** For a direct message: the other party (the recipient when sent by this user). */
  direct?: { to?: string; toStatus?: PeerStatus };
  /** True when the text mentions this user's nick. */
  mention?: boolean;
  /** Shown as an action: `* alice waves`. */
  action?: boolean;
}

/**
 * The screen entry for a message.
 *
 * @example
 * ```ts
 * messageEntry({ time: new Date(), nick: "bob", status: "verified", text: "hi" });
 * ```
 */
export function messageEntry(message: MessageView): Entry {
  const prefix: Span[] = [
    { text: timestamp(message.time), style: message.mention ? MENTION_TIME_STYLE : TIME_STYLE },
    { text: " " },
  ];
  const sender = message.status === undefined && message.direct
    ? [{ text: "you", style: { bold: true } }]
    : nickSpans(message.nick, message.status);
  if (message.action) prefix.push({ text: "* ", style: { bold: true } }, ...sender);
  else prefix.push(...sender);
  if (message.direct) {
    prefix.push({ text: " → ", style: DIRECT_STYLE });
    if (message.direct.to === undefined) prefix.push({ text: "you", style: { bold: true } });
    else prefix.push(...nickSpans(message.direct.to, message.direct.toStatus));
  }
  if (message.status === "changed") prefix.push({ text: " [KEY CHANGED]", style: CHANGED_STYLE });
  prefix.push({ text: message.action ? " " : ": " });
  const textStyle: Style | undefined = message.mention ? { bold: true } : undefined;
  const lines = displayLines(message.text);
  const indent = prefix.reduce((sum, span) => sum + stringWidth(span.text), 0);
  return {
    indent,
    lines: lines.map((line, index) => {
      const text = { text: line, style: textStyle };
      return index === 0 ? [...prefix, text] : [text];
    }),
  };
}

/**
 * The screen entry for a notice: one or more lines after a styled mark;
 * `lead` (a styled nick) goes before the first line's text.
 *
 * @example
 * ```ts
 * noticeEntry("join", " joined (4vnl-...)", { lead: nickSpans("bob", "new") });
 * ```
 */
export function noticeEntry(
  kind: NoticeKind,
  text: string | string[],
  options: { lead?: Span[]; time?: Date } = {},
): Entry {
  const style = NOTICE_STYLES[kind];
  const prefix: Span[] = [
    { text: timestamp(options.time ?? new Date()), style: TIME_STYLE },
    { text: " " },
    { text: style.mark, style: style.markStyle },
    { text: " " },
  ];
  const indent = prefix.reduce((sum, span) => sum + stringWidth(span.text), 0);
  prefix.push(...options.lead ?? []);
  const lines = (typeof text === "string" ? [text] : text).flatMap(displayLines);
  return {
    indent,
    lines: lines.map((line, index) => {
      const spans: Span[] = [{ text: line, style: style.text }];
      return index === 0 ? [...prefix, ...spans] : spans;
    }),
  };
}

/**
 * The warning shown when a member's key differs from the one remembered:
 * several rows in red reverse video (reverse video alone without colour).
 *
 * @example
 * ```ts
 * keyChangedEntry({ nick: "bob", fingerprint: now, expected: before });
 * ```
 */
export function keyChangedEntry(
  options: { nick: string; fingerprint: string; expected?: string },
  time = new Date(),
): Entry {
  const nick = escapeTerminal(options.nick);
  const rows = [
    `!!! WARNING: ${nick}'s KEY HAS CHANGED !!!`,
    `now:    ${options.fingerprint}`,
    ...(options.expected ? [`before: ${options.expected}`] : []),
    `Someone may be impersonating ${nick}, or ${nick} has a new device or key.`,
    `Messages from ${nick} stay marked [KEY CHANGED] until you verify the new key:`,
    `compare safety numbers with ${nick}: /verify ${nick}`,
  ];
  // One solid block, so it reads as one warning.
  const width = Math.max(...rows.map(stringWidth));
  const prefix: Span[] = [
    { text: timestamp(time), style: TIME_STYLE },
    { text: " " },
    { text: "!!!", style: ALARM_STYLE },
    { text: " " },
  ];
  return {
    indent: prefix.reduce((sum, span) => sum + stringWidth(span.text), 0),
    lines: rows.map((row, index) => {
      const padded = row + " ".repeat(width - stringWidth(row));
      const spans: Span[] = [{ text: ` ${padded} `, style: ALARM_STYLE }];
      return index === 0 ? [...prefix, ...spans] : spans;
    }),
  };
}
