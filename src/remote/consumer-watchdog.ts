/**
 * A worker host's watch over its BullMQ consumers (one Worker per queue). A Worker that
 * stopped, or that took no job for STUCK_MS while jobs waited in its queue and the host had a
 * free slot (a Worker can stop silently after a Redis reconnect: bullmq #2964, #2565), is
 * named to the host, which replaces it. Checked every WATCHDOG_MS; a queue must look stuck on
 * two checks in a row, WATCHDOG_MS apart, before its Worker is replaced.
 */
import type { Queue, Worker } from 'bullmq';

const WATCHDOG_MS = 5_000;
/** A Worker with free slots that took no job this long while jobs waited is replaced. */
const STUCK_MS = 15_000;

export interface WatchedHost {
  /** The consumers now, by queue. */
  consumers(): ReadonlyMap<string, Worker>;
  freeSlots(): number;
  /** A Queue handle on `queue` for counting its waiting jobs (the watchdog closes it). */
  openProbe(queue: string): Queue;
  /** Replaces the consumer of `queue`, saying why. */
  replace(queue: string, why: string): void;
}

export class ConsumerWatchdog {
  private readonly lastJobAt = new Map<string, number>();
  private readonly stuckSince = new Map<string, number>();
  private readonly probes = new Map<string, Queue>();
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(private readonly host: WatchedHost) {}

  /** The consumer of `queue` took a job (or was just started). */
  tookJob(queue: string, now = Date.now()): void {
    this.lastJobAt.set(queue, now);
  }

  start(): void {
    this.timer = setInterval(() => void this.check().catch(() => {}), WATCHDOG_MS);
    this.timer.unref();
  }

  async check(now = Date.now()): Promise<void> {
    if (this.stopped) return;
    for (const [queue, worker] of this.host.consumers()) {
      let why: string | null = worker.isRunning() ? null : 'it stopped running';
      const quiet = why === null && this.host.freeSlots() > 0 && now - (this.lastJobAt.get(queue) ?? now) > STUCK_MS;
      if (!quiet) this.stuckSince.delete(queue); // a stuck queue is one seen stuck on consecutive checks
      if (quiet) {
        let probe = this.probes.get(queue);
        if (probe === undefined) {
          probe = this.host.openProbe(queue);
          this.probes.set(queue, probe);
        }
        const waiting = await probe.getWaitingCount();
        if (waiting === 0) this.stuckSince.delete(queue);
        else if (!this.stuckSince.has(queue)) this.stuckSince.set(queue, now);
        else if (now - this.stuckSince.get(queue)! >= WATCHDOG_MS) why = `it took no job for ${Math.round((now - this.lastJobAt.get(queue)!) / 1000)}s while ${waiting} waited`;
      }
      if (why === null || this.stopped) continue;
      this.stuckSince.delete(queue);
      this.host.replace(queue, why);
    }
  }

  /** No more checks; the probes are closed. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== null) clearInterval(this.timer);
    await Promise.all([...this.probes.values()].map((q) => q.close().catch(() => {})));
  }
}
