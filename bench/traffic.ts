/**
 * The traffic harness shared by the fan-out and bulk scenarios: one room,
 * some of whose members send fixed-size texts while every member receives,
 * through either relay.
 *
 * Three kinds of load client:
 *
 * - `transport`: lean securechat members ({@linkcode SecureMember}). Senders
 *   produce real group messages (Sender Keys encryption and an Ed25519
 *   signature per message, texts queued in one turn packed into one message
 *   like `ChatClient` does), so the relay forwards exactly what real clients
 *   send. Receivers decrypt every transport message and decode every record,
 *   but skip the end-to-end layer: they learn which texts a message carried
 *   from the sender's bookkeeping in this process (message iteration →
 *   texts), not by decrypting it.
 * - `e2e`: real `ChatClient`s: receivers also check each message's signature
 *   and decrypt it, and every text is compared with what was sent.
 * - `ncat`: TLS clients of `ncat --chat`; each text is one line.
 *
 * Senders run either closed-loop (`window` texts in flight to the slowest
 * receiver: the maximum throughput) or paced (a fixed rate, latency measured
 * from each text's scheduled time so a stall cannot hide).
 *
 * @module
 */

import { ChatClient } from "../lib/client/client.ts";
import { encodeGroupContent } from "../lib/e2e/content.ts";
import type { Identity } from "../lib/identity/identity.ts";
import { groupContext, OutboundSenderKey, peekGroupMessageHeader } from "../lib/e2e/sender_keys.ts";
import { allOrThrow, benchIdentity, inParallel, SecureMember, TlsMember } from "./members.ts";
import type { Server } from "./servers.ts";
import { LatencyHistogram } from "./stats.ts";
import { machineBusySeconds, ownCpuSeconds, sleep, waitUntil } from "./system.ts";

/** Which load clients to use. */
export type Variant = "transport" | "e2e" | "ncat";

/** How senders decide when to send. */
export type SendMode =
  | { kind: "max"; window: number }
  | { kind: "paced"; textsPerSecondPerSender: number };

/** One traffic run. */
export interface TrafficOptions {
  server: Server;
  variant: Variant;
  members: number;
  senders: number;
  /** Bytes per text (ncat: per line, plus its newline). */
  textBytes: number;
  mode: SendMode;
  warmupMs: number;
  durationMs: number;
  /** Connections opened at once while the room fills. */
  joinConcurrency?: number;
}

/** What a traffic run measured. */
export interface TrafficResult {
  variant: Variant;
  members: number;
  senders: number;
  textBytes: number;
  mode: SendMode;
  /** Texts received by members per second (each text counts once per receiver). */
  deliveriesPerSecond: number;
  /** Texts sent per second, all senders together. */
  textsPerSecond: number;
  /** Payload bytes delivered per second (deliveries × text size), in MB/s (10^6). */
  megabytesPerSecond: number;
  /** Send-to-receive latency of texts received during the measurement, ms. */
  latency: { p50: number | null; p99: number | null; max: number | null; samples: number };
  /** Relay CPU use during the measurement, in cores (1.0 = one core busy). */
  relayCpu: number | null;
  /** Load-generator (this process) CPU use, in cores. */
  loadCpu: number;
  /** CPU used by other processes on the machine meanwhile, in cores (noise in the figures). */
  otherCpu: number | null;
  /** Relay resident memory at the end. */
  relayRssBytes: number | null;
  /** Texts that arrived altered (e2e and ncat check every text; transport relies on the AEAD). */
  corruptTexts: number;
  /** Time to connect and join every member. */
  setupMs: number;
  durationMs: number;
}

const PAD = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_";
const HEADER_CHARS = 12; // 2 digits sender, 10 digits sequence number
const MAX_BATCH_TEXT_BYTES = 128 * 1024; // as lib/client/client.ts packs
const MAX_BATCH_TEXTS = 4096;
const NEWLINE = 0x0a;

