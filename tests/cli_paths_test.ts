/**
 * Unusable paths fail at once with one line and exit 3, under Deno and under
 * Node (the bundle, when built): under Node 20 a recursive mkdir of a path
 * in /proc never returned and spun at full CPU. Each run has a deadline, so
 * a spinning program fails the test instead of hanging it.
 */

import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { securechatVariants } from "./support/cli_command.ts";
import { CliProcess, TempDirs } from "./support/cli_process.ts";

for (const { label, command } of securechatVariants()) {
  Deno.test(`unusable paths fail at once with exit 3 (${label})`, async () => {
    const dirs = new TempDirs();
    try {
      const home = dirs.make();
      const file = join(home, "a-file");
      writeFileSync(file, "not a directory\n");
      const cases: Array<{ args: string[]; env?: Record<string, string>; pattern: RegExp }> = [
        {
          args: ["keygen", "--no-passphrase", "--out", "/proc/nope/key"],
          pattern: /cannot create directory \/proc\/nope: /,
        },
        {
          args: ["join", "127.0.0.1:1", "--nick", "x"],
          env: { SECURECHAT_HOME: "/proc/securechat-x" },
          pattern: /SECURECHAT_HOME: cannot create directory \/proc\/securechat-x: /,
        },
        {
          args: ["serve", "--listen", "127.0.0.1:0"],
          env: { SECURECHAT_HOME: "/proc/securechat-x" },
          pattern: /SECURECHAT_HOME: cannot create directory \/proc\/securechat-x: /,
        },
        {
          args: ["join", "127.0.0.1:1", "--nick", "x"],
          env: { SECURECHAT_HOME: file },
          pattern: new RegExp(`SECURECHAT_HOME: ${file} is not a directory`),
        },
        {
          args: ["keygen", "--no-passphrase"],
          env: { SECURECHAT_HOME: join(file, "sub") },
          pattern: new RegExp(`cannot create ${file}/sub: ${file} is a file, not a directory`),
        },
        {
          args: ["keygen", "--no-passphrase", "--out", join(file, "key")],
          pattern: /a-file\/key: a part of the path is not a directory/,
        },
        {
          args: ["join", "127.0.0.1:1", "--nick", "x", "--identity", join(file, "id")],
          pattern: /a part of the path is not a directory/,
        },
      ];
      for (const { args, env, pattern } of cases) {
        const what = `${Object.entries(env ?? {}).map(([k, v]) => `${k}=${v} `).join("")}${
          args.join(" ")
        }`;
        const started = Date.now();
        const proc = CliProcess.start(args, { home, env, command, input: "" });
        const status = await proc.wait(10_000);
        assert.ok(Date.now() - started < 8_000, `${what}: took ${Date.now() - started} ms`);
        assert.equal(status.code, 3, `${what}\n${proc.describe()}`);
        const lines = proc.stderr.split("\n").filter((line) => line !== "");
        assert.equal(lines.length, 1, `${what}: not one line\n${proc.stderr}`);
        assert.match(lines[0], /^securechat: /, what);
        assert.match(lines[0], pattern, what);
        assert.doesNotMatch(lines[0], /unexpected|ENOTDIR|ENOENT/, what);
      }
    } finally {
      dirs.cleanup();
    }
  });
}
