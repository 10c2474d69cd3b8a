/**
 * WebSocket frames (RFC 6455, section 5), for the relay's side of WebSocket
 * connections and for tests that play a client. securechat sends nothing
 * but binary messages whose bytes, concatenated, are exactly the byte stream
 * a TCP connection carries; message boundaries mean nothing.
 *
 * The decoder is strict, because anyone can send it anything: reserved bits,
 * unknown opcodes, text messages, unmasked client frames (masked server
 * frames), control frames that are fragmented or longer than 125 bytes,
 * lengths not in their shortest form, continuations out of place, messages
 * over the size limit, and close frames with a bad code or a reason that is
 * not UTF-8 all end the connection with the close code the RFC names. It
 * keeps no message in memory: binary payload is unmasked and handed on as
 * it arrives, and only a control frame's (at most 125 bytes) is collected.
 *
 * @module
 */

import { utf8 } from "../core/bytes.ts";

/** Frame opcodes (RFC 6455, 5.2). */
export const Opcode = {
  continuation: 0x0,
  text: 0x1,
  binary: 0x2,
  close: 0x8,
  ping: 0x9,
  pong: 0xa,
} as const;

/** Close status codes securechat sends (RFC 6455, 7.4.1). */
export const CloseCode = {
  normal: 1000,
  goingAway: 1001,
  protocolError: 1002,
  unsupportedData: 1003,
  invalidPayload: 1007,
  policyViolation: 1008,
  messageTooBig: 1009,
} as const;

/** Largest message (all its fragments together) a decoder accepts by default: 1 MiB. */
export const MAX_WEBSOCKET_MESSAGE_BYTES = 1024 * 1024;
/** Largest payload securechat puts in one frame (so its length takes 2 bytes). */
export const MAX_SENT_FRAME_BYTES = 65535;
/** Largest control frame payload (RFC 6455, 5.5). */
const MAX_CONTROL_PAYLOAD = 125;

/**
 * The peer broke RFC 6455 or securechat's use of it; `code` is the close
 * code to send before closing.
 *
 * @example
 * ```ts
 * throw new WebSocketProtocolError(CloseCode.protocolError, "client frame is not masked");
 * ```
 */
export class WebSocketProtocolError extends Error {
  /** The close status code that describes the failure. */
  readonly code: number;

  /** @example `new WebSocketProtocolError(1009, "message of 2000000 bytes is over 1048576")` */
  constructor(code: number, message: string) {
    super(message);
    this.name = "WebSocketProtocolError";
    this.code = code;
  }
}

/** Options for {@linkcode encodeWebSocketFrame}. */
export interface EncodeFrameOptions {
  /** The frame's opcode; see {@linkcode Opcode}. */
  opcode: number;
  /** The payload (not yet masked). */
  payload: Uint8Array;
  /** Whether this is the message's last frame. Default true. */
  fin?: boolean;
  /** A 4-byte masking key: clients must mask, servers must not. */
  mask?: Uint8Array;
  /** RSV1-3 bits, for tests of hostile peers only. Default 0. */
  rsv?: number;
}

/**
 * Encodes one frame, with its length in the shortest form.
 *
 * @example
 * ```ts
 * const frame = encodeWebSocketFrame({ opcode: Opcode.binary, payload: bytes });
 * ```
 */
export function encodeWebSocketFrame(options: EncodeFrameOptions): Uint8Array {
  const { opcode, payload, mask } = options;
  const length = payload.length;
  const lengthBytes = length < 126 ? 0 : length <= 0xffff ? 2 : 8;
  const maskBytes = mask ? 4 : 0;
  const headerBytes = 2 + lengthBytes + maskBytes;
  const frame = new Uint8Array(headerBytes + length);
  frame[0] = ((options.fin ?? true) ? 0x80 : 0) | ((options.rsv ?? 0) << 4) | opcode;
  const maskBit = mask ? 0x80 : 0;
  if (lengthBytes === 0) frame[1] = maskBit | length;
  else if (lengthBytes === 2) {
    frame[1] = maskBit | 126;
    frame[2] = length >>> 8;
    frame[3] = length & 0xff;
  } else {
    frame[1] = maskBit | 127;
    new DataView(frame.buffer).setBigUint64(2, BigInt(length));
  }
  if (mask) {
    if (mask.length !== 4) throw new RangeError("a masking key is 4 bytes");
    frame.set(mask, 2 + lengthBytes);
    for (let i = 0; i < length; i++) frame[headerBytes + i] = payload[i] ^ mask[i & 3];
  } else {
    frame.set(payload, headerBytes);
  }
  return frame;
}

