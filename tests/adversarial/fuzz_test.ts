/**
 * Part 3 of the attack suite, first half: hostile clients and peers feed
 * every parser generated input (fast-check). Each parser must refuse what is
 * malformed with its documented error and nothing else, and must never
 * accept an altered signed or encrypted input. FUZZ_RUNS inputs per parser
 * (10,000 in `deno task test:adversarial:full`); FUZZ_SEED replays a run.
 *
 * Parsers: transport frames, the preamble and the three handshake messages,
 * relay records, pairwise envelopes and their contents, group messages and
 * their contents, announcements, the room session as a whole, identity and
 * public-key files, known_servers, known_peers and fingerprint lists, server
 * addresses and fingerprints, and the command line.
 */

import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { CommanderError } from "commander";
import {
  AnnouncementError,
  signAnnouncement,
  verifyAnnouncement,
} from "../../lib/e2e/announcement.ts";
import { DecodeError, utf8 } from "../../lib/core/bytes.ts";
import { decodePreamble, encodePreamble, TRANSPORT_PROTOCOL } from "../../lib/transport/channel.ts";
import {
  decodeGroupContent,
  decodePairwiseContent,
  encodeGroupContent,
  encodePairwiseContent,
} from "../../lib/e2e/content.ts";
import { ProtocolError } from "../../lib/core/errors.ts";
import { fingerprint, parseFingerprint } from "../../lib/identity/fingerprint.ts";
import { encodeFrame, FrameDecoder, FrameTooLargeError } from "../../lib/transport/framing.ts";
import { generateIdentity } from "../../lib/identity/identity.ts";
import {
  decodeIdentityFile,
  encodeIdentityFile,
  formatPublicKeyFile,
  IdentityFileError,
  openIdentityFile,
  parsePublicKeyFile,
} from "../../lib/identity/identity_file.ts";
import { generateKeyPair, HandshakeState, NoiseError } from "../../lib/crypto/noise.ts";
import {
  decodeRecord,
  encodeRecord,
  type MemberEntry,
  type RelayRecord,
} from "../../lib/transport/records.ts";
import { RoomSession } from "../../lib/e2e/room.ts";
import {
  groupContext,
  GroupMessageError,
  InboundSenderKey,
  OutboundSenderKey,
} from "../../lib/e2e/sender_keys.ts";
import {
  KnownPeers,
  KnownServers,
  loadFingerprintList,
  parseServerAddress,
  TrustStoreError,
} from "../../lib/identity/trust_store.ts";
import { buildProgram } from "../../cli/main.ts";
import { runCli, TempDirs } from "../support/cli_process.ts";
import { fuzzParser, mutationsOf, type Outcome, sameBytes } from "./support/fuzz.ts";
import { FUZZ_RUNS, FUZZ_SEED } from "./support/knobs.ts";
import { Attack } from "./support/scoreboard.ts";

console.log(`fuzzing: ${FUZZ_RUNS} inputs per parser, seed ${FUZZ_SEED} (set FUZZ_SEED to replay)`);

const ROOM = "fuzz";

async function fuzzTest<T>(
  name: string,
  options: Omit<Parameters<typeof fuzzParser<T>>[0], "attack">,
): Promise<void> {
  const attack = new Attack(`fuzz: ${name}`);
  try {
    await fuzzParser({ attack, ...options });
  } finally {
    attack.save();
  }
  assert.ok(attack.clean, attack.summary());
}

// ---------------------------------------------------------------- transport

Deno.test("fuzz: transport frames (2- and 4-byte length prefixes)", async () => {
  await fuzzTest("transport frames", {
    inputs: fc.record({
      prefix: fc.constantFrom(2 as const, 4 as const),
      limit: fc.constantFrom(0, 1, 100, 65535, 262144),
      frames: fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 8 }),
      junk: fc.array(fc.uint8Array({ maxLength: 80 }), { maxLength: 6 }),
      cuts: fc.array(fc.nat(2000), { maxLength: 12 }),
      garbage: fc.boolean(),
    }),
    parse: ({ prefix, limit, frames, junk, cuts, garbage }) => {
      const decoder = new FrameDecoder({ prefixBytes: prefix, maxFrameBytes: limit });
      // Either well-formed frames cut at arbitrary points, or arbitrary bytes.
      const parts = garbage ? junk : frames.map((frame) => encodeFrame(frame, prefix));
      const stream = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
      let offset = 0;
      for (const part of parts) {
        stream.set(part, offset);
        offset += part.length;
      }
      const points = [...new Set(cuts.map((cut) => cut % (stream.length + 1)))].sort((a, b) =>
        a - b
      );
      const out: Uint8Array[] = [];
      let from = 0;
      for (const point of [...points, stream.length]) {
        // Copies: the decoder may return views into the chunk it was given.
        for (const frame of decoder.push(stream.slice(from, point))) out.push(frame.slice());
        from = point;
      }
      for (const frame of out) if (frame.length > limit) return { forged: "frame over the limit" };
      if (!garbage) {
        const fits = frames.every((frame) => frame.length <= limit);
        if (
          fits && (out.length !== frames.length || !out.every((f, i) => sameBytes(f, frames[i])))
        ) {
          return { forged: "frames changed in transit through the decoder" };
        }
      }
      return "accepted";
    },
    refusal: (error) => error instanceof FrameTooLargeError,
  });
});

