/**
 * `deno task bench`: securechat's relay and clients beside `ncat --chat
 * --ssl`, on loopback, in one run. Prints a side-by-side table and writes
 * `latest.json`, `latest.md` and `chart.svg` (default `bench/results/`).
 *
 * ```sh
 * deno task bench                      # everything (a few minutes)
 * deno task bench:smoke                # seconds; tiny sizes; for CI
 * deno task bench --only pipe,scale    # some scenarios (also: storage, the relay's store alone;
 *                                      # cluster, the store on NATS JetStream)
 * deno task bench --no-ncat            # securechat alone
 * deno task bench --profile            # also V8 CPU profiles of the relay (bench/results/profiles)
 * deno task bench --render-only        # redraw latest.md and chart.svg from latest.json
 * ```
 *
 * The relay under test runs in its own process (`securechat serve`, or
 * ncat); the load clients run in this process. The machine has two cores:
 * the relay gets about one, load generation the other, and the table says
 * how much of each was used (`relayCpu`, `loadCpu` in latest.json).
 *
 * @module
 */

import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { cryptoBackend } from "../lib/crypto/crypto_backend.ts";
import { runHandshakes, runScale } from "./connections.ts";
import { makeLines, runNcatPipe, runSecurechatPipe } from "./pipe.ts";
import { ROOT, securechatCommand } from "./processes.ts";
import {
  type BenchResults,
  chartSvg,
  checkTargets,
  consoleTable,
  type FanoutEntry,
  type LatencyEntry,
  markdownReport,
} from "./report.ts";
import { type Server, startNcat, startSecurechat } from "./servers.ts";
import { backgroundCpuShare, findNcat, machineInfo, sleep } from "./system.ts";
import { runStorage } from "./storage.ts";
import { runClusterStore } from "./cluster_store.ts";
import { HAVE_NATS } from "../tests/support/nats_server.ts";
import { runTraffic, type TrafficOptions, type TrafficResult } from "./traffic.ts";
import { runWebBench } from "./web.ts";
import { runRoomCatchUp, runRoomFanout } from "./rooms.ts";
import { startNatsServer } from "../tests/support/nats_server.ts";

const SCENARIOS = [
  "fanout",
  "latency",
  "pipe",
  "handshakes",
  "scale",
  "bulk",
  "storage",
  "cluster",
  "rooms",
  "web",
] as const;
type Scenario = typeof SCENARIOS[number];

/** Sizes for a full run and for the smoke run. */
const PLANS = {
  full: {
    fanoutRooms: [10, 50, 200],
    fanoutSenders: [1, 5],
    e2eMaxRoom: 50,
    window: 2000,
    warmupMs: 500,
    durationMs: 3000,
    latencyRooms: [10, 50, 200],
    pipeLines: 100_000,
    pipeReceivers: 10,
    handshakes: 3000,
    ncatHandshakes: 900,
    scaleMembers: 10_000,
    ncatScaleMembers: 1000,
    scaleRoom: 100,
    // V8's memory reducer runs after about 8 idle seconds (measured: 281 → 186 MiB at 10 s).
    scaleSettleMs: 12_000,
    bulkWindow: 32,
    storage: {
      appends: 20_000,
      eachAppends: 1_000,
      inflight: 64,
      members: 50,
      bodyBytes: 200,
      readItems: 10_000,
    },
    cluster: { appends: 20_000, inflight: 64, members: 50, bodyBytes: 200, readItems: 10_000 },
    rooms: { members: [10, 50], messages: 3000, catchUp: 10_000 },
    webMessages: 3000,
  },
  smoke: {
    fanoutRooms: [10],
    fanoutSenders: [1],
    e2eMaxRoom: 10,
    window: 500,
    warmupMs: 100,
    durationMs: 300,
    latencyRooms: [10],
    pipeLines: 1000,
    pipeReceivers: 2,
    handshakes: 40,
    ncatHandshakes: 20,
    scaleMembers: 100,
    ncatScaleMembers: 50,
    scaleRoom: 50,
    scaleSettleMs: 1000,
    bulkWindow: 8,
    storage: {
      appends: 300,
      eachAppends: 40,
      inflight: 16,
      members: 10,
      bodyBytes: 200,
      readItems: 500,
    },
    cluster: { appends: 300, inflight: 16, members: 10, bodyBytes: 200, readItems: 200 },
    rooms: { members: [5], messages: 100, catchUp: 200 },
    webMessages: 200,
  },
};

