/**
 * The Noise Protocol Framework (revision 34): CipherState, SymmetricState
 * and a HandshakeState that runs every named pattern (one-way, interactive,
 * deferred) with `pskN` modifiers, over DH 25519/448, ChaChaPoly/AESGCM and
 * SHA256/SHA512/BLAKE2s/BLAKE2b. Verified against the cacophony vectors.
 *
 * @example
 * ```ts
 * import { generateKeyPair, HandshakeState } from "../lib/noise.ts";
 *
 * const protocolName = "Noise_NN_25519_ChaChaPoly_SHA256";
 * const alice = new HandshakeState({ protocolName, initiator: true });
 * const bob = new HandshakeState({ protocolName, initiator: false });
 * bob.readMessage(alice.writeMessage());
 * alice.readMessage(bob.writeMessage());
 * const a = alice.split();
 * const b = bob.split();
 * b.receive.decrypt(a.send.encrypt(new Uint8Array([1, 2, 3])));
 * ```
 *
 * @module
 */

export { MAX_MESSAGE_LENGTH, NoiseError, TAG_LENGTH } from "./noise/error.ts";
export {
  type CipherFunction,
  type CipherName,
  type DhFunction,
  type DhName,
  generateKeyPair,
  type HashFunction,
  type HashName,
  type KeyPair,
  keyPairFromSecretKey,
} from "./noise/primitives.ts";
export { CipherState, type CipherStateOptions, MAX_NONCE } from "./noise/cipher_state.ts";
export { SymmetricState, type SymmetricStateOptions } from "./noise/symmetric_state.ts";
export {
  type HandshakePattern,
  type MessagePattern,
  parsePattern,
  PATTERN_NAMES,
  type Token,
} from "./noise/patterns.ts";
export {
  HandshakeState,
  type HandshakeStateOptions,
  type TransportCipherStates,
} from "./noise/handshake_state.ts";
