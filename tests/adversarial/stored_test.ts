/**
 * Part of the attack suite for durable rooms (issue 10): a hostile relay
 * plays with what it stored for a member who was away. It withholds, drops,
 * reorders and replays stored messages and envelopes, keeps back a sender's
 * key, and hands out someone else's prekeys. The member must show every
 * genuine message at most once and in order, and report everything it
 * will never read. The relay is tests/support/durable_relay.ts (the real
 * room sessions, the real prekey envelopes, the store played by arrays).
 */

import assert from "node:assert/strict";
import type { RelayRecord } from "../../lib/transport/records.ts";
import type { RoomEvent } from "../../lib/e2e/room.ts";
import { encodePrekeyBundle } from "../../lib/e2e/prekeys.ts";
import { DurableRelay, type Person } from "../support/durable_relay.ts";
import { Ledger, type Shown } from "./support/observe.ts";
import { Attack } from "./support/scoreboard.ts";
import { ATTEMPTS } from "./support/knobs.ts";

function shown(person: Person, from = 0): Shown[] {
  return person.events.slice(from).flatMap((event: RoomEvent) =>
    event.type === "message" ? [{ from: event.from.fingerprint, text: event.text }] : []
  );
}

function warned(person: Person, from: number, codes: string[]): boolean {
  return person.events.slice(from).some((event) =>
    event.type === "warning" && codes.includes(event.code)
  );
}

/** Alice and bob in a durable room; bob goes away; alice says `count` texts. */
async function away(ledger: Ledger, count: number) {
  const relay = new DurableRelay();
  const alice = await relay.enrol("alice");
  const bob = await relay.enrol("bob");
  relay.connect(alice);
  relay.connect(bob);
  relay.disconnect(bob);
  const texts = Array.from({ length: count }, () => ledger.next(alice.identity.fingerprint, "a"));
  for (const text of texts) relay.say(alice, [text]);
  return { relay, alice, bob, texts };
}

async function row(
  name: string,
  attempts: number,
  attack: (score: Attack, ledger: Ledger, round: number) => Promise<void>,
): Promise<void> {
  const score = new Attack(name);
  const ledger = new Ledger();
  try {
    for (let round = 0; round < attempts; round++) {
      score.attempt();
      try {
        await attack(score, ledger, round);
      } catch (error) {
        score.crash(`${(error as Error).name}: ${(error as Error).message}`);
      }
    }
  } finally {
    score.save();
  }
  assert.equal(score.row.detected, score.row.attempts, score.summary());
  assert.ok(score.clean, score.summary());
}

const ROUNDS = Math.max(2, ATTEMPTS);

Deno.test("hostile relay (durable): stored messages withheld from a returning member are reported", async () => {
  await row(
    "hostile relay (durable): withhold stored messages",
    ROUNDS,
    async (score, ledger, round) => {
      const { relay, bob, texts } = await away(ledger, 5);
      // Withhold two in the middle (a different pair each round).
      const gone = new Set([2 + (round % 2), 3 + (round % 2)]);
      relay.catchUp = (_to, items) =>
        items.filter((item) => !(item.type === "deliver" && gone.has(item.seq ?? 0)));
      relay.connect(bob);
      if (warned(bob, 0, ["gap"])) score.detected();
      ledger.audit(score, { name: "bob", shown: shown(bob), expected: texts, reported: true });
    },
  );
});

Deno.test("hostile relay (durable): the stored tail dropped is reported by the sender's next message", async () => {
  await row("hostile relay (durable): drop the stored tail", ROUNDS, async (score, ledger) => {
    const { relay, alice, bob, texts } = await away(ledger, 4);
    relay.catchUp = (_to, items) =>
      items.filter((item) => !(item.type === "deliver" && (item.seq ?? 0) >= 3));
    relay.connect(bob);
    relay.catchUp = (_to, items) => items;
    const later = ledger.next(alice.identity.fingerprint, "a");
    relay.say(alice, [later]);
    if (warned(bob, 0, ["gap"])) score.detected();
    ledger.audit(score, {
      name: "bob",
      shown: shown(bob),
      expected: [...texts, later],
      reported: warned(bob, 0, ["gap"]),
    });
  });
});

