/**
 * Part 4 of the attack suite: keys and state on disk. A wrong passphrase, a
 * truncated or corrupted identity, known_servers or known_peers file, or an
 * identity file that other users may read: each gives a clear one-line error
 * (exit code 3) and the file is left exactly as it was, never silently
 * replaced. Writes are atomic: a process killed with SIGKILL in the middle of
 * rewriting a file leaves the old or the new file, never a mix.
 */

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { Buffer } from "node:buffer";
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { generateIdentity } from "../../lib/identity/identity.ts";
import { encodeIdentityFile, loadIdentity } from "../../lib/identity/identity_file.ts";
import { KnownPeers, KnownServers } from "../../lib/identity/trust_store.ts";
import { runCli, TempDirs } from "../support/cli_process.ts";
import { delay, seededRandom } from "../support/in_process.ts";
import { bytesVersion } from "./support/kill_target.ts";
import { ADVERSARIAL_SEED } from "./support/knobs.ts";
import { guarded } from "./support/observe.ts";
import { Attack } from "./support/scoreboard.ts";

const ROOT = dirname(dirname(dirname(fileURLToPath(import.meta.url))));
const DENO = join(ROOT, "node_modules", ".bin", "deno");
const random = seededRandom(ADVERSARIAL_SEED + 4);
/** Nothing listens here: commands must fail on their files before they connect. */
const NOWHERE = "127.0.0.1:9";

/** Runs a command that must refuse a file: exit 3, one line, the file untouched. */
async function refuses(
  attack: Attack,
  options: {
    args: string[];
    home: string;
    file: string;
    pattern: RegExp;
    env?: Record<string, string>;
  },
): Promise<void> {
  attack.attempt();
  const before = snapshot(options.file);
  const result = await runCli(options.args, { home: options.home, env: options.env });
  const after = snapshot(options.file);
  const lines = result.stderr.split("\n").filter((line) => line.trim() !== "");
  const what = `${options.args.join(" ")} (${options.file.split("/").at(-1)})`;
  if (result.code === 1 || result.signal !== null || /\n\s+at /.test(result.stderr)) {
    attack.crash(`${what}: exit ${result.code}/${result.signal}: ${result.stderr.slice(0, 300)}`);
    return;
  }
  if (before === undefined ? after !== undefined : after === undefined || !before.equals(after)) {
    attack.forged(`${what}: the file was replaced`);
    return;
  }
  if (result.code === 3 && options.pattern.test(result.stderr) && lines.length >= 1) {
    attack.detected();
  } else {
    attack.lost(
      1,
      `${what}: exit ${result.code}, stderr ${JSON.stringify(result.stderr.slice(0, 200))}`,
    );
  }
}

/** A file's bytes (a directory counts as its name), or undefined when it is missing. */
function snapshot(path: string): Buffer | undefined {
  if (!existsSync(path)) return undefined;
  return statSync(path).isDirectory() ? Buffer.from(`directory ${path}`) : readFileSync(path);
}

function corruptions(text: string): { name: string; bytes: Uint8Array }[] {
  const bytes = new TextEncoder().encode(text);
  const out: { name: string; bytes: Uint8Array }[] = [
    { name: "empty", bytes: new Uint8Array(0) },
    { name: "not UTF-8", bytes: new Uint8Array([0xff, 0xfe, 0x00, 0x80]) },
    { name: "garbage", bytes: new TextEncoder().encode("\u0000\u0001 not a file we wrote\n") },
  ];
  for (let i = 0; i < 4; i++) {
    const at = 1 + Math.floor(random() * (bytes.length - 2));
    out.push({ name: `truncated at ${at}`, bytes: bytes.slice(0, at) });
  }
  for (let i = 0; i < 4; i++) {
    const flipped = bytes.slice();
    const at = Math.floor(random() * flipped.length);
    flipped[at] ^= 1 << Math.floor(random() * 7);
    out.push({ name: `byte ${at} flipped`, bytes: flipped });
  }
  return out;
}

