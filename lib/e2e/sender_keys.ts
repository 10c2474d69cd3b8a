/**
 * Group encryption with Sender Keys (after Signal's design, but every group
 * message is signed by the sender's long-term Ed25519 identity key).
 *
 * Each member owns one {@linkcode OutboundSenderKey} per room and hands a copy
 * of its {@linkcode SenderKeyState} to every other member over a pairwise
 * channel. Receivers build an {@linkcode InboundSenderKey} from that state.
 *
 * Chain (one symmetric ratchet step per message, lib/e2e/chain.ts):
 *
 * ```text
 * messageKey_i   = HMAC-SHA256(chainKey_i, 0x01)
 * chainKey_{i+1} = HMAC-SHA256(chainKey_i, 0x02)
 * key(32) || nonce(12) = HKDF-SHA256(ikm = messageKey_i, salt = empty,
 *                                    info = "securechat/2 message key", L = 44)
 * ```
 *
 * Message bytes (big-endian):
 *
 * ```text
 * u8 version (2) | u32 epoch | u32 iteration | u32 ciphertext length
 * | ciphertext (ChaCha20-Poly1305, 16-byte tag included) | 64-byte Ed25519 signature
 * AAD       = context || version..iteration (9 bytes)
 * signed    = "securechat/2 group message\0" || u16 len(context) || context
 *             || sender identity public key || every byte before the signature
 * ```
 *
 * @module
 */

import { randomBytes } from "@noble/ciphers/utils.js";
import { concat, constantTimeEqual, utf8 } from "../core/bytes.ts";
import { cryptoBackend } from "../crypto/crypto_backend.ts";
import {
  ChainError,
  type ChainStepBudget,
  type ChainWalk,
  SymmetricChain,
  wipeMessageKey,
} from "./chain.ts";

/** Wire version of group messages produced by this module. */
export const GROUP_MESSAGE_VERSION = 2;

/**
 * The largest gap of missing messages a receiver bridges in one step.
 * Walking further would let a sender (or a bug) make receivers spin.
 */
export const MAX_SKIPPED_MESSAGES = 2000;

const HEADER_LENGTH = 9; // version u8, epoch u32, iteration u32
const PREFIX_LENGTH = HEADER_LENGTH + 4; // + ciphertext length u32
const TAG_LENGTH = 16;
const SIGNATURE_LENGTH = 64;
const KEY_LENGTH = 32;
const MIN_MESSAGE_LENGTH = PREFIX_LENGTH + TAG_LENGTH + SIGNATURE_LENGTH;
const MAX_U32 = 0xffff_ffff;
// The last iteration is never used so that "next iteration" always fits in a u32.
const LAST_ITERATION = MAX_U32 - 1;

const SIGNATURE_DOMAIN = utf8("securechat/2 group message\0");
const MESSAGE_KEY_INFO = utf8("securechat/2 message key");

function senderChain(chainKey: Uint8Array, iteration: number): SymmetricChain {
  return new SymmetricChain({
    chainKey,
    index: iteration,
    info: MESSAGE_KEY_INFO,
    maxSkip: MAX_SKIPPED_MESSAGES,
  });
}

/** The secret part of an Ed25519 identity needed to sign (see lib/identity/identity.ts). */
export interface SigningIdentity {
  /** 32-byte Ed25519 seed. */
  secretKey: Uint8Array;
  /** 32-byte Ed25519 public key. */
  publicKey: Uint8Array;
}

/**
 * What a sender distributes to the other members so they can read its
 * messages from `iteration` on (never before).
 */
export interface SenderKeyState {
  /** u32 generation of the sender key; a new one is created on every rekey. */
  epoch: number;
  /** u32 iteration the sender will use next. */
  iteration: number;
  /** 32-byte chain key for `iteration`. */
  chainKey: Uint8Array;
}

/** Why a group message was refused. */
export type GroupMessageFailure =
  | "malformed"
  | "forged"
  | "wrong-epoch"
  | "replayed"
  | "too-far-ahead"
  | "tampered"
  | "over-budget";

/**
 * Raised when a group message cannot be accepted. The message never
 * contains key material or plaintext.
 *
 * @example
 * ```ts
 * try {
 *   inbound.decrypt({ context, message });
 * } catch (error) {
 *   if (error instanceof GroupMessageError && error.reason === "replayed") {
 *     // drop silently
 *   }
 * }
 * ```
 */
export class GroupMessageError extends Error {
  /** Machine-readable cause. */
  readonly reason: GroupMessageFailure;

