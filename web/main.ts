/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * The web page's entry point, bundled for the browser into the script that
 * `securechat web` serves. It opens the page's storage and starts the app;
 * anything that goes wrong before or after is shown on the page.
 *
 * @module
 */

import { App, describe } from "./app.ts";
import { PageDatabase } from "./idb.ts";

const root = document.getElementById("app")!;

function showFatal(error: unknown): void {
  const box = document.createElement("p");
  box.className = "error fatal";
  box.setAttribute("role", "alert");
  box.textContent = `securechat: ${describe(error)}`;
  document.body.prepend(box);
}

globalThis.addEventListener("unhandledrejection", (event) => showFatal(event.reason));
globalThis.addEventListener("error", (event) => showFatal(event.error ?? event.message));

try {
  const db = await PageDatabase.open();
  await new App(root, db).start();
} catch (error) {
  showFatal(error);
}