function padding(length: number): string {
  let text = "";
  while (text.length < length) text += PAD;
  return text.slice(0, length);
}

/** Builds the texts: a fixed-width header naming sender and sequence number, then padding. */
class TextMaker {
  readonly bytes: number;
  #pad: string;

  constructor(bytes: number) {
    if (bytes < HEADER_CHARS) throw new RangeError(`texts need at least ${HEADER_CHARS} bytes`);
    this.bytes = bytes;
    this.#pad = padding(bytes - HEADER_CHARS);
  }

  make(sender: number, seq: number): string {
    return String(sender).padStart(2, "0") + String(seq).padStart(10, "0") + this.#pad;
  }
}

/** Growable per-sender record of when each text was (or was due to be) sent. */
class SendLog {
  times = new Float64Array(1 << 14);
  sent = 0;
  /** iteration of the group message → [first seq, count] (transport variant). */
  batches = new Map<number, [number, number]>();

  add(time: number): number {
    if (this.sent === this.times.length) {
      const bigger = new Float64Array(this.times.length * 2);
      bigger.set(this.times);
      this.times = bigger;
    }
    this.times[this.sent] = time;
    return this.sent++;
  }
}

/** Per-receiver counters. */
interface Receiver {
  /** Index of the sender this member also is, or -1. */
  senderIndex: number;
  /** Texts received since the start (for flow control). */
  total: number;
  /** Texts received during the measurement. */
  measured: number;
}

/** Everything a run shares between its senders and receivers. */
class Books {
  readonly logs: SendLog[];
  readonly receivers: Receiver[];
  readonly latency = new LatencyHistogram();
  measuring = false;
  corrupt = 0;
  #onProgress: () => void;

  constructor(senders: number, members: number, onProgress: () => void) {
    this.logs = Array.from({ length: senders }, () => new SendLog());
    this.receivers = Array.from({ length: members }, (_, i) => ({
      senderIndex: i < senders ? i : -1,
      total: 0,
      measured: 0,
    }));
    this.#onProgress = onProgress;
  }

  /** Texts in flight to the slowest receiver. */
  maxLag(): number {
    let all = 0;
    for (const log of this.logs) all += log.sent;
    let worst = 0;
    for (const receiver of this.receivers) {
      const expected = all - (receiver.senderIndex >= 0 ? this.logs[receiver.senderIndex].sent : 0);
      const lag = expected - receiver.total;
      if (lag > worst) worst = lag;
    }
    return worst;
  }

  /** A line arrived that cannot be attributed (ncat mangled it): it still counts for flow control. */
  garbled(receiver: Receiver): void {
    this.corrupt++;
    receiver.total++;
    this.#onProgress();
  }

  /** `count` texts from `sender`, starting at `firstSeq`, reached `receiver` now. */
  received(receiver: Receiver, sender: number, firstSeq: number, count: number, now: number): void {
    receiver.total += count;
    if (this.measuring) {
      receiver.measured += count;
      const times = this.logs[sender].times;
      // Texts of one closed-loop batch share a send time: record them in one go.
      let runStart = firstSeq;
      for (let seq = firstSeq + 1; seq <= firstSeq + count; seq++) {
        if (seq === firstSeq + count || times[seq] !== times[runStart]) {
          this.latency.record(now - times[runStart], seq - runStart);
          runStart = seq;
        }
      }
    }
    this.#onProgress();
  }
}

/** A sender: turns "send these sequence numbers" into traffic. */
interface SenderPort {
  send(seqs: number[], texts: string[]): void;
}

/** A connected room for one variant. */
interface Room {
  senders: SenderPort[];
  close(): void;
}

