/**
 * The chat commands: their names and help, how a typed line is read, and
 * what tab completes.
 *
 * - A line starting with `/` is a command; `//` sends a text that starts
 *   with one `/`.
 * - `/me ACTION` is sent as the text `/me ACTION` and shown by receivers as
 *   an action (`* alice waves`). Line mode and `--json` show it verbatim, so
 *   scripts see exactly what was sent; no invisible marker is needed.
 *
 * @module
 */

import type { Completion } from "./editor.ts";

/** A chat command. */
export interface CommandSpec {
  /** Name without the slash. */
  name: string;
  /** Argument synopsis. */
  args: string;
  /** One line of help. */
  help: string;
}

/** Every command, in the order `/help` lists them. */
export const COMMANDS: readonly CommandSpec[] = [
  { name: "help", args: "", help: "show this help" },
  {
    name: "who",
    args: "",
    help: "list the members, their fingerprints and whether you verified them",
  },
  {
    name: "msg",
    args: "NICK TEXT",
    help: "send a direct message only NICK can read (end-to-end)",
  },
  { name: "me", args: "ACTION", help: "send an action: /me waves" },
  {
    name: "verify",
    args: "NICK",
    help: "show the safety number to compare with NICK, then mark NICK verified",
  },
  { name: "nick", args: "NAME", help: "change your nick (rejoins the room)" },
  { name: "join", args: "ROOM", help: "leave this room and join ROOM" },
  {
    name: "leave",
    args: "",
    help: "leave a durable room for good (others stop keeping messages for you)",
  },
  { name: "quit", args: "", help: "leave (Ctrl-C or Ctrl-D on an empty line too)" },
];

/** What a submitted line asks for. */
export type ParsedLine =
  | { kind: "empty" }
  | { kind: "text"; text: string }
  | { kind: "command"; name: string; args: string };

/**
 * Reads a submitted line.
 *
 * @example
 * ```ts
 * parseLine("/msg bob hi"); // { kind: "command", name: "msg", args: "bob hi" }
 * parseLine("//etc/hosts"); // { kind: "text", text: "/etc/hosts" }
 * parseLine("/me waves"); // { kind: "text", text: "/me waves" }
 * ```
 */
export function parseLine(line: string): ParsedLine {
  if (line.trim() === "") return { kind: "empty" };
  if (line.startsWith("//")) return { kind: "text", text: line.slice(1) };
  if (!line.startsWith("/")) return { kind: "text", text: line };
  const match = /^\/(\S*)\s*([\s\S]*)$/.exec(line)!;
  const name = match[1].toLowerCase();
  const args = match[2];
  if (name === "me") {
    return args.trim() === ""
      ? { kind: "command", name, args: "" }
      : { kind: "text", text: `/me ${args}` };
  }
  return { kind: "command", name, args };
}

/**
 * If `text` is an action (`/me ACTION`), returns the action.
 *
 * @example
 * ```ts
 * actionOf("/me waves"); // "waves"
 * actionOf("hello"); // undefined
 * ```
 */
export function actionOf(text: string): string | undefined {
  return text.startsWith("/me ") && text.length > 4 ? text.slice(4) : undefined;
}

/**
 * Splits command arguments into the first word and the rest.
 *
 * @example
 * ```ts
 * firstWord("bob  hello there"); // ["bob", "hello there"]
 * ```
 */
export function firstWord(args: string): [string, string] {
  const match = /^\s*(\S*)\s?([\s\S]*)$/.exec(args)!;
  return [match[1], match[2]];
}

/**
 * The help text, one line per command.
 *
 * @example
 * ```ts
 * for (const line of helpLines()) show(line);
 * ```
 */
export function helpLines(): string[] {
  const width = Math.max(...COMMANDS.map((command) => `/${command.name} ${command.args}`.length));
  return COMMANDS.map((command) =>
    `${`/${command.name} ${command.args}`.padEnd(width)}  ${command.help}`
  );
}

/**
 * Tab completion: a command name at the start of the line; elsewhere a
 * member's nick, followed by `: ` at the start of the line (addressing
 * someone) and by a space otherwise (`/msg bo` completes to `/msg bob `).
 *
 * @example
 * ```ts
 * completeInput("/ve", 3, ["bob"]); // { start: 0, candidates: ["/verify "] }
 * completeInput("bo", 2, ["bob"]); // { start: 0, candidates: ["bob: "] }
 * ```
 */
export function completeInput(text: string, cursor: number, nicks: string[]): Completion {
  const before = text.slice(0, cursor);
  const start = before.search(/\S*$/);
  const word = before.slice(start);
  const leading = before.slice(0, start);
  if (leading === "" && word.startsWith("/")) {
    const prefix = word.slice(1).toLowerCase();
    return {
      start,
      candidates: COMMANDS.filter((command) => command.name.startsWith(prefix)).map((command) =>
        `/${command.name} `
      ),
    };
  }
  const matches = [...new Set(nicks)]
    .filter((nick) => nick.toLowerCase().startsWith(word.toLowerCase()))
    .sort((a, b) => a.localeCompare(b));
  const suffix = leading === "" ? ": " : " ";
  return { start, candidates: matches.map((nick) => `${nick}${suffix}`) };
}
