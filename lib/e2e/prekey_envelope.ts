/**
 * The prekey envelope (protocol 2, PROTOCOL.md "Prekeys"): how a sender
 * hands a pairwise content (its sender key) to a roster member who is
 * offline, through the relay's store.
 *
 * ```text
 * u8   version = 1
 * u32  signed prekey id
 * u8   one-time flag (0 none, 1 present)
 * u32  one-time prekey id (0 when the flag is 0)
 * 1120 X-Wing ciphertext, to the one-time prekey if present, else to the signed prekey
 * u32  n = sealed length (16 ≤ n ≤ 131,088)
 * n    ChaCha20-Poly1305(content), key (32) || nonce (12) = HKDF-SHA256(ss, salt = empty, info = th, 44),
 *      AAD = th
 * 64   Ed25519 signature by the sender's identity
 *
 * th     = SHA-256("securechat/2 prekey envelope key\0" || string8 room || sender identity (32)
 *                  || recipient identity (32) || envelope[0..1130))
 * signed = "securechat/2 prekey envelope\0" || string8 room || recipient identity (32)
 *          || envelope[0..1134+n)
 * ```
 *
 * The recipient verifies the signature before it touches any prekey, deletes
 * a one-time prekey's secret after the first successful open (so a replay
 * finds none), and remembers the digest (SHA-256 of the whole envelope) of
 * every envelope opened under its signed prekey until that prekey is deleted.
 *
 * @module
 */

import { hkdf } from "@noble/hashes/hkdf.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { concat, toHex, utf8 } from "../core/bytes.ts";
import { cryptoBackend } from "../crypto/crypto_backend.ts";
import { KemError, xWing } from "../crypto/kem.ts";
import { type PrekeyBundle, PrekeyError } from "./prekeys.ts";
import type { SigningIdentity } from "./sender_keys.ts";

/** Version byte of prekey envelopes made here. */
export const PREKEY_ENVELOPE_VERSION = 1;
/** The largest content a prekey envelope carries. */
export const MAX_PREKEY_CONTENT = 131_072;

const TAG_LENGTH = 16;
const HEADER_LENGTH = 1 + 4 + 1 + 4; // version, signed id, flag, one-time id
const KEM_END = HEADER_LENGTH + xWing.CIPHERTEXT_LENGTH; // 1130
const SEALED_START = KEM_END + 4;
const SIGNATURE_LENGTH = 64;
const MIN_LENGTH = SEALED_START + TAG_LENGTH + SIGNATURE_LENGTH;
const SIGNATURE_DOMAIN = utf8("securechat/2 prekey envelope\0");
const KEY_DOMAIN = utf8("securechat/2 prekey envelope key\0");
const EMPTY = new Uint8Array(0);

/** The routing fields of an envelope, readable without any key. */
export interface PrekeyEnvelopeHeader {
  signedPrekeyId: number;
  /** Absent when the envelope was sealed to the signed prekey. */
  oneTimePrekeyId?: number;
}

/**
 * The recipient's prekey secrets, as the client store keeps them. All
 * synchronous; the store persists each change before returning.
 */
export interface PrekeySecretStore {
  /** The X-Wing secret key (32 bytes) of a signed prekey still kept, else undefined. */
  signedPrekeySecret(id: number): Uint8Array | undefined;
  /** The X-Wing secret key of a one-time prekey not yet used, else undefined. */
  oneTimePrekeySecret(id: number): Uint8Array | undefined;
  /** Deletes a one-time prekey's secret (called right after its envelope opened). */
  deleteOneTimePrekey(id: number): void;
  /** Whether an envelope with this digest was already opened under this signed prekey. */
  hasOpened(signedPrekeyId: number, digest: Uint8Array): boolean;
  /** Remembers an opened envelope's digest until the signed prekey is deleted. */
  rememberOpened(signedPrekeyId: number, digest: Uint8Array): void;
}

