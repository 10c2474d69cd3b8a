/**
 * The HTTP/1.1 request that opens a WebSocket (RFC 6455, section 4), read
 * strictly and answered in one of two ways: `101 Switching Protocols`, or an
 * error status with a one-line text body and the connection closed. Nothing
 * else of HTTP is spoken: the relay is not a web server.
 *
 * Origin policy: browsers send `Origin` with every WebSocket request and
 * scripts cannot forge it, so it tells which web page is driving the
 * browser. A request without `Origin` comes from a program, not a page, and
 * is let in (it could as well connect over TCP). A page is let in only if
 * the relay's policy admits its origin: by default the loopback origins
 * (`http://127.0.0.1:*`, `http://localhost:*`, `http://[::1]:*`), where
 * `securechat web` serves the page from the user's own executable, so an
 * arbitrary web site cannot use a visitor's browser to reach relays that
 * only the visitor's network can reach.
 *
 * @module
 */

import { fromBase64, toBase64, utf8 } from "../core/bytes.ts";
import { sha1 } from "@noble/hashes/legacy.js";

/** Longest request head accepted (request line and headers). */
export const MAX_UPGRADE_REQUEST_BYTES = 8 * 1024;
/** Most header lines accepted. */
const MAX_HEADERS = 64;
/** The GUID RFC 6455 appends to the client's key. */
const WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/** Headers that must not appear twice: two values would be two readings of one request. */
const SINGLE_HEADERS = new Set([
  "host",
  "upgrade",
  "connection",
  "origin",
  "sec-websocket-key",
  "sec-websocket-version",
]);

/**
 * An upgrade request that cannot be accepted: `status` is the HTTP status
 * to answer with, and the message says why in one line (it is sent as the
 * response body, so it never contains anything the client did not send).
 *
 * @example
 * ```ts
 * throw new UpgradeRefusal(403, "origin https://evil.example is not allowed");
 * ```
 */
export class UpgradeRefusal extends Error {
  /** HTTP status code of the answer. */
  readonly status: number;

  /** @example `new UpgradeRefusal(400, "no Sec-WebSocket-Key")` */
  constructor(status: number, message: string) {
    super(message);
    this.name = "UpgradeRefusal";
    this.status = status;
  }
}

/** The parts of an accepted upgrade request the relay uses. */
export interface UpgradeRequest {
  /** The request target, always `/`. */
  path: string;
  /** The `Origin` header, if the client is a web page. */
  origin?: string;
  /** The `Sec-WebSocket-Key` (base64 of 16 bytes). */
  key: string;
}

/** Decides whether a page from `origin` may open a connection. */
export type OriginPolicy = (origin: string) => boolean;

/**
 * Where a complete request head ends in `bytes` (the index after the blank
 * line), `undefined` if it has not all arrived, or a refusal if it is too
 * long already.
 *
 * @example
 * ```ts
 * const end = upgradeRequestEnd(buffered); // number | undefined
 * ```
 */
export function upgradeRequestEnd(bytes: Uint8Array): number | undefined {
  const limit = Math.min(bytes.length, MAX_UPGRADE_REQUEST_BYTES);
  for (let i = 3; i < limit; i++) {
    if (
      bytes[i] === 0x0a && bytes[i - 1] === 0x0d && bytes[i - 2] === 0x0a && bytes[i - 3] === 0x0d
    ) {
      return i + 1;
    }
  }
  if (bytes.length >= MAX_UPGRADE_REQUEST_BYTES) {
    throw new UpgradeRefusal(431, `request head over ${MAX_UPGRADE_REQUEST_BYTES} bytes`);
  }
  return undefined;
}

/**
 * Parses and checks a complete request head (through the blank line).
 * Throws {@linkcode UpgradeRefusal} for anything but a WebSocket upgrade of
 * `/` that `allowOrigin` admits.
 *
 * @example
 * ```ts
 * const request = parseUpgradeRequest(head, isLoopbackOrigin);
 * socket.write(upgradeResponse(request));
 * ```
 */
