/**
 * The chat screen in real terminals (tmux), for what tests/tui_test.ts does
 * not cover: surviving a real relay restart with scrollback and the
 * half-typed line intact, pastes from terminals without bracketed paste,
 * narrow terminals, and long URLs. Set SECURECHAT_BIN to run these against a
 * built program; without tmux they are skipped unless CI is set.
 */

import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { EnterBurst } from "../cli/tui/burst.ts";
import { wrapEntry } from "../cli/tui/screen.ts";
import { securechatCommand } from "./support/cli_command.ts";
import { CliProcess, startRelay, TempDirs } from "./support/cli_process.ts";
import { shellQuote, tmuxAvailable, TmuxServer, type TmuxTerminal } from "./support/tmux.ts";

const HAVE_TMUX = tmuxAvailable();
if (!HAVE_TMUX && (process.env.CI ?? "") !== "") {
  Deno.test("terminal tests need tmux", () => {
    throw new Error("tmux is not installed: tests/tui_more_test.ts cannot run");
  });
}

const inputRow = (lines: string[]) => lines[lines.length - 1];
const statusRow = (lines: string[]) => lines[lines.length - 2];

/** Runs `join` in `terminal` through a script that prints its exit status when it ends. */
async function startChat(
  server: TmuxServer,
  terminal: TmuxTerminal,
  options: {
    address: string;
    room: string;
    nick: string;
    home: string;
    env?: Record<string, string>;
  },
): Promise<void> {
  const { command, args } = securechatCommand();
  const script = join(server.dir, `${terminal.name}.sh`);
  const lines = [`export SECURECHAT_HOME=${shellQuote(options.home)}`, "export NO_COLOR=1"];
  for (const [name, value] of Object.entries(options.env ?? {})) {
    lines.push(`export ${name}=${shellQuote(value)}`);
  }
  lines.push(
    [command, ...args, "join", options.address, "--room", options.room, "--nick", options.nick]
      .map(shellQuote).join(" "),
    `echo "exit status $?"`,
  );
  writeFileSync(script, `${lines.join("\n")}\n`);
  await terminal.run(`clear; sh ${shellQuote(script)}`);
  await waitForPrompt(terminal, options.room, options.nick);
}

function waitForPrompt(terminal: TmuxTerminal, room: string, nick: string): Promise<string[]> {
  const prompt = `[${room}] ${nick}>`;
  return terminal.waitFor(
    (lines) => inputRow(lines).startsWith(prompt) && lines.some((line) => line.includes("joined")),
    `the prompt ${prompt}`,
    20_000,
  );
}

async function exitStatus(terminal: TmuxTerminal): Promise<number> {
  const lines = await terminal.waitFor(
    (rows) => rows.some((row) => /^exit status \d+$/.test(row)),
    "join to exit",
  );
  return Number(lines.find((row) => /^exit status \d+$/.test(row))!.split(" ")[2]);
}

Deno.test({
  name:
    "terminal: a relay restart is survived on screen, with scrollback and the half-typed line kept",
  ignore: !HAVE_TMUX,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const dirs = new TempDirs();
    const relayHome = dirs.make("relay");
    let relay = await startRelay({ home: relayHome });
    const address = relay.address;
    const server = new TmuxServer(dirs.make("tmux"));
    const bob = CliProcess.start(["join", address, "--room", "r", "--nick", "bob", "--stay"], {
      home: dirs.make(),
    });
    try {
      await bob.waitFor("stderr", /joined room/);
      const terminal = await server.terminal("alice", { columns: 160, rows: 24 });
      await startChat(server, terminal, { address, room: "r", nick: "alice", home: dirs.make() });
      bob.write("said before the restart\n");
      await terminal.waitFor(/bob: said before the restart$/m, "bob's message");
      await terminal.type("half-typed");
      await terminal.waitFor((lines) => inputRow(lines) === "[r] alice> half-typed", "the input");

      await relay.proc.stop();
      const lost = await terminal.waitFor(
        /connection to the relay lost: .*reconnecting in/,
        "the loss on screen",
      );
      assert.match(statusRow(lost), /reconnecting/);
      relay = await startRelay({ home: relayHome, listen: address });
      const back = await terminal.waitFor(
        /reconnected: joined room "r" as alice/,
        "the reconnection on screen",
        30_000,
      );
      // Scrollback and the half-typed line survived.
      assert.ok(back.some((line) => /bob: said before the restart$/.test(line)), back.join("\n"));
      assert.equal(inputRow(back), "[r] alice> half-typed");
      await bob.waitFor("stderr", /reconnected: joined/, 30_000);
      await terminal.waitFor(
        (lines) => statusRow(lines).includes("1 other"),
        "bob back in the list",
      );
      await terminal.type(" and sent after");
      await terminal.keys("Enter");
      await bob.waitFor("stdout", /alice: half-typed and sent after\n/);
      bob.write("welcome back\n");
      await terminal.waitFor(/bob: welcome back$/m, "a message after the restart");
      await terminal.run("/quit");
      assert.equal(await exitStatus(terminal), 0);
    } finally {
      await server.kill();
      if (bob.child.exitCode === null) await bob.stop();
      await relay.proc.stop();
      dirs.cleanup();
    }
  },
});

