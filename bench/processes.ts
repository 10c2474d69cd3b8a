/**
 * Child processes for the bench: our relay (`securechat serve`), the CLI's
 * `join`, and ncat. Output is handled as bytes, so tens of megabytes of lines
 * cost the bench little; every process is stopped by its own id.
 *
 * @module
 */

import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, openSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { nodeBinary } from "../scripts/node_binary.ts";
import { processStats, sleep } from "./system.ts";

/** Repository root: this file is `<root>/bench/processes.ts`. */
export const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));

/** The Deno binary the project installs with npm. */
export const DENO = join(ROOT, "node_modules", "deno", "deno");

/**
 * How to run `securechat`: `SECURECHAT_BIN` (a built executable, or a `.mjs`
 * bundle run with the Node of `scripts/node_binary.ts`) when set, else the
 * sources under Deno.
 *
 * @example
 * ```ts
 * const { command, args, label } = securechatCommand();
 * ```
 */
export function securechatCommand(): { command: string; args: string[]; label: string } {
  const bin = process.env.SECURECHAT_BIN;
  if (bin) {
    const path = resolve(bin);
    return /\.[cm]?js$/.test(path)
      ? { command: nodeBinary().command, args: [path], label: `node ${path}` }
      : { command: path, args: [], label: path };
  }
  return { command: DENO, args: ["run", "-A", join(ROOT, "mod.ts")], label: "deno run -A mod.ts" };
}

/** Options for {@linkcode Child.spawn}. */
export interface SpawnOptions {
  /** Extra environment variables. */
  env?: Record<string, string>;
  /** `pipe` to write to it, `ignore` for /dev/null, or a path to read from. */
  stdin?: "pipe" | "ignore" | { file: string };
  /** Receives stdout bytes; without it stdout is kept as text for {@linkcode Child.stdoutText}. */
  onStdout?: (chunk: Uint8Array) => void;
  /** Where stderr goes: a file path, or kept as text (the default). */
  stderrFile?: string;
}

/** A running child process. */
export class Child {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Resolves when the process has exited and its output is drained. */
  readonly exited: Promise<{ code: number | null; signal: string | null }>;
  #stdout = "";
  #stderr = "";
  #stderrFile?: string;
  #done = false;
  #cpuSeconds = 0;
  #poller: ReturnType<typeof setInterval>;