/**
 * Encodes `bytes` as unmasked binary frames of at most
 * {@linkcode MAX_SENT_FRAME_BYTES} each, in one buffer (one socket write).
 *
 * @example
 * ```ts
 * socket.write(encodeBinaryFrames(wireBytes));
 * ```
 */
export function encodeBinaryFrames(bytes: Uint8Array): Uint8Array {
  const frames = Math.ceil(bytes.length / MAX_SENT_FRAME_BYTES);
  const out = new Uint8Array(bytes.length + frames * 4);
  let offset = 0;
  for (let start = 0; start < bytes.length; start += MAX_SENT_FRAME_BYTES) {
    const end = Math.min(start + MAX_SENT_FRAME_BYTES, bytes.length);
    const length = end - start;
    out[offset] = 0x80 | Opcode.binary;
    if (length < 126) {
      out[offset + 1] = length;
      offset += 2;
    } else {
      out[offset + 1] = 126;
      out[offset + 2] = length >>> 8;
      out[offset + 3] = length & 0xff;
      offset += 4;
    }
    out.set(bytes.subarray(start, end), offset);
    offset += length;
  }
  return out.subarray(0, offset);
}

/**
 * The payload of a close frame: a 2-byte status code and a UTF-8 reason,
 * cut to fit the 125-byte control frame limit.
 *
 * @example
 * ```ts
 * encodeClosePayload(1000, "bye");
 * ```
 */
export function encodeClosePayload(code: number, reason = ""): Uint8Array {
  let text = utf8(reason);
  if (text.length > MAX_CONTROL_PAYLOAD - 2) {
    // Cut at a character boundary: a reason that is not UTF-8 is itself a protocol error.
    let end = MAX_CONTROL_PAYLOAD - 2;
    while (end > 0 && (text[end] & 0xc0) === 0x80) end--;
    text = text.subarray(0, end);
  }
  const payload = new Uint8Array(2 + text.length);
  payload[0] = code >>> 8;
  payload[1] = code & 0xff;
  payload.set(text, 2);
  return payload;
}

/**
 * Whether a peer may send `code` in a close frame: 1000-1003, 1007-1011
 * (1004-1006 and 1015 are reserved, never sent), and 3000-4999 for
 * libraries and applications.
 *
 * @example
 * ```ts
 * isValidCloseCode(1005); // false
 * ```
 */
export function isValidCloseCode(code: number): boolean {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) ||
    (code >= 3000 && code <= 4999);
}

/** What a decoder found in the bytes it was given. */
export type WebSocketEvent =
  /** Part of a binary message's payload, unmasked, in order. */
  | { type: "data"; bytes: Uint8Array }
  | { type: "ping"; payload: Uint8Array }
  | { type: "pong"; payload: Uint8Array }
  /** The peer's close frame: no code when it sent none. */
  | { type: "close"; code?: number; reason: string };

/** Options for {@linkcode WebSocketDecoder}. */
export interface WebSocketDecoderOptions {
  /**
   * Whose frames are decoded: `"client"` frames must be masked (a relay
   * decodes these), `"server"` frames must not be.
   */
  from: "client" | "server";
  /** Largest message, all fragments together. Default {@linkcode MAX_WEBSOCKET_MESSAGE_BYTES}. */
  maxMessageBytes?: number;
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * A streaming frame decoder: push bytes as they arrive, get events back.
 * Throws {@linkcode WebSocketProtocolError} at the first violation; after
 * that, and after a close frame, it must not be used again.
 *
 * @example
 * ```ts
 * const decoder = new WebSocketDecoder({ from: "client" });
 * for (const event of decoder.push(chunk)) if (event.type === "data") handle(event.bytes);
 * ```
 */
export class WebSocketDecoder {
  #masked: boolean;
  #maxMessageBytes: number;
  /** Header bytes of the frame being read (at most 14). */
  #header = new Uint8Array(14);
  #headerFill = 0;
  /** The frame being read, once its header is complete. */
  #frame?: {
    opcode: number;
    fin: boolean;
    length: number;
    mask: Uint8Array | undefined;
    read: number;
    control?: Uint8Array;
  };
  /** Whether a fragmented binary message is under way, and its bytes so far. */
  #inMessage = false;
  #messageBytes = 0;
  #closed = false;

