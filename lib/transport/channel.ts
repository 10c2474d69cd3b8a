/**
 * The encrypted, mutually authenticated connection between a client and the
 * relay: a preamble that carries the protocol version, the
 * `Noise_XX_25519_ChaChaPoly_SHA256` handshake, then a stream of records
 * inside Noise transport messages.
 *
 * It runs on any {@linkcode ByteStream}: a TCP socket, or a WebSocket whose
 * binary messages carry the same bytes. On the stream every Noise message
 * travels as `u16 length || message`. The
 * decrypted transport plaintexts form one byte stream of records, each
 * `u32 length || record`, so a record may span several Noise messages and
 * many small records share one. Records queued in one event-loop turn go out
 * together: one encryption per 65,519 bytes and one stream write.
 *
 * @module
 */

import type { Socket } from "node:net";
import { concat, constantTimeEqual, utf8 } from "../core/bytes.ts";
import {
  AuthenticationError,
  NetworkError,
  ProtocolError,
  socketErrorText,
} from "../core/errors.ts";
import { fingerprint } from "../identity/fingerprint.ts";
import { encodeFrame, FrameDecoder, FrameTooLargeError } from "./framing.ts";
import { cryptoBackend } from "../crypto/crypto_backend.ts";
import type { Identity } from "../identity/identity.ts";
import { type CipherState, generateKeyPair, HandshakeState } from "../crypto/noise.ts";
import { PROTOCOL_VERSION } from "../core/version.ts";
import { afterThisTurn, uninitializedBytes, unrefTimer } from "../core/runtime.ts";
import { type ByteStream, socketStream } from "./byte_stream.ts";

/** The Noise protocol name of the client–relay transport. */
export const TRANSPORT_PROTOCOL = "Noise_XX_25519_ChaChaPoly_SHA256";
/** ASCII magic at the start of each side's preamble. */
const PREAMBLE_MAGIC = utf8("SECCHAT");
/** Preamble length: magic plus one version byte. */
export const PREAMBLE_BYTES = 8;
/** Largest Noise message (the Noise limit). */
export const MAX_NOISE_MESSAGE_BYTES = 65535;
/** Largest plaintext per transport message: the Noise limit less the 16-byte tag. */
const MAX_TRANSPORT_PLAINTEXT = MAX_NOISE_MESSAGE_BYTES - 16;
/** Largest record accepted inside the transport stream. */
export const MAX_RECORD_BYTES = 256 * 1024;
/** Default deadline for a whole handshake. */
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;
/**
 * How long a client waits for the relay's preamble. A relay sends it as
 * soon as it accepts (PROTOCOL.md, Preamble), so a server silent this long
 * is almost certainly something else, such as a web server waiting for a
 * request line.
 */
export const PREAMBLE_TIMEOUT_MS = 3_000;
/** How long a side that refused the peer's preamble keeps reading before it drops the stream. */
const REFUSAL_LINGER_MS = 1_000;

const STATIC_BINDING_CONTEXT = utf8("securechat/2 noise static\0");
const IDENTITY_PAYLOAD_BYTES = 32 + 64;
const EMPTY = new Uint8Array(0);

/**
 * Builds a preamble for `version`.
 *
 * @example
 * ```ts
 * encodePreamble(1); // "SECCHAT" followed by 0x01
 * ```
 */
export function encodePreamble(version: number = PROTOCOL_VERSION): Uint8Array {
  return concat(PREAMBLE_MAGIC, new Uint8Array([version]));
}

/**
 * Reads a peer's preamble and returns its protocol version; throws
 * {@linkcode ProtocolError} when the bytes are not a securechat preamble.
 *
 * @example
 * ```ts
 * decodePreamble(encodePreamble(1)); // 1
 * ```
 */
export function decodePreamble(bytes: Uint8Array): number {
  if (bytes.length !== PREAMBLE_BYTES || !constantTimeEqual(bytes.subarray(0, 7), PREAMBLE_MAGIC)) {
    throw new ProtocolError("peer is not speaking the securechat protocol");
  }
  return bytes[7];
}

/**
 * The handshake payload that binds an Ed25519 identity to this connection's
 * Noise static key: `identity public key (32) || signature (64)`.
 */
function identityPayload(identity: Identity, noiseStaticPublicKey: Uint8Array): Uint8Array {
  // The crypto backend directly: native Ed25519 is what makes handshakes cheap for the relay.
  const signature = cryptoBackend.ed25519Sign(
    identity.secretKey,
    concat(STATIC_BINDING_CONTEXT, noiseStaticPublicKey),
  );
  return concat(identity.publicKey, signature);
}

