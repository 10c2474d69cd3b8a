/**
 * `npm run demo` (or `deno task demo`): starts a relay on a free loopback
 * port and an echo bot built from `securechat join --json`, then joins you
 * to the room. On a terminal you chat with the bot; otherwise it sends two
 * lines, prints the echoes, and exits. Everything lives in a temporary
 * directory that is removed at the end.
 *
 * @module
 */

import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import process from "node:process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const work = mkdtempSync(join(tmpdir(), "securechat-demo-"));
const children: ChildProcess[] = [];

function securechat(
  name: string,
  args: string[],
  stdio: "pipe" | "inherit" = "pipe",
): ChildProcess {
  // Not process.execPath: Deno rewrites spawns of its own path as if they were Node commands.
  const deno = join(root, "node_modules", ".bin", "deno");
  const child = spawn(deno, ["run", "-A", join(root, "mod.ts"), ...args], {
    env: { ...process.env, SECURECHAT_HOME: join(work, name) },
    stdio: stdio === "inherit" ? "inherit" : ["pipe", "pipe", "pipe"],
  });
  children.push(child);
  return child;
}

function firstMatch(child: ChildProcess, pattern: RegExp): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    let seen = "";
    child.stdout!.on("data", (chunk: Buffer) => {
      seen += chunk.toString();
      const match = seen.match(pattern);
      if (match) resolve(match);
    });
    child.once("exit", () => reject(new Error(`demo: a process exited early:\n${seen}`)));
  });
}

function cleanup(): void {
  for (const child of children) if (child.exitCode === null) child.kill("SIGTERM");
  rmSync(work, { recursive: true, force: true });
}

try {
  const relay = securechat("relay", ["serve", "--listen", "127.0.0.1:0"]);
  // One match for both lines: they may arrive in one chunk.
  const [, address, fingerprint] = await firstMatch(
    relay,
    /listening on (\S+)\nfingerprint (\S+)\n/,
  );
  console.log(`relay listening on ${address}, fingerprint ${fingerprint}`);

  // The bot is the CLI itself in JSON mode: read message objects, write replies as lines.
  const bot = securechat("bot", [
    "join",
    address,
    "--room",
    "demo",
    "--nick",
    "echo-bot",
    "--server-fingerprint",
    fingerprint,
    "--json",
    "--stay",
  ]);
  createInterface({ input: bot.stdout! }).on("line", (line) => {
    const event = JSON.parse(line);
    if (event.type === "message") bot.stdin!.write(`echo: ${event.text} (from ${event.from})\n`);
  });
  await firstMatch(bot, /"type":"welcome"/);
  console.log("echo-bot joined room demo\n");

  const you = [
    "join",
    address,
    "--room",
    "demo",
    "--nick",
    "you",
    "--server-fingerprint",
    fingerprint,
  ];
  if (process.stdin.isTTY) {
    console.log("You are in room demo with echo-bot. Type a message, /who, /help, or /quit.\n");
    const chat = securechat("you", you, "inherit");
    await new Promise((resolve) => chat.once("exit", resolve));
  } else {
    const chat = securechat("you", [...you, "--count", "2"]);
    chat.stderr!.pipe(process.stderr);
    chat.stdout!.pipe(process.stdout);
    chat.stdin!.end("hello from the demo\nend-to-end encrypted, the relay saw only ciphertext\n");
    await new Promise((resolve) => chat.once("exit", resolve));
  }
} finally {
  cleanup();
}
