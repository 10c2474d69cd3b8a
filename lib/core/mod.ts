/**
 * Layer 0, core: byte encodings, constant-time comparison, the bounds-checked
 * binary reader and writer, the error classes every layer throws, version
 * numbers, and crash-safe file replacement. Depends on nothing else in lib/.
 *
 * @module
 */

export * from "./atomic_file.ts";
export * from "./bytes.ts";
export * from "./errors.ts";
export * from "./version.ts";
