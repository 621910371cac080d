import { describe, expect, it } from 'vitest';
import { evaluateTriggerRule, upstreamCounts, type TriggerDecision, type UpstreamCounts } from '../../src/dag/trigger-rules.js';
import { TRIGGER_RULES, type TriggerRule } from '../../src/dag/types.js';

/** Builds consistent counts; `pending` upstreams are not finished yet (none/queued/running/up_for_retry). */
function counts(c: { success?: number; failed?: number; skipped?: number; upstreamFailed?: number; pending?: number }): UpstreamCounts {
  const success = c.success ?? 0;
  const failed = c.failed ?? 0;
  const skipped = c.skipped ?? 0;
  const upstreamFailed = c.upstreamFailed ?? 0;
  const done = success + failed + skipped + upstreamFailed;
  return { success, failed, skipped, upstreamFailed, done, total: done + (c.pending ?? 0) };
}

type Case = [name: string, rule: TriggerRule, c: Parameters<typeof counts>[0], expected: TriggerDecision];

/**
 * Cases from Airflow's tests/ti_deps/deps/test_trigger_rule_dep.py (TestTriggerRuleDep), with
 * flag_upstream_failed=True. Airflow's fixtures patch `_UpstreamTIStates` with counts that are
 * not always consistent with the DAG (e.g. 'removed' upstreams, or done < the sum of states);
 * each case here is the consistent equivalent without 'removed'. "passes" in Airflow is 'run'
 * here; an Airflow expected_ti_state of SKIPPED/UPSTREAM_FAILED is 'skipped'/'upstream_failed';
 * a failing dep with no state change is 'wait'.
 */
const airflowCases: Case[] = [
  ['test_always_tr', 'always', { pending: 1 }, 'run'],
  ['test_one_success_tr_success', 'one_success', { success: 1, skipped: 2, failed: 3, upstreamFailed: 2 }, 'run'],
  ['test_one_success_tr_failure', 'one_success', { skipped: 1, failed: 1, upstreamFailed: 1 }, 'upstream_failed'],
  ['test_one_success_tr_failure_all_skipped', 'one_success', { skipped: 2 }, 'skipped'],
  ['test_one_failure_tr_failure', 'one_failed', { success: 2 }, 'skipped'],
  ['test_one_failure_tr_success', 'one_failed', { skipped: 2, failed: 2 }, 'run'],
  ['test_one_failure_tr_success_no_failed', 'one_failed', { skipped: 2, upstreamFailed: 2 }, 'run'],
  ['test_one_done_tr_success', 'one_done', { success: 2 }, 'run'],
  ['test_one_done_tr_success_with_failed', 'one_done', { failed: 2 }, 'run'],
  ['test_one_done_tr_skip', 'one_done', { skipped: 2 }, 'skipped'],
  ['test_one_done_tr_upstream_failed', 'one_done', { upstreamFailed: 2 }, 'skipped'],
  ['test_all_success_tr_success', 'all_success', { success: 1 }, 'run'],
  ['test_all_success_tr_failure', 'all_success', { success: 1, failed: 1 }, 'upstream_failed'],
  ['test_all_success_tr_skip', 'all_success', { success: 1, skipped: 1 }, 'skipped'],
  ['test_none_failed_tr_success', 'none_failed', { success: 1, skipped: 1 }, 'run'],
  ['test_none_failed_tr_failure', 'none_failed', { success: 1, skipped: 1, failed: 1 }, 'upstream_failed'],
  ['test_none_failed_tr_failure_with_upstream_failure', 'none_failed', { success: 1, skipped: 1, upstreamFailed: 1 }, 'upstream_failed'],
  ['test_none_failed_min_one_success_tr_success', 'none_failed_min_one_success', { success: 1, skipped: 1 }, 'run'],
  ['test_none_failed_min_one_success_tr_skipped', 'none_failed_min_one_success', { skipped: 2 }, 'skipped'],
  ['test_none_failed_min_one_success_tr_failure', 'none_failed_min_one_success', { success: 1, skipped: 1, failed: 1 }, 'upstream_failed'],
  ['test_none_failed_min_one_success_tr_upstream_failure', 'none_failed_min_one_success', { success: 1, skipped: 1, upstreamFailed: 1 }, 'upstream_failed'],
  ['test_all_failed_tr_success', 'all_failed', { failed: 2 }, 'run'],
  ['test_all_failed_tr_failure', 'all_failed', { success: 2 }, 'skipped'],
  ['test_all_done_tr_success', 'all_done', { success: 2 }, 'run'],
  ['test_all_done_tr_failure', 'all_done', { success: 1, pending: 1 }, 'wait'],
  ['test_all_skipped_tr_failure', 'all_skipped', { success: 1 }, 'skipped'],
  ['test_all_skipped_tr_failure_upstream_failed', 'all_skipped', { upstreamFailed: 1 }, 'skipped'],
  ['test_all_skipped_tr_success', 'all_skipped', { skipped: 3 }, 'run'],
  ['test_none_skipped_tr_success', 'none_skipped', { success: 2, failed: 1 }, 'run'],
  ['test_none_skipped_tr_failure', 'none_skipped', { success: 1, skipped: 1 }, 'skipped'],
  ['test_none_skipped_tr_failure_empty', 'none_skipped', { pending: 1 }, 'wait'],
  ['test_all_done_min_one_success_with_mixed_success_and_failure', 'all_done_min_one_success', { success: 1, failed: 1 }, 'run'],
  ['test_all_done_min_one_success_with_all_successful_upstreams', 'all_done_min_one_success', { success: 2 }, 'run'],
  ['test_all_done_min_one_success_with_success_and_skipped_upstream', 'all_done_min_one_success', { success: 1, skipped: 1 }, 'skipped'],
  ['test_all_done_min_one_success_with_all_failed_upstreams', 'all_done_min_one_success', { failed: 2 }, 'upstream_failed'],
  ['test_all_done_min_one_success_with_upstream_failed_cascade', 'all_done_min_one_success', { upstreamFailed: 1 }, 'upstream_failed'],
];

