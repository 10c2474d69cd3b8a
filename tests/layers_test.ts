/**
 * The layout rules of lib/, checked on every import: each folder is a layer,
 * a layer imports only itself and the layers below it (the relay and the
 * client sit side by side and never import each other), cli/ and web/ (the
 * browser page) hold no crypto, and lib/ uses no Deno-only API, so that Node
 * and browsers run it.
 */

import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/** Layer of each lib/ folder; a file may import files of equal or lower rank. */
const RANK: Record<string, number> = {
  core: 0,
  crypto: 1,
  identity: 2,
  transport: 3,
  e2e: 4,
  relay: 5,
  client: 5,
};

async function sourceFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...await sourceFiles(path));
    else if (entry.name.endsWith(".ts")) out.push(path);
  }
  return out;
}

function importsOf(source: string): string[] {
  const specifiers: string[] = [];
  for (const match of source.matchAll(/(?:from|import)\s*\(?\s*["']([^"']+)["']/g)) {
    specifiers.push(match[1]);
  }
  return specifiers;
}

function layerOf(path: string): string | undefined {
  const parts = relative(join(ROOT, "lib"), path).split(/[\\/]/);
  return parts.length > 1 && !parts[0].startsWith("..") ? parts[0] : undefined;
}

Deno.test("every lib/ file sits in a known layer folder", async () => {
  for (const file of await sourceFiles(join(ROOT, "lib"))) {
    const layer = layerOf(file);
    assert.ok(
      layer !== undefined && layer in RANK,
      `${relative(ROOT, file)} is not inside a layer folder (${Object.keys(RANK).join(", ")})`,
    );
  }
});

Deno.test("lib/ layers import only themselves and the layers below", async () => {
  const violations: string[] = [];
  for (const file of await sourceFiles(join(ROOT, "lib"))) {
    const from = layerOf(file)!;
    for (const specifier of importsOf(await readFile(file, "utf8"))) {
      if (!specifier.startsWith(".")) continue;
      const target = resolve(dirname(file), specifier);
      const to = layerOf(target);
      if (to === undefined) {
        violations.push(`${relative(ROOT, file)} imports ${specifier}, outside lib/`);
      } else if (to !== from && RANK[to] >= RANK[from]) {
        violations.push(`${relative(ROOT, file)} (${from}) imports ${specifier} (${to})`);
      }
    }
  }
  assert.deepEqual(violations, []);
});

Deno.test("lib/ uses web standards and node: built-ins only, no Deno API", async () => {
  const offenders: string[] = [];
  for (const file of await sourceFiles(join(ROOT, "lib"))) {
    const source = await readFile(file, "utf8");
    // Comments may mention Deno; code may not call it.
    const code = source.replace(/\/\*[\s\S]*?\*\//g, "").replace(/\/\/.*$/gm, "");
    if (/\bDeno\./.test(code)) offenders.push(relative(ROOT, file));
    for (const specifier of importsOf(code)) {
      if (specifier.startsWith("jsr:") || specifier.startsWith("https:")) {
        offenders.push(`${relative(ROOT, file)}: ${specifier}`);
      }
    }
  }
  assert.deepEqual(offenders, []);
});

Deno.test("cli/ does no cryptography of its own", async () => {
  const offenders: string[] = [];
  for (const file of await sourceFiles(join(ROOT, "cli"))) {
    for (const specifier of importsOf(await readFile(file, "utf8"))) {
      if (specifier.startsWith("@noble/") || specifier === "node:crypto") {
        offenders.push(`${relative(ROOT, file)} imports ${specifier}`);
      }
    }
  }
  assert.deepEqual(offenders, []);
});

Deno.test("web/ is a UI layer like cli/: no cryptography of its own, and browser code only", async () => {
  const offenders: string[] = [];
  for (const file of await sourceFiles(join(ROOT, "web"))) {
    if (file.endsWith(".generated.ts")) continue;
    const code = (await readFile(file, "utf8")).replace(/\/\*[\s\S]*?\*\//g, "")
      .replace(/\/\/.*$/gm, "");
    if (/\bDeno\./.test(code)) offenders.push(`${relative(ROOT, file)} calls the Deno API`);
    // Statements only: the page's text is full of words like "import" in quotes.
    const statements = code.matchAll(
      /^\s*(?:import|export)\b[^;]*?from\s*["']([^"']+)["']|\bimport\(\s*["']([^"']+)["']/gm,
    );
    for (const match of statements) {
      const specifier = match[1] ?? match[2];
      if (specifier.startsWith("@noble/") || specifier.startsWith("node:")) {
        offenders.push(`${relative(ROOT, file)} imports ${specifier}`);
      } else if (specifier.startsWith(".")) {
        const target = relative(ROOT, resolve(dirname(file), specifier));
        if (!target.startsWith("lib/") && !target.startsWith("web/")) {
          offenders.push(`${relative(ROOT, file)} imports ${specifier}, outside lib/ and web/`);
        }
      } else {
        offenders.push(`${relative(ROOT, file)} imports the package ${specifier}`);
      }
    }
  }
  assert.deepEqual(offenders, []);
});
