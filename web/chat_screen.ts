/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * The chat screen: conversations and members on the side (trust markers,
 * unread counts), the open conversation's lines, the input, the safety
 * number dialog, banners for a changed key or a lost connection, and
 * desktop notifications on mention. Keyboard: Enter sends, `/msg NICK TEXT`
 * and `/verify NICK` work as in the terminal, Alt+↑/↓ or Alt+1…9 switch
 * conversations, Esc returns to the room, `/` (outside the input) focuses
 * the input.
 *
 * Lines are appended in one batch per animation frame, so a burst of
 * messages costs one layout, not one per message.
 *
 * @module
 */

import type { ReconnectingClient } from "../lib/client/reconnecting_client.ts";
import type { MemberInfo, RoomEvent } from "../lib/e2e/room.ts";
import type { HistoryRow } from "../lib/client/local_store_records.ts";
import type { Identity } from "../lib/identity/identity.ts";
import { type ChatLine, ChatModel, type MemberView, mentions, ROOM } from "./chat_model.ts";
import { h, replaceChildren, shortFingerprint } from "./dom.ts";
import { showSafetyNumber } from "./safety_dialog.ts";
import { MARKERS, renderSidebar } from "./sidebar.ts";
import type { RelayTarget } from "./relay_target.ts";
import type { PageTrust } from "./trust.ts";

/** Lines kept in the DOM for the open conversation. */
const MAX_RENDERED = 1_000;

/** Options for {@linkcode ChatScreen}. */
export interface ChatScreenOptions {
  identity: Identity;
  target: RelayTarget;
  relayFingerprint: () => string | undefined;
  room: string;
  nick: string;
  trust: PageTrust;
  /** Called when the user leaves the room. */
  onLeave: () => void;
  /** Deletes this room's history kept in this browser; absent when nothing is kept. */
  onForgetHistory?: () => Promise<void>;
}

/**
 * The chat screen, fed with room events and connection status.
 *
 * @example
 * ```ts
 * const screen = new ChatScreen(options);
 * root.replaceChildren(screen.element);
 * screen.attach(member);
 * ```
 */