  /**
   * @example
   * ```ts
   * new GroupMessageError("forged", "signature does not match the sender");
   * ```
   */
  constructor(reason: GroupMessageFailure, message: string) {
    super(message);
    this.name = "GroupMessageError";
    this.reason = reason;
  }
}

/** The unauthenticated routing fields of a group message. */
export interface GroupMessageHeader {
  version: number;
  epoch: number;
  iteration: number;
}

/**
 * Derives the context bytes that bind group messages to a room, so a message
 * replayed into another room fails both the signature and the AEAD.
 *
 * @example
 * ```ts
 * const context = groupContext("rust-users");
 * ```
 */
export function groupContext(room: string): Uint8Array {
  const bytes = utf8(room);
  if (bytes.length > 0xffff) throw new RangeError("room name is longer than 65535 bytes");
  return bytes;
}

/**
 * Reads version, epoch and iteration without verifying anything, for routing
 * and diagnostics. Throws {@linkcode GroupMessageError} (`malformed`) if the
 * bytes cannot be a group message.
 *
 * @example
 * ```ts
 * const { epoch, iteration } = peekGroupMessageHeader(message);
 * ```
 */
export function peekGroupMessageHeader(bytes: Uint8Array): GroupMessageHeader {
  return parse(bytes).header;
}

/**
 * The sending half of a sender key: encrypts and signs this member's group
 * messages, ratcheting the chain forward once per message.
 *
 * @example
 * ```ts
 * const outbound = OutboundSenderKey.create({ identity, epoch: 1 });
 * const state = outbound.exportState(); // send to each member pairwise
 * const message = outbound.encrypt({ context: groupContext("room"), plaintext });
 * ```
 */
export class OutboundSenderKey {
  #identity: SigningIdentity;
  #epoch: number;
  #chain: SymmetricChain;

  private constructor(
    identity: SigningIdentity,
    epoch: number,
    iteration: number,
    chainKey: Uint8Array,
  ) {
    this.#identity = identity;
    this.#epoch = epoch;
    this.#chain = senderChain(chainKey, iteration);
    chainKey.fill(0);
  }

  /**
   * Creates a fresh sender key with a random chain key. Its first message
   * uses `iteration` (default 0): a new epoch continues the count where the
   * previous one stopped, so receivers can tell how many messages they missed
   * across a change of key (PROTOCOL.md, "Sender keys"). A count past the last
   * usable iteration starts again at 0.
   *
   * @example
   * ```ts
   * const outbound = OutboundSenderKey.create({ identity, epoch: 1 });
   * const next = OutboundSenderKey.create({ identity, epoch: 2, iteration: outbound.iteration });
   * ```
   */
  static create(
    options: { identity: SigningIdentity; epoch: number; iteration?: number },
  ): OutboundSenderKey {
    const { identity, epoch } = options;
    const iteration = (options.iteration ?? 0) > LAST_ITERATION ? 0 : options.iteration ?? 0;
    assertU32(epoch, "epoch");
    assertU32(iteration, "iteration");
    if (identity.secretKey.length !== KEY_LENGTH || identity.publicKey.length !== KEY_LENGTH) {
      throw new TypeError("identity keys must be 32 bytes each");
    }
    // A mismatched pair would produce messages nobody can verify; catch it here, once.
    if (
      !constantTimeEqual(cryptoBackend.ed25519PublicKey(identity.secretKey), identity.publicKey)
    ) {
      throw new TypeError("identity public key does not belong to its secret key");
    }
    return new OutboundSenderKey(identity, epoch, iteration, randomBytes(KEY_LENGTH));
  }

  /**
   * Takes back a sender key this member kept between connections (durable
   * rooms): it continues from `state` exactly as if it had never stopped.
   *
   * @example
   * ```ts
   * const outbound = OutboundSenderKey.restore({ identity, state: saved });
   * ```
   */
  static restore(options: { identity: SigningIdentity; state: SenderKeyState }): OutboundSenderKey {
    const { identity, state } = options;
    assertU32(state.epoch, "epoch");
    assertU32(state.iteration, "iteration");
    if (state.chainKey.length !== KEY_LENGTH) throw new TypeError("chain key must be 32 bytes");
    if (
      identity.publicKey.length !== KEY_LENGTH ||
      !constantTimeEqual(cryptoBackend.ed25519PublicKey(identity.secretKey), identity.publicKey)
    ) {
      throw new TypeError("identity public key does not belong to its secret key");
    }
    return new OutboundSenderKey(identity, state.epoch, state.iteration, state.chainKey.slice());
  }

