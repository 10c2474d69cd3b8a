import assert from "node:assert/strict";
import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { scrypt as nobleScrypt } from "@noble/hashes/scrypt.js";
import { hmac } from "@noble/hashes/hmac.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { concat, fromBase64, fromHex, toBase64, toHex, utf8 } from "../lib/core/bytes.ts";
import { fingerprint } from "../lib/identity/fingerprint.ts";
import {
  generateIdentity,
  type Identity,
  identityFromSecretKey,
  isValidPublicKey,
  signWithIdentity,
  verifyIdentitySignature,
} from "../lib/identity/identity.ts";
import {
  associatedData,
  decodeIdentityFile,
  deriveFileKeys,
  deriveSealingKey,
  encodeIdentityFile,
  formatPublicKeyFile,
  IdentityFileError,
  type IdentityFileErrorReason,
  loadIdentity,
  openIdentityFile,
  parsePublicKeyFile,
  passphraseCheck,
  readPublicKey,
  saveIdentity,
  savePublicKeyFile,
} from "../lib/identity/identity_file.ts";

/** A parsed identity file, edited freely by the corruption tests. */
// deno-lint-ignore no-explicit-any
type Json = Record<string, any>;

/** Tests use the lowest accepted scrypt cost so that each derivation takes milliseconds. */
const LOG_N = 10;
const PASSPHRASE = "correct horse battery staple";

// RFC 8032 section 7.1, test 1.
const RFC_SECRET = fromHex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
const RFC_PUBLIC = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
const RFC_SIGNATURE =
  "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";

async function withTempDir(run: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "securechat-identity-test-"));
  try {
    await run(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const never = () => Promise.reject(new Error("the passphrase must not be asked for"));
const give = (passphrase: string) => () => Promise.resolve(passphrase);

async function rejectsWith(
  promise: Promise<unknown>,
  reason: IdentityFileErrorReason,
  message: RegExp,
): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof IdentityFileError, `expected IdentityFileError, got ${error}`);
    assert.equal(error.reason, reason, error.message);
    assert.match(error.message, message);
    assert.ok(!error.message.includes("\n"), "one line");
    return true;
  });
}

function sameIdentity(a: Identity, b: Identity): void {
  assert.equal(toHex(a.secretKey), toHex(b.secretKey));
  assert.equal(toHex(a.publicKey), toHex(b.publicKey));
  assert.equal(a.fingerprint, b.fingerprint);
}

Deno.test("identity: RFC 8032 test vector 1", () => {
  const identity = identityFromSecretKey(RFC_SECRET);
  assert.equal(toHex(identity.publicKey), RFC_PUBLIC);
  assert.equal(identity.fingerprint, fingerprint(identity.publicKey));
  const signature = signWithIdentity(identity, new Uint8Array());
  assert.equal(toHex(signature), RFC_SIGNATURE);
  assert.ok(
    verifyIdentitySignature({
      publicKey: identity.publicKey,
      message: new Uint8Array(),
      signature,
    }),
  );
});