/** A genuine handshake with fixed keys, so each run can replay it up to the fuzzed message. */
const HANDSHAKE = (() => {
  const initiatorStatic = generateKeyPair("25519");
  const responderStatic = generateKeyPair("25519");
  const initiatorEphemeral = generateKeyPair("25519");
  const responderEphemeral = generateKeyPair("25519");
  const prologue = new Uint8Array([...encodePreamble(), ...encodePreamble()]);
  const initiator = () =>
    new HandshakeState({
      protocolName: TRANSPORT_PROTOCOL,
      initiator: true,
      prologue,
      staticKeyPair: initiatorStatic,
      ephemeralKeyPair: initiatorEphemeral,
    });
  const responder = () =>
    new HandshakeState({
      protocolName: TRANSPORT_PROTOCOL,
      initiator: false,
      prologue,
      staticKeyPair: responderStatic,
      ephemeralKeyPair: responderEphemeral,
    });
  const i = initiator();
  const r = responder();
  const message1 = i.writeMessage(new Uint8Array(0));
  r.readMessage(message1);
  const message2 = r.writeMessage(new Uint8Array(96).fill(7));
  i.readMessage(message2);
  const message3 = i.writeMessage(new Uint8Array(96).fill(9));
  r.readMessage(message3);
  return { initiator, responder, message1, message2, message3 };
})();

Deno.test("fuzz: preamble and handshake messages", async () => {
  const { initiator, responder, message1, message2, message3 } = HANDSHAKE;
  await fuzzTest("preamble and handshake messages", {
    inputs: fc.oneof(
      fc.record({ step: fc.constant(0), bytes: mutationsOf([encodePreamble()]) }),
      fc.record({ step: fc.constant(1), bytes: mutationsOf([message1]) }),
      fc.record({ step: fc.constant(2), bytes: mutationsOf([message2]) }),
      fc.record({ step: fc.constant(3), bytes: mutationsOf([message3]) }),
    ),
    parse: ({ step, bytes }): Outcome => {
      if (step === 0) {
        const version = decodePreamble(bytes);
        if (!sameBytes(bytes.subarray(0, 7), encodePreamble().subarray(0, 7))) {
          return { forged: "a preamble without the magic was accepted" };
        }
        return version === 1 ? "accepted" : "refused";
      }
      if (step === 1) {
        // Message 1 carries no authentication (an ephemeral key and a cleartext
        // payload); the relay refuses a payload, and a wrong key fails message 3.
        const payload = responder().readMessage(bytes);
        return payload.length === 0 ? "accepted" : "refused";
      }
      const state = initiator();
      state.writeMessage(new Uint8Array(0));
      if (step === 2) {
        state.readMessage(bytes);
        return sameBytes(bytes, message2) ? "accepted" : { forged: "an altered message 2 passed" };
      }
      const relay = responder();
      relay.readMessage(message1);
      relay.writeMessage(new Uint8Array(96).fill(7));
      relay.readMessage(bytes);
      return sameBytes(bytes, message3) ? "accepted" : { forged: "an altered message 3 passed" };
    },
    refusal: (error) => error instanceof NoiseError || error instanceof ProtocolError,
  });
});

// ------------------------------------------------------------------ records

const u32 = fc.nat({ max: 0xffffffff });
const seq = fc.oneof(fc.nat({ max: 1000 }), fc.constant(Number.MAX_SAFE_INTEGER));

const memberEntry: fc.Arbitrary<MemberEntry> = fc.record({
  memberId: u32,
  identityPublicKey: fc.uint8Array({ minLength: 32, maxLength: 32 }),
  online: fc.boolean(),
  announcement: fc.uint8Array({ maxLength: 200 }),
});