async function transportRoom(options: TrafficOptions, books: Books): Promise<Room> {
  const { server, members, senders } = options;
  const room = `fanout-${crypto.randomUUID().slice(0, 8)}`;
  const context = groupContext(room);
  const identities = Array.from({ length: members }, () => benchIdentity());
  const joined = allOrThrow(
    await inParallel(
      members,
      options.joinConcurrency ?? 16,
      (i) => SecureMember.join({ server, identity: identities[i], room, nick: `m${i}` }),
    ),
  );
  const senderOf = new Map<number, number>();
  for (let s = 0; s < senders; s++) senderOf.set(joined[s].memberId, s);
  joined.forEach((member, index) => {
    const receiver = books.receivers[index];
    member.onDeliver = (from, message) => {
      const sender = senderOf.get(from);
      if (sender === undefined) return;
      const batch = books.logs[sender].batches.get(peekGroupMessageHeader(message).iteration);
      if (batch) books.received(receiver, sender, batch[0], batch[1], performance.now());
    };
  });
  const ports = joined.slice(0, senders).map((member, s) =>
    transportSender(member, identities[s], books.logs[s], context)
  );
  return { senders: ports, close: () => joined.forEach((member) => member.close()) };
}

function transportSender(
  member: SecureMember,
  identity: Identity,
  log: SendLog,
  context: Uint8Array,
): SenderPort {
  const outbound = OutboundSenderKey.create({ identity, epoch: 1 });
  return {
    send(seqs, texts) {
      const iteration = outbound.iteration;
      const plaintext = encodeGroupContent({ time: Date.now(), texts });
      log.batches.set(iteration, [seqs[0], seqs.length]);
      member.publish(outbound.encrypt({ context, plaintext }));
    },
  };
}

async function e2eRoom(options: TrafficOptions, books: Books, maker: TextMaker): Promise<Room> {
  const { server, members, senders } = options;
  const room = `e2e-${crypto.randomUUID().slice(0, 8)}`;
  const clients = allOrThrow(
    await inParallel(members, options.joinConcurrency ?? 8, (i) => {
      const receiver = books.receivers[i];
      return ChatClient.connect({
        host: server.host,
        port: server.port,
        identity: benchIdentity(),
        room,
        nick: `m${i}`,
        verifyRelay: ({ fingerprint }) => {
          if (fingerprint !== server.fingerprint) throw new Error("wrong relay fingerprint");
        },
        onEvent: (event) => {
          if (event.type !== "message") return;
          const text = event.text;
          const sender = Number(text.slice(0, 2));
          const seq = Number(text.slice(2, HEADER_CHARS));
          if (
            !(sender < senders) || !(seq < books.logs[sender].sent) ||
            text !== maker.make(sender, seq)
          ) {
            books.garbled(receiver);
            return;
          }
          books.received(receiver, sender, seq, 1, performance.now());
        },
      });
    }),
  );
  // A sender shares its key with the members it knows of; a text it sends before it has heard
  // of a member is, by design, not readable by that member. Start once everyone knows everyone.
  const everyone = await waitUntil(
    () => clients.every((client) => client.members().length === members - 1),
    30_000,
  );
  if (!everyone) throw new Error("the e2e room's members did not all learn of each other");
  const ports: SenderPort[] = clients.slice(0, senders).map((client) => ({
    send(_seqs, texts) {
      client.send(texts).catch(() => {});
    },
  }));
  return {
    senders: ports,
    close: () => clients.forEach((client) => client.close().catch(() => {})),
  };
}

/** Parses ncat output: counts lines, and reads each line's header for its latency. */
class LineReader {
  #head = new Uint8Array(64);
  #headLength = 0;
  #books: Books;
  #receiver: Receiver;

  constructor(books: Books, receiver: Receiver) {
    this.#books = books;
    this.#receiver = receiver;
  }

  push(chunk: Uint8Array): void {
    const now = performance.now();
    let start = 0;
    while (start < chunk.length) {
      const end = chunk.indexOf(NEWLINE, start);
      if (end === -1) {
        this.#keepHead(chunk.subarray(start));
        return;
      }
      if (this.#headLength > 0) {
        this.#keepHead(chunk.subarray(start, end));
        this.#line(this.#head.subarray(0, this.#headLength), now);
        this.#headLength = 0;
      } else {
        this.#line(chunk.subarray(start, Math.min(end, start + this.#head.length)), now);
      }
      start = end + 1;
    }
  }

