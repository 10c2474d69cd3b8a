/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * The page's screens before the chat: create or import an identity, unlock
 * it, pick a relay, room and nick. Every failure is shown on the page in
 * words (a wrong passphrase, a relay that is not securechat, a changed
 * relay key, a relay that cannot be reached), never only in the console.
 *
 * @module
 */

import { IdentityFileError } from "../lib/identity/identity_file.ts";
import type { Identity } from "../lib/identity/identity.ts";
import { parseFingerprint } from "../lib/identity/fingerprint.ts";
import { validateNick, validateRoom } from "../lib/e2e/announcement.ts";
import { NetworkError, ProtocolError } from "../lib/core/errors.ts";
import { ChatScreen } from "./chat_screen.ts";
import { RelayKeyChangedError, startChatSession } from "./chat_session.ts";
import { field, h, replaceChildren } from "./dom.ts";
import type { PageDatabase } from "./idb.ts";
import { PageStore } from "./page_store.ts";
import type { HistoryResult } from "../lib/client/client_store.ts";

/** Messages of earlier visits shown when a room opens. */
const HISTORY_SHOWN = 50;
import { parseRelayTarget, type RelayTarget } from "./relay_target.ts";
import { PageTrust } from "./trust.ts";
import { IdentityVault, MIN_PASSPHRASE_LENGTH } from "./vault.ts";

/** What the join form remembers between visits (not secret). */
const LAST_JOIN = "securechat:last-join";

/**
 * Runs the page in `root`.
 *
 * @example
 * ```ts
 * new App(root, await PageDatabase.open()).start();
 * ```
 */
export class App {
  #root: HTMLElement;
  #vault: IdentityVault;
  #trust: PageTrust;
  #identity?: Identity;
  #db: PageDatabase;
  /** The client store of the unlocked identity, opened at its first join. */
  #store?: Promise<PageStore | Error>;

  /** @example `new App(document.getElementById("app")!, db)` */
  constructor(root: HTMLElement, db: PageDatabase) {
    this.#root = root;
    this.#db = db;
    this.#vault = new IdentityVault(db);
    this.#trust = new PageTrust(db);
  }

  /** Shows the first screen. @example `await app.start()` */
  async start(): Promise<void> {
    const stored = await this.#vault.stored();
    if (stored) this.#showUnlock(stored.fingerprint);
    else this.#showSetup();
  }

  #screen(title: string, ...children: (Node | null)[]): HTMLElement {
    const error = h("p", { class: "error", role: "alert", "data-testid": "error", hidden: true });
    const section = h(
      "section",
      { class: "screen", "data-screen": title },
      h("h1", {}, title),
      error,
      ...children,
    );
    replaceChildren(this.#root, section);
    section.querySelector<HTMLElement>("input, button")?.focus();
    return section;
  }