function roomBytes(room: string): Uint8Array {
  const bytes = utf8(room);
  if (bytes.length === 0 || bytes.length > 255) {
    throw new RangeError("the room name must be 1 to 255 bytes of UTF-8");
  }
  return concat(Uint8Array.of(bytes.length), bytes);
}

function checkKey(key: Uint8Array, what: string): void {
  if (!(key instanceof Uint8Array) || key.length !== 32) {
    throw new TypeError(`${what} must be 32 bytes`);
  }
}

function transcriptHash(
  room: Uint8Array,
  sender: Uint8Array,
  recipient: Uint8Array,
  head: Uint8Array,
) {
  return sha256(concat(KEY_DOMAIN, room, sender, recipient, head));
}

function signedBytes(room: Uint8Array, recipient: Uint8Array, body: Uint8Array): Uint8Array {
  return concat(SIGNATURE_DOMAIN, room, recipient, body);
}

/**
 * Reads the prekey ids of an envelope without verifying anything. Throws
 * {@linkcode PrekeyError} (`malformed`).
 *
 * @example
 * ```ts
 * const { signedPrekeyId, oneTimePrekeyId } = peekPrekeyEnvelope(envelope);
 * ```
 */
export function peekPrekeyEnvelope(envelope: Uint8Array): PrekeyEnvelopeHeader {
  if (!(envelope instanceof Uint8Array) || envelope.length < MIN_LENGTH) {
    throw new PrekeyError("malformed", "a prekey envelope is truncated");
  }
  const view = new DataView(envelope.buffer, envelope.byteOffset, envelope.byteLength);
  if (envelope[0] !== PREKEY_ENVELOPE_VERSION) {
    throw new PrekeyError("malformed", `prekey envelope version ${envelope[0]} is not supported`);
  }
  const flag = envelope[5];
  const oneTime = view.getUint32(6);
  if (flag > 1 || (flag === 0 && oneTime !== 0)) {
    throw new PrekeyError("malformed", "a prekey envelope's one-time prekey field is invalid");
  }
  const sealedLength = view.getUint32(KEM_END);
  if (
    sealedLength > MAX_PREKEY_CONTENT + TAG_LENGTH ||
    envelope.length !== SEALED_START + sealedLength + SIGNATURE_LENGTH
  ) {
    throw new PrekeyError("malformed", "a prekey envelope's length field does not match its size");
  }
  return flag === 1
    ? { signedPrekeyId: view.getUint32(1), oneTimePrekeyId: oneTime }
    : { signedPrekeyId: view.getUint32(1) };
}

/**
 * Seals `content` for an offline member, to the one-time prekey of its
 * (verified) bundle if there is one, else to its signed prekey, and signs
 * it. Throws {@linkcode PrekeyError} (`malformed`) if the bundle's X-Wing
 * key fails the KEM checks.
 *
 * @example
 * ```ts
 * const bundle = verifyPrekeyBundle({ identityPublicKey: bob, bundle: fromRelay });
 * const envelope = sealPrekeyEnvelope({ room: "ops", sender: identity, recipientIdentityPublicKey: bob, bundle, content });
 * ```
 */
