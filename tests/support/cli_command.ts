/**
 * How end-to-end tests start `securechat`, so one suite can test the source
 * and every built artifact.
 *
 * - `SECURECHAT_BIN` unset: the sources, `node_modules/.bin/deno run -A mod.ts`
 *   (absolute paths, so tests may run from any directory).
 * - `SECURECHAT_BIN=/path/to/securechat`: that executable, run directly.
 * - `SECURECHAT_BIN=/path/to/securechat.mjs` (or `.js`, `.cjs`): that bundle,
 *   run with the Node `scripts/node_binary.ts` picks (`SECURECHAT_NODE`, else
 *   the Node 26 that `npm ci` installs, else `node` on PATH).
 *
 * A relative `SECURECHAT_BIN` is resolved against the directory the tests
 * were started from.
 *
 * @example
 * ```ts
 * const { command, args } = securechatCommand();
 * const child = spawn(command, [...args, "keygen", "--out", path]);
 * ```
 *
 * @module
 */

import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { nodeBinary } from "../../scripts/node_binary.ts";

/** The program and leading arguments that run `securechat`; append the CLI arguments. */
export interface SecurechatCommand {
  /** Absolute path of the program to spawn (or `node`, found on PATH). */
  command: string;
  /** Arguments that come before the CLI's own. */
  args: string[];
}

/** Repository root: this file is `<root>/tests/support/cli_command.ts`. */
const ROOT = dirname(dirname(dirname(fileURLToPath(import.meta.url))));

/**
 * Every way to run `securechat` that this checkout offers: the selected one
 * (SECURECHAT_BIN, else the sources), plus the Node bundle
 * `dist/securechat.mjs` under `node` when it has been built and is not the
 * selected one already. For behaviour that differs between Deno and Node.
 *
 * @example
 * ```ts
 * for (const { label, command } of securechatVariants()) console.log(label, command.command);
 * ```
 */
export function securechatVariants(): Array<{ label: string; command: SecurechatCommand }> {
  const selected = securechatCommand();
  const variants = [{
    label: process.env.SECURECHAT_BIN ? "SECURECHAT_BIN" : "sources",
    command: selected,
  }];
  const bundle = join(ROOT, "dist", "securechat.mjs");
  if (existsSync(bundle) && !selected.args.includes(bundle)) {
    variants.push({
      label: "node dist/securechat.mjs",
      command: { command: "node", args: [bundle] },
    });
  }
  return variants;
}

/**
 * Returns how to run `securechat`: the executable named by `SECURECHAT_BIN`,
 * else the sources under Deno.
 *
 * @example
 * ```ts
 * // SECURECHAT_BIN=/tmp/x/securechat  ->  { command: "/tmp/x/securechat", args: [] }
 * // unset  ->  { command: "<repo>/node_modules/.bin/deno", args: ["run", "-A", "<repo>/mod.ts"] }
 * const { command, args } = securechatCommand();
 * ```
 */
export function securechatCommand(): SecurechatCommand {
  const bin = process.env.SECURECHAT_BIN;
  if (bin) {
    const path = resolve(bin);
    // A bundle is a script, not a program: it needs a runtime in front.
    return /\.[cm]?js$/.test(path)
      ? { command: nodeBinary().command, args: [path] }
      : { command: path, args: [] };
  }
  return {
    command: join(ROOT, "node_modules", ".bin", "deno"),
    args: ["run", "-A", join(ROOT, "mod.ts")],
  };
}
