/**
 * The interactive chat screen of `join`.
 *
 * First the pieces without a terminal (widths, the line editor, commands,
 * wrapping, what is made safe to display). Then the real thing through real
 * terminals: a relay, `join` running in tmux sessions, keys typed with
 * send-keys, screens read with capture-pane. Set SECURECHAT_BIN to run the
 * terminal tests against a built executable.
 *
 * tmux must be installed (`apt-get install -y tmux`). Without it the
 * terminal tests are skipped with a message, except under CI (`CI` set),
 * where its absence is a failure.
 */

import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { fingerprint } from "../lib/identity/fingerprint.ts";
import { readPublicKey } from "../lib/identity/identity_file.ts";
import { safetyNumber } from "../lib/identity/safety_number.ts";
import { mentions } from "../cli/tui/app.ts";
import { completeInput, parseLine } from "../cli/tui/commands.ts";
import { LineEditor } from "../cli/tui/editor.ts";
import { displayLines, messageEntry } from "../cli/tui/format.ts";
import { cleanPaste } from "../cli/tui/keys.ts";
import { ChatScreen, wrapEntry } from "../cli/tui/screen.ts";
import { colourWanted, renderSpans } from "../cli/tui/style.ts";
import { clusterWidth, stringWidth, truncateToWidth } from "../cli/tui/width.ts";
import { securechatCommand } from "./support/cli_command.ts";
import { CliProcess, startRelay, TempDirs } from "./support/cli_process.ts";
import { shellQuote, tmuxAvailable, TmuxServer, type TmuxTerminal } from "./support/tmux.ts";
import { HostileRelay } from "./adversarial/support/hostile_relay.ts";

// ---------------------------------------------------------------- pieces

Deno.test("width: ASCII, CJK, emoji, combining marks, ZWJ sequences, flags", () => {
  assert.equal(stringWidth("hello"), 5);
  assert.equal(stringWidth("你好"), 4);
  assert.equal(stringWidth("한국어"), 6);
  assert.equal(stringWidth("ｆｕｌｌ"), 8);
  assert.equal(stringWidth("🎉"), 2);
  assert.equal(stringWidth("👍🏽"), 2, "emoji with a skin tone is one wide cluster");
  assert.equal(stringWidth("👩‍💻"), 2, "a ZWJ sequence is one wide cluster");
  assert.equal(stringWidth("🇫🇷"), 2, "a flag is one wide cluster");
  assert.equal(stringWidth("❤️"), 2, "VS16 asks for emoji presentation");
  assert.equal(stringWidth("❤"), 1, "text presentation by default");
  assert.equal(stringWidth("e\u0301"), 1, "a combining accent adds nothing");
  assert.equal(stringWidth("a\u200bb"), 2, "zero-width space");
  assert.equal(clusterWidth("\u200d"), 0);
  assert.equal(truncateToWidth("你好世界", 5), "你好");
  assert.equal(truncateToWidth("ab🎉cd", 3), "ab");
});

Deno.test("editor: moves and deletes whole clusters, edits words, keeps history and a draft", () => {
  const editor = new LineEditor();
  editor.insert("a👍🏽b");
  editor.left();
  editor.backspace();
  assert.equal(editor.text, "ab", "one backspace removes the emoji and its skin tone");
  editor.insert("é");
  editor.home();
  editor.deleteForward();
  assert.equal(editor.text, "éb");
  editor.set("hello big world");
  editor.deleteWordBack();
  assert.equal(editor.text, "hello big ");
  editor.wordLeft();
  assert.equal(editor.cursor, 6);
  editor.killToEnd();
  assert.equal(editor.text, "hello ");
  editor.killToStart();
  assert.equal(editor.text, "");

  for (const line of ["first", "second"]) {
    editor.set(line);
    assert.equal(editor.submit(), line);
  }
  editor.insert("draft");
  editor.historyUp();
  assert.equal(editor.text, "second");
  editor.historyUp();
  editor.historyUp();
  assert.equal(editor.text, "first", "stops at the oldest line");
  editor.historyDown();
  editor.historyDown();
  assert.equal(editor.text, "draft", "the line being typed comes back");
});

