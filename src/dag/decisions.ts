/**
 * What a finished branch or short-circuit decides for the tasks below it, from its stored
 * result (its XCom), so the decision outlives the process: a task it skipped and that is
 * cleared by hand is skipped again unless the decider is cleared too. Pure.
 *
 * - branch (Airflow's skip_all_except): every direct downstream not chosen is skipped, unless
 *   it also lies downstream of a chosen task (a join right below the branch runs on its
 *   trigger rule).
 * - shortCircuit, falsy result: every task downstream is skipped (ignoreDownstreamTriggerRules,
 *   the default), or only the direct downstreams (later trigger rules apply).
 */
import type { ResolvedTaskOptions } from './types.js';

type Task = { taskId: string } & Pick<ResolvedTaskOptions, 'upstream' | 'kind' | 'ignoreDownstreamTriggerRules'>;

/** The tasks a decider skips, given its result; empty for a task that decides nothing. */
export function skippedBy(decider: Task, result: unknown, downstream: ReadonlyMap<string, readonly string[]>): Set<string> {
  const direct = downstream.get(decider.taskId) ?? [];
  if (decider.kind === 'branch') {
    const chosen = new Set(Array.isArray(result) ? (result as unknown[]).filter((x): x is string => typeof x === 'string') : []);
    const keep = descendants([...chosen], downstream);
    for (const c of chosen) keep.add(c);
    return new Set(direct.filter((d) => !keep.has(d)));
  }
  if (decider.kind === 'shortCircuit' && !result) {
    return decider.ignoreDownstreamTriggerRules === false ? new Set(direct) : descendants([decider.taskId], downstream);
  }
  return new Set();
}

/** Every task below `from` (not `from` itself). */
export function descendants(from: readonly string[], downstream: ReadonlyMap<string, readonly string[]>): Set<string> {
  const seen = new Set<string>();
  const stack = [...from];
  while (stack.length > 0) {
    for (const d of downstream.get(stack.pop()!) ?? []) {
      if (seen.has(d)) continue;
      seen.add(d);
      stack.push(d);
    }
  }
  return seen;
}

/** True for the kinds whose result decides what runs below them. */
export function decides(task: Pick<ResolvedTaskOptions, 'kind'>): boolean {
  return task.kind === 'branch' || task.kind === 'shortCircuit';
}
