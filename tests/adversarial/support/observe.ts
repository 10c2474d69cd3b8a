/**
 * What the adversarial tests watch: uncaught errors (crashes) while an
 * attack runs, and a ledger of the messages genuinely sent, against which
 * every message a victim displays is checked.
 *
 * @module
 */

import { randomBytes } from "node:crypto";
import type { Attack } from "./scoreboard.ts";

/**
 * Collects uncaught exceptions and unhandled rejections while it is
 * started, instead of letting them abort the test run, so that they can be
 * counted as crashes.
 *
 * @example
 * ```ts
 * const guard = new CrashGuard().start();
 * try { await attack(); } finally { for (const crash of guard.stop()) attack.crash(crash); }
 * ```
 */
export class CrashGuard {
  #crashes: string[] = [];
  #onError = (event: ErrorEvent) => {
    this.#crashes.push(`uncaught ${event.error?.stack ?? event.message}`);
    event.preventDefault();
  };
  #onRejection = (event: PromiseRejectionEvent) => {
    const reason = event.reason as Error | undefined;
    this.#crashes.push(`unhandled rejection ${reason?.stack ?? String(reason)}`);
    event.preventDefault();
  };

  /** Starts collecting. @example `const guard = new CrashGuard().start()` */
  start(): this {
    globalThis.addEventListener("error", this.#onError);
    globalThis.addEventListener("unhandledrejection", this.#onRejection);
    return this;
  }

  /** Crashes collected so far (and keeps collecting). @example `guard.crashes` */
  get crashes(): string[] {
    return [...this.#crashes];
  }

  /** Stops collecting and returns what was collected. @example `guard.stop()` */
  stop(): string[] {
    globalThis.removeEventListener("error", this.#onError);
    globalThis.removeEventListener("unhandledrejection", this.#onRejection);
    return this.#crashes.splice(0);
  }
}

/**
 * Runs `work` with a {@linkcode CrashGuard}, counting what it catches as
 * crashes of `attack`.
 *
 * @example
 * ```ts
 * await guarded(attack, async () => { ... });
 * ```
 */
export async function guarded<T>(attack: Attack, work: () => Promise<T>): Promise<T> {
  const guard = new CrashGuard().start();
  try {
    return await work();
  } finally {
    // Late errors of closing sockets land in the next turns.
    await new Promise((resolve) => setTimeout(resolve, 20));
    for (const crash of guard.stop()) attack.crash(crash);
  }
}

/** A message as a victim displayed it. */
export interface Shown {
  /** Fingerprint of the member it was shown as coming from. */
  from: string;
  /** Its text. */
  text: string;
}

interface SentText {
  from: string;
  sequence: number;
}

/**
 * Every message genuinely sent in a test, so that a displayed message can
 * be classified as genuine, forged, replayed or out of order, and a missing
 * one as reported or lost.
 *
 * @example
 * ```ts
 * const ledger = new Ledger();
 * const text = ledger.next(alice.identity.fingerprint, "alice");
 * await alice.client.send([text]);
 * ledger.audit(attack, { name: "bob", shown, expected: [text], reported: false });
 * ```
 */
export class Ledger {
  #texts = new Map<string, SentText>();
  #sequence = 0;
  #tag = randomBytes(4).toString("hex");

  /**
   * Creates and records a fresh text sent by the member with fingerprint
   * `from`. Texts are unique, so a repeat on screen is a replay.
   *
   * @example
   * ```ts
   * const text = ledger.next(fp, "alice");
   * ```
   */
  next(from: string, label: string, padding = 0): string {
    const sequence = ++this.#sequence;
    const text = `${label}#${sequence}#${this.#tag}${padding > 0 ? " " + "x".repeat(padding) : ""}`;
    this.#texts.set(text, { from, sequence });
    return text;
  }

  /** Whether `text` was genuinely sent by `from`. @example `ledger.isGenuine(fp, text)` */
  isGenuine(from: string, text: string): boolean {
    return this.#texts.get(text)?.from === from;
  }

  /**
   * Checks what one receiver displayed: every message must be genuine, from
   * its real sender, shown once, and in each sender's order; every
   * `expected` text must be shown unless the receiver `reported` a problem
   * (an error, a closed connection, a gap warning). Counts problems on
   * `attack` and returns them.
   *
   * @example
   * ```ts
   * ledger.audit(attack, { name: "bob", shown, expected, reported: bob.closed !== undefined });
   * ```
   */
  audit(
    attack: Attack,
    options: { name: string; shown: Shown[]; expected: string[]; reported: boolean },
  ): { forged: number; lost: number } {
    const { name, shown, expected, reported } = options;
    let forged = 0;
    const seen = new Set<string>();
    const lastSequence = new Map<string, number>();
    for (const message of shown) {
      const sent = this.#texts.get(message.text);
      const short = message.text.slice(0, 60);
      if (sent === undefined) {
        forged++;
        attack.forged(`${name} showed a text nobody sent: ${JSON.stringify(short)}`);
      } else if (sent.from !== message.from) {
        forged++;
        attack.forged(`${name} showed ${JSON.stringify(short)} as sent by ${message.from}`);
      } else if (seen.has(message.text)) {
        forged++;
        attack.forged(`${name} showed ${JSON.stringify(short)} twice`);
      } else if ((lastSequence.get(sent.from) ?? 0) > sent.sequence) {
        forged++;
        attack.forged(`${name} showed ${JSON.stringify(short)} out of order`);
      }
      seen.add(message.text);
      if (sent) {
        lastSequence.set(sent.from, Math.max(lastSequence.get(sent.from) ?? 0, sent.sequence));
      }
    }
    const missing = expected.filter((text) => !seen.has(text));
    let lost = 0;
    if (missing.length > 0 && !reported) {
      lost = missing.length;
      attack.lost(lost, `${name} never got ${missing.length} message(s) and was not told`);
    }
    return { forged, lost };
  }
}
