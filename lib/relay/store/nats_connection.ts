/**
 * Connecting the JetStream store to NATS: server addresses, credentials,
 * and what went wrong told in one line (NATS unreachable, credentials
 * refused, JetStream disabled) instead of a client library's stack.
 *
 * @module
 */

import {
  credsAuthenticator,
  type NatsConnection,
  NatsConnectionImpl,
  nkeyAuthenticator,
  setTransportFactory,
} from "@nats-io/nats-core/internal";
import { nodeResolveHost, NodeTransport } from "@nats-io/transport-node/lib/node_transport.js";
import type { Socket } from "node:net";
import type { NatsCredentials } from "./nats_credentials.ts";
import { StoreError } from "./relay_store.ts";

/** Options for {@linkcode connectNats}. */
export interface NatsConnectOptions {
  /** `nats://host:port` or `host:port`, one or more (any of a cluster's servers). */
  servers: string[];
  credentials?: NatsCredentials;
  /** Connection name the servers show in their monitoring. */
  name?: string;
  /** How long to wait for the first connection, ms (default 5,000). */
  timeoutMs?: number;
}

/**
 * Node's transport, keeping a listener for socket errors after it is done
 * with a socket: under Deno's `node:net` a socket the server reset (as NATS
 * does after refusing credentials) can still report the reset once the
 * transport removed its listeners, which would end the process instead of
 * failing the connection attempt.
 */
class SteadyTransport extends NodeTransport {
  override async dial(hostPort: { hostname: string; port: number }): Promise<Socket> {
    const socket = await super.dial(hostPort as never);
    const removeAll = socket.removeAllListeners.bind(socket);
    socket.removeAllListeners = ((...args: Parameters<Socket["removeAllListeners"]>) => {
      removeAll(...args);
      socket.on("error", () => {});
      return socket;
    }) as Socket["removeAllListeners"];
    return socket;
  }
}

/**
 * Checks and normalises server addresses: `nats://host:port` (or
 * `tls://`), `host:port`, or `host`; credentials inside an address are
 * refused (they would show in the process list).
 *
 * @example
 * ```ts
 * parseNatsServers("nats://a:4222,b:4222"); // ["nats://a:4222", "nats://b:4222"]
 * ```
 */
export function parseNatsServers(list: string | string[]): string[] {
  const items = (Array.isArray(list) ? list : [list]).flatMap((item) => item.split(","))
    .map((item) => item.trim()).filter((item) => item !== "");
  if (items.length === 0) throw new StoreError("no NATS server given; use nats://HOST:4222");
  return items.map((item) => {
    const withScheme = /^[a-z]+:\/\//.test(item) ? item : `nats://${item}`;
    let url: URL;
    try {
      url = new URL(withScheme);
    } catch {
      throw new StoreError(`${item} is not a NATS server address; use nats://HOST:4222`);
    }
    if (url.protocol !== "nats:" && url.protocol !== "tls:") {
      throw new StoreError(`${item}: NATS addresses start with nats:// or tls://`);
    }
    if (url.username !== "" || url.password !== "") {
      throw new StoreError(
        "NATS credentials inside a server address would show in the process list; " +
          "put them in a credentials file or the environment (SECURECHAT_NATS_*)",
      );
    }
    if (url.hostname === "" || url.pathname.length > 1 || url.search !== "") {
      throw new StoreError(`${item} is not a NATS server address; use nats://HOST:4222`);
    }
    return `${url.protocol}//${url.host}${url.port === "" ? ":4222" : ""}`;
  });
}

/**
 * Connects to NATS. Rejects with a one-line {@linkcode StoreError} when no
 * server answers or the credentials are refused. Once connected, the client
 * reconnects by itself (to any server of the cluster) for as long as the
 * connection is open.
 *
 * @example
 * ```ts
 * const nc = await connectNats({ servers: ["nats://127.0.0.1:4222"] });
 * ```
 */
export async function connectNats(options: NatsConnectOptions): Promise<NatsConnection> {
  const servers = parseNatsServers(options.servers);
  setTransportFactory({ factory: () => new SteadyTransport(), dnsResolveFn: nodeResolveHost });
  const credentials = options.credentials ?? { kind: "none" };
  try {
    return await NatsConnectionImpl.connect({
      servers,
      name: options.name ?? "securechat relay",
      timeout: options.timeoutMs ?? 5_000,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      pingInterval: 10_000,
      ...authOptions(credentials),
    });
  } catch (error) {
    throw describeNatsError(error, servers.join(","));
  }
}

function authOptions(credentials: NatsCredentials): Record<string, unknown> {
  switch (credentials.kind) {
    case "none":
      return {};
    case "user":
      return { user: credentials.user, pass: credentials.password };
    case "token":
      return { token: credentials.token };
    case "nkey":
      return { authenticator: nkeyAuthenticator(credentials.seed) };
    case "creds":
      return { authenticator: credsAuthenticator(credentials.creds) };
  }
}

/**
 * Turns a NATS client error into a one-line {@linkcode StoreError} that says
 * what happened and what to do; a `StoreError` passes unchanged. `opened`:
 * the store had opened (so JetStream was there).
 *
 * @example
 * ```ts
 * throw describeNatsError(error, "nats://127.0.0.1:4222");
 * ```
 */
export function describeNatsError(
  error: unknown,
  where: string,
  context: { opened?: boolean } = {},
): StoreError {
  if (error instanceof StoreError) return error;
  const name = (error as { name?: string })?.name ?? "";
  const message = oneLine((error as { message?: string })?.message ?? String(error));
  const code = (error as { code?: unknown })?.code;
  if (name === "AuthorizationError" || /authorization violation/i.test(message)) {
    return new StoreError(
      `NATS at ${where} refused the credentials (${message}); check the credentials file or ` +
        "the SECURECHAT_NATS_* variables",
    );
  }
  const notEnabled = name === "JetStreamNotEnabled" || code === 10039 ||
    /jetstream.*not enabled/i.test(message);
  if (notEnabled && context.opened === true) {
    // It was enabled when the store opened: the stream has no leader (too few servers up).
    return new StoreError(
      `NATS JetStream at ${where} does not answer for the store's streams (no leader: most of ` +
        "their servers are down or cut off); the relay refuses new messages until it is back",
    );
  }
  if (notEnabled) {
    return new StoreError(
      `NATS at ${where} has JetStream disabled; run nats-server with -js ` +
        "(or a jetstream block in its configuration)",
    );
  }
  if (
    name === "ConnectionError" || name === "TimeoutError" || name === "ClosedConnectionError" ||
    name === "NoRespondersError" || /timeout|refused|closed|no responders/i.test(message)
  ) {
    return new StoreError(
      `cannot reach NATS JetStream at ${where} (${message}); check the address and that ` +
        "nats-server is running; the relay refuses new messages until it is back",
    );
  }
  return new StoreError(`NATS at ${where} failed: ${message}`);
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, " ").trim();
}
