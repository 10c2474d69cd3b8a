/**
 * `join` in shell pipelines with real programs on the other end: a real
 * `head` that closes the pipe after one line. Set SECURECHAT_BIN to run
 * these against a built program (the Node bundle or the executable), where
 * a closed pipe surfaces differently than under Deno.
 */

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { spawn } from "node:child_process";
import { securechatCommand } from "./support/cli_command.ts";
import { runCli, startRelay, TempDirs } from "./support/cli_process.ts";
import { shellQuote } from "./support/tmux.ts";

/** Runs `securechat ARGS </dev/null | head -n 1` in bash; resolves when the pipeline ends. */
function pipeToHead(args: string[], options: { home: string; dir: string }) {
  const { command, args: lead } = securechatCommand();
  const program = [command, ...lead, ...args].map(shellQuote).join(" ");
  const status = join(options.dir, "status");
  const stderr = join(options.dir, "stderr");
  const script = `${program} </dev/null 2>${shellQuote(stderr)} | head -n 1; ` +
    `echo "\${PIPESTATUS[0]} \${PIPESTATUS[1]}" > ${shellQuote(status)}`;
  const child = spawn("bash", ["-c", script], {
    env: { ...Deno.env.toObject(), SECURECHAT_HOME: options.home, NO_COLOR: "1" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  let stdout = "";
  child.stdout!.setEncoding("utf8");
  child.stdout!.on("data", (text: string) => stdout += text);
  const done = new Promise<void>((resolve) => child.on("close", () => resolve()));
  return {
    done,
    get stdout() {
      return stdout;
    },
    statuses: () => readFileSync(status, "utf8").trim().split(" ").map(Number),
    stderr: () => readFileSync(stderr, "utf8"),
    kill: () => child.kill("SIGKILL"),
  };
}

async function until(condition: () => boolean, what: string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

for (const json of [false, true]) {
  Deno.test(`join ${json ? "--json " : ""}| head -n 1: a closed stdout ends join quietly with status 141`, async () => {
    const dirs = new TempDirs();
    const relay = await startRelay({ home: dirs.make("relay") });
    const args = ["join", relay.address, "--room", "pipe", "--nick", "reader", "--stay"];
    const pipeline = pipeToHead(json ? [...args, "--json"] : args, {
      home: dirs.make(),
      dir: dirs.make("pipe"),
    });
    try {
      if (json) {
        // The first JSON line is a notice; join dies at its next write, before anyone speaks.
        await pipeline.done;
        const [joinStatus, headStatus] = pipeline.statuses();
        assert.equal(headStatus, 0);
        assert.equal(joinStatus, 141, pipeline.stderr());
        assert.doesNotMatch(
          pipeline.stderr(),
          /EPIPE|Error|\n\s+at |unexpected/,
          pipeline.stderr(),
        );
        assert.match(pipeline.stdout, /^\{"type":"warning","text":"created a new identity/);
        assert.equal(pipeline.stdout.split("\n").length, 2, pipeline.stdout);
        return;
      }
      await relay.proc.waitFor("stderr", /nick=reader/);
      const send = (lines: string) =>
        runCli(["join", relay.address, "--room", "pipe", "--nick", "writer"], {
          home: dirs.make(),
          input: lines,
        });
      // head takes the first write and exits; join only learns of it at its next write.
      assert.equal((await send("one\ntwo\n")).code, 0);
      await until(() => pipeline.stdout.includes("\n"), "head's line");
      assert.equal((await send("three\n")).code, 0);
      await pipeline.done;
      const [joinStatus, headStatus] = pipeline.statuses();
      assert.equal(headStatus, 0);
      assert.equal(joinStatus, 141, pipeline.stderr());
      assert.doesNotMatch(pipeline.stderr(), /EPIPE|Error|\n\s+at |unexpected/, pipeline.stderr());
      assert.equal(pipeline.stdout.split("\n").length, 2, pipeline.stdout);
      assert.equal(pipeline.stdout, "writer: one\n");
    } finally {
      pipeline.kill();
      await relay.proc.stop();
      dirs.cleanup();
    }
  });
}

Deno.test("fingerprint and keygen into a closed pipe end quietly too", async () => {
  const dirs = new TempDirs();
  try {
    const home = dirs.make();
    // `true` exits without reading: the one line keygen prints meets a closed pipe.
    const { command, args: lead } = securechatCommand();
    const program = [command, ...lead].map(shellQuote).join(" ");
    const result = spawn("bash", [
      "-c",
      `sleep_then() { sleep 0.3; "$@"; }; sleep_then ${program} keygen --no-passphrase ` +
      `--out ${shellQuote(join(home, "id"))} 2>${shellQuote(join(home, "err"))} | true; ` +
      `echo "\${PIPESTATUS[0]}"`,
    ], {
      env: { ...Deno.env.toObject(), SECURECHAT_HOME: home },
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    result.stdout!.setEncoding("utf8");
    result.stdout!.on("data", (text: string) => out += text);
    await new Promise((resolve) => result.on("close", resolve));
    const status = Number(out.trim());
    assert.ok(status === 0 || status === 141, `status ${status}`);
    assert.doesNotMatch(readFileSync(join(home, "err"), "utf8"), /EPIPE|Error|\n\s+at /);
  } finally {
    dirs.cleanup();
  }
});
