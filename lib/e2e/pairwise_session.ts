/**
 * Pairwise sessions between two online members (protocol 2, PROTOCOL.md
 * "Pairwise sessions"): one `Noise_KKpsk2_25519_ChaChaPoly_SHA256`
 * handshake between the two presence keys, its psk the secret of an X-Wing
 * encapsulation (ML-KEM-768 + X25519) to a key pair the initiator makes for
 * this handshake alone, then one symmetric ratchet per direction
 * (lib/e2e/chain.ts) with explicit counters.
 *
 * ```text
 * hello  = 0x01 || e (32) || AEAD(X-Wing public key (1216))      1265 bytes
 * accept = 0x02 || X-Wing ciphertext (1120) || e (32) || AEAD()   1169 bytes
 * data   = 0x03 || u32 counter || ChaCha20-Poly1305(content)      ≥ 21 bytes
 * ```
 *
 * What it gives: mutual authentication of the presence keys (KK), liveness
 * (the peer answered with fresh keys), forward secrecy (ephemerals and the
 * KEM secret deleted after the handshake, one message key per message),
 * replay/reorder/duplicate refusal for data, and post-quantum secrecy of
 * everything after the handshake (hybrid psk).
 *
 * @example
 * ```ts
 * const { session: alice, hello } = PairwiseSession.initiate(aliceOptions);
 * const { session: bob, accept } = PairwiseSession.accept({ ...bobOptions, hello });
 * alice.readAccept(accept);
 * const data = alice.encrypt(utf8("hi"));
 * bob.decrypt(data).plaintext; // "hi"
 * ```
 *
 * @module
 */

import { concat, utf8 } from "../core/bytes.ts";
import { cryptoBackend } from "../crypto/crypto_backend.ts";
import { xWing } from "../crypto/kem.ts";
import { HandshakeState } from "../crypto/noise.ts";
import { ChainError, type ChainStepBudget, SymmetricChain, wipeMessageKey } from "./chain.ts";

/** The Noise protocol of the pairwise handshake. */
export const PAIRWISE_PROTOCOL = "Noise_KKpsk2_25519_ChaChaPoly_SHA256";

/** The largest gap of missing data messages a receiver bridges. */
export const MAX_PAIRWISE_SKIP = 2000;

const KIND_HELLO = 1;
const KIND_ACCEPT = 2;
const KIND_DATA = 3;
const KEY_LENGTH = 32;
const TAG_LENGTH = 16;
const HELLO_LENGTH = 1 + 32 + xWing.PUBLIC_KEY_LENGTH + TAG_LENGTH;
const ACCEPT_LENGTH = 1 + xWing.CIPHERTEXT_LENGTH + 32 + TAG_LENGTH;
const DATA_HEADER_LENGTH = 1 + 4;
const MIN_DATA_LENGTH = DATA_HEADER_LENGTH + TAG_LENGTH;
const PROLOGUE_DOMAIN = utf8("securechat/2 pairwise\0");
const MESSAGE_KEY_INFO = utf8("securechat/2 pairwise message key");

/** The three kinds of pairwise message. */
export type PairwiseMessageKind = "hello" | "accept" | "data";

/** Why a pairwise message or call was refused. */
export type PairwiseFailure =
  | "malformed"
  | "not-established"
  | "replayed"
  | "too-far-ahead"
  | "tampered"
  | "over-budget"
  | "handshake-failed";

/**
 * Raised when a pairwise message cannot be used. Its message never holds
 * key material or plaintext.
 *
 * @example
 * ```ts
 * try {
 *   session.decrypt(message);
 * } catch (error) {
 *   if (error instanceof PairwiseError && error.reason === "replayed") warn("replayed direct message");
 * }
 * ```
 */
export class PairwiseError extends Error {
  /** Machine-readable cause. */
  readonly reason: PairwiseFailure;

  /** @example `new PairwiseError("malformed", "pairwise message is truncated")` */
  constructor(reason: PairwiseFailure, message: string) {
    super(message);
    this.name = "PairwiseError";
    this.reason = reason;
  }
}

/**
 * The kind of a pairwise message, from its first byte and length; throws
 * {@linkcode PairwiseError} (`malformed`) for anything that cannot be one.
 *
 * @example
 * ```ts
 * if (pairwiseMessageKind(body) === "hello") answerHello(body);
 * ```
 */
