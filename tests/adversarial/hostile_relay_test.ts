/**
 * Part 2 of the attack suite: a hostile relay. The relay is built from the
 * real lib/ pieces (tests/adversarial/support/hostile_relay.ts) and the
 * victim is the real client (lib/client/client.ts over a real socket, and the
 * `join` command). The relay adds members whose keys it holds, re-sends old
 * key envelopes and messages (also a member's whole earlier session, and the
 * victim's own traffic), reorders or withholds messages and keys for one
 * member, pairs nicks with other members' keys, and sends traffic for rooms
 * the victim never joined.
 *
 * The victim must never hand a room key to a member outside `--trust`, must
 * warn about new and changed members, must detect replays and gaps, and must
 * never display a forged message.
 */

import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { signAnnouncement } from "../../lib/e2e/announcement.ts";
import { generateIdentity } from "../../lib/identity/identity.ts";
import { generateKeyPair } from "../../lib/crypto/noise.ts";
import type { RelayRecord } from "../../lib/transport/records.ts";
import type { RoomEvent } from "../../lib/e2e/room.ts";
import { pairwiseMessageKind } from "../../lib/e2e/pairwise_session.ts";
import { CliProcess, TempDirs } from "../support/cli_process.ts";
import { delay, type TestClient, waitFor } from "../support/in_process.ts";
import {
  connectVictim,
  type Endpoint,
  HostileRelay,
  type Puppet,
} from "./support/hostile_relay.ts";
import { guarded, Ledger, type Shown } from "./support/observe.ts";
import { Attack } from "./support/scoreboard.ts";

const ROOM = "ops";

type Victim = TestClient & { endpoint: Endpoint };

function shown(victim: { events: RoomEvent[] }, from = 0): Shown[] {
  return victim.events.slice(from).flatMap((event) =>
    event.type === "message" ? [{ from: event.from.fingerprint, text: event.text }] : []
  );
}

function warningsSince(victim: { events: RoomEvent[] }, from: number): string[] {
  return victim.events.slice(from).flatMap((event) => event.type === "warning" ? [event.code] : []);
}

/** A relay with genuine alice (a puppet standing for an honest member) and the victim bob. */
async function setting(options: { trust?: string[] } = {}) {
  const relay = await HostileRelay.start();
  const ledger = new Ledger();
  const alice = relay.addPuppet({ nick: "alice", room: ROOM });
  const trusted = options.trust ? new Set([alice.identity.fingerprint, ...options.trust]) : null;
  const bob = await connectVictim({
    relay,
    room: ROOM,
    nick: "bob",
    isTrusted: trusted ? ({ fingerprint }) => trusted.has(fingerprint) : undefined,
  });
  await exchange(ledger, alice, bob);
  return { relay, ledger, alice, bob };
}

/** Alice says a fresh text and bob shows it: every key is in place. Returns the text. */
async function exchange(ledger: Ledger, alice: Puppet, bob: Victim): Promise<string> {
  const text = ledger.next(alice.identity.fingerprint, "alice");
  alice.say([text]);
  await waitFor(() => bob.texts().includes(text), { what: `bob to read ${text}` });
  return text;
}

/**
 * Pairwise data messages a member sent to `to` that carry more than a
 * confirmation: the relay cannot read them, but it sees their sizes, and a
 * confirmation (an untrusted member gets only that) is the smallest.
 */
function keysHanded(records: RelayRecord[], to: number): number {
  const confirmation = 1 + 4 + 1 + 16; // kind, counter, content kind, tag
  return records.filter((record) =>
    record.type === "direct" && record.to === to &&
    pairwiseMessageKind(record.envelope) === "data" && record.envelope.length > confirmation
  ).length;
}

/** Gives the victim's socket time to deliver what was injected. */
async function settle(bob: Victim, before: number, atLeast = 1): Promise<void> {
  await waitFor(() => bob.events.length >= before + atLeast, {
    what: "the victim to react",
    timeoutMs: 1_500,
  }).catch(() => {});
  await delay(30);
}

