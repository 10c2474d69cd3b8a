/**
 * Part 6 of the attack suite: names and trust files under attack, with real
 * `securechat` processes. A member whose nick the trust file cannot store,
 * a `known_peers` that cannot be written while `join` runs, a flood of
 * never-seen nicks, and two `join` processes updating one `known_peers` while
 * an impostor takes a verified member's nick: every other member keeps
 * running, nothing is written that hides a changed key, and every problem is
 * one clear line.
 */

import assert from "node:assert/strict";
import { mkdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { generateIdentity, type Identity } from "../../lib/identity/identity.ts";
import { validateNick } from "../../lib/e2e/announcement.ts";
import { generateKeyPair } from "../../lib/crypto/noise.ts";
import { ByteWriter, utf8 } from "../../lib/core/bytes.ts";
import { cryptoBackend } from "../../lib/crypto/crypto_backend.ts";
import { KnownPeers } from "../../lib/identity/known_peers.ts";
import type { MemberEntry } from "../../lib/transport/records.ts";
import { CliProcess, startRelay, TempDirs } from "../support/cli_process.ts";
import { delay, waitFor } from "../support/in_process.ts";
import { type Endpoint, HostileRelay } from "./support/hostile_relay.ts";
import { ATTEMPTS } from "./support/knobs.ts";
import { guarded } from "./support/observe.ts";
import { Attack } from "./support/scoreboard.ts";

/** Counts a process that died (exit 1, a signal, a stack trace) as a crash. */
function checkExit(attack: Attack, name: string, proc: CliProcess, code: number | null): void {
  if (code === 1 || code === null || /\n\s+at /.test(proc.stderr)) {
    attack.crash(`${name} exited ${code}: ${proc.stderr.slice(-400)}`);
  }
}

function startJoin(
  address: string,
  options: { home: string; nick: string; room?: string; fingerprint: string; extra?: string[] },
): CliProcess {
  return CliProcess.start([
    "join",
    address,
    "--room",
    options.room ?? "ops",
    "--nick",
    options.nick,
    "--server-fingerprint",
    options.fingerprint,
    "--json",
    "--stay",
    ...(options.extra ?? []),
  ], { home: options.home });
}

Deno.test("trust: a member named #x does not crash the others (real relay, real joins)", async () => {
  const attack = new Attack("names: a nick known_peers cannot store (#x, real joins)");
  const dirs = new TempDirs();
  const relay = await startRelay({ home: dirs.make("relay") });
  const procs: CliProcess[] = [];
  try {
    await guarded(attack, async () => {
      const alice = startJoin(relay.address, {
        home: dirs.make(),
        nick: "alice",
        fingerprint: relay.fingerprint,
      });
      const bob = startJoin(relay.address, {
        home: dirs.make(),
        nick: "bob",
        fingerprint: relay.fingerprint,
      });
      procs.push(alice, bob);
      await alice.waitFor("stdout", /"type":"welcome"/);
      await bob.waitFor("stdout", /"type":"welcome"/);
      await alice.waitFor("stdout", /"nick":"bob"/);
      attack.attempt();
      const hash = CliProcess.start([
        "join",
        relay.address,
        "--room",
        "ops",
        "--nick",
        "#x",
        "--server-fingerprint",
        relay.fingerprint,
      ], { home: dirs.make(), input: "hello from #x\n" });
      procs.push(hash);
      const hashExit = await hash.wait();
      // Refused with one line (the same rule everywhere), or let in: never a crash of anyone.
      if (hashExit.code !== 0) {
        const lines = hash.stderr.trim().split("\n");
        if (lines.length === 1 && /^securechat: .*nick/.test(lines[0])) attack.detected();
        checkExit(attack, "join --nick #x", hash, hashExit.code);
      }
      // The others still talk to each other.
      await delay(300);
      alice.write("still here\n");
      await bob.waitFor("stdout", /"text":"still here"/, 10_000).catch((error) =>
        attack.lost(1, `bob did not get alice's message after #x: ${(error as Error).message}`)
      );
      for (const [name, proc] of [["alice", alice], ["bob", bob]] as const) {
        if (proc.child.exitCode !== null) {
          checkExit(attack, name, proc, proc.child.exitCode);
          continue;
        }
        proc.endInput();
        const { code } = await proc.stop();
        checkExit(attack, name, proc, code);
      }
    });
  } finally {
    attack.save();
    for (const proc of procs) if (proc.child.exitCode === null) await proc.stop("SIGKILL");
    await relay.proc.stop();
    dirs.cleanup();
  }
  assert.ok(attack.clean, attack.summary());
  assert.equal(attack.row.detected, attack.row.attempts, attack.summary());
});

/**
 * A signed announcement for any nick, bypassing signAnnouncement's own
 * check, as a hostile member's client would make it.
 */
function rawAnnouncement(identity: Identity, room: string, nick: string): Uint8Array {
  const domain = utf8("securechat/2 announcement\0");
  const body = new ByteWriter(256).u8(2).bytes8(utf8(room)).bytes8(utf8(nick))
    .raw(generateKeyPair("25519").publicKey).u64(Date.now()).finish();
  const signed = new ByteWriter(512).raw(domain).raw(identity.publicKey).raw(body).finish();
  const signature = cryptoBackend.ed25519Sign(identity.secretKey, signed);
  return new ByteWriter(512).raw(body).raw(signature).finish();
}

let nextInjectedId = 1_000_000;

/**
 * Tells `victim` a member joined, with a fresh identity and whatever nick, as
 * a hostile relay may. A nick the profile allows gets a real member behind it
 * (a puppet that runs the pairwise handshake with the victim alone, so the
 * victim shows it); any other nick is only an announcement, which the victim
 * must refuse.
 */
function injectMember(relay: HostileRelay, victim: Endpoint, nick: string, identity?: Identity) {
  const who = identity ?? generateIdentity();
  if (validateNick(nick) === null) {
    const puppet = relay.addPuppet({ nick, room: victim.room, identity: who, only: [victim] });
    return { identity: who, entry: puppet.endpoint.entry };
  }
  const entry: MemberEntry = {
    memberId: nextInjectedId++,
    identityPublicKey: who.publicKey,
    online: true,
    announcement: rawAnnouncement(who, victim.room, nick),
  };
  relay.inject(victim, { type: "memberOnline", member: entry });
  return { identity: who, entry };
}

async function hostileVictim(
  relay: HostileRelay,
  home: string,
  options: { json?: boolean; stay?: boolean } = {},
) {
  const joined = relay.nextJoin();
  const args = [
    "join",
    `127.0.0.1:${relay.address.port}`,
    "--room",
    "ops",
    "--nick",
    "victim",
    "--server-fingerprint",
    relay.fingerprint,
  ];
  if (options.stay !== false) args.push("--stay");
  if (options.json !== false) args.push("--json");
  const proc = CliProcess.start(args, { home });
  const endpoint = await joined;
  await proc.waitFor(options.json === false ? "stderr" : "stdout", /welcome|joined room/);
  return { proc, endpoint };
}

Deno.test("trust: a known_peers that cannot be written is reported; the chat goes on", async () => {
  const attack = new Attack("trust: known_peers unwritable while join runs");
  const dirs = new TempDirs();
  const relay = await startRelay({ home: dirs.make("relay") });
  const procs: CliProcess[] = [];
  try {
    await guarded(attack, async () => {
      const home = dirs.make();
      const alice = startJoin(relay.address, {
        home,
        nick: "alice",
        fingerprint: relay.fingerprint,
      });
      procs.push(alice);
      await alice.waitFor("stdout", /"type":"welcome"/);
      // The file alice loaded at start is replaced by something no writer can use.
      attack.attempt();
      mkdirSync(join(home, "known_peers"));
      const bob = startJoin(relay.address, {
        home: dirs.make(),
        nick: "bob",
        fingerprint: relay.fingerprint,
      });
      procs.push(bob);
      await bob.waitFor("stdout", /"type":"welcome"/);
      await alice.waitFor("stdout", /"code":"known-peers".*known_peers/, 10_000).then(
        () => attack.detected(),
        () => {},
      );
      bob.write("after the failed write\n");
      await alice.waitFor("stdout", /"text":"after the failed write"/, 10_000).catch(() =>
        attack.lost(1, "alice stopped receiving after the failed write")
      );
      for (const [name, proc] of [["alice", alice], ["bob", bob]] as const) {
        if (proc.child.exitCode !== null) {
          checkExit(attack, name, proc, proc.child.exitCode);
          continue;
        }
        proc.endInput();
        checkExit(attack, name, proc, (await proc.stop()).code);
      }
    });
  } finally {
    attack.save();
    for (const proc of procs) if (proc.child.exitCode === null) await proc.stop("SIGKILL");
    await relay.proc.stop();
    dirs.cleanup();
  }
  assert.ok(attack.clean, attack.summary());
  assert.equal(attack.row.detected, attack.row.attempts, attack.summary());
});

Deno.test("trust: another process's verified key is never overwritten by an impostor (real processes)", async () => {
  const attack = new Attack("trust: concurrent known_peers writers and an impostor");
  const dirs = new TempDirs();
  const relay = await startRelay({ home: dirs.make("relay") });
  const procs: CliProcess[] = [];
  try {
    await guarded(attack, async () => {
      const home = dirs.make();
      const path = join(home, "known_peers");
      // bob's join starts with an empty known_peers and keeps that view in memory.
      const bob = startJoin(relay.address, { home, nick: "bob", fingerprint: relay.fingerprint });
      procs.push(bob);
      await bob.waitFor("stdout", /"type":"welcome"/);
      // Meanwhile another process (this one, through the same code) records alice verified.
      const alice = generateIdentity();
      await (await KnownPeers.load(path)).markVerified("alice", alice.fingerprint);
      for (let round = 0; round < Math.min(ATTEMPTS, 2); round++) {
        attack.attempt();
        const impostor = CliProcess.start([
          "join",
          relay.address,
          "--room",
          "ops",
          "--nick",
          "alice",
          "--server-fingerprint",
          relay.fingerprint,
          "--stay",
        ], { home: dirs.make() });
        procs.push(impostor);
        const warned = await bob.waitFor(
          "stdout",
          new RegExp(`"type":"key-changed"(.*"nick":"alice"){1}.*`),
          10_000,
        ).then(() => true, () => false);
        const after = await KnownPeers.load(path);
        const bound = after.lookup("alice");
        if (bound?.fingerprint !== alice.fingerprint || !bound.verified) {
          attack.forged(`alice's verified key was replaced: ${readFileSync(path, "utf8")}`);
        } else if (warned) attack.detected();
        await impostor.stop();
        await bob.waitFor("stdout", /"type":"leave".*"nick":"alice"/, 10_000).catch(() => {});
        bob.stdoutLines(); // keep reading
      }
      bob.endInput();
      checkExit(attack, "bob", bob, (await bob.stop()).code);
    });
  } finally {
    attack.save();
    for (const proc of procs) if (proc.child.exitCode === null) await proc.stop("SIGKILL");
    await relay.proc.stop();
    dirs.cleanup();
  }
  assert.ok(attack.clean, attack.summary());
  assert.equal(attack.row.detected, attack.row.attempts, attack.summary());
});

Deno.test("trust: invisible and look-alike nicks from a hostile relay are refused or flagged", async () => {
  const attack = new Attack("names: nick spoofing (invisible marks, look-alikes)");
  const dirs = new TempDirs();
  const relay = await HostileRelay.start();
  let victim: CliProcess | undefined;
  try {
    await guarded(attack, async () => {
      const home = dirs.make();
      const bob = generateIdentity();
      const { proc, endpoint } = await hostileVictim(relay, home);
      victim = proc;
      injectMember(relay, endpoint, "bob", bob);
      await proc.waitFor("stdout", /"type":"new-member".*"nick":"bob"/);
      const invisible = ["\u034f", "\ufe0f", "\u3164", "\u2800", "\u115f", "\u200b"];
      for (const mark of invisible) {
        attack.attempt();
        const { identity } = injectMember(relay, endpoint, `bob${mark}`);
        await proc.waitFor(
          "stdout",
          new RegExp(`"code":"bad-announcement".*${identity.fingerprint}`),
          5_000,
        ).then(() => attack.detected(), () => {});
      }
      for (const lookalike of ["b0b", "BOB", "\u0432ob", "\u0184ob"]) {
        attack.attempt();
        const { identity } = injectMember(relay, endpoint, lookalike);
        await proc.waitFor(
          "stdout",
          new RegExp(`"code":"(lookalike|bad-announcement)".*${identity.fingerprint}`),
          5_000,
        ).then(() => attack.detected(), () => {});
      }
      // None of them was ever shown as a member called bob.
      for (const line of proc.stdoutLines()) {
        const object = JSON.parse(line);
        if (
          (object.type === "new-member" || object.type === "join") &&
          object.fingerprint !== bob.fingerprint && /^bob./u.test(object.nick)
        ) attack.forged(`shown as a member: ${JSON.stringify(object.nick)}`);
      }
      checkExit(attack, "victim", proc, (await proc.stop()).code);
    });
  } finally {
    attack.save();
    if (victim?.child.exitCode === null) await victim.stop("SIGKILL");
    await relay.close();
    dirs.cleanup();
  }
  assert.ok(attack.clean, attack.summary());
  assert.equal(attack.row.detected, attack.row.attempts, attack.summary());
});

/** What a hostile string may never put on a terminal raw (a string: the linter frowns on controls). */
// deno-lint-ignore no-control-regex -- matching control characters is the point
const RAW_CONTROL = new RegExp(
  "[\\x00-\\x08\\x0b-\\x1f\\x7f-\\x9f\\u061c\\u200e\\u200f\\u2028\\u2029\\u202a-\\u202e\\u2066-\\u2069]",
);
const HOSTILE = [
  "\x1b]0;pwned window title\x07",
  "\x1b[2J\x1b[H",
  "\x1b]52;c;ZWNobyBwd25lZA==\x07",
  "\u009b2J",
  "\u202egnp.exe",
  "\u2066isolate\u2069",
  "line\u2028separator",
];

Deno.test("output: hostile strings from a hostile relay are escaped in every mode (real join)", async () => {
  const attack = new Attack("output: hostile strings (error text, messages) in every mode");
  const dirs = new TempDirs();
  const relay = await HostileRelay.start();
  const procs: CliProcess[] = [];
  try {
    await guarded(attack, async () => {
      for (const json of [true, false]) {
        const home = dirs.make();
        const { proc, endpoint } = await hostileVictim(relay, home, { json, stay: false });
        procs.push(proc);
        const alice = relay.addPuppet({ nick: "alice", room: "ops" });
        await waitFor(
          () => relay.logged("to", alice.endpoint).some((record) => record.type === "directFrom"),
          { what: "the victim's key for alice" },
        );
        await delay(100);
        attack.attempt();
        alice.say(HOSTILE.map((text) => `msg ${text}`));
        await proc.waitFor("stdout", /msg .*separator/, 10_000);
        // The relay's error text, then the close.
        attack.attempt();
        relay.inject(endpoint, { type: "error", code: 1, message: HOSTILE.join(" | ") });
        const { code } = await proc.wait(10_000);
        checkExit(attack, json ? "join --json" : "join", proc, code);
        for (const [stream, text] of [["stdout", proc.stdout], ["stderr", proc.stderr]]) {
          const raw = RAW_CONTROL.exec(text.replace(/\n/g, "").replace(/\t/g, ""));
          if (raw) {
            attack.forged(
              `${json ? "--json" : "line mode"} ${stream} has raw U+${
                raw[0].codePointAt(0)!.toString(16)
              }`,
            );
          }
        }
        if (json) {
          const texts = proc.stdoutLines().map((line) => JSON.parse(line)).filter((o) =>
            o.type === "message"
          ).map((o) => o.text);
          if (texts.join("|") === HOSTILE.map((text) => `msg ${text}`).join("|")) attack.detected();
          else attack.lost(1, `--json texts changed: ${JSON.stringify(texts)}`);
        } else if (/\\u001b\]0;pwned/.test(proc.stdout)) attack.detected();
        if (/the relay refused: .*\\u001b/.test(proc.stderr)) attack.detected();
        relay.remove(endpoint, { silently: true });
        relay.remove(alice.endpoint, { silently: true });
      }
    });
  } finally {
    attack.save();
    for (const proc of procs) if (proc.child.exitCode === null) await proc.stop("SIGKILL");
    await relay.close();
    dirs.cleanup();
  }
  assert.ok(attack.clean, attack.summary());
  assert.equal(attack.row.detected, attack.row.attempts, attack.summary());
});

