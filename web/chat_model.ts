/**
 * What the chat screen shows, apart from how: the members with their trust
 * status, the conversations (the room, and one per member for direct
 * messages, keyed by fingerprint so they survive reconnections), their
 * messages and unread counts, and whether a message mentions this member.
 * No DOM here, so it is tested without a browser.
 *
 * @module
 */

import type { MemberInfo } from "../lib/e2e/room.ts";
import type { PeerStatus } from "./trust.ts";

/** The room conversation's key; direct conversations are keyed `dm:<fingerprint>`. */
export const ROOM = "room";
/** Messages kept per conversation; older ones are dropped from view. */
export const MAX_MESSAGES = 2_000;

/** A member as shown. */
export interface MemberView {
  info: MemberInfo;
  status: PeerStatus;
  /** For a changed key: the fingerprint remembered before. */
  expected?: string;
}

/** One line in a conversation. */
export interface ChatLine {
  id: number;
  kind: "message" | "own" | "notice" | "warning";
  text: string;
  /** Sender's nick, for messages. */
  nick?: string;
  /** Sender's fingerprint, for messages. */
  fingerprint?: string;
  /** Sender's trust status when it was received. */
  status?: PeerStatus;
  /** Sender's clock (messages) or the page's (others), ms since the epoch. */
  time: number;
  /** For own lines: delivery as known so far. */
  delivery?: string;
}

/** A conversation: the room or a direct one. */
export interface Conversation {
  key: string;
  title: string;
  lines: ChatLine[];
  unread: number;
}

/** Whether `text` mentions `nick`: `@nick`, or the nick as a whole word, any case. */
export function mentions(text: string, nick: string): boolean {
  const escaped = nick.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp(`(^|[^\\p{L}\\p{N}_])@?${escaped}($|[^\\p{L}\\p{N}_])`, "iu").test(text);
}

/**
 * The chat screen's state.
 *
 * @example
 * ```ts
 * const model = new ChatModel({ room: "ops", nick: "alice" });
 * model.addLine(ROOM, { kind: "notice", text: "bob joined" });
 * ```
 */
export class ChatModel {
  readonly room: string;
  readonly nick: string;
  /** Members by fingerprint. */
  readonly members = new Map<string, MemberView>();
  /** Conversations by key, the room first. */
  readonly conversations = new Map<string, Conversation>();
  /** The conversation on screen. */
  active = ROOM;
  #nextId = 1;

  /** @example `new ChatModel({ room: "ops", nick: "alice" })` */
  constructor({ room, nick }: { room: string; nick: string }) {
    this.room = room;
    this.nick = nick;
    this.conversations.set(ROOM, { key: ROOM, title: `#${room}`, lines: [], unread: 0 });
  }

  /** The conversation key of direct messages with a member. @example `model.directKey(fp)` */
  directKey(fingerprint: string): string {
    return `dm:${fingerprint}`;
  }

  /** The direct conversation with a member, created when first needed. */
  direct(member: MemberInfo): Conversation {
    const key = this.directKey(member.fingerprint);
    let conversation = this.conversations.get(key);
    if (conversation === undefined) {
      conversation = { key, title: `@${member.nick}`, lines: [], unread: 0 };
      this.conversations.set(key, conversation);
    }
    return conversation;
  }

  /** The member a direct conversation is with, if it is in the room now. */
  memberOf(key: string): MemberView | undefined {
    return key.startsWith("dm:") ? this.members.get(key.slice(3)) : undefined;
  }

  /** Records a member (joined or re-checked). @example `model.setMember(view)` */
  setMember(view: MemberView): void {
    this.members.set(view.info.fingerprint, view);
  }

  /** Forgets a member that left. @example `model.removeMember(info)` */
  removeMember(info: MemberInfo): void {
    const current = this.members.get(info.fingerprint);
    if (current?.info.memberId === info.memberId) this.members.delete(info.fingerprint);
  }

  /**
   * Adds a line to a conversation and counts it unread unless that
   * conversation is on screen and `seen` says the page is being looked at.
   * Returns the line.
   *
   * @example
   * ```ts
   * model.addLine(ROOM, { kind: "message", text: "hi", nick: "bob", fingerprint, time });
   * ```
   */
  addLine(
    key: string,
    line: Omit<ChatLine, "id" | "time"> & { time?: number },
    seen = true,
  ): ChatLine {
    const conversation = this.conversations.get(key) ?? this.conversations.get(ROOM)!;
    const full: ChatLine = { ...line, id: this.#nextId++, time: line.time ?? Date.now() };
    conversation.lines.push(full);
    if (conversation.lines.length > MAX_MESSAGES) conversation.lines.shift();
    const counts = line.kind === "message";
    if (counts && !(seen && this.active === conversation.key)) conversation.unread++;
    return full;
  }

  /**
   * Puts lines before everything in a conversation (history kept from
   * earlier visits), never counted unread. Returns how many were added.
   *
   * @example
   * ```ts
   * model.prependLines(ROOM, [{ kind: "message", text: "hi", nick: "bob", time }]);
   * ```
   */
  prependLines(key: string, lines: (Omit<ChatLine, "id" | "time"> & { time: number })[]): number {
    const conversation = this.conversations.get(key) ?? this.conversations.get(ROOM)!;
    const room = MAX_MESSAGES - conversation.lines.length;
    const kept = lines.slice(Math.max(0, lines.length - room));
    conversation.lines.unshift(...kept.map((line) => ({ ...line, id: this.#nextId++ })));
    return kept.length;
  }

  /** Shows a conversation and clears its unread count. @example `model.open(ROOM)` */
  open(key: string): Conversation {
    const conversation = this.conversations.get(key) ?? this.conversations.get(ROOM)!;
    this.active = conversation.key;
    conversation.unread = 0;
    return conversation;
  }

  /** Unread messages over every conversation. @example `document.title = model.totalUnread()` */
  totalUnread(): number {
    let total = 0;
    for (const conversation of this.conversations.values()) total += conversation.unread;
    return total;
  }

  /** The conversation keys in the order of the sidebar: the room, then members by nick. */
  order(): string[] {
    const directs = [...this.conversations.values()]
      .filter((conversation) => conversation.key !== ROOM)
      .sort((a, b) => a.title.localeCompare(b.title))
      .map((conversation) => conversation.key);
    const present = [...this.members.values()]
      .map((member) => this.directKey(member.info.fingerprint))
      .filter((key) => !directs.includes(key))
      .sort((a, b) =>
        this.members.get(a.slice(3))!.info.nick.localeCompare(
          this.members.get(b.slice(3))!.info.nick,
        )
      );
    return [ROOM, ...directs, ...present];
  }
}
