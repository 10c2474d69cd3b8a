/**
 * Turns a bench run into what people read: the side-by-side table (console
 * and Markdown), the target check, and an SVG chart of throughput and
 * latency by room size.
 *
 * @module
 */

import type { WebResult } from "./web.ts";
import type { HandshakeResult, ScaleResult } from "./connections.ts";
import type { PipeResult } from "./pipe.ts";
import type { StorageResult } from "./storage.ts";
import type { ClusterStoreResult } from "./cluster_store.ts";
import type { RoomsResult } from "./rooms.ts";
import type { MachineInfo } from "./system.ts";
import type { TrafficResult } from "./traffic.ts";

/** One fan-out configuration, both relays. */
export interface FanoutEntry {
  senders: number;
  members: number;
  transport: TrafficResult | null;
  e2e: TrafficResult | null;
  ncat: TrafficResult | null;
  /** Why a variant was not run, if one was not. */
  notes: string[];
}

/** Paced runs at half the maximum throughput, for one room size. */
export interface LatencyEntry {
  room: number;
  securechat: TrafficResult | null;
  ncat: TrafficResult | null;
}

/** Everything one run measured. */
export interface BenchResults {
  version: 1;
  date: string;
  smoke: boolean;
  machine: MachineInfo;
  securechat: { command: string; crypto: Record<string, string>; relayLimits: string };
  ncat: { available: boolean; version?: string; reason?: string };
  loadGeneration: string;
  /** Share of the machine used by other processes just before the run (0 to 1). */
  backgroundCpuShare: number | null;
  fanout: FanoutEntry[];
  /** Latency at half each relay's maximum fan-out throughput (1 sender), by room size. */
  latency: LatencyEntry[];
  pipe: { securechat: PipeResult | null; ncat: PipeResult | null } | null;
  handshakes: { securechat: HandshakeResult | null; ncat: HandshakeResult | null } | null;
  scale: { securechat: ScaleResult | null; ncat: ScaleResult | null } | null;
  bulk:
    | { transport: TrafficResult | null; e2e: TrafficResult | null; ncat: TrafficResult | null }
    | null;
  /** The relay's store alone (absent in runs from before it existed). */
  storage?: StorageResult | null;
  /** The relay's store on NATS JetStream (absent in runs from before it existed). */
  cluster?: ClusterStoreResult | null;
  /** Durable against ephemeral rooms, one relay against a cluster (absent in older runs). */
  rooms?: RoomsResult | null;
  /** The web client in Chromium (bench/web.ts), or why it was not run. */
  web?: WebResult | { skipped: string } | null;
  targets: TargetCheck[];
  errors: string[];
}

/** One of the issue's targets and how this run did. */
export interface TargetCheck {
  name: string;
  target: string;
  measured: string;
  /** null when the run could not measure it. */
  met: boolean | null;
}

const MIB = 1024 * 1024;