const relayRecord: fc.Arbitrary<RelayRecord> = fc.oneof(
  fc.record({
    type: fc.constant("join" as const),
    announcement: fc.uint8Array({ maxLength: 200 }),
  }),
  fc.record({
    type: fc.constant("publish" as const),
    id: u32,
    message: fc.uint8Array({ maxLength: 300 }),
  }),
  fc.record({
    type: fc.constant("direct" as const),
    to: u32,
    envelope: fc.uint8Array({ maxLength: 300 }),
  }),
  fc.record({
    type: fc.constant("welcome" as const),
    memberId: u32,
    durable: fc.boolean(),
    head: seq,
    members: fc.array(memberEntry, { maxLength: 4 }),
  }),
  fc.record({ type: fc.constant("memberOnline" as const), member: memberEntry }),
  fc.record({
    type: fc.constant("memberOffline" as const),
    memberId: u32,
    reason: fc.constantFrom(0, 1, 2),
  }),
  fc.record({
    type: fc.constant("deliver" as const),
    seq,
    from: u32,
    message: fc.uint8Array({ maxLength: 300 }),
  }),
  fc.record({
    type: fc.constant("directFrom" as const),
    from: u32,
    envelope: fc.uint8Array({ maxLength: 300 }),
  }),
  fc.record({
    type: fc.constant("ack" as const),
    id: u32,
    seq,
    online: u32,
    stored: u32,
    refused: u32,
  }),
  fc.record({
    type: fc.constant("error" as const),
    code: fc.nat({ max: 0xffff }),
    message: fc.string({ unit: "grapheme-ascii", maxLength: 100 }),
  }),
);

/** The records durable rooms added (PROTOCOL.md, relay records). */
const durableRecord: fc.Arbitrary<RelayRecord> = fc.oneof(
  fc.record({
    type: fc.constant("storeFor" as const),
    id: u32,
    to: u32,
    envelope: fc.uint8Array({ maxLength: 300 }),
  }),
  fc.record({ type: fc.constant("getPrekeys" as const), id: u32, memberId: u32 }),
  fc.record({
    type: fc.constant("putPrekeys" as const),
    signedPrekey: fc.uint8Array({ maxLength: 80 }),
    oneTimePrekeys: fc.array(fc.uint8Array({ maxLength: 40 }), { maxLength: 5 }),
  }),
  fc.record({ type: fc.constant("acknowledge" as const), seq }),
  fc.record({ type: fc.constant("leave" as const) }),
  fc.record({
    type: fc.constant("rename" as const),
    announcement: fc.uint8Array({ maxLength: 200 }),
  }),
  fc.record({ type: fc.constant("watchRead" as const), id: u32, seq }),
  fc.record({
    type: fc.constant("prekeys" as const),
    id: u32,
    memberId: u32,
    signedPrekey: fc.uint8Array({ maxLength: 80 }),
    oneTimePrekey: fc.uint8Array({ maxLength: 80 }),
  }),
  fc.record({ type: fc.constant("prekeyCount" as const), count: u32 }),
  fc.record({
    type: fc.constant("storedEnvelope" as const),
    seq,
    from: u32,
    envelope: fc.uint8Array({ maxLength: 300 }),
  }),
  fc.record({ type: fc.constant("caughtUp" as const), seq }),
  fc.tuple(seq, seq, fc.constantFrom(1, 2)).map(([a, b, reason]) => ({
    type: "gap" as const,
    first: Math.min(a, b),
    last: Math.max(a, b),
    reason,
  })),
  fc.record({ type: fc.constant("renamed" as const), member: memberEntry }),
  fc.record({ type: fc.constant("read" as const), id: u32, seq }),
);

/** Round trips of `records`, and bytes near their encodings or random, through the decoder. */
function recordInputs(records: fc.Arbitrary<RelayRecord>) {
  return fc.oneof(
    fc.record({
      kind: fc.constant("round trip"),
      record: records,
      bytes: fc.constant(new Uint8Array(0)),
    }),
    fc.record({
      kind: fc.constant("bytes"),
      record: fc.constant(undefined),
      bytes: fc.oneof(
        fc.uint8Array({ maxLength: 400 }),
        records.chain((record) => mutationsOf([encodeRecord(record)])),
      ),
    }),
  );
}

