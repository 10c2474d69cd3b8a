/**
 * The cluster store when NATS fails, against real `nats-server` processes:
 * a server killed with SIGKILL and restarted in the middle of a stream of
 * appends loses nothing that was acknowledged; a three-node JetStream
 * cluster with three replicas keeps serving with its stream leader killed;
 * an unreachable server, refused credentials and a server without
 * JetStream each fail `open` with one line.
 */

import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { nkeys } from "@nats-io/nats-core";
import { openNatsRelayStore } from "../lib/relay/store/nats_store.ts";
import {
  natsCredentialsFromEnvironment,
  readNatsCredentialsFile,
} from "../lib/relay/store/nats_credentials.ts";
import { type RelayStore, StoreError } from "../lib/relay/store/relay_store.ts";
import { body, member, readAll } from "./support/store_contract.ts";
import {
  freePort,
  HAVE_NATS,
  type NatsServer,
  requireNatsServer,
  startNatsCluster,
  startNatsServer,
} from "./support/nats_server.ts";

requireNatsServer("tests/nats_failover_test.ts");

const natsTest = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name, ignore: !HAVE_NATS, sanitizeOps: false, sanitizeResources: false, fn });

/** Appends `count` items from `from`, `inflight` at a time; records what was acknowledged. */
async function appendStream(options: {
  store: RelayStore;
  from: number;
  count: number;
  inflight: number;
  onAcked: (n: number) => Promise<void> | void;
}): Promise<{ acked: Map<number, string>; failed: number; firstError?: string }> {
  const acked = new Map<number, string>();
  let failed = 0;
  let firstError: string | undefined;
  let next = 0;
  const worker = async () => {
    while (next < options.count) {
      const text = `item-${next++}`;
      try {
        const result = await options.store.appendGroup("ops", {
          from: options.from,
          body: body(text),
        });
        if (result.status !== "stored") throw new Error(`${text}: ${result.status}`);
        acked.set(result.seq, text);
        await options.onAcked(acked.size);
      } catch (error) {
        if (!(error instanceof StoreError)) throw error;
        failed++;
        firstError ??= error.message;
      }
    }
  };
  await Promise.all(Array.from({ length: options.inflight }, worker));
  return { acked, failed, firstError };
}

/** Reads everything kept for `memberId` through a store that never saw the room. */
async function everythingFor(
  servers: string[],
  memberId: number,
  replicas = 1,
): Promise<Map<number, string>> {
  const store = await openNatsRelayStore({ servers, replicas, timeoutMs: 20_000 });
  try {
    const { entries } = await readAll(store, "ops", memberId, 0);
    const out = new Map<number, string>();
    for (const entry of entries) {
      assert.notEqual(entry.kind, "gap");
      if (entry.kind === "gap") continue;
      assert.ok(!out.has(entry.seq), `sequence ${entry.seq} twice`);
      out.set(entry.seq, new TextDecoder().decode(entry.body));
    }
    return out;
  } finally {
    await store.close();
  }
}

function assertKept(acked: Map<number, string>, kept: Map<number, string>): void {
  for (const [seq, text] of acked) {
    assert.equal(kept.get(seq), text, `acknowledged ${text} at ${seq} is missing`);
  }
  const texts = [...kept.values()];
  assert.equal(new Set(texts).size, texts.length, "an item is stored twice");
  const seqs = [...kept.keys()];
  assert.deepEqual(seqs, Array.from({ length: seqs.length }, (_, i) => i + 1), "holes");
}

natsTest(
  "nats failover: nats-server killed and restarted under appends loses nothing acknowledged",
  async () => {
    const server = await startNatsServer();
    let store: RelayStore | undefined;
    try {
      store = await openNatsRelayStore({ servers: server.url, timeoutMs: 15_000 });
      const alice = await store.addMember("ops", member(1, "alice"));
      const bob = await store.addMember("ops", member(2, "bob"));
      assert.ok(alice.status === "added" && bob.status === "added");
      let killed = false;
      const { acked, failed } = await appendStream({
        store,
        from: alice.member.memberId,
        count: 600,
        inflight: 8,
        onAcked: async (n) => {
          if (n < 150 || killed) return;
          killed = true;
          await server.kill();
          await new Promise((resolve) => setTimeout(resolve, 300));
          await server.start();
        },
      });
      assert.ok(killed);
      assert.ok(acked.size >= 590, `only ${acked.size} acknowledged, ${failed} failed`);
      assertKept(acked, await everythingFor([server.url], bob.member.memberId));
    } finally {
      await store?.close();
      await server.stop();
    }
  },
);