function verifyIdentityPayload(payload: Uint8Array, noiseStaticPublicKey: Uint8Array): Uint8Array {
  if (payload.length !== IDENTITY_PAYLOAD_BYTES) {
    throw new ProtocolError("handshake identity payload has the wrong length");
  }
  const publicKey = payload.slice(0, 32);
  const ok = cryptoBackend.ed25519Verify(
    publicKey,
    concat(STATIC_BINDING_CONTEXT, noiseStaticPublicKey),
    payload.subarray(32),
  );
  if (!ok) {
    throw new AuthenticationError("peer's identity signature does not match its handshake key");
  }
  return publicKey;
}

/**
 * Bytes a peer sent where a preamble belonged, shown safely: the first line,
 * at most 40 characters, printable ASCII as is and anything else as `\xNN`.
 */
function quoteAnswer(bytes: Uint8Array): string {
  let shown = "";
  for (const byte of bytes.subarray(0, 40)) {
    if (byte === 0x0d || byte === 0x0a) break;
    shown += byte >= 0x20 && byte < 0x7f && byte !== 0x22 && byte !== 0x5c
      ? String.fromCharCode(byte)
      : `\\x${byte.toString(16).padStart(2, "0")}`;
  }
  return `"${shown}"`;
}

/**
 * An error about the peer's preamble. The side that raises it closes the
 * connection cleanly (FIN, not reset) once its own preamble is out, so the
 * peer can still read that preamble and name both versions.
 */
class PreambleError extends ProtocolError {
  constructor(message: string) {
    super(message, { permanent: true });
  }
}

/** Collects stream bytes during the handshake and hands out the preamble and frames. */
class HandshakeReader {
  #stream: ByteStream;
  #peer: "relay" | "client";
  #buffer: Uint8Array = EMPTY;
  #preambleRead = false;
  #frames = new FrameDecoder({ prefixBytes: 2, maxFrameBytes: MAX_NOISE_MESSAGE_BYTES });
  #queued: Uint8Array[] = [];
  #waiter?: { resolve: (bytes: Uint8Array) => void; reject: (error: Error) => void };
  #failure?: Error;

