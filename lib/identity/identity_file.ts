/**
 * Identity files (the secret key on disk, optionally passphrase-protected)
 * and public-key files (`<identity>.pub`, safe to share).
 *
 * An identity file is one UTF-8 JSON object:
 *
 * ```json
 * {
 *   "type": "securechat-identity",
 *   "version": 2,
 *   "publicKey": "<base64, 32 bytes>",
 *   "encryption": null,
 *   "secretKey": "<base64, the 32-byte Ed25519 seed>"
 * }
 * ```
 *
 * or, protected by a passphrase:
 *
 * ```json
 * {
 *   "type": "securechat-identity",
 *   "version": 2,
 *   "publicKey": "<base64, 32 bytes>",
 *   "encryption": {
 *     "kdf": "scrypt", "logN": 17, "r": 8, "p": 1, "salt": "<base64, 16 bytes>",
 *     "cipher": "xchacha20-poly1305", "nonce": "<base64, 24 bytes>",
 *     "check": "<base64, 16 bytes>"
 *   },
 *   "secretKey": "<base64, 48 bytes: the seed sealed with XChaCha20-Poly1305>"
 * }
 * ```
 *
 * scrypt(utf8(NFC(passphrase)), salt, N = 2^logN, r, p) gives 64 bytes: the
 * first 32 are the sealing key (the same 32 bytes that version 1 files, which
 * asked scrypt for 32, use), the last 32 key the passphrase `check`
 * ({@linkcode passphraseCheck}), which tells a wrong passphrase from a file
 * that was modified. The associated data ({@linkcode associatedData}) binds
 * the type, version, public key and every KDF parameter, so none can be
 * altered without the AEAD failing; after decryption the seed must also
 * derive `publicKey`. Version 1 files (no `check`) are still read.
 * Reading is strict: unknown or missing fields, bad base64, wrong lengths and
 * out-of-range parameters are all refused with an {@linkcode IdentityFileError}.
 *
 * @module
 */

import { open } from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import { dirname } from "node:path";
import process from "node:process";
import type * as NodeCrypto from "node:crypto";
import { xchacha20poly1305 } from "@noble/ciphers/chacha.js";
import { scryptAsync } from "@noble/hashes/scrypt.js";
import { randomBytes } from "@noble/ciphers/utils.js";
import { hmac } from "@noble/hashes/hmac.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { constantTimeEqual, fromBase64, fromUtf8, toBase64, utf8 } from "../core/bytes.ts";
import { errorCode, writeFileAtomic } from "../core/atomic_file.ts";
import { nodeBuiltin } from "../core/runtime.ts";
import { DirectoryError, ensureDirectory, fsErrorText } from "../core/directory.ts";
import { fingerprint, parseFingerprint, PUBLIC_KEY_LENGTH } from "./fingerprint.ts";
import {
  type Identity,
  identityFromSecretKey,
  isValidPublicKey,
  SECRET_KEY_LENGTH,
} from "./identity.ts";

/** The `type` field of every identity file. */
export const IDENTITY_FILE_TYPE = "securechat-identity";
/** The identity file version this code writes. */
export const IDENTITY_FILE_VERSION = 2;
/** Every version this code reads: 1 (no passphrase check) and 2. */
const READABLE_VERSIONS: readonly number[] = [1, 2];
/** The first word of a public-key file line. */
export const PUBLIC_KEY_FILE_TAG = "securechat-ed25519";

/**
 * scrypt cost used for new files: N = 2^17, r = 8 (128 MiB of memory).
 * Measured with `node:crypto` on a 2-core AMD EPYC VM: about 0.45 s under
 * Deno 2.9 and 0.4-0.55 s under Node 20 (2^16: 0.23 s; 2^18: 0.9-1.1 s).
 */
export const DEFAULT_SCRYPT_LOG_N = 17;
/** Lowest scrypt cost accepted when reading a file (tests write these to stay fast). */
export const MIN_SCRYPT_LOG_N = 10;
/** Highest scrypt cost accepted: 2^20 needs 1 GiB; more would let a crafted file exhaust memory. */
export const MAX_SCRYPT_LOG_N = 20;

