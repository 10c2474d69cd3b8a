import assert from "node:assert/strict";
import { concat } from "../lib/core/bytes.ts";
import { encodeFrame, FrameDecoder, FrameTooLargeError } from "../lib/transport/framing.ts";
import { seededRandom } from "./support/in_process.ts";

/** Frames of varied sizes, including empty ones and one over the 1-byte length boundary. */
function sampleFrames(random: () => number, count: number, maxBytes: number): Uint8Array[] {
  const sizes = [0, 1, 2, 255, 256, 0, 3];
  const frames: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const size = i < sizes.length ? Math.min(sizes[i], maxBytes) : Math.floor(random() * maxBytes);
    const frame = new Uint8Array(size);
    for (let j = 0; j < size; j++) frame[j] = Math.floor(random() * 256);
    frames.push(frame);
  }
  return frames;
}

function decodeInPieces(
  stream: Uint8Array,
  cuts: number[],
  prefixBytes: 2 | 4,
  maxFrameBytes: number,
): Uint8Array[] {
  const decoder = new FrameDecoder({ prefixBytes, maxFrameBytes });
  const out: Uint8Array[] = [];
  let start = 0;
  for (const cut of [...cuts, stream.length]) {
    // A fresh buffer per piece that is scribbled over afterwards: frames must not alias it.
    const piece = stream.slice(start, cut);
    for (const frame of decoder.push(piece)) out.push(frame.slice());
    piece.fill(0xee);
    start = cut;
  }
  assert.equal(decoder.buffered, 0, "no bytes may be left over after whole frames");
  return out;
}

function assertFramesEqual(actual: Uint8Array[], expected: Uint8Array[]): void {
  assert.equal(actual.length, expected.length, "frame count");
  for (let i = 0; i < expected.length; i++) {
    assert.deepEqual(actual[i], expected[i], `frame ${i} differs`);
  }
}

for (const prefixBytes of [2, 4] as const) {
  Deno.test(`framing (${prefixBytes}-byte prefix): any split of the stream yields the same frames`, () => {
    const random = seededRandom(prefixBytes * 1000 + 7);
    const frames = sampleFrames(random, 40, 2000);
    const stream = concat(...frames.map((frame) => encodeFrame(frame, prefixBytes)));
    const max = 4000;

    // One piece, and one byte at a time.
    assertFramesEqual(decodeInPieces(stream, [], prefixBytes, max), frames);
    const everyByte = Array.from({ length: stream.length - 1 }, (_, i) => i + 1);
    assertFramesEqual(decodeInPieces(stream, everyByte, prefixBytes, max), frames);

    // Cuts inside the length prefix of every frame.
    const prefixCuts: number[] = [];
    let at = 0;
    for (const frame of frames) {
      for (let k = 1; k < prefixBytes; k++) prefixCuts.push(at + k);
      at += prefixBytes + frame.length;
    }
    assertFramesEqual(decodeInPieces(stream, prefixCuts, prefixBytes, max), frames);

    // Random splits, from tiny pieces to pieces holding many frames.
    for (let round = 0; round < 40; round++) {
      const meanPiece = [1, 3, 17, 500, 20_000][round % 5];
      const cuts: number[] = [];
      let position = 0;
      for (let guard = 0; guard < stream.length; guard++) {
        position += 1 + Math.floor(random() * meanPiece * 2);
        if (position >= stream.length) break;
        cuts.push(position);
      }
      assertFramesEqual(decodeInPieces(stream, cuts, prefixBytes, max), frames);
    }
  });

  Deno.test(`framing (${prefixBytes}-byte prefix): oversize length throws before the body is buffered`, () => {
    const limit = 1000;
    const header = encodeFrame(new Uint8Array(limit + 1), prefixBytes).subarray(0, prefixBytes);

    // Whole prefix in one chunk, on the fast path.
    const fast = new FrameDecoder({ prefixBytes, maxFrameBytes: limit });
    assert.throws(() => fast.push(header), FrameTooLargeError);

    // Prefix one byte at a time: the last prefix byte must throw, nothing of the body is needed.
    const slow = new FrameDecoder({ prefixBytes, maxFrameBytes: limit });
    for (let i = 0; i < prefixBytes - 1; i++) {
      assert.deepEqual(slow.push(header.subarray(i, i + 1)), []);
    }
    assert.throws(() => slow.push(header.subarray(prefixBytes - 1)), FrameTooLargeError);

    // After a valid frame in the same chunk, and after a buffered partial frame.
    const afterValid = new FrameDecoder({ prefixBytes, maxFrameBytes: limit });
    assert.throws(
      () => afterValid.push(concat(encodeFrame(new Uint8Array(3), prefixBytes), header)),
      FrameTooLargeError,
    );
    const afterPartial = new FrameDecoder({ prefixBytes, maxFrameBytes: limit });
    const valid = encodeFrame(new Uint8Array(10), prefixBytes);
    afterPartial.push(valid.subarray(0, 5));
    assert.throws(() => afterPartial.push(concat(valid.subarray(5), header)), FrameTooLargeError);

    // Exactly at the limit is fine.
    const atLimit = new FrameDecoder({ prefixBytes, maxFrameBytes: limit });
    const frame = new Uint8Array(limit).fill(7);
    assert.deepEqual(atLimit.push(encodeFrame(frame, prefixBytes)), [frame]);
  });

  Deno.test(`framing (${prefixBytes}-byte prefix): a huge declared length never buffers the body`, () => {
    const decoder = new FrameDecoder({ prefixBytes, maxFrameBytes: 64 });
    const declared = prefixBytes === 2 ? [0xff, 0xff] : [0xff, 0xff, 0xff, 0xff];
    let thrown: unknown;
    try {
      decoder.push(new Uint8Array([...declared, 1, 2, 3]));
    } catch (error) {
      thrown = error;
    }
    assert.ok(thrown instanceof FrameTooLargeError);
    assert.match(thrown.message, prefixBytes === 2 ? /65535/ : /4294967295/);
  });

  Deno.test(`framing (${prefixBytes}-byte prefix): empty frames and empty chunks`, () => {
    const decoder = new FrameDecoder({ prefixBytes, maxFrameBytes: 10 });
    assert.deepEqual(decoder.push(new Uint8Array(0)), []);
    const empty = encodeFrame(new Uint8Array(0), prefixBytes);
    assert.equal(empty.length, prefixBytes);
    assert.ok(empty.every((byte) => byte === 0));
    const frames = decoder.push(concat(empty, empty, empty));
    assert.equal(frames.length, 3);
    for (const frame of frames) assert.equal(frame.length, 0);
    // An empty frame completed by its last prefix byte alone.
    assert.deepEqual(decoder.push(empty.subarray(0, 1)), []);
    assert.equal(decoder.buffered, 1);
    assert.equal(decoder.push(empty.subarray(1)).length, 1);
    assert.equal(decoder.buffered, 0);
  });
}