  constructor(stream: ByteStream, peer: "relay" | "client") {
    this.#stream = stream;
    this.#peer = peer;
    stream.onData = (chunk) => this.#receive(chunk);
    stream.onClose = (error) =>
      this.#fail(
        error
          ? new NetworkError(`connection failed during the handshake: ${socketErrorText(error)}`)
          : this.#peer === "relay" && !this.#preambleRead
          ? new NetworkError(
            "the server closed the connection without a securechat preamble: not a securechat " +
              "relay, or a relay at its connection limit?",
          )
          : new NetworkError("connection closed during the handshake"),
      );
    stream.resume();
  }

  #receive(chunk: Uint8Array): void {
    try {
      if (!this.#preambleRead) {
        this.#buffer = concat(this.#buffer, chunk);
        // Judge the magic byte by byte: a web server's answer is known at its first byte.
        const magic = this.#buffer.subarray(0, PREAMBLE_MAGIC.length);
        if (!constantTimeEqual(magic, PREAMBLE_MAGIC.subarray(0, magic.length))) {
          throw new PreambleError(
            this.#peer === "relay"
              ? `not a securechat relay? It answered ${quoteAnswer(this.#buffer)} instead of ` +
                "a securechat preamble"
              : `the client is not speaking the securechat protocol (it sent ${
                quoteAnswer(this.#buffer)
              })`,
          );
        }
        if (this.#buffer.length < PREAMBLE_BYTES) return;
        this.#preambleRead = true;
        this.#queued.push(this.#buffer.slice(0, PREAMBLE_BYTES));
        chunk = this.#buffer.subarray(PREAMBLE_BYTES);
        this.#buffer = EMPTY;
      }
      for (const frame of this.#frames.push(chunk)) this.#queued.push(frame.slice());
      this.#deliver();
    } catch (error) {
      this.#fail(
        error instanceof FrameTooLargeError ? new ProtocolError(error.message) : error as Error,
      );
    }
  }

  #deliver(): void {
    if (this.#waiter && this.#queued.length > 0) {
      const waiter = this.#waiter;
      this.#waiter = undefined;
      waiter.resolve(this.#queued.shift()!);
    }
  }

  #fail(error: Error): void {
    this.#failure ??= error;
    if (this.#waiter) {
      const waiter = this.#waiter;
      this.#waiter = undefined;
      waiter.reject(this.#failure);
    }
  }

  /** The next preamble or frame, in arrival order. */
  next(): Promise<Uint8Array> {
    if (this.#queued.length > 0) return Promise.resolve(this.#queued.shift()!);
    if (this.#failure) return Promise.reject(this.#failure);
    return new Promise((resolve, reject) => {
      this.#waiter = { resolve, reject };
    });
  }

  /**
   * Stops listening and returns the frames that arrived after the last
   * handshake message, and the decoder, which may hold the start of the next.
   */
  detach(): { pending: Uint8Array[]; frames: FrameDecoder } {
    this.#stream.pause();
    this.#stream.onData = () => {};
    this.#stream.onClose = () => {};
    return { pending: this.#queued.splice(0), frames: this.#frames };
  }
}

/** Runs `work` with a deadline; on expiry destroys the stream and throws. */
async function withDeadline<T>(
  stream: ByteStream,
  timeoutMs: number,
  work: () => Promise<T>,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new ProtocolError(`handshake timed out after ${timeoutMs / 1000} s`));
    }, timeoutMs);
  });
  try {
    return await Promise.race([work(), deadline]);
  } catch (error) {
    if (error instanceof PreambleError) closeAfterPreamble(stream);
    else stream.destroy();
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Ends a connection whose preamble was refused: an orderly close after what
 * is queued (our own preamble), reading and discarding whatever still comes
 * so that TCP does not answer it with a reset, and dropping it after a moment.
 */
function closeAfterPreamble(stream: ByteStream): void {
  stream.onData = () => {};
  stream.onClose = () => {};
  stream.end();
  stream.resume();
  unrefTimer(setTimeout(() => stream.destroy(), REFUSAL_LINGER_MS));
}

function checkVersion(version: number, peer: "relay" | "client"): void {
  if (version === PROTOCOL_VERSION) return;
  if (peer === "client") {
    throw new PreambleError(
      `the client speaks securechat protocol ${version}, this relay speaks ${PROTOCOL_VERSION}`,
    );
  }
  const advice = version > PROTOCOL_VERSION
    ? "upgrade securechat to talk to it"
    : "the relay runs an older securechat; ask its operator to upgrade, or use a matching version";
  throw new PreambleError(
    `the relay speaks securechat protocol ${version}, this program speaks ${PROTOCOL_VERSION}: ` +
      advice,
  );
}

/** The relay's preamble, or a protocol error if none comes within {@linkcode PREAMBLE_TIMEOUT_MS}. */
async function relayPreambleOf(reader: HandshakeReader, timeoutMs: number): Promise<Uint8Array> {
  // A shorter handshake deadline says it all by itself.
  if (timeoutMs <= PREAMBLE_TIMEOUT_MS) return await reader.next();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const wait = PREAMBLE_TIMEOUT_MS;
  const silence = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(
        new ProtocolError(
          `the server sent nothing for ${wait / 1000} s after accepting the connection: not a ` +
            "securechat relay? (a relay sends its preamble at once)",
        ),
      );
    }, wait);
  });
  try {
    return await Promise.race([reader.next(), silence]);
  } finally {
    clearTimeout(timer);
  }
}

function readHandshakeMessage(handshake: HandshakeState, message: Uint8Array): Uint8Array {
  try {
    return handshake.readMessage(message);
  } catch {
    throw new ProtocolError("handshake message failed to decrypt or was malformed");
  }
}

/**
 * Where a handshake runs: a {@linkcode ByteStream}, or a connected
 * `node:net` socket (wrapped with {@linkcode socketStream}).
 */
export type HandshakeConnection = { stream: ByteStream; socket?: never } | {
  socket: Socket;
  stream?: never;
};

function streamOf(connection: HandshakeConnection): ByteStream {
  return connection.stream ?? socketStream(connection.socket);
}

/** Options for {@linkcode connectHandshake}. */
export type ClientHandshakeOptions = HandshakeConnection & ClientHandshakeSettings;

/** What {@linkcode connectHandshake} needs besides the connection. */
export interface ClientHandshakeSettings {
  /** This client's identity, proved to the relay in the third message. */
  identity: Identity;
  /**
   * Called with the relay's identity after it is proved and before this
   * client sends anything that identifies it; throw to abort.
   */
  verifyRelay: (relay: { publicKey: Uint8Array; fingerprint: string }) => void | Promise<void>;
  /** Deadline for the whole handshake; default {@linkcode DEFAULT_HANDSHAKE_TIMEOUT_MS}. */
  timeoutMs?: number;
}

