/**
 * Load clients. {@linkcode SecureMember} is a lean securechat member built
 * from the library's own transport (`lib/transport/channel.ts`, `lib/transport/records.ts`): it
 * does the full handshake, proves its identity, joins with a signed
 * announcement and decrypts every transport message, but leaves the
 * end-to-end layer to the scenario. {@linkcode TlsMember} is an ncat chat
 * member over TLS.
 *
 * @module
 */

import * as tls from "node:tls";
import { signAnnouncement } from "../lib/e2e/announcement.ts";
import { connectHandshake, type SecureChannel } from "../lib/transport/channel.ts";
import { openSocket } from "../lib/client/client.ts";
import { cryptoBackend } from "../lib/crypto/crypto_backend.ts";
import { fingerprint } from "../lib/identity/fingerprint.ts";
import type { Identity } from "../lib/identity/identity.ts";
import { decodeRecord, encodeRecord, RecordType } from "../lib/transport/records.ts";
import type { Server } from "./servers.ts";

/**
 * A fresh identity, made with the crypto backend (native Ed25519), so that
 * preparing hundreds of members costs the bench little.
 *
 * @example
 * ```ts
 * const identity = benchIdentity();
 * ```
 */
export function benchIdentity(): Identity {
  const secretKey = new Uint8Array(32);
  crypto.getRandomValues(secretKey);
  const publicKey = cryptoBackend.ed25519PublicKey(secretKey);
  return { secretKey, publicKey, fingerprint: fingerprint(publicKey) };
}

/** Options for {@linkcode SecureMember.join}. */
export interface SecureMemberOptions {
  server: Server;
  identity: Identity;
  room: string;
  nick: string;
  timeoutMs?: number;
}

/**
 * A joined member that routes records to callbacks.
 *
 * @example
 * ```ts
 * const member = await SecureMember.join({ server, identity, room: "r", nick: "m1" });
 * member.onDeliver = (from, message) => count++;
 * member.publish(message);
 * ```
 */
export class SecureMember {
  readonly channel: SecureChannel;
  readonly memberId: number;
  /** Members in the room when this one joined. */
  readonly othersAtJoin: number;
  /** Called for each message another member published. */
  onDeliver: (from: number, message: Uint8Array) => void = () => {};
  /** Called when the relay acknowledges a publish. */
  onAck: (id: number, recipients: number) => void = () => {};
  /** Called once when the connection ends. */
  onClose: (error?: Error) => void = () => {};
  #nextId = 1;

  private constructor(channel: SecureChannel, memberId: number, othersAtJoin: number) {
    this.channel = channel;
    this.memberId = memberId;
    this.othersAtJoin = othersAtJoin;
    channel.onRecord = (bytes) => this.#receive(bytes);
    channel.onClose = (error) => this.onClose(error);
  }

  /**
   * Connects, runs the handshake (checking the relay's fingerprint), joins
   * `room` and resolves once the relay's welcome arrives.
   *
   * @example
   * ```ts
   * const member = await SecureMember.join({ server, identity, room: "r", nick: "m1" });
   * ```
   */
  static async join(options: SecureMemberOptions): Promise<SecureMember> {
    const { server, identity, room, nick } = options;
    const timeoutMs = options.timeoutMs ?? 30_000;
    const socket = await openSocket({ host: server.host, port: server.port }, timeoutMs);
    const channel = await connectHandshake({
      socket,
      identity,
      timeoutMs,
      verifyRelay: (relay) => {
        if (relay.fingerprint !== server.fingerprint) throw new Error("wrong relay fingerprint");
      },
    });
    const announcement = signAnnouncement({
      identity,
      announcement: {
        room,
        nick,
        pairwisePublicKey: cryptoBackend.x25519KeyPair().publicKey,
        time: Date.now(),
      },
    });
    return await new Promise<SecureMember>((resolve, reject) => {
      const timer = setTimeout(() => {
        channel.destroy();
        reject(new Error(`no welcome within ${timeoutMs} ms`));
      }, timeoutMs);
      channel.onRecord = (bytes) => {
        clearTimeout(timer);
        const record = decodeRecord(bytes);
        if (record.type !== "welcome") {
          channel.destroy();
          reject(new Error(`relay answered the join with ${record.type}`));
          return;
        }
        resolve(new SecureMember(channel, record.memberId, record.members.length));
      };
      channel.onClose = (error) => {
        clearTimeout(timer);
        reject(error ?? new Error("relay closed the connection before the welcome"));
      };
      channel.send(encodeRecord({ type: "join", announcement }));
      channel.start();
    });
  }

