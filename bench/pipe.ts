/**
 * The pipe scenario: the real command-line programs. One sender pipes a
 * file of lines into the room; several receiving processes print what
 * arrives. Measured: wall time from starting the sender until every line has
 * arrived at every receiver, and how many lines arrived intact.
 *
 * - securechat: `join --count N` receivers, `join < lines` sender (it exits
 *   once the relay has acknowledged every line).
 * - ncat: `ncat --ssl --recv-only` receivers, `ncat --ssl` sender fed the
 *   same bytes through a pipe that stays open until the end (ncat chat drops
 *   what a client sent if it disconnects too early).
 *
 * @module
 */

import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { saveIdentity } from "../lib/identity/identity_file.ts";
import { benchIdentity } from "./members.ts";
import { Child, securechatCommand } from "./processes.ts";
import type { Server } from "./servers.ts";
import { machineBusySeconds, ownCpuSeconds, sleep } from "./system.ts";

/** Options for {@linkcode runPipe}. */
export interface PipeOptions {
  server: Server;
  /** Scratch directory (receivers' homes, the line file). */
  dir: string;
  lines: string[];
  receivers: number;
  timeoutMs: number;
}

/** What the pipe scenario measured. */
export interface PipeResult {
  kind: "securechat" | "ncat";
  lines: number;
  receivers: number;
  /** From starting the sender until the last receiver had every line; null if it never did. */
  wallSeconds: number | null;
  /**
   * From starting the sender until the last byte arrived at any receiver. Equal to
   * `wallSeconds` when every line arrived; the figure to use when some never did.
   */
  lastByteSeconds: number | null;
  /** Lines received, all receivers together. */
  linesReceived: number;
  /** Lines received byte for byte as sent (after the sender's label), all receivers together. */
  linesIntact: number;
  /** Lines expected: lines × receivers. */
  linesExpected: number;
  /** Relay CPU seconds used while the lines went through. */
  relayCpuSeconds: number | null;
  /** CPU seconds of the sender and all receivers, start-up included (sampled from /proc). */
  clientCpuSeconds: number | null;
  /** The receivers' share of that spent before the sender started (start-up, joining). */
  receiversReadyCpuSeconds: number | null;
  /** The sender's share, start-up included. */
  senderCpuSeconds: number | null;
  /** CPU seconds other processes on the machine used while the clock ran (noise in the time). */
  otherCpuSeconds: number | null;
  /** When the sender process exited, seconds after it started (securechat). */
  senderExitSeconds: number | null;
  error?: string;
}

/**
 * Deterministic lines of printable ASCII, `bytes` long each, numbered so any
 * loss or reordering shows.
 *
 * @example
 * ```ts
 * const lines = makeLines(100_000, 90);
 * ```
 */
export function makeLines(count: number, bytes: number): string[] {
  const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;:!?-+=/";
  let state = 0x9e3779b9;
  const lines: string[] = new Array(count);
  for (let i = 0; i < count; i++) {
    let text = `line ${String(i).padStart(6, "0")} `;
    while (text.length < bytes) {
      state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
      text += alphabet[state % alphabet.length];
    }
    lines[i] = text.trimEnd().padEnd(bytes, "x");
  }
  return lines;
}

/**
 * Collects a receiver's output and notices when the last line has arrived,
 * without looking at every line while the clock runs (the bench shares the
 * CPU with the programs it measures): lines arrive in order, so the last
 * line's number ending the output means all have come. Every line is checked
 * after the clock stops.
 */
class OutputWatcher {
  chunks: Uint8Array[] = [];
  bytes = 0;
  /** When the last chunk arrived (performance.now()). */
  lastByteAt = 0;
  /** "<announce>" lines seen before {@linkcode OutputWatcher.stopCountingAnnouncements}. */
  announceLines = 0;
  done = false;
  #countAnnouncements: boolean;
  #minBytes: number;
  #lastMarker: Uint8Array;

  constructor(options: { minBytes: number; lastLine: string; countAnnouncements: boolean }) {
    this.#minBytes = options.minBytes;
    this.#lastMarker = new TextEncoder().encode(options.lastLine.slice(0, 12));
    this.#countAnnouncements = options.countAnnouncements;
  }

  stopCountingAnnouncements(): void {
    this.#countAnnouncements = false;
  }

