/**
 * Runs every cacophony Noise test vector through both sides of our
 * HandshakeState: each handshake message is written by one side (checked
 * byte for byte) and read by the other (payload checked), then the
 * handshake hashes and every transport message after split() are checked.
 */

import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { fromHex, toHex } from "../lib/core/bytes.ts";
import {
  type DhName,
  HandshakeState,
  type KeyPair,
  keyPairFromSecretKey,
  parsePattern,
} from "../lib/crypto/noise.ts";

interface Vector {
  protocol_name: string;
  init_prologue: string;
  init_static?: string;
  init_ephemeral?: string;
  init_remote_static?: string;
  init_psks?: string[];
  resp_prologue: string;
  resp_static?: string;
  resp_ephemeral?: string;
  resp_remote_static?: string;
  resp_psks?: string[];
  handshake_hash: string;
  messages: { payload: string; ciphertext: string }[];
}

const VECTORS_URL = new URL("../../shared/test-vectors/noise/cacophony.json", import.meta.url);
const EXPECTED_TOTAL = 944;
// Every vector is supported; lowering this must be a deliberate, visible change.
const EXPECTED_SUPPORTED = 944;

const SUPPORTED = {
  dh: new Set(["25519", "448"]),
  cipher: new Set(["ChaChaPoly", "AESGCM"]),
  hash: new Set(["SHA256", "SHA512", "BLAKE2s", "BLAKE2b"]),
};

const vectors: Vector[] = JSON.parse(await readFile(VECTORS_URL, "utf8")).vectors;

/** Returns why a vector cannot run here, or undefined if it can. */
function unsupportedReason(vector: Vector): string | undefined {
  const [prefix, pattern, dh, cipher, hash] = vector.protocol_name.split("_");
  if (prefix !== "Noise" || hash === undefined) return "malformed protocol name";
  if (!SUPPORTED.dh.has(dh)) return `DH ${dh} not implemented`;
  if (!SUPPORTED.cipher.has(cipher)) return `cipher ${cipher} not implemented`;
  if (!SUPPORTED.hash.has(hash)) return `hash ${hash} not implemented`;
  try {
    parsePattern(pattern);
  } catch (error) {
    return (error as Error).message;
  }
  return undefined;
}

const supported: Vector[] = [];
const skipped: string[] = [];
for (const vector of vectors) {
  const reason = unsupportedReason(vector);
  if (reason === undefined) supported.push(vector);
  else skipped.push(`${vector.protocol_name}: ${reason}`);
}

function side(vector: Vector, initiator: boolean): HandshakeState {
  const dh = vector.protocol_name.split("_")[2] as DhName;
  const prefix = initiator ? "init" : "resp";
  const field = (name: string) => vector[`${prefix}_${name}` as keyof Vector] as string | undefined;
  const pair = (hex: string | undefined): KeyPair | undefined =>
    hex === undefined ? undefined : keyPairFromSecretKey(dh, fromHex(hex));
  const remote = field("remote_static");
  const psks = vector[`${prefix}_psks`];
  return new HandshakeState({
    protocolName: vector.protocol_name,
    initiator,
    prologue: fromHex(field("prologue")!),
    staticKeyPair: pair(field("static")),
    ephemeralKeyPair: pair(field("ephemeral")),
    remoteStaticPublicKey: remote === undefined ? undefined : fromHex(remote),
    psks: psks?.map(fromHex),
  });
}

function runVector(vector: Vector): void {
  const pattern = parsePattern(vector.protocol_name.split("_")[1]);
  const dh = vector.protocol_name.split("_")[2] as DhName;
  const initiator = side(vector, true);
  const responder = side(vector, false);

  let index = 0;
  while (!initiator.isComplete) {
    const fromInitiator = pattern.messages[index].fromInitiator;
    const [writer, reader] = fromInitiator ? [initiator, responder] : [responder, initiator];
    assert.ok(writer.isMyTurn && !reader.isMyTurn, `turn order at message ${index}`);
    const { payload, ciphertext } = vector.messages[index];
    const written = writer.writeMessage(fromHex(payload));
    assert.equal(toHex(written), ciphertext, `handshake message ${index} ciphertext`);
    assert.equal(toHex(reader.readMessage(written)), payload, `handshake message ${index} payload`);
    index++;
  }
  assert.equal(index, pattern.messages.length);
  assert.ok(responder.isComplete, "responder finished together with the initiator");
  assert.equal(toHex(initiator.handshakeHash), vector.handshake_hash, "initiator handshake hash");
  assert.equal(toHex(responder.handshakeHash), vector.handshake_hash, "responder handshake hash");

  // Whatever each side learned about the other's static key must be the real key.
  for (
    const [learner, secretHex] of [
      [initiator, vector.resp_static],
      [responder, vector.init_static],
    ] as const
  ) {
    const expected = secretHex === undefined
      ? undefined
      : toHex(keyPairFromSecretKey(dh, fromHex(secretHex)).publicKey);
    const learned = learner.remoteStaticPublicKey;
    assert.equal(learned === undefined ? undefined : toHex(learned), expected, "remote static");
  }

  const i = initiator.split();
  const r = responder.split();
  for (; index < vector.messages.length; index++) {
    const fromInitiator = pattern.oneWay || index % 2 === 0;
    const [send, receive] = fromInitiator ? [i.send, r.receive] : [r.send, i.receive];
    const { payload, ciphertext } = vector.messages[index];
    const sealed = send.encrypt(fromHex(payload));
    assert.equal(toHex(sealed), ciphertext, `transport message ${index} ciphertext`);
    assert.equal(toHex(receive.decrypt(sealed)), payload, `transport message ${index} payload`);
  }
}

Deno.test("cacophony vectors: all present and all supported", () => {
  assert.equal(vectors.length, EXPECTED_TOTAL, "vector file changed size");
  assert.deepEqual(skipped, [], `skipped vectors:\n${skipped.join("\n")}`);
  assert.equal(supported.length, EXPECTED_SUPPORTED);
});

const suites = new Map<string, Vector[]>();
for (const vector of supported) {
  const suite = vector.protocol_name.split("_").slice(2).join("_");
  suites.set(suite, [...(suites.get(suite) ?? []), vector]);
}

for (const [suite, group] of suites) {
  Deno.test(`cacophony vectors: ${suite} (${group.length})`, async (t) => {
    for (const vector of group) {
      await t.step(vector.protocol_name, () => runVector(vector));
    }
  });
}
