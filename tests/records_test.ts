import assert from "node:assert/strict";
import { ByteWriter, concat, DecodeError, toHex, utf8 } from "../lib/core/bytes.ts";
import {
  decodeRecord,
  encodeRecord,
  type MemberEntry,
  RecordType,
  type RelayRecord,
} from "../lib/transport/records.ts";
import { seededRandom } from "./support/in_process.ts";

function bytes(length: number, fill: number): Uint8Array {
  return new Uint8Array(length).fill(fill);
}

function member(memberId: number, announcementBytes: number, online = true): MemberEntry {
  return {
    memberId,
    identityPublicKey: bytes(32, memberId & 0xff),
    online,
    announcement: bytes(announcementBytes, 0xa0),
  };
}

const MAX_SEQ = Number.MAX_SAFE_INTEGER;

const SAMPLES: RelayRecord[] = [
  { type: "join", announcement: bytes(170, 1) },
  { type: "join", announcement: new Uint8Array(0) },
  { type: "publish", id: 0xffffffff, message: bytes(1000, 2) },
  { type: "publish", id: 0, message: new Uint8Array(0) },
  { type: "direct", to: 7, envelope: bytes(120, 3) },
  { type: "storeFor", id: 9, to: 0xffffffff, envelope: bytes(1300, 6) },
  { type: "storeFor", id: 0, to: 1, envelope: new Uint8Array(0) },
  { type: "getPrekeys", id: 3, memberId: 0xfffffffe },
  { type: "putPrekeys", signedPrekey: bytes(1293, 7), oneTimePrekeys: [] },
  {
    type: "putPrekeys",
    signedPrekey: new Uint8Array(0),
    oneTimePrekeys: [bytes(1293, 8), bytes(1293, 9), new Uint8Array(0)],
  },
  { type: "acknowledge", seq: 0 },
  { type: "acknowledge", seq: MAX_SEQ },
  { type: "leave" },
  { type: "rename", announcement: bytes(180, 10) },
  { type: "watchRead", id: 5, seq: 123456789012 },
  { type: "welcome", memberId: 9, durable: false, head: 0, members: [] },
  {
    type: "welcome",
    memberId: 9,
    durable: true,
    head: MAX_SEQ,
    members: [member(1, 170), member(2, 0, false), member(0xffffffff, 300)],
  },
  { type: "memberOnline", member: member(5, 200) },
  { type: "memberOffline", memberId: 123456, reason: 0 },
  { type: "memberOffline", memberId: 1, reason: 1 },
  { type: "memberOffline", memberId: 2, reason: 2 },
  { type: "deliver", seq: 0, from: 3, message: bytes(65536, 4) },
  { type: "deliver", seq: 77, from: 3, message: new Uint8Array(0) },
  { type: "directFrom", from: 4, envelope: bytes(90, 5) },
  { type: "ack", id: 77, seq: 0, online: 0, stored: 0, refused: 0 },
  { type: "ack", id: 1, seq: MAX_SEQ, online: 0xffffffff, stored: 3, refused: 2 },
  { type: "error", code: 3, message: 'nick "bob" is taken in room "ops"' },
  { type: "error", code: 0xffff, message: "" },
  { type: "directFailed", to: 42, reason: 1 },
  {
    type: "prekeys",
    id: 4,
    memberId: 2,
    signedPrekey: bytes(1293, 11),
    oneTimePrekey: bytes(1293, 12),
  },
  {
    type: "prekeys",
    id: 4,
    memberId: 2,
    signedPrekey: new Uint8Array(0),
    oneTimePrekey: new Uint8Array(0),
  },
  { type: "prekeyCount", count: 19 },
  { type: "storedEnvelope", seq: 12, from: 2, envelope: bytes(1400, 13) },
  { type: "caughtUp", seq: 0 },
  { type: "caughtUp", seq: 99 },
  { type: "gap", first: 3, last: 3, reason: 1 },
  { type: "gap", first: 1, last: MAX_SEQ, reason: 2 },
  { type: "renamed", member: member(6, 190, false) },
  { type: "read", id: 8, seq: 40 },
];

