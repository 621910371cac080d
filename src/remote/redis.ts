/**
 * Redis connections and the one stream reader both sides use. bullmq and ioredis are loaded
 * only here, lazily, so `kiln dags test` with a local executor never pays for them.
 *
 * Every connection retries for ever (a restarted Redis is waited for, commands queue
 * meanwhile) and reports a lost connection once per outage through `onDown`/`onUp`.
 */
import type { Redis } from 'ioredis';
import { KilnError, errorMessage } from '../errors.js';
import { STREAM_MAX_LEN } from './wire.js';

export type { Redis } from 'ioredis';
export type Bullmq = typeof import('bullmq');

let bullmq: Promise<Bullmq> | null = null;

export function loadBullmq(): Promise<Bullmq> {
  bullmq ??= import('bullmq').catch((err: unknown) => {
    bullmq = null;
    throw new KilnError('EXECUTOR', `the bullmq executor needs the 'bullmq' package: ${errorMessage(err)}`, { cause: err });
  });
  return bullmq;
}

export interface ConnectionEvents {
  /** The connection broke (once per outage). */
  onDown?: (err: Error) => void;
  /** It is back. */
  onUp?: () => void;
}

/** A connection that waits out outages: commands queue until Redis answers again. */
export async function connectRedis(url: string, name: string, events: ConnectionEvents = {}): Promise<Redis> {
  const { Redis: RedisClass } = await import('ioredis');
  const client = new RedisClass(url, {
    connectionName: name,
    // null: a command waits for the reconnect instead of failing after 20 retries (BullMQ requires it).
    maxRetriesPerRequest: null,
    retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 2_000),
    lazyConnect: false,
  });
  let down = false;
  client.on('error', (err: Error) => {
    if (down) return;
    down = true;
    events.onDown?.(err);
  });
  client.on('ready', () => {
    if (!down) return;
    down = false;
    events.onUp?.();
  });
  return client;
}

/** A Redis URL without its password, for logs and errors. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^@/]*)@/, '//***@');
}

/** XADD with approximate trimming: readers far behind lose hints, never results. */
export function xadd(client: Redis, stream: string, payload: string): Promise<unknown> {
  return client.xadd(stream, 'MAXLEN', '~', String(STREAM_MAX_LEN), '*', 'm', payload);
}

/**
 * Follows one stream on a dedicated connection (XREAD BLOCK), handing each entry's payload
 * to `onMessage` in order. A failed read (Redis away) is retried after a pause; after a
 * restart that lost the stream, new entries still come since their ids are later.
 */
export class StreamReader {
  /** From the start: streams are named after a fresh executor or host id, so all of it is ours. */
  private lastId = '0';
  private running = true;
  private readonly done: Promise<void>;

  constructor(private readonly client: Redis, private readonly stream: string, private readonly onMessage: (payload: string) => void, private readonly blockMs = 1_000) {
    this.done = this.loop();
  }

  /** Stops reading; resolves when the last read returned (its connection is the caller's to close). */
  stop(): Promise<void> {
    this.running = false;
    return this.done;
  }

  private async loop(): Promise<void> {
    while (this.running) {
      let reply: Array<[string, Array<[string, string[]]>]> | null;
      try {
        reply = (await this.client.xread('COUNT', 1000, 'BLOCK', this.blockMs, 'STREAMS', this.stream, this.lastId)) as typeof reply;
      } catch {
        if (!this.running) return;
        await new Promise((resolve) => setTimeout(resolve, 200));
        continue;
      }
      for (const [, entries] of reply ?? []) {
        for (const [id, fields] of entries) {
          this.lastId = id;
          const at = fields.indexOf('m');
          if (at >= 0 && fields[at + 1] !== undefined) this.onMessage(fields[at + 1]!);
        }
      }
    }
  }
}
