/**
 * WebSocket members: the frame codec, the upgrade request, the origin
 * policy, and a relay carrying a room between a TCP member and members on
 * Deno's own (standard) WebSocket, which the web page uses too.
 */

import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import { concat, utf8 } from "../lib/core/bytes.ts";
import { NetworkError } from "../lib/core/errors.ts";
import { ChatClient } from "../lib/client/client.ts";
import type { RoomEvent } from "../lib/e2e/room.ts";
import { generateIdentity } from "../lib/identity/identity.ts";
import {
  isLoopbackOrigin,
  MAX_UPGRADE_REQUEST_BYTES,
  originPolicy,
  parseUpgradeRequest,
  UpgradeRefusal,
  webSocketAccept,
} from "../lib/transport/http_upgrade.ts";
import {
  CloseCode,
  encodeBinaryFrames,
  encodeClosePayload,
  encodeWebSocketFrame,
  MAX_WEBSOCKET_MESSAGE_BYTES,
  Opcode,
  WebSocketDecoder,
  type WebSocketEvent,
  WebSocketProtocolError,
} from "../lib/transport/websocket_frames.ts";
import { openWebSocketStream } from "../lib/transport/websocket_stream.ts";
import { Relay } from "../lib/relay/relay.ts";
import { rejection, waitFor } from "./support/in_process.ts";
import { runCli, startRelay as startCliRelay, TempDirs } from "./support/cli_process.ts";

const MASK = new Uint8Array([0x37, 0xfa, 0x21, 0x3d]);

function dataOf(events: WebSocketEvent[]): Uint8Array {
  return concat(
    ...events.flatMap((event) => event.type === "data" ? [event.bytes] : []),
  );
}

function decodeError(from: "client" | "server", bytes: Uint8Array): WebSocketProtocolError {
  const decoder = new WebSocketDecoder({ from });
  try {
    decoder.push(bytes);
  } catch (error) {
    assert.ok(error instanceof WebSocketProtocolError, String(error));
    return error;
  }
  throw new Error("the decoder accepted it");
}

Deno.test("frames: RFC 6455 examples decode, masked and not", () => {
  // RFC 6455 5.7: a single-frame masked text "Hello" is refused (text), the binary form decodes.
  const hello = utf8("Hello");
  const masked = encodeWebSocketFrame({ opcode: Opcode.binary, payload: hello, mask: MASK });
  assert.deepEqual([...masked.subarray(0, 6)], [0x82, 0x85, 0x37, 0xfa, 0x21, 0x3d]);
  assert.deepEqual([...masked.subarray(6)], [0x7f, 0x9f, 0x4d, 0x51, 0x58]);
  assert.deepEqual(dataOf(new WebSocketDecoder({ from: "client" }).push(masked)), hello);
  const plain = encodeWebSocketFrame({ opcode: Opcode.binary, payload: hello });
  assert.deepEqual(dataOf(new WebSocketDecoder({ from: "server" }).push(plain)), hello);
  // 256 bytes take the 2-byte length, 65536 bytes the 8-byte one.
  const medium = encodeWebSocketFrame({ opcode: Opcode.binary, payload: new Uint8Array(256) });
  assert.deepEqual([...medium.subarray(0, 4)], [0x82, 126, 1, 0]);
  const large = encodeWebSocketFrame({ opcode: Opcode.binary, payload: new Uint8Array(65536) });
  assert.deepEqual([...large.subarray(0, 10)], [0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0]);
});

