/**
 * The name profile (lib/identity/nick.ts): what a nick and a room name may
 * be, and which nicks look alike.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import {
  confusableNick,
  isProfileCharacter,
  nickProblem,
  nickSkeleton,
  normalizeName,
  roomProblem,
} from "../lib/identity/nick.ts";
import { CONFUSABLE_PROTOTYPES } from "../lib/identity/nick_confusables.ts";

Deno.test("nick profile: ordinary nicks in many scripts pass", () => {
  for (
    const nick of [
      "alice",
      "Bob_99",
      "o'brien",
      "x-ray.v2",
      "Ünïcode",
      "Алиса",
      "Σωκράτης",
      "日本語ユーザー",
      "alice日本",
      "김철수",
      "مرحبا",
      "שלום",
      "नमस्ते",
      "١٢٣",
      "a".repeat(64),
    ]
  ) {
    assert.equal(nickProblem(nick), null, nick);
  }
});

Deno.test("nick profile: invisible marks, fillers and blanks are refused", () => {
  const invisible = [
    "\u034f", // combining grapheme joiner
    "\ufe00", // variation selector 1
    "\ufe0f", // variation selector 16
    "\u{e0100}", // variation selector 17
    "\u3164", // Hangul filler
    "\uffa0", // halfwidth Hangul filler
    "\u115f", // Hangul choseong filler
    "\u1160", // Hangul jungseong filler
    "\u2800", // Braille blank
    "\u17b4", // Khmer vowel inherent aq
    "\u180b", // Mongolian free variation selector
    "\u200b", // zero width space
    "\u200d", // zero width joiner
    "\u2060", // word joiner
    "\u00ad", // soft hyphen
    "\u202e", // right-to-left override
    "\u00a0", // no-break space
    "\u3000", // ideographic space
    "\u1680", // ogham space mark
  ];
  for (const char of invisible) {
    const problem = nickProblem(`bob${char}`);
    assert.notEqual(problem, null, `bob + U+${char.codePointAt(0)!.toString(16)}`);
    assert.equal(isProfileCharacter(char), false);
    assert.notEqual(roomProblem(`ops${char}`), null);
  }
  assert.match(nickProblem("al ice")!, /whitespace/);
  assert.match(nickProblem("bob\u034f")!, /U\+034F/);
});

Deno.test("nick profile: NFC only, no emoji, no leading # or mark, bounded marks", () => {
  assert.match(nickProblem("e\u0301")!, /NFC/);
  assert.equal(nickProblem(normalizeName("e\u0301")), null);
  assert.equal(normalizeName("e\u0301"), "é");
  assert.match(nickProblem("x🎉")!, /U\+1F389/);
  assert.match(nickProblem("#x")!, /start with #/);
  assert.equal(nickProblem("x#"), null);
  assert.match(nickProblem("\u0301a")!, /combining mark/);
  assert.match(nickProblem("x\u0301\u0301")!, /repeat/);
  assert.match(nickProblem("x\u0300\u0301\u0302\u0303\u0304")!, /more than 4/);
  assert.equal(nickProblem("x\u0300\u0301\u0302\u0303"), null);
  assert.match(nickProblem("")!, /1 to 64 bytes/);
  assert.match(nickProblem("é".repeat(33))!, /1 to 64 bytes/);
  assert.match(nickProblem("lone\ud800")!, /valid Unicode/);
  assert.match(nickProblem("tab\tx")!, /whitespace/);
  assert.notEqual(nickProblem("nul\0"), null);
  assert.notEqual(nickProblem("c1\u009b"), null);
});

Deno.test("nick profile: one script per name, or UTS #39's highly restrictive mixes", () => {
  assert.match(nickProblem("p\u0430ypal")!, /mix scripts/); // Cyrillic а among Latin
  assert.match(nickProblem("\u03c1aypal")!, /mix scripts/); // Greek ρ
  assert.equal(nickProblem("alice日本"), null); // Latin + Han
  assert.equal(nickProblem("alice김"), null); // Latin + Hangul
  assert.match(nickProblem("日本김\u0430")!, /mix scripts/);
  assert.equal(nickProblem("Алиса_2"), null); // Cyrillic with Common
  assert.match(nickProblem("\u16a0x")!, /U\+16A0/); // Runic: not a recommended script
});

Deno.test("room profile: a nick's characters, single spaces, # allowed in front", () => {
  assert.equal(roomProblem("#rust users"), null);
  assert.equal(roomProblem("lobby"), null);
  assert.equal(roomProblem("日本 users"), null); // mixed scripts across words
  assert.match(roomProblem("a  b")!, /space/);
  assert.match(roomProblem(" lobby")!, /space/);
  assert.match(roomProblem("lobby ")!, /space/);
  assert.match(roomProblem("p\u0430ypal fans")!, /mix scripts/);
  assert.notEqual(roomProblem("ops\u202e"), null);
});

Deno.test("look-alikes: UTS #39 skeletons, case-blind", () => {
  assert.equal(confusableNick("p\u0430\u0443\u0440\u0430l", ["paypal"]), "paypal"); // Cyrillic
  assert.equal(confusableNick("AIice", ["alice"]), "alice"); // capital I for l
  assert.equal(confusableNick("b0b", ["bob"]), "bob");
  assert.equal(confusableNick("rnary", ["mary"]), "mary");
  assert.equal(confusableNick("Alice", ["alice"]), "alice");
  assert.equal(confusableNick("alice", ["alice"]), undefined);
  assert.equal(confusableNick("carol", ["alice", "bob"]), undefined);
  assert.equal(nickSkeleton("\u0391\u0392"), nickSkeleton("AB")); // Greek capitals
  // Every entry of the generated table unpacks, and only profile characters are mapped.
  for (const entry of CONFUSABLE_PROTOTYPES.split(" ")) {
    const [source] = entry.split(">");
    assert.ok(isProfileCharacter(String.fromCodePoint(parseInt(source, 16))), entry);
  }
});

Deno.test("nick profile: never throws, and what it accepts is stable under NFC", () => {
  fc.assert(
    fc.property(fc.string({ unit: "grapheme", maxLength: 20 }), (text) => {
      const problem = nickProblem(text);
      if (problem === null) {
        assert.equal(text.normalize("NFC"), text);
        assert.equal(confusableNick(text, [text]), undefined);
      }
      roomProblem(text);
      nickSkeleton(text);
    }),
    { numRuns: 500 },
  );
});