Deno.test("hostile relay: an intruder whose key the relay holds gets no key from a --trust client", async () => {
  const score = new Attack("hostile relay: add a member whose key it holds (--trust)");
  const { relay, ledger, alice, bob } = await setting({ trust: [] });
  try {
    await guarded(score, async () => {
      const intruders: Puppet[] = [];
      for (const nick of ["mallory", "alice2", "trudy"]) {
        score.attempt();
        const before = bob.events.length;
        const mallory = relay.addPuppet({ nick, room: ROOM });
        intruders.push(mallory);
        await settle(bob, before, 2);
        const warned = bob.events.slice(before).some((event) =>
          event.type === "warning" && event.code === "untrusted-member" &&
          event.member?.fingerprint === mallory.identity.fingerprint
        );
        if (warned) score.detected();
        // The intruder speaks; bob must not show it.
        mallory.say([ledger.next(mallory.identity.fingerprint, nick)]);
        const text = await exchange(ledger, alice, bob);
        const fromBob = ledger.next(bob.identity.fingerprint, "bob");
        await bob.client.send([fromBob]);
        await waitFor(() => alice.texts().includes(fromBob), { what: "alice reads bob" });
        for (const intruder of intruders) {
          const handed = keysHanded(relay.logged("from", bob.endpoint), intruder.endpoint.memberId);
          if (handed > 0) {
            score.forged(`bob sent ${handed} key(s) to ${intruder.endpoint.nick}`);
          }
          if (intruder.texts().includes(fromBob)) {
            score.forged(`${intruder.endpoint.nick} read bob's message`);
          }
        }
        assert.ok(bob.texts().includes(text));
      }
      // An intruder that was already in the room when bob joined: a second victim.
      score.attempt();
      const dave = await connectVictim({
        relay,
        room: ROOM,
        nick: "dave",
        isTrusted: ({ fingerprint }) => fingerprint === alice.identity.fingerprint,
      });
      await exchange(ledger, alice, dave);
      const untrusted = dave.events.filter((e) =>
        e.type === "warning" && e.code === "untrusted-member"
      );
      if (untrusted.length >= intruders.length + 1) score.detected();
      for (const intruder of [...intruders, bob]) {
        const id: number = intruder.endpoint.memberId;
        const handed = keysHanded(relay.logged("from", dave.endpoint), id);
        if (handed > 0) score.forged(`dave sent ${handed} key(s) to an untrusted member`);
      }
      for (const victim of [bob, dave]) {
        ledger.audit(score, { name: "victim", shown: shown(victim), expected: [], reported: true });
      }
      await dave.client.close();
    });
  } finally {
    score.save();
    await bob.client.close();
    await relay.close();
  }
  assert.equal(score.row.detected, score.row.attempts, score.summary());
  assert.ok(score.clean, score.summary());
});

Deno.test("hostile relay: re-sent key envelopes and messages are refused, never shown twice", async () => {
  const envelopes = new Attack("hostile relay: re-send old key envelopes");
  const messages = new Attack("hostile relay: re-send old messages");
  const { relay, ledger, alice, bob } = await setting();
  try {
    await guarded(envelopes, async () => {
      for (let i = 0; i < 3; i++) await exchange(ledger, alice, bob);
      // A rekey: another member leaves, alice and bob start epoch 2.
      const carol = relay.addPuppet({ nick: "carol", room: ROOM });
      await exchange(ledger, alice, bob);
      relay.remove(carol.endpoint);
      await exchange(ledger, alice, bob);
      const oldEnvelopes = relay.logged("to", bob.endpoint).filter((record) =>
        record.type === "directFrom"
      );
      assert.ok(oldEnvelopes.length >= 3, "alice and carol sent bob keys");
      for (const record of oldEnvelopes) {
        envelopes.attempt();
        const before = bob.events.length;
        relay.inject(bob.endpoint, record);
        await settle(bob, before);
        if (warningsSince(bob, before).length > 0) envelopes.detected();
        ledger.audit(envelopes, {
          name: "bob",
          shown: shown(bob, before),
          expected: [],
          reported: true,
        });
      }
    });
    await guarded(messages, async () => {
      const oldDeliveries = relay.logged("to", bob.endpoint).filter((record) =>
        record.type === "deliver"
      );
      for (const record of [...oldDeliveries, ...oldDeliveries.slice().reverse()]) {
        messages.attempt();
        const before = bob.events.length;
        relay.inject(bob.endpoint, record);
        await settle(bob, before);
        if (warningsSince(bob, before).length > 0) messages.detected();
      }
      const text = await exchange(ledger, alice, bob);
      ledger.audit(messages, { name: "bob", shown: shown(bob), expected: [text], reported: false });
    });
  } finally {
    envelopes.save();
    messages.save();
    await bob.client.close();
    await relay.close();
  }
  for (const score of [envelopes, messages]) {
    assert.equal(score.row.detected, score.row.attempts, score.summary());
    assert.ok(score.clean, score.summary());
  }
});

