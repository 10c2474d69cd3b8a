/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * The page's storage: one IndexedDB database with three key-value stores,
 * the browser's counterpart of the command line's state directory.
 *
 * - `identity`: the identity file text under the key `"identity"`, sealed
 *   with the passphrase exactly as on disk (PROTOCOL.md, "Identity file");
 * - `relays`: canonical relay address → fingerprint (the `known_servers`);
 * - `peers`: nick → `{ fingerprint, verified }` (the `known_peers`).
 *
 * @module
 */

const DATABASE = "securechat";
/** 2 added the client store's object stores (web/page_store.ts). */
const VERSION = 2;
/** The key-value object stores. */
export type StoreName = "identity" | "relays" | "peers" | "clientMeta" | "clientState";
const STORES: StoreName[] = ["identity", "relays", "peers", "clientMeta", "clientState"];
/** History records: auto-incremented ids, `{ room, record }` values, indexed by room. */
const HISTORY = "clientHistory";

function settle<T>(request: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error ?? new Error("IndexedDB request failed"));
  });
}

/**
 * The page's database, opened once.
 *
 * @example
 * ```ts
 * const db = await PageDatabase.open();
 * await db.put("relays", "127.0.0.1:7878", fingerprint);
 * ```
 */
export class PageDatabase {
  #db: IDBDatabase;

  private constructor(db: IDBDatabase) {
    this.#db = db;
  }

  /**
   * Opens (creating if needed) the database; rejects with a readable error
   * when the browser refuses storage (a private window in some browsers).
   *
   * @example
   * ```ts
   * const db = await PageDatabase.open();
   * ```
   */
  static async open(): Promise<PageDatabase> {
    const request = indexedDB.open(DATABASE, VERSION);
    request.onupgradeneeded = () => {
      for (const name of STORES) {
        if (!request.result.objectStoreNames.contains(name)) request.result.createObjectStore(name);
      }
      if (!request.result.objectStoreNames.contains(HISTORY)) {
        request.result.createObjectStore(HISTORY, { autoIncrement: true })
          .createIndex("room", "room");
      }
    };
    try {
      return new PageDatabase(await settle(request));
    } catch (error) {
      throw new Error(
        `this browser refused the page its storage (IndexedDB): ${(error as Error)?.message}`,
      );
    }
  }

  /** The value under `key`, or undefined. @example `await db.get("peers", "alice")` */
  async get<T>(store: StoreName, key: string): Promise<T | undefined> {
    const transaction = this.#db.transaction(store, "readonly");
    return await settle(transaction.objectStore(store).get(key)) as T | undefined;
  }

  /** Stores `value` under `key`. @example `await db.put("peers", "alice", entry)` */
  async put(store: StoreName, key: string, value: unknown): Promise<void> {
    const transaction = this.#db.transaction(store, "readwrite");
    await settle(transaction.objectStore(store).put(value, key));
  }

  /** Removes `key`. @example `await db.delete("relays", "127.0.0.1:7878")` */
  async delete(store: StoreName, key: string): Promise<void> {
    const transaction = this.#db.transaction(store, "readwrite");
    await settle(transaction.objectStore(store).delete(key));
  }

  /** Every key and value of a store. @example `await db.entries("relays")` */
  async entries<T>(store: StoreName): Promise<[string, T][]> {
    const transaction = this.#db.transaction(store, "readonly");
    const objects = transaction.objectStore(store);
    const [keys, values] = await Promise.all([
      settle(objects.getAllKeys()),
      settle(objects.getAll()),
    ]);
    return keys.map((key, index) => [String(key), values[index] as T]);
  }

  /**
   * Adds a history record of `room` (a hex tag); `seal` makes its bytes from
   * the id it is given, in the same transaction.
   *
   * @example
   * ```ts
   * const id = await db.addHistory(tag, (id) => keys.seal(historyPlace(tagBytes, id), bytes));
   * ```
   */
  addHistory(room: string, seal: (id: number) => Uint8Array): Promise<number> {
    const transaction = this.#db.transaction(HISTORY, "readwrite");
    const store = transaction.objectStore(HISTORY);
    return new Promise((resolve, reject) => {
      const added = store.add({ room, record: new Uint8Array(0) });
      added.onsuccess = () => {
        const id = added.result as number;
        store.put({ room, record: seal(id) }, id);
        transaction.oncomplete = () => resolve(id);
      };
      transaction.onerror = () => reject(transaction.error ?? new Error("IndexedDB write failed"));
      transaction.onabort = () => reject(transaction.error ?? new Error("IndexedDB write aborted"));
    });
  }

  /**
   * Visits the history records of `room`, newest first, while `visit`
   * returns true.
   *
   * @example
   * ```ts
   * await db.scanHistory(tag, (id, record) => rows.push({ id, record }) < 50);
   * ```
   */
  scanHistory(room: string, visit: (id: number, record: Uint8Array) => boolean): Promise<void> {
    const transaction = this.#db.transaction(HISTORY, "readonly");
    const index = transaction.objectStore(HISTORY).index("room");
    return new Promise((resolve, reject) => {
      const cursor = index.openCursor(IDBKeyRange.only(room), "prev");
      cursor.onsuccess = () => {
        const at = cursor.result;
        if (at === null) return resolve();
        const value = at.value as { record?: unknown };
        const record = value.record instanceof Uint8Array ? value.record : new Uint8Array(0);
        if (visit(at.primaryKey as number, record)) at.continue();
        else resolve();
      };
      cursor.onerror = () => reject(cursor.error ?? new Error("IndexedDB read failed"));
    });
  }

  /** Deletes every history record of `room`. @example `await db.deleteHistory(tag)` */
  deleteHistory(room: string): Promise<void> {
    const transaction = this.#db.transaction(HISTORY, "readwrite");
    const index = transaction.objectStore(HISTORY).index("room");
    return new Promise((resolve, reject) => {
      const cursor = index.openCursor(IDBKeyRange.only(room));
      cursor.onsuccess = () => {
        const at = cursor.result;
        if (at === null) return;
        at.delete();
        at.continue();
      };
      transaction.oncomplete = () => resolve();
      transaction.onerror = () => reject(transaction.error ?? new Error("IndexedDB delete failed"));
    });
  }
}
