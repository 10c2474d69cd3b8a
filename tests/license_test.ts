/** The licence is stated where tools and people look for it: LICENSE and package.json. */

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

Deno.test("the project is MIT-licensed: LICENSE holds the MIT text and package.json says so", () => {
  const root = new URL("../", import.meta.url);
  const license = readFileSync(new URL("LICENSE", root), "utf8");
  assert.match(license, /^MIT License\n\nCopyright \(c\) \d{4} /);
  assert.match(
    license,
    /Permission is hereby granted, free of charge, to any person obtaining a copy/,
  );
  assert.match(license, /THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND/);
  const manifest = JSON.parse(readFileSync(new URL("package.json", root), "utf8"));
  assert.equal(manifest.license, "MIT");
  const lock = JSON.parse(readFileSync(new URL("package-lock.json", root), "utf8"));
  assert.equal(lock.packages[""].license, "MIT", "package-lock.json is in step with package.json");
});