Deno.test("framing: encodeFrame writes a big-endian prefix and refuses bodies over the prefix range", () => {
  assert.deepEqual(encodeFrame(new Uint8Array([104, 105]), 2), new Uint8Array([0, 2, 104, 105]));
  assert.deepEqual(
    encodeFrame(new Uint8Array(0x0102), 4).subarray(0, 4),
    new Uint8Array([0, 0, 1, 2]),
  );
  assert.deepEqual(
    encodeFrame(new Uint8Array(0xffff), 2).subarray(0, 2),
    new Uint8Array([255, 255]),
  );
  assert.throws(() => encodeFrame(new Uint8Array(0x10000), 2), FrameTooLargeError);
});

Deno.test("framing: 4-byte lengths above 2^31 are read unsigned", () => {
  const decoder = new FrameDecoder({ prefixBytes: 4, maxFrameBytes: 0xffffffff });
  // 0x80000001 must not turn negative (which would yield a bogus frame at once).
  assert.deepEqual(decoder.push(new Uint8Array([0x80, 0, 0, 1, 9])), []);
  assert.equal(decoder.buffered, 5);
});

Deno.test("framing: returned frames survive the caller reusing its chunk buffer", () => {
  const decoder = new FrameDecoder({ prefixBytes: 2, maxFrameBytes: 100 });
  const buffer = new Uint8Array([0, 3, 1, 2]);
  assert.deepEqual(decoder.push(buffer), []);
  buffer.set([3, 0, 1]); // reuse: the kept partial frame must have been copied
  const frames = decoder.push(buffer.subarray(0, 3));
  assert.deepEqual(frames, [new Uint8Array([1, 2, 3])]);
  assert.equal(decoder.buffered, 2);
  assert.deepEqual(decoder.push(new Uint8Array([0x42])), [new Uint8Array([0x42])]);
});

Deno.test("framing: a frame dripped in byte by byte costs linear time", () => {
  // Before the fix each completed frame shifted the chunk list once per byte: O(n²),
  // about 5 s of blocked event loop for one 64 KiB frame sent one byte per segment.
  const stream = encodeFrame(new Uint8Array(65535).fill(1), 2);
  const decoder = new FrameDecoder({ prefixBytes: 2, maxFrameBytes: 65535 });
  const started = performance.now();
  const frames: Uint8Array[] = [];
  for (let i = 0; i < stream.length; i++) frames.push(...decoder.push(stream.subarray(i, i + 1)));
  const elapsed = performance.now() - started;
  assert.equal(frames.length, 1);
  assert.equal(frames[0].length, 65535);
  assert.ok(frames[0].every((byte) => byte === 1));
  assert.ok(elapsed < 2_000, `dripping one 64 KiB frame took ${elapsed.toFixed(0)} ms`);
});
