/**
 * Noise handshake patterns (spec sections 7 and 9): the token tables for
 * every named one-way, interactive and deferred pattern, a parser for
 * pattern names with `pskN` modifiers, and the validity checks the engine
 * relies on.
 *
 * @module
 */

import { NoiseError } from "./error.ts";

/** A handshake token. */
export type Token = "e" | "s" | "ee" | "es" | "se" | "ss" | "psk";

/** One handshake message: who sends it and the tokens it carries. */
export interface MessagePattern {
  /** True for `->` (initiator to responder). */
  fromInitiator: boolean;
  /** Tokens processed in order before the payload. */
  tokens: Token[];
}

/** A fully expanded handshake pattern. */
export interface HandshakePattern {
  /** The pattern part of the protocol name, e.g. `XXpsk3`. */
  name: string;
  /** Keys the responder knows in advance (`-> s` before `...`). */
  initiatorPreMessage: Token[];
  /** Keys the initiator knows in advance (`<- s` before `...`). */
  responderPreMessage: Token[];
  /** The handshake messages, in order. */
  messages: MessagePattern[];
  /** Whether any `psk` token occurs (which also makes `e` call MixKey). */
  hasPsk: boolean;
  /** Whether only the initiator ever sends (N, K, X and their psk variants). */
  oneWay: boolean;
}

// Written exactly as in the specification so they can be checked by eye.
const TABLES: Record<string, string> = {
  // One-way (7.4)
  N: "<- s | ... | -> e, es",
  K: "-> s | <- s | ... | -> e, es, ss",
  X: "<- s | ... | -> e, es, s, ss",
  // Interactive fundamental (7.5)
  NN: "-> e | <- e, ee",
  NK: "<- s | ... | -> e, es | <- e, ee",
  NX: "-> e | <- e, ee, s, es",
  KN: "-> s | ... | -> e | <- e, ee, se",
  KK: "-> s | <- s | ... | -> e, es, ss | <- e, ee, se",
  KX: "-> s | ... | -> e | <- e, ee, se, s, es",
  XN: "-> e | <- e, ee | -> s, se",
  XK: "<- s | ... | -> e, es | <- e, ee | -> s, se",
  XX: "-> e | <- e, ee, s, es | -> s, se",
  IN: "-> e, s | <- e, ee, se",
  IK: "<- s | ... | -> e, es, s, ss | <- e, ee, se",
  IX: "-> e, s | <- e, ee, se, s, es",
  // Deferred (7.6)
  NK1: "<- s | ... | -> e | <- e, ee, es",
  NX1: "-> e | <- e, ee, s | -> es",
  X1N: "-> e | <- e, ee | -> s | <- se",
  X1K: "<- s | ... | -> e, es | <- e, ee | -> s | <- se",
  XK1: "<- s | ... | -> e | <- e, ee, es | -> s, se",
  X1K1: "<- s | ... | -> e | <- e, ee, es | -> s | <- se",
  X1X: "-> e | <- e, ee, s, es | -> s | <- se",
  XX1: "-> e | <- e, ee, s | -> es, s, se",
  X1X1: "-> e | <- e, ee, s | -> es, s | <- se",
  K1N: "-> s | ... | -> e | <- e, ee | -> se",
  K1K: "-> s | <- s | ... | -> e, es | <- e, ee | -> se",
  KK1: "-> s | <- s | ... | -> e | <- e, ee, se, es",
  K1K1: "-> s | <- s | ... | -> e | <- e, ee, es | -> se",
  K1X: "-> s | ... | -> e | <- e, ee, s, es | -> se",
  KX1: "-> s | ... | -> e | <- e, ee, se, s | -> es",
  K1X1: "-> s | ... | -> e | <- e, ee, s | -> se, es",
  I1N: "-> e, s | <- e, ee | -> se",
  I1K: "<- s | ... | -> e, es, s | <- e, ee | -> se",
  IK1: "<- s | ... | -> e, s | <- e, ee, se, es",
  I1K1: "<- s | ... | -> e, s | <- e, ee, es | -> se",
  I1X: "-> e, s | <- e, ee, s, es | -> se",
  IX1: "-> e, s | <- e, ee, se, s | -> es",
  I1X1: "-> e, s | <- e, ee, s | -> se, es",
};

const ONE_WAY = new Set(["N", "K", "X"]);
const TOKENS = new Set<string>(["e", "s", "ee", "es", "se", "ss", "psk"]);

/** Names of the base patterns this module knows, in specification order. */
export const PATTERN_NAMES: readonly string[] = Object.freeze(Object.keys(TABLES));

