/**
 * Identities on first use, with real processes: several `join`s started
 * together in a fresh SECURECHAT_HOME (the README's echo-bot recipe on first
 * use) must end up sharing one identity, whoever wins the race to create it.
 * Set SECURECHAT_BIN to run these against a built program.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { readPublicKey } from "../lib/identity/identity_file.ts";
import { fingerprint } from "../lib/identity/fingerprint.ts";
import { CliProcess, startRelay, TempDirs } from "./support/cli_process.ts";

const ROUNDS = 4;
const TOGETHER = 3;

for (const passphrase of [undefined, "correct horse battery staple"]) {
  Deno.test(`processes creating the first identity at once all use one identity (${passphrase ? "encrypted" : "unencrypted"}, ${ROUNDS} rounds of ${TOGETHER})`, async () => {
    const dirs = new TempDirs();
    const relay = await startRelay({ home: dirs.make("relay") });
    try {
      for (let round = 0; round < ROUNDS; round++) {
        const home = dirs.make("shared");
        const env = passphrase ? { SECURECHAT_PASSPHRASE: passphrase } : undefined;
        const procs = Array.from(
          { length: TOGETHER },
          (_, index) =>
            CliProcess.start([
              "join",
              relay.address,
              "--room",
              `r${round}`,
              "--nick",
              `bot${index}`,
            ], {
              home,
              env,
              input: "",
            }),
        );
        const statuses = await Promise.all(procs.map((proc) => proc.wait(30_000)));
        const fingerprints = new Set<string>();
        for (const [index, proc] of procs.entries()) {
          assert.equal(statuses[index].code, 0, `round ${round}, bot${index}\n${proc.describe()}`);
          assert.doesNotMatch(proc.stderr, /already exists|unexpected|EPIPE/);
          const joined = proc.stderr.match(/joined room "r\d+" as bot\d \(([a-z2-7-]+)\)/);
          assert.ok(joined, proc.describe());
          fingerprints.add(joined[1]);
        }
        assert.equal(fingerprints.size, 1, `round ${round}: ${[...fingerprints].join(", ")}`);
        const created = procs.filter((proc) => /created a new identity/.test(proc.stderr)).length;
        assert.equal(created, 1, `round ${round}: ${created} processes say they created it`);
        const stored = await readPublicKey(join(home, "identity"));
        const published = await readPublicKey(join(home, "identity.pub"));
        assert.equal(fingerprint(stored.publicKey), [...fingerprints][0]);
        assert.equal(fingerprint(published.publicKey), [...fingerprints][0]);
        assert.equal(stored.encrypted, passphrase !== undefined);
      }
    } finally {
      await relay.proc.stop();
      dirs.cleanup();
    }
  });
}