Deno.test("disk: a wrong passphrase is refused and changes nothing", async () => {
  const attack = new Attack("disk: wrong passphrase");
  const dirs = new TempDirs();
  try {
    await guarded(attack, async () => {
      const home = dirs.make();
      const file = join(home, "identity");
      writeFileSync(
        file,
        await encodeIdentityFile({
          identity: generateIdentity(),
          passphrase: "right one",
          logN: 10,
        }),
        { mode: 0o600 },
      );
      for (const passphrase of ["wrong one", "Right one", "right one ", ""]) {
        for (const command of [["join", NOWHERE], ["serve", "--listen", "127.0.0.1:0"]]) {
          await refuses(attack, {
            args: [...command, "--identity", file],
            home,
            file,
            pattern: /wrong passphrase/,
            env: { SECURECHAT_PASSPHRASE: passphrase },
          });
        }
      }
      // The default identity too: a wrong passphrase never leads to a new identity.
      for (const command of [["join", NOWHERE], ["serve", "--listen", "127.0.0.1:0"]]) {
        await refuses(attack, {
          args: command,
          home,
          file,
          pattern: /wrong passphrase/,
          env: { SECURECHAT_PASSPHRASE: "wrong" },
        });
      }
    });
  } finally {
    attack.save();
    dirs.cleanup();
  }
  assert.equal(attack.row.detected, attack.row.attempts, attack.summary());
  assert.ok(attack.clean, attack.summary());
});

Deno.test("disk: a truncated or corrupted identity is refused, never replaced", async () => {
  const attack = new Attack("disk: corrupted identity file");
  const dirs = new TempDirs();
  try {
    await guarded(attack, async () => {
      const encrypted = await encodeIdentityFile({
        identity: generateIdentity(),
        passphrase: "pass",
        logN: 10,
      });
      const clear = await encodeIdentityFile({ identity: generateIdentity() });
      for (const [label, text] of [["encrypted", encrypted], ["unencrypted", clear]]) {
        for (const corruption of corruptions(text)) {
          const home = dirs.make();
          // The default path: the one that is created when missing, so the one at risk.
          const file = join(home, "identity");
          writeFileSync(file, corruption.bytes, { mode: 0o600 });
          const command = random() < 0.5 ? ["join", NOWHERE] : ["serve", "--listen", "127.0.0.1:0"];
          await refuses(attack, {
            args: command,
            home,
            file,
            // A flipped version digit is refused as a format this program does not read.
            pattern: new RegExp(
              `${file}.*(corrupt|wrong passphrase|has version \\d+)|` +
                `(corrupt|wrong passphrase).*${file}`,
            ),
            env: { SECURECHAT_PASSPHRASE: "pass" },
          });
          void label;
        }
      }
      // A directory where the identity should be.
      const home = dirs.make();
      mkdirSync(join(home, "identity"));
      await refuses(attack, {
        args: ["join", NOWHERE],
        home,
        file: join(home, "identity"),
        pattern: /not a regular file|cannot read/,
      });
    });
  } finally {
    attack.save();
    dirs.cleanup();
  }
  assert.equal(attack.row.detected, attack.row.attempts, attack.summary());
  assert.ok(attack.clean, attack.summary());
});

