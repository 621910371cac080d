/**
 * Executor.preload: warm workers import a DAG module before its first task arrives (workers
 * started later are greeted with it once up: pool.test.ts); its tasks then find it loaded.
 */
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Executor } from '../../dist/src/executor/types.js';
import { createHarness, fixturesDir } from './harness.js';
import { until } from '../fixtures/scheduler/harness.js';

const started: Executor[] = [];
afterEach(async () => {
  for (const e of started.splice(0)) await e.stop();
});

describe.each(['thread', 'process'] as const)('Executor.preload on %s workers', (isolation) => {
  it('imports the module in every warm worker before any task; its tasks then find it loaded', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kiln-preload-'));
    const log = join(dir, 'imports.log');
    process.env.PRELOAD_TEST_IMPORT_LOG = log;
    const dagFile = join(fixturesDir, 'preload_dag.mjs');
    const h = createHarness({ isolation, logDir: dir, dagFile, executor: { warmWorkers: 2 } });
    started.push(h.executor);
    await h.executor.start();
    expect(existsSync(log)).toBe(false);
    h.executor.preload!({ dagFile, dagVersion: 'v1', dagSourceFile: null });
    await until(() => existsSync(log) && readFileSync(log, 'utf8').trim().split('\n').length === 2 || null, 'both warm workers to import the module', 10_000);
    // A try of that version finds it loaded: no third import by the workers that have it.
    const done = await h.run('noop', { dagFile, dagVersion: 'v1', dagId: 'preload_dag' });
    expect(done.outcome).toBe('success');
    expect(readFileSync(log, 'utf8').trim().split('\n')).toHaveLength(2);
  });
});
