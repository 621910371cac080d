/**
 * The run engine's persistence loop (the flow is described in run-engine.ts). What the engine
 * decides goes into `pending`; a flush cuts it into one batch, writes it in one transaction
 * (never two flushes at once), and hands the store's answer back to the engine, which then
 * submits work and announces finished runs. Events that arrive during a flush go out with the
 * next one.
 *
 * When the database is away (a write fails on a lost connection) the failed batch is kept,
 * and so is everything that happens meanwhile: tries that end have their results recorded in
 * memory and in the next batch, but nothing is dispatched (no try is queued) until the kept
 * batch is written, as it was, before anything newer. It is retried with a backoff, or as
 * soon as another call finds the database back. Any other failed write is fatal.
 */
import { KilnError } from '../errors.js';
import type { Store, WriteBatch, WriteBatchResult } from '../store/types.js';
import { PendingWrites } from './pending-writes.js';
import { Backoff, confirmApplied, type StoreOutage } from './store-outage.js';

/**
 * How long a try's queued -> running change may wait for company. A pooled try starts
 * within microseconds of its submit, so committing 'running' on its own doubled the
 * transactions per task; it rides with the try's next write (usually its end) instead.
 */
const LAZY_WRITE_MS = 50;

/**
 * Group commit for slow databases. A flush submits the tries it queued; a fast task ends
 * within a millisecond, but the next flush (cut at once from what arrived meanwhile) would
 * leave its end for the flush after, so every slot turned over once per two flushes. When a
 * flush took long (PostgreSQL: milliseconds, SQLite: tens of microseconds), the next one
 * waits until the tries the last one submitted have all ended, or for half the last flush's
 * time (at most GATHER_MAX_MS), whichever comes first. A flush quicker than 2 ms never waits.
 */
const GATHER_MAX_MS = 2;

/** What the writer needs of the engine. */
export interface WriterHost {
  /** Moves ready task instances into `pending` as queued, just before a batch is cut. */
  dispatch(): void;
  /** What the pools hold now (poolsInStore: the store counts our slots from it), else undefined. */
  poolsAtWrite(): ReadonlyMap<string, number> | undefined;
  /**
   * A batch was written (or there was nothing to write: batch null). `written` is what this
   * write applied; `result`, for a batch written again after a lost connection, what is
   * applied now (the first write may have committed before the connection broke).
   */
  committed(p: PendingWrites, answer: { batch: WriteBatch; written: WriteBatchResult; result: WriteBatchResult } | null, usedAtWrite: ReadonlyMap<string, number> | undefined): void;
  /** True when reads are due after a batch (runs another process changed). */
  reloadsDue(): boolean;
  applyReloads(): Promise<void>;
  /** A write failed for a reason other than a lost connection: the engine writes nothing more. */
  failed(err: unknown): void;
}

export class EngineWriter {
  pending = new PendingWrites();
  /** A write failed for a reason other than a lost connection: nothing more is written. */
  failure: { err: unknown } | null = null;
  private flushing = false;
  private flushAgain = false;
  private flushScheduled = false;
  /** Backstop for lazy writes (see PendingWrites): they reach the database within LAZY_WRITE_MS. */
  private lazyTimer: NodeJS.Timeout | null = null;
  private readonly idleWaiters: Array<() => void> = [];
  /**
   * The batch being written, and after a write failed on a lost connection, that batch (with
   * what the pools held then) until it is written again, as it is, before anything newer.
   */
  private unwritten: { pending: PendingWrites; usedAtWrite?: ReadonlyMap<string, number> } | null = null;
  /** From a write failing on a lost connection until everything kept since has been written. */
  private catchingUp = false;
  private readonly backoff = new Backoff();
  private retryTimer: NodeJS.Timeout | null = null;
  /** Group commit (see GATHER_MAX_MS): tries the last flush submitted that have not ended yet. */
  private submittedRunning = 0;
  /** How long the next flush may wait for them (0: not at all). */
  private gatherMs = 0;
  private gathering: { timer: NodeJS.Timeout; done: () => void } | null = null;

  /** options.gatherMaxMs: GATHER_MAX_MS unless a test sets it. */
  private readonly gatherMaxMs: number;

  constructor(
    private readonly store: Store,
    private readonly outage: StoreOutage,
    private readonly host: WriterHost,
    options: { gatherMaxMs?: number } = {},
  ) {
    this.gatherMaxMs = options.gatherMaxMs ?? GATHER_MAX_MS;
    // Someone's call went through: the database is back, write now rather than after the backoff.
    outage.onRecovered(() => {
      if (this.retryTimer === null) return;
      clearTimeout(this.retryTimer);
      this.retryTimer = null;
      this.requestFlush();
    });
  }

  /** True while changes are not all in the database because it was away (see RunEngine.writesBehind). */
  get writesBehind(): boolean {
    return this.catchingUp;
  }

  /** The lists of work not submitted yet: in the pending batch, and in the one waiting for the database. */
  unsentWorks(): Array<PendingWrites['works']> {
    return this.unwritten ? [this.pending.works, this.unwritten.pending.works] : [this.pending.works];
  }

