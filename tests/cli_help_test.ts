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
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { buildProgram } from "../cli/main.ts";
import { programModel } from "../cli/command_model.ts";
import { shellQuote, tmuxAvailable, TmuxServer } from "./support/tmux.ts";

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
    const listing = top.stdout.slice(
      top.stdout.indexOf("Commands:"),
      top.stdout.indexOf("Environment:"),
    );
    const commands = [...listing.matchAll(/^ {2}([\w-]+)\b/gm)]
      .map((match) => match[1]).filter((name) => name !== "help");
    assert.deepEqual(commands.sort(), Object.keys(COMMAND_HELP).sort());
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

// ---------------------------------------------------------------- completions and man page

const MODEL = programModel(buildProgram());
const IN_CI = (process.env.CI ?? "") !== "";

function have(program: string): boolean {
  return spawnSync(program, ["--version"], { stdio: "ignore" }).status === 0;
}

/** `securechat completions SHELL` (or `man`) written to a file in `dir`. */
async function generated(dir: string, args: string[]): Promise<string> {
  const result = await runCli(args, { home: dir });
  assert.equal(result.code, 0, result.stderr);
  const path = join(dir, args.join("-"));
  writeFileSync(path, result.stdout);
  return path;
}

for (const shell of ["bash", "zsh", "fish"]) {
  const available = have(shell);
  if (!available && IN_CI) {
    Deno.test(`completions for ${shell} need ${shell}`, () => {
      throw new Error(`${shell} is not installed: install it (apt-get install -y ${shell})`);
    });
  }
  Deno.test({
    name: `completions ${shell}: the script parses and names every command and option`,
    ignore: !available,
    fn: async () => {
      const dirs = new TempDirs();
      try {
        const script = await generated(dirs.make(), ["completions", shell]);
        const check = spawnSync(shell, ["-n", script], { encoding: "utf8" });
        assert.equal(check.status, 0, check.stderr);
        const text = Deno.readTextFileSync(script);
        for (const command of MODEL.commands) {
          assert.ok(text.includes(command.name), `${shell}: ${command.name}`);
          for (const option of command.options) {
            const long = shell === "fish" ? `-l ${option.long.slice(2)}` : option.long;
            assert.ok(text.includes(long), `${shell}: ${command.name} ${option.long}`);
          }
        }
      } finally {
        dirs.cleanup();
      }
    },
  });
}

Deno.test({
  name: "completions bash: commands, options, files and choices complete in a real bash",
  ignore: !have("bash"),
  fn: async () => {
    const dirs = new TempDirs();
    try {
      const dir = dirs.make();
      const script = await generated(dir, ["completions", "bash"]);
      writeFileSync(join(dir, "team-list.txt"), "");
      writeFileSync(
        join(dir, "known_servers"),
        `# relays\nrelay.example.com:7878 ${"a".repeat(52)}\n`,
      );
      const complete = (...words: string[]) => {
        const program = `source ${shellQuote(script)}; cd ${shellQuote(dir)}; ` +
          `export SECURECHAT_HOME=${shellQuote(dir)}; ` +
          `COMP_WORDS=(${words.map(shellQuote).join(" ")}); COMP_CWORD=${words.length - 1}; ` +
          `_securechat; printf '%s\\n' "\${COMPREPLY[@]}"`;
        const result = spawnSync("bash", ["-c", program], { encoding: "utf8" });
        assert.equal(result.status, 0, result.stderr);
        return result.stdout.split("\n").filter((line) => line !== "").sort();
      };
      assert.deepEqual(complete("securechat", "jo"), ["join"]);
      assert.deepEqual(complete("securechat", "co"), ["completions"]);
      assert.deepEqual(complete("securechat", "join", "--ro"), ["--room"]);
      assert.deepEqual(complete("securechat", "join", "--trust", "team"), ["team-list.txt"]);
      assert.deepEqual(complete("securechat", "completions", ""), ["bash", "fish", "zsh"]);
      assert.deepEqual(complete("securechat", "join", "rel"), ["relay.example.com:7878"]);
      const keygen = MODEL.commands.find((command) => command.name === "keygen")!;
      assert.deepEqual(
        complete("securechat", "keygen", "-"),
        keygen.options.flatMap((option) =>
          option.short ? [option.long, option.short] : [option.long]
        )
          .sort(),
      );
    } finally {
      dirs.cleanup();
    }
  },
});

