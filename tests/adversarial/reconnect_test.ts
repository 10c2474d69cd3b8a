/**
 * Part 5 of the attack suite: reconnection without loss. A sender streams
 * lines into `join --stay` through a pipe while the relay is killed and
 * restarted under it; a receiver, also `join --stay`, counts what arrives.
 * Both must notice the loss (/reconnecting/), reconnect with backoff,
 * re-handshake with the same relay check, rejoin (/reconnected/) and carry
 * on. Every line must arrive or be reported by the sender with a count (and
 * exit code 7 when some were never confirmed); none may arrive twice.
 */

import assert from "node:assert/strict";
import { createServer } from "node:net";
import { CliProcess, startRelay, TempDirs } from "../support/cli_process.ts";
import { delay, waitFor } from "../support/in_process.ts";
import { guarded } from "./support/observe.ts";
import { Attack } from "./support/scoreboard.ts";

const TOTAL = 300;
const PACE_MS = 15;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen({ host: "127.0.0.1", port: 0 }, () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

function sum(text: string, pattern: RegExp): number {
  let total = 0;
  for (const match of text.matchAll(pattern)) total += Number(match[1]);
  return total;
}

for (const signal of ["SIGKILL", "SIGTERM"] as const) {
  Deno.test(`reconnect: the relay restarts (${signal}) in the middle of a piped stream; nothing is lost silently`, async () => {
    const attack = new Attack(
      `reconnect: relay restarted (${signal}) under a ${TOTAL}-line stream`,
    );
    const dirs = new TempDirs();
    const relayHome = dirs.make("relay");
    const port = await freePort();
    const listen = `127.0.0.1:${port}`;
    let relay = await startRelay({ home: relayHome, listen });
    const receiver = CliProcess.start(
      ["join", listen, "--room", "stream", "--nick", "rx", "--stay", "--json"],
      { home: dirs.make() },
    );
    const sender = CliProcess.start(
      ["join", listen, "--room", "stream", "--nick", "tx", "--stay"],
      {
        home: dirs.make(),
      },
    );
    const tag = Math.random().toString(36).slice(2, 8);
    const lines = Array.from({ length: TOTAL }, (_, i) => `line ${i + 1} ${tag}`);
    try {
      await guarded(attack, async () => {
        await receiver.waitFor("stdout", /"type":"welcome"/);
        await sender.waitFor("stderr", /joined room/);
        await receiver.waitFor("stdout", /"nick":"tx"/);
        attack.attempt();
        let restarted: Promise<void> | undefined;
        for (let i = 0; i < TOTAL; i++) {
          sender.write(`${lines[i]}\n`);
          if (i === 100) {
            // Killed under the stream; back on the same address and key a moment later.
            const stopped = signal === "SIGKILL"
              ? (relay.proc.child.kill("SIGKILL"), relay.proc.exited)
              : relay.proc.stop("SIGTERM");
            restarted = stopped.then(async () => {
              await delay(700);
              relay = await startRelay({ home: relayHome, listen });
            });
          }
          await delay(PACE_MS);
        }
        await restarted;
        const arrived = () =>
          receiver.stdoutLines().map((line) => JSON.parse(line)).filter((o) =>
            o.type === "message" && o.from === "tx"
          ).map((o) => o.text as string);
        // Until every line has arrived or been reported (bounded).
        const reported = () =>
          sum(sender.stderr, /(\d+) line\(s\) not confirmed as delivered/g) +
          sum(sender.stderr, /(\d+) line\(s\) reached no one/g);
        await waitFor(() => new Set(arrived()).size + reported() >= TOTAL, {
          what: "every line at the receiver or reported",
          timeoutMs: 15_000,
        }).catch(() => {});
        // Stopping the sender makes it settle up: acknowledgements, then a count of what was not.
        const status = await sender.stop("SIGTERM");
        await receiver.stop("SIGTERM");

        const got = arrived();
        const unique = new Set(got);
        for (const text of unique) {
          if (!lines.includes(text)) attack.forged(`the receiver showed ${JSON.stringify(text)}`);
        }
        if (got.length !== unique.size) {
          attack.forged(
            `${got.length - unique.size} line(s) shown twice`,
            got.length - unique.size,
          );
        }
        const notConfirmed = sum(sender.stderr, /(\d+) line\(s\) not confirmed as delivered/g);
        const reachedNoOne = sum(sender.stderr, /(\d+) line\(s\) reached no one/g);
        const missing = TOTAL - [...unique].filter((text) => lines.includes(text)).length;
        attack.lost(
          missing - notConfirmed - reachedNoOne,
          `${missing} line(s) never arrived; the sender reported ${notConfirmed} not confirmed ` +
            `and ${reachedNoOne} reaching no one`,
        );
        const noticed = /reconnecting/.test(sender.stderr) && /reconnected/.test(sender.stderr) &&
          /reconnecting/.test(receiver.stdout) && /reconnected/.test(receiver.stdout);
        if (noticed) attack.detected();
        console.log(
          `${signal}: ${unique.size}/${TOTAL} lines arrived, ${notConfirmed} reported not confirmed, ` +
            `${reachedNoOne} reported reaching no one; sender exit ${status.code}`,
        );
        assert.ok(noticed, `no reconnection notices\n${sender.describe()}\n${receiver.describe()}`);
        const expectedCode = notConfirmed > 0 ? 7 : 0;
        if (status.code !== expectedCode) {
          if (status.code === 1 || status.code === null) attack.crash(`sender exit ${status.code}`);
          else attack.lost(0, `sender exited ${status.code}, expected ${expectedCode}`);
          assert.equal(status.code, expectedCode, sender.describe());
        }
      });
    } finally {
      attack.save();
      for (const proc of [sender, receiver, relay.proc]) {
        if (proc.child.exitCode === null && proc.child.signalCode === null) {
          proc.child.kill("SIGKILL");
        }
        await proc.exited;
      }
      dirs.cleanup();
    }
    assert.equal(attack.row.detected, attack.row.attempts, attack.summary());
    assert.ok(attack.clean, attack.summary());
  });
}
