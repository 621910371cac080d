/**
 * Trigger rules: given the states of a task's direct upstreams, decide whether the task may
 * run now, must wait, or is settled without running (skipped / upstream_failed).
 *
 * This mirrors Apache Airflow's scheduler (airflow/ti_deps/deps/trigger_rule_dep.py,
 * `TriggerRuleDep._evaluate_direct_relatives`, Airflow 2.9+/3.x) as evaluated with
 * `flag_upstream_failed=True`, without setup/teardown tasks. Every instance of a mapped upstream
 * counts as one upstream; a 'removed' instance counts as none. Airflow first computes a terminal state to flag (upstream_failed or
 * skipped), which may happen before every upstream is done, and then separately checks
 * whether the rule is met; a flagged state wins. Both steps are folded into one decision here.
 *
 * Pure: no I/O, no clock.
 */
import { DagValidationError } from '../errors.js';
import type { TiState, TriggerRule } from './types.js';

export interface UpstreamCounts {
  success: number;
  failed: number;
  skipped: number;
  upstreamFailed: number;
  /** success + failed + skipped + upstreamFailed: the upstreams in a finished state. */
  done: number;
  /** Number of direct upstreams, finished or not. */
  total: number;
}

export type TriggerDecision = 'wait' | 'run' | 'skipped' | 'upstream_failed';

/**
 * Counts a task's direct upstream states. Unfinished states (none, queued, running,
 * up_for_retry, ...) count only toward `total`; a removed mapped instance is no upstream at all.
 */
export function upstreamCounts(states: Iterable<TiState>): UpstreamCounts {
  const c: UpstreamCounts = { success: 0, failed: 0, skipped: 0, upstreamFailed: 0, done: 0, total: 0 };
  for (const s of states) {
    if (s === 'removed') continue;
    c.total++;
    switch (s) {
      case 'success':
        c.success++;
        break;
      case 'failed':
        c.failed++;
        break;
      case 'skipped':
        c.skipped++;
        break;
      case 'upstream_failed':
        c.upstreamFailed++;
        break;
      default:
        continue; // not finished: not counted in `done`
    }
    c.done++;
  }
  return c;
}

export function evaluateTriggerRule(rule: TriggerRule, c: UpstreamCounts): TriggerDecision {
  // Airflow: "The task instance did not have any upstream tasks." -> the dep passes, whatever the rule.
  if (c.total <= 0) return 'run';

  const { success, failed, skipped, upstreamFailed, total } = c;
  const allDone = c.done >= total; // Airflow: upstream_done = done >= upstream
  const anyFailed = failed + upstreamFailed > 0;

  switch (rule) {
    case 'always':
      // Airflow: "The task had a always trigger rule set." Passes without looking at upstreams.
      return 'run';

    case 'all_success':
      // Airflow: any failed/upstream_failed -> UPSTREAM_FAILED, else any skipped -> SKIPPED, both
      // flagged as soon as seen (fails early, without waiting for the other upstreams).
      // Runs only when every upstream succeeded.
      if (anyFailed) return 'upstream_failed';
      if (skipped > 0) return 'skipped';
      return success >= total ? 'run' : 'wait';

    case 'all_failed':
      // Airflow: any success or skipped -> SKIPPED (early). Runs when every upstream is
      // failed or upstream_failed.
      if (success + skipped > 0) return 'skipped';
      return failed + upstreamFailed >= total ? 'run' : 'wait';

    case 'all_done':
      // Airflow: never flags a state; runs once every upstream is finished, whatever the outcome.
      return allDone ? 'run' : 'wait';

    case 'all_done_min_one_success':
      // Airflow (3.1+): skipped upstreams are not "done" for this rule: any skipped -> SKIPPED
      // (early). Once all (non-skipped) upstreams are done: no success -> UPSTREAM_FAILED,
      // otherwise run. Failures alone do not stop it as long as one upstream succeeded.
      if (skipped > 0) return 'skipped';
      if (!allDone) return 'wait';
      return success > 0 ? 'run' : 'upstream_failed';

    case 'one_success':
      // Airflow: fires as soon as one upstream succeeded (does not wait for the rest). Once all
      // upstreams are done with no success: all skipped -> SKIPPED, otherwise UPSTREAM_FAILED.
      if (success > 0) return 'run';
      if (!allDone) return 'wait';
      return c.done === skipped ? 'skipped' : 'upstream_failed';

    case 'one_failed':
      // Airflow: fires as soon as one upstream is failed or upstream_failed. All done with no
      // failure -> SKIPPED.
      if (anyFailed) return 'run';
      return allDone ? 'skipped' : 'wait';

    case 'one_done':
      // Airflow: fires as soon as one upstream succeeded or failed (upstream_failed and skipped
      // do not count). All done with neither -> SKIPPED.
      if (success + failed > 0) return 'run';
      return allDone ? 'skipped' : 'wait';

    case 'none_failed':
      // Airflow: any failed/upstream_failed -> UPSTREAM_FAILED (early). Runs when every upstream
      // succeeded or was skipped, so it survives skipped branches.
      if (anyFailed) return 'upstream_failed';
      return success + skipped >= total ? 'run' : 'wait';

    case 'none_failed_min_one_success':
      // Airflow: any failed/upstream_failed -> UPSTREAM_FAILED (early); every upstream skipped ->
      // SKIPPED. Runs when every upstream succeeded or was skipped and at least one succeeded
      // (the usual join after a branch). Without 'removed', all done + no failure + not all
      // skipped implies a success; the last line keeps Airflow's explicit guard anyway.
      if (anyFailed) return 'upstream_failed';
      if (skipped >= total) return 'skipped';
      if (success + skipped < total) return 'wait';
      return success > 0 ? 'run' : 'upstream_failed';

    case 'none_skipped':
      // Airflow: any skipped -> SKIPPED (early). Otherwise waits for all upstreams to be done;
      // failed/upstream_failed upstreams are fine.
      if (skipped > 0) return 'skipped';
      return allDone ? 'run' : 'wait';

    case 'all_skipped':
      // Airflow: any success, failed or upstream_failed -> SKIPPED (early). Runs when every
      // upstream was skipped.
      if (success + failed + upstreamFailed > 0) return 'skipped';
      return skipped >= total ? 'run' : 'wait';

    default: {
      // Airflow: "No strategy to evaluate trigger rule ..." (the dep never passes). Authoring
      // validation rejects unknown rules, so this is unreachable for a valid DAG.
      const unknown: never = rule;
      throw new DagValidationError(`unknown trigger rule ${JSON.stringify(unknown)}`, { option: 'triggerRule' });
    }
  }
}
