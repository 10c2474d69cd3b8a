/**
 * Hostile WebSocket clients against a relay that also carries TCP members
 * (issue 12): oversized, unmasked, text and reserved frames, bad close
 * frames, fragmented control frames, garbage before and after the upgrade,
 * an oversized request head, a page from a foreign origin, and an upgrade
 * dripped in slowly. Each must end only the offender's connection, with the
 * status or close code that names the fault, while a TCP member and a
 * WebSocket member keep talking. A client that fragments every write into
 * 1-byte frames with pings between must be served like any other. The frame
 * decoder and the upgrade parser are fuzzed (FUZZ_RUNS inputs each).
 */

import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import fc from "fast-check";
import { concat, utf8 } from "../../lib/core/bytes.ts";
import { connectHandshake } from "../../lib/transport/channel.ts";
import {
  CloseCode,
  encodeClosePayload,
  encodeWebSocketFrame,
  Opcode,
  WebSocketDecoder,
  type WebSocketEvent,
  WebSocketProtocolError,
} from "../../lib/transport/websocket_frames.ts";
import {
  isLoopbackOrigin,
  originPolicy,
  parseUpgradeRequest,
  UpgradeRefusal,
  upgradeRequestEnd,
  webSocketAccept,
} from "../../lib/transport/http_upgrade.ts";
import { openWebSocketStream } from "../../lib/transport/websocket_stream.ts";
import { ChatClient } from "../../lib/client/client.ts";
import type { RoomEvent } from "../../lib/e2e/room.ts";
import { generateIdentity } from "../../lib/identity/identity.ts";
import { delay, joinRoom, seededRandom, startRelay, waitFor } from "../support/in_process.ts";
import { rawWebSocket } from "../support/websocket.ts";
import { fuzzParser, mutationsOf, sameBytes } from "./support/fuzz.ts";
import { guarded } from "./support/observe.ts";
import { ADVERSARIAL_SEED, ATTEMPTS } from "./support/knobs.ts";
import { Attack } from "./support/scoreboard.ts";

const MASK = new Uint8Array([1, 2, 3, 4]);
const HANDSHAKE_TIMEOUT_MS = 1_500;

function upgradeRequest(port: number, extra: string[] = []): Uint8Array {
  return utf8(
    [
      "GET / HTTP/1.1",
      `Host: 127.0.0.1:${port}`,
      "Upgrade: websocket",
      "Connection: Upgrade",
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
      "Sec-WebSocket-Version: 13",
      ...extra,
    ].join("\r\n") + "\r\n\r\n",
  );
}

/** A raw connection that records what the relay sends and when it closes. */
interface Hostile {
  socket: Socket;
  received(): Uint8Array;
  closed(): boolean;
}

async function hostile(port: number): Promise<Hostile> {
  const socket = connect({ host: "127.0.0.1", port });
  const chunks: Uint8Array[] = [];
  let closed = false;
  socket.on("data", (chunk: Uint8Array) => chunks.push(chunk));
  socket.on("close", () => closed = true);
  socket.on("error", () => {});
  await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
  return { socket, received: () => concat(...chunks), closed: () => closed };
}

/** The HTTP status line and the frames the relay sent after its response head. */
function answerOf(bytes: Uint8Array): { status: string; frames: WebSocketEvent[] } {
  const text = new TextDecoder("latin1").decode(bytes);
  const end = text.indexOf("\r\n\r\n");
  const status = text.slice(0, text.indexOf("\r\n"));
  if (end < 0 || !status.includes(" 101 ")) return { status, frames: [] };
  const frames = new WebSocketDecoder({ from: "server" }).push(bytes.subarray(end + 4));
  return { status, frames };
}

function closeCodeOf(frames: WebSocketEvent[]): number | undefined {
  const close = frames.find((frame) => frame.type === "close");
  return close?.type === "close" ? close.code : undefined;
}

/** A TCP member and a WebSocket member in one room, to check the relay still serves. */
async function bystanders(relay: Awaited<ReturnType<typeof startRelay>>["relay"]) {
  const alice = await joinRoom({ relay, room: "calm", nick: "alice" });
  const bobEvents: RoomEvent[] = [];
  const bob = await ChatClient.connect({
    ...relay.address,
    identity: generateIdentity(),
    room: "calm",
    nick: "bob",
    verifyRelay: ({ fingerprint }) => assert.equal(fingerprint, relay.fingerprint),
    onEvent: (event) => bobEvents.push(event),
    openStream: (timeoutMs) =>
      openWebSocketStream({ url: `ws://127.0.0.1:${relay.address.port}/`, timeoutMs }),
  });
  await waitFor(() => alice.client.members().length === 1, { what: "alice sees bob" });
  let round = 0;
  return {
    alice,
    /** Alice's line reaches bob over WebSocket and bob's reaches alice over TCP. */
    async stillTalking(attack: Attack): Promise<void> {
      const line = `round ${round++}`;
      await alice.client.send([line]);
      await bob.send([`${line} back`]);
      const bobGot = () => bobEvents.some((e) => e.type === "message" && e.text === line);
      await waitFor(() => bobGot() && alice.texts().includes(`${line} back`), {
        what: "the bystanders' messages",
        timeoutMs: 3_000,
      }).catch(() => attack.lost(1, `a bystander's message was lost (${line})`));
    },
    async close(): Promise<void> {
      await alice.client.close();
      await bob.close();
    },
  };
}