Deno.test("disk: corrupted known_servers and known_peers are refused, never rewritten", async () => {
  const attack = new Attack("disk: corrupted known_servers / known_peers");
  // Plain-text files have no checksum: a flip that turns one valid line into another (a letter of
  // a nick, a fingerprint character) or a cut inside a comment leaves a valid file. Those must
  // at least never be rewritten behind the user's back.
  const valid = new Attack("disk: corruption leaving a valid known_* file", { harmless: true });
  const dirs = new TempDirs();
  try {
    await guarded(attack, async () => {
      const fps = [generateIdentity().fingerprint, generateIdentity().fingerprint];
      const files = {
        known_servers: `# relays\n127.0.0.1:7878 ${fps[0]}\nrelay.example:7878 ${
          fps[1]
        } # office\n`,
        known_peers: `alice ${fps[0]} verified\nbob ${fps[1]}\n`,
      };
      for (const [name, text] of Object.entries(files)) {
        const variants = corruptions(text).filter((c) => {
          // A cut exactly at a line end leaves a valid, shorter file: not detectable by design
          // (PROTOCOL.md: atomic writes make it impossible; only a hand edit can do it).
          const decoded = new TextDecoder().decode(c.bytes);
          return !(text.startsWith(decoded) && (decoded === "" || decoded.endsWith("\n"))) &&
            !/^\s*(#.*)?$/.test(decoded);
        });
        variants.push({
          name: "a duplicate entry",
          bytes: new TextEncoder().encode(
            text + text.split("\n").find((l) => /^[a-z0-9]/.test(l)) + "\n",
          ),
        });
        for (const variant of variants) {
          const home = dirs.make();
          writeFileSync(
            join(home, "identity"),
            await encodeIdentityFile({ identity: generateIdentity() }),
            { mode: 0o600 },
          );
          const file = join(home, name);
          writeFileSync(file, variant.bytes, { mode: 0o600 });
          const parses = await (name === "known_servers" ? KnownServers : KnownPeers).load(file)
            .then(
              () => true,
              () => false,
            );
          if (parses) {
            valid.attempt();
            const result = await runCli(["join", NOWHERE], { home });
            if (!readFileSync(file).equals(Buffer.from(variant.bytes))) {
              valid.forged(`${name} (${variant.name}) was rewritten`);
            }
            if (result.code !== 5) valid.lost(1, `join exit ${result.code}: ${result.stderr}`);
            continue;
          }
          await refuses(attack, {
            args: ["join", NOWHERE],
            home,
            file,
            pattern: new RegExp(`${name}`),
          });
        }
      }
    });
  } finally {
    attack.save();
    valid.save();
    dirs.cleanup();
  }
  assert.equal(attack.row.detected, attack.row.attempts, attack.summary());
  assert.ok(attack.clean, attack.summary());
  assert.ok(valid.clean, valid.summary());
});

Deno.test("disk: identity files readable or writable by others are refused, like SSH", async () => {
  const attack = new Attack("disk: identity file too open");
  const dirs = new TempDirs();
  try {
    await guarded(attack, async () => {
      const home = dirs.make();
      const file = join(home, "identity");
      writeFileSync(file, await encodeIdentityFile({ identity: generateIdentity() }), {
        mode: 0o600,
      });
      for (const mode of [0o640, 0o604, 0o644, 0o660, 0o606, 0o666, 0o620, 0o602, 0o610, 0o777]) {
        chmodSync(file, mode);
        const octal = mode.toString(8).padStart(4, "0");
        for (const command of [["join", NOWHERE], ["serve", "--listen", "127.0.0.1:0"]]) {
          await refuses(attack, {
            args: [...command, "--identity", file],
            home,
            file,
            pattern: new RegExp(`permissions ${octal} for .* are too open; run chmod 600`),
          });
        }
      }
      // Owner-only modes are accepted: join gets past its key and fails to connect (5).
      for (const mode of [0o600, 0o400]) {
        chmodSync(file, mode);
        const result = await runCli(["join", NOWHERE, "--identity", file], { home });
        assert.equal(result.code, 5, result.stderr);
      }
    });
  } finally {
    attack.save();
    dirs.cleanup();
  }
  assert.equal(attack.row.detected, attack.row.attempts, attack.summary());
  assert.ok(attack.clean, attack.summary());
});

/** Starts kill_target.ts, waits until it has written once, lets it run, then kills it. */
async function killMidWrite(args: string[], runMs: number): Promise<string | null> {
  const child = spawn(DENO, [
    "run",
    "-A",
    join(ROOT, "tests/adversarial/support/kill_target.ts"),
    ...args,
  ], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr!.on("data", (chunk) => stderr += chunk);
  const exited = new Promise<string | null>((resolve) =>
    child.on("close", (_code, signal) => resolve(signal))
  );
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`kill target never got ready: ${stderr}`)),
        15_000,
      );
      child.stdout!.on("data", (chunk) => {
        if (String(chunk).includes("ready")) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.on("close", () => {
        clearTimeout(timer);
        reject(new Error(`kill target exited early: ${stderr}`));
      });
    });
    await delay(runMs);
  } finally {
    child.kill("SIGKILL");
  }
  return await exited;
}

