/**
 * The relay's side of a WebSocket connection: the HTTP upgrade on an
 * accepted TCP socket, then a {@linkcode ByteStream} whose bytes ride in
 * binary frames. Past the upgrade, the secure channel, the relay's limits
 * and its rooms see no difference from a TCP member.
 *
 * Frames are read by {@linkcode WebSocketDecoder} (strict, streaming, 1 MiB
 * per message at most). Pings are answered with pongs, except while more
 * than 64 KiB wait to be sent (a peer that pings and never reads gets no
 * more of the relay's memory than that). Either side may start the close
 * handshake; the relay answers a close frame with its own and then ends the
 * TCP connection, and a peer that breaks the protocol gets a close frame
 * with the code that names the fault before the connection ends.
 *
 * @module
 */

import type { Socket } from "node:net";
import { concat } from "../core/bytes.ts";
import { NetworkError, ProtocolError } from "../core/errors.ts";
import { unrefTimer } from "../core/runtime.ts";
import { type ByteStream, formatPeer } from "./byte_stream.ts";
import {
  type OriginPolicy,
  parseUpgradeRequest,
  refusalResponse,
  UpgradeRefusal,
  upgradeRequestEnd,
  upgradeResponse,
} from "./http_upgrade.ts";
import {
  CloseCode,
  encodeBinaryFrames,
  encodeClosePayload,
  encodeWebSocketFrame,
  Opcode,
  WebSocketDecoder,
  type WebSocketEvent,
  WebSocketProtocolError,
} from "./websocket_frames.ts";

/** Bytes waiting to be sent above which a ping gets no pong. */
const PONG_BACKLOG_BYTES = 64 * 1024;
/** How long the relay waits for the peer to finish a close it started or answered. */
const CLOSE_GRACE_MS = 5_000;

/** Options for {@linkcode acceptWebSocket}. */
export interface AcceptWebSocketOptions {
  /** The accepted TCP socket. */
  socket: Socket;
  /** Bytes already read from it (the start of the request). */
  initialBytes?: Uint8Array;
  /** Which web pages may connect (see lib/transport/http_upgrade.ts). */
  allowOrigin: OriginPolicy;
}

/** What {@linkcode acceptWebSocket} resolves with. */
export interface AcceptedWebSocket {
  /** The byte stream carried in binary frames. */
  stream: ByteStream;
  /** The page's origin, when a browser connected. */
  origin?: string;
}

/**
 * Reads the upgrade request from `socket`, answers it, and resolves with the
 * byte stream. A request that is not an acceptable WebSocket upgrade is
 * answered with an HTTP error and the connection closed, and the promise
 * rejects with a {@linkcode ProtocolError} saying why. The caller owns the
 * deadline: it destroys the socket when time is up, which rejects this.
 *
 * @example
 * ```ts
 * const { stream } = await acceptWebSocket({ socket, allowOrigin: isLoopbackOrigin });
 * const channel = await acceptHandshake({ stream, identity });
 * ```
 */
export function acceptWebSocket(options: AcceptWebSocketOptions): Promise<AcceptedWebSocket> {
  const { socket, allowOrigin } = options;
  return new Promise((resolve, reject) => {
    let buffered = options.initialBytes ?? new Uint8Array(0);
    let settled = false;
    const cleanUp = () => {
      settled = true;
      socket.off("data", onData);
      socket.off("close", onClose);
      socket.pause();
    };
    const refuse = (refusal: UpgradeRefusal) => {
      cleanUp();
      socket.end(refusalResponse(refusal));
      unrefTimer(setTimeout(() => socket.destroy(), CLOSE_GRACE_MS));
      reject(
        new ProtocolError(`WebSocket upgrade refused (${refusal.status}): ${refusal.message}`),
      );
    };
    const examine = () => {
      let end: number | undefined;
      try {
        end = upgradeRequestEnd(buffered);
        if (end === undefined) return;
        const request = parseUpgradeRequest(buffered.subarray(0, end), allowOrigin);
        cleanUp();
        socket.write(upgradeResponse(request));
        const stream = new WebSocketServerStream(socket, buffered.subarray(end));
        resolve({ stream, origin: request.origin });
      } catch (error) {
        if (error instanceof UpgradeRefusal) refuse(error);
        else {
          cleanUp();
          socket.destroy();
          reject(error);
        }
      }
    };
    const onData = (chunk: Uint8Array) => {
      buffered = concat(buffered, chunk);
      examine();
    };
    const onClose = () => {
      cleanUp();
      reject(new NetworkError("connection closed during the WebSocket upgrade"));
    };
    socket.on("data", onData);
    socket.on("close", onClose);
    examine();
    if (!settled) socket.resume();
  });
}