function parseRecordInput(
  { kind, record, bytes }: { kind: string; record?: RelayRecord; bytes: Uint8Array },
): Outcome {
  if (kind === "round trip") {
    const encoded = encodeRecord(record!);
    const decoded = decodeRecord(encoded);
    return sameBytes(encodeRecord(decoded), encoded)
      ? "accepted"
      : { forged: "a record changed across encode and decode" };
  }
  const decoded = decodeRecord(bytes);
  // Whatever decodes must be exactly what the bytes say: re-encoding gives them back.
  return sameBytes(encodeRecord(decoded), bytes)
    ? "accepted"
    : { forged: "a record decoded from bytes it does not encode to" };
}

Deno.test("fuzz: relay records", async () => {
  await fuzzTest("relay records", {
    inputs: recordInputs(relayRecord),
    parse: parseRecordInput,
    refusal: (error) => error instanceof DecodeError,
  });
});

Deno.test("fuzz: durable-room records", async () => {
  await fuzzTest("durable-room records", {
    inputs: recordInputs(durableRecord),
    parse: parseRecordInput,
    refusal: (error) => error instanceof DecodeError,
  });
});

// ------------------------------------------------------------- end to end

const ALICE = generateIdentity();
const BOB = generateIdentity();
const ALICE_PAIRWISE = generateKeyPair("25519");

Deno.test("fuzz: pairwise contents", async () => {
  const outbound = OutboundSenderKey.create({ identity: ALICE, epoch: 3 });
  const contents = [
    encodePairwiseContent({ kind: "sender-key", state: outbound.exportState() }),
    encodePairwiseContent({ kind: "direct-text", time: 1_700_000_000_000, text: "only for bob ✓" }),
    encodePairwiseContent({ kind: "confirm" }),
  ];
  await fuzzTest("pairwise contents", {
    inputs: fc.oneof(mutationsOf(contents), fc.uint8Array({ maxLength: 120 })),
    parse: (bytes) => {
      const content = decodePairwiseContent(bytes);
      return sameBytes(encodePairwiseContent(content), bytes)
        ? "accepted"
        : { forged: "pairwise content decoded from bytes it does not encode to" };
    },
    refusal: (error) => error instanceof DecodeError,
  });
});

Deno.test("fuzz: group messages and their contents", async () => {
  const outbound = OutboundSenderKey.create({ identity: ALICE, epoch: 1 });
  const state = outbound.exportState();
  const context = groupContext(ROOM);
  const plaintexts = [
    encodeGroupContent({ time: 1, texts: ["hello"] }),
    encodeGroupContent({ time: 2, texts: ["a", "b", "ünïcödé ✓"] }),
  ];
  const messages = plaintexts.map((plaintext) => outbound.encrypt({ context, plaintext }).slice());
  await fuzzTest("group messages", {
    inputs: mutationsOf(messages),
    parse: (message): Outcome => {
      const inbound = new InboundSenderKey({ senderPublicKey: ALICE.publicKey, state });
      inbound.decrypt({ context, message });
      return messages.some((genuine) => sameBytes(genuine, message))
        ? "accepted"
        : { forged: "an altered group message was accepted" };
    },
    refusal: (error) => error instanceof GroupMessageError,
  });
  await fuzzTest("group contents", {
    inputs: fc.oneof(mutationsOf(plaintexts), fc.uint8Array({ maxLength: 120 })),
    parse: (bytes) => {
      const content = decodeGroupContent(bytes);
      return sameBytes(encodeGroupContent(content), bytes)
        ? "accepted"
        : { forged: "group content decoded from bytes it does not encode to" };
    },
    refusal: (error) => error instanceof DecodeError,
  });
});

Deno.test("fuzz: announcements", async () => {
  const announcements = ["alice", "a-much-longer-nick-with-ünïcödé"].map((nick) =>
    signAnnouncement({
      identity: ALICE,
      announcement: { room: ROOM, nick, pairwisePublicKey: ALICE_PAIRWISE.publicKey, time: 5 },
    })
  );
  await fuzzTest("announcements", {
    inputs: mutationsOf(announcements),
    parse: (bytes): Outcome => {
      verifyAnnouncement({ identityPublicKey: ALICE.publicKey, bytes });
      return announcements.some((genuine) => sameBytes(genuine, bytes))
        ? "accepted"
        : { forged: "an altered announcement verified" };
    },
    refusal: (error) => error instanceof AnnouncementError,
  });
});

/**
 * Runs alice's and bob's room sessions against each other until neither has
 * anything to send, as an honest relay would, except that the first pairwise
 * data message from alice (her sender key) is held back and returned.
 */
