/**
 * The escaping of network strings per output mode (cli/output.ts), the
 * last guard on the chat screen (cli/tui/style.ts), message times from a
 * sender's clock, and the process-wide crash policy (cli/main.ts).
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { escapeTerminal, jsonLine, messageTime } from "../cli/output.ts";
import { displayLines, nickSpans } from "../cli/tui/format.ts";
import { renderSpans } from "../cli/tui/style.ts";
import { installCrashPolicy } from "../cli/main.ts";

const HOSTILE = [
  "\x1b]0;title\x07",
  "\x1b[2J",
  "\x1b]52;c;ZWNobw==\x07",
  "\u009b2J",
  "\u202eevil",
  "\u2066x\u2069",
  "a\u2028b",
  "\u061c\u200e\u200f",
  "cr\rlf\n",
  "\x00\x7f\x85",
];
const UNSAFE =
  // deno-lint-ignore no-control-regex -- matching control characters is the point
  /[\x00-\x08\x0a-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

Deno.test("escapeTerminal: nothing that drives or reorders a terminal survives", () => {
  for (const text of HOSTILE) {
    assert.doesNotMatch(escapeTerminal(text), UNSAFE, JSON.stringify(text));
  }
  assert.equal(escapeTerminal("a\nb\x1b[2J\u202e\tz"), "a\\nb\\u001b[2J\\u202e\tz");
  assert.equal(escapeTerminal("plain text, 日本語, emoji 🎉"), "plain text, 日本語, emoji 🎉");
  fc.assert(
    fc.property(fc.string({ unit: "binary" }), (text) => {
      const once = escapeTerminal(text);
      assert.doesNotMatch(once, UNSAFE);
      assert.equal(escapeTerminal(once), once, "idempotent on its own output");
    }),
    { numRuns: 500 },
  );
});

Deno.test("jsonLine: C1, bidi and separators escaped; the value parses back unchanged", () => {
  for (const text of HOSTILE) {
    const line = jsonLine({ text });
    assert.doesNotMatch(line, UNSAFE, JSON.stringify(text));
    assert.equal(JSON.parse(line).text, text);
  }
  fc.assert(
    fc.property(fc.string({ unit: "binary" }), (text) => {
      const line = jsonLine({ type: "message", text, from: text });
      assert.doesNotMatch(line, UNSAFE);
      assert.deepEqual(JSON.parse(line), { type: "message", text, from: text });
    }),
    { numRuns: 500 },
  );
});

Deno.test("chat screen: every span is escaped on its way out, however it got there", () => {
  for (const text of HOSTILE) {
    const rendered = renderSpans([{ text, style: { bold: true } }, { text: `x${text}` }], true);
    // Only the SGR sequences renderSpans adds itself remain.
    const sgr = new RegExp("\x1b\\[[0-9;]*m", "g");
    assert.doesNotMatch(rendered.replace(sgr, ""), UNSAFE, JSON.stringify(text));
    for (const line of displayLines(text)) assert.doesNotMatch(line, UNSAFE);
    for (const span of nickSpans(text, "new")) assert.doesNotMatch(span.text, UNSAFE);
  }
});

Deno.test("message times: a sender's far-off clock never breaks output", () => {
  const now = Date.UTC(2026, 0, 1);
  assert.deepEqual(messageTime(now - 5_000, now), { time: new Date(now - 5_000).toISOString() });
  for (const sent of [0, 2 ** 53 - 1, 8.64e15 + 1, now + 2 * 86_400_000]) {
    assert.deepEqual(messageTime(sent, now), { time: new Date(now).toISOString(), sentTime: sent });
  }
});

Deno.test("crash policy: an unhandled rejection is one line and the process goes on", async () => {
  const lines: string[] = [];
  const remove = installCrashPolicy((line) => lines.push(line));
  try {
    Promise.reject(new Error("write failed\x1b]0;x\x07\nsecond line"));
    await new Promise((resolve) => setTimeout(resolve, 20));
  } finally {
    remove();
  }
  assert.deepEqual(lines, [
    "securechat: internal error (continuing): write failed\\u001b]0;x\\u0007 second line\n",
  ]);
});
