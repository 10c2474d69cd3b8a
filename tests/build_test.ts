/**
 * Checks the artifacts of `deno task build`: the single executable
 * `dist/securechat` and the Node bundle `dist/securechat.mjs`. Each group is
 * skipped, with a message saying why, when its artifact was not built.
 *
 * @module
 */

import assert from "node:assert/strict";
import { copyFile, mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { PROGRAM_VERSION as VERSION } from "../lib/core/version.ts";
import { PROGRAM_VERSION, PROTOCOL_VERSION } from "../lib/core/version.ts";

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const EXECUTABLE = join(
  ROOT,
  "dist",
  Deno.build.os === "windows" ? "securechat.exe" : "securechat",
);
const BUNDLE = join(ROOT, "dist", "securechat.mjs");
const EXPECTED_VERSION = `securechat ${VERSION} (protocol ${PROTOCOL_VERSION})`;

async function exists(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

async function nodeMajor(): Promise<number> {
  try {
    const { stdout } = await new Deno.Command("node", { args: ["--version"], stdout: "piped" })
      .output();
    return Number(new TextDecoder().decode(stdout).trim().slice(1).split(".")[0]);
  } catch {
    return 0;
  }
}

const haveExecutable = await exists(EXECUTABLE);
const haveBundle = await exists(BUNDLE);
const haveNode = (await nodeMajor()) >= 20;
if (!haveExecutable) {
  console.warn(
    `build_test: skipping the executable checks: ${EXECUTABLE} not built (deno task build)`,
  );
}
if (!haveBundle) {
  console.warn(`build_test: skipping the bundle checks: ${BUNDLE} not built (deno task build)`);
} else if (!haveNode) {
  console.warn("build_test: skipping the bundle checks: no Node 20+ on PATH");
}

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

async function runProgram(
  command: string,
  args: string[],
  options: { cwd?: string; env?: Record<string, string> } = {},
): Promise<Ran> {
  const output = await new Deno.Command(command, {
    args,
    cwd: options.cwd,
    env: options.env,
    clearEnv: options.env !== undefined,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

Deno.test("the program version is the same in cli/main.ts, lib/core/version.ts and package.json", async () => {
  const manifest = JSON.parse(await readFile(join(ROOT, "package.json"), "utf8"));
  assert.equal(VERSION, manifest.version);
  assert.equal(PROGRAM_VERSION, manifest.version);
});

Deno.test({
  name: "executable: --version prints the program and protocol versions",
  ignore: !haveExecutable,
  async fn() {
    const ran = await runProgram(EXECUTABLE, ["--version"]);
    assert.equal(ran.code, 0, ran.stderr);
    assert.equal(ran.stdout, `${EXPECTED_VERSION}\n`);
    // disableExperimentalSEAWarning: nothing but the answer.
    assert.equal(ran.stderr, "");
  },
});

Deno.test({
  name: "executable: --help exits 0 and shows usage",
  ignore: !haveExecutable,
  async fn() {
    const ran = await runProgram(EXECUTABLE, ["--help"]);
    assert.equal(ran.code, 0, ran.stderr);
    assert.match(ran.stdout, /^Usage: securechat /);
  },
});

Deno.test({
  name: "executable: an unknown option exits 2 (usage), as under deno run",
  ignore: !haveExecutable,
  async fn() {
    const ran = await runProgram(EXECUTABLE, ["--no-such-option"]);
    assert.equal(ran.code, 2);
    assert.match(ran.stderr, /unknown option/);
  },
});

Deno.test({
  name: "executable: works copied alone into an empty directory, with an empty environment",
  ignore: !haveExecutable,
  async fn() {
    const dir = await mkdtemp(join(tmpdir(), "securechat-alone-"));
    try {
      const alone = join(dir, EXECUTABLE.endsWith(".exe") ? "securechat.exe" : "securechat");
      await copyFile(EXECUTABLE, alone);
      // No PATH to find node or deno through, no HOME, no NODE_OPTIONS.
      const env = { PATH: dir };
      const version = await runProgram(alone, ["--version"], { cwd: dir, env });
      assert.equal(version.code, 0, version.stderr);
      assert.equal(version.stdout, `${EXPECTED_VERSION}\n`);
      const help = await runProgram(alone, ["--help"], { cwd: dir, env });
      assert.equal(help.code, 0, help.stderr);
      assert.match(help.stdout, /^Usage: securechat /);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  },
});

Deno.test({
  name: "bundle: node dist/securechat.mjs --version and --help",
  ignore: !haveBundle || !haveNode,
  async fn() {
    const version = await runProgram("node", [BUNDLE, "--version"]);
    assert.equal(version.code, 0, version.stderr);
    assert.equal(version.stdout, `${EXPECTED_VERSION}\n`);
    const help = await runProgram("node", [BUNDLE, "--help"]);
    assert.equal(help.code, 0, help.stderr);
    assert.match(help.stdout, /^Usage: securechat /);
    const bad = await runProgram("node", [BUNDLE, "--no-such-option"]);
    assert.equal(bad.code, 2);
  },
});

Deno.test({
  name: "bundle: is self-contained and starts with a node shebang (package.json bin)",
  ignore: !haveBundle,
  async fn() {
    const text = await readFile(BUNDLE, "utf8");
    assert.ok(text.startsWith("#!/usr/bin/env node\n"), "missing shebang");
    // Every import left in the bundle must be a Node built-in.
    const specifiers = [...text.matchAll(/(?:^|\n)\s*import\b[^;]*?from\s*"([^"]+)"/g)]
      .map((match) => match[1]);
    const requires = [...text.matchAll(/\b__require\("([^"]+)"\)/g)].map((match) => match[1]);
    for (const specifier of [...specifiers, ...requires]) {
      assert.match(specifier, /^node:/, `bundle still imports ${specifier}`);
    }
    // The executable is built with useCodeCache, under which Node's import() does not work.
    assert.doesNotMatch(text, /(^|[^\w.$])import\s*\(/, "dynamic import() in the bundle");
    const manifest = JSON.parse(await readFile(join(ROOT, "package.json"), "utf8"));
    assert.equal(manifest.bin?.securechat, "dist/securechat.mjs");
  },
});
