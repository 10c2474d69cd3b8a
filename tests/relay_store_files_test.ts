/**
 * The relay store's file on disk, with real SQLite files in temporary
 * directories: corrupt, foreign, truncated or unwritable files make `open`
 * fail with one line naming the file and leave it as it was; `kill -9` in
 * the middle of a stream of appends loses nothing that was acknowledged; two
 * processes taking prekeys from one file never get the same one-time
 * prekey; the file holds no plaintext the clients encrypted.
 */

import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import {
  chmodSync,
  chownSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import process from "node:process";
import { DatabaseSync } from "node:sqlite";
import { fileURLToPath } from "node:url";
import { randomBytes } from "@noble/ciphers/utils.js";
import { generateIdentity } from "../lib/identity/identity.ts";
import { encodeGroupContent } from "../lib/e2e/content.ts";
import { groupContext, OutboundSenderKey } from "../lib/e2e/sender_keys.ts";
import { StoreError } from "../lib/relay/store/relay_store.ts";
import { openSqliteRelayStore } from "../lib/relay/store/sqlite_store.ts";
import { body, key, member, readAll } from "./support/store_contract.ts";

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const DENO = join(ROOT, "node_modules", "deno", "deno");
const CHILD = join(ROOT, "tests", "support", "store_child.ts");
const IS_ROOT = process.getuid?.() === 0;
/** nobody:nogroup, to drop root's rights for the permission tests. */
const NOBODY = 65534;

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "securechat-storefile-"));
  // Traversable, so a child running as nobody can reach what is inside.
  chmodSync(dir, 0o755);
  return dir;
}

/** A store directory with some data in it, closed. */
async function filledStore(dir: string): Promise<string> {
  const store = await openSqliteRelayStore({ dir });
  const alice = await store.addMember("ops", member(1, "alice"));
  await store.addMember("ops", member(2, "bob"));
  const from = alice.status === "added" ? alice.member.memberId : 0;
  for (let i = 0; i < 200; i++) {
    await store.appendGroup("ops", { from, body: randomBytes(300) });
  }
  await store.close();
  return join(dir, "relay.db");
}

/** `open` must fail with one line naming the file, and leave the file as it was. */
async function refuses(dir: string, pattern: RegExp): Promise<void> {
  const path = join(dir, "relay.db");
  const before = snapshot(path);
  const error = await openSqliteRelayStore({ dir }).then(
    async (store) => {
      await store.close();
      return undefined;
    },
    (error: unknown) => error,
  );
  assert.ok(error instanceof StoreError, `open succeeded or threw ${error}`);
  assert.doesNotMatch(error.message, /\n/);
  assert.ok(error.message.includes(path) || error.message.includes(dir), error.message);
  assert.match(error.message, pattern);
  assert.deepEqual(snapshot(path), before, "the file changed");
}

function snapshot(path: string): { bytes?: Uint8Array; mtime?: number; mode?: number } {
  try {
    const stats = statSync(path);
    if (!stats.isFile()) return { mode: stats.mode };
    return { bytes: readFileSync(path), mtime: stats.mtimeMs, mode: stats.mode };
  } catch {
    return {};
  }
}