  #keepHead(part: Uint8Array): void {
    const room = this.#head.length - this.#headLength;
    if (room <= 0) return;
    const take = part.subarray(0, room);
    this.#head.set(take, this.#headLength);
    this.#headLength += take.length;
  }

  /** One whole line (only its first 64 bytes). */
  #line(head: Uint8Array, now: number): void {
    let at = 0;
    if (head[0] === 0x3c /* < */) {
      // ncat's sender tag "<userN> ", or an "<announce>" line that carries no text.
      if (head[1] === 0x61 /* a */) return;
      const close = head.indexOf(0x3e /* > */);
      if (close === -1) {
        this.#books.garbled(this.#receiver);
        return;
      }
      at = close + 2;
    }
    let sender = 0;
    let seq = 0;
    for (let i = 0; i < HEADER_CHARS; i++) {
      const digit = head[at + i] - 0x30;
      if (!(digit >= 0 && digit <= 9)) {
        this.#books.garbled(this.#receiver);
        return;
      }
      if (i < 2) sender = sender * 10 + digit;
      else seq = seq * 10 + digit;
    }
    if (sender >= this.#books.logs.length || seq >= this.#books.logs[sender].sent) {
      this.#books.garbled(this.#receiver);
      return;
    }
    this.#books.received(this.#receiver, sender, seq, 1, now);
  }
}

async function ncatRoom(options: TrafficOptions, books: Books): Promise<Room> {
  const { server, members, senders } = options;
  const joined = allOrThrow(
    await inParallel(members, options.joinConcurrency ?? 16, () => TlsMember.connect(server)),
  );
  // ncat announces each newcomer to everyone; let those lines pass before counting.
  await sleep(200);
  joined.forEach((member, index) => {
    const reader = new LineReader(books, books.receivers[index]);
    member.onData = (chunk) => reader.push(chunk);
  });
  const ports: SenderPort[] = joined.slice(0, senders).map((member) => ({
    send(_seqs, texts) {
      member.socket.write(texts.join("\n") + "\n");
    },
  }));
  return { senders: ports, close: () => joined.forEach((member) => member.close()) };
}

/**
 * Runs one traffic measurement.
 *
 * @example
 * ```ts
 * const result = await runTraffic({
 *   server, variant: "transport", members: 50, senders: 1, textBytes: 100,
 *   mode: { kind: "max", window: 2000 }, warmupMs: 500, durationMs: 3000,
 * });
 * ```
 */