  /** The epoch of this sender key. @example `outbound.epoch` */
  get epoch(): number {
    return this.#epoch;
  }

  /** The iteration the next message will use. @example `outbound.iteration` */
  get iteration(): number {
    return this.#chain.index;
  }

  /**
   * Returns a copy of the current state, which lets its holder read every
   * message from now on (but none sent before).
   *
   * @example
   * ```ts
   * const state = outbound.exportState();
   * ```
   */
  exportState(): SenderKeyState {
    return {
      epoch: this.#epoch,
      iteration: this.#chain.index,
      chainKey: this.#chain.exportChainKey(),
    };
  }

  /**
   * Encrypts and signs one group message and advances the chain, so the
   * message key cannot be derived again from this object.
   *
   * The result is a view into a buffer that also holds the (public) signing
   * input; it is safe to send or store as is.
   *
   * @example
   * ```ts
   * const message = outbound.encrypt({ context: groupContext("room"), plaintext });
   * ```
   */
  encrypt(options: { context: Uint8Array; plaintext: Uint8Array }): Uint8Array {
    const { context, plaintext } = options;
    if (context.length > 0xffff) throw new RangeError("context is longer than 65535 bytes");
    if (this.#chain.index > LAST_ITERATION) {
      throw new RangeError("sender key is exhausted; create a new epoch and redistribute it");
    }
    const ciphertextLength = plaintext.length + TAG_LENGTH;
    if (ciphertextLength > MAX_U32 - MIN_MESSAGE_LENGTH) {
      throw new RangeError("plaintext is too long for a group message");
    }

    // One buffer holds the signing input; the message is its tail, so neither
    // the ciphertext nor the message is copied.
    const signedPrefixLength = SIGNATURE_DOMAIN.length + 2 + context.length + KEY_LENGTH;
    const bodyLength = PREFIX_LENGTH + ciphertextLength;
    const buffer = new Uint8Array(signedPrefixLength + bodyLength + SIGNATURE_LENGTH);
    const view = new DataView(buffer.buffer);
    let at = 0;
    buffer.set(SIGNATURE_DOMAIN, at);
    at += SIGNATURE_DOMAIN.length;
    view.setUint16(at, context.length);
    at += 2;
    buffer.set(context, at);
    at += context.length;
    buffer.set(this.#identity.publicKey, at);
    at += KEY_LENGTH;

    const start = at;
    view.setUint8(at, GROUP_MESSAGE_VERSION);
    view.setUint32(at + 1, this.#epoch);
    view.setUint32(at + 5, this.#chain.index);
    view.setUint32(at + 9, ciphertextLength);
    const header = buffer.subarray(start, start + HEADER_LENGTH);

    const messageKey = this.#chain.next();

    const aad = concat(context, header);
    const ciphertextStart = start + PREFIX_LENGTH;
    try {
      cryptoBackend.seal(
        messageKey.key,
        messageKey.nonce,
        aad,
        plaintext,
        buffer.subarray(ciphertextStart, ciphertextStart + ciphertextLength),
      );
    } finally {
      wipeMessageKey(messageKey);
    }

    const signedEnd = ciphertextStart + ciphertextLength;
    const signature = cryptoBackend.ed25519Sign(
      this.#identity.secretKey,
      buffer.subarray(0, signedEnd),
    );
    buffer.set(signature, signedEnd);
    return buffer.subarray(start);
  }
}

/**
 * The receiving half of another member's sender key. Accepts that member's
 * messages in order, bridges gaps of up to {@linkcode MAX_SKIPPED_MESSAGES},
 * and refuses anything older than what it has already seen.
 *
 * @example
 * ```ts
 * const inbound = new InboundSenderKey({ senderPublicKey, state });
 * const { plaintext, skipped } = inbound.decrypt({ context, message });
 * if (skipped > 0) console.warn(`${skipped} messages were lost`);
 * ```
 */
export class InboundSenderKey {
  #senderPublicKey: Uint8Array;
  #epoch: number;
  #chain: SymmetricChain;

  /**
   * @example
   * ```ts
   * const inbound = new InboundSenderKey({ senderPublicKey, state });
   * ```
   */
  constructor(options: { senderPublicKey: Uint8Array; state: SenderKeyState }) {
    const { senderPublicKey, state } = options;
    if (senderPublicKey.length !== KEY_LENGTH) {
      throw new TypeError("sender public key must be 32 bytes");
    }
    assertU32(state.epoch, "epoch");
    assertU32(state.iteration, "iteration");
    if (state.chainKey.length !== KEY_LENGTH) throw new TypeError("chain key must be 32 bytes");
    this.#senderPublicKey = senderPublicKey.slice();
    this.#epoch = state.epoch;
    this.#chain = senderChain(state.chainKey, state.iteration);
  }

  /** The epoch this key accepts. @example `inbound.epoch` */
  get epoch(): number {
    return this.#epoch;
  }

  /** The lowest iteration still accepted. @example `inbound.iteration` */
  get iteration(): number {
    return this.#chain.index;
  }

  /**
   * Returns a copy of the current state (for persistence). It cannot decrypt
   * messages this key has already passed.
   *
   * @example
   * ```ts
   * const saved = inbound.exportState();
   * ```
   */
  exportState(): SenderKeyState {
    return {
      epoch: this.#epoch,
      iteration: this.#chain.index,
      chainKey: this.#chain.exportChainKey(),
    };
  }

  /**
   * Verifies, then decrypts one message: {@linkcode verifyGroupMessage}
   * followed by {@linkcode InboundSenderKey.decryptVerified}.
   *
   * @example
   * ```ts
   * const { plaintext, iteration, skipped } = inbound.decrypt({ context, message });
   * ```
   */
  decrypt(options: { context: Uint8Array; message: Uint8Array; budget?: ChainStepBudget }): {
    plaintext: Uint8Array;
    epoch: number;
    iteration: number;
    skipped: number;
  } {
    const verified = verifyGroupMessage({
      senderPublicKey: this.#senderPublicKey,
      context: options.context,
      message: options.message,
    });
    return this.decryptVerified({ verified, context: options.context, budget: options.budget });
  }

  /**
   * Decrypts a message whose signature {@linkcode verifyGroupMessage} checked
   * against this key's sender. Refusals before the walk (wrong epoch, a
   * passed iteration, too far ahead, over the budget of skipped steps) change
   * nothing. A message that passes them moves the chain past its iteration
   * even when its ciphertext then fails to open: it carries the sender's own
   * signature, so only the sender could have made it, and committing means a
   * replay of it costs one comparison instead of another walk (PROTOCOL.md,
   * "Receiving group messages").
   *
   * @example
   * ```ts
   * const verified = verifyGroupMessage({ senderPublicKey, context, message });
   * const { plaintext, skipped } = inbound.decryptVerified({ verified, context });
   * ```
   */
  decryptVerified(options: {
    verified: VerifiedGroupMessage;
    context: Uint8Array;
    budget?: ChainStepBudget;
  }): { plaintext: Uint8Array; epoch: number; iteration: number; skipped: number } {
    const { verified, context } = options;
    if (!VERIFIED.has(verified) || !constantTimeEqual(verified.sender, this.#senderPublicKey)) {
      throw new TypeError("decryptVerified takes a message verified for this key's sender");
    }
    if (!constantTimeEqual(verified.context, context)) {
      throw new TypeError("the message was verified for another room");
    }
    const { header, ciphertext } = verified;
    if (header.epoch !== this.#epoch) {
      throw new GroupMessageError(
        "wrong-epoch",
        `group message is for sender key epoch ${header.epoch}, but epoch ${this.#epoch} is held; ` +
          "wait for the sender's new key",
      );
    }
    let walk: ChainWalk;
    try {
      walk = this.#chain.walk(header.iteration, { budget: options.budget });
    } catch (error) {
      if (!(error instanceof ChainError)) throw error;
      if (error.reason === "replayed") {
        throw new GroupMessageError(
          "replayed",
          `group message iteration ${header.iteration} was already passed (next is ${error.next}); ` +
            "it is a replay, duplicate or late arrival",
        );
      }
      if (error.reason === "over-budget") {
        throw new GroupMessageError(
          "over-budget",
          `group message skips ${header.iteration - error.next} iterations, over this sender's ` +
            "budget of skipped steps; it is skipping faster than any honest client",
        );
      }
      throw new GroupMessageError(
        "too-far-ahead",
        `group message is ${
          header.iteration - error.next
        } iterations ahead (limit ${MAX_SKIPPED_MESSAGES}); ` +
          "ask the sender to redistribute its key",
      );
    }
    const skipped = walk.skipped;
    const key = walk.key.slice();
    const nonce = walk.nonce.slice();
    walk.commit();
    try {
      const plaintext = cryptoBackend.open(
        key,
        nonce,
        concat(context, verified.message.subarray(0, HEADER_LENGTH)),
        ciphertext,
      );
      return { plaintext, epoch: header.epoch, iteration: header.iteration, skipped };
    } catch {
      throw new GroupMessageError(
        "tampered",
        "group message failed authenticated decryption although its signature is valid; " +
          "the sender's client is faulty or holds a different chain",
      );
    } finally {
      key.fill(0);
      nonce.fill(0);
    }
  }
}

/**
 * A group message whose signature was checked by
 * {@linkcode verifyGroupMessage}; only that function makes them.
 */
export interface VerifiedGroupMessage {
  /** The routing fields. */
  readonly header: GroupMessageHeader;
  /** The AEAD ciphertext with its tag. */
  readonly ciphertext: Uint8Array;
  /** The whole message as received (a copy). */
  readonly message: Uint8Array;
  /** The identity key that signed it. */
  readonly sender: Uint8Array;
  /** The room context it was verified for. */
  readonly context: Uint8Array;
}

const VERIFIED = new WeakSet<VerifiedGroupMessage>();

/**
 * Parses a group message and verifies its signature with the sender's
 * identity key and the room context, without any sender key state. Throws
 * {@linkcode GroupMessageError} (`malformed` or `forged`). The result keeps
 * a copy of the message, so it can be held while the sender's key is on the
 * way.
 *
 * @example
 * ```ts
 * const { header } = verifyGroupMessage({ senderPublicKey, context: groupContext("ops"), message });
 * ```
 */
export function verifyGroupMessage(options: {
  senderPublicKey: Uint8Array;
  context: Uint8Array;
  message: Uint8Array;
}): VerifiedGroupMessage {
  const { senderPublicKey, context } = options;
  if (context.length > 0xffff) throw new RangeError("context is longer than 65535 bytes");
  const message = options.message.slice();
  const parsed = parse(message);
  const body = message.subarray(0, message.length - SIGNATURE_LENGTH);
  const signature = message.subarray(message.length - SIGNATURE_LENGTH);
  const signed = new Uint8Array(
    SIGNATURE_DOMAIN.length + 2 + context.length + KEY_LENGTH + body.length,
  );
  let at = 0;
  signed.set(SIGNATURE_DOMAIN, at);
  at += SIGNATURE_DOMAIN.length;
  signed[at] = context.length >>> 8;
  signed[at + 1] = context.length & 0xff;
  at += 2;
  signed.set(context, at);
  at += context.length;
  signed.set(senderPublicKey, at);
  at += KEY_LENGTH;
  signed.set(body, at);
  if (!cryptoBackend.ed25519Verify(senderPublicKey, signed, signature)) {
    throw new GroupMessageError(
      "forged",
      "group message signature does not match the sender or room; message dropped",
    );
  }
  const verified: VerifiedGroupMessage = {
    header: parsed.header,
    ciphertext: parsed.ciphertext,
    message,
    sender: senderPublicKey.slice(),
    context: context.slice(),
  };
  VERIFIED.add(verified);
  return verified;
}

function parse(bytes: Uint8Array): { header: GroupMessageHeader; ciphertext: Uint8Array } {
  if (bytes.length < MIN_MESSAGE_LENGTH) {
    throw new GroupMessageError("malformed", "group message is truncated");
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint8(0);
  if (version !== GROUP_MESSAGE_VERSION) {
    throw new GroupMessageError(
      "malformed",
      `group message version ${version} is not supported (expected ${GROUP_MESSAGE_VERSION}); ` +
        "the sender may run a newer securechat",
    );
  }
  const epoch = view.getUint32(1);
  const iteration = view.getUint32(5);
  const ciphertextLength = view.getUint32(9);
  if (iteration > LAST_ITERATION) {
    throw new GroupMessageError("malformed", "group message iteration is out of range");
  }
  if (ciphertextLength !== bytes.length - PREFIX_LENGTH - SIGNATURE_LENGTH) {
    throw new GroupMessageError("malformed", "group message length field does not match its size");
  }
  return {
    header: { version, epoch, iteration },
    ciphertext: bytes.subarray(PREFIX_LENGTH, PREFIX_LENGTH + ciphertextLength),
  };
}

function assertU32(value: number, name: string): void {
  if (!Number.isInteger(value) || value < 0 || value > MAX_U32) {
    throw new RangeError(`${name} must be an integer from 0 to ${MAX_U32}`);
  }
}