Deno.test("hostile relay: a member's whole earlier session, replayed under a new member id, shows nothing", async () => {
  const score = new Attack("hostile relay: replay a member's session under a new id");
  const { relay, ledger, alice, bob } = await setting();
  try {
    await guarded(score, async () => {
      for (let i = 0; i < 3; i++) await exchange(ledger, alice, bob);
      const history = relay.logged("to", bob.endpoint).filter((record) =>
        (record.type === "directFrom" || record.type === "deliver") &&
        record.from === alice.endpoint.memberId
      );
      for (let round = 0; round < 3; round++) {
        score.attempt();
        const before = bob.events.length;
        // "alice left", then alice's old announcement comes back under a fresh id,
        // followed by her old envelope and old messages, relabelled.
        if (round === 0) relay.remove(alice.endpoint);
        else {relay.inject(bob.endpoint, {
            type: "memberOffline",
            memberId: relay.nextMemberId() - 1,
            reason: 1,
          });}
        const id = relay.nextMemberId();
        relay.inject(bob.endpoint, {
          type: "memberOnline",
          member: { ...alice.endpoint.entry, memberId: id },
        });
        for (const record of history) {
          relay.inject(bob.endpoint, { ...record, from: id } as RelayRecord);
        }
        await settle(bob, before, 2);
        await delay(50);
        if (warningsSince(bob, before).length > 0) score.detected();
        ledger.audit(score, { name: "bob", shown: shown(bob), expected: [], reported: true });
      }
    });
  } finally {
    score.save();
    await bob.client.close();
    await relay.close();
  }
  assert.equal(score.row.detected, score.row.attempts, score.summary());
  assert.ok(score.clean, score.summary());
});

Deno.test("hostile relay: the victim's own announcement and traffic reflected back show nothing", async () => {
  const score = new Attack("hostile relay: reflect the victim's own traffic");
  const { relay, ledger, alice, bob } = await setting();
  try {
    await guarded(score, async () => {
      for (let round = 0; round < 3; round++) {
        score.attempt();
        const before = bob.events.length;
        const mirror = relay.nextMemberId();
        relay.inject(bob.endpoint, {
          type: "memberOnline",
          member: { ...bob.endpoint.entry, memberId: mirror },
        });
        await delay(50);
        const sent = [
          ledger.next(bob.identity.fingerprint, "bob"),
          ledger.next(bob.identity.fingerprint, "bob"),
        ];
        await bob.client.send([sent[0]]);
        await bob.client.send([sent[1]]);
        // Everything bob sent to the mirror, and everything it published, comes back as the mirror's.
        for (const record of relay.logged("from", bob.endpoint)) {
          if (record.type === "direct" && record.to === mirror) {
            relay.inject(bob.endpoint, {
              type: "directFrom",
              from: mirror,
              envelope: record.envelope,
            });
          }
        }
        for (const record of relay.logged("from", bob.endpoint)) {
          if (record.type === "publish") {
            relay.inject(bob.endpoint, {
              type: "deliver",
              seq: 0,
              from: mirror,
              message: record.message,
            });
          }
        }
        await settle(bob, before, 2);
        await delay(50);
        const reflected = shown(bob, before).filter((s) => s.from === bob.identity.fingerprint);
        for (const message of reflected) {
          score.forged(`bob was shown its own message as a member's: ${message.text.slice(0, 30)}`);
        }
        if (warningsSince(bob, before).length > 0) score.detected();
        relay.inject(bob.endpoint, { type: "memberOffline", memberId: mirror, reason: 1 });
        await exchange(ledger, alice, bob);
      }
    });
  } finally {
    score.save();
    await bob.client.close();
    await relay.close();
  }
  assert.equal(score.row.detected, score.row.attempts, score.summary());
  assert.ok(score.clean, score.summary());
});

