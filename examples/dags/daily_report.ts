/**
 * A daily DAG that works on its data interval, the slice of time its run covers. Scheduled
 * runs cover [day, next day); `npx kiln dags test examples/dags/daily_report.ts` is a manual
 * run, which covers the last complete day (add --logical-date 2026-11-25 to pick another).
 * `npx kiln backfill daily_report --from 2026-11-01 --to 2026-11-07` re-runs a week of history.
 *
 * Someone is told when it fails: the failure callbacks run in a worker once the task (or the
 * run) has failed for good, even if the scheduler dies first; their output goes to their own
 * log (`kiln tasks logs daily_report <run-id> report --callbacks`).
 */
import { dag, type CallbackContext } from 'kiln';

/** Stands in for a pager or a chat webhook: in real life, `await fetch(webhookUrl, ...)`. */
function alert(ctx: CallbackContext): void {
  const what = ctx.taskId === null ? `run ${ctx.runId}` : `task ${ctx.taskId} (try ${ctx.tryNumber})`;
  ctx.log.error(`ALERT ${ctx.dagId}: ${what} ${ctx.state}, reason ${ctx.reason}: ${ctx.error ?? ''}`);
}

export default dag({
  id: 'daily_report',
  schedule: '@daily',
  startDate: '2026-11-01',
  catchup: false,
  params: { region: 'eu' },
  paramsSchema: {
    type: 'object',
    properties: { region: { enum: ['eu', 'us'] }, limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } },
    additionalProperties: false,
  },
  defaults: { retries: 2, retryDelay: '10s', noRetryOn: ['TypeError'], onFailure: alert },
  onFailure: alert,
  // A day's report that has not finished in an hour is stuck: stop it and say so.
  dagrunTimeout: '1h',
}, (d) => {
  const extract = d.task('extract', (ctx) => {
    const from = ctx.dataIntervalStart.toISOString();
    const to = ctx.dataIntervalEnd.toISOString();
    ctx.log.info(`reading ${ctx.params.region} orders from ${from} to ${to} (at most ${ctx.params.limit})`);
    const since = ctx.prevDataIntervalEndSuccess;
    if (since !== null && since < ctx.dataIntervalStart) ctx.log.warn(`the last successful run ended at ${since.toISOString()}: there is a gap`);
    return { from, to, orders: 42 };
  });
  d.task('report', async (ctx) => {
    const { from, orders } = await ctx.xcom<{ from: string; orders: number }>('extract');
    return `${orders} orders on ${from.slice(0, 10)} (${ctx.runType} run)`;
  }, { upstream: [extract] });
});
