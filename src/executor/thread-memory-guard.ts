/**
 * Off-heap memory of thread tries. A worker thread's V8 heap is capped by resourceLimits,
 * but Buffers and other ArrayBuffers live outside the heap and count against nothing: a
 * thread filling Buffers grows kiln's own RSS until the machine runs out. Node cannot tell
 * which thread owns what memory (no per-thread RSS, and a thread stuck in a synchronous loop
 * cannot report anything), so the guard watches kiln's RSS from the main thread:
 *
 *   every tick, for each busy thread try: growth = kiln's RSS now - kiln's RSS when it began
 *                                                  + the RSS of the processes the try started
 *   a try whose growth passed its memory limit is a candidate; one is stopped per tick, the
 *   one whose thread was busiest since the last tick (event-loop utilization: the thread
 *   allocating is running, one that waits on I/O is not), oldest first on a tie
 *
 * The growth so far is blamed on the one stopped: every other try's baseline moves up to
 * kiln's RSS at that moment. (A terminated thread's memory does not always go back to the
 * system at once, since the allocator may keep it; without this, a quiet thread beside a
 * hog would be stopped on the next tick for the hog's growth.) Another hog grows past its
 * limit again and is caught then.
 * One timer, while thread tries run and for one tick after the last ends. Reading kiln's RSS
 * costs ~14 us, too much for every try start at thousands of tries a second, so a try's
 * baseline is the reading of the last tick before it began: at most one tick old. It is
 * taken fresh only when the guard was idle for a whole tick: tries that come one at a time
 * (a chain, a worker host between jobs) would otherwise each pay a fresh reading.
 */
import type { TaskRun } from './task-run.js';

export interface GuardedThreadTry {
  readonly task: TaskRun;
  /** Share of wall time the thread's event loop was busy since the last call (0..1). */
  busyShare(): number;
  /** RSS of the processes (and their descendants) the try started: kiln's children, not in kiln's RSS. */
  childRssBytes(): number;
}

/** Weighs the thread tries of one executor; see above. */
export class ThreadMemoryGuard {
  private readonly tries = new Map<TaskRun, GuardedThreadTry>();
  private timer: NodeJS.Timeout | null = null;
  private lastRssBytes = 0;

  constructor(
    private readonly intervalMs: number,
    private readonly onOverLimit: (task: TaskRun, growthBytes: number) => void,
    private readonly rssBytes: () => number = () => process.memoryUsage.rss(),
  ) {}

  add(entry: GuardedThreadTry): void {
    if (this.timer === null) {
      this.lastRssBytes = this.rssBytes();
      this.timer = setInterval(() => this.check(), this.intervalMs);
      this.timer.unref();
    }
    entry.task.rssAtStartBytes = this.lastRssBytes;
    this.tries.set(entry.task, entry);
  }

  remove(task: TaskRun): void {
    this.tries.delete(task);
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /** @internal one tick; public for tests */
  check(): void {
    const rss = (this.lastRssBytes = this.rssBytes());
    if (this.tries.size === 0) {
      this.stop(); // a whole tick without thread tries
      return;
    }
    let victim: { entry: GuardedThreadTry; busy: number; growth: number } | null = null;
    for (const entry of this.tries.values()) {
      const busy = entry.busyShare(); // read for every try, so each share covers one tick
      const growth = rss - entry.task.rssAtStartBytes + entry.childRssBytes();
      if (entry.task.finished || entry.task.stopReason !== null || growth <= entry.task.memoryLimitBytes) continue;
      if (victim === null || busy > victim.busy || (busy === victim.busy && entry.task.startedAt < victim.entry.task.startedAt)) victim = { entry, busy, growth };
    }
    if (victim === null) return;
    this.onOverLimit(victim.entry.task, victim.growth);
    for (const entry of this.tries.values()) entry.task.rssAtStartBytes = Math.max(entry.task.rssAtStartBytes, rss);
  }
}