Deno.test("hostile relay: messages withheld or reordered for one member are reported as gaps", async () => {
  const withheld = new Attack("hostile relay: withhold messages from one member");
  const reordered = new Attack("hostile relay: reorder messages for one member");
  const { relay, ledger, alice, bob } = await setting();
  const carol = relay.addPuppet({ nick: "carol", room: ROOM });
  try {
    await exchange(ledger, alice, bob);
    await guarded(withheld, async () => {
      for (const count of [1, 2, 5]) {
        withheld.attempt();
        const before = bob.events.length;
        const texts: string[] = [];
        let skip = count;
        relay.filter = (to, record) => {
          if (to !== bob.endpoint || record.type !== "deliver" || skip === 0) return true;
          skip--;
          return false;
        };
        for (let i = 0; i < count + 1; i++) {
          texts.push(ledger.next(alice.identity.fingerprint, "alice"));
          alice.say([texts.at(-1)!]);
        }
        relay.filter = () => true;
        await waitFor(() => bob.texts().includes(texts.at(-1)!), { what: "the last text" });
        const gap = bob.events.slice(before).find((e) => e.type === "warning" && e.code === "gap");
        if (gap?.type === "warning" && gap.text.startsWith(`${count} message`)) withheld.detected();
        // Carol got everything.
        for (const text of texts) {
          if (!carol.texts().includes(text)) withheld.lost(1, "carol missed a message");
        }
        ledger.audit(withheld, {
          name: "bob",
          shown: shown(bob, before),
          expected: texts,
          reported: gap !== undefined,
        });
      }
    });
    await guarded(reordered, async () => {
      for (let i = 0; i < 3; i++) {
        reordered.attempt();
        const before = bob.events.length;
        const held: RelayRecord[] = [];
        relay.filter = (to, record) => {
          if (to === bob.endpoint && record.type === "deliver" && held.length === 0) {
            held.push(record);
            return false;
          }
          return true;
        };
        const first = ledger.next(alice.identity.fingerprint, "alice");
        const second = ledger.next(alice.identity.fingerprint, "alice");
        alice.say([first]);
        alice.say([second]);
        relay.filter = () => true;
        await waitFor(() => bob.texts().includes(second), { what: "the second text" });
        relay.inject(bob.endpoint, held[0]);
        await settle(bob, bob.events.length);
        const codes = warningsSince(bob, before);
        if (codes.includes("gap") && codes.includes("replayed")) reordered.detected();
        ledger.audit(reordered, {
          name: "bob",
          shown: shown(bob, before),
          expected: [first, second],
          reported: codes.includes("gap"),
        });
      }
    });
  } finally {
    withheld.save();
    reordered.save();
    await bob.client.close();
    await relay.close();
  }
  for (const score of [withheld, reordered]) {
    assert.equal(score.row.detected, score.row.attempts, score.summary());
    assert.ok(score.clean, score.summary());
  }
});

Deno.test("hostile relay: a member's key withheld from the victim is reported, not silently lost", async () => {
  const score = new Attack("hostile relay: withhold a member's key");
  const relay = await HostileRelay.start();
  const ledger = new Ledger();
  try {
    await guarded(score, async () => {
      for (const ending of ["leaves", "stays"] as const) {
        score.attempt();
        const bob = await connectVictim({ relay, room: `${ROOM}-${ending}`, nick: "bob" });
        // Every envelope to bob is withheld: bob never gets erin's sender key.
        relay.filter = (to, record) => !(to === bob.endpoint && record.type === "directFrom");
        const erin = relay.addPuppet({ nick: "erin", room: `${ROOM}-${ending}` });
        const texts = [1, 2, 3].map(() => ledger.next(erin.identity.fingerprint, "erin"));
        for (const text of texts) erin.say([text]);
        await delay(100);
        const before = bob.events.length;
        if (ending === "leaves") {
          relay.remove(erin.endpoint);
        } else {
          // Time passes; the next record bob handles must say that erin's messages are stuck.
          await delay(5_500);
          erin.say([ledger.next(erin.identity.fingerprint, "erin")]);
        }
        await settle(bob, before);
        relay.filter = () => true;
        const reported = bob.events.some((event) =>
          event.type === "warning" && event.member?.fingerprint === erin.identity.fingerprint &&
          /key/.test(event.text)
        );
        if (reported) score.detected();
        ledger.audit(score, { name: "bob", shown: shown(bob), expected: texts, reported });
        await bob.client.close();
      }
    });
  } finally {
    score.save();
    await relay.close();
  }
  assert.equal(score.row.detected, score.row.attempts, score.summary());
  assert.ok(score.clean, score.summary());
});