export class ChatScreen {
  readonly element: HTMLElement;
  #options: ChatScreenOptions;
  #model: ChatModel;
  #member?: ReconnectingClient;
  #sidebar = h("nav", { class: "sidebar", "aria-label": "Conversations and members" });
  #lines = h("ol", { class: "lines", role: "log", "aria-live": "polite", "data-testid": "lines" });
  #banners = h("div", { class: "banners" });
  #title = h("h2", { class: "conversation-title", "data-testid": "conversation-title" });
  #status = h("span", { class: "status", "data-testid": "status" }, "connecting…");
  #relay = h("span", { class: "identity", "data-testid": "relay-info" });
  #input = h("input", {
    type: "text",
    class: "message-input",
    "aria-label": "Message",
    autocomplete: "off",
    maxlength: "65536",
    "data-testid": "message-input",
  });
  #dialog = h("dialog", { class: "verify-dialog", "data-testid": "verify-dialog" });
  #pending: ChatLine[] = [];
  #frameRequested = false;
  #notify = false;
  /** Events that arrive while members are checked against the store, in order. */
  #queue: Promise<void> = Promise.resolve();

  /** @example `new ChatScreen({ identity, target, relayFingerprint, room, nick, trust, onLeave })` */
  constructor(options: ChatScreenOptions) {
    this.#options = options;
    this.#model = new ChatModel({ room: options.room, nick: options.nick });
    const notifyButton = h("button", {
      type: "button",
      class: "secondary",
      "data-testid": "notify",
      onclick: () => this.#enableNotifications(notifyButton),
    }, "Notify on mention");
    const membersToggle = h("button", {
      type: "button",
      class: "secondary members-toggle",
      "aria-expanded": "false",
      onclick: () => {
        const open = this.element.classList.toggle("show-sidebar");
        membersToggle.setAttribute("aria-expanded", String(open));
      },
    }, "Members");
    const form = h(
      "form",
      {
        class: "composer",
        onsubmit: (event: Event) => {
          event.preventDefault();
          this.#submit();
        },
      },
      this.#input,
      h("button", { type: "submit", "data-testid": "send" }, "Send"),
    );
    this.element = h(
      "div",
      { class: "chat", "data-testid": "chat" },
      h(
        "header",
        { class: "chat-header" },
        h("h1", {}, `#${options.room}`),
        h(
          "span",
          { class: "identity", title: options.identity.fingerprint },
          `${options.nick} · ${shortFingerprint(options.identity.fingerprint)}`,
        ),
        this.#relay,
        this.#status,
        h(
          "span",
          { class: "actions" },
          membersToggle,
          notifyButton,
          options.onForgetHistory
            ? h("button", {
              type: "button",
              class: "secondary",
              "data-testid": "forget-history",
              onclick: () => this.#forgetHistory(),
            }, "Forget history")
            : null,
          h(
            "button",
            { type: "button", class: "secondary", onclick: () => this.#leave() },
            "Leave",
          ),
        ),
      ),
      this.#sidebar,
      h("main", { class: "conversation" }, this.#banners, this.#title, this.#lines, form),
      this.#dialog,
    );
    this.element.addEventListener("keydown", (event) => this.#keydown(event));
    this.#dialog.addEventListener("close", () => this.#input.focus());
    this.#renderSidebar();
    this.#renderConversation();
  }

  /** Starts showing a joined membership. @example `screen.attach(member)` */
  attach(member: ReconnectingClient): void {
    this.#member = member;
    const fingerprint = this.#options.relayFingerprint() ?? "";
    this.#relay.textContent = `relay ${this.#options.target.address} · ${
      shortFingerprint(fingerprint)
    }`;
    this.#relay.title = fingerprint;
    this.#setStatus("connected", "ok");
    this.#input.focus();
  }

  /**
   * Shows the messages kept in this browser from earlier visits above
   * everything else in the room, under a marker line.
   *
   * @example
   * ```ts
   * screen.showHistory((await store.history(relay, "ops", { limit: 50 })).rows);
   * ```
   */
  showHistory(rows: HistoryRow[]): void {
    const group = rows.filter((row) => row.kind === "group");
    if (group.length === 0) return;
    const lines = group.map((row) => ({
      kind: row.direction === "out" ? "own" as const : "message" as const,
      text: row.text,
      nick: row.nick,
      fingerprint: row.sender,
      time: row.time,
    }));
    this.#model.prependLines(ROOM, [
      {
        kind: "notice",
        text: `— the last ${group.length} message(s) kept in this browser —`,
        time: group[0].time,
      },
      ...lines,
      { kind: "notice", text: "— now —", time: Date.now() },
    ]);
    if (this.#model.active === ROOM) this.#renderConversation();
  }

  async #forgetHistory(): Promise<void> {
    if (!confirm("Delete the messages of this room kept in this browser? This cannot be undone.")) {
      return;
    }
    try {
      await this.#options.onForgetHistory!();
      this.#notice(ROOM, "notice", "this room's history was deleted from this browser");
    } catch (error) {
      this.#notice(ROOM, "warning", `could not delete the history: ${(error as Error).message}`);
    }
  }

  /** Shows a notice in the room conversation. @example `screen.notice("remembered the key")` */
  notice(text: string): void {
    this.#notice(ROOM, "notice", text);
  }

  /** Handles a room event, in order (member checks wait for the store). */
  handleEvent(event: RoomEvent): void {
    this.#queue = this.#queue.then(() => this.#handle(event)).catch((error) =>
      this.#notice(ROOM, "warning", `could not process an event: ${(error as Error).message}`)
    );
  }

  /** Shows a connection status line (`lost`, `reconnected`, ...). */
  connectionStatus(text: string, tone: "ok" | "warning" | "error"): void {
    this.#setStatus(tone === "ok" ? "connected" : "reconnecting…", tone);
    this.#notice(ROOM, tone === "ok" ? "notice" : "warning", text);
    if (tone === "ok") this.#banners.querySelector('[data-banner="connection"]')?.remove();
    else this.#banner(text, tone === "error" ? "error" : "warning", "connection");
  }

  /** Shows the end of the membership, with the reason if it was not the user's choice. */
  ended(error?: Error): void {
    this.#member = undefined;
    if (error) {
      this.#setStatus("disconnected", "error");
      this.#banner(`Disconnected: ${error.message}`, "error", "ended");
    }
    this.#input.disabled = true;
  }

  async #handle(event: RoomEvent): Promise<void> {
    const model = this.#model;
    switch (event.type) {
      case "member-joined": {
        const { status, expected } = await this.#options.trust.admitPeer(
          event.member.nick,
          event.member.fingerprint,
        );
        model.setMember({ info: event.member, status, expected });
        if (status === "changed") {
          const text =
            `WARNING: ${event.member.nick}'s key has CHANGED: ${event.member.fingerprint} ` +
            `now, ${expected} before. Someone may be impersonating ${event.member.nick}; verify ` +
            "with them (safety number) before trusting these messages.";
          this.#notice(ROOM, "warning", text);
          this.#banner(text, "error", `changed-${event.member.nick}`);
        } else {
          const verb = event.initial ? "is here" : "joined";
          const suffix = status === "new" ? " (new: first time seen, remembered)" : "";
          this.#notice(
            ROOM,
            "notice",
            `${event.member.nick} ${verb} (${event.member.fingerprint})${suffix}`,
          );
        }
        this.#renderSidebar();
        return;
      }
      case "member-left":
        model.removeMember(event.member);
        this.#notice(ROOM, "notice", `${event.member.nick} (${event.member.fingerprint}) left`);
        this.#renderSidebar();
        return;
      case "warning":
        this.#notice(ROOM, "warning", event.text);
        return;
      case "message": {
        const from = event.from;
        const view = model.members.get(from.fingerprint);
        const key = event.direct ? model.direct(from).key : ROOM;
        const visible = document.visibilityState === "visible";
        this.#add(key, {
          kind: "message",
          text: event.text,
          nick: from.nick,
          fingerprint: from.fingerprint,
          status: view?.status ?? "new",
          time: event.time,
        }, visible);
        if (event.direct || mentions(event.text, model.nick)) {
          this.#notifyMention(from, event.text, event.direct, key, visible);
        }
        return;
      }
    }
  }

  #add(
    key: string,
    line: Omit<ChatLine, "id" | "time"> & { time?: number },
    seen = true,
  ): ChatLine {
    const added = this.#model.addLine(key, line, seen);
    if (key === this.#model.active) {
      this.#pending.push(added);
      if (!this.#frameRequested) {
        this.#frameRequested = true;
        requestAnimationFrame(() => this.#flush());
      }
    } else {
      this.#renderSidebar();
    }
    this.#updateTitle();
    return added;
  }

  #notice(key: string, kind: "notice" | "warning", text: string): void {
    this.#add(key, { kind, text });
  }

  #flush(): void {
    this.#frameRequested = false;
    const lines = this.#pending.splice(0);
    if (lines.length === 0) return;
    const stick = this.#lines.scrollTop + this.#lines.clientHeight >= this.#lines.scrollHeight - 40;
    const fragment = document.createDocumentFragment();
    for (const line of lines.slice(-MAX_RENDERED)) fragment.append(this.#renderLine(line));
    this.#lines.append(fragment);
    while (this.#lines.childElementCount > MAX_RENDERED) this.#lines.firstElementChild!.remove();
    if (stick) this.#lines.scrollTop = this.#lines.scrollHeight;
  }

  #renderLine(line: ChatLine): HTMLLIElement {
    const time = new Date(line.time);
    const clock = `${String(time.getHours()).padStart(2, "0")}:${
      String(time.getMinutes()).padStart(2, "0")
    }`;
    if (line.kind === "notice" || line.kind === "warning") {
      return h(
        "li",
        { class: `line ${line.kind}`, "data-kind": line.kind },
        h("time", {}, clock),
        " ",
        line.text,
      );
    }
    const own = line.kind === "own";
    const marker = line.status ? MARKERS[line.status] : "";
    return h(
      "li",
      {
        class: `line message${own ? " own" : ""}${line.status === "changed" ? " changed" : ""}`,
        "data-kind": line.kind,
        "data-nick": line.nick,
        "data-fingerprint": line.fingerprint,
        "data-status": line.status,
      },
      h("time", { datetime: time.toISOString() }, clock),
      " ",
      h("span", { class: "nick", title: line.fingerprint }, line.nick ?? ""),
      marker ? h("span", { class: `marker ${line.status}` }, marker) : null,
      " ",
      h("span", { class: "text" }, line.text),
      own && line.delivery
        ? h("small", { class: "delivery", "data-testid": "delivery" }, line.delivery)
        : null,
    );
  }

  #renderConversation(): void {
    const model = this.#model;
    const conversation = model.open(model.active);
    const member = model.memberOf(conversation.key);
    const title = conversation.key === ROOM
      ? `#${model.room} (room, end-to-end encrypted)`
      : `Direct messages with ${conversation.title.slice(1)}${member ? "" : " (not in the room)"}`;
    this.#title.textContent = title;
    this.#pending = [];
    replaceChildren(
      this.#lines,
      ...conversation.lines.slice(-MAX_RENDERED).map((line) => this.#renderLine(line)),
    );
    this.#lines.scrollTop = this.#lines.scrollHeight;
    this.#input.placeholder = conversation.key === ROOM
      ? `Message #${model.room} — /msg NICK TEXT, /verify NICK`
      : `Direct message to ${conversation.title}`;
    this.#renderSidebar();
    this.#updateTitle();
  }

  #renderSidebar(): void {
    renderSidebar({
      container: this.#sidebar,
      model: this.#model,
      onOpen: (key) => this.#open(key),
      onVerify: (member) => this.#showVerify(member),
    });
  }

  #open(key: string): void {
    if (key !== ROOM && !this.#model.conversations.has(key)) {
      const member = this.#model.members.get(key.slice(3));
      if (member) this.#model.direct(member.info);
    }
    this.#model.active = key;
    this.#renderConversation();
    this.element.classList.remove("show-sidebar");
    this.#input.focus();
  }

  #updateTitle(): void {
    const unread = this.#model.totalUnread();
    document.title = `${unread > 0 ? `(${unread}) ` : ""}#${this.#model.room} — securechat`;
  }

  #setStatus(text: string, tone: "ok" | "warning" | "error"): void {
    this.#status.textContent = text;
    this.#status.className = `status ${tone}`;
  }

  #banner(text: string, tone: "warning" | "error", id: string): void {
    this.#banners.querySelector(`[data-banner="${CSS.escape(id)}"]`)?.remove();
    const banner = h(
      "div",
      { class: `banner ${tone}`, role: "alert", "data-banner": id, "data-testid": "banner" },
      h("span", {}, text),
      h("button", {
        type: "button",
        class: "secondary small",
        "aria-label": "Dismiss",
        onclick: () => banner.remove(),
      }, "×"),
    );
    this.#banners.append(banner);
  }

  #submit(): void {
    const text = this.#input.value;
    if (text.trim() === "") return;
    this.#input.value = "";
    const command = /^\/(\w+)(?:\s+(\S+))?(?:\s+([\s\S]*))?$/.exec(text);
    if (command && !text.startsWith("//")) {
      this.#command(command[1], command[2], command[3]);
      return;
    }
    const message = text.startsWith("//") ? text.slice(1) : text;
    const key = this.#model.active;
    if (key === ROOM) this.#sendRoom(message);
    else this.#sendDirect(key, message);
  }

  #command(name: string, nick: string | undefined, rest: string | undefined): void {
    const member = nick === undefined
      ? undefined
      : [...this.#model.members.values()].find((candidate) => candidate.info.nick === nick);
    if (name === "msg" || name === "verify") {
      if (member === undefined) {
        this.#notice(
          this.#model.active,
          "warning",
          `no member called ${nick ?? "(none given)"} here`,
        );
        return;
      }
      if (name === "verify") {
        this.#showVerify(member);
        return;
      }
      const key = this.#model.directKey(member.info.fingerprint);
      this.#model.direct(member.info);
      this.#open(key);
      if (rest) this.#sendDirect(key, rest);
      return;
    }
    this.#notice(
      this.#model.active,
      "notice",
      "commands: /msg NICK TEXT (direct message), /verify NICK (safety number); // sends a line " +
        "starting with /",
    );
  }

  #sendRoom(text: string): void {
    const member = this.#member;
    const line = this.#add(ROOM, {
      kind: "own",
      text,
      nick: this.#model.nick,
      fingerprint: this.#options.identity.fingerprint,
      delivery: "sending…",
    });
    if (member === undefined) {
      line.delivery = "not sent: not connected";
      this.#rerender(line);
      return;
    }
    member.send([text]).then(
      ([delivery]) => {
        line.delivery = delivery.online + delivery.later === 0
          ? "reached no one: no other members"
          : delivery.later > 0
          ? `delivered to ${delivery.online}, kept for ${delivery.later} away`
          : `delivered to ${delivery.online}`;
        this.#rerender(line);
      },
      (error: Error) => {
        line.delivery = `not confirmed: ${error.message}`;
        this.#rerender(line);
      },
    );
  }

  #sendDirect(key: string, text: string): void {
    const member = this.#model.memberOf(key);
    const line = this.#add(key, {
      kind: "own",
      text,
      nick: this.#model.nick,
      fingerprint: this.#options.identity.fingerprint,
      delivery: "sent directly",
    });
    const client = this.#member?.client;
    if (member === undefined || client === undefined) {
      line.delivery = member === undefined
        ? "not sent: not in the room"
        : "not sent: not connected";
      this.#rerender(line);
      return;
    }
    try {
      client.sendDirect(member.info.memberId, text);
    } catch (error) {
      line.delivery = `not sent: ${(error as Error).message}`;
      this.#rerender(line);
    }
  }

  /** Redraws one line in place if it is on screen (delivery updates). */
  #rerender(line: ChatLine): void {
    if (this.#pending.includes(line)) return;
    const index = [...this.#model.conversations.get(this.#model.active)!.lines].indexOf(line);
    if (index < 0) return;
    const rendered = this.#lines.children;
    const offset = rendered.length -
      (this.#model.conversations.get(this.#model.active)!.lines.length - index);
    const node = rendered[offset];
    if (node) node.replaceWith(this.#renderLine(line));
  }

  #showVerify(member: MemberView): void {
    showSafetyNumber({
      dialog: this.#dialog,
      own: this.#options.identity,
      member,
      onVerified: async () => {
        const { nick, fingerprint } = member.info;
        await this.#options.trust.markVerified(nick, fingerprint);
        this.#model.setMember({ info: member.info, status: "verified" });
        this.#banners.querySelector(`[data-banner="${CSS.escape(`changed-${nick}`)}"]`)?.remove();
        this.#notice(ROOM, "notice", `${nick}'s key is now marked verified`);
        this.#renderSidebar();
      },
    });
  }

  async #enableNotifications(button: HTMLButtonElement): Promise<void> {
    if (!("Notification" in globalThis)) {
      this.#notice(ROOM, "warning", "this browser has no desktop notifications");
      return;
    }
    const permission = await Notification.requestPermission();
    this.#notify = permission === "granted";
    button.textContent = this.#notify ? "Notifications on" : "Notifications blocked";
    button.disabled = this.#notify;
    if (!this.#notify) {
      this.#notice(
        ROOM,
        "warning",
        "notifications were not allowed; change it in the site settings",
      );
    }
  }

  #notifyMention(
    from: MemberInfo,
    text: string,
    direct: boolean,
    key: string,
    visible: boolean,
  ): void {
    if (!this.#notify || (visible && this.#model.active === key)) return;
    const title = direct ? `${from.nick} (direct)` : `${from.nick} in #${this.#model.room}`;
    const notification = new Notification(title, { body: text.slice(0, 200), tag: key });
    notification.onclick = () => {
      globalThis.focus();
      this.#open(key);
    };
  }

  #keydown(event: KeyboardEvent): void {
    if (event.key === "Escape" && !this.#dialog.open) {
      this.#open(ROOM);
      return;
    }
    if (event.altKey && (event.key === "ArrowDown" || event.key === "ArrowUp")) {
      event.preventDefault();
      const order = this.#model.order();
      const index = order.indexOf(this.#model.active);
      const next = (index + (event.key === "ArrowDown" ? 1 : order.length - 1)) % order.length;
      this.#open(order[next]);
      return;
    }
    if (event.altKey && /^[1-9]$/.test(event.key)) {
      const key = this.#model.order()[Number(event.key) - 1];
      if (key !== undefined) {
        event.preventDefault();
        this.#open(key);
      }
      return;
    }
    if (event.key === "/" && document.activeElement !== this.#input && !this.#dialog.open) {
      event.preventDefault();
      this.#input.focus();
    }
  }

  async #leave(): Promise<void> {
    const member = this.#member;
    this.#member = undefined;
    await member?.close();
    this.#options.onLeave();
  }
}
