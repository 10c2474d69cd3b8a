/**
 * What the runtime offers beyond web standards, asked for without a static
 * `node:` import. lib/ runs under Deno and Node, where `node:` built-ins make
 * it fast (native crypto, uninitialised buffers, TCP), and in browsers,
 * where a module that imports `node:crypto` does not even load. Code that
 * can use a built-in when it is there, and has a portable fallback, reaches
 * it through {@linkcode nodeBuiltin}: `process.getBuiltinModule` is Node's
 * documented way to do exactly that (Node 20.16+, 22.3+; Deno 2).
 *
 * @module
 */

import type * as NodeBuffer from "node:buffer";

interface NodeProcessLike {
  getBuiltinModule?: (id: string) => unknown;
  env?: Record<string, string | undefined>;
}

function runtimeProcess(): NodeProcessLike | undefined {
  return (globalThis as { process?: NodeProcessLike }).process;
}

/**
 * The runtime's built-in module `id` (for example `"node:crypto"`), or
 * `undefined` in a runtime without Node built-ins (a browser).
 *
 * @example
 * ```ts
 * const nodeCrypto = nodeBuiltin<typeof import("node:crypto")>("node:crypto");
 * if (nodeCrypto) nodeCrypto.randomFillSync(buffer);
 * ```
 */
export function nodeBuiltin<T>(id: string): T | undefined {
  const get = runtimeProcess()?.getBuiltinModule;
  if (typeof get !== "function") return undefined;
  try {
    return get(id) as T | undefined;
  } catch {
    return undefined;
  }
}

/**
 * An environment variable, or `undefined` when it is unset, the runtime has
 * no environment (a browser) or access to it is denied.
 *
 * @example
 * ```ts
 * environmentVariable("SECURECHAT_CRYPTO"); // "noble" or undefined
 * ```
 */
export function environmentVariable(name: string): string | undefined {
  try {
    return runtimeProcess()?.env?.[name];
  } catch {
    return undefined;
  }
}

const nodeBuffer = nodeBuiltin<typeof NodeBuffer>("node:buffer")?.Buffer;

/**
 * A Uint8Array of `length` bytes whose memory may not be zeroed, for callers
 * that overwrite every byte before anyone reads it: zeroing 64 KiB per Noise
 * message is a measurable share of a busy connection's CPU. Under Node and
 * Deno it is a buffer outside Node's shared pool (so keeping it does not pin
 * the pool), or with `pooled`, a slice of the pool (cheapest for small
 * buffers handed straight to a socket). In a browser it is an ordinary array.
 *
 * @example
 * ```ts
 * const frame = uninitializedBytes(65535);
 * const wire = uninitializedBytes(600, { pooled: true });
 * ```
 */
export function uninitializedBytes(length: number, options?: { pooled?: boolean }): Uint8Array {
  if (nodeBuffer === undefined) return new Uint8Array(length);
  if (options?.pooled) return nodeBuffer.allocUnsafe(length);
  const buffer = nodeBuffer.allocUnsafeSlow(length);
  return new Uint8Array(buffer.buffer, buffer.byteOffset, length);
}

type Task = () => void;

const setImmediateIfAny = (globalThis as { setImmediate?: (task: Task) => unknown }).setImmediate;

/**
 * Runs `task` after the current event-loop turn, once the I/O already
 * waiting has been handled (`setImmediate` where it exists, a zero-delay
 * timer in a browser): work queued in one turn is then done together.
 *
 * @example
 * ```ts
 * afterThisTurn(() => channel.flush());
 * ```
 */
export function afterThisTurn(task: Task): void {
  if (setImmediateIfAny !== undefined) setImmediateIfAny(task);
  else setTimeout(task, 0);
}

/**
 * Lets a timer not keep the process alive (Node's `unref`); does nothing
 * where timers have no such notion (a browser).
 *
 * @example
 * ```ts
 * unrefTimer(setTimeout(() => socket.destroy(), 5_000));
 * ```
 */
export function unrefTimer(timer: unknown): void {
  (timer as { unref?: () => void } | undefined)?.unref?.();
}
