/**
 * Task instances as a user addresses and reads them, for the CLI and the HTTP API alike: one
 * instance by (task, map index) with errors that name what exists, a page of a task's
 * instances (the web UI's instance list), and a task's XCom as a downstream reads it. How
 * a mapped task's instances are summed up is in instance-summary.ts.
 *
 * A task that is not mapped has one instance, map index -1; a mapped task one per map index
 * 0..N-1 once expanded (before that, its one placeholder at -1).
 */
import type { TiState } from '../dag/types.js';
import { KilnError } from '../errors.js';
import { pickInstance } from '../scheduler/operations.js';
import { readTaskResult } from '../scheduler/task-results.js';
import type { Store, TaskStateCounts, TiKey, TiRow } from '../store/types.js';
import type { StateCounts } from './instance-summary.js';

/**
 * One task instance, or an error naming what exists: the task's only instance when
 * `key.mapIndex` is absent (a mapped task then needs one: the error lists its map indexes),
 * else the instance at that map index. The task's instances (never the run's others) are
 * read only when the key does not name one.
 */
export async function getInstanceOrThrow(store: Store, key: TiKey): Promise<TiRow> {
  const ti = await store.getTaskInstance(key);
  if (ti) return ti;
  const run = await store.getRun(key.dagId, key.runId);
  if (!run) throw new KilnError('RUN_NOT_FOUND', `DAG '${key.dagId}' has no run '${key.runId}'`);
  const instances = await store.taskInstancesOf(key.dagId, key.runId, key.taskId);
  if (instances.length === 0) throw new KilnError('TASK_NOT_FOUND', `run '${key.runId}' of DAG '${key.dagId}' has no task '${key.taskId}'`);
  return pickInstance(run, instances, key.taskId, key.mapIndex);
}

/** Every instance of one task in a run, in map-index order (an error if the task has none). */
export async function taskInstancesOf(store: Store, dagId: string, runId: string, taskId: string): Promise<TiRow[]> {
  const instances = await store.taskInstancesOf(dagId, runId, taskId);
  if (instances.length === 0) await throwNoTask(store, dagId, runId, taskId);
  return instances;
}

/** The task's instances by state; an error if it has none (no such task, or no such run). */
async function stateCountsOrThrow(store: Store, dagId: string, runId: string, taskId: string): Promise<TaskStateCounts> {
  const counts = await store.taskStateCounts(dagId, runId, taskId);
  if (counts.count === 0) await throwNoTask(store, dagId, runId, taskId);
  return counts;
}

/** For a task without instances: RUN_NOT_FOUND when the run is not there either, else TASK_NOT_FOUND. */
async function throwNoTask(store: Store, dagId: string, runId: string, taskId: string): Promise<never> {
  if (!(await store.getRun(dagId, runId))) throw new KilnError('RUN_NOT_FOUND', `DAG '${dagId}' has no run '${runId}'`);
  throw new KilnError('TASK_NOT_FOUND', `run '${runId}' of DAG '${dagId}' has no task '${taskId}'`);
}

/**
 * A task's XCom: with a map index, that instance's value; without one, the task's result as a
 * downstream's ctx.xcom() reads it (a mapped task's: its successful instances' values, in
 * map-index order).
 */
export async function readXcom(store: Store, key: TiKey): Promise<unknown> {
  if (key.mapIndex === undefined) {
    await stateCountsOrThrow(store, key.dagId, key.runId, key.taskId);
    return readTaskResult(store, key.dagId, key.runId, key.taskId);
  }
  const ti = await getInstanceOrThrow(store, key);
  return store.getXcom({ dagId: ti.dagId, runId: ti.runId, taskId: ti.taskId, mapIndex: ti.mapIndex });
}

export interface InstancePage {
  /** True once the task has instances with map indexes (it is mapped and expanded). */
  mapped: boolean;
  /** All instances of the task, by state. */
  states: StateCounts;
  count: number;
  /** How many match `state` (all without it). */
  total: number;
  offset: number;
  instances: TiRow[];
}

/**
 * A page of one task's instances, in map-index order, optionally only those in some states:
 * two reads of the task's primary-key range (its counts by state, then the page's rows), so a
 * page of a 10,000-instance map reads its page, not the run.
 */
export async function pageTaskInstances(store: Store, dagId: string, runId: string, taskId: string, options: { offset: number; limit: number; states?: readonly TiState[] }): Promise<InstancePage> {
  const counts = await stateCountsOrThrow(store, dagId, runId, taskId);
  const total = options.states === undefined ? counts.count : [...new Set(options.states)].reduce((n, s) => n + (counts.states[s] ?? 0), 0);
  // Past the last matching instance: nothing to read.
  const instances = options.offset >= total ? [] : await store.taskInstancesOf(dagId, runId, taskId, options);
  return { mapped: counts.mapped, states: counts.states, count: counts.count, total, offset: options.offset, instances };
}
