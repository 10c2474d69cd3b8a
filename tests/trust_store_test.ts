import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fingerprint } from "../lib/identity/fingerprint.ts";
import { generateIdentity } from "../lib/identity/identity.ts";
import {
  canonicalServerAddress,
  formatServerAddress,
  KnownServers,
  loadFingerprintList,
  parseServerAddress,
  TrustStoreError,
} from "../lib/identity/trust_store.ts";

const fp = () => fingerprint(generateIdentity().publicKey);

async function withTempDir(run: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "securechat-trust-test-"));
  try {
    await run(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function rejectsAt(promise: Promise<unknown>, line: number | undefined, message: RegExp) {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof TrustStoreError, String(error));
    assert.equal(error.line, line, error.message);
    assert.match(error.message, message);
    assert.ok(!error.message.includes("\n"));
    return true;
  });
}

Deno.test("server addresses have one canonical form", () => {
  const same: [string, string][] = [
    ["[::1]:7878", "[::1]:7878"],
    ["::1:7878", "[::1]:7878"],
    ["[0:0:0:0:0:0:0:1]:7878", "[::1]:7878"],
    ["[::0001]:7878", "[::1]:7878"],
    ["[2001:DB8::A]:443", "[2001:db8::a]:443"],
    ["2001:db8:0:0:0:0:0:a:443", "[2001:db8::a]:443"],
    ["[::ffff:127.0.0.1]:7878", "[::ffff:7f00:1]:7878"],
    ["Relay.Example.COM:7878", "relay.example.com:7878"],
    ["localhost:7878", "localhost:7878"],
    ["127.0.0.1:7878", "127.0.0.1:7878"],
    ["127.1:7878", "127.0.0.1:7878"],
    ["127.0.0.1:07878", "127.0.0.1:7878"],
    ["relay-1.example:1", "relay-1.example:1"],
    ["relay:65535", "relay:65535"],
  ];
  for (const [input, canonical] of same) {
    assert.equal(canonicalServerAddress(input), canonical, input);
    assert.equal(canonicalServerAddress(canonical), canonical, `${canonical} is a fixed point`);
  }
  assert.deepEqual(parseServerAddress("[::1]:7878"), { host: "::1", port: 7878 });
  assert.deepEqual(parseServerAddress("Relay:80"), { host: "relay", port: 80 });
  assert.equal(formatServerAddress({ host: "::1", port: 7878 }), "[::1]:7878");
  assert.equal(formatServerAddress({ host: "127.0.0.1", port: 7878 }), "127.0.0.1:7878");

  const bad: [string, RegExp][] = [
    ["relay", /expected HOST:PORT/],
    [":7878", /expected HOST:PORT/],
    ["relay:", /port must be a number from 1 to 65535/],
    ["relay:0", /port must be/],
    ["relay:65536", /port must be/],
    ["relay:123456", /port must be/],
    ["relay:12a", /port must be/],
    ["relay:-1", /port must be/],
    ["relay:+80", /port must be/],
    ["re lay:80", /not a host name/],
    ["relay/x:80", /not a host name/],
    ["rélay:80", /not a host name/],
    ["[::1]7878", /expected HOST:PORT/],
    ["[relay]:80", /not an IPv6 address in brackets/],
    ["[::1]:", /port must be/],
    ["1:2:3:80", /expected HOST:PORT or \[IPV6\]:PORT/],
    ["fe80::1%eth0:80", /expected HOST:PORT or \[IPV6\]:PORT|zone/],
    ["[fe80::1%eth0]:80", /zone identifiers are not supported|not an IPv6/],
    ["", /expected HOST:PORT/],
  ];
  for (const [input, message] of bad) {
    assert.throws(() => parseServerAddress(input), (error: unknown) => {
      assert.ok(error instanceof SyntaxError);
      assert.match((error as Error).message, message, input);
      return true;
    }, input);
  }
});

Deno.test("known_servers: TOFU life cycle", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "home", "known_servers");
    const known = await KnownServers.load(path);
    const first = fp();
    const second = fp();
    assert.deepEqual(known.check("relay:7878", first), { status: "new" });
    assert.equal(known.lookup("relay:7878"), undefined);

    await known.remember("Relay:7878", first);
    assert.equal(await readFile(path, "utf8"), `relay:7878 ${first}\n`);
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    assert.equal((await stat(join(dir, "home"))).mode & 0o777, 0o700);
    assert.deepEqual(known.check("relay:7878", first), { status: "match", expected: first });
    assert.deepEqual(known.check("RELAY:7878", first.toUpperCase()), {
      status: "match",
      expected: first,
    });
    assert.deepEqual(known.check("relay:7878", second), { status: "changed", expected: first });
    assert.deepEqual(known.check("relay:7879", first), { status: "new" });

    await known.remember("::1:7878", second);
    const reloaded = await KnownServers.load(path);
    assert.equal(reloaded.lookup("[::1]:7878"), second);
    assert.equal(reloaded.lookup("[0::1]:7878"), second);
    assert.equal(reloaded.lookup("relay:7878"), first);
    assert.deepEqual(reloaded.entries(), [["relay:7878", first], ["[::1]:7878", second]]);

    // Replacing a key rewrites its line in place.
    await reloaded.remember("relay:7878", second);
    assert.equal(await readFile(path, "utf8"), `relay:7878 ${second}\n[::1]:7878 ${second}\n`);
  });
});

