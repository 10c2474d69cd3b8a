/**
 * `serve --metrics HOST:PORT`: the relay's counters as Prometheus metrics,
 * served over HTTP at `/metrics` on a loopback address of its own, apart
 * from the relay's port. Built on prom-client (the Prometheus client most
 * Node services use); the relay itself only exposes `stats()` and an
 * observer (lib/relay/observer.ts), so lib/ needs no metrics library.
 *
 * Room names and nicks are never labels: the only label is a refusal's
 * reason, from a fixed list.
 *
 * @module
 */

import { createServer, type Server } from "node:http";
import { isIPv4, isIPv6 } from "node:net";
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import { REFUSAL_REASONS, type RelayObserver, type RelayStats } from "../lib/relay/observer.ts";
import type { ServerAddress } from "../lib/identity/trust_store.ts";
import { socketErrorText } from "../lib/core/errors.ts";
import { NetworkError } from "../lib/core/errors.ts";

/** Handshake duration buckets, in seconds: a handshake takes about a millisecond of CPU. */
const HANDSHAKE_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/**
 * Whether `host` is a loopback address (127.0.0.0/8, ::1) or `localhost`.
 *
 * @example
 * ```ts
 * isLoopback("127.0.0.1"); // true
 * isLoopback("0.0.0.0"); // false
 * ```
 */
export function isLoopback(host: string): boolean {
  if (host === "localhost") return true;
  if (isIPv4(host)) return host.startsWith("127.");
  if (isIPv6(host)) return host === "::1" || /^::ffff:127\./i.test(host);
  return false;
}

/** The metrics of one relay: the registry, and the observer to pass to the relay. */
export interface RelayMetrics {
  registry: Registry;
  observer: RelayObserver;
}

/**
 * Creates the Prometheus metrics for a relay whose counters `stats()`
 * returns; the returned observer must be given to the relay.
 *
 * @example
 * ```ts
 * const metrics = relayMetrics(() => relay.stats());
 * ```
 */
export function relayMetrics(stats: () => RelayStats): RelayMetrics {
  const registry = new Registry();
  // The process's CPU, memory, file descriptors and event-loop lag, as every Node service has.
  collectDefaultMetrics({ register: registry });
  const gauge = (name: string, help: string, value: (s: RelayStats) => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(value(stats()));
      },
    });
  gauge("securechat_relay_connections_open", "Connections open now", (s) => s.connectionsOpen);
  gauge(
    "securechat_relay_handshakes_pending",
    "Connections still in their handshake",
    (s) => s.handshakesPending,
  );
  gauge("securechat_relay_rooms", "Rooms with at least one member", (s) => s.rooms);
  gauge("securechat_relay_members", "Members in all rooms", (s) => s.members);
  const total = (name: string, help: string, value: (s: RelayStats) => number) => {
    let reported = 0;
    return new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        const now = value(stats());
        if (now > reported) this.inc(now - reported);
        reported = now;
      },
    });
  };
  total(
    "securechat_relay_connections_accepted_total",
    "Connections accepted",
    (s) => s.connectionsAccepted,
  );
  total(
    "securechat_relay_records_received_total",
    "Records received from clients",
    (s) => s.recordsReceived,
  );
  total(
    "securechat_relay_record_bytes_received_total",
    "Bytes of records received from clients",
    (s) => s.recordBytesReceived,
  );
  total("securechat_relay_records_sent_total", "Records queued to clients", (s) => s.recordsSent);
  total(
    "securechat_relay_record_bytes_sent_total",
    "Bytes of records queued to clients",
    (s) => s.recordBytesSent,
  );
  const refusals = new Counter({
    name: "securechat_relay_refusals_total",
    help: "Connections, joins and members refused or dropped, by reason",
    labelNames: ["reason"],
    registers: [registry],
  });
  // Every reason from the start, so a rate over a reason that never happened is 0, not absent.
  for (const reason of REFUSAL_REASONS) refusals.inc({ reason }, 0);
  const handshakes = new Histogram({
    name: "securechat_relay_handshake_duration_seconds",
    help: "Time from accepting a connection to the end of its handshake",
    buckets: HANDSHAKE_BUCKETS,
    registers: [registry],
  });
  return {
    registry,
    observer: {
      handshake: (seconds) => handshakes.observe(seconds),
      refusal: (reason) => refusals.inc({ reason }),
    },
  };
}

/**
 * Serves `registry` at `http://HOST:PORT/metrics`; HOST must be a loopback
 * address. Resolves once listening, with the bound address.
 *
 * @example
 * ```ts
 * const server = await serveMetrics(metrics.registry, { host: "127.0.0.1", port: 9464 });
 * ```
 */
export function serveMetrics(
  registry: Registry,
  address: ServerAddress,
): Promise<{ address: ServerAddress; close: () => Promise<void> }> {
  const server: Server = createServer((request, response) => {
    if (request.method !== "GET" || (request.url ?? "").split("?")[0] !== "/metrics") {
      response.writeHead(404, { "content-type": "text/plain" }).end("not found: try /metrics\n");
      return;
    }
    registry.metrics().then(
      (text) => response.writeHead(200, { "content-type": registry.contentType }).end(text),
      (error: Error) => response.writeHead(500).end(`${error.message}\n`),
    );
  });
  return new Promise((resolve, reject) => {
    server.once("error", (error) =>
      reject(
        new NetworkError(
          `cannot serve metrics on ${address.host}:${address.port}: ${socketErrorText(error)}`,
        ),
      ));
    server.listen({ host: address.host, port: address.port }, () => {
      const bound = server.address() as { address: string; port: number };
      resolve({
        address: { host: bound.address, port: bound.port },
        close: () => new Promise((done) => server.close(() => done())),
      });
    });
  });
}