Deno.test("trust: a flood of never-seen nicks keeps known_peers bounded and join responsive", async () => {
  const attack = new Attack("trust: known_peers flooding (never-seen nicks)", { harmless: true });
  const dirs = new TempDirs();
  const relay = await HostileRelay.start();
  let victim: CliProcess | undefined;
  // Every never-seen member runs a real pairwise handshake (X-Wing) with the victim: 1,000 at
  // the CI size, 2,500 at the full size.
  const flood = 250 * Math.min(ATTEMPTS, 10);
  try {
    await guarded(attack, async () => {
      const home = dirs.make();
      const { proc, endpoint } = await hostileVictim(relay, home);
      victim = proc;
      attack.attempt();
      const started = performance.now();
      for (let i = 0; i < flood; i++) injectMember(relay, endpoint, `flood${i}`);
      await proc.waitFor("stdout", new RegExp(`"nick":"flood${flood - 1}"`), 60_000);
      const path = join(home, "known_peers");
      await waitFor(
        () => {
          try {
            return readFileSync(path, "utf8").split("\n").length > flood;
          } catch {
            return false;
          }
        },
        { what: "every key written", timeoutMs: 30_000 },
      );
      const elapsed = performance.now() - started;
      const peers = await KnownPeers.load(path);
      if (peers.keys().length !== flood) {
        attack.lost(flood - peers.keys().length, `${peers.keys().length} of ${flood} keys stored`);
      }
      console.log(
        `  ${flood} never-seen nicks: ${(elapsed / flood).toFixed(2)} ms each in join, ` +
          `known_peers ${statSync(path).size} bytes`,
      );
      // Still answering: a genuine member's message arrives.
      const alice = relay.addPuppet({ nick: "alice", room: "ops" });
      await waitFor(
        () => relay.logged("to", alice.endpoint).some((record) => record.type === "directFrom"),
        { what: "the victim's key for alice", timeoutMs: 60_000 },
      );
      await delay(100);
      alice.say(["still there?"]);
      await proc.waitFor("stdout", /"text":"still there\?"/, 60_000).catch(() =>
        attack.lost(1, "the genuine message after the flood never arrived")
      );
      checkExit(attack, "victim", proc, (await proc.stop()).code);
    });
  } finally {
    attack.save();
    if (victim?.child.exitCode === null) await victim.stop("SIGKILL");
    await relay.close();
    dirs.cleanup();
  }
  assert.ok(attack.clean, attack.summary());
});

