/**
 * A daily DAG that works on its data interval, the slice of time its run covers. Scheduled
 * runs cover [day, next day); `npx kiln dags test examples/dags/daily_report.ts` is a manual
 * run, which covers the last complete day (add --logical-date 2026-11-25 to pick another).
 */
import { dag } from 'kiln';

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
  defaults: { retries: 2, retryDelay: '10s', noRetryOn: ['TypeError'] },
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
