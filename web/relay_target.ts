/**
 * What the user types as a relay: `host:port` (as for `securechat join`),
 * or a `ws://` / `wss://` URL (a relay behind a TLS proxy). Both become the
 * WebSocket URL to open and the canonical address under which the relay's
 * key is remembered, the same key `known_servers` uses.
 *
 * @module
 */

import { formatServerAddress, parseServerAddress } from "../lib/identity/server_address.ts";

/** A relay the page can connect to. */
export interface RelayTarget {
  /** The WebSocket URL. */
  url: string;
  /** Host, without brackets. */
  host: string;
  /** Port. */
  port: number;
  /** Canonical `host:port`, the key of the remembered fingerprint. */
  address: string;
}

/**
 * Parses a relay address; throws a `SyntaxError` that says what is wrong.
 *
 * @example
 * ```ts
 * parseRelayTarget("127.0.0.1:7878").url; // "ws://127.0.0.1:7878/"
 * parseRelayTarget("wss://chat.example/").address; // "chat.example:443"
 * ```
 */
export function parseRelayTarget(text: string): RelayTarget {
  const trimmed = text.trim();
  if (/^wss?:\/\//i.test(trimmed)) {
    let url: URL;
    try {
      url = new URL(trimmed);
    } catch {
      throw new SyntaxError(`not a URL: ${JSON.stringify(trimmed)}`);
    }
    if (url.pathname !== "/" || url.search !== "" || url.hash !== "" || url.username !== "") {
      throw new SyntaxError("a relay URL has no path, query or user: ws://host:port/");
    }
    const secure = url.protocol === "wss:";
    const port = url.port === "" ? (secure ? 443 : 80) : Number(url.port);
    const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
    const address = formatServerAddress({ host, port });
    return { url: `${url.protocol}//${address}/`, host, port, address };
  }
  const { host, port } = parseServerAddress(trimmed);
  const address = formatServerAddress({ host, port });
  return { url: `ws://${address}/`, host, port, address };
}