  #receive(bytes: Uint8Array): void {
    // Peek at the type first: the many memberJoined records of a filling room need no decoding.
    const type = bytes[0];
    if (type === RecordType.deliver || type === RecordType.ack) {
      const record = decodeRecord(bytes);
      if (record.type === "deliver") this.onDeliver(record.from, record.message);
      else if (record.type === "ack") this.onAck(record.id, record.online);
    } else if (type === RecordType.error) {
      const record = decodeRecord(bytes);
      this.channel.destroy(
        new Error(`relay error: ${record.type === "error" ? record.message : ""}`),
      );
    }
  }

  /**
   * Sends a group message; returns its publish id.
   *
   * @example
   * ```ts
   * const id = member.publish(message);
   * ```
   */
  publish(message: Uint8Array): number {
    const id = this.#nextId++;
    this.channel.send(encodeRecord({ type: "publish", id, message }));
    return id;
  }

  /** Closes the connection. @example `member.close()` */
  close(): void {
    this.channel.destroy();
  }
}

/**
 * An ncat chat member over TLS. ncat's temporary certificate cannot be
 * verified, so certificate checks are off; the TLS handshake and the record
 * encryption are the real ones.
 *
 * @example
 * ```ts
 * const member = await TlsMember.connect(ncat);
 * member.onData = (chunk) => count(chunk);
 * member.socket.write("hello\n");
 * ```
 */
export class TlsMember {
  readonly socket: tls.TLSSocket;
  /** Receives every decrypted chunk. */
  onData: (chunk: Uint8Array) => void = () => {};

  private constructor(socket: tls.TLSSocket) {
    this.socket = socket;
    socket.on("data", (chunk: Uint8Array) => this.onData(chunk));
  }

  /**
   * Connects and completes the TLS handshake.
   *
   * @example
   * ```ts
   * const member = await TlsMember.connect(ncat, 10_000);
   * ```
   */
  static connect(server: Server, timeoutMs = 30_000): Promise<TlsMember> {
    return new Promise((resolve, reject) => {
      const socket = tls.connect({
        host: server.host,
        port: server.port,
        rejectUnauthorized: false,
      });
      socket.setNoDelay(true);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`TLS handshake with ncat did not finish within ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once("secureConnect", () => {
        clearTimeout(timer);
        socket.removeAllListeners("error");
        socket.on("error", () => {});
        resolve(new TlsMember(socket));
      });
      socket.once("error", (error) => {
        clearTimeout(timer);
        reject(error);
      });
    });
  }

  /** Closes the connection. @example `member.close()` */
  close(): void {
    this.socket.destroy();
  }
}

/**
 * Runs `task(i)` for `i` in `[0, count)` with at most `concurrency` at once;
 * resolves with the results in order (errors included, never thrown).
 *
 * @example
 * ```ts
 * const members = await inParallel(50, 8, (i) => SecureMember.join({ ... }));
 * ```
 */
export async function inParallel<T>(
  count: number,
  concurrency: number,
  task: (index: number) => Promise<T>,
): Promise<(T | Error)[]> {
  const results: (T | Error)[] = new Array(count);
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const index = next++;
      try {
        results[index] = await task(index);
      } catch (error) {
        results[index] = error instanceof Error ? error : new Error(String(error));
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return results;
}

/**
 * The successes of {@linkcode inParallel}, or the first error.
 *
 * @example
 * ```ts
 * const members = allOrThrow(await inParallel(10, 4, join));
 * ```
 */
export function allOrThrow<T>(results: (T | Error)[]): T[] {
  const failure = results.find((result) => result instanceof Error);
  if (failure) throw failure;
  return results as T[];
}