interface FrameAttack {
  name: string;
  /** Bytes sent after a valid upgrade. */
  frames: () => Uint8Array;
  /** The close code the relay must answer with. */
  code: number;
}

const FRAME_ATTACKS: FrameAttack[] = [
  {
    name: "websocket: a frame declaring 2 MiB",
    frames: () => new Uint8Array([0x82, 0xff, 0, 0, 0, 0, 0, 0x20, 0, 0, ...MASK, 1, 2, 3]),
    code: CloseCode.messageTooBig,
  },
  {
    name: "websocket: an unmasked client frame",
    frames: () => encodeWebSocketFrame({ opcode: Opcode.binary, payload: utf8("SECCHAT\x01") }),
    code: CloseCode.protocolError,
  },
  {
    name: "websocket: a close reason that is not UTF-8",
    frames: () =>
      encodeWebSocketFrame({
        opcode: Opcode.close,
        payload: concat(encodeClosePayload(1000), new Uint8Array([0xff, 0xfe, 0xc3])),
        mask: MASK,
      }),
    code: CloseCode.invalidPayload,
  },
  {
    name: "websocket: a text message",
    frames: () => encodeWebSocketFrame({ opcode: Opcode.text, payload: utf8("hello"), mask: MASK }),
    code: CloseCode.unsupportedData,
  },
  {
    name: "websocket: reserved bits (an extension never agreed)",
    frames: () =>
      encodeWebSocketFrame({ opcode: Opcode.binary, payload: utf8("x"), mask: MASK, rsv: 4 }),
    code: CloseCode.protocolError,
  },
  {
    name: "websocket: a fragmented ping",
    frames: () =>
      encodeWebSocketFrame({ opcode: Opcode.ping, payload: utf8("x"), fin: false, mask: MASK }),
    code: CloseCode.protocolError,
  },
  {
    name: "websocket: a continuation with no message",
    frames: () =>
      encodeWebSocketFrame({ opcode: Opcode.continuation, payload: utf8("x"), mask: MASK }),
    code: CloseCode.protocolError,
  },
];

Deno.test("websocket: hostile frames end only the offender, with the close code that names it", async () => {
  const { relay } = await startRelay({ handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS });
  const port = relay.address.port;
  const calm = await bystanders(relay);
  const attacks: Attack[] = [];
  try {
    for (const spec of FRAME_ATTACKS) {
      const attack = new Attack(spec.name);
      attacks.push(attack);
      await guarded(attack, async () => {
        for (let i = 0; i < ATTEMPTS; i++) {
          attack.attempt();
          const conn = await hostile(port);
          conn.socket.write(upgradeRequest(port));
          conn.socket.write(spec.frames());
          await waitFor(() => conn.closed(), { what: `${spec.name} to be closed` })
            .catch(() => {});
          const { status, frames } = answerOf(conn.received());
          const code = closeCodeOf(frames);
          if (conn.closed() && code === spec.code) attack.detected();
          else {
            assert.fail(`${spec.name}: ${status}, close code ${code}, closed ${conn.closed()}`);
          }
          conn.socket.destroy();
        }
        await calm.stillTalking(attack);
      });
    }
  } finally {
    await calm.close();
    await relay.close();
    for (const attack of attacks) attack.save();
  }
  for (const attack of attacks) {
    assert.equal(attack.row.detected, attack.row.attempts, attack.summary());
    assert.ok(attack.clean, attack.summary());
  }
});

