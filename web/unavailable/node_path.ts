/**
 * Stands in for `node:path` in the browser bundle (see
 * web/import_map.json): the file-storage code of lib/ that imports it is
 * never called by the page.
 *
 * @module
 */

function unavailable(name: string): never {
  throw new Error(`${name} is not available in a browser`);
}

/** @example `dirname("/a/b")` throws in a browser. */
export function dirname(): never {
  return unavailable("path.dirname");
}
/** @example `basename("/a/b")` throws in a browser. */
export function basename(): never {
  return unavailable("path.basename");
}
/** @example `join("a", "b")` throws in a browser. */
export function join(): never {
  return unavailable("path.join");
}
/** @example `resolve("a")` throws in a browser. */
export function resolve(): never {
  return unavailable("path.resolve");
}