/** A {@linkcode ByteStream} over a TCP socket that has been upgraded to WebSocket. */
class WebSocketServerStream implements ByteStream {
  onData: (chunk: Uint8Array) => void = () => {};
  onClose: (error?: Error) => void = () => {};
  #socket: Socket;
  #decoder = new WebSocketDecoder({ from: "client" });
  #initial: Uint8Array | undefined;
  #paused = true;
  /** Set once a close frame was sent: nothing more may follow it. */
  #closeSent = false;
  #closeReceived = false;
  #error?: Error;
  #closed = false;

  constructor(socket: Socket, initial: Uint8Array) {
    this.#socket = socket;
    this.#initial = initial.length > 0 ? initial.slice() : undefined;
    socket.setNoDelay(true);
    socket.pause();
    socket.on("data", (chunk: Uint8Array) => this.#receive(chunk));
    socket.on("error", (error: Error) => {
      this.#error ??= error;
    });
    socket.on("close", () => this.#finish());
    if (socket.destroyed) queueMicrotask(() => this.#finish());
  }

  write(bytes: Uint8Array): void {
    if (this.#closeSent || this.#socket.destroyed || bytes.length === 0) return;
    this.#socket.write(encodeBinaryFrames(bytes));
  }

  end(): void {
    this.#sendClose(CloseCode.normal, "");
  }

  destroy(): void {
    this.#socket.destroy();
  }

  pause(): void {
    this.#paused = true;
    this.#socket.pause();
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    const initial = this.#initial;
    this.#initial = undefined;
    if (initial !== undefined) this.#receive(initial);
    if (!this.#paused && !this.#socket.destroyed) this.#socket.resume();
  }

  get bufferedAmount(): number {
    return this.#socket.writableLength;
  }

  get closed(): boolean {
    return this.#closed || this.#socket.destroyed || this.#closeReceived ||
      this.#error !== undefined;
  }

  get remoteAddress(): string {
    return formatPeer(this.#socket.remoteAddress, this.#socket.remotePort);
  }

  #receive(chunk: Uint8Array): void {
    if (this.#closeReceived || this.#error) return;
    let events: WebSocketEvent[];
    try {
      events = this.#decoder.push(chunk);
    } catch (error) {
      if (!(error instanceof WebSocketProtocolError)) throw error;
      this.#error = new ProtocolError(`WebSocket: ${error.message}`);
      this.#sendClose(error.code, error.message);
      return;
    }
    for (const event of events) {
      if (this.#socket.destroyed) return;
      switch (event.type) {
        case "data":
          this.onData(event.bytes);
          break;
        case "ping":
          if (!this.#closeSent && this.#socket.writableLength <= PONG_BACKLOG_BYTES) {
            this.#socket.write(
              encodeWebSocketFrame({ opcode: Opcode.pong, payload: event.payload }),
            );
          }
          break;
        case "pong":
          break;
        case "close":
          this.#closeReceived = true;
          // Echo the peer's code (or finish the close this side started), then end TCP:
          // the server closes the TCP connection first.
          if (this.#closeSent) this.#socket.end();
          else this.#sendClose(event.code ?? CloseCode.normal, "");
          return;
      }
    }
  }

  #sendClose(code: number, reason: string): void {
    if (this.#closeSent || this.#socket.destroyed) return;
    this.#closeSent = true;
    const payload = encodeClosePayload(code, reason);
    this.#socket.write(encodeWebSocketFrame({ opcode: Opcode.close, payload }));
    if (this.#closeReceived || this.#error) this.#socket.end();
    // A peer that never answers the close, or never closes TCP, must not hold the socket.
    unrefTimer(setTimeout(() => this.#socket.destroy(), CLOSE_GRACE_MS));
  }

  #finish(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (!this.#error && !this.#closeReceived && this.#decoder.midFrame) {
      this.#error = new ProtocolError("WebSocket: connection closed in the middle of a frame");
    }
    this.onClose(this.#error);
  }
}
