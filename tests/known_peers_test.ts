/**
 * known_peers (lib/identity/known_peers.ts): trust per key, the changed-key
 * warning per nick, renames, the cap and its eviction order, batched
 * appends, the lock between processes, crash leftovers, and the first file
 * format.
 */

import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fingerprint } from "../lib/identity/fingerprint.ts";
import { generateIdentity } from "../lib/identity/identity.ts";
import { checkPeerNick, KnownPeers, MAX_NICKS_PER_KEY } from "../lib/identity/known_peers.ts";
import { nickProblem } from "../lib/identity/nick.ts";
import { TrustStoreError } from "../lib/identity/trust_file.ts";
import { withFileLock } from "../lib/core/file_lock.ts";
import fc from "fast-check";

const fp = () => fingerprint(generateIdentity().publicKey);

async function withTempDir(run: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "securechat-peers-test-"));
  try {
    await run(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function rejectsAt(promise: Promise<unknown>, line: number, message: RegExp) {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof TrustStoreError, String(error));
    assert.equal(error.line, line, error.message);
    assert.match(error.message, message);
    return true;
  });
}

Deno.test("known_peers: TOFU per nick, trust per key", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "known_peers");
    const peers = await KnownPeers.load(path);
    const alice = fp();
    const mallory = fp();
    assert.deepEqual(peers.check("alice", alice), { status: "new", verified: false });
    assert.deepEqual(await peers.remember("alice", alice), {
      status: "new",
      verified: false,
      stored: true,
    });
    assert.equal(await readFile(path, "utf8"), `${alice} seen alice\n`);
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    assert.deepEqual(peers.check("alice", alice), {
      status: "match",
      expected: alice,
      verified: false,
    });
    assert.equal(peers.lookup("Alice"), undefined, "nicks are case-sensitive");

    await peers.markVerified("alice", alice);
    assert.equal(await readFile(path, "utf8"), `${alice} verified alice\n`);
    // Another key under a known nick: changed, and the file keeps the verified key.
    assert.deepEqual(await peers.remember("alice", mallory), {
      status: "changed",
      expected: alice,
      verified: false,
      stored: true,
    });
    assert.equal(await readFile(path, "utf8"), `${alice} verified alice\n`);

    // A rename: the same key under a new nick keeps its mark.
    assert.deepEqual(peers.check("alicia", alice), {
      status: "renamed",
      verified: true,
      knownAs: ["alice"],
    });
    await peers.remember("alicia", alice);
    assert.equal(await readFile(path, "utf8"), `${alice} verified alice alicia\n`);
    assert.deepEqual(peers.statusOfKey(alice), {
      fingerprint: alice,
      verified: true,
      nicks: ["alice", "alicia"],
    });
    assert.equal(peers.statusOfKey(mallory), undefined);

    // Verifying another key for a nick moves the nick to it (after comparing safety numbers).
    await peers.markVerified("alicia", mallory);
    assert.deepEqual(peers.lookup("alicia"), { fingerprint: mallory, verified: true });
    assert.deepEqual(peers.entries(), [
      ["alice", { fingerprint: alice, verified: true }],
      ["alicia", { fingerprint: mallory, verified: true }],
    ]);
    await assert.rejects(peers.remember("bad nick", alice), SyntaxError);
    await assert.rejects(peers.remember("#nick", alice), SyntaxError);
    await assert.rejects(peers.remember("alice", "nope"), SyntaxError);
  });
});

Deno.test("known_peers: a key keeps its latest nicks", async () => {
  await withTempDir(async (dir) => {
    const peers = await KnownPeers.load(join(dir, "known_peers"));
    const key = fp();
    for (let i = 0; i < MAX_NICKS_PER_KEY + 2; i++) await peers.remember(`nick${i}`, key);
    assert.deepEqual(peers.statusOfKey(key)!.nicks, ["nick2", "nick3", "nick4", "nick5"]);
    assert.equal(peers.lookup("nick0"), undefined);
  });
});