/**
 * Upstreams still running. Not separate Airflow tests, but what trigger_rule_dep.py's
 * _evaluate_direct_relatives does before `upstream_done`: the flagged states that do not check
 * upstream_done fire early, the one_* rules pass early, everything else waits.
 */
const partialCases: Case[] = [
  // all_success fails/skips early, otherwise waits for every upstream.
  ['all_success: a failure flags upstream_failed at once', 'all_success', { success: 1, failed: 1, pending: 2 }, 'upstream_failed'],
  ['all_success: an upstream_failed flags upstream_failed at once', 'all_success', { upstreamFailed: 1, pending: 1 }, 'upstream_failed'],
  ['all_success: failure beats skip', 'all_success', { skipped: 1, failed: 1 }, 'upstream_failed'],
  ['all_success: a skip flags skipped at once', 'all_success', { skipped: 1, pending: 1 }, 'skipped'],
  ['all_success: waits for the rest', 'all_success', { success: 2, pending: 1 }, 'wait'],
  ['all_success: nothing done yet', 'all_success', { pending: 3 }, 'wait'],
  // all_failed
  ['all_failed: a success skips at once', 'all_failed', { success: 1, pending: 2 }, 'skipped'],
  ['all_failed: a skip skips at once', 'all_failed', { skipped: 1, failed: 1, pending: 1 }, 'skipped'],
  ['all_failed: waits for the rest', 'all_failed', { failed: 1, pending: 1 }, 'wait'],
  ['all_failed: failed and upstream_failed mixed', 'all_failed', { failed: 1, upstreamFailed: 1 }, 'run'],
  // all_done never flags
  ['all_done: waits while one is running', 'all_done', { failed: 2, pending: 1 }, 'wait'],
  ['all_done: runs after failures', 'all_done', { failed: 1, upstreamFailed: 1, skipped: 1 }, 'run'],
  ['all_done: runs when everything was skipped', 'all_done', { skipped: 2 }, 'run'],
  // all_done_min_one_success
  ['all_done_min_one_success: a skip skips at once', 'all_done_min_one_success', { skipped: 1, pending: 2 }, 'skipped'],
  ['all_done_min_one_success: success but others running', 'all_done_min_one_success', { success: 1, pending: 1 }, 'wait'],
  ['all_done_min_one_success: failure but others running', 'all_done_min_one_success', { failed: 1, pending: 1 }, 'wait'],
  ['all_done_min_one_success: success with upstream_failed', 'all_done_min_one_success', { success: 1, upstreamFailed: 1 }, 'run'],
  // one_success fires early
  ['one_success: fires on the first success', 'one_success', { success: 1, pending: 3 }, 'run'],
  ['one_success: a failure does not decide while others run', 'one_success', { failed: 1, pending: 1 }, 'wait'],
  ['one_success: skips do not decide while others run', 'one_success', { skipped: 2, pending: 1 }, 'wait'],
  ['one_success: nothing done yet', 'one_success', { pending: 2 }, 'wait'],
  ['one_success: all failed', 'one_success', { failed: 2 }, 'upstream_failed'],
  // one_failed fires early
  ['one_failed: fires on the first failure', 'one_failed', { failed: 1, pending: 3 }, 'run'],
  ['one_failed: fires on the first upstream_failed', 'one_failed', { upstreamFailed: 1, pending: 1 }, 'run'],
  ['one_failed: successes do not decide while others run', 'one_failed', { success: 2, pending: 1 }, 'wait'],
  ['one_failed: all skipped', 'one_failed', { skipped: 2 }, 'skipped'],
  // one_done fires early on success or failed, not on skipped/upstream_failed
  ['one_done: fires on the first success', 'one_done', { success: 1, pending: 2 }, 'run'],
  ['one_done: fires on the first failure', 'one_done', { failed: 1, pending: 2 }, 'run'],
  ['one_done: upstream_failed is not done for it', 'one_done', { upstreamFailed: 1, pending: 1 }, 'wait'],
  ['one_done: skipped is not done for it', 'one_done', { skipped: 1, pending: 1 }, 'wait'],
  ['one_done: only skipped and upstream_failed', 'one_done', { skipped: 1, upstreamFailed: 1 }, 'skipped'],
  // none_failed
  ['none_failed: a failure flags upstream_failed at once', 'none_failed', { success: 1, failed: 1, pending: 1 }, 'upstream_failed'],
  ['none_failed: waits for the rest', 'none_failed', { success: 1, skipped: 1, pending: 1 }, 'wait'],
  ['none_failed: runs when all upstreams were skipped', 'none_failed', { skipped: 2 }, 'run'],
  // none_failed_min_one_success
  ['none_failed_min_one_success: a failure flags upstream_failed at once', 'none_failed_min_one_success', { failed: 1, pending: 2 }, 'upstream_failed'],
  ['none_failed_min_one_success: failure beats all-skipped', 'none_failed_min_one_success', { skipped: 1, upstreamFailed: 1 }, 'upstream_failed'],
  ['none_failed_min_one_success: success but others running', 'none_failed_min_one_success', { success: 1, pending: 1 }, 'wait'],
  ['none_failed_min_one_success: skips but others running', 'none_failed_min_one_success', { skipped: 2, pending: 1 }, 'wait'],
  ['none_failed_min_one_success: all succeeded', 'none_failed_min_one_success', { success: 3 }, 'run'],
  // none_skipped
  ['none_skipped: a skip skips at once', 'none_skipped', { skipped: 1, pending: 2 }, 'skipped'],
  ['none_skipped: waits for the rest', 'none_skipped', { failed: 1, pending: 1 }, 'wait'],
  ['none_skipped: runs after failures', 'none_skipped', { failed: 1, upstreamFailed: 1 }, 'run'],
  // all_skipped
  ['all_skipped: a success skips at once', 'all_skipped', { success: 1, pending: 2 }, 'skipped'],
  ['all_skipped: a failure skips at once', 'all_skipped', { failed: 1, pending: 2 }, 'skipped'],
  ['all_skipped: waits for the rest', 'all_skipped', { skipped: 1, pending: 1 }, 'wait'],
  // always
  ['always: runs whatever the upstreams did', 'always', { failed: 1, upstreamFailed: 1, skipped: 1 }, 'run'],
];

