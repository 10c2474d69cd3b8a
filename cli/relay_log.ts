/**
 * How `serve` writes its log on stderr: a level filter (`--log-level`) and
 * either text lines (`TIME line`) or one JSON object per line
 * (`--log-format json`: `{"time","level","msg"}`) for log collectors.
 * Room names and nicks in the relay's lines come from the network, so both
 * forms escape what would act on a terminal (control, C1 and bidi
 * characters), as `join`'s output does.
 *
 * @module
 */

import type { LogLevel } from "../lib/relay/observer.ts";
import { escapeTerminal, jsonLine } from "./output.ts";
import { writeStderr } from "./stdio.ts";

/** The levels `--log-level` accepts, most important first. */
export const LOG_LEVELS: readonly LogLevel[] = ["error", "warn", "info", "debug"];
/** The formats `--log-format` accepts. */
export const LOG_FORMATS = ["text", "json"] as const;
/** One of {@linkcode LOG_FORMATS}. */
export type LogFormat = typeof LOG_FORMATS[number];

/**
 * A log function that writes lines at `level` or more important to stderr.
 *
 * @example
 * ```ts
 * const log = relayLogger({ level: "warn", format: "json" });
 * log("refused 10.0.0.7:50123: not on the allow list", "warn");
 * ```
 */
export function relayLogger(
  options: { level: LogLevel; format: LogFormat; now?: () => Date },
): (line: string, level?: LogLevel) => void {
  const threshold = LOG_LEVELS.indexOf(options.level);
  const now = options.now ?? (() => new Date());
  return (line, level = "info") => {
    if (LOG_LEVELS.indexOf(level) > threshold) return;
    const time = now().toISOString();
    writeStderr(
      options.format === "json"
        ? `${jsonLine({ time, level, msg: line })}\n`
        : `${time} ${escapeTerminal(line)}\n`,
    );
  };
}
