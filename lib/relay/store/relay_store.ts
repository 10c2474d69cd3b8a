/**
 * The relay's store: what a relay keeps so that rooms outlive connections
 * and restarts. This module is the contract, independent of any engine:
 * `sqlite_store.ts` implements it on `node:sqlite`; a NATS JetStream store
 * (streams for items, key-value buckets for rosters and prekeys) implements
 * the same interface and runs the same contract suite
 * (`tests/support/store_contract.ts`).
 *
 * What it holds, per room: a **roster** (one entry per (identity key, nick),
 * with a stable u32 member id), and **stored items** in one total order per
 * room: sequence numbers assigned by the store, strictly increasing (an
 * engine may leave holes; the SQLite store does not). An item is either a
 * `group` message from a member to the room or an `envelope` from a member to
 * one member. Per identity: a signed prekey and a queue of one-time prekeys,
 * each one-time prekey handed out once.
 *
 * The store never sees plaintext: item bodies, announcements and prekeys are
 * opaque bytes; it reads only routing fields (room name, member ids, nicks,
 * identity keys, sizes and times).
 *
 * Nothing is lost silently. Each limit (retention time, bytes per room,
 * items per member not yet acknowledged, item size) is reported where it
 * bites: appends say which members were refused, and a member's catch-up
 * (`read`) carries **gap notices** for ranges that expired or were refused
 * for it.
 *
 * Every method is async: engines may do I/O; the SQLite store batches all
 * the calls of one event-loop turn into one transaction (group commit), and
 * a call resolves only once its transaction is durable.
 *
 * @example
 * ```ts
 * const store = await openSqliteRelayStore({ dir: "/var/lib/securechat" });
 * const { member } = await store.addMember("ops", { identityKey, nick: "alice", announcement });
 * const stored = await store.appendGroup("ops", { from: member.memberId, body: ciphertext });
 * ```
 *
 * @module
 */

/** Oldest sequence number; a member that has acknowledged nothing has `lastAck` 0. */
export const NO_SEQUENCE = 0;

/** Largest member id (u32); ids start at 1 and are never reused within a room. */
export const MAX_MEMBER_ID = 0xffff_ffff;

/** Largest sequence number a store hands out (u64 on the wire, kept within a safe integer). */
export const MAX_SEQUENCE = Number.MAX_SAFE_INTEGER;

/** Identity keys are Ed25519 public keys. */
export const IDENTITY_KEY_BYTES = 32;

/** Room names and nicks: 1 to 255 bytes of UTF-8 (a `string8` on the wire). */
export const MAX_NAME_BYTES = 255;

/** Largest `limit` a `read` takes. */
export const MAX_READ_LIMIT = 10_000;

/**
 * Limits of a store; every one has a default in {@linkcode STORE_LIMIT_DEFAULTS}.
 * README.md and PROTOCOL.md ("Limits") list them.
 */
export interface StoreLimits {
  /** How long an item is kept when someone has not acknowledged it, in ms. */
  retentionMs: number;
  /** Item bytes kept per room (bodies only); an append past it is refused (`roomFull`). */
  maxRoomBytes: number;
  /**
   * Items kept for one member and not yet acknowledged by it. Past it, group
   * items are still stored for the others and refused for that member (a gap
   * notice tells it later); envelopes to it are refused (`recipientFull`).
   */
  maxItemsPerMember: number;
  /** Bytes of one item body; a larger one is refused (`tooLarge`). */
  maxItemBytes: number;
  /** Roster entries per room (removed ones not counted); a further `addMember` is refused. */
  maxMembersPerRoom: number;
  /** Bytes of one signed announcement. */
  maxAnnouncementBytes: number;
  /** Bytes of one prekey (signed or one-time), opaque to the store. */
  maxPrekeyBytes: number;
  /** One-time prekeys queued per identity; further ones are refused (counted in the result). */
  maxOneTimePrekeys: number;
}

/**
 * Default limits. The item size matches the largest relay record (256 KiB);
 * a roster holds as many members as a welcome record can list (956).
 *
 * @example
 * ```ts
 * STORE_LIMIT_DEFAULTS.retentionMs / 86_400_000; // 30 (days)
 * ```
 */