Deno.test("websocket: garbage after the upgrade and before it ends only that connection", async () => {
  const { relay } = await startRelay({ handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS });
  const port = relay.address.port;
  const calm = await bystanders(relay);
  const after = new Attack("websocket: random bytes after the upgrade");
  const before = new Attack("websocket: garbage instead of an upgrade request");
  const random = seededRandom(ADVERSARIAL_SEED);
  const junk = (length: number) => Uint8Array.from({ length }, () => Math.floor(random() * 256));
  try {
    await guarded(after, async () => {
      for (let i = 0; i < ATTEMPTS * 4; i++) {
        after.attempt();
        const conn = await hostile(port);
        conn.socket.write(upgradeRequest(port));
        // Random bytes may start a valid frame that waits for its body: keep sending until
        // the relay finds a fault in the frames or in the bytes they carry.
        const deadline = performance.now() + 5_000;
        while (!conn.closed() && performance.now() < deadline) {
          conn.socket.write(junk(1 + Math.floor(random() * 300)));
          await delay(20);
        }
        if (conn.closed()) after.detected();
        conn.socket.destroy();
      }
      await calm.stillTalking(after);
    });
    await guarded(before, async () => {
      const heads = [
        utf8("GARBAGE / HTTP/1.1\r\n\r\n"),
        utf8("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\x00\x01\x02\r\n\r\n"),
        concat(utf8("G"), junk(200), utf8("\r\n\r\n")),
        concat(utf8("GET / HTTP/1.1\r\nX: "), new Uint8Array(9000).fill(0x61)),
        upgradeRequest(port, ["Origin: https://attacker.example"]),
        upgradeRequest(port, ["Origin: null"]),
      ];
      const statuses = [400, 400, 400, 431, 403, 403];
      for (const [index, head] of heads.entries()) {
        before.attempt();
        const conn = await hostile(port);
        conn.socket.write(head);
        await waitFor(() => conn.closed(), { what: "the refusal" });
        const { status } = answerOf(conn.received());
        if (status.startsWith(`HTTP/1.1 ${statuses[index]} `)) before.detected();
        else assert.fail(`head ${index}: expected ${statuses[index]}, got ${status}`);
        conn.socket.destroy();
      }
      await calm.stillTalking(before);
    });
  } finally {
    await calm.close();
    await relay.close();
    after.save();
    before.save();
  }
  for (const attack of [after, before]) {
    assert.equal(attack.row.detected, attack.row.attempts, attack.summary());
    assert.ok(attack.clean, attack.summary());
  }
});

Deno.test("websocket: an upgrade dripped in slowly is cut at the handshake deadline", async () => {
  const { relay, logs } = await startRelay({ handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS });
  const port = relay.address.port;
  const attack = new Attack("websocket: slowloris upgrade request");
  const calm = await bystanders(relay);
  const drippers: Hostile[] = [];
  try {
    await guarded(attack, async () => {
      const request = upgradeRequest(port);
      const started = performance.now();
      for (let i = 0; i < ATTEMPTS; i++) drippers.push(await hostile(port));
      attack.attempt(drippers.length);
      // One byte every 100 ms: the whole request would take 15 s.
      for (let offset = 0; offset < request.length; offset++) {
        const open = drippers.filter((d) => !d.closed());
        if (open.length === 0) break;
        for (const dripper of open) dripper.socket.write(request.subarray(offset, offset + 1));
        if (offset === 5) await calm.stillTalking(attack);
        await delay(100);
      }
      const elapsed = performance.now() - started;
      attack.detected(drippers.filter((d) => d.closed()).length);
      assert.ok(elapsed < HANDSHAKE_TIMEOUT_MS + 2_000, `cut after ${elapsed.toFixed(0)} ms`);
      assert.ok(logs.some((line) => /handshake failed .*timed out/.test(line)), logs.join("\n"));
      await calm.stillTalking(attack);
    });
  } finally {
    for (const dripper of drippers) dripper.socket.destroy();
    await calm.close();
    await relay.close();
    attack.save();
  }
  assert.equal(attack.row.detected, attack.row.attempts, attack.summary());
  assert.ok(attack.clean, attack.summary());
});

Deno.test("websocket: a client that sends 1-byte fragments with pings between is a full member", async () => {
  const { relay } = await startRelay({ handshakeTimeoutMs: 5_000 });
  const attack = new Attack("websocket: 1-byte fragments, pings between", { harmless: true });
  const calm = await bystanders(relay);
  try {
    await guarded(attack, async () => {
      attack.attempt();
      const identity = generateIdentity();
      const events: RoomEvent[] = [];
      const ws = await rawWebSocket({ port: relay.address.port, fragmentBytes: 1 });
      const carol = await ChatClient.connect({
        ...relay.address,
        identity,
        room: "calm",
        nick: "carol",
        verifyRelay: ({ fingerprint }) => assert.equal(fingerprint, relay.fingerprint),
        onEvent: (event) => events.push(event),
        openStream: () => Promise.resolve(ws.stream),
      });
      await carol.send(["in tiny pieces"]);
      await calm.stillTalking(attack);
      const alice = calm.alice;
      await waitFor(() => alice.texts().includes("in tiny pieces"), { what: "carol's message" })
        .catch(() => attack.lost(1, "carol's message did not arrive"));
      const pongs = ws.events.filter((event) => event.type === "pong").length;
      assert.ok(pongs > 100, `only ${pongs} pongs`);
      await carol.close();
    });
  } finally {
    await calm.close();
    await relay.close();
    attack.save();
  }
  assert.equal(attack.row.detected, 0, attack.summary());
  assert.ok(attack.clean, attack.summary());
});

