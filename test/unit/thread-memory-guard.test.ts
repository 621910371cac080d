/** The thread memory guard's choice: which over-limit thread try to stop, one per tick. */
import { describe, expect, it } from 'vitest';
import type { TaskRun } from '../../src/executor/task-run.js';
import { ThreadMemoryGuard } from '../../src/executor/thread-memory-guard.js';

const MiB = 2 ** 20;

function fakeTry(name: string, limitBytes: number, startedAt: number): TaskRun {
  return { work: { key: name }, memoryLimitBytes: limitBytes, startedAt, finished: false, stopReason: null, rssAtStartBytes: 0 } as unknown as TaskRun;
}

describe('ThreadMemoryGuard', () => {
  it('weighs growth since each try began, plus its children, against its own limit', () => {
    let rss = 100 * MiB;
    const stopped: Array<[string, number]> = [];
    const guard = new ThreadMemoryGuard(1e9, (task, growth) => stopped.push([task.work.key, growth]), () => rss);
    const a = fakeTry('a', 50 * MiB, 1);
    const b = fakeTry('b', 500 * MiB, 2);
    guard.add({ task: a, busyShare: () => 0.1, childRssBytes: () => 0 });
    rss = 120 * MiB;
    guard.add({ task: b, busyShare: () => 0.9, childRssBytes: () => 0 });
    guard.check();
    expect(stopped).toEqual([]); // a grew 20 MiB of 50
    let childRss = 0;
    guard.remove(b);
    guard.add({ task: b, busyShare: () => 0.9, childRssBytes: () => childRss });
    childRss = 600 * MiB; // b's children, outside kiln's RSS
    guard.check();
    expect(stopped).toEqual([['b', 600 * MiB]]);
    guard.stop();
  });

  it('stops the busiest of several over-limit tries, the oldest on a tie, one per tick', () => {
    let rss = 0;
    const stopped: string[] = [];
    const guard = new ThreadMemoryGuard(1e9, (task) => {
      stopped.push(task.work.key);
      (task as { stopReason: unknown }).stopReason = { code: 'TASK_MEMORY_LIMIT' };
    }, () => rss);
    const quiet = fakeTry('quiet', 10 * MiB, 1);
    const hog = fakeTry('hog', 10 * MiB, 2);
    const twin = fakeTry('twin', 10 * MiB, 3);
    guard.add({ task: quiet, busyShare: () => 0.05, childRssBytes: () => 0 });
    guard.add({ task: hog, busyShare: () => 0.99, childRssBytes: () => 0 });
    guard.add({ task: twin, busyShare: () => 0.05, childRssBytes: () => 0 });
    rss = 100 * MiB;
    guard.check();
    expect(stopped).toEqual(['hog']);
    // The growth so far was the hog's: the others are not stopped for it (the allocator may
    // keep the terminated thread's memory for a while)...
    guard.check();
    expect(stopped).toEqual(['hog']);
    // ...but growth past their limit after that is theirs: the oldest of the equally quiet goes.
    rss = 120 * MiB;
    guard.check();
    expect(stopped).toEqual(['hog', 'quiet']);
    guard.stop();
  });
});

describe('ThreadMemoryGuard readings', () => {
  it('reads RSS once for tries that come one after another, again only after an idle tick', () => {
    let reads = 0;
    const guard = new ThreadMemoryGuard(1e9, () => {}, () => {
      reads++;
      return 100 * MiB;
    });
    for (let i = 0; i < 50; i++) {
      const t = fakeTry(`chain${i}`, 50 * MiB, i);
      guard.add({ task: t, busyShare: () => 0, childRssBytes: () => 0 });
      guard.remove(t);
    }
    expect(reads).toBe(1); // the first try's baseline; the others reuse it (at most a tick old)
    guard.check(); // a tick with no try: the guard goes idle
    expect(reads).toBe(2);
    const late = fakeTry('late', 50 * MiB, 99);
    guard.add({ task: late, busyShare: () => 0, childRssBytes: () => 0 });
    expect(reads).toBe(3); // idle for a tick: a fresh baseline
    expect(late.rssAtStartBytes).toBe(100 * MiB);
    guard.stop();
  });
});
