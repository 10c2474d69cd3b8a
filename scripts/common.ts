/**
 * Helpers shared by the build scripts: paths, running a tool with its output
 * captured, and failing with one line instead of a stack trace.
 *
 * The scripts run under Deno (`deno task ...`); unlike `lib/` and `cli/` they
 * may use `Deno.*`, because they are tooling and never bundled.
 *
 * @module
 */

import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** Absolute path of the repository root. */
export const ROOT: string = dirname(dirname(fileURLToPath(import.meta.url)));

/** Absolute path of `dist/`, where every build writes. */
export const DIST: string = join(ROOT, "dist");

/** The entry point every build starts from. */
export const ENTRY: string = join(ROOT, "cli", "bin.ts");

/** The repository's Deno configuration, passed explicitly so the scripts work from any directory. */
export const CONFIG: string = join(ROOT, "deno.json");

/**
 * An error whose message is the whole story: {@linkcode main} prints it as one
 * line and exits 1, without a stack trace.
 *
 * @example
 * ```ts
 * throw new BuildError("node v20.20.2 is too old; the build needs Node 25.5 or newer");
 * ```
 */
export class BuildError extends Error {
  /**
   * @example
   * ```ts
   * new BuildError("node --build-sea failed: ...");
   * ```
   */
  constructor(message: string) {
    super(message);
    this.name = "BuildError";
  }
}

/** What a finished tool run produced. */
export interface RunResult {
  /** Exit code. */
  code: number;
  /** Standard output, decoded. */
  stdout: string;
  /** Standard error, decoded. */
  stderr: string;
}

/** Options for {@linkcode run}. */
export interface RunOptions {
  /** Working directory; the repository root if omitted. */
  cwd?: string;
  /** Extra environment variables. */
  env?: Record<string, string>;
}

/**
 * Runs `command` with `args`, capturing its output. A missing program is a
 * {@linkcode BuildError}; a non-zero exit is returned, not thrown, so callers
 * can explain it.
 *
 * @example
 * ```ts
 * const { code, stdout } = await run("node", ["--version"]);
 * ```
 */
export async function run(
  command: string,
  args: string[],
  options: RunOptions = {},
): Promise<RunResult> {
  try {
    const output = await new Deno.Command(command, {
      args,
      cwd: options.cwd ?? ROOT,
      env: options.env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const decoder = new TextDecoder();
    return {
      code: output.code,
      stdout: decoder.decode(output.stdout),
      stderr: decoder.decode(output.stderr),
    };
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new BuildError(`cannot run \`${command}\`: not found on PATH`);
    }
    throw error;
  }
}

/**
 * Strips ANSI colour codes, so captured tool output can be searched and quoted.
 *
 * @example
 * ```ts
 * plain("\x1b[31merror\x1b[0m: x"); // "error: x"
 * ```
 */
export function plain(text: string): string {
  // deno-lint-ignore no-control-regex
  return text.replace(/\x1b\[[0-9;]*m/g, "");
}

/**
 * Formats a byte count in KiB below one MiB, else in MiB, with one decimal.
 *
 * @example
 * ```ts
 * formatSize(1_572_864); // "1.5 MiB"
 * formatSize(2_048); // "2.0 KiB"
 * ```
 */
export function formatSize(bytes: number): string {
  return bytes < 1_048_576
    ? `${(bytes / 1024).toFixed(1)} KiB`
    : `${(bytes / 1_048_576).toFixed(1)} MiB`;
}

/**
 * Runs a script's `body`, turning a {@linkcode BuildError} into one line on
 * stderr (prefixed with `name`) and exit code 1.
 *
 * @example
 * ```ts
 * await main("build", async () => { await build(); });
 * ```
 */
export async function main(name: string, body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (error) {
    if (error instanceof BuildError) {
      console.error(`${name}: ${error.message}`);
      Deno.exit(1);
    }
    throw error;
  }
}