Deno.test("store file: random bytes, text and foreign databases are refused, untouched", async () => {
  const dir = tempDir();
  try {
    const cases: [string, (path: string) => void, RegExp][] = [
      ["random bytes", (p) => writeFileSync(p, randomBytes(12_288)), /not an SQLite database/],
      [
        "a text file",
        (p) => writeFileSync(p, "# my notes\nnot a database\n".repeat(200)),
        /not an SQLite database/,
      ],
      ["one byte", (p) => writeFileSync(p, "x"), /not an SQLite database/],
      ["another program's SQLite database", (p) => {
        const db = new DatabaseSync(p);
        db.exec("CREATE TABLE notes (text TEXT); INSERT INTO notes VALUES ('keep me')");
        db.close();
      }, /another program/],
      ["a newer schema", (p) => {
        const db = new DatabaseSync(p);
        db.exec("CREATE TABLE t (x); PRAGMA application_id = 1396921939; PRAGMA user_version = 99");
        db.close();
      }, /newer/],
    ];
    for (const [name, make, pattern] of cases) {
      const data = join(dir, name.replaceAll(" ", "-").replaceAll("'", ""));
      mkdirSync(data, { mode: 0o700 });
      const path = join(data, "relay.db");
      make(path);
      chmodSync(path, 0o600);
      await refuses(data, pattern);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

Deno.test("store file: truncated and damaged files are refused, untouched", async () => {
  const dir = tempDir();
  try {
    const source = await filledStore(join(dir, "source"));
    const size = statSync(source).size;
    const cuts = [50, 4096, Math.floor(size / 2), size - 4096];
    for (const cut of cuts) {
      const data = join(dir, `cut-${cut}`);
      mkdirSync(data, { mode: 0o700 });
      writeFileSync(join(data, "relay.db"), readFileSync(source), { mode: 0o600 });
      truncateSync(join(data, "relay.db"), cut);
      await refuses(data, /not an SQLite database|corrupt/);
    }
    // A b-tree page's type byte overwritten.
    const data = join(dir, "damaged");
    mkdirSync(data, { mode: 0o700 });
    const bytes = readFileSync(source);
    bytes[4096 * 2] = 0x42;
    writeFileSync(join(data, "relay.db"), bytes, { mode: 0o600 });
    await refuses(data, /corrupt|not an SQLite database/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

Deno.test("store file: a directory in its place, or modes open to others, are refused", async () => {
  const dir = tempDir();
  try {
    const a = join(dir, "a");
    mkdirSync(join(a, "relay.db"), { recursive: true, mode: 0o700 });
    chmodSync(a, 0o700);
    await refuses(a, /not a regular file/);

    const b = join(dir, "b");
    await filledStore(b);
    chmodSync(join(b, "relay.db"), 0o644);
    await refuses(b, /chmod 600/);

    const c = join(dir, "c");
    await filledStore(c);
    chmodSync(c, 0o755);
    await refuses(c, /chmod 700/);

    const d = join(dir, "d");
    writeFileSync(d, "a file where the directory should be");
    await refuses(d, /not a directory/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** Runs store_child.ts, as nobody when the tests run as root (root ignores permissions). */
function childCommand(args: string[], denoDir?: string): { command: string; args: string[] } {
  const deno = [DENO, "run", "-A", "--no-lock", CHILD, ...args];
  if (!IS_ROOT || denoDir === undefined) return { command: deno[0], args: deno.slice(1) };
  return {
    command: "setpriv",
    args: [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, "--clear-groups", ...deno],
  };
}

async function runChild(args: string[], options: { unprivileged?: boolean } = {}) {
  let denoDir: string | undefined;
  if (options.unprivileged && IS_ROOT) {
    denoDir = mkdtempSync(join(tmpdir(), "securechat-nobody-"));
    chmodSync(denoDir, 0o777);
  }
  const { command, args: full } = childCommand(args, denoDir);
  const child = spawn(command, full, {
    cwd: tmpdir(),
    env: { ...process.env, ...(denoDir ? { DENO_DIR: denoDir, HOME: denoDir } : {}) },
    stdio: ["ignore", "pipe", "pipe"],
  });
  try {
    return await collect(child);
  } finally {
    if (denoDir) rmSync(denoDir, { recursive: true, force: true });
  }
}

function collect(
  child: ChildProcess,
): Promise<{ stdout: string; stderr: string; code: number | null }> {
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (chunk) => stdout += chunk);
  child.stderr!.on("data", (chunk) => stderr += chunk);
  return new Promise((resolve) => child.on("close", (code) => resolve({ stdout, stderr, code })));
}

Deno.test("store file: an unwritable directory or file gives one line and changes nothing", async () => {
  const dir = tempDir();
  const owner = IS_ROOT ? NOBODY : process.getuid!();
  try {
    // 1. The data directory cannot be created: its parent is not writable.
    const parent = join(dir, "parent");
    mkdirSync(parent, { mode: 0o555 });
    // 2. The directory exists but is not writable (no -wal, -shm or new file possible).
    const readOnlyDir = join(dir, "readonly-dir");
    const readOnlyDirFile = await filledStore(readOnlyDir);
    // 3. The file is not writable.
    const readOnlyFile = join(dir, "readonly-file");
    const readOnlyFilePath = await filledStore(readOnlyFile);
    for (const path of [readOnlyDir, readOnlyDirFile, readOnlyFile, readOnlyFilePath]) {
      chownSync(path, owner, owner);
    }
    chmodSync(readOnlyDir, 0o500);
    chmodSync(readOnlyFilePath, 0o400);
    const before = [readOnlyDirFile, readOnlyFilePath].map(snapshot);
    const cases: [string, RegExp][] = [
      [join(parent, "data"), /cannot write relay data directory .*parent\/data: permission denied/],
      [readOnlyDir, /relay store .*readonly-dir.*(permission denied|writable)/],
      [readOnlyFile, /relay store .*readonly-file\/relay\.db: permission denied/],
    ];
    for (const [data, pattern] of cases) {
      const result = await runChild(["open", data], { unprivileged: true });
      const lines = result.stdout.trim().split("\n");
      assert.equal(lines.length, 1, result.stdout + result.stderr);
      assert.match(lines[0], /^error StoreError: /, result.stdout + result.stderr);
      assert.match(lines[0], pattern);
    }
    assert.deepEqual([readOnlyDirFile, readOnlyFilePath].map(snapshot), before);
    assert.deepEqual(readdirSync(parent), []);
  } finally {
    chmodSync(join(dir, "parent"), 0o755);
    chmodSync(join(dir, "readonly-dir"), 0o755);
    rmSync(dir, { recursive: true, force: true });
  }
});

Deno.test("store file: kill -9 during a stream of appends loses nothing acknowledged", async () => {
  const dir = tempDir();
  try {
    const data = join(dir, "data");
    let acked: { seq: number; i: number }[] = [];
    for (let round = 0; round < 3; round++) {
      const start = String(round * 1_000_000);
      const { command, args } = childCommand(["append", data, "100000", "16", start]);
      const child = spawn(command, args, { cwd: tmpdir(), stdio: ["ignore", "pipe", "pipe"] });
      const seen: { seq: number; i: number }[] = [];
      let buffered = "";
      let stderr = "";
      child.stderr!.on("data", (chunk) => stderr += chunk);
      const target = 300 + round * 400;
      const killed = new Promise<string | null>((resolve) =>
        child.on("close", (_c, s) => resolve(s))
      );
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no progress: ${stderr}`)), 60_000);
        child.stdout!.on("data", (chunk) => {
          buffered += chunk;
          const lines = buffered.split("\n");
          buffered = lines.pop()!;
          for (const line of lines) {
            const match = /^acked (\d+) (\d+)$/.exec(line);
            if (match) seen.push({ seq: Number(match[1]), i: Number(match[2]) });
          }
          if (seen.length >= target) {
            clearTimeout(timer);
            child.kill("SIGKILL");
            resolve();
          }
        });
        child.on("close", () => {
          clearTimeout(timer);
          reject(new Error(`the appender exited early: ${stderr}`));
        });
      }).catch((error) => {
        child.kill("SIGKILL");
        throw error;
      });
      assert.equal(await killed, "SIGKILL");
      acked = acked.concat(seen);

      // Reopen: every acknowledged append is there, once, in order.
      const store = await openSqliteRelayStore({ dir: data });
      try {
        const bob = await store.findMember("ops", key(2), "bob");
        assert.ok(bob);
        const { entries } = await readAll(store, "ops", bob.memberId, 0, 10_000);
        const seqs = entries.map((entry) => entry.seq);
        for (let k = 1; k < seqs.length; k++) assert.ok(seqs[k] > seqs[k - 1]);
        const bySeq = new Map<number, string>();
        for (const entry of entries) {
          if (entry.kind !== "group") throw new Error(`unexpected ${entry.kind}`);
          bySeq.set(entry.seq, new TextDecoder().decode(entry.body));
        }
        const texts = [...bySeq.values()];
        assert.equal(new Set(texts).size, texts.length, "a duplicate item");
        for (const { seq } of acked) {
          assert.ok(bySeq.has(seq), `acknowledged item ${seq} is missing after kill -9`);
        }
        for (const { seq, i } of seen) assert.equal(bySeq.get(seq), `item-${i}`);
      } finally {
        await store.close();
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

Deno.test("store file: two processes taking prekeys from one file never share a one-time prekey", async () => {
  const dir = tempDir();
  try {
    const data = join(dir, "data");
    const store = await openSqliteRelayStore({ dir: data });
    await store.putPrekeys(key(9), {
      signed: { id: 1, body: body("signed") },
      oneTime: Array.from({ length: 300 }, (_, i) => ({ id: 1000 + i, body: body(`one-${i}`) })),
    });
    await store.close();
    const runs = await Promise.all([0, 1].map(() => runChild(["take", data, "200"])));
    const ids: number[] = [];
    let none = 0;
    for (const run of runs) {
      assert.equal(run.code, 0, run.stderr);
      for (const line of run.stdout.trim().split("\n").slice(1)) {
        const match = /^took (\d+|none)$/.exec(line);
        assert.ok(match, line);
        if (match[1] === "none") none++;
        else ids.push(Number(match[1]));
      }
    }
    assert.equal(ids.length, 300);
    assert.equal(new Set(ids).size, 300, "a one-time prekey was handed out twice");
    assert.equal(none, 100, "after the last one-time prekey: the signed prekey alone");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

Deno.test("store file: holds ciphertext and routing fields only, no plaintext", async () => {
  const dir = tempDir();
  try {
    const data = join(dir, "data");
    const marker = "PLAINTEXT-MARKER-7f3a9c";
    const alice = generateIdentity();
    const sender = OutboundSenderKey.create({ identity: alice, epoch: 1 });
    const store = await openSqliteRelayStore({ dir: data });
    const a = await store.addMember("ops", {
      identityKey: alice.publicKey,
      nick: "alice",
      announcement: randomBytes(120),
    });
    await store.addMember("ops", member(2, "bob"));
    assert.equal(a.status, "added");
    if (a.status !== "added") return;
    for (let i = 0; i < 50; i++) {
      const plaintext = encodeGroupContent({ time: Date.now(), texts: [`${marker} ${i}`] });
      const ciphertext = sender.encrypt({ context: groupContext("ops"), plaintext });
      await store.appendGroup("ops", { from: a.member.memberId, body: ciphertext });
    }
    // Keep the write-ahead log too: scan every file the store wrote.
    const files = readdirSync(data).map((name) => readFileSync(join(data, name)));
    await store.close();
    files.push(...readdirSync(data).map((name) => readFileSync(join(data, name))));
    const needle = new TextEncoder().encode(marker);
    for (const file of files) assert.equal(indexOf(file, needle), -1, "plaintext in the store");
    // The scan finds the marker where it is stored as it is (so the check above can fail).
    const control = await openSqliteRelayStore({ dir: join(dir, "control") });
    await control.addMember("ops", member(1, "alice"));
    await control.addMember("ops", member(2, "bob"));
    await control.appendGroup("ops", { from: 1, body: body(marker) });
    await control.close();
    assert.ok(indexOf(readFileSync(join(dir, "control", "relay.db")), needle) >= 0);
    // The routing fields are there, as documented; that is what the relay may know.
    const all = files.map((file) => new TextDecoder("latin1").decode(file)).join("");
    assert.ok(all.includes("alice") && all.includes("ops"));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

function indexOf(haystack: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = haystack.indexOf(needle[0]); i >= 0; i = haystack.indexOf(needle[0], i + 1)) {
    if (i + needle.length > haystack.length) return -1;
    for (let j = 1; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}