Deno.test("known_peers: look-alikes of remembered nicks bound to other keys", async () => {
  await withTempDir(async (dir) => {
    const peers = await KnownPeers.load(join(dir, "known_peers"));
    const alice = fp();
    await peers.remember("alice", alice);
    assert.deepEqual(peers.lookalike("AIice", fp()), { nick: "alice", fingerprint: alice });
    assert.deepEqual(peers.lookalike("\u0430lice", fp()), { nick: "alice", fingerprint: alice });
    assert.equal(peers.lookalike("AIice", alice), undefined, "the same key is a rename");
    assert.equal(peers.lookalike("bob", fp()), undefined);
  });
});

Deno.test("known_peers: every nick of the profile can be stored and read back", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "known_peers");
    const nicks = new Set<string>(["o'brien", "x#y", "Алиса", "日本語", "a".repeat(64)]);
    fc.assert(
      fc.property(fc.string({ unit: "grapheme", minLength: 1, maxLength: 16 }), (text) => {
        if (nickProblem(text) === null) {
          checkPeerNick(text);
          nicks.add(text);
        }
      }),
      { numRuns: 300 },
    );
    const peers = await KnownPeers.load(path);
    const bound = new Map([...nicks].map((nick) => [nick, fp()]));
    await Promise.all([...bound].map(([nick, key]) => peers.remember(nick, key)));
    const again = await KnownPeers.load(path);
    for (const [nick, key] of bound) assert.equal(again.lookup(nick)?.fingerprint, key, nick);
  });
});

Deno.test("known_peers: bounded; unverified keys go first, oldest first", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "known_peers");
    const peers = await KnownPeers.load(path, { maxKeys: 20 });
    const verified = fp();
    await peers.markVerified("trusted", verified);
    const keys: string[] = [];
    for (let i = 0; i < 60; i++) {
      keys.push(fp());
      await peers.remember(`m${i}`, keys[i]);
    }
    const stored = (await KnownPeers.load(path)).keys();
    assert.ok(stored.length <= 20, `${stored.length} keys`);
    assert.ok(stored.some((key) => key.fingerprint === verified), "verified key kept");
    assert.ok(stored.some((key) => key.nicks[0] === "m59"), "newest kept");
    assert.ok(!stored.some((key) => key.nicks[0] === "m0"), "oldest evicted");
    // Full of verified keys: a new one is not stored, and says so.
    const full = await KnownPeers.load(join(dir, "full"), { maxKeys: 3 });
    for (let i = 0; i < 3; i++) await full.markVerified(`v${i}`, fp());
    assert.equal((await full.remember("late", fp())).stored, false);
    assert.equal(full.keys().length, 3);
  });
});

Deno.test("known_peers: a burst of new members is one append per batch, not a rewrite each", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "known_peers");
    await writeFile(path, "# my peers\n", { mode: 0o600 });
    const peers = await KnownPeers.load(path);
    const before = (await stat(path)).ino;
    const results = await Promise.all(
      Array.from({ length: 500 }, (_, i) => peers.remember(`n${i}`, fp())),
    );
    assert.ok(results.every((result) => result.status === "new" && result.stored));
    const after = await stat(path);
    // Appended in place (same inode): never re-read and rewritten per nick.
    assert.equal(after.ino, before);
    const text = await readFile(path, "utf8");
    assert.ok(text.startsWith("# my peers\n"));
    assert.equal(text.split("\n").length - 1, 501);
  });
});

Deno.test("known_peers: another process's verified key is never overwritten", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "known_peers");
    const stale = await KnownPeers.load(path); // loaded before the other process wrote
    const other = await KnownPeers.load(path);
    const alice = fp();
    const impostor = fp();
    await other.markVerified("alice", alice);
    assert.equal(stale.check("alice", impostor).status, "new", "its view is old");
    const result = await stale.remember("alice", impostor);
    assert.deepEqual(result, { status: "changed", expected: alice, verified: false, stored: true });
    assert.equal(await readFile(path, "utf8"), `${alice} verified alice\n`);
    assert.deepEqual(stale.lookup("alice"), { fingerprint: alice, verified: true });
  });
});

