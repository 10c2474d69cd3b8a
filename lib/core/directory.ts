/**
 * Creating the directories securechat writes into, one level at a time.
 *
 * `mkdir(path, { recursive: true })` under Node 20 never returns for a path
 * such as `/proc/x` (the kernel answers ENOENT for a parent that exists, and
 * the recursion retries forever at full CPU), and it reports a file in the
 * way as a bare ENOTDIR. This walks up to the deepest existing ancestor
 * (at most one step per path component), checks it is a directory, and
 * creates each missing level with a single non-recursive `mkdir`, so every
 * unusable path fails at once with a sentence that names it.
 *
 * @module
 */

import { mkdir, stat } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { errorCode } from "./atomic_file.ts";

/** A directory that cannot be used, with a one-line reason naming the path. */
export class DirectoryError extends Error {
  /** The path at fault (the directory, or the file in its way). */
  readonly path: string;

  /** @example `new DirectoryError("/tmp/f is not a directory", "/tmp/f")` */
  constructor(message: string, path: string) {
    super(message);
    this.name = "DirectoryError";
    this.path = path;
  }
}

/**
 * Explains a file-system error code in words.
 *
 * @example
 * ```ts
 * describeFsError("EACCES"); // "permission denied"
 * ```
 */
export function describeFsError(code: string, fallback = "cannot be used"): string {
  switch (code) {
    case "ENOENT":
      return "no such file or directory";
    case "EACCES":
    case "EPERM":
      return "permission denied";
    case "EROFS":
      return "read-only file system";
    case "ENOTDIR":
      return "a part of the path is not a directory";
    case "ENOSPC":
      return "no space left on the device";
    case "EDQUOT":
      return "disk quota exceeded";
    case "ELOOP":
      return "too many symbolic links";
    case "ENAMETOOLONG":
      return "the name is too long";
    case "EIO":
      return "input/output error";
    default:
      return code === "" ? fallback : `${fallback} (${code})`;
  }
}

/**
 * One line about a file-system failure: the code in words, or the error's
 * own message when it has no code.
 *
 * @example
 * ```ts
 * fsErrorText(error); // "permission denied"
 * ```
 */
export function fsErrorText(error: unknown): string {
  const code = errorCode(error);
  if (code !== "") return describeFsError(code);
  return error instanceof Error ? error.message : String(error);
}

/**
 * Makes sure `directory` exists and is a directory, creating missing levels
 * with `mode`. Throws {@linkcode DirectoryError} with a one-line reason.
 *
 * @example
 * ```ts
 * await ensureDirectory("/home/me/.config/securechat", 0o700);
 * ```
 */
export async function ensureDirectory(directory: string, mode = 0o700): Promise<void> {
  const target = resolve(directory);
  const missing: string[] = [];
  let current = target;
  while (true) {
    let isDirectory: boolean;
    try {
      isDirectory = (await stat(current)).isDirectory();
    } catch (error) {
      const code = errorCode(error);
      if ((code === "ENOENT" || code === "ENOTDIR") && dirname(current) !== current) {
        missing.push(current);
        current = dirname(current);
        continue;
      }
      throw new DirectoryError(`cannot use ${current}: ${fsErrorText(error)}`, current);
    }
    if (!isDirectory) {
      throw new DirectoryError(
        current === target
          ? `${current} is not a directory`
          : `cannot create ${target}: ${current} is a file, not a directory`,
        current,
      );
    }
    break;
  }
  for (const level of missing.reverse()) {
    try {
      await mkdir(level, { mode });
    } catch (error) {
      const code = errorCode(error);
      // Someone else made it meanwhile: fine, as long as it is a directory.
      if (code === "EEXIST" && (await stat(level).catch(() => undefined))?.isDirectory()) continue;
      throw new DirectoryError(
        `cannot create directory ${level}: ${fsErrorText(error)}`,
        level,
      );
    }
  }
}