Deno.test({
  name: "completions fish: fish's own completion engine offers commands, options and choices",
  ignore: !have("fish"),
  fn: async () => {
    const dirs = new TempDirs();
    try {
      const dir = dirs.make();
      const script = await generated(dir, ["completions", "fish"]);
      writeFileSync(join(dir, "known_servers"), `relay.example.com:7878 ${"a".repeat(52)}\n`);
      const complete = (line: string) => {
        const result = spawnSync("fish", [
          "--no-config",
          "-c",
          `source ${shellQuote(script)}; complete -C${shellQuote(line)}`,
        ], { encoding: "utf8", env: { ...process.env, SECURECHAT_HOME: dir } });
        assert.equal(result.status, 0, result.stderr);
        return result.stdout.split("\n").filter((row) => row !== "").map((row) =>
          row.split("\t")[0]
        );
      };
      assert.deepEqual(complete("securechat jo"), ["join"]);
      assert.ok(complete("securechat join --").includes("--stay"));
      assert.ok(complete("securechat join --").includes("--allow-invalid-utf8"));
      assert.deepEqual(complete("securechat completions ").sort(), ["bash", "fish", "zsh"]);
      assert.deepEqual(complete("securechat join rel"), ["relay.example.com:7878"]);
    } finally {
      dirs.cleanup();
    }
  },
});

Deno.test({
  name: "completions zsh: Tab completes in a real zsh (tmux)",
  ignore: !have("zsh") || !tmuxAvailable(),
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const dirs = new TempDirs();
    const server = new TmuxServer(dirs.make("tmux"));
    try {
      const dir = dirs.make();
      const script = await generated(dir, ["completions", "zsh"]);
      const terminal = await server.terminal("z", { columns: 120, rows: 20 });
      writeFileSync(join(dir, "known_servers"), `relay.example.com:7878 ${"a".repeat(52)}\n`);
      await terminal.run(
        `exec env -i TERM=screen HOME=${shellQuote(dir)} SECURECHAT_HOME=${shellQuote(dir)} zsh -f`,
      );
      await terminal.run("PS1='zsh%% '; autoload -Uz compinit && compinit -u");
      await terminal.run(`source ${shellQuote(script)}`);
      await terminal.type("securechat jo");
      await terminal.keys("Tab");
      await terminal.waitFor(/^zsh% securechat join$/m, "the command completed");
      await terminal.type("--ro");
      await terminal.keys("Tab");
      await terminal.waitFor(/^zsh% securechat join --room$/m, "the option completed");
      await terminal.type("lobby rel");
      await terminal.keys("Tab");
      await terminal.waitFor(
        /^zsh% securechat join --room lobby relay\.example\.com:7878$/m,
        "the relay from known_servers",
      );
    } finally {
      await server.kill();
      dirs.cleanup();
    }
  },
});

Deno.test({
  name:
    "man page: groff renders it without warnings, with every command, option, variable and exit code",
  ignore: !have("groff"),
  fn: async () => {
    const dirs = new TempDirs();
    try {
      const page = await generated(dirs.make(), ["man"]);
      const lint = spawnSync("groff", ["-man", "-Tutf8", "-ww", "-z", page], { encoding: "utf8" });
      assert.equal(lint.status, 0);
      assert.equal(lint.stderr, "", lint.stderr);
      // -P-bcu: no overstriking for bold and underline, so the text is plain.
      const rendered = spawnSync("groff", ["-man", "-Tascii", "-P-bcu", "-rLL=200n", page], {
        encoding: "utf8",
      }).stdout;
      for (
        const section of ["NAME", "SYNOPSIS", "COMMANDS", "ENVIRONMENT", "FILES", "EXIT STATUS"]
      ) {
        assert.match(rendered, new RegExp(`^${section}$`, "m"), section);
      }
      for (const command of MODEL.commands) {
        assert.ok(rendered.includes(`securechat ${command.name}`), command.name);
        for (const option of command.options) {
          assert.ok(rendered.includes(option.long), `${command.name} ${option.long}`);
        }
      }
      for (const name of Object.keys(ENVIRONMENT)) assert.ok(rendered.includes(name), name);
      for (const { code } of EXIT_CODE_TABLE) {
        assert.match(rendered, new RegExp(`^ +${code}\\b`, "m"), `exit code ${code}`);
      }
    } finally {
      dirs.cleanup();
    }
  },
});