/**
 * Runs the client side of the handshake on a connected socket or stream.
 *
 * @example
 * ```ts
 * const channel = await connectHandshake({
 *   stream,
 *   identity,
 *   verifyRelay: ({ fingerprint }) => {
 *     if (fingerprint !== pinned) throw new AuthenticationError("wrong relay");
 *   },
 * });
 * ```
 */
export function connectHandshake(options: ClientHandshakeOptions): Promise<SecureChannel> {
  const { identity } = options;
  const stream = streamOf(options);
  const reader = new HandshakeReader(stream, "relay");
  const timeoutMs = options.timeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
  return withDeadline(stream, timeoutMs, async () => {
    const ownPreamble = encodePreamble();
    stream.write(ownPreamble);
    const relayPreamble = await relayPreambleOf(reader, timeoutMs);
    checkVersion(decodePreamble(relayPreamble), "relay");
    const staticKeyPair = generateKeyPair("25519");
    const handshake = new HandshakeState({
      protocolName: TRANSPORT_PROTOCOL,
      initiator: true,
      prologue: concat(ownPreamble, relayPreamble),
      staticKeyPair,
    });
    stream.write(encodeFrame(handshake.writeMessage(EMPTY), 2));
    const relayPayload = readHandshakeMessage(handshake, await reader.next());
    const relayPublicKey = verifyIdentityPayload(relayPayload, handshake.remoteStaticPublicKey!);
    await options.verifyRelay({
      publicKey: relayPublicKey,
      fingerprint: fingerprint(relayPublicKey),
    });
    stream.write(
      encodeFrame(handshake.writeMessage(identityPayload(identity, staticKeyPair.publicKey)), 2),
    );
    const { send, receive } = handshake.split();
    return new SecureChannel({
      stream,
      send,
      receive,
      remoteIdentityPublicKey: relayPublicKey,
      ...reader.detach(),
    });
  });
}

/** Options for {@linkcode acceptHandshake}: a freshly accepted socket or stream, and settings. */
export type RelayHandshakeOptions = HandshakeConnection & RelayHandshakeSettings;

/** What {@linkcode acceptHandshake} needs besides the connection. */
export interface RelayHandshakeSettings {
  /** The relay's identity. */
  identity: Identity;
  /** Deadline for the whole handshake; default {@linkcode DEFAULT_HANDSHAKE_TIMEOUT_MS}. */
  timeoutMs?: number;
}

/**
 * Runs the relay side of the handshake on an accepted socket or stream.
 *
 * @example
 * ```ts
 * const channel = await acceptHandshake({ socket, identity });
 * console.log(channel.remoteFingerprint);
 * ```
 */
export function acceptHandshake(options: RelayHandshakeOptions): Promise<SecureChannel> {
  const { identity } = options;
  const stream = streamOf(options);
  const reader = new HandshakeReader(stream, "client");
  return withDeadline(stream, options.timeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS, async () => {
    const ownPreamble = encodePreamble();
    stream.write(ownPreamble);
    const clientPreamble = await reader.next();
    checkVersion(decodePreamble(clientPreamble), "client");
    const staticKeyPair = generateKeyPair("25519");
    const handshake = new HandshakeState({
      protocolName: TRANSPORT_PROTOCOL,
      initiator: false,
      prologue: concat(clientPreamble, ownPreamble),
      staticKeyPair,
    });
    const first = readHandshakeMessage(handshake, await reader.next());
    if (first.length !== 0) throw new ProtocolError("first handshake message carries a payload");
    stream.write(
      encodeFrame(handshake.writeMessage(identityPayload(identity, staticKeyPair.publicKey)), 2),
    );
    const clientPayload = readHandshakeMessage(handshake, await reader.next());
    const clientPublicKey = verifyIdentityPayload(clientPayload, handshake.remoteStaticPublicKey!);
    const { send, receive } = handshake.split();
    return new SecureChannel({
      stream,
      send,
      receive,
      remoteIdentityPublicKey: clientPublicKey,
      ...reader.detach(),
    });
  });
}

/** Largest plaintext scratch buffer kept between flushes; larger batches get their own. */
const MAX_SCRATCH_BYTES = 1024 * 1024;
let scratch = new Uint8Array(64 * 1024);

