/**
 * One-shot authenticated pairwise envelopes between two chat members who
 * already know each other's X25519 static public keys.
 *
 * An envelope is exactly one `Noise_K_25519_ChaChaPoly_SHA256` handshake
 * message (`-> s`, `<- s` known in advance; `-> e, es, ss`):
 *
 * ```
 * envelope = e (32 bytes) || ChaChaPoly(plaintext) || tag (16 bytes)
 * ```
 *
 * The caller's prologue (domain string, room and both identities) is hashed
 * into the handshake, so an envelope only opens in the context it was sealed
 * for. What K gives: confidentiality to the recipient, sender authentication
 * (via `ss`), and a fresh ephemeral per envelope. What it does not give:
 * replay protection (put a unique id in the plaintext and deduplicate),
 * forward secrecy against later theft of the recipient's static key, or
 * protection against forgery by someone holding the recipient's static key.
 *
 * @module
 */

import {
  HandshakeState,
  type KeyPair,
  MAX_MESSAGE_LENGTH,
  NoiseError,
  TAG_LENGTH,
} from "../crypto/noise.ts";

/** The Noise protocol every envelope uses. */
export const ENVELOPE_PROTOCOL = "Noise_K_25519_ChaChaPoly_SHA256";

/** Bytes an envelope adds to its plaintext: a 32-byte ephemeral key and a 16-byte tag. */
export const ENVELOPE_OVERHEAD = 32 + TAG_LENGTH;

/** Largest plaintext that fits one envelope (65535 - 48 bytes). */
export const MAX_ENVELOPE_PLAINTEXT = MAX_MESSAGE_LENGTH - ENVELOPE_OVERHEAD;

/**
 * Raised when an envelope cannot be sealed or opened. Opening failures all
 * share one message so the caller (and any attacker) learns nothing about
 * which check failed.
 *
 * @example
 * ```ts
 * try {
 *   openEnvelope(options);
 * } catch (error) {
 *   if (error instanceof EnvelopeError) dropMessage();
 * }
 * ```
 */
export class EnvelopeError extends Error {
  /**
   * @example
   * ```ts
   * throw new EnvelopeError("envelope could not be opened");
   * ```
   */
  constructor(message: string) {
    super(message);
    this.name = "EnvelopeError";
  }
}

/** Options for {@linkcode sealEnvelope}. */
export interface SealEnvelopeOptions {
  /** The sender's X25519 static key pair. */
  senderStaticKeyPair: KeyPair;
  /** The recipient's X25519 static public key. */
  recipientStaticPublicKey: Uint8Array;
  /** Context both sides build identically: domain string, room, both identities. */
  prologue: Uint8Array;
  /** At most {@linkcode MAX_ENVELOPE_PLAINTEXT} bytes. */
  plaintext: Uint8Array;
}

/** Options for {@linkcode openEnvelope}. */
export interface OpenEnvelopeOptions {
  /** The recipient's X25519 static key pair. */
  recipientStaticKeyPair: KeyPair;
  /** The static public key of the member the envelope claims to come from. */
  senderStaticPublicKey: Uint8Array;
  /** The same prologue the sender used. */
  prologue: Uint8Array;
  /** The envelope bytes from {@linkcode sealEnvelope}. */
  envelope: Uint8Array;
}

const OPEN_FAILED = "envelope could not be opened: it is damaged, not addressed to this key, " +
  "not from the claimed sender, or sealed for a different context; drop it";

/**
 * Encrypts and authenticates `plaintext` from the sender to the recipient.
 * Every call uses a fresh ephemeral key, so sealing the same plaintext twice
 * gives unrelated envelopes.
 *
 * @example
 * ```ts
 * const envelope = sealEnvelope({
 *   senderStaticKeyPair: alice,
 *   recipientStaticPublicKey: bob.publicKey,
 *   prologue: utf8("securechat/pairwise/v1|room|alice|bob"),
 *   plaintext: utf8("hi Bob"),
 * });
 * ```
 */
export function sealEnvelope(options: SealEnvelopeOptions): Uint8Array {
  if (options.plaintext.length > MAX_ENVELOPE_PLAINTEXT) {
    throw new EnvelopeError(
      `envelope plaintext is limited to ${MAX_ENVELOPE_PLAINTEXT} bytes; split the message`,
    );
  }
  try {
    const handshake = new HandshakeState({
      protocolName: ENVELOPE_PROTOCOL,
      initiator: true,
      prologue: options.prologue,
      staticKeyPair: options.senderStaticKeyPair,
      remoteStaticPublicKey: options.recipientStaticPublicKey,
    });
    return handshake.writeMessage(options.plaintext);
  } catch (error) {
    // Configuration errors (bad key lengths, mismatched key pair, invalid
    // recipient key) carry no secrets; keep their explanation.
    const reason = error instanceof NoiseError ? `: ${error.message}` : "";
    throw new EnvelopeError(`envelope could not be sealed${reason}`);
  }
}

/**
 * Authenticates and decrypts an envelope; returns the plaintext. Throws
 * {@linkcode EnvelopeError} on any failure.
 *
 * @example
 * ```ts
 * const plaintext = openEnvelope({
 *   recipientStaticKeyPair: bob,
 *   senderStaticPublicKey: alice.publicKey,
 *   prologue: utf8("securechat/pairwise/v1|room|alice|bob"),
 *   envelope,
 * });
 * ```
 */
export function openEnvelope(options: OpenEnvelopeOptions): Uint8Array {
  const { envelope } = options;
  if (envelope.length < ENVELOPE_OVERHEAD || envelope.length > MAX_MESSAGE_LENGTH) {
    throw new EnvelopeError(OPEN_FAILED);
  }
  let handshake: HandshakeState;
  try {
    handshake = new HandshakeState({
      protocolName: ENVELOPE_PROTOCOL,
      initiator: false,
      prologue: options.prologue,
      staticKeyPair: options.recipientStaticKeyPair,
      remoteStaticPublicKey: options.senderStaticPublicKey,
    });
  } catch (error) {
    const reason = error instanceof NoiseError ? error.message : "invalid keys";
    throw new EnvelopeError(`envelope could not be opened: ${reason}`);
  }
  try {
    return handshake.readMessage(envelope);
  } catch {
    throw new EnvelopeError(OPEN_FAILED);
  }
}
