/**
 * Stands in for `node:fs/promises` in the browser bundle (see
 * web/import_map.json). lib/ keeps identities and trust files on disk for
 * the command line; the page keeps them in IndexedDB and never calls these.
 * If it ever did, the error would say so instead of failing silently.
 *
 * @module
 */

function unavailable(name: string): never {
  throw new Error(
    `${name} is not available in a browser: the web page keeps its keys in IndexedDB`,
  );
}

/** @example `await open(path)` throws in a browser. */
export function open(): Promise<never> {
  return Promise.reject(unavailable("fs.open"));
}
/** @example `await mkdir(path)` throws in a browser. */
export function mkdir(): Promise<never> {
  return Promise.reject(unavailable("fs.mkdir"));
}
/** @example `await link(a, b)` throws in a browser. */
export function link(): Promise<never> {
  return Promise.reject(unavailable("fs.link"));
}
/** @example `await lstat(path)` throws in a browser. */
export function lstat(): Promise<never> {
  return Promise.reject(unavailable("fs.lstat"));
}
/** @example `await rename(a, b)` throws in a browser. */
export function rename(): Promise<never> {
  return Promise.reject(unavailable("fs.rename"));
}
/** @example `await unlink(path)` throws in a browser. */
export function unlink(): Promise<never> {
  return Promise.reject(unavailable("fs.unlink"));
}
/** @example `await stat(path)` throws in a browser. */
export function stat(): Promise<never> {
  return Promise.reject(unavailable("fs.stat"));
}
