/**
 * Worker reuse and replacement in the pooled isolations: the DAG module cache is keyed by
 * file + version, and workers are recycled after N tasks, past a memory limit, or when they
 * hold too many superseded DAG versions.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { ExecutorEvent } from '../../dist/src/executor/types.js';
import type { LocalExecutorOptions } from '../../dist/src/executor/options.js';
import { createHarness, isGone, type Harness } from './harness.js';

type Started = Extract<ExecutorEvent, { type: 'started' }>;

describe.each(['thread', 'process'] as const)('worker reuse: %s isolation', (isolation) => {
  let dir: string;
  const harnesses: Harness[] = [];

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), `kiln-recycle-${isolation}-`));
  });
  afterAll(async () => {
    await Promise.all(harnesses.map((h) => h.executor.stop()));
    rmSync(dir, { recursive: true, force: true, maxRetries: 10 });
  });

  async function harness(executor: Partial<LocalExecutorOptions>, dagFile?: string) {
    const h = createHarness({ isolation, logDir: join(dir, 'logs'), dagFile, executor: { parallelism: 1, ...executor } });
    harnesses.push(h);
    await h.executor.start();
    return h;
  }

  /** The worker each try ran on (thread id, or pid of the worker process). */
  async function workerOf(h: Harness, taskId: string, overrides = {}) {
    const { key, finished } = h.submit(taskId, overrides);
    const e = await finished;
    expect(e.outcome, JSON.stringify(e.error)).toBe('success');
    const started = h.events.find((x): x is Started => x.type === 'started' && x.key === key)!;
    return { worker: isolation === 'thread' ? started.threadId : started.pid, value: e.value };
  }

  it('reuses one warm worker for consecutive tries', async () => {
    const h = await harness({});
    const workers = new Set<unknown>();
    for (let i = 0; i < 5; i++) workers.add((await workerOf(h, 'noop')).worker);
    expect(workers.size).toBe(1);
  });

  it('recycles a worker after maxTasksPerWorker tries', async () => {
    const h = await harness({ maxTasksPerWorker: 2 });
    const seq: unknown[] = [];
    for (let i = 0; i < 6; i++) seq.push((await workerOf(h, 'noop')).worker);
    expect(seq[0]).toBe(seq[1]);
    expect(seq[2]).toBe(seq[3]);
    expect(new Set(seq).size).toBe(3);
  });

  it('recycles a worker whose memory passed maxWorkerMemoryBytes', async () => {
    const h = await harness({ maxWorkerMemoryBytes: 1 });
    const seq: unknown[] = [];
    for (let i = 0; i < 3; i++) seq.push((await workerOf(h, 'noop')).worker);
    expect(new Set(seq).size).toBe(3);
  });

  it.skipIf(isolation === 'thread')('replaces a worker killed from outside while idle', async () => {
    const h = await harness({});
    const { worker: pid } = await workerOf(h, 'noop');
    process.kill(pid as number, 'SIGKILL');
    await vi.waitFor(() => expect(isGone(pid as number)).toBe(true), { timeout: 5000, interval: 10 });
    // A try handed over while the death was still being noticed fails, as WORKER_EXITED, and
    // says who killed it; the next one runs on the replacement.
    const first = await h.run('noop');
    if (first.outcome !== 'success') expect(first).toMatchObject({ signal: 'SIGKILL', error: { code: 'WORKER_EXITED' } });
    const next = await workerOf(h, 'noop');
    expect(next.worker).not.toBe(pid);
  });

  it('imports a changed DAG version afresh, and recycles after too many versions', async () => {
    const dagFile = join(dir, 'versions.ts');
    const write = (answer: string) => writeFileSync(dagFile, `import { dag } from 'kiln';\nexport default dag({ id: 'suite' }, (d) => { d.task('answer', (): string => '${answer}'); });\n`);
    const h = await harness({ maxDagVersionsPerWorker: 1 }, dagFile);
    write('one');
    const a = await workerOf(h, 'answer', { dagVersion: 'a' });
    write('two');
    const b = await workerOf(h, 'answer', { dagVersion: 'b' });
    expect([a.value, b.value]).toEqual(['one', 'two']);
    expect(b.worker).toBe(a.worker);
    const again = await workerOf(h, 'answer', { dagVersion: 'a' }); // still cached: same worker, old version
    expect(again).toEqual(a);
    write('three');
    const c = await workerOf(h, 'answer', { dagVersion: 'c' }); // a second superseded version: time to go
    expect(c).toEqual({ worker: a.worker, value: 'three' });
    const d = await workerOf(h, 'answer', { dagVersion: 'c' });
    expect(d.value).toBe('three');
    expect(d.worker).not.toBe(a.worker);
  });
});