Deno.test("known_peers: waits for the lock, and breaks one left by a dead process", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "known_peers");
    const peers = await KnownPeers.load(path);
    let released = false;
    const holder = withFileLock(path, async () => {
      await new Promise((resolve) => setTimeout(resolve, 200));
      released = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 20));
    await peers.remember("alice", fp());
    assert.ok(released, "the update waited for the holder");
    await holder;
    // A lock whose owner is gone (pid 2^22 + 1 is above Linux's pid_max default range).
    await writeFile(`${path}.lock`, "4194305 deadbeef\n");
    await peers.remember("bob", fp());
    assert.ok(peers.lookup("bob"));
    await assert.rejects(stat(`${path}.lock`));
  });
});

Deno.test("known_peers: an append cut short by a crash is ignored, then rewritten away", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "known_peers");
    const alice = fp();
    await writeFile(path, `${alice} seen alice\n${fp().slice(0, 20)}`, { mode: 0o600 });
    const peers = await KnownPeers.load(path);
    assert.deepEqual(peers.entries(), [["alice", { fingerprint: alice, verified: false }]]);
    const bob = fp();
    await peers.remember("bob", bob);
    assert.equal(await readFile(path, "utf8"), `${alice} seen alice\n${bob} seen bob\n`);
  });
});

Deno.test("known_peers: the first format is read and rewritten in the new one", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "known_peers");
    const a = fp();
    const b = fp();
    await writeFile(
      path,
      `# peers\nalice ${a} verified # met in person\nal ${a}\nbob ${b}\n😀 ${b}\n`,
    );
    const peers = await KnownPeers.load(path);
    assert.deepEqual(peers.lookup("alice"), { fingerprint: a, verified: true });
    assert.deepEqual(peers.lookup("al"), { fingerprint: a, verified: true });
    assert.deepEqual(peers.lookup("bob"), { fingerprint: b, verified: false });
    await peers.markVerified("bob", b);
    assert.equal(
      await readFile(path, "utf8"),
      `# peers\n${a} verified alice al # met in person\n${b} verified bob 😀\n`,
    );
  });
});

Deno.test("known_peers: strict parsing", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "known_peers");
    const a = fp();
    const cases: [string, number, RegExp][] = [
      [`alice ${a} verfied\n`, 1, /line 1: expected `FINGERPRINT verified\|seen NICK/],
      [`alice ${a} verified extra\n`, 1, /line 1: expected/],
      [`alice\n`, 1, /line 1: expected/],
      [`${a} seen\n`, 1, /line 1: expected/],
      [`${a} seen alice\nbob x\n`, 2, /known_peers line 2: not a fingerprint/],
      [`x seen alice\n`, 1, /line 1: not a fingerprint/],
      [`alice ${a}\nalice ${fp()}\n`, 2, /line 2: "alice" is listed again \(first on line 1\)/],
      [`${a} seen alice\n${a} seen bob\n`, 2, /line 2: .* is listed again \(first on line 1\)/],
      [`${a} seen alice\n${fp()} verified bob alice\n`, 2, /"alice" is listed again/],
      [`al\u0007ice ${a}\n`, 1, /line 1: nick/],
    ];
    for (const [text, line, message] of cases) {
      await writeFile(path, text);
      await rejectsAt(KnownPeers.load(path), line, message);
      // A file that does not parse is never rewritten.
      await assert.rejects(
        KnownPeers.load(path).then((peers) => peers.remember("zed", fp())),
        TrustStoreError,
      );
      assert.equal(await readFile(path, "utf8"), text);
    }
  });
  checkPeerNick("alice");
  checkPeerNick("Ünïcode-nick_1");
  assert.throws(() => checkPeerNick(""), SyntaxError);
  assert.throws(() => checkPeerNick("x".repeat(256)), SyntaxError);
});
