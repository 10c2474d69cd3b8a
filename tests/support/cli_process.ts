/**
 * Runs the real `securechat` command as a child process for end-to-end
 * tests: waits for lines on its output, feeds its stdin, and always cleans up.
 *
 * @module
 */

import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { type SecurechatCommand, securechatCommand } from "./cli_command.ts";

/** How a child ended. */
export interface ExitStatus {
  code: number | null;
  signal: string | null;
}

/** Options for {@linkcode CliProcess.start}. */
export interface StartOptions {
  /** `$SECURECHAT_HOME` for the child (its identity, known_servers, known_peers). */
  home: string;
  /** Extra environment variables. */
  env?: Record<string, string>;
  /** Text or bytes written to stdin, after which stdin is closed; omit to keep stdin open. */
  input?: string | Uint8Array;
  /** Working directory. */
  cwd?: string;
  /** The program to run instead of the one SECURECHAT_BIN selects. */
  command?: SecurechatCommand;
}

/**
 * A running `securechat` child.
 *
 * @example
 * ```ts
 * const relay = CliProcess.start(["serve", "--listen", "127.0.0.1:0"], { home });
 * const [, address] = await relay.waitFor("stdout", /listening on (\S+)/);
 * ```
 */
export class CliProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<ExitStatus>;
  #output = { stdout: "", stderr: "" };
  #waiters: Array<() => void> = [];

  private constructor(child: ChildProcess) {
    this.child = child;
    for (const stream of ["stdout", "stderr"] as const) {
      child[stream]!.setEncoding("utf8");
      child[stream]!.on("data", (text: string) => {
        this.#output[stream] += text;
        for (const wake of this.#waiters.splice(0)) wake();
      });
    }
    this.exited = new Promise((resolve) => {
      child.on("close", (code, signal) => {
        for (const wake of this.#waiters.splice(0)) wake();
        resolve({ code, signal });
      });
    });
  }

  /** Starts `securechat ARGS`. @example `CliProcess.start(["keygen"], { home })` */
  static start(args: string[], options: StartOptions): CliProcess {
    const { command, args: lead } = options.command ?? securechatCommand();
    const child = spawn(command, [...lead, ...args], {
      cwd: options.cwd,
      env: {
        ...process.env,
        SECURECHAT_HOME: options.home,
        NO_COLOR: "1",
        ...options.env,
      },
      stdio: ["pipe", "pipe", "pipe"],
      // A session of its own, without a controlling terminal: a test run from a terminal must
      // not have a child ask for a passphrase on it (passphrase.ts falls back to /dev/tty).
      detached: true,
    });
    const running = new CliProcess(child);
    child.stdin!.on("error", () => {});
    if (options.input !== undefined) child.stdin!.end(options.input);
    return running;
  }

  /** Everything printed on stdout so far. @example `proc.stdout` */
  get stdout(): string {
    return this.#output.stdout;
  }

  /** Everything printed on stderr so far. @example `proc.stderr` */
  get stderr(): string {
    return this.#output.stderr;
  }

  /** Lines printed on stdout so far. @example `proc.stdoutLines()` */
  stdoutLines(): string[] {
    return this.#output.stdout.split("\n").filter((line) => line.length > 0);
  }

  /**
   * Resolves with the first match of `pattern` in `stream`; rejects after
   * `timeoutMs` or if the process exits first, showing what it printed.
   *
   * @example
   * ```ts
   * await proc.waitFor("stderr", /joined room/);
   * ```
   */
  async waitFor(
    stream: "stdout" | "stderr",
    pattern: RegExp,
    timeoutMs = 20_000,
  ): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    let exited = false;
    this.exited.then(() => exited = true);
    while (true) {
      const match = this.#output[stream].match(pattern);
      if (match) return match;
      if (exited) throw new Error(`process exited before printing ${pattern}\n${this.describe()}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${pattern}\n${this.describe()}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 250));
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Writes to stdin. @example `proc.write("hello\n")` */
  write(text: string): void {
    this.child.stdin!.write(text);
  }

  /** Closes stdin (EOF). @example `proc.endInput()` */
  endInput(): void {
    this.child.stdin!.end();
  }

  /**
   * Waits for exit, killing the process if it takes longer than `timeoutMs`.
   *
   * @example
   * ```ts
   * const { code } = await proc.wait();
   * ```
   */
  async wait(timeoutMs = 30_000): Promise<ExitStatus> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.child.kill("SIGKILL");
        reject(new Error(`process did not exit within ${timeoutMs} ms\n${this.describe()}`));
      }, timeoutMs);
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Sends `signal` and waits for exit. @example `await relay.stop()` */
  async stop(signal: NodeJS.Signals = "SIGTERM"): Promise<ExitStatus> {
    // process.kill, not child.kill: Deno's child.kill reports the signal as the
    // cause of exit even when the child handled it and exited normally.
    if (this.child.exitCode === null && this.child.signalCode === null) {
      process.kill(this.child.pid!, signal);
    }
    return await this.wait(10_000);
  }

  /** What the process printed, for failure messages. @example `proc.describe()` */
  describe(): string {
    return `--- stdout ---\n${this.#output.stdout}--- stderr ---\n${this.#output.stderr}`;
  }
}

/**
 * Runs `securechat ARGS` to completion.
 *
 * @example
 * ```ts
 * const result = await runCli(["fingerprint", path], { home });
 * ```
 */
export async function runCli(
  args: string[],
  options: StartOptions,
): Promise<ExitStatus & { stdout: string; stderr: string }> {
  const proc = CliProcess.start(args, { input: "", ...options });
  const status = await proc.wait();
  return { ...status, stdout: proc.stdout, stderr: proc.stderr };
}

/**
 * Makes a temporary directory that {@linkcode TempDirs.cleanup} removes.
 *
 * @example
 * ```ts
 * const dirs = new TempDirs();
 * const home = dirs.make();
 * dirs.cleanup();
 * ```
 */
export class TempDirs {
  #dirs: string[] = [];

  /** @example `dirs.make("relay")` */
  make(label = "home"): string {
    const dir = mkdtempSync(join(tmpdir(), `securechat-${label}-`));
    this.#dirs.push(dir);
    return dir;
  }

  /** @example `dirs.cleanup()` */
  cleanup(): void {
    for (const dir of this.#dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Starts `securechat serve` on a free loopback port and returns it with its
 * address and fingerprint.
 *
 * @example
 * ```ts
 * const relay = await startRelay({ home });
 * console.log(relay.address, relay.fingerprint);
 * ```
 */
export async function startRelay(
  options: StartOptions & { listen?: string; extraArgs?: string[] },
): Promise<{ proc: CliProcess; address: string; fingerprint: string }> {
  const proc = CliProcess.start(
    ["serve", "--listen", options.listen ?? "127.0.0.1:0", ...(options.extraArgs ?? [])],
    options,
  );
  const [, address] = await proc.waitFor("stdout", /listening on (\S+)\n/);
  const [, fingerprint] = await proc.waitFor("stdout", /fingerprint (\S+)\n/);
  return { proc, address, fingerprint };
}