interface Args {
  smoke: boolean;
  out: string;
  only: Set<Scenario>;
  ncat: boolean;
  install: boolean;
  profile: boolean;
  renderOnly: boolean;
}

function usage(message: string): never {
  console.error(`bench: ${message}`);
  console.error(
    "usage: bench/main.ts [--smoke] [--out DIR] " +
      "[--only fanout,latency,pipe,handshakes,scale,bulk,storage,cluster,rooms,web] " +
      "[--no-ncat] [--no-install] [--profile] [--render-only]",
  );
  process.exit(2);
}

function parseArgs(argv: string[]): Args {
  const args: Args = {
    smoke: false,
    out: "",
    only: new Set(SCENARIOS),
    ncat: true,
    install: true,
    profile: false,
    renderOnly: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--smoke") args.smoke = true;
    else if (arg === "--no-ncat") args.ncat = false;
    else if (arg === "--no-install") args.install = false;
    else if (arg === "--profile") args.profile = true;
    else if (arg === "--render-only") args.renderOnly = true;
    else if (arg === "--out") args.out = argv[++i] ?? usage("--out needs a directory");
    else if (arg === "--only") {
      const names = (argv[++i] ?? usage("--only needs scenario names")).split(",");
      for (const name of names) {
        if (!SCENARIOS.includes(name as Scenario)) usage(`unknown scenario "${name}"`);
      }
      args.only = new Set(names as Scenario[]);
    } else usage(`unknown argument "${arg}"`);
  }
  // The smoke run never installs anything: CI must stay fast and offline-safe.
  if (args.smoke) args.install = false;
  args.out ||= args.smoke
    ? join(tmpdir(), "securechat-bench-smoke")
    : join(ROOT, "bench", "results");
  return args;
}

const log = (line: string) => console.error(`bench: ${line}`);

