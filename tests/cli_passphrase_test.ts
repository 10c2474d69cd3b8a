/**
 * Passphrases through the real CLI: a modified key file is reported as such
 * (not as a wrong passphrase), the passphrase comes from the controlling
 * terminal when stdin is a pipe (tmux gives a real one), from
 * --passphrase-file or SECURECHAT_PASSPHRASE without one, `passwd` changes it
 * keeping the key, and unlocking shows progress on a terminal. Set
 * SECURECHAT_BIN to run these against a built program.
 */

import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fromBase64, toBase64 } from "../lib/core/bytes.ts";
import { generateIdentity } from "../lib/identity/identity.ts";
import { runCli, TempDirs } from "./support/cli_process.ts";

const PASSPHRASE = "correct horse battery staple";

Deno.test("an edited key file is reported as modified or corrupt, a wrong passphrase as wrong (exit 3)", async () => {
  const dirs = new TempDirs();
  try {
    const home = dirs.make();
    const env = { SECURECHAT_PASSPHRASE: PASSPHRASE };
    const sealed = join(home, "sealed");
    const plain = join(home, "plain");
    assert.equal((await runCli(["keygen", "--out", sealed], { home, env })).code, 0);
    assert.equal((await runCli(["keygen", "--no-passphrase", "--out", plain], { home })).code, 0);
    const original = { sealed: readFileSync(sealed, "utf8"), plain: readFileSync(plain, "utf8") };
    const flip = (b64: string) => {
      const bytes = fromBase64(b64);
      bytes[5] ^= 0x10;
      return toBase64(bytes);
    };
    const edits: Array<[string, "sealed" | "plain", (file: Record<string, string>) => void]> = [
      ["public key swapped", "sealed", (f) => f.publicKey = toBase64(generateIdentity().publicKey)],
      ["sealed key edited", "sealed", (f) => f.secretKey = flip(f.secretKey)],
      ["public key swapped", "plain", (f) => f.publicKey = toBase64(generateIdentity().publicKey)],
      ["secret key edited", "plain", (f) => f.secretKey = flip(f.secretKey)],
    ];
    for (const [what, which, edit] of edits) {
      const file = JSON.parse(original[which]);
      edit(file);
      const path = which === "sealed" ? sealed : plain;
      writeFileSync(path, JSON.stringify(file, null, 2), { mode: 0o600 });
      const result = await runCli(["join", "127.0.0.1:1", "--identity", path, "--nick", "x"], {
        home,
        env,
      });
      assert.equal(result.code, 3, `${which}, ${what}: ${result.stderr}`);
      assert.match(result.stderr, /was modified or is corrupt/, `${which}, ${what}`);
      assert.doesNotMatch(result.stderr, /wrong passphrase/, `${which}, ${what}`);
    }
    writeFileSync(sealed, original.sealed, { mode: 0o600 });
    const wrong = await runCli(["join", "127.0.0.1:1", "--identity", sealed, "--nick", "x"], {
      home,
      env: { SECURECHAT_PASSPHRASE: "not it" },
    });
    assert.equal(wrong.code, 3);
    assert.match(wrong.stderr, /^securechat: wrong passphrase for identity file /m);
  } finally {
    dirs.cleanup();
  }
});