const SCRYPT_R = 8;
const SCRYPT_P = 1;
const SALT_LENGTH = 16;
const NONCE_LENGTH = 24;
const TAG_LENGTH = 16;
const CHECK_LENGTH = 16;
const CHECK_CONTEXT = utf8("securechat identity passphrase check");
/** Identity and public-key files are tiny; refusing big ones bounds memory and parse time. */
const MAX_FILE_SIZE = 64 * 1024;
const TOP_FIELDS = ["type", "version", "publicKey", "encryption", "secretKey"];
const ENCRYPTION_FIELDS_V1 = ["kdf", "logN", "r", "p", "salt", "cipher", "nonce"];
const ENCRYPTION_FIELDS_V2 = [...ENCRYPTION_FIELDS_V1, "check"];

/** Why an identity or public-key file could not be used. */
export type IdentityFileErrorReason =
  | "missing"
  | "permissions"
  | "corrupt"
  | "unsupported"
  | "passphrase"
  | "exists"
  | "io";

/**
 * An identity or public-key file is missing, too open, corrupt, of an
 * unsupported version, or the passphrase is wrong. The message is one line
 * that names the file and says what to do; it never contains key material.
 *
 * @example
 * ```ts
 * try {
 *   await loadIdentity({ path, passphrase: ask });
 * } catch (error) {
 *   if (error instanceof IdentityFileError && error.reason === "passphrase") retry();
 * }
 * ```
 */
export class IdentityFileError extends Error {
  /** The file concerned. */
  readonly path: string;
  /** What went wrong, for callers that react differently. */
  readonly reason: IdentityFileErrorReason;

  /**
   * @example
   * ```ts
   * new IdentityFileError({ path, reason: "missing", message: `no identity at ${path}` });
   * ```
   */
  constructor(
    { path, reason, message }: { path: string; reason: IdentityFileErrorReason; message: string },
  ) {
    super(message);
    this.name = "IdentityFileError";
    this.path = path;
    this.reason = reason;
  }
}

/** The scrypt and AEAD parameters of an encrypted identity file. */
export interface IdentityEncryption {
  kdf: "scrypt";
  logN: number;
  r: number;
  p: number;
  salt: Uint8Array;
  cipher: "xchacha20-poly1305";
  nonce: Uint8Array;
  /** Version 2: the passphrase check ({@linkcode passphraseCheck}); absent in version 1. */
  check?: Uint8Array;
}

/** A decoded identity file whose secret key may still be sealed. */
export interface IdentityFileContents {
  /** The file's format version, 1 or 2. */
  version: number;
  publicKey: Uint8Array;
  /** `null` when the secret key is stored in the clear. */
  encryption: IdentityEncryption | null;
  /** The seed (32 bytes) or its AEAD ciphertext (48 bytes). */
  secretKey: Uint8Array;
}

/** The runtime's native scrypt; undefined in a browser. */
const nativeScrypt = nodeBuiltin<typeof NodeCrypto>("node:crypto")?.scrypt;

/**
 * Derives the 32-byte sealing key from a passphrase with scrypt (r = 8,
 * p = 1). Uses `node:crypto`, which runs off the main thread and is several
 * times faster than a JavaScript scrypt; the result equals
 * `@noble/hashes/scrypt.js` (a test checks this), which a browser uses (it
 * yields to the page while it works; WebCrypto has no scrypt).
 *
 * @example
 * ```ts
 * const key = await deriveSealingKey({ passphrase: "correct horse", salt, logN: 17 });
 * ```
 */
export async function deriveSealingKey(
  { passphrase, salt, logN }: { passphrase: string; salt: Uint8Array; logN: number },
): Promise<Uint8Array> {
  return await scryptBytes({ passphrase, salt, logN, length: 32 });
}

/**
 * The sealing key and the passphrase-check key in one scrypt run: 64 bytes,
 * the first 32 equal to {@linkcode deriveSealingKey}'s (scrypt ends in
 * PBKDF2, whose output blocks do not depend on the length asked for).
 *
 * @example
 * ```ts
 * const { sealingKey, checkKey } = await deriveFileKeys({ passphrase, salt, logN: 17 });
 * ```
 */
