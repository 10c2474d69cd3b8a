/**
 * What the bench needs from the machine: a description of it for the
 * report, per-process CPU time and memory from `/proc`, free ports, and
 * `ncat` (installed with apt-get when missing and allowed).
 *
 * @module
 */

import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { createServer } from "node:net";
import os from "node:os";
import process from "node:process";

/** The machine and software a run was measured on. */
export interface MachineInfo {
  cpu: string;
  cores: number;
  memoryGiB: number;
  os: string;
  deno: string;
  v8: string;
  ncat: string | null;
}

/**
 * Describes this machine.
 *
 * @example
 * ```ts
 * const machine = machineInfo(null);
 * console.log(machine.cpu, machine.cores);
 * ```
 */
export function machineInfo(ncatVersion: string | null): MachineInfo {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model?.trim() ?? "unknown",
    cores: cpus.length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    ncat: ncatVersion,
  };
}

/** CPU time and memory of one process. */
export interface ProcessStats {
  /** User plus system CPU time since the process started. */
  cpuSeconds: number;
  /** Resident set size now. */
  rssBytes: number;
  /** Largest resident set size so far. */
  peakRssBytes: number;
}

const CLOCK_TICKS_PER_SECOND = 100;

/**
 * Reads a process's CPU time and memory from `/proc` (Linux); undefined
 * where `/proc` is missing or the process is gone.
 *
 * @example
 * ```ts
 * const stats = processStats(relay.pid);
 * ```
 */
export function processStats(pid: number): ProcessStats | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name may hold spaces and parentheses: fields start after the last ")".
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(fields[11]) + Number(fields[12]);
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kib = (name: string) =>
      Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? 0);
    return {
      cpuSeconds: ticks / CLOCK_TICKS_PER_SECOND,
      rssBytes: kib("VmRSS") * 1024,
      peakRssBytes: kib("VmHWM") * 1024,
    };
  } catch {
    return undefined;
  }
}

/**
 * CPU seconds this (bench) process has used, user plus system.
 *
 * @example
 * ```ts
 * const before = ownCpuSeconds();
 * ```
 */
export function ownCpuSeconds(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
}

/**
 * A TCP port on 127.0.0.1 that was free a moment ago (for servers, like
 * ncat, that cannot pick one themselves and tell us).
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
    server.listen({ host: "127.0.0.1", port: 0 }, () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Runs a command; resolves with its exit code and output, never rejects. */
export function run(
  command: string,
  args: string[],
  timeoutMs: number,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      command,
      args,
      { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
  });
}

/** Where ncat is, or why it is not there. */
export type NcatStatus = { available: true; path: string; version: string } | {
  available: false;
  reason: string;
};

async function probeNcat(): Promise<NcatStatus | undefined> {
  const found = await run("ncat", ["--version"], 10_000);
  const text = `${found.stdout}${found.stderr}`;
  const version = /Version\s+(\S+)/.exec(text)?.[1];
  if (found.code === 0 && version) return { available: true, path: "ncat", version };
  return undefined;
}

/**
 * Finds `ncat`; when it is missing and `install` is set, installs it with
 * apt-get (Debian's package `ncat`). Never throws: a missing ncat is a
 * reason, and the bench reports securechat alone.
 *
 * @example
 * ```ts
 * const ncat = await findNcat({ install: true, log: console.log });
 * if (!ncat.available) console.log(ncat.reason);
 * ```
 */
export async function findNcat(
  options: { install: boolean; log: (line: string) => void },
): Promise<NcatStatus> {
  const present = await probeNcat();
  if (present) return present;
  if (!options.install) {
    return { available: false, reason: "ncat is not installed (this run does not install it)" };
  }
  if (typeof process.getuid === "function" && process.getuid() !== 0) {
    return {
      available: false,
      reason: "ncat is not installed and installing it needs root (apt-get install ncat)",
    };
  }
  options.log("ncat is missing: installing it with apt-get (Debian package ncat)");
  let attempt = await run("apt-get", ["install", "-y", "-qq", "ncat"], 300_000);
  if (attempt.code !== 0) {
    await run("apt-get", ["update", "-qq"], 300_000);
    attempt = await run("apt-get", ["install", "-y", "-qq", "ncat"], 300_000);
  }
  const installed = await probeNcat();
  if (installed) return installed;
  const why = attempt.stderr.trim().split("\n").pop() ?? `exit code ${attempt.code}`;
  return { available: false, reason: `ncat could not be installed with apt-get: ${why}` };
}

/**
 * Waits `ms` milliseconds.
 *
 * @example
 * ```ts
 * await sleep(100);
 * ```
 */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Polls `condition` every `intervalMs` until it holds or `timeoutMs` passes;
 * resolves with whether it held.
 *
 * @example
 * ```ts
 * const ready = await waitUntil(() => members.every((m) => m.ready), 10_000);
 * ```
 */
export async function waitUntil(
  condition: () => boolean,
  timeoutMs: number,
  intervalMs = 5,
): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) return false;
    await sleep(intervalMs);
  }
  return true;
}

/**
 * Busy CPU seconds of the whole machine since boot (all cores), from
 * `/proc/stat`; undefined where it is missing.
 *
 * @example
 * ```ts
 * const busy = machineBusySeconds();
 * ```
 */
export function machineBusySeconds(): number | undefined {
  try {
    const line = readFileSync("/proc/stat", "utf8").split("\n")[0];
    const [, user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).map(Number);
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return undefined;
  }
}

/**
 * The share of the machine (0 to 1) that other processes keep busy, sampled
 * over `ms` while this process waits.
 *
 * @example
 * ```ts
 * const share = await backgroundCpuShare(1000);
 * ```
 */
export async function backgroundCpuShare(ms: number): Promise<number | null> {
  const before = machineBusySeconds();
  const own = ownCpuSeconds();
  await sleep(ms);
  const after = machineBusySeconds();
  if (before === undefined || after === undefined) return null;
  const cores = os.cpus().length;
  const busy = after - before - (ownCpuSeconds() - own);
  return Math.max(0, Math.min(1, busy / ((ms / 1000) * cores)));
}
