/**
 * One room membership of the page: a {@linkcode ReconnectingClient} over a
 * WebSocket, with the relay checked by the page's trust-on-first-use rules
 * before anything identifying is sent, and reconnection with the command
 * line's backoff (0.5 s doubling to 10 s; a changed relay key ends it).
 * Everything the protocol does is lib/'s: the page only wires it up.
 *
 * @module
 */

import { ChatClient } from "../lib/client/client.ts";
import {
  type ConnectionHandlers,
  type ConnectionStatus,
  ReconnectingClient,
} from "../lib/client/reconnecting_client.ts";
import { AuthenticationError } from "../lib/core/errors.ts";
import type { RoomEvent } from "../lib/e2e/room.ts";
import type { ClientStore } from "../lib/client/client_store.ts";
import type { Identity } from "../lib/identity/identity.ts";
import { openWebSocketStream } from "../lib/transport/websocket_stream.ts";
import type { RelayTarget } from "./relay_target.ts";
import type { PageTrust } from "./trust.ts";

/** The relay's key differs from the pinned or remembered one: nothing was sent. */
export class RelayKeyChangedError extends AuthenticationError {
  /** The fingerprint the relay presented. */
  readonly presented: string;
  /** The fingerprint expected. */
  readonly expected: string;
  /** Whether the expectation was a pin typed by the user (else remembered). */
  readonly pinned: boolean;
  /** The relay's canonical address. */
  readonly address: string;

  /** @example `new RelayKeyChangedError({ address, presented, expected, pinned: false })` */
  constructor(
    options: { address: string; presented: string; expected: string; pinned: boolean },
  ) {
    super(
      `the relay at ${options.address} presented the key ${options.presented}, but ` +
        `${options.pinned ? "the fingerprint you entered" : "this browser remembers"} ` +
        `${options.expected}: possibly a man in the middle. Nothing was sent.`,
    );
    this.name = "RelayKeyChangedError";
    this.presented = options.presented;
    this.expected = options.expected;
    this.pinned = options.pinned;
    this.address = options.address;
  }
}

/** Options for {@linkcode startChatSession}. */
export interface ChatSessionOptions {
  identity: Identity;
  target: RelayTarget;
  room: string;
  nick: string;
  /** A fingerprint the user typed: the relay must have it, and nothing is remembered. */
  pinned?: string;
  trust: PageTrust;
  /** Where a durable room's keys, this identity's prekeys and the history are kept. */
  store?: ClientStore;
  onEvent: (event: RoomEvent) => void;
  onStatus: (status: ConnectionStatus) => void;
  /** The relay's key passed the check; `firstContact` when it was just remembered. */
  onRelayVerified: (fingerprint: string, firstContact: boolean) => void;
  onEnd: (error?: Error) => void;
}

/**
 * Joins the room; rejects (with {@linkcode RelayKeyChangedError} for a
 * changed key) if the first connection fails.
 *
 * @example
 * ```ts
 * const member = await startChatSession({ identity, target, room, nick, trust, ...handlers });
 * await member.send(["hello"]);
 * ```
 */
export function startChatSession(options: ChatSessionOptions): Promise<ReconnectingClient> {
  const { identity, target, room, nick, pinned, trust } = options;
  const connect = (handlers: ConnectionHandlers) =>
    ChatClient.connect({
      host: target.host,
      port: target.port,
      identity,
      room,
      nick,
      openStream: (timeoutMs) => openWebSocketStream({ url: target.url, timeoutMs }),
      verifyRelay: async ({ fingerprint }) => {
        const check = await trust.checkRelay({
          address: target.address,
          presented: fingerprint,
          pinned,
        });
        if (!check.ok) {
          throw new RelayKeyChangedError({
            address: target.address,
            presented: fingerprint,
            expected: check.expected,
            pinned: check.pinned,
          });
        }
        options.onRelayVerified(fingerprint, check.firstContact);
      },
      store: options.store,
      ...handlers,
    });
  return ReconnectingClient.start({
    connect,
    reconnect: true,
    onEvent: options.onEvent,
    onStatus: options.onStatus,
    onEnd: options.onEnd,
  });
}
