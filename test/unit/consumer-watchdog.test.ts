/** A worker host's watch over its BullMQ consumers: which one it replaces, and when. */
import type { Queue, Worker } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { ConsumerWatchdog } from '../../src/remote/consumer-watchdog.js';

function host(options: { running?: boolean; waiting?: number; free?: number } = {}) {
  const state = { running: options.running ?? true, waiting: options.waiting ?? 0, free: options.free ?? 1 };
  const replaced: string[] = [];
  const probesClosed: string[] = [];
  const worker = { isRunning: () => state.running } as unknown as Worker;
  const watchdog = new ConsumerWatchdog({
    consumers: () => new Map([['default', worker]]),
    freeSlots: () => state.free,
    openProbe: (queue) => ({ getWaitingCount: async () => state.waiting, close: async () => void probesClosed.push(queue) }) as unknown as Queue,
    replace: (queue, why) => replaced.push(`${queue}: ${why}`),
  });
  return { state, replaced, probesClosed, watchdog };
}

describe('ConsumerWatchdog', () => {
  it('replaces a consumer that stopped running at once', async () => {
    const { replaced, watchdog } = host({ running: false });
    watchdog.tookJob('default', 0);
    await watchdog.check(1_000);
    expect(replaced).toEqual(['default: it stopped running']);
  });

  it('replaces one that took nothing for 15 s while jobs waited and slots were free, seen twice 5 s apart', async () => {
    const { replaced, probesClosed, watchdog } = host({ waiting: 3 });
    watchdog.tookJob('default', 0);
    await watchdog.check(10_000); // not quiet long enough
    await watchdog.check(16_000); // stuck: first sighting
    await watchdog.check(20_000); // 4 s later: not yet
    expect(replaced).toEqual([]);
    await watchdog.check(21_000);
    expect(replaced).toEqual(['default: it took no job for 21s while 3 waited']);
    await watchdog.stop();
    expect(probesClosed).toEqual(['default']);
  });

  it('leaves alone a quiet consumer with nothing waiting, or with no free slot, or that took a job meanwhile', async () => {
    const idle = host({ waiting: 0 });
    idle.watchdog.tookJob('default', 0);
    for (const at of [16_000, 21_000, 26_000]) await idle.watchdog.check(at);
    expect(idle.replaced).toEqual([]);

    const full = host({ waiting: 5, free: 0 });
    full.watchdog.tookJob('default', 0);
    for (const at of [16_000, 21_000, 26_000]) await full.watchdog.check(at);
    expect(full.replaced).toEqual([]);

    const busy = host({ waiting: 5 });
    busy.watchdog.tookJob('default', 0);
    await busy.watchdog.check(16_000); // stuck: first sighting
    busy.watchdog.tookJob('default', 18_000);
    await busy.watchdog.check(21_000); // took one: the sighting is forgotten
    await busy.watchdog.check(34_000); // quiet again: a first sighting, not a second
    expect(busy.replaced).toEqual([]);
    await busy.watchdog.check(39_000);
    expect(busy.replaced).toEqual(['default: it took no job for 21s while 5 waited']);
  });

  it('checks nothing once stopped', async () => {
    const { replaced, watchdog } = host({ running: false });
    await watchdog.stop();
    await watchdog.check(1_000);
    expect(replaced).toEqual([]);
  });
});