Deno.test("identity: verification rejects every forgery without throwing", () => {
  const identity = generateIdentity();
  const message = utf8("hello");
  const signature = signWithIdentity(identity, message);
  const { publicKey } = identity;
  assert.ok(verifyIdentitySignature({ publicKey, message, signature }));
  assert.ok(!verifyIdentitySignature({ publicKey, message: utf8("hellp"), signature }));
  assert.ok(
    !verifyIdentitySignature({ publicKey: generateIdentity().publicKey, message, signature }),
  );
  for (const index of [0, 31, 32, 63]) {
    const bad = Uint8Array.from(signature);
    bad[index] ^= 0x40;
    assert.ok(!verifyIdentitySignature({ publicKey, message, signature: bad }), `byte ${index}`);
  }
  assert.ok(!verifyIdentitySignature({ publicKey, message, signature: signature.subarray(0, 63) }));
  assert.ok(!verifyIdentitySignature({ publicKey: publicKey.subarray(1), message, signature }));
  assert.ok(!verifyIdentitySignature({ publicKey: new Uint8Array(32), message, signature }));
  assert.ok(
    !verifyIdentitySignature({ publicKey: new Uint8Array(32).fill(255), message, signature }),
  );

  // Malleability: S + L encodes the same scalar and must be refused (strict RFC 8032).
  const L = 2n ** 252n + 27742317777372353535851937790883648493n;
  let s = 0n;
  for (let i = 31; i >= 0; i--) s = (s << 8n) | BigInt(signature[32 + i]);
  const sPlusL = s + L;
  if (sPlusL < 2n ** 256n) {
    const malleated = Uint8Array.from(signature);
    let value = sPlusL;
    for (let i = 0; i < 32; i++) {
      malleated[32 + i] = Number(value & 255n);
      value >>= 8n;
    }
    assert.ok(!verifyIdentitySignature({ publicKey, message, signature: malleated }));
  }
});

Deno.test("identity: key checks", () => {
  assert.throws(() => identityFromSecretKey(new Uint8Array(31)), RangeError);
  assert.throws(() => identityFromSecretKey(new Uint8Array(64)), RangeError);
  const a = generateIdentity();
  const b = generateIdentity();
  assert.notEqual(toHex(a.secretKey), toHex(b.secretKey));
  sameIdentity(identityFromSecretKey(a.secretKey), a);
  assert.ok(isValidPublicKey(a.publicKey));
  assert.ok(!isValidPublicKey(new Uint8Array(32))); // small order
  const one = new Uint8Array(32);
  one[0] = 1; // the neutral element
  assert.ok(!isValidPublicKey(one));
  assert.ok(!isValidPublicKey(a.publicKey.subarray(0, 31)));
});

Deno.test("scrypt from node:crypto equals @noble/hashes scrypt", async () => {
  for (const logN of [10, 11]) {
    for (const passphrase of [PASSPHRASE, "", "ünï ✓ 😀"]) {
      const salt = fromHex("000102030405060708090a0b0c0d0e0f");
      const ours = await deriveSealingKey({ passphrase, salt, logN });
      const reference = nobleScrypt(utf8(passphrase.normalize("NFC")), salt, {
        N: 2 ** logN,
        r: 8,
        p: 1,
        dkLen: 32,
      });
      assert.equal(toHex(ours), toHex(reference), `logN ${logN}`);
    }
  }
});

Deno.test("scrypt passphrases are NFC-normalised", async () => {
  const salt = new Uint8Array(16);
  const composed = await deriveSealingKey({ passphrase: "caf\u00e9", salt, logN: LOG_N });
  const decomposed = await deriveSealingKey({ passphrase: "cafe\u0301", salt, logN: LOG_N });
  assert.equal(toHex(composed), toHex(decomposed));
});

