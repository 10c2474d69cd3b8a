/**
 * A client's {@linkcode ByteStream} over the standard `WebSocket` of
 * browsers, Deno and Node 22+: how the web page reaches a relay. Each write
 * goes out as binary messages of at most 65,535 bytes; received binary
 * messages are handed on as they come. A text message is a protocol error:
 * whatever sent it is not a securechat relay.
 *
 * A WebSocket cannot stop the peer from sending, so pausing holds received
 * messages until resumed (the channel pauses only between its handshake and
 * its first record handler, for an instant).
 *
 * @module
 */

import { NetworkError, ProtocolError } from "../core/errors.ts";
import type { ByteStream } from "./byte_stream.ts";
import { MAX_SENT_FRAME_BYTES } from "./websocket_frames.ts";

/** The parts of the standard `WebSocket` this module uses. */
export interface WebSocketLike {
  binaryType: string;
  readonly bufferedAmount: number;
  readonly readyState: number;
  readonly url: string;
  onopen: ((event: Event) => void) | null;
  onmessage: ((event: MessageEvent) => void) | null;
  onerror: ((event: Event) => void) | null;
  onclose: ((event: CloseEvent) => void) | null;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
}

/** Options for {@linkcode openWebSocketStream}. */
export interface OpenWebSocketOptions {
  /** `ws://host:port/` or `wss://host:port/`. */
  url: string;
  /** Deadline for the connection to open. Default 10 s. */
  timeoutMs?: number;
  /** The WebSocket constructor; default the runtime's `WebSocket`. */
  WebSocket?: new (url: string) => WebSocketLike;
}

/**
 * Opens a WebSocket to a relay and resolves with its byte stream once it is
 * open; rejects with {@linkcode NetworkError} when it cannot be opened in
 * time. Browsers do not say why a WebSocket failed, so neither can this.
 *
 * @example
 * ```ts
 * const stream = await openWebSocketStream({ url: "ws://127.0.0.1:7878/" });
 * ```
 */
export function openWebSocketStream(options: OpenWebSocketOptions): Promise<ByteStream> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const Constructor = options.WebSocket ??
    (globalThis as { WebSocket?: new (url: string) => WebSocketLike }).WebSocket;
  const shown = options.url;
  if (Constructor === undefined) {
    return Promise.reject(new NetworkError("this runtime has no WebSocket"));
  }
  return new Promise((resolve, reject) => {
    let socket: WebSocketLike;
    try {
      socket = new Constructor(options.url);
    } catch (error) {
      reject(new NetworkError(`cannot connect to ${shown}: ${(error as Error).message}`));
      return;
    }
    socket.binaryType = "arraybuffer";
    const timer = setTimeout(() => {
      socket.onopen = socket.onerror = socket.onclose = null;
      socket.close();
      reject(new NetworkError(`cannot connect to ${shown}: timed out after ${timeoutMs / 1000} s`));
    }, timeoutMs);
    socket.onopen = () => {
      clearTimeout(timer);
      socket.onopen = socket.onerror = socket.onclose = null;
      resolve(webSocketStream(socket));
    };
    const failed = () => {
      clearTimeout(timer);
      socket.onopen = socket.onerror = socket.onclose = null;
      reject(
        new NetworkError(
          `cannot connect to ${shown}: the WebSocket did not open (nothing listening there, ` +
            "not a WebSocket endpoint, or it refused this page's origin)",
        ),
      );
    };
    socket.onerror = failed;
    socket.onclose = failed;
  });
}

/**
 * Wraps an open WebSocket as a {@linkcode ByteStream}.
 *
 * @example
 * ```ts
 * const stream = webSocketStream(openSocket);
 * ```
 */
export function webSocketStream(socket: WebSocketLike): ByteStream {
  return new WebSocketStream(socket);
}

class WebSocketStream implements ByteStream {
  onData: (chunk: Uint8Array) => void = () => {};
  onClose: (error?: Error) => void = () => {};
  #socket: WebSocketLike;
  #paused = true;
  #held: Uint8Array[] = [];
  #ending = false;
  #error?: Error;
  #closed = false;

  constructor(socket: WebSocketLike) {
    this.#socket = socket;
    socket.binaryType = "arraybuffer";
    socket.onmessage = (event) => this.#receive(event.data);
    socket.onerror = () => {};
    socket.onclose = (event) => this.#finish(event);
  }

  write(bytes: Uint8Array): void {
    if (this.#ending || this.#closed) return;
    for (let start = 0; start < bytes.length; start += MAX_SENT_FRAME_BYTES) {
      this.#socket.send(bytes.subarray(start, start + MAX_SENT_FRAME_BYTES));
    }
  }

  end(): void {
    if (this.#ending) return;
    this.#ending = true;
    this.#socket.close(1000);
  }

  destroy(): void {
    this.#held = [];
    this.end();
  }

  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    while (this.#held.length > 0 && !this.#paused && !this.closed) {
      this.onData(this.#held.shift()!);
    }
  }

  get bufferedAmount(): number {
    return this.#socket.bufferedAmount;
  }

  get closed(): boolean {
    return this.#closed || this.#ending || this.#error !== undefined;
  }

  get remoteAddress(): string {
    try {
      return new URL(this.#socket.url).host;
    } catch {
      return this.#socket.url;
    }
  }

  #receive(data: unknown): void {
    if (this.closed) return;
    if (!(data instanceof ArrayBuffer)) {
      this.#error = new ProtocolError(
        "the relay sent a WebSocket text message: it is not a securechat relay",
      );
      this.#socket.close(1003);
      return;
    }
    const chunk = new Uint8Array(data);
    if (this.#paused) this.#held.push(chunk);
    else this.onData(chunk);
  }

  #finish(event: CloseEvent): void {
    if (this.#closed) return;
    this.#closed = true;
    if (!this.#error && !this.#ending && !(event.wasClean && event.code === 1000)) {
      const reason = event.reason ? `: ${event.reason}` : "";
      this.#error = new NetworkError(`the WebSocket closed with code ${event.code}${reason}`);
    }
    this.onClose(this.#error);
  }
}
