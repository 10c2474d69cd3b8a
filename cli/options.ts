/**
 * Parsers for option values shared by sub-commands. Each throws commander's
 * `InvalidArgumentError`, which becomes a usage error (exit code 2).
 *
 * @module
 */

import { InvalidArgumentError } from "commander";
import { parseServerAddress, type ServerAddress } from "../lib/identity/trust_store.ts";

/**
 * Parses a positive whole number.
 *
 * @example
 * ```ts
 * new Command("serve").option("--max-connections <n>", "cap", positiveInteger, 100);
 * ```
 */
export function positiveInteger(text: string): number {
  const value = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(value) || value < 1) {
    throw new InvalidArgumentError("expected a positive whole number");
  }
  return value;
}

/**
 * Parses `HOST:PORT` or `[IPV6]:PORT`; with `allowPortZero`, port 0 (any free port) too.
 *
 * @example
 * ```ts
 * serverAddress("127.0.0.1:7878"); // { host: "127.0.0.1", port: 7878 }
 * ```
 */
export function serverAddress(
  text: string,
  options: { allowPortZero?: boolean } = {},
): ServerAddress {
  try {
    const zero = options.allowPortZero ? /^(.*):0$/.exec(text) : null;
    // parseServerAddress wants 1..65535; check the host with a stand-in port.
    if (zero) return { host: parseServerAddress(`${zero[1]}:1`).host, port: 0 };
    return parseServerAddress(text);
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
}

const DURATION_UNITS: Record<string, number> = {
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/**
 * Parses a duration (`90s`, `30m`, `12h`, `30d`) into milliseconds.
 *
 * @example
 * ```ts
 * duration("30d"); // 2592000000
 * ```
 */
export function duration(text: string): number {
  const match = /^(\d+)([smhd])$/.exec(text.trim());
  const value = match ? Number(match[1]) * DURATION_UNITS[match[2]] : NaN;
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new InvalidArgumentError(
      `expected a duration such as 90s, 30m, 12h or 30d, got "${text}"`,
    );
  }
  return value;
}