export function sealPrekeyEnvelope(options: {
  room: string;
  sender: SigningIdentity;
  recipientIdentityPublicKey: Uint8Array;
  bundle: PrekeyBundle;
  content: Uint8Array;
}): Uint8Array {
  const { sender, recipientIdentityPublicKey, bundle, content } = options;
  checkKey(recipientIdentityPublicKey, "the recipient identity key");
  if (content.length > MAX_PREKEY_CONTENT) {
    throw new RangeError(`a prekey envelope carries at most ${MAX_PREKEY_CONTENT} bytes`);
  }
  const room = roomBytes(options.room);
  const target = bundle.oneTimePrekey ?? bundle.signedPrekey;
  let encapsulated;
  try {
    encapsulated = xWing.encapsulate(target.publicKey);
  } catch (error) {
    if (!(error instanceof KemError)) throw error;
    throw new PrekeyError("malformed", `the ${target.kind} prekey's X-Wing key is invalid`);
  }
  const sealedLength = content.length + TAG_LENGTH;
  const envelope = new Uint8Array(SEALED_START + sealedLength + SIGNATURE_LENGTH);
  const view = new DataView(envelope.buffer);
  envelope[0] = PREKEY_ENVELOPE_VERSION;
  view.setUint32(1, bundle.signedPrekey.id);
  envelope[5] = bundle.oneTimePrekey === undefined ? 0 : 1;
  view.setUint32(6, bundle.oneTimePrekey?.id ?? 0);
  envelope.set(encapsulated.cipherText, HEADER_LENGTH);
  view.setUint32(KEM_END, sealedLength);
  const th = transcriptHash(
    room,
    sender.publicKey,
    recipientIdentityPublicKey,
    envelope.subarray(0, KEM_END),
  );
  const okm = hkdf(sha256, encapsulated.sharedSecret, EMPTY, th, 44);
  encapsulated.sharedSecret.fill(0);
  try {
    cryptoBackend.seal(
      okm.subarray(0, 32),
      okm.subarray(32),
      th,
      content,
      envelope.subarray(SEALED_START, SEALED_START + sealedLength),
    );
  } finally {
    okm.fill(0);
  }
  const signatureAt = SEALED_START + sealedLength;
  const signature = cryptoBackend.ed25519Sign(
    sender.secretKey,
    signedBytes(room, recipientIdentityPublicKey, envelope.subarray(0, signatureAt)),
  );
  envelope.set(signature, signatureAt);
  return envelope;
}

/**
 * Opens an envelope addressed to this member: checks its form and the
 * sender's signature (for this room and this recipient), finds the prekey
 * secret, refuses a replay, decrypts; then deletes a one-time prekey's
 * secret, or remembers the envelope under the signed prekey. Throws
 * {@linkcode PrekeyError}: `malformed`, `forged` (signature: another sender,
 * room or recipient, or altered bytes), `unknown-prekey` (a signed prekey
 * already deleted or never made), `replayed` (a one-time prekey already used,
 * or an envelope already opened), `tampered` (the decryption failed).
 *
 * @example
 * ```ts
 * const { content } = openPrekeyEnvelope({ room, recipientIdentityPublicKey: me, senderIdentityPublicKey: alice, envelope, secrets });
 * ```
 */
export function openPrekeyEnvelope(options: {
  room: string;
  recipientIdentityPublicKey: Uint8Array;
  senderIdentityPublicKey: Uint8Array;
  envelope: Uint8Array;
  secrets: PrekeySecretStore;
}): { content: Uint8Array } & PrekeyEnvelopeHeader {
  const { recipientIdentityPublicKey, senderIdentityPublicKey, envelope, secrets } = options;
  checkKey(recipientIdentityPublicKey, "the recipient identity key");
  checkKey(senderIdentityPublicKey, "the sender identity key");
  const room = roomBytes(options.room);
  const header = peekPrekeyEnvelope(envelope);
  const signatureAt = envelope.length - SIGNATURE_LENGTH;
  const signed = signedBytes(room, recipientIdentityPublicKey, envelope.subarray(0, signatureAt));
  if (
    !cryptoBackend.ed25519Verify(senderIdentityPublicKey, signed, envelope.subarray(signatureAt))
  ) {
    throw new PrekeyError(
      "forged",
      "the prekey envelope is not signed by its sender for this room and recipient; dropped",
    );
  }
  const { signedPrekeyId, oneTimePrekeyId } = header;
  const cipherText = envelope.subarray(HEADER_LENGTH, KEM_END);
  const digest = sha256(envelope);
  let secretKey: Uint8Array | undefined;
  if (oneTimePrekeyId !== undefined) {
    secretKey = secrets.oneTimePrekeySecret(oneTimePrekeyId);
    if (secretKey === undefined) {
      throw new PrekeyError(
        "replayed",
        `one-time prekey ${oneTimePrekeyId} was already used (or never made): a replayed envelope`,
      );
    }
  } else {
    secretKey = secrets.signedPrekeySecret(signedPrekeyId);
    if (secretKey === undefined) {
      throw new PrekeyError(
        "unknown-prekey",
        `signed prekey ${signedPrekeyId} is no longer kept; ask the sender to send again`,
      );
    }
    if (secrets.hasOpened(signedPrekeyId, digest)) {
      throw new PrekeyError("replayed", "this prekey envelope was already opened: a replay");
    }
  }
  const th = transcriptHash(
    room,
    senderIdentityPublicKey,
    recipientIdentityPublicKey,
    envelope.subarray(0, KEM_END),
  );
  let content: Uint8Array;
  const sharedSecret = xWing.decapsulate(cipherText, secretKey);
  const okm = hkdf(sha256, sharedSecret, EMPTY, th, 44);
  sharedSecret.fill(0);
  try {
    content = cryptoBackend.open(
      okm.subarray(0, 32),
      okm.subarray(32),
      th,
      envelope.subarray(SEALED_START, signatureAt),
    );
  } catch {
    throw new PrekeyError(
      "tampered",
      "the prekey envelope does not decrypt with this prekey; the sender used another key",
    );
  } finally {
    okm.fill(0);
  }
  if (oneTimePrekeyId !== undefined) secrets.deleteOneTimePrekey(oneTimePrekeyId);
  else secrets.rememberOpened(signedPrekeyId, digest);
  return { content, ...header };
}