Deno.test("output: a member's clock at 2^53 - 1 ms does not break join --json", async () => {
  const attack = new Attack("hostile member: content time 2^53 - 1 (--json)");
  const dirs = new TempDirs();
  const relay = await HostileRelay.start();
  let victim: CliProcess | undefined;
  try {
    await guarded(attack, async () => {
      const { proc } = await hostileVictim(relay, dirs.make());
      victim = proc;
      const far = relay.addPuppet({ nick: "far", room: "ops", now: () => 2 ** 53 - 1 });
      await waitFor(
        () => relay.logged("to", far.endpoint).some((record) => record.type === "directFrom"),
        { what: "the victim's key for far" },
      );
      await delay(100);
      attack.attempt();
      far.say(["from the far future"]);
      await proc.waitFor(
        "stdout",
        /"text":"from the far future".*"sentTime":9007199254740991/,
        10_000,
      )
        .then(() => attack.detected(), () => {});
      far.say(["still fine"]);
      await proc.waitFor("stdout", /"text":"still fine"/, 10_000).catch(() =>
        attack.lost(1, "join stopped after the far time")
      );
      checkExit(attack, "victim", proc, (await proc.stop()).code);
    });
  } finally {
    attack.save();
    if (victim?.child.exitCode === null) await victim.stop("SIGKILL");
    await relay.close();
    dirs.cleanup();
  }
  assert.ok(attack.clean, attack.summary());
  assert.equal(attack.row.detected, attack.row.attempts, attack.summary());
});

