/**
 * A client written from PROTOCOL.md for tests that must send what the real
 * client never would: the preamble of another version, or a record over the
 * size limit. It runs the handshake with the Noise engine directly and then
 * writes transport messages by hand, so nothing in `lib/transport/channel.ts`
 * can keep it from breaking a rule.
 *
 * @example
 * ```ts
 * const raw = await RawClient.connect({ host: "127.0.0.1", port });
 * raw.sendRecordBytes(new Uint8Array([0, 4, 147, 224])); // a length prefix of 300,000
 * const records = await raw.recordsUntilClose();
 * ```
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { connect, type Socket } from "node:net";
import { ed25519 } from "@noble/curves/ed25519.js";
import { concat, utf8 } from "../../lib/core/bytes.ts";
import { type CipherState, generateKeyPair, HandshakeState } from "../../lib/crypto/noise.ts";
import { generateIdentity } from "../../lib/identity/identity.ts";
import { PROTOCOL_VERSION } from "../../lib/core/version.ts";
import { encodePreamble, TRANSPORT_PROTOCOL } from "../../lib/transport/channel.ts";
import { FrameDecoder } from "../../lib/transport/framing.ts";
import { decodeRecord, type RelayRecord } from "../../lib/transport/records.ts";

const EMPTY = new Uint8Array(0);

/** Bytes from a socket, read on demand, with the end or error remembered. */
export class SocketBytes {
  readonly socket: Socket;
  #buffer: Uint8Array = new Uint8Array(0);
  #ended: "end" | "error" | undefined;
  #error: Error | undefined;
  #wake: (() => void) | undefined;

  /** @example `new SocketBytes(socket)` */
  constructor(socket: Socket) {
    this.socket = socket;
    socket.on("data", (chunk: Buffer) => {
      this.#buffer = concat(this.#buffer, new Uint8Array(chunk));
      this.#wake?.();
    });
    socket.on("end", () => {
      this.#ended ??= "end";
      this.#wake?.();
    });
    socket.on("error", (error) => {
      this.#ended = "error";
      this.#error = error;
      this.#wake?.();
    });
    socket.on("close", () => {
      this.#ended ??= "end";
      this.#wake?.();
    });
  }

  /** How the stream ended so far: a clean end, an error such as ECONNRESET, or not yet. */
  get ended(): { how: "end" | "error"; error?: Error } | undefined {
    return this.#ended ? { how: this.#ended, error: this.#error } : undefined;
  }

  /** Every byte received and not yet taken. */
  get buffered(): Uint8Array {
    return this.#buffer;
  }

  /** Waits for `n` bytes and takes them; rejects if the stream ends first or after `timeoutMs`. */
  async take(n: number, timeoutMs = 5_000): Promise<Uint8Array> {
    const deadline = Date.now() + timeoutMs;
    while (this.#buffer.length < n) {
      if (this.#ended) {
        throw new Error(`stream ended (${this.#ended}) after ${this.#buffer.length} of ${n} bytes`);
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${n} bytes`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    const taken = this.#buffer.slice(0, n);
    this.#buffer = this.#buffer.slice(n);
    return taken;
  }

  /** Waits until the stream has ended, at most `timeoutMs`. */
  async untilEnd(timeoutMs = 5_000): Promise<{ how: "end" | "error"; error?: Error }> {
    const deadline = Date.now() + timeoutMs;
    while (!this.#ended) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error("timed out waiting for the stream to end");
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    return this.ended!;
  }
}

/**
 * Opens a TCP connection to `host:port`.
 *
 * @example
 * ```ts
 * const socket = await openRaw({ host: "127.0.0.1", port: 7878 });
 * ```
 */
export function openRaw(address: { host: string; port: number }): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(address);
    socket.once("connect", () => resolve(socket));
    socket.once("error", reject);
  });
}

/** A client past the handshake that writes transport messages itself. */
export class RawClient {
  readonly bytes: SocketBytes;
  #send: CipherState;
  #receive: CipherState;

  private constructor(bytes: SocketBytes, send: CipherState, receive: CipherState) {
    this.bytes = bytes;
    this.#send = send;
    this.#receive = receive;
  }

  /** Connects and runs the client side of the handshake (PROTOCOL.md, Handshake). */
  static async connect(address: { host: string; port: number }): Promise<RawClient> {
    const socket = await openRaw(address);
    const bytes = new SocketBytes(socket);
    const identity = generateIdentity();
    const preamble = encodePreamble();
    socket.write(preamble);
    const relayPreamble = await bytes.take(8);
    const staticKeyPair = generateKeyPair("25519");
    const handshake = new HandshakeState({
      protocolName: TRANSPORT_PROTOCOL,
      initiator: true,
      prologue: concat(preamble, relayPreamble),
      staticKeyPair,
    });
    socket.write(withLength(handshake.writeMessage(EMPTY), 2));
    const length = await bytes.take(2);
    handshake.readMessage(await bytes.take((length[0] << 8) | length[1]));
    const signature = ed25519.sign(
      concat(utf8(`securechat/${PROTOCOL_VERSION} noise static\0`), staticKeyPair.publicKey),
      identity.secretKey,
    );
    socket.write(withLength(handshake.writeMessage(concat(identity.publicKey, signature)), 2));
    const { send, receive } = handshake.split();
    return new RawClient(bytes, send, receive);
  }

  /** Encrypts `plaintext` (at most 65,519 bytes) as one transport message and writes it. */
  sendTransport(plaintext: Uint8Array): void {
    this.bytes.socket.write(withLength(this.#send.encryptWithAd(EMPTY, plaintext), 2));
  }

  /**
   * Reads transport messages until the relay closes, and returns the
   * records they held (a trailing partial record is ignored) and how the
   * stream ended.
   */
  async recordsUntilClose(
    timeoutMs = 5_000,
  ): Promise<{ records: RelayRecord[]; ended: { how: "end" | "error"; error?: Error } }> {
    const ended = await this.bytes.untilEnd(timeoutMs);
    const frames = new FrameDecoder({ prefixBytes: 2, maxFrameBytes: 65535 });
    const recordDecoder = new FrameDecoder({ prefixBytes: 4, maxFrameBytes: 256 * 1024 });
    const records: RelayRecord[] = [];
    for (const frame of frames.push(this.bytes.buffered)) {
      const plaintext = this.#receive.decryptWithAd(EMPTY, frame);
      for (const record of recordDecoder.push(plaintext)) records.push(decodeRecord(record));
    }
    return { records, ended };
  }
}

function withLength(body: Uint8Array, prefixBytes: 2 | 4): Uint8Array {
  const out = new Uint8Array(prefixBytes + body.length);
  const view = new DataView(out.buffer);
  if (prefixBytes === 2) view.setUint16(0, body.length);
  else view.setUint32(0, body.length);
  out.set(body, prefixBytes);
  return out;
}
