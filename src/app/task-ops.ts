/**
 * Clear and mark, by dag/run/task ids (and a map index for one instance of a mapped task):
 * `kiln tasks clear|mark` and the API's. A dry run reads what would change and writes
 * nothing (the web UI always shows it before confirming).
 */
import { UsageError } from '../errors.js';
import { clearTasks, loadRun, markTask, type ClearResult } from '../scheduler/operations.js';
import type { RunRow, Store } from '../store/types.js';

export interface ClearRequest {
  /** Only this task (default: every task of the run): every instance of it. */
  taskId?: string;
  /** Only this instance of `taskId` (its map index; -1 for a task that is not mapped). */
  mapIndex?: number;
  /** Also every task downstream of `taskId` (all their instances). */
  downstream?: boolean;
  dryRun?: boolean;
}

export async function clearTaskInstances(store: Store, dagId: string, runId: string, request: ClearRequest = {}): Promise<ClearResult & { dryRun: boolean }> {
  if (request.downstream && request.taskId === undefined) throw new UsageError('downstream needs a task id');
  if (request.mapIndex !== undefined && request.taskId === undefined) throw new UsageError('a map index needs a task id');
  const result = await clearTasks(store, await loadRun(store, dagId, runId), {
    taskId: request.taskId, mapIndex: request.mapIndex, downstream: request.downstream, dryRun: request.dryRun,
  });
  return { ...result, dryRun: request.dryRun === true };
}

export interface MarkResult {
  dryRun: boolean;
  /** The task instances that change (or would): only the one named; mark never selects downstream tasks. */
  changed: Array<{ taskId: string; mapIndex: number; from: string; to: 'success' | 'failed' }>;
  /** The run's state afterwards. */
  runState: RunRow['state'];
}

/** Marks one task instance: a mapped task's needs `mapIndex` (the error lists its map indexes). */
export async function markTaskInstance(store: Store, dagId: string, runId: string, taskId: string, state: string, options: { dryRun?: boolean; mapIndex?: number } = {}): Promise<MarkResult> {
  if (state !== 'success' && state !== 'failed') throw new UsageError(`state must be success or failed, got '${state}'`);
  const ctx = await loadRun(store, dagId, runId);
  const result = await markTask(store, ctx, taskId, state, Date.now(), { dryRun: options.dryRun, mapIndex: options.mapIndex });
  const { ti } = result;
  return { dryRun: options.dryRun === true, changed: result.changed ? [{ taskId, mapIndex: ti.mapIndex, from: ti.state, to: state }] : [], runState: result.runState };
}
