/**
 * `securechat completions SHELL` and `securechat man`: the shell completion
 * scripts and the manual page, generated from the program's own command
 * definitions, so they always match the version that prints them.
 *
 * @module
 */

import { Argument, Command } from "commander";
import { programModel } from "./command_model.ts";
import { completionScript, type Shell, SHELLS } from "./completions.ts";
import { manPage } from "./manpage.ts";
import { writeStdout } from "./stdio.ts";

/**
 * Builds the `completions` sub-command.
 *
 * @example
 * ```ts
 * program.addCommand(completionsCommand());
 * ```
 */
export function completionsCommand(): Command {
  return new Command("completions")
    .description("print the shell completion script for bash, zsh or fish")
    .addArgument(new Argument("<shell>", "the shell").choices(SHELLS))
    .action((shell: Shell, _options: unknown, command: Command) => {
      writeStdout(completionScript(programModel(command.parent!), shell));
    });
}

/**
 * Builds the `man` sub-command.
 *
 * @example
 * ```ts
 * program.addCommand(manCommand());
 * ```
 */
export function manCommand(): Command {
  return new Command("man")
    .description("print the manual page (roff); read it with: securechat man | man -l -")
    .action((_options: unknown, command: Command) => {
      writeStdout(manPage(programModel(command.parent!)));
    });
}