Deno.test("frames: fragments, interleaved pings and byte-by-byte delivery give the same bytes", () => {
  const parts = [utf8("one "), utf8("two "), utf8("three")];
  const wire = concat(
    encodeWebSocketFrame({ opcode: Opcode.binary, payload: parts[0], fin: false, mask: MASK }),
    encodeWebSocketFrame({ opcode: Opcode.ping, payload: utf8("p"), mask: MASK }),
    encodeWebSocketFrame({
      opcode: Opcode.continuation,
      payload: parts[1],
      fin: false,
      mask: MASK,
    }),
    encodeWebSocketFrame({ opcode: Opcode.continuation, payload: parts[2], mask: MASK }),
    encodeWebSocketFrame({
      opcode: Opcode.close,
      payload: encodeClosePayload(1000, "bye"),
      mask: MASK,
    }),
  );
  const whole = new WebSocketDecoder({ from: "client" }).push(wire);
  const decoder = new WebSocketDecoder({ from: "client" });
  const dripped = [...wire].flatMap((byte) => decoder.push(new Uint8Array([byte])));
  for (const events of [whole, dripped]) {
    assert.equal(new TextDecoder().decode(dataOf(events)), "one two three");
    assert.deepEqual(events.filter((e) => e.type === "ping").length, 1);
    assert.deepEqual(events.at(-1), { type: "close", code: 1000, reason: "bye" });
  }
  assert.equal(decoder.midFrame, false);
});

Deno.test("frames: encodeBinaryFrames splits into 65,535-byte frames a client reads back", () => {
  const bytes = new Uint8Array(200_000).map((_, i) => (i * 7919) >>> 3);
  const wire = encodeBinaryFrames(bytes);
  assert.equal(wire.length, bytes.length + 4 * 4);
  assert.deepEqual(dataOf(new WebSocketDecoder({ from: "server" }).push(wire)), bytes);
  assert.equal(encodeBinaryFrames(new Uint8Array(0)).length, 0);
});

Deno.test("frames: every violation is refused with the close code that names it", () => {
  const frame = (options: Parameters<typeof encodeWebSocketFrame>[0]) =>
    encodeWebSocketFrame({ mask: MASK, ...options });
  const cases: [string, Uint8Array, number, "client" | "server"][] = [
    [
      "unmasked client frame",
      encodeWebSocketFrame({ opcode: 2, payload: utf8("x") }),
      1002,
      "client",
    ],
    ["masked server frame", frame({ opcode: 2, payload: utf8("x") }), 1002, "server"],
    ["text message", frame({ opcode: Opcode.text, payload: utf8("hi") }), 1003, "client"],
    ["reserved bit", frame({ opcode: 2, payload: utf8("x"), rsv: 4 }), 1002, "client"],
    ["unknown data opcode", frame({ opcode: 3, payload: utf8("x") }), 1002, "client"],
    ["unknown control opcode", frame({ opcode: 0xb, payload: utf8("x") }), 1002, "client"],
    [
      "fragmented ping",
      frame({ opcode: Opcode.ping, payload: utf8("x"), fin: false }),
      1002,
      "client",
    ],
    [
      "ping over 125 bytes",
      frame({ opcode: Opcode.ping, payload: new Uint8Array(126) }),
      1002,
      "client",
    ],
    ["stray continuation", frame({ opcode: 0, payload: utf8("x") }), 1002, "client"],
    [
      "new message inside a fragmented one",
      concat(
        frame({ opcode: 2, payload: utf8("a"), fin: false }),
        frame({ opcode: 2, payload: utf8("b") }),
      ),
      1002,
      "client",
    ],
    [
      "close of one byte",
      frame({ opcode: Opcode.close, payload: new Uint8Array([3]) }),
      1002,
      "client",
    ],
    [
      "reserved close code 1005",
      frame({ opcode: 8, payload: encodeClosePayload(1005) }),
      1002,
      "client",
    ],
    [
      "close reason not UTF-8",
      frame({ opcode: 8, payload: concat(encodeClosePayload(1000), new Uint8Array([0xc3, 0x28])) }),
      1007,
      "client",
    ],
    // 126 in the 2-byte form, 70000 in the 8-byte form... 100 in the 2-byte form is not shortest.
    ["length not in shortest form", new Uint8Array([0x82, 0xfe, 0, 100, ...MASK]), 1002, "client"],
    [
      "8-byte length not in shortest form",
      new Uint8Array([0x82, 0xff, 0, 0, 0, 0, 0, 0, 1, 0, ...MASK]),
      1002,
      "client",
    ],
    [
      "message over the limit",
      new Uint8Array([0x82, 0xff, 0, 0, 0, 0, 0, 0x20, 0, 0, ...MASK]),
      1009,
      "client",
    ],
    [
      "length beyond 2^53",
      new Uint8Array([0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, ...MASK]),
      1009,
      "client",
    ],
  ];
  for (const [name, bytes, code, from] of cases) {
    assert.equal(decodeError(from, bytes).code, code, name);
  }
  // Fragments add up against the limit too.
  const half = MAX_WEBSOCKET_MESSAGE_BYTES / 2 + 1;
  const decoder = new WebSocketDecoder({ from: "client" });
  decoder.push(frame({ opcode: 2, payload: new Uint8Array(half), fin: false }));
  assert.throws(
    () => decoder.push(frame({ opcode: 0, payload: new Uint8Array(half) }).subarray(0, 14)),
    (error: unknown) =>
      error instanceof WebSocketProtocolError && error.code === CloseCode.messageTooBig,
  );
});

