/**
 * `join` on a terminal: a full-screen chat in the manner of irssi, weechat
 * or ssh-chat, with Signal's habit of making keys visible. Messages scroll
 * above a status bar and a fixed input line; every name carries a trust
 * marker; `/verify` compares safety numbers.
 *
 * Built on `node:readline` and ANSI escape sequences, not on an npm terminal
 * library. Why:
 * - readline's keypress decoder already does the one hard part of terminal
 *   input (escape sequences, Alt, UTF-8 split across reads, bracketed-paste
 *   markers), and it exists in both runtimes this program ships on, Deno and
 *   Node (the single executable embeds Node 26), with no new code to audit;
 * - the screen needs very little of a terminal: absolute cursor moves,
 *   clearing a row, SGR attributes, the alternate screen, bracketed paste and
 *   auto-wrap off. Every terminal in use speaks these (VT100/xterm), so a
 *   terminfo database buys nothing, and the screen module stays small
 *   (`cli/tui/screen.ts`);
 * - the libraries that would do more (blessed, terminal-kit, ink) are large,
 *   unmaintained or pull in React, and each would be a dependency with full
 *   access to what people type into an end-to-end encrypted chat.
 * What readline's `Interface` does not do (a fixed input line under
 * scrolling output, width of wide characters and emoji, completion that
 * cycles, a paste as one message) lives in `cli/tui/`.
 *
 * @module
 */

import process from "node:process";
import { ChatApp, type ChatAppOptions } from "./tui/app.ts";
import { Terminal } from "./tui/terminal.ts";

export type { PeerTrustView, RoomConnection, RoomTarget } from "./tui/app.ts";

/** Options for {@linkcode runInteractive}: the chat's, less the terminal and environment it takes. */
export type InteractiveOptions = Omit<ChatAppOptions, "terminal" | "env">;

/**
 * Runs the chat screen on the process's terminal until `/quit`, Ctrl-C,
 * Ctrl-D on an empty line, SIGTERM or SIGHUP, or until the room is lost for
 * good (a permanent refusal; then it rejects with the reason). A relay
 * restart only shows on screen while it reconnects. The terminal is
 * restored in every case.
 *
 * @example
 * ```ts
 * await runInteractive({ open, output, peers, identity, room: "ops", nick: "alice" });
 * ```
 */
export async function runInteractive(options: InteractiveOptions): Promise<void> {
  const terminal = new Terminal({ input: process.stdin, output: process.stdout });
  await new ChatApp({ ...options, terminal, env: process.env }).run();
}
