/**
 * Relay addresses as users type them (`host:port`, `[v6]:port`) and in the
 * canonical form used as the key of remembered relay fingerprints. Pure
 * string work on the URL parser, so the web page uses the same rules.
 *
 * @module
 */

/** A relay address split for connecting; `host` has no brackets. */
export interface ServerAddress {
  host: string;
  port: number;
}

/**
 * Parses `host:port`, `[ipv6]:port` or `ipv6:port` (the last `:` separates
 * the port) and returns the host in canonical form: hostnames in lowercase
 * (IDNA to punycode), IPv4 addresses as four decimal numbers, IPv6
 * addresses compressed and lowercase (RFC 5952), without brackets. Throws a
 * `SyntaxError` saying what is wrong.
 *
 * @example
 * ```ts
 * parseServerAddress("[::1]:7878"); // { host: "::1", port: 7878 }
 * parseServerAddress("Relay.Example:7878"); // { host: "relay.example", port: 7878 }
 * ```
 */
export function parseServerAddress(text: string): ServerAddress {
  let host: string;
  let portText: string;
  const bracketed = /^\[([^\]]*)\]:([^:]*)$/.exec(text);
  if (bracketed) {
    [, host, portText] = bracketed;
    if (!isIPv6Literal(host)) {
      throw new SyntaxError(`not an IPv6 address in brackets: ${show(text)}`);
    }
  } else {
    const colon = text.lastIndexOf(":");
    if (colon <= 0) throw new SyntaxError(`expected HOST:PORT, got ${show(text)}`);
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (host.includes(":") && !isIPv6Literal(host)) {
      throw new SyntaxError(`expected HOST:PORT or [IPV6]:PORT, got ${show(text)}`);
    }
  }
  if (!/^[0-9]{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) {
    throw new SyntaxError(`port must be a number from 1 to 65535, got ${show(portText)}`);
  }
  return { host: canonicalHost(host), port: Number(portText) };
}

/**
 * Formats an address in the canonical form used as the `known_servers` key:
 * `host:port`, with IPv6 addresses in brackets (`[::1]:7878`).
 *
 * @example
 * ```ts
 * formatServerAddress({ host: "::1", port: 7878 }); // "[::1]:7878"
 * ```
 */
export function formatServerAddress({ host, port }: ServerAddress): string {
  const canonical = canonicalHost(host);
  return canonical.includes(":") ? `[${canonical}]:${port}` : `${canonical}:${port}`;
}

/**
 * Normalises an address given in any form {@linkcode parseServerAddress}
 * accepts to the canonical `known_servers` key.
 *
 * @example
 * ```ts
 * canonicalServerAddress("::1:7878"); // "[::1]:7878"
 * ```
 */
export function canonicalServerAddress(text: string): string {
  return formatServerAddress(parseServerAddress(text));
}

function canonicalHost(host: string): string {
  if (isIPv6Literal(host)) {
    if (host.includes("%")) throw new SyntaxError("IPv6 zone identifiers are not supported");
    return new URL(`http://[${host}]/`).hostname.slice(1, -1);
  }
  if (!/^[A-Za-z0-9._-]+$/.test(host) || host.length > 253) {
    throw new SyntaxError(`not a host name or IP address: ${show(host)}`);
  }
  try {
    // The URL parser lowercases names and rewrites IPv4 shorthands such as 127.1.
    return new URL(`http://${host}/`).hostname;
  } catch {
    throw new SyntaxError(`not a host name or IP address: ${show(host)}`);
  }
}

/**
 * Whether `host` is an IPv6 address literal without brackets, as the WHATWG
 * URL parser reads them, with or without a zone (`%eth0`), which the caller
 * refuses with its own message.
 */
function isIPv6Literal(host: string): boolean {
  const address = host.replace(/%[^%]+$/, "");
  if (!address.includes(":") || !/^[0-9A-Fa-f:.]+$/.test(address)) return false;
  try {
    new URL(`http://[${address}]/`);
    return true;
  } catch {
    return false;
  }
}

/** Quotes user input for an error message, cut short so a pasted blob stays one readable line. */
function show(text: string): string {
  return JSON.stringify(text.length > 60 ? `${text.slice(0, 60)}...` : text);
}
