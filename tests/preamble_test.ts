/**
 * What each side says first, and what happens when the other side is not
 * what it should be (PROTOCOL.md, "Preamble" and "Transport"):
 *
 * - `join` and `fingerprint` pointed at a server that is not a securechat
 *   relay (real HTTP servers in their own processes) say so at once instead
 *   of waiting out the handshake deadline;
 * - a relay answers a preamble of another version with its own preamble and
 *   a clean close, so the client can name both versions;
 * - a record over 262,144 bytes gets error 7 "too large" before the close.
 *
 * Set SECURECHAT_BIN to run the CLI tests against a built program.
 */

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { concat, utf8 } from "../lib/core/bytes.ts";
import { PROTOCOL_VERSION } from "../lib/core/version.ts";
import { encodePreamble, MAX_RECORD_BYTES } from "../lib/transport/channel.ts";
import { RelayErrorCode } from "../lib/transport/records.ts";
import { runCli, startRelay, TempDirs } from "./support/cli_process.ts";
import { openRaw, RawClient, SocketBytes } from "./support/raw_client.ts";

/** Runs a small server under `node` in its own process; resolves with its port and a stop function. */
async function foreignServer(source: string): Promise<{ port: number; stop: () => void }> {
  const child = spawn("node", ["-e", source], { stdio: ["ignore", "pipe", "inherit"] });
  const port = await new Promise<number>((resolve, reject) => {
    let text = "";
    child.stdout!.setEncoding("utf8");
    child.stdout!.on("data", (chunk: string) => {
      text += chunk;
      const match = /port (\d+)/.exec(text);
      if (match) resolve(Number(match[1]));
    });
    child.once("exit", () => reject(new Error(`server exited: ${text}`)));
  });
  return { port, stop: () => child.kill("SIGKILL") };
}

const LISTEN =
  `.listen(0, "127.0.0.1", function () { console.log("port " + this.address().port); })`;
/** An HTTP server (Node's llhttp): it answers "400 Bad Request" as soon as it reads our preamble. */
const HTTP_SERVER = `require("node:http").createServer((q, r) => r.end("hi"))${LISTEN}`;
/** A server that accepts and never says anything, as an HTTP server does while it waits for a line. */
const SILENT_SERVER = `require("node:net").createServer(() => {})${LISTEN}`;

Deno.test("join and fingerprint recognise a server that is not a securechat relay at once", async () => {
  const dirs = new TempDirs();
  const servers = [await foreignServer(HTTP_SERVER), await foreignServer(SILENT_SERVER)];
  try {
    for (const [index, server] of servers.entries()) {
      const address = `127.0.0.1:${server.port}`;
      for (const args of [["join", address, "--nick", "tester"], ["fingerprint", address]]) {
        const started = Date.now();
        const result = await runCli(args, { home: dirs.make() });
        const elapsed = Date.now() - started;
        const what = `${args[0]} against the ${index === 0 ? "HTTP" : "silent"} server`;
        assert.equal(result.code, 6, `${what}: ${result.stderr}`);
        assert.match(result.stderr, /not a securechat relay\?/, what);
        assert.doesNotMatch(result.stderr, /handshake timed out/, what);
        if (index === 0) {
          // What the server said is quoted, so the user sees it is a web server.
          assert.match(result.stderr, /"HTTP\/1\.1 400 Bad Request"/, what);
          assert.ok(elapsed < 5_000, `${what}: took ${elapsed} ms`);
        } else {
          assert.ok(elapsed < 8_000, `${what}: took ${elapsed} ms`);
        }
      }
    }
  } finally {
    for (const server of servers) server.stop();
    dirs.cleanup();
  }
});

