/**
 * Catch-up: what a durable room sends a member who comes back, from its
 * last acknowledged position to the room's head, in the room's order —
 * group messages as `deliver`, envelopes to it as `stored-envelope`, gaps
 * as `gap` — before anything live. PROTOCOL.md, "Durable rooms: the relay".
 *
 * @module
 */

import type { RelayStore, StoredEntry } from "./store/relay_store.ts";
import { GapReason, type RelayRecord } from "../transport/records.ts";
import type { MemberLink } from "./member_link.ts";

/** Entries one store read returns at most during a catch-up. */
export const CATCH_UP_PAGE = 500;

/** How often a catch-up looks whether a slow reader has taken its queue. */
const DRAIN_POLL_MS = 5;

/**
 * The record that carries a stored entry to its reader.
 *
 * @example
 * ```ts
 * link.send(entryRecord({ kind: "group", seq: 7, from: 2, time: 0, body }));
 * ```
 */
export function entryRecord(entry: StoredEntry): RelayRecord {
  switch (entry.kind) {
    case "group":
      return { type: "deliver", seq: entry.seq, from: entry.from, message: entry.body };
    case "envelope":
      return { type: "storedEnvelope", seq: entry.seq, from: entry.from, envelope: entry.body };
    case "gap":
      return {
        type: "gap",
        first: entry.seq,
        last: entry.toSeq,
        reason: entry.reason === "expired" ? GapReason.expired : GapReason.mailboxFull,
      };
  }
}

/** Where a member's catch-up stands. */
export interface CatchUpPosition {
  /** Every stored entry for it up to this sequence has been sent. */
  sentUpTo: number;
  /** The room's head at the last read. */
  head: number;
}

/**
 * Sends a member what the store keeps for it after `afterSeq`, page by
 * page, waiting while its queue is over a quarter of the relay's cap (so a
 * long catch-up never trips the slow-reader drop), until a page says
 * nothing more follows or the link goes. Returns how far it got; undefined
 * when the member is no longer on the roster.
 *
 * @example
 * ```ts
 * const position = await sendStored({ store, room: "ops", memberId: 3, afterSeq: 40, link });
 * ```
 */
export async function sendStored(options: {
  store: RelayStore;
  room: string;
  memberId: number;
  afterSeq: number;
  link: MemberLink;
  pageSize?: number;
}): Promise<CatchUpPosition | undefined> {
  const { store, room, memberId, link } = options;
  let afterSeq = options.afterSeq;
  let head = afterSeq;
  for (;;) {
    if (link.gone) return { sentUpTo: afterSeq, head };
    await drained(link);
    const page = await store.read(room, memberId, {
      afterSeq,
      limit: options.pageSize ?? CATCH_UP_PAGE,
    });
    if (page === undefined) return undefined;
    for (const entry of page.entries) link.send(entryRecord(entry));
    afterSeq = Math.max(afterSeq, page.nextAfterSeq);
    head = page.head;
    if (!page.more) return { sentUpTo: afterSeq, head };
  }
}

async function drained(link: MemberLink): Promise<void> {
  while (!link.gone && link.bufferedBytes > link.maxQueuedBytes / 4) {
    await new Promise((resolve) => setTimeout(resolve, DRAIN_POLL_MS));
  }
}