export async function deriveFileKeys(
  { passphrase, salt, logN }: { passphrase: string; salt: Uint8Array; logN: number },
): Promise<{ sealingKey: Uint8Array; checkKey: Uint8Array }> {
  const bytes = await scryptBytes({ passphrase, salt, logN, length: 64 });
  return { sealingKey: bytes.slice(0, 32), checkKey: bytes.slice(32) };
}

/**
 * The 16-byte passphrase check of a version 2 file:
 * `HMAC-SHA256(checkKey, "securechat identity passphrase check")[0..16)`.
 * It depends only on the passphrase, salt and cost, so it shows whether
 * the passphrase is right even when the sealed key or public key was
 * changed. It costs a guesser one scrypt per guess, as the AEAD does.
 *
 * @example
 * ```ts
 * const check = passphraseCheck(checkKey);
 * ```
 */
export function passphraseCheck(checkKey: Uint8Array): Uint8Array {
  return hmac(sha256, checkKey, CHECK_CONTEXT).slice(0, CHECK_LENGTH);
}

function scryptBytes(
  { passphrase, salt, logN, length }: {
    passphrase: string;
    salt: Uint8Array;
    logN: number;
    length: number;
  },
): Promise<Uint8Array> {
  const N = 2 ** logN;
  const password = utf8(passphrase.normalize("NFC"));
  if (nativeScrypt === undefined) {
    return scryptAsync(password, salt, { N, r: SCRYPT_R, p: SCRYPT_P, dkLen: length })
      .finally(() => password.fill(0));
  }
  return new Promise((resolve, reject) => {
    nativeScrypt(
      password,
      salt,
      length,
      { N, r: SCRYPT_R, p: SCRYPT_P, maxmem: 256 * N * SCRYPT_R },
      (error, key) => {
        password.fill(0);
        if (error) reject(error);
        else resolve(new Uint8Array(key.buffer, key.byteOffset, key.byteLength));
      },
    );
  });
}

/**
 * The AEAD associated data of an encrypted identity file: the UTF-8 bytes of
 * the JSON array `["securechat-identity",<version>,"<publicKey b64>","scrypt",<logN>,8,1,"<salt b64>","xchacha20-poly1305"]`
 * with no whitespace.
 *
 * @example
 * ```ts
 * const ad = associatedData({ publicKey, encryption, version: 2 });
 * ```
 */
export function associatedData(
  { publicKey, encryption, version = IDENTITY_FILE_VERSION }: {
    publicKey: Uint8Array;
    encryption: IdentityEncryption;
    version?: number;
  },
): Uint8Array {
  return utf8(JSON.stringify([
    IDENTITY_FILE_TYPE,
    version,
    toBase64(publicKey),
    encryption.kdf,
    encryption.logN,
    encryption.r,
    encryption.p,
    toBase64(encryption.salt),
    encryption.cipher,
  ]));
}

/**
 * Serialises an identity as identity-file text, sealing the secret key if a
 * passphrase is given. `logN` overrides the scrypt cost (tests use 10).
 *
 * @example
 * ```ts
 * const text = await encodeIdentityFile({ identity, passphrase: "correct horse battery" });
 * ```
 */
export async function encodeIdentityFile(
  { identity, passphrase = null, logN = DEFAULT_SCRYPT_LOG_N }: {
    identity: Identity;
    passphrase?: string | null;
    logN?: number;
  },
): Promise<string> {
  let encryption: Record<string, unknown> | null = null;
  let secretKey: Uint8Array = identity.secretKey;
  if (passphrase !== null) {
    if (passphrase === "") throw new RangeError("an empty passphrase protects nothing; use null");
    if (!Number.isInteger(logN) || logN < MIN_SCRYPT_LOG_N || logN > MAX_SCRYPT_LOG_N) {
      throw new RangeError(
        `logN must be an integer from ${MIN_SCRYPT_LOG_N} to ${MAX_SCRYPT_LOG_N}`,
      );
    }
    const parameters: IdentityEncryption = {
      kdf: "scrypt",
      logN,
      r: SCRYPT_R,
      p: SCRYPT_P,
      salt: randomBytes(SALT_LENGTH),
      cipher: "xchacha20-poly1305",
      nonce: randomBytes(NONCE_LENGTH),
    };
    const { sealingKey, checkKey } = await deriveFileKeys({
      passphrase,
      salt: parameters.salt,
      logN,
    });
    const ad = associatedData({ publicKey: identity.publicKey, encryption: parameters });
    secretKey = xchacha20poly1305(sealingKey, parameters.nonce, ad).encrypt(identity.secretKey);
    const check = passphraseCheck(checkKey);
    sealingKey.fill(0);
    checkKey.fill(0);
    encryption = {
      ...parameters,
      salt: toBase64(parameters.salt),
      nonce: toBase64(parameters.nonce),
      check: toBase64(check),
    };
  }
  const file = {
    type: IDENTITY_FILE_TYPE,
    version: IDENTITY_FILE_VERSION,
    publicKey: toBase64(identity.publicKey),
    encryption,
    secretKey: toBase64(secretKey),
  };
  return JSON.stringify(file, null, 2) + "\n";
}