  /** @example `new WebSocketDecoder({ from: "client", maxMessageBytes: 1 << 20 })` */
  constructor(options: WebSocketDecoderOptions) {
    this.#masked = options.from === "client";
    this.#maxMessageBytes = options.maxMessageBytes ?? MAX_WEBSOCKET_MESSAGE_BYTES;
  }

  /**
   * Bytes of an unfinished frame header or control frame held (a frame cut
   * short by the end of the connection).
   *
   * @example
   * ```ts
   * if (decoder.midFrame) console.log("connection ended inside a frame");
   * ```
   */
  get midFrame(): boolean {
    return this.#headerFill > 0 || this.#frame !== undefined || this.#inMessage;
  }

  /**
   * Decodes `chunk` and returns the events it completes, in order.
   *
   * @example
   * ```ts
   * const events = decoder.push(new Uint8Array([0x82, 0x80, 1, 2, 3, 4]));
   * ```
   */
  push(chunk: Uint8Array): WebSocketEvent[] {
    const events: WebSocketEvent[] = [];
    let offset = 0;
    while (offset < chunk.length && !this.#closed) {
      if (this.#frame === undefined) {
        offset = this.#readHeader(chunk, offset, events);
        continue;
      }
      offset = this.#readPayload(chunk, offset, events);
    }
    return events;
  }

  /** Reads header bytes; starts the frame once the header is complete. */
  #readHeader(chunk: Uint8Array, offset: number, events: WebSocketEvent[]): number {
    const header = this.#header;
    while (offset < chunk.length) {
      header[this.#headerFill++] = chunk[offset++];
      const needed = this.#headerLength();
      if (needed !== undefined && this.#headerFill === needed) {
        this.#startFrame(events);
        return offset;
      }
    }
    return offset;
  }

