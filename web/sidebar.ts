/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * The chat screen's side panel: the room, then one entry per member (and
 * per direct conversation with someone who left), each with its trust
 * marker, fingerprint, unread count and a button for the safety number.
 *
 * @module
 */

import { type ChatModel, type MemberView, ROOM } from "./chat_model.ts";
import { h, replaceChildren } from "./dom.ts";
import type { PeerStatus } from "./trust.ts";

/** How each trust status is shown next to a nick. */
export const MARKERS: Record<PeerStatus, string> = {
  new: "new",
  known: "",
  verified: "✓ verified",
  changed: "⚠ key changed",
};

/** Options for {@linkcode renderSidebar}. */
export interface SidebarOptions {
  container: HTMLElement;
  model: ChatModel;
  /** Opens a conversation by key. */
  onOpen: (key: string) => void;
  /** Shows a member's safety number. */
  onVerify: (member: MemberView) => void;
}

/**
 * Redraws the side panel from the model.
 *
 * @example
 * ```ts
 * renderSidebar({ container, model, onOpen, onVerify });
 * ```
 */
export function renderSidebar({ container, model, onOpen, onVerify }: SidebarOptions): void {
  const items = model.order().map((key, index) => {
    const conversation = model.conversations.get(key);
    const member = key === ROOM ? undefined : model.members.get(key.slice(3));
    const label = key === ROOM
      ? `#${model.room}`
      : member?.info.nick ?? conversation?.title.slice(1) ?? "";
    const unread = conversation?.unread ?? 0;
    const open = h(
      "button",
      {
        type: "button",
        class: `open${key === model.active ? " active" : ""}`,
        "aria-current": key === model.active ? "true" : undefined,
        title: index < 9 ? `Alt+${index + 1}` : undefined,
        onclick: () => onOpen(key),
      },
      h("span", { class: "label" }, label),
      member ? h("span", { class: `marker ${member.status}` }, MARKERS[member.status]) : null,
      unread > 0 ? h("span", { class: "unread", "data-testid": "unread" }, String(unread)) : null,
    );
    const details = member
      ? h(
        "div",
        { class: "member-details" },
        h(
          "code",
          { class: "fingerprint", "data-testid": "member-fingerprint" },
          member.info.fingerprint,
        ),
        h("button", {
          type: "button",
          class: "secondary small",
          "data-testid": "verify",
          onclick: () => onVerify(member),
        }, "Safety number"),
      )
      : null;
    return h(
      "li",
      {
        class: `conversation-item${member?.status === "changed" ? " changed" : ""}`,
        "data-testid": key === ROOM ? "room-item" : "member-item",
        "data-nick": member?.info.nick,
        "data-status": member?.status,
      },
      open,
      details,
    );
  });
  replaceChildren(container, h("h2", {}, "Conversations"), h("ul", {}, ...items));
}
