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

function member(memberId: number, announcementBytes: number): MemberEntry {
  return {
    memberId,
    identityPublicKey: bytes(32, memberId & 0xff),
    announcement: bytes(announcementBytes, 0xa0),
  };
}

const SAMPLES: RelayRecord[] = [
  { type: "join", announcement: bytes(170, 1) },
  { type: "join", announcement: new Uint8Array(0) },
  { type: "publish", id: 0xffffffff, message: bytes(1000, 2) },
  { type: "publish", id: 0, message: new Uint8Array(0) },
  { type: "direct", to: 7, envelope: bytes(120, 3) },
  { type: "welcome", memberId: 9, members: [] },
  {
    type: "welcome",
    memberId: 9,
    members: [member(1, 170), member(2, 0), member(0xffffffff, 300)],
  },
  { type: "memberJoined", member: member(5, 200) },
  { type: "memberLeft", memberId: 123456 },
  { type: "deliver", from: 3, message: bytes(65536, 4) },
  { type: "directFrom", from: 4, envelope: bytes(90, 5) },
  { type: "ack", id: 77, recipients: 0 },
  { type: "error", code: 3, message: 'nick "bob" is taken in room "ops"' },
  { type: "error", code: 0xffff, message: "" },
  { type: "directFailed", to: 42, reason: 1 },
];

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

Deno.test("records: direct-failed is 0x88, u32 member id, u8 reason", () => {
  assert.equal(
    toHex(encodeRecord({ type: "directFailed", to: 0x01020304, reason: 2 })),
    "880102030402",
  );
});

Deno.test("records: exact layouts of a few records", () => {
  assert.equal(
    toHex(encodeRecord({ type: "ack", id: 0x01020304, recipients: 5 })),
    "860102030400000005",
  );
  assert.equal(toHex(encodeRecord({ type: "memberLeft", memberId: 258 })), "8300000102");
  assert.equal(
    toHex(encodeRecord({ type: "publish", id: 1, message: new Uint8Array([0xaa, 0xbb]) })),
    "0200000001aabb",
  );
  const entry = member(2, 3);
  const expected = new ByteWriter()
    .u8(0x81).u32(9).u16(1)
    .u32(2).raw(entry.identityPublicKey).bytes16(entry.announcement)
    .finish();
  assert.equal(
    toHex(encodeRecord({ type: "welcome", memberId: 9, members: [entry] })),
    toHex(expected),
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
    // Records that end in "the rest" (publish, direct, deliver, directFrom) accept any
    // shorter tail, so only their fixed part can be truncated.
    const restTypes = ["publish", "direct", "deliver", "directFrom"];
    const minimum = restTypes.includes(record.type) ? 5 : encoded.length;
    for (let length = 0; length < minimum; length++) {
      assertDecodeError(encoded.subarray(0, length), `${record.type} cut to ${length} bytes`);
    }
  }
});

Deno.test("records: trailing bytes are refused", () => {
  for (const record of SAMPLES) {
    if (["publish", "direct", "deliver", "directFrom"].includes(record.type)) continue;
    const encoded = encodeRecord(record);
    assertDecodeError(concat(encoded, new Uint8Array([0])), `${record.type} plus one byte`);
  }
});

Deno.test("records: malformed fields are refused", () => {
  // A welcome that claims more members than it holds.
  const welcome = encodeRecord({ type: "welcome", memberId: 1, members: [member(2, 10)] });
  const lying = welcome.slice();
  lying[6] = 2; // member count 1 -> 2
  assertDecodeError(lying, "welcome with a missing member");
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
