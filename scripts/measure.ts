/**
 * Measures the built artifacts: file sizes, and the start-up time of
 * `securechat --help` (median and spread of `--runs` runs after two warm-up
 * runs) for the single executable, `node dist/securechat.mjs` (with the Node of
 * `scripts/node_binary.ts`) and `deno run -A mod.ts`. Prints a Markdown table for the README.
 *
 * @example
 * ```sh
 * deno task build && node_modules/deno/deno run -A scripts/measure.ts --runs 21
 * ```
 *
 * @module
 */

import { readFile, stat } from "node:fs/promises";
import { cpus, release } from "node:os";
import { join } from "node:path";
import { BuildError, DIST, formatSize, main, ROOT } from "./common.ts";
import { nodeBinary } from "./node_binary.ts";

interface Subject {
  name: string;
  command: string;
  args: string[];
}

await main("measure", async () => {
  const runsFlag = Deno.args.indexOf("--runs");
  const runs = runsFlag >= 0 ? Number(Deno.args[runsFlag + 1]) : 15;
  if (!Number.isInteger(runs) || runs < 1 || runs > 1000) {
    throw new BuildError("--runs takes a whole number from 1 to 1000");
  }
  const executable = join(DIST, Deno.build.os === "windows" ? "securechat.exe" : "securechat");
  const bundle = join(DIST, "securechat.mjs");
  for (const path of [executable, bundle]) {
    try {
      await stat(path);
    } catch {
      throw new BuildError(`${path} is missing; run \`deno task build\` first`);
    }
  }
  const subjects: Subject[] = [
    { name: "single executable (`dist/securechat`)", command: executable, args: [] },
    { name: "`node dist/securechat.mjs`", command: nodeBinary().command, args: [bundle] },
    {
      name: "`deno run -A mod.ts`",
      command: Deno.execPath(),
      args: ["run", "-A", join(ROOT, "mod.ts")],
    },
  ];

  console.log(`Measured ${new Date().toISOString().slice(0, 10)} on ${await machine()}.\n`);
  console.log("| artifact | size |\n| --- | --- |");
  for (const path of [executable, bundle]) {
    console.log(`| \`${path.slice(ROOT.length + 1)}\` | ${formatSize((await stat(path)).size)} |`);
  }
  console.log(`\nStart-up, \`--help\`, ${runs} runs after 2 warm-up runs:\n`);
  console.log("| how | median | min | max |\n| --- | --- | --- | --- |");
  for (const subject of subjects) {
    const times = await time(subject, runs);
    const ms = (value: number) => `${value.toFixed(0)} ms`;
    console.log(
      `| ${subject.name} | ${ms(median(times))} | ${ms(Math.min(...times))} | ${
        ms(Math.max(...times))
      } |`,
    );
  }
});

async function time(subject: Subject, runs: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < runs + 2; i++) {
    const start = performance.now();
    const output = await new Deno.Command(subject.command, {
      args: [...subject.args, "--help"],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).output();
    const elapsed = performance.now() - start;
    if (output.code !== 0) {
      const stderr = new TextDecoder().decode(output.stderr).trim();
      throw new BuildError(`${subject.name} --help exited ${output.code}: ${stderr}`);
    }
    if (i >= 2) times.push(elapsed);
  }
  return times;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

async function machine(): Promise<string> {
  const processors = cpus();
  let os = `${Deno.build.os} ${release()}`;
  try {
    const text = await readFile("/etc/os-release", "utf8");
    os = text.match(/^PRETTY_NAME="?([^"\n]+)"?/m)?.[1] ?? os;
  } catch {
    // Not Linux; the kernel name above will do.
  }
  const node = await new Deno.Command(nodeBinary().command, {
    args: ["--version"],
    stdout: "piped",
  })
    .output();
  return `${processors.length} × ${processors[0]?.model.trim() ?? "unknown CPU"}, ${os}, ` +
    `Deno ${Deno.version.deno}, Node ${new TextDecoder().decode(node.stdout).trim()}`;
}
