/**
 * Layer 0, core: byte encodings, constant-time comparison, the bounds-checked
 * binary reader and writer, the error classes every layer throws, version
 * numbers, crash-safe file replacement, and what the runtime offers beyond
 * web standards (Node built-ins when present). Depends on nothing else in lib/.
 *
 * @module
 */

export * from "./atomic_file.ts";
export * from "./bytes.ts";
export * from "./errors.ts";
export * from "./runtime.ts";
export * from "./version.ts";