function thousands(value: number): string {
  return Math.round(value).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

function ms(value: number | null | undefined): string {
  return value === null || value === undefined
    ? "—"
    : value < 10
    ? value.toFixed(2)
    : value.toFixed(1);
}

function ratio(ours: number | null | undefined, theirs: number | null | undefined): string {
  if (!ours || !theirs) return "—";
  const r = ours / theirs;
  return `${r >= 10 ? r.toFixed(0) : r.toFixed(2)}×`;
}

function mib(bytes: number | null | undefined): string {
  return bytes === null || bytes === undefined ? "—" : `${(bytes / MIB).toFixed(1)} MiB`;
}

function latencyText(result: TrafficResult | null): string {
  return result ? `${ms(result.latency.p50)} / ${ms(result.latency.p99)}` : "—";
}

function percent(part: number, whole: number): string {
  return whole === 0 ? "—" : `${((100 * part) / whole).toFixed(part === whole ? 0 : 2)}%`;
}

/** The table's rows: scenario, metric, securechat, ncat, ratio. */
export function tableRows(results: BenchResults): string[][] {
  const rows: string[][] = [];
  const none = results.ncat.available ? "—" : "n/a";
  for (const entry of results.fanout) {
    const name = `fan-out ${entry.senders}→${entry.members}`;
    const t = entry.transport;
    const n = entry.ncat;
    rows.push([
      `${name}, 100 B`,
      "deliveries/s",
      t ? thousands(t.deliveriesPerSecond) : "—",
      n ? thousands(n.deliveriesPerSecond) : none,
      ratio(t?.deliveriesPerSecond, n?.deliveriesPerSecond),
    ]);
    rows.push([
      `${name}, 100 B`,
      "latency p50 / p99 ms",
      latencyText(t),
      n ? latencyText(n) : none,
      "",
    ]);
    if (entry.e2e) {
      rows.push([
        `${name}, + end-to-end checks`,
        "deliveries/s",
        thousands(entry.e2e.deliveriesPerSecond),
        "",
        ratio(entry.e2e.deliveriesPerSecond, n?.deliveriesPerSecond),
      ]);
    }
  }
  for (const { securechat: s, ncat: n, room } of results.latency) {
    rows.push([
      `latency at half the max, 1→${room}`,
      "p50 / p99 ms",
      s ? `${latencyText(s)} (at ${thousands(s.deliveriesPerSecond)}/s)` : "—",
      n ? `${latencyText(n)} (at ${thousands(n.deliveriesPerSecond)}/s)` : none,
      "",
    ]);
  }
  if (results.pipe) {
    const { securechat: s, ncat: n } = results.pipe;
    const pipeName = s ? `pipe: ${thousands(s.lines)} lines → ${s.receivers} joins` : "pipe";
    const wall = (result: PipeResult | null | undefined, missing: string) =>
      result?.wallSeconds?.toFixed(2) ??
        (result?.lastByteSeconds
          ? `${result.lastByteSeconds.toFixed(2)} (${
            thousands(result.linesExpected - result.linesReceived)
          } lines never came)`
          : result
          ? "failed"
          : missing);
    rows.push([
      pipeName,
      "wall time s",
      wall(s, "—"),
      wall(n, none),
      ratio(s?.wallSeconds ?? s?.lastByteSeconds, n?.wallSeconds ?? n?.lastByteSeconds),
    ]);
    const cpu = (result: PipeResult | null | undefined) =>
      result?.clientCpuSeconds != null && result.relayCpuSeconds != null
        ? result.clientCpuSeconds - (result.receiversReadyCpuSeconds ?? 0) + result.relayCpuSeconds
        : null;
    const ourCpu = cpu(s);
    const theirCpu = cpu(n);
    rows.push([
      pipeName,
      "CPU s, all processes, while lines flowed",
      ourCpu === null ? "—" : ourCpu.toFixed(2),
      theirCpu === null ? none : theirCpu.toFixed(2),
      ratio(ourCpu, theirCpu),
    ]);
    rows.push([
      pipeName,
      "lines intact",
      s ? `${thousands(s.linesIntact)} (${percent(s.linesIntact, s.linesExpected)})` : "—",
      n ? `${thousands(n.linesIntact)} (${percent(n.linesIntact, n.linesExpected)})` : none,
      "",
    ]);
  }
  if (results.handshakes) {
    const { securechat: s, ncat: n } = results.handshakes;
    rows.push([
      "handshakes (+ join)",
      "per second",
      s ? thousands(s.perSecond) : "—",
      n
        ? `${thousands(n.perSecond)}${n.completed < n.attempted ? ` (${n.completed} ok)` : ""}`
        : none,
      ratio(s?.perSecond, n?.perSecond),
    ]);
    rows.push([
      "handshakes (+ join)",
      "relay CPU per connection",
      s?.relayCpuMicros ? `${thousands(s.relayCpuMicros)} µs` : "—",
      n?.relayCpuMicros ? `${thousands(n.relayCpuMicros)} µs` : none,
      "",
    ]);
  }
  if (results.scale) {
    const { securechat: s, ncat: n } = results.scale;
    rows.push([
      `scale: idle members`,
      "relay RSS after 1 s",
      s ? `${mib(s.rssBytes)} (${thousands(s.connected)})` : "—",
      n ? `${mib(n.rssBytes)} (${thousands(n.connected)})` : none,
      "",
    ]);
    rows.push([
      `scale: idle members`,
      `relay RSS after ${((s ?? n)?.settleMs ?? 0) / 1000} s idle`,
      s ? `${mib(s.settledRssBytes)} (${thousands(s.connected)})` : "—",
      n ? `${mib(n.settledRssBytes)} (${thousands(n.connected)})` : none,
      "",
    ]);
    rows.push([
      `scale: idle members`,
      "per connection",
      s?.bytesPerConnection ? `${(s.bytesPerConnection / 1024).toFixed(1)} KiB` : "—",
      n?.bytesPerConnection ? `${(n.bytesPerConnection / 1024).toFixed(1)} KiB` : none,
      ratio(s?.bytesPerConnection, n?.bytesPerConnection),
    ]);
    if (s) {
      rows.push([
        `scale: one more member (room of ${s.roomSize})`,
        "join ms (lean / ChatClient)",
        `${ms(s.joinMs)} / ${ms(s.clientJoinMs)}`,
        "",
        "",
      ]);
    }
  }
  if (results.bulk) {
    const { transport: t, e2e, ncat: n } = results.bulk;
    rows.push([
      "bulk: 64 KiB messages",
      "MB/s",
      t ? t.megabytesPerSecond.toFixed(0) : "—",
      n ? n.megabytesPerSecond.toFixed(0) : none,
      ratio(t?.megabytesPerSecond, n?.megabytesPerSecond),
    ]);
    if (e2e) {
      rows.push([
        "bulk, + end-to-end checks",
        "MB/s",
        e2e.megabytesPerSecond.toFixed(0),
        "",
        ratio(e2e.megabytesPerSecond, n?.megabytesPerSecond),
      ]);
    }
  }
  const st = results.storage;
  if (st) {
    const name = `store: ${st.bodyBytes} B items, room of ${st.members}`;
    rows.push([
      name,
      `appends/s, group commit (${st.inflight} in flight)`,
      thousands(st.groupAppendsPerSecond),
      "",
      "",
    ]);
    rows.push([name, "appends/s, one commit each", thousands(st.eachAppendsPerSecond), "", ""]);
    rows.push([name, "one append alone, ms", st.singleAppendMs.toFixed(2), "", ""]);
    rows.push([
      name,
      "appends/s without fsync (memory)",
      thousands(st.memoryAppendsPerSecond),
      "",
      "",
    ]);
    rows.push([name, "bytes on disk per item", thousands(st.bytesPerItem), "", ""]);
    rows.push([
      `store: catch-up of ${thousands(st.readItems)} items`,
      "items read/s (pages of 1,000 + ack)",
      thousands(st.readItemsPerSecond),
      "",
      "",
    ]);
  }
  const cl = results.cluster;
  if (cl) {
    for (const run of cl.runs) {
      const name =
        `JetStream store R${run.replicas}: ${cl.bodyBytes} B items, room of ${cl.members}`;
      rows.push(
        [name, `appends/s (${cl.inflight} in flight)`, thousands(run.appendsPerSecond), "", ""],
        [name, "one append alone, ms", run.singleAppendMs.toFixed(2), "", ""],
        [
          `JetStream store R${run.replicas}: catch-up of ${thousands(cl.readItems)} items`,
          "items read/s, writing relay / another relay",
          `${thousands(run.readWarmPerSecond)} / ${thousands(run.readColdPerSecond)}`,
          "",
          "",
        ],
      );
    }
  }
  const ro = results.rooms;
  const kept = { none: "ephemeral room", sqlite: "durable room (relay.db)", jetstream: "cluster" };
  for (const run of ro?.fanout ?? []) {
    rows.push([
      `${kept[run.store]}, ${run.relays} relay(s), ${run.members} members`,
      "deliveries/s; p50 / p99 ms",
      `${thousands(run.deliveriesPerSecond)}; ${run.p50} / ${run.p99}`,
      "",
      "",
    ]);
  }
  for (const run of ro?.catchUp ?? []) {
    rows.push([
      `${kept[run.store]}: catch-up of ${thousands(run.messages)}, ${run.relays} relay(s)`,
      "stored messages/s received",
      thousands(run.messagesPerSecond),
      "",
      "",
    ]);
  }
  if (results.web && "skipped" in results.web) {
    rows.push(["web client", "not run", results.web.skipped, "", ""]);
  } else if (results.web) {
    const w = results.web;
    rows.push(
      ["web page: HTML, CSS, script", "KiB gzipped", (w.pageGzipBytes / 1024).toFixed(1), "", ""],
      ["web page: script alone", "KiB gzipped", (w.scriptGzipBytes / 1024).toFixed(1), "", ""],
      ["web: open → joined (unlock incl.)", "ms", thousands(w.openToJoinedMs), "", ""],
      ["web: unlock (scrypt, JavaScript)", "ms", thousands(w.unlockMs), "", ""],
      ["web: join → in the room", "ms", thousands(w.connectMs), "", ""],
      [`web: receive and render ${w.messages}`, "messages/s", thousands(w.renderPerSecond), "", ""],
    );
  }
  return rows;
}

const HEADER = ["scenario", "metric", "securechat", "ncat --chat --ssl", "ratio"];

/**
 * The table as aligned plain text, for the console.
 *
 * @example
 * ```ts
 * console.log(consoleTable(results));
 * ```
 */
export function consoleTable(results: BenchResults): string {
  const rows = [HEADER, ...tableRows(results)];
  const widths = HEADER.map((_, column) => Math.max(...rows.map((row) => row[column].length)));
  const line = (row: string[]) =>
    row.map((cell, column) =>
      column >= 2 ? cell.padStart(widths[column]) : cell.padEnd(widths[column])
    )
      .join("  ");
  const out = [
    line(rows[0]),
    widths.map((w) => "-".repeat(w)).join("  "),
    ...rows.slice(1).map(line),
  ];
  out.push("", "targets:");
  for (const target of results.targets) {
    const mark = target.met === null ? "not measured" : target.met ? "met" : "NOT MET";
    out.push(`  ${target.name}: ${target.measured} (target ${target.target}) — ${mark}`);
  }
  return out.join("\n");
}

function markdownTable(header: string[], rows: string[][], rightFrom: number): string {
  const escape = (cell: string) => cell.replaceAll("|", "\\|");
  const out = [
    `| ${header.map(escape).join(" | ")} |`,
    `| ${header.map((_, i) => i >= rightFrom ? "---:" : "---").join(" | ")} |`,
  ];
  for (const row of rows) out.push(`| ${row.map(escape).join(" | ")} |`);
  return out.join("\n");
}

/**
 * The run as Markdown: machine, table, targets.
 *
 * @example
 * ```ts
 * writeFileSync("latest.md", markdownReport(results));
 * ```
 */
export function markdownReport(results: BenchResults): string {
  const m = results.machine;
  const lines = [
    `Measured ${results.date.slice(0, 10)} on ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB ` +
    `(${m.os}); Deno ${m.deno}; ` +
    (results.ncat.available
      ? `ncat ${results.ncat.version}.`
      : `ncat not run: ${results.ncat.reason}.`) +
    (results.smoke ? " Smoke run: tiny sizes, figures not meaningful." : ""),
    "",
    markdownTable(HEADER, tableRows(results), 2),
    "",
    markdownTable(
      ["target", "goal", "measured", "met"],
      results.targets.map((t) => [
        t.name,
        t.target,
        t.measured,
        t.met === null ? "not measured" : t.met ? "yes" : "**no**",
      ]),
      4,
    ),
  ];
  if (results.errors.length > 0) {
    lines.push("", "Errors:", "", ...results.errors.map((error) => `- ${error}`));
  }
  return lines.join("\n") + "\n";
}

/**
 * Checks the issue's targets against a run.
 *
 * @example
 * ```ts
 * results.targets = checkTargets(results);
 * ```
 */
export function checkTargets(results: BenchResults): TargetCheck[] {
  const checks: TargetCheck[] = [];
  const cluster = results.rooms?.fanout.filter((run) => run.store === "jetstream") ?? [];
  const biggest = Math.max(0, ...cluster.map((run) => run.members));
  const one = cluster.find((run) => run.relays === 1 && run.members === biggest);
  const three = cluster.find((run) => run.relays === 3 && run.members === biggest);
  if (one && three) {
    checks.push({
      name: `cluster fan-out, 3 relays vs 1 on one JetStream, ${biggest} members`,
      target: "≥ 0.5×",
      measured: ratio(three.deliveriesPerSecond, one.deliveriesPerSecond),
      met: three.deliveriesPerSecond >= 0.5 * one.deliveriesPerSecond,
    });
  }
  const fifty = results.fanout.find((entry) => entry.senders === 1 && entry.members === 50);
  const ours = fifty?.transport?.deliveriesPerSecond;
  const theirs = fifty?.ncat?.deliveriesPerSecond;
  checks.push({
    name: "fan-out deliveries/s, 1 sender, 50 members, vs ncat",
    target: "≥ 1.0×",
    measured: ours && theirs ? ratio(ours, theirs) : ours ? `${thousands(ours)}/s (no ncat)` : "—",
    met: ours && theirs ? ours >= theirs : null,
  });
  const s = results.pipe?.securechat;
  const n = results.pipe?.ncat;
  const nTime = n?.wallSeconds ?? n?.lastByteSeconds ?? null;
  checks.push({
    name: "pipe wall time vs ncat",
    target: "≤ 2.0×",
    // ncat may lose lines; then its time is until its last byte, which flatters it.
    measured: s?.wallSeconds && nTime
      ? `${ratio(s.wallSeconds, nTime)} (${s.wallSeconds.toFixed(2)} s vs ${nTime.toFixed(2)} s)`
      : s?.wallSeconds
      ? `${s.wallSeconds.toFixed(2)} s (no ncat)`
      : "—",
    met: s?.wallSeconds && nTime ? s.wallSeconds <= 2 * nTime : null,
  });
  checks.push({
    name: "pipe lines intact",
    target: "100%",
    measured: s ? `${thousands(s.linesIntact)} of ${thousands(s.linesExpected)}` : "—",
    met: s ? s.linesIntact === s.linesExpected : null,
  });
  const h = results.handshakes?.securechat;
  checks.push({
    name: "handshakes + join per second",
    target: "≥ 3,000/s",
    measured: h ? `${thousands(h.perSecond)}/s` : "—",
    met: h ? h.perSecond >= 3000 : null,
  });
  const sc = results.scale?.securechat;
  const full = sc && sc.connected >= 10_000;
  checks.push({
    name: "relay RSS with 10,000 idle members (settled)",
    target: "≤ 300 MiB",
    measured: sc
      ? `${mib(sc.settledRssBytes)} with ${thousands(sc.connected)} (${
        mib(sc.rssBytes)
      } 1 s after connecting)`
      : "—",
    met: full && sc.settledRssBytes != null ? sc.settledRssBytes <= 300 * MIB : null,
  });
  const l = results.latency.find((entry) => entry.room === 50)?.securechat ??
    results.latency[0]?.securechat;
  checks.push({
    name: `p99 latency at half the maximum throughput (1→${l?.members ?? 50})`,
    target: "≤ 25 ms",
    measured: l ? `${ms(l.latency.p99)} ms` : "—",
    met: l && l.latency.p99 !== null ? l.latency.p99 <= 25 : null,
  });
  return checks;
}

// ---- chart ----

const COLORS = { transport: "#2f6fb3", e2e: "#8fb8e0", ncat: "#d9822b" };

function escapeXml(text: string): string {
  return text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");
}

/** An axis that ends on a round number, with 3 to 6 round steps. */
function niceScale(value: number): { max: number; step: number } {
  if (!(value > 0)) return { max: 1, step: 0.25 };
  const rough = value / 4;
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 2.5, 5, 10].map((f) => f * power).find((s) => s >= rough) ?? 10 * power;
  return { max: Math.ceil(value / step) * step, step };
}

