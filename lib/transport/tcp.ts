/**
 * Opening TCP connections to a relay. `node:net` is reached through
 * {@linkcode nodeBuiltin}, not imported, so that modules which merely can
 * use TCP (the chat client) still load in a browser, where relays are
 * reached over WebSocket instead.
 *
 * @module
 */

import type * as NodeNet from "node:net";
import { NetworkError, socketErrorText } from "../core/errors.ts";
import { nodeBuiltin } from "../core/runtime.ts";
import { formatServerAddress } from "../identity/server_address.ts";
import { type ByteStream, socketStream } from "./byte_stream.ts";

/** A relay address. */
export interface RelayAddress {
  /** Host name or IP address. */
  host: string;
  /** TCP port. */
  port: number;
}

/** Default deadline for opening a connection. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

/**
 * Opens a TCP connection, rejecting with {@linkcode NetworkError} on failure
 * or after `timeoutMs`, and in a runtime without TCP (a browser).
 *
 * @example
 * ```ts
 * const socket = await openSocket({ host: "127.0.0.1", port: 7878 });
 * ```
 */
export function openSocket(
  address: RelayAddress,
  timeoutMs: number = DEFAULT_CONNECT_TIMEOUT_MS,
): Promise<NodeNet.Socket> {
  const shown = formatServerAddress(address);
  const net = nodeBuiltin<typeof NodeNet>("node:net");
  if (net === undefined) {
    return Promise.reject(
      new NetworkError(
        `cannot connect to ${shown}: this runtime has no TCP; use a ws:// address (WebSocket)`,
      ),
    );
  }
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: address.host, port: address.port, noDelay: true });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new NetworkError(`cannot connect to ${shown}: timed out after ${timeoutMs / 1000} s`));
    }, timeoutMs);
    socket.once("connect", () => {
      clearTimeout(timer);
      socket.removeAllListeners("error");
      resolve(socket);
    });
    socket.once("error", (error) => {
      clearTimeout(timer);
      reject(new NetworkError(`cannot connect to ${shown}: ${socketErrorText(error)}`));
    });
  });
}

/**
 * Opens a TCP connection as a {@linkcode ByteStream}.
 *
 * @example
 * ```ts
 * const stream = await openTcpStream({ host: "127.0.0.1", port: 7878 });
 * ```
 */
export async function openTcpStream(
  address: RelayAddress,
  timeoutMs: number = DEFAULT_CONNECT_TIMEOUT_MS,
): Promise<ByteStream> {
  return socketStream(await openSocket(address, timeoutMs));
}