  /** The full header length once its first two bytes are in; checks them on the way. */
  #headerLength(): number | undefined {
    if (this.#headerFill < 2) return undefined;
    const [first, second] = this.#header;
    if (this.#headerFill === 2) this.#checkFirstBytes(first, second);
    const lengthCode = second & 0x7f;
    const lengthBytes = lengthCode === 126 ? 2 : lengthCode === 127 ? 8 : 0;
    return 2 + lengthBytes + (this.#masked ? 4 : 0);
  }

  #checkFirstBytes(first: number, second: number): void {
    const fin = (first & 0x80) !== 0;
    const opcode = first & 0x0f;
    if ((first & 0x70) !== 0) {
      throw new WebSocketProtocolError(
        CloseCode.protocolError,
        "reserved bits are set (no extension was agreed)",
      );
    }
    const masked = (second & 0x80) !== 0;
    if (masked !== this.#masked) {
      throw new WebSocketProtocolError(
        CloseCode.protocolError,
        this.#masked ? "a client frame is not masked" : "a server frame is masked",
      );
    }
    const lengthCode = second & 0x7f;
    if (opcode >= 0x8) {
      if (opcode > Opcode.pong) {
        throw new WebSocketProtocolError(CloseCode.protocolError, `unknown opcode ${opcode}`);
      }
      if (!fin) {
        throw new WebSocketProtocolError(CloseCode.protocolError, "a fragmented control frame");
      }
      if (lengthCode > MAX_CONTROL_PAYLOAD) {
        throw new WebSocketProtocolError(CloseCode.protocolError, "a control frame over 125 bytes");
      }
      return;
    }
    if (opcode === Opcode.text) {
      throw new WebSocketProtocolError(
        CloseCode.unsupportedData,
        "a text message; securechat sends binary messages only",
      );
    }
    if (opcode === Opcode.binary && this.#inMessage) {
      throw new WebSocketProtocolError(
        CloseCode.protocolError,
        "a new message started before the fragmented one ended",
      );
    }
    if (opcode === Opcode.continuation && !this.#inMessage) {
      throw new WebSocketProtocolError(
        CloseCode.protocolError,
        "a continuation frame outside a fragmented message",
      );
    }
    if (opcode !== Opcode.binary && opcode !== Opcode.continuation) {
      throw new WebSocketProtocolError(CloseCode.protocolError, `unknown opcode ${opcode}`);
    }
  }

  #startFrame(events: WebSocketEvent[]): void {
    const header = this.#header;
    const fin = (header[0] & 0x80) !== 0;
    const opcode = header[0] & 0x0f;
    const lengthCode = header[1] & 0x7f;
    let length = lengthCode;
    let next = 2;
    if (lengthCode === 126) {
      length = (header[2] << 8) | header[3];
      next = 4;
      if (length < 126) {
        throw new WebSocketProtocolError(CloseCode.protocolError, "a length not in shortest form");
      }
    } else if (lengthCode === 127) {
      const view = new DataView(header.buffer, 2, 8);
      if (view.getUint32(0) > 0x1fffff) {
        // Beyond 2^53: also beyond any limit, and the top bit must be 0 anyway.
        throw new WebSocketProtocolError(CloseCode.messageTooBig, "a frame length beyond 2^53");
      }
      length = view.getUint32(0) * 2 ** 32 + view.getUint32(4);
      next = 10;
      if (length <= 0xffff) {
        throw new WebSocketProtocolError(CloseCode.protocolError, "a length not in shortest form");
      }
    }
    const mask = this.#masked ? header.slice(next, next + 4) : undefined;
    this.#headerFill = 0;
    if (opcode < 0x8) {
      const total = this.#messageBytes + length;
      if (total > this.#maxMessageBytes) {
        throw new WebSocketProtocolError(
          CloseCode.messageTooBig,
          `a message of more than ${this.#maxMessageBytes} bytes`,
        );
      }
      this.#messageBytes = total;
      this.#inMessage = !fin;
      if (fin) this.#messageBytes = 0;
    }
    this.#frame = {
      opcode,
      fin,
      length,
      mask,
      read: 0,
      control: opcode >= 0x8 ? new Uint8Array(length) : undefined,
    };
    if (length === 0) this.#finishFrame(events);
  }

  #readPayload(chunk: Uint8Array, offset: number, events: WebSocketEvent[]): number {
    const frame = this.#frame!;
    const take = Math.min(frame.length - frame.read, chunk.length - offset);
    const out = frame.control
      ? frame.control.subarray(frame.read, frame.read + take)
      : new Uint8Array(take);
    const mask = frame.mask;
    if (mask) {
      const start = frame.read;
      for (let i = 0; i < take; i++) out[i] = chunk[offset + i] ^ mask[(start + i) & 3];
    } else {
      out.set(chunk.subarray(offset, offset + take));
    }
    frame.read += take;
    if (!frame.control && take > 0) events.push({ type: "data", bytes: out });
    if (frame.read === frame.length) this.#finishFrame(events);
    return offset + take;
  }

  #finishFrame(events: WebSocketEvent[]): void {
    const frame = this.#frame!;
    this.#frame = undefined;
    switch (frame.opcode) {
      case Opcode.ping:
        events.push({ type: "ping", payload: frame.control! });
        return;
      case Opcode.pong:
        events.push({ type: "pong", payload: frame.control! });
        return;
      case Opcode.close:
        events.push(decodeClose(frame.control!));
        this.#closed = true;
        return;
    }
  }
}

function decodeClose(payload: Uint8Array): WebSocketEvent {
  if (payload.length === 0) return { type: "close", reason: "" };
  if (payload.length === 1) {
    throw new WebSocketProtocolError(CloseCode.protocolError, "a close frame of 1 byte");
  }
  const code = (payload[0] << 8) | payload[1];
  if (!isValidCloseCode(code)) {
    throw new WebSocketProtocolError(CloseCode.protocolError, `close code ${code} is not allowed`);
  }
  let reason: string;
  try {
    reason = strictUtf8.decode(payload.subarray(2));
  } catch {
    throw new WebSocketProtocolError(CloseCode.invalidPayload, "a close reason that is not UTF-8");
  }
  return { type: "close", code, reason };
}
