/**
 * The command line as data, read from the commander definitions that also
 * drive parsing and `--help`: the man page (cli/manpage.ts) and the shell
 * completions (cli/completions.ts) are generated from it, so a new option
 * appears in all three at once.
 *
 * @module
 */

import type { Command } from "commander";

/** What a value may be, for completion. */
export type ValueKind =
  | { kind: "file" }
  /** A relay address: offered from `known_servers`. */
  | { kind: "relay" }
  | { kind: "choices"; choices: string[] }
  | { kind: "text" };

/** One option of a command. */
export interface OptionModel {
  /** `--room`. */
  long: string;
  /** `-o`, if any. */
  short?: string;
  /** `name` for `--room <name>`; undefined for a switch. */
  valueName?: string;
  value: ValueKind;
  description: string;
  /** The default as `--help` shows it, if any. */
  defaultText?: string;
}

/** One positional argument. */
export interface ArgumentModel {
  name: string;
  required: boolean;
  value: ValueKind;
  description: string;
}

/** One sub-command. */
export interface CommandModel {
  name: string;
  description: string;
  /** `securechat join [options] <host:port>`. */
  usage: string;
  arguments: ArgumentModel[];
  options: OptionModel[];
}

/** The whole program. */
export interface ProgramModel {
  name: string;
  description: string;
  commands: CommandModel[];
  /** Options of the program itself (`--version`, `--help`). */
  options: OptionModel[];
}

function valueKind(name: string | undefined, choices: readonly string[] | undefined): ValueKind {
  if (choices && choices.length > 0) return { kind: "choices", choices: [...choices] };
  if (name === "host:port") return { kind: "relay" };
  if (name !== undefined && /^(path|file|target)$/.test(name)) return { kind: "file" };
  return { kind: "text" };
}

function optionsOf(command: Command): OptionModel[] {
  const options: OptionModel[] = command.options.filter((option) => !option.hidden).map(
    (option) => {
      const valueName = /<([^>]+)>|\[([^\]]+)\]/.exec(option.flags)?.slice(1).find(Boolean);
      const shown = option.defaultValueDescription ??
        (option.defaultValue === undefined || typeof option.defaultValue === "boolean"
          ? undefined
          : typeof option.defaultValue === "object"
          ? undefined
          : String(option.defaultValue));
      return {
        long: option.long!,
        short: option.short,
        valueName,
        // An address to listen on is local, not a relay to offer from known_servers.
        value: /^--(listen|metrics)$/.test(option.long!)
          ? { kind: "text" }
          : valueKind(valueName, option.argChoices),
        description: option.description,
        defaultText: shown,
      };
    },
  );
  options.push({ long: "--help", short: "-h", value: { kind: "text" }, description: "show help" });
  return options;
}

/**
 * Reads the model of `program` and its sub-commands.
 *
 * @example
 * ```ts
 * const model = programModel(buildProgram());
 * model.commands.map((command) => command.name); // ["keygen", "passwd", ...]
 * ```
 */
export function programModel(program: Command): ProgramModel {
  return {
    name: program.name(),
    description: program.description(),
    options: optionsOf(program),
    commands: program.commands.map((command) => ({
      name: command.name(),
      description: command.description(),
      usage: `${program.name()} ${command.name()} ${command.usage()}`,
      arguments: command.registeredArguments.map((argument) => ({
        // Only a positional address is a relay to connect to; serve's --listen is not.
        name: argument.name(),
        required: argument.required,
        value: valueKind(argument.name(), argument.argChoices),
        description: argument.description,
      })),
      options: optionsOf(command),
    })),
  };
}
