/**
 * Version numbers. The protocol version moves whenever old peers would break;
 * it travels in the preamble of every connection.
 *
 * @module
 */

/** The wire protocol version this code speaks. @example `PROTOCOL_VERSION // 2` */
export const PROTOCOL_VERSION = 2;

/** The program version. @example `PROGRAM_VERSION // "0.1.0"` */
export const PROGRAM_VERSION = "0.1.0";
