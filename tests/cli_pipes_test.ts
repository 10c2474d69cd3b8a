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
import { concat } from "../lib/core/bytes.ts";
import { firstInvalidByte, type InputLine, LineSplitter } from "../cli/lines.ts";
import { CliProcess, runCli, startRelay, TempDirs } from "./support/cli_process.ts";
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
      // One writer, one identity: in a durable room its nick stays on the roster between joins.
      const writerHome = dirs.make();
      const send = (lines: string) =>
        runCli(["join", relay.address, "--room", "pipe", "--nick", "writer"], {
          home: writerHome,
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

Deno.test("invalid UTF-8 on stdin: the line is refused and named (exit 7); --allow-invalid-utf8 sends it with U+FFFD and warns once", async () => {
  const dirs = new TempDirs();
  const relay = await startRelay({ home: dirs.make("relay") });
  try {
    const receiver = CliProcess.start(
      ["join", relay.address, "--room", "utf8", "--nick", "reader", "--count", "4"],
      { home: dirs.make() },
    );
    await receiver.waitFor("stderr", /joined room/);
    const bytes = (text: string) => new TextEncoder().encode(text);
    const input = concat(
      bytes("ok 1\n"),
      bytes("bad "),
      new Uint8Array([0xff, 0xfe]),
      bytes(" line\r\n"),
      bytes("ok 3 ✓\n"),
      new Uint8Array([0xc3]), // a cut-off two-byte sequence at the very end
    );
    const strict = await runCli(["join", relay.address, "--room", "utf8", "--nick", "strict"], {
      home: dirs.make(),
      input,
    });
    assert.equal(strict.code, 7, strict.stderr);
    assert.match(
      strict.stderr,
      /^securechat: line 2 not sent: not valid UTF-8 \(byte 5 starts a bad sequence\)/m,
    );
    assert.match(
      strict.stderr,
      /^securechat: line 4 not sent: not valid UTF-8 \(byte 1 starts a bad sequence\)/m,
    );
    assert.match(strict.stderr, /2 line\(s\) were not sent/);

    const lenient = await runCli(
      ["join", relay.address, "--room", "utf8", "--nick", "lenient", "--allow-invalid-utf8"],
      { home: dirs.make(), input: concat(bytes("x "), new Uint8Array([0x80]), bytes("\ny\xff\n")) },
    );
    assert.equal(lenient.code, 0, lenient.stderr);
    assert.equal(lenient.stderr.match(/invalid UTF-8/g)?.length, 1, lenient.stderr);
    assert.match(lenient.stderr, /line 1: invalid UTF-8 replaced with U\+FFFD/);

    assert.equal((await receiver.wait()).code, 0, receiver.describe());
    assert.deepEqual(receiver.stdoutLines(), [
      "strict: ok 1",
      "strict: ok 3 ✓",
      "lenient: x \uFFFD",
      "lenient: y\u00ff",
    ]);
  } finally {
    await relay.proc.stop();
    dirs.cleanup();
  }
});

Deno.test("line splitting: any chunking, CRLF, a last line without newline; invalid UTF-8 found where it starts", () => {
  const text = "alpha\r\nbeta ✓\n\ngamma 你好";
  const bytes = new TextEncoder().encode(text);
  for (const size of [1, 2, 3, 5, 7, bytes.length]) {
    const lines: InputLine[] = [];
    const splitter = new LineSplitter({ onLine: (line) => lines.push(line), allowInvalid: false });
    for (let start = 0; start < bytes.length; start += size) {
      splitter.push(bytes.slice(start, start + size));
    }
    splitter.end();
    assert.deepEqual(
      lines.map((line) => "text" in line ? line.text : null),
      ["alpha", "beta ✓", "", "gamma 你好"],
      `chunks of ${size}`,
    );
  }
  const at = (...values: number[]) => firstInvalidByte(new Uint8Array(values));
  assert.equal(at(0x61, 0x62), -1);
  assert.equal(at(0xc3, 0xa9), -1, "é");
  assert.equal(at(0x61, 0xc0, 0x80), 1, "overlong NUL");
  assert.equal(at(0xe0, 0x80, 0x80), 0, "overlong three-byte form");
  assert.equal(at(0xed, 0xa0, 0x80), 0, "a UTF-16 surrogate");
  assert.equal(at(0xf4, 0x90, 0x80, 0x80), 0, "above U+10FFFF");
  assert.equal(at(0xf0, 0x9f, 0x8e, 0x89), -1, "🎉");
  assert.equal(at(0x61, 0x62, 0xe4, 0xbd), 2, "cut short");
  assert.equal(at(0x80), 0, "a lone continuation byte");
});
