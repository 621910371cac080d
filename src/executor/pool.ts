/**
 * The scheduling layer for pre-warmed workers of one isolation: which worker runs the next
 * try, when to start, replace or retire one. The supervisor asks for a worker and gives it
 * back with a verdict; it never starts or stops workers itself.
 *
 * - Workers start on demand up to `maxWorkers` (start() pre-warms the default isolation).
 * - A worker that fails to start is never used (bullmq's rule); a crash loop is slowed
 *   down with an exponential, capped delay before the next start.
 * - Recycling is decided in one place (shouldRecycle); the replacement is started before
 *   the old worker is closed.
 */
import type { SupervisorMessage } from '../protocol/messages.js';
import type { PooledWorker } from './runtimes/types.js';
import type { WorkerRecycleReason } from './types.js';

export type Release =
  /** The runner answered: the worker is healthy. */
  | 'ok'
  /** The supervisor killed it (timeout, cancel, stop): not the worker's fault. */
  | 'killed'
  /** It died on its own mid-try. */
  | 'crashed';

export interface Waiter {
  give(worker: PooledWorker): void;
  /** Workers cannot be started (repeated start failures). */
  fail(err: Error): void;
}

export interface PoolConfig {
  maxWorkers: number;
  create(): PooledWorker;
  maxTasksPerWorker: number | null;
  maxWorkerMemoryBytes: number | null;
  respawnDelayMs: number;
  maxRespawnDelayMs: number;
  /** After this many failed starts in a row, waiting tries are failed instead of kept waiting. */
  maxStartFailures: number;
  /** A live worker was replaced (not at shutdown), and why. */
  onRecycle?: (reason: WorkerRecycleReason) => void;
}

export class WorkerPool {
  private readonly live = new Set<PooledWorker>();
  private readonly idle: PooledWorker[] = [];
  private readonly waiting: Waiter[] = [];
  /** How many workers this pool keeps alive; grows with demand, never past maxWorkers. */
  private wanted = 0;
  private starting = 0;
  /** Consecutive deaths and failed starts, reset by any try that ends normally. */
  private crashes = 0;
  private startFailures = 0;
  private respawnTimer: NodeJS.Timeout | null = null;
  private closed = false;
  /** What every new worker is told once it has started (see greet()). */
  private readonly greetings: SupervisorMessage[] = [];

  constructor(private readonly config: PoolConfig) {}

  /**
   * Starts workers until `count` are alive; resolves with how many started, once every start
   * has settled. With `firstOnly` it resolves as soon as one has started (started: 1) and the
   * others go on starting meanwhile: a caller with work to do (parse DAG files, dispatch the
   * first tries) need not wait for the last of them. It rejects with nothing: when every
   * start failed, started is 0 and errors says why.
   */
  async warm(count: number, { firstOnly = false }: { firstOnly?: boolean } = {}): Promise<{ started: number; errors: Error[] }> {
    this.wanted = Math.max(this.wanted, Math.min(count, this.config.maxWorkers));
    const starts: Array<Promise<void>> = [];
    while (this.live.size < this.wanted) starts.push(this.startWorker());
    if (firstOnly && starts.length > 0) {
      try {
        await Promise.any(starts); // it handles every start's rejection, later ones included
        return { started: 1, errors: [] };
      } catch (err) {
        return { started: 0, errors: (err as AggregateError).errors as Error[] };
      }
    }
    const settled = await Promise.allSettled(starts);
    const errors = settled.flatMap((s) => (s.status === 'rejected' ? [s.reason as Error] : []));
    return { started: settled.length - errors.length, errors };
  }

  /** Hands a worker to `waiter` now (idle one) or as soon as one is ready. */
  acquire(waiter: Waiter): void {
    const worker = this.idle.pop();
    if (worker !== undefined) {
      waiter.give(worker);
      return;
    }
    this.waiting.push(waiter);
    const busy = this.live.size - this.idle.length - this.starting;
    this.wanted = Math.min(this.config.maxWorkers, Math.max(this.wanted, busy + this.waiting.length));
    this.fill();
  }

  /** Withdraws a waiter that has not been given a worker yet. */
  cancelWait(waiter: Waiter): boolean {
    const i = this.waiting.indexOf(waiter);
    if (i === -1) return false;
    this.waiting.splice(i, 1);
    return true;
  }

  release(worker: PooledWorker, how: Release): void {
    if (how === 'ok') {
      this.crashes = 0;
      const reason = this.closed ? null : recycleReason(worker, this.config);
      if (this.closed || reason !== null) {
        if (reason !== null) this.config.onRecycle?.(reason);
        this.live.delete(worker);
        this.fill(); // the replacement starts before the old worker retires
        void worker.close().catch(() => {});
        return;
      }
      this.offer(worker);
      return;
    }
    this.live.delete(worker);
    if (how === 'crashed') this.crashes++;
    if (!this.closed) this.config.onRecycle?.(how);
    this.fill();
  }

