/**
 * Noise HandshakeState (spec section 5.3): a generic engine that runs any
 * pattern from {@linkcode parsePattern} token by token.
 *
 * @module
 */

import { CipherState } from "./cipher_state.ts";
import { MAX_MESSAGE_LENGTH, NoiseError, TAG_LENGTH } from "./error.ts";
import {
  type HandshakePattern,
  type MessagePattern,
  parsePattern,
  pskCount,
  type Token,
} from "./patterns.ts";
import {
  assertKeyPair,
  type CipherFunction,
  cipherFunction,
  type DhFunction,
  dhFunction,
  hashFunction,
  type KeyPair,
} from "./primitives.ts";
import { SymmetricState } from "./symmetric_state.ts";
import { concat } from "../../core/bytes.ts";

const EMPTY = new Uint8Array(0);

/** Options for {@linkcode HandshakeState}. */
export interface HandshakeStateOptions {
  /** e.g. `Noise_XX_25519_ChaChaPoly_SHA256` or `Noise_NNpsk0+psk2_448_AESGCM_BLAKE2b`. */
  protocolName: string;
  /** True for the party that sends the first message. */
  initiator: boolean;
  /** Context both sides must agree on; it is hashed, not sent. Defaults to empty. */
  prologue?: Uint8Array;
  /** This side's static key pair, when the pattern uses one. */
  staticKeyPair?: KeyPair;
  /** A fixed ephemeral key pair. For test vectors only: reusing one breaks security. */
  ephemeralKeyPair?: KeyPair;
  /** The peer's static key known in advance (pre-message `s`, as in NK, KK, IK, K, X). */
  remoteStaticPublicKey?: Uint8Array;
  /** The peer's ephemeral key known in advance (pre-message `e`; no named pattern uses it). */
  remoteEphemeralPublicKey?: Uint8Array;
  /** 32-byte pre-shared keys, consumed in the order the `psk` tokens occur. */
  psks?: Uint8Array[];
  /**
   * The psks are not known yet: each is passed to
   * {@linkcode HandshakeState.supplyPsk} before its token is processed (for
   * a psk that comes out of the handshake itself, like a KEM secret).
   */
  deferPsks?: boolean;
}

/** The transport CipherStates of one side after a completed handshake. */
export interface TransportCipherStates {
  /** Encrypts what this side sends. */
  send: CipherState;
  /** Decrypts what this side receives. */
  receive: CipherState;
}

function parseProtocolName(name: string) {
  const parts = name.split("_");
  if (parts.length !== 5 || parts[0] !== "Noise") {
    throw new NoiseError(
      `"${name}" is not a Noise protocol name like Noise_XX_25519_ChaChaPoly_SHA256`,
    );
  }
  return {
    pattern: parsePattern(parts[1]),
    dh: dhFunction(parts[2]),
    cipher: cipherFunction(parts[3]),
    hash: hashFunction(parts[4]),
  };
}

function sends(pattern: HandshakePattern, initiator: boolean, token: "e" | "s"): boolean {
  const preMessage = initiator ? pattern.initiatorPreMessage : pattern.responderPreMessage;
  return preMessage.includes(token) ||
    pattern.messages.some((m) => m.fromInitiator === initiator && m.tokens.includes(token));
}

/**
 * One side of a Noise handshake. Call {@linkcode writeMessage} and
 * {@linkcode readMessage} in the pattern's order until
 * {@linkcode isComplete}, then {@linkcode split} once for transport keys.
 * If a received message fails, the handshake is dead: start a new one.
 *
 * @example
 * ```ts
 * const alice = new HandshakeState({
 *   protocolName: "Noise_XX_25519_ChaChaPoly_SHA256",
 *   initiator: true,
 *   staticKeyPair: generateKeyPair("25519"),
 * });
 * const bob = new HandshakeState({
 *   protocolName: "Noise_XX_25519_ChaChaPoly_SHA256",
 *   initiator: false,
 *   staticKeyPair: generateKeyPair("25519"),
 * });
 * bob.readMessage(alice.writeMessage());
 * alice.readMessage(bob.writeMessage());
 * bob.readMessage(alice.writeMessage());
 * const { send } = alice.split();
 * ```
 */
