/**
 * A callback run as if it were a task: the runner finds the hook in the DAG module (the
 * task's onSuccess/onFailure/onRetry/onSkipped, or the DAG's onSuccess/onFailure) and wraps
 * it in a task definition, so it gets the same log capture, abort signal, time limit and
 * supervision as a try. The callback's return value is ignored; a throw is reported as a
 * failed callback (logged; it changes no state).
 */
import type { CallbackContext, CallbackFn, Dag, TaskContext, TaskDefinition } from '../src/dag/types.js';
import type { TaskWork } from '../src/protocol/messages.js';

const HOOK = { success: 'onSuccess', failure: 'onFailure', retry: 'onRetry', skipped: 'onSkipped' } as const;

/** The definition to run for `work.callback`, or the reason there is none (the DAG file changed?). */
export function callbackDefinition(dag: Dag, work: TaskWork): TaskDefinition | string {
  const spec = work.callback!;
  const hookName = HOOK[spec.kind];
  let hook: CallbackFn | null | undefined;
  let base: TaskDefinition | undefined;
  if (spec.scope === 'dag') {
    hook = (dag.options as Record<string, unknown>)[hookName] as CallbackFn | undefined;
    base = dag.tasks.values().next().value;
  } else {
    base = dag.tasks.get(work.taskId);
    if (base === undefined) return `DAG '${work.dagId}' has no task '${work.taskId}'`;
    hook = base[hookName];
  }
  if (typeof hook !== 'function') return `${spec.scope === 'dag' ? `DAG '${work.dagId}'` : `task '${work.taskId}'`} has no ${hookName} callback in ${work.dagFile}`;
  const call = hook;
  const fn = async (ctx: TaskContext): Promise<void> => {
    const cbCtx: CallbackContext = {
      kind: spec.kind,
      dagId: work.dagId,
      runId: work.runId,
      taskId: spec.scope === 'dag' ? null : work.taskId,
      mapIndex: spec.scope === 'dag' ? null : (work.mapIndex ?? -1),
      tryNumber: spec.scope === 'dag' ? null : work.tryNumber,
      maxTries: spec.scope === 'dag' ? null : work.maxTries,
      state: spec.state,
      reason: spec.reason,
      error: spec.error,
      exitCode: spec.exitCode,
      signal: spec.signal,
      params: ctx.params,
      runType: ctx.runType,
      logicalDate: ctx.logicalDate,
      dataIntervalStart: ctx.dataIntervalStart,
      dataIntervalEnd: ctx.dataIntervalEnd,
      log: ctx.log,
      abortSignal: ctx.signal,
    };
    await call(cbCtx);
  };
  // The task's own retry policy has no say over a callback.
  return { ...(base ?? EMPTY), taskId: work.taskId, fn, retryOn: null, noRetryOn: [] };
}

const EMPTY = { upstream: [], env: [], noRetryOn: [] } as unknown as TaskDefinition;
