import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { securechatCommand } from "./support/cli_command.ts";
import { isCanonicalFingerprint } from "../lib/identity/fingerprint.ts";
import { loadIdentity } from "../lib/identity/identity_file.ts";

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `securechat` with stdin closed (never a terminal) and only the given SECURECHAT_* variables. */
async function securechat(
  args: string[],
  { home, passphrase }: { home: string; passphrase?: string },
): Promise<Result> {
  const env = Deno.env.toObject();
  for (const name of Object.keys(env)) {
    if (name.startsWith("SECURECHAT_") && name !== "SECURECHAT_BIN") delete env[name];
  }
  env.SECURECHAT_HOME = home;
  if (passphrase !== undefined) env.SECURECHAT_PASSPHRASE = passphrase;
  const { command, args: leading } = securechatCommand();
  // detached: a session of its own, so no controlling terminal to prompt on even when the tests
  // run in one (a passphrase prompt falls back to /dev/tty).
  const child = spawn(command, [...leading, ...args], {
    env,
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  const output = { stdout: "", stderr: "" };
  child.stdout!.setEncoding("utf8").on("data", (text: string) => output.stdout += text);
  child.stderr!.setEncoding("utf8").on("data", (text: string) => output.stderr += text);
  const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
  const code = await new Promise<number>((resolve) =>
    child.on("close", (exitCode) => resolve(exitCode ?? -1))
  );
  clearTimeout(timer);
  return { code, ...output };
}

/** Asserts a failure printed exactly one `securechat: ...` line and no stack trace. */
function oneLineError(result: Result, code: number, message: RegExp): void {
  assert.equal(result.code, code, result.stderr);
  assert.equal(result.stdout, "");
  const lines = result.stderr.split("\n").filter((line) => line !== "");
  assert.equal(lines.length, 1, result.stderr);
  assert.match(lines[0], /^securechat: /);
  assert.match(lines[0], message);
  assert.doesNotMatch(result.stderr, /^\s+at /m);
}

function noStackTrace(result: Result): void {
  assert.doesNotMatch(result.stderr, /^\s+at /m);
  assert.doesNotMatch(result.stderr, /Error:/);
}

async function withHome(run: (home: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "securechat-cli-keygen-"));
  try {
    await run(join(dir, "home"));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

Deno.test("keygen writes a 0600 identity and a .pub, and prints only the fingerprint", async () => {
  await withHome(async (home) => {
    const result = await securechat(["keygen", "--no-passphrase"], { home });
    assert.equal(result.code, 0, result.stderr);
    noStackTrace(result);
    const lines = result.stdout.split("\n");
    assert.equal(lines.length, 2, "one line and its newline");
    assert.equal(lines[1], "");
    const fingerprint = lines[0];
    assert.ok(isCanonicalFingerprint(fingerprint), fingerprint);

    const path = join(home, "identity");
    assert.match(result.stderr, new RegExp(`identity to ${path} \\(NOT encrypted\\)`));
    assert.match(result.stderr, new RegExp(`public key to ${path}\\.pub`));
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    assert.equal((await stat(`${path}.pub`)).mode & 0o777, 0o644);
    assert.equal((await stat(home)).mode & 0o777, 0o700);
    const file = JSON.parse(await readFile(path, "utf8"));
    assert.equal(file.encryption, null);
    const pub = await readFile(`${path}.pub`, "utf8");
    assert.equal(pub, `securechat-ed25519 ${file.publicKey} ${fingerprint}\n`);
    const loaded = await loadIdentity({
      path,
      passphrase: () => Promise.reject(new Error("not encrypted")),
    });
    assert.equal(loaded.fingerprint, fingerprint);

    // `fingerprint` agrees, for the default identity, the path and the .pub file.
    for (const args of [["fingerprint"], ["fingerprint", path], ["fingerprint", `${path}.pub`]]) {
      const shown = await securechat(args, { home });
      assert.equal(shown.code, 0, shown.stderr);
      assert.equal(shown.stdout, `${fingerprint}\n`, args.join(" "));
      assert.equal(shown.stderr, "");
    }
  });
});

Deno.test("keygen never overwrites without --force; --force replaces both files", async () => {
  await withHome(async (home) => {
    const path = join(home, "identity");
    const first = await securechat(["keygen", "--no-passphrase"], { home });
    assert.equal(first.code, 0, first.stderr);
    const before = await readFile(path, "utf8");

    const refused = await securechat(["keygen", "--no-passphrase"], { home });
    oneLineError(refused, 3, new RegExp(`${path} already exists; use --force`));
    assert.equal(await readFile(path, "utf8"), before);

    // Refused before any passphrase is asked for, even with no way to ask.
    const refusedEncrypted = await securechat(["keygen"], { home });
    oneLineError(refusedEncrypted, 3, /already exists/);

    const forced = await securechat(["keygen", "--no-passphrase", "--force"], { home });
    assert.equal(forced.code, 0, forced.stderr);
    assert.notEqual(forced.stdout, first.stdout);
    assert.notEqual(await readFile(path, "utf8"), before);
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    assert.match(await readFile(`${path}.pub`, "utf8"), new RegExp(` ${forced.stdout.trim()}\n$`));
    const shown = await securechat(["fingerprint"], { home });
    assert.equal(shown.stdout, forced.stdout);
  });
});

Deno.test("keygen --out writes elsewhere; fingerprint of a missing identity fails with exit 3", async () => {
  await withHome(async (home) => {
    const missing = await securechat(["fingerprint"], { home });
    oneLineError(
      missing,
      3,
      new RegExp(`no identity at ${join(home, "identity")}; run \`securechat keygen\``),
    );
    const out = join(home, "sub", "relay-key");
    const made = await securechat(["keygen", "--no-passphrase", "--out", out], { home });
    assert.equal(made.code, 0, made.stderr);
    assert.equal((await stat(out)).mode & 0o777, 0o600);
    assert.equal((await securechat(["fingerprint", out], { home })).stdout, made.stdout);
    oneLineError(
      await securechat(["fingerprint", join(home, "nope")], { home }),
      3,
      /no such file/,
    );
  });
});

Deno.test("encrypted identity: passphrase from SECURECHAT_PASSPHRASE, wrong passphrase exits 3", async () => {
  await withHome(async (home) => {
    const path = join(home, "identity");
    const passphrase = "correct horse battery staple";
    const made = await securechat(["keygen"], { home, passphrase });
    assert.equal(made.code, 0, made.stderr);
    assert.match(made.stderr, /\(encrypted\)/);
    const file = JSON.parse(await readFile(path, "utf8"));
    assert.equal(file.encryption.kdf, "scrypt");
    assert.equal(file.encryption.logN, 17);
    const fingerprint = made.stdout.trim();

    // The public part needs no passphrase.
    const shown = await securechat(["fingerprint"], { home });
    assert.equal(shown.code, 0, shown.stderr);
    assert.equal(shown.stdout, made.stdout);

    const loaded = await loadIdentity({ path, passphrase: () => Promise.resolve(passphrase) });
    assert.equal(loaded.fingerprint, fingerprint);
    await assert.rejects(
      loadIdentity({ path, passphrase: () => Promise.resolve("wrong") }),
      /wrong passphrase/,
    );

    // A command that needs the secret key: one line, exit 3, before listening.
    const wrong = await securechat(["serve", "--identity", path, "--listen", "127.0.0.1:0"], {
      home,
      passphrase: "wrong",
    });
    oneLineError(wrong, 3, new RegExp(`wrong passphrase for identity file ${path}$`));
  });
});

Deno.test("keygen refuses to prompt without a terminal and refuses an empty passphrase", async () => {
  await withHome(async (home) => {
    const noTerminal = await securechat(["keygen"], { home });
    oneLineError(
      noTerminal,
      2,
      /no terminal to ask on; set SECURECHAT_PASSPHRASE, or use --passphrase-file or --no-passphrase/,
    );
    const empty = await securechat(["keygen"], { home, passphrase: "" });
    oneLineError(empty, 2, /SECURECHAT_PASSPHRASE is empty.*--no-passphrase/);
    await assert.rejects(stat(join(home, "identity")), { code: "ENOENT" });
  });
});

Deno.test("fingerprint warns about a too-open identity, and refuses corrupt files", async () => {
  await withHome(async (home) => {
    const path = join(home, "identity");
    const made = await securechat(["keygen", "--no-passphrase"], { home });
    await chmod(path, 0o644);
    const shown = await securechat(["fingerprint"], { home });
    assert.equal(shown.code, 0);
    assert.equal(shown.stdout, made.stdout);
    assert.match(
      shown.stderr,
      /^securechat: warning: permissions 0644 for .* are too open; run chmod 600 /,
    );

    const original = await readFile(path, "utf8");
    await writeFile(path, original.slice(0, 40));
    oneLineError(
      await securechat(["fingerprint"], { home }),
      3,
      /identity file .* is corrupt: not valid JSON/,
    );
    await writeFile(`${path}.pub`, "securechat-ed25519 AAAA x\n");
    oneLineError(
      await securechat(["fingerprint", `${path}.pub`], { home }),
      3,
      /public key file .* is corrupt/,
    );
  });
});

Deno.test("fingerprint HOST:PORT with nothing listening is a network error", async () => {
  await withHome(async (home) => {
    // Port 1 on loopback: nothing listens there in a test environment.
    const result = await securechat(["fingerprint", "127.0.0.1:1"], { home });
    oneLineError(result, 5, /cannot connect to 127\.0\.0\.1:1/);
  });
});
