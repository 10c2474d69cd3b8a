/**
 * The one thing the client–relay connection needs from the network: an
 * ordered, reliable, duplex stream of bytes. A TCP socket is one; so is a
 * WebSocket carrying binary messages ({@link ./websocket_stream.ts}). The
 * preamble, the Noise handshake and the records (lib/transport/channel.ts)
 * run on this interface and nothing else, so a terminal client, a browser
 * and the relay speak byte-identical protocol over either.
 *
 * @module
 */

import type { Socket } from "node:net";
import { NetworkError } from "../core/errors.ts";

/**
 * A duplex byte stream. Bytes written arrive at the peer in order and
 * unchanged; chunk boundaries mean nothing. Handlers are plain properties so
 * that one owner at a time (the handshake, then the secure channel) can take
 * the stream over.
 *
 * @example
 * ```ts
 * stream.onData = (chunk) => console.log(chunk.length);
 * stream.onClose = (error) => console.log("closed", error?.message);
 * stream.write(new Uint8Array([1, 2, 3]));
 * stream.end();
 * ```
 */
export interface ByteStream {
  /** Queues bytes for the peer; ignored once the stream is closing. */
  write(bytes: Uint8Array): void;
  /** Receives every chunk, in order, while the stream is not paused. */
  onData: (chunk: Uint8Array) => void;
  /**
   * Called once when the stream is gone: without an error after an orderly
   * close by either side, with one after a failure.
   */
  onClose: (error?: Error) => void;
  /** Sends what is queued, then closes in an orderly way. */
  end(): void;
  /** Closes at once, discarding anything queued. */
  destroy(): void;
  /** Stops delivering data (the peer's writes back up) until {@linkcode ByteStream.resume}. */
  pause(): void;
  /** Delivers data again, starting with anything that arrived while paused. */
  resume(): void;
  /** Bytes written and not yet handed to the network. */
  readonly bufferedAmount: number;
  /** Whether {@linkcode ByteStream.onClose} has been called or is about to be. */
  readonly closed: boolean;
  /** The peer as `host:port` (`[v6]:port`), for logs and messages. */
  readonly remoteAddress: string;
  /** The peer's IP address as the socket reports it, when the stream knows it (TCP). */
  readonly remoteHost?: string;
  /** The peer's port, when the stream knows it (TCP). */
  readonly remotePort?: number;
}

const IGNORE_DATA = (_chunk: Uint8Array) => {};
const IGNORE_CLOSE = (_error?: Error) => {};

/**
 * Formats a peer address for logs: `host:port`, IPv6 hosts in brackets.
 *
 * @example
 * ```ts
 * formatPeer("::1", 7878); // "[::1]:7878"
 * ```
 */
export function formatPeer(host: string | undefined, port: number | undefined): string {
  const shown = host === undefined ? "?" : host.includes(":") ? `[${host}]` : host;
  return `${shown}:${port ?? "?"}`;
}

/** Options for {@linkcode socketStream}. */
export interface SocketStreamOptions {
  /**
   * Bytes already read from the socket by someone else (the relay reads the
   * first ones to tell TCP clients from WebSocket upgrades); they are
   * delivered first.
   */
  initialBytes?: Uint8Array;
}

/**
 * Wraps a connected `node:net` socket as a {@linkcode ByteStream}. The
 * socket starts paused, with Nagle's algorithm off (records are batched
 * already, and a chat line must not wait 40 ms for an ACK).
 *
 * @example
 * ```ts
 * const stream = socketStream(socket);
 * const channel = await connectHandshake({ stream, identity, verifyRelay });
 * ```
 */
export function socketStream(socket: Socket, options: SocketStreamOptions = {}): ByteStream {
  return new SocketStream(socket, options);
}

class SocketStream implements ByteStream {
  onData: (chunk: Uint8Array) => void = IGNORE_DATA;
  onClose: (error?: Error) => void = IGNORE_CLOSE;
  #socket: Socket;
  #initial: Uint8Array | undefined;
  #paused = true;
  #error?: Error;
  #closed = false;

  constructor(socket: Socket, options: SocketStreamOptions) {
    this.#socket = socket;
    this.#initial = options.initialBytes?.length ? options.initialBytes : undefined;
    socket.setNoDelay(true);
    socket.pause();
    socket.on("data", (chunk: Uint8Array) => this.onData(chunk));
    socket.on("error", (error: Error) => {
      this.#error ??= error;
    });
    socket.on("close", () => this.#finish());
    // Closed before anyone listened (a peer that left while waiting for a handshake slot).
    if (socket.destroyed) queueMicrotask(() => this.#finish());
  }

  #finish(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.onClose(this.#error);
  }

  write(bytes: Uint8Array): void {
    if (this.#socket.destroyed || this.#socket.writableEnded) return;
    this.#socket.write(bytes);
  }

  end(): void {
    this.#socket.end();
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
    if (initial !== undefined) this.onData(initial);
    // The handler may have paused or destroyed the stream meanwhile.
    if (!this.#paused && !this.#socket.destroyed) this.#socket.resume();
  }

  get bufferedAmount(): number {
    return this.#socket.writableLength;
  }

  get closed(): boolean {
    return this.#closed || this.#socket.destroyed;
  }

  get remoteAddress(): string {
    return formatPeer(this.#socket.remoteAddress, this.#socket.remotePort);
  }

  get remoteHost(): string | undefined {
    return this.#socket.remoteAddress;
  }

  get remotePort(): number | undefined {
    return this.#socket.remotePort;
  }
}

/**
 * Resolves with the first bytes that arrive on a freshly accepted socket,
 * leaving it paused, so the caller can tell which protocol the peer speaks
 * before anything is written. Rejects with {@linkcode NetworkError} if the
 * socket closes first; the caller owns the deadline.
 *
 * @example
 * ```ts
 * const first = await firstBytes(socket);
 * const stream = socketStream(socket, { initialBytes: first });
 * ```
 */
export function firstBytes(socket: Socket): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const onData = (chunk: Uint8Array) => {
      cleanUp();
      resolve(chunk);
    };
    const onClose = () => {
      cleanUp();
      reject(new NetworkError("connection closed during the handshake"));
    };
    const cleanUp = () => {
      socket.pause();
      socket.off("data", onData);
      socket.off("close", onClose);
    };
    if (socket.destroyed) {
      onClose();
      return;
    }
    socket.on("data", onData);
    socket.on("close", onClose);
    socket.resume();
  });
}