/** Records whose body ends in "the rest" (opaque bytes to the end), by fixed-part length. */
const REST_TYPES: Record<string, number> = {
  publish: 5,
  direct: 5,
  storeFor: 9,
  deliver: 13,
  directFrom: 5,
  storedEnvelope: 13,
};

Deno.test("records: every record type round-trips", () => {
  const seen = new Set<string>();
  for (const record of SAMPLES) {
    const encoded = encodeRecord(record);
    assert.equal(encoded[0], RecordType[record.type], `type byte of ${record.type}`);
    assert.deepEqual(decodeRecord(encoded), record);
    seen.add(record.type);
  }
  assert.deepEqual([...seen].sort(), Object.keys(RecordType).sort(), "a record type is untested");
});

Deno.test("records: the type bytes of durable.md", () => {
  assert.deepEqual(RecordType, {
    join: 0x01,
    publish: 0x02,
    direct: 0x03,
    storeFor: 0x04,
    getPrekeys: 0x05,
    putPrekeys: 0x06,
    acknowledge: 0x07,
    leave: 0x08,
    rename: 0x09,
    watchRead: 0x0a,
    welcome: 0x81,
    memberOnline: 0x82,
    memberOffline: 0x83,
    deliver: 0x84,
    directFrom: 0x85,
    ack: 0x86,
    error: 0x87,
    directFailed: 0x88,
    prekeys: 0x89,
    prekeyCount: 0x8a,
    storedEnvelope: 0x8b,
    caughtUp: 0x8c,
    gap: 0x8d,
    renamed: 0x8e,
    read: 0x8f,
  });
});

Deno.test("records: direct-failed is 0x88, u32 member id, u8 reason", () => {
  assert.equal(
    toHex(encodeRecord({ type: "directFailed", to: 0x01020304, reason: 2 })),
    "880102030402",
  );
});

Deno.test("records: exact layouts", () => {
  const hex = (record: RelayRecord) => toHex(encodeRecord(record));
  assert.equal(
    hex({ type: "ack", id: 0x01020304, seq: 0x0506070809, online: 5, stored: 6, refused: 7 }),
    "86" + "01020304" + "0000000506070809" + "00000005" + "00000006" + "00000007",
  );
  assert.equal(hex({ type: "memberOffline", memberId: 258, reason: 1 }), "830000010201");
  assert.equal(
    hex({ type: "publish", id: 1, message: new Uint8Array([0xaa, 0xbb]) }),
    "0200000001aabb",
  );
  assert.equal(
    hex({ type: "deliver", seq: 0x0102, from: 3, message: new Uint8Array([0xcc]) }),
    "84" + "0000000000000102" + "00000003" + "cc",
  );
  assert.equal(
    hex({ type: "storeFor", id: 2, to: 3, envelope: new Uint8Array([0xdd]) }),
    "04" + "00000002" + "00000003" + "dd",
  );
  assert.equal(hex({ type: "getPrekeys", id: 2, memberId: 9 }), "05" + "00000002" + "00000009");
  assert.equal(
    hex({
      type: "putPrekeys",
      signedPrekey: new Uint8Array([1, 2]),
      oneTimePrekeys: [new Uint8Array([3]), new Uint8Array([4, 5])],
    }),
    "06" + "00020102" + "0002" + "000103" + "00020405",
  );
  assert.equal(hex({ type: "acknowledge", seq: 7 }), "07" + "0000000000000007");
  assert.equal(hex({ type: "leave" }), "08");
  assert.equal(hex({ type: "rename", announcement: new Uint8Array([9]) }), "09000109");
  assert.equal(hex({ type: "watchRead", id: 1, seq: 2 }), "0a" + "00000001" + "0000000000000002");
  assert.equal(
    hex({
      type: "prekeys",
      id: 1,
      memberId: 2,
      signedPrekey: new Uint8Array([0xee]),
      oneTimePrekey: new Uint8Array(0),
    }),
    "89" + "00000001" + "00000002" + "0001ee" + "0000",
  );
  assert.equal(hex({ type: "prekeyCount", count: 19 }), "8a00000013");
  assert.equal(
    hex({ type: "storedEnvelope", seq: 4, from: 5, envelope: new Uint8Array([0xff]) }),
    "8b" + "0000000000000004" + "00000005" + "ff",
  );
  assert.equal(hex({ type: "caughtUp", seq: 10 }), "8c000000000000000a");
  assert.equal(
    hex({ type: "gap", first: 2, last: 3, reason: 2 }),
    "8d" + "0000000000000002" + "0000000000000003" + "02",
  );
  assert.equal(hex({ type: "read", id: 6, seq: 7 }), "8f" + "00000006" + "0000000000000007");
  const entry = member(2, 3, false);
  const entryBytes = new ByteWriter()
    .u32(2).raw(entry.identityPublicKey).u8(0).bytes16(entry.announcement)
    .finish();
  assert.equal(hex({ type: "renamed", member: entry }), "8e" + toHex(entryBytes));
  assert.equal(
    hex({ type: "memberOnline", member: { ...entry, online: true } }),
    "82" + toHex(entryBytes).replace(/^(.{72})00/, "$101"),
  );
  const welcome = new ByteWriter()
    .u8(0x81).u32(9).u8(1).u64(300).u16(1).raw(entryBytes)
    .finish();
  assert.equal(
    hex({
      type: "welcome",
      memberId: 9,
      durable: true,
      head: 300,
      members: [entry],
    }),
    toHex(welcome),
  );
});