/**
 * Parses identity-file text strictly, without decrypting. `path` only
 * names the file in error messages.
 *
 * @example
 * ```ts
 * const { publicKey, encryption } = decodeIdentityFile({ text, path: "identity" });
 * ```
 */
export function decodeIdentityFile(
  { text, path }: { text: string; path: string },
): IdentityFileContents {
  const corrupt = (detail: string) =>
    new IdentityFileError({
      path,
      reason: "corrupt",
      message: `identity file ${path} is corrupt: ${detail}`,
    });
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    // The parser's message quotes the file, which may hold a secret key: leave it out.
    throw corrupt("not valid JSON (truncated or edited?)");
  }
  if (!isPlainObject(value)) throw corrupt("not a JSON object");
  checkFields(value, TOP_FIELDS, "", corrupt);
  if (value.type !== IDENTITY_FILE_TYPE) {
    throw corrupt(`"type" is not "${IDENTITY_FILE_TYPE}"`);
  }
  const version = value.version;
  if (typeof version !== "number" || !READABLE_VERSIONS.includes(version)) {
    if (Number.isInteger(version)) {
      throw new IdentityFileError({
        path,
        reason: "unsupported",
        message: `identity file ${path} has version ${version}, but this securechat reads ` +
          `only versions ${READABLE_VERSIONS.join(" and ")}; use a newer securechat`,
      });
    }
    throw corrupt(`"version" is not an integer`);
  }
  const publicKey = base64Field(value.publicKey, "publicKey", PUBLIC_KEY_LENGTH, corrupt);
  if (!isValidPublicKey(publicKey)) throw corrupt(`"publicKey" is not an Ed25519 public key`);

  let encryption: IdentityEncryption | null = null;
  if (value.encryption !== null) {
    const e = value.encryption;
    if (!isPlainObject(e)) throw corrupt(`"encryption" is neither null nor an object`);
    checkFields(
      e,
      version === 1 ? ENCRYPTION_FIELDS_V1 : ENCRYPTION_FIELDS_V2,
      "encryption.",
      corrupt,
    );
    if (e.kdf !== "scrypt") throw corrupt(`"encryption.kdf" is not "scrypt"`);
    if (
      typeof e.logN !== "number" || !Number.isInteger(e.logN) || e.logN < MIN_SCRYPT_LOG_N ||
      e.logN > MAX_SCRYPT_LOG_N
    ) {
      throw corrupt(
        `"encryption.logN" is not an integer from ${MIN_SCRYPT_LOG_N} to ${MAX_SCRYPT_LOG_N}`,
      );
    }
    if (e.r !== SCRYPT_R) throw corrupt(`"encryption.r" is not ${SCRYPT_R}`);
    if (e.p !== SCRYPT_P) throw corrupt(`"encryption.p" is not ${SCRYPT_P}`);
    if (e.cipher !== "xchacha20-poly1305") {
      throw corrupt(`"encryption.cipher" is not "xchacha20-poly1305"`);
    }
    encryption = {
      kdf: "scrypt",
      logN: e.logN,
      r: SCRYPT_R,
      p: SCRYPT_P,
      salt: base64Field(e.salt, "encryption.salt", SALT_LENGTH, corrupt),
      cipher: "xchacha20-poly1305",
      nonce: base64Field(e.nonce, "encryption.nonce", NONCE_LENGTH, corrupt),
    };
    if (version !== 1) {
      encryption.check = base64Field(e.check, "encryption.check", CHECK_LENGTH, corrupt);
    }
  }
  const secretLength = encryption === null ? SECRET_KEY_LENGTH : SECRET_KEY_LENGTH + TAG_LENGTH;
  const secretKey = base64Field(value.secretKey, "secretKey", secretLength, corrupt);
  return { version, publicKey, encryption, secretKey };
}

