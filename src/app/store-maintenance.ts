/**
 * The scheduler's housekeeping of the database beside its loop: Store.vacuumIfNeeded() every
 * few seconds, never overlapping itself. Measured in the soak (bench/results/soak-*.md) on a
 * PostgreSQL server with autovacuum off: throughput fell from ~415 to ~110 task instances/s
 * over 100,000 task instances as dead task_instance rows piled up (none of the updates can be
 * HOT: state is indexed), and one VACUUM of 0.6 s brought it back. Where autovacuum runs (the
 * default) and on SQLite this costs one cached check.
 */
import { errorMessage } from '../errors.js';
import type { LogLevel } from '../scheduler/scheduler.js';
import type { Store } from '../store/types.js';
import { trimChangeFeed } from './change-feed.js';

const CHECK_EVERY_MS = 15_000;
const TRIM_FEED_EVERY_MS = 5 * 60_000;

export class StoreMaintenance {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private told = false;
  private lastTrimAt = Date.now();

  constructor(
    private readonly store: Store,
    private readonly log: (level: LogLevel, message: string) => void,
    private readonly everyMs = CHECK_EVERY_MS,
  ) {}

  start(): void {
    this.timer = setInterval(() => {
      this.running ??= this.pass().finally(() => (this.running = null));
    }, this.everyMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }

  private async pass(): Promise<void> {
    try {
      const vacuumed = await this.store.vacuumIfNeeded();
      if (vacuumed.length > 0 && !this.told) {
        this.told = true;
        this.log('info', `the database's autovacuum is off: kiln vacuums ${vacuumed.join(' and ')} itself when dead rows pile up (said once)`);
      }
    } catch (err) {
      // An outage is the run engine's to report; maintenance just tries again next time.
      this.log('warn', `database maintenance (vacuum) failed: ${errorMessage(err)}`);
    }
    // The change feed keeps CHANGE_FEED_RETENTION_MS of events (a browser away longer reloads);
    // trimmed every few minutes, in short batches.
    if (Date.now() - this.lastTrimAt >= TRIM_FEED_EVERY_MS) {
      this.lastTrimAt = Date.now();
      try {
        await trimChangeFeed(this.store);
      } catch (err) {
        this.log('warn', `database maintenance (trimming the change feed) failed: ${errorMessage(err)}`);
      }
    }
  }
}