export const STORE_LIMIT_DEFAULTS: Readonly<StoreLimits> = Object.freeze({
  retentionMs: 30 * 24 * 60 * 60 * 1000,
  maxRoomBytes: 256 * 1024 * 1024,
  maxItemsPerMember: 50_000,
  maxItemBytes: 256 * 1024,
  maxMembersPerRoom: 956,
  maxAnnouncementBytes: 64 * 1024,
  maxPrekeyBytes: 8 * 1024,
  maxOneTimePrekeys: 1_000,
});

/** A member to put on a room's roster. */
export interface NewMember {
  /** Ed25519 identity key the member proved (32 bytes). */
  identityKey: Uint8Array;
  /** Its nick in the room, unique among the room's current members. */
  nick: string;
  /** Its latest signed announcement, stored and handed out untouched. */
  announcement: Uint8Array;
}

/** One roster entry. */
export interface RosterMember {
  /** Stable id within the room (u32, from 1); a member who leaves and rejoins gets a new one. */
  memberId: number;
  identityKey: Uint8Array;
  nick: string;
  /** Latest signed announcement. */
  announcement: Uint8Array;
  /** When it joined (ms since the epoch, the store's clock). */
  joinedAt: number;
  /** The room's last sequence when it joined: it is never given anything at or before it. */
  joinedSeq: number;
  /** Everything up to this sequence is acknowledged (starts at `joinedSeq`). */
  lastAck: number;
  /** Set once it was removed (left, or was removed); such entries are kept for a while. */
  removedAt?: number;
}

/** Result of {@linkcode RelayStore.addMember}. */
export type AddMemberResult =
  /** A new entry with a new member id. */
  | { status: "added"; member: RosterMember }
  /** Already on the roster with this identity and nick: the announcement was replaced. */
  | { status: "existing"; member: RosterMember }
  /** Another identity holds the nick in this room. */
  | { status: "nickTaken"; holder: number }
  /** The roster holds `maxMembersPerRoom` members, or the room used every member id. */
  | { status: "rosterFull" };

/** Result of {@linkcode RelayStore.renameMember}. */
export type RenameResult =
  | { status: "renamed"; member: RosterMember }
  | { status: "nickTaken"; holder: number }
  | { status: "unknownMember" };

/** Why an append was refused, for everyone or for one member. */
export type RefusalReason =
  /** The room holds `maxRoomBytes`. */
  | "roomFull"
  /** The recipient has `maxItemsPerMember` unacknowledged items. */
  | "recipientFull"
  /** The body is larger than `maxItemBytes`. */
  | "tooLarge"
  /** The sender is not on the room's roster (never joined, or removed). */
  | "unknownSender"
  /** The recipient of an envelope is not on the room's roster. */
  | "unknownRecipient";

/** An item to store: a group message from `from` to the room. */
export interface GroupItem {
  from: number;
  /** Opaque bytes (end-to-end ciphertext). */
  body: Uint8Array;
}

/** An item to store: an envelope from `from` to the member `to`. */
export interface EnvelopeItem {
  from: number;
  to: number;
  /** Opaque bytes (end-to-end ciphertext). */
  body: Uint8Array;
}

/** Result of {@linkcode RelayStore.appendGroup}. */
export type GroupAppendResult =
  | {
    status: "stored";
    seq: number;
    /**
     * How many members it is kept for: every current member of the room
     * except the sender and the members in `refused` (the relay knows the
     * roster, so the count and `refused` name them all without a list per
     * message).
     */
    recipients: number;
    /** Members it was refused for, each told later by a gap notice. */
    refused: { memberId: number; reason: "recipientFull" }[];
  }
  | { status: "refused"; reason: Exclude<RefusalReason, "recipientFull" | "unknownRecipient"> };

/** Result of {@linkcode RelayStore.appendEnvelope}. */
export type EnvelopeAppendResult =
  | { status: "stored"; seq: number }
  | { status: "refused"; reason: RefusalReason };