function pairUp(
  alice: RoomSession,
  bob: RoomSession,
  aliceEntry: MemberEntry,
  bobEntry: MemberEntry,
) {
  const queue: { to: "alice" | "bob"; record: RelayRecord }[] = [];
  let heldKey: RelayRecord | undefined;
  const route = (from: "alice" | "bob", records: RelayRecord[]) => {
    for (const record of records) {
      if (record.type !== "direct") continue;
      const forwarded: RelayRecord = {
        type: "directFrom",
        from: from === "alice" ? aliceEntry.memberId : bobEntry.memberId,
        envelope: record.envelope,
      };
      if (from === "alice" && heldKey === undefined && record.envelope[0] === 3) {
        heldKey = forwarded;
        continue;
      }
      queue.push({ to: from === "alice" ? "bob" : "alice", record: forwarded });
    }
  };
  route(
    "alice",
    alice.handle({
      type: "welcome",
      memberId: aliceEntry.memberId,
      durable: false,
      head: 0,
      members: [],
    }).send,
  );
  route("alice", alice.handle({ type: "memberOnline", member: bobEntry }).send);
  route(
    "bob",
    bob.handle({
      type: "welcome",
      memberId: bobEntry.memberId,
      durable: false,
      head: 0,
      members: [aliceEntry],
    }).send,
  );
  for (let guard = 0; guard < 20 && queue.length > 0; guard++) {
    const { to, record } = queue.shift()!;
    if (to === "alice") route("alice", alice.handle(record).send);
    else route("bob", bob.handle(record).send);
  }
  assert.ok(heldKey !== undefined, "alice sent her key");
  return heldKey;
}

/**
 * The whole end-to-end state machine: bob's room session, paired with alice's
 * (a real pairwise handshake), gets a sequence of records that mixes alice's
 * genuine ones (her held-back sender key, her messages, her announcement,
 * also replayed, reordered, relabelled) with altered and invented ones. It
 * must never throw, and may show only alice's genuine texts, each once, in
 * order.
 */
Deno.test("fuzz: room session (record sequences from a hostile relay)", async () => {
  const texts = ["one", "two", "three", "four"];
  const aliceFingerprint = fingerprint(ALICE.publicKey);
  const step = fc.oneof(
    {
      weight: 3,
      arbitrary: fc.constantFrom(
        "welcome",
        "key",
        "joined",
        "left",
        ...texts.map((_, i) => `m${i}`),
      ),
    },
    { weight: 1, arbitrary: relayRecord },
    {
      weight: 2,
      arbitrary: fc.record({
        mutate: fc.constantFrom(...texts.map((_, i) => i), -1, -2),
        at: fc.nat(400),
        bit: fc.nat(7),
        from: fc.constantFrom(1, 2, 7),
      }),
    },
  );
  // A handshake costs a few milliseconds (X-Wing): this row runs a fifth as many cases.
  await fuzzTest("room session", {
    runs: Math.max(50, Math.floor(FUZZ_RUNS / 5)),
    inputs: fc.array(step, { minLength: 1, maxLength: 14 }),
    parse: (steps): Outcome => {
      const alice = new RoomSession({ identity: ALICE, room: ROOM, nick: "alice", now: () => 1 });
      const bob = new RoomSession({ identity: BOB, room: ROOM, nick: "bob", now: () => 1 });
      const aliceEntry: MemberEntry = {
        memberId: 1,
        identityPublicKey: ALICE.publicKey,
        online: true,
        announcement: alice.announcement,
      };
      const bobEntry: MemberEntry = {
        memberId: 2,
        identityPublicKey: BOB.publicKey,
        online: true,
        announcement: bob.announcement,
      };
      const key = pairUp(alice, bob, aliceEntry, bobEntry);
      const messages = texts.map((text) => alice.encryptTexts([text]).message.slice());
      const keyBytes = key.type === "directFrom" ? key.envelope : new Uint8Array();
      const genuine: Record<string, RelayRecord> = {
        welcome: { type: "welcome", memberId: 2, durable: false, head: 0, members: [aliceEntry] },
        key,
        joined: { type: "memberOnline", member: aliceEntry },
        left: { type: "memberOffline", memberId: 1, reason: 1 },
      };
      messages.forEach((message, i) =>
        genuine[`m${i}`] = { type: "deliver", seq: 0, from: 1, message }
      );
      const shown: string[] = [];
      let warned = false;
      for (const item of steps) {
        let record: RelayRecord;
        if (typeof item === "string") record = genuine[item];
        else if ("type" in item) record = item;
        else {
          const base = item.mutate >= 0
            ? messages[item.mutate]
            : item.mutate === -1
            ? keyBytes
            : alice.announcement;
          const bytes = base.slice();
          bytes[item.at % bytes.length] ^= 1 << item.bit;
          record = item.mutate >= 0
            ? { type: "deliver", seq: 0, from: item.from, message: bytes }
            : item.mutate === -1
            ? { type: "directFrom", from: item.from, envelope: bytes }
            : {
              type: "memberOnline",
              member: { ...aliceEntry, memberId: item.from, announcement: bytes },
            };
        }
        for (const event of bob.handle(record).events) {
          if (event.type === "warning") warned = true;
          if (event.type !== "message") continue;
          if (event.from.fingerprint !== aliceFingerprint || !texts.includes(event.text)) {
            return { forged: `shown: ${JSON.stringify(event.text)} from ${event.from.nick}` };
          }
          if (shown.includes(event.text)) return { forged: `shown twice: ${event.text}` };
          if (shown.length > 0 && texts.indexOf(event.text) < texts.indexOf(shown.at(-1)!)) {
            return { forged: `shown out of order: ${event.text}` };
          }
          shown.push(event.text);
        }
      }
      // "Detected": the session warned about something in the sequence.
      return warned ? "refused" : "accepted";
    },
    // The session handles every record itself; any exception is a crash.
    refusal: () => false,
  });
});

