/**
 * The index of one room's stored items in the JetStream store's room view:
 * what each kept item is (sequence, kind, sender, recipient, time, size)
 * and where its body lies in the room's log, without the body itself. Items
 * arrive in sequence order and leave in any order; lookups are by sequence.
 *
 * @module
 */

/** Item kinds, as in the SQLite store and the room log. */
export const ItemKind = { group: 1, envelope: 2 } as const;

/** One kept item, without its body. */
export interface ItemMeta {
  seq: number;
  kind: 1 | 2;
  sender: number;
  /** The envelope's recipient; 0 for a group item. */
  recipient: number;
  /** When it was stored (ms, the store's clock; never decreasing within a room). */
  time: number;
  /** Body bytes. */
  size: number;
  /** Stream sequence of the log event that carries the body. */
  at: number;
  /** Which operation of that event it is. */
  op: number;
}

/**
 * Kept items of one room by sequence: a sorted array of sequences (holding
 * deleted ones until it is compacted) beside a map, so a range starts with a
 * binary search and a deletion costs O(1).
 *
 * @example
 * ```ts
 * const items = new ItemIndex();
 * items.add({ seq: 1, kind: ItemKind.group, sender: 1, recipient: 0, time, size: 9, at: 7, op: 0 });
 * [...items.after(0)].length; // 1
 * ```
 */
export class ItemIndex {
  #seqs: number[] = [];
  #start = 0;
  #items = new Map<number, ItemMeta>();
  /** Envelope sequences per recipient (may hold sequences deleted another way). */
  #envelopes = new Map<number, number[]>();
  #bytes = 0;

  /** Items kept. @example `items.count` */
  get count(): number {
    return this.#items.size;
  }

  /** Body bytes kept. @example `items.bytes` */
  get bytes(): number {
    return this.#bytes;
  }

  /** Adds an item after every kept one. @example `items.add(meta)` */
  add(item: ItemMeta): void {
    this.#seqs.push(item.seq);
    this.#items.set(item.seq, item);
    this.#bytes += item.size;
    if (item.kind === ItemKind.envelope) {
      const list = this.#envelopes.get(item.recipient);
      if (list === undefined) this.#envelopes.set(item.recipient, [item.seq]);
      else list.push(item.seq);
    }
  }

  /** The item with this sequence. @example `items.get(5)` */
  get(seq: number): ItemMeta | undefined {
    return this.#items.get(seq);
  }

  /** Deletes one item; returns it. @example `items.delete(5)` */
  delete(seq: number): ItemMeta | undefined {
    const item = this.#items.get(seq);
    if (item === undefined) return undefined;
    this.#items.delete(seq);
    this.#bytes -= item.size;
    this.#compact();
    return item;
  }

  /** The kept item with the lowest sequence. @example `items.first()?.time` */
  first(): ItemMeta | undefined {
    while (this.#start < this.#seqs.length && !this.#items.has(this.#seqs[this.#start])) {
      this.#start++;
    }
    return this.#items.get(this.#seqs[this.#start]);
  }

  /** Kept items with a sequence above `seq`, in order. @example `for (const item of items.after(0)) {}` */
  *after(seq: number): Generator<ItemMeta> {
    let low = this.#start;
    let high = this.#seqs.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (this.#seqs[mid] <= seq) low = mid + 1;
      else high = mid;
    }
    for (let i = low; i < this.#seqs.length; i++) {
      const item = this.#items.get(this.#seqs[i]);
      if (item !== undefined) yield item;
    }
  }

  /** Deletes every item up to `seq`; returns them. @example `items.deleteUpTo(10)` */
  deleteUpTo(seq: number): ItemMeta[] {
    const out: ItemMeta[] = [];
    for (const item of this.after(0)) {
      if (item.seq > seq) break;
      out.push(item);
    }
    for (const item of out) this.delete(item.seq);
    return out;
  }

  /**
   * Deletes the envelopes to `recipient` up to `seq` (every one when
   * `seq` is omitted); returns them.
   *
   * @example
   * ```ts
   * items.dropEnvelopes(2, 40);
   * ```
   */
  dropEnvelopes(recipient: number, seq = Number.MAX_SAFE_INTEGER): ItemMeta[] {
    const list = this.#envelopes.get(recipient);
    if (list === undefined) return [];
    const out: ItemMeta[] = [];
    let keep = 0;
    for (const at of list) {
      if (at > seq) {
        list[keep++] = at;
        continue;
      }
      const item = this.delete(at);
      if (item !== undefined) out.push(item);
    }
    list.length = keep;
    if (keep === 0) this.#envelopes.delete(recipient);
    return out;
  }

  // Drops deleted sequences from the array once they are most of it.
  #compact(): void {
    const length = this.#seqs.length - this.#start;
    if (length < 64 || this.#items.size * 2 > length) return;
    this.#seqs = this.#seqs.slice(this.#start).filter((seq) => this.#items.has(seq));
    this.#start = 0;
  }
}
