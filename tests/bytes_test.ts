import assert from "node:assert/strict";
import {
  ByteReader,
  ByteWriter,
  concat,
  constantTimeEqual,
  DecodeError,
  fromBase64,
  fromHex,
  fromUtf8,
  toBase32,
  toBase64,
  toHex,
  utf8,
} from "../lib/core/bytes.ts";

Deno.test("hex, base64 and UTF-8 round trip and refuse malformed input", () => {
  const bytes = new Uint8Array(256).map((_, i) => i);
  assert.deepEqual(fromHex(toHex(bytes)), bytes);
  assert.deepEqual(fromBase64(toBase64(bytes)), bytes);
  assert.equal(toBase64(new Uint8Array([1, 2, 3])), "AQID");
  for (const bad of ["abc", "zz", "0g"]) assert.throws(() => fromHex(bad), DecodeError);
  for (const bad of ["AQI", "A=QI", "AQ!D"]) assert.throws(() => fromBase64(bad), DecodeError);
  assert.equal(fromUtf8(utf8("ünïcödé ✓")), "ünïcödé ✓");
  assert.throws(() => fromUtf8(new Uint8Array([0xc3, 0x28])), DecodeError);
  assert.throws(
    () => fromUtf8(new Uint8Array([0xed, 0xa0, 0x80])),
    DecodeError,
    "encoded surrogate",
  );
});

Deno.test("base32 matches the RFC 4648 test vectors (lowercase, unpadded)", () => {
  const vectors: Array<[string, string]> = [
    ["", ""],
    ["f", "my"],
    ["fo", "mzxq"],
    ["foo", "mzxw6"],
    ["foob", "mzxw6yq"],
    ["fooba", "mzxw6ytb"],
    ["foobar", "mzxw6ytboi"],
  ];
  for (const [input, expected] of vectors) assert.equal(toBase32(utf8(input)), expected);
});

Deno.test("constantTimeEqual compares contents and lengths", () => {
  assert.ok(constantTimeEqual(new Uint8Array([1, 2]), new Uint8Array([1, 2])));
  assert.ok(!constantTimeEqual(new Uint8Array([1, 2]), new Uint8Array([1, 3])));
  assert.ok(!constantTimeEqual(new Uint8Array([1, 2]), new Uint8Array([1, 2, 0])));
  assert.deepEqual(
    concat(new Uint8Array([1]), new Uint8Array(0), new Uint8Array([2, 3])),
    new Uint8Array([1, 2, 3]),
  );
});

Deno.test("ByteWriter and ByteReader round trip every field type, across buffer growth", () => {
  const big = new Uint8Array(70_000).fill(7);
  const written = new ByteWriter(4).u8(255).u16(65535).u32(0xffffffff).u64(Number.MAX_SAFE_INTEGER)
    .bytes8(utf8("room")).bytes16(utf8("x".repeat(300))).bytes32(big).string8("nick").raw(
      new Uint8Array([9]),
    )
    .finish();
  const reader = new ByteReader(written);
  assert.equal(reader.u8(), 255);
  assert.equal(reader.u16(), 65535);
  assert.equal(reader.u32(), 0xffffffff);
  assert.equal(reader.u64(), Number.MAX_SAFE_INTEGER);
  assert.equal(fromUtf8(reader.bytes8()), "room");
  assert.equal(reader.bytes16().length, 300);
  assert.deepEqual(reader.bytes32(), big);
  assert.equal(reader.string8(), "nick");
  assert.deepEqual(reader.rest(), new Uint8Array([9]));
  reader.end();
});

Deno.test("ByteReader never reads past the end and rejects trailing bytes and huge integers", () => {
  assert.throws(() => new ByteReader(new Uint8Array([0, 5, 1, 2])).bytes16(), DecodeError);
  assert.throws(() => new ByteReader(new Uint8Array(3)).u32(), DecodeError);
  assert.throws(() => new ByteReader(new Uint8Array([1, 2])).end(), DecodeError);
  assert.throws(() => new ByteReader(new Uint8Array(8).fill(0xff)).u64(), DecodeError);
  assert.throws(() => new ByteWriter().bytes8(new Uint8Array(256)), RangeError);
  assert.throws(() => new ByteWriter().bytes16(new Uint8Array(65536)), RangeError);
});
