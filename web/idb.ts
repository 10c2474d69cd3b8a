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
const VERSION = 1;
/** The object stores, all plain key-value. */
export type StoreName = "identity" | "relays" | "peers";
const STORES: StoreName[] = ["identity", "relays", "peers"];

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
}
