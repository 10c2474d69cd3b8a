/**
 * Stands in for `node:process` in the browser bundle (see
 * web/import_map.json): a browser has no process, no environment and no
 * file permissions to check.
 *
 * @module
 */

/** @example `process.platform` is `"browser"` in the page. */
const browserProcess = { platform: "browser", env: {} as Record<string, string | undefined> };

export default browserProcess;
