/**
 * One event stream per tab: /api/v1/events. The browser's EventSource reconnects by itself
 * and sends Last-Event-ID, so nothing is missed; if it gives up (the server answered with an
 * error) a new one is opened from the last id seen. The connection mark in the header shows
 * "disconnected" while the stream is down.
 */
import type { ApiChangeEvent } from '../../src/server/api-types.js';

type Listener = (event: ApiChangeEvent) => void;

export class LiveFeed {
  private source: EventSource | null = null;
  private lastId: string | null = null;
  private readonly listeners = new Set<Listener>();
  private readonly resetListeners = new Set<() => void>();
  private retry: number | null = null;

  constructor(private readonly mark: HTMLElement) {}

  start(): void {
    const url = this.lastId === null ? '/api/v1/events' : `/api/v1/events?lastEventId=${encodeURIComponent(this.lastId)}`;
    const source = new EventSource(url);
    this.source = source;
    source.onopen = () => this.setStatus(true);
    source.onerror = () => {
      this.setStatus(false);
      if (source.readyState === EventSource.CLOSED && this.retry === null) {
        this.retry = window.setTimeout(() => {
          this.retry = null;
          this.start();
        }, 2000);
      }
    };
    source.addEventListener('hello', (e) => this.remember(e as MessageEvent));
    source.addEventListener('change', (e) => {
      const m = e as MessageEvent<string>;
      this.remember(m);
      const event = JSON.parse(m.data) as ApiChangeEvent;
      for (const l of this.listeners) l(event);
    });
    source.addEventListener('reset', (e) => {
      this.remember(e as MessageEvent);
      for (const l of this.resetListeners) l();
    });
  }

  /** Every change; returns the unsubscribe. */
  onChange(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The feed lost what this tab needed: reload the view. */
  onReset(listener: () => void): () => void {
    this.resetListeners.add(listener);
    return () => this.resetListeners.delete(listener);
  }

  private remember(e: MessageEvent): void {
    if (e.lastEventId) this.lastId = e.lastEventId;
  }

  private setStatus(live: boolean): void {
    this.mark.textContent = live ? 'live' : 'disconnected';
    this.mark.className = `connection ${live ? 'live' : 'disconnected'}`;
    this.mark.dataset.state = live ? 'live' : 'disconnected';
  }
}