/** A stored item as a member reads it. */
export type StoredItem =
  | { kind: "group"; seq: number; from: number; time: number; body: Uint8Array }
  | { kind: "envelope"; seq: number; from: number; to: number; time: number; body: Uint8Array };

/**
 * Items that were addressed to the reader and are not there: `count` of
 * them, with sequences from `seq` to `toSeq`. No item for the reader lies
 * inside the range.
 */
export interface GapNotice {
  kind: "gap";
  /** First sequence of the range. */
  seq: number;
  /** Last sequence of the range. */
  toSeq: number;
  /** Items for the reader in the range. */
  count: number;
  /** `expired`: deleted by retention before it acknowledged them; `refused`: never kept for it. */
  reason: "expired" | "refused";
}

/** One entry of a catch-up: an item or a gap notice. */
export type StoredEntry = StoredItem | GapNotice;

/** Options of {@linkcode RelayStore.read}. */
export interface ReadOptions {
  /** Read what comes after this sequence (usually the member's `lastAck`). */
  afterSeq: number;
  /** Entries at most (items and gap notices); default 1,000, at most {@linkcode MAX_READ_LIMIT}. */
  limit?: number;
}

/** Result of {@linkcode RelayStore.read}. */
export interface ReadResult {
  /** Items and gap notices for the member, in sequence order. */
  entries: StoredEntry[];
  /** Where the next read starts (the last sequence this page covered). */
  nextAfterSeq: number;
  /** True when more entries follow `nextAfterSeq`. */
  more: boolean;
  /** The room's last sequence when read. */
  head: number;
}

/** Options of {@linkcode RelayStore.prune}. */
export interface PruneOptions {
  /** Items to examine for expiry in this call (work bound); default 10,000. */
  maxItems?: number;
}

/** What one {@linkcode RelayStore.prune} did. */
export interface PruneResult {
  /** Items deleted because every member they were kept for acknowledged them. */
  acknowledged: number;
  /** Items deleted by retention (each recorded as a gap for whoever had not acknowledged it). */
  expired: number;
  /** Removed roster entries and empty rooms forgotten. */
  forgotten: number;
  /** True when the work bound stopped it: call again. */
  more: boolean;
}

/** An opaque prekey with its id (u32, chosen by its owner). */
export interface Prekey {
  id: number;
  body: Uint8Array;
}

/** What {@linkcode RelayStore.putPrekeys} publishes for one identity. */
export interface PrekeyUpload {
  /** Replaces the identity's signed prekey. */
  signed?: Prekey;
  /** Queued behind the ones already there (a known id replaces nothing and is skipped). */
  oneTime?: Prekey[];
}

/** Result of {@linkcode RelayStore.putPrekeys}. */
export interface PutPrekeysResult {
  /** One-time prekeys added. */
  added: number;
  /** One-time prekeys not added: their id is already queued, or the queue is full. */
  skipped: number;
  /** One-time prekeys now queued. */
  oneTimeCount: number;
}

/** What a sender gets to encrypt to an offline member: the signed prekey and, while any are left, a one-time prekey. */
export interface PrekeyHandout {
  signed: Prekey;
  /** Handed out once, then deleted; absent when the queue is empty (fall back to `signed`). */
  oneTime?: Prekey;
}

/** What an identity has published. */
export interface PrekeyStatus {
  signedId?: number;
  oneTimeCount: number;
}

/** Sizes for metrics. */
export interface StoreCounts {
  rooms: number;
  /** Roster entries, removed ones excluded. */
  members: number;
  items: number;
  /** Item body bytes. */
  itemBytes: number;
  gaps: number;
  signedPrekeys: number;
  oneTimePrekeys: number;
}

/**
 * The store a relay keeps rooms in. Room names and nicks are 1 to 255 bytes
 * of well-formed UTF-8, identity keys 32 bytes, member ids u32 from 1,
 * sequences safe integers from 0; a call with anything else throws a
 * {@linkcode StoreInputError} and changes nothing. An engine failure (disk
 * full, I/O error) rejects with a {@linkcode StoreError}.
 *
 * @example
 * ```ts
 * async function catchUp(store: RelayStore, room: string, memberId: number, from: number) {
 *   const page = await store.read(room, memberId, { afterSeq: from, limit: 500 });
 *   // ... deliver page.entries, then:
 *   await store.ack(room, memberId, page.nextAfterSeq);
 * }
 * ```
 */
