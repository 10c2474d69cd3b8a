/**
 * A child process for the kill -9 tests: rewrites one file in a loop through
 * securechat's own writers until it is killed, printing `ready` once the
 * first rewrite is done.
 *
 * Usage: `deno run -A kill_target.ts bytes PATH` (alternates two 2 MiB
 * contents with writeFileAtomic) or `deno run -A kill_target.ts peers PATH`
 * (verifies one nick of a large known_peers file with alternating keys: each
 * moves the nick to the other key, a full rewrite).
 *
 * @module
 */

import process from "node:process";
import { writeFileAtomic } from "../../../lib/core/atomic_file.ts";
import { KnownPeers } from "../../../lib/identity/trust_store.ts";

/** The two contents of `bytes` mode: 2 MiB of one repeated letter each. */
export function bytesVersion(which: 0 | 1): Uint8Array {
  return new Uint8Array(2 * 1024 * 1024).fill(which === 0 ? 0x41 : 0x42);
}

if (import.meta.main) {
  const [mode, path, first, second] = process.argv.slice(2);
  // Bounded: the parent kills the process long before this ends.
  for (let round = 0; round < 100_000; round++) {
    if (mode === "bytes") {
      await writeFileAtomic(path, bytesVersion((round % 2) as 0 | 1));
    } else {
      const peers = await KnownPeers.load(path);
      await peers.markVerified("target", round % 2 === 0 ? first : second);
    }
    if (round === 0) process.stdout.write("ready\n");
  }
}