Deno.test("records: an error message longer than the field is cut on a character boundary", () => {
  // 200 three-byte characters are 600 bytes of UTF-8: more than a u8 length can carry.
  for (const text of ["é".repeat(300), "✓".repeat(200), "😀".repeat(100), "x".repeat(1000)]) {
    const encoded = encodeRecord({ type: "error", code: 1, message: text });
    const decoded = decodeRecord(encoded);
    assert.equal(decoded.type, "error");
    if (decoded.type !== "error") return;
    assert.ok(decoded.message.length > 0);
    assert.ok(utf8(decoded.message).length <= 255);
    assert.ok(text.startsWith(decoded.message), "the kept part is a prefix of the message");
  }
});

function assertDecodeError(input: Uint8Array, what: string): void {
  assert.throws(() => decodeRecord(input), DecodeError, what);
}

Deno.test("records: unknown types are refused", () => {
  const known = new Set<number>(Object.values(RecordType));
  for (let type = 0; type < 256; type++) {
    if (known.has(type)) continue;
    assertDecodeError(
      new Uint8Array([type, 0, 0, 0, 0, 0, 0, 0, 0]),
      `type 0x${type.toString(16)}`,
    );
  }
  assertDecodeError(new Uint8Array(0), "empty input");
});

Deno.test("records: every truncation of every sample is refused", () => {
  for (const record of SAMPLES) {
    const encoded = encodeRecord(record);
    // Records that end in "the rest" accept any shorter tail, so only their fixed part can be
    // truncated.
    const minimum = REST_TYPES[record.type] ?? encoded.length;
    for (let length = 0; length < minimum; length++) {
      assertDecodeError(encoded.subarray(0, length), `${record.type} cut to ${length} bytes`);
    }
  }
});

Deno.test("records: trailing bytes are refused", () => {
  for (const record of SAMPLES) {
    if (record.type in REST_TYPES) continue;
    const encoded = encodeRecord(record);
    assertDecodeError(concat(encoded, new Uint8Array([0])), `${record.type} plus one byte`);
  }
});

