/**
 * A task's result read from the store: for a runner's ctx.xcom() when the run is not in
 * memory, and for a mapped task's expansion after a restart (run-state.ts `resultOf`).
 */
import type { Store } from '../store/types.js';
import { tiId, type RunState } from './run-state.js';

/**
 * What ctx.xcom(taskId) returns: an unmapped task's XCom, or a mapped task's results, one per
 * successful instance in map-index order (a removed or failed instance has none).
 */
export async function readTaskResult(store: Store, dagId: string, runId: string, taskId: string): Promise<unknown> {
  const xcoms = await store.getTaskXcoms(dagId, runId, taskId);
  const tis = (await store.getTaskInstances(dagId, runId)).filter((t) => t.taskId === taskId);
  if (!tis.some((t) => t.mapIndex >= 0)) return xcoms.find((x) => x.mapIndex < 0)?.value;
  const byIndex = new Map(xcoms.map((x) => [x.mapIndex, x.value]));
  return tis.filter((t) => t.state === 'success').map((t) => byIndex.get(t.mapIndex));
}

/** Reads the results of `sources` (tasks that succeeded) into the run's memory. */
export async function loadSourceResults(store: Store, run: RunState, sources: readonly string[]): Promise<void> {
  const { dagId, runId } = run.run;
  for (const source of sources) {
    const xcoms = await store.getTaskXcoms(dagId, runId, source);
    const mapped = run.tasks.get(source)?.map !== undefined;
    for (const x of xcoms) {
      const id = tiId(source, x.mapIndex);
      // A value of this run's memory is newer than the store's.
      if ((mapped ? x.mapIndex >= 0 : x.mapIndex < 0) && !run.xcoms.has(id)) run.xcoms.set(id, x.value);
    }
    // A source that succeeded and returned nothing has no XCom row: undefined is its result.
    if (!mapped && !run.xcoms.has(source)) run.xcoms.set(source, undefined);
    if (mapped) for (const ti of run.instances(source)) if (ti.state === 'success' && !run.xcoms.has(tiId(source, ti.mapIndex))) run.xcoms.set(tiId(source, ti.mapIndex), undefined);
  }
}
