/**
 * A mapped task's instances summed up as one line or one cell: how many are in each state,
 * the one state that stands for them all, and a name for the lot (`square [0..9999]`). Used
 * by `kiln runs show`, `kiln dags test` (its live view and summary table) and the API's grid,
 * so 10,000 instances never make 10,000 lines or cells; and a map index read from text.
 * Light: the CLI loads it at start.
 */
import { TI_STATES, type TiState } from '../dag/types.js';
import { UsageError } from '../errors.js';
import type { TiRow } from '../store/types.js';

/** How many instances are in each state; states with none are left out. */
export type StateCounts = Partial<Record<TiState, number>>;

export function stateCounts(states: Iterable<TiState>): StateCounts {
  const counts: StateCounts = {};
  for (const s of states) counts[s] = (counts[s] ?? 0) + 1;
  return counts;
}

/**
 * The one state that stands for a mapped task's instances (the grid cell's colour, the graph
 * node's): Airflow's grid order, the first state any instance is in. A failure shows while
 * others still run; all success shows success; removed only when every instance is.
 */
export const STATE_PRIORITY: readonly TiState[] = [
  'failed', 'upstream_failed', 'up_for_retry', 'up_for_reschedule', 'queued', 'scheduled', 'running', 'none', 'success', 'skipped', 'removed',
];

export function aggregateState(counts: StateCounts): TiState {
  return STATE_PRIORITY.find((s) => (counts[s] ?? 0) > 0) ?? 'none';
}

/** `9998 success, 2 failed`, in the state machine's order. */
export function formatStateCounts(counts: StateCounts): string {
  return TI_STATES.filter((s) => (counts[s] ?? 0) > 0).map((s) => `${counts[s]} ${s}`).join(', ');
}

/** `square [0..9999]`: a mapped task's instances (map indexes first..last) as one name. */
export function mappedLabel(taskId: string, first: number, last: number): string {
  return `${taskId} [${first === last ? first : `${first}..${last}`}]`;
}

/** Rows of one run in order, a mapped task's instances (map index >= 0) gathered into one group where the first of them was. */
export type InstanceGroup<T> = { mapped: false; row: T } | { mapped: true; taskId: string; rows: T[] };

export function groupInstances<T extends Pick<TiRow, 'taskId' | 'mapIndex'>>(rows: readonly T[]): Array<InstanceGroup<T>> {
  const out: Array<InstanceGroup<T>> = [];
  const groups = new Map<string, T[]>();
  for (const row of rows) {
    if (row.mapIndex < 0) {
      out.push({ mapped: false, row });
      continue;
    }
    let group = groups.get(row.taskId);
    if (group === undefined) {
      group = [];
      groups.set(row.taskId, group);
      out.push({ mapped: true, taskId: row.taskId, rows: group });
    }
    group.push(row);
  }
  for (const g of out) if (g.mapped) g.rows.sort((a, b) => a.mapIndex - b.mapIndex);
  return out;
}

/** A map index given as text (a CLI flag, a query parameter): an integer >= -1 (-1: a task that is not mapped). */
export function parseMapIndex(raw: string | undefined, name: string): number | undefined {
  if (raw === undefined) return undefined;
  const n = /^\s*-?\d+\s*$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < -1) throw new UsageError(`${name} must be an integer >= -1 (a map index; -1 for a task that is not mapped), got '${raw}'`);
  return n;
}
