/**
 * The two JetStream store calls that take more than one step on a room: a
 * catch-up page (plan from the view, then the bodies from the cache or the
 * log) and a prune (only rooms that need one get a prune event).
 *
 * @module
 */

import type { RoomChannel } from "./nats_room_channel.ts";
import { pruneWouldChange, type RoomPruneResult } from "./room_prune.ts";
import type { RoomLimits } from "./room_state.ts";
import { type ReadResult, type StoredEntry, StoreError } from "./relay_store.ts";

/**
 * One page of what is kept for a member after `afterSeq` (see
 * `RelayStore.read`); undefined when it is not a current member.
 *
 * @example
 * ```ts
 * const page = await readPage(channel, { memberId: 2, afterSeq: 0, limit: 1000 });
 * ```
 */
export async function readPage(
  channel: RoomChannel,
  request: { memberId: number; afterSeq: number; limit: number },
): Promise<ReadResult | undefined> {
  // An item deleted between planning and fetching its body is planned again without it.
  for (let attempt = 0; attempt < 5; attempt++) {
    const plan = await channel.read((view) =>
      view.state.plan(request.memberId, request.afterSeq, request.limit)
    );
    if (plan === undefined) return undefined;
    const items = plan.entries.flatMap((entry) => entry.kind === "item" ? [entry.item] : []);
    const bodies = await channel.bodies(items);
    if (bodies.some((body) => body === undefined)) continue;
    let i = 0;
    const entries: StoredEntry[] = plan.entries.map((entry) => {
      if (entry.kind !== "item") return entry;
      const { item } = entry;
      const body = new Uint8Array(bodies[i++]!);
      return item.kind === 1
        ? { kind: "group", seq: item.seq, from: item.sender, time: item.time, body }
        : {
          kind: "envelope",
          seq: item.seq,
          from: item.sender,
          to: item.recipient,
          time: item.time,
          body,
        };
    });
    return { entries, nextAfterSeq: plan.nextAfterSeq, more: plan.more, head: plan.head };
  }
  throw new StoreError(
    `room log ${channel.subjects.log}: stored items keep disappearing while being read`,
  );
}

/**
 * Prunes one room if it needs it: undefined when it did not (then `more`
 * says whether items wait for a budget that ran out), else what the prune
 * event did.
 *
 * @example
 * ```ts
 * const outcome = await pruneChannel(channel, { now: Date.now, limits, budget: 10_000 });
 * ```
 */
export async function pruneChannel(
  channel: RoomChannel,
  options: { now: () => number; limits: RoomLimits; budget: number },
): Promise<{ outcome?: RoomPruneResult; more: boolean }> {
  const { budget, limits } = options;
  const outcome = await channel.write({ type: "prune", budget }, (view) => {
    const check = { time: options.now(), limits, budget };
    return pruneWouldChange(view.state, check) ? undefined : { result: undefined };
  }) as RoomPruneResult | undefined;
  if (outcome !== undefined) return { outcome, more: outcome.more };
  const waiting = budget <= 0 && (await channel.read((view) => view.state.items.count)) > 0;
  return { more: waiting };
}