Deno.test("hostile relay: nicks paired with other members' keys are refused", async () => {
  const score = new Attack("hostile relay: pair a nick with another member's key");
  const { relay, ledger, alice, bob } = await setting();
  const carol = relay.addPuppet({ nick: "carol", room: ROOM });
  try {
    await exchange(ledger, alice, bob);
    await guarded(score, async () => {
      const mallory = generateIdentity();
      const pairwise = generateKeyPair("25519").publicKey;
      const announcedBy = (identity: typeof mallory, nick: string) =>
        signAnnouncement({
          identity,
          announcement: { room: ROOM, nick, pairwisePublicKey: pairwise, time: Date.now() },
        });
      const impostors = [
        // Carol's key with alice's announcement.
        {
          identityPublicKey: carol.identity.publicKey,
          online: true,
          announcement: alice.endpoint.entry.announcement,
        },
        // Alice's key with an announcement mallory signed for the nick "alice".
        {
          identityPublicKey: alice.identity.publicKey,
          online: true,
          announcement: announcedBy(mallory, "alice"),
        },
        // Mallory's own key and announcement, under the nick of alice, who is in the room.
        { identityPublicKey: mallory.publicKey, announcement: announcedBy(mallory, "alice") },
        // Mallory's key under carol's nick.
        { identityPublicKey: mallory.publicKey, announcement: announcedBy(mallory, "carol") },
      ];
      for (const impostor of impostors) {
        score.attempt();
        const before = bob.events.length;
        const memberId = relay.nextMemberId();
        relay.inject(bob.endpoint, {
          type: "memberOnline",
          member: { memberId, online: true, ...impostor },
        });
        await settle(bob, before);
        const codes = warningsSince(bob, before);
        if (codes.length > 0) score.detected();
        // Whatever it is, a message under its id must never pass as alice's or carol's.
        const fake = ledger.next(mallory.fingerprint, "impostor");
        relay.inject(bob.endpoint, {
          type: "deliver",
          seq: 0,
          from: memberId,
          message: carol.session.encryptTexts([fake]).message,
        });
        await delay(50);
        for (const event of bob.events.slice(before)) {
          if (event.type !== "message") continue;
          if (["alice", "carol"].includes(event.from.nick)) {
            score.forged(
              `shown as ${event.from.nick} (${event.from.fingerprint}): ${event.text.slice(0, 30)}`,
            );
          }
        }
        relay.inject(bob.endpoint, { type: "memberOffline", memberId, reason: 1 });
      }
      ledger.audit(score, { name: "bob", shown: shown(bob), expected: [], reported: true });
    });
  } finally {
    score.save();
    await bob.client.close();
    await relay.close();
  }
  assert.equal(score.row.detected, score.row.attempts, score.summary());
  assert.ok(score.clean, score.summary());
});

Deno.test("hostile relay: traffic for rooms the victim never joined is refused", async () => {
  const score = new Attack("hostile relay: traffic for rooms never joined");
  const { relay, ledger, alice, bob } = await setting();
  const dave = relay.addPuppet({ nick: "dave", room: "elsewhere" });
  const erin = relay.addPuppet({ nick: "erin", room: "elsewhere" });
  try {
    await guarded(score, async () => {
      await waitFor(() => erin.session.members().length === 1, { what: "dave and erin meet" });
      const elsewhere = dave.say([ledger.next(dave.identity.fingerprint, "dave")]);
      const records: RelayRecord[] = [
        // A message from a member of another room, under an id bob never heard of.
        { type: "deliver", seq: 0, from: dave.endpoint.memberId, message: elsewhere },
        // The same message relabelled as alice's.
        { type: "deliver", seq: 0, from: alice.endpoint.memberId, message: elsewhere },
        // Dave's key envelope for erin, sent to bob as from dave and as from alice.
        ...relay.logged("to", erin.endpoint).filter((r) => r.type === "directFrom"),
        ...relay.logged("to", erin.endpoint).filter((r) => r.type === "directFrom").map((r) =>
          ({ ...r, from: alice.endpoint.memberId }) as RelayRecord
        ),
        // Dave announced into bob's room with his announcement for the other room.
        { type: "memberOnline", member: dave.endpoint.entry },
      ];
      for (const record of records) {
        score.attempt();
        const before = bob.events.length;
        relay.inject(bob.endpoint, record);
        await settle(bob, before);
        if (warningsSince(bob, before).length > 0) score.detected();
      }
      const text = await exchange(ledger, alice, bob);
      ledger.audit(score, { name: "bob", shown: shown(bob), expected: [text], reported: false });
    });
  } finally {
    score.save();
    await bob.client.close();
    await relay.close();
  }
  assert.equal(score.row.detected, score.row.attempts, score.summary());
  assert.ok(score.clean, score.summary());
});

/**
 * The `join` command against the hostile relay: a new member is announced
 * with its fingerprint, a known nick with another key is a loud warning and
 * its messages are marked, and with `--trust` an intruder gets no key.
 */