// The helper is used by the browser tests too; keep it honest here.
Deno.test("websocket: connectHandshake over a raw upgraded socket names the relay", async () => {
  const { relay } = await startRelay();
  try {
    const ws = await rawWebSocket({ port: relay.address.port, origin: "http://127.0.0.1:1" });
    const channel = await connectHandshake({
      stream: ws.stream,
      identity: generateIdentity(),
      verifyRelay: () => {},
    });
    assert.equal(channel.remoteFingerprint, relay.fingerprint);
    channel.destroy();
  } finally {
    await relay.close();
  }
});

Deno.test("fuzz: WebSocket frames from clients", async () => {
  const attack = new Attack("fuzz: WebSocket frames");
  try {
    await fuzzParser({
      attack,
      inputs: fc.record({
        payloads: fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 6 }),
        fragment: fc.integer({ min: 1, max: 64 }),
        junk: fc.uint8Array({ maxLength: 200 }),
        cuts: fc.array(fc.nat(4000), { maxLength: 10 }),
        garbage: fc.boolean(),
      }),
      parse: ({ payloads, fragment, junk, cuts, garbage }) => {
        const frames = payloads.flatMap((payload) => {
          const pieces: Uint8Array[] = [];
          for (let start = 0; start === 0 || start < payload.length; start += fragment) {
            const last = start + fragment >= payload.length;
            pieces.push(encodeWebSocketFrame({
              opcode: start === 0 ? Opcode.binary : Opcode.continuation,
              payload: payload.subarray(start, start + fragment),
              fin: last,
              mask: MASK,
            }));
          }
          return pieces;
        });
        const stream = garbage ? junk : concat(...frames);
        const points = [...new Set(cuts.map((cut) => cut % (stream.length + 1)))].sort((a, b) =>
          a - b
        );
        const decoder = new WebSocketDecoder({ from: "client", maxMessageBytes: 1000 });
        const out: Uint8Array[] = [];
        let from = 0;
        for (const point of [...points, stream.length]) {
          for (const event of decoder.push(stream.slice(from, point))) {
            if (event.type === "data") out.push(event.bytes);
          }
          from = point;
        }
        const received = concat(...out);
        if (received.length > stream.length) return { forged: "more bytes out than in" };
        if (!garbage && !sameBytes(received, concat(...payloads))) {
          return { forged: "payload changed in transit through the decoder" };
        }
        return "accepted";
      },
      refusal: (error) => error instanceof WebSocketProtocolError,
    });
  } finally {
    attack.save();
  }
  assert.ok(attack.clean, attack.summary());
});

Deno.test("fuzz: WebSocket upgrade requests", async () => {
  const attack = new Attack("fuzz: WebSocket upgrade requests");
  const lines = [
    "GET / HTTP/1.1",
    "Host: 127.0.0.1:7878",
    "Upgrade: websocket",
    "Connection: Upgrade",
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
    "Sec-WebSocket-Version: 13",
    "Origin: http://127.0.0.1:8080",
  ];
  try {
    await fuzzParser({
      attack,
      inputs: fc.oneof(
        fc.uint8Array({ maxLength: 400 }),
        fc.tuple(
          fc.shuffledSubarray(lines),
          fc.array(fc.string({ unit: "binary-ascii", maxLength: 40 }), { maxLength: 3 }),
        ).map(([kept, extra]) => utf8([...kept, ...extra].join("\r\n") + "\r\n\r\n")),
        fc.constant(null).chain(() => mutationsOf([utf8(lines.join("\r\n") + "\r\n\r\n")])),
      ),
      parse: (bytes) => {
        const end = upgradeRequestEnd(bytes);
        if (end === undefined) return "refused";
        const request = parseUpgradeRequest(bytes.subarray(0, end), originPolicy());
        if (request.path !== "/") return { forged: `path ${request.path}` };
        if (request.origin !== undefined && !isLoopbackOrigin(request.origin)) {
          return { forged: `origin ${request.origin} let in` };
        }
        if (webSocketAccept(request.key).length !== 28) return { forged: "odd key" };
        return "accepted";
      },
      refusal: (error) => error instanceof UpgradeRefusal,
    });
  } finally {
    attack.save();
  }
  assert.ok(attack.clean, attack.summary());
});