  private constructor(child: ChildProcess, options: SpawnOptions) {
    this.child = child;
    this.pid = child.pid ?? -1;
    this.#stderrFile = options.stderrFile;
    if (child.stdout) {
      if (options.onStdout) child.stdout.on("data", options.onStdout);
      else {child.stdout.on("data", (chunk: Uint8Array) =>
          this.#stdout += new TextDecoder().decode(chunk));}
    }
    child.stderr?.on("data", (chunk: Uint8Array) => {
      // Bounded: a chatty child must not fill the bench's memory.
      if (this.#stderr.length < 1_000_000) this.#stderr += new TextDecoder().decode(chunk);
    });
    child.stdin?.on("error", () => {});
    // CPU time can only be read while the process exists: sample it until it exits.
    this.#poller = setInterval(() => this.#sampleCpu(), 20);
    this.exited = new Promise((resolve) => {
      child.on("close", (code, signal) => {
        this.#done = true;
        clearInterval(this.#poller);
        resolve({ code, signal });
      });
      child.on("error", () => {
        this.#done = true;
        clearInterval(this.#poller);
        resolve({ code: null, signal: "spawn-error" });
      });
    });
  }

  #sampleCpu(): void {
    const stats = processStats(this.pid);
    if (stats) this.#cpuSeconds = stats.cpuSeconds;
  }

  /** CPU seconds the process has used (sampled every 20 ms while it runs). @example `child.cpuSeconds` */
  get cpuSeconds(): number {
    if (!this.#done) this.#sampleCpu();
    return this.#cpuSeconds;
  }

  /**
   * Starts `command args`.
   *
   * @example
   * ```ts
   * const ncat = Child.spawn("ncat", ["--chat", "--ssl", "-l", "127.0.0.1", "9000"], {});
   * ```
   */
  static spawn(command: string, args: string[], options: SpawnOptions): Child {
    let stdinFd: number | undefined;
    let stderrFd: number | undefined;
    const stdin = options.stdin ?? "ignore";
    if (typeof stdin === "object") stdinFd = openSync(stdin.file, "r");
    if (options.stderrFile) stderrFd = openSync(options.stderrFile, "a");
    try {
      const child = spawn(command, args, {
        env: { ...process.env, NO_COLOR: "1", ...options.env },
        stdio: [stdinFd ?? (stdin as "pipe" | "ignore"), "pipe", stderrFd ?? "pipe"],
      });
      return new Child(child, options);
    } finally {
      if (stdinFd !== undefined) closeSync(stdinFd);
      if (stderrFd !== undefined) closeSync(stderrFd);
    }
  }

  /** Whether the process has exited. @example `child.done` */
  get done(): boolean {
    return this.#done;
  }

  /** Stdout so far (when no `onStdout` was given). @example `child.stdoutText()` */
  stdoutText(): string {
    return this.#stdout;
  }

  /** Stderr so far (from the file when it went to one). @example `child.stderrText()` */
  stderrText(): string {
    if (this.#stderrFile) {
      try {
        return readFileSync(this.#stderrFile, "utf8");
      } catch {
        return "";
      }
    }
    return this.#stderr;
  }

  /** Writes to stdin; resolves once the data is flushed to the pipe. @example `await child.write(bytes)` */
  write(bytes: Uint8Array): Promise<void> {
    return new Promise((resolve) => {
      if (!this.child.stdin || this.child.stdin.destroyed) return resolve();
      this.child.stdin.write(bytes, () => resolve());
    });
  }

  /** Closes stdin. @example `child.endInput()` */
  endInput(): void {
    this.child.stdin?.end();
  }

  /**
   * Waits for `pattern` in stdout or stderr text, up to `timeoutMs`; throws
   * with what the process printed when it does not come.
   *
   * @example
   * ```ts
   * const [, port] = await relay.waitFor("stdout", /listening on \S+:(\d+)/, 20_000);
   * ```
   */
  async waitFor(
    stream: "stdout" | "stderr",
    pattern: RegExp,
    timeoutMs: number,
  ): Promise<RegExpMatchArray> {
    const deadline = performance.now() + timeoutMs;
    while (true) {
      const text = stream === "stdout" ? this.#stdout : this.stderrText();
      const match = text.match(pattern);
      if (match) return match;
      if (this.#done) {
        throw new Error(
          `process ${this.pid} exited before printing ${pattern}: ${this.describe()}`,
        );
      }
      if (performance.now() > deadline) {
        throw new Error(
          `timed out waiting for ${pattern} from process ${this.pid}: ${this.describe()}`,
        );
      }
      await sleep(10);
    }
  }

  /** The tail of what the process printed, for error messages. @example `child.describe()` */
  describe(): string {
    const tail = (text: string) => text.slice(-600).trim();
    return `stdout: ${tail(this.#stdout)} | stderr: ${tail(this.stderrText())}`;
  }

  /**
   * Sends `signal`, waits up to `graceMs`, then kills. Only this process.
   *
   * @example
   * ```ts
   * await child.stop("SIGINT", 3000);
   * ```
   */
  async stop(signal: NodeJS.Signals = "SIGTERM", graceMs = 3000): Promise<void> {
    if (this.#done) return;
    try {
      this.child.kill(signal);
    } catch {
      // Already gone.
    }
    const timer = sleep(graceMs).then(() => "timeout");
    if (await Promise.race([this.exited.then(() => "exited"), timer]) === "timeout") {
      try {
        this.child.kill("SIGKILL");
      } catch {
        // Already gone.
      }
      await Promise.race([this.exited, sleep(2000)]);
    }
  }
}
