/**
 * WebSocket helpers for tests: a hand-made client over a raw TCP socket
 * (so tests control the upgrade request, masking and fragmentation), and a
 * reader that turns a proxy's recording of a WebSocket connection back
 * into the bytes the frames carried, unmasked, so that a check for
 * plaintext on the wire is not fooled by the client's masking.
 *
 * @module
 */

import { connect, type Socket } from "node:net";
import { concat, toBase64, utf8 } from "../../lib/core/bytes.ts";
import type { ByteStream } from "../../lib/transport/byte_stream.ts";
import { socketStream } from "../../lib/transport/byte_stream.ts";
import {
  encodeWebSocketFrame,
  Opcode,
  WebSocketDecoder,
  type WebSocketEvent,
} from "../../lib/transport/websocket_frames.ts";

/** Options for {@linkcode rawWebSocket}. */
export interface RawWebSocketOptions {
  /** Relay port on 127.0.0.1. */
  port: number;
  /** `Origin` header to send; none by default (a program, not a page). */
  origin?: string;
  /** Split every write into binary fragments of this many bytes, with a ping between. */
  fragmentBytes?: number;
}

/** A connected, upgraded test WebSocket. */
export interface RawWebSocket {
  /** The TCP socket under it. */
  socket: Socket;
  /** The bytes carried in its binary frames, as a stream. */
  stream: ByteStream;
  /** Every frame event received from the relay, in order. */
  events: WebSocketEvent[];
  /** The relay's response head. */
  response: string;
}

/**
 * Opens a TCP connection, performs the upgrade, and returns a byte stream
 * that writes masked (optionally fragmented) frames and reads the relay's.
 *
 * @example
 * ```ts
 * const ws = await rawWebSocket({ port, fragmentBytes: 1 });
 * const channel = await connectHandshake({ stream: ws.stream, identity, verifyRelay });
 * ```
 */
export async function rawWebSocket(options: RawWebSocketOptions): Promise<RawWebSocket> {
  const socket = connect({ host: "127.0.0.1", port: options.port });
  socket.on("error", () => {});
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", () => resolve());
    socket.once("error", reject);
  });
  const key = toBase64(crypto.getRandomValues(new Uint8Array(16)));
  const lines = [
    "GET / HTTP/1.1",
    `Host: 127.0.0.1:${options.port}`,
    "Upgrade: websocket",
    "Connection: Upgrade",
    `Sec-WebSocket-Key: ${key}`,
    "Sec-WebSocket-Version: 13",
    ...(options.origin ? [`Origin: ${options.origin}`] : []),
  ];
  socket.write(utf8(`${lines.join("\r\n")}\r\n\r\n`));
  let buffered: Uint8Array = new Uint8Array(0);
  const head = await new Promise<{ response: string; rest: Uint8Array }>((resolve, reject) => {
    const onData = (chunk: Uint8Array) => {
      buffered = concat(buffered, chunk);
      const text = new TextDecoder("latin1").decode(buffered);
      const end = text.indexOf("\r\n\r\n");
      if (end < 0) return;
      socket.off("data", onData);
      socket.pause();
      resolve({ response: text.slice(0, end + 4), rest: buffered.subarray(end + 4) });
    };
    socket.on("data", onData);
    socket.once("close", () => reject(new Error("closed during the upgrade")));
  });
  if (!head.response.startsWith("HTTP/1.1 101 ")) {
    socket.destroy();
    throw new Error(`upgrade refused: ${head.response.split("\r\n")[0]}`);
  }
  const events: WebSocketEvent[] = [];
  const decoder = new WebSocketDecoder({ from: "server" });
  const inner = socketStream(socket, { initialBytes: head.rest });
  const stream = new FramedStream(inner, decoder, events, options.fragmentBytes);
  return { socket, stream, events, response: head.response };
}

/** A ByteStream of binary frames over a socket stream, client side. */
class FramedStream implements ByteStream {
  onData: (chunk: Uint8Array) => void = () => {};
  onClose: (error?: Error) => void = () => {};
  #inner: ByteStream;
  #fragmentBytes: number | undefined;

  constructor(
    inner: ByteStream,
    decoder: WebSocketDecoder,
    events: WebSocketEvent[],
    fragmentBytes: number | undefined,
  ) {
    this.#inner = inner;
    this.#fragmentBytes = fragmentBytes;
    inner.onData = (chunk) => {
      for (const event of decoder.push(chunk)) {
        events.push(event);
        if (event.type === "data") this.onData(event.bytes);
      }
    };
    inner.onClose = (error) => this.onClose(error);
  }

  write(bytes: Uint8Array): void {
    const mask = () => crypto.getRandomValues(new Uint8Array(4));
    const size = this.#fragmentBytes;
    if (size === undefined || bytes.length <= size) {
      this.#inner.write(
        encodeWebSocketFrame({ opcode: Opcode.binary, payload: bytes, mask: mask() }),
      );
      return;
    }
    const frames: Uint8Array[] = [];
    for (let start = 0; start < bytes.length; start += size) {
      const last = start + size >= bytes.length;
      frames.push(encodeWebSocketFrame({
        opcode: start === 0 ? Opcode.binary : Opcode.continuation,
        payload: bytes.subarray(start, start + size),
        fin: last,
        mask: mask(),
      }));
      if (!last) {
        frames.push(
          encodeWebSocketFrame({ opcode: Opcode.ping, payload: utf8("p"), mask: mask() }),
        );
      }
    }
    this.#inner.write(concat(...frames));
  }

  end(): void {
    this.#inner.end();
  }

  destroy(): void {
    this.#inner.destroy();
  }

  pause(): void {
    this.#inner.pause();
  }

  resume(): void {
    this.#inner.resume();
  }

  get bufferedAmount(): number {
    return this.#inner.bufferedAmount;
  }

  get closed(): boolean {
    return this.#inner.closed;
  }

  get remoteAddress(): string {
    return this.#inner.remoteAddress;
  }
}

/**
 * The bytes a recorded WebSocket connection carried in one direction: the
 * HTTP head is skipped and every frame's payload unmasked (data and control
 * frames alike), so a search for plaintext sees what the frames really held.
 *
 * @example
 * ```ts
 * const up = webSocketPayload(proxy.captured["to-server"], "client");
 * assert.ok(!containsBytes(up, utf8("secret")));
 * ```
 */
export function webSocketPayload(chunks: Uint8Array[], from: "client" | "server"): Uint8Array {
  const all = concat(...chunks);
  let end = -1;
  for (let i = 3; i < all.length; i++) {
    if (all[i] === 10 && all[i - 1] === 13 && all[i - 2] === 10 && all[i - 3] === 13) {
      end = i + 1;
      break;
    }
  }
  if (end < 0) return new Uint8Array(0);
  const decoder = new WebSocketDecoder({ from, maxMessageBytes: Number.MAX_SAFE_INTEGER });
  const parts: Uint8Array[] = [];
  for (const event of decoder.push(all.subarray(end))) {
    if (event.type === "data") parts.push(event.bytes);
    else if (event.type === "ping" || event.type === "pong") parts.push(event.payload);
    else parts.push(utf8(event.reason));
  }
  return concat(...parts);
}