interface BasePattern {
  initiatorPreMessage: Token[];
  responderPreMessage: Token[];
  messages: MessagePattern[];
}

function parseLine(line: string): { fromInitiator: boolean; tokens: Token[] } {
  const match = /^(->|<-)\s*(.*)$/.exec(line.trim());
  if (!match) throw new Error(`bad pattern line "${line}"`);
  const tokens = match[2].split(",").map((token) => token.trim()).filter((t) => t !== "");
  for (const token of tokens) {
    if (!TOKENS.has(token)) throw new Error(`bad token "${token}"`);
  }
  return { fromInitiator: match[1] === "->", tokens: tokens as Token[] };
}

function parseTable(table: string): BasePattern {
  const lines = table.split("|").map((line) => line.trim());
  const split = lines.indexOf("...");
  const pre = split === -1 ? [] : lines.slice(0, split).map(parseLine);
  const messages = lines.slice(split + 1).map(parseLine);
  return {
    initiatorPreMessage: pre.filter((m) => m.fromInitiator).flatMap((m) => m.tokens),
    responderPreMessage: pre.filter((m) => !m.fromInitiator).flatMap((m) => m.tokens),
    messages,
  };
}

/**
 * Expands a pattern name such as `XX`, `IKpsk2` or `NNpsk0+psk2` into its
 * token lists. Throws {@linkcode NoiseError} for unknown patterns or
 * unsupported modifiers (only `pskN` is supported).
 *
 * @example
 * ```ts
 * const pattern = parsePattern("XXpsk3");
 * pattern.messages[2].tokens; // ["s", "se", "psk"]
 * ```
 */
export function parsePattern(name: string): HandshakePattern {
  const match = /^([A-Z][A-Z0-9]*)(.*)$/.exec(name);
  const baseName = match?.[1] ?? "";
  if (!Object.hasOwn(TABLES, baseName)) {
    throw new NoiseError(`unknown handshake pattern "${name}"`);
  }
  const base = parseTable(TABLES[baseName]);
  const messages = base.messages.map((m) => ({ ...m, tokens: [...m.tokens] }));
  const modifiers = match![2] === "" ? [] : match![2].split("+");
  const seen = new Set<number>();
  for (const modifier of modifiers) {
    const psk = /^psk(\d{1,2})$/.exec(modifier);
    if (!psk) {
      throw new NoiseError(
        `unsupported pattern modifier "${modifier}" in "${name}"; only pskN is supported`,
      );
    }
    const position = Number(psk[1]);
    if (seen.has(position) || position > messages.length) {
      throw new NoiseError(`invalid psk position in "${name}"`);
    }
    seen.add(position);
    // psk0 goes first in the first message; pskN goes last in message N.
    if (position === 0) messages[0].tokens.unshift("psk");
    else messages[position - 1].tokens.push("psk");
  }
  const pattern: HandshakePattern = {
    name,
    initiatorPreMessage: base.initiatorPreMessage,
    responderPreMessage: base.responderPreMessage,
    messages,
    hasPsk: modifiers.length > 0,
    oneWay: ONE_WAY.has(baseName),
  };
  checkPskValidity(pattern);
  return pattern;
}

// Spec 9.3: after a psk, a party may only encrypt once it has sent an
// ephemeral, otherwise its key would not be randomised by "e".
function checkPskValidity(pattern: HandshakePattern): void {
  if (!pattern.hasPsk) return;
  const sentEphemeral = [
    pattern.initiatorPreMessage.includes("e"),
    pattern.responderPreMessage.includes("e"),
  ];
  let pskSeen = false;
  const invalid = () =>
    new NoiseError(`pattern "${pattern.name}" is invalid: it encrypts after "psk" before "e"`);
  for (const message of pattern.messages) {
    const sender = message.fromInitiator ? 0 : 1;
    for (const token of message.tokens) {
      if (token === "e") sentEphemeral[sender] = true;
      if (token === "psk") pskSeen = true;
      if (token === "s" && pskSeen && !sentEphemeral[sender]) throw invalid();
    }
    // Every message ends with an encrypted payload.
    if (pskSeen && !sentEphemeral[sender]) throw invalid();
  }
}

/**
 * Counts the `psk` tokens of a pattern, i.e. how many pre-shared keys it needs.
 *
 * @example
 * ```ts
 * pskCount(parsePattern("NNpsk0+psk2")); // 2
 * ```
 */
export function pskCount(pattern: HandshakePattern): number {
  let count = 0;
  for (const message of pattern.messages) {
    for (const token of message.tokens) if (token === "psk") count++;
  }
  return count;
}