// ------------------------------------------------------------ files on disk

Deno.test("fuzz: identity and public-key files", async () => {
  const identity = generateIdentity();
  const passphrase = "fuzzing passphrase";
  const encrypted = await encodeIdentityFile({ identity, passphrase, logN: 10 });
  const clear = await encodeIdentityFile({ identity });
  const genuine = decodeIdentityFile({ text: encrypted, path: "x" });
  const jsonMutation = (text: string) =>
    fc.record({
      path: fc.constantFrom(
        "type",
        "version",
        "publicKey",
        "encryption",
        "secretKey",
        "encryption.kdf",
        "encryption.logN",
        "encryption.r",
        "encryption.p",
        "encryption.salt",
        "encryption.cipher",
        "encryption.nonce",
        "extra",
        "encryption.extra",
      ),
      action: fc.constantFrom("delete", "set"),
      value: fc.jsonValue({ maxDepth: 2 }),
      indent: fc.constantFrom(0, 1, 2, "\t"),
    }).map(({ path, action, value, indent }) => {
      const object = JSON.parse(text);
      const [head, tail] = path.split(".");
      const target = tail === undefined ? object : object[head];
      const key = tail ?? head;
      if (target !== null && typeof target === "object") {
        if (action === "delete") delete target[key];
        else target[key] = value;
      }
      return JSON.stringify(object, null, indent);
    });
  const textMutation = (text: string) =>
    mutationsOf([utf8(text)]).map((bytes) => new TextDecoder().decode(bytes));
  await fuzzTest("identity files", {
    inputs: fc.oneof(
      jsonMutation(encrypted),
      jsonMutation(clear),
      textMutation(encrypted),
      textMutation(clear),
      fc.string({ unit: "binary", maxLength: 200 }),
      fc.json({ maxDepth: 3 }),
    ),
    parse: async (text): Promise<Outcome> => {
      const contents = decodeIdentityFile({ text, path: "fuzzed" });
      // Costly scrypt settings are bound by the AEAD; skip opening them to keep runs fast.
      if (contents.encryption === null || contents.encryption.logN > 12) return "accepted";
      const opened = await openIdentityFile({
        contents,
        path: "fuzzed",
        passphrase: () => Promise.resolve(passphrase),
      });
      const same = sameBytes(contents.publicKey, genuine.publicKey) &&
        sameBytes(contents.secretKey, genuine.secretKey) &&
        sameBytes(contents.encryption.salt, genuine.encryption!.salt) &&
        sameBytes(contents.encryption.nonce, genuine.encryption!.nonce) &&
        contents.encryption.logN === genuine.encryption!.logN &&
        sameBytes(opened.publicKey, identity.publicKey);
      return same ? "accepted" : { forged: "a tampered encrypted identity file opened" };
    },
    refusal: (error) => error instanceof IdentityFileError,
  });
  const publicKeyFile = formatPublicKeyFile(identity.publicKey);
  await fuzzTest("public-key files", {
    inputs: fc.oneof(textMutation(publicKeyFile), fc.string({ unit: "binary", maxLength: 120 })),
    parse: (text): Outcome => {
      const key = parsePublicKeyFile({ text, path: "fuzzed.pub" });
      return sameBytes(key, identity.publicKey)
        ? "accepted"
        : { forged: "a public-key file with a mismatched fingerprint was accepted" };
    },
    refusal: (error) => error instanceof IdentityFileError,
  });
});