  push(chunk: Uint8Array): void {
    this.chunks.push(chunk);
    this.bytes += chunk.length;
    this.lastByteAt = performance.now();
    if (this.#countAnnouncements) {
      const text = new TextDecoder().decode(chunk);
      this.announceLines += text.split("<announce>").length - 1;
    }
    if (!this.done && this.bytes >= this.#minBytes && chunk[chunk.length - 1] === 0x0a) {
      this.done = this.#endsWithLastLine();
    }
  }

  /** Whether the output ends with the last line (its number, then the line's end). */
  #endsWithLastLine(): boolean {
    const tail = this.#tail(256);
    const lineStart = tail.lastIndexOf(0x0a, tail.length - 2) + 1;
    const line = tail.subarray(lineStart);
    outer: for (let at = 0; at + this.#lastMarker.length <= line.length; at++) {
      for (let k = 0; k < this.#lastMarker.length; k++) {
        if (line[at + k] !== this.#lastMarker[k]) continue outer;
      }
      return true;
    }
    return false;
  }

  #tail(length: number): Uint8Array {
    const last = this.chunks[this.chunks.length - 1];
    if (last.length >= length || this.chunks.length === 1) return last;
    const previous = this.chunks[this.chunks.length - 2];
    const out = new Uint8Array(Math.min(length, previous.length + last.length));
    const fromPrevious = out.length - last.length;
    out.set(previous.subarray(previous.length - fromPrevious));
    out.set(last, fromPrevious);
    return out;
  }

  text(): string {
    const all = new Uint8Array(this.bytes);
    let at = 0;
    for (const chunk of this.chunks) {
      all.set(chunk, at);
      at += chunk.length;
    }
    return new TextDecoder().decode(all);
  }
}

function countIntact(
  text: string,
  lines: string[],
  strip: (line: string) => string | undefined,
): { received: number; intact: number } {
  const expected = new Set(lines);
  let received = 0;
  let intact = 0;
  for (const line of text.split("\n")) {
    if (line.length === 0 || line.startsWith("<announce>")) continue;
    received++;
    const body = strip(line);
    if (body !== undefined && expected.has(body)) intact++;
  }
  return { received, intact };
}

/** How long output may stall before the bench concludes the missing lines are lost. */
const IDLE_MS = 3000;

/**
 * Waits until every receiver has its last line; or until output has stalled
 * for {@linkcode IDLE_MS} (a relay that dropped lines: they will never come);
 * or `stop()`; or the deadline. Resolves with whether every line came.
 */
async function waitForOutput(
  watchers: OutputWatcher[],
  timeoutMs: number,
  stop: () => boolean,
): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (!watchers.every((watcher) => watcher.done)) {
    const now = performance.now();
    const latest = Math.max(...watchers.map((watcher) => watcher.lastByteAt));
    const stalled = watchers.every((watcher) => watcher.bytes > 0) && now - latest > IDLE_MS;
    if (now > deadline || stop() || stalled) return false;
    await sleep(2);
  }
  return true;
}

/**
 * Runs the pipe scenario through `securechat serve` with the real CLI.
 *
 * @example
 * ```ts
 * const result = await runSecurechatPipe({ server, dir, lines, receivers: 10, timeoutMs: 120_000 });
 * ```
 */
