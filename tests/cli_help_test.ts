/**
 * The command line's words and numbers: usage errors, the exit code table
 * (README.md, `--help`, the man page) and what `--help` shows. Set
 * SECURECHAT_BIN to run these against a built program.
 */

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { EXIT_CODE_TABLE } from "../cli/exit_codes.ts";
import { COMMAND_HELP, ENVIRONMENT } from "../cli/help.ts";
import { CliProcess, runCli, startRelay, TempDirs } from "./support/cli_process.ts";

const README = readFileSync(new URL("../README.md", import.meta.url), "utf8");

Deno.test("usage errors are one line with the securechat: prefix and exit 2", async () => {
  const dirs = new TempDirs();
  try {
    const cases: Array<[string[], RegExp]> = [
      [["join"], /missing required argument 'host:port'; run `securechat join --help`/],
      [["join", "nohost"], /expected HOST:PORT, got "nohost"; run `securechat join --help`/],
      [["join", "127.0.0.1:1", "--count", "x"], /expected a positive whole number/],
      [["keygen", "--bogus"], /unknown option '--bogus'; run `securechat keygen --help`/],
      [["frob"], /unknown command 'frob'; run `securechat --help`/],
      [["serve", "--listen", "nowhere"], /expected HOST:PORT/],
      [["join", "127.0.0.1:1", "--nick", "two words"], /--nick: /],
    ];
    for (const [args, pattern] of cases) {
      const result = await runCli(args, { home: dirs.make() });
      assert.equal(result.code, 2, `${args.join(" ")}: ${result.stderr}`);
      const lines = result.stderr.split("\n").filter((line) => line !== "");
      assert.equal(lines.length, 1, `${args.join(" ")}: not one line:\n${result.stderr}`);
      assert.match(lines[0], /^securechat: /, args.join(" "));
      assert.match(lines[0], pattern, args.join(" "));
      assert.equal(result.stdout, "");
    }
  } finally {
    dirs.cleanup();
  }
});

Deno.test("a taken nick is a usage problem: exit 2, not 6", async () => {
  const dirs = new TempDirs();
  const relay = await startRelay({ home: dirs.make("relay") });
  const holder = CliProcess.start(["join", relay.address, "--room", "r", "--nick", "bob"], {
    home: dirs.make(),
  });
  try {
    await holder.waitFor("stderr", /joined room/);
    const second = await runCli(["join", relay.address, "--room", "r", "--nick", "bob"], {
      home: dirs.make(),
      input: "hello\n",
    });
    assert.equal(second.code, 2, second.stderr);
    assert.match(second.stderr, /^securechat: the relay refused: nick "bob" is taken in room "r"/m);
  } finally {
    await holder.stop();
    await relay.proc.stop();
    dirs.cleanup();
  }
});

Deno.test("README's exit code table is the one the program uses", () => {
  const section = README.slice(README.indexOf("## Exit codes"), README.indexOf("## Limits"));
  const rows = [...section.matchAll(/^\| (\d+) +\| (.+?) +\|$/gm)].map((match) => ({
    code: Number(match[1]),
    meaning: match[2],
  }));
  assert.deepEqual(rows, EXIT_CODE_TABLE);
});

Deno.test("--help of the program and of every command shows exit codes; commands show examples and environment", async () => {
  const dirs = new TempDirs();
  try {
    const top = await runCli(["--help"], { home: dirs.make() });
    assert.equal(top.code, 0);
    for (const name of Object.keys(ENVIRONMENT)) assert.match(top.stdout, new RegExp(name));
    const commands = [...top.stdout.matchAll(/^ {2}(\w+)( \[options\]| <| \[|$)/gm)]
      .map((match) => match[1]).filter((name) => name !== "help");
    for (const command of commands) assert.ok(COMMAND_HELP[command], `no help for ${command}`);
    for (const command of ["", ...commands]) {
      const args = command === "" ? ["--help"] : [command, "--help"];
      const result = await runCli(args, { home: dirs.make() });
      assert.equal(result.code, 0, result.stderr);
      const exitCodes = result.stdout.slice(result.stdout.indexOf("Exit codes:"));
      for (const { code } of EXIT_CODE_TABLE) {
        assert.match(exitCodes, new RegExp(`^ +${code}  \\S`, "m"), `${command}: code ${code}`);
      }
      if (command === "") continue;
      const help = COMMAND_HELP[command];
      assert.match(result.stdout, /^Examples:$/m, command);
      for (const example of help.examples) {
        assert.ok(
          result.stdout.includes(`  $ ${example.command}`),
          `${command}: ${example.command}`,
        );
      }
      for (const name of help.environment) {
        assert.match(result.stdout, new RegExp(`^  ${name} `, "m"), `${command}: ${name}`);
      }
    }
  } finally {
    dirs.cleanup();
  }
});