Deno.test("hostile relay: join warns about new and changed members and keeps keys from intruders", async () => {
  const score = new Attack("hostile relay: new, changed and untrusted members (join)");
  const dirs = new TempDirs();
  const relay = await HostileRelay.start();
  const ledger = new Ledger();
  const alice = generateIdentity();
  const run = async (options: { trust?: boolean; room: string }) => {
    const home = dirs.make();
    writeFileSync(join(home, "known_peers"), `alice ${alice.fingerprint}\n`, { mode: 0o600 });
    const args = [
      "join",
      `127.0.0.1:${relay.address.port}`,
      "--room",
      options.room,
      "--nick",
      "bob",
      "--server-fingerprint",
      relay.fingerprint,
      "--json",
      "--stay",
    ];
    if (options.trust) {
      writeFileSync(join(home, "trust"), `${alice.fingerprint} alice\n`);
      args.push("--trust", join(home, "trust"));
    }
    const victim = CliProcess.start(args, { home });
    await victim.waitFor("stdout", /"type":"welcome"/);
    return victim;
  };
  try {
    await guarded(score, async () => {
      // 1. A first-time member is announced as new, with its fingerprint.
      score.attempt();
      let victim = await run({ room: "r1" });
      const newcomer = relay.addPuppet({ nick: "newcomer", room: "r1" });
      await victim.waitFor(
        "stdout",
        new RegExp(`"type":"new-member".*${newcomer.identity.fingerprint}`),
      ).then(() => score.detected(), () => {});
      await victim.stop();

      // 2. A known nick with another key: a loud warning, and its messages are marked.
      score.attempt();
      victim = await run({ room: "r2" });
      const fakeAlice = relay.addPuppet({ nick: "alice", room: "r2" });
      await victim.waitFor("stdout", /"type":"key-changed"/).then(() => score.detected(), () => {});
      const claim = ledger.next(fakeAlice.identity.fingerprint, "fake-alice");
      await waitFor(
        () => relay.logged("to", fakeAlice.endpoint).some((r) => r.type === "directFrom"),
        { what: "bob's key" },
      ).catch(() => {});
      await delay(100);
      fakeAlice.say([claim]);
      await victim.waitFor("stdout", /"type":"message"/, 3_000).catch(() => {});
      await victim.stop();
      for (const line of victim.stdoutLines()) {
        const object = JSON.parse(line);
        if (object.type === "message" && object.status !== "changed") {
          score.forged(`shown as ${object.from} with status ${object.status}: ${object.text}`);
        }
      }

      // 3. --trust: an intruder is flagged and gets no key; a trusted member gets one.
      score.attempt();
      victim = await run({ room: "r3", trust: true });
      const mallory = relay.addPuppet({ nick: "mallory", room: "r3" });
      const genuine = relay.addPuppet({ nick: "alice", room: "r3", identity: alice });
      await victim.waitFor("stdout", /"code":"untrusted-member"/).then(
        () => score.detected(),
        () => {},
      );
      const hello = ledger.next(alice.fingerprint, "alice");
      await waitFor(
        () => relay.logged("to", genuine.endpoint).some((r) => r.type === "directFrom"),
        { what: "bob's key for alice" },
      );
      await delay(100);
      genuine.say([hello]);
      mallory.say([ledger.next(mallory.identity.fingerprint, "mallory")]);
      await victim.waitFor("stdout", new RegExp(hello));
      const bob = relay.byNick("bob")!;
      const handed = keysHanded(relay.logged("from", bob), mallory.endpoint.memberId);
      if (handed > 0) score.forged(`join --trust sent mallory ${handed} key(s)`);
      await victim.stop();
      const messages = victim.stdoutLines().map((l) => JSON.parse(l)).filter((o) =>
        o.type === "message"
      );
      ledger.audit(score, {
        name: "join --trust",
        shown: messages.map((o) => ({ from: o.fingerprint, text: o.text })),
        expected: [hello],
        reported: false,
      });
      for (const proc of [victim]) {
        const status = await proc.exited;
        if (status.code !== 0 && status.code !== null) {
          score.crash(`join exited ${status.code}: ${proc.stderr}`);
        }
      }
    });
  } finally {
    score.save();
    await relay.close();
    dirs.cleanup();
  }
  assert.equal(score.row.detected, score.row.attempts, score.summary());
  assert.ok(score.clean, score.summary());
});