natsTest(
  "nats failover: a three-node cluster with three replicas serves on with its leader killed",
  async () => {
    const nodes = await startNatsCluster(3);
    const urls = nodes.map((node) => node.url);
    let store: RelayStore | undefined;
    try {
      store = await openNatsRelayStore({ servers: urls, replicas: 3, timeoutMs: 30_000 });
      const alice = await store.addMember("ops", member(1, "alice"));
      const bob = await store.addMember("ops", member(2, "bob"));
      assert.ok(alice.status === "added" && bob.status === "added");
      let victim: NatsServer | undefined;
      let chosen = false;
      const { acked, failed, firstError } = await appendStream({
        store,
        from: alice.member.memberId,
        count: 300,
        inflight: 4,
        onAcked: async (n) => {
          if (n < 100 || chosen) return;
          chosen = true; // one victim: two of three would leave no majority
          victim = await streamLeader(urls, nodes);
          await victim.kill();
        },
      });
      assert.ok(victim !== undefined);
      assert.equal(failed, 0, firstError);
      const survivors = nodes.filter((node) => node !== victim).map((node) => node.url);
      assertKept(acked, await everythingFor(survivors, bob.member.memberId, 3));
      // A relay that starts now, knowing only the survivors, joins the room and is served.
      const late = await openNatsRelayStore({ servers: survivors, replicas: 3, timeoutMs: 30_000 });
      try {
        const carol = await late.addMember("ops", member(3, "carol"));
        assert.equal(carol.status, "added");
        const more = await late.appendGroup("ops", {
          from: bob.member.memberId,
          body: body("after"),
        });
        assert.ok(more.status === "stored" && more.seq === acked.size + 1);
      } finally {
        await late.close();
      }
    } finally {
      await store?.close();
      await Promise.all(nodes.map((node) => node.stop()));
    }
  },
);

/** The node leading the rooms stream. */
async function streamLeader(urls: string[], nodes: NatsServer[]): Promise<NatsServer> {
  const nc = await connect({ servers: urls });
  try {
    const jsm = await jetstreamManager(nc, { timeout: 20_000, checkAPI: false });
    const info = await jsm.streams.info("SECURECHAT_ROOMS");
    const name = info.cluster?.leader;
    const index = nodes.findIndex((_, i) => name === `node-${i + 1}`);
    assert.ok(index >= 0, `no leader: ${name}`);
    return nodes[index];
  } finally {
    await nc.close();
  }
}

/** `open` must fail with one line matching `pattern`, and quickly. */
async function refusesToOpen(
  options: Parameters<typeof openNatsRelayStore>[0],
  pattern: RegExp,
): Promise<void> {
  const started = Date.now();
  const error = await openNatsRelayStore({ timeoutMs: 2_000, ...options }).then(
    async (store) => {
      await store.close();
      return undefined;
    },
    (error: unknown) => error,
  );
  assert.ok(error instanceof StoreError, `open succeeded or threw ${error}`);
  assert.doesNotMatch(error.message, /\n/);
  assert.match(error.message, pattern);
  assert.ok(Date.now() - started < 10_000, "took too long");
}

natsTest(
  "nats errors: unreachable, refused credentials and JetStream disabled: one line each",
  async () => {
    await refusesToOpen(
      { servers: `nats://127.0.0.1:${await freePort()}` },
      /cannot reach NATS JetStream at nats:\/\/127\.0\.0\.1:\d+ .*nats-server is running/,
    );
    const userKeys = nkeys.createUser();
    const nkey = userKeys.getPublicKey();
    const seed = new TextDecoder().decode(userKeys.getSeed());
    const secured = await startNatsServer({
      config: `authorization { users: [ { user: relay, password: "right horse" }, ` +
        `{ nkey: ${nkey} } ] }\n`,
    });
    const noJetStream = await startNatsServer({ jetstream: false });
    const dir = mkdtempSync(join(tmpdir(), "securechat-creds-"));
    try {
      const wrong = { kind: "user", user: "relay", password: "wrong horse" } as const;
      await refusesToOpen({ servers: secured.url, credentials: wrong }, /refused the credentials/);
      await refusesToOpen({ servers: secured.url }, /refused the credentials/);
      await refusesToOpen(
        { servers: secured.url, credentials: { kind: "token", token: "guess" } },
        /refused the credentials/,
      );
      await refusesToOpen(
        { servers: noJetStream.url },
        /JetStream disabled; run nats-server with -js/,
      );
      // Credentials in the address would be on the command line: refused before connecting.
      await refusesToOpen(
        { servers: `nats://relay:secret@127.0.0.1:${secured.port}` },
        /credentials inside a server address/,
      );

      // The right credentials, from a file and from the environment.
      const userFile = join(dir, "user.conf");
      writeFileSync(userFile, "user = relay\npassword = right horse\n", { mode: 0o600 });
      const seedFile = join(dir, "relay.nk");
      writeFileSync(seedFile, `${seed}\n`, { mode: 0o600 });
      for (
        const credentials of [
          readNatsCredentialsFile(userFile),
          readNatsCredentialsFile(seedFile),
          natsCredentialsFromEnvironment({
            SECURECHAT_NATS_USER: "relay",
            SECURECHAT_NATS_PASSWORD: "right horse",
          }),
        ]
      ) {
        const store = await openNatsRelayStore({ servers: secured.url, credentials });
        assert.equal((await store.addMember("ops", member(1, "alice"))).status !== undefined, true);
        await store.close();
      }
      // A credentials file others can read is refused, naming the file and the fix.
      chmodSync(userFile, 0o644);
      assert.throws(
        () => readNatsCredentialsFile(userFile),
        /readable by other users; run chmod 600/,
      );
      assert.throws(
        () => readNatsCredentialsFile(join(dir, "missing")),
        /cannot read NATS credentials file .*missing \(ENOENT\)/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await secured.stop();
      await noJetStream.stop();
    }
  },
);
