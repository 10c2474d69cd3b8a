/**
 * `securechat serve`: runs a relay until SIGINT or SIGTERM.
 *
 * stdout gets two lines once the relay is listening (`listening on
 * HOST:PORT` and `fingerprint FP`), so scripts and tests can read the bound
 * port; stderr gets one timestamped line per connection event. The same port
 * takes WebSocket clients (the web page) unless `--no-websocket`; pages from
 * loopback origins, and from those given with `--ws-origin`, may connect.
 *
 * @module
 */

import { Command, InvalidArgumentError, Option } from "commander";
import process from "node:process";
import { DEFAULT_PORT, Relay, RELAY_LIMIT_DEFAULTS as LIMITS } from "../lib/relay/relay.ts";
import {
  formatServerAddress,
  loadFingerprintList,
  type ServerAddress,
} from "../lib/identity/trust_store.ts";
import { loadOrCreateIdentity } from "./identity_option.ts";
import { prepareHome, securechatHome } from "./paths.ts";
import { duration, positiveInteger, serverAddress } from "./options.ts";
import { join } from "node:path";
import { openSqliteRelayStore } from "../lib/relay/store/sqlite_store.ts";
import { openNatsRelayStore } from "../lib/relay/store/nats_store.ts";
import { connectNats, parseNatsServers } from "../lib/relay/store/nats_connection.ts";
import { natsCredentialsFromEnvironment } from "../lib/relay/store/nats_credentials.ts";
import { NatsRoomFeed } from "../lib/relay/nats_room_feed.ts";
import type { RoomFeed } from "../lib/relay/room_feed.ts";
import type { RelayStore, StoreLimits } from "../lib/relay/store/relay_store.ts";
import { NetworkError } from "../lib/core/errors.ts";
import { CliError, ExitCode } from "./exit_codes.ts";
import { STORE_LIMIT_DEFAULTS } from "../lib/relay/store/relay_store.ts";
import { writeStdout } from "./stdio.ts";
import { LOG_FORMATS, LOG_LEVELS, relayLogger } from "./relay_log.ts";
import { isLoopback, relayMetrics, serveMetrics } from "./metrics.ts";

function parseListen(text: string): ServerAddress {
  return serverAddress(text, { allowPortZero: true });
}

/** An origin as browsers send it (`https://chat.example`, `http://host:8080`), or `*`. */
function parseOrigin(text: string): string {
  if (text === "*") return text;
  let url: URL | undefined;
  try {
    url = new URL(text);
  } catch {
    url = undefined;
  }
  if (url === undefined || url.origin !== text || !/^https?:$/.test(url.protocol)) {
    throw new InvalidArgumentError(
      `expected an origin such as https://chat.example (scheme, host, port if not the default; ` +
        `no path or trailing slash), got ${JSON.stringify(text)}`,
    );
  }
  return text;
}

function parseMetricsAddress(text: string): ServerAddress {
  const address = serverAddress(text, { allowPortZero: true });
  if (!isLoopback(address.host)) {
    throw new InvalidArgumentError(
      `${address.host} is not a loopback address; metrics are served on 127.0.0.1 or ::1 only ` +
        "(put a reverse proxy in front to expose them)",
    );
  }
  return address;
}

/**
 * Builds the `serve` sub-command.
 *
 * @example
 * ```ts
 * program.addCommand(serveCommand());
 * ```
 */