/**
 * Recovers the identity from decoded file contents, asking for the
 * passphrase only if the secret key is sealed. Checks that the seed derives
 * the stated public key.
 *
 * @example
 * ```ts
 * const identity = await openIdentityFile({ contents, path, passphrase: async () => "pw" });
 * ```
 */
export async function openIdentityFile(
  { contents, path, passphrase }: {
    contents: IdentityFileContents;
    path: string;
    passphrase: () => Promise<string>;
  },
): Promise<Identity> {
  const { publicKey, encryption, version } = contents;
  const wrongPassphrase = () =>
    new IdentityFileError({
      path,
      reason: "passphrase",
      message: `wrong passphrase for identity file ${path}`,
    });
  const modified = (detail: string) =>
    new IdentityFileError({
      path,
      reason: "corrupt",
      message: `identity file ${path} was modified or is corrupt: ${detail}; restore it from a ` +
        "backup (or create a new identity with `securechat keygen --force`)",
    });
  let seed = contents.secretKey;
  let opened: Uint8Array | undefined;
  if (encryption !== null) {
    const { sealingKey, checkKey } = await deriveFileKeys({
      passphrase: await passphrase(),
      salt: encryption.salt,
      logN: encryption.logN,
    });
    try {
      const check = passphraseCheck(checkKey);
      if (encryption.check !== undefined && !constantTimeEqual(check, encryption.check)) {
        throw wrongPassphrase();
      }
      const ad = associatedData({ publicKey, encryption, version });
      try {
        opened = xchacha20poly1305(sealingKey, encryption.nonce, ad).decrypt(contents.secretKey);
      } catch {
        // With a check the passphrase is known to be right: the sealed part was changed.
        throw encryption.check === undefined ? wrongPassphrase() : modified(
          "the passphrase is right, but the sealed secret key does not open (its public key, " +
            "nonce or sealed key was changed)",
        );
      }
    } finally {
      sealingKey.fill(0);
      checkKey.fill(0);
    }
    seed = opened;
  }
  const identity = identityFromSecretKey(seed);
  opened?.fill(0);
  if (!constantTimeEqual(identity.publicKey, publicKey)) {
    throw modified(`its secret key does not belong to its "publicKey"`);
  }
  return identity;
}

/**
 * Loads an identity. Refuses, like SSH, a file that group or others may read
 * or write, and calls `passphrase` only if the file is encrypted.
 *
 * @example
 * ```ts
 * const identity = await loadIdentity({ path, passphrase: () => readPassphrase({ prompt: "Passphrase: " }) });
 * ```
 */
export async function loadIdentity(
  { path, passphrase }: { path: string; passphrase: () => Promise<string> },
): Promise<Identity> {
  const { text, mode } = await readSmallFile(path, "identity");
  if (process.platform !== "win32" && (mode & 0o077) !== 0) {
    const octal = (mode & 0o777).toString(8).padStart(4, "0");
    throw new IdentityFileError({
      path,
      reason: "permissions",
      message: `permissions ${octal} for ${path} are too open; run chmod 600 ${path}`,
    });
  }
  const contents = decodeIdentityFile({ text, path });
  return await openIdentityFile({ contents, path, passphrase });
}

/**
 * Writes an identity file with mode 0600, atomically, creating the parent
 * directory with mode 0700 if needed. Never replaces an existing file unless
 * `force` is true. `passphrase` null or absent stores the key unencrypted.
 *
 * @example
 * ```ts
 * await saveIdentity({ path, identity: generateIdentity(), passphrase: "correct horse battery" });
 * ```
 */