Deno.test("trust: another key at a known address is caught under another name; known-servers --remove forgets it", async () => {
  const attack = new Attack("trust: relay key changed under another name (localhost vs 127.0.0.1)");
  const dirs = new TempDirs();
  const procs: CliProcess[] = [];
  try {
    await guarded(attack, async () => {
      const home = dirs.make();
      const genuine = await startRelay({ home: dirs.make("relay") });
      procs.push(genuine.proc);
      const port = genuine.address.split(":").at(-1)!;
      const first = await runJoin(`127.0.0.1:${port}`, home);
      assert.equal(first.code, 0, first.stderr);
      await genuine.proc.stop();
      // Someone else's relay now answers on the same address.
      const impostor = await startRelay({ home: dirs.make("relay"), listen: `127.0.0.1:${port}` });
      procs.push(impostor.proc);
      attack.attempt();
      const second = await runJoin(`localhost:${port}`, home);
      if (second.code === 0) {
        attack.forged(`the impostor's key was accepted under localhost: ${second.stderr}`);
      } else if (second.code === 4 && /127\.0\.0\.1/.test(second.stderr)) attack.detected();
      else attack.lost(1, `join exited ${second.code}: ${second.stderr}`);
      // The user decides the key really changed: forget the address, and join remembers the new key.
      const removed = await runCommand(["known-servers", "--remove", `127.0.0.1:${port}`], home);
      assert.equal(removed.code, 0, removed.stderr);
      assert.match(removed.stderr, /removed 127\.0\.0\.1:\d+/);
      const listed = await runCommand(["known-servers"], home);
      assert.equal(listed.stdout, "");
      const third = await runJoin(`localhost:${port}`, home);
      assert.equal(third.code, 0, third.stderr);
      const after = await runCommand(["known-servers"], home);
      assert.match(after.stdout, new RegExp(`^localhost:${port} ${impostor.fingerprint}$`, "m"));
      assert.match(
        after.stdout,
        new RegExp(`^127\\.0\\.0\\.1:${port} ${impostor.fingerprint}$`, "m"),
      );
      const missing = await runCommand(["known-servers", "--remove", "nowhere.example:1"], home);
      assert.equal(missing.code, 2);
    });
  } finally {
    attack.save();
    for (const proc of procs) if (proc.child.exitCode === null) await proc.stop("SIGKILL");
    dirs.cleanup();
  }
  assert.ok(attack.clean, attack.summary());
  assert.equal(attack.row.detected, attack.row.attempts, attack.summary());
});

async function runCommand(args: string[], home: string) {
  const proc = CliProcess.start(args, { home, input: "" });
  const status = await proc.wait();
  return { ...status, stdout: proc.stdout, stderr: proc.stderr };
}

function runJoin(address: string, home: string) {
  return runCommand(["join", address, "--room", "ops", "--nick", "carol"], home);
}
