import assert from "node:assert/strict";
import { ByteWriter, DecodeError, toHex, utf8 } from "../lib/core/bytes.ts";
import {
  decodeGroupContent,
  decodePairwiseContent,
  encodeGroupContent,
  encodePairwiseContent,
  MAX_TEXT_BYTES,
  type PairwiseContent,
} from "../lib/e2e/content.ts";

const TIME = 1_700_000_000_123;

Deno.test("group content round trip and exact layout", () => {
  const bytes = encodeGroupContent({ time: TIME, texts: ["hi", "ünï ✓"] });
  const expected = new ByteWriter()
    .u8(1)
    .u64(TIME)
    .u16(2)
    .bytes32(utf8("hi"))
    .bytes32(utf8("ünï ✓"))
    .finish();
  assert.equal(toHex(bytes), toHex(expected));
  assert.deepEqual(decodeGroupContent(bytes), { time: TIME, texts: ["hi", "ünï ✓"] });

  const cases = [
    { time: 0, texts: [""] },
    { time: Number.MAX_SAFE_INTEGER, texts: ["x".repeat(MAX_TEXT_BYTES)] },
    { time: TIME, texts: Array.from({ length: 300 }, (_, i) => `line ${i}`) },
    { time: TIME, texts: ["\ufeffstarts with a BOM", "emoji 😀 and \u0000 nul"] },
  ];
  for (const content of cases) {
    assert.deepEqual(decodeGroupContent(encodeGroupContent(content)), content);
  }
});

Deno.test("group content decoding is strict", () => {
  const good = encodeGroupContent({ time: TIME, texts: ["hello"] });
  const rejects = (bytes: Uint8Array, label: string) =>
    assert.throws(() => decodeGroupContent(bytes), DecodeError, label);

  rejects(new Uint8Array(0), "empty");
  for (let cut = 0; cut < good.length; cut++) rejects(good.subarray(0, cut), `truncated at ${cut}`);
  rejects(new Uint8Array([...good, 0]), "trailing byte");
  const kind = good.slice();
  kind[0] = 2;
  rejects(kind, "unknown kind");
  rejects(new ByteWriter().u8(1).u64(TIME).u16(0).finish(), "count 0");
  rejects(
    new ByteWriter().u8(1).u64(TIME).u16(1).bytes32(Uint8Array.of(0xc3, 0x28)).finish(),
    "invalid UTF-8",
  );
  rejects(
    new ByteWriter().u8(1).u64(TIME).u16(1).bytes32(Uint8Array.of(0xed, 0xa0, 0x80)).finish(),
    "surrogate",
  );
  rejects(
    new ByteWriter().u8(1).u64(TIME).u16(1).bytes32(Uint8Array.of(0xc0, 0xaf)).finish(),
    "overlong",
  );
  rejects(
    new ByteWriter().u8(1).u64(2 ** 60).u16(1).bytes32(utf8("x")).finish(),
    "time beyond 2^53",
  );
  // Count says 2, only one text present.
  rejects(new ByteWriter().u8(1).u64(TIME).u16(2).bytes32(utf8("x")).finish(), "count too high");
  // Text length over the limit is refused before anything is read.
  const huge = new ByteWriter().u8(1).u64(TIME).u16(1).u32(MAX_TEXT_BYTES + 1).raw(
    new Uint8Array(MAX_TEXT_BYTES + 1),
  )
    .finish();
  rejects(huge, "text over limit");
});

Deno.test("group content encoding refuses invalid input", () => {
  assert.throws(() => encodeGroupContent({ time: TIME, texts: [] }), RangeError);
  assert.throws(
    () => encodeGroupContent({ time: TIME, texts: ["x".repeat(MAX_TEXT_BYTES + 1)] }),
    RangeError,
  );
  // 21,846 × 3-byte characters = 65,538 bytes: over the limit in bytes, not in characters.
  assert.throws(() => encodeGroupContent({ time: TIME, texts: ["€".repeat(21846)] }), RangeError);
  assert.throws(() => encodeGroupContent({ time: -1, texts: ["x"] }), RangeError);
  assert.throws(() => encodeGroupContent({ time: 1.5, texts: ["x"] }), RangeError);
  assert.throws(() => encodeGroupContent({ time: TIME, texts: ["lone \ud800"] }), RangeError);
  assert.throws(
    () => encodeGroupContent({ time: TIME, texts: Array(0x10000).fill("") }),
    RangeError,
  );
});

