import { dag } from 'kiln';

/**
 * Trigger rules and retries. `flaky` fails on its first try and succeeds on the second;
 * `broken` always fails, so `cleanup` (all_done) still runs, `on_failure` (one_failed) runs,
 * `publish` (all_success) ends upstream_failed, and `maybe` skips itself.
 */
export default dag({ id: 'trigger_rules', schedule: null, defaults: { retryDelay: '100ms' } }, (d) => {
  const flaky = d.task(
    'flaky',
    async (ctx) => {
      if (ctx.tryNumber === 1) throw new Error('transient failure, will retry');
      return `succeeded on try ${ctx.tryNumber}`;
    },
    { retries: 2, retryExponentialBackoff: true },
  );
  const broken = d.task('broken', async (ctx) => ctx.fail('this input can never work: no retry'), { retries: 3 });
  const maybe = d.task('maybe', async (ctx) => ctx.skip('nothing to do today'));
  d.task('publish', async () => 'published', { upstream: [flaky, broken] });
  d.task('on_failure', async (ctx) => ctx.log.warn('an upstream failed; alerting'), { upstream: [flaky, broken], triggerRule: 'one_failed' });
  d.task('cleanup', async () => 'cleaned', { upstream: [flaky, broken, maybe], triggerRule: 'all_done' });
  d.task('after_skip', async () => 'ran', { upstream: [maybe], triggerRule: 'none_failed' });
});
