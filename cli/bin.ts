/**
 * The entry point of the built `securechat` programs: the Node bundle
 * (`dist/securechat.mjs`), the single executable (`dist/securechat`) and
 * `deno compile`. It only runs the CLI.
 *
 * `mod.ts` decides with `import.meta.main`, which Node 22 lacks, and the
 * single executable runs this file as CommonJS, where top-level `await` is a
 * syntax error; hence a separate entry that uses a promise chain.
 *
 * @example
 * ```sh
 * deno run -A cli/bin.ts --help
 * ```
 *
 * @module
 */

import process from "node:process";
import { installCrashPolicy, runCli } from "./main.ts";
import { escapeTerminal } from "./output.ts";
import { writeStderr } from "./stdio.ts";

installCrashPolicy();
runCli(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    // runCli catches everything it knows; this is the last line of defence, still one line.
    const detail = error instanceof Error ? error.message : String(error);
    writeStderr(`securechat: unexpected error: ${escapeTerminal(detail)}\n`);
    process.exitCode = 1;
  },
);