export function serveCommand(): Command {
  return new Command("serve")
    .description("run a relay that routes end-to-end encrypted rooms (it cannot read them)")
    .addOption(
      new Option("--listen <host:port>", "address to listen on; port 0 picks a free port")
        .argParser(parseListen)
        .default({ host: "127.0.0.1", port: DEFAULT_PORT }, `127.0.0.1:${DEFAULT_PORT}`),
    )
    .option("--identity <path>", "relay identity file (default: created under $SECURECHAT_HOME)")
    .option("--passphrase-file <file>", "read the identity's passphrase from the file's first line")
    .option("--allow <file>", "admit only the client fingerprints listed in this file")
    .option(
      "--handshake-timeout <seconds>",
      "drop clients that have not finished the handshake",
      positiveInteger,
      LIMITS.handshakeTimeoutMs / 1000,
    )
    .option(
      "--max-connections <n>",
      "connections open at once",
      positiveInteger,
      LIMITS.maxConnections,
    )
    .option(
      "--max-connections-per-address <n>",
      "connections open at once from one IP address (IPv6: one /64)",
      positiveInteger,
      LIMITS.maxConnectionsPerAddress,
    )
    .option(
      "--max-pending-handshakes <n>",
      "connections still in their handshake; when full, the oldest idle one is closed",
      positiveInteger,
      LIMITS.maxPendingHandshakes,
    )
    .option(
      "--max-queue <mib>",
      "MiB queued for one slow member before it is dropped",
      positiveInteger,
      LIMITS.maxQueuedBytesPerConnection / (1024 * 1024),
    )
    .option(
      "--rate-limit <records-per-second>",
      "records one connection may send per second, sustained; faster ones are dropped",
      positiveInteger,
      LIMITS.rateLimitPerSecond,
    )
    .option(
      "--rate-burst <n>",
      "records one connection may send at once above --rate-limit",
      positiveInteger,
      LIMITS.rateBurst,
    )
    .option(
      "--max-room-members <n>",
      "members in one room",
      positiveInteger,
      LIMITS.maxRoomMembers,
    )
    .option("--no-websocket", "refuse WebSocket clients (browsers); TCP only")
    .option(
      "--ws-origin <origin>",
      "also admit web pages from this origin over WebSocket (repeatable; * for any page)",
      (value: string, previous: string[]) => [...previous, parseOrigin(value)],
      [] as string[],
    )
    .addOption(
      new Option("--log-level <level>", "log this level and the more important ones")
        .choices(LOG_LEVELS).default("info"),
    )
    .addOption(
      new Option("--log-format <format>", "text lines, or one JSON object per line")
        .choices(LOG_FORMATS).default("text"),
    )
    .option(
      "--data <dir>",
      "keep durable rooms in DIR/relay.db (default: $SECURECHAT_HOME/relay)",
    )
    .option("--ephemeral", "keep nothing: every room lives only while members are connected")
    .option(
      "--cluster <nats-urls>",
      "share every room with the other relays on this NATS JetStream (nats://host:4222[,...]); " +
        "credentials from SECURECHAT_NATS_CREDENTIALS (a file) or SECURECHAT_NATS_USER, " +
        "SECURECHAT_NATS_PASSWORD, SECURECHAT_NATS_TOKEN",
    )
    .option(
      "--cluster-replicas <n>",
      "copies JetStream keeps of every room (1; 3 on a three-node NATS cluster)",
      positiveInteger,
      1,
    )
    .option(
      "--ephemeral-room <name>",
      "this room keeps nothing (repeatable)",
      (name: string, names: string[]) => [...names, name],
      [] as string[],
    )
    .option(
      "--retention <duration>",
      "delete stored messages not fetched within this time (90s, 30m, 12h, 30d)",
      duration,
      STORE_LIMIT_DEFAULTS.retentionMs,
    )
    .option(
      "--max-room-storage <mib>",
      "stored message bytes per room; past it new messages are refused (the sender is told)",
      positiveInteger,
      STORE_LIMIT_DEFAULTS.maxRoomBytes / (1024 * 1024),
    )
    .option(
      "--max-pending-per-member <n>",
      "messages kept for one member and not yet fetched; past it that member gets a gap notice",
      positiveInteger,
      STORE_LIMIT_DEFAULTS.maxItemsPerMember,
    )
    .option(
      "--metrics <host:port>",
      "serve Prometheus metrics at http://HOST:PORT/metrics (a loopback address; port 0 picks one)",
      parseMetricsAddress,
    )
    .action(async (options) => {
      const log = relayLogger({ level: options.logLevel, format: options.logFormat });
      if (options.identity === undefined || (!options.ephemeral && !options.data)) {
        await prepareHome();
      }
      const identity = await loadOrCreateIdentity({
        path: options.identity,
        passphraseFile: options.passphraseFile,
        notice: log,
      });
      const allow = options.allow ? await loadFingerprintList(options.allow) : undefined;
      const limits: Partial<StoreLimits> = {
        retentionMs: options.retention,
        maxRoomBytes: options.maxRoomStorage * 1024 * 1024,
        maxItemsPerMember: options.maxPendingPerMember,
      };
      const shared = options.cluster === undefined
        ? undefined
        : await openCluster({ urls: options.cluster, replicas: options.clusterReplicas, limits });
      const store = shared?.store ?? (options.ephemeral ? undefined : await openSqliteRelayStore({
        dir: options.data ?? join(securechatHome(), "relay"),
        limits,
      }));
      let relay: Relay | undefined = undefined;
      const metrics = options.metrics ? relayMetrics(() => relay!.stats()) : undefined;
      relay = await Relay.listen({
        observer: metrics?.observer,
        identity,
        host: options.listen.host,
        port: options.listen.port,
        allow,
        log,
        handshakeTimeoutMs: options.handshakeTimeout * 1000,
        maxConnections: options.maxConnections,
        maxConnectionsPerAddress: options.maxConnectionsPerAddress,
        maxPendingHandshakes: options.maxPendingHandshakes,
        maxQueuedBytesPerConnection: options.maxQueue * 1024 * 1024,
        rateLimitPerSecond: options.rateLimit,
        rateBurst: options.rateBurst,
        maxRoomMembers: options.maxRoomMembers,
        webSocket: options.websocket,
        webSocketOrigins: options.wsOrigin,
        store,
        feed: shared?.feed,
        ephemeralRooms: options.ephemeralRoom,
      }).catch(async (error) => {
        await shared?.close();
        await store?.close();
        throw error;
      });
      const listening = relay;
      const metricsServer = metrics
        ? await serveMetrics(metrics.registry, options.metrics)
        : undefined;
      // Handlers go in before the address is printed: whoever reads it may signal at once.
      const stopped = new Promise<void>((resolve) => {
        const stop = (signal: string) => {
          log(`${signal}: shutting down`);
          Promise.all([listening.close(), metricsServer?.close()])
            .then(() => shared !== undefined ? shared.close() : store?.close())
            .then(() => resolve(), (error) => {
              log(`closing the store failed: ${(error as Error).message}`, "error");
              resolve();
            });
        };
        process.on("SIGINT", () => stop("SIGINT"));
        process.on("SIGTERM", () => stop("SIGTERM"));
      });
      writeStdout(`listening on ${formatServerAddress(listening.address)}\n`);
      writeStdout(`fingerprint ${listening.fingerprint}\n`);
      if (metricsServer) {
        log(`metrics on http://${formatServerAddress(metricsServer.address)}/metrics`);
      }
      log(
        store === undefined
          ? "rooms are ephemeral: nothing is stored (--ephemeral)"
          : shared !== undefined
          ? `durable rooms shared through NATS JetStream at ${store.location} ` +
            `as ${shared.feed.origin}`
          : `durable rooms kept in ${store.location}` +
            (options.ephemeralRoom.length > 0
              ? `; ephemeral: ${options.ephemeralRoom.join(", ")}`
              : ""),
      );
      if (allow) log(`admitting only the ${allow.size} fingerprint(s) in ${options.allow}`);
      await stopped;
    });
}

/** The store and feed of a relay in a cluster, on one NATS connection. */
async function openCluster(options: {
  urls: string;
  replicas: number;
  limits: Partial<StoreLimits>;
}): Promise<{ store: RelayStore; feed: RoomFeed; close: () => Promise<void> }> {
  let servers: string[];
  try {
    servers = parseNatsServers(options.urls);
  } catch (error) {
    throw new CliError(`--cluster: ${(error as Error).message}`, ExitCode.usage);
  }
  const credentials = natsCredentialsFromEnvironment(process.env);
  let connection;
  try {
    connection = await connectNats({ servers, credentials, name: "securechat relay" });
  } catch (error) {
    throw new NetworkError((error as Error).message);
  }
  try {
    const store = await openNatsRelayStore({
      connection,
      replicas: options.replicas,
      limits: options.limits,
    });
    const feed = NatsRoomFeed.open({ connection });
    return {
      store,
      feed,
      close: async () => {
        await feed.close();
        await store.close();
        await connection.close();
      },
    };
  } catch (error) {
    await connection.close();
    throw error;
  }
}