/** Lines that are almost right, right, or nonsense, for the trust files. */
function trustFileText(kind: "servers" | "peers" | "list"): fc.Arbitrary<string> {
  const fp = fc.constant(null).map(() => generateIdentity().fingerprint);
  const fps = fc.constantFrom(...Array.from({ length: 4 }, () => generateIdentity().fingerprint));
  const blank = fc.constantFrom(" ", "\t", "  \t");
  const address = fc.oneof(
    fc.constantFrom(
      "127.0.0.1:7878",
      "[::1]:7878",
      "::1:7878",
      "relay.example:1",
      "Relay.EXAMPLE:65535",
      "127.1:07878",
      "[0:0::1]:7878",
    ),
    fc.string({ unit: "grapheme-ascii", maxLength: 20 }),
  );
  const nick = fc.oneof(
    fc.constantFrom("alice", "bob", "ünïcödé", "#hash", "a".repeat(256)),
    fc.string({ unit: "grapheme", maxLength: 12 }),
  );
  const entry = kind === "servers"
    ? fc.tuple(address, blank, fps, fc.constantFrom("", " # comment", "\textra")).map((p) =>
      p.join("")
    )
    : kind === "peers"
    ? fc.tuple(nick, blank, fps, fc.constantFrom("", " verified", " verified # ok", " trusted"))
      .map((p) => p.join(""))
    : fc.tuple(fps, fc.constantFrom("", " alice (laptop)", "\tbob")).map((p) => p.join(""));
  const line = fc.oneof(
    { weight: 4, arbitrary: entry },
    { weight: 1, arbitrary: fc.constantFrom("", "# comment", "   # indented", " \t ") },
    { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 60 }) },
    { weight: 1, arbitrary: fp.map((f) => f.toUpperCase().replaceAll("-", "")) },
    { weight: 1, arbitrary: entry.chain((e) => fc.nat(e.length).map((n) => e.slice(0, n))) },
  );
  return fc.tuple(fc.array(line, { maxLength: 8 }), fc.constantFrom("\n", "\r\n"), fc.boolean())
    .map(([lines, eol, final]) => lines.join(eol) + (final && lines.length > 0 ? eol : ""));
}

