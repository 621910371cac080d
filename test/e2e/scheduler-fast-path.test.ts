/**
 * Readiness is event-driven: a finished task dispatches its downstream at once, not at the
 * next loop tick. With the loop interval at 10 s, a 5-task chain must finish in well under
 * one interval (a tick-driven scheduler would need four more ticks: 40 s).
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runKiln, scratchProject } from '../helpers/cli.js';
import { exitOf, FIXTURES, startScheduler, until, withStore } from '../fixtures/scheduler/harness.js';

const INTERVAL_MS = 10_000;

describe('event-driven dispatch', () => {
  it('runs a 5-task chain in well under one scheduler interval, then stops cleanly on SIGTERM', async () => {
    const cwd = scratchProject('kiln-sched-fast-');
    const url = `sqlite:${join(cwd, 'kiln.db')}`;
    const env = { KILN_DATABASE_URL: url, KILN_DAGS_FOLDER: join(FIXTURES, 'chain'), KILN_SCHEDULER_INTERVAL: `${INTERVAL_MS}ms` };
    // Queued before the scheduler starts: its first tick (at start) claims it.
    const trigger = await runKiln(['dags', 'trigger', 'chain5', '--run-id', 'fast'], { cwd, env });
    expect(trigger.code, trigger.stderr).toBe(0);
    const p = startScheduler(['--executor', 'thread'], { cwd, env });
    try {
      const { run, tis } = await withStore(url, (store) =>
        until(async () => {
          const run = await store.getRun('chain5', 'fast');
          return run?.state === 'success' ? { run, tis: await store.getTaskInstances('chain5', 'fast') } : undefined;
        }, 'the chain to finish', INTERVAL_MS * 2),
      );
      const runMs = run.endedAt! - run.startedAt!;
      expect(runMs, `the run took ${runMs} ms`).toBeLessThan(INTERVAL_MS / 4);
      // Each task was queued right after its upstream ended, not a tick later.
      const byId = new Map(tis.map((t) => [t.taskId, t]));
      for (let i = 2; i <= 5; i++) {
        const gapMs = byId.get(`t${i}`)!.queuedAt! - byId.get(`t${i - 1}`)!.endedAt!;
        expect(gapMs, `t${i} queued ${gapMs} ms after t${i - 1} ended`).toBeLessThan(INTERVAL_MS / 10);
      }
    } finally {
      p.child.kill('SIGTERM');
    }
    // SIGTERM wakes the sleeping loop: a clean exit, well before the next tick would have come.
    const { code } = await exitOf(p, INTERVAL_MS);
    expect(code, p.output()).toBe(0);
    expect(p.output()).toMatch(/scheduler stopped/);
  });
});