export async function saveIdentity(
  { path, identity, passphrase = null, force = false, logN }: {
    path: string;
    identity: Identity;
    passphrase?: string | null;
    force?: boolean;
    /** scrypt cost; defaults to {@linkcode DEFAULT_SCRYPT_LOG_N}. */
    logN?: number;
  },
): Promise<void> {
  const text = await encodeIdentityFile({ identity, passphrase, logN });
  await writeKeyFile({ path, text, mode: 0o600, force, what: "identity file" });
}

/**
 * Formats the one-line public-key file:
 * `securechat-ed25519 <base64 public key> <fingerprint>\n`.
 *
 * @example
 * ```ts
 * formatPublicKeyFile(identity.publicKey); // "securechat-ed25519 3q2+7w...= k3b7-...\n"
 * ```
 */
export function formatPublicKeyFile(publicKey: Uint8Array): string {
  return `${PUBLIC_KEY_FILE_TAG} ${toBase64(publicKey)} ${fingerprint(publicKey)}\n`;
}

/**
 * Parses a public-key file strictly; the fingerprint in it must match the key.
 * A missing final newline or a CRLF ending (from copy and paste) is accepted.
 *
 * @example
 * ```ts
 * const publicKey = parsePublicKeyFile({ text, path: "alice.pub" });
 * ```
 */
export function parsePublicKeyFile({ text, path }: { text: string; path: string }): Uint8Array {
  const corrupt = (detail: string) =>
    new IdentityFileError({
      path,
      reason: "corrupt",
      message: `public key file ${path} is corrupt: ${detail}`,
    });
  const line = text.replace(/\r?\n$/, "");
  if (/[\r\n]/.test(line)) throw corrupt("expected exactly one line");
  const parts = line.split(" ");
  if (parts.length !== 3 || parts[0] !== PUBLIC_KEY_FILE_TAG) {
    throw corrupt(`expected "${PUBLIC_KEY_FILE_TAG} <base64 public key> <fingerprint>"`);
  }
  const publicKey = base64Field(parts[1], "public key", PUBLIC_KEY_LENGTH, corrupt);
  if (!isValidPublicKey(publicKey)) throw corrupt("the public key is not an Ed25519 public key");
  let stated: string;
  try {
    stated = parseFingerprint(parts[2]);
  } catch (error) {
    throw corrupt((error as Error).message);
  }
  if (stated !== fingerprint(publicKey)) {
    throw corrupt("the fingerprint does not match the public key");
  }
  return publicKey;
}

/**
 * Writes a public-key file (mode 0644, atomically). Never replaces an
 * existing file unless `force` is true.
 *
 * @example
 * ```ts
 * await savePublicKeyFile({ path: `${path}.pub`, publicKey: identity.publicKey, force: true });
 * ```
 */
export async function savePublicKeyFile(
  { path, publicKey, force = false }: { path: string; publicKey: Uint8Array; force?: boolean },
): Promise<void> {
  const text = formatPublicKeyFile(publicKey);
  await writeKeyFile({ path, text, mode: 0o644, force, what: "public key file" });
}

/** What {@linkcode readPublicKey} found. */
export interface PublicKeyInfo {
  publicKey: Uint8Array;
  /** Which kind of file held it. */
  kind: "identity" | "public-key";
  /** For an identity file: whether its secret key is sealed with a passphrase. */
  encrypted: boolean;
  /** For an identity file that group or others may access: its permission bits (else undefined). */
  tooOpenMode?: number;
}

/**
 * Reads the public key from an identity file (encrypted or not; no
 * passphrase needed, the public key is stored in the clear) or from a
 * public-key file. It does not refuse a too-open identity file, since only
 * the public part is used, but reports it in `tooOpenMode` so the caller
 * can warn.
 *
 * @example
 * ```ts
 * const { publicKey } = await readPublicKey("/home/me/.config/securechat/identity");
 * ```
 */
