/**
 * Running a relay as a service: log levels and JSON logs, Prometheus
 * metrics on a loopback port of their own, and the systemd unit in
 * contrib/ (checked by systemd-analyze, and its command line run for real).
 * Set SECURECHAT_BIN to run these against a built program.
 */

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { securechatCommand } from "./support/cli_command.ts";
import { CliProcess, runCli, startRelay, TempDirs } from "./support/cli_process.ts";

async function scrape(url: string): Promise<Map<string, number>> {
  const response = await fetch(url);
  assert.equal(response.status, 200);
  assert.match(response.headers.get("content-type") ?? "", /^text\/plain/);
  const values = new Map<string, number>();
  for (const line of (await response.text()).split("\n")) {
    const match = /^([a-z_]+(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (match) values.set(match[1], Number(match[2]));
  }
  return values;
}

Deno.test("serve --log-level warn --log-format json: one JSON object per line, refusals only", async () => {
  const dirs = new TempDirs();
  const relay = await startRelay({
    home: dirs.make("relay"),
    extraArgs: ["--log-level", "warn", "--log-format", "json"],
  });
  const holder = CliProcess.start(["join", relay.address, "--room", "r", "--nick", "bob"], {
    home: dirs.make(),
  });
  try {
    await holder.waitFor("stderr", /joined room/);
    const taken = await runCli(["join", relay.address, "--room", "r", "--nick", "bob"], {
      home: dirs.make(),
      input: "",
    });
    assert.equal(taken.code, 2);
    await relay.proc.waitFor("stderr", /nick bob is taken/);
    const lines = relay.proc.stderr.split("\n").filter((line) => line !== "");
    for (const line of lines) {
      const entry = JSON.parse(line);
      assert.deepEqual(Object.keys(entry), ["time", "level", "msg"], line);
      assert.ok(!Number.isNaN(Date.parse(entry.time)), line);
      assert.ok(
        ["warn", "error"].includes(entry.level),
        `an info line at --log-level warn: ${line}`,
      );
    }
    assert.ok(
      lines.some((line) => /"level":"warn","msg":"refused .* nick bob is taken/.test(line)),
    );
    assert.ok(!relay.proc.stderr.includes("join room="), "info lines were written");
  } finally {
    await holder.stop();
    await relay.proc.stop();
    dirs.cleanup();
  }
});

Deno.test("serve --metrics: Prometheus metrics on a loopback port of their own", async () => {
  const dirs = new TempDirs();
  const relay = await startRelay({
    home: dirs.make("relay"),
    extraArgs: ["--metrics", "127.0.0.1:0"],
  });
  const joins: CliProcess[] = [];
  try {
    const [, url] = await relay.proc.waitFor(
      "stderr",
      /metrics on (http:\/\/127\.0\.0\.1:(\d+)\/metrics)/,
    );
    assert.notEqual(new URL(url).port, relay.address.split(":")[1], "not the relay's port");
    const before = await scrape(url);
    assert.equal(before.get("securechat_relay_members"), 0);
    assert.equal(before.get('securechat_relay_refusals_total{reason="nick-taken"}'), 0);
    assert.ok((before.get("process_resident_memory_bytes") ?? 0) > 0, "process metrics");

    for (const nick of ["alice", "bob"]) {
      const proc = CliProcess.start(["join", relay.address, "--room", "m", "--nick", nick], {
        home: dirs.make(),
      });
      joins.push(proc);
      await proc.waitFor("stderr", /joined room/);
    }
    joins[0].write("one\ntwo\n");
    await joins[1].waitFor("stdout", /alice: two\n/);
    const taken = await runCli(["join", relay.address, "--room", "m", "--nick", "bob"], {
      home: dirs.make(),
      input: "",
    });
    assert.equal(taken.code, 2);
    const after = await scrape(url);
    assert.equal(after.get("securechat_relay_members"), 2);
    assert.equal(after.get("securechat_relay_rooms"), 1);
    assert.equal(after.get("securechat_relay_connections_open"), 2);
    assert.equal(after.get("securechat_relay_connections_accepted_total"), 3);
    assert.equal(after.get('securechat_relay_refusals_total{reason="nick-taken"}'), 1);
    assert.equal(after.get("securechat_relay_handshake_duration_seconds_count"), 3);
    assert.ok((after.get("securechat_relay_handshake_duration_seconds_sum") ?? 0) > 0);
    assert.ok((after.get("securechat_relay_records_received_total") ?? 0) >= 4);
    assert.ok((after.get("securechat_relay_record_bytes_received_total") ?? 0) > 100);
    assert.ok((after.get("securechat_relay_records_sent_total") ?? 0) >= 4);
    assert.ok((after.get("securechat_relay_record_bytes_sent_total") ?? 0) > 100);
    assert.equal((await fetch(url.replace("/metrics", "/"))).status, 404);

    // Anything but loopback is refused: metrics are for the operator, not the network.
    const open = await runCli(["serve", "--listen", "127.0.0.1:0", "--metrics", "0.0.0.0:0"], {
      home: dirs.make(),
    });
    assert.equal(open.code, 2);
    assert.match(open.stderr, /0\.0\.0\.0 is not a loopback address/);
  } finally {
    for (const proc of joins) await proc.stop();
    await relay.proc.stop();
    dirs.cleanup();
  }
});

const UNIT = new URL("../contrib/securechat-relay.service", import.meta.url);
const HAVE_ANALYZE = spawnSync("systemd-analyze", ["--version"], { stdio: "ignore" }).status === 0;

Deno.test("the systemd unit: hardened, and its command line starts a relay", async () => {
  const text = readFileSync(UNIT, "utf8");
  for (
    const setting of [
      "DynamicUser=yes",
      "ProtectSystem=strict",
      "NoNewPrivileges=yes",
      "ProtectHome=yes",
      "PrivateTmp=yes",
      "CapabilityBoundingSet=",
      "StateDirectory=securechat",
      "Environment=SECURECHAT_HOME=/var/lib/securechat",
    ]
  ) {
    assert.match(text, new RegExp(`^${setting}$`, "m"), setting);
  }
  const execStart = /^ExecStart=(\S+) (.+)$/m.exec(text)!;
  assert.equal(execStart[1], "/usr/local/bin/securechat");
  const args = execStart[2].split(" ");
  // The same arguments, for real, with free ports and a temporary state directory.
  const dirs = new TempDirs();
  const home = dirs.make("state");
  const relay = CliProcess.start(
    args.map((arg) => arg.replace(/:(7878|9464)$/, ":0").replace(/^0\.0\.0\.0:/, "127.0.0.1:")),
    { home },
  );
  try {
    await relay.waitFor("stdout", /^listening on 127\.0\.0\.1:\d+$/m);
    const [, url] = await relay.waitFor("stderr", /"msg":"metrics on (http:\S+\/metrics)"/);
    assert.ok((await scrape(url)).has("securechat_relay_members"));
    const status = await relay.stop("SIGTERM");
    assert.equal(status.code, 0);
  } finally {
    if (relay.child.exitCode === null) await relay.stop("SIGKILL");
    dirs.cleanup();
  }
});

Deno.test({
  name: "the systemd unit passes systemd-analyze verify, with an exposure score under 2",
  ignore: !HAVE_ANALYZE && (process.env.CI ?? "") === "",
  fn: () => {
    const dirs = new TempDirs();
    try {
      // verify wants ExecStart to exist: point it at this checkout's program.
      const { command } = securechatCommand();
      const unit = join(dirs.make("unit"), "securechat-relay.service");
      writeFileSync(
        unit,
        readFileSync(UNIT, "utf8").replace(
          /^ExecStart=\/usr\/local\/bin\/securechat /m,
          `ExecStart=${command} `,
        ),
      );
      const verify = spawnSync("systemd-analyze", ["verify", unit], { encoding: "utf8" });
      assert.equal(verify.status, 0, verify.stderr);
      const security = spawnSync("systemd-analyze", ["security", "--offline=true", unit], {
        encoding: "utf8",
      });
      const score = /Overall exposure level for \S+: ([\d.]+)/.exec(security.stdout);
      assert.ok(score, security.stdout + security.stderr);
      assert.ok(Number(score[1]) < 2, `exposure ${score[1]}`);
    } finally {
      dirs.cleanup();
    }
  },
});
