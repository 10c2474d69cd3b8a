/**
 * securechat: end-to-end encrypted group chat.
 *
 * This module is the library's public API. Run as the main module it is the
 * command line: `deno run -A mod.ts <command>`.
 *
 * @module
 */

import process from "node:process";
import { main } from "./cli/main.ts";

export * from "./lib/bytes.ts";

if (import.meta.main) {
  await main(process.argv.slice(2));
}