export interface RelayStore {
  /** Where it lives, for messages: a file path, or `memory`. */
  readonly location: string;
  /** The limits in force. */
  readonly limits: Readonly<StoreLimits>;

  /** Finishes every pending call and closes the store; later calls reject. */
  close(): Promise<void>;

  /**
   * Puts a member on a room's roster (creating the room), or, when the same
   * identity already holds the nick, replaces its announcement. A member
   * starts after the room's last sequence: it never gets what came before.
   */
  addMember(room: string, member: NewMember): Promise<AddMemberResult>;
  /** The entry (current, or the latest removed one) for this identity and nick. */
  findMember(
    room: string,
    identityKey: Uint8Array,
    nick: string,
  ): Promise<RosterMember | undefined>;
  /** The entry with this id, current or removed. */
  getMember(room: string, memberId: number): Promise<RosterMember | undefined>;
  /** Current members in id order (with `includeRemoved`, removed ones too). */
  listMembers(room: string, options?: { includeRemoved?: boolean }): Promise<RosterMember[]>;
  /** Gives a current member another nick (unique in the room). */
  renameMember(room: string, memberId: number, nick: string): Promise<RenameResult>;
  /**
   * Takes a member off the roster: what was kept for it is deleted and it
   * gets nothing appended afterwards. True if it was a current member.
   */
  removeMember(room: string, memberId: number): Promise<boolean>;

  /** Stores a group message for every current member but the sender (see `recipients`). */
  appendGroup(room: string, item: GroupItem): Promise<GroupAppendResult>;
  /** Stores an envelope for one current member. */
  appendEnvelope(room: string, item: EnvelopeItem): Promise<EnvelopeAppendResult>;
  /**
   * What is kept for a member after `afterSeq` (never before it joined):
   * group items from the others, envelopes to it, and gap notices, in
   * sequence order. Undefined when it is not a current member.
   */
  read(room: string, memberId: number, options: ReadOptions): Promise<ReadResult | undefined>;
  /**
   * Records that a member has everything up to `seq` (at most the room's
   * last sequence; never moves back). Returns its `lastAck`, or undefined
   * when it is not a current member.
   */
  ack(room: string, memberId: number, seq: number): Promise<number | undefined>;
  /**
   * Deletes items every member they were kept for has acknowledged, and
   * items past the retention time (recording gaps for whoever still needed
   * them); forgets removed entries and empty rooms past the retention time.
   */
  prune(options?: PruneOptions): Promise<PruneResult>;

  /** Publishes prekeys for an identity. */
  putPrekeys(identityKey: Uint8Array, upload: PrekeyUpload): Promise<PutPrekeysResult>;
  /**
   * Hands out the identity's signed prekey and its oldest one-time prekey,
   * deleting that one atomically (each is handed out once, also across
   * processes). Undefined when the identity has no signed prekey.
   */
  takePrekeys(identityKey: Uint8Array): Promise<PrekeyHandout | undefined>;
  /** What the identity has published. */
  prekeyStatus(identityKey: Uint8Array): Promise<PrekeyStatus>;

  /** Sizes for metrics. */
  counts(): Promise<StoreCounts>;
}

/**
 * The store failed: it could not be opened, read or written. The message
 * is one line that names the file and says what to do.
 *
 * @example
 * ```ts
 * throw new StoreError("relay store /srv/relay.db: disk full; free some space");
 * ```
 */
export class StoreError extends Error {
  /** @example `new StoreError("relay store /srv/relay.db is corrupt; ...")` */
  constructor(message: string) {
    super(message);
    this.name = "StoreError";
  }
}

/**
 * A call broke the interface's rules (a wrong key length, a member id out of
 * range): a bug in the caller, or hostile input it did not check. Nothing
 * was changed.
 *
 * @example
 * ```ts
 * throw new StoreInputError("member id must be a whole number from 1 to 4294967295");
 * ```
 */
