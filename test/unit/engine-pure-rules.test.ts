/** The run engine's pure rules: the queued row, per-task limits (dispatch-rules.ts), and the reload diff (run-reload.ts). */
import { describe, expect, it } from 'vitest';
import { atTaskLimit, queuedRow } from '../../src/scheduler/dispatch-rules.js';
import { diffReloaded } from '../../src/scheduler/run-reload.js';
import { initialTaskInstances, RunState, tiIdOf } from '../../src/scheduler/run-state.js';
import type { TiRow } from '../../src/store/types.js';
import { run as runRow, serializedDag, ti } from '../store/fixtures.js';

function newRun(runId: string, over: Record<string, unknown> = {}): RunState {
  const base = serializedDag('d', ['a', 'b']);
  const dag = { ...base, tasks: base.tasks.map((t) => ({ ...t, ...over })) };
  return new RunState(runRow('d', runId), dag, '/dev/null', initialTaskInstances('d', runId, dag.tasks));
}
const set = (run: RunState, taskId: string, over: Partial<TiRow>) => run.replace({ ...run.tis.get(`${taskId}`)!, ...over });

describe('queuedRow', () => {
  it('starts the next try afresh, keeping the task instance and a sensor first poke', () => {
    const run = newRun('r1');
    const prev = { ...ti('d', 'r1', 'a'), state: 'scheduled' as const, tryNumber: 1, pid: 9, error: 'boom', exitCode: 1, endedAt: 5, firstPokeAt: 3 };
    const task = run.tasks.get('a')!;
    expect(queuedRow(prev, task, 100, 's1', 'thread')).toMatchObject({ state: 'queued', tryNumber: 2, queuedAt: 100, queuedBy: 's1', isolation: 'thread', pid: null, error: null, exitCode: null, endedAt: null, firstPokeAt: 3 });
    expect(queuedRow({ ...prev, firstPokeAt: null }, { ...task, kind: 'sensor' }, 100, 's1', 'thread').firstPokeAt).toBe(100);
    expect(queuedRow({ ...prev, firstPokeAt: null }, task, 100, 's1', 'thread').firstPokeAt).toBeNull();
  });
});

describe('atTaskLimit', () => {
  it('counts queued and running instances of the task, in the run and across the DAG’s runs', () => {
    const r1 = newRun('r1', { maxActiveTisPerRun: 1 });
    const task = r1.tasks.get('a')!;
    expect(atTaskLimit(r1, task, [r1])).toBe(false);
    set(r1, 'a', { state: 'running', tryNumber: 1 });
    expect(atTaskLimit(r1, task, [r1])).toBe(true);
    const perDag = { ...task, maxActiveTisPerRun: null, maxActiveTisPerDag: 2 };
    const r2 = newRun('r2');
    expect(atTaskLimit(r2, perDag, [r1, r2])).toBe(false);
    set(r2, 'a', { state: 'queued', tryNumber: 1 });
    expect(atTaskLimit(r2, perDag, [r1, r2])).toBe(true);
  });
});

describe('diffReloaded', () => {
  it('lists the rows changed elsewhere, skips ours and the unchanged, and calls a run stale when one was started elsewhere', () => {
    const run = newRun('r1');
    set(run, 'a', { state: 'success', tryNumber: 1 });
    const dbA = { ...run.tis.get('a')!, state: 'none' as const, tryNumber: 1 }; // cleared
    const dbB = { ...run.tis.get('b')! }; // unchanged
    expect(diffReloaded(run, [dbA, dbB], () => false)).toEqual({ stale: false, changed: [dbA] });
    // A pending write of ours decides by its compare-and-set, not by this read.
    expect(diffReloaded(run, [dbA, dbB], (id) => id === tiIdOf(dbA))).toEqual({ stale: false, changed: [] });
    // Started by someone else: the run must be adopted afresh.
    expect(diffReloaded(run, [dbA, { ...dbB, state: 'running', tryNumber: 1 }], () => false)).toEqual({ stale: true });
  });
});
