/**
 * Every shell example in README.md (its ```sh blocks) is run exactly as
 * written, by bash, against a real relay on the address the README uses,
 * 127.0.0.1:7878, in a temporary SECURECHAT_HOME and working directory,
 * with `securechat` on PATH (the sources, or SECURECHAT_BIN). Commands that
 * wait for others get them: an observer in the room checks what arrives, and
 * a feeder speaks when an example waits for a message.
 *
 * Each command must have an entry below, or the test fails: an example
 * added to the README without a test, or a test left for an example that is
 * gone, are both errors. A few are skipped, each with its reason (they
 * install software, run the whole suite or need systemd).
 *
 * Port 7878 is the README's, so the test runs in a network namespace of its
 * own when `unshare -rn` works (nothing else can hold the port there), and
 * otherwise needs the port free.
 */

import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { appendFileSync, chmodSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { securechatCommand } from "./support/cli_command.ts";
import { CliProcess, startRelay, TempDirs } from "./support/cli_process.ts";
import { shellQuote } from "./support/tmux.ts";

const ADDRESS = "127.0.0.1:7878";
const README = readFileSync(new URL("../README.md", import.meta.url), "utf8");

/** The commands of every ```sh block, continuation lines joined, comments dropped. */
function readmeCommands(): string[] {
  const commands: string[] = [];
  for (const block of README.matchAll(/^```sh\n([\s\S]*?)^```$/gm)) {
    let pending = "";
    for (const raw of block[1].split("\n")) {
      const line = pending === "" ? raw : `${pending}\n${raw}`;
      if (/\\$/.test(raw)) {
        pending = line;
        continue;
      }
      pending = "";
      const command = line.replace(/\s+#[^'"]*$/, "").trimEnd();
      if (command.trim() === "" || command.trimStart().startsWith("#")) continue;
      commands.push(command);
    }
  }
  return commands;
}

/** What the harness gives the examples. */
interface World {
  /** The examples' working directory. */
  dir: string;
  env: Record<string, string>;
  relayFingerprint: string;
  /** Everything the observer (in room ops) has printed: `nick: text` lines. */
  observed: () => string;
  /** Waits for the relay to log a join by `nick`. */
  joined: (nick: string) => Promise<void>;
  /** Sends `text` into room ops as nick `feeder`. */
  say: (text: string) => Promise<void>;
}

/** A command run by bash in the examples' directory. */
class Example {
  readonly child: ChildProcess;
  output = "";
  readonly exited: Promise<number>;

  constructor(command: string, world: World, input?: string) {
    this.child = spawn("bash", ["-c", command], {
      cwd: world.dir,
      env: world.env,
      stdio: ["pipe", "pipe", "pipe"],
      detached: true, // its own process group, so a pipeline can be stopped whole
    });
    for (const stream of [this.child.stdout!, this.child.stderr!]) {
      stream.setEncoding("utf8").on("data", (text: string) => this.output += text);
    }
    this.child.stdin!.on("error", () => {});
    this.child.stdin!.end(input ?? "");
    this.exited = new Promise((resolve) => this.child.on("close", (code) => resolve(code ?? -1)));
  }

  async status(ms = 30_000): Promise<number> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<number>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`did not finish:\n${this.output}`)), ms);
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  async stop(): Promise<void> {
    try {
      process.kill(-this.child.pid!, "SIGTERM");
    } catch {
      return; // already gone
    }
    await Promise.race([this.exited, new Promise((resolve) => setTimeout(resolve, 5_000))]);
    try {
      process.kill(-this.child.pid!, "SIGKILL");
    } catch {
      // gone
    }
  }
}