Deno.test("identity file: unencrypted and encrypted round trips", async () => {
  const identity = generateIdentity();
  const plain = await encodeIdentityFile({ identity });
  const parsed = JSON.parse(plain);
  assert.deepEqual(Object.keys(parsed), [
    "type",
    "version",
    "publicKey",
    "encryption",
    "secretKey",
  ]);
  assert.equal(parsed.type, "securechat-identity");
  assert.equal(parsed.version, 2);
  assert.equal(parsed.encryption, null);
  assert.equal(parsed.publicKey, toBase64(identity.publicKey));
  assert.equal(parsed.secretKey, toBase64(identity.secretKey));
  assert.ok(plain.endsWith("}\n"));

  const sealed = await encodeIdentityFile({ identity, passphrase: PASSPHRASE, logN: LOG_N });
  const s = JSON.parse(sealed);
  assert.deepEqual(Object.keys(s.encryption), [
    "kdf",
    "logN",
    "r",
    "p",
    "salt",
    "cipher",
    "nonce",
    "check",
  ]);
  assert.deepEqual(
    { ...s.encryption, salt: undefined, nonce: undefined, check: undefined },
    {
      kdf: "scrypt",
      logN: LOG_N,
      r: 8,
      p: 1,
      salt: undefined,
      cipher: "xchacha20-poly1305",
      nonce: undefined,
      check: undefined,
    },
  );
  assert.equal(fromBase64(s.encryption.check).length, 16);
  assert.equal(fromBase64(s.encryption.salt).length, 16);
  assert.equal(fromBase64(s.encryption.nonce).length, 24);
  assert.equal(fromBase64(s.secretKey).length, 48);
  assert.ok(!sealed.includes(toBase64(identity.secretKey)), "the seed is not in the clear");
  assert.ok(!sealed.includes(toHex(identity.secretKey)));

  // Two encryptions of one key differ (fresh salt and nonce).
  const again = JSON.parse(
    await encodeIdentityFile({ identity, passphrase: PASSPHRASE, logN: LOG_N }),
  );
  assert.notEqual(again.encryption.salt, s.encryption.salt);
  assert.notEqual(again.encryption.nonce, s.encryption.nonce);
  assert.notEqual(again.secretKey, s.secretKey);

  await withTempDir(async (dir) => {
    const path = join(dir, "nested", "deeper", "identity");
    await saveIdentity({ path, identity, passphrase: PASSPHRASE, logN: LOG_N });
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    assert.equal((await stat(join(dir, "nested"))).mode & 0o777, 0o700);
    assert.equal((await stat(join(dir, "nested", "deeper"))).mode & 0o777, 0o700);
    let asked = 0;
    const loaded = await loadIdentity({
      path,
      passphrase: () => {
        asked++;
        return Promise.resolve(PASSPHRASE);
      },
    });
    assert.equal(asked, 1);
    sameIdentity(loaded, identity);

    const plainPath = join(dir, "plain");
    await saveIdentity({ path: plainPath, identity });
    sameIdentity(await loadIdentity({ path: plainPath, passphrase: never }), identity);
  });
});

Deno.test("identity file: the default scrypt cost is used when none is given", async () => {
  const text = await encodeIdentityFile({ identity: generateIdentity(), passphrase: "x" });
  assert.equal(JSON.parse(text).encryption.logN, 17);
});

Deno.test("identity file: empty passphrase and bad cost are refused when writing", async () => {
  const identity = generateIdentity();
  await assert.rejects(encodeIdentityFile({ identity, passphrase: "" }), RangeError);
  await assert.rejects(encodeIdentityFile({ identity, passphrase: "x", logN: 9 }), RangeError);
  await assert.rejects(encodeIdentityFile({ identity, passphrase: "x", logN: 21 }), RangeError);
});

Deno.test("identity file: never overwritten without force", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "identity");
    const first = generateIdentity();
    const second = generateIdentity();
    await saveIdentity({ path, identity: first });
    await rejectsWith(saveIdentity({ path, identity: second }), "exists", /already exists/);
    sameIdentity(await loadIdentity({ path, passphrase: never }), first);
    await saveIdentity({ path, identity: second, force: true });
    sameIdentity(await loadIdentity({ path, passphrase: never }), second);
    assert.equal((await stat(path)).mode & 0o777, 0o600);
  });
});

Deno.test("identity file: missing, too open, not a file", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "identity");
    await rejectsWith(
      loadIdentity({ path, passphrase: never }),
      "missing",
      new RegExp(`^no identity at ${path}; run \`securechat keygen\`$`),
    );
    await saveIdentity({ path, identity: generateIdentity(), passphrase: PASSPHRASE, logN: LOG_N });
    for (const mode of [0o644, 0o640, 0o604, 0o660, 0o602, 0o620, 0o601, 0o610, 0o666]) {
      await chmod(path, mode);
      const octal = mode.toString(8).padStart(4, "0");
      await rejectsWith(
        loadIdentity({ path, passphrase: never }),
        "permissions",
        new RegExp(`^permissions ${octal} for ${path} are too open; run chmod 600 ${path}$`),
      );
    }
    await chmod(path, 0o400);
    await loadIdentity({ path, passphrase: give(PASSPHRASE) });
    await chmod(path, 0o600);

    await mkdir(join(dir, "adir"), { mode: 0o700 });
    await rejectsWith(
      loadIdentity({ path: join(dir, "adir"), passphrase: never }),
      "io",
      /not a regular file/,
    );
  });
});

