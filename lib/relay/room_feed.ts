/**
 * What relays that share one store tell each other about rooms: that a
 * room's store has new items, and who came, went, was renamed or
 * acknowledged. A single relay needs none of this; a cluster (several
 * relays on one NATS JetStream store) plugs a feed in
 * ({@linkcode RoomFeed}), and each relay then serves members connected
 * elsewhere as if they were its own.
 *
 * Order comes from the store, not from the feed: an `appended` event only
 * says "read the room from where you are", so events that overtake each
 * other on the way cannot reorder a room. Presence events carry the origin
 * relay, so a relay ignores its own and a feed can report every member of a
 * relay that stopped answering as gone.
 *
 * `MemoryFeedHub` connects relays in one process (tests, benchmarks).
 *
 * @module
 */

/** Why a member is no longer online (the `member-offline` reasons). */
export type FeedOfflineReason = "disconnected" | "left" | "removed";

/** One thing a relay tells the others about a room. */
export type FeedEvent =
  /** The room's store holds items up to `seq`: deliver what your members have not had. */
  | { type: "appended"; room: string; seq: number; origin: string }
  /** A member connected to `origin` (a newer connection replaces an older one anywhere). */
  | { type: "online"; room: string; memberId: number; origin: string }
  /** A member connected to `origin` went away. */
  | { type: "offline"; room: string; memberId: number; reason: FeedOfflineReason; origin: string }
  /** A member has a new nick (and announcement) in the store. */
  | { type: "renamed"; room: string; memberId: number; origin: string }
  /** A member acknowledged everything up to `seq` (read receipts wait for this). */
  | { type: "acked"; room: string; memberId: number; seq: number; origin: string }
  /**
   * A pairwise message (`direct`, never stored) from a member here to a
   * member connected to another relay; only the relay holding `to` delivers it.
   */
  | {
    type: "direct";
    room: string;
    from: number;
    to: number;
    envelope: Uint8Array;
    origin: string;
  };

/** Receives the events of one room from the other relays. */
export type FeedListener = (event: FeedEvent) => void;

/**
 * The link between the relays of one store.
 *
 * @example
 * ```ts
 * const stop = feed.subscribe("ops", (event) => console.log(event.type));
 * await feed.publish({ type: "appended", room: "ops", seq: 7, origin: feed.origin });
 * stop();
 * ```
 */
export interface RoomFeed {
  /** This relay's name in the feed, unique while it runs (events it sent carry it). */
  readonly origin: string;
  /**
   * Tells the other relays. Rejects when the feed cannot reach them: the
   * relay then refuses what it could not announce (error 11) rather than
   * accept something other relays' members would never see live.
   */
  publish(event: FeedEvent): Promise<void>;
  /**
   * Listens to a room's events from the other relays (never this relay's
   * own); returns the function that stops listening. A feed reports an
   * `offline` (reason `disconnected`) for every member online at a relay it
   * no longer hears from.
   */
  subscribe(room: string, listener: FeedListener): () => void;
  /** Members of a room online at other relays now: member id → origin. */
  online(room: string): Promise<Map<number, string>>;
  /** Stops listening and announces nothing more. */
  close(): Promise<void>;
}

/**
 * Feeds for relays in one process: every feed made by a hub hears the
 * others, synchronously in publish order.
 *
 * @example
 * ```ts
 * const hub = new MemoryFeedHub();
 * const a = hub.feed("a");
 * const b = hub.feed("b");
 * b.subscribe("ops", (event) => console.log(event));
 * await a.publish({ type: "appended", room: "ops", seq: 1, origin: "a" });
 * ```
 */
export class MemoryFeedHub {
  #feeds = new Set<MemoryFeed>();

  /** A feed for one relay, named `origin`. @example `hub.feed("relay-a")` */
  feed(origin: string): RoomFeed {
    const feed = new MemoryFeed(origin, this.#feeds);
    this.#feeds.add(feed);
    return feed;
  }
}

class MemoryFeed implements RoomFeed {
  readonly origin: string;
  #peers: Set<MemoryFeed>;
  #listeners = new Map<string, Set<FeedListener>>();
  /** Members online here, by room, as this relay announced them. */
  #present = new Map<string, Set<number>>();
  #closed = false;

  constructor(origin: string, peers: Set<MemoryFeed>) {
    this.origin = origin;
    this.#peers = peers;
  }

  publish(event: FeedEvent): Promise<void> {
    if (this.#closed) return Promise.reject(new Error(`room feed ${this.origin} is closed`));
    if (event.type === "online" || event.type === "offline") {
      const present = this.#present.get(event.room) ?? new Set<number>();
      if (event.type === "online") present.add(event.memberId);
      else present.delete(event.memberId);
      this.#present.set(event.room, present);
    }
    for (const peer of this.#peers) if (peer !== this) peer.#hear(event);
    return Promise.resolve();
  }

  subscribe(room: string, listener: FeedListener): () => void {
    const listeners = this.#listeners.get(room) ?? new Set<FeedListener>();
    listeners.add(listener);
    this.#listeners.set(room, listeners);
    return () => {
      listeners.delete(listener);
      if (listeners.size === 0) this.#listeners.delete(room);
    };
  }

  online(room: string): Promise<Map<number, string>> {
    const online = new Map<number, string>();
    for (const peer of this.#peers) {
      if (peer === this) continue;
      for (const memberId of peer.#present.get(room) ?? []) online.set(memberId, peer.origin);
    }
    return Promise.resolve(online);
  }

  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    this.#peers.delete(this);
    // Like a relay that stopped answering: its members are gone for everyone else.
    for (const [room, members] of this.#present) {
      for (const memberId of members) {
        const event: FeedEvent = {
          type: "offline",
          room,
          memberId,
          reason: "disconnected",
          origin: this.origin,
        };
        for (const peer of this.#peers) peer.#hear(event);
      }
    }
    this.#present.clear();
    this.#listeners.clear();
    return Promise.resolve();
  }

  #hear(event: FeedEvent): void {
    for (const listener of [...(this.#listeners.get(event.room) ?? [])]) listener(event);
  }
}
