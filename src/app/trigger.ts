/**
 * Triggering manual runs: `kiln dags trigger` and `POST /api/v1/dags/:dagId/runs`. Params are
 * checked against the DAG's schema before anything is written (triggerRun).
 */
import type { KilnConfig } from '../config/load.js';
import { UsageError } from '../errors.js';
import { triggerRun } from '../scheduler/run-creation.js';
import type { RunRow, Store } from '../store/types.js';
import { storedDag } from './scheduler-dags.js';

export interface TriggerRequest {
  params?: Record<string, unknown>;
  runId?: string;
  logicalDate?: number;
  /** Queue this many runs at once (ids one millisecond apart); default 1. */
  count?: number;
}

export async function triggerDagRuns(store: Store, config: Pick<KilnConfig, 'dagsFolder' | 'parseTimeoutMs' | 'homeDir'>, dagId: string, request: TriggerRequest = {}): Promise<{ runs: RunRow[]; paused: boolean }> {
  const count = request.count ?? 1;
  if (!Number.isInteger(count) || count < 1) throw new UsageError(`count must be an integer >= 1, got '${count}'`);
  if (count > 1 && request.runId !== undefined) throw new UsageError('a run id names one run; it cannot be used with a count');
  if (count > 1 && request.logicalDate !== undefined) throw new UsageError('a logical date names one run; it cannot be used with a count (see kiln backfill)');
  const dag = await storedDag(store, config, dagId);
  const runs: RunRow[] = [];
  let now = Date.now();
  for (let i = 0; i < count; i++) {
    const { run } = await triggerRun(store, dag, { params: request.params, runId: request.runId, logicalDate: request.logicalDate, now });
    runs.push(run);
    now = run.queuedAt + 1;
  }
  return { runs, paused: dag.isPaused };
}