/**
 * A buffer for `length` bytes of transport plaintext, reused from flush to
 * flush: each flush encrypts it before returning, so nothing outlives the
 * call, and the hot path allocates only the ciphertext it hands the socket.
 */
function plaintextScratch(length: number): Uint8Array {
  if (length > MAX_SCRATCH_BYTES) return new Uint8Array(length);
  if (length > scratch.length) {
    scratch = new Uint8Array(Math.min(MAX_SCRATCH_BYTES, 2 ** Math.ceil(Math.log2(length))));
  }
  return scratch;
}

interface SecureChannelParts {
  stream: ByteStream;
  send: CipherState;
  receive: CipherState;
  remoteIdentityPublicKey: Uint8Array;
  /** Frames that arrived together with the last handshake message. */
  pending: Uint8Array[];
  /**
   * The handshake's frame decoder: the same read can end in the middle of
   * the first transport message, and those bytes must not be lost.
   */
  frames: FrameDecoder;
}

/**
 * An authenticated, encrypted record stream. Create one with
 * {@linkcode connectHandshake} or {@linkcode acceptHandshake}.
 *
 * @example
 * ```ts
 * channel.onRecord = (record) => console.log(record.length);
 * channel.onClose = (error) => console.log("closed", error?.message);
 * channel.send(new Uint8Array([1, 2, 3]));
 * ```
 */
export class SecureChannel {
  /** Ed25519 identity key the peer proved in the handshake. */
  readonly remoteIdentityPublicKey: Uint8Array;
  /** Fingerprint of {@linkcode SecureChannel.remoteIdentityPublicKey}. */
  readonly remoteFingerprint: string;
  /** Called for every record, in order. */
  onRecord: (record: Uint8Array) => void = () => {};
  /** Called once when the connection is gone; with an error unless it closed cleanly. */
  onClose: (error?: Error) => void = () => {};
  /**
   * Called, when set, instead of dropping the connection when the peer
   * declares a record longer than {@linkcode MAX_RECORD_BYTES}, with the
   * declared length. Nothing more is read from the peer after it; the
   * handler answers (the relay sends error 7) and closes.
   */
  onRecordTooLarge: ((length: number) => void) | undefined;

  #stream: ByteStream;
  #send: CipherState;
  #receive: CipherState;
  #frames: FrameDecoder;
  #records = new FrameDecoder({ prefixBytes: 4, maxFrameBytes: MAX_RECORD_BYTES });
  #outgoing: Uint8Array[] = [];
  #outgoingBytes = 0;
  #flushScheduled = false;
  #closed = false;
  #closeError?: Error;
  #ending = false;
  #refused = false;
  #started = false;
  #pending: Uint8Array[];

