/**
 * Fanning out, picking a path at run time and waiting for something outside:
 * - `wait_for_export` is a sensor in reschedule mode: each poke is a short try that gives its
 *   worker slot back while it waits, so it never blocks other tasks (try `--parallelism 1`);
 * - `price` is a mapped task: one instance per order `read_orders` returned (`ctx.item`), each
 *   with its own tries and log; `route` reads all their results at once, in order;
 * - `route` is a branch: a big total goes to `manual_review`, the rest to `auto_approve`;
 *   `notify` joins both paths and runs whichever was taken;
 * - `only_on_weekdays` short-circuits: on a weekend run everything after it is skipped.
 *
 *   npx kiln dags test examples/dags/order_pipeline.ts
 *   npx kiln dags test examples/dags/order_pipeline.ts --params '{"orders": 80}'
 */
import { existsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dag } from 'kiln';

const exportFile = (runId: string) => join(tmpdir(), `kiln-orders-${runId.replace(/[^A-Za-z0-9]/g, '_')}.csv`);

export default dag({ id: 'order_pipeline', schedule: '@daily', startDate: '2026-11-01', params: { orders: 12 } }, (d) => {
  // Stands in for another system producing a file some time later.
  d.task('export', async (ctx) => {
    await new Promise((resolve) => setTimeout(resolve, 1500));
    writeFileSync(exportFile(ctx.runId), `orders\n${ctx.params.orders}\n`);
  });
  const waitForExport = d.sensor('wait_for_export', (ctx) => existsSync(exportFile(ctx.runId)) && exportFile(ctx.runId), {
    mode: 'reschedule', pokeInterval: '500ms', timeout: '10m',
  });
  const orders = d.task('read_orders', (ctx) => Array.from({ length: Number(ctx.params.orders) }, (_, i) => ({ id: i + 1, quantity: (i % 4) + 1 })), { upstream: [waitForExport] });
  const price = d.map('price', (ctx) => {
    const order = ctx.item as { id: number; quantity: number };
    return order.quantity * 9.5;
  }, { over: orders, retries: 2 });
  const route = d.branch('route', async (ctx) => {
    const total = (await ctx.xcom<number[]>('price')).reduce((a, b) => a + b, 0);
    ctx.log.info(`total ${total}`);
    return total > 500 ? 'manual_review' : 'auto_approve';
  }, { upstream: [price] });
  const review = d.task('manual_review', (ctx) => ctx.log.info(`${ctx.params.orders} orders: a person looks at them`), { upstream: [route] });
  const approve = d.task('auto_approve', (ctx) => ctx.log.info(`${ctx.params.orders} orders approved`), { upstream: [route] });
  d.task('notify', () => 'done', { upstream: [review, approve], triggerRule: 'none_failed_min_one_success' });

  const weekdays = d.shortCircuit('only_on_weekdays', (ctx) => ![0, 6].includes(ctx.logicalDate.getUTCDay()));
  d.chain(weekdays, d.task('send_report', () => 'sent'), d.task('archive', () => 'archived'));
});