export function parseUpgradeRequest(head: Uint8Array, allowOrigin: OriginPolicy): UpgradeRequest {
  // Latin-1 keeps one character per byte, so any byte sequence is read, then checked.
  const text = new TextDecoder("latin1").decode(head);
  if (!text.endsWith("\r\n\r\n")) throw new UpgradeRefusal(400, "request head is incomplete");
  const lines = text.slice(0, -4).split("\r\n");
  const requestLine = /^GET (\S+) HTTP\/1\.1$/.exec(lines[0]);
  if (!requestLine) {
    throw new UpgradeRefusal(400, "expected a request line `GET / HTTP/1.1`");
  }
  if (lines.length - 1 > MAX_HEADERS) throw new UpgradeRefusal(431, "too many header lines");
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const match = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*(.*?)[ \t]*$/.exec(line);
    // deno-lint-ignore no-control-regex
    if (!match || /[\x00-\x08\x0a-\x1f\x7f]/.test(match[2])) {
      throw new UpgradeRefusal(400, "a malformed header line");
    }
    const name = match[1].toLowerCase();
    if (headers.has(name) && SINGLE_HEADERS.has(name)) {
      throw new UpgradeRefusal(400, `header ${match[1]} appears twice`);
    }
    headers.set(name, headers.has(name) ? `${headers.get(name)}, ${match[2]}` : match[2]);
  }
  if (!headers.has("host")) throw new UpgradeRefusal(400, "no Host header");
  if (!hasToken(headers.get("upgrade"), "websocket")) {
    throw new UpgradeRefusal(
      426,
      "this is a securechat relay: it speaks WebSocket or its own protocol over TCP, not HTTP. " +
        "Join with `securechat join` or the page of `securechat web`",
    );
  }
  if (!hasToken(headers.get("connection"), "upgrade")) {
    throw new UpgradeRefusal(400, "Connection does not include Upgrade");
  }
  if (headers.get("sec-websocket-version") !== "13") {
    throw new UpgradeRefusal(426, "only WebSocket version 13 is spoken here");
  }
  const key = headers.get("sec-websocket-key") ?? "";
  if (!isWebSocketKey(key)) throw new UpgradeRefusal(400, "Sec-WebSocket-Key is not 16 bytes");
  if (requestLine[1] !== "/") throw new UpgradeRefusal(404, "the only path here is /");
  const origin = headers.get("origin");
  if (origin !== undefined && !allowOrigin(origin)) {
    throw new UpgradeRefusal(
      403,
      "pages from this origin may not connect to this relay (see `serve --ws-origin`)",
    );
  }
  return { path: requestLine[1], origin, key };
}

function hasToken(value: string | undefined, token: string): boolean {
  if (value === undefined) return false;
  return value.split(",").some((part) => part.trim().toLowerCase() === token);
}

function isWebSocketKey(key: string): boolean {
  if (!/^[A-Za-z0-9+/]{22}==$/.test(key)) return false;
  try {
    return fromBase64(key).length === 16;
  } catch {
    return false;
  }
}

/**
 * `Sec-WebSocket-Accept` for a client's key: base64(SHA-1(key || GUID)).
 *
 * @example
 * ```ts
 * webSocketAccept("dGhlIHNhbXBsZSBub25jZQ=="); // "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
 * ```
 */
export function webSocketAccept(key: string): string {
  return toBase64(sha1(utf8(key + WEBSOCKET_GUID)));
}

/**
 * The `101 Switching Protocols` answer to an accepted request.
 *
 * @example
 * ```ts
 * socket.write(upgradeResponse(request));
 * ```
 */
export function upgradeResponse(request: UpgradeRequest): Uint8Array {
  return utf8(
    "HTTP/1.1 101 Switching Protocols\r\n" +
      "Upgrade: websocket\r\n" +
      "Connection: Upgrade\r\n" +
      `Sec-WebSocket-Accept: ${webSocketAccept(request.key)}\r\n\r\n`,
  );
}

const REASONS: Record<number, string> = {
  400: "Bad Request",
  403: "Forbidden",
  404: "Not Found",
  426: "Upgrade Required",
  431: "Request Header Fields Too Large",
};

/**
 * The error answer to a refused request: its status, a one-line text body,
 * and `Connection: close`.
 *
 * @example
 * ```ts
 * socket.end(refusalResponse(new UpgradeRefusal(404, "the only path here is /")));
 * ```
 */
export function refusalResponse(refusal: UpgradeRefusal): Uint8Array {
  const body = `${refusal.message}\n`;
  const extra = refusal.status === 426 ? "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n" : "";
  return utf8(
    `HTTP/1.1 ${refusal.status} ${REASONS[refusal.status] ?? "Error"}\r\n` +
      "Content-Type: text/plain; charset=utf-8\r\n" +
      `Content-Length: ${utf8(body).length}\r\n` +
      extra +
      "Connection: close\r\n\r\n" + body,
  );
}

/**
 * The default origin policy: pages served from a loopback address over
 * HTTP or HTTPS, on any port (`securechat web` serves the page there).
 *
 * @example
 * ```ts
 * isLoopbackOrigin("http://127.0.0.1:8080"); // true
 * isLoopbackOrigin("https://example.com"); // false
 * ```
 */
export function isLoopbackOrigin(origin: string): boolean {
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return false;
  if (url.origin !== origin) return false;
  return url.hostname === "localhost" || url.hostname === "[::1]" ||
    /^127\.\d+\.\d+\.\d+$/.test(url.hostname);
}

/**
 * An origin policy that admits the loopback origins and the exact origins
 * listed (`*` admits every page: only for a relay meant for the open web).
 *
 * @example
 * ```ts
 * const policy = originPolicy(["https://chat.example"]);
 * policy("https://chat.example"); // true
 * ```
 */
export function originPolicy(extra: Iterable<string> = []): OriginPolicy {
  const allowed = new Set(extra);
  if (allowed.has("*")) return () => true;
  return (origin) => isLoopbackOrigin(origin) || allowed.has(origin);
}