/** Writes latest.md and chart.svg for `results` into `out`, and prints the table. */
function writeReports(results: BenchResults, out: string): void {
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, "latest.json"), JSON.stringify(results, null, 2) + "\n");
  writeFileSync(join(out, "latest.md"), markdownReport(results));
  writeFileSync(join(out, "chart.svg"), chartSvg(results));
  console.log(consoleTable(results));
  console.log(`\nwrote ${join(out, "latest.json")}, latest.md and chart.svg`);
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (args.renderOnly) {
    // Redraws the table and chart from the last run, e.g. after changing the report's layout.
    const results = JSON.parse(readFileSync(join(args.out, "latest.json"), "utf8")) as BenchResults;
    results.targets = checkTargets(results);
    writeReports(results, args.out);
    return;
  }
  const plan = args.smoke ? PLANS.smoke : PLANS.full;
  const scratch = mkdtempSync(join(tmpdir(), "securechat-bench-"));
  const profileDir = join(args.out, "profiles");
  if (args.profile) mkdirSync(profileDir, { recursive: true });
  let scratchCount = 0;
  const newDir = (name: string) => {
    const dir = join(scratch, `${++scratchCount}-${name}`);
    mkdirSync(dir, { recursive: true });
    return dir;
  };

  const ncatStatus = args.ncat
    ? await findNcat({ install: args.install, log })
    : { available: false as const, reason: "skipped (--no-ncat)" };
  if (!ncatStatus.available) log(`${ncatStatus.reason}; reporting securechat alone`);
  const background = await backgroundCpuShare(args.smoke ? 200 : 1000);
  if (background !== null && background > 0.1) {
    log(
      `warning: other processes keep ${(background * 100).toFixed(0)}% of the machine busy; ` +
        "figures will be lower and noisier than on an idle machine",
    );
  }

  const results: BenchResults = {
    version: 1,
    date: new Date().toISOString(),
    smoke: args.smoke,
    machine: machineInfo(ncatStatus.available ? ncatStatus.version : null),
    securechat: {
      command: securechatCommand().label,
      crypto: { ...cryptoBackend.names },
      relayLimits: "per-connection rate limits and per-address connection caps raised so they " +
        "do not cap the measurement (every bench client comes from 127.0.0.1)",
    },
    ncat: ncatStatus.available
      ? { available: true, version: ncatStatus.version }
      : { available: false, reason: ncatStatus.reason },
    loadGeneration: "load clients run in the bench process (one core at most); each relay runs " +
      "alone in its own process; the machine's other processes are reported as otherCpu",
    backgroundCpuShare: background === null ? null : Math.round(background * 100) / 100,
    fanout: [],
    latency: [],
    pipe: null,
    handshakes: null,
    scale: null,
    bulk: null,
    storage: null,
    cluster: null,
    rooms: null,
    web: null,
    targets: [],
    errors: [],
  };
  const failed = (what: string, error: unknown) => {
    const message = `${what}: ${(error as Error)?.message ?? String(error)}`;
    log(`error: ${message}`);
    results.errors.push(message);
  };

  // The smoke run shares one relay of each kind between scenarios (starting one takes most
  // of a second); a full run starts a fresh one for each measurement.
  const shared = new Map<string, Server>();
  /** Runs `work` against a relay of `kind`, stopping it afterwards unless it is shared. */
  const withServer = async <T>(
    kind: "securechat" | "ncat",
    label: string,
    work: (server: Server) => Promise<T>,
    maxConnections = 1000,
  ): Promise<T | null> => {
    if (kind === "ncat" && !ncatStatus.available) return null;
    // Scale measures the relay's memory: it always gets a fresh one.
    const reuse = args.smoke && label !== "scale";
    let server: Server | undefined = reuse ? shared.get(kind) : undefined;
    const profile = args.profile && kind === "securechat" ? newDir(`profile-${label}`) : undefined;
    try {
      if (server === undefined || !server.running) {
        server = kind === "ncat"
          ? await startNcat({ maxConnections: reuse ? 1000 : maxConnections })
          // Beside ncat, which keeps nothing, the relay keeps nothing either; what storing
          // costs is the rooms scenario's to measure.
          : await startSecurechat({
            dir: newDir(label),
            profileDir: profile,
            serveArgs: ["--ephemeral"],
          });
        if (reuse) shared.set(kind, server);
      }
      return await work(server);
    } catch (error) {
      failed(`${label} (${kind})`, error);
      return null;
    } finally {
      if (!reuse) {
        await server?.stop();
        if (profile) keepProfile(profile, join(profileDir, `${label}.md`));
      }
    }
  };

  const traffic = (
    kind: "securechat" | "ncat",
    label: string,
    options: Omit<TrafficOptions, "server">,
  ) =>
    withServer(kind, label, async (server) => {
      const result = await runTraffic({ ...options, server });
      log(
        `${label} ${options.variant}: ${
          result.deliveriesPerSecond.toLocaleString("en")
        } deliveries/s, ` +
          `p50 ${result.latency.p50} ms, p99 ${result.latency.p99} ms ` +
          `(relay ${result.relayCpu} cores, load ${result.loadCpu}, others ${result.otherCpu})`,
      );
      return result;
    }, options.members + 10);

  const began = performance.now();
  const wants = (scenario: Scenario) => args.only.has(scenario);
  const starting = (what: string) =>
    log(`${what} (at ${((performance.now() - began) / 1000).toFixed(1)} s)`);

  if (wants("fanout") || wants("latency")) {
    starting(wants("fanout") ? "fan-out and latency" : "latency");
    const rooms = wants("fanout") ? plan.fanoutRooms : plan.latencyRooms;
    const senderCounts = wants("fanout") ? plan.fanoutSenders : [1];
    for (const senders of senderCounts) {
      for (const members of rooms) {
        const entry: FanoutEntry = {
          senders,
          members,
          transport: null,
          e2e: null,
          ncat: null,
          notes: [],
        };
        const common = {
          members,
          senders,
          textBytes: 100,
          mode: { kind: "max" as const, window: plan.window },
          warmupMs: plan.warmupMs,
          durationMs: plan.durationMs,
        };
        const label = `fanout-${senders}x${members}`;
        entry.transport = await traffic("securechat", label, { ...common, variant: "transport" });
        if (members <= plan.e2eMaxRoom) {
          entry.e2e = await traffic("securechat", `${label}-e2e`, { ...common, variant: "e2e" });
        } else {
          entry.notes.push(
            `end-to-end variant not run above ${plan.e2eMaxRoom} members: every member sends its ` +
              "sender key to every other in a pairwise envelope, so setting up the room costs " +
              "O(members²) key agreements",
          );
        }
        entry.ncat = await traffic("ncat", label, { ...common, variant: "ncat" });
        if (wants("fanout")) results.fanout.push(entry);
        if (wants("latency") && senders === 1 && plan.latencyRooms.includes(members)) {
          const latency: LatencyEntry = { room: members, securechat: null, ncat: null };
          results.latency.push(latency);
          const paced = (max: TrafficResult | null) =>
            max && max.deliveriesPerSecond > 0
              ? {
                kind: "paced" as const,
                // Half the maximum deliveries, spread over the room's receivers.
                textsPerSecondPerSender: Math.max(
                  1,
                  Math.round(max.deliveriesPerSecond / 2 / (members - 1)),
                ),
              }
              : null;
          const ours = paced(entry.transport);
          if (ours) {
            latency.securechat = await traffic("securechat", `latency-${members}`, {
              ...common,
              variant: "transport",
              mode: ours,
            });
          }
          const theirs = paced(entry.ncat);
          if (theirs) {
            latency.ncat = await traffic("ncat", `latency-${members}`, {
              ...common,
              variant: "ncat",
              mode: theirs,
            });
          }
        }
      }
    }
  }

  if (wants("pipe")) {
    starting("pipe");
    const lines = makeLines(plan.pipeLines, 90);
    const pipeOptions = {
      lines,
      receivers: plan.pipeReceivers,
      timeoutMs: args.smoke ? 60_000 : 180_000,
    };
    results.pipe = { securechat: null, ncat: null };
    results.pipe.securechat = await withServer("securechat", "pipe", async (server) => {
      const result = await runSecurechatPipe({ ...pipeOptions, server, dir: newDir("pipe-run") });
      log(
        `pipe securechat: ${result.wallSeconds} s, ${result.linesIntact} of ${result.linesExpected} intact`,
      );
      if (result.error) results.errors.push(`pipe (securechat): ${result.error}`);
      return result;
    });
    results.pipe.ncat = await withServer("ncat", "pipe", async (server) => {
      const result = await runNcatPipe({ ...pipeOptions, server, dir: newDir("pipe-ncat") });
      log(
        `pipe ncat: ${result.wallSeconds} s, ${result.linesIntact} of ${result.linesExpected} intact`,
      );
      // Lines ncat loses are a finding about ncat, reported in the table, not a bench failure.
      return result;
    });
  }

  if (wants("handshakes")) {
    starting("handshakes");
    results.handshakes = { securechat: null, ncat: null };
    const concurrency = args.smoke ? 8 : 64;
    results.handshakes.securechat = await withServer("securechat", "handshakes", async (server) => {
      const result = await runHandshakes({ server, count: plan.handshakes, concurrency });
      log(`handshakes securechat: ${result.perSecond}/s, relay ${result.relayCpuMicros} µs each`);
      return result;
    });
    results.handshakes.ncat = await withServer("ncat", "handshakes", async (server) => {
      const result = await runHandshakes({ server, count: plan.ncatHandshakes, concurrency });
      log(`handshakes ncat: ${result.perSecond}/s, relay ${result.relayCpuMicros} µs each`);
      return result;
    }, plan.ncatHandshakes + 10);
  }

  if (wants("scale")) {
    starting("scale");
    results.scale = { securechat: null, ncat: null };
    results.scale.securechat = await withServer("securechat", "scale", async (server) => {
      const result = await runScale({
        server,
        members: plan.scaleMembers,
        roomSize: plan.scaleRoom,
        settleMs: plan.scaleSettleMs,
        concurrency: 64,
      });
      log(`scale securechat: ${result.connected} idle, RSS ${result.rssBytes}`);
      if (result.error) results.errors.push(`scale (securechat): ${result.error}`);
      return result;
    });
    // ncat's chat mode uses select(): it cannot hold more than about 1,020 connections.
    results.scale.ncat = await withServer("ncat", "scale", async (server) => {
      const result = await runScale({
        server,
        members: plan.ncatScaleMembers,
        roomSize: plan.scaleRoom,
        settleMs: plan.scaleSettleMs,
        concurrency: 64,
      });
      log(`scale ncat: ${result.connected} idle, RSS ${result.rssBytes}`);
      return result;
    }, plan.ncatScaleMembers + 10);
  }

  if (wants("bulk")) {
    starting("bulk");
    const common = {
      members: 2,
      senders: 1,
      textBytes: 65_536,
      mode: { kind: "max" as const, window: plan.bulkWindow },
      warmupMs: plan.warmupMs,
      durationMs: plan.durationMs,
    };
    results.bulk = { transport: null, e2e: null, ncat: null };
    results.bulk.transport = await traffic("securechat", "bulk", {
      ...common,
      variant: "transport",
    });
    results.bulk.e2e = await traffic("securechat", "bulk-e2e", { ...common, variant: "e2e" });
    results.bulk.ncat = await traffic("ncat", "bulk", { ...common, variant: "ncat" });
  }

  if (wants("storage")) {
    starting("storage");
    try {
      results.storage = await runStorage({ dir: newDir("storage"), ...plan.storage });
      const st = results.storage;
      log(
        `storage: ${st.groupAppendsPerSecond.toLocaleString("en")} appends/s grouped, ` +
          `${st.eachAppendsPerSecond.toLocaleString("en")}/s one commit each, ` +
          `${st.bytesPerItem} bytes per item, ${st.readItemsPerSecond.toLocaleString("en")} read/s`,
      );
    } catch (error) {
      failed("storage", error);
    }
  }

  if (wants("cluster") && !HAVE_NATS && (process.env.CI ?? "") === "") {
    log("cluster: skipped, nats-server is not installed (apt-get install -y nats-server)");
  } else if (wants("cluster")) {
    starting("cluster");
    try {
      results.cluster = await runClusterStore(plan.cluster);
      for (const run of results.cluster.runs) {
        const n = (value: number) => Math.round(value).toLocaleString("en");
        log(
          `cluster R${run.replicas}: ${n(run.appendsPerSecond)} appends/s, ` +
            `${run.singleAppendMs.toFixed(2)} ms alone, catch-up ` +
            `${n(run.readWarmPerSecond)}/s warm, ${n(run.readColdPerSecond)}/s cold`,
        );
      }
    } catch (error) {
      failed("cluster", error);
    }
  }

  if (wants("rooms")) {
    starting("rooms");
    const rooms: NonNullable<BenchResults["rooms"]> = {
      bodyBytes: 200,
      fanout: [],
      catchUp: [],
      notes: [],
    };
    results.rooms = rooms;
    const stopAll = async (servers: Server[]) => {
      for (const server of servers) await server.stop();
    };
    const n = (value: number) => Math.round(value).toLocaleString("en");
    for (const durable of [false, true]) {
      const relay = await startSecurechat({
        dir: newDir(durable ? "rooms-durable" : "rooms-ephemeral"),
        serveArgs: durable ? [] : ["--ephemeral"],
      });
      try {
        for (const members of plan.rooms.members) {
          const run = await runRoomFanout({
            relays: [relay],
            store: durable ? "sqlite" : "none",
            members,
            messages: plan.rooms.messages,
          });
          rooms.fanout.push(run);
          log(
            `rooms ${durable ? "durable" : "ephemeral"} 1 relay, ${members} members: ` +
              `${n(run.deliveriesPerSecond)} deliveries/s, p50 ${run.p50} ms, p99 ${run.p99} ms`,
          );
        }
        if (durable) {
          const catchUp = await runRoomCatchUp({
            relays: [relay],
            store: "sqlite",
            messages: plan.rooms.catchUp,
          });
          rooms.catchUp.push(catchUp);
          log(`rooms catch-up, 1 relay: ${n(catchUp.messagesPerSecond)} messages/s`);
        }
      } catch (error) {
        failed(`rooms (${durable ? "durable" : "ephemeral"})`, error);
      } finally {
        await relay.stop();
      }
    }
    if (!HAVE_NATS) {
      rooms.notes.push("cluster not measured: nats-server is not installed");
    } else {
      const nats = await startNatsServer();
      const home = newDir("rooms-cluster-home");
      const nodes: Server[] = [];
      try {
        for (let i = 0; i < 3; i++) {
          nodes.push(
            await startSecurechat({
              dir: newDir(`rooms-cluster-${i}`),
              home,
              serveArgs: ["--cluster", nats.url],
            }),
          );
        }
        for (const count of [1, 3]) {
          for (const members of plan.rooms.members) {
            const run = await runRoomFanout({
              relays: nodes.slice(0, count),
              store: "jetstream",
              members,
              messages: plan.rooms.messages,
            });
            rooms.fanout.push(run);
            log(
              `rooms cluster ${count} relay(s), ${members} members: ` +
                `${n(run.deliveriesPerSecond)} deliveries/s, p50 ${run.p50} ms, p99 ${run.p99} ms`,
            );
          }
        }
        const catchUp = await runRoomCatchUp({
          relays: nodes,
          store: "jetstream",
          messages: plan.rooms.catchUp,
        });
        rooms.catchUp.push(catchUp);
        log(`rooms catch-up through the cluster: ${n(catchUp.messagesPerSecond)} messages/s`);
      } catch (error) {
        failed("rooms (cluster)", error);
      } finally {
        await stopAll(nodes);
        await nats.stop();
      }
    }
  }

  if (wants("web")) {
    starting("web");
    const outcome = await withServer(
      "securechat",
      "web",
      (server) => runWebBench({ server, dir: newDir("web"), messages: plan.webMessages }),
    );
    if (typeof outcome === "string") results.web = { skipped: outcome };
    else if (outcome) {
      results.web = outcome;
      log(
        `web: ${outcome.pageGzipBytes} B gzipped, joined in ${outcome.openToJoinedMs} ms, ` +
          `${outcome.renderPerSecond} messages/s rendered`,
      );
    }
  }

  for (const server of shared.values()) await server.stop();
  results.targets = checkTargets(results);
  rmSync(scratch, { recursive: true, force: true });
  writeReports(results, args.out);
}

/** Keeps the Markdown summary of a relay's CPU profile; the raw profile is large. */
function keepProfile(dir: string, target: string): void {
  try {
    const summary = readdirSync(dir).find((name) => name.endsWith(".md"));
    if (summary) renameSync(join(dir, summary), target);
  } catch {
    // No profile (the relay did not exit cleanly): nothing to keep.
  }
}

await main();
// Sockets of load clients may linger for a moment; the results are written.
await sleep(10);
process.exit(0);
