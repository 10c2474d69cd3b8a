/**
 * The two relays under test, each in its own process on 127.0.0.1:
 * `securechat serve` and `ncat --chat --ssl`.
 *
 * @module
 */

import { connect } from "node:net";
import { join } from "node:path";
import { Child, securechatCommand } from "./processes.ts";
import { freePort, type ProcessStats, processStats, run, sleep } from "./system.ts";

/** A relay process under test. */
export interface Server {
  /** `securechat` or `ncat`. */
  kind: "securechat" | "ncat";
  host: string;
  port: number;
  pid: number;
  /** The relay's fingerprint (securechat only). */
  fingerprint?: string;
  /** CPU time and memory of the relay process now. */
  stats(): ProcessStats | undefined;
  /** Stops the process (SIGINT, then SIGKILL after a grace period). */
  stop(): Promise<void>;
  /** Whether the process is still running. */
  readonly running: boolean;
}

let serveFlags: Promise<Set<string>> | undefined;

/** The options this build's `serve` accepts: limits are raised only where they exist. */
function supportedServeFlags(): Promise<Set<string>> {
  serveFlags ??= (async () => {
    const { command, args } = securechatCommand();
    const help = await run(command, [...args, "serve", "--help"], 60_000);
    return new Set(help.stdout.match(/--[a-z][a-z-]*/g) ?? []);
  })();
  return serveFlags;
}

/**
 * Relay limits raised so that they do not cap the measurement: the defaults
 * (rate limit per connection, connections per address) protect a public relay
 * from abuse, and every bench client comes from 127.0.0.1.
 */
const BENCH_LIMITS: [string, string][] = [
  ["--max-connections", "30000"],
  ["--max-connections-per-address", "30000"],
  ["--max-pending-handshakes", "30000"],
  ["--rate-limit", "100000000"],
  ["--rate-burst", "100000000"],
  ["--max-room-members", "100000"],
];

/** Options for {@linkcode startSecurechat}. */
export interface StartSecurechatOptions {
  /** A scratch directory for the relay's identity and log. */
  dir: string;
  /** Write a V8 CPU profile (and its Markdown summary) into this directory on exit. */
  profileDir?: string;
  /** More `serve` flags (`--ephemeral`, `--cluster URL`). */
  serveArgs?: string[];
  /** `$SECURECHAT_HOME` (the relay's identity); default `<dir>/home`. Relays of one cluster share it. */
  home?: string;
}

/**
 * Starts `securechat serve` on a free port and waits until it listens.
 *
 * @example
 * ```ts
 * const relay = await startSecurechat({ dir: "/tmp/bench/relay" });
 * await relay.stop();
 * ```
 */
export async function startSecurechat(options: StartSecurechatOptions): Promise<Server> {
  const { command, args } = securechatCommand();
  const flags = await supportedServeFlags();
  const limits = BENCH_LIMITS.filter(([flag]) => flags.has(flag)).flat();
  const profile = options.profileDir && args[0] === "run"
    ? [`--cpu-prof-dir=${options.profileDir}`, "--cpu-prof-md"]
    : [];
  const lead = profile.length > 0 ? ["run", ...profile, ...args.slice(1)] : args;
  const serve = ["serve", "--listen", "127.0.0.1:0", ...limits, ...(options.serveArgs ?? [])];
  const child = Child.spawn(command, [...lead, ...serve], {
    env: { SECURECHAT_HOME: options.home ?? join(options.dir, "home") },
    stderrFile: join(options.dir, "relay.log"),
  });
  const [, port] = await child.waitFor("stdout", /listening on [^\s:]+:(\d+)/, 60_000);
  const [, fingerprint] = await child.waitFor("stdout", /fingerprint (\S+)/, 10_000);
  return {
    kind: "securechat",
    host: "127.0.0.1",
    port: Number(port),
    pid: child.pid,
    fingerprint,
    stats: () => processStats(child.pid),
    // SIGINT lets serve close cleanly, which is also when a CPU profile is written.
    stop: () => child.stop("SIGINT", 5000),
    get running() {
      return !child.done;
    },
  };
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/**
 * Starts `ncat --chat --ssl` (a temporary certificate is generated at start)
 * on a free port and waits until it accepts connections.
 *
 * @example
 * ```ts
 * const ncat = await startNcat({ maxConnections: 300 });
 * ```
 */
export async function startNcat(options: { maxConnections: number }): Promise<Server> {
  const port = await freePort();
  const child = Child.spawn("ncat", [
    "--chat",
    "--ssl",
    "--listen",
    "127.0.0.1",
    String(port),
    "--max-conns",
    String(options.maxConnections),
  ], {});
  const deadline = performance.now() + 30_000;
  while (!(await canConnect(port))) {
    if (child.done) throw new Error(`ncat exited at start: ${child.describe()}`);
    if (performance.now() > deadline) throw new Error("ncat did not start listening within 30 s");
    await sleep(20);
  }
  // The probe above counted as a chat member for an instant; let ncat forget it.
  await sleep(50);
  return {
    kind: "ncat",
    host: "127.0.0.1",
    port,
    pid: child.pid,
    stats: () => processStats(child.pid),
    stop: () => child.stop("SIGTERM", 3000),
    get running() {
      return !child.done;
    },
  };
}
