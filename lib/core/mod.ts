/**
 * Layer 0, core: byte encodings, constant-time comparison, the bounds-checked
 * binary reader and writer, the error classes every layer throws, version
 * numbers, crash-safe file replacement, file locks, the token bucket behind
 * every rate limit, the SQLite files the relay and the client keep (safe
 * opening, group commit), and what the runtime offers beyond web standards
 * (Node built-ins when present). Depends on nothing else in lib/.
 *
 * @module
 */

export * from "./atomic_file.ts";
export * from "./bytes.ts";
export * from "./commit_queue.ts";
export * from "./errors.ts";
export * from "./rate_limit.ts";
export * from "./runtime.ts";
export * from "./sqlite_file.ts";
export * from "./version.ts";
