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
