import assert from "node:assert/strict";
import { connect, createServer, type Socket } from "node:net";
import { concat, toHex, utf8 } from "../lib/core/bytes.ts";
import {
  acceptHandshake,
  connectHandshake,
  encodePreamble,
  MAX_RECORD_BYTES,
  PREAMBLE_BYTES,
  type SecureChannel,
} from "../lib/transport/channel.ts";
import { AuthenticationError, NetworkError, ProtocolError } from "../lib/core/errors.ts";
import { FrameDecoder } from "../lib/transport/framing.ts";
import { generateIdentity, type Identity } from "../lib/identity/identity.ts";
import { PROTOCOL_VERSION } from "../lib/core/version.ts";
import {
  delay,
  type Direction,
  rejection,
  seededRandom,
  type SocketPair,
  socketPair,
  startProxy,
  waitFor,
  within,
} from "./support/in_process.ts";

interface Connected {
  pair: SocketPair;
  client: SecureChannel;
  relay: SecureChannel;
  clientIdentity: Identity;
  relayIdentity: Identity;
  close(): Promise<void>;
}

async function connected(
  options: { afterClientHandshake?: (channel: SecureChannel) => void } = {},
): Promise<Connected> {
  const pair = await socketPair();
  const clientIdentity = generateIdentity();
  const relayIdentity = generateIdentity();
  let seenRelay = "";
  const [client, relay] = await Promise.all([
    connectHandshake({
      socket: pair.client,
      identity: clientIdentity,
      verifyRelay: ({ fingerprint }) => {
        seenRelay = fingerprint;
      },
      timeoutMs: 5_000,
    }).then((channel) => {
      options.afterClientHandshake?.(channel);
      return channel;
    }),
    acceptHandshake({ socket: pair.server, identity: relayIdentity, timeoutMs: 5_000 }),
  ]);
  assert.equal(seenRelay, relayIdentity.fingerprint);
  return {
    pair,
    client,
    relay,
    clientIdentity,
    relayIdentity,
    close: async () => {
      client.destroy();
      relay.destroy();
      await pair.close();
    },
  };
}

function collect(channel: SecureChannel): { records: Uint8Array[]; closed?: { error?: Error } } {
  const state: { records: Uint8Array[]; closed?: { error?: Error } } = { records: [] };
  channel.onRecord = (record) => state.records.push(record.slice());
  channel.onClose = (error) => {
    state.closed = { error };
  };
  channel.start();
  return state;
}

function pattern(size: number, seed: number): Uint8Array {
  const random = seededRandom(seed);
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i += 4) {
    const word = Math.floor(random() * 2 ** 32);
    bytes[i] = word;
    if (i + 1 < size) bytes[i + 1] = word >>> 8;
    if (i + 2 < size) bytes[i + 2] = word >>> 16;
    if (i + 3 < size) bytes[i + 3] = word >>> 24;
  }
  return bytes;
}

Deno.test("channel: handshake over loopback proves both identities", async () => {
  const c = await connected();
  try {
    assert.deepEqual(c.client.remoteIdentityPublicKey, c.relayIdentity.publicKey);
    assert.deepEqual(c.relay.remoteIdentityPublicKey, c.clientIdentity.publicKey);
    assert.equal(c.client.remoteFingerprint, c.relayIdentity.fingerprint);
    assert.equal(c.relay.remoteFingerprint, c.clientIdentity.fingerprint);
    assert.match(c.relay.remoteAddress, /^127\.0\.0\.1:\d+$/);
    const atRelay = collect(c.relay);
    const atClient = collect(c.client);
    c.client.send(utf8("ping"));
    c.relay.send(utf8("pong"));
    await waitFor(() => atRelay.records.length === 1 && atClient.records.length === 1, {
      what: "ping and pong",
    });
    assert.deepEqual(atRelay.records[0], utf8("ping"));
    assert.deepEqual(atClient.records[0], utf8("pong"));
  } finally {
    await c.close();
  }
});

