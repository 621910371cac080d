/**
 * The rows of the CLI's task-instance tables (`kiln runs show`, `kiln dags test`): one per
 * task instance, except that a mapped task's instances share one row (`square [0..9999]`,
 * state `9998 success, 2 failed`), so a 10,000-instance map prints one line, not 10,000.
 */
import { formatStateCounts, groupInstances, mappedLabel, stateCounts } from '../app/instance-summary.js';
import type { TiState } from '../dag/types.js';
import { formatMapIndexes } from '../scheduler/operations.js';

type Cell = string | number | null;
interface Instance {
  taskId: string;
  mapIndex: number;
  state: TiState;
  error: string | null;
}

/**
 * `one` renders an instance's row; a mapped task's row has its name, its counts by state, the
 * first failed instance's error (`[3] boom (+1 more)`) in the last column, and `-` elsewhere.
 */
export function instanceRows<T extends Instance>(rows: readonly T[], width: number, one: (row: T) => Cell[]): Cell[][] {
  return groupInstances(rows).map((g) => {
    if (!g.mapped) return one(g.row);
    const failed = g.rows.filter((r) => r.error !== null && (r.state === 'failed' || r.state === 'upstream_failed' || r.state === 'up_for_retry'));
    const first = failed[0];
    const error = first ? `[${first.mapIndex}] ${firstLine(first.error)}${failed.length > 1 ? ` (+${failed.length - 1} more)` : ''}` : null;
    const label = mappedLabel(g.taskId, g.rows[0]!.mapIndex, g.rows[g.rows.length - 1]!.mapIndex);
    return [label, formatStateCounts(stateCounts(g.rows.map((r) => r.state))), ...Array<Cell>(width - 3).fill(null), error];
  });
}

export function firstLine(error: string | null): string | null {
  return error === null ? null : error.split('\n')[0]!.slice(0, 80);
}

/**
 * Task-instance ids (`list`, `square[3]`: see tiId) as a short list, a mapped task's
 * instances gathered: `list, square [0..9999] (10000 instances)`.
 */
export function describeInstanceIds(ids: readonly string[]): string {
  const parts: string[] = [];
  const mapped = new Map<string, number[]>();
  for (const id of ids) {
    const m = /^(.*)\[(\d+)\]$/.exec(id);
    if (!m) {
      parts.push(id);
      continue;
    }
    let indexes = mapped.get(m[1]!);
    if (indexes === undefined) {
      indexes = [];
      mapped.set(m[1]!, indexes);
      parts.push(`\0${m[1]}`);
    }
    indexes.push(Number(m[2]));
  }
  return parts
    .map((p) => {
      if (!p.startsWith('\0')) return p;
      const indexes = mapped.get(p.slice(1))!;
      return indexes.length === 1 ? `${p.slice(1)}[${indexes[0]}]` : `${p.slice(1)} [${formatMapIndexes(indexes)}] (${indexes.length} instances)`;
    })
    .join(', ');
}