Deno.test("fuzz: known_servers, known_peers and fingerprint lists", async () => {
  const dir = mkdtempSync(join(tmpdir(), "securechat-fuzz-"));
  const newcomer = generateIdentity().fingerprint;
  try {
    await fuzzTest("known_servers", {
      inputs: fc.oneof(trustFileText("servers"), fc.uint8Array({ maxLength: 80 })),
      parse: async (content): Promise<Outcome> => {
        const path = join(dir, "known_servers");
        writeFileSync(path, content);
        const known = await KnownServers.load(path);
        const before = known.entries();
        // An update keeps every other entry: nothing is dropped or rewritten silently.
        await known.remember("fuzz.example:1", newcomer);
        const after = (await KnownServers.load(path)).entries();
        const kept = before.every(([address, fp]) =>
          address === "fuzz.example:1" || after.some(([a, f]) => a === address && f === fp)
        );
        return kept && after.length >= before.length
          ? "accepted"
          : { forged: "an update dropped or changed another entry" };
      },
      refusal: (error) => error instanceof TrustStoreError,
    });
    await fuzzTest("known_peers", {
      inputs: fc.oneof(trustFileText("peers"), fc.uint8Array({ maxLength: 80 })),
      parse: async (content): Promise<Outcome> => {
        const path = join(dir, "known_peers");
        writeFileSync(path, content);
        const peers = await KnownPeers.load(path);
        const before = peers.entries();
        await peers.remember("fuzz-newcomer", newcomer);
        const after = (await KnownPeers.load(path)).entries();
        const kept = before.every(([nick, entry]) =>
          nick === "fuzz-newcomer" ||
          after.some(([n, e]) =>
            n === nick && e.fingerprint === entry.fingerprint && e.verified === entry.verified
          )
        );
        return kept ? "accepted" : { forged: "an update dropped or changed another entry" };
      },
      refusal: (error) => error instanceof TrustStoreError,
    });
    await fuzzTest("fingerprint lists (--trust, --allow)", {
      inputs: fc.oneof(trustFileText("list"), fc.uint8Array({ maxLength: 80 })),
      parse: async (content): Promise<Outcome> => {
        const path = join(dir, "list");
        writeFileSync(path, content);
        const list = await loadFingerprintList(path);
        for (const fp of list) {
          if (parseFingerprint(fp) !== fp) return { forged: `non-canonical fingerprint ${fp}` };
        }
        return "accepted";
      },
      refusal: (error) => error instanceof TrustStoreError,
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

Deno.test("fuzz: server addresses and fingerprints as typed", async () => {
  await fuzzTest("server addresses and fingerprints", {
    inputs: fc.oneof(
      fc.string({ unit: "binary", maxLength: 60 }),
      fc.string({ unit: "grapheme-ascii", maxLength: 60 }),
      fc.stringMatching(/^\[?[0-9a-fA-F:.]{0,20}\]?:[0-9]{0,6}$/),
      fc.constant(null).map(() => generateIdentity().fingerprint).chain((fp) =>
        mutationsOf([utf8(fp)]).map((bytes) => new TextDecoder().decode(bytes))
      ),
    ),
    parse: (text): Outcome => {
      let refused = 0;
      try {
        const address = parseServerAddress(text);
        if (!(address.port >= 1 && address.port <= 65535)) {
          return { forged: `port ${address.port}` };
        }
      } catch (error) {
        if (!(error instanceof SyntaxError)) throw error;
        refused++;
      }
      try {
        const fp = parseFingerprint(text);
        if (parseFingerprint(fp) !== fp) return { forged: "non-canonical fingerprint" };
      } catch (error) {
        if (!(error instanceof SyntaxError)) throw error;
        refused++;
      }
      return refused > 0 ? "refused" : "accepted";
    },
    refusal: () => false,
  });
});

// ------------------------------------------------------------- command line

const WORDS = [
  "keygen",
  "fingerprint",
  "serve",
  "join",
  "--room",
  "--nick",
  "--listen",
  "--identity",
  "--json",
  "--stay",
  "--count",
  "--max-connections",
  "--max-connections-per-address",
  "--max-pending-handshakes",
  "--handshake-timeout",
  "--max-queue",
  "--rate-limit",
  "--rate-burst",
  "--server-fingerprint",
  "--trust",
  "--allow",
  "--force",
  "--no-passphrase",
  "--out",
  "-h",
  "--help",
  "-V",
  "--version",
  "--",
  "-",
  "0",
  "1",
  "-1",
  "65536",
  "1e3",
  "0x10",
  "127.0.0.1:0",
  "127.0.0.1:7878",
  "[::1]:7878",
  "host:",
  ":1",
  "lobby",
  "a b",
  "\u001b[2J",
  "ünïcödé",
];

/** The program with every action replaced: parsing only, no files, sockets or output. */
function parseOnlyProgram() {
  const program = buildProgram();
  const silent = { writeOut: () => {}, writeErr: () => {}, outputError: () => {} };
  program.configureOutput(silent);
  for (const command of program.commands) {
    command.configureOutput(silent);
    command.action(() => {});
  }
  return program;
}

Deno.test("fuzz: command-line arguments", async () => {
  const argv = fc.array(
    fc.oneof(
      { weight: 4, arbitrary: fc.constantFrom(...WORDS) },
      { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 20 }) },
      { weight: 1, arbitrary: fc.constant(null).map(() => generateIdentity().fingerprint) },
    ),
    { maxLength: 8 },
  );
  const refused: string[][] = [];
  await fuzzTest("command-line arguments", {
    inputs: argv,
    parse: async (args): Promise<Outcome> => {
      try {
        await parseOnlyProgram().parseAsync(args, { from: "user" });
        return "accepted";
      } catch (error) {
        if (error instanceof CommanderError && error.exitCode !== 0 && refused.length < 8) {
          if (args.every((arg) => !arg.includes("\0"))) refused.push(args);
        }
        throw error;
      }
    },
    refusal: (error) => error instanceof CommanderError,
  });
  // A few of the refused command lines, run for real: a usage error (exit 2) on one line.
  const attack = new Attack("fuzz: command-line arguments (real process)");
  const dirs = new TempDirs();
  try {
    for (const args of refused) {
      attack.attempt();
      const result = await runCli(args, { home: dirs.make() });
      if (result.code === 2) attack.detected();
      else {attack.crash(
          `exit ${result.code} for ${JSON.stringify(args)}: ${result.stderr.slice(0, 200)}`,
        );}
      if (/\n\s+at /.test(result.stderr)) attack.crash(`stack trace for ${JSON.stringify(args)}`);
    }
  } finally {
    attack.save();
    dirs.cleanup();
  }
  assert.ok(attack.clean, attack.summary());
});