  /**
   * Sends `msg` to every started worker now and to every worker that starts later (the last
   * MAX_GREETINGS messages are kept for them): DAG modules to import ahead of their tasks.
   */
  greet(msg: SupervisorMessage): void {
    this.greetings.push(msg);
    if (this.greetings.length > MAX_GREETINGS) this.greetings.shift();
    for (const worker of this.live) if (worker.state === 'ready' || worker.state === 'busy') sendQuietly(worker, msg);
  }

  /** Live workers (starting ones included) and the idle ones among them. */
  counts(): { workers: number; idle: number } {
    return { workers: this.live.size, idle: this.idle.length };
  }

  /** No more starts or replacements (shutdown); live workers stay until close(). */
  freeze(): void {
    this.closed = true;
    if (this.respawnTimer !== null) clearTimeout(this.respawnTimer);
    this.respawnTimer = null;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.respawnTimer !== null) clearTimeout(this.respawnTimer);
    this.respawnTimer = null;
    const workers = [...this.live];
    this.live.clear();
    this.idle.length = 0;
    await Promise.allSettled(workers.map((w) => w.close()));
  }

  /** A worker died while idle (killed from outside, or stray code of an earlier try). */
  private forget(worker: PooledWorker): void {
    const i = this.idle.indexOf(worker);
    if (i !== -1) this.idle.splice(i, 1);
    if (!this.live.delete(worker)) return;
    this.crashes++;
    if (!this.closed) this.config.onRecycle?.('crashed');
    this.fill();
  }

  private offer(worker: PooledWorker): void {
    const waiter = this.waiting.shift();
    if (waiter !== undefined) waiter.give(worker);
    else this.idle.push(worker);
  }

  /** Brings the pool back to `wanted` workers, after the crash-loop delay if there is one. */
  private fill(): void {
    if (this.closed || this.respawnTimer !== null || this.live.size >= this.wanted) return;
    const delayMs = this.crashes <= 1 ? 0 : Math.min(this.config.respawnDelayMs * 2 ** (this.crashes - 2), this.config.maxRespawnDelayMs);
    if (delayMs === 0) {
      while (this.live.size < this.wanted) void this.startWorker().catch(() => {});
      return;
    }
    this.respawnTimer = setTimeout(() => {
      this.respawnTimer = null;
      while (!this.closed && this.live.size < this.wanted) void this.startWorker().catch(() => {});
    }, delayMs);
  }

  private async startWorker(): Promise<void> {
    const worker = this.config.create();
    worker.onIdleExit = () => this.forget(worker);
    this.live.add(worker);
    this.starting++;
    try {
      await worker.start();
    } catch (err) {
      this.starting--;
      this.live.delete(worker); // never reuse a worker that failed to start
      this.crashes++;
      this.startFailures++;
      if (this.startFailures >= this.config.maxStartFailures) {
        for (const waiter of this.waiting.splice(0)) waiter.fail(err as Error);
      }
      this.fill();
      throw err;
    }
    this.starting--;
    this.startFailures = 0;
    if (this.closed || !this.live.has(worker)) {
      void worker.close().catch(() => {});
      return;
    }
    for (const msg of this.greetings) sendQuietly(worker, msg);
    this.offer(worker);
  }
}

/** Greetings kept for workers that start later: a scheduler's few DAG modules. */
const MAX_GREETINGS = 16;

/** A greeting lost to a worker going away is harmless: its next task imports what it needs. */
function sendQuietly(worker: PooledWorker, msg: SupervisorMessage): void {
  try {
    worker.send(msg);
  } catch {
    // the worker is going away
  }
}

/** The one place that decides whether a healthy worker is replaced after a try. */
export function shouldRecycle(worker: PooledWorker, limits: Pick<PoolConfig, 'maxTasksPerWorker' | 'maxWorkerMemoryBytes'>): boolean {
  return recycleReason(worker, limits) !== null;
}

/** Why a healthy worker is replaced after a try, or null when it is kept. */
export function recycleReason(worker: PooledWorker, limits: Pick<PoolConfig, 'maxTasksPerWorker' | 'maxWorkerMemoryBytes'>): WorkerRecycleReason | null {
  if (worker.recycleRequested) return 'requested';
  if (limits.maxTasksPerWorker !== null && worker.tasksRun >= limits.maxTasksPerWorker) return 'max_tasks';
  if (limits.maxWorkerMemoryBytes !== null && worker.memoryBytes !== null && worker.memoryBytes > limits.maxWorkerMemoryBytes) return 'memory';
  return null;
}