function compact(value: number): string {
  if (value >= 1e6) return `${(value / 1e6).toFixed(value >= 1e7 ? 0 : 1)}M`;
  if (value >= 1e3) return `${(value / 1e3).toFixed(value >= 1e4 ? 0 : 1)}k`;
  return value >= 10 ? value.toFixed(0) : value.toFixed(1);
}

interface Series {
  label: string;
  color: string;
  values: (number | null)[];
  whiskers?: (number | null)[];
}

function barPanel(options: {
  x: number;
  y: number;
  width: number;
  height: number;
  title: string;
  unit: string;
  groups: string[];
  series: Series[];
}): string {
  const { x, y, width, height, groups, series } = options;
  const plotLeft = x + 56;
  const plotTop = y + 34;
  const plotWidth = width - 70;
  const plotHeight = height - 90;
  const all = series.flatMap((s) => [...s.values, ...(s.whiskers ?? [])]).filter((v): v is number =>
    v !== null
  );
  const { max, step } = niceScale(Math.max(0, ...all));
  const ticks = Math.round(max / step);
  const parts: string[] = [
    `<text x="${x + width / 2}" y="${y + 18}" text-anchor="middle" class="title">${
      escapeXml(options.title)
    }</text>`,
  ];
  for (let i = 0; i <= ticks; i++) {
    const value = step * i;
    const ty = plotTop + plotHeight - (plotHeight * i) / ticks;
    parts.push(
      `<line x1="${plotLeft}" x2="${plotLeft + plotWidth}" y1="${ty}" y2="${ty}" class="grid"/>`,
    );
    parts.push(
      `<text x="${plotLeft - 6}" y="${ty + 4}" text-anchor="end" class="tick">${
        compact(value)
      }</text>`,
    );
  }
  parts.push(
    `<text x="${x + 12}" y="${plotTop + plotHeight / 2}" transform="rotate(-90 ${x + 12} ${
      plotTop + plotHeight / 2
    })" text-anchor="middle" class="tick">${escapeXml(options.unit)}</text>`,
  );
  const groupWidth = plotWidth / groups.length;
  const barWidth = Math.min(26, (groupWidth - 12) / series.length);
  groups.forEach((group, g) => {
    const groupLeft = plotLeft + g * groupWidth + (groupWidth - barWidth * series.length) / 2;
    series.forEach((s, k) => {
      const value = s.values[g];
      const bx = groupLeft + k * barWidth;
      if (value === null) {
        parts.push(
          `<text x="${bx + barWidth / 2}" y="${
            plotTop + plotHeight - 4
          }" text-anchor="middle" class="na">–</text>`,
        );
        return;
      }
      const h = (plotHeight * value) / max;
      parts.push(
        `<rect x="${bx.toFixed(1)}" y="${(plotTop + plotHeight - h).toFixed(1)}" width="${
          (barWidth - 2).toFixed(1)
        }" height="${h.toFixed(1)}" fill="${s.color}"><title>${
          escapeXml(`${s.label}, ${group}: ${compact(value)} ${options.unit}`)
        }</title></rect>`,
      );
      const whisker = s.whiskers?.[g];
      if (whisker !== null && whisker !== undefined) {
        const wy = plotTop + plotHeight - (plotHeight * whisker) / max;
        const cx = bx + (barWidth - 2) / 2;
        parts.push(
          `<line x1="${cx}" x2="${cx}" y1="${(plotTop + plotHeight - h).toFixed(1)}" y2="${
            wy.toFixed(1)
          }" class="whisker"/>`,
        );
        parts.push(
          `<line x1="${cx - 4}" x2="${cx + 4}" y1="${wy.toFixed(1)}" y2="${
            wy.toFixed(1)
          }" class="whisker"/>`,
        );
      }
    });
    const [first, second] = group.split("\n");
    const gx = plotLeft + g * groupWidth + groupWidth / 2;
    parts.push(
      `<text x="${gx}" y="${plotTop + plotHeight + 16}" text-anchor="middle" class="group">${
        escapeXml(first)
      }</text>`,
    );
    if (second) {
      parts.push(
        `<text x="${gx}" y="${plotTop + plotHeight + 30}" text-anchor="middle" class="tick">${
          escapeXml(second)
        }</text>`,
      );
    }
  });
  parts.push(
    `<line x1="${plotLeft}" x2="${plotLeft + plotWidth}" y1="${plotTop + plotHeight}" y2="${
      plotTop + plotHeight
    }" class="axis"/>`,
  );
  return parts.join("\n");
}

