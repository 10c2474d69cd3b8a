/**
 * The interactive chat: ties the terminal, the screen, the input line and
 * the room connection together, and runs the chat commands.
 *
 * - Text typed and Enter sends one message; a paste (bracketed) lands in the
 *   input line whole, newlines included, and Enter sends it as one message.
 *   Alt-Enter or Ctrl-J adds a newline by hand.
 * - `/nick` and `/join` need a new signed announcement, so they close the
 *   connection and open another through the same `open` function `join`
 *   uses (same identity, same relay check); if that fails the previous room
 *   and nick are rejoined.
 * - `/verify NICK` shows the safety number and asks y/N; only `y` marks the
 *   member verified in `known_peers`.
 * - When the relay goes away the membership reconnects by itself (the rules
 *   of `join --stay`): the screen says so and the status bar shows it, while
 *   the scrollback and the line being typed stay as they are; what is sent
 *   meanwhile goes out once it is back.
 *
 * @module
 */

import { utf8 } from "../../lib/core/bytes.ts";
import { validateNick, validateRoom } from "../../lib/e2e/announcement.ts";
import { normalizeName } from "../../lib/identity/nick.ts";
import { MAX_TEXT_BYTES } from "../../lib/e2e/content.ts";
import type { MemberInfo } from "../../lib/e2e/room.ts";
import type { Delivery } from "../../lib/client/client.ts";
import { safetyNumber, safetyNumberRows } from "../../lib/identity/safety_number.ts";
import type { JoinOutput, NoticeType, OutputSink, PeerStatus, PrintedMessage } from "../output.ts";
import { actionOf, completeInput, firstWord, helpLines, parseLine } from "./commands.ts";
import { LineEditor } from "./editor.ts";
import {
  keyChangedEntry,
  messageEntry,
  nickSpans,
  noticeEntry,
  type NoticeKind,
  TRUST_LEGEND,
} from "./format.ts";
import { cleanPaste, type InputEvent, type Key, KeyReader } from "./keys.ts";
import { ChatScreen, type Entry } from "./screen.ts";
import { EnterBurst } from "./burst.ts";
import { Colour, colourWanted, type Span } from "./style.ts";
import type { Terminal } from "./terminal.ts";

/**
 * A room membership as the chat uses it: it survives relay restarts
 * (`ReconnectingClient`), queueing group texts while it reconnects.
 */
export interface RoomMember {
  /** False while the relay is out of reach and the member is reconnecting. */
  readonly connected: boolean;
  /** Whether the room keeps messages for members away (then /nick renames, /leave leaves). */
  readonly durable: boolean;
  /** Renames this member in a durable room. */
  rename(nick: string): void;
  /** Leaves a durable room for good. */
  leave(): Promise<void>;
  members(): MemberInfo[];
  send(texts: string[]): Promise<Delivery[]>;
  sendDirect(memberId: number, text: string): void;
  close(): Promise<void>;
}

/** A joined room: the membership and a promise that settles when it ends for good. */
export interface RoomConnection {
  member: RoomMember;
  /** Resolves when the connection was closed on purpose, rejects when it was lost. */
  done: Promise<void>;
}

/** Where a connection goes. */
export interface RoomTarget {
  room: string;
  nick: string;
}

/** What the chat needs to know and change about members' keys. */
export interface PeerTrustView {
  statusOf(member: MemberInfo): PeerStatus;
  markVerified(member: MemberInfo): Promise<void>;
}

/** Options for {@linkcode ChatApp}. */
export interface ChatAppOptions {
  /** Connects to the relay and joins a room (relay verification included). */
  open: (target: RoomTarget) => Promise<RoomConnection>;
  /** `join`'s output, whose messages and notices the screen takes over. */
  output: JoinOutput;
  /** Members' trust status and verification. */
  peers: PeerTrustView;
  /** This user's identity public key and fingerprint. */
  identity: { publicKey: Uint8Array; fingerprint: string };
  /** First room and nick. */
  room: string;
  nick: string;
  /** The terminal to take over. */
  terminal: Terminal;
  /** Environment, for NO_COLOR and TERM. */
  env: Record<string, string | undefined>;
}

const KEYS_HELP = [
  "Keys: Enter sends; Alt-Enter or Ctrl-J adds a newline; a paste is one message.",
  "      Up/Down history, Tab completes commands and nicks, PgUp/PgDn scroll,",
  "      Ctrl-A/E/U/K/W edit, Ctrl-L redraws, Ctrl-C or Ctrl-D (empty line) quits.",
  "//text sends a line that starts with /.",
];