export async function runSecurechatPipe(options: PipeOptions): Promise<PipeResult> {
  const { server, dir, lines, receivers } = options;
  const file = join(dir, "lines.txt");
  writeFileSync(file, lines.join("\n") + "\n");
  const { command, args } = securechatCommand();
  const common = ["--server-fingerprint", server.fingerprint!, "--room", "pipe"];
  // Users who pipe into a room have an identity already: make them before the clock starts.
  for (const name of [...Array.from({ length: receivers }, (_, i) => `r${i}`), "sender"]) {
    await saveIdentity({ path: join(dir, name, "identity"), identity: benchIdentity() });
  }
  const address = `${server.host}:${server.port}`;
  const lastLine = lines[lines.length - 1];
  const counters = Array.from({ length: receivers }, () =>
    new OutputWatcher({
      // Each line prints as "sender: <line>\n".
      minBytes: lines.reduce((sum, line) => sum + line.length + 9, 0),
      lastLine,
      countAnnouncements: false,
    }));
  const children: Child[] = [];
  const result: PipeResult = {
    kind: "securechat",
    lines: lines.length,
    receivers,
    wallSeconds: null,
    lastByteSeconds: null,
    linesReceived: 0,
    linesIntact: 0,
    linesExpected: lines.length * receivers,
    relayCpuSeconds: null,
    clientCpuSeconds: null,
    receiversReadyCpuSeconds: null,
    senderCpuSeconds: null,
    otherCpuSeconds: null,
    senderExitSeconds: null,
  };
  try {
    for (let i = 0; i < receivers; i++) {
      children.push(Child.spawn(command, [
        ...args,
        "join",
        address,
        ...common,
        "--nick",
        `r${i}`,
        "--count",
        String(lines.length),
      ], {
        env: { SECURECHAT_HOME: join(dir, `r${i}`) },
        onStdout: (chunk) => counters[i].push(chunk),
      }));
    }
    for (const child of children) await child.waitFor("stderr", /joined room/, 60_000);
    // Each receiver must know the others before the sender arrives; a moment settles that.
    await sleep(200);
    const ready = children.reduce((sum, child) => sum + child.cpuSeconds, 0);
    result.receiversReadyCpuSeconds = Math.round(ready * 100) / 100;
    const before = server.stats();
    const busyBefore = machineBusySeconds();
    const clientsBefore = children.reduce((sum, child) => sum + child.cpuSeconds, 0);
    const benchBefore = ownCpuSeconds();
    const start = performance.now();
    const sender = Child.spawn(command, [...args, "join", address, ...common, "--nick", "sender"], {
      env: { SECURECHAT_HOME: join(dir, "sender") },
      stdin: { file },
    });
    children.push(sender);
    sender.exited.then(() => result.senderExitSeconds = (performance.now() - start) / 1000);
    const done = await waitForOutput(
      counters,
      options.timeoutMs,
      // A receiver that quit before the last line will never get it.
      () => counters.some((counter, i) => children[i].done && !counter.done),
    );
    const elapsed = (performance.now() - start) / 1000;
    const after = server.stats();
    const busyAfter = machineBusySeconds();
    const clientsDuring = children.reduce((sum, child) => sum + child.cpuSeconds, 0) -
      clientsBefore;
    if (busyBefore !== undefined && busyAfter !== undefined && before && after) {
      const ours = after.cpuSeconds - before.cpuSeconds + clientsDuring + ownCpuSeconds() -
        benchBefore;
      result.otherCpuSeconds = Math.round(Math.max(0, busyAfter - busyBefore - ours) * 100) / 100;
    }
    const lastByte = (Math.max(...counters.map((counter) => counter.lastByteAt)) - start) / 1000;
    result.lastByteSeconds = Math.round(Math.max(0, lastByte) * 1000) / 1000;
    if (done) result.wallSeconds = Math.round(elapsed * 1000) / 1000;
    else result.error = "not every line arrived: output stopped short of the last line";
    if (before && after) {
      result.relayCpuSeconds = Math.round((after.cpuSeconds - before.cpuSeconds) * 100) / 100;
    }
    await Promise.race([sender.exited, sleep(10_000)]);
    if (sender.done && result.error === undefined) {
      const { code } = await sender.exited;
      if (code !== 0) result.error = `sender exited with ${code}: ${sender.describe()}`;
    }
  } catch (error) {
    result.error = (error as Error).message;
  } finally {
    const cpu = children.reduce((sum, child) => sum + child.cpuSeconds, 0);
    result.clientCpuSeconds = Math.round(cpu * 100) / 100;
    if (children.length > receivers) {
      result.senderCpuSeconds = Math.round(children[receivers].cpuSeconds * 100) / 100;
    }
    await Promise.all(children.map((child) => child.stop("SIGTERM", 3000)));
  }
  for (const counter of counters) {
    const { received, intact } = countIntact(
      counter.text(),
      lines,
      (line) => line.startsWith("sender: ") ? line.slice("sender: ".length) : undefined,
    );
    result.linesReceived += received;
    result.linesIntact += intact;
  }
  return result;
}

/**
 * Runs the pipe scenario through `ncat --chat --ssl` with ncat as the client.
 *
 * @example
 * ```ts
 * const result = await runNcatPipe({ server: ncat, dir, lines, receivers: 10, timeoutMs: 60_000 });
 * ```
 */
