/**
 * The pool's lifecycle rules, with fake workers and fake timers: a worker that failed to
 * start is never used, crash loops back off exponentially up to a cap, recycling starts the
 * replacement before the old worker goes.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { WorkerPool, recycleReason, shouldRecycle, type PoolConfig } from '../../dist/src/executor/pool.js';
import type { PooledWorker, WorkerState } from '../../dist/src/executor/runtimes/types.js';

class FakeWorker implements PooledWorker {
  state: WorkerState = 'starting';
  readonly pid = 1;
  readonly threadId = null;
  readonly samplePid = null;
  readonly exitCode = null;
  readonly signal = null;
  readonly alive = true;
  tasksRun = 0;
  memoryBytes: number | null = null;
  recycleRequested = false;
  onIdleExit: (() => void) | null = null;
  constructor(
    readonly id: number,
    private readonly startOk: boolean,
    private readonly journal: string[],
    private readonly startGate: Promise<void> = Promise.resolve(),
  ) {}
  async start() {
    this.journal.push(`start ${this.id}`);
    await this.startGate;
    if (!this.startOk) {
      this.state = 'failed';
      throw new Error(`worker ${this.id} failed to start`);
    }
    this.state = 'ready';
  }
  run(): never {
    throw new Error('not used');
  }
  send(msg: { type: string }) {
    this.journal.push(`send ${this.id} ${msg.type}`);
  }
  kill() {}
  reapStrays() {}
  async close() {
    this.journal.push(`close ${this.id}`);
    this.state = 'stopped';
  }
}

function pool(overrides: Partial<PoolConfig> & { startOk?: (id: number) => boolean; startGate?: (id: number) => Promise<void> } = {}) {
  const journal: string[] = [];
  const created: FakeWorker[] = [];
  const p = new WorkerPool({
    maxWorkers: 2,
    create: () => {
      const w = new FakeWorker(created.length + 1, overrides.startOk?.(created.length + 1) ?? true, journal, overrides.startGate?.(created.length + 1));
      created.push(w);
      return w;
    },
    maxTasksPerWorker: null,
    maxWorkerMemoryBytes: null,
    respawnDelayMs: 100,
    maxRespawnDelayMs: 400,
    maxStartFailures: 3,
    ...overrides,
  });
  return { p, journal, created };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('WorkerPool', () => {
  it('never hands out a worker that failed to start; waiting tries fail after repeated failed starts', async () => {
    vi.useFakeTimers();
    const { p, created } = pool({ startOk: () => false });
    const given = vi.fn();
    const failed = new Promise<Error>((resolve) => p.acquire({ give: given, fail: resolve }));
    await vi.advanceTimersByTimeAsync(1000);
    const err = await failed;
    expect(err.message).toMatch(/failed to start/);
    expect(given).not.toHaveBeenCalled();
    expect(created.length).toBeGreaterThanOrEqual(3);
    await p.close();
  });

  it('backs off a crash loop exponentially, capped', async () => {
    vi.useFakeTimers();
    const { p, created } = pool({ startOk: () => false, maxStartFailures: 1000 });
    p.acquire({ give: () => {}, fail: () => {} });
    await vi.advanceTimersByTimeAsync(0);
    expect(created).toHaveLength(2); // first failure: retried at once
    const expectStartAfter = async (delayMs: number) => {
      const before = created.length;
      await vi.advanceTimersByTimeAsync(delayMs - 1);
      expect(created).toHaveLength(before);
      await vi.advanceTimersByTimeAsync(1);
      expect(created).toHaveLength(before + 1);
    };
    await expectStartAfter(100);
    await expectStartAfter(200);
    await expectStartAfter(400);
    await expectStartAfter(400); // the cap
    await p.close();
  });

  it('recycles a worker after maxTasksPerWorker, starting the replacement first', async () => {
    const { p, journal, created } = pool({ maxTasksPerWorker: 2 });
    await p.warm(1);
    const worker = await new Promise<PooledWorker>((resolve) => p.acquire({ give: resolve, fail: () => {} }));
    worker.tasksRun = 2;
    p.release(worker, 'ok');
    await vi.waitFor(() => expect(journal).toContain('close 1'));
    expect(journal.indexOf('start 2')).toBeLessThan(journal.indexOf('close 1'));
    const next = await new Promise<PooledWorker>((resolve) => p.acquire({ give: resolve, fail: () => {} }));
    expect(next).toBe(created[1]);
    await p.close();
  });

  it('replaces a crashed worker and hands the replacement to the next waiter', async () => {
    const { p, created } = pool();
    await p.warm(1);
    const first = await new Promise<PooledWorker>((resolve) => p.acquire({ give: resolve, fail: () => {} }));
    p.release(first, 'crashed');
    const second = await new Promise<PooledWorker>((resolve) => p.acquire({ give: resolve, fail: () => {} }));
    expect(second).not.toBe(first);
    expect(created).toHaveLength(2);
    await p.close();
  });

  it('forgets a worker that dies while idle and starts a replacement', async () => {
    const { p, created } = pool();
    await p.warm(1);
    created[0]!.state = 'failed';
    created[0]!.onIdleExit?.();
    const next = await new Promise<PooledWorker>((resolve) => p.acquire({ give: resolve, fail: () => {} }));
    expect(next).toBe(created[1]);
    await p.close();
  });

  it('decides recycling in one function', () => {
    const w = new FakeWorker(1, true, []);
    const limits = { maxTasksPerWorker: 10, maxWorkerMemoryBytes: 1000 };
    expect(shouldRecycle(w, limits)).toBe(false);
    w.memoryBytes = 1001;
    expect(shouldRecycle(w, limits)).toBe(true);
    w.memoryBytes = 10;
    w.tasksRun = 10;
    expect(shouldRecycle(w, limits)).toBe(true);
    w.tasksRun = 0;
    w.recycleRequested = true;
    expect(shouldRecycle(w, limits)).toBe(true);
  });
});

describe('WorkerPool.warm', () => {
  it('firstOnly: resolves once one worker is up while the others go on starting', async () => {
    const opened = new Map<number, () => void>();
    const { p, created } = pool({ maxWorkers: 3, startGate: (id) => new Promise<void>((resolve) => opened.set(id, resolve)) });
    let warmed: { started: number; errors: Error[] } | null = null;
    const warming = p.warm(3, { firstOnly: true }).then((r) => (warmed = r));
    await vi.waitFor(() => expect(created).toHaveLength(3));
    await new Promise((r) => setTimeout(r, 10));
    expect(warmed).toBeNull(); // none up yet
    opened.get(2)!();
    await warming;
    expect(warmed).toEqual({ started: 1, errors: [] });
    expect(p.counts()).toEqual({ workers: 3, idle: 1 }); // two still starting
    opened.get(1)!();
    opened.get(3)!();
    await vi.waitFor(() => expect(p.counts()).toEqual({ workers: 3, idle: 3 }));
    await p.close();
  });

  it('firstOnly: when every start fails, says so with their errors', async () => {
    const { p } = pool({ maxWorkers: 2, startOk: () => false, maxStartFailures: 1000 });
    const warmed = await p.warm(2, { firstOnly: true });
    expect(warmed.started).toBe(0);
    expect(warmed.errors.map((e) => e.message)).toEqual(['worker 1 failed to start', 'worker 2 failed to start']);
    await p.close();
  });

  it('without firstOnly: resolves once every start has settled', async () => {
    const opened = new Map<number, () => void>();
    const { p } = pool({ maxWorkers: 2, startGate: (id) => new Promise<void>((resolve) => opened.set(id, resolve)) });
    let done = false;
    const warming = p.warm(2).then(() => (done = true));
    await vi.waitFor(() => expect(opened.size).toBe(2));
    opened.get(1)!();
    await new Promise((r) => setTimeout(r, 10));
    expect(done).toBe(false);
    opened.get(2)!();
    await warming;
    expect(p.counts()).toEqual({ workers: 2, idle: 2 });
    await p.close();
  });
});

describe('WorkerPool recycles (for metrics)', () => {
  it('names the reason of each recycle, counts live and idle workers, and reports nothing at shutdown', async () => {
    const reasons: string[] = [];
    const { p, created } = pool({ maxTasksPerWorker: 2, onRecycle: (r) => reasons.push(r) });
    await p.warm(2);
    expect(p.counts()).toEqual({ workers: 2, idle: 2 });
    const take = () => new Promise<PooledWorker>((resolve) => p.acquire({ give: resolve, fail: () => {} }));
    const a = await take();
    expect(p.counts()).toEqual({ workers: 2, idle: 1 });
    a.tasksRun = 2;
    p.release(a, 'ok');
    const b = await take();
    p.release(b, 'killed');
    const c = await take();
    p.release(c, 'crashed');
    const d = await take();
    d.recycleRequested = true;
    p.release(d, 'ok');
    created.at(-1)!.onIdleExit?.();
    expect(reasons).toEqual(['max_tasks', 'killed', 'crashed', 'requested', 'crashed']);
    await vi.waitFor(() => expect(p.counts().workers).toBe(2));
    const e = await take();
    p.freeze();
    p.release(e, 'crashed');
    expect(reasons).toHaveLength(5);
    await p.close();
    expect(p.counts()).toEqual({ workers: 0, idle: 0 });
  });

  it('recycleReason: requested, max_tasks, memory, or null', () => {
    const w = new FakeWorker(1, true, []);
    const limits = { maxTasksPerWorker: 10, maxWorkerMemoryBytes: 1000 };
    expect(recycleReason(w, limits)).toBeNull();
    w.memoryBytes = 1001;
    expect(recycleReason(w, limits)).toBe('memory');
    w.tasksRun = 10;
    expect(recycleReason(w, limits)).toBe('max_tasks');
    w.recycleRequested = true;
    expect(recycleReason(w, limits)).toBe('requested');
  });
});

describe('WorkerPool.greet', () => {
  it('tells every started worker now, and a worker started later once it is up', async () => {
    const { p, journal } = pool();
    await p.warm(1);
    p.greet({ __kiln: 1, type: 'preload', dagFile: '/d.ts', dagVersion: 'v1', dagSourceFile: null });
    expect(journal).toEqual(['start 1', 'send 1 preload']);
    await p.warm(2);
    expect(journal).toEqual(['start 1', 'send 1 preload', 'start 2', 'send 2 preload']);
  });
});