/**
 * An in-memory {@linkcode PrekeySecretStore}: what a client store persists,
 * kept in maps (for tests, and for clients that keep no state).
 *
 * @example
 * ```ts
 * const secrets = new MemoryPrekeyStore();
 * secrets.addSignedPrekey(1, signed.secretKey);
 * for (const { id, secretKey } of batch) secrets.addOneTimePrekey(id, secretKey);
 * ```
 */
export class MemoryPrekeyStore implements PrekeySecretStore {
  #signed = new Map<number, { secretKey: Uint8Array; opened: Set<string> }>();
  #oneTime = new Map<number, Uint8Array>();

  /** Keeps a signed prekey's secret. @example `secrets.addSignedPrekey(1, secretKey)` */
  addSignedPrekey(id: number, secretKey: Uint8Array): void {
    this.#signed.set(id, { secretKey: secretKey.slice(), opened: new Set() });
  }

  /** Keeps a one-time prekey's secret. @example `secrets.addOneTimePrekey(7, secretKey)` */
  addOneTimePrekey(id: number, secretKey: Uint8Array): void {
    this.#oneTime.set(id, secretKey.slice());
  }

  /** Deletes a signed prekey with its digests (the schedule said so). @example `secrets.deleteSignedPrekey(1)` */
  deleteSignedPrekey(id: number): void {
    this.#signed.get(id)?.secretKey.fill(0);
    this.#signed.delete(id);
  }

  /** @example `secrets.signedPrekeySecret(1)` */
  signedPrekeySecret(id: number): Uint8Array | undefined {
    return this.#signed.get(id)?.secretKey;
  }

  /** @example `secrets.oneTimePrekeySecret(7)` */
  oneTimePrekeySecret(id: number): Uint8Array | undefined {
    return this.#oneTime.get(id);
  }

  /** @example `secrets.deleteOneTimePrekey(7)` */
  deleteOneTimePrekey(id: number): void {
    this.#oneTime.get(id)?.fill(0);
    this.#oneTime.delete(id);
  }

  /** @example `secrets.hasOpened(1, digest)` */
  hasOpened(signedPrekeyId: number, digest: Uint8Array): boolean {
    return this.#signed.get(signedPrekeyId)?.opened.has(toHex(digest)) ?? false;
  }

  /** @example `secrets.rememberOpened(1, digest)` */
  rememberOpened(signedPrekeyId: number, digest: Uint8Array): void {
    this.#signed.get(signedPrekeyId)?.opened.add(toHex(digest));
  }

  /** One-time prekeys still unused. @example `secrets.oneTimePrekeyCount` */
  get oneTimePrekeyCount(): number {
    return this.#oneTime.size;
  }
}
