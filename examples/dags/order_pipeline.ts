/**
 * Picking a path at run time and waiting for something outside:
 * - `wait_for_export` is a sensor in reschedule mode: each poke is a short try that gives its
 *   worker slot back while it waits, so it never blocks other tasks (try `--parallelism 1`);
 * - `route` is a branch: big orders go to `manual_review`, the rest to `auto_approve`;
 *   `notify` joins both paths and runs whichever was taken;
 * - `only_on_weekdays` short-circuits: on a weekend run everything after it is skipped.
 *
 *   npx kiln dags test examples/dags/order_pipeline.ts
 *   npx kiln dags test examples/dags/order_pipeline.ts --params '{"orders": 500}'
 */
import { existsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dag } from 'kiln';

const exportFile = (runId: string) => join(tmpdir(), `kiln-orders-${runId.replace(/[^A-Za-z0-9]/g, '_')}.csv`);

export default dag({ id: 'order_pipeline', schedule: '@daily', startDate: '2026-11-01', params: { orders: 42 } }, (d) => {
  // Stands in for another system producing a file some time later.
  d.task('export', async (ctx) => {
    await new Promise((resolve) => setTimeout(resolve, 1500));
    writeFileSync(exportFile(ctx.runId), `orders\n${ctx.params.orders}\n`);
  });
  const waitForExport = d.sensor('wait_for_export', (ctx) => existsSync(exportFile(ctx.runId)) && exportFile(ctx.runId), {
    mode: 'reschedule', pokeInterval: '500ms', timeout: '10m',
  });
  const route = d.branch('route', (ctx) => (Number(ctx.params.orders) > 100 ? 'manual_review' : 'auto_approve'), { upstream: [waitForExport] });
  const review = d.task('manual_review', (ctx) => ctx.log.info(`${ctx.params.orders} orders: a person looks at them`), { upstream: [route] });
  const approve = d.task('auto_approve', (ctx) => ctx.log.info(`${ctx.params.orders} orders approved`), { upstream: [route] });
  d.task('notify', () => 'done', { upstream: [review, approve], triggerRule: 'none_failed_min_one_success' });

  const weekdays = d.shortCircuit('only_on_weekdays', (ctx) => ![0, 6].includes(ctx.logicalDate.getUTCDay()));
  d.chain(weekdays, d.task('send_report', () => 'sent'), d.task('archive', () => 'archived'));
});
