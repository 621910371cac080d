/**
 * Memory exhaustion on every isolation, with the executor's default limits (no heap limit
 * given: it is derived from maxTaskMemoryBytes, as kiln's config derives it from the
 * machine). Every kind of hog ends in one failed try with a reason, the executor (and the
 * test process, which hosts the thread workers) lives on, and the next task runs.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Isolation } from '../../dist/src/dag/types.js';
import { heapLimitMbFor } from '../../dist/src/executor/memory-limits.js';
import { createHarness, fixturesDir, type Finished, type Harness } from './harness.js';

const LIMIT_BYTES = 192 * 1024 * 1024;
const HEAP_MB = heapLimitMbFor(LIMIT_BYTES);
const dagFile = join(fixturesDir, 'memory.ts');

describe.each(['thread', 'process', 'spawn'] as const)('memory limits: %s isolation', (isolation: Isolation) => {
  let h: Harness;
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), `kiln-memory-${isolation}-`));
    h = createHarness({
      isolation,
      dagFile,
      logDir: join(dir, 'logs'),
      executor: { maxTaskMemoryBytes: LIMIT_BYTES, killGraceMs: 200, usageSampleIntervalMs: 100 },
    });
    await h.executor.start();
  });

  afterAll(async () => {
    await h?.executor.stop();
    rmSync(dir, { recursive: true, force: true, maxRetries: 10 });
  });

  const run = (taskId: string, params: Record<string, unknown> = {}) => h.run(taskId, { dagFile, dagId: 'memory', params });
  const expectStillWorks = async () => expect((await run('noop')).outcome).toBe('success');
  const heapOom = new RegExp(`JavaScript heap out of memory \\(heap limit ${HEAP_MB} MB\\)`);
  /** A process heap hog meets V8's limit, or (rarely, between two samples) the RSS limit first: both are explained. */
  const expectHeapHog = (e: Finished) => {
    expect(e.outcome).toBe('failed');
    if (isolation === 'thread') {
      expect(e.error?.code).toBe('WORKER_EXITED');
      expect(e.error?.message).toMatch(heapOom);
      expect(e.error?.message).toMatch(/kiln and other tasks were not affected/);
    } else if (e.error?.code === 'WORKER_EXITED') {
      expect(e.error.message).toMatch(heapOom);
    } else {
      expect(e.error?.code).toBe('TASK_MEMORY_LIMIT');
    }
  };

  it('stops a task that fills its heap with large strings', async () => {
    expectHeapHog(await run('strings'));
    await expectStillWorks();
  });

  it('stops a task that fills its heap with arrays of numbers', async () => {
    expectHeapHog(await run('arrays'));
    await expectStillWorks();
  });

  it('kills a task that fills memory outside the heap with Buffers, mid-run', async () => {
    const e = await run('buffers');
    expect(e.outcome).toBe('failed');
    expect(e.error?.code).toBe('TASK_MEMORY_LIMIT');
    expect(e.error?.message).toMatch(/^memory limit: .*past (its|the task's) maxTaskMemoryBytes 192 MiB/);
    await expectStillWorks();
  });

  it('counts the processes a task starts against its limit', async () => {
    const e = await run('child-buffers');
    expect(e.outcome).toBe('failed');
    expect(e.error?.code).toBe('TASK_MEMORY_LIMIT');
    await expectStillWorks();
  });

  it("honours a task's own maxTaskMemoryBytes over the executor's", async () => {
    const e = await h.run('buffers', { dagFile, dagId: 'memory', maxTaskMemoryBytes: 96 * 1024 * 1024 });
    expect(e.error?.code).toBe('TASK_MEMORY_LIMIT');
    expect(e.error?.message).toMatch(/maxTaskMemoryBytes 96 MiB/);
  });

  it.runIf(isolation === 'thread')('stops the thread that allocates, not a quiet one running beside it', async () => {
    const quiet = h.submit('sleeps', { dagFile, dagId: 'memory', params: { ms: 4000 } });
    await h.next((e) => e.type === 'started' && e.key === quiet.key);
    const hog = await run('buffers');
    expect(hog.error?.code).toBe('TASK_MEMORY_LIMIT');
    const sleeper = await quiet.finished;
    expect(sleeper.outcome).toBe('success');
    expect(sleeper.value).toBe('slept');
  });
});
