/**
 * Memory limits and the settings added with them: the defaults derived from the machine, the
 * size syntax, and where each value comes from (file, environment, flag; aliases).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { parseBytes } from '../../src/dag/bytes.js';
import { dag } from '../../src/dag/authoring.js';
import { defaultTaskMemoryBytes, heapLimitMbFor } from '../../src/executor/memory-limits.js';
import { settingsFrom } from '../../src/executor/options.js';

const MiB = 2 ** 20;
const GiB = 2 ** 30;

describe('memory limits', () => {
  it('sizes a try so that parallelism tries at their limit fit in 80% of the machine', () => {
    expect(defaultTaskMemoryBytes({ totalMemoryBytes: 24 * GiB, parallelism: 8, maxWorkerMemoryBytes: GiB })).toBe(2 * GiB);
    expect(defaultTaskMemoryBytes({ totalMemoryBytes: 4 * GiB, parallelism: 8, maxWorkerMemoryBytes: GiB })).toBe(Math.floor((4 * GiB * 0.8) / 8));
    expect(defaultTaskMemoryBytes({ totalMemoryBytes: 64 * MiB, parallelism: 64, maxWorkerMemoryBytes: GiB })).toBe(64 * MiB);
  });

  it('puts the V8 heap limit under the try limit, leaving room for the rest of the process', () => {
    expect(heapLimitMbFor(2 * GiB)).toBe(Math.floor(2048 * 0.9));
    expect(heapLimitMbFor(192 * MiB)).toBe(128);
    expect(heapLimitMbFor(64 * MiB)).toBe(32);
  });

  it("gives the executor a heap limit even when the caller sets none (never node's process-wide one)", () => {
    const s = settingsFrom({ parallelism: 4, defaultIsolation: 'thread', taskApi: { xcom: async () => undefined }, onEvent: () => {}, logDir: '/tmp', maxWorkerMemoryBytes: 100 * MiB });
    expect(s.maxTaskMemoryBytes).toBeLessThanOrEqual(200 * MiB);
    expect(s.workerHeapLimitMb).toBe(heapLimitMbFor(s.maxTaskMemoryBytes));
  });

  it('reads sizes as bytes or with decimal and binary units', () => {
    expect(parseBytes(1024)).toBe(1024);
    expect(parseBytes('4096')).toBe(4096);
    expect(parseBytes('512MiB')).toBe(512 * MiB);
    expect(parseBytes('2GB')).toBe(2e9);
    expect(parseBytes('1.5 gib')).toBe(1.5 * GiB);
    for (const bad of ['lots', '-1', '1.5', 'MiB', null, {}, -5, 1.5]) expect(parseBytes(bad)).toBeUndefined();
  });

  it("validates a task's maxTaskMemoryBytes and names it", () => {
    const d = dag({ id: 'm' }, (b) => b.task('t', () => 1, { maxTaskMemoryBytes: '256MiB' }));
    expect(d.tasks.get('t')?.maxTaskMemoryBytes).toBe(256 * MiB);
    expect(() => dag({ id: 'm' }, (b) => b.task('t', () => 1, { maxTaskMemoryBytes: 'lots' }))).toThrow(/task 't'.*maxTaskMemoryBytes.*'lots'/);
    expect(() => dag({ id: 'm' }, (b) => b.task('t', () => 1, { maxTaskMemoryBytes: 1000 }))).toThrow(/at least 16 MiB/);
  });
});

describe('config', () => {
  const project = (config?: object) => {
    const cwd = mkdtempSync(join(tmpdir(), 'kiln-config-'));
    if (config) writeFileSync(join(cwd, 'kiln.config.json'), JSON.stringify(config));
    return cwd;
  };

  it('derives the task memory limit and the heap limit from maxWorkerMemoryBytes', async () => {
    const config = await loadConfig({ cwd: project({ maxWorkerMemoryBytes: '96MiB' }), env: {} });
    expect(config.maxWorkerMemoryBytes).toBe(96 * MiB);
    expect(config.maxTaskMemoryBytes).toBe(192 * MiB);
    expect(config.workerHeapLimitMb).toBe(128);
  });

  it('takes explicit limits from the environment over the file', async () => {
    const config = await loadConfig({ cwd: project({ maxTaskMemoryBytes: '1GiB' }), env: { KILN_MAX_TASK_MEMORY_BYTES: '300MiB', KILN_WORKER_HEAP_LIMIT_MB: '200' } });
    expect(config.maxTaskMemoryBytes).toBe(300 * MiB);
    expect(config.workerHeapLimitMb).toBe(200);
  });

  it('reads drain, takeoverAfter and retention from the file (with or without the Ms suffix) and the environment', async () => {
    const fromFile = await loadConfig({ cwd: project({ drain: '0s', takeoverAfter: '45s', retention: '30d' }), env: {} });
    expect(fromFile).toMatchObject({ drainMs: 0, takeoverAfterMs: 45_000, retentionMs: 30 * 86_400_000 });
    const fromEnv = await loadConfig({ cwd: project({ drainMs: '1s' }), env: { KILN_DRAIN: '20s', KILN_TAKEOVER_AFTER: '1m', KILN_RETENTION: 'off' } });
    expect(fromEnv).toMatchObject({ drainMs: 20_000, takeoverAfterMs: 60_000, retentionMs: null });
    const defaults = await loadConfig({ cwd: project(), env: {} });
    expect(defaults).toMatchObject({ drainMs: 5_000, takeoverAfterMs: 30_000, retentionMs: null });
  });

  it('names the setting and its source when a value is bad', async () => {
    await expect(loadConfig({ cwd: project(), env: { KILN_MAX_TASK_MEMORY_BYTES: 'lots' } })).rejects.toThrow(/KILN_MAX_TASK_MEMORY_BYTES must be a number of bytes or a size like '512MiB'/);
    await expect(loadConfig({ cwd: project({ retention: 'forever' }) , env: {} })).rejects.toThrow(/'retention' must be a duration like '30d' or 'off'/);
    await expect(loadConfig({ cwd: project({ drain: -1 }), env: {} })).rejects.toThrow(/'drain' must be milliseconds/);
  });
});