Deno.test({
  name:
    "terminal: a paste without bracketed paste is one message; 20 columns keep prompt and input apart; long URLs wrap without indentation",
  ignore: !HAVE_TMUX,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const dirs = new TempDirs();
    const relay = await startRelay({ home: dirs.make("relay") });
    const server = new TmuxServer(dirs.make("tmux"));
    const bob = CliProcess.start(
      ["join", relay.address, "--room", "r", "--nick", "bob", "--stay"],
      {
        home: dirs.make(),
      },
    );
    try {
      await bob.waitFor("stderr", /joined room/);
      const terminal = await server.terminal("alice", { columns: 60, rows: 20 });
      await startChat(server, terminal, {
        address: relay.address,
        room: "r",
        nick: "alice",
        home: dirs.make(),
      });

      // A terminal without bracketed paste types the lines, each newline as Enter, in one burst.
      await terminal.pasteUnbracketed("line one\nline two\nline three\n");
      await terminal.waitFor(
        (lines) => inputRow(lines) === "[r] alice> line one⏎line two⏎line three",
        "the whole paste in the input line",
      );
      await terminal.waitFor(/pasted 3 lines/, "the hint");
      // Nothing went out line by line.
      await new Promise((resolve) => setTimeout(resolve, 500));
      assert.equal(bob.stdout, "", `sent before Enter: ${bob.stdout}`);
      await terminal.keys("Enter");
      await bob.waitFor("stdout", /alice: line one\\nline two\\nline three\n/);
      assert.equal(bob.stdoutLines().length, 1, bob.stdout);
      // Typing line by line still sends each line at once.
      await terminal.run("typed one");
      await bob.waitFor("stdout", /alice: typed one\n/);

      // A long URL: continuation rows start at the first column, so copying keeps it whole.
      const url = "https://example.com/" + "a1b2c3d4e5".repeat(9) + "?q=1";
      bob.write(`see ${url} now\n`);
      const screen = await terminal.waitFor(/\?q=1 now/, "the URL");
      const start = screen.findIndex((line) => line.includes("https://"));
      let joined = screen[start].slice(screen[start].indexOf("https://"));
      for (const row of screen.slice(start + 1)) {
        if (!/^[\w/?=&.%-]/.test(row)) break;
        joined += row.split(" ")[0];
        if (row.includes(" now")) break;
      }
      assert.equal(joined, url, `the URL rows:\n${screen.slice(start, start + 4).join("\n")}`);
      assert.ok(
        !screen.slice(start + 1, start + 3).some((row) => row.startsWith(" ")),
        screen.join("\n"),
      );

      // 20 columns: the prompt shrinks instead of running into what is typed.
      await terminal.resize(20, 12);
      await terminal.type("hello there");
      const narrow = await terminal.waitFor(
        (lines) => lines.length === 12 && inputRow(lines).endsWith("hello there"),
        "the narrow input line",
      );
      assert.match(inputRow(narrow), /^(alice)?> hello there$/);
      assert.equal((await terminal.cursor()).x, inputRow(narrow).length);
      await terminal.keys("C-u");
      await terminal.type("x".repeat(40));
      const scrolled = await terminal.waitFor(
        (lines) => /^(alice)?> x+$/.test(inputRow(lines)),
        "the input scrolled sideways, prompt intact",
      );
      assert.ok(inputRow(scrolled).length <= 20);
      await terminal.keys("C-u");
      await terminal.run("/quit");
      assert.equal(await exitStatus(terminal), 0);
    } finally {
      await server.kill();
      if (bob.child.exitCode === null) await bob.stop();
      await relay.proc.stop();
      dirs.cleanup();
    }
  },
});

