/**
 * A programmable, frame-aware TCP proxy that plays a hostile network between
 * clients and a relay, on 127.0.0.1.
 *
 * It parses each direction of each connection the way securechat frames it
 * (PROTOCOL.md, "Connection"): an 8-byte preamble, then `u16 length || Noise
 * message` frames. For every unit (the preamble or one frame, as the sender
 * wrote it) it asks a handler what to put on the wire instead: the unit
 * unchanged, altered bytes, nothing, several copies, recorded units from
 * earlier (also from earlier connections), random bytes, a delay, 1-byte
 * pieces, or a close. Parsing always follows the sender's original stream,
 * so the proxy keeps its bearings whatever it forwards.
 *
 * Everything the proxy forwards in one direction goes through one ordered
 * queue, so a delayed unit also delays the ones behind it, as TCP would.
 *
 * @example
 * ```ts
 * const proxy = await HostileProxy.start({ upstream: { host: "127.0.0.1", port } });
 * proxy.handler = (unit) => unit.index === 3 ? [{ bytes: flipBit(unit.bytes, 40) }] : undefined;
 * // connect clients to proxy.port
 * await proxy.close();
 * ```
 *
 * @module
 */

import { createConnection, createServer, type Server, type Socket } from "node:net";
import { concat } from "../../../lib/core/bytes.ts";

/** Which way a unit travels. */
export type Direction = "toRelay" | "toClient";

/** The preamble or one frame, exactly as its sender wrote it. */
export interface Unit {
  /** `preamble` (8 bytes) or `frame` (`u16 length || body`). */
  kind: "preamble" | "frame";
  /** The unit's bytes on the wire, length prefix included. */
  bytes: Uint8Array;
  /** 0 for the preamble, then 1, 2, … for the frames of this direction. */
  index: number;
  /** Which way it travels. */
  direction: Direction;
  /** Accepted connections counted from 0. */
  connection: number;
}

/** One thing to put on the wire. */
export interface Emit {
  /** Bytes to write (may be empty, with `delayMs` or `close`). */
  bytes?: Uint8Array;
  /** Wait this long before writing (everything behind waits too). */
  delayMs?: number;
  /** Write in pieces of this many bytes, one per event-loop turn. */
  pieceBytes?: number;
  /** After writing, close this connection (both sides, abruptly). */
  close?: boolean;
  /**
   * Merge: wait this long for more units, then write this one and every
   * merge-marked unit queued behind it as one buffer, cut again at one
   * random point (so frames straddle writes).
   */
  mergeMs?: number;
}

/**
 * Decides what to forward for a unit: `undefined` forwards it unchanged; an
 * array is written instead, in order (an empty array drops the unit).
 */
export type UnitHandler = (unit: Unit, proxy: HostileProxy) => Emit[] | undefined;

/** One direction of one proxied connection. */
interface Leg {
  direction: Direction;
  connection: number;
  to: Socket;
  buffer: Uint8Array;
  index: number;
  queue: Emit[];
  pumping: boolean;
}

/**
 * The hostile network.
 *
 * @example
 * ```ts
 * const proxy = await HostileProxy.start({ upstream });
 * proxy.handler = (unit) => unit.direction === "toClient" && unit.index === 2 ? [] : undefined;
 * ```
 */
export class HostileProxy {
  /** Decides what each unit becomes; replace it at any time. */
  handler: UnitHandler = () => undefined;
  /** Every unit seen, in arrival order, across connections. */
  readonly history: Unit[] = [];
  /** Connections accepted so far. */
  connections = 0;
  /**
   * When set, new connections are not forwarded upstream: the proxy answers
   * the client with these bytes itself (to replay a whole recorded session).
   */
  answerWith?: Uint8Array;
  #server: Server;
  #upstream: { host: string; port: number };
  #sockets = new Set<Socket>();
  #byConnection = new Map<number, Socket[]>();

  private constructor(server: Server, upstream: { host: string; port: number }) {
    this.#server = server;
    this.#upstream = upstream;
  }

