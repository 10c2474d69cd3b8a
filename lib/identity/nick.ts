/**
 * The name profile: which nicks and room names are valid, and which two
 * nicks look alike. One rule for everyone: the relay checks it on every
 * join, receivers on every announcement, the CLI on `--nick`, `--room`,
 * `/nick` and `/join`, and `known_peers` stores exactly the nicks it allows.
 *
 * A nick is, after the sender normalises it to Unicode NFC (receivers never
 * normalise: bytes that are not NFC are refused, since they are signed):
 *
 * - 1 to 64 bytes of UTF-8, in NFC;
 * - made of letters (L), decimal digits (Nd) and combining marks (Mn, Mc)
 *   that are not Default_Ignorable_Code_Point, nor Deprecated (the
 *   LetterDigits class of PRECIS, RFC 8264, less the invisible characters
 *   UTS #39 removes from identifiers: U+034F, variation selectors, the
 *   Hangul fillers U+115F, U+1160, U+3164, U+FFA0, ...), and of printable
 *   ASCII other than the space (PRECIS ASCII7: `!` to `~`);
 * - each letter, digit and mark of a script recommended for identifiers
 *   (UTS #31 table 5), or of Common or Inherited;
 * - not starting with a combining mark or with `#` (a `#` field starts a
 *   comment in the trust files and names a room in chat commands);
 * - no run of more than 4 combining marks, and no combining mark twice in
 *   a row (UTS #39 §5.4);
 * - of one script, or of one of UTS #39's "highly restrictive"
 *   combinations (Latin with Han, Hiragana and Katakana; Latin with Han and
 *   Bopomofo; Latin with Han and Hangul), by the characters' Script_Extensions.
 *
 * A room name follows the same rules, except that it may start with `#` and
 * may contain single spaces between words; each word is checked for mixed
 * scripts on its own.
 *
 * Look-alikes: two different nicks whose UTS #39 skeletons are equal after
 * lowercasing (`paypal` and `pаypal` with a Cyrillic а, `alice` and `AIice`)
 * are confusable. The prototype table covers every confusables.txt mapping
 * whose source is a character this profile allows (lib/identity/nick_confusables.ts).
 *
 * Text outside this profile in input from people is refused with a message
 * saying why, never silently changed beyond NFC.
 *
 * @module
 */

import { CONFUSABLE_PROTOTYPES } from "./nick_confusables.ts";

/** Longest room name or nick, in UTF-8 bytes. */
export const MAX_NAME_BYTES = 64;

/** Scripts recommended for identifiers (UTS #31, table 5, Unicode 15). */
const RECOMMENDED_SCRIPTS = [
  "Arabic",
  "Armenian",
  "Bengali",
  "Bopomofo",
  "Cyrillic",
  "Devanagari",
  "Ethiopic",
  "Georgian",
  "Greek",
  "Gujarati",
  "Gurmukhi",
  "Han",
  "Hangul",
  "Hebrew",
  "Hiragana",
  "Kannada",
  "Katakana",
  "Khmer",
  "Lao",
  "Latin",
  "Malayalam",
  "Myanmar",
  "Oriya",
  "Sinhala",
  "Tamil",
  "Telugu",
  "Thaana",
  "Thai",
  "Tibetan",
] as const;

const SCRIPT_TESTS = RECOMMENDED_SCRIPTS.map((script) =>
  [script, new RegExp(`^\\p{scx=${script}}$`, "u")] as const
);
/** Common or Inherited in every script: digits, ASCII punctuation, most combining marks. */
const ANY_SCRIPT = /^[\p{scx=Zyyy}\p{scx=Zinh}]$/u;
const LETTER_DIGIT_MARK = /^[\p{L}\p{Nd}\p{Mn}\p{Mc}]$/u;
const INVISIBLE_OR_DEPRECATED = /^[\p{Default_Ignorable_Code_Point}\p{Deprecated}]$/u;
const MARK = /^\p{M}$/u;
const ASCII_PRINTABLE = /^[\x21-\x7e]$/;
const RECOMMENDED_PATTERN = new RegExp(
  `^[${RECOMMENDED_SCRIPTS.map((script) => `\\p{scx=${script}}`).join("")}]$`,
  "u",
);

/** UTS #39 §5.1: Han also counts as the writing systems that use it. */
const AUGMENTED: Record<string, string[]> = {
  Han: ["Hanb", "Jpan", "Kore"],
  Hiragana: ["Jpan"],
  Katakana: ["Jpan"],
  Hangul: ["Kore"],
  Bopomofo: ["Hanb"],
};
/** UTS #39 §5.2, highly restrictive: Latin may be combined with one of these. */
const WITH_LATIN = ["Jpan", "Hanb", "Kore"];

/**
 * Whether `char` (one code point) may appear in a nick at all.
 *
 * @example
 * ```ts
 * isProfileCharacter("é"); // true
 * isProfileCharacter("\u3164"); // false: Hangul filler, invisible
 * ```
 */
export function isProfileCharacter(char: string): boolean {
  if (ASCII_PRINTABLE.test(char)) return true;
  if (!LETTER_DIGIT_MARK.test(char) || INVISIBLE_OR_DEPRECATED.test(char)) return false;
  return ANY_SCRIPT.test(char) || RECOMMENDED_PATTERN.test(char);
}

/** Augmented script set of one profile character; undefined means every script. */
function scriptsOf(char: string): Set<string> | undefined {
  if (ANY_SCRIPT.test(char)) return undefined;
  const scripts = new Set<string>();
  for (const [script, test] of SCRIPT_TESTS) {
    if (!test.test(char)) continue;
    scripts.add(script);
    for (const extra of AUGMENTED[script] ?? []) scripts.add(extra);
  }
  return scripts;
}

