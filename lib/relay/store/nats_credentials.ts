/**
 * Credentials for the NATS servers behind the JetStream store, by the usual
 * NATS means (user and password, a token, an nkey seed, or a `.creds` file
 * holding a user JWT and its seed), read from a file or the environment and
 * never from the command line, where every user of the machine could read
 * them in the process list.
 *
 * Environment: `SECURECHAT_NATS_CREDENTIALS` names a credentials file;
 * otherwise `SECURECHAT_NATS_USER` with `SECURECHAT_NATS_PASSWORD`, or
 * `SECURECHAT_NATS_TOKEN`. A credentials file is one of: a NATS `.creds`
 * file, an nkey user seed (`SU...`), or `key = value` lines with `user` and
 * `password`, or `token`. It must not be readable by other users.
 *
 * @module
 */

import { readFileSync, statSync } from "node:fs";
import process from "node:process";
import { StoreError } from "./relay_store.ts";

/** How the store proves itself to NATS. */
export type NatsCredentials =
  | { kind: "none" }
  | { kind: "user"; user: string; password: string }
  | { kind: "token"; token: string }
  | { kind: "nkey"; seed: Uint8Array }
  | { kind: "creds"; creds: Uint8Array };

/** Environment variables read by {@linkcode natsCredentialsFromEnvironment}. */
export const NATS_ENVIRONMENT = {
  file: "SECURECHAT_NATS_CREDENTIALS",
  user: "SECURECHAT_NATS_USER",
  password: "SECURECHAT_NATS_PASSWORD",
  token: "SECURECHAT_NATS_TOKEN",
} as const;

/**
 * Reads a credentials file (see the module comment). Throws a
 * {@linkcode StoreError} naming the file, never quoting its contents.
 *
 * @example
 * ```ts
 * const credentials = readNatsCredentialsFile("/etc/securechat/nats.creds");
 * ```
 */
export function readNatsCredentialsFile(path: string): NatsCredentials {
  let bytes: Uint8Array;
  try {
    const stats = statSync(path);
    if (process.platform !== "win32" && (stats.mode & 0o077) !== 0) {
      throw new StoreError(
        `NATS credentials file ${path} is readable by other users; run chmod 600 ${path}`,
      );
    }
    bytes = readFileSync(path);
  } catch (error) {
    if (error instanceof StoreError) throw error;
    const code = (error as { code?: string }).code ?? "unreadable";
    throw new StoreError(`cannot read NATS credentials file ${path} (${code})`);
  }
  const text = new TextDecoder().decode(bytes);
  if (text.includes("-----BEGIN NATS USER JWT-----")) return { kind: "creds", creds: bytes };
  const trimmed = text.trim();
  if (/^SU[A-Z2-7]{50,}$/.test(trimmed)) {
    return { kind: "nkey", seed: new TextEncoder().encode(trimmed) };
  }
  const fields = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const match = /^\s*([a-z]+)\s*[=:]\s*(.*?)\s*$/.exec(line);
    if (match !== null) fields.set(match[1], match[2]);
  }
  const user = fields.get("user");
  const password = fields.get("password");
  const token = fields.get("token");
  if (user !== undefined && password !== undefined && user !== "") {
    return { kind: "user", user, password };
  }
  if (token !== undefined && token !== "") return { kind: "token", token };
  throw new StoreError(
    `NATS credentials file ${path} holds no credentials: expected a .creds file, an nkey seed, ` +
      "user and password lines, or a token line",
  );
}

/**
 * Credentials from the environment (see the module comment); `none` when no
 * variable is set.
 *
 * @example
 * ```ts
 * const credentials = natsCredentialsFromEnvironment(process.env);
 * ```
 */
export function natsCredentialsFromEnvironment(
  env: Record<string, string | undefined>,
): NatsCredentials {
  const file = env[NATS_ENVIRONMENT.file];
  if (file !== undefined && file !== "") return readNatsCredentialsFile(file);
  const user = env[NATS_ENVIRONMENT.user];
  const password = env[NATS_ENVIRONMENT.password];
  if (user !== undefined && user !== "") {
    if (password === undefined) {
      throw new StoreError(
        `${NATS_ENVIRONMENT.user} is set without ${NATS_ENVIRONMENT.password}; set both`,
      );
    }
    return { kind: "user", user, password };
  }
  const token = env[NATS_ENVIRONMENT.token];
  if (token !== undefined && token !== "") return { kind: "token", token };
  return { kind: "none" };
}
