/**
 * The grid's cells (app/grid.ts gridCells, what GET /dags/:dagId/grid sends): one per
 * unmapped task instance, one per (run, mapped task) summing its instances up by state, with
 * the state that stands for them all in Airflow's grid order. Pure: no store.
 */
import { describe, expect, it } from 'vitest';
import { gridCells } from '../../src/app/grid.js';
import type { TiState } from '../../src/dag/types.js';
import type { GridTi } from '../../src/store/types.js';

const ti = (runId: string, taskId: string, mapIndex: number, state: TiState, tryNumber = 1): GridTi => ({ runId, taskId, mapIndex, state, tryNumber });

describe('grid cells', () => {
  it('sums a mapped task up per run, keeps unmapped instances as they are, and a 10,000-instance map is one cell', () => {
    const many = Array.from({ length: 10_000 }, (_, i) => ti('r2', 'm', i, i < 9998 ? 'success' : 'failed', i === 5 ? 3 : 1));
    const cells = gridCells([ti('r1', 'a', -1, 'success'), ti('r1', 'm', 0, 'running'), ti('r1', 'm', 1, 'success'), ti('r2', 'a', -1, 'success'), ...many]);
    expect(cells).toEqual([
      { runId: 'r1', taskId: 'a', mapped: false, state: 'success', tryNumber: 1 },
      { runId: 'r1', taskId: 'm', mapped: true, count: 2, states: { running: 1, success: 1 }, state: 'running', tryNumber: 1 },
      { runId: 'r2', taskId: 'a', mapped: false, state: 'success', tryNumber: 1 },
      { runId: 'r2', taskId: 'm', mapped: true, count: 10_000, states: { success: 9998, failed: 2 }, state: 'failed', tryNumber: 3 },
    ]);
  });

  it('shows an unexpanded mapped task as its placeholder, and ignores a placeholder beside its instances', () => {
    expect(gridCells([ti('r1', 'm', -1, 'scheduled', 0)])).toEqual([{ runId: 'r1', taskId: 'm', mapped: false, state: 'scheduled', tryNumber: 0 }]);
    expect(gridCells([ti('r1', 'm', -1, 'none', 0), ti('r1', 'm', 0, 'queued')])).toEqual([
      { runId: 'r1', taskId: 'm', mapped: true, count: 1, states: { queued: 1 }, state: 'queued', tryNumber: 1 },
    ]);
  });

  it('picks the state that stands for the instances in Airflow grid order', () => {
    const stateOf = (...states: TiState[]) => (gridCells(states.map((s, i) => ti('r', 'm', i, s)))[0] as { state: TiState }).state;
    expect(stateOf('success', 'running', 'failed')).toBe('failed');
    expect(stateOf('success', 'up_for_retry', 'running')).toBe('up_for_retry');
    expect(stateOf('success', 'none')).toBe('none');
    expect(stateOf('success', 'removed', 'skipped')).toBe('success');
    expect(stateOf('removed', 'removed')).toBe('removed');
  });
});
