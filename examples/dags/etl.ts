import { dag } from 'kiln';

/** Values flow between tasks through XCom: each task's return value. */
export default dag(
  { id: 'etl', schedule: '@hourly', startDate: '2026-01-01', catchup: false, defaults: { retries: 1, retryDelay: '30s' } },
  (d) => {
    const extract = d.task('extract', async () => [1, 2, 3]);
    const double = d.task('double', async (ctx) => (await ctx.xcom<number[]>('extract')).map((x) => x * 2), { upstream: [extract] });
    const total = d.task('total', async (ctx) => (await ctx.xcom<number[]>('double')).reduce((a, b) => a + b, 0), { upstream: [double] });
    d.task(
      'report',
      async (ctx) => {
        const sum = await ctx.xcom<number>('total');
        ctx.log.info(`total of doubled values: ${sum}`);
        return { sum };
      },
      { upstream: [total], triggerRule: 'all_done' },
    );
  },
);
