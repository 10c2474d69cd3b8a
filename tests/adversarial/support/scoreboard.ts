/**
 * The adversarial suite's scoreboard: every attack records what the tests
 * observed (attempts made, damage detected, crashes, forged messages shown,
 * messages lost), and the last test prints one table for the whole run.
 *
 * `deno test` runs each test file in its own isolate, so the counts cannot
 * live in a module variable: each attack appends one JSON line to a file
 * named after the test process, and the report reads them all back.
 *
 * Meanings (each count comes from observation, never from the attack's
 * intent):
 * - **attempts**: attack instances actually carried out;
 * - **detected**: attempts whose damage the victim or the relay noticed: an
 *   error, a warning, a refused input or a closed connection;
 * - **crashes**: unexpected exceptions, uncaught errors, or processes that
 *   exited with "unexpected failure" (1), a signal, or a stack trace;
 * - **forged shown**: messages displayed that were not genuinely sent by the
 *   member shown as their sender, or displayed more than once;
 * - **lost**: messages genuinely sent (and confirmed to the sender) that were
 *   neither delivered nor reported as missing.
 *
 * Attacks that should do no harm (a delay, a stream cut into 1-byte pieces)
 * are marked `harmless`: nothing is to be detected, and every message must
 * still arrive.
 *
 * @example
 * ```ts
 * const attack = new Attack("network: flip bits (to client)");
 * attack.attempt();
 * attack.detected();
 * attack.save();
 * ```
 *
 * @module
 */

