/** Health and the change feed over Server-Sent Events. */
import { Hono } from 'hono';
import { streamSSE } from 'hono/streaming';
import { readHealth } from '../../app/health.js';
import type { ChangeEvent } from '../../store/types.js';
import type { ApiChangeEvent, ApiHealth } from '../api-types.js';
import type { ServerDeps } from '../deps.js';
import { intParam } from '../input.js';

/** A comment line now and then keeps proxies and the browser from closing an idle stream. */
const KEEPALIVE_MS = 15_000;

export function systemRoutes({ store, feed }: ServerDeps): Hono {
  const app = new Hono();

  app.get('/health', async (c) => {
    const h = await readHealth(store);
    return c.json({ status: 'ok', database: h.database, schedulerHeartbeatAgeMs: h.latestHeartbeatAgeMs, schedulers: h.schedulers } satisfies ApiHealth);
  });

  /**
   * Every committed state change, live: `event: change` with the feed id as the SSE id.
   * First an `event: hello` carrying the position the stream starts from (so even a quiet
   * stream has an id to resume from). A reconnect with Last-Event-ID (or ?lastEventId=)
   * gets what it missed first; `event: reset` if that is no longer kept (reload, then
   * follow). `?dagId=` keeps one DAG's events only.
   */
  app.get('/events', async (c) => {
    const resumeRaw = c.req.header('last-event-id') ?? c.req.query('lastEventId');
    const resume = resumeRaw === undefined || resumeRaw === '' ? null : intParam(resumeRaw, 'Last-Event-ID', 0, 0, Number.MAX_SAFE_INTEGER);
    const dagId = c.req.query('dagId');
    return streamSSE(c, async (stream) => {
      // Writes go out in order through one chain; a failed write (the tab went away) ends the stream.
      let chain: Promise<void> = Promise.resolve();
      let closed = false;
      const send = (message: { event: string; id?: string; data: string }) => {
        chain = chain.then(() => (closed ? undefined : stream.writeSSE(message))).catch(() => {
          closed = true;
        });
      };
      const { position, unsubscribe } = await feed.subscribe(resume, {
        events(events: ChangeEvent[]) {
          for (const e of events) {
            if (dagId !== undefined && e.dagId !== dagId) continue;
            send({ event: 'change', id: String(e.id), data: JSON.stringify(e satisfies ApiChangeEvent) });
          }
        },
        reset(lastId: number) {
          send({ event: 'reset', id: String(lastId), data: JSON.stringify({ lastEventId: lastId }) });
        },
      });
      send({ event: 'hello', id: String(position), data: JSON.stringify({ lastEventId: position }) });
      const done = new Promise<void>((resolve) => stream.onAbort(resolve));
      const keepalive = setInterval(() => {
        chain = chain.then(() => (closed ? undefined : stream.write(': keepalive\n\n').then(() => undefined))).catch(() => {
          closed = true;
        });
      }, KEEPALIVE_MS);
      try {
        await done;
      } finally {
        clearInterval(keepalive);
        unsubscribe();
      }
    });
  });

  return app;
}
