import assert from "node:assert/strict";
import { concat, utf8 } from "../lib/core/bytes.ts";
import {
  afterThisTurn,
  environmentVariable,
  nodeBuiltin,
  uninitializedBytes,
} from "../lib/core/runtime.ts";
import { socketStream } from "../lib/transport/byte_stream.ts";
import { acceptHandshake, connectHandshake } from "../lib/transport/channel.ts";
import { openTcpStream } from "../lib/transport/tcp.ts";
import { NetworkError } from "../lib/core/errors.ts";
import { generateIdentity } from "../lib/identity/identity.ts";
import { delay, rejection, socketPair, waitFor } from "./support/in_process.ts";

Deno.test("socketStream: delivers the bytes read before it first, and nothing until resumed", async () => {
  const pair = await socketPair();
  try {
    pair.client.write(utf8("-world"));
    await delay(50);
    const stream = socketStream(pair.server, { initialBytes: utf8("hello") });
    const chunks: Uint8Array[] = [];
    stream.onData = (chunk) => chunks.push(chunk.slice());
    await delay(50);
    assert.equal(chunks.length, 0, "a new stream is paused");
    stream.resume();
    await waitFor(() => concat(...chunks).length === 11, { what: "the bytes" });
    assert.equal(new TextDecoder().decode(concat(...chunks)), "hello-world");
    stream.pause();
    pair.client.write(utf8("!"));
    await delay(50);
    assert.equal(concat(...chunks).length, 11, "a paused stream delivers nothing");
    stream.resume();
    await waitFor(() => concat(...chunks).length === 12, { what: "the byte sent while paused" });
    assert.match(stream.remoteAddress, /^127\.0\.0\.1:\d+$/);
  } finally {
    await pair.close();
  }
});

Deno.test("socketStream: reports an orderly close once, without an error", async () => {
  const pair = await socketPair();
  try {
    const stream = socketStream(pair.server);
    const closes: (Error | undefined)[] = [];
    stream.onClose = (error) => closes.push(error);
    stream.resume();
    pair.client.end();
    await waitFor(() => closes.length > 0, { what: "the close" });
    await delay(20);
    assert.deepEqual(closes, [undefined]);
    assert.equal(stream.closed, true);
  } finally {
    await pair.close();
  }
});

Deno.test("socketStream: a socket that closed before it was wrapped still reports the close", async () => {
  const pair = await socketPair();
  try {
    pair.server.destroy();
    const stream = socketStream(pair.server);
    let closed = false;
    stream.onClose = () => closed = true;
    await waitFor(() => closed, { what: "the close" });
  } finally {
    await pair.close();
  }
});

Deno.test("the handshake runs on ByteStreams, and records cross both ways", async () => {
  const pair = await socketPair();
  try {
    const relayIdentity = generateIdentity();
    const [client, relay] = await Promise.all([
      connectHandshake({
        stream: socketStream(pair.client),
        identity: generateIdentity(),
        verifyRelay: () => {},
        timeoutMs: 5_000,
      }),
      acceptHandshake({ stream: socketStream(pair.server), identity: relayIdentity }),
    ]);
    assert.equal(client.remoteFingerprint, relayIdentity.fingerprint);
    const atRelay: string[] = [];
    const atClient: string[] = [];
    relay.onRecord = (record) => atRelay.push(new TextDecoder().decode(record));
    client.onRecord = (record) => atClient.push(new TextDecoder().decode(record));
    relay.start();
    client.start();
    client.send(utf8("up"));
    relay.send(utf8("down"));
    await waitFor(() => atRelay.length === 1 && atClient.length === 1, { what: "both records" });
    assert.deepEqual([atRelay, atClient], [["up"], ["down"]]);
    client.destroy();
    relay.destroy();
  } finally {
    await pair.close();
  }
});

Deno.test("openTcpStream: a refused connection is a NetworkError naming the address", async () => {
  const pair = await socketPair();
  const port = pair.server.localPort!;
  await pair.close();
  const error = await rejection(openTcpStream({ host: "127.0.0.1", port }, 2_000));
  assert.ok(error instanceof NetworkError);
  assert.match(error.message, new RegExp(`cannot connect to 127\\.0\\.0\\.1:${port}`));
});

Deno.test("runtime: Node built-ins are found under Deno, and the portable helpers work", async () => {
  assert.equal(typeof nodeBuiltin<{ scrypt: unknown }>("node:crypto")?.scrypt, "function");
  assert.equal(nodeBuiltin("node:no-such-module"), undefined);
  assert.equal(environmentVariable("SECURECHAT_SURELY_UNSET_VARIABLE"), undefined);
  const bytes = uninitializedBytes(100);
  assert.equal(bytes.length, 100);
  assert.equal(Object.getPrototypeOf(bytes), Uint8Array.prototype, "a plain array");
  assert.equal(uninitializedBytes(10, { pooled: true }).length, 10);
  const order: string[] = [];
  const done = new Promise<void>((resolve) =>
    afterThisTurn(() => {
      order.push("later");
      resolve();
    })
  );
  order.push("now");
  await done;
  assert.deepEqual(order, ["now", "later"]);
});
