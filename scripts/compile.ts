/**
 * `deno task compile` and `deno task compile:all`: the standard build with
 * `deno compile`, for machines that can download Deno's runtime for compiled
 * programs (denort) from dl.deno.land, or that have one locally (point
 * `DENORT_BIN` at it; Deno reads that variable itself).
 *
 * - no argument: `dist/securechat` for this machine;
 * - `--all`: `dist/securechat-<target>` for Linux x64 and arm64, macOS x64 and
 *   arm64, Windows x64.
 *
 * When denort cannot be fetched the task fails with one line that says so and
 * points at `deno task build`, the offline build.
 *
 * @example
 * ```sh
 * deno task compile && dist/securechat --version
 * deno task compile:all
 * ```
 *
 * @module
 */

import { mkdir, rename, rm } from "node:fs/promises";
import { join, relative } from "node:path";
import { BuildError, CONFIG, DIST, ENTRY, formatSize, main, plain, ROOT, run } from "./common.ts";

/** The cross targets of `--all`, as `deno compile --target` names them. */
const TARGETS = [
  "x86_64-unknown-linux-gnu",
  "aarch64-unknown-linux-gnu",
  "x86_64-apple-darwin",
  "aarch64-apple-darwin",
  "x86_64-pc-windows-msvc",
] as const;

await main("compile", async () => {
  const all = Deno.args.includes("--all");
  const unknown = Deno.args.filter((arg) => arg !== "--all");
  if (unknown.length > 0) {
    throw new BuildError(`unknown argument ${unknown.join(" ")}; the only option is --all`);
  }
  await mkdir(DIST, { recursive: true });
  const jobs = all
    ? TARGETS.map((target) => ({
      target,
      output: join(DIST, `securechat-${target}${target.includes("windows") ? ".exe" : ""}`),
    }))
    : [{ target: Deno.build.target, output: join(DIST, "securechat") }];
  for (const job of jobs) await compile(job);
});

async function compile({ target, output }: { target: string; output: string }): Promise<void> {
  // Type checking is `deno check`'s job; here it would only hide the packaging result.
  // Compile beside the target and rename on success: a failed compile must not
  // destroy dist/securechat from `deno task build`, and deno compile refuses to
  // overwrite a file that it did not make.
  const partial = output.replace(/(\.exe)?$/, ".compiling$1");
  await rm(partial, { force: true });
  const result = await run(Deno.execPath(), [
    "compile",
    "--quiet",
    "--no-check",
    "--allow-all",
    "--config",
    CONFIG,
    "--target",
    target,
    "--output",
    partial,
    ENTRY,
  ], { env: { NO_COLOR: "1", RUST_BACKTRACE: "0" } });
  if (result.code === 0) {
    await rename(partial, output);
    const size = (await Deno.stat(output)).size;
    console.log(`compile: ${relative(ROOT, output)}: ${target}, ${formatSize(size)}`);
    return;
  }
  const stderr = plain(result.stderr);
  if (/denort|dl\.deno\.land|Setting up base binary/i.test(stderr)) {
    const runtime = `Deno's runtime for compiled programs (denort ${Deno.version.deno}, ${target})`;
    const local = Deno.env.get("DENORT_BIN");
    throw new BuildError(
      local
        ? `cannot use ${runtime} from DENORT_BIN=${local}: ${lastCause(stderr)}`
        : `could not download ${runtime} from dl.deno.land (${lastCause(stderr)}); ` +
          "run `deno task build` for the offline single executable, " +
          "or set DENORT_BIN to a local denort binary",
    );
  }
  throw new BuildError(`deno compile failed for ${target}:\n${stderr.trim()}`);
}

/** The innermost cause of a Deno error chain ("Caused by: 0: ... 4: <this>"), else its first line. */
function lastCause(stderr: string): string {
  const causes = [...stderr.matchAll(/^\s*\d+: (.+)$/gm)].map((match) => match[1].trim())
    .filter((cause) => cause !== "<unknown>");
  return causes.at(-1) ?? stderr.trim().split("\n")[0];
}
