/**
 * The error type and size limits shared by the Noise modules.
 *
 * @module
 */

/** Largest Noise message (handshake or transport) in bytes, per the specification. */
export const MAX_MESSAGE_LENGTH = 65535;

/** Length of the AEAD authentication tag appended to every encrypted Noise field. */
export const TAG_LENGTH = 16;

/**
 * Raised for every Noise failure: bad configuration, a message that fails to
 * authenticate, a message that is too long or too short, or a handshake used
 * out of turn. Messages never contain key material or plaintext.
 *
 * @example
 * ```ts
 * try {
 *   handshake.readMessage(message);
 * } catch (error) {
 *   if (error instanceof NoiseError) console.error(error.message);
 * }
 * ```
 */
export class NoiseError extends Error {
  /**
   * @example
   * ```ts
   * throw new NoiseError("message failed to authenticate");
   * ```
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "NoiseError";
  }
}