/**
 * An SVG chart: fan-out deliveries per second and latency (p50 bars, p99
 * whiskers) for each room size, securechat beside ncat.
 *
 * @example
 * ```ts
 * writeFileSync("chart.svg", chartSvg(results));
 * ```
 */
export function chartSvg(results: BenchResults): string {
  const entries = [...results.fanout].sort((a, b) =>
    a.senders - b.senders || a.members - b.members
  );
  const groups = entries.map((e) =>
    `${e.members} members\n${e.senders} sender${e.senders > 1 ? "s" : ""}`
  );
  const width = 1000;
  const height = 420;
  const throughput = barPanel({
    x: 0,
    y: 30,
    width: width / 2,
    height: height - 60,
    title: "Fan-out: texts delivered per second, by room size",
    unit: "deliveries/s",
    groups,
    series: [
      {
        label: "securechat",
        color: COLORS.transport,
        values: entries.map((e) => e.transport?.deliveriesPerSecond ?? null),
      },
      {
        label: "securechat + e2e checks",
        color: COLORS.e2e,
        values: entries.map((e) => e.e2e?.deliveriesPerSecond ?? null),
      },
      {
        label: "ncat --chat --ssl",
        color: COLORS.ncat,
        values: entries.map((e) => e.ncat?.deliveriesPerSecond ?? null),
      },
    ],
  });
  const paced = [...results.latency].sort((a, b) => a.room - b.room);
  const latency = barPanel({
    x: width / 2,
    y: 30,
    width: width / 2,
    height: height - 60,
    title: "Latency at half the max load: p50 bar, p99 whisker",
    unit: "ms",
    groups: paced.map((entry) => `${entry.room} members\n1 sender`),
    series: [
      {
        label: "securechat",
        color: COLORS.transport,
        values: paced.map((entry) => entry.securechat?.latency.p50 ?? null),
        whiskers: paced.map((entry) => entry.securechat?.latency.p99 ?? null),
      },
      {
        label: "ncat --chat --ssl",
        color: COLORS.ncat,
        values: paced.map((entry) => entry.ncat?.latency.p50 ?? null),
        whiskers: paced.map((entry) => entry.ncat?.latency.p99 ?? null),
      },
    ],
  });
  const legend = ([
    ["securechat (clients decrypt the transport)", COLORS.transport, 20],
    ["securechat + end-to-end decryption and signature checks", COLORS.e2e, 320],
    ["ncat --chat --ssl", COLORS.ncat, 700],
  ] as [string, string, number][]).map(([label, color, lx]) => {
    return `<rect x="${lx}" y="${height - 22}" width="12" height="12" fill="${color}"/>` +
      `<text x="${lx + 18}" y="${height - 12}" class="tick">${escapeXml(label)}</text>`;
  }).join("\n");
  const m = results.machine;
  const caption = `securechat vs ncat, 100-byte texts, loopback, ${results.date.slice(0, 10)}, ` +
    `${m.cpu}, ${m.cores} cores${results.smoke ? " (smoke run)" : ""}`;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif">
<style>
.title { font-size: 14px; font-weight: bold; fill: #222; }
.tick { font-size: 11px; fill: #444; }
.group { font-size: 10px; fill: #444; }
.na { font-size: 11px; fill: #999; }
.grid { stroke: #e4e4e4; stroke-width: 1; }
.axis { stroke: #888; stroke-width: 1; }
.whisker { stroke: #222; stroke-width: 1.2; }
.caption { font-size: 12px; fill: #555; }
</style>
<rect width="100%" height="100%" fill="#fff"/>
<text x="${width / 2}" y="18" text-anchor="middle" class="caption">${escapeXml(caption)}</text>
${throughput}
${latency}
${legend}
</svg>
`;
}
