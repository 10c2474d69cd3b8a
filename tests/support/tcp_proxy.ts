/**
 * A TCP proxy on 127.0.0.1 for tests: records every byte in both directions
 * and can alter the stream on its way, to play a network attacker.
 *
 * @module
 */

import { createConnection, createServer, type Server, type Socket } from "node:net";

/** Which way bytes travel. */
export type Direction = "toRelay" | "toClient";

/** Changes a chunk in flight; return the bytes to forward (possibly none). */
export type Tamper = (
  chunk: Uint8Array,
  info: { direction: Direction; offset: number },
) => Uint8Array;

/**
 * A recording, optionally tampering proxy in front of one upstream address.
 *
 * @example
 * ```ts
 * const proxy = await TcpProxy.start({ upstream: { host: "127.0.0.1", port } });
 * // point clients at proxy.address, then inspect proxy.recorded("toRelay")
 * await proxy.close();
 * ```
 */
export class TcpProxy {
  #server: Server;
  #recorded: Record<Direction, Uint8Array[]> = { toRelay: [], toClient: [] };
  #sockets = new Set<Socket>();

  private constructor(server: Server) {
    this.#server = server;
  }

  /** Starts listening on a free loopback port. @example `await TcpProxy.start({ upstream })` */
  static start(options: {
    upstream: { host: string; port: number };
    tamper?: Tamper;
  }): Promise<TcpProxy> {
    const server = createServer();
    const proxy = new TcpProxy(server);
    server.on("connection", (client) => proxy.#pipe(client, options.upstream, options.tamper));
    return new Promise((resolve) =>
      server.listen({ host: "127.0.0.1", port: 0 }, () => resolve(proxy))
    );
  }

  #pipe(client: Socket, upstream: { host: string; port: number }, tamper?: Tamper): void {
    const relay = createConnection(upstream);
    this.#sockets.add(client).add(relay);
    const offsets: Record<Direction, number> = { toRelay: 0, toClient: 0 };
    const forward = (from: Socket, to: Socket, direction: Direction) => {
      from.on("data", (chunk: Uint8Array) => {
        this.#recorded[direction].push(new Uint8Array(chunk));
        const out = tamper
          ? tamper(new Uint8Array(chunk), { direction, offset: offsets[direction] })
          : chunk;
        offsets[direction] += chunk.length;
        if (out.length > 0 && !to.destroyed) to.write(out);
      });
      from.on("end", () => to.end());
      from.on("error", () => to.destroy());
      from.on("close", () => {
        to.destroy();
        this.#sockets.delete(from);
      });
    };
    forward(client, relay, "toRelay");
    forward(relay, client, "toClient");
  }

  /** `host:port` clients should connect to. @example `proxy.address` */
  get address(): string {
    const address = this.#server.address();
    if (address === null || typeof address === "string") throw new Error("proxy is not listening");
    return `127.0.0.1:${address.port}`;
  }

  /** All bytes seen in one direction, concatenated. @example `proxy.recorded("toClient")` */
  recorded(direction: Direction): Uint8Array {
    const chunks = this.#recorded[direction];
    const out = new Uint8Array(chunks.reduce((sum, chunk) => sum + chunk.length, 0));
    let offset = 0;
    for (const chunk of chunks) {
      out.set(chunk, offset);
      offset += chunk.length;
    }
    return out;
  }

  /** Stops the proxy and cuts every connection. @example `await proxy.close()` */
  close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }
}

/**
 * Whether `needle` occurs anywhere in `haystack`.
 *
 * @example
 * ```ts
 * containsBytes(recorded, new TextEncoder().encode("secret")); // false
 * ```
 */
export function containsBytes(haystack: Uint8Array, needle: Uint8Array): boolean {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) {
      if (haystack[i + j] !== needle[j]) continue outer;
    }
    return true;
  }
  return false;
}