Deno.test("pairwise content round trip and exact layout", () => {
  const chainKey = Uint8Array.from({ length: 32 }, (_, i) => i);
  const senderKey: PairwiseContent = {
    kind: "sender-key",
    state: { epoch: 0xfffffffe, iteration: 7, chainKey },
  };
  const bytes = encodePairwiseContent(senderKey);
  assert.equal(
    toHex(bytes),
    toHex(new ByteWriter().u8(1).u32(0xfffffffe).u32(7).raw(chainKey).finish()),
  );
  const decoded = decodePairwiseContent(bytes);
  assert.deepEqual(decoded, senderKey);
  // The decoded key is a copy: wiping the plaintext buffer does not wipe it.
  bytes.fill(0);
  assert.equal(decoded.kind, "sender-key");
  if (decoded.kind === "sender-key") assert.deepEqual(decoded.state.chainKey, chainKey);

  const direct: PairwiseContent = { kind: "direct-text", time: TIME, text: "psst ✓" };
  const directBytes = encodePairwiseContent(direct);
  assert.equal(
    toHex(directBytes),
    toHex(new ByteWriter().u8(2).u64(TIME).bytes32(utf8("psst ✓")).finish()),
  );
  assert.deepEqual(decodePairwiseContent(directBytes), direct);
});

Deno.test("pairwise content decoding is strict", () => {
  const senderKey = encodePairwiseContent({
    kind: "sender-key",
    state: { epoch: 1, iteration: 0, chainKey: new Uint8Array(32).fill(1) },
  });
  const direct = encodePairwiseContent({ kind: "direct-text", time: TIME, text: "hello" });
  for (const good of [senderKey, direct]) {
    for (let cut = 0; cut < good.length; cut++) {
      assert.throws(() => decodePairwiseContent(good.subarray(0, cut)), DecodeError);
    }
    assert.throws(() => decodePairwiseContent(new Uint8Array([...good, 0])), DecodeError);
  }
  for (const kind of [0, 3, 255]) {
    const bytes = direct.slice();
    bytes[0] = kind;
    assert.throws(() => decodePairwiseContent(bytes), DecodeError);
  }
  assert.throws(
    () =>
      decodePairwiseContent(new ByteWriter().u8(2).u64(TIME).bytes32(Uint8Array.of(0xff)).finish()),
    DecodeError,
  );
  assert.throws(
    () => decodePairwiseContent(new ByteWriter().u8(2).u64(TIME).u32(MAX_TEXT_BYTES + 1).finish()),
    DecodeError,
  );
});

Deno.test("pairwise content encoding refuses invalid input", () => {
  const chainKey = new Uint8Array(32);
  const bad: PairwiseContent[] = [
    { kind: "sender-key", state: { epoch: -1, iteration: 0, chainKey } },
    { kind: "sender-key", state: { epoch: 0, iteration: 2 ** 32, chainKey } },
    { kind: "sender-key", state: { epoch: 0, iteration: 0, chainKey: new Uint8Array(16) } },
    { kind: "direct-text", time: -5, text: "x" },
    { kind: "direct-text", time: TIME, text: "x".repeat(MAX_TEXT_BYTES + 1) },
    { kind: "nope" } as unknown as PairwiseContent,
  ];
  for (const content of bad) assert.throws(() => encodePairwiseContent(content), RangeError);
});

Deno.test("group content: receivers enforce the decoding limits, not the sender's packing rules", () => {
  // 5,000 texts (the reference client packs at most 4,096), empty ones included: valid.
  const texts = Array.from({ length: 5_000 }, (_, i) => (i % 2 === 0 ? "" : `t${i}`));
  const decoded = decodeGroupContent(encodeGroupContent({ time: 2 ** 53 - 1, texts }));
  assert.equal(decoded.texts.length, 5_000);
  assert.equal(decoded.texts[0], "");
  assert.equal(decoded.time, 2 ** 53 - 1);
  // Above 2^53 - 1 the time is malformed.
  const tooLate = encodeGroupContent({ time: 1, texts: ["x"] });
  new DataView(tooLate.buffer, tooLate.byteOffset).setBigUint64(1, 2n ** 53n);
  assert.throws(() => decodeGroupContent(tooLate));
});