async function until(condition: () => boolean, what: string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

type Check = (command: string, world: World) => Promise<void>;

/** Runs to the end and must exit 0. */
const succeeds: Check = async (command, world) => {
  const example = new Example(command, world);
  assert.equal(await example.status(), 0, example.output);
};

/** Runs to the end, exit 0, and the observer must see `lines`. */
const delivers = (...lines: string[]): Check => async (command, world) => {
  await succeeds(command, world);
  for (const line of lines) await until(() => world.observed().includes(`${line}\n`), line);
};

const SKIPPED: Record<string, string> = {
  "npm ci && npm run demo": "installs the dependencies and starts an interactive demo",
  "npm test": "the whole test suite, which includes this test",
  "npm ci": "installs the dependencies",
  "node_modules/.bin/deno task build": "the build has its own test (tests/build_test.ts)",
  "dist/securechat --version": "checked by tests/build_test.ts after a build",
  "node_modules/deno/deno task bench": "five minutes of benchmarks",
  "node_modules/deno/deno task bench:smoke": "run by tests/bench_smoke_test.ts",
  "node_modules/deno/deno task test:adversarial": "part of npm test",
  "node_modules/deno/deno task test:adversarial:full": "the long adversarial run",
  "node_modules/.bin/deno task compile": "needs dl.deno.land",
  "node_modules/.bin/deno task compile:all": "needs dl.deno.land",
  "SECURECHAT_BIN=dist/securechat node_modules/deno/deno test -A tests/e2e_test.ts":
    ".ci/run runs the tests against the executable",
  "SECURECHAT_BIN=dist/securechat.mjs node_modules/deno/deno test -A tests/e2e_test.ts":
    ".ci/run runs the tests against the executable",
  'securechat completions zsh > "${fpath[1]}/_securechat"':
    "zsh syntax, and it writes into the shell's configuration (tests/cli_help_test.ts runs zsh)",
  "securechat completions fish > ~/.config/fish/completions/securechat.fish":
    "writes into the shell's configuration (tests/cli_help_test.ts runs fish)",
  "sudo install -m 755 dist/securechat /usr/local/bin/securechat": "installs system-wide",
  "sudo cp contrib/securechat-relay.service /etc/systemd/system/": "installs system-wide",
  "sudo systemctl daemon-reload && sudo systemctl enable --now securechat-relay":
    "needs systemd (tests/serve_ops_test.ts checks the unit)",
  "journalctl -u securechat-relay -f": "needs systemd",
};

/** The echo bot recipe: three lines joined by backslash-newlines. */
const ECHO_BOT = [
  "securechat join 127.0.0.1:7878 --room ops --nick bot --json --stay </dev/null \\",
  `  | jq --unbuffered -r 'select(.type == "message" and .from != "bot-out") | "echo: " + .text' \\`,
  "  | securechat join 127.0.0.1:7878 --room ops --nick bot-out --stay",
].join("\n");

const CHECKS: Record<string, Check> = {
  'echo "deploy done" | securechat join 127.0.0.1:7878 --room ops': delivers("alice: deploy done"),
  'echo "deploy done" | securechat join 127.0.0.1:7878 --room ops --nick ci': delivers(
    "ci: deploy done",
  ),
  "printf 'step 1 ok\\nstep 2 ok\\n' | securechat join 127.0.0.1:7878 --room ops --nick ci":
    delivers(
      "ci: step 1 ok",
      "ci: step 2 ok",
    ),
  'eval "$(securechat completions bash)"': async (command, world) => {
    const example = new Example(`${command} && complete -p securechat`, world);
    assert.equal(await example.status(), 0, example.output);
    assert.match(example.output, /complete -F _securechat securechat/);
  },
  "securechat man | man -l -": async (command, world) => {
    const example = new Example(command, world);
    assert.equal(await example.status(), 0, example.output);
    assert.match(example.output, /securechat join/);
    assert.match(example.output, /EXIT STATUS/);
  },
  "securechat fingerprint 127.0.0.1:7878": async (command, world) => {
    const example = new Example(command, world);
    assert.equal(await example.status(), 0, example.output);
    assert.equal(example.output.trim(), world.relayFingerprint);
  },
  "reply=$(securechat join 127.0.0.1:7878 --room ops --nick waiter --count 1 </dev/null)": async (
    command,
    world,
  ) => {
    const example = new Example(`${command}\nprintf 'reply=%s\\n' "$reply"`, world);
    await world.joined("waiter");
    await world.say("ping for the waiter");
    assert.equal(await example.status(), 0, example.output);
    assert.match(example.output, /^reply=feeder: ping for the waiter$/m);
  },
  "securechat join 127.0.0.1:7878 --room ops --nick logger --json --stay </dev/null | jq --unbuffered -r 'select(.type == \"message\") | .text'":
    async (command, world) => {
      const example = new Example(command, world);
      try {
        await world.joined("logger");
        await world.say("a text for the logger");
        await until(() => example.output.includes("a text for the logger\n"), "jq's output");
        assert.doesNotMatch(example.output, /"type"/, "only texts, no JSON");
      } finally {
        await example.stop();
      }
    },
  "tail -f app.log | securechat join 127.0.0.1:7878 --room ops --nick app-log --stay": async (
    command,
    world,
  ) => {
    const log = join(world.dir, "app.log");
    writeFileSync(log, "");
    const example = new Example(command, world);
    try {
      await world.joined("app-log");
      appendFileSync(log, "GET /health 200\n");
      await until(() => world.observed().includes("app-log: GET /health 200\n"), "the log line");
      await world.say("a reply to app-log");
      await until(() => example.output.includes("feeder: a reply to app-log\n"), "the reply");
    } finally {
      await example.stop();
    }
  },
  'securechat join 127.0.0.1:7878 --room ops --server-fingerprint "$(cat relay.fp)" --trust team.txt':
    async (command, world) => {
      const example = new Example(command, world, "only for the team\n");
      assert.equal(await example.status(), 0, example.output);
      await until(() => world.observed().includes("alice: only for the team\n"), "the team line");
    },
  [ECHO_BOT]: async (command, world) => {
    const example = new Example(command, world);
    try {
      await world.joined("bot");
      await world.joined("bot-out");
      await world.say("hello bot");
      await until(() => world.observed().includes("bot-out: echo: hello bot\n"), "the echo");
    } finally {
      await example.stop();
    }
  },
};

/** Whether this process may run the examples: inside a namespace, or with 7878 free. */
function insideNamespace(): boolean {
  return process.env.SECURECHAT_README_NETNS === "1";
}

function namespacesWork(): boolean {
  return spawnSync("unshare", ["-rn", "true"], { stdio: "ignore" }).status === 0 &&
    spawnSync("ip", ["-V"], { stdio: "ignore" }).status === 0;
}

Deno.test("every README shell command has an entry here, and every entry a README command", () => {
  const commands = readmeCommands();
  const unknown = commands.filter((command) => !(command in CHECKS) && !(command in SKIPPED));
  assert.deepEqual(unknown, [], "README examples without a test entry");
  const stale = [...Object.keys(CHECKS), ...Object.keys(SKIPPED)].filter((key) =>
    !commands.includes(key)
  );
  assert.deepEqual(stale, [], "test entries for commands no longer in README.md");
});

if (!insideNamespace() && namespacesWork()) {
  Deno.test("README examples, run in a network namespace of their own", () => {
    // The same file again, inside `unshare -rn`: a loopback of its own, port 7878 free.
    const deno = join(new URL("..", import.meta.url).pathname, "node_modules", "deno", "deno");
    const self = new URL(import.meta.url).pathname;
    const inner = spawnSync(
      "unshare",
      ["-rn", "sh", "-c", `ip link set lo up && exec "$@"`, "sh", deno, "test", "-A", self],
      { encoding: "utf8", env: { ...process.env, SECURECHAT_README_NETNS: "1" } },
    );
    assert.equal(inner.status, 0, `${inner.stdout}\n${inner.stderr}`);
    assert.match(inner.stdout, /README examples, exactly as written \.\.\. .*ok/);
  });
} else {
  Deno.test({
    name: "README examples, exactly as written",
    sanitizeResources: false,
    sanitizeOps: false,
    fn: runExamples,
  });
}

async function runExamples(): Promise<void> {
  const dirs = new TempDirs();
  const relay = await startRelay({ home: dirs.make("relay"), listen: ADDRESS }).catch((error) => {
    throw new Error(`a relay on ${ADDRESS}, the README's address, could not start: ${error}`);
  });
  const observerHome = dirs.make("observer");
  const observer = CliProcess.start(
    ["join", ADDRESS, "--room", "ops", "--nick", "observer", "--stay"],
    { home: observerHome },
  );
  const started: Example[] = [];
  try {
    await observer.waitFor("stderr", /joined room "ops"/);
    const dir = dirs.make("examples");
    const home = dirs.make("home");
    // `securechat` on PATH, as the README asks: the program under test.
    const bin = dirs.make("bin");
    const { command, args } = securechatCommand();
    writeFileSync(
      join(bin, "securechat"),
      `#!/bin/sh\nexec ${[command, ...args].map(shellQuote).join(" ")} "$@"\n`,
    );
    chmodSync(join(bin, "securechat"), 0o755);
    const env: Record<string, string> = {
      PATH: `${bin}:${process.env.PATH}`,
      HOME: dir,
      USER: "alice",
      SECURECHAT_HOME: home,
      NO_COLOR: "1",
      TERM: "dumb",
    };
    // What the pinning example reads: the operator's fingerprint and the team's.
    writeFileSync(join(dir, "relay.fp"), `${relay.fingerprint}\n`);
    const observerFingerprint = spawnSync(command, [...args, "fingerprint"], {
      env: { ...process.env, SECURECHAT_HOME: observerHome },
      encoding: "utf8",
    }).stdout.trim();
    writeFileSync(join(dir, "team.txt"), `${observerFingerprint} observer\n`);
    const feederHome = dirs.make("feeder");
    const world: World = {
      dir,
      env,
      relayFingerprint: relay.fingerprint,
      observed: () => observer.stdout,
      joined: (nick) =>
        relay.proc.waitFor("stderr", new RegExp(`join room=ops nick=${nick} `)).then(() => {}),
      say: async (text) => {
        const feeder = CliProcess.start(["join", ADDRESS, "--room", "ops", "--nick", "feeder"], {
          home: feederHome, // one identity: a second key under the nick would be a key change
          input: `${text}\n`,
        });
        assert.equal((await feeder.wait()).code, 0, feeder.describe());
      },
    };
    let ran = 0;
    for (const example of readmeCommands()) {
      const check = CHECKS[example];
      if (check === undefined) continue; // skipped, with its reason in SKIPPED
      await check(example, world).catch((error) => {
        throw new Error(`README example failed: ${example}\n${(error as Error).message}`);
      });
      ran++;
    }
    assert.equal(ran, Object.keys(CHECKS).length);
  } finally {
    for (const example of started) await example.stop();
    await observer.stop();
    await relay.proc.stop();
    dirs.cleanup();
  }
}