Deno.test("known_servers: hand edits, comments and concurrent updates are kept", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "known_servers");
    const a = fp();
    const b = fp();
    const c = fp();
    const text = [
      "# relays I use",
      "",
      `  relay.example:7878\t${a.toUpperCase().replaceAll("-", "")}   # office`,
      `[::1]:7878 ${b}`,
    ].join("\r\n") + "\r\n";
    await writeFile(path, text);
    const known = await KnownServers.load(path);
    assert.equal(known.lookup("relay.example:7878"), a);

    // Another process adds an entry after we loaded; our update must not lose it.
    const other = await KnownServers.load(path);
    await other.remember("other:1", c);
    await known.remember("relay.example:7878", c);
    const lines = (await readFile(path, "utf8")).split("\n");
    assert.deepEqual(lines, [
      "# relays I use",
      "",
      `relay.example:7878 ${c} # office`,
      `[::1]:7878 ${b}`,
      `other:1 ${c}`,
      "",
    ]);
    assert.equal(known.lookup("other:1"), c);
  });
});

Deno.test("known_servers: corrupt files are refused with the line number and never rewritten", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "known_servers");
    const a = fp();
    const cases: [string, number, RegExp][] = [
      [
        `relay:1 ${a}\n# ok\nrelay:2 not-a-fingerprint\n`,
        3,
        /known_servers line 3: not a fingerprint/,
      ],
      [`relay:1 ${a.slice(0, -1)}\n`, 1, /line 1: not a fingerprint/],
      [`relay:1\n`, 1, /line 1: expected `HOST:PORT FINGERPRINT`/],
      [`relay:1 ${a} extra\n`, 1, /line 1: expected `HOST:PORT FINGERPRINT`/],
      [`relay ${a}\n`, 1, /line 1: expected HOST:PORT/],
      [`relay:0 ${a}\n`, 1, /line 1: port must be/],
      [
        `relay:1 ${a}\n\nRELAY:01 ${fp()}\n`,
        3,
        /line 3: relay:1 is listed again \(first on line 1\)/,
      ],
      [`[::1]:1 ${a}\n::1:1 ${a}\n`, 2, /line 2: \[::1\]:1 is listed again/],
    ];
    for (const [text, line, message] of cases) {
      await writeFile(path, text);
      await rejectsAt(KnownServers.load(path), line, message);
    }
    // Truncated mid-line: the last line is incomplete.
    await writeFile(path, `relay:1 ${a}\nrelay:2 ${a.slice(0, 10)}`);
    await rejectsAt(KnownServers.load(path), 2, /line 2: not a fingerprint/);

    // A store loaded earlier refuses to write over a file that became corrupt.
    await writeFile(path, `relay:1 ${a}\n`);
    const known = await KnownServers.load(path);
    await writeFile(path, `relay:1 ${a}\ngarbage\n`);
    await rejectsAt(known.remember("relay:2", a), 2, /line 2/);
    assert.equal(await readFile(path, "utf8"), `relay:1 ${a}\ngarbage\n`);

    await writeFile(path, new Uint8Array([0x72, 0xff, 0x0a]));
    await rejectsAt(KnownServers.load(path), undefined, /cannot read .*not valid UTF-8/);
    await rejectsAt(KnownServers.load(dir), undefined, /cannot read .*not a regular file/);
  });
});

Deno.test("known_servers: remove forgets one address in any form, keeping the rest", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "known_servers");
    const a = fp();
    const b = fp();
    await writeFile(path, `# relays\n[::1]:7878 ${a} # lab\nrelay.example:7878 ${b}\n`);
    const known = await KnownServers.load(path);
    assert.equal(await known.remove("::1:07878"), a);
    assert.equal(await readFile(path, "utf8"), `# relays\nrelay.example:7878 ${b}\n`);
    assert.equal(known.lookup("[::1]:7878"), undefined);
    assert.equal(await known.remove("[::1]:7878"), undefined);
    assert.equal(await readFile(path, "utf8"), `# relays\nrelay.example:7878 ${b}\n`);
    assert.equal((await stat(path)).mode & 0o777, 0o600);
  });
});

Deno.test("fingerprint lists: comments, free text, strictness", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "team.txt");
    const a = fp();
    const b = fp();
    await writeFile(
      path,
      [
        "# the ops team",
        "",
        `${a} alice (laptop)`,
        `  ${b.toUpperCase().replaceAll("-", "")}\tbob # desk`,
        `${a} alice again`,
        "   ",
        "# end",
      ].join("\n"),
    );
    assert.deepEqual(await loadFingerprintList(path), new Set([a, b]));

    await writeFile(path, "");
    assert.deepEqual(await loadFingerprintList(path), new Set());

    await writeFile(path, `${a}\n${b}\nalice ${a}\n`);
    await rejectsAt(loadFingerprintList(path), 3, /team\.txt line 3: not a fingerprint: "alice"/);
    await writeFile(path, `${a.slice(0, 19)} ${a.slice(20)}\n`);
    await rejectsAt(loadFingerprintList(path), 1, /line 1: not a fingerprint/);
    await rejectsAt(
      loadFingerprintList(join(dir, "missing.txt")),
      undefined,
      /fingerprint list .*missing\.txt does not exist/,
    );
  });
});
