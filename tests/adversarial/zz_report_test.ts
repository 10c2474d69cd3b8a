/**
 * The last file of the adversarial suite (files run in name order): prints
 * the scoreboard of every attack run in this process, and fails if any
 * attack crashed something, got a forged message shown, or lost a message
 * silently. Each attack's own test checks its row too; this is the summary.
 */

import assert from "node:assert/strict";
import { clearScoreboard, formatScoreboard, readScoreboard } from "./support/scoreboard.ts";
import { ADVERSARIAL_SEED, ATTEMPTS, FUZZ_RUNS, FUZZ_SEED } from "./support/knobs.ts";

Deno.test("adversarial suite: scoreboard", () => {
  const rows = readScoreboard();
  clearScoreboard();
  if (rows.length === 0) {
    // A filtered run, or this file alone: nothing to report.
    console.log("adversarial suite: no attack ran in this process; nothing to report");
    return;
  }
  const problems = rows.flatMap((row) =>
    row.problems.map((problem) => `${row.attack}: ${problem}`)
  );
  console.log(
    `\nAdversarial suite: FUZZ_RUNS=${FUZZ_RUNS} FUZZ_SEED=${FUZZ_SEED} ` +
      `ADVERSARIAL_ATTEMPTS=${ATTEMPTS} ADVERSARIAL_SEED=${ADVERSARIAL_SEED} ` +
      `(set them to replay this run; "n/a": a harmless change, nothing to detect)\n\n` +
      `${formatScoreboard(rows)}\n` +
      (problems.length > 0
        ? `\nProblems seen:\n${problems.map((p) => `- ${p}`).join("\n")}\n`
        : ""),
  );
  for (const row of rows) {
    assert.equal(row.crashes, 0, `${row.attack}: crashes`);
    assert.equal(row.forged, 0, `${row.attack}: forged messages shown`);
    assert.equal(row.lost, 0, `${row.attack}: messages lost silently`);
  }
});
