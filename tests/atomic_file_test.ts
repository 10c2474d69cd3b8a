import assert from "node:assert/strict";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { errorCode, writeFileAtomic } from "../lib/core/atomic_file.ts";

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const DENO = join(ROOT, "node_modules", ".bin", "deno");

async function withTempDir(run: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "securechat-atomic-test-"));
  try {
    await run(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

Deno.test("writeFileAtomic creates, replaces and sets the mode", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "file");
    await writeFileAtomic(path, "one\n");
    assert.equal(await readFile(path, "utf8"), "one\n");
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    await writeFileAtomic(path, new Uint8Array([1, 2, 3]), { mode: 0o644 });
    assert.deepEqual(new Uint8Array(await readFile(path)), new Uint8Array([1, 2, 3]));
    assert.equal((await stat(path)).mode & 0o777, 0o644);
    // An existing file's looser mode is not kept: the new file gets the mode asked for.
    await writeFileAtomic(path, "two\n");
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    assert.deepEqual(await readdir(dir), ["file"], "no temporary file is left");
  });
});

Deno.test("writeFileAtomic with overwrite false never replaces a file", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "file");
    await writeFileAtomic(path, "first", { overwrite: false });
    await assert.rejects(
      writeFileAtomic(path, "second", { overwrite: false }),
      (error: unknown) => {
        assert.equal(errorCode(error), "EEXIST");
        return true;
      },
    );
    assert.equal(await readFile(path, "utf8"), "first");
    assert.deepEqual(await readdir(dir), ["file"]);

    // Racing writers: exactly one wins, and its content is complete.
    const target = join(dir, "raced");
    const results = await Promise.allSettled(
      Array.from(
        { length: 8 },
        (_, i) => writeFileAtomic(target, `writer ${i}`, { overwrite: false }),
      ),
    );
    const winners = results.filter((result) => result.status === "fulfilled");
    assert.equal(winners.length, 1);
    assert.match(await readFile(target, "utf8"), /^writer [0-7]$/);
    assert.deepEqual((await readdir(dir)).sort(), ["file", "raced"]);
  });
});

Deno.test("writeFileAtomic cleans up its temporary file when it fails", async () => {
  await withTempDir(async (dir) => {
    // A non-empty directory cannot be replaced by a file: the rename fails.
    const path = join(dir, "occupied");
    await mkdir(path);
    await writeFile(join(path, "inside"), "x");
    await assert.rejects(writeFileAtomic(path, "data"));
    assert.deepEqual(await readdir(dir), ["occupied"]);
    // The directory does not exist: the temporary file cannot even be created.
    await assert.rejects(
      writeFileAtomic(join(dir, "missing", "file"), "data"),
      (error: unknown) => {
        assert.equal(errorCode(error), "ENOENT");
        return true;
      },
    );
    assert.deepEqual(await readdir(dir), ["occupied"]);
  });
});

/** Version `n` of the test file: a header line naming `n`, then filler; lengths vary. */
function version(n: number): Uint8Array {
  const length = 1024 * 1024 + (n % 7) * 4096;
  const bytes = new Uint8Array(length).fill(n % 256);
  const header = new TextEncoder().encode(`v${String(n).padStart(10, "0")}\n`);
  bytes.set(header);
  return bytes;
}

/** Returns the version number if `bytes` is exactly one complete version, else throws. */
function checkVersion(bytes: Uint8Array): number {
  const header = new TextDecoder().decode(bytes.subarray(0, 12));
  const match = /^v(\d{10})\n$/.exec(header);
  assert.ok(match, `bad header ${JSON.stringify(header)} (length ${bytes.length})`);
  const n = Number(match[1]);
  const expected = version(n);
  assert.equal(bytes.length, expected.length, `version ${n} has the wrong length`);
  for (let i = 12; i < bytes.length; i++) {
    if (bytes[i] !== expected[i]) assert.fail(`version ${n} differs at byte ${i}`);
  }
  return n;
}

const WRITER = `
const { writeFileAtomic } = await import(Deno.args[1]);
${version.toString()}
const [path, , start] = Deno.args;
for (let n = Number(start); n < Number(start) + 5000; n++) await writeFileAtomic(path, version(n));
`;

Deno.test("readers and kill -9 only ever see a whole old or whole new file", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "data");
    const script = join(dir, "writer.ts");
    await writeFile(script, WRITER);
    await writeFileAtomic(path, version(0));
    const atomicUrl = new URL("../lib/core/atomic_file.ts", import.meta.url).href;

    for (let round = 0; round < 3; round++) {
      const start = (round + 1) * 10_000;
      const child = new Deno.Command(DENO, {
        args: [
          "run",
          "-A",
          "--config",
          join(ROOT, "deno.json"),
          script,
          path,
          atomicUrl,
          `${start}`,
        ],
        stdout: "null",
        stderr: "piped",
      }).spawn();
      const errors = new Response(child.stderr).text();
      // Read while the child rewrites the file; every read must be one complete version.
      const versions = new Set<number>();
      try {
        for (let read = 0; read < 150 && versions.size < 6; read++) {
          const seen = checkVersion(new Uint8Array(await readFile(path)));
          if (seen >= start) versions.add(seen);
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
      } finally {
        // Also on a failed read, so the writer does not outlive the test.
        child.kill("SIGKILL");
      }
      // Only now may stderr be awaited: it ends when the child does.
      assert.ok(versions.size >= 2, `round ${round}: the writer made no progress: ${await errors}`);
      const status = await child.status;
      assert.equal(status.signal, "SIGKILL", await errors);
      const final = checkVersion(new Uint8Array(await readFile(path)));
      assert.ok(final >= Math.max(...versions), `round ${round}: final ${final} went backwards`);
    }
  });
});