/** Longest wait for the connection to close on exit. */
const CLOSE_TIMEOUT_MS = 3_000;

/**
 * The interactive chat session.
 *
 * @example
 * ```ts
 * const app = new ChatApp({ open, output, peers, identity, room: "ops", nick: "alice", terminal, env: process.env });
 * await app.run();
 * ```
 */
export class ChatApp {
  #options: ChatAppOptions;
  #terminal: Terminal;
  #screen: ChatScreen;
  #editor = new LineEditor();
  #burst = new EnterBurst({
    newline: () => this.#editor.insert("\n"),
    submit: () => this.#guarded(() => this.#submit()),
    pasted: (lines) =>
      this.#guarded(() =>
        this.#info(
          `pasted ${lines} lines (your terminal does not mark pastes): they are one message in ` +
            "the input line; Enter sends it, Ctrl-U clears it",
        )
      ),
  });
  #keys: KeyReader;
  #room: string;
  #nick: string;
  #connection: RoomConnection | undefined;
  /** Where the current connection goes; shared with it, so a rename reaches its reconnections. */
  #target: RoomTarget | undefined;
  #switching = false;
  #verifying: MemberInfo | undefined;
  #ended: Promise<void>;
  #end!: (error?: Error) => void;
  #finished = false;

  /** @example `new ChatApp(options)` */
  constructor(options: ChatAppOptions) {
    this.#options = options;
    this.#terminal = options.terminal;
    this.#room = options.room;
    this.#nick = options.nick;
    this.#screen = new ChatScreen({
      write: (data) => this.#terminal.write(data),
      size: () => this.#terminal.size(),
      colour: colourWanted(options.env),
    });
    this.#keys = new KeyReader(this.#terminal.input, (event) => this.#onInput(event));
    let settled = false;
    this.#ended = new Promise((resolve, reject) => {
      this.#end = (error) => {
        if (settled) return;
        settled = true;
        this.#finished = true;
        if (error) reject(error);
        else resolve();
      };
    });
    this.#ended.catch(() => {});
  }

  /**
   * Takes over the terminal, joins the room and runs until the user leaves
   * or the connection is lost; the terminal is restored in every case.
   *
   * @example
   * ```ts
   * await app.run();
   * ```
   */
  async run(): Promise<void> {
    let failure: unknown;
    this.#terminal.enter({
      onResize: () => this.#screen.invalidate(),
      onSignal: () => this.#end(),
    });
    try {
      this.#options.output.attach(this.#sink());
      this.#keys.start();
      this.#refresh();
      this.#info(`connecting to the relay: room ${this.#room}, nick ${this.#nick}`);
      const target = { room: this.#room, nick: this.#nick };
      const opened = this.#options.open(target).then((connection) =>
        this.#adopt(connection, target)
      );
      // Ctrl-C while connecting leaves at once; a failure to connect ends the chat with its reason.
      opened.catch(() => {});
      await Promise.race([opened, this.#ended]);
      if (!this.#finished) this.#info("type a message and press Enter; /help lists the commands");
      await this.#ended;
    } catch (error) {
      failure = error;
    } finally {
      this.#keys.stop();
      this.#burst.stop();
      this.#screen.stop();
      this.#options.output.attach(undefined);
      this.#terminal.restore();
    }
    const connection = this.#connection;
    this.#connection = undefined;
    if (connection) await withTimeout(connection.member.close(), CLOSE_TIMEOUT_MS);
    if (failure !== undefined) throw failure;
  }

  #adopt(connection: RoomConnection, target: RoomTarget): void {
    if (this.#finished) {
      // The user left while /nick or /join was connecting.
      withTimeout(connection.member.close(), CLOSE_TIMEOUT_MS);
      return;
    }
    this.#connection = connection;
    this.#target = target;
    this.#room = target.room;
    this.#nick = target.nick;
    connection.done.then(
      () => {
        if (this.#connection === connection) this.#end();
      },
      (error: Error) => {
        if (this.#connection === connection) this.#end(error);
      },
    );
    this.#refresh();
  }

  // ---- output from the room ----

  #sink(): OutputSink {
    return {
      message: (message) => this.#showMessage(message),
      notice: (type, text, fields) => this.#showNotice(type, text, fields),
    };
  }

  #showMessage(message: PrintedMessage): void {
    const action = actionOf(message.text);
    const mention = mentions(message.text, this.#nick);
    if ((mention || message.direct) && !message.earlier) this.#terminal.write("\x07");
    this.#add(messageEntry({
      time: message.earlier ? new Date(message.time) : new Date(),
      nick: message.from.nick,
      status: message.status,
      text: action ?? message.text,
      action: action !== undefined && !message.direct,
      direct: message.direct ? {} : undefined,
      mention,
    }));
  }

  #showNotice(type: NoticeType, text: string, fields: Record<string, unknown>): void {
    const nick = typeof fields.nick === "string" ? fields.nick : undefined;
    if (type === "key-changed" && nick !== undefined) {
      this.#terminal.write("\x07");
      this.#add(keyChangedEntry({
        nick,
        fingerprint: String(fields.fingerprint ?? ""),
        expected: typeof fields.expected === "string" ? fields.expected : undefined,
      }));
    } else if (type === "rename" && typeof fields.previous === "string") {
      // "alice is now known as alicia": the marker goes on the old name, which the text starts with.
      const status = typeof fields.status === "string" ? fields.status as PeerStatus : undefined;
      const previous = fields.previous;
      this.#add(noticeEntry("join", text.slice(previous.length), {
        lead: nickSpans(previous, status),
      }));
    } else if (type === "join" || type === "new-member" || type === "leave") {
      const kind: NoticeKind = type === "leave" ? "leave" : "join";
      const status = typeof fields.status === "string" ? fields.status as PeerStatus : undefined;
      // Put the trust marker and the nick's colour on the name the notice starts with.
      if (nick !== undefined && text.startsWith(`${nick} `)) {
        this.#add(noticeEntry(kind, text.slice(nick.length), { lead: nickSpans(nick, status) }));
      } else this.#add(noticeEntry(kind, text));
    } else if (type === "warning" || type === "error") {
      this.#add(noticeEntry(type, text));
    } else {
      this.#add(noticeEntry("info", text));
    }
    this.#refresh();
  }

  #add(entry: Entry): void {
    this.#screen.add(entry);
  }

  #info(text: string | string[]): void {
    this.#add(noticeEntry("info", text));
  }

  #warn(text: string): void {
    this.#add(noticeEntry("warning", text));
  }

  #error(text: string): void {
    this.#add(noticeEntry("error", text));
  }

  // ---- status bar and input line ----

  #members(): MemberInfo[] {
    return this.#connection?.member.members() ?? [];
  }

  #refresh(): void {
    const status: Span[] = [{ text: ` [${this.#room}] `, style: { bold: true } }];
    status.push({ text: this.#nick });
    if (this.#connection === undefined) {
      status.push({ text: " │ connecting…", style: { bold: true } });
    } else if (!this.#connection.member.connected) {
      status.push({ text: " │ relay out of reach: reconnecting…", style: { bold: true } });
    } else {
      const members = this.#members();
      status.push({ text: ` │ ${members.length} other${members.length === 1 ? "" : "s"}` });
      if (members.length > 0) status.push({ text: ": " });
      members.forEach((member, index) => {
        if (index > 0) status.push({ text: " " });
        status.push(...nickSpans(member.nick, this.#options.peers.statusOf(member)));
      });
      const changed = members.filter((member) =>
        this.#options.peers.statusOf(member) === "changed"
      );
      if (changed.length > 0) {
        const names = changed.map((member) => member.nick).join(", ");
        status.unshift({
          text: ` ⚠ KEY CHANGED: ${names}: /verify ${changed[0].nick} `,
          style: { fg: Colour.red, bold: true },
        });
      }
    }
    this.#screen.setStatus(status);
    this.#renderInput();
  }

  #renderInput(): void {
    const verifyStyle = { fg: Colour.yellow, bold: true };
    const [prompt, compactPrompt]: Span[][] = this.#verifying
      ? [
        [{ text: `verify ${this.#verifying.nick}? [y/N] `, style: verifyStyle }],
        [{ text: "[y/N] ", style: verifyStyle }],
      ]
      : [[{ text: `[${this.#room}] ${this.#nick}> ` }], [{ text: `${this.#nick}> ` }]];
    this.#screen.setInput({
      prompt,
      compactPrompt,
      text: this.#editor.text,
      cursor: this.#editor.cursor,
    });
  }

  // ---- keyboard ----

  #onInput(event: InputEvent): void {
    this.#guarded(() => {
      if (event.type === "key" && event.key.name === "return" && !event.key.meta) {
        // Sent once no more input follows at once: otherwise it is a newline in a paste.
        return this.#burst.enter();
      }
      this.#burst.other();
      if (event.type === "paste") this.#editor.insert(cleanPaste(event.text));
      else this.#onKey(event.key);
    });
  }

  /** Runs an input handler, then redraws the input line. */
  #guarded(handle: () => void): void {
    try {
      handle();
    } catch (error) {
      // A bug in one key's handling must not take the terminal down with it.
      this.#error(`internal error: ${(error as Error).message}`);
    }
    this.#renderInput();
  }

  #onKey(key: Key): void {
    const editor = this.#editor;
    const name = key.name;
    if (key.ctrl && !key.meta) {
      switch (name) {
        case "c":
          return this.#end();
        case "d":
          if (editor.text === "") return this.#end();
          return editor.deleteForward();
        case "a":
          return editor.home();
        case "e":
          return editor.end();
        case "b":
          return editor.left();
        case "f":
          return editor.right();
        case "p":
          return editor.historyUp();
        case "n":
          return editor.historyDown();
        case "u":
          return editor.killToStart();
        case "k":
          return editor.killToEnd();
        case "w":
          return editor.deleteWordBack();
        case "h":
          return editor.backspace();
        case "l":
          return this.#screen.invalidate();
        case "left":
          return editor.wordLeft();
        case "right":
          return editor.wordRight();
      }
      return;
    }
    switch (name) {
      case "return":
        if (key.meta) return editor.insert("\n");
        return this.#submit();
      case "enter":
        // Ctrl-J: a newline inside the message.
        return editor.insert("\n");
      case "backspace":
        return key.meta ? editor.deleteWordBack() : editor.backspace();
      case "delete":
        return editor.deleteForward();
      case "left":
        return key.meta ? editor.wordLeft() : editor.left();
      case "right":
        return key.meta ? editor.wordRight() : editor.right();
      case "home":
        return editor.home();
      case "end":
        return editor.end();
      case "up":
        return editor.historyUp();
      case "down":
        return editor.historyDown();
      case "tab":
        editor.complete((text, cursor) =>
          completeInput(text, cursor, this.#members().map((member) => member.nick))
        );
        return;
      case "pageup":
        return this.#screen.pageUp();
      case "pagedown":
        return this.#screen.pageDown();
      case "escape":
        if (this.#verifying) this.#answerVerify("");
        return;
    }
    if (key.meta) {
      if (name === "b") return editor.wordLeft();
      if (name === "f") return editor.wordRight();
      return;
    }
    // deno-lint-ignore no-control-regex -- only printable text goes into the line
    if (key.text !== undefined && !/[\x00-\x1f\x7f-\x9f]/.test(key.text)) {
      editor.insert(key.text);
    }
  }

  // ---- commands ----

  #submit(): void {
    const editor = this.#editor;
    if (this.#verifying) {
      const answer = editor.text;
      editor.set("");
      this.#answerVerify(answer);
      return;
    }
    const parsed = parseLine(editor.text);
    if (parsed.kind === "empty") {
      editor.set("");
      return;
    }
    if (parsed.kind === "text") {
      // A text that cannot go out stays in the line, so nothing typed is lost.
      if (this.#sendText(parsed.text)) editor.submit();
      return;
    }
    editor.submit();
    this.#command(parsed.name, parsed.args);
  }

  #connected(): RoomConnection | undefined {
    if (this.#connection === undefined) {
      this.#error("not connected yet; wait a moment and press Enter again");
    }
    return this.#connection;
  }

  #fits(text: string): boolean {
    const bytes = utf8(text).length;
    if (bytes <= MAX_TEXT_BYTES) return true;
    this.#error(`not sent: ${bytes} bytes is over the ${MAX_TEXT_BYTES}-byte message limit`);
    return false;
  }

  #sendText(text: string): boolean {
    const connection = this.#connected();
    if (connection === undefined || !this.#fits(text)) return false;
    const action = actionOf(text);
    this.#add(messageEntry({
      time: new Date(),
      nick: this.#nick,
      text: action ?? text,
      action: action !== undefined,
    }));
    if (!connection.member.connected) {
      this.#info("reconnecting to the relay: that message goes out once it is back");
    }
    connection.member.send([text]).then(
      (deliveries) => {
        if (deliveries.every((delivery) => delivery.online + delivery.later === 0)) {
          this.#warn("nobody else is in the room: that message reached no one");
        }
      },
      (error: Error) => this.#error(`not delivered: ${error.message}`),
    );
    return true;
  }

  #command(name: string, args: string): void {
    switch (name) {
      case "help":
        return this.#info([...helpLines(), ...KEYS_HELP, `Markers: ${TRUST_LEGEND}`]);
      case "who":
        return this.#who();
      case "msg":
        return this.#direct(args);
      case "me":
        return this.#error("usage: /me ACTION, for example /me waves");
      case "verify":
        return this.#startVerify(args.trim());
      case "nick":
        return this.#changeNick(args.trim());
      case "join":
        return this.#changeRoom(args.trim());
      case "leave":
        return this.#leaveRoom();
      case "quit":
        return this.#end();
      default:
        this.#error(`unknown command /${name}; /help lists the commands`);
    }
  }

  #who(): void {
    const members = this.#members();
    const lines = [
      `you: ${this.#nick} (${this.#options.identity.fingerprint})`,
      `${members.length} other member${members.length === 1 ? "" : "s"} in ${this.#room}:`,
    ];
    const entry = noticeEntry("info", lines);
    const words: Record<PeerStatus, string> = {
      verified: "verified",
      known: "known key, not verified",
      new: "new: first time seen, not verified",
      changed: `KEY CHANGED since last time: compare safety numbers with /verify`,
    };
    for (const member of members) {
      const status = this.#options.peers.statusOf(member);
      const trust = member.trusted ? "" : ", not in your --trust list: messages ignored";
      entry.lines.push([
        { text: "  " },
        ...nickSpans(member.nick, status),
        { text: `  ${member.fingerprint}  ${words[status]}${trust}` },
      ]);
    }
    entry.lines.push([{ text: `Markers: ${TRUST_LEGEND}`, style: { dim: true } }]);
    this.#add(entry);
  }

  /** The member called `nick`, or undefined after saying why not. */
  #member(nick: string): MemberInfo | undefined {
    const members = this.#members();
    let found = members.filter((member) => member.nick === nick);
    if (found.length === 0) {
      found = members.filter((member) => member.nick.toLowerCase() === nick.toLowerCase());
    }
    if (found.length === 1) return found[0];
    if (found.length === 0) this.#error(`nobody called ${nick} is in ${this.#room}; see /who`);
    else this.#error(`${found.length} members are called ${nick}; see /who`);
    return undefined;
  }

  #direct(args: string): void {
    const [nick, text] = firstWord(args);
    if (nick === "" || text.trim() === "") {
      this.#error("usage: /msg NICK TEXT");
      return;
    }
    const connection = this.#connected();
    const member = connection && this.#member(nick);
    if (connection === undefined || member === undefined || !this.#fits(text)) return;
    try {
      connection.member.sendDirect(member.memberId, text);
    } catch (error) {
      this.#error(`not sent to ${member.nick}: ${(error as Error).message}`);
      return;
    }
    this.#add(messageEntry({
      time: new Date(),
      nick: this.#nick,
      text,
      direct: { to: member.nick, toStatus: this.#options.peers.statusOf(member) },
    }));
  }

  #startVerify(nick: string): void {
    if (nick === "") {
      this.#error("usage: /verify NICK");
      return;
    }
    const member = this.#connected() && this.#member(nick);
    if (member === undefined) return;
    const number = safetyNumber(this.#options.identity.publicKey, member.identityPublicKey);
    const entry = noticeEntry("info", [
      `Safety number with ${member.nick} (${member.fingerprint}):`,
    ]);
    for (const row of safetyNumberRows(number)) {
      entry.lines.push([{ text: `    ${row}`, style: { bold: true } }]);
    }
    entry.lines.push(
      [{
        text: `Compare it with ${member.nick} in person or on a call: ${member.nick} runs ` +
          `/verify ${this.#nick} and must read out the same 60 digits.`,
      }],
      [{
        text: `If they match, type y and Enter to mark ${member.nick} verified; anything else ` +
          "cancels.",
      }],
    );
    this.#add(entry);
    this.#verifying = member;
    this.#editor.set("");
  }

  #answerVerify(answer: string): void {
    const member = this.#verifying;
    this.#verifying = undefined;
    if (member === undefined) return;
    if (!/^\s*y(es)?\s*$/i.test(answer)) {
      this.#info(`${member.nick} was not marked verified`);
      return;
    }
    this.#options.peers.markVerified(member).then(
      () => {
        this.#add(
          noticeEntry("info", ` is now verified (${member.fingerprint}), saved in known_peers`, {
            lead: nickSpans(member.nick, "verified"),
          }),
        );
        this.#refresh();
      },
      (error: Error) => this.#error(`could not mark ${member.nick} verified: ${error.message}`),
    );
  }

  #changeNick(typed: string): void {
    if (typed === "") return this.#error("usage: /nick NAME");
    const nick = normalizeName(typed);
    const problem = validateNick(nick);
    if (problem) return this.#error(`cannot use that nick: ${problem}`);
    if (nick === this.#nick) return this.#info(`you are already ${nick}`);
    const member = this.#connection?.member;
    if (member?.durable && member.connected && this.#target !== undefined) {
      // A durable room keeps the same membership: the relay renames it, and the next
      // reconnection (the target is shared with the connection) uses the new nick.
      member.rename(nick);
      this.#target.nick = nick;
      this.#nick = nick;
      this.#info(`you are now known as ${nick}`);
      this.#refresh();
      return;
    }
    this.#info(`changing nick to ${nick}: rejoining ${this.#room} with a new announcement`);
    this.#switch({ room: this.#room, nick });
  }

  #leaveRoom(): void {
    const member = this.#connection?.member;
    if (member === undefined || !member.connected) {
      return this.#error("not connected to the relay; /leave needs the relay to hear it");
    }
    if (!member.durable) {
      this.#info(`this room keeps no members who are away: /quit leaves it`);
      return;
    }
    this.#info(`leaving ${this.#room} for good: the others move to keys you will not get`);
    member.leave().then(
      () => this.#end(),
      (error: Error) => this.#error(`could not leave: ${error.message}`),
    );
  }

  #changeRoom(typed: string): void {
    if (typed === "") return this.#error("usage: /join ROOM");
    const room = normalizeName(typed);
    const problem = validateRoom(room);
    if (problem) return this.#error(`cannot join that room: ${problem}`);
    if (room === this.#room) return this.#info(`you are already in ${room}`);
    this.#info(`leaving ${this.#room}, joining ${room}`);
    this.#switch({ room, nick: this.#nick });
  }

  #switch(target: RoomTarget): void {
    const old = this.#connection;
    if (this.#switching || old === undefined) {
      this.#error("still connecting; wait a moment and try again");
      return;
    }
    const previous = { room: this.#room, nick: this.#nick };
    this.#switching = true;
    this.#connection = undefined;
    this.#verifying = undefined;
    this.#refresh();
    (async () => {
      await withTimeout(old.member.close(), CLOSE_TIMEOUT_MS);
      try {
        this.#adopt(await this.#options.open(target), target);
      } catch (error) {
        this.#error(`could not join ${target.room} as ${target.nick}: ${(error as Error).message}`);
        try {
          this.#adopt(await this.#options.open(previous), previous);
          this.#info(`back in ${previous.room} as ${previous.nick}`);
        } catch (again) {
          this.#end(again as Error);
        }
      }
    })().finally(() => {
      this.#switching = false;
      this.#refresh();
    });
  }
}

/**
 * Whether `text` mentions `nick` as a word, ignoring case.
 *
 * @example
 * ```ts
 * mentions("bob: ping", "bob"); // true
 * mentions("bobcat", "bob"); // false
 * ```
 */
export function mentions(text: string, nick: string): boolean {
  const haystack = text.toLowerCase();
  const needle = nick.toLowerCase();
  const isWord = (char: string | undefined) => char !== undefined && /[\p{L}\p{N}_]/u.test(char);
  for (let index = haystack.indexOf(needle); index !== -1;) {
    if (!isWord(haystack[index - 1]) && !isWord(haystack[index + needle.length])) return true;
    index = haystack.indexOf(needle, index + 1);
  }
  return false;
}

function withTimeout(work: Promise<unknown>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<void>((resolve) => timer = setTimeout(resolve, ms));
  return Promise.race([work.then(() => {}, () => {}), timeout]).finally(() => clearTimeout(timer));
}
