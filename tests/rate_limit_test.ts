import assert from "node:assert/strict";
import { TokenBucket } from "../lib/core/rate_limit.ts";

/** A clock the test moves by hand. */
function fakeClock(): { now: () => number; advance: (ms: number) => void } {
  let time = 1_000;
  return { now: () => time, advance: (ms) => (time += ms) };
}

Deno.test("rate limit: a full bucket allows exactly the burst, then refuses", () => {
  const clock = fakeClock();
  const bucket = new TokenBucket({ ratePerSecond: 200, burst: 1_000, now: clock.now });
  for (let i = 0; i < 1_000; i++) assert.ok(bucket.take(), `event ${i} of the burst`);
  assert.equal(bucket.take(), false);
  assert.equal(bucket.take(), false, "a refusal takes nothing and gives nothing");
});

Deno.test("rate limit: tokens come back at the rate and never beyond the burst", () => {
  const clock = fakeClock();
  const bucket = new TokenBucket({ ratePerSecond: 200, burst: 1_000, now: clock.now });
  for (let i = 0; i < 1_000; i++) bucket.take();
  clock.advance(4); // 0.8 of a token
  assert.equal(bucket.take(), false);
  clock.advance(1); // 1.0
  assert.ok(bucket.take());
  assert.equal(bucket.take(), false);
  clock.advance(500); // 100 tokens
  let allowed = 0;
  while (bucket.take() && allowed < 10_000) allowed++;
  assert.equal(allowed, 100);
  clock.advance(3_600_000); // an hour idle fills it only to the burst
  assert.equal(bucket.available, 1_000);
});

Deno.test("rate limit: a sustained rate at the limit passes, just above it fails", () => {
  const steady = fakeClock();
  const atLimit = new TokenBucket({ ratePerSecond: 100, burst: 10, now: steady.now });
  for (let i = 0; i < 10_000; i++) {
    steady.advance(10); // exactly 100 per second, for 100 s
    assert.ok(atLimit.take(), `event ${i} at the limit`);
  }
  const fast = fakeClock();
  const overLimit = new TokenBucket({ ratePerSecond: 100, burst: 10, now: fast.now });
  let passed = 0;
  for (let i = 0; i < 10_000; i++) {
    fast.advance(9); // 111 per second
    if (overLimit.take()) passed++;
  }
  // 90 s at 100 per second plus the burst.
  assert.ok(passed <= 9_000 + 10 && passed >= 8_990, `passed ${passed}`);
});

Deno.test("rate limit: take(count) is all or nothing; a clock stepping back is harmless", () => {
  const clock = fakeClock();
  const bucket = new TokenBucket({ ratePerSecond: 10, burst: 5, now: clock.now });
  assert.equal(bucket.take(6), false);
  assert.equal(bucket.available, 5);
  assert.ok(bucket.take(5));
  clock.advance(-10_000);
  assert.equal(bucket.available, 0);
  clock.advance(100);
  assert.equal(bucket.available, 1);
});

Deno.test("rate limit: nonsense settings are refused", () => {
  for (const ratePerSecond of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
    assert.throws(() => new TokenBucket({ ratePerSecond, burst: 1 }), RangeError);
  }
  for (const burst of [0, 0.5, -3, Number.NaN, Number.POSITIVE_INFINITY]) {
    assert.throws(() => new TokenBucket({ ratePerSecond: 1, burst }), RangeError);
  }
});

Deno.test("rate limit: the real clock refills", async () => {
  const bucket = new TokenBucket({ ratePerSecond: 1_000, burst: 1 });
  assert.ok(bucket.take());
  assert.equal(bucket.take(), false);
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.ok(bucket.take());
});
