/**
 * The smoke bench (`deno task bench:smoke`) must keep working: it runs every
 * scenario at tiny sizes (the web client's in Chromium too) and writes
 * well-formed results. Nothing here checks
 * a timing; the checks are about completeness and correctness (every line
 * intact, every connection made, no errors).
 */

import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { HAVE_NATS } from "./support/nats_server.ts";

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));

function isCount(value: unknown): boolean {
  return typeof value === "number" && Number.isFinite(value) && value >= 0;
}

function assertTraffic(result: Record<string, unknown> | null, what: string): void {
  assert.ok(result, `${what}: no result`);
  for (const field of ["deliveriesPerSecond", "textsPerSecond", "megabytesPerSecond", "loadCpu"]) {
    assert.ok(isCount(result[field]), `${what}.${field} = ${result[field]}`);
  }
  assert.ok((result.deliveriesPerSecond as number) > 0, `${what}: nothing was delivered`);
  const latency = result.latency as Record<string, unknown>;
  assert.ok(
    isCount(latency.p50) && isCount(latency.p99),
    `${what}: latency ${JSON.stringify(latency)}`,
  );
  assert.ok((latency.p99 as number) >= (latency.p50 as number), `${what}: p99 below p50`);
}

Deno.test({
  name: "the smoke bench runs every scenario and writes well-formed results",
  // The bench starts relays and CLI processes; they are all stopped before it exits.
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const out = mkdtempSync(join(tmpdir(), "bench-smoke-test-"));
    try {
      const run = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", join(ROOT, "bench", "main.ts"), "--smoke", "--out", out],
        cwd: ROOT,
        stdout: "piped",
        stderr: "piped",
        env: { NO_COLOR: "1" },
      }).output();
      const stdout = new TextDecoder().decode(run.stdout);
      const stderr = new TextDecoder().decode(run.stderr);
      assert.equal(run.code, 0, `bench failed:\n${stdout}\n${stderr}`);
      assert.match(stdout, /securechat\s+ncat --chat --ssl\s+ratio/, "the table is printed");

      const results = JSON.parse(readFileSync(join(out, "latest.json"), "utf8"));
      assert.equal(results.version, 1);
      assert.equal(results.smoke, true);
      assert.ok(!Number.isNaN(Date.parse(results.date)), "date is ISO 8601");
      assert.ok(results.machine.cores >= 1 && typeof results.machine.cpu === "string");
      assert.deepEqual(results.errors, [], "the run reported errors");
      assert.equal(typeof results.ncat.available, "boolean");
      if (!results.ncat.available) assert.equal(typeof results.ncat.reason, "string");

      assert.ok(results.fanout.length >= 1);
      for (const entry of results.fanout) {
        assertTraffic(entry.transport, `fanout ${entry.senders}x${entry.members} transport`);
        assertTraffic(entry.e2e, `fanout ${entry.senders}x${entry.members} e2e`);
        assert.equal(entry.e2e.corruptTexts, 0, "every end-to-end text arrives as sent");
        if (results.ncat.available) assertTraffic(entry.ncat, "fanout ncat");
      }
      assert.ok(results.latency.length >= 1);
      assertTraffic(results.latency[0].securechat, "latency");
      assert.equal(results.latency[0].securechat.mode.kind, "paced");

      const pipe = results.pipe.securechat;
      assert.ok(pipe.wallSeconds > 0, `pipe did not finish: ${pipe.error}`);
      assert.equal(pipe.linesIntact, pipe.linesExpected, "every piped line arrives intact");
      if (results.ncat.available) {
        const ncat = results.pipe.ncat;
        assert.ok((ncat.wallSeconds ?? ncat.lastByteSeconds) > 0, "ncat's pipe ran");
      }

      const handshakes = results.handshakes.securechat;
      assert.equal(handshakes.completed, handshakes.attempted);
      assert.ok(handshakes.perSecond > 0);

      const scale = results.scale.securechat;
      assert.equal(scale.connected, scale.attempted);
      assert.ok(scale.rssBytes > 0 && scale.settledRssBytes > 0);
      assert.ok(scale.joinMs > 0 && scale.clientJoinMs > 0);

      assertTraffic(results.bulk.transport, "bulk transport");
      assertTraffic(results.bulk.e2e, "bulk e2e");

      if (HAVE_NATS || (process.env.CI ?? "") !== "") {
        assert.deepEqual(results.cluster.runs.map((run: { replicas: number }) => run.replicas), [
          1,
          3,
        ]);
        for (const run of results.cluster.runs) {
          for (
            const field of [
              "appendsPerSecond",
              "singleAppendMs",
              "readWarmPerSecond",
              "readColdPerSecond",
            ]
          ) {
            assert.ok(isCount(run[field]) && run[field] > 0, `cluster R${run.replicas} ${field}`);
          }
        }
      }

      const rooms = results.rooms;
      assert.ok(rooms, "the rooms scenario ran");
      const stores = rooms.fanout.map((run: { store: string }) => run.store);
      assert.ok(stores.includes("none") && stores.includes("sqlite"), stores.join(","));
      if (HAVE_NATS || (process.env.CI ?? "") !== "") assert.ok(stores.includes("jetstream"));
      for (const run of rooms.fanout) {
        assert.ok(run.deliveriesPerSecond > 0 && run.p99 >= run.p50, JSON.stringify(run));
      }
      assert.ok(rooms.catchUp.length >= 1);
      for (const run of rooms.catchUp) assert.ok(run.messagesPerSecond > 0, JSON.stringify(run));
      const storage = results.storage;
      assert.ok(storage, "the storage scenario ran");
      for (
        const field of [
          "groupAppendsPerSecond",
          "eachAppendsPerSecond",
          "singleAppendMs",
          "memoryAppendsPerSecond",
          "readItemsPerSecond",
        ]
      ) {
        assert.ok(
          isCount(storage[field]) && storage[field] > 0,
          `storage.${field} = ${storage[field]}`,
        );
      }
      // SQLite does not compress: an item takes at least its body on disk.
      assert.ok(
        storage.bytesPerItem >= storage.bodyBytes,
        `${storage.bytesPerItem} bytes per item`,
      );
      assert.ok(storage.readItems > 0);
      // The web client, in Chromium; without Chromium only outside CI may it be skipped.
      const web = results.web;
      if ("skipped" in web && !Deno.env.get("CI")) {
        assert.match(web.skipped, /no Chromium/);
      } else {
        assert.ok(web.scriptGzipBytes > 0 && web.scriptGzipBytes <= 300 * 1024, "page weight");
        assert.ok(web.pageGzipBytes >= web.scriptGzipBytes);
        assert.ok(web.openToJoinedMs > 0 && web.connectMs > 0 && web.unlockMs > 0);
        assert.ok(web.openToJoinedMs >= web.unlockMs + web.connectMs);
        assert.equal(web.messages, 200);
        assert.ok(web.renderPerSecond > 0);
      }

      // The cluster's target (3 relays vs 1) is checked when nats-server ran the rooms scenario.
      assert.equal(results.targets.length, stores.includes("jetstream") ? 7 : 6);
      for (const target of results.targets) {
        assert.ok(target.met === null || typeof target.met === "boolean", target.name);
      }

      const markdown = readFileSync(join(out, "latest.md"), "utf8");
      assert.match(markdown, /^Measured \d{4}-\d{2}-\d{2} on /);
      assert.match(
        markdown,
        /\| scenario \| metric \| securechat \| ncat --chat --ssl \| ratio \|/,
      );
      assert.doesNotMatch(markdown, /NaN|undefined/);
      const svg = readFileSync(join(out, "chart.svg"), "utf8");
      assert.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
      assert.match(svg.trim(), /<\/svg>$/);
      assert.doesNotMatch(svg, /NaN|undefined|Infinity/);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  },
});
