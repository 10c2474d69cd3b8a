/**
 * The sending side of a chat client: one group message at a time, from the
 * moment it is prepared to the relay's answer. In a durable room a message
 * first waits for its sender key to be handed to the members away (prekey
 * envelopes) and for the spent iteration to be kept; in an ephemeral one it
 * leaves in the turn it was sent.
 *
 * @module
 */

import { NetworkError, ProtocolError } from "../core/errors.ts";
import type { RoomEvent, RoomSession } from "../e2e/room.ts";
import { encodePrekeyBundle } from "../e2e/prekeys.ts";
import type { RelayRecord } from "../transport/records.ts";
import type { RoomKeeper } from "./room_keeper.ts";

/**
 * What became of one published message (PROTOCOL.md, "Sender keys" and the
 * relay's `ack`): how many members read it now, how many will when they come
 * back (durable rooms), and for how many the relay refused to keep it.
 */
export interface Delivery {
  /** Present members that held the key and got it live. */
  online: number;
  /** Members away, handed the key, for whom the relay stored it. */
  later: number;
  /** Members for whom the relay did not store it (a limit; its error says which). */
  refused: number;
  /** The relay's sequence for it (0 in an ephemeral room). */
  seq: number;
}

/** Who could read a message when it was encrypted (RoomSession.readers). */
type Readers = { online: number; later: number };

/** How the publisher reaches the relay and the user, through its client. */
export interface PublisherLink {
  send(record: RelayRecord): void;
  /** Sends a record with a fresh id; resolves with the relay's answer to that id. */
  request(make: (id: number) => RelayRecord): Promise<RelayRecord>;
  closed(): boolean;
  onEvent(event: RoomEvent): void;
}

/**
 * Publishes group messages for one client.
 *
 * @example
 * ```ts
 * const publisher = new Publisher({ session, keeper, link });
 * const delivery = await publisher.publish(["hello"]);
 * ```
 */
export class Publisher {
  #session: RoomSession;
  #keeper: RoomKeeper;
  #link: PublisherLink;
  /** Sends are prepared one after another (key handover, write-ahead of the sender key). */
  #sending: Promise<unknown> = Promise.resolve();

  /** @example `new Publisher({ session, keeper, link })` */
  constructor(options: { session: RoomSession; keeper: RoomKeeper; link: PublisherLink }) {
    this.#session = options.session;
    this.#keeper = options.keeper;
    this.#link = options.link;
  }

  /**
   * Resolves once every message being prepared has left (or failed).
   *
   * @example
   * ```ts
   * await publisher.idle();
   * ```
   */
  idle(): Promise<unknown> {
    return this.#sending;
  }

  /**
   * Sends one group message; resolves once the relay has answered.
   *
   * @example
   * ```ts
   * const delivery = await publisher.publish(["deploy done"]);
   * ```
   */
  publish(texts: string[]): Promise<Delivery> {
    if (!this.#session.durable) {
      // Nothing to hand over or keep first: the message leaves in this turn, in call order.
      try {
        return this.#delivery(this.#seal(texts), 0);
      } catch (error) {
        return Promise.reject(error);
      }
    }
    // One at a time up to the moment the message leaves (key handover, the spent iteration
    // kept); the relay's answers overlap.
    const prepared = this.#sending.then(() => this.#prepareDurable(texts));
    this.#sending = prepared.catch(() => {});
    return prepared.then(({ sent, unreachable }) => this.#delivery(sent, unreachable));
  }

  /** Encrypts `texts` and sends the publish; returns its answer and who could read it. */
  #seal(texts: string[]): { answer: Promise<RelayRecord>; readers: Readers } {
    const sealed = this.#session.encryptTexts(texts);
    for (const record of sealed.send) this.#link.send(record);
    this.#keeper.noteSent({ texts, time: Date.now(), nick: this.#session.nick, direct: false });
    const { message, readers } = sealed;
    return { answer: this.#link.request((id) => ({ type: "publish", id, message })), readers };
  }

  async #prepareDurable(
    texts: string[],
  ): Promise<{ sent: { answer: Promise<RelayRecord>; readers: Readers }; unreachable: number }> {
    const session = this.#session;
    for (const record of session.prepareToSend()) this.#link.send(record);
    let unreachable = 0;
    await Promise.all(
      session.keyHandoverNeeded().map(async (memberId) => {
        if (!(await this.#handOverKey(memberId))) unreachable++;
      }),
    );
    if (this.#link.closed()) throw new NetworkError("not connected to the relay");
    // The spent iteration is on disk before the message leaves: never encrypted twice.
    const sealed = session.encryptTexts(texts);
    await this.#keeper.save(session);
    for (const record of sealed.send) this.#link.send(record);
    this.#keeper.noteSent({ texts, time: Date.now(), nick: session.nick, direct: false });
    const { message, readers } = sealed;
    const answer = this.#link.request((id) => ({ type: "publish", id, message }));
    return { sent: { answer, readers }, unreachable };
  }

  async #delivery(
    sent: { answer: Promise<RelayRecord>; readers: Readers },
    unreachable: number,
  ): Promise<Delivery> {
    const ack = await sent.answer;
    if (ack.type !== "ack") {
      throw new ProtocolError("the relay answered a publish with another record");
    }
    return {
      online: Math.min(ack.online, sent.readers.online),
      later: Math.min(ack.stored, sent.readers.later),
      refused: ack.refused + unreachable,
      seq: ack.seq,
    };
  }

  /** Hands this member's current key to a member away; false when it could not be done. */
  async #handOverKey(memberId: number): Promise<boolean> {
    const answer = await this.#link.request((id) => ({ type: "getPrekeys", id, memberId }));
    if (answer.type !== "prekeys" || answer.signedPrekey.length === 0) return false;
    const bundle = encodePrekeyBundle({
      signedPrekey: answer.signedPrekey,
      oneTimePrekey: answer.oneTimePrekey.length > 0 ? answer.oneTimePrekey : undefined,
    });
    const sealed = this.#session.sealKeyFor(memberId, bundle);
    if ("warning" in sealed) {
      this.#link.onEvent({ type: "warning", code: "bad-envelope", text: sealed.warning });
      return false;
    }
    const stored = await this.#link.request((id) => ({
      type: "storeFor",
      id,
      to: memberId,
      envelope: sealed.envelope,
    }));
    if (stored.type !== "ack" || stored.refused > 0) {
      this.#session.keyHandoverFailed(memberId);
      return false;
    }
    return true;
  }
}