export function pairwiseMessageKind(message: Uint8Array): PairwiseMessageKind {
  if (!(message instanceof Uint8Array) || message.length === 0) {
    throw new PairwiseError("malformed", "pairwise message is empty");
  }
  switch (message[0]) {
    case KIND_HELLO:
      if (message.length !== HELLO_LENGTH) {
        throw new PairwiseError("malformed", `a pairwise hello must be ${HELLO_LENGTH} bytes`);
      }
      return "hello";
    case KIND_ACCEPT:
      if (message.length !== ACCEPT_LENGTH) {
        throw new PairwiseError("malformed", `a pairwise accept must be ${ACCEPT_LENGTH} bytes`);
      }
      return "accept";
    case KIND_DATA:
      if (message.length < MIN_DATA_LENGTH) {
        throw new PairwiseError("malformed", "a pairwise data message is truncated");
      }
      return "data";
    default:
      throw new PairwiseError("malformed", `unknown pairwise message kind ${message[0]}`);
  }
}

/**
 * Whether this side starts the handshake: the bytewise smaller presence key
 * initiates, so a relay can make neither both wait nor both start.
 *
 * @example
 * ```ts
 * if (isPairwiseInitiator(myPresence.publicKey, peerPresence)) send(PairwiseSession.initiate(options).hello);
 * ```
 */
export function isPairwiseInitiator(
  localPresence: Uint8Array,
  remotePresence: Uint8Array,
): boolean {
  if (localPresence.length !== KEY_LENGTH || remotePresence.length !== KEY_LENGTH) {
    throw new PairwiseError("malformed", "presence keys must be 32 bytes");
  }
  for (let i = 0; i < KEY_LENGTH; i++) {
    if (localPresence[i] !== remotePresence[i]) return localPresence[i] < remotePresence[i];
  }
  throw new PairwiseError("handshake-failed", "the peer announced this member's own presence key");
}

/** What both sides of a session know in advance. */
export interface PairwiseSessionOptions {
  /** The room (its UTF-8 name, 1–255 bytes, goes into the prologue). */
  room: string;
  /** This member's Ed25519 identity public key. */
  localIdentityPublicKey: Uint8Array;
  /** The peer's Ed25519 identity public key, from its verified announcement. */
  remoteIdentityPublicKey: Uint8Array;
  /** This member's X25519 presence key pair for this connection. */
  localPresence: { publicKey: Uint8Array; secretKey: Uint8Array };
  /** The peer's X25519 presence key, from its verified announcement. */
  remotePresencePublicKey: Uint8Array;
  /** The step budget shared across this peer's chains (see lib/e2e/chain.ts). */
  budget?: ChainStepBudget;
}

function prologue(options: PairwiseSessionOptions, initiator: boolean): Uint8Array {
  const room = utf8(options.room);
  if (room.length === 0 || room.length > 255) {
    throw new RangeError("the room name must be 1 to 255 bytes of UTF-8");
  }
  for (const key of [options.localIdentityPublicKey, options.remoteIdentityPublicKey]) {
    if (!(key instanceof Uint8Array) || key.length !== KEY_LENGTH) {
      throw new TypeError("identity public keys must be 32 bytes");
    }
  }
  const [first, second] = initiator
    ? [options.localIdentityPublicKey, options.remoteIdentityPublicKey]
    : [options.remoteIdentityPublicKey, options.localIdentityPublicKey];
  return concat(PROLOGUE_DOMAIN, Uint8Array.of(room.length), room, first, second);
}

function handshake(options: PairwiseSessionOptions, initiator: boolean): HandshakeState {
  if (
    isPairwiseInitiator(options.localPresence.publicKey, options.remotePresencePublicKey) !==
      initiator
  ) {
    throw new PairwiseError(
      "handshake-failed",
      initiator
        ? "this member's presence key is the larger one: it waits for the peer's hello"
        : "this member's presence key is the smaller one: it sends the hello",
    );
  }
  return new HandshakeState({
    protocolName: PAIRWISE_PROTOCOL,
    initiator,
    prologue: prologue(options, initiator),
    staticKeyPair: options.localPresence,
    remoteStaticPublicKey: options.remotePresencePublicKey,
    deferPsks: true,
  });
}

/**
 * One member's end of a pairwise session. See the module notes for the
 * bytes; PROTOCOL.md "Pairwise sessions" for the rules around it.
 *
 * @example
 * ```ts
 * const { session, hello } = PairwiseSession.initiate(options);
 * send(hello);
 * session.readAccept(await receiveAccept());
 * send(session.encrypt(encodePairwiseContent(senderKey)));
 * ```
 */