export class StoreInputError extends Error {
  /** @example `new StoreInputError("room name is empty")` */
  constructor(message: string) {
    super(message);
    this.name = "StoreInputError";
  }
}

/**
 * Fills in the default of every limit not given; throws a
 * {@linkcode StoreInputError} for a limit that is not a positive safe integer.
 *
 * @example
 * ```ts
 * resolveLimits({ retentionMs: 3_600_000 }).maxRoomBytes; // 268435456
 * ```
 */
export function resolveLimits(limits: Partial<StoreLimits> = {}): Readonly<StoreLimits> {
  const out = { ...STORE_LIMIT_DEFAULTS };
  for (const key of Object.keys(STORE_LIMIT_DEFAULTS) as (keyof StoreLimits)[]) {
    const value = limits[key];
    if (value === undefined) continue;
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new StoreInputError(`store limit ${key} must be a positive whole number, got ${value}`);
    }
    out[key] = value;
  }
  return Object.freeze(out);
}

const encoder = new TextEncoder();

/**
 * Checks a room name or nick and returns its UTF-8 bytes.
 *
 * @example
 * ```ts
 * nameBytes("ops", "room name"); // Uint8Array [111, 112, 115]
 * ```
 */
export function nameBytes(name: string, what: string): Uint8Array {
  if (typeof name !== "string") throw new StoreInputError(`${what} must be a string`);
  // A lone surrogate would encode as U+FFFD and collide with a different name.
  if (!name.isWellFormed()) throw new StoreInputError(`${what} is not well-formed Unicode`);
  const bytes = encoder.encode(name);
  if (bytes.length < 1 || bytes.length > MAX_NAME_BYTES) {
    throw new StoreInputError(`${what} must be 1 to ${MAX_NAME_BYTES} bytes of UTF-8`);
  }
  return bytes;
}

/**
 * Checks that `id` is a member id (u32 from 1).
 *
 * @example
 * ```ts
 * checkMemberId(7); // 7
 * ```
 */
export function checkMemberId(id: number, what = "member id"): number {
  if (!Number.isSafeInteger(id) || id < 1 || id > MAX_MEMBER_ID) {
    throw new StoreInputError(`${what} must be a whole number from 1 to ${MAX_MEMBER_ID}`);
  }
  return id;
}

/**
 * Checks that `seq` is a sequence number (a safe integer from 0).
 *
 * @example
 * ```ts
 * checkSequence(0); // 0
 * ```
 */
export function checkSequence(seq: number, what = "sequence"): number {
  if (!Number.isSafeInteger(seq) || seq < 0) {
    throw new StoreInputError(`${what} must be a whole number from 0 to ${MAX_SEQUENCE}`);
  }
  return seq;
}

/**
 * Checks that `bytes` is a byte array of at most `max` bytes (and at least `min`).
 *
 * @example
 * ```ts
 * checkBytes(key, "identity key", 32, 32);
 * ```
 */
export function checkBytes(bytes: Uint8Array, what: string, max: number, min = 0): Uint8Array {
  if (!(bytes instanceof Uint8Array)) throw new StoreInputError(`${what} must be bytes`);
  if (bytes.length < min || bytes.length > max) {
    throw new StoreInputError(
      min === max
        ? `${what} must be ${max} bytes, got ${bytes.length}`
        : `${what} must be ${min} to ${max} bytes, got ${bytes.length}`,
    );
  }
  return bytes;
}

/**
 * Checks an identity key (32 bytes).
 *
 * @example
 * ```ts
 * checkIdentityKey(identity.publicKey);
 * ```
 */
export function checkIdentityKey(key: Uint8Array): Uint8Array {
  return checkBytes(key, "identity key", IDENTITY_KEY_BYTES, IDENTITY_KEY_BYTES);
}

/**
 * Checks a prekey id (u32).
 *
 * @example
 * ```ts
 * checkPrekeyId(0); // 0
 * ```
 */
export function checkPrekeyId(id: number): number {
  if (!Number.isSafeInteger(id) || id < 0 || id > MAX_MEMBER_ID) {
    throw new StoreInputError(`prekey id must be a whole number from 0 to ${MAX_MEMBER_ID}`);
  }
  return id;
}
