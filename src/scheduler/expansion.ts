/**
 * Expanding a mapped task, once its trigger rule lets it run: how many instances it gets and
 * what happens to the ones it has. Pure: the engine applies the plan (engine-mapping.ts).
 *
 * As Airflow does (`TaskMap.expand_mapped_task`):
 * - the first expansion replaces the task's placeholder (map index -1) with one instance per
 *   item, or settles the placeholder: skipped for zero items, upstream_failed when a source
 *   has no result, failed when a cross product is longer than maxMapLength;
 * - a later expansion (the task was cleared and its upstream ran again) keeps the instances
 *   it still has items for, adds new ones, and marks the surplus `removed`.
 */
import { mapItems, mapSourceTasks } from '../dag/mapping.js';
import type { TiState } from '../dag/types.js';
import type { TiRow } from '../store/types.js';
import type { RunState } from './run-state.js';

/** The map length kiln allows when a DAG version predates the option. */
export const FALLBACK_MAX_MAP_LENGTH = 10_000;

export type ExpansionPlan =
  /** A source's result is not in memory: read it from the store, then decide again. */
  | { kind: 'load'; sources: string[] }
  /** Nothing to run: every instance not started ends in `state`. */
  | { kind: 'settle'; state: Extract<TiState, 'skipped' | 'upstream_failed' | 'failed'>; error: string | null }
  | {
      kind: 'expand';
      items: unknown[];
      /** The placeholder the new instances replace (first expansion), else null. */
      placeholder: TiRow | null;
      /** New instances (state scheduled, try 0). */
      rows: TiRow[];
      /** Instances past the new length that have not run since they were cleared: removed. */
      removed: TiRow[];
    };

export function planExpansion(run: RunState, taskId: string): ExpansionPlan {
  const task = run.tasks.get(taskId)!;
  const spec = task.map!;
  const unloaded: string[] = [];
  const items = mapItems(spec, (source) => {
    const r = run.resultOf(source);
    if (r === 'unloaded') unloaded.push(source);
    return r === null || r === 'unloaded' ? undefined : r;
  });
  if (unloaded.length > 0) return { kind: 'load', sources: unloaded };
  if (items === null) {
    const sources = mapSourceTasks(spec).filter((s) => run.resultOf(s) === null);
    return { kind: 'settle', state: 'upstream_failed', error: `nothing to map over: ${sources.map((s) => `'${s}'`).join(', ')} did not succeed or returned neither an array nor an object` };
  }
  const max = run.dag.maxMapLength ?? FALLBACK_MAX_MAP_LENGTH;
  if (items.length > max) return { kind: 'settle', state: 'failed', error: `the map expands to ${items.length} instances, more than maxMapLength (${max})` };

  const existing = run.instances(taskId);
  const template = existing[0]!;
  const fresh = (mapIndex: number): TiRow => ({
    ...template, mapIndex, state: 'scheduled', tryNumber: 0, maxTries: task.retries + 1,
    queuedAt: null, startedAt: null, endedAt: null, durationMs: null, pid: null, exitCode: null, signal: null, error: null,
    peakRssBytes: null, cpuMs: null, lastHeartbeatAt: null, queuedBy: null, nextRetryAt: null, firstPokeAt: null,
  });
  if (!run.isExpanded(taskId)) {
    if (items.length === 0) return { kind: 'settle', state: 'skipped', error: null };
    return { kind: 'expand', items, placeholder: template, rows: items.map((_, i) => fresh(i)), removed: [] };
  }
  // Expanded before: only instances not run since they were cleared (state none) change.
  const removed = existing.filter((ti) => ti.mapIndex >= items.length && ti.state === 'none');
  if (items.length === 0 && removed.length === existing.length) {
    // Nothing left to map over: as a first expansion of zero items would, the task is skipped.
    return { kind: 'settle', state: 'skipped', error: null };
  }
  const rows: TiRow[] = [];
  for (let i = existing.length; i < items.length; i++) rows.push(fresh(i));
  return { kind: 'expand', items, placeholder: null, rows, removed };
}

/** The instances of a task a settle plan ends: those that have not started. */
export function unstarted(run: RunState, taskId: string): TiRow[] {
  return run.instances(taskId).filter((ti) => ti.state === 'none' || ti.state === 'scheduled');
}
