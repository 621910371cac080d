/**
 * A plugin executor end to end: resolved by path like any module, then driven through the
 * Executor interface. Its own file because the fixture runs tasks inline, in this process
 * (the runner core installs process-wide handlers for stray errors).
 */
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolveExecutor } from '../../dist/src/executor/registry.js';
import type { ExecutorEvent } from '../../dist/src/executor/types.js';
import { fixturesDir } from './harness.js';

describe('a third-party executor', () => {
  it('runs a task through a module found by a cwd-relative path', async () => {
    const path = relative(process.cwd(), join(fixturesDir, 'third-party-executor.mjs'));
    const { factory, defaultIsolation } = await resolveExecutor(path);
    expect(defaultIsolation).toBe('thread');
    const events: ExecutorEvent[] = [];
    let done!: () => void;
    const finished = new Promise<void>((resolve) => (done = resolve));
    const executor = factory({
      parallelism: 1,
      defaultIsolation: 'thread',
      logDir: tmpdir(),
      taskApi: { xcom: async (_dagId, _runId, taskId) => (taskId === 'value' ? { answer: 41 } : undefined) },
      onEvent: (e) => {
        events.push(e);
        if (e.type === 'finished') done();
      },
      extra: { flavour: 'inline' },
    });
    await executor.start();
    executor.submit({
      key: 'suite/r1/xcom/1', dagId: 'suite', runId: 'r1', taskId: 'xcom', tryNumber: 1, maxTries: 1,
      dagFile: join(fixturesDir, 'suite.ts'), dagVersion: 'v1', params: {}, isolation: 'thread',
      runType: 'manual', logicalDate: 0, dataIntervalStart: 0, dataIntervalEnd: 0, prevDataIntervalStartSuccess: null, prevDataIntervalEndSuccess: null,
      timeoutMs: null, heartbeatTimeoutMs: null, env: [], logFile: null,
    });
    await finished;
    await executor.stop();
    expect(events.map((e) => e.type)).toEqual(['started', 'finished']);
    expect(events[1]).toMatchObject({ outcome: 'success', value: 42, extra: { flavour: 'inline' } });
  });

});