Deno.test({
  name: "terminal: a room opens with the last messages kept on this machine, then goes live",
  ignore: !HAVE_TMUX,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const dirs = new TempDirs();
    const relay = await startRelay({ home: dirs.make("relay") });
    const address = relay.address;
    const server = new TmuxServer(dirs.make("tmux"));
    const home = dirs.make();
    const bob = CliProcess.start(["join", address, "--room", "r", "--nick", "bob", "--stay"], {
      home: dirs.make(),
    });
    try {
      await bob.waitFor("stderr", /joined room/);
      const terminal = await server.terminal("alice", { columns: 120, rows: 24 });
      await startChat(server, terminal, { address, room: "r", nick: "alice", home });
      bob.write("kept for later\n");
      await terminal.waitFor(/bob: kept for later$/m, "bob's message");
      await terminal.run("said by alice");
      await bob.waitFor("stdout", /alice: said by alice\n/);
      await terminal.run("/quit");
      assert.equal(await exitStatus(terminal), 0);
      // The room opens again: the history comes first, marked, then the chat goes on.
      await startChat(server, terminal, { address, room: "r", nick: "alice", home });
      const screen = await terminal.waitFor(/— now —/, "the history on screen");
      const text = screen.join("\n");
      assert.match(text, /the last 2 message\(s\) kept on this machine/);
      assert.ok(
        text.indexOf("kept for later") < text.indexOf("said by alice") &&
          text.indexOf("said by alice") < text.indexOf("— now —"),
        text,
      );
      bob.write("live again\n");
      await terminal.waitFor(/bob: live again$/m, "a live message after the history");
      await terminal.run("/quit");
      assert.equal(await exitStatus(terminal), 0);
    } finally {
      await server.kill();
      if (bob.child.exitCode === null) await bob.stop();
      await relay.proc.stop();
      dirs.cleanup();
    }
  },
});

Deno.test("wrapping: rows that continue a URL start at the first column; other rows stay indented", () => {
  const url = "https://example.org/" + "x".repeat(50);
  const rows = wrapEntry({
    lines: [[{ text: `12:00 bob: look ${url} ok then more words` }]],
    indent: 11,
  }, 30)
    .map((row) => row.map((span) => span.text).join(""));
  const first = rows.findIndex((row) => row.includes("https://"));
  assert.equal(rows[first], "           https://example.org", rows.join("\n"));
  assert.ok(!rows[first + 1].startsWith(" "), rows.join("\n"));
  const tail = rows.slice(first + 1).join("\n");
  assert.equal(rows[first].trim() + tail.split(" ")[0].replaceAll("\n", ""), url);
  // After the URL, ordinary words are indented again.
  assert.ok(rows[rows.length - 1].startsWith("           "), rows.join("\n"));
  // A burst of Enter with text between them is a paste; a lone Enter is typed.
  const events: string[] = [];
  const burst = new EnterBurst({
    newline: () => events.push("newline"),
    submit: () => events.push("submit"),
    pasted: (lines) => events.push(`pasted ${lines}`),
  }, 5);
  burst.enter();
  burst.other();
  burst.enter();
  return new Promise<void>((resolve) =>
    setTimeout(() => {
      assert.deepEqual(events, ["newline", "pasted 2"]);
      burst.enter();
      setTimeout(() => {
        assert.deepEqual(events.slice(2), ["submit"]);
        burst.stop();
        resolve();
      }, 30);
    }, 30)
  );
});