const KEY = "dGhlIHNhbXBsZSBub25jZQ==";

function request(lines: string[]): Uint8Array {
  return utf8(`${lines.join("\r\n")}\r\n\r\n`);
}

const GOOD = [
  "GET / HTTP/1.1",
  "Host: relay.example:7878",
  "Upgrade: websocket",
  "Connection: keep-alive, Upgrade",
  `Sec-WebSocket-Key: ${KEY}`,
  "Sec-WebSocket-Version: 13",
];

Deno.test("upgrade: the RFC's accept value, and a well-formed request from a program or a loopback page", () => {
  assert.equal(webSocketAccept(KEY), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  const policy = originPolicy();
  assert.deepEqual(parseUpgradeRequest(request(GOOD), policy), {
    path: "/",
    origin: undefined,
    key: KEY,
  });
  const page = parseUpgradeRequest(request([...GOOD, "Origin: http://127.0.0.1:8080"]), policy);
  assert.equal(page.origin, "http://127.0.0.1:8080");
});

Deno.test("upgrade: refusals carry the status that says why", () => {
  const policy = originPolicy(["https://chat.example"]);
  const without = (name: string) => GOOD.filter((line) => !line.startsWith(name));
  const cases: [string, string[], number][] = [
    ["plain HTTP visit", ["GET / HTTP/1.1", "Host: relay"], 426],
    ["HTTP/1.0", ["GET / HTTP/1.0", ...GOOD.slice(1)], 400],
    ["POST", ["POST / HTTP/1.1", ...GOOD.slice(1)], 400],
    ["no Host", without("Host"), 400],
    ["no Connection: Upgrade", [...without("Connection"), "Connection: keep-alive"], 400],
    ["version 8", [...without("Sec-WebSocket-Version"), "Sec-WebSocket-Version: 8"], 426],
    ["short key", [...without("Sec-WebSocket-Key"), "Sec-WebSocket-Key: AAAA"], 400],
    ["other path", ["GET /chat HTTP/1.1", ...GOOD.slice(1)], 404],
    ["foreign origin", [...GOOD, "Origin: https://evil.example"], 403],
    ["null origin", [...GOOD, "Origin: null"], 403],
    ["two keys", [...GOOD, `Sec-WebSocket-Key: ${KEY}`], 400],
    ["two origins", [...GOOD, "Origin: http://127.0.0.1:1", "Origin: https://evil.example"], 400],
    ["folded header", [...GOOD, "X-A: b", " folded"], 400],
    ["control character", [...GOOD, "X-A: b\x00c"], 400],
  ];
  for (const [name, lines, status] of cases) {
    assert.throws(
      () => parseUpgradeRequest(request(lines), policy),
      (error: unknown) => error instanceof UpgradeRefusal && error.status === status,
      name,
    );
  }
  assert.equal(
    parseUpgradeRequest(request([...GOOD, "Origin: https://chat.example"]), policy).origin,
    "https://chat.example",
  );
  assert.ok(MAX_UPGRADE_REQUEST_BYTES <= 8192);
});

Deno.test("origin policy: loopback pages only, unless listed", () => {
  for (
    const origin of [
      "http://127.0.0.1:8080",
      "http://localhost:1",
      "https://[::1]:4443",
      "http://127.9.8.7",
    ]
  ) {
    assert.ok(isLoopbackOrigin(origin), origin);
  }
  for (
    const origin of [
      "https://example.com",
      "http://127.0.0.1.evil.example",
      "http://localhost.evil.example:80",
      "file://",
      "null",
      "http://127.0.0.1:8080/path",
      "chrome-extension://abc",
    ]
  ) {
    assert.ok(!isLoopbackOrigin(origin), origin);
  }
  assert.ok(originPolicy(["*"])("https://anything.example"));
});

function collect(events: RoomEvent[]) {
  return (event: RoomEvent) => events.push(event);
}

Deno.test("relay: TCP and WebSocket members share a room and cannot be told apart", async () => {
  const logs: string[] = [];
  const relay = await Relay.listen({
    identity: generateIdentity(),
    port: 0,
    log: (line) => logs.push(line),
  });
  const url = `ws://127.0.0.1:${relay.address.port}/`;
  const clients: ChatClient[] = [];
  try {
    const events = { tcp: [] as RoomEvent[], ws1: [] as RoomEvent[], ws2: [] as RoomEvent[] };
    const identities = {
      tcp: generateIdentity(),
      ws1: generateIdentity(),
      ws2: generateIdentity(),
    };
    const join = (who: keyof typeof events, viaWebSocket: boolean) =>
      ChatClient.connect({
        ...relay.address,
        identity: identities[who],
        room: "mixed",
        nick: who,
        verifyRelay: ({ fingerprint }) => assert.equal(fingerprint, relay.fingerprint),
        onEvent: collect(events[who]),
        openStream: viaWebSocket
          ? (timeoutMs) => openWebSocketStream({ url, timeoutMs })
          : undefined,
      });
    clients.push(await join("tcp", false), await join("ws1", true), await join("ws2", true));
    await waitFor(
      () =>
        Object.values(events).every((list) =>
          list.filter((e) => e.type === "member-joined").length === 2
        ),
      { what: "everyone to see everyone" },
    );
    await clients[0].send(["from tcp"]);
    await clients[1].send(["from ws1"]);
    clients[2].sendDirect(
      clients[2].members().find((member) => member.nick === "tcp")!.memberId,
      "direct from ws2",
    );
    const texts = (list: RoomEvent[]) =>
      list.flatMap((e) =>
        e.type === "message" ? [`${e.from.nick}/${e.from.fingerprint}: ${e.text}`] : []
      );
    await waitFor(
      () =>
        texts(events.tcp).length === 2 && texts(events.ws1).length === 1 &&
        texts(events.ws2).length === 2,
      { what: "the messages" },
    );
    const fp = (who: keyof typeof identities) => identities[who].fingerprint;
    assert.deepEqual(texts(events.tcp).sort(), [
      `ws1/${fp("ws1")}: from ws1`,
      `ws2/${fp("ws2")}: direct from ws2`,
    ]);
    assert.deepEqual(texts(events.ws1), [`tcp/${fp("tcp")}: from tcp`]);
    assert.deepEqual(texts(events.ws2).sort(), [
      `tcp/${fp("tcp")}: from tcp`,
      `ws1/${fp("ws1")}: from ws1`,
    ]);
    assert.equal(logs.filter((line) => line.startsWith("websocket ")).length, 2, logs.join("\n"));
    assert.equal(relay.roomSizes().get("mixed"), 3);
  } finally {
    await Promise.all(clients.map((client) => client.close()));
    await relay.close();
  }
});

/** Opens a raw TCP connection and collects what comes back. */
async function raw(
  port: number,
): Promise<{ socket: Socket; received: () => string; closed: () => boolean }> {
  const socket = connect({ host: "127.0.0.1", port });
  const chunks: Uint8Array[] = [];
  let closed = false;
  socket.on("data", (chunk: Uint8Array) => chunks.push(chunk));
  socket.on("close", () => closed = true);
  socket.on("error", () => {});
  await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
  return {
    socket,
    // "latin1" is windows-1252 in TextDecoder: one character per byte, some of them remapped.
    received: () => new TextDecoder("latin1").decode(concat(...chunks)),
    closed: () => closed,
  };
}

Deno.test("relay: answers pings, refuses foreign origins, and explains itself to a plain visit", async () => {
  const logs: string[] = [];
  const relay = await Relay.listen({
    identity: generateIdentity(),
    port: 0,
    log: (l) => logs.push(l),
  });
  const port = relay.address.port;
  try {
    const visit = await raw(port);
    visit.socket.write(request(["GET / HTTP/1.1", "Host: x"]));
    await waitFor(() => visit.closed(), { what: "the visit to end" });
    assert.match(visit.received(), /^HTTP\/1\.1 426 Upgrade Required\r\n/);
    assert.match(visit.received(), /this is a securechat relay/);

    const foreign = await raw(port);
    foreign.socket.write(request([...GOOD, "Origin: https://evil.example"]));
    await waitFor(() => foreign.closed(), { what: "the foreign page to be refused" });
    assert.match(foreign.received(), /^HTTP\/1\.1 403 Forbidden\r\n/);
    assert.ok(logs.some((line) => /upgrade refused \(403\)/.test(line)), logs.join("\n"));

    const page = await raw(port);
    page.socket.write(request([...GOOD, "Origin: http://localhost:9999"]));
    page.socket.write(
      encodeWebSocketFrame({ opcode: Opcode.ping, payload: utf8("are you there"), mask: MASK }),
    );
    await waitFor(() => page.received().includes("are you there"), { what: "the pong" });
    assert.match(page.received(), /^HTTP\/1\.1 101 Switching Protocols\r\n/);
    assert.ok(page.received().includes("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
    // A close from the client is answered with the same code, then the relay ends TCP.
    page.socket.write(
      encodeWebSocketFrame({ opcode: Opcode.close, payload: encodeClosePayload(1000), mask: MASK }),
    );
    await waitFor(() => page.closed(), { what: "the close handshake" });
    assert.ok(
      page.received().endsWith("\u02c6\x02\x03\xe8"), // 0x88 0x02 0x03 0xe8 in windows-1252
      JSON.stringify(page.received()),
    );
  } finally {
    await relay.close();
  }
});

Deno.test("relay: webSocket: false keeps WebSocket out, and a page that cannot connect is told so", async () => {
  const relay = await Relay.listen({ identity: generateIdentity(), port: 0, webSocket: false });
  try {
    const error = await rejection(
      openWebSocketStream({ url: `ws://127.0.0.1:${relay.address.port}/`, timeoutMs: 3_000 }),
    );
    assert.ok(error instanceof NetworkError, String(error));
    assert.match(error.message, /the WebSocket did not open/);
  } finally {
    await relay.close();
  }
});

Deno.test("serve: --ws-origin admits a listed page, --no-websocket turns WebSocket off", async () => {
  const dirs = new TempDirs();
  const listed = await startCliRelay({
    home: dirs.make("a"),
    extraArgs: ["--ws-origin", "https://chat.example"],
  });
  const off = await startCliRelay({ home: dirs.make("b"), extraArgs: ["--no-websocket"] });
  try {
    const portOf = (address: string) => Number(address.split(":").at(-1));
    const port = portOf(listed.address);
    const ok = await raw(port);
    ok.socket.write(request([...GOOD, "Origin: https://chat.example"]));
    await waitFor(() => ok.received().includes("\r\n\r\n"), { what: "the answer" });
    assert.match(ok.received(), /^HTTP\/1\.1 101 /);
    ok.socket.destroy();
    const other = await raw(port);
    other.socket.write(request([...GOOD, "Origin: https://other.example"]));
    await waitFor(() => other.closed(), { what: "the refusal" });
    assert.match(other.received(), /^HTTP\/1\.1 403 /);
    await listed.proc.waitFor("stderr", /upgrade refused \(403\)/);

    const tcpOnly = await raw(portOf(off.address));
    tcpOnly.socket.write(request(GOOD));
    await waitFor(() => tcpOnly.closed(), { what: "the TCP-only relay to drop it" });
    assert.equal(tcpOnly.received().startsWith("HTTP"), false, "no HTTP answer");

    const bad = await runCli(["serve", "--ws-origin", "https://chat.example/"], {
      home: dirs.make("c"),
    });
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /expected an origin such as/);
  } finally {
    await listed.proc.stop();
    await off.proc.stop();
    dirs.cleanup();
  }
});