Deno.test("completion: commands, nicks after /msg and /verify, cycling through matches", () => {
  assert.deepEqual(completeInput("/ve", 3, ["bob"]), { start: 0, candidates: ["/verify "] });
  assert.deepEqual(completeInput("/msg b", 6, ["bob", "alice"]), {
    start: 5,
    candidates: ["bob "],
  });
  assert.deepEqual(completeInput("b", 1, ["bob", "Bea", "carol"]), {
    start: 0,
    candidates: ["Bea: ", "bob: "],
  });
  const editor = new LineEditor();
  editor.insert("hi b");
  const provider = (text: string, cursor: number) =>
    completeInput(text, cursor, ["bob", "bea", "carol"]);
  editor.complete(provider);
  assert.equal(editor.text, "hi bea ");
  editor.complete(provider);
  assert.equal(editor.text, "hi bob ", "Tab again cycles");
  editor.complete(provider);
  assert.equal(editor.text, "hi bea ");
});

Deno.test("commands: slash commands, // escape, /me sent as text", () => {
  assert.deepEqual(parseLine("/msg bob hi there"), {
    kind: "command",
    name: "msg",
    args: "bob hi there",
  });
  assert.deepEqual(parseLine("//etc/hosts"), { kind: "text", text: "/etc/hosts" });
  assert.deepEqual(parseLine("/me waves"), { kind: "text", text: "/me waves" });
  assert.deepEqual(parseLine("/ME"), { kind: "command", name: "me", args: "" });
  assert.deepEqual(parseLine("   "), { kind: "empty" });
  assert.deepEqual(parseLine("hello\nworld"), { kind: "text", text: "hello\nworld" });
});

Deno.test("display: control and bidi characters are escaped, newlines split rows", () => {
  assert.deepEqual(displayLines("a\x1b[2Jb\nc\u202ed\r"), ["a\\u001b[2Jb", "c\\u202ed\\r"]);
  assert.deepEqual(displayLines("tab\there"), ["tab    here"]);
  // A nick is escaped too, and a message cannot end its own row early.
  const entry = messageEntry({ time: new Date(0), nick: "eve", status: "new", text: "x\x07y" });
  const shown = entry.lines.map((line) => line.map((span) => span.text).join("")).join("\n");
  assert.ok(!shown.includes("\x07"));
  assert.ok(shown.endsWith("eve: x\\u0007y"));
  assert.deepEqual(cleanPaste("one\r\ntwo\rthree\x1b\n"), "one\ntwo\nthree");
});

Deno.test("wrapping: at spaces, under the text column, wide characters never split", () => {
  const entry = { lines: [[{ text: "12:00 bob: the quick brown fox jumps" }]], indent: 11 };
  const rows = wrapEntry(entry, 22).map((row) => row.map((span) => span.text).join(""));
  assert.deepEqual(rows, ["12:00 bob: the quick", "           brown fox", "           jumps"]);
  const wide = wrapEntry({ lines: [[{ text: "你好你好你" }]], indent: 0 }, 5)
    .map((row) => row.map((span) => span.text).join(""));
  assert.deepEqual(wide, ["你好", "你好", "你"]);
  for (const row of wrapEntry({ lines: [[{ text: "🎉".repeat(30) }]], indent: 4 }, 17)) {
    assert.ok(stringWidth(row.map((span) => span.text).join("")) <= 17);
  }
});