/** Whether a word's characters are of one script or a highly restrictive combination. */
function singleScript(word: string): boolean {
  const sets = [...word].map(scriptsOf).filter((set) => set !== undefined) as Set<string>[];
  if (sets.length === 0) return true;
  const common = [...sets[0]].filter((script) => sets.every((set) => set.has(script)));
  if (common.length > 0) return true;
  return WITH_LATIN.some((partner) => sets.every((set) => set.has("Latin") || set.has(partner)));
}

function describe(char: string): string {
  return `U+${char.codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0")}`;
}

/** The first problem with the characters of `word`, or null. */
function characterProblem(what: string, word: string): string | null {
  let run = 0;
  let previous = "";
  for (const char of word) {
    if (!isProfileCharacter(char)) {
      if (/\s/u.test(char)) return `${what} must not contain whitespace (${describe(char)})`;
      return `${what} must not contain ${describe(char)}: only letters, digits and marks of ` +
        "scripts used for names, and printable ASCII other than space, are allowed";
    }
    if (MARK.test(char)) {
      if (previous === "" || previous === " ") {
        return `${what} must not start a word with a combining mark (${describe(char)})`;
      }
      if (char === previous) return `${what} must not repeat the combining mark ${describe(char)}`;
      if (++run > 4) return `${what} must not have more than 4 combining marks in a row`;
    } else run = 0;
    previous = char;
  }
  if (!singleScript(word)) {
    return `${what} must not mix scripts (such as Latin and Cyrillic) in one word`;
  }
  return null;
}

function lengthProblem(what: string, name: string): string | null {
  if (typeof name !== "string") return `${what} must be a string`;
  // Lone surrogates first: the UTF-8 encoder would replace them silently.
  if (!name.isWellFormed()) return `${what} must be valid Unicode`;
  const length = new TextEncoder().encode(name).length;
  if (length < 1 || length > MAX_NAME_BYTES) {
    return `${what} must be 1 to ${MAX_NAME_BYTES} bytes of UTF-8`;
  }
  if (name.normalize("NFC") !== name) return `${what} must be in Unicode NFC form`;
  return null;
}

/**
 * Checks a nick against the profile. Returns what is wrong, or `null`.
 *
 * @example
 * ```ts
 * nickProblem("alice"); // null
 * nickProblem("bob\u034f"); // "nick must not contain U+034F: ..."
 * ```
 */
export function nickProblem(nick: string): string | null {
  const problem = lengthProblem("nick", nick);
  if (problem !== null) return problem;
  if (nick.startsWith("#")) return "nick must not start with #";
  return characterProblem("nick", nick);
}

/**
 * Checks a room name against the profile: a nick's rules, words separated
 * by single spaces, and `#` allowed at the start. Returns what is wrong, or
 * `null`.
 *
 * @example
 * ```ts
 * roomProblem("#rust users"); // null
 * roomProblem(" lobby"); // "room name must not start or end with a space, ..."
 * ```
 */
export function roomProblem(room: string): string | null {
  const problem = lengthProblem("room name", room);
  if (problem !== null) return problem;
  const words = room.split(" ");
  if (words.some((word) => word === "")) {
    return "room name must not start or end with a space, or have two spaces in a row";
  }
  for (const word of words) {
    const wordProblem = characterProblem("room name", word);
    if (wordProblem !== null) return wordProblem;
  }
  return null;
}

/**
 * What a person typed, as the profile compares it: Unicode NFC. Callers
 * normalise input from people with this before checking it, so that any
 * keyboard gives the same bytes.
 *
 * @example
 * ```ts
 * normalizeName("e\u0301"); // "é"
 * ```
 */
export function normalizeName(text: string): string {
  return text.isWellFormed() ? text.normalize("NFC") : text;
}

let prototypes: Map<number, string> | undefined;

function prototypeTable(): Map<number, string> {
  if (prototypes) return prototypes;
  const fromHex = (field: string) =>
    field.split(".").map((code) => String.fromCodePoint(parseInt(code, 16))).join("");
  prototypes = new Map();
  for (const entry of CONFUSABLE_PROTOTYPES.split(" ")) {
    const [source, target] = entry.split(">");
    prototypes.set(parseInt(source, 16), fromHex(target));
  }
  return prototypes;
}

/**
 * The UTS #39 skeleton of a name, made case-blind: skeleton, lowercase,
 * skeleton again (so `AIice`, whose `I` looks like `l`, meets `alice`). A
 * skeleton is NFD, each character replaced by its confusable prototype, NFD
 * again. Two names with the same result look alike.
 *
 * @example
 * ```ts
 * nickSkeleton("p\u0430ypal") === nickSkeleton("paypal"); // true (Cyrillic а)
 * ```
 */
export function nickSkeleton(name: string): string {
  return skeleton(skeleton(name).toLowerCase());
}

function skeleton(name: string): string {
  const table = prototypeTable();
  let out = "";
  for (const char of name.normalize("NFD")) out += table.get(char.codePointAt(0)!) ?? char;
  return out.normalize("NFD");
}

/**
 * The first of `known` that looks like `nick` without being it, or
 * undefined.
 *
 * @example
 * ```ts
 * confusableNick("AIice", ["alice", "bob"]); // "alice"
 * confusableNick("alice", ["alice"]); // undefined
 * ```
 */
export function confusableNick(nick: string, known: Iterable<string>): string | undefined {
  const skeleton = nickSkeleton(nick);
  for (const other of known) {
    if (other !== nick && nickSkeleton(other) === skeleton) return other;
  }
  return undefined;
}
