import assert from "node:assert/strict";
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
  assert.deepEqual(await queued, [1]);
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