Deno.test("disk: kill -9 in the middle of a write leaves the old or the new file, never a mix", async () => {
  const attack = new Attack("disk: kill -9 during a write");
  const dirs = new TempDirs();
  try {
    await guarded(attack, async () => {
      const versions = [bytesVersion(0), bytesVersion(1)];
      const dir = dirs.make("atomic");
      const path = join(dir, "data");
      writeFileSync(path, versions[0]);
      for (let round = 0; round < 6; round++) {
        attack.attempt();
        const signal = await killMidWrite(["bytes", path], 5 + Math.floor(random() * 120));
        const now = readFileSync(path);
        if (signal !== "SIGKILL") attack.crash(`the writer ended with ${signal}`);
        else if (now.equals(versions[0]) || now.equals(versions[1])) attack.detected();
        else attack.forged(`a mixed file of ${now.length} bytes after kill -9`);
      }

      // known_peers, through its own update path, in its real format.
      const fps = Array.from({ length: 3 }, () => generateIdentity().fingerprint);
      const peersPath = join(dir, "known_peers");
      // 9,000 keys: a large file within the 10,000-key cap, so every rewrite keeps them all.
      const lines = Array.from(
        { length: 9_000 },
        (_, i) => `${generateIdentity().fingerprint} seen member${i}`,
      );
      writeFileSync(peersPath, `${lines.join("\n")}\n${fps[0]} seen target\n`, { mode: 0o600 });
      for (let round = 0; round < 4; round++) {
        attack.attempt();
        const signal = await killMidWrite(
          ["peers", peersPath, fps[0], fps[1]],
          5 + Math.floor(random() * 150),
        );
        try {
          const peers = await KnownPeers.load(peersPath);
          const target = peers.lookup("target")?.fingerprint;
          const complete = peers.entries().length === 9_001 &&
            peers.lookup("member8999") !== undefined;
          if (signal !== "SIGKILL") attack.crash(`the writer ended with ${signal}`);
          else if (complete && (target === fps[0] || target === fps[1])) attack.detected();
          else {attack.forged(
              `known_peers after kill -9: ${peers.entries().length} entries, target ${target}`,
            );}
        } catch (error) {
          attack.forged(`known_peers unreadable after kill -9: ${(error as Error).message}`);
        }
      }

      // keygen --force killed while it replaces an identity: the old key or the new one opens.
      const home = dirs.make();
      const identityPath = join(home, "identity");
      writeFileSync(
        identityPath,
        await encodeIdentityFile({ identity: generateIdentity(), passphrase: "old", logN: 10 }),
        { mode: 0o600 },
      );
      for (let round = 0; round < 3; round++) {
        attack.attempt();
        const child = spawn(DENO, ["run", "-A", join(ROOT, "mod.ts"), "keygen", "--force"], {
          cwd: ROOT,
          env: {
            ...Deno.env.toObject(),
            SECURECHAT_HOME: home,
            SECURECHAT_PASSPHRASE: `new${round}`,
          },
          stdio: "ignore",
        });
        const exited = new Promise((resolve) => child.on("close", resolve));
        // scrypt takes about half a second; the write comes right after it.
        await delay(300 + Math.floor(random() * 500));
        child.kill("SIGKILL");
        await exited;
        let opened = false;
        for (
          const passphrase of [
            "old",
            ...Array.from({ length: round + 1 }, (_, i) => `new${i}`),
          ]
        ) {
          try {
            await loadIdentity({
              path: identityPath,
              passphrase: () => Promise.resolve(passphrase),
            });
            opened = true;
            break;
          } catch {
            // Try the next one.
          }
        }
        if (opened) attack.detected();
        else {attack.forged(
            "after kill -9 of keygen --force, the identity opens with no passphrase",
          );}
      }
    });
  } finally {
    attack.save();
    dirs.cleanup();
  }
  assert.equal(attack.row.detected, attack.row.attempts, attack.summary());
  assert.ok(attack.clean, attack.summary());
});