Deno.test("identity file: wrong passphrase and tampering are refused", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "identity");
    const identity = generateIdentity();
    await saveIdentity({ path, identity, passphrase: PASSPHRASE, logN: LOG_N });
    const original = await readFile(path, "utf8");
    const wrong = `wrong passphrase for identity file ${path}`;
    await rejectsWith(
      loadIdentity({ path, passphrase: give("Correct horse battery staple") }),
      "passphrase",
      new RegExp(`^${wrong}$`),
    );
    await rejectsWith(
      loadIdentity({ path, passphrase: give("") }),
      "passphrase",
      /wrong passphrase/,
    );

    const tamper = async (edit: (file: Json) => void) => {
      const file = JSON.parse(original);
      edit(file);
      await writeFile(path, JSON.stringify(file), { mode: 0o600 });
    };
    const flip = (b64: string, index: number) => {
      const bytes = fromBase64(b64);
      bytes[index] ^= 1;
      return toBase64(bytes);
    };
    // Each of these keeps the file well formed. With the right passphrase the check passes, so
    // an edit the AEAD catches is reported as a modified file, not as a wrong passphrase...
    const modified = /was modified or is corrupt: the passphrase is right, but the sealed secret/;
    const edits: [string, (file: Json) => void, IdentityFileErrorReason, RegExp][] = [
      ["ciphertext byte 0", (f) => (f.secretKey = flip(f.secretKey, 0)), "corrupt", modified],
      ["ciphertext byte 31", (f) => (f.secretKey = flip(f.secretKey, 31)), "corrupt", modified],
      ["tag byte 47", (f) => (f.secretKey = flip(f.secretKey, 47)), "corrupt", modified],
      ["nonce", (f) => (f.encryption.nonce = flip(f.encryption.nonce, 5)), "corrupt", modified],
      // Same KDF input, so the key is right: only the associated data detects the swap.
      [
        "swapped publicKey",
        (f) => (f.publicKey = toBase64(generateIdentity().publicKey)),
        "corrupt",
        modified,
      ],
      // ...but an edit of what the check itself depends on cannot be told from a wrong passphrase.
      ["salt", (f) => (f.encryption.salt = flip(f.encryption.salt, 0)), "passphrase", /wrong/],
      ["logN", (f) => (f.encryption.logN = LOG_N + 1), "passphrase", /wrong passphrase/],
      ["check", (f) => (f.encryption.check = flip(f.encryption.check, 3)), "passphrase", /wrong/],
    ];
    for (const [label, edit, reason, message] of edits) {
      await tamper(edit);
      await rejectsWith(loadIdentity({ path, passphrase: give(PASSPHRASE) }), reason, message)
        .catch((error) => {
          throw new Error(`${label}: ${error.message}`);
        });
      // A wrong passphrase on the same edited file still says so (the check fails first).
      if (reason === "corrupt") {
        await rejectsWith(loadIdentity({ path, passphrase: give("nope") }), "passphrase", /wrong/);
      }
    }
  });
});

Deno.test("identity file: unencrypted key that does not match its publicKey", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "identity");
    const identity = generateIdentity();
    const file = JSON.parse(await encodeIdentityFile({ identity }));
    file.publicKey = toBase64(generateIdentity().publicKey);
    await writeFile(path, JSON.stringify(file), { mode: 0o600 });
    await rejectsWith(
      loadIdentity({ path, passphrase: never }),
      "corrupt",
      /was modified or is corrupt: its secret key does not belong to its "publicKey"/,
    );
    await rejectsWith(readPublicKey(path), "corrupt", /does not belong/);
  });
});

