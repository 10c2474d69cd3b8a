/**
 * Real terminals for end-to-end tests: a private tmux server (its own
 * socket, no user configuration) whose sessions run a shell. Tests type with
 * `send-keys`, paste with `paste-buffer -p` (bracketed, as a terminal pastes),
 * read the screen with `capture-pane` and the cursor with `display`, and can
 * record the raw bytes a program writes with `pipe-pane`.
 *
 * Every wait polls until the expected screen appears or a deadline passes,
 * and then fails showing the screen.
 *
 * @example
 * ```ts
 * const server = new TmuxServer(dir);
 * const alice = await server.terminal("alice", { columns: 100, rows: 30 });
 * await alice.run("echo hi");
 * await alice.waitFor(/^hi$/m);
 * await server.kill();
 * ```
 *
 * @module
 */

import { execFile, spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** Default deadline for one wait. */
const WAIT_MS = 15_000;
const POLL_MS = 100;

/**
 * Whether a `tmux` program is on PATH.
 *
 * @example
 * ```ts
 * if (!tmuxAvailable()) console.warn("no tmux");
 * ```
 */
export function tmuxAvailable(): boolean {
  try {
    return spawnSync("tmux", ["-V"], { stdio: "ignore" }).status === 0;
  } catch {
    return false;
  }
}

/** Quotes one word for a POSIX shell. @example `shellQuote("it's")` */
export function shellQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/**
 * A tmux server of our own.
 *
 * @example
 * ```ts
 * const server = new TmuxServer("/tmp/x");
 * ```
 */
export class TmuxServer {
  readonly dir: string;
  #socket: string;

  /** A server whose socket and files live in `dir`; it starts with the first terminal. @example `new TmuxServer(dir)` */
  constructor(dir: string) {
    this.dir = dir;
    this.#socket = join(dir, "tmux.sock");
  }

  /**
   * Runs a tmux command on this server and returns its output.
   *
   * @example
   * ```ts
   * await server.tmux(["list-sessions"]);
   * ```
   */
  tmux(args: string[]): Promise<string> {
    return new Promise((resolve, reject) => {
      // -u: the panes hold UTF-8; -f /dev/null: the user's tmux.conf plays no part.
      execFile(
        "tmux",
        ["-u", "-f", "/dev/null", "-S", this.#socket, ...args],
        { timeout: 10_000 },
        (error, stdout, stderr) => {
          if (error) reject(new Error(`tmux ${args.join(" ")} failed: ${stderr || error.message}`));
          else resolve(stdout);
        },
      );
    });
  }

  /**
   * Opens a terminal of `columns` x `rows` running a plain POSIX shell whose
   * prompt is `NAME$ `.
   *
   * @example
   * ```ts
   * const bob = await server.terminal("bob", { columns: 80, rows: 24 });
   * ```
   */
  async terminal(
    name: string,
    size: { columns: number; rows: number },
  ): Promise<TmuxTerminal> {
    await this.tmux([
      "new-session",
      "-d",
      "-s",
      name,
      "-x",
      String(size.columns),
      "-y",
      String(size.rows),
      `env PS1=${shellQuote(`${name}$ `)} sh`,
    ]);
    // No client is attached, so the window keeps the size it is given (resize-window sets
    // this too, so a tmux without the option is fine).
    await this.tmux(["set-option", "-t", name, "window-size", "manual"]).catch(() => {});
    const terminal = new TmuxTerminal(this, name);
    await terminal.waitFor(
      (lines) => lines.some((line) => line.startsWith(`${name}$`)),
      "a prompt",
    );
    return terminal;
  }

  /** Stops the server and every program in it. @example `await server.kill()` */
  async kill(): Promise<void> {
    await this.tmux(["kill-server"]).catch(() => {});
  }
}

/**
 * One terminal (a tmux session with one pane).
 *
 * @example
 * ```ts
 * await terminal.type("hello");
 * await terminal.keys("Enter");
 * ```
 */
export class TmuxTerminal {
  readonly name: string;
  #server: TmuxServer;

  /** @example `new TmuxTerminal(server, "alice")` */
  constructor(server: TmuxServer, name: string) {
    this.#server = server;
    this.name = name;
  }

  /** Types text literally (no key names). @example `await t.type("/quit")` */
  async type(text: string): Promise<void> {
    // "--": text that starts with a dash is text, not a flag.
    await this.#server.tmux(["send-keys", "-t", this.name, "-l", "--", text]);
  }

  /** Presses keys by tmux name: `Enter`, `C-c`, `Up`, `Tab`... @example `await t.keys("Enter")` */
  async keys(...keys: string[]): Promise<void> {
    await this.#server.tmux(["send-keys", "-t", this.name, ...keys]);
  }

  /** Types a shell command line and presses Enter. @example `await t.run("ls")` */
  async run(command: string): Promise<void> {
    await this.type(command);
    await this.keys("Enter");
  }

  /**
   * Pastes text as a terminal does: wrapped in bracketed-paste markers when
   * the program asked for them, as plain keystrokes otherwise.
   *
   * @example
   * ```ts
   * await t.paste("line one\nline two");
   * ```
   */
  async paste(text: string): Promise<void> {
    const buffer = `paste-${this.name}`;
    await this.#server.tmux(["set-buffer", "-b", buffer, text]);
    await this.#server.tmux(["paste-buffer", "-p", "-d", "-b", buffer, "-t", this.name]);
  }

  /**
   * Pastes text as a terminal without bracketed paste does: the characters
   * arrive as if typed very fast, each newline as Enter (a carriage return).
   *
   * @example
   * ```ts
   * await t.pasteUnbracketed("line one\nline two");
   * ```
   */
  async pasteUnbracketed(text: string): Promise<void> {
    const buffer = `paste-${this.name}`;
    await this.#server.tmux(["set-buffer", "-b", buffer, text]);
    // Without -p tmux sends no paste markers; it turns each newline into a carriage return.
    await this.#server.tmux(["paste-buffer", "-d", "-b", buffer, "-t", this.name]);
  }

  /** The visible screen, one string per row, trailing blanks removed. @example `await t.screen()` */
  async screen(): Promise<string[]> {
    const text = await this.#server.tmux(["capture-pane", "-p", "-t", this.name]);
    const lines = text.replace(/\n$/, "").split("\n").map((line) => line.trimEnd());
    return lines;
  }

  /** A tmux format evaluated for this pane, such as `#{cursor_x}`. @example `await t.format("#{alternate_on}")` */
  async format(format: string): Promise<string> {
    return (await this.#server.tmux(["display-message", "-p", "-t", this.name, format])).trim();
  }

  /** The cursor position, 0-based. @example `const { x, y } = await t.cursor()` */
  async cursor(): Promise<{ x: number; y: number }> {
    const [x, y] = (await this.format("#{cursor_x} #{cursor_y}")).split(" ").map(Number);
    return { x, y };
  }

  /** Resizes the terminal. @example `await t.resize(60, 20)` */
  async resize(columns: number, rows: number): Promise<void> {
    await this.#server.tmux([
      "resize-window",
      "-t",
      this.name,
      "-x",
      String(columns),
      "-y",
      String(rows),
    ]);
  }

  /**
   * Records every byte the terminal receives from now on into a file;
   * {@linkcode TmuxTerminal.recorded} reads it.
   *
   * @example
   * ```ts
   * await t.record();
   * (await t.recorded()).includes("\x07"); // a bell was rung
   * ```
   */
  async record(): Promise<void> {
    writeFileSync(this.#recording(), "");
    await this.#server.tmux([
      "pipe-pane",
      "-o",
      "-t",
      this.name,
      `cat >> ${shellQuote(this.#recording())}`,
    ]);
  }

  /** What was recorded so far. @example `await t.recorded()` */
  recorded(): string {
    return readFileSync(this.#recording(), "utf8");
  }

  /**
   * Polls the recording until `expected` holds (`pipe-pane` writes through
   * a pipe, so bytes can reach the file a moment after the screen changed).
   *
   * @example
   * ```ts
   * await t.waitForRecording((raw) => raw.includes("\x07"), "a bell");
   * ```
   */
  async waitForRecording(
    expected: (raw: string) => boolean,
    description: string,
    timeoutMs = WAIT_MS,
  ): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (true) {
      const raw = this.recorded();
      if (expected(raw)) return raw;
      if (Date.now() >= deadline) {
        throw new Error(`${this.name}: timed out after ${timeoutMs} ms waiting for ${description}`);
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  }

  #recording(): string {
    return join(this.#server.dir, `${this.name}.raw`);
  }

  /**
   * Polls the screen until `expected` matches it (a regular expression
   * against the rows joined by newlines, or a predicate on the rows);
   * returns the rows. Fails after `timeoutMs` showing the screen.
   *
   * @example
   * ```ts
   * await t.waitFor(/bob: hello/);
   * ```
   */
  async waitFor(
    expected: RegExp | ((lines: string[]) => boolean),
    description = String(expected),
    timeoutMs = WAIT_MS,
  ): Promise<string[]> {
    const deadline = Date.now() + timeoutMs;
    let lines: string[] = [];
    while (true) {
      lines = await this.screen();
      const ok = typeof expected === "function" ? expected(lines) : expected.test(lines.join("\n"));
      if (ok) return lines;
      if (Date.now() >= deadline) break;
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
    throw new Error(
      `${this.name}: timed out after ${timeoutMs} ms waiting for ${description}; the screen:\n` +
        lines.map((line) => `| ${line}`).join("\n"),
    );
  }
}
