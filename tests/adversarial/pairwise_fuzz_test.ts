/**
 * Part 3 of the attack suite, pairwise sessions and prekeys (protocol 2): a
 * hostile relay or member feeds generated and mutated bytes to every entry
 * point of lib/e2e/pairwise_session.ts (`pairwiseMessageKind`, `accept`,
 * `readAccept`, `decrypt`) and of the prekeys (`verifyPrekeyBundle`,
 * `openPrekeyEnvelope`), and tampers with hello, accept and data in live
 * handshakes. Each must refuse with PairwiseError, never crash, and never
 * accept altered bytes. FUZZ_RUNS inputs per row; FUZZ_SEED replays a run.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { cryptoBackend } from "../../lib/crypto/crypto_backend.ts";
import { utf8 } from "../../lib/core/bytes.ts";
import {
  isPairwiseInitiator,
  PairwiseError,
  pairwiseMessageKind,
  PairwiseSession,
  type PairwiseSessionOptions,
} from "../../lib/e2e/pairwise_session.ts";
import { generateIdentity } from "../../lib/identity/identity.ts";
import {
  encodePrekeyBundle,
  generatePrekey,
  PrekeyError,
  verifyPrekeyBundle,
} from "../../lib/e2e/prekeys.ts";
import {
  MemoryPrekeyStore,
  openPrekeyEnvelope,
  sealPrekeyEnvelope,
} from "../../lib/e2e/prekey_envelope.ts";
import { fuzzParser, mutationsOf, type Outcome, sameBytes } from "./support/fuzz.ts";
import { FUZZ_RUNS, FUZZ_SEED } from "./support/knobs.ts";
import { Attack } from "./support/scoreboard.ts";

console.log(`pairwise fuzzing: ${FUZZ_RUNS} inputs per row, seed ${FUZZ_SEED}`);

// Handshakes cost a few milliseconds each (X-Wing); these rows run a fifth as many.
const HANDSHAKE_RUNS = Math.max(50, Math.floor(FUZZ_RUNS / 5));

async function fuzzRow<T>(
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

const isRefusal = (error: unknown) => error instanceof PairwiseError;

interface Member {
  identity: Uint8Array;
  presence: { publicKey: Uint8Array; secretKey: Uint8Array };
}

function member(): Member {
  const seed = crypto.getRandomValues(new Uint8Array(32));
  return {
    identity: cryptoBackend.ed25519PublicKey(seed),
    presence: cryptoBackend.x25519KeyPair(),
  };
}

const [INITIATOR, RESPONDER] = (() => {
  const a = member();
  const b = member();
  return isPairwiseInitiator(a.presence.publicKey, b.presence.publicKey) ? [a, b] : [b, a];
})();

function optionsFor(local: Member, remote: Member): PairwiseSessionOptions {
  return {
    room: "fuzz",
    localIdentityPublicKey: local.identity,
    remoteIdentityPublicKey: remote.identity,
    localPresence: local.presence,
    remotePresencePublicKey: remote.presence.publicKey,
  };
}

const initiatorOptions = optionsFor(INITIATOR, RESPONDER);
const responderOptions = optionsFor(RESPONDER, INITIATOR);

/** A change to apply to bytes made during the run (so each run can use a fresh handshake). */
type Mutation = (bytes: Uint8Array) => Uint8Array;

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ at: fc.nat(), bit: fc.nat(7) }).map(({ at, bit }) => (bytes: Uint8Array) => {
    const out = bytes.slice();
    out[at % out.length] ^= 1 << bit;
    return out;
  }),
  fc.nat().map((cut) => (bytes: Uint8Array) => bytes.slice(0, cut % bytes.length)),
  fc.uint8Array({ minLength: 1, maxLength: 40 }).map((extra) => (bytes: Uint8Array) => {
    const out = new Uint8Array(bytes.length + extra.length);
    out.set(bytes);
    out.set(extra, bytes.length);
    return out;
  }),
  fc.tuple(fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 24 })).map(
    ([at, patch]) => (bytes: Uint8Array) => {
      const out = bytes.slice();
      const start = at % out.length;
      out.set(patch.subarray(0, out.length - start), start);
      return out;
    },
  ),
);

Deno.test("fuzz: pairwiseMessageKind on arbitrary and mutated bytes", async () => {
  const { session, hello } = PairwiseSession.initiate(initiatorOptions);
  const { session: bob, accept } = PairwiseSession.accept({ ...responderOptions, hello });
  session.readAccept(accept);
  const data = bob.encrypt(utf8("sample"));
  await fuzzRow("pairwise message kind", {
    inputs: fc.oneof(mutationsOf([hello, accept, data]), fc.uint8Array({ maxLength: 1300 })),
    parse: (bytes): Outcome => {
      const kind = pairwiseMessageKind(bytes);
      const expected = { hello: [1, 1265], accept: [2, 1169], data: [3, -1] }[kind];
      if (bytes[0] !== expected[0] || (expected[1] > 0 && bytes.length !== expected[1])) {
        return { forged: `${kind} accepted for a message it is not` };
      }
      return "accepted";
    },
    refusal: isRefusal,
  });
});

Deno.test("fuzz: PairwiseSession.accept on mutated hellos", async () => {
  const { hello } = PairwiseSession.initiate(initiatorOptions);
  await fuzzRow("pairwise hello (accept)", {
    inputs: fc.oneof(mutationsOf([hello]), fc.uint8Array({ minLength: 1265, maxLength: 1265 })),
    runs: HANDSHAKE_RUNS,
    parse: (bytes): Outcome => {
      PairwiseSession.accept({ ...responderOptions, hello: bytes });
      return sameBytes(bytes, hello) ? "accepted" : { forged: "an altered hello verified" };
    },
    refusal: isRefusal,
  });
});