  /** Internal: use the handshake functions. @example `acceptHandshake({ socket, identity })` */
  constructor(parts: SecureChannelParts) {
    this.#stream = parts.stream;
    this.#send = parts.send;
    this.#receive = parts.receive;
    this.remoteIdentityPublicKey = parts.remoteIdentityPublicKey;
    this.remoteFingerprint = fingerprint(parts.remoteIdentityPublicKey);
    this.#pending = parts.pending;
    this.#frames = parts.frames;
    this.#stream.pause();
    this.#stream.onData = (chunk) => this.#receiveBytes(chunk);
    this.#stream.onClose = (error) => {
      if (error) this.#closeError ??= new NetworkError(socketErrorText(error));
      this.#finish();
    };
  }

  /**
   * Starts delivering records to {@linkcode SecureChannel.onRecord}; call it
   * once the handlers are set.
   *
   * @example
   * ```ts
   * channel.onRecord = handle;
   * channel.start();
   * ```
   */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    for (const frame of this.#pending.splice(0)) this.#receiveFrame(frame);
    if (!this.#closed) this.#stream.resume();
  }

  /** Bytes queued for the peer and not yet taken by the network. @example `channel.bufferedBytes` */
  get bufferedBytes(): number {
    return this.#outgoingBytes + this.#stream.bufferedAmount;
  }

  /** Whether the connection is gone or closing. @example `if (!channel.closed) channel.send(r)` */
  get closed(): boolean {
    return this.#closed || this.#ending;
  }

  /** Remote address as `host:port`, for logs. @example `channel.remoteAddress` */
  get remoteAddress(): string {
    return this.#stream.remoteAddress;
  }

  /**
   * Queues a record; everything queued in the same event-loop turn is sent
   * in as few transport messages as possible.
   *
   * @example
   * ```ts
   * channel.send(encodeRecord({ type: "ack", id: 1, recipients: 3 }));
   * ```
   */
  send(record: Uint8Array): void {
    if (this.closed) return;
    if (record.length > MAX_RECORD_BYTES) {
      throw new RangeError(`record of ${record.length} bytes exceeds ${MAX_RECORD_BYTES}`);
    }
    this.#outgoing.push(record);
    this.#outgoingBytes += 4 + record.length;
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      afterThisTurn(() => this.flush());
    }
  }

  /**
   * Encrypts and writes everything queued now. Returns after handing the
   * bytes to the stream.
   *
   * @example
   * ```ts
   * channel.flush();
   * ```
   */
  flush(): void {
    this.#flushScheduled = false;
    if (this.#outgoingBytes === 0 || this.#closed) return;
    const total = this.#outgoingBytes;
    const plaintext = plaintextScratch(total);
    let offset = 0;
    for (const record of this.#outgoing) {
      const length = record.length;
      plaintext[offset] = length >>> 24;
      plaintext[offset + 1] = (length >>> 16) & 0xff;
      plaintext[offset + 2] = (length >>> 8) & 0xff;
      plaintext[offset + 3] = length & 0xff;
      plaintext.set(record, offset + 4);
      offset += 4 + length;
    }
    this.#outgoing.length = 0;
    this.#outgoingBytes = 0;
    const messages = Math.ceil(total / MAX_TRANSPORT_PLAINTEXT);
    // Every byte is overwritten below, so the buffer need not be zeroed first.
    const wire = uninitializedBytes(total + messages * 18, { pooled: true });
    let wireOffset = 0;
    for (let start = 0; start < total; start += MAX_TRANSPORT_PLAINTEXT) {
      const chunk = plaintext.subarray(start, Math.min(start + MAX_TRANSPORT_PLAINTEXT, total));
      const ciphertext = this.#send.encryptWithAd(EMPTY, chunk);
      wire[wireOffset] = ciphertext.length >>> 8;
      wire[wireOffset + 1] = ciphertext.length & 0xff;
      wire.set(ciphertext, wireOffset + 2);
      wireOffset += 2 + ciphertext.length;
    }
    this.#stream.write(wire);
  }

  /**
   * Sends what is queued, then closes the connection.
   *
   * @example
   * ```ts
   * channel.close();
   * ```
   */
  close(): void {
    if (this.closed) return;
    this.flush();
    this.#ending = true;
    this.#stream.end();
    // A peer that never reads must not hold the connection open forever.
    unrefTimer(setTimeout(() => this.#stream.destroy(), 5_000));
  }

  /**
   * Drops the connection at once, reporting `error` to {@linkcode SecureChannel.onClose}.
   *
   * @example
   * ```ts
   * channel.destroy(new ProtocolError("malformed record"));
   * ```
   */
  destroy(error?: Error): void {
    if (error) this.#closeError ??= error;
    this.#outgoing = [];
    this.#outgoingBytes = 0;
    this.#stream.destroy();
  }

  #receiveBytes(chunk: Uint8Array): void {
    if (this.#closed || this.#refused) return;
    let frames: Uint8Array[];
    try {
      frames = this.#frames.push(chunk);
    } catch (error) {
      this.destroy(new ProtocolError((error as Error).message));
      return;
    }
    for (const frame of frames) {
      if (this.#closed || this.#refused || this.#stream.closed) return;
      this.#receiveFrame(frame);
    }
  }

  #receiveFrame(frame: Uint8Array): void {
    let plaintext: Uint8Array;
    try {
      plaintext = this.#receive.decryptWithAd(EMPTY, frame);
    } catch {
      this.destroy(
        new ProtocolError("a transport message failed authentication (corrupted or forged)"),
      );
      return;
    }
    let records: Uint8Array[];
    try {
      records = this.#records.push(plaintext);
    } catch (error) {
      if (error instanceof FrameTooLargeError && this.onRecordTooLarge) {
        // Nothing in or after this transport message is acted on (none of it is acknowledged).
        this.#refused = true;
        this.onRecordTooLarge(error.length);
        return;
      }
      this.destroy(new ProtocolError((error as Error).message));
      return;
    }
    for (const record of records) {
      if (this.#stream.closed) return;
      this.onRecord(record);
    }
  }

  #finish(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (!this.#closeError && this.#frames.buffered + this.#records.buffered > 0) {
      this.#closeError = new ProtocolError("connection closed in the middle of a message");
    }
    this.onClose(this.#closeError);
  }
}
