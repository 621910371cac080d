/** Reading a run into memory to drive it: its task instances and the previous success's interval. */
import { decides } from '../dag/decisions.js';
import type { SerializedDag } from '../dag/types.js';
import type { RunRow, Store, TiRow } from '../store/types.js';
import { RunState } from './run-state.js';

/**
 * A RunState for `row`, with the data interval of the DAG's latest successful run before it
 * (the task context's prevDataIntervalStart/EndSuccess). `tis`: already read (a run just
 * created), else read here.
 */
export async function loadRunState(store: Store, row: RunRow, dag: SerializedDag, dagFile: string, tis?: readonly TiRow[]): Promise<RunState> {
  const state = new RunState(row, dag, dagFile, tis ?? (await store.getTaskInstances(row.dagId, row.runId)));
  state.prevSuccess = (await store.prevSuccessfulInterval(row.dagId, row.logicalDate)) ?? null;
  // What its finished branches and short-circuits decided: their stored results.
  for (const task of dag.tasks) {
    if (decides(task) && state.tis.get(task.taskId)?.state === 'success') state.decided(task.taskId, await store.getXcom({ dagId: row.dagId, runId: row.runId, taskId: task.taskId }));
  }
  return state;
}
