/**
 * lib/e2e/chain.ts: the documented key schedule (rebuilt with node:crypto),
 * walks that change nothing until committed, the skip limit, the step
 * budget, and forward secrecy of the chain key.
 */

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import * as nodeCrypto from "node:crypto";
import { toHex, utf8 } from "../lib/core/bytes.ts";
import {
  ChainError,
  type ChainFailure,
  type ChainStepBudget,
  LAST_CHAIN_INDEX,
  SymmetricChain,
} from "../lib/e2e/chain.ts";

const INFO = utf8("securechat/test chain");

function random(length: number): Uint8Array {
  return new Uint8Array(nodeCrypto.randomBytes(length));
}

/** The schedule as PROTOCOL.md writes it, with node:crypto instead of noble. */
function reference(chainKey: Uint8Array, index: number) {
  let ck = Buffer.from(chainKey);
  for (let i = 0; i < index; i++) {
    ck = nodeCrypto.createHmac("sha256", ck).update(Uint8Array.of(2)).digest();
  }
  const mk = nodeCrypto.createHmac("sha256", ck).update(Uint8Array.of(1)).digest();
  const okm = new Uint8Array(nodeCrypto.hkdfSync("sha256", mk, new Uint8Array(0), INFO, 44));
  return { key: toHex(okm.subarray(0, 32)), nonce: toHex(okm.subarray(32)) };
}

function refusedWith(run: () => unknown, reason: ChainFailure): void {
  assert.throws(run, (error) => error instanceof ChainError && error.reason === reason, reason);
}

/** A budget that records what it was asked for and pays up to `tokens`. */
function countingBudget(tokens: number): ChainStepBudget & { asked: number[] } {
  const asked: number[] = [];
  return {
    asked,
    take(steps) {
      asked.push(steps);
      if (steps > tokens) return false;
      tokens -= steps;
      return true;
    },
  };
}

Deno.test("next() and walk() follow the documented schedule byte for byte", () => {
  const chainKey = random(32);
  const sender = new SymmetricChain({ chainKey, info: INFO });
  for (let i = 0; i < 5; i++) {
    const mk = sender.next();
    assert.equal(mk.index, i);
    assert.deepEqual({ key: toHex(mk.key), nonce: toHex(mk.nonce) }, reference(chainKey, i));
  }
  assert.equal(sender.index, 5);
  const receiver = new SymmetricChain({ chainKey, info: INFO });
  const walk = receiver.walk(3);
  assert.deepEqual({ key: toHex(walk.key), nonce: toHex(walk.nonce) }, reference(chainKey, 3));
  assert.equal(walk.skipped, 3);
  walk.commit();
  assert.equal(receiver.index, 4);
});

Deno.test("a discarded walk leaves the chain as it was; keys are wiped either way", () => {
  const chain = new SymmetricChain({ chainKey: random(32), info: INFO });
  const before = toHex(chain.exportChainKey());
  const walk = chain.walk(10);
  const key = walk.key;
  walk.discard();
  assert.equal(chain.index, 0);
  assert.equal(toHex(chain.exportChainKey()), before);
  assert.ok(key.every((byte) => byte === 0), "the walk's key is wiped");
  assert.throws(() => walk.commit(), /already committed or discarded/);
  const again = chain.walk(0);
  const committedKey = again.key;
  again.commit();
  assert.ok(committedKey.every((byte) => byte === 0));
  assert.throws(() => again.discard(), /already committed or discarded/);
});

Deno.test("a walk made before the chain moved cannot be committed", () => {
  const chain = new SymmetricChain({ chainKey: random(32), info: INFO });
  const stale = chain.walk(5);
  chain.walk(2).commit();
  assert.throws(() => stale.commit(), /moved since this walk began/);
  assert.equal(chain.index, 3);
});

Deno.test("replayed, too-far-ahead and exhausted indexes are refused", () => {
  const chain = new SymmetricChain({ chainKey: random(32), index: 10, info: INFO, maxSkip: 50 });
  refusedWith(() => chain.walk(9), "replayed");
  refusedWith(() => chain.walk(61), "too-far-ahead");
  chain.walk(60).discard(); // exactly the limit
  const error = (() => {
    try {
      chain.walk(3);
    } catch (caught) {
      return caught as ChainError;
    }
  })();
  assert.equal(error?.next, 10);
  assert.equal(error?.target, 3);
  const last = new SymmetricChain({ chainKey: random(32), index: LAST_CHAIN_INDEX, info: INFO });
  last.next();
  refusedWith(() => last.next(), "exhausted");
  refusedWith(() => last.walk(LAST_CHAIN_INDEX + 1), "exhausted");
});

Deno.test("the step budget pays for skipped steps only, before any work, and can refuse", () => {
  const budget = countingBudget(10);
  const chain = new SymmetricChain({ chainKey: random(32), info: INFO });
  chain.walk(0, { budget }).commit(); // no gap: the budget is not asked
  assert.deepEqual(budget.asked, []);
  chain.walk(5, { budget }).commit(); // skips 1..4
  assert.deepEqual(budget.asked, [4]);
  refusedWith(() => chain.walk(20, { budget }), "over-budget"); // 14 > 6 left
  assert.equal(chain.index, 6, "a refused walk changes nothing");
  chain.walk(12, { budget }).commit(); // 6 steps: exactly what is left
  refusedWith(() => chain.walk(14, { budget }), "over-budget");
  chain.walk(13, { budget }).commit(); // no gap again: still fine with an empty budget
  assert.deepEqual(budget.asked, [4, 14, 6, 1]);
});

Deno.test("forward secrecy: the chain key at n cannot give the key of n - 1", () => {
  const chainKey = random(32);
  const chain = new SymmetricChain({ chainKey, info: INFO });
  const keys = Array.from({ length: 4 }, () => toHex(chain.next().key));
  const stolen = chain.exportChainKey(); // for index 4
  // Whoever takes it and pretends it is an earlier index derives unrelated keys.
  for (let index = 0; index < 4; index++) {
    const forged = new SymmetricChain({ chainKey: stolen, index, info: INFO });
    assert.ok(!keys.includes(toHex(forged.next().key)));
  }
  // The genuine next key is what the stolen state gives.
  const thief = new SymmetricChain({ chainKey: stolen, index: 4, info: INFO });
  assert.deepEqual(toHex(thief.next().key), reference(chainKey, 4).key);
});

Deno.test("wipe() zeroes the chain; bad options are refused", () => {
  const chain = new SymmetricChain({ chainKey: random(32), info: INFO });
  chain.wipe();
  assert.ok(chain.exportChainKey().every((byte) => byte === 0));
  refusedWith(() => chain.next(), "exhausted");
  assert.throws(() => new SymmetricChain({ chainKey: random(31), info: INFO }), TypeError);
  assert.throws(
    () => new SymmetricChain({ chainKey: random(32), index: -1, info: INFO }),
    RangeError,
  );
  assert.throws(
    () => new SymmetricChain({ chainKey: random(32), info: INFO }).walk(1.5),
    RangeError,
  );
});
