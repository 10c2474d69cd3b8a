/**
 * Crash-safe file replacement: a reader, or the file after a crash or
 * `kill -9`, sees either the old content or the new content, never a mix.
 *
 * The data goes to a temporary file in the same directory (so the final
 * rename stays on one file system), which is flushed to disk and given its
 * final mode before it is renamed over the target. The directory is flushed
 * too, so the rename itself survives a power cut. A process killed mid-write
 * can leave a stray `.<name>.tmp-<hex>` file behind; it is never read.
 *
 * @module
 */

import { link, lstat, open, rename, unlink } from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { randomBytes } from "@noble/ciphers/utils.js";
import { toHex, utf8 } from "./bytes.ts";

/** Options for {@linkcode writeFileAtomic}. */
export interface WriteFileAtomicOptions {
  /** Permission bits of the written file. Default `0o600`. */
  mode?: number;
  /**
   * Replace an existing file (default true). When false the write fails with
   * an error whose `code` is `"EEXIST"` if `path` exists, and the check and
   * the creation are one atomic step where the file system supports hard links.
   */
  overwrite?: boolean;
}

/** File-system error codes meaning "this file system has no hard links". */
const NO_LINK_CODES = new Set(["EPERM", "ENOTSUP", "EOPNOTSUPP", "ENOSYS", "EXDEV"]);

/**
 * Writes `data` to `path` atomically, with permission bits `mode` (0600 by
 * default). On failure nothing is left behind but the old file, if any.
 *
 * @example
 * ```ts
 * await writeFileAtomic("/home/me/.config/securechat/known_servers", "relay:7878 k3b7-...\n");
 * await writeFileAtomic("id.pub", line, { mode: 0o644, overwrite: false });
 * ```
 */
export async function writeFileAtomic(
  path: string,
  data: Uint8Array | string,
  options: WriteFileAtomicOptions = {},
): Promise<void> {
  const mode = options.mode ?? 0o600;
  const overwrite = options.overwrite ?? true;
  const bytes = typeof data === "string" ? utf8(data) : data;
  const directory = dirname(path);
  const temporary = join(directory, `.${basename(path)}.tmp-${toHex(randomBytes(8))}`);

  let handle: FileHandle | undefined;
  let placed = false;
  try {
    // Created owner-only and exclusively, so no one else can open it before the final chmod.
    handle = await open(temporary, "wx", 0o600);
    await handle.writeFile(bytes);
    await handle.sync();
    await handle.chmod(mode);
    await handle.close();
    handle = undefined;
    if (overwrite) {
      await rename(temporary, path);
      placed = true;
    } else {
      await placeWithoutOverwrite(temporary, path);
    }
    await syncDirectory(directory);
  } finally {
    if (handle !== undefined) await handle.close().catch(() => {});
    if (!placed) await unlink(temporary).catch(() => {});
  }
}

/** Moves `temporary` to `path` unless `path` exists; removes `temporary` on success. */
async function placeWithoutOverwrite(temporary: string, path: string): Promise<void> {
  try {
    await link(temporary, path);
    return; // The caller removes the temporary name.
  } catch (error) {
    if (!NO_LINK_CODES.has(errorCode(error))) throw error;
  }
  // No hard links here: check then rename, which leaves a small race window.
  if (await pathExists(path)) throw alreadyExists(path);
  await rename(temporary, path);
}

/**
 * Whether something exists at `path` (a dangling link counts). Errors other
 * than "not found" are thrown, so a permission problem is not taken for absence.
 *
 * @example
 * ```ts
 * if (await pathExists(path)) console.log("already there");
 * ```
 */
export async function pathExists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (error) {
    if (errorCode(error) === "ENOENT") return false;
    throw error;
  }
}

function alreadyExists(path: string): Error {
  return Object.assign(new Error(`${path} already exists`), { code: "EEXIST" });
}

/** Flushes a directory entry change; not every platform can open a directory, which is fine. */
async function syncDirectory(directory: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(directory, "r");
    await handle.sync();
  } catch {
    // Windows and some file systems refuse; the rename is still atomic there.
  } finally {
    await handle?.close().catch(() => {});
  }
}

/**
 * Returns the `code` property of a Node.js system error, or `""`.
 *
 * @example
 * ```ts
 * if (errorCode(error) === "ENOENT") return undefined;
 * ```
 */
export function errorCode(error: unknown): string {
  if (typeof error === "object" && error !== null && "code" in error) {
    const code = (error as { code: unknown }).code;
    if (typeof code === "string") return code;
  }
  return "";
}
