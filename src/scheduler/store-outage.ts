/**
 * While the database is away (a PostgreSQL restart, connections killed, a network cut), the
 * scheduler keeps going on what it holds in memory. Every part that calls the store (the run
 * engine's writes, the loop's reads, the scheduler heartbeat) reports its calls here, so:
 *
 *   - the outage is logged once when it starts and once when it ends, however many calls
 *     fail in between;
 *   - only a lost connection (StoreUnavailableError, see store/errors.ts) counts: any other
 *     error (a constraint violation, a full disk) is the caller's to treat as fatal;
 *   - the first call that succeeds again wakes whoever waits to retry (the run engine's
 *     pending writes go out at once instead of at the end of their backoff).
 */
import { isStoreUnavailable } from '../store/errors.js';
import type { RunRow, Store, TiRow, WriteBatch, WriteBatchResult } from '../store/types.js';

export interface StoreOutageOptions {
  /** The first call that failed on a lost connection, once per outage. */
  onDown?: (err: unknown) => void;
  /** The first call that succeeded after it. */
  onBack?: (downMs: number) => void;
  now?: () => number;
}

export class StoreOutage {
  private downSince: number | null = null;
  private readonly recoveredListeners: Array<() => void> = [];
  /**
   * Counts outages. A reader that must not act on reads spanning an outage (they may be older
   * than what the engine still holds unwritten) compares it before and after.
   */
  generation = 0;

  constructor(private readonly options: StoreOutageOptions = {}) {}

  get isDown(): boolean {
    return this.downSince !== null;
  }

  /** A call failed: true when on a lost connection (retry later), false for any other error. */
  failed(err: unknown): boolean {
    if (!isStoreUnavailable(err)) return false;
    if (this.downSince === null) {
      this.downSince = this.now();
      this.generation++;
      this.options.onDown?.(err);
    }
    return true;
  }

  /** A call succeeded. */
  ok(): void {
    if (this.downSince === null) return;
    const downMs = this.now() - this.downSince;
    this.downSince = null;
    this.options.onBack?.(downMs);
    for (const listener of this.recoveredListeners) listener();
  }

  /** Calls `listener` each time the database answers again. */
  onRecovered(listener: () => void): void {
    this.recoveredListeners.push(listener);
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }
}

/** Delays between retries: 100 ms, doubling, at most 5 s. */
export class Backoff {
  private attempt = 0;

  constructor(
    private readonly firstMs = 100,
    private readonly maxMs = 5_000,
  ) {}

  next(): number {
    return Math.min(this.maxMs, this.firstMs * 2 ** this.attempt++);
  }

  reset(): void {
    this.attempt = 0;
  }
}

/**
 * A write that failed on a lost connection may have been committed all the same: the
 * connection broke after the server committed, before its answer arrived. Retried, such a
 * batch's compare-and-sets find their own rows and do not apply, which would read as "someone
 * else changed this run". So for a retried batch only, each write that did not apply is read
 * back and counts as applied when the database holds exactly what it wrote (same try, state
 * and times, queued by us). No cost on the normal path; heartbeats and XComs are idempotent.
 */
export async function confirmApplied(store: Store, batch: WriteBatch, result: WriteBatchResult): Promise<WriteBatchResult> {
  const tis = [...result.tis];
  for (const [i, w] of (batch.tis ?? []).entries()) {
    if (tis[i]) continue;
    const db = await store.getTaskInstance(w.row);
    if (db !== undefined && sameTiRow(db, w.row)) tis[i] = true;
  }
  const runs = [...result.runs];
  for (const [i, w] of (batch.runs ?? []).entries()) {
    if (runs[i]) continue;
    const db = await store.getRun(w.dagId, w.runId);
    if (db !== undefined && sameRunState(db, w.set)) runs[i] = true;
  }
  const expansions = result.expansions === undefined ? undefined : [...result.expansions];
  for (const [i, e] of (batch.expansions ?? []).entries()) {
    if (expansions === undefined || expansions[i]) continue;
    // Applied by the first attempt: its rows are there (all or none are) and its placeholder is gone.
    const first = e.rows[0];
    const there = first === undefined || (await store.getTaskInstance(first)) !== undefined;
    const placeholderGone = e.placeholder === null || (await store.getTaskInstance({ dagId: e.dagId, runId: e.runId, taskId: e.taskId, mapIndex: -1 })) === undefined;
    if (there && placeholderGone) expansions[i] = true;
  }
  return { ...result, tis, runs, ...(expansions === undefined ? {} : { expansions }) };
}

function sameTiRow(db: TiRow, ours: TiRow): boolean {
  return db.state === ours.state && db.tryNumber === ours.tryNumber && db.queuedBy === ours.queuedBy &&
    db.queuedAt === ours.queuedAt && db.startedAt === ours.startedAt && db.endedAt === ours.endedAt;
}

function sameRunState(db: RunRow, set: { state: RunRow['state']; startedAt?: number | null; endedAt?: number | null }): boolean {
  return db.state === set.state && (set.startedAt === undefined || db.startedAt === set.startedAt) && (set.endedAt === undefined || db.endedAt === set.endedAt);
}