Deno.test("screen: the input line scrolls sideways to keep the cursor, messages sit above it", async () => {
  let written = "";
  const screen = new ChatScreen({
    write: (data) => written += data,
    size: () => ({ columns: 20, rows: 5 }),
    colour: false,
  });
  const text = "abcdefghijklmnopqrstuvwxyz0123";
  screen.add({ lines: [[{ text: "12:00 bob: hi" }]], indent: 11 });
  screen.setStatus([{ text: "[r] me" }]);
  screen.setInput({ prompt: [{ text: "> " }], text, cursor: text.length });
  await Promise.resolve();
  // deno-lint-ignore no-control-regex
  const parts = written.split(/\x1b\[(\d+);1H/);
  const rows = new Map<number, string>();
  for (let i = 1; i < parts.length; i += 2) {
    // deno-lint-ignore no-control-regex
    rows.set(Number(parts[i]), parts[i + 1].replace(/\x1b\[[0-9;?]*[a-zA-Z]/g, ""));
  }
  assert.equal(rows.get(3), "12:00 bob: hi");
  assert.equal(rows.get(4), "[r] me".padEnd(20));
  // 2 columns of prompt, 17 of text, the last column for the cursor.
  assert.equal(rows.get(5), `> ${text.slice(-17)}`);
  assert.ok(written.endsWith("\x1b[5;20H\x1b[?25h\x1b[?2026l"), JSON.stringify(written.slice(-30)));
});

Deno.test("colour: NO_COLOR and dumb terminals get attributes but no colours", () => {
  const deep = { getColorDepth: () => 8 };
  assert.equal(colourWanted({ TERM: "xterm" }, deep), true);
  assert.equal(colourWanted({ TERM: "xterm", NO_COLOR: "1" }, deep), false);
  assert.equal(colourWanted({ TERM: "xterm", NO_COLOR: "" }, deep), true);
  assert.equal(colourWanted({ TERM: "dumb" }, deep), false);
  assert.equal(colourWanted({ TERM: "xterm" }, { getColorDepth: () => 1 }), false);
  const spans = [{ text: "bob", style: { fg: 32, bold: true } }];
  assert.equal(renderSpans(spans, true), "\x1b[0;1;32mbob\x1b[0m");
  assert.equal(renderSpans(spans, false), "\x1b[0;1mbob\x1b[0m");
});

Deno.test("mentions: whole words, any case", () => {
  assert.ok(mentions("bob: ping", "bob"));
  assert.ok(mentions("hey BOB!", "bob"));
  assert.ok(!mentions("bobcat", "bob"));
  assert.ok(!mentions("kebob", "bob"));
});

// ---------------------------------------------------------------- real terminals

const HAVE_TMUX = tmuxAvailable();
const IN_CI = (process.env.CI ?? "") !== "";
if (!HAVE_TMUX) {
  const text = "tmux is not installed: the terminal tests of tests/tui_test.ts cannot run " +
    "(install it: apt-get install -y tmux)";
  if (IN_CI) {
    Deno.test("terminal tests need tmux", () => {
      throw new Error(text);
    });
  } else console.warn(`warning: ${text}; skipping them`);
}

const COLUMNS = 100;
const ROWS = 30;
/** Rows of the chat screen: messages, then the status bar, then the input line. */
const inputRow = (lines: string[]) => lines[lines.length - 1];
const statusRow = (lines: string[]) => lines[lines.length - 2];

interface ChatOptions {
  address: string;
  room: string;
  nick: string;
  home: string;
  /** Extra environment; `undefined` unsets a variable. */
  env?: Record<string, string | undefined>;
}

/** One person: a terminal and the files `join` runs with. */
interface Person {
  terminal: TmuxTerminal;
  options: ChatOptions;
  script: string;
}

/** Writes a script that runs `join` and reports how it ended, and runs it in the terminal. */
async function startChat(server: TmuxServer, terminal: TmuxTerminal, options: ChatOptions) {
  const { command, args } = securechatCommand();
  const base = join(server.dir, `${terminal.name}-${options.nick}`);
  const lines = [`export SECURECHAT_HOME=${shellQuote(options.home)}`];
  for (const [name, value] of Object.entries(options.env ?? {})) {
    lines.push(value === undefined ? `unset ${name}` : `export ${name}=${shellQuote(value)}`);
  }
  lines.push(
    `echo ${shellQuote(`starting join as ${options.nick}`)}`,
    `stty -g > ${shellQuote(`${base}.stty-before`)}`,
    [command, ...args, "join", options.address, "--room", options.room, "--nick", options.nick]
      .map(shellQuote).join(" "),
    `echo "exit status $?"`,
    `stty -g > ${shellQuote(`${base}.stty-after`)}`,
  );
  const script = `${base}.sh`;
  writeFileSync(script, `${lines.join("\n")}\n`);
  await terminal.run(`clear; sh ${shellQuote(script)}`);
  await waitForPrompt(terminal, options.room, options.nick);
  return { terminal, options, script: base } satisfies Person;
}

function waitForPrompt(terminal: TmuxTerminal, room: string, nick: string): Promise<string[]> {
  const prompt = `[${room}] ${nick}>`;
  return terminal.waitFor(
    (lines) => inputRow(lines).startsWith(prompt) && lines.some((line) => line.includes("joined")),
    `the prompt ${prompt}`,
    20_000,
  );
}

/** Waits for `join` to exit 0 and checks the terminal is as the shell left it. */
async function expectCleanExit(person: Person): Promise<void> {
  const { terminal } = person;
  const lines = await terminal.waitFor((rows) => {
    const index = rows.findIndex((row) => /^exit status \d+$/.test(row));
    return index !== -1 && rows.slice(index + 1).some((row) => row === `${terminal.name}$`);
  }, "join to exit and the shell prompt to come back");
  assert.ok(lines.includes("exit status 0"), `join exited with an error:\n${lines.join("\n")}`);
  // The shell's own screen is back (what was typed before join started is still there) ...
  assert.ok(lines.includes(`starting join as ${person.options.nick}`), lines.join("\n"));
  assert.ok(!lines.some((line) => line.startsWith(`[${person.options.room}]`)), lines.join("\n"));
  // ... with the main screen, auto-wrap on, the cursor visible ...
  assert.equal(await terminal.format("#{alternate_on}"), "0", "still on the alternate screen");
  assert.equal(await terminal.format("#{wrap_flag}"), "1", "auto-wrap left off");
  assert.equal(await terminal.format("#{cursor_flag}"), "1", "cursor left hidden");
  // ... and the tty settings (echo, canonical mode, signals) exactly as before.
  const before = readFileSync(`${person.script}.stty-before`, "utf8");
  const after = readFileSync(`${person.script}.stty-after`, "utf8");
  assert.equal(after, before, "stty settings differ after join exited");
  // The last bracketed-paste switch join sent turned it off.
  await terminal.waitForRecording(
    (raw) => raw.lastIndexOf("\x1b[?2004l") > raw.lastIndexOf("\x1b[?2004h"),
    "bracketed paste to be switched off",
  );
}

/** The digits of the safety number shown on a screen. */
function shownSafetyNumber(lines: string[]): string {
  const rows = lines.filter((line) => /^\s+\d{5} \d{5} \d{5} \d{5}$/.test(line));
  assert.equal(rows.length, 3, `expected three rows of digits:\n${lines.join("\n")}`);
  return rows.map((row) => row.trim()).join(" ");
}

// deno-lint-ignore no-control-regex
const COLOUR_SGR = /\x1b\[[0-9;]*m/g;
function coloursUsed(raw: string): boolean {
  return (raw.match(COLOUR_SGR) ?? []).some((code) =>
    code.slice(2, -1).split(";").some((param) => /^(3[0-7]|9[0-7])$/.test(param))
  );
}

Deno.test({
  name: "terminal: chat between two terminals, input survives, /msg, paste, resize, clean exit",
  ignore: !HAVE_TMUX,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const dirs = new TempDirs();
    // Ephemeral: quitting is leaving, as these screens expect.
    const relay = await startRelay({ home: dirs.make("relay"), extraArgs: ["--ephemeral"] });
    const server = new TmuxServer(dirs.make("tmux"));
    let carol: CliProcess | undefined;
    try {
      const room = "tui";
      const [aliceTerm, bobTerm] = await Promise.all([
        server.terminal("alice", { columns: COLUMNS, rows: ROWS }),
        server.terminal("bob", { columns: COLUMNS, rows: ROWS }),
      ]);
      await Promise.all([aliceTerm.record(), bobTerm.record()]);
      // carol reads in line mode, as a script would: her stdout shows every message she got.
      carol = CliProcess.start(
        ["join", relay.address, "--room", room, "--nick", "carol", "--stay"],
        {
          home: dirs.make(),
        },
      );
      await carol.waitFor("stderr", /joined room/);
      const common = { address: relay.address, room };
      // alice in colour, bob with NO_COLOR.
      const alice = await startChat(server, aliceTerm, {
        ...common,
        nick: "alice",
        home: dirs.make(),
        env: { NO_COLOR: undefined, TERM: "screen" },
      });
      const bob = await startChat(server, bobTerm, {
        ...common,
        nick: "bob",
        home: dirs.make(),
        env: { NO_COLOR: "1" },
      });
      await aliceTerm.waitFor((lines) => statusRow(lines).includes("2 others"), "two others");

      // A message typed in one terminal appears in the other, wide characters intact.
      await aliceTerm.run("hello from alice 你好 🎉");
      await bobTerm.waitFor(/\+alice: hello from alice 你好 🎉$/m, "alice's message");
      await aliceTerm.waitFor(/^\d\d:\d\d alice: hello from alice 你好 🎉$/m, "alice's own line");

      // Typed input survives an incoming message, and the cursor stays where it was.
      await bobTerm.type("half-typed");
      await bobTerm.waitFor((lines) => inputRow(lines) === "[tui] bob> half-typed", "bob's input");
      await aliceTerm.run("interrupting you");
      const interrupted = await bobTerm.waitFor(/alice: interrupting you/, "the interruption");
      assert.equal(inputRow(interrupted), "[tui] bob> half-typed");
      assert.deepEqual(await bobTerm.cursor(), { x: "[tui] bob> half-typed".length, y: ROWS - 1 });
      await bobTerm.run(" and finished");
      await aliceTerm.waitFor(/bob: half-typed and finished$/m, "bob's whole line");

      // Wide characters keep their widths in the input line: the cursor lands after them.
      await bobTerm.type("你好🎉");
      await bobTerm.waitFor((lines) => inputRow(lines) === "[tui] bob> 你好🎉", "wide input");
      assert.equal((await bobTerm.cursor()).x, "[tui] bob> ".length + 6);
      await bobTerm.keys("C-u");
      await bobTerm.waitFor((lines) => inputRow(lines) === "[tui] bob>", "an empty input line");

      // /msg, with the nick completed by Tab, reaches bob and only bob.
      await aliceTerm.type("/ms");
      await aliceTerm.keys("Tab");
      await aliceTerm.type("b");
      await aliceTerm.keys("Tab");
      await aliceTerm.waitFor((lines) => inputRow(lines) === "[tui] alice> /msg bob", "completion");
      await aliceTerm.run("psst, only for bob");
      await bobTerm.waitFor(/\+alice → you: psst, only for bob$/m, "the direct message");
      await aliceTerm.waitFor(/you → \+bob: psst, only for bob$/m, "alice's copy");
      await aliceTerm.run("after the secret");
      await carol.waitFor("stdout", /alice: after the secret\n/);
      assert.ok(!carol.stdout.includes("psst"), `carol saw the direct message:\n${carol.stdout}`);

      // A multi-line paste is one message, sent as one text with its newline.
      await aliceTerm.paste("line one\nline two");
      await aliceTerm.waitFor(
        (lines) => inputRow(lines) === "[tui] alice> line one⏎line two",
        "the paste in the input line",
      );
      await aliceTerm.keys("Enter");
      const pasted = await bobTerm.waitFor(/\+alice: line one\n\s+line two$/m, "the pasted lines");
      assert.ok(!pasted.some((line) => /alice: line two/.test(line)), "the paste was split");
      await carol.waitFor("stdout", /alice: line one\\nline two\n/);

      // History: Up brings back the last message.
      await aliceTerm.keys("Up");
      await aliceTerm.waitFor((lines) => inputRow(lines) === "[tui] alice> line one⏎line two");
      await aliceTerm.keys("C-u");

      // A mention rings bob's bell; /me is an action.
      await aliceTerm.run("bob: ping");
      await bobTerm.waitFor(/alice: bob: ping$/m, "the mention");
      await bobTerm.waitForRecording((raw) => raw.includes("\x07"), "a bell on the mention");
      await aliceTerm.run("/me waves");
      await bobTerm.waitFor(/\* \+alice waves$/m, "the action");
      await carol.waitFor("stdout", /alice: \/me waves\n/);

      // /who lists members with markers and fingerprints.
      await bobTerm.run("/who");
      await bobTerm.waitFor(/\+alice\s+[a-z2-7]{4}(-[a-z2-7]{4}){7}\s+new/, "/who");

      // Colours per nick for alice; none at all for bob (NO_COLOR).
      assert.ok(coloursUsed(aliceTerm.recorded()), "alice's screen has no colours");
      assert.ok(!coloursUsed(bobTerm.recorded()), "bob's screen has colours despite NO_COLOR");

      // Resize: everything re-wraps to the new width, the input line stays at the bottom.
      await bobTerm.type("kept");
      await bobTerm.resize(44, 16);
      const small = await bobTerm.waitFor(
        (lines) => lines.length === 16 && inputRow(lines) === "[tui] bob> kept",
        "the resized screen",
      );
      assert.match(statusRow(small), /\[tui\] bob/);
      for (const line of small) assert.ok(stringWidth(line) <= 44, `too wide: ${line}`);
      await bobTerm.resize(COLUMNS, ROWS);
      await bobTerm.waitFor((lines) => lines.length === ROWS && inputRow(lines).endsWith("kept"));

      // Leaving: /quit for alice, Ctrl-C for bob; both terminals come back as they were.
      await aliceTerm.run("/quit");
      await expectCleanExit(alice);
      await bobTerm.waitFor(/alice \([a-z2-7-]+\) left/, "alice leaving");
      await bobTerm.keys("C-c");
      await expectCleanExit(bob);
    } finally {
      await server.kill();
      if (carol) await carol.stop();
      await relay.proc.stop();
      dirs.cleanup();
    }
  },
});

Deno.test({
  name: "terminal: /verify with safety numbers, the changed-key warning, /nick and /join",
  ignore: !HAVE_TMUX,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const dirs = new TempDirs();
    // Ephemeral: quitting is leaving, as these screens expect.
    const relay = await startRelay({ home: dirs.make("relay"), extraArgs: ["--ephemeral"] });
    const server = new TmuxServer(dirs.make("tmux"));
    try {
      const room = "keys";
      const [aliceTerm, bobTerm] = await Promise.all([
        server.terminal("alice", { columns: COLUMNS, rows: ROWS }),
        server.terminal("bob", { columns: COLUMNS, rows: ROWS }),
      ]);
      await Promise.all([aliceTerm.record(), bobTerm.record()]);
      const aliceHome = dirs.make();
      const bobHome = dirs.make();
      const common = { address: relay.address, room };
      const bob = await startChat(server, bobTerm, { ...common, nick: "bob", home: bobHome });
      let alice = await startChat(server, aliceTerm, { ...common, nick: "alice", home: aliceHome });
      await bobTerm.waitFor((lines) => statusRow(lines).includes("1 other: +alice"));

      // Both sides see the same safety number, derived from both identity keys.
      await aliceTerm.run("/verify bob");
      await bobTerm.run("/verify alice");
      const aliceSees = shownSafetyNumber(await aliceTerm.waitFor(/verify bob\? \[y\/N\]/));
      const bobSees = shownSafetyNumber(await bobTerm.waitFor(/verify alice\? \[y\/N\]/));
      assert.equal(aliceSees, bobSees);
      const aliceKey = await readPublicKey(join(aliceHome, "identity.pub"));
      const bobKey = await readPublicKey(join(bobHome, "identity.pub"));
      assert.equal(bobSees, safetyNumber(aliceKey.publicKey, bobKey.publicKey));

      // bob confirms; alice does not.
      await bobTerm.run("y");
      await bobTerm.waitFor(/✓alice is now verified/, "the verification");
      await bobTerm.waitFor((lines) => statusRow(lines).includes("1 other: ✓alice"));
      const bobPeers = readFileSync(join(bobHome, "known_peers"), "utf8");
      assert.match(
        bobPeers,
        new RegExp(`^${fingerprint(aliceKey.publicKey)} verified alice$`, "m"),
      );
      await aliceTerm.run("n");
      await aliceTerm.waitFor(/bob was not marked verified/);
      assert.doesNotMatch(readFileSync(join(aliceHome, "known_peers"), "utf8"), /verified/);
      await aliceTerm.run("hello, verified bob");
      await bobTerm.waitFor(/✓alice: hello, verified bob$/m);

      // alice leaves; someone else takes her nick with another key.
      await aliceTerm.run("/quit");
      await expectCleanExit(alice);
      await bobTerm.waitFor(/alice \([a-z2-7-]+\) left/, "alice leaving");
      const bellsBefore = bobTerm.recorded().split("\x07").length;
      const impostorHome = dirs.make();
      alice = await startChat(server, aliceTerm, { ...common, nick: "alice", home: impostorHome });
      const warned = await bobTerm.waitFor(/WARNING: alice's KEY HAS CHANGED/, "the warning");
      assert.match(warned.join("\n"), /before: [a-z2-7-]+/);
      assert.match(statusRow(warned), /KEY CHANGED: alice/);
      assert.match(statusRow(warned), /!alice/);
      await bobTerm.waitForRecording(
        (raw) => raw.split("\x07").length > bellsBefore,
        "a bell for the warning",
      );
      // Messages from her stay marked until bob verifies the new key.
      await aliceTerm.run("trust me");
      await bobTerm.waitFor(/!alice \[KEY CHANGED\]: trust me$/m, "the marked message");
      await aliceTerm.run("really");
      await bobTerm.waitFor(/!alice \[KEY CHANGED\]: really$/m, "the second marked message");
      await bobTerm.run("/who");
      await bobTerm.waitFor(/!alice\s+[a-z2-7-]+\s+KEY CHANGED/, "/who with the changed key");

      await bobTerm.run("/verify alice");
      await bobTerm.waitFor(/verify alice\? \[y\/N\]/);
      await bobTerm.run("yes");
      await bobTerm.waitFor(/✓alice is now verified/);
      const calm = await bobTerm.waitFor((lines) => statusRow(lines).includes("1 other: ✓alice"));
      assert.doesNotMatch(statusRow(calm), /KEY CHANGED/);
      await aliceTerm.run("verified again");
      await bobTerm.waitFor(/\d\d:\d\d ✓alice: verified again$/m, "an unmarked message");
      const impostorKey = await readPublicKey(join(impostorHome, "identity.pub"));
      assert.match(
        readFileSync(join(bobHome, "known_peers"), "utf8"),
        new RegExp(`^${fingerprint(impostorKey.publicKey)} verified alice$`, "m"),
      );

      // /nick and /join rejoin with a new announcement; others see /nick as one rename.
      await bobTerm.run("/nick bobby");
      await waitForPrompt(bobTerm, room, "bobby");
      await aliceTerm.waitFor(/bob is now known as bobby \([a-z2-7-]+\)/, "the rename");
      assert.doesNotMatch((await aliceTerm.screen()).join("\n"), /bob \([a-z2-7-]+\) left/);
      await bobTerm.run("/join elsewhere");
      await waitForPrompt(bobTerm, "elsewhere", "bobby");
      await aliceTerm.waitFor(/bobby \([a-z2-7-]+\) left/);
      // A nick taken in the target room: refused, and bob is back where he was.
      await bobTerm.run("/nick bob");
      await waitForPrompt(bobTerm, "elsewhere", "bob");
      await bobTerm.run("/join keys");
      await bobTerm.waitFor(/\[keys\] bob>/, "bob back in keys");
      await bobTerm.run("/nick alice");
      await bobTerm.waitFor(/could not join keys as alice: .*taken/, "the refusal");
      await bobTerm.waitFor(/back in keys as bob/);
      await waitForPrompt(bobTerm, room, "bob");

      // Ctrl-D on an empty line leaves too.
      await bobTerm.keys("C-d");
      await expectCleanExit(bob);
      await aliceTerm.keys("C-c");
      await expectCleanExit(alice);
      assert.ok(existsSync(join(bobHome, "known_peers")));
    } finally {
      await server.kill();
      await relay.proc.stop();
      dirs.cleanup();
    }
  },
});

Deno.test({
  name: "terminal: hostile strings from a hostile relay never reach the terminal raw",
  ignore: !HAVE_TMUX,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const dirs = new TempDirs();
    const relay = await HostileRelay.start();
    const server = new TmuxServer(dirs.make("tmux"));
    try {
      const terminal = await server.terminal("bob", { columns: COLUMNS, rows: ROWS });
      await terminal.record();
      const home = dirs.make();
      const address = `127.0.0.1:${relay.address.port}`;
      writeFileSync(join(home, "known_servers"), `${address} ${relay.fingerprint}\n`);
      const joined = relay.nextJoin();
      await startChat(server, terminal, { address, room: "ops", nick: "bob", home });
      const bob = await joined;
      const alice = relay.addPuppet({ nick: "alice", room: "ops" });
      await terminal.waitFor(/alice joined/, "alice's arrival");
      await new Promise((resolve) => setTimeout(resolve, 200));
      const payloads = [
        "\x1b]0;pwned title\x07",
        "\x1b]52;c;ZWNobyBwd25lZA==\x07",
        "\x1b[2J\x1b[H",
        "\u009b2J",
        "\u202egnp.exe",
      ];
      alice.say(payloads.map((text, index) => `hostile ${index} ${text} end`));
      await terminal.waitFor(/hostile 4 .*end/, "the hostile messages");
      // The relay's own error text, printed after the chat screen is gone.
      relay.inject(bob, { type: "error", code: 1, message: `relay ${payloads.join(" ")} end` });
      await terminal.waitFor(/exit status \d+/, "join to exit");
      const raw = terminal.recorded();
      for (const payload of payloads) {
        assert.ok(!raw.includes(payload), `raw on the terminal: ${JSON.stringify(payload)}`);
      }
      const screen = (await terminal.screen()).join("\n");
      assert.match(screen, /relay \\u001b\]0;pwned title\\u0007/);
    } finally {
      await server.kill();
      await relay.close();
      dirs.cleanup();
    }
  },
});