Deno.test("channel: a client that rejects the relay never sends its identity", async () => {
  const pair = await socketPair();
  try {
    const toRelay: Uint8Array[] = [];
    pair.server.on("data", (chunk: Uint8Array) => toRelay.push(chunk.slice()));
    const clientIdentity = generateIdentity();
    const clientDone = connectHandshake({
      socket: pair.client,
      identity: clientIdentity,
      verifyRelay: () => {
        throw new AuthenticationError("relay fingerprint mismatch (test)");
      },
      timeoutMs: 3_000,
    });
    let relayCompleted = false;
    const relayDone = acceptHandshake({
      socket: pair.server,
      identity: generateIdentity(),
      timeoutMs: 3_000,
    }).then(() => {
      relayCompleted = true;
    });
    const clientError = await rejection(clientDone);
    assert.ok(clientError instanceof AuthenticationError, String(clientError));
    const relayError = await within(rejection(relayDone), 4_000, "relay handshake");
    assert.ok(relayError instanceof NetworkError, String(relayError));
    assert.equal(relayCompleted, false);
    // On the wire: the client's preamble and message 1 (32-byte ephemeral), nothing more.
    const sent = concat(...toRelay);
    assert.equal(sent.length, PREAMBLE_BYTES + 2 + 32, `client sent ${sent.length} bytes`);
    assert.ok(!toHex(sent).includes(toHex(clientIdentity.publicKey)));
  } finally {
    await pair.close();
  }
});

Deno.test("channel: a version mismatch names both versions, on either side", async () => {
  const other = PROTOCOL_VERSION + 1;
  // The relay speaks another version.
  {
    const pair = await socketPair();
    try {
      pair.server.write(encodePreamble(other));
      const error = await rejection(connectHandshake({
        socket: pair.client,
        identity: generateIdentity(),
        verifyRelay: () => {},
        timeoutMs: 3_000,
      }));
      assert.ok(error instanceof ProtocolError, String(error));
      assert.ok(error.message.includes(`protocol ${other}`), error.message);
      assert.ok(error.message.includes(`speaks ${PROTOCOL_VERSION}`), error.message);
    } finally {
      await pair.close();
    }
  }
  // The client speaks another version.
  {
    const pair = await socketPair();
    try {
      pair.client.write(encodePreamble(other));
      const error = await rejection(acceptHandshake({
        socket: pair.server,
        identity: generateIdentity(),
        timeoutMs: 3_000,
      }));
      assert.ok(error instanceof ProtocolError, String(error));
      assert.match(error.message, new RegExp(`client speaks securechat protocol ${other}`));
      assert.ok(error.message.includes(`speaks ${PROTOCOL_VERSION}`), error.message);
    } finally {
      await pair.close();
    }
  }
});

Deno.test("channel: garbage instead of a preamble is a protocol error", async () => {
  for (
    const garbage of ["GET / HTTP/1.1\r\nHost: x\r\n\r\n", "SSH-2.0-OpenSSH_9.6\r\n", "SECCHA"]
  ) {
    const pair = await socketPair();
    try {
      pair.client.write(utf8(garbage));
      if (garbage === "SECCHA") pair.client.end(); // too short, then closed
      const error = await rejection(acceptHandshake({
        socket: pair.server,
        identity: generateIdentity(),
        timeoutMs: 3_000,
      }));
      if (garbage === "SECCHA") {
        assert.ok(error instanceof NetworkError, `${garbage}: ${error}`);
      } else {
        assert.ok(error instanceof ProtocolError, `${garbage}: ${error}`);
        assert.match(error.message, /not speaking the securechat protocol/);
      }
    } finally {
      await pair.close();
    }
  }
});

Deno.test("channel: a garbled handshake message is a protocol error", async () => {
  const pair = await socketPair();
  try {
    // A valid preamble, then a message 1 of the right length that is not a point we chose...
    // any 32 bytes are a valid X25519 key, so use a message of the wrong length instead.
    pair.client.write(concat(encodePreamble(), new Uint8Array([0, 5, 1, 2, 3, 4, 5])));
    const error = await rejection(acceptHandshake({
      socket: pair.server,
      identity: generateIdentity(),
      timeoutMs: 3_000,
    }));
    assert.ok(error instanceof ProtocolError, String(error));
  } finally {
    await pair.close();
  }
});