export class PairwiseSession {
  #initiator: boolean;
  #budget: ChainStepBudget | undefined;
  #handshake: HandshakeState | undefined;
  #kemSecretKey: Uint8Array | undefined;
  #send: SymmetricChain | undefined;
  #receive: SymmetricChain | undefined;
  #acceptRead = false;
  #confirmed = false;

  private constructor(initiator: boolean, budget: ChainStepBudget | undefined) {
    this.#initiator = initiator;
    this.#budget = budget;
  }

  /**
   * Starts a session as the initiator (the smaller presence key): makes a
   * fresh X-Wing key pair and returns the `hello` to send.
   *
   * @example
   * ```ts
   * const { session, hello } = PairwiseSession.initiate(options);
   * ```
   */
  static initiate(
    options: PairwiseSessionOptions,
  ): { session: PairwiseSession; hello: Uint8Array } {
    const session = new PairwiseSession(true, options.budget);
    const state = handshake(options, true);
    const kem = xWing.keygen();
    try {
      const message = state.writeMessage(kem.publicKey);
      session.#handshake = state;
      session.#kemSecretKey = kem.secretKey;
      return { session, hello: concat(Uint8Array.of(KIND_HELLO), message) };
    } catch (error) {
      kem.secretKey.fill(0);
      state.wipe();
      throw error;
    }
  }

  /**
   * Answers a `hello` as the responder: encapsulates to the initiator's
   * X-Wing key, completes the handshake and returns the `accept` to send.
   * The session is established (it may encrypt) but not confirmed until the
   * initiator's first data message opens. Throws {@linkcode PairwiseError}
   * (`malformed`, `handshake-failed`).
   *
   * @example
   * ```ts
   * const { session, accept } = PairwiseSession.accept({ ...options, hello });
   * ```
   */
  static accept(
    options: PairwiseSessionOptions & { hello: Uint8Array },
  ): { session: PairwiseSession; accept: Uint8Array } {
    if (pairwiseMessageKind(options.hello) !== "hello") {
      throw new PairwiseError("malformed", "expected a pairwise hello");
    }
    const session = new PairwiseSession(false, options.budget);
    const state = handshake(options, false);
    let sharedSecret: Uint8Array | undefined;
    try {
      let cipherText: Uint8Array;
      try {
        const kemPublicKey = state.readMessage(options.hello.subarray(1));
        ({ cipherText, sharedSecret } = xWing.encapsulate(kemPublicKey));
      } catch {
        throw new PairwiseError(
          "handshake-failed",
          "the pairwise hello does not verify for this room, these members and their presence keys",
        );
      }
      state.supplyPsk(sharedSecret);
      const message = state.writeMessage();
      session.#establish(state);
      return { session, accept: concat(Uint8Array.of(KIND_ACCEPT), cipherText, message) };
    } finally {
      sharedSecret?.fill(0);
      state.wipe();
    }
  }

  /**
   * Reads the responder's `accept` (initiator only, once): decapsulates the
   * psk, finishes the handshake, deletes the X-Wing secret key and the
   * handshake's secrets. The session is then established and confirmed.
   * A failed accept ends the session (start a new one). Throws
   * {@linkcode PairwiseError} (`malformed`, `replayed` for a second accept,
   * `handshake-failed`).
   *
   * @example
   * ```ts
   * session.readAccept(accept);
   * ```
   */
  readAccept(accept: Uint8Array): void {
    if (!this.#initiator) {
      throw new PairwiseError("handshake-failed", "only the initiator reads an accept");
    }
    if (pairwiseMessageKind(accept) !== "accept") {
      throw new PairwiseError("malformed", "expected a pairwise accept");
    }
    if (this.#acceptRead) {
      throw new PairwiseError("replayed", "this session already read its accept; ignored");
    }
    const state = this.#handshake;
    const kemSecretKey = this.#kemSecretKey;
    if (state === undefined || kemSecretKey === undefined) {
      throw new PairwiseError("handshake-failed", "this session's handshake already failed");
    }
    this.#acceptRead = true;
    this.#handshake = undefined;
    this.#kemSecretKey = undefined;
    const cipherText = accept.subarray(1, 1 + xWing.CIPHERTEXT_LENGTH);
    let psk: Uint8Array | undefined;
    try {
      psk = xWing.decapsulate(cipherText, kemSecretKey);
      state.supplyPsk(psk);
      state.readMessage(accept.subarray(1 + xWing.CIPHERTEXT_LENGTH));
      this.#establish(state);
      this.#confirmed = true;
    } catch {
      throw new PairwiseError(
        "handshake-failed",
        "the pairwise accept does not verify: tampered, or not the answer to this hello",
      );
    } finally {
      psk?.fill(0);
      kemSecretKey.fill(0);
      state.wipe();
    }
  }

