/**
 * Real `nats-server` processes for the cluster store's tests (Debian's
 * package, installed by `.ci/run`): one server with JetStream on a loopback
 * port, or a three-node JetStream cluster with routes on loopback, each with
 * its own store directory, stopped (and their directories removed) by the
 * test. Without `nats-server` the tests that need it are skipped with a
 * warning, and fail under CI (`CI` set).
 *
 * @example
 * ```ts
 * const server = await startNatsServer();
 * try {
 *   const store = await openNatsRelayStore({ servers: server.url });
 * } finally {
 *   await server.stop();
 * }
 * ```
 *
 * @module
 */

import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { connect } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";

/** True when `nats-server` can be run. */
export const HAVE_NATS = spawnSync("nats-server", ["--version"], { stdio: "ignore" }).status === 0;

/**
 * Registers a failing test under CI, or warns, when `nats-server` is missing.
 *
 * @example
 * ```ts
 * requireNatsServer("tests/nats_store_test.ts");
 * Deno.test({ name: "...", ignore: !HAVE_NATS, fn: async () => {} });
 * ```
 */
export function requireNatsServer(file: string): void {
  if (HAVE_NATS) return;
  const text = `nats-server is not installed: the tests of ${file} cannot run ` +
    "(install it: apt-get install -y nats-server)";
  if ((process.env.CI ?? "") !== "") {
    Deno.test(`${file} needs nats-server`, () => {
      throw new Error(text);
    });
  } else {
    console.warn(`warning: ${text}; skipping them`);
  }
}

/**
 * A loopback port free right now (the OS picks it).
 *
 * @example
 * ```ts
 * const port = await freePort();
 * ```
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
}

/** Options for {@linkcode startNatsServer}. */
export interface NatsServerOptions {
  /** Client port (default: a free one); kept across restarts. */
  port?: number;
  /** JetStream on (default true). */
  jetstream?: boolean;
  /** Extra configuration file contents (e.g. an authorization block). */
  config?: string;
  /** Extra arguments (cluster options). */
  args?: string[];
  /** Server name (needed in a cluster). */
  name?: string;
}

/**
 * One `nats-server` process with its store directory.
 *
 * @example
 * ```ts
 * const server = await startNatsServer();
 * await server.kill();
 * await server.start();
 * ```
 */
export class NatsServer {
  readonly port: number;
  readonly dir: string;
  #options: NatsServerOptions;
  #child?: ChildProcess;
  #log = "";

  /** @example `new NatsServer(4222, dir, {})` */
  constructor(port: number, dir: string, options: NatsServerOptions) {
    this.port = port;
    this.dir = dir;
    this.#options = options;
  }

  /** `nats://127.0.0.1:<port>`. @example `server.url` */
  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  /** What the server printed, for failure messages. @example `server.log` */
  get log(): string {
    return this.#log;
  }

  /** Starts (or restarts) the process and waits until it accepts clients. @example `await server.start()` */
  async start(): Promise<void> {
    const args = ["-a", "127.0.0.1", "-p", String(this.port)];
    if (this.#options.jetstream !== false) args.push("-js", "-sd", join(this.dir, "js"));
    if (this.#options.name !== undefined) args.push("-n", this.#options.name);
    if (this.#options.config !== undefined) {
      const path = join(this.dir, "nats.conf");
      writeFileSync(path, this.#options.config, { mode: 0o600 });
      args.push("-c", path);
    }
    args.push(...(this.#options.args ?? []));
    const child = spawn("nats-server", args, { stdio: ["ignore", "pipe", "pipe"] });
    this.#child = child;
    const append = (chunk: Buffer) => {
      this.#log = (this.#log + chunk.toString()).slice(-20_000);
    };
    child.stdout!.on("data", append);
    child.stderr!.on("data", append);
    const deadline = Date.now() + 15_000;
    while (!this.#log.includes("Server is ready")) {
      if (child.exitCode !== null) throw new Error(`nats-server exited:\n${this.#log}`);
      if (Date.now() > deadline) throw new Error(`nats-server did not start:\n${this.#log}`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  /** Kills the process with SIGKILL and waits for it to exit. @example `await server.kill()` */
  kill(): Promise<void> {
    return this.#signal("SIGKILL");
  }

  /** Stops the process (SIGTERM, then SIGKILL) and removes its directory. @example `await server.stop()` */
  async stop(): Promise<void> {
    await this.#signal("SIGTERM", 5_000);
    rmSync(this.dir, { recursive: true, force: true });
  }

  async #signal(signal: NodeJS.Signals, grace = 0): Promise<void> {
    const child = this.#child;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill(signal);
    const timer = grace > 0 ? setTimeout(() => child.kill("SIGKILL"), grace) : undefined;
    await exited;
    clearTimeout(timer);
  }
}

/**
 * Starts one `nats-server` with JetStream (unless told otherwise).
 *
 * @example
 * ```ts
 * const server = await startNatsServer({ config: "authorization { token: s3cret }" });
 * ```
 */
export async function startNatsServer(options: NatsServerOptions = {}): Promise<NatsServer> {
  const dir = mkdtempSync(join(tmpdir(), "securechat-nats-"));
  const server = new NatsServer(options.port ?? await freePort(), dir, options);
  try {
    await server.start();
  } catch (error) {
    await server.stop();
    throw error;
  }
  return server;
}

/**
 * Starts `n` JetStream servers routed into one cluster on loopback, and
 * waits until JetStream has a leader.
 *
 * @example
 * ```ts
 * const nodes = await startNatsCluster(3);
 * ```
 */
export async function startNatsCluster(n = 3): Promise<NatsServer[]> {
  const ports = [];
  for (let i = 0; i < n; i++) ports.push({ client: await freePort(), route: await freePort() });
  const routes = ports.map((p) => `nats://127.0.0.1:${p.route}`).join(",");
  const nodes: NatsServer[] = [];
  try {
    for (let i = 0; i < n; i++) {
      nodes.push(
        await startNatsServer({
          port: ports[i].client,
          name: `node-${i + 1}`,
          args: [
            "--cluster_name",
            "securechat-test",
            "--cluster",
            `nats://127.0.0.1:${ports[i].route}`,
            "--routes",
            routes,
          ],
        }),
      );
    }
    await waitForJetStream(nodes.map((node) => node.url));
    return nodes;
  } catch (error) {
    await Promise.all(nodes.map((node) => node.stop()));
    throw error;
  }
}

/**
 * Waits until JetStream answers through these servers (a cluster needs a
 * meta leader first).
 *
 * @example
 * ```ts
 * await waitForJetStream(["nats://127.0.0.1:4222"]);
 * ```
 */
export async function waitForJetStream(servers: string[], timeoutMs = 30_000): Promise<void> {
  const nc = await connect({ servers, timeout: 5_000 });
  try {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        const jsm = await jetstreamManager(nc, { timeout: 2_000 });
        await jsm.getAccountInfo();
        return;
      } catch (error) {
        if (Date.now() > deadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
  } finally {
    await nc.close();
  }
}