Deno.test("fuzz: readAccept on mutated accepts (fresh handshake per input)", async () => {
  await fuzzRow("pairwise accept (readAccept)", {
    inputs: mutation,
    runs: HANDSHAKE_RUNS,
    parse: (mutate): Outcome => {
      const { session, hello } = PairwiseSession.initiate(initiatorOptions);
      const { accept } = PairwiseSession.accept({ ...responderOptions, hello });
      const bytes = mutate(accept);
      session.readAccept(bytes);
      return sameBytes(bytes, accept) ? "accepted" : { forged: "an altered accept verified" };
    },
    refusal: isRefusal,
  });
});

Deno.test("fuzz: decrypt on mutated and arbitrary data messages", async () => {
  const { session: alice, hello } = PairwiseSession.initiate(initiatorOptions);
  const { session: bob, accept } = PairwiseSession.accept({ ...responderOptions, hello });
  alice.readAccept(accept);
  const genuine = Array.from({ length: 8 }, (_, i) => alice.encrypt(utf8(`direct ${i}`)));
  await fuzzRow("pairwise data (decrypt)", {
    inputs: fc.oneof(mutationsOf(genuine), fc.uint8Array({ maxLength: 120 })),
    parse: (bytes): Outcome => {
      bob.decrypt(bytes);
      // Only a genuine message, once, may open.
      return genuine.some((message) => sameBytes(message, bytes))
        ? "accepted"
        : { forged: "altered data opened" };
    },
    refusal: isRefusal,
  });
});

Deno.test("hostile relay: tampered pairwise hello, accept and data in live sessions", async () => {
  await fuzzRow("tampered pairwise messages (hostile relay)", {
    inputs: fc.record({ target: fc.constantFrom("hello", "accept", "data"), mutate: mutation }),
    runs: HANDSHAKE_RUNS,
    parse: ({ target, mutate }): Outcome => {
      const { session: alice, hello } = PairwiseSession.initiate(initiatorOptions);
      const sentHello = target === "hello" ? mutate(hello) : hello;
      const { session: bob, accept } = PairwiseSession.accept({
        ...responderOptions,
        hello: sentHello,
      });
      const sentAccept = target === "accept" ? mutate(accept) : accept;
      alice.readAccept(sentAccept);
      const data = alice.encrypt(utf8("the direct text"));
      const sentData = target === "data" ? mutate(data) : data;
      const { plaintext } = bob.decrypt(sentData);
      const changed = !sameBytes(sentHello, hello) || !sameBytes(sentAccept, accept) ||
        !sameBytes(sentData, data);
      if (changed) return { forged: `a tampered ${target} led to an opened message` };
      return new TextDecoder().decode(plaintext) === "the direct text"
        ? "accepted"
        : { forged: "wrong plaintext" };
    },
    refusal: isRefusal,
  });
});

// ---------------------------------------------------------------- prekeys

const OWNER = generateIdentity();
const SENDER = generateIdentity();
const SIGNED = generatePrekey({
  identity: OWNER,
  kind: "signed",
  id: 1,
  created: 1_760_000_000_000,
});
const ONE_TIME = generatePrekey({
  identity: OWNER,
  kind: "one-time",
  id: 9,
  created: 1_760_000_000_000,
});
const BUNDLES = [
  encodePrekeyBundle({ signedPrekey: SIGNED.record }),
  encodePrekeyBundle({ signedPrekey: SIGNED.record, oneTimePrekey: ONE_TIME.record }),
];

Deno.test("fuzz: verifyPrekeyBundle on mutated bundles", async () => {
  await fuzzRow("prekey bundles", {
    inputs: fc.oneof(mutationsOf(BUNDLES), fc.uint8Array({ maxLength: 2700 })),
    runs: HANDSHAKE_RUNS,
    parse: (bytes): Outcome => {
      verifyPrekeyBundle({ identityPublicKey: OWNER.publicKey, bundle: bytes });
      return BUNDLES.some((bundle) => sameBytes(bundle, bytes))
        ? "accepted"
        : { forged: "an altered prekey bundle verified" };
    },
    refusal: (error) => error instanceof PrekeyError,
  });
});

Deno.test("fuzz: openPrekeyEnvelope on mutated envelopes (signed and one-time prekeys)", async () => {
  const secrets = new MemoryPrekeyStore();
  secrets.addSignedPrekey(1, SIGNED.secretKey);
  secrets.addOneTimePrekey(9, ONE_TIME.secretKey);
  const envelopes = BUNDLES.map((bundle, i) =>
    sealPrekeyEnvelope({
      room: "fuzz",
      sender: SENDER,
      recipientIdentityPublicKey: OWNER.publicKey,
      bundle: verifyPrekeyBundle({ identityPublicKey: OWNER.publicKey, bundle }),
      content: utf8(`sender key ${i}`),
    })
  );
  let opened = 0;
  await fuzzRow("prekey envelopes (hostile relay)", {
    inputs: fc.oneof(mutationsOf(envelopes), fc.uint8Array({ maxLength: 1300 })),
    runs: HANDSHAKE_RUNS,
    parse: (bytes): Outcome => {
      openPrekeyEnvelope({
        room: "fuzz",
        recipientIdentityPublicKey: OWNER.publicKey,
        senderIdentityPublicKey: SENDER.publicKey,
        envelope: bytes,
        secrets,
      });
      opened++;
      // Each genuine envelope opens once; after that it is a replay.
      if (!envelopes.some((envelope) => sameBytes(envelope, bytes))) {
        return { forged: "an altered prekey envelope opened" };
      }
      return opened <= envelopes.length ? "accepted" : { forged: "a prekey envelope opened twice" };
    },
    refusal: (error) => error instanceof PrekeyError,
  });
});