  /** Whether this side may encrypt. @example `session.established` */
  get established(): boolean {
    return this.#send !== undefined;
  }

  /**
   * Whether the peer has proved it holds its keys now: for the initiator a
   * verified accept, for the responder the first data message that opened.
   *
   * @example
   * ```ts
   * if (session.confirmed) markPresent(peer);
   * ```
   */
  get confirmed(): boolean {
    return this.#confirmed;
  }

  /**
   * Encrypts one data message under the next sending counter and deletes
   * its message key. Throws {@linkcode PairwiseError} (`not-established`).
   *
   * @example
   * ```ts
   * const message = session.encrypt(content);
   * ```
   */
  encrypt(plaintext: Uint8Array): Uint8Array {
    const chain = this.#send;
    if (chain === undefined) {
      throw new PairwiseError("not-established", "the pairwise session is not established yet");
    }
    const counter = chain.index;
    const key = chain.next();
    const out = new Uint8Array(DATA_HEADER_LENGTH + plaintext.length + TAG_LENGTH);
    out[0] = KIND_DATA;
    new DataView(out.buffer).setUint32(1, counter);
    try {
      cryptoBackend.seal(
        key.key,
        key.nonce,
        out.subarray(0, DATA_HEADER_LENGTH),
        plaintext,
        out.subarray(DATA_HEADER_LENGTH),
      );
    } finally {
      wipeMessageKey(key);
    }
    return out;
  }

  /**
   * Opens one data message: refuses a counter already passed (`replayed`),
   * more than {@linkcode MAX_PAIRWISE_SKIP} ahead (`too-far-ahead`), a gap
   * the step budget will not pay for (`over-budget`), or a failed AEAD
   * (`tampered`, the session unchanged). `skipped` counts the messages that
   * never arrived. Confirms a responder's session.
   *
   * @example
   * ```ts
   * const { plaintext, skipped } = session.decrypt(message);
   * if (skipped > 0) warn(`${skipped} direct message(s) never arrived`);
   * ```
   */
  decrypt(message: Uint8Array): { plaintext: Uint8Array; skipped: number } {
    if (pairwiseMessageKind(message) !== "data") {
      throw new PairwiseError("malformed", "expected a pairwise data message");
    }
    const chain = this.#receive;
    if (chain === undefined) {
      throw new PairwiseError(
        "not-established",
        "a pairwise data message arrived before the session was established",
      );
    }
    const header = message.subarray(0, DATA_HEADER_LENGTH);
    const counter = new DataView(message.buffer, message.byteOffset).getUint32(1);
    let walk;
    try {
      walk = chain.walk(counter, { budget: this.#budget });
    } catch (error) {
      if (!(error instanceof ChainError)) throw error;
      throw new PairwiseError(
        error.reason === "exhausted" ? "too-far-ahead" : error.reason,
        `direct message ${counter}: ${error.message}`,
      );
    }
    let plaintext: Uint8Array;
    try {
      plaintext = cryptoBackend.open(
        walk.key,
        walk.nonce,
        header,
        message.subarray(DATA_HEADER_LENGTH),
      );
    } catch {
      walk.discard();
      throw new PairwiseError(
        "tampered",
        `direct message ${counter} failed authenticated decryption; dropped, session unchanged`,
      );
    }
    walk.commit();
    this.#confirmed = true;
    return { plaintext, skipped: walk.skipped };
  }

  /**
   * Wipes every key the session holds; it refuses everything afterwards.
   *
   * @example
   * ```ts
   * session.close();
   * ```
   */
  close(): void {
    this.#handshake?.wipe();
    this.#kemSecretKey?.fill(0);
    this.#send?.wipe();
    this.#receive?.wipe();
    this.#handshake = undefined;
    this.#kemSecretKey = undefined;
    this.#send = undefined;
    this.#receive = undefined;
  }

  #establish(state: HandshakeState): void {
    const { initiatorToResponder, responderToInitiator } = state.splitKeys();
    const chain = (chainKey: Uint8Array) =>
      new SymmetricChain({ chainKey, info: MESSAGE_KEY_INFO, maxSkip: MAX_PAIRWISE_SKIP });
    const [send, receive] = this.#initiator
      ? [initiatorToResponder, responderToInitiator]
      : [responderToInitiator, initiatorToResponder];
    this.#send = chain(send);
    this.#receive = chain(receive);
    initiatorToResponder.fill(0);
    responderToInitiator.fill(0);
  }
}