Deno.test("join against a relay of another protocol version names both versions (exit 6)", async () => {
  const dirs = new TempDirs();
  const other = PROTOCOL_VERSION + 1;
  // A relay of the next version: it sends its preamble at once, then closes after reading ours.
  const server = createServer((socket) => {
    socket.on("error", () => {});
    socket.write(encodePreamble(other));
    socket.once("data", () => socket.end());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  try {
    const port = (server.address() as { port: number }).port;
    const started = Date.now();
    const result = await runCli(["join", `127.0.0.1:${port}`, "--nick", "tester"], {
      home: dirs.make(),
    });
    assert.equal(result.code, 6, result.stderr);
    assert.match(result.stderr, new RegExp(`relay speaks securechat protocol ${other}`));
    assert.match(result.stderr, new RegExp(`this program speaks ${PROTOCOL_VERSION}`));
    assert.ok(Date.now() - started < 5_000);
  } finally {
    await new Promise((resolve) => server.close(resolve));
    dirs.cleanup();
  }
});

Deno.test("a relay answers another version's preamble with its own and a clean close, and logs both", async () => {
  const dirs = new TempDirs();
  const relay = await startRelay({ home: dirs.make("relay") });
  try {
    const [host, port] = [relay.address.replace(/:\d+$/, ""), Number(relay.address.split(":")[1])];
    const other = PROTOCOL_VERSION + 1;
    // A client of the next version that sends its first handshake message without waiting.
    const bytes = new SocketBytes(await openRaw({ host, port }));
    bytes.socket.write(concat(encodePreamble(other), new Uint8Array(34).fill(7)));
    assert.deepEqual(await bytes.take(8), encodePreamble(PROTOCOL_VERSION));
    const ended = await bytes.untilEnd();
    // A reset could destroy the relay's preamble before the client reads it; a clean end cannot.
    assert.equal(ended.how, "end", `the relay reset the connection: ${ended.error}`);
    assert.equal(bytes.buffered.length, 0, "nothing after the preamble");
    await relay.proc.waitFor(
      "stderr",
      new RegExp(
        `client speaks securechat protocol ${other}, this relay speaks ${PROTOCOL_VERSION}`,
      ),
    );

    // Something that is not securechat at all (an SSH client here; an HTTP request would be taken
    // for a WebSocket upgrade) gets the preamble and the same clean close.
    const ssh = new SocketBytes(await openRaw({ host, port }));
    ssh.socket.write(utf8("SSH-2.0-OpenSSH_9.6\r\n"));
    assert.deepEqual(await ssh.take(8), encodePreamble(PROTOCOL_VERSION));
    assert.equal((await ssh.untilEnd()).how, "end");
    await relay.proc.waitFor(
      "stderr",
      /not speaking the securechat protocol \(it sent "SSH-2\.0-OpenSSH_9\.6"\)/,
    );
  } finally {
    await relay.proc.stop();
    dirs.cleanup();
  }
});

Deno.test("a record over 262,144 bytes gets error 7 before the close; 262,144 bytes is not too large", async () => {
  const dirs = new TempDirs();
  const relay = await startRelay({ home: dirs.make("relay") });
  try {
    const host = "127.0.0.1";
    const port = Number(relay.address.split(":")[1]);
    const lengthPrefix = (length: number) => {
      const prefix = new Uint8Array(4);
      new DataView(prefix.buffer).setUint32(0, length);
      return prefix;
    };

    // Over the limit: refused as soon as the length prefix is read.
    const big = await RawClient.connect({ host, port });
    big.sendTransport(concat(lengthPrefix(MAX_RECORD_BYTES + 1), new Uint8Array(1000)));
    const refused = await big.recordsUntilClose();
    assert.deepEqual(
      refused.records.map((record) => record.type === "error" ? record.code : record.type),
      [RelayErrorCode.tooLarge],
    );
    assert.equal(refused.ended.how, "end", String(refused.ended.error));
    const error = refused.records[0] as { message: string };
    assert.match(error.message, /too large/);
    assert.match(error.message, /262144/);

    // At the limit: read whole, then judged on its content (a publish before joining).
    const edge = await RawClient.connect({ host, port });
    const record = new Uint8Array(MAX_RECORD_BYTES);
    record[0] = 0x02;
    const stream = concat(lengthPrefix(MAX_RECORD_BYTES), record);
    for (let start = 0; start < stream.length; start += 65519) {
      edge.sendTransport(stream.subarray(start, start + 65519));
    }
    const judged = await edge.recordsUntilClose();
    assert.deepEqual(
      judged.records.map((record) => record.type === "error" ? record.code : record.type),
      [RelayErrorCode.notJoined],
    );
    await relay.proc.waitFor("stderr", /record of 262145 bytes/);
  } finally {
    await relay.proc.stop();
    dirs.cleanup();
  }
});