Deno.test("channel: a silent peer makes the handshake time out on time", async () => {
  for (const stage of ["nothing", "preamble only"]) {
    const pair = await socketPair();
    try {
      if (stage === "preamble only") pair.server.write(encodePreamble());
      const started = Date.now();
      const error = await within(
        rejection(connectHandshake({
          socket: pair.client,
          identity: generateIdentity(),
          verifyRelay: () => {},
          timeoutMs: 300,
        })),
        3_000,
        "handshake timeout",
      );
      const elapsed = Date.now() - started;
      assert.ok(error instanceof ProtocolError, String(error));
      assert.match(error.message, /timed out/);
      assert.ok(elapsed >= 250 && elapsed < 1_500, `${stage}: fired after ${elapsed} ms`);
      assert.ok(pair.client.destroyed, "the socket is destroyed on timeout");
    } finally {
      await pair.close();
    }
  }
  // The relay side too.
  const pair = await socketPair();
  try {
    const error = await within(
      rejection(
        acceptHandshake({ socket: pair.server, identity: generateIdentity(), timeoutMs: 200 }),
      ),
      3_000,
      "relay handshake timeout",
    );
    assert.ok(error instanceof ProtocolError, String(error));
  } finally {
    await pair.close();
  }
});

const SIZES = [0, 1, 2, 3, 4, 5, 100, 65_515, 65_519, 65_520, 65_535, 65_536, 131_071, 200 * 1024];

Deno.test("channel: records from 0 bytes to 200 KiB round-trip both ways", async () => {
  const c = await connected();
  try {
    const atRelay = collect(c.relay);
    const atClient = collect(c.client);
    // One record per event-loop turn.
    for (const [index, size] of SIZES.entries()) {
      c.client.send(pattern(size, index));
      await delay(1);
    }
    // All in one turn, the other way.
    for (const [index, size] of SIZES.entries()) c.relay.send(pattern(size, 100 + index));
    await waitFor(
      () => atRelay.records.length === SIZES.length && atClient.records.length === SIZES.length,
      { what: "all records" },
    );
    for (const [index, size] of SIZES.entries()) {
      assert.deepEqual(atRelay.records[index], pattern(size, index), `client -> relay ${size}`);
      assert.deepEqual(
        atClient.records[index],
        pattern(size, 100 + index),
        `relay -> client ${size}`,
      );
    }
    assert.throws(() => c.client.send(new Uint8Array(MAX_RECORD_BYTES + 1)), RangeError);
    assert.equal(atRelay.closed, undefined);
  } finally {
    await c.close();
  }
});

Deno.test("channel: a record cut across the handshake's last read arrives intact", async () => {
  // The relay's last handshake read can hold message 3 and the start of the first
  // transport message; the partial frame must carry over into the channel.
  for (const split of [1, 2, 3, 100, 65_000]) {
    const pair = await socketPair();
    const big = pattern(200 * 1024, split);
    const socket = pair.client;
    const originalWrite = socket.write.bind(socket);
    let handshakeDone = false;
    (socket as unknown as { write: (chunk: Uint8Array) => boolean }).write = (chunk) => {
      if (!handshakeDone) return originalWrite(chunk);
      // The first transport bytes go out with message 3, the rest a little later.
      originalWrite(chunk.subarray(0, split));
      setTimeout(() => originalWrite(chunk.subarray(split)), 30);
      return true;
    };
    try {
      const [client, relay] = await Promise.all([
        connectHandshake({
          socket,
          identity: generateIdentity(),
          verifyRelay: () => {},
          timeoutMs: 3_000,
        }).then((channel) => {
          handshakeDone = true;
          channel.send(big);
          channel.flush(); // same turn as message 3
          return channel;
        }),
        acceptHandshake({ socket: pair.server, identity: generateIdentity(), timeoutMs: 3_000 }),
      ]);
      const atRelay = collect(relay);
      await waitFor(() => atRelay.records.length === 1 || atRelay.closed !== undefined, {
        what: "the first record",
      });
      assert.equal(atRelay.closed, undefined, `split ${split}: closed: ${atRelay.closed?.error}`);
      assert.deepEqual(atRelay.records[0], big, `split ${split}`);
      client.destroy();
      relay.destroy();
    } finally {
      await pair.close();
    }
  }
});