Deno.test("identity file: strict decoding of corrupt files", async () => {
  const identity = generateIdentity();
  const plainText = await encodeIdentityFile({ identity });
  const sealedText = await encodeIdentityFile({ identity, passphrase: PASSPHRASE, logN: LOG_N });
  const plain = () => JSON.parse(plainText);
  const sealed = () => JSON.parse(sealedText);
  const path = "/some/identity";
  const corrupt = (text: string, message: RegExp, reason: IdentityFileErrorReason = "corrupt") => {
    assert.throws(() => decodeIdentityFile({ text, path }), (error: unknown) => {
      assert.ok(error instanceof IdentityFileError);
      assert.equal(error.reason, reason, `${error.message} for ${text.slice(0, 80)}`);
      assert.match(error.message, message);
      if (reason === "corrupt") {
        assert.ok(error.message.startsWith(`identity file ${path} is corrupt: `));
      }
      // Never echo key material.
      assert.ok(!error.message.includes(toBase64(identity.secretKey).slice(0, 12)), error.message);
      return true;
    });
  };
  const edited = (base: Json, edit: (file: Json) => void) => {
    edit(base);
    return JSON.stringify(base);
  };

  corrupt(plainText.slice(0, plainText.length / 2), /not valid JSON/);
  corrupt(sealedText.slice(0, -3), /not valid JSON/);
  corrupt("", /not valid JSON/);
  corrupt("{", /not valid JSON/);
  corrupt(`{"type": "securechat-identity", ${toBase64(identity.secretKey)}}`, /not valid JSON/);
  corrupt("[]", /not a JSON object/);
  corrupt("null", /not a JSON object/);
  corrupt('"securechat-identity"', /not a JSON object/);

  corrupt(edited(plain(), (f) => delete f.secretKey), /missing field "secretKey"/);
  corrupt(edited(plain(), (f) => delete f.encryption), /missing field "encryption"/);
  corrupt(edited(plain(), (f) => (f.comment = "hi")), /unknown field "comment"/);
  corrupt(edited(sealed(), (f) => delete f.encryption.nonce), /missing field "encryption.nonce"/);
  corrupt(edited(sealed(), (f) => (f.encryption.extra = 1)), /unknown field "encryption.extra"/);
  corrupt(edited(plain(), (f) => (f.type = "ssh-ed25519")), /"type" is not "securechat-identity"/);
  corrupt(
    edited(plain(), (f) => (f.version = 3)),
    /has version 3.*reads only versions 1 and 2; use a newer securechat/,
    "unsupported",
  );
  corrupt(edited(sealed(), (f) => delete f.encryption.check), /missing field "encryption.check"/);
  corrupt(
    edited(sealed(), (f) => (f.version = 1)),
    /unknown field "encryption.check"/,
  );
  corrupt(
    edited(sealed(), (f) => (f.encryption.check = f.encryption.check.slice(0, 8))),
    /"encryption.check" has 6 bytes, expected 16/,
  );
  corrupt(edited(plain(), (f) => (f.version = "1")), /"version" is not an integer/);
  corrupt(edited(plain(), (f) => (f.version = 1.5)), /"version" is not an integer/);

  corrupt(
    edited(plain(), (f) => (f.publicKey = f.publicKey.slice(0, -4))),
    /"publicKey" has 30 bytes, expected 32/,
  );
  corrupt(
    edited(plain(), (f) => (f.publicKey = "%%%%" + f.publicKey.slice(4))),
    /"publicKey" is not valid base64/,
  );
  corrupt(
    edited(plain(), (f) => (f.publicKey = f.publicKey.replace("=", ""))),
    /"publicKey" is not valid base64/,
  );
  corrupt(edited(plain(), (f) => (f.publicKey = 42)), /"publicKey" is not a string/);
  corrupt(
    edited(plain(), (f) => (f.publicKey = toBase64(new Uint8Array(32)))),
    /not an Ed25519 public key/,
  );
  // Non-canonical base64: a different last character decoding to the same bytes.
  const pk = plain().publicKey as string;
  const lastChar = pk[pk.length - 2];
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const sibling = alphabet[alphabet.indexOf(lastChar) ^ 1];
  corrupt(
    edited(plain(), (f) => (f.publicKey = pk.slice(0, -2) + sibling + "=")),
    /"publicKey" is not canonical base64/,
  );

  corrupt(
    edited(plain(), (f) => (f.secretKey = toBase64(new Uint8Array(48)))),
    /"secretKey" has 48 bytes, expected 32/,
  );
  corrupt(
    edited(sealed(), (f) => (f.secretKey = toBase64(identity.secretKey))),
    /"secretKey" has 32 bytes, expected 48/,
  );
  corrupt(edited(plain(), (f) => (f.secretKey = null)), /"secretKey" is not a string/);

  corrupt(
    edited(plain(), (f) => (f.encryption = "none")),
    /"encryption" is neither null nor an object/,
  );
  corrupt(
    edited(plain(), (f) => (f.encryption = [])),
    /"encryption" is neither null nor an object/,
  );
  corrupt(
    edited(sealed(), (f) => (f.encryption.kdf = "argon2id")),
    /"encryption.kdf" is not "scrypt"/,
  );
  corrupt(
    edited(sealed(), (f) => (f.encryption.cipher = "aes-256-gcm")),
    /"encryption.cipher" is not "xchacha20-poly1305"/,
  );
  for (const logN of [9, 21, 64, 1e9, -1, 0, 17.5, "17", null]) {
    corrupt(
      edited(sealed(), (f) => (f.encryption.logN = logN)),
      /"encryption.logN" is not an integer from 10 to 20/,
    );
  }
  corrupt(edited(sealed(), (f) => (f.encryption.r = 16)), /"encryption.r" is not 8/);
  corrupt(edited(sealed(), (f) => (f.encryption.p = 2)), /"encryption.p" is not 1/);
  corrupt(
    edited(sealed(), (f) => (f.encryption.salt = toBase64(new Uint8Array(8)))),
    /"encryption.salt" has 8 bytes, expected 16/,
  );
  corrupt(
    edited(sealed(), (f) => (f.encryption.nonce = toBase64(new Uint8Array(12)))),
    /"encryption.nonce" has 12 bytes, expected 24/,
  );

  // The good files decode.
  assert.equal(decodeIdentityFile({ text: plainText, path }).encryption, null);
  assert.equal(decodeIdentityFile({ text: sealedText, path }).encryption?.logN, LOG_N);
  // Formatting does not matter, only content.
  assert.ok(decodeIdentityFile({ text: JSON.stringify(sealed()), path }));
});