Deno.test("records: malformed fields are refused", () => {
  // A welcome that claims more members than it holds.
  const welcome = encodeRecord({
    type: "welcome",
    memberId: 1,
    durable: true,
    head: 5,
    members: [member(2, 10)],
  });
  const lying = welcome.slice();
  lying[15] = 2; // member count 1 -> 2
  assertDecodeError(lying, "welcome with a missing member");
  // Flags other than "durable".
  for (const flags of [0x02, 0x80, 0xff]) {
    const flagged = welcome.slice();
    flagged[5] = flags;
    assertDecodeError(flagged, `welcome flags ${flags}`);
  }
  // A roster entry's online byte is 0 or 1.
  const entry = encodeRecord({ type: "memberOnline", member: member(2, 10) });
  for (const online of [2, 0x80, 0xff]) {
    const bad = entry.slice();
    bad[37] = online;
    assertDecodeError(bad, `online byte ${online}`);
  }
  // Reasons the protocol does not define.
  for (const reason of [3, 0xff]) {
    assertDecodeError(
      new Uint8Array([0x83, 0, 0, 0, 1, reason]),
      `member-offline reason ${reason}`,
    );
  }
  for (const reason of [0, 3, 0xff]) {
    const gap = encodeRecord({ type: "gap", first: 1, last: 2, reason: 1 }).slice();
    gap[17] = reason;
    assertDecodeError(gap, `gap reason ${reason}`);
  }
  // A gap whose first sequence is above its last.
  assertDecodeError(
    encodeRecord({ type: "gap", first: 5, last: 4, reason: 1 }),
    "an empty gap",
  );
  // Sequences beyond 2^53 - 1.
  for (const type of [0x07, 0x8c]) {
    assertDecodeError(
      new Uint8Array([type, 0x00, 0x20, 0, 0, 0, 0, 0, 0]),
      `type 0x${type.toString(16)} with a sequence of 2^53`,
    );
  }
  // One-time prekeys: the count says more than there are.
  assertDecodeError(new Uint8Array([0x06, 0, 0, 0, 2, 0, 1, 0xaa]), "put-prekeys short by one");
  // Invalid UTF-8 in an error message.
  assertDecodeError(new Uint8Array([0x87, 0, 1, 2, 0xc3, 0x28]), "error text that is not UTF-8");
  // An announcement length beyond the input.
  assertDecodeError(new Uint8Array([0x01, 0x10, 0x00, 1, 2, 3]), "join with a short announcement");
});

Deno.test("records: random bytes either decode or throw DecodeError, nothing else", () => {
  const random = seededRandom(0x5eed);
  const known = Object.values(RecordType);
  const seeds = SAMPLES.map((record) => encodeRecord(record));
  let decoded = 0;
  let refused = 0;
  for (let i = 0; i < 5000; i++) {
    let input: Uint8Array;
    if (i % 2 === 0) {
      // Fully random, biased towards known type bytes so bodies get parsed.
      input = new Uint8Array(Math.floor(random() * 80));
      for (let j = 0; j < input.length; j++) input[j] = Math.floor(random() * 256);
      if (input.length > 0 && random() < 0.8) input[0] = known[Math.floor(random() * known.length)];
    } else {
      // A valid record with a few bytes mutated, cut or extended.
      input = seeds[Math.floor(random() * seeds.length)].slice(0, 400);
      for (let k = 0; k < 3; k++) {
        if (input.length > 0) {
          input[Math.floor(random() * input.length)] ^= 1 << Math.floor(random() * 8);
        }
      }
      if (random() < 0.3) input = input.subarray(0, Math.floor(random() * input.length));
    }
    try {
      const record = decodeRecord(input);
      decoded++;
      // Whatever decodes must encode back to the same bytes (one encoding per record).
      assert.equal(toHex(encodeRecord(record)), toHex(input), `re-encoding of ${toHex(input)}`);
    } catch (error) {
      if (!(error instanceof DecodeError)) {
        throw new Error(`input ${toHex(input)} threw ${error}, not a DecodeError`);
      }
      refused++;
    }
  }
  // Both outcomes must actually happen, or the fuzzer tests nothing.
  assert.ok(decoded > 100, `only ${decoded} inputs decoded`);
  assert.ok(refused > 100, `only ${refused} inputs were refused`);
});