Deno.test("hostile relay (durable): stored messages reordered are never shown out of order", async () => {
  await row("hostile relay (durable): reorder stored messages", ROUNDS, async (score, ledger) => {
    const { relay, bob, texts } = await away(ledger, 5);
    relay.catchUp = (_to, items) => [...items].reverse();
    relay.connect(bob);
    if (warned(bob, 0, ["gap", "replayed"])) score.detected();
    ledger.audit(score, { name: "bob", shown: shown(bob), expected: texts, reported: true });
  });
});

Deno.test("hostile relay (durable): stored messages and envelopes replayed are shown once", async () => {
  await row("hostile relay (durable): replay stored items", ROUNDS, async (score, ledger) => {
    const { relay, alice, bob, texts } = await away(ledger, 3);
    // Carol, on the roster but away, gets alice's key in a stored envelope.
    const carol = await relay.enrol("carol");
    relay.connect(carol);
    relay.disconnect(carol);
    const forCarol = ledger.next(alice.identity.fingerprint, "a");
    relay.say(alice, [forCarol]);
    // Every stored item twice, the copies under new sequence numbers after the last.
    let next = 1_000;
    const doubled = (items: RelayRecord[]) => [
      ...items,
      ...items.map((item) => ({ ...item, seq: next++ }) as RelayRecord),
    ];
    relay.catchUp = (_to, items) => doubled(items);
    relay.connect(bob);
    relay.connect(carol);
    if (warned(bob, 0, ["replayed"]) && warned(carol, 0, ["replayed"])) score.detected();
    ledger.audit(score, {
      name: "bob",
      shown: shown(bob),
      expected: [...texts, forCarol],
      reported: false,
    });
    ledger.audit(score, {
      name: "carol",
      shown: shown(carol),
      expected: [forCarol],
      reported: false,
    });
  });
});

Deno.test("hostile relay (durable): a key envelope withheld leaves the messages held, then reported", async () => {
  await row("hostile relay (durable): withhold a stored key", ROUNDS, async (score, ledger) => {
    let now = 1_800_000_000_000;
    const relay = new DurableRelay({ now: () => now });
    const alice = await relay.enrol("alice");
    const carol = await relay.enrol("carol");
    relay.connect(carol);
    relay.disconnect(carol);
    relay.connect(alice);
    const texts = [1, 2].map(() => ledger.next(alice.identity.fingerprint, "a"));
    for (const text of texts) relay.say(alice, [text]);
    relay.catchUp = (_to, items) => items.filter((item) => item.type !== "storedEnvelope");
    relay.connect(carol);
    now += 6_000;
    carol.events.push(...carol.session!.tick().events);
    if (warned(carol, 0, ["missing-key"])) score.detected();
    ledger.audit(score, {
      name: "carol",
      shown: shown(carol),
      expected: texts,
      reported: warned(carol, 0, ["missing-key"]),
    });
  });
});

Deno.test("hostile relay (durable): another member's prekeys handed out for a member are refused", async () => {
  await row("hostile relay (durable): substitute prekeys", ROUNDS, async (score) => {
    const relay = new DurableRelay();
    const alice = await relay.enrol("alice");
    const bob = await relay.enrol("bob");
    const mallory = await relay.enrol("mallory");
    relay.connect(bob);
    relay.disconnect(bob);
    relay.connect(alice);
    // Alice asks for bob's prekeys; the relay hands out mallory's.
    const bundle = encodePrekeyBundle({
      signedPrekey: mallory.signedPrekey!,
      oneTimePrekey: mallory.oneTime[0],
    });
    const sealed = alice.session!.sealKeyFor(bob.memberId, bundle);
    if ("warning" in sealed) score.detected();
    else score.forged("alice sealed her key to mallory's prekeys as if they were bob's");
    assert.ok(alice.session!.keyHandoverNeeded().includes(bob.memberId), "bob still needs it");
  });
});
