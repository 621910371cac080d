/**
 * The web UI and mapped tasks in a real headless Chromium (Debian's `chromium`, driven by
 * playwright-core), against `kiln scheduler --webserver` over test/fixtures/mapped: a mapped
 * task is one collapsed cell per run (a bar of state colours and `successful/all`) whose
 * counts follow the run live from the event stream (the grid is read once); clicking it lists
 * the instances a page at a time (250 instances: never more than 100 rows), filtered by state,
 * and choosing one shows its try, log and XCom, with a way back to the list.
 *
 * Skipped, with a notice, where /usr/bin/chromium is missing (CI installs it: .ci/run).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO, runKiln, scratchProject } from '../helpers/cli.js';
import { chromiumAvailable, openUiPage } from '../helpers/browser.js';
import { exitOf, startScheduler, until, type SchedulerProcess } from '../fixtures/scheduler/harness.js';

const hasChromium = chromiumAvailable('the browser tests of mapped tasks in the web UI');

describe.skipIf(!hasChromium)('mapped tasks in the web UI, in Chromium', () => {
  const cwd = scratchProject('kiln-mapped-ui-');
  const shots = join(cwd, 'screenshots');
  const env = {
    KILN_DATABASE_URL: `sqlite:${join(cwd, 'kiln.db')}`, KILN_DAGS_FOLDER: join(REPO, 'test/fixtures/mapped'), KILN_SCHEDULER_INTERVAL: '100ms', KILN_PARALLELISM: '4',
  };
  let scheduler: SchedulerProcess;
  let browser: Browser;
  let page: Page;
  let url: string;
  let auth: Record<string, string>;
  const requests: string[] = [];

  beforeAll(async () => {
    mkdirSync(shots, { recursive: true });
    for (const args of [['dags', 'test', 'fan', '--run-id', 'bad', '--params', '{"fail":2}'], ['dags', 'test', 'wide', '--run-id', 'w250', '--params', '{"n":250}']]) {
      const res = await runKiln([...args, '--executor', 'thread'], { cwd, env });
      expect(res.code, res.stderr).toBeLessThanOrEqual(1);
    }
    scheduler = startScheduler(['--executor', 'thread', '--webserver', '127.0.0.1:0'], { cwd, env });
    const printed = await until(() => /kiln web UI: (http:\S+)/.exec(scheduler.output())?.[1], 'the web server URL');
    url = `${new URL(printed).origin}/`;
    auth = { authorization: `Bearer ${new URL(printed).searchParams.get('token')}` };
    ({ browser, page } = await openUiPage({ viewport: { width: 1400, height: 900 }, requests }));
    await page.goto(printed);
    await page.getByTestId('dag-list').getByRole('link', { name: 'fan' }).waitFor();
  });

  afterAll(async () => {
    await browser?.close();
    if (scheduler && scheduler.child.exitCode === null) {
      scheduler.child.kill('SIGTERM');
      await exitOf(scheduler);
    }
    console.info(`mapped web UI screenshots: ${shots}`);
  });

  const cell = (runId: string, taskId: string) => page.locator(`.cell[data-run="${runId}"][data-task="${taskId}"]`);

  it('draws a mapped task as one collapsed cell per run: a bar of state colours and successful/all', async () => {
    await page.getByRole('link', { name: 'fan' }).click();
    await page.getByTestId('grid').waitFor();
    const square = cell('bad', 'square');
    expect(await square.getAttribute('data-mapped')).toBe('true');
    expect(await square.getAttribute('data-state')).toBe('failed');
    expect(await square.getAttribute('data-count')).toBe('3');
    expect(await square.getByTestId('map-count').textContent()).toBe('2/3');
    expect(await square.locator('.bar .seg').evaluateAll((segs) => segs.map((s) => s.getAttribute('data-state')))).toEqual(['success', 'failed']);
    expect(await square.getAttribute('title')).toMatch(/3 mapped instances, 2 success, 1 failed/);
    // One cell for the three instances; the unmapped tasks keep theirs.
    expect(await page.locator('.cell[data-run="bad"]').count()).toBe(3);
    expect(await cell('bad', 'list').getAttribute('data-state')).toBe('success');
    await page.screenshot({ path: join(shots, 'mapped-grid.png') });
  });

  it('follows a live run: the counts move from the event stream, with the grid read once', async () => {
    const gate = join(cwd, 'gate-open');
    const trigger = await fetch(`${url}api/v1/dags/fan/runs`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ runId: 'live1', params: { gateFile: gate } }) });
    expect(trigger.status).toBe(201);
    const square = cell('live1', 'square');
    // Two instances done, the third held by the gate.
    await expect.poll(() => square.getByTestId('map-count').textContent(), { timeout: 30_000 }).toBe('2/3');
    expect(await square.getAttribute('data-state')).toBe('running');
    await page.screenshot({ path: join(shots, 'mapped-running.png') });
    writeFileSync(gate, '');
    await expect.poll(() => square.getAttribute('data-state'), { timeout: 30_000 }).toBe('success');
    expect(await square.getByTestId('map-count').textContent()).toBe('3/3');
    await expect.poll(() => page.getByTestId('run-state-live1').getAttribute('data-state'), { timeout: 30_000 }).toBe('success');
    // The grid was read once; the cell read its instances' states once, then moved them with each event.
    expect(requests.filter((r) => r.includes('/grid'))).toHaveLength(1);
    expect(requests.filter((r) => r.includes('/runs/live1/tasks/square/instances/by-state'))).toHaveLength(1);
    expect(requests.filter((r) => r.includes('/runs/live1/tasks/square') && !r.includes('/by-state'))).toEqual([]);
  });

  it('opens the instance list from the cell, and one instance with its log and XCom', async () => {
    await cell('bad', 'square').click();
    const panel = page.getByTestId('task-panel');
    await panel.getByTestId('instance-list').waitFor();
    expect(await panel.getByTestId('map-progress').textContent()).toBe('2/3');
    expect(await panel.getByTestId('map-counts').textContent()).toBe('2 success, 1 failed');
    const rows = panel.locator('tr.instance');
    expect(await rows.evaluateAll((trs) => trs.map((tr) => [tr.getAttribute('data-map-index'), tr.getAttribute('data-state')]))).toEqual([['0', 'success'], ['1', 'failed'], ['2', 'success']]);
    expect(await panel.getByTestId('xcom').textContent()).toBe(JSON.stringify([1, 9], null, 2));
    await page.screenshot({ path: join(shots, 'mapped-instances.png') });

    await rows.nth(1).click();
    await expect.poll(() => panel.getByTestId('ti-name').textContent()).toBe('square[1]');
    expect(await panel.getByTestId('ti-state').textContent()).toBe('failed');
    await expect.poll(() => panel.getByTestId('log').textContent()).toMatch(/squaring 2 at map index 1/);
    expect(await panel.locator('pre.error').textContent()).toMatch(/item 2 fails on purpose/);
    await page.screenshot({ path: join(shots, 'mapped-instance.png') });
    await panel.getByTestId('back-to-instances').click();
    await panel.getByTestId('instance-list').waitFor();
    await panel.getByTestId('instance-filter').selectOption('failed');
    await expect.poll(() => panel.locator('tr.instance').evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-map-index')))).toEqual(['1']);
    await panel.getByTestId('instance-filter').selectOption('');
    await expect.poll(() => panel.locator('tr.instance').count()).toBe(3);
    await panel.locator('tr.instance[data-map-index="2"]').click();
    await expect.poll(() => panel.getByTestId('xcom').textContent()).toBe('9');
    expect(requests).toContain('GET /api/v1/dags/fan/runs/bad/tasks/square?mapIndex=2');
  });

  it('pages a wide map: never more than 100 instance rows', async () => {
    await page.goto(`${url}#/dags/wide`);
    const each = cell('w250', 'each');
    await expect.poll(() => each.getByTestId('map-count').textContent()).toBe('250/250');
    await each.click();
    const panel = page.getByTestId('task-panel');
    await panel.getByTestId('instance-list').waitFor();
    expect(await panel.locator('tr.instance').count()).toBe(100);
    expect(await panel.getByTestId('instances-range').textContent()).toBe('1–100 of 250');
    await panel.getByTestId('instances-next').click();
    await expect.poll(() => panel.getByTestId('instances-range').textContent()).toBe('101–200 of 250');
    expect(await panel.locator('tr.instance').first().getAttribute('data-map-index')).toBe('100');
    await panel.getByTestId('instances-next').click();
    await expect.poll(() => panel.locator('tr.instance').count()).toBe(50);
    expect(await panel.getByTestId('instances-next').isDisabled()).toBe(true);
    // A filter starts again from the first page.
    await panel.getByTestId('instance-filter').selectOption('success');
    await expect.poll(() => panel.getByTestId('instances-range').textContent()).toBe('1–100 of 250');
    await page.screenshot({ path: join(shots, 'mapped-wide.png') });
  });
});
