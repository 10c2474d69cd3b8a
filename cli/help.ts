/**
 * What `--help` says beyond the options: examples, environment variables
 * and exit codes, for the program and each sub-command. The man page and
 * the shell completions are generated from the same commander definitions
 * plus these tables (cli/manpage.ts, cli/completions.ts), so the three never
 * disagree.
 *
 * @module
 */

import type { Command } from "commander";
import { EXIT_CODE_TABLE } from "./exit_codes.ts";

/** An example command line and what it does. */
export interface Example {
  /** What it does, one line. */
  what: string;
  /** The shell command, as typed. */
  command: string;
}

/** Every environment variable securechat reads, and what for. */
export const ENVIRONMENT: Readonly<Record<string, string>> = {
  SECURECHAT_HOME: "directory of identity, identity.pub, known_servers and known_peers " +
    "(default ~/.config/securechat)",
  SECURECHAT_PASSPHRASE: "the identity's passphrase, for scripts; read instead of asking",
  NO_COLOR: "when set to anything but empty, the chat screen uses no colours",
  TERM: "dumb: line mode even on a terminal",
  USER: "the default nick",
  SECURECHAT_CRYPTO: "noble: use the pure-JavaScript crypto everywhere instead of the " +
    "runtime's native primitives",
};

/** Per sub-command: examples and the environment variables it reads. */
export const COMMAND_HELP: Readonly<
  Record<string, { examples: Example[]; environment: string[] }>
> = {
  keygen: {
    examples: [
      { what: "create your identity (asks for a passphrase)", command: "securechat keygen" },
      {
        what: "an unencrypted relay key for a service",
        command: "securechat keygen --no-passphrase --out /etc/securechat/relay-key",
      },
      {
        what: "encrypted, without a prompt",
        command: "SECURECHAT_PASSPHRASE='correct horse battery staple' securechat keygen " +
          "--out ./bot-key",
      },
    ],
    environment: ["SECURECHAT_HOME", "SECURECHAT_PASSPHRASE"],
  },
  passwd: {
    examples: [
      { what: "change or add the passphrase of your identity", command: "securechat passwd" },
      {
        what: "remove the passphrase of a bot's key",
        command: "securechat passwd --no-passphrase ./bot-key",
      },
    ],
    environment: ["SECURECHAT_HOME", "SECURECHAT_PASSPHRASE"],
  },
  fingerprint: {
    examples: [
      { what: "your own fingerprint", command: "securechat fingerprint" },
      { what: "from a public key file", command: "securechat fingerprint ~/bob.pub" },
      { what: "of a running relay", command: "securechat fingerprint relay.example.com:7878" },
    ],
    environment: ["SECURECHAT_HOME"],
  },
  serve: {
    examples: [
      { what: "a relay on this machine only", command: "securechat serve" },
      {
        what: "on every interface, admitting only a team",
        command: "securechat serve --listen 0.0.0.0:7878 --allow team.txt",
      },
      {
        what: "JSON logs and Prometheus metrics for a service",
        command: "securechat serve --log-format json --metrics 127.0.0.1:9464",
      },
    ],
    environment: ["SECURECHAT_HOME", "SECURECHAT_PASSPHRASE", "SECURECHAT_CRYPTO"],
  },
  join: {
    examples: [
      { what: "chat on a terminal", command: "securechat join 127.0.0.1:7878 --room ops" },
      {
        what: "announce from a script",
        command: 'echo "deploy done" | securechat join 127.0.0.1:7878 --room ops --nick ci',
      },
      {
        what: "wait for one message",
        command: "securechat join 127.0.0.1:7878 --room ops --count 1 </dev/null",
      },
      {
        what: "follow a room as JSON",
        command: "securechat join 127.0.0.1:7878 --room ops --json --stay </dev/null",
      },
    ],
    environment: [
      "SECURECHAT_HOME",
      "SECURECHAT_PASSPHRASE",
      "USER",
      "NO_COLOR",
      "TERM",
      "SECURECHAT_CRYPTO",
    ],
  },
  leave: {
    examples: [
      {
        what: "leave a durable room for good",
        command: "securechat leave 127.0.0.1:7878 --room ops --nick ci",
      },
    ],
    environment: ["SECURECHAT_HOME", "SECURECHAT_PASSPHRASE", "USER"],
  },
  history: {
    examples: [
      {
        what: "what you kept of a room in the last two hours",
        command: "securechat history 127.0.0.1:7878 --room ops --since 2h",
      },
      {
        what: "as JSON, for a script",
        command: "securechat history 127.0.0.1:7878 --room ops --json",
      },
    ],
    environment: ["SECURECHAT_HOME", "SECURECHAT_PASSPHRASE"],
  },
  "known-servers": {
    examples: [
      { what: "the relays join remembers", command: "securechat known-servers" },
      {
        what: "forget a relay whose key really changed",
        command: "securechat known-servers --remove relay.example.com:7878",
      },
    ],
    environment: ["SECURECHAT_HOME"],
  },
  web: {
    examples: [
      {
        what: "the web client on this computer, opened in your browser",
        command: "securechat web --open",
      },
      { what: "on another port", command: "securechat web --listen 127.0.0.1:8080" },
    ],
    environment: [],
  },
  completions: {
    examples: [
      {
        what: "bash, for this shell",
        command: 'eval "$(securechat completions bash)"',
      },
      {
        what: "fish, for good",
        command: "securechat completions fish > ~/.config/fish/completions/securechat.fish",
      },
    ],
    environment: [],
  },
  man: {
    examples: [
      { what: "read the manual", command: "securechat man | man -l -" },
      {
        what: "install it",
        command: "securechat man > /usr/local/share/man/man1/securechat.1",
      },
    ],
    environment: [],
  },
};