  /** Asks for a flush: at once (batched by the event loop's turn), or for lazy writes within LAZY_WRITE_MS. */
  requestFlush(urgent = true): void {
    // The database is away: the retry timer (or its coming back) flushes. After a fatal error, nothing does.
    if (this.retryTimer !== null || this.failure !== null) return;
    if (!urgent) {
      this.lazyTimer ??= setTimeout(() => {
        this.lazyTimer = null;
        this.requestFlush();
      }, LAZY_WRITE_MS);
      return;
    }
    if (this.flushing) {
      this.flushAgain = true;
      return;
    }
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // setImmediate batches every event that arrived in this turn of the event loop.
    setImmediate(() => {
      this.flushScheduled = false;
      void this.flush();
    });
  }

  /** A try ended (its result is pending): a flush waiting for the tries it submitted may go. */
  tryEnded(): void {
    if (--this.submittedRunning <= 0) this.endGathering();
  }

  /** Resolves when nothing is pending: no writes, no flush in progress. */
  whenIdle(): Promise<void> {
    if (this.failure !== null || (!this.flushing && !this.flushScheduled && this.isPendingEmpty())) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Shutdown while the database is away: gives up on what could not be written; returns how many task-instance changes that was. */
  dropUnwritten(): number {
    const dropped = (this.unwritten?.pending.tis.size ?? 0) + this.pending.tis.size;
    this.unwritten = null;
    this.pending = new PendingWrites();
    this.catchingUp = false;
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.failure ??= { err: new KilnError('STORE_UNAVAILABLE', 'the database is unreachable: writes dropped at shutdown') };
    for (const resolve of this.idleWaiters.splice(0)) resolve();
    return dropped;
  }

  private async flush(): Promise<void> {
    if (this.flushing || this.failure !== null) return;
    this.flushing = true;
    try {
      if (this.unwritten !== null) {
        // First the batch that failed, as it was; it may have been committed before the
        // connection broke, which confirmApplied (retried = true) sorts out.
        await this.commit(this.unwritten.pending, this.unwritten.usedAtWrite, true);
        this.unwritten = null;
      }
      do {
        await this.gathered();
        this.flushAgain = false;
        this.host.dispatch();
        const pending = this.pending;
        this.pending = new PendingWrites();
        // What the store will count as ours, for poolsInStore.
        const usedAtWrite = this.host.poolsAtWrite();
        this.unwritten = { pending, usedAtWrite };
        await this.commit(pending, usedAtWrite);
        this.unwritten = null;
        // What was kept during an outage went out with this batch.
        this.catchingUp = false;
        this.backoff.reset();
        if (this.host.reloadsDue()) await this.host.applyReloads();
      } while (this.flushAgain || this.host.reloadsDue() || !this.pending.isLazyOnly());
    } catch (err) {
      if (this.outage.failed(err)) {
        this.catchingUp = true;
        this.retryTimer ??= setTimeout(() => {
          this.retryTimer = null;
          this.requestFlush();
        }, this.backoff.next());
      } else {
        // A failed write leaves memory ahead of the database: nothing here can be trusted.
        this.failure = { err };
        this.host.failed(err);
      }
    } finally {
      this.endGathering();
      this.flushing = false;
      if (this.failure !== null || this.isPendingEmpty()) for (const resolve of this.idleWaiters.splice(0)) resolve();
      else this.requestFlush(false); // lazy writes left: the backstop takes them
    }
  }

  private async commit(p: PendingWrites, usedAtWrite: ReadonlyMap<string, number> | undefined, retried = false): Promise<void> {
    const batch = p.toWriteBatch();
    if (batch === null) {
      this.host.committed(p, null, usedAtWrite);
      return;
    }
    const startedAt = performance.now();
    const written = await this.store.write(batch);
    this.outage.ok();
    const result = retried ? await confirmApplied(this.store, batch, written) : written;
    const tookMs = performance.now() - startedAt;
    this.gatherMs = tookMs >= 2 ? Math.min(this.gatherMaxMs, Math.floor(tookMs / 2)) : 0;
    this.submittedRunning = p.works.length;
    this.host.committed(p, { batch, written, result }, usedAtWrite);
  }

  /** Group commit: waits for the tries the last flush submitted (see GATHER_MAX_MS). */
  private gathered(): Promise<void> | undefined {
    if (this.gatherMs === 0 || this.submittedRunning <= 0) return undefined;
    return new Promise((done) => {
      this.gathering = { timer: setTimeout(() => this.endGathering(), this.gatherMs), done };
    });
  }

  private endGathering(): void {
    const g = this.gathering;
    if (g === null) return;
    this.gathering = null;
    this.submittedRunning = 0;
    clearTimeout(g.timer);
    g.done();
  }

  private isPendingEmpty(): boolean {
    return this.unwritten === null && !this.host.reloadsDue() && this.pending.isEmpty();
  }
}