export async function readPublicKey(path: string): Promise<PublicKeyInfo> {
  const { text, mode } = await readSmallFile(path, "key");
  if (text.startsWith(`${PUBLIC_KEY_FILE_TAG} `)) {
    return { publicKey: parsePublicKeyFile({ text, path }), kind: "public-key", encrypted: false };
  }
  const contents = decodeIdentityFile({ text, path });
  if (contents.encryption === null) {
    // Cheap, and catches a hand-edited publicKey that would give a wrong fingerprint.
    await openIdentityFile({ contents, path, passphrase: () => Promise.resolve("") });
  }
  const tooOpen = process.platform !== "win32" && (mode & 0o077) !== 0;
  return {
    publicKey: contents.publicKey,
    kind: "identity",
    encrypted: contents.encryption !== null,
    tooOpenMode: tooOpen ? mode & 0o777 : undefined,
  };
}

async function writeKeyFile(
  { path, text, mode, force, what }: {
    path: string;
    text: string;
    mode: number;
    force: boolean;
    what: string;
  },
): Promise<void> {
  try {
    await ensureDirectory(dirname(path), 0o700);
    await writeFileAtomic(path, text, { mode, overwrite: force });
  } catch (error) {
    if (error instanceof DirectoryError) {
      throw new IdentityFileError({
        path,
        reason: "io",
        message: `cannot write ${what} ${path}: ${error.message}`,
      });
    }
    if (errorCode(error) === "EEXIST") {
      throw new IdentityFileError({
        path,
        reason: "exists",
        message: `${what} ${path} already exists`,
      });
    }
    throw new IdentityFileError({
      path,
      reason: "io",
      message: `cannot write ${what} ${path}: ${fsErrorText(error)}`,
    });
  }
}

async function readSmallFile(
  path: string,
  what: "identity" | "key",
): Promise<{ text: string; mode: number }> {
  let handle: FileHandle | undefined;
  try {
    try {
      handle = await open(path, "r");
    } catch (error) {
      if (errorCode(error) === "ENOENT") {
        throw new IdentityFileError({
          path,
          reason: "missing",
          message: what === "identity"
            ? `no identity at ${path}; run \`securechat keygen\``
            : `no such file: ${path}`,
        });
      }
      throw error;
    }
    const stat = await handle.stat();
    if (!stat.isFile()) {
      throw new IdentityFileError({ path, reason: "io", message: `${path} is not a regular file` });
    }
    if (stat.size > MAX_FILE_SIZE) {
      throw new IdentityFileError({
        path,
        reason: "corrupt",
        message: `${path} is ${stat.size} bytes, too large for an identity or public key file`,
      });
    }
    const bytes = new Uint8Array(await handle.readFile());
    let text: string;
    try {
      text = fromUtf8(bytes);
    } catch {
      throw new IdentityFileError({
        path,
        reason: "corrupt",
        message: `${
          what === "identity" ? "identity file" : "file"
        } ${path} is corrupt: not UTF-8 text`,
      });
    }
    return { text, mode: stat.mode };
  } catch (error) {
    if (error instanceof IdentityFileError) throw error;
    throw new IdentityFileError({
      path,
      reason: "io",
      message: `cannot read ${path}: ${fsErrorText(error)}`,
    });
  } finally {
    await handle?.close().catch(() => {});
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function checkFields(
  object: Record<string, unknown>,
  expected: string[],
  prefix: string,
  corrupt: (detail: string) => Error,
): void {
  for (const name of expected) {
    if (!Object.hasOwn(object, name)) throw corrupt(`missing field "${prefix}${name}"`);
  }
  for (const name of Object.keys(object)) {
    if (!expected.includes(name)) throw corrupt(`unknown field "${prefix}${name.slice(0, 40)}"`);
  }
}

function base64Field(
  value: unknown,
  name: string,
  length: number,
  corrupt: (detail: string) => Error,
): Uint8Array {
  if (typeof value !== "string") throw corrupt(`"${name}" is not a string`);
  let bytes: Uint8Array;
  try {
    bytes = fromBase64(value);
  } catch {
    throw corrupt(`"${name}" is not valid base64`);
  }
  // fromBase64 ignores the unused low bits of the last character; only the canonical spelling is accepted.
  if (toBase64(bytes) !== value) throw corrupt(`"${name}" is not canonical base64`);
  if (bytes.length !== length) {
    throw corrupt(`"${name}" has ${bytes.length} bytes, expected ${length}`);
  }
  return bytes;
}
