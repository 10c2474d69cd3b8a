/**
 * A lock between processes on one file, for read-check-write updates of
 * state files that several securechat processes share (`known_peers`,
 * `known_servers`): `<file>.lock`, created with `O_CREAT | O_EXCL`, holding
 * the owner's process id and a random nonce, removed when the work is done.
 *
 * Node has no `flock`, so the lock is a file. A lock whose owner process no
 * longer exists, or older than {@linkcode STALE_LOCK_MS} (holders keep it
 * for milliseconds), was left by a process that died holding it: it is
 * broken by renaming it to a unique name (so that of two processes breaking
 * it at once only one succeeds) and removing that.
 *
 * @module
 */

import { open, readFile, rename, stat, unlink } from "node:fs/promises";
import { dirname } from "node:path";
import { randomBytes } from "node:crypto";
import process from "node:process";
import { errorCode } from "./atomic_file.ts";
import { ensureDirectory } from "./directory.ts";

/** A lock at least this old was left by a process that died: holders keep it for milliseconds. */
export const STALE_LOCK_MS = 10_000;
/** How long {@linkcode withFileLock} waits for another holder by default. */
const DEFAULT_WAIT_MS = 5_000;

/**
 * The lock could not be taken in time.
 *
 * @example
 * ```ts
 * throw new FileLockError("/home/me/.config/securechat/known_peers.lock", 4242);
 * ```
 */
export class FileLockError extends Error {
  /**
   * @example
   * ```ts
   * new FileLockError("known_peers.lock", 4242);
   * ```
   */
  constructor(lockPath: string, owner: number | undefined) {
    super(
      `${lockPath} is held by ${owner ? `process ${owner}` : "another process"}; ` +
        `if no securechat process is running, remove it`,
    );
    this.name = "FileLockError";
  }
}

function ownerAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists, owned by someone else.
    return errorCode(error) !== "ESRCH";
  }
}

/** Removes a lock left by a dead process; true if the caller may retry at once. */
async function breakIfStale(lockPath: string): Promise<{ broken: boolean; owner?: number }> {
  let content: string;
  let age: number;
  try {
    content = await readFile(lockPath, "utf8");
    age = Date.now() - (await stat(lockPath)).mtimeMs;
  } catch (error) {
    if (errorCode(error) === "ENOENT") return { broken: true };
    throw error;
  }
  const owner = Number(content.split(" ")[0]);
  // An empty lock is one being written right now (or a crash between create and write).
  const stale = content === "" ? age > STALE_LOCK_MS : age > STALE_LOCK_MS || !ownerAlive(owner);
  if (!stale) return { broken: false, owner };
  const aside = `${lockPath}.stale-${randomBytes(8).toString("hex")}`;
  try {
    await rename(lockPath, aside);
  } catch (error) {
    if (errorCode(error) === "ENOENT") return { broken: true };
    throw error;
  }
  // If another process replaced the stale lock with its own in between, it was renamed here:
  // put it back unless someone else holds the name by now.
  const moved = await readFile(aside, "utf8").catch(() => "");
  if (moved !== content) await rename(aside, lockPath).catch(() => {});
  else await unlink(aside).catch(() => {});
  return { broken: true };
}

/**
 * Runs `work` while holding the lock on `path` (the file `path + ".lock"`),
 * waiting up to `waitMs` for another holder. Throws
 * {@linkcode FileLockError} when the lock stays taken.
 *
 * @example
 * ```ts
 * await withFileLock("/home/me/.config/securechat/known_peers", async () => {
 *   // re-read, decide, write
 * });
 * ```
 */
export async function withFileLock<T>(
  path: string,
  work: () => Promise<T>,
  options: { waitMs?: number } = {},
): Promise<T> {
  const lockPath = `${path}.lock`;
  const deadline = Date.now() + (options.waitMs ?? DEFAULT_WAIT_MS);
  const token = `${process.pid} ${randomBytes(8).toString("hex")}\n`;
  let owner: number | undefined;
  for (let attempt = 0;; attempt++) {
    try {
      const handle = await open(lockPath, "wx", 0o600);
      try {
        await handle.writeFile(token);
      } finally {
        await handle.close();
      }
      break;
    } catch (error) {
      // The state directory may not exist yet: it is created as the file's writer would.
      if (errorCode(error) === "ENOENT" && attempt === 0) {
        await ensureDirectory(dirname(lockPath), 0o700);
        continue;
      }
      if (errorCode(error) !== "EEXIST") throw error;
    }
    const stale = await breakIfStale(lockPath);
    owner = stale.owner;
    if (stale.broken) continue;
    if (Date.now() > deadline) throw new FileLockError(lockPath, owner);
    await new Promise((resolve) => setTimeout(resolve, Math.min(50, 5 + attempt * 5)));
  }
  try {
    return await work();
  } finally {
    // Only our own lock: never one that replaced ours after we were (wrongly) judged stale.
    const content = await readFile(lockPath, "utf8").catch(() => "");
    if (content === token) await unlink(lockPath).catch(() => {});
  }
}
