/**
 * Following the change feed (Store.readEvents): one follower per web server reads the events
 * table by id, only while someone listens, and hands each new event to every subscriber (an
 * SSE stream per browser tab). Nothing here polls task-instance or run tables.
 *
 * A subscriber may resume after an id (SSE Last-Event-ID): it is first given what it missed,
 * read from the store in pages, then the live events after those, each exactly once and in
 * id order. If the feed was trimmed past its id it is told to start over (`reset`).
 */
import { EVENT_TRIM_BATCH } from '../store/feed.js';
import type { ChangeEvent, Store } from '../store/types.js';

/** Events older than this are trimmed (a browser away longer reloads what it shows). */
export const CHANGE_FEED_RETENTION_MS = 60 * 60 * 1000;
const PAGE = 1000;

export interface FeedSubscriber {
  /** Events in id order, each once. */
  events(events: ChangeEvent[]): void;
  /** What was asked for is gone (trimmed): reload everything, then follow from `lastId`. */
  reset(lastId: number): void;
}

export class ChangeFeedFollower {
  private lastId: number | null = null;
  private readonly subscribers = new Set<Subscription>();
  private timer: NodeJS.Timeout | null = null;
  private reading: Promise<void> | null = null;
  /** A read was asked for while one ran: read again once it ends (a notification must not be lost). */
  private again = false;
  private closed = false;
  /** Stops the store's notifications (PostgreSQL LISTEN), while armed and supported. */
  private watch: Promise<(() => Promise<void>) | null> | null = null;

  /**
   * `pollMs`: how often the feed is read while someone listens (default 200 ms). Where the
   * store notifies commits (PostgreSQL), reads follow each notification at once and the
   * timer only backs them up (`watchPollMs`, default 5 s).
   */
  constructor(
    private readonly store: Store,
    private readonly options: { pollMs?: number; watchPollMs?: number; onError?: (err: unknown) => void } = {},
  ) {}

  /** The newest event id this follower has seen (read once at first). */
  async position(): Promise<number> {
    if (this.lastId === null) this.lastId = (await this.store.eventIdRange())?.last ?? 0;
    return this.lastId;
  }

  /**
   * Adds a subscriber. `afterId` null: live events from now on. Resolves with the id the
   * subscriber is at once its catch-up is done, and an unsubscribe function.
   */
  async subscribe(afterId: number | null, subscriber: FeedSubscriber): Promise<{ position: number; unsubscribe: () => void }> {
    const sub: Subscription = { subscriber, at: 0, buffer: [], catchingUp: true };
    this.subscribers.add(sub);
    this.arm();
    const unsubscribe = () => {
      this.subscribers.delete(sub);
      if (this.subscribers.size === 0) this.disarm();
    };
    try {
      // Listening (where the store can) before the position is read: nothing committed in between is missed.
      await this.watch;
      if (this.subscribers.size === 1) {
        // The first listener after a quiet spell: nobody else needs the events the follower
        // did not read while idle, so it starts from the feed's end (this subscriber catches up by itself).
        await this.reading;
        this.lastId = null;
      }
      const live = await this.position();
      sub.at = afterId ?? live;
      if (afterId !== null && afterId < live) {
        const range = await this.store.eventIdRange();
        if (range !== null && afterId < range.first - 1) {
          sub.at = live;
          subscriber.reset(live);
        } else {
          // Catch up from the store up to where the follower stood; live events meanwhile wait in the buffer.
          while (sub.at < live) {
            const page = (await this.store.readEvents(sub.at, PAGE)).filter((e) => e.id <= live);
            if (page.length === 0) break;
            subscriber.events(page);
            sub.at = page[page.length - 1]!.id;
          }
          sub.at = Math.max(sub.at, live);
        }
      }
      const pending = sub.buffer.filter((e) => e.id > sub.at);
      sub.catchingUp = false;
      sub.buffer = [];
      if (pending.length > 0) {
        subscriber.events(pending);
        sub.at = pending[pending.length - 1]!.id;
      }
      return { position: sub.at, unsubscribe };
    } catch (err) {
      unsubscribe();
      throw err;
    }
  }

  close(): void {
    this.closed = true;
    this.disarm();
    this.subscribers.clear();
  }

  private arm(): void {
    if (this.timer !== null || this.closed) return;
    this.every(this.options.pollMs ?? 200);
    const watch = this.store.watchEvents(
      () => this.read(),
      (err) => {
        // The listening connection broke: poll at the full rate again.
        this.options.onError?.(err);
        if (this.timer !== null) this.every(this.options.pollMs ?? 200);
      },
    );
    const current = watch.catch((err: unknown) => {
      this.options.onError?.(err);
      return null;
    });
    this.watch = current;
    void current.then((stop) => {
      if (stop !== null && this.watch === current) this.every(this.options.watchPollMs ?? 5_000);
    });
  }

  private disarm(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    const watch = this.watch;
    this.watch = null;
    void watch?.then((stop) => stop?.());
  }

  private every(ms: number): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = setInterval(() => this.read(), ms);
    this.timer.unref();
  }

  private read(): void {
    if (this.reading !== null) {
      this.again = true;
      return;
    }
    this.reading = this.poll().finally(() => {
      this.reading = null;
      if (this.again && this.timer !== null) {
        this.again = false;
        this.read();
      }
    });
  }

  /** Reads every event after the last one seen (pages until caught up) and hands them out. */
  private async poll(): Promise<void> {
    try {
      let from = await this.position();
      for (;;) {
        const page = await this.store.readEvents(from, PAGE);
        if (page.length === 0) return;
        from = page[page.length - 1]!.id;
        this.lastId = from;
        for (const sub of this.subscribers) {
          if (sub.catchingUp) sub.buffer.push(...page);
          else {
            const fresh = page.filter((e) => e.id > sub.at);
            if (fresh.length === 0) continue;
            sub.at = fresh[fresh.length - 1]!.id;
            sub.subscriber.events(fresh);
          }
        }
        if (page.length < PAGE) return;
      }
    } catch (err) {
      this.options.onError?.(err);
    }
  }
}

interface Subscription {
  subscriber: FeedSubscriber;
  /** The last id handed to it. */
  at: number;
  catchingUp: boolean;
  buffer: ChangeEvent[];
}

/** Deletes events older than the retention, in short batches; returns how many went. */
export async function trimChangeFeed(store: Store, retentionMs = CHANGE_FEED_RETENTION_MS, now = Date.now()): Promise<number> {
  let total = 0;
  for (;;) {
    const n = await store.trimEvents(now - retentionMs, EVENT_TRIM_BATCH);
    total += n;
    if (n < EVENT_TRIM_BATCH) return total;
  }
}