  #showError(section: HTMLElement, text: string): void {
    const error = section.querySelector<HTMLElement>("[data-testid=error]")!;
    error.textContent = text;
    error.hidden = false;
  }

  /** Runs `work` with the form's buttons disabled and a progress note, showing failures. */
  async #busy(section: HTMLElement, note: string, work: () => Promise<void>): Promise<void> {
    const buttons = [...section.querySelectorAll("button")];
    const progress = h("p", { class: "progress", "data-testid": "progress" }, note);
    section.append(progress);
    for (const button of buttons) button.disabled = true;
    try {
      await work();
    } catch (error) {
      this.#showError(section, describe(error));
    } finally {
      progress.remove();
      for (const button of buttons) button.disabled = false;
    }
  }

  #showSetup(): void {
    const passphrase = h("input", {
      type: "password",
      autocomplete: "new-password",
      "data-testid": "new-passphrase",
    });
    const repeat = h("input", {
      type: "password",
      autocomplete: "new-password",
      "data-testid": "repeat-passphrase",
    });
    const file = h("input", { type: "file", "data-testid": "import-file" });
    const importPassphrase = h("input", {
      type: "password",
      autocomplete: "off",
      "data-testid": "import-passphrase",
    });
    const section = this.#screen(
      "Your securechat identity",
      h(
        "p",
        {},
        "An identity is a key pair: others know you by its fingerprint. It stays in this browser, " +
          "sealed with your passphrase exactly like a securechat identity file, and you can export it " +
          "for the terminal client.",
      ),
      h(
        "form",
        {
          class: "card",
          "data-testid": "create-form",
          onsubmit: (event: Event) => {
            event.preventDefault();
            if (passphrase.value !== repeat.value) {
              this.#showError(section, "the two passphrases differ; type the same one twice");
              return;
            }
            this.#busy(
              section,
              "Creating the identity and sealing it (scrypt, a few seconds)…",
              async () => {
                this.#identity = await this.#vault.create(passphrase.value);
                this.#showJoin();
              },
            );
          },
        },
        h("h2", {}, "Create a new identity"),
        field("Passphrase", passphrase, `at least ${MIN_PASSPHRASE_LENGTH} characters`),
        field("Passphrase again", repeat),
        h("button", { type: "submit", "data-testid": "create" }, "Create identity"),
      ),
      h(
        "form",
        {
          class: "card",
          "data-testid": "import-form",
          onsubmit: (event: Event) => {
            event.preventDefault();
            const chosen = file.files?.[0];
            if (!chosen) {
              this.#showError(section, "choose an identity file to import");
              return;
            }
            this.#busy(section, "Opening the identity file…", async () => {
              const text = await chosen.text();
              this.#identity = await this.#vault.importFile({
                text,
                name: chosen.name,
                passphrase: importPassphrase.value,
              });
              this.#showJoin();
            });
          },
        },
        h("h2", {}, "Or import an identity file"),
        field("Identity file", file, "e.g. ~/.config/securechat/identity"),
        field(
          "Its passphrase",
          importPassphrase,
          "for a file without one: the passphrase to protect it in this browser",
        ),
        h("button", { type: "submit", "data-testid": "import" }, "Import"),
      ),
    );
  }

  #showUnlock(fingerprint: string): void {
    const passphrase = h("input", {
      type: "password",
      autocomplete: "current-password",
      "data-testid": "passphrase",
    });
    const section = this.#screen(
      "Unlock your identity",
      h("p", {}, "Fingerprint: ", h("code", { "data-testid": "stored-fingerprint" }, fingerprint)),
      h(
        "form",
        {
          class: "card",
          onsubmit: (event: Event) => {
            event.preventDefault();
            this.#busy(section, "Unlocking (scrypt, a few seconds)…", async () => {
              this.#identity = await this.#vault.unlock(passphrase.value);
              this.#showJoin();
            });
          },
        },
        field("Passphrase", passphrase),
        h("button", { type: "submit", "data-testid": "unlock" }, "Unlock"),
      ),
      h(
        "div",
        { class: "card" },
        h("button", {
          type: "button",
          class: "secondary",
          "data-testid": "export",
          onclick: () => this.#export(),
        }, "Export identity file"),
        " ",
        h("button", {
          type: "button",
          class: "danger",
          onclick: async () => {
            const sure = confirm(
              "Forget this identity? Without an exported copy it is gone for good, and others will " +
                "see a changed key when you join with a new one.",
            );
            if (!sure) return;
            await this.#vault.forget();
            this.#showSetup();
          },
        }, "Forget this identity"),
      ),
    );
  }

  async #export(): Promise<void> {
    const text = await this.#vault.exportText();
    const url = URL.createObjectURL(new Blob([text], { type: "application/json" }));
    const link = h("a", { href: url, download: "identity" });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  }

  #showJoin(): void {
    const identity = this.#identity!;
    const last = readLastJoin();
    const relay = h("input", {
      type: "text",
      value: last.relay ?? "127.0.0.1:7878",
      "data-testid": "relay",
      autocomplete: "off",
      spellcheck: "false",
    });
    const pin = h("input", {
      type: "text",
      value: "",
      "data-testid": "relay-fingerprint",
      spellcheck: "false",
    });
    const room = h("input", { type: "text", value: last.room ?? "lobby", "data-testid": "room" });
    const nick = h("input", { type: "text", value: last.nick ?? "", "data-testid": "nick" });
    const section = this.#screen(
      "Join a room",
      h(
        "p",
        {},
        "You are ",
        h("code", { "data-testid": "own-fingerprint" }, identity.fingerprint),
        ".",
      ),
      h(
        "form",
        {
          class: "card",
          onsubmit: (event: Event) => {
            event.preventDefault();
            let target: RelayTarget;
            let pinned: string | undefined;
            const problem = validateRoom(room.value) ?? validateNick(nick.value);
            try {
              target = parseRelayTarget(relay.value);
              pinned = pin.value.trim() === "" ? undefined : parseFingerprint(pin.value.trim());
              if (problem) throw new SyntaxError(problem);
            } catch (error) {
              this.#showError(section, (error as Error).message);
              return;
            }
            writeLastJoin({ relay: relay.value, room: room.value, nick: nick.value });
            this.#busy(
              section,
              `Connecting to ${target.address}…`,
              () => this.#join({ target, pinned, room: room.value, nick: nick.value }),
            );
          },
        },
        field("Relay", relay, "HOST:PORT of a securechat relay, or ws://… / wss://…"),
        field(
          "Relay fingerprint (optional)",
          pin,
          "from the relay's operator; without it the first key seen is remembered, and a change refused",
        ),
        field("Room", room),
        field("Nick", nick),
        h("button", { type: "submit", "data-testid": "join" }, "Join"),
      ),
      h(
        "div",
        { class: "card" },
        h("button", {
          type: "button",
          class: "secondary",
          "data-testid": "export",
          onclick: () => this.#export(),
        }, "Export identity file"),
      ),
    );
  }

  async #join(
    options: { target: RelayTarget; pinned?: string; room: string; nick: string },
  ): Promise<void> {
    const identity = this.#identity!;
    let relayFingerprint: string | undefined;
    let firstContact: string | undefined;
    this.#store ??= PageStore.open(this.#db, identity).catch((error: Error) => error);
    const opened = await this.#store;
    const store = opened instanceof PageStore ? opened : undefined;
    let kept: Promise<HistoryResult | undefined> | undefined;
    const screen = new ChatScreen({
      identity,
      target: options.target,
      relayFingerprint: () => relayFingerprint,
      room: options.room,
      nick: options.nick,
      trust: this.#trust,
      onLeave: () => this.#showJoin(),
      onForgetHistory: store === undefined ? undefined : async () => {
        if (relayFingerprint !== undefined) {
          await store.forgetHistory(relayFingerprint, options.room);
        }
      },
    });
    let member;
    try {
      member = await startChatSession({
        identity,
        ...options,
        trust: this.#trust,
        store,
        onEvent: (event) => screen.handleEvent(event),
        onStatus: (status) => {
          if (status.type === "reconnected") screen.connectionStatus("reconnected", "ok");
          else {
            const what = status.type === "disconnected" ? "connection lost" : "reconnecting failed";
            screen.connectionStatus(
              `${what}: ${status.error.message}; retrying in ${status.retryInMs / 1000} s`,
              "warning",
            );
          }
        },
        onRelayVerified: (fingerprint, first) => {
          relayFingerprint = fingerprint;
          if (first) firstContact = fingerprint;
          // Read before this visit records anything: what earlier visits kept.
          kept ??= store?.history(fingerprint, options.room, { limit: HISTORY_SHOWN })
            .catch(() => undefined);
        },
        onEnd: (error) => screen.ended(error),
      });
    } catch (error) {
      if (error instanceof RelayKeyChangedError) {
        this.#showRelayKeyChanged(error);
        return;
      }
      throw error;
    }
    replaceChildren(this.#root, screen.element);
    screen.attach(member);
    if (!(opened instanceof PageStore)) {
      screen.notice(`nothing is kept in this browser for this visit: ${opened.message}`);
    }
    const history = await kept;
    if (history !== undefined) screen.showHistory(history.rows);
    if (history !== undefined && history.refused > 0) {
      screen.notice(
        `${history.refused} message(s) kept in this browser did not open (changed or damaged) ` +
          "and are not shown",
      );
    }
    if (firstContact) {
      screen.notice(
        `first connection to ${options.target.address}: remembered its fingerprint ${firstContact}; ` +
          "compare it with the relay operator's",
      );
    }
  }

  #showRelayKeyChanged(error: RelayKeyChangedError): void {
    const section = this.#screen(
      "Relay key changed: not connected",
      h("p", { class: "warning", "data-testid": "relay-key-changed" }, error.message),
      h("p", {}, "Presented: ", h("code", {}, error.presented)),
      h("p", {}, "Expected: ", h("code", {}, error.expected)),
      h(
        "p",
        {},
        "If the relay's operator confirms the key really changed (over a channel you trust), forget " +
          "the old key and join again. Otherwise, do not.",
      ),
      h(
        "div",
        { class: "card" },
        h("button", { type: "button", onclick: () => this.#showJoin() }, "Back"),
        " ",
        error.pinned ? null : h("button", {
          type: "button",
          class: "danger",
          "data-testid": "forget-relay",
          onclick: async () => {
            await this.#trust.forgetRelay(error.address);
            this.#showJoin();
          },
        }, "Forget the old key"),
      ),
    );
    section.dataset.testid = "relay-key-changed-screen";
  }
}

/** One line for the page about anything that went wrong. */
export function describe(error: unknown): string {
  if (error instanceof IdentityFileError && error.reason === "passphrase") {
    return "wrong passphrase: the identity did not open. Try again (passphrases are case-sensitive).";
  }
  if (
    error instanceof ProtocolError && /not speaking the securechat protocol/.test(error.message)
  ) {
    return `this is not a securechat relay: it answered, but not with the securechat protocol ` +
      `(${error.message})`;
  }
  if (error instanceof NetworkError && /did not open/.test(error.message)) {
    return `${error.message}. Check the address and port; is it a securechat relay (securechat ` +
      "serve) with WebSocket on?";
  }
  if (error instanceof Error) return error.message;
  return String(error);
}

function readLastJoin(): { relay?: string; room?: string; nick?: string } {
  try {
    return JSON.parse(localStorage.getItem(LAST_JOIN) ?? "{}");
  } catch {
    return {};
  }
}

function writeLastJoin(value: { relay: string; room: string; nick: string }): void {
  try {
    localStorage.setItem(LAST_JOIN, JSON.stringify(value));
  } catch {
    // Storage refused: the form simply starts empty next time.
  }
}