Deno.test("channel: many records sent in one turn arrive in order", async () => {
  const c = await connected();
  try {
    const atRelay = collect(c.relay);
    const count = 5_000;
    for (let i = 0; i < count; i++) c.client.send(utf8(`record ${i}`));
    assert.ok(c.client.bufferedBytes > 0);
    await waitFor(() => atRelay.records.length === count, { what: `${count} records` });
    for (let i = 0; i < count; i++) assert.deepEqual(atRelay.records[i], utf8(`record ${i}`));
  } finally {
    await c.close();
  }
});

Deno.test("channel: records queued in one turn share transport messages", async () => {
  const relayPair = await socketPair();
  // Count the Noise frames the client writes after the handshake.
  const writes: Uint8Array[] = [];
  const originalWrite = relayPair.client.write.bind(relayPair.client);
  (relayPair.client as unknown as { write: (chunk: Uint8Array) => boolean }).write = (chunk) => {
    writes.push(Uint8Array.from(chunk));
    return originalWrite(chunk);
  };
  try {
    const [client, relay] = await Promise.all([
      connectHandshake({
        socket: relayPair.client,
        identity: generateIdentity(),
        verifyRelay: () => {},
      }),
      acceptHandshake({ socket: relayPair.server, identity: generateIdentity() }),
    ]);
    const atRelay = collect(relay);
    const handshakeWrites = writes.length;
    for (let i = 0; i < 1_000; i++) client.send(utf8(`small ${i}`));
    await waitFor(() => atRelay.records.length === 1_000, { what: "1000 records" });
    assert.equal(writes.length - handshakeWrites, 1, "one socket write for one turn");
    const frames = new FrameDecoder({ prefixBytes: 2, maxFrameBytes: 65535 }).push(writes.at(-1)!);
    assert.equal(frames.length, 1, "1000 small records fit one transport message");
    client.destroy();
    relay.destroy();
  } finally {
    await relayPair.close();
  }
});

/**
 * A proxy that flips one bit in the `target`-th Noise frame the client sends
 * (frames 0 and 1 are handshake messages 1 and 3).
 */
function bitFlipper(target: number): (chunk: Uint8Array, direction: Direction) => Uint8Array {
  let preamble = 0;
  const frames = new FrameDecoder({ prefixBytes: 2, maxFrameBytes: 65535 });
  let index = 0;
  return (chunk, direction) => {
    if (direction !== "to-server") return chunk;
    let rest = chunk;
    const head = rest.subarray(0, PREAMBLE_BYTES - preamble);
    preamble += head.length;
    rest = rest.subarray(head.length);
    const out: Uint8Array[] = [head];
    for (const frame of frames.push(rest)) {
      const copy = frame.slice();
      if (index === target) copy[Math.floor(copy.length / 2)] ^= 0x04;
      index++;
      out.push(new Uint8Array([copy.length >>> 8, copy.length & 0xff]), copy);
    }
    return concat(...out);
  };
}

