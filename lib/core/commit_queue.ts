/**
 * Group commit for a synchronous database: calls made during one event-loop
 * turn run, in call order, inside one transaction, and their promises settle
 * only after that transaction has committed (with `synchronous=FULL`, after
 * the write-ahead log reached the disk). One fsync then covers every append
 * of the turn, and a caller never hears "stored" before it is durable.
 *
 * Each call runs inside a savepoint, so a call that throws undoes only its
 * own writes and rejects alone; a failed commit rolls back the batch and
 * rejects every call in it.
 *
 * @module
 */

import { setImmediate } from "node:timers";

/** The three things the queue needs from a database. */
export interface TransactionRunner {
  /** Runs SQL without results (`BEGIN IMMEDIATE`, `COMMIT`, savepoints). */
  exec(sql: string): void;
}

/** When the queue commits. */
export type CommitMode =
  /** One transaction per event-loop turn (the default). */
  | "group"
  /** One transaction per call: the baseline the bench compares against. */
  | "each";

interface Pending {
  run: () => unknown;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

/** Options for {@linkcode CommitQueue}. */
export interface CommitQueueOptions {
  database: TransactionRunner;
  mode?: CommitMode;
  /** Calls per transaction at most; later ones go to the next (default 2,000). */
  maxBatch?: number;
  /**
   * Turns an engine error into the error callers see (a one-line
   * `StoreError`); returns any other error unchanged.
   */
  describeError: (error: unknown) => Error;
}

/**
 * Runs synchronous database work in batched transactions.
 *
 * @example
 * ```ts
 * const queue = new CommitQueue({ database: db, describeError: (e) => e as Error });
 * const seq = await queue.run(() => insertItem(db, item));
 * ```
 */
export class CommitQueue {
  #database: TransactionRunner;
  #mode: CommitMode;
  #maxBatch: number;
  #describeError: (error: unknown) => Error;
  #pending: Pending[] = [];
  #scheduled = false;
  #closed = false;
  #idle: (() => void)[] = [];

  /** @example `new CommitQueue({ database: db, mode: "group", describeError })` */
  constructor(options: CommitQueueOptions) {
    this.#database = options.database;
    this.#mode = options.mode ?? "group";
    this.#maxBatch = options.maxBatch ?? 2_000;
    this.#describeError = options.describeError;
  }

  /**
   * Queues `work` for the next transaction; resolves with its result once
   * that transaction committed.
   *
   * @example
   * ```ts
   * const count = await queue.run(() => countRows(db));
   * ```
   */
  run<T>(work: () => T): Promise<T> {
    if (this.#closed) return Promise.reject(new Error("the store is closed"));
    return new Promise<T>((resolve, reject) => {
      this.#pending.push({ run: work, resolve: resolve as (value: unknown) => void, reject });
      this.#schedule();
    });
  }

  /**
   * Refuses new calls and resolves once every queued call has settled.
   *
   * @example
   * ```ts
   * await queue.close();
   * ```
   */
  close(): Promise<void> {
    this.#closed = true;
    if (this.#pending.length === 0 && !this.#scheduled) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    // setImmediate runs after the I/O callbacks of this turn: everything they appended joins.
    setImmediate(() => this.#flush());
  }

  #flush(): void {
    this.#scheduled = false;
    const size = this.#mode === "each" ? 1 : this.#maxBatch;
    const batch = this.#pending.splice(0, size);
    if (batch.length > 0) this.#commit(batch);
    if (this.#pending.length > 0) {
      this.#schedule();
    } else {
      for (const resolve of this.#idle.splice(0)) resolve();
    }
  }

  #commit(batch: Pending[]): void {
    const db = this.#database;
    const results: { ok: boolean; value: unknown }[] = [];
    try {
      db.exec("BEGIN IMMEDIATE");
    } catch (error) {
      const described = this.#describeError(error);
      for (const call of batch) call.reject(described);
      return;
    }
    try {
      for (const call of batch) {
        db.exec("SAVEPOINT call");
        try {
          results.push({ ok: true, value: call.run() });
          db.exec("RELEASE call");
        } catch (error) {
          db.exec("ROLLBACK TO call");
          db.exec("RELEASE call");
          results.push({ ok: false, value: this.#describeError(error) });
        }
      }
      db.exec("COMMIT");
    } catch (error) {
      // The savepoint statements or COMMIT failed: disk full, I/O error, corruption.
      try {
        db.exec("ROLLBACK");
      } catch {
        // Already rolled back by the engine.
      }
      const described = this.#describeError(error);
      for (const call of batch) call.reject(described);
      return;
    }
    for (let i = 0; i < batch.length; i++) {
      const { ok, value } = results[i];
      if (ok) batch[i].resolve(value);
      else batch[i].reject(value);
    }
  }
}