/**
 * The exit code table as plain text rows, indented by two spaces.
 *
 * @example
 * ```ts
 * exitCodesText().split("\n")[0]; // "    0  success"
 * ```
 */
export function exitCodesText(width = 80): string {
  return EXIT_CODE_TABLE.map(({ code, meaning }) =>
    wrap(meaning, width - 9).map((line, index) =>
      index === 0 ? `  ${String(code).padStart(3)}  ${line}` : `       ${line}`
    ).join("\n")
  ).join("\n");
}

/** Greedy word wrap to `width` columns. */
export function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(" ")) {
    if (line !== "" && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line === "" ? word : `${line} ${word}`;
  }
  if (line !== "") lines.push(line);
  return lines;
}

function environmentText(names: string[]): string {
  const width = Math.max(...names.map((name) => name.length));
  return names.map((name) =>
    wrap(ENVIRONMENT[name], 76 - width).map((line, index) =>
      index === 0 ? `  ${name.padEnd(width)}  ${line}` : `  ${" ".repeat(width)}  ${line}`
    ).join("\n")
  ).join("\n");
}

function examplesText(examples: Example[]): string {
  return examples.map(({ what, command }) => `  # ${what}\n  $ ${command}`).join("\n");
}

/**
 * Adds examples, environment variables and exit codes after the options in
 * `--help` of the program and of each of its sub-commands.
 *
 * @example
 * ```ts
 * addHelpSections(buildProgram());
 * ```
 */
export function addHelpSections(program: Command): void {
  program.addHelpText(
    "after",
    `\nEnvironment:\n${environmentText(Object.keys(ENVIRONMENT))}\n\n` +
      `Exit codes:\n${exitCodesText()}\n\n` +
      "Run `securechat COMMAND --help` for a command's options and examples; " +
      "`securechat man | man -l -` for the manual.",
  );
  for (const command of program.commands) {
    const help = COMMAND_HELP[command.name()];
    if (help === undefined) continue;
    let text = `\nExamples:\n${examplesText(help.examples)}\n`;
    if (help.environment.length > 0) {
      text += `\nEnvironment:\n${environmentText(help.environment)}\n`;
    }
    text += `\nExit codes:\n${exitCodesText()}`;
    command.addHelpText("after", text);
  }
}