describe('evaluateTriggerRule', () => {
  it.each(airflowCases)('Airflow %s (%s)', (_name, rule, c, expected) => {
    expect(evaluateTriggerRule(rule, counts(c))).toBe(expected);
  });

  it.each(partialCases)('%s (%s)', (_name, rule, c, expected) => {
    expect(evaluateTriggerRule(rule, counts(c))).toBe(expected);
  });

  // Airflow test_no_upstream_tasks: "If the TI has no upstream TIs then there is nothing to check".
  it.each(TRIGGER_RULES.map((r) => [r]))('a task with no upstreams runs (%s)', (rule) => {
    expect(evaluateTriggerRule(rule, counts({}))).toBe('run');
  });

  it('covers all 12 rules in the tables', () => {
    const covered = new Set([...airflowCases, ...partialCases].map(([, rule]) => rule));
    expect([...covered].sort()).toEqual([...TRIGGER_RULES].sort());
  });

  // Airflow test_unknown_tr: "No strategy to evaluate trigger rule".
  it('rejects an unknown rule with DAG_INVALID', () => {
    expect(() => evaluateTriggerRule('Unknown Trigger Rule' as TriggerRule, counts({ success: 1 }))).toThrow(
      expect.objectContaining({ code: 'DAG_INVALID', message: expect.stringContaining('Unknown Trigger Rule') }),
    );
  });

  /** Every combination of up to 4 upstreams over {success, failed, skipped, upstream_failed, pending}. */
  function* allCombos(max = 4): Generator<UpstreamCounts> {
    for (let success = 0; success <= max; success++)
      for (let failed = 0; success + failed <= max; failed++)
        for (let skipped = 0; success + failed + skipped <= max; skipped++)
          for (let upstreamFailed = 0; success + failed + skipped + upstreamFailed <= max; upstreamFailed++)
            for (let pending = 0; success + failed + skipped + upstreamFailed + pending <= max; pending++)
              yield counts({ success, failed, skipped, upstreamFailed, pending });
  }

  it('never waits once every upstream is finished (a run cannot hang)', () => {
    for (const rule of TRIGGER_RULES) {
      for (const c of allCombos()) {
        if (c.done === c.total) expect(evaluateTriggerRule(rule, c), `${rule} ${JSON.stringify(c)}`).not.toBe('wait');
      }
    }
  });

  it('all_done and always never skip or fail a task; only rules that need a success mark upstream_failed', () => {
    const neverUpstreamFailed: TriggerRule[] = ['all_done', 'always', 'all_failed', 'all_skipped', 'one_failed', 'one_done', 'none_skipped'];
    for (const c of allCombos()) {
      for (const rule of ['all_done', 'always'] as const) expect(['run', 'wait']).toContain(evaluateTriggerRule(rule, c));
      for (const rule of neverUpstreamFailed) expect(evaluateTriggerRule(rule, c)).not.toBe('upstream_failed');
    }
  });

  it('all_success runs exactly when every upstream succeeded', () => {
    for (const c of allCombos()) {
      expect(evaluateTriggerRule('all_success', c) === 'run').toBe(c.success === c.total);
    }
  });
});

describe('upstreamCounts', () => {
  it('counts finished states and treats the others as not done', () => {
    expect(
      upstreamCounts(['success', 'success', 'failed', 'skipped', 'upstream_failed', 'none', 'scheduled', 'queued', 'running', 'up_for_retry']),
    ).toEqual({ success: 2, failed: 1, skipped: 1, upstreamFailed: 1, done: 5, total: 10 });
  });

  it('is empty for no upstreams', () => {
    expect(upstreamCounts([])).toEqual({ success: 0, failed: 0, skipped: 0, upstreamFailed: 0, done: 0, total: 0 });
  });

  it('accepts any iterable', () => {
    const states = new Map([['a', 'success' as const], ['b', 'running' as const]]);
    expect(upstreamCounts(states.values())).toMatchObject({ success: 1, done: 1, total: 2 });
  });

  it('an upstream waiting for a retry holds back all_success', () => {
    expect(evaluateTriggerRule('all_success', upstreamCounts(['success', 'up_for_retry']))).toBe('wait');
    expect(evaluateTriggerRule('one_failed', upstreamCounts(['success', 'up_for_retry']))).toBe('wait');
  });
});