export class HandshakeState {
  #protocolName: string;
  #pattern: HandshakePattern;
  #dh: DhFunction;
  #cipher: CipherFunction;
  #symmetric: SymmetricState;
  #initiator: boolean;
  #s: KeyPair | undefined;
  #e: KeyPair | undefined;
  #rs: Uint8Array | undefined;
  #re: Uint8Array | undefined;
  #psks: Uint8Array[];
  #psksNeeded: number;
  #nextPsk = 0;
  #messageIndex = 0;
  #failed = false;
  #splitDone = false;

  /**
   * Initialize(): checks the keys against the pattern, then hashes the
   * protocol name, prologue and pre-message keys.
   *
   * @example
   * ```ts
   * const handshake = new HandshakeState({
   *   protocolName: "Noise_IK_25519_ChaChaPoly_BLAKE2s",
   *   initiator: true,
   *   staticKeyPair,
   *   remoteStaticPublicKey: serverPublicKey,
   * });
   * ```
   */
  constructor(options: HandshakeStateOptions) {
    const { pattern, dh, cipher, hash } = parseProtocolName(options.protocolName);
    this.#protocolName = options.protocolName;
    this.#pattern = pattern;
    this.#dh = dh;
    this.#cipher = cipher;
    this.#initiator = options.initiator;
    this.#checkKeys(options);
    this.#s = options.staticKeyPair && copyPair(options.staticKeyPair);
    this.#e = options.ephemeralKeyPair && copyPair(options.ephemeralKeyPair);
    this.#rs = options.remoteStaticPublicKey?.slice();
    this.#re = options.remoteEphemeralPublicKey?.slice();
    this.#psks = (options.psks ?? []).map((psk) => psk.slice());
    this.#psksNeeded = pskCount(pattern);

    this.#symmetric = new SymmetricState({ protocolName: options.protocolName, cipher, hash });
    this.#symmetric.mixHash(options.prologue ?? EMPTY);
    this.#mixPreMessage(pattern.initiatorPreMessage, this.#initiator);
    this.#mixPreMessage(pattern.responderPreMessage, !this.#initiator);
  }

  #checkKeys(options: HandshakeStateOptions): void {
    const pattern = this.#pattern;
    const name = pattern.name;
    const local = this.#initiator;
    const ownPre = local ? pattern.initiatorPreMessage : pattern.responderPreMessage;
    const remotePre = local ? pattern.responderPreMessage : pattern.initiatorPreMessage;
    const requireIf = (needed: boolean, value: unknown, what: string, hint = "") => {
      if (needed && value === undefined) {
        throw new NoiseError(`pattern ${name} needs ${what} on this side; pass it in the options`);
      }
      if (!needed && value !== undefined) {
        throw new NoiseError(
          `pattern ${name} does not use ${what} on this side; remove it from the options${hint}`,
        );
      }
    };
    requireIf(sends(pattern, local, "s"), options.staticKeyPair, "staticKeyPair");
    // A fresh ephemeral is generated when none is given, unless the peer already knows it.
    if (options.ephemeralKeyPair !== undefined || ownPre.includes("e")) {
      requireIf(sends(pattern, local, "e"), options.ephemeralKeyPair, "ephemeralKeyPair");
    }
    requireIf(
      remotePre.includes("s"),
      options.remoteStaticPublicKey,
      "remoteStaticPublicKey",
      " and compare handshake.remoteStaticPublicKey after the handshake instead",
    );
    requireIf(
      remotePre.includes("e"),
      options.remoteEphemeralPublicKey,
      "remoteEphemeralPublicKey",
    );