  /** Starts listening on a free loopback port. @example `await HostileProxy.start({ upstream })` */
  static start(options: { upstream: { host: string; port: number } }): Promise<HostileProxy> {
    const server = createServer({ noDelay: true });
    const proxy = new HostileProxy(server, options.upstream);
    server.on("connection", (client) => proxy.#accept(client));
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen({ host: "127.0.0.1", port: 0 }, () => resolve(proxy));
    });
  }

  /** The port clients connect to. @example `proxy.port` */
  get port(): number {
    const address = this.#server.address();
    if (address === null || typeof address === "string") throw new Error("proxy is not listening");
    return address.port;
  }

  /** Units of one connection and direction, in order. @example `proxy.units(0, "toClient")` */
  units(connection: number, direction: Direction): Unit[] {
    return this.history.filter((unit) =>
      unit.connection === connection && unit.direction === direction
    );
  }

  /** The concatenated bytes one connection sent in one direction. @example `proxy.stream(0, "toRelay")` */
  stream(connection: number, direction: Direction): Uint8Array {
    const units = this.units(connection, direction);
    const out = new Uint8Array(units.reduce((sum, unit) => sum + unit.bytes.length, 0));
    let offset = 0;
    for (const unit of units) {
      out.set(unit.bytes, offset);
      offset += unit.bytes.length;
    }
    return out;
  }

  #accept(client: Socket): void {
    const connection = this.connections++;
    client.setNoDelay(true);
    this.#sockets.add(client);
    client.on("error", () => {});
    client.on("close", () => this.#sockets.delete(client));
    if (this.answerWith !== undefined) {
      const answer = this.answerWith;
      client.on("data", () => {});
      client.write(answer);
      return;
    }
    const relay = createConnection({ ...this.#upstream, noDelay: true });
    this.#sockets.add(relay);
    this.#byConnection.set(connection, [client, relay]);
    relay.on("error", () => {});
    relay.on("close", () => this.#sockets.delete(relay));
    const toRelay = this.#leg("toRelay", connection, relay);
    const toClient = this.#leg("toClient", connection, client);
    client.on("data", (chunk: Uint8Array) => this.#receive(toRelay, chunk));
    relay.on("data", (chunk: Uint8Array) => this.#receive(toClient, chunk));
    // A side that goes away takes the other with it, once what is queued is written.
    client.on("close", () => this.#finish(toRelay));
    relay.on("close", () => this.#finish(toClient));
  }

  #leg(direction: Direction, connection: number, to: Socket): Leg {
    return {
      direction,
      connection,
      to,
      buffer: new Uint8Array(0),
      index: 0,
      queue: [],
      pumping: false,
    };
  }

  #receive(leg: Leg, chunk: Uint8Array): void {
    const joined = new Uint8Array(leg.buffer.length + chunk.length);
    joined.set(leg.buffer);
    joined.set(chunk, leg.buffer.length);
    let offset = 0;
    // Bounded by the bytes at hand: each pass consumes at least 2 bytes or stops.
    while (true) {
      const left = joined.length - offset;
      let size: number;
      if (leg.index === 0) {
        if (left < 8) break;
        size = 8;
      } else {
        if (left < 2) break;
        size = 2 + ((joined[offset] << 8) | joined[offset + 1]);
        if (left < size) break;
      }
      const unit: Unit = {
        kind: leg.index === 0 ? "preamble" : "frame",
        bytes: joined.slice(offset, offset + size),
        index: leg.index++,
        direction: leg.direction,
        connection: leg.connection,
      };
      offset += size;
      this.history.push(unit);
      let emits: Emit[] | undefined;
      try {
        emits = this.handler(unit, this);
      } catch (error) {
        // A broken test handler must not look like a securechat failure.
        console.error("hostile proxy handler threw:", error);
        emits = undefined;
      }
      leg.queue.push(...(emits ?? [{ bytes: unit.bytes }]));
    }
    leg.buffer = joined.slice(offset);
    this.#pump(leg);
  }

  async #pump(leg: Leg): Promise<void> {
    if (leg.pumping) return;
    leg.pumping = true;
    try {
      // Bounded: each pass removes one queued emit.
      while (leg.queue.length > 0) {
        const emit = leg.queue.shift()!;
        if (emit.delayMs) await new Promise((resolve) => setTimeout(resolve, emit.delayMs));
        let bytes = emit.bytes ?? new Uint8Array(0);
        if (emit.mergeMs) {
          await new Promise((resolve) => setTimeout(resolve, emit.mergeMs));
          const parts = [bytes];
          while (leg.queue.length > 0 && leg.queue[0].mergeMs) {
            parts.push(leg.queue.shift()!.bytes ?? new Uint8Array(0));
          }
          bytes = concat(...parts);
          if (bytes.length > 1 && !leg.to.destroyed) {
            const cut = 1 + Math.floor(Math.random() * (bytes.length - 1));
            leg.to.write(bytes.subarray(0, cut));
            bytes = bytes.subarray(cut);
          }
        }
        if (leg.to.destroyed) {
          leg.queue.length = 0;
          return;
        }
        if (emit.pieceBytes && bytes.length > emit.pieceBytes) {
          for (let at = 0; at < bytes.length && !leg.to.destroyed; at += emit.pieceBytes) {
            leg.to.write(bytes.subarray(at, at + emit.pieceBytes));
            await new Promise((resolve) => setImmediate(resolve));
          }
        } else if (bytes.length > 0) {
          leg.to.write(bytes);
        }
        if (emit.close) {
          await new Promise((resolve) => setTimeout(resolve, 20));
          this.#closeConnection(leg.connection);
          leg.queue.length = 0;
          return;
        }
      }
    } finally {
      leg.pumping = false;
    }
  }

  #finish(leg: Leg): void {
    // Let the queue drain (delays included), then close the far side.
    const close = () => {
      if (leg.queue.length > 0 || leg.pumping) {
        setTimeout(close, 10);
        return;
      }
      leg.to.end();
      setTimeout(() => leg.to.destroy(), 100);
    };
    close();
  }

  #closeConnection(connection: number): void {
    for (const socket of this.#byConnection.get(connection) ?? []) socket.destroy();
  }

  /** Cuts every connection and stops listening. @example `await proxy.close()` */
  close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }
}

/**
 * Returns a copy of `bytes` with bit `bit` flipped.
 *
 * @example
 * ```ts
 * flipBit(new Uint8Array([0]), 3); // Uint8Array [8]
 * ```
 */
export function flipBit(bytes: Uint8Array, bit: number): Uint8Array {
  const out = bytes.slice();
  out[Math.floor(bit / 8) % out.length] ^= 1 << (bit % 8);
  return out;
}