/** A relay listener behind a bit-flipping proxy; connects one client through it. */
async function throughFlipper(target: number): Promise<{
  client: Promise<SecureChannel>;
  relay: Promise<SecureChannel>;
  close(): Promise<void>;
}> {
  const relayIdentity = generateIdentity();
  let resolveRelay: (channel: Promise<SecureChannel>) => void;
  const accepted = new Promise<Promise<SecureChannel>>((resolve) => resolveRelay = resolve);
  const listener = createServer((socket) => {
    resolveRelay(acceptHandshake({ socket, identity: relayIdentity, timeoutMs: 3_000 }));
  });
  await new Promise<void>((resolve) => listener.listen({ host: "127.0.0.1", port: 0 }, resolve));
  const port = (listener.address() as { port: number }).port;
  const proxy = await startProxy({
    target: { host: "127.0.0.1", port },
    transform: bitFlipper(target),
  });
  const socket: Socket = connect({ host: "127.0.0.1", port: proxy.port });
  await new Promise((resolve) => socket.once("connect", resolve));
  const client = connectHandshake({
    socket,
    identity: generateIdentity(),
    verifyRelay: () => {},
    timeoutMs: 3_000,
  });
  client.catch(() => {});
  const relay = accepted.then((channel) => channel);
  relay.catch(() => {});
  return {
    client,
    relay,
    async close() {
      socket.destroy();
      await proxy.close();
      await new Promise((resolve) => listener.close(resolve));
    },
  };
}

Deno.test("channel: a flipped bit in a transport message kills the connection", async () => {
  const flipped = await throughFlipper(3); // frames 0, 1: handshake; 2, 3: transport
  try {
    const client = await flipped.client;
    const relay = await flipped.relay;
    const atRelay = collect(relay);
    const atClient = collect(client);
    client.send(utf8("first, intact"));
    await waitFor(() => atRelay.records.length === 1, { what: "first record" });
    client.send(utf8("second, corrupted"));
    client.send(utf8("also in the corrupted message"));
    await delay(20);
    client.send(utf8("third, after the corruption"));
    await waitFor(() => atRelay.closed !== undefined, { what: "relay closes the channel" });
    assert.ok(atRelay.closed?.error instanceof ProtocolError, String(atRelay.closed?.error));
    assert.match(atRelay.closed!.error!.message, /failed authentication/);
    await delay(50);
    assert.deepEqual(atRelay.records, [utf8("first, intact")]);
    await waitFor(() => atClient.closed !== undefined, { what: "client sees the close" });
  } finally {
    await flipped.close();
  }
});

Deno.test("channel: a flipped bit in a handshake message fails the handshake", async () => {
  // Message 1 (the client's ephemeral key): the relay's reply no longer decrypts.
  const first = await throughFlipper(0);
  try {
    const error = await within(rejection(first.client), 4_000, "client handshake");
    assert.ok(error instanceof ProtocolError, String(error));
  } finally {
    await first.close();
  }
  // Message 3 (the client's static key and identity): the relay refuses it.
  const third = await throughFlipper(1);
  try {
    const error = await within(rejection(third.relay), 4_000, "relay handshake");
    assert.ok(error instanceof ProtocolError, String(error));
  } finally {
    await third.close();
  }
});

Deno.test("channel: a connection closed in the middle of a transport message is reported", async () => {
  const c = await connected();
  try {
    const atRelay = collect(c.relay);
    c.pair.client.write(new Uint8Array([0x00, 0x40, 1, 2, 3])); // a frame cut short
    await delay(20);
    c.pair.client.destroy();
    await waitFor(() => atRelay.closed !== undefined, { what: "close" });
    assert.ok(atRelay.closed?.error instanceof ProtocolError, String(atRelay.closed?.error));
    assert.match(atRelay.closed!.error!.message, /middle of a message/);
    assert.deepEqual(atRelay.records, []);
  } finally {
    await c.close();
  }
});

Deno.test("channel: raw garbage after the handshake closes the channel without records", async () => {
  const c = await connected();
  try {
    const atRelay = collect(c.relay);
    // A well-framed message that no key produced (a longer declared length would just wait).
    c.pair.client.write(concat(new Uint8Array([0, 40]), pattern(40, 9)));
    await waitFor(() => atRelay.closed !== undefined, { what: "close" });
    assert.ok(atRelay.closed?.error instanceof ProtocolError, String(atRelay.closed?.error));
    assert.deepEqual(atRelay.records, []);
  } finally {
    await c.close();
  }
});