    const dh = this.#dh;
    if (options.staticKeyPair) assertKeyPair(dh, options.staticKeyPair, "staticKeyPair");
    if (options.ephemeralKeyPair) assertKeyPair(dh, options.ephemeralKeyPair, "ephemeralKeyPair");
    for (
      const [key, label] of [
        [options.remoteStaticPublicKey, "remoteStaticPublicKey"],
        [options.remoteEphemeralPublicKey, "remoteEphemeralPublicKey"],
      ] as const
    ) {
      if (key !== undefined && key.length !== dh.dhLen) {
        throw new NoiseError(`${label} must be a ${dh.dhLen}-byte ${dh.name} public key`);
      }
    }
    const psks = options.psks ?? [];
    const needed = pskCount(pattern);
    if (options.deferPsks === true) {
      if (psks.length > 0) {
        throw new NoiseError("deferPsks: pass the psks to supplyPsk(), not here");
      }
      if (needed === 0) throw new NoiseError(`pattern ${name} has no psk to defer`);
    } else if (psks.length !== needed) {
      throw new NoiseError(`pattern ${name} needs ${needed} psks, got ${psks.length}`);
    }
    if (psks.some((psk) => psk.length !== 32)) {
      throw new NoiseError("every psk must be 32 bytes");
    }
  }

  #mixPreMessage(tokens: readonly Token[], ownKeys: boolean): void {
    for (const token of tokens) {
      const key = token === "s"
        ? (ownKeys ? this.#s?.publicKey : this.#rs)
        : (ownKeys ? this.#e?.publicKey : this.#re);
      if (key === undefined) throw new NoiseError(`pre-message key "${token}" is missing`);
      this.#symmetric.mixHash(key);
      if (token === "e" && this.#pattern.hasPsk) this.#symmetric.mixKey(key);
    }
  }

  /** The protocol name this handshake runs. @example `handshake.protocolName` */
  get protocolName(): string {
    return this.#protocolName;
  }

  /** Whether this side initiated. @example `handshake.isInitiator` */
  get isInitiator(): boolean {
    return this.#initiator;
  }

  /** Whether every handshake message has been written or read. @example `handshake.isComplete` */
  get isComplete(): boolean {
    return this.#messageIndex === this.#pattern.messages.length;
  }

  /**
   * Whether the next handshake step is this side's {@linkcode writeMessage}.
   *
   * @example
   * ```ts
   * if (handshake.isMyTurn) socket.write(handshake.writeMessage());
   * ```
   */
  get isMyTurn(): boolean {
    const next = this.#pattern.messages[this.#messageIndex];
    return next !== undefined && next.fromInitiator === this.#initiator;
  }

  /**
   * The handshake hash `h`: a transcript digest both sides share after the
   * handshake, usable for channel binding.
   *
   * @example
   * ```ts
   * const binding = handshake.handshakeHash;
   * ```
   */
  get handshakeHash(): Uint8Array {
    return this.#symmetric.handshakeHash;
  }

  /**
   * The peer's static public key, once known (pre-message or received).
   * It is authenticated only as far as the pattern authenticates it: check
   * it against who you expect.
   *
   * @example
   * ```ts
   * if (!constantTimeEqual(handshake.remoteStaticPublicKey!, expected)) throw new Error("wrong peer");
   * ```
   */
  get remoteStaticPublicKey(): Uint8Array | undefined {
    return this.#rs?.slice();
  }

  #nextMessage(writing: boolean): MessagePattern {
    if (this.#failed) throw new NoiseError("this handshake already failed; start a new one");
    if (this.isComplete) throw new NoiseError("the handshake is complete; call split()");
    const message = this.#pattern.messages[this.#messageIndex];
    if (message.fromInitiator === this.#initiator) {
      if (!writing) throw new NoiseError("it is this side's turn to write, not to read");
    } else if (writing) {
      throw new NoiseError("it is this side's turn to read, not to write");
    }
    return message;
  }

  // Predicts the message size so limits are checked before any state changes.
  #messageLength(message: MessagePattern, payloadLength: number): number {
    let keyed = this.#symmetric.hasKey();
    let length = 0;
    for (const token of message.tokens) {
      if (token === "e") {
        length += this.#dh.dhLen;
        if (this.#pattern.hasPsk) keyed = true;
      } else if (token === "s") {
        length += this.#dh.dhLen + (keyed ? TAG_LENGTH : 0);
      } else {
        keyed = true;
      }
    }
    return length + payloadLength + (keyed ? TAG_LENGTH : 0);
  }

  /**
   * WriteMessage(): processes this side's next tokens and appends the
   * (encrypted, once a key exists) payload. Returns the message bytes.
   *
   * @example
   * ```ts
   * const message = handshake.writeMessage(utf8("hello"));
   * ```
   */
  writeMessage(payload: Uint8Array = EMPTY): Uint8Array {
    const message = this.#nextMessage(true);
    if (this.#messageLength(message, payload.length) > MAX_MESSAGE_LENGTH) {
      throw new NoiseError(
        `handshake message would exceed ${MAX_MESSAGE_LENGTH} bytes; send a smaller payload`,
      );
    }
    const symmetric = this.#symmetric;
    const parts: Uint8Array[] = [];
    try {
      for (const token of message.tokens) {
        if (token === "e") {
          this.#e ??= this.#dh.generateKeyPair();
          parts.push(this.#e.publicKey);
          symmetric.mixHash(this.#e.publicKey);
          if (this.#pattern.hasPsk) symmetric.mixKey(this.#e.publicKey);
        } else if (token === "s") {
          parts.push(symmetric.encryptAndHash(this.#s!.publicKey));
        } else {
          this.#processKeyToken(token);
        }
      }
      parts.push(symmetric.encryptAndHash(payload));
    } catch (error) {
      this.#failed = true;
      throw asNoiseError(error);
    }
    this.#messageIndex++;
    return concat(...parts);
  }

  /**
   * ReadMessage(): processes the peer's next message and returns its
   * payload. Throws {@linkcode NoiseError} if it is malformed or fails to
   * authenticate (wrong keys, wrong prologue, tampering).
   *
   * @example
   * ```ts
   * const payload = handshake.readMessage(message);
   * ```
   */
  readMessage(message: Uint8Array): Uint8Array {
    const pattern = this.#nextMessage(false);
    if (message.length > MAX_MESSAGE_LENGTH) {
      throw new NoiseError(`handshake message exceeds ${MAX_MESSAGE_LENGTH} bytes`);
    }
    if (message.length < this.#messageLength(pattern, 0)) {
      throw new NoiseError("handshake message is too short for this pattern");
    }
    const symmetric = this.#symmetric;
    const dhLen = this.#dh.dhLen;
    let offset = 0;
    let payload: Uint8Array;
    try {
      for (const token of pattern.tokens) {
        if (token === "e") {
          this.#re = message.slice(offset, offset + dhLen);
          offset += dhLen;
          symmetric.mixHash(this.#re);
          if (this.#pattern.hasPsk) symmetric.mixKey(this.#re);
        } else if (token === "s") {
          const length = dhLen + (symmetric.hasKey() ? TAG_LENGTH : 0);
          this.#rs = symmetric.decryptAndHash(message.subarray(offset, offset + length)).slice();
          offset += length;
        } else {
          this.#processKeyToken(token);
        }
      }
      const keyed = symmetric.hasKey();
      payload = symmetric.decryptAndHash(message.subarray(offset));
      // Without a key the payload is a view of the caller's buffer; detach it.
      if (!keyed) payload = payload.slice();
    } catch (error) {
      this.#failed = true;
      throw asNoiseError(error);
    }
    this.#messageIndex++;
    return payload;
  }

  #processKeyToken(token: "ee" | "es" | "se" | "ss" | "psk"): void {
    const symmetric = this.#symmetric;
    if (token === "psk") {
      const psk = this.#psks[this.#nextPsk++];
      if (psk === undefined) throw new NoiseError("a psk is needed now; call supplyPsk() first");
      symmetric.mixKeyAndHash(psk);
      return;
    }
    // The first letter names the initiator's key, the second the responder's.
    const initiatorKey = token[0] === "e" ? "e" : "s";
    const responderKey = token[1] === "e" ? "e" : "s";
    const localKey = this.#initiator ? initiatorKey : responderKey;
    const remoteKey = this.#initiator ? responderKey : initiatorKey;
    const secret = (localKey === "e" ? this.#e : this.#s)?.secretKey;
    const remote = remoteKey === "e" ? this.#re : this.#rs;
    if (secret === undefined || remote === undefined) {
      throw new NoiseError(`token "${token}" needs a key this side does not have`);
    }
    const shared = this.#dh.dh(secret, remote);
    symmetric.mixKey(shared);
    shared.fill(0);
  }

  /**
   * Supplies the next psk of a handshake made with `deferPsks: true`; it
   * must arrive before the message that carries its `psk` token is written
   * or read.
   *
   * @example
   * ```ts
   * handshake.supplyPsk(kemSharedSecret);
   * const payload = handshake.readMessage(message2);
   * ```
   */
  supplyPsk(psk: Uint8Array): void {
    if (psk.length !== 32) throw new NoiseError("every psk must be 32 bytes");
    if (this.#psks.length >= this.#psksNeeded) {
      throw new NoiseError(`pattern ${this.#pattern.name} takes no more psks`);
    }
    this.#psks.push(psk.slice());
  }

  /**
   * Split(): returns this side's transport CipherStates. Callable once,
   * after the handshake completes; it also wipes the ephemeral secret. For
   * one-way patterns the unused direction throws on use.
   *
   * @example
   * ```ts
   * const { send, receive } = handshake.split();
   * ```
   */
  split(): TransportCipherStates {
    if (this.#failed) throw new NoiseError("this handshake already failed; start a new one");
    if (!this.isComplete) throw new NoiseError("split() called before the handshake completed");
    if (this.#splitDone) {
      throw new NoiseError("split() was already called; each handshake yields one pair of keys");
    }
    this.#splitDone = true;
    const [first, second] = this.#symmetric.split();
    this.#wipeSecrets();
    if (this.#pattern.oneWay) {
      const unused = CipherState.refusing(
        this.#cipher,
        "one-way patterns carry messages from initiator to responder only",
      );
      return this.#initiator ? { send: first, receive: unused } : { send: unused, receive: first };
    }
    return this.#initiator ? { send: first, receive: second } : { send: second, receive: first };
  }

  /**
   * Split() for interactive patterns, returning the two raw 32-byte cipher
   * keys instead of CipherStates, for protocols that seed their own ratchet
   * with them. Callable once, after the handshake completes; wipes this
   * side's secrets like {@linkcode split}. The caller wipes the keys.
   *
   * @example
   * ```ts
   * const { initiatorToResponder, responderToInitiator } = handshake.splitKeys();
   * ```
   */
  splitKeys(): { initiatorToResponder: Uint8Array; responderToInitiator: Uint8Array } {
    if (this.#failed) throw new NoiseError("this handshake already failed; start a new one");
    if (!this.isComplete) throw new NoiseError("split() called before the handshake completed");
    if (this.#splitDone) {
      throw new NoiseError("split() was already called; each handshake yields one pair of keys");
    }
    if (this.#pattern.oneWay) throw new NoiseError("splitKeys() is for interactive patterns");
    this.#splitDone = true;
    const [initiatorToResponder, responderToInitiator] = this.#symmetric.splitKeys();
    this.#wipeSecrets();
    return { initiatorToResponder, responderToInitiator };
  }

  /**
   * Wipes every secret this handshake holds (its copies of the static and
   * ephemeral secret keys, the psks, the chaining key) and ends it: for a
   * handshake abandoned or failed midway. {@linkcode split} does the same.
   *
   * @example
   * ```ts
   * handshake.wipe();
   * ```
   */
  wipe(): void {
    this.#failed = true;
    this.#wipeSecrets();
    this.#symmetric.wipe();
  }

  #wipeSecrets(): void {
    this.#e?.secretKey.fill(0);
    this.#s?.secretKey.fill(0);
    for (const psk of this.#psks) psk.fill(0);
  }
}

function copyPair(pair: KeyPair): KeyPair {
  return { secretKey: pair.secretKey.slice(), publicKey: pair.publicKey.slice() };
}

function asNoiseError(error: unknown): NoiseError {
  return error instanceof NoiseError ? error : new NoiseError("handshake processing failed");
}