export async function runTraffic(options: TrafficOptions): Promise<TrafficResult> {
  const { senders, members, mode } = options;
  if (senders < 1 || senders > 99 || members <= senders - 1 || members < 2) {
    throw new RangeError("need 1 to 99 senders and at least one other member");
  }
  const maker = new TextMaker(options.textBytes);
  let pumpScheduled = false;
  let running = false;
  const schedulePump = () => {
    if (!pumpScheduled && running && mode.kind === "max") {
      pumpScheduled = true;
      setImmediate(pump);
    }
  };
  const books = new Books(senders, members, schedulePump);

  const setupStart = performance.now();
  const room = options.variant === "transport"
    ? await transportRoom(options, books)
    : options.variant === "e2e"
    ? await e2eRoom(options, books, maker)
    : await ncatRoom(options, books);
  const setupMs = performance.now() - setupStart;

  const perBatch = Math.max(
    1,
    Math.min(MAX_BATCH_TEXTS, Math.floor(MAX_BATCH_TEXT_BYTES / (options.textBytes + 4))),
  );
  const sendTexts = (sender: number, count: number, time: (k: number) => number) => {
    const log = books.logs[sender];
    while (count > 0) {
      const n = Math.min(count, perBatch);
      const seqs: number[] = new Array(n);
      const texts: string[] = new Array(n);
      for (let k = 0; k < n; k++) {
        const seq = log.add(time(log.sent));
        seqs[k] = seq;
        texts[k] = maker.make(sender, seq);
      }
      room.senders[sender].send(seqs, texts);
      count -= n;
    }
  };

  // Closed loop: each sender keeps its share of `window` texts in flight.
  function pump(): void {
    pumpScheduled = false;
    if (!running || mode.kind !== "max") return;
    const allowed = mode.window - books.maxLag();
    if (allowed < Math.max(1, Math.floor(mode.window / 8))) return;
    const now = performance.now();
    const share = Math.max(1, Math.floor(allowed / senders));
    for (let s = 0; s < senders; s++) sendTexts(s, share, () => now);
  }

  // Paced: every millisecond each sender sends what is due, stamped with when it was due.
  let pacer: ReturnType<typeof setInterval> | undefined;
  const pacedStart = performance.now();
  const pace = () => {
    if (!running || mode.kind !== "paced") return;
    const rate = mode.textsPerSecondPerSender / 1000;
    const due = Math.floor((performance.now() - pacedStart) * rate);
    for (let s = 0; s < senders; s++) {
      const log = books.logs[s];
      if (due > log.sent) sendTexts(s, due - log.sent, (seq) => pacedStart + seq / rate);
    }
  };

  running = true;
  // A backstop for the closed loop, and the clock of the paced one.
  const ticker = setInterval(() => mode.kind === "max" ? pump() : pace(), 1);
  if (mode.kind === "paced") pacer = ticker;
  schedulePump();

  await sleep(options.warmupMs);
  const relayBefore = options.server.stats();
  const loadBefore = ownCpuSeconds();
  const busyBefore = machineBusySeconds();
  const sentBefore = books.logs.reduce((sum, log) => sum + log.sent, 0);
  books.latency.reset();
  for (const receiver of books.receivers) receiver.measured = 0;
  books.measuring = true;
  const start = performance.now();
  await sleep(options.durationMs);
  books.measuring = false;
  const elapsed = performance.now() - start;
  const relayAfter = options.server.stats();
  const loadAfter = ownCpuSeconds();
  const busyAfter = machineBusySeconds();
  const sentAfter = books.logs.reduce((sum, log) => sum + log.sent, 0);
  running = false;
  clearInterval(pacer ?? ticker);
  clearInterval(ticker);

  // Let what is in flight arrive before closing, so nothing is torn down mid-message.
  await waitUntil(() => books.maxLag() === 0, 2_000, 10);
  room.close();

  const deliveries = books.receivers.reduce((sum, receiver) => sum + receiver.measured, 0);
  const seconds = elapsed / 1000;
  const relayCpu = relayBefore && relayAfter
    ? (relayAfter.cpuSeconds - relayBefore.cpuSeconds) / seconds
    : null;
  const loadCpu = (loadAfter - loadBefore) / seconds;
  const otherCpu = busyBefore !== undefined && busyAfter !== undefined && relayCpu !== null
    ? Math.max(0, (busyAfter - busyBefore) / seconds - relayCpu - loadCpu)
    : null;
  return {
    variant: options.variant,
    members,
    senders,
    textBytes: options.textBytes,
    mode,
    deliveriesPerSecond: Math.round(deliveries / seconds),
    textsPerSecond: Math.round((sentAfter - sentBefore) / seconds),
    megabytesPerSecond: Math.round((deliveries * options.textBytes) / seconds / 1e4) / 100,
    latency: books.latency.summary(),
    relayCpu: relayCpu === null ? null : Math.round(relayCpu * 100) / 100,
    loadCpu: Math.round(loadCpu * 100) / 100,
    otherCpu: otherCpu === null ? null : Math.round(otherCpu * 100) / 100,
    relayRssBytes: relayAfter?.rssBytes ?? null,
    corruptTexts: books.corrupt,
    setupMs: Math.round(setupMs),
    durationMs: Math.round(elapsed),
  };
}
