/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * The safety number dialog: the number both members compute from their two
 * identity keys (lib/identity/safety_number.ts, the terminal's `/verify`),
 * both fingerprints, the changed-key note, and the button that records the
 * key as verified once the user says the numbers match.
 *
 * @module
 */

import type { Identity } from "../lib/identity/identity.ts";
import { safetyNumber, safetyNumberRows } from "../lib/identity/safety_number.ts";
import type { MemberView } from "./chat_model.ts";
import { h, replaceChildren } from "./dom.ts";

/** Options for {@linkcode showSafetyNumber}. */
export interface SafetyDialogOptions {
  dialog: HTMLDialogElement;
  own: Identity;
  member: MemberView;
  /** Records the key as verified; the dialog closes when it resolves. */
  onVerified: () => Promise<void>;
}

/**
 * Fills the dialog for `member` and opens it, focused on the verify button.
 *
 * @example
 * ```ts
 * showSafetyNumber({ dialog, own: identity, member, onVerified });
 * ```
 */
export function showSafetyNumber({ dialog, own, member, onVerified }: SafetyDialogOptions): void {
  const number = safetyNumber(own.publicKey, member.info.identityPublicKey);
  const verified = member.status === "verified";
  const markButton = h("button", {
    type: "button",
    "data-testid": "mark-verified",
    onclick: async () => {
      await onVerified();
      dialog.close();
    },
  }, verified ? "Verified" : "Numbers match: mark verified");
  markButton.toggleAttribute("disabled", verified);
  const nick = member.info.nick;
  replaceChildren(
    dialog,
    h("h2", {}, `Safety number with ${nick}`),
    h(
      "p",
      {},
      `Compare these numbers with ${nick} over a channel you trust (in person, a call). If they ` +
        "match on both sides, nobody is in the middle.",
    ),
    h(
      "pre",
      { class: "safety-number", "data-testid": "safety-number" },
      safetyNumberRows(number).join("\n"),
    ),
    h("p", {}, "Their fingerprint: ", h("code", {}, member.info.fingerprint)),
    h("p", {}, "Yours: ", h("code", {}, own.fingerprint)),
    member.status === "changed"
      ? h(
        "p",
        { class: "warning" },
        `Their key CHANGED: this browser remembered ${member.expected}.`,
      )
      : null,
    h(
      "div",
      { class: "dialog-actions" },
      markButton,
      h("button", { type: "button", class: "secondary", onclick: () => dialog.close() }, "Close"),
    ),
  );
  dialog.showModal();
  markButton.focus();
}
