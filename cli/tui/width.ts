/**
 * How many terminal columns text takes: grapheme clusters (what a person
 * sees as one character) of width 0, 1 or 2.
 *
 * Rules, following Unicode's East Asian Width (UAX #11) and emoji
 * presentation (UTS #51) as terminals implement them:
 * - a cluster with an emoji-presentation character, or an emoji followed by
 *   VS16 (U+FE0F), or a flag (two regional indicators) is 2 columns;
 * - a cluster whose first character is East Asian Wide or Fullwidth (CJK,
 *   Hangul syllables, kana, fullwidth forms) is 2 columns;
 * - combining marks, format characters (ZWJ, variation selectors) and other
 *   zero-width characters add nothing;
 * - everything else is 1 column.
 *
 * Terminals disagree on a few recent ZWJ sequences; the screen clips every
 * row and positions every row absolutely, so a disagreement can misplace
 * characters within one row but never spill into another.
 *
 * @module
 */

/** East Asian Wide and Fullwidth ranges that are not emoji (those are found by property). */
const WIDE_RANGES: ReadonlyArray<readonly [number, number]> = [
  [0x1100, 0x115f], // Hangul Jamo leading consonants
  [0x2329, 0x232a], // angle brackets
  [0x2e80, 0x303e], // CJK radicals, Kangxi, ideographic description, CJK symbols
  [0x3041, 0x33ff], // kana, Bopomofo, Hangul compatibility Jamo, Kanbun, CJK compatibility
  [0x3400, 0x4dbf], // CJK extension A
  [0x4e00, 0x9fff], // CJK unified ideographs
  [0xa000, 0xa4cf], // Yi
  [0xa960, 0xa97f], // Hangul Jamo extended A
  [0xac00, 0xd7a3], // Hangul syllables
  [0xf900, 0xfaff], // CJK compatibility ideographs
  [0xfe10, 0xfe19], // vertical forms
  [0xfe30, 0xfe6f], // CJK compatibility forms, small form variants
  [0xff00, 0xff60], // fullwidth forms
  [0xffe0, 0xffe6], // fullwidth signs
  [0x16fe0, 0x16fff], // ideographic symbols
  [0x17000, 0x18d8f], // Tangut, Khitan
  [0x1aff0, 0x1b2ff], // kana supplement and extensions, Nushu
  [0x1f200, 0x1f2ff], // enclosed ideographic supplement
  [0x20000, 0x3fffd], // CJK extensions B and later
];

const EMOJI_PRESENTATION = /\p{Emoji_Presentation}/u;
const PICTOGRAPHIC_WITH_VS16 = /\p{Extended_Pictographic}\uFE0F/u;
const ZERO_WIDTH = /^[\p{Mn}\p{Me}\p{Cf}\u1160-\u11ff\u200b]$/u;

const segmenter = typeof Intl.Segmenter === "function"
  ? new Intl.Segmenter(undefined, { granularity: "grapheme" })
  : undefined;

/**
 * Splits text into grapheme clusters (code points where `Intl.Segmenter` is
 * missing).
 *
 * @example
 * ```ts
 * graphemes("e\u0301👍🏽!"); // ["é", "👍🏽", "!"]
 * ```
 */
export function graphemes(text: string): string[] {
  if (segmenter === undefined) return [...text];
  const clusters: string[] = [];
  for (const { segment } of segmenter.segment(text)) clusters.push(segment);
  return clusters;
}

function isWide(codePoint: number): boolean {
  let low = 0;
  let high = WIDE_RANGES.length - 1;
  while (low <= high) {
    const middle = (low + high) >> 1;
    const [start, end] = WIDE_RANGES[middle];
    if (codePoint < start) high = middle - 1;
    else if (codePoint > end) low = middle + 1;
    else return true;
  }
  return false;
}

/**
 * Columns one grapheme cluster takes: 0, 1 or 2.
 *
 * @example
 * ```ts
 * clusterWidth("a"); // 1
 * clusterWidth("你"); // 2
 * clusterWidth("🎉"); // 2
 * clusterWidth("\u200d"); // 0
 * ```
 */
export function clusterWidth(cluster: string): number {
  const first = cluster.codePointAt(0);
  if (first === undefined) return 0;
  // Controls are escaped before display; count them as one column if one slips through.
  if (first < 0x20 || (first >= 0x7f && first < 0xa0)) return 1;
  if (first < 0x300 && cluster.length === 1) return 1;
  if (EMOJI_PRESENTATION.test(cluster) || PICTOGRAPHIC_WITH_VS16.test(cluster)) {
    // VS15 asks for the text (narrow) presentation.
    return cluster.includes("\uFE0E") ? 1 : 2;
  }
  if (isWide(first)) return 2;
  for (const char of cluster) if (!ZERO_WIDTH.test(char)) return 1;
  return 0;
}

/**
 * Columns a string takes.
 *
 * @example
 * ```ts
 * stringWidth("hi 你好 🎉"); // 10
 * ```
 */
export function stringWidth(text: string): number {
  // Plain ASCII is by far the most common case.
  if (/^[\x20-\x7e]*$/.test(text)) return text.length;
  let width = 0;
  for (const cluster of graphemes(text)) width += clusterWidth(cluster);
  return width;
}

/**
 * Cuts text to at most `columns` columns, never splitting a cluster.
 *
 * @example
 * ```ts
 * truncateToWidth("你好世界", 5); // "你好"
 * ```
 */
export function truncateToWidth(text: string, columns: number): string {
  let width = 0;
  let result = "";
  for (const cluster of graphemes(text)) {
    const next = width + clusterWidth(cluster);
    if (next > columns) break;
    width = next;
    result += cluster;
  }
  return result;
}