Deno.test("identity file: non-UTF-8 and oversized files", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "identity");
    await writeFile(path, concat(utf8('{"type":"'), new Uint8Array([0xff, 0xfe]), utf8('"}')), {
      mode: 0o600,
    });
    await rejectsWith(loadIdentity({ path, passphrase: never }), "corrupt", /corrupt: not UTF-8/);
    await writeFile(path, " ".repeat(65 * 1024), { mode: 0o600 });
    await rejectsWith(loadIdentity({ path, passphrase: never }), "corrupt", /too large/);
  });
});

Deno.test("public key file: format, parse, strictness", () => {
  const identity = generateIdentity();
  const line = formatPublicKeyFile(identity.publicKey);
  assert.equal(
    line,
    `securechat-ed25519 ${toBase64(identity.publicKey)} ${identity.fingerprint}\n`,
  );
  const path = "x.pub";
  assert.equal(toHex(parsePublicKeyFile({ text: line, path })), toHex(identity.publicKey));
  assert.equal(
    toHex(parsePublicKeyFile({ text: line.trimEnd(), path })),
    toHex(identity.publicKey),
  );
  assert.equal(
    toHex(parsePublicKeyFile({ text: line.trimEnd() + "\r\n", path })),
    toHex(identity.publicKey),
  );

  const other = generateIdentity();
  const bad: [string, RegExp][] = [
    [line.replace(identity.fingerprint, other.fingerprint), /fingerprint does not match/],
    [line.replace("securechat-ed25519", "ssh-ed25519"), /expected "securechat-ed25519/],
    [line + line, /exactly one line/],
    [line.replace(" ", "  "), /expected "securechat-ed25519/],
    [line.replace(identity.fingerprint, ""), /expected "securechat-ed25519|not a fingerprint/],
    [line.replace(identity.fingerprint, "zzzz"), /not a fingerprint/],
    [
      line.replace(toBase64(identity.publicKey), toBase64(identity.publicKey.subarray(1))),
      /has 31 bytes/,
    ],
    [line.replace(toBase64(identity.publicKey), "!!!!"), /not valid base64/],
    [
      `securechat-ed25519 ${toBase64(new Uint8Array(32))} ${fingerprint(new Uint8Array(32))}\n`,
      /not an Ed25519 public key/,
    ],
  ];
  for (const [text, message] of bad) {
    assert.throws(() => parsePublicKeyFile({ text, path }), (error: unknown) => {
      assert.ok(error instanceof IdentityFileError);
      assert.equal(error.reason, "corrupt");
      assert.match(error.message, /^public key file x\.pub is corrupt: /);
      assert.match(error.message, message);
      return true;
    }, text);
  }
});

Deno.test("readPublicKey: identity files (no passphrase) and .pub files", async () => {
  await withTempDir(async (dir) => {
    const identity = generateIdentity();
    const sealedPath = join(dir, "sealed");
    const plainPath = join(dir, "plain");
    const pubPath = join(dir, "sealed.pub");
    await saveIdentity({ path: sealedPath, identity, passphrase: PASSPHRASE, logN: LOG_N });
    await saveIdentity({ path: plainPath, identity });
    await savePublicKeyFile({ path: pubPath, publicKey: identity.publicKey });
    assert.equal((await stat(pubPath)).mode & 0o777, 0o644);
    await rejectsWith(
      savePublicKeyFile({ path: pubPath, publicKey: generateIdentity().publicKey }),
      "exists",
      /already exists/,
    );

    const sealed = await readPublicKey(sealedPath);
    assert.deepEqual(
      { ...sealed, publicKey: toHex(sealed.publicKey) },
      {
        publicKey: toHex(identity.publicKey),
        kind: "identity",
        encrypted: true,
        tooOpenMode: undefined,
      },
    );
    const plain = await readPublicKey(plainPath);
    assert.equal(plain.encrypted, false);
    assert.equal(toHex(plain.publicKey), toHex(identity.publicKey));
    const pub = await readPublicKey(pubPath);
    assert.equal(pub.kind, "public-key");
    assert.equal(toHex(pub.publicKey), toHex(identity.publicKey));

    await chmod(sealedPath, 0o644);
    assert.equal((await readPublicKey(sealedPath)).tooOpenMode, 0o644);
    await rejectsWith(readPublicKey(join(dir, "nothing")), "missing", /no such file/);
  });
});

Deno.test("identity file: the PROTOCOL.md example decrypts to RFC 8032 test key 1", async () => {
  const text = `{
  "type": "securechat-identity",
  "version": 1,
  "publicKey": "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
  "encryption": {
    "kdf": "scrypt",
    "logN": 17,
    "r": 8,
    "p": 1,
    "salt": "nnl0r/v8qAVhfjwMP8FqYQ==",
    "cipher": "xchacha20-poly1305",
    "nonce": "KQM70BgNmWO0jqM+B/MX05z/CUPBeqMC"
  },
  "secretKey": "wi6jd1EcxLtTE7p1Pq6qrhn8tyzV+5nz2RJMOASfN6aORckFW4k0f6I7xDfKw6Jj"
}
`;
  const contents = decodeIdentityFile({ text, path: "example" });
  const identity = await openIdentityFile({
    contents,
    path: "example",
    passphrase: give("example passphrase"),
  });
  assert.equal(toHex(identity.secretKey), toHex(RFC_SECRET));
  assert.equal(identity.fingerprint, "o6kv-tmqc-57x2-bb5p-pvis-jnua-liox-4yhb");
  assert.equal(
    new TextDecoder().decode(
      associatedData({
        publicKey: contents.publicKey,
        encryption: contents.encryption!,
        version: contents.version,
      }),
    ),
    '["securechat-identity",1,"11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=","scrypt",17,8,1,' +
      '"nnl0r/v8qAVhfjwMP8FqYQ==","xchacha20-poly1305"]',
  );
});

const PROTOCOL_V2_EXAMPLE = `{
  "type": "securechat-identity",
  "version": 2,
  "publicKey": "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
  "encryption": {
    "kdf": "scrypt",
    "logN": 17,
    "r": 8,
    "p": 1,
    "salt": "Yk3X0gqY1yM7bQ8pV2cN4w==",
    "cipher": "xchacha20-poly1305",
    "nonce": "5Jd0oK1qFzX2mR8vT4cW7yB9nE3sL6hU",
    "check": "6OHX3WzCu433s8gehi2bbg=="
  },
  "secretKey": "kqLp/eh+rnhOjsh46G5hF7/MFXcODAFmY/CpQY0YkzpmMUxVyuZ7gm24HzmKf6DP"
}
`;

Deno.test("identity file: the PROTOCOL.md version 2 example decrypts, and its check tells a wrong passphrase from an edit", async () => {
  const protocol = await readFile(new URL("../PROTOCOL.md", import.meta.url), "utf8");
  assert.ok(protocol.includes(PROTOCOL_V2_EXAMPLE.trimEnd()), "PROTOCOL.md shows this example");
  const contents = decodeIdentityFile({ text: PROTOCOL_V2_EXAMPLE, path: "example" });
  assert.equal(contents.version, 2);
  const identity = await openIdentityFile({
    contents,
    path: "example",
    passphrase: give("example passphrase"),
  });
  assert.equal(toHex(identity.secretKey), toHex(RFC_SECRET));
  const edited = { ...contents, secretKey: contents.secretKey.slice() };
  edited.secretKey[3] ^= 0x40;
  await rejectsWith(
    openIdentityFile({ contents: edited, path: "example", passphrase: give("example passphrase") }),
    "corrupt",
    /was modified or is corrupt/,
  );
  await rejectsWith(
    openIdentityFile({ contents: edited, path: "example", passphrase: give("another") }),
    "passphrase",
    /wrong passphrase/,
  );
});

Deno.test("identity file keys: scrypt's first 32 of 64 bytes are the version 1 key; the check matches noble", async () => {
  const salt = fromHex("000102030405060708090a0b0c0d0e0f");
  for (const passphrase of [PASSPHRASE, "ünï ✓ 😀"]) {
    const { sealingKey, checkKey } = await deriveFileKeys({ passphrase, salt, logN: LOG_N });
    const okm = nobleScrypt(utf8(passphrase.normalize("NFC")), salt, {
      N: 2 ** LOG_N,
      r: 8,
      p: 1,
      dkLen: 64,
    });
    assert.equal(toHex(sealingKey), toHex(okm.subarray(0, 32)));
    assert.equal(
      toHex(sealingKey),
      toHex(await deriveSealingKey({ passphrase, salt, logN: LOG_N })),
    );
    assert.equal(
      toHex(passphraseCheck(checkKey)),
      toHex(
        hmac(sha256, okm.subarray(32), utf8("securechat identity passphrase check")).slice(0, 16),
      ),
    );
  }
});