export async function runNcatPipe(options: PipeOptions): Promise<PipeResult> {
  const { server, lines, receivers } = options;
  const counters = Array.from({ length: receivers }, () =>
    new OutputWatcher({
      minBytes: lines.reduce((sum, line) => sum + line.length + 1, 0),
      lastLine: lines[lines.length - 1],
      countAnnouncements: true,
    }));
  const children: Child[] = [];
  const result: PipeResult = {
    kind: "ncat",
    lines: lines.length,
    receivers,
    wallSeconds: null,
    lastByteSeconds: null,
    linesReceived: 0,
    linesIntact: 0,
    linesExpected: lines.length * receivers,
    relayCpuSeconds: null,
    clientCpuSeconds: null,
    receiversReadyCpuSeconds: null,
    senderCpuSeconds: null,
    otherCpuSeconds: null,
    senderExitSeconds: null,
  };
  const address = [server.host, String(server.port)];
  try {
    for (let i = 0; i < receivers; i++) {
      children.push(Child.spawn("ncat", ["--ssl", "--recv-only", ...address], {
        onStdout: (chunk) => counters[i].push(chunk),
      }));
    }
    // ncat tells each member about every later one: whoever came first has heard of all others.
    const heardOfAll = () =>
      Math.max(...counters.map((counter) => counter.announceLines)) >= receivers - 1;
    const deadline = performance.now() + 30_000;
    while (!heardOfAll() && performance.now() < deadline) await sleep(5);
    if (!heardOfAll()) throw new Error("ncat receivers did not all connect");
    for (const counter of counters) counter.stopCountingAnnouncements();
    const ready = children.reduce((sum, child) => sum + child.cpuSeconds, 0);
    result.receiversReadyCpuSeconds = Math.round(ready * 100) / 100;
    const before = server.stats();
    const busyBefore = machineBusySeconds();
    const clientsBefore = children.reduce((sum, child) => sum + child.cpuSeconds, 0);
    const benchBefore = ownCpuSeconds();
    const start = performance.now();
    const sender = Child.spawn("ncat", ["--ssl", ...address], { stdin: "pipe" });
    children.push(sender);
    void sender.write(new TextEncoder().encode(lines.join("\n") + "\n"));
    const done = await waitForOutput(counters, options.timeoutMs, () => !server.running);
    const elapsed = (performance.now() - start) / 1000;
    const after = server.stats();
    const busyAfter = machineBusySeconds();
    const clientsDuring = children.reduce((sum, child) => sum + child.cpuSeconds, 0) -
      clientsBefore;
    if (busyBefore !== undefined && busyAfter !== undefined && before && after) {
      const ours = after.cpuSeconds - before.cpuSeconds + clientsDuring + ownCpuSeconds() -
        benchBefore;
      result.otherCpuSeconds = Math.round(Math.max(0, busyAfter - busyBefore - ours) * 100) / 100;
    }
    const lastByte = (Math.max(...counters.map((counter) => counter.lastByteAt)) - start) / 1000;
    result.lastByteSeconds = Math.round(Math.max(0, lastByte) * 1000) / 1000;
    if (done) result.wallSeconds = Math.round(elapsed * 1000) / 1000;
    else result.error = "not every line arrived: output stopped short of the last line";
    if (before && after) {
      result.relayCpuSeconds = Math.round((after.cpuSeconds - before.cpuSeconds) * 100) / 100;
    }
    sender.endInput();
  } catch (error) {
    result.error = (error as Error).message;
  } finally {
    const cpu = children.reduce((sum, child) => sum + child.cpuSeconds, 0);
    result.clientCpuSeconds = Math.round(cpu * 100) / 100;
    if (children.length > receivers) {
      result.senderCpuSeconds = Math.round(children[receivers].cpuSeconds * 100) / 100;
    }
    await Promise.all(children.map((child) => child.stop("SIGTERM", 3000)));
  }
  for (const counter of counters) {
    const { received, intact } = countIntact(
      counter.text(),
      lines,
      (line) => line.replace(/^<user\d+> /, ""),
    );
    result.linesReceived += received;
    result.linesIntact += intact;
  }
  return result;
}
