import assert from "node:assert/strict";
import { connect, createServer, type Socket } from "node:net";
import { ChatClient } from "../lib/client/client.ts";
import { AuthenticationError } from "../lib/core/errors.ts";
import { generateIdentity } from "../lib/identity/identity.ts";
import { type ConnectionStatus, ReconnectingClient } from "../lib/client/reconnecting_client.ts";
import type { RoomEvent } from "../lib/e2e/room.ts";
import { joinRoom, startRelay, waitFor } from "./support/in_process.ts";

function member(
  port: number,
  pinned: () => string,
  statuses: ConnectionStatus[],
  reconnect = true,
) {
  const identity = generateIdentity();
  const events: RoomEvent[] = [];
  let ended: { error?: Error } | undefined;
  const start = ReconnectingClient.start({
    connect: (handlers) =>
      ChatClient.connect({
        host: "127.0.0.1",
        port,
        identity,
        room: "r",
        nick: "alice",
        verifyRelay: ({ fingerprint }) => {
          if (fingerprint !== pinned()) throw new AuthenticationError("unexpected relay");
        },
        ...handlers,
      }),
    reconnect,
    initialDelayMs: 50,
    maxDelayMs: 200,
    onEvent: (event) => events.push(event),
    onStatus: (status) => statuses.push(status),
    onEnd: (error) => ended = { error },
  });
  return { start, events, ended: () => ended };
}

Deno.test("after a relay restart it reconnects, rejoins with a new key, and sends what was queued", async () => {
  const first = await startRelay();
  const port = first.port;
  const identity = first.identity;
  const statuses: ConnectionStatus[] = [];
  const alice = member(port, () => identity.fingerprint, statuses);
  const client = await alice.start;
  await first.relay.close();
  await waitFor(() => statuses.some((s) => s.type === "disconnected"), { what: "disconnect" });
  const queued = client.send(["sent while away"]);
  assert.equal(client.pending, 1);

  const second = await startRelay({ identity, port });
  const bob = await joinRoom({ relay: second.relay, room: "r", nick: "bob" });
  await waitFor(() => statuses.some((s) => s.type === "reconnected"), { what: "reconnect" });
  assert.deepEqual((await queued).map((delivery) => delivery.online), [1]);
  await waitFor(() => bob.texts().length === 1, { what: "delivery" });
  assert.deepEqual(bob.texts(), ["sent while away"]);
  await client.close();
  assert.deepEqual(alice.ended(), { error: undefined });
  await bob.client.close();
  await second.relay.close();
});

Deno.test("a different relay key on reconnect ends it with an authentication error and fails the queue", async () => {
  const first = await startRelay();
  const port = first.port;
  const statuses: ConnectionStatus[] = [];
  const alice = member(port, () => first.identity.fingerprint, statuses);
  const client = await alice.start;
  await first.relay.close();
  await waitFor(() => statuses.some((s) => s.type === "disconnected"), { what: "disconnect" });
  const queued = client.send(["must not reach an impostor"]);
  const impostor = await startRelay({ port });
  await assert.rejects(queued, AuthenticationError);
  await waitFor(() => alice.ended() !== undefined, { what: "end" });
  assert.ok(alice.ended()!.error instanceof AuthenticationError);
  assert.equal(impostor.logs.filter((line) => line.startsWith("join")).length, 0);
  await impostor.relay.close();
});

Deno.test("without reconnect a loss ends it at once and in-flight sends are not confirmed", async () => {
  const relay = await startRelay();
  const statuses: ConnectionStatus[] = [];
  const alice = member(relay.port, () => relay.identity.fingerprint, statuses, false);
  const client = await alice.start;
  await relay.relay.close();
  await waitFor(() => alice.ended() !== undefined, { what: "end" });
  assert.ok(alice.ended()!.error, "ended with the reason");
  assert.equal(statuses.length, 0, "no reconnection attempted");
  await assert.rejects(client.send(["too late"]));
});

Deno.test("retries back off exponentially with jitter (half to all of each delay) up to the cap", async () => {
  const relay = await startRelay();
  const identity = generateIdentity();
  const statuses: ConnectionStatus[] = [];
  let ended = false;
  const draws = [0, 0.999, 0, 0.999, 0.5, 0, 0.999];
  let draw = 0;
  const client = await ReconnectingClient.start({
    connect: (handlers) =>
      ChatClient.connect({
        host: "127.0.0.1",
        port: relay.port,
        identity,
        room: "r",
        nick: "alice",
        verifyRelay: () => {},
        ...handlers,
      }),
    reconnect: true,
    initialDelayMs: 20,
    maxDelayMs: 80,
    random: () => draws[draw++ % draws.length],
    onEvent: () => {},
    onStatus: (status) => statuses.push(status),
    onEnd: () => ended = true,
  });
  await relay.relay.close(); // Nothing listens any more: every retry is refused.
  await waitFor(() => statuses.length >= 6, { what: "six statuses", timeoutMs: 5_000 });
  await client.close();
  const delays = statuses.map((status) => "retryInMs" in status ? status.retryInMs : -1);
  // Nominal 20, 40, 80, 80, 80, 80 ms; each drawn from [nominal / 2, nominal].
  assert.deepEqual(delays.slice(0, 6), [10, 40, 40, 80, 60, 40]);
  assert.equal(statuses[0].type, "disconnected");
  assert.ok(statuses.slice(1).every((status) => status.type === "retry-failed"));
  assert.ok(ended);
});

Deno.test("a refused rejoin makes one retry, not two: attempts stay few and the per-address cap free", async () => {
  const first = await startRelay();
  const { port, identity } = first;
  // alice reaches the relay through a gate, so bob is surely in before she is back.
  let open = true;
  const sockets = new Set<Socket>();
  const gate = createServer((inbound) => {
    if (!open) return void inbound.destroy();
    const outbound = connect({ host: "127.0.0.1", port });
    for (const [from, to] of [[inbound, outbound], [outbound, inbound]]) {
      sockets.add(from);
      from.pipe(to);
      from.on("error", () => to.destroy());
      from.on("close", () => to.destroy());
    }
  });
  await new Promise<void>((resolve) => gate.listen(0, "127.0.0.1", resolve));
  const statuses: ConnectionStatus[] = [];
  const alice = member(
    (gate.address() as { port: number }).port,
    () => identity.fingerprint,
    statuses,
  );
  const client = await alice.start;
  open = false;
  await first.relay.close();
  // The room is full when alice comes back (a transient refusal).
  const second = await startRelay({
    identity,
    port,
    maxRoomMembers: 1,
    maxConnectionsPerAddress: 4,
  });
  const bob = await joinRoom({ relay: second.relay, room: "r", nick: "bob" });
  open = true;
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  const attempts = second.logs.filter((line) => /join: room "r" is full/.test(line)).length;
  // Delays of 25-50, 50-100, then 100-200 ms: at most about 10 attempts in a second.
  assert.ok(attempts >= 3 && attempts <= 12, `${attempts} attempts`);
  assert.ok(second.relay.connectionCounts().open <= 2, "retries pile up on the relay");
  await bob.client.close();
  await waitFor(() => statuses.some((s) => s.type === "reconnected"), { what: "rejoin" });
  await client.close();
  await second.relay.close();
  for (const socket of sockets) socket.destroy();
  await new Promise((resolve) => gate.close(resolve));
});