import { appendFileSync, existsSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";

/** One row of the table. */
export interface AttackRow {
  /** What was done, e.g. `network: drop a frame (to relay)`. */
  attack: string;
  attempts: number;
  detected: number;
  crashes: number;
  forged: number;
  lost: number;
  /** True when nothing is meant to be detected: the attack must be harmless. */
  harmless: boolean;
  /** A few examples of what went wrong, for the report. */
  problems: string[];
}

/**
 * The file this test process appends rows to. Every test file of one
 * `deno test` run shares the process, hence the file.
 *
 * @example
 * ```ts
 * scoreboardPath(); // "/tmp/securechat-adversarial-1234.jsonl"
 * ```
 */
export function scoreboardPath(): string {
  return join(tmpdir(), `securechat-adversarial-${process.pid}.jsonl`);
}

/**
 * Counts for one attack, saved to the scoreboard file with
 * {@linkcode Attack.save}.
 *
 * @example
 * ```ts
 * const attack = new Attack("hostile relay: replay old messages");
 * attack.attempt();
 * attack.forged("shown twice: hello");
 * attack.save();
 * ```
 */
export class Attack {
  readonly row: AttackRow;
  #saved = false;

  /** @example `new Attack("network: delay frames", { harmless: true })` */
  constructor(name: string, options: { harmless?: boolean } = {}) {
    this.row = {
      attack: name,
      attempts: 0,
      detected: 0,
      crashes: 0,
      forged: 0,
      lost: 0,
      harmless: options.harmless === true,
      problems: [],
    };
  }

  /** Counts one attempt. @example `attack.attempt()` */
  attempt(count = 1): void {
    this.row.attempts += count;
  }

  /** Counts one attempt whose damage was noticed. @example `attack.detected()` */
  detected(count = 1): void {
    this.row.detected += count;
  }

  /** Counts a crash. @example `attack.crash("TypeError: x is undefined")` */
  crash(detail: string): void {
    this.row.crashes++;
    this.#problem(`crash: ${detail}`);
  }

  /** Counts forged or replayed messages shown. @example `attack.forged("shown twice: hi")` */
  forged(detail: string, count = 1): void {
    this.row.forged += count;
    this.#problem(`forged: ${detail}`);
  }

  /** Counts messages lost silently. @example `attack.lost(2, "bob never got 2 of alice's")` */
  lost(count: number, detail: string): void {
    if (count <= 0) return;
    this.row.lost += count;
    this.#problem(`lost: ${detail}`);
  }

  #problem(text: string): void {
    if (this.row.problems.length < 5) this.row.problems.push(text.slice(0, 300));
  }

  /** True when nothing bad was seen. @example `assert.ok(attack.clean, attack.summary())` */
  get clean(): boolean {
    return this.row.crashes === 0 && this.row.forged === 0 && this.row.lost === 0;
  }

  /** One line for assertion messages. @example `attack.summary()` */
  summary(): string {
    const { attack, attempts, detected, crashes, forged, lost, problems } = this.row;
    return `${attack}: ${attempts} attempts, ${detected} detected, ${crashes} crashes, ` +
      `${forged} forged, ${lost} lost${problems.length ? `; ${problems.join("; ")}` : ""}`;
  }

  /** Appends the row to the scoreboard file (once). @example `attack.save()` */
  save(): void {
    if (this.#saved) return;
    this.#saved = true;
    appendFileSync(scoreboardPath(), JSON.stringify(this.row) + "\n");
  }
}

/**
 * Reads every row saved so far by this process, merging rows with the same
 * attack name (in first-seen order).
 *
 * @example
 * ```ts
 * const rows = readScoreboard();
 * ```
 */
export function readScoreboard(path = scoreboardPath()): AttackRow[] {
  if (!existsSync(path)) return [];
  const merged = new Map<string, AttackRow>();
  for (const line of readFileSync(path, "utf8").split("\n")) {
    if (line.trim() === "") continue;
    const row = JSON.parse(line) as AttackRow;
    const existing = merged.get(row.attack);
    if (existing === undefined) {
      merged.set(row.attack, { ...row, problems: [...row.problems] });
      continue;
    }
    for (const key of ["attempts", "detected", "crashes", "forged", "lost"] as const) {
      existing[key] += row[key];
    }
    existing.problems.push(...row.problems);
  }
  return [...merged.values()];
}

/**
 * Removes this process's scoreboard file.
 *
 * @example
 * ```ts
 * clearScoreboard();
 * ```
 */
export function clearScoreboard(path = scoreboardPath()): void {
  rmSync(path, { force: true });
}

/**
 * Formats rows as a plain-text table with a totals line.
 *
 * @example
 * ```ts
 * console.log(formatScoreboard(readScoreboard()));
 * ```
 */
export function formatScoreboard(rows: AttackRow[]): string {
  const header = ["attack", "attempts", "detected", "crashes", "forged shown", "messages lost"];
  const totals = rows.reduce(
    (sum, row) => ({
      attempts: sum.attempts + row.attempts,
      detected: sum.detected + (row.harmless ? 0 : row.detected),
      crashes: sum.crashes + row.crashes,
      forged: sum.forged + row.forged,
      lost: sum.lost + row.lost,
    }),
    { attempts: 0, detected: 0, crashes: 0, forged: 0, lost: 0 },
  );
  const body = rows.map((row) => [
    row.attack,
    String(row.attempts),
    row.harmless ? "n/a" : String(row.detected),
    String(row.crashes),
    String(row.forged),
    String(row.lost),
  ]);
  const total = [
    `total (${rows.length} attacks)`,
    String(totals.attempts),
    String(totals.detected),
    String(totals.crashes),
    String(totals.forged),
    String(totals.lost),
  ];
  const widths = header.map((_, i) =>
    Math.max(...[header, ...body, total].map((cells) => cells[i].length))
  );
  const line = (cells: string[]) =>
    "| " +
    cells.map((cell, i) => i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i])).join(
      " | ",
    ) + " |";
  const rule = "|" +
    widths.map((width, i) => i === 0 ? "-".repeat(width + 2) : "-".repeat(width + 1) + ":").join(
      "|",
    ) +
    "|";
  return [line(header), rule, ...body.map(line), rule, line(total)].join("\n");
}
