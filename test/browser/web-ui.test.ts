/**
 * The web UI in a real headless Chromium (Debian's `chromium`, driven by playwright-core; no
 * browser is downloaded), against `kiln scheduler --webserver`: the DAG list with its
 * import-error banner, a run triggered from the params form whose cells turn green live with
 * no polling (the grid is requested once), a try's log with markup kept as text, a clear
 * confirmed after its dry run, and the "disconnected" mark when the server goes away, gone
 * once it is back. Screenshots go to the scratch project's screenshots/ folder.
 *
 * Skipped, with a notice, where /usr/bin/chromium is missing (CI installs it: .ci/run).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scratchProject } from '../helpers/cli.js';
import { chromiumAvailable, openUiPage } from '../helpers/browser.js';
import { exitOf, startScheduler, until, type SchedulerProcess } from '../fixtures/scheduler/harness.js';
import { WEB_FIXTURES } from '../server/web-setup.js';

const hasChromium = chromiumAvailable('the browser tests of the web UI');

describe.skipIf(!hasChromium)('web UI in Chromium', () => {
  const cwd = scratchProject('kiln-web-ui-');
  const shots = join(cwd, 'screenshots');
  const env = {
    KILN_DATABASE_URL: `sqlite:${join(cwd, 'kiln.db')}`, KILN_DAGS_FOLDER: WEB_FIXTURES, KILN_SCHEDULER_INTERVAL: '100ms', KILN_PARALLELISM: '4',
  };
  let scheduler: SchedulerProcess;
  let browser: Browser;
  let page: Page;
  /** The server's address; `token` authorizes the test's own API calls. */
  let url: string;
  let auth: Record<string, string>;
  const requests: string[] = [];
  let printedUrl: string;

  const startWithWeb = async (address: string) => {
    const p = startScheduler(['--executor', 'thread', '--webserver', address], { cwd, env });
    const printed = await until(() => /kiln web UI: (http:\S+)/.exec(p.output())?.[1], 'the web server URL');
    return { p, printed, url: `${new URL(printed).origin}/`, token: new URL(printed).searchParams.get('token')! };
  };

  beforeAll(async () => {
    mkdirSync(shots, { recursive: true });
    const started = await startWithWeb('127.0.0.1:0');
    ({ p: scheduler, url } = started);
    auth = { authorization: `Bearer ${started.token}` };
    printedUrl = started.printed;
    // The scheduler records the DAG folder on its first pass.
    await until(async () => ((await (await fetch(`${url}api/v1/dags`, { headers: auth })).json()) as { dags: unknown[] }).dags.length > 0, 'the DAG folder to be read');
    ({ browser, page } = await openUiPage({ viewport: { width: 1400, height: 900 }, requests, withQuery: false }));
  });

  afterAll(async () => {
    await browser?.close();
    if (scheduler && scheduler.child.exitCode === null) {
      scheduler.child.kill('SIGTERM');
      await exitOf(scheduler);
    }
    console.info(`web UI screenshots: ${shots}`);
  });

  it('lists DAGs with the import-error banner', async () => {
    // Opening the printed URL signs the browser in (a cookie) and drops the token from the address.
    await page.goto(printedUrl);
    await page.getByTestId('dag-list').getByRole('link', { name: 'web_demo' }).waitFor();
    expect(page.url()).toBe(url);
    expect(await page.getByTestId('import-errors').textContent()).toMatch(/broken on purpose/);
    await expect.poll(() => page.locator('#connection').getAttribute('data-state')).toBe('live');
    await page.screenshot({ path: join(shots, 'dag-list.png') });
  });

  it('triggers a run with params from the form and watches its cells turn green without polling', async () => {
    await page.getByRole('link', { name: 'web_demo' }).click();
    await page.getByTestId('grid').waitFor();
    await page.getByTestId('trigger').click();
    const gate = join(cwd, 'gate-open');
    await page.locator('#param-greeting').fill('from the browser');
    await page.locator('#param-repeat').fill('2');
    await page.locator('#param-gateFile').fill(gate);
    await page.locator('#trigger-run-id').fill('ui1');
    const gridReads = () => requests.filter((r) => r.includes('/grid')).length;
    expect(gridReads()).toBe(1);
    await page.getByTestId('trigger-submit').click();

    const cell = (task: string) => page.locator(`.cell[data-run="ui1"][data-task="${task}"]`);
    // The new column comes from the feed; then `wait` runs (held by the gate) while greet and flaky are done.
    await expect.poll(() => cell('wait').getAttribute('data-state'), { timeout: 30_000 }).toBe('running');
    expect(await cell('greet').getAttribute('data-state')).toBe('success');
    await page.screenshot({ path: join(shots, 'grid-running.png') });
    writeFileSync(gate, '');
    await expect.poll(() => page.getByTestId('run-state-ui1').getAttribute('data-state'), { timeout: 30_000 }).toBe('success');
    for (const t of ['greet', 'flaky', 'wait', 'report']) expect(await cell(t).getAttribute('data-state')).toBe('success');
    await page.screenshot({ path: join(shots, 'grid.png') });
    // Every state change arrived over the one event stream: the grid was read once, and no run or task instance was polled.
    expect(gridReads()).toBe(1);
    expect(requests.filter((r) => r.startsWith('GET /api/v1/dags/web_demo/runs'))).toEqual([]);
    expect(requests.filter((r) => r.endsWith('/api/v1/events'))).toHaveLength(1);
  });

  it('opens a try with its facts and its log, markup kept as text', async () => {
    await page.locator('.cell[data-run="ui1"][data-task="greet"]').click();
    const panel = page.getByTestId('task-panel');
    await expect.poll(() => panel.getByTestId('log').textContent()).toMatch(/from the browser <script>window.__pwned = true<\/script>/);
    expect((await panel.getByTestId('log').textContent())!.match(/<script>/g)).toHaveLength(2);
    expect(await page.evaluate(() => (globalThis as unknown as { __pwned?: boolean }).__pwned)).toBeUndefined();
    expect(await panel.locator('[data-fact="state"]').textContent()).toBe('success');
    expect(await panel.locator('[data-fact="peak RSS"]').textContent()).toMatch(/MiB$/);
    expect(await panel.locator('[data-fact="CPU"]').textContent()).toMatch(/ms|s$/);
    expect(await panel.getByTestId('xcom').textContent()).toMatch(/"greeting": "from the browser"/);
    // Peak RSS across the runs so far (one here), drawn as a sparkline.
    await expect.poll(() => panel.getByTestId('rss-trend').getAttribute('data-points')).toBe('1');
    expect(await panel.getByTestId('rss-trend').locator('svg polyline').count()).toBe(2);
    await page.screenshot({ path: join(shots, 'task-panel.png') });
    // ANSI colours become coloured text; the escape codes themselves are not shown.
    await page.locator('.cell[data-run="ui1"][data-task="report"]').click();
    await expect.poll(() => panel.getByTestId('log').locator('span.ansi-fg-32').textContent()).toBe('all green');
    expect(await panel.getByTestId('log').textContent()).toMatch(/^\S+ INFO\s+all green report: \{"greeting":"from the browser","repeat":2\}\n$/);
    // flaky failed its first try: two tabs, the first with only its log kept.
    await page.locator('.cell[data-run="ui1"][data-task="flaky"]').click();
    await panel.getByRole('tab', { name: 'try 1' }).click();
    await expect.poll(() => panel.getByTestId('log').textContent()).toMatch(/flaky fails its first try/);
  });

  it('clears a task after showing its dry run, and the cell runs again live', async () => {
    const panel = page.getByTestId('task-panel');
    await page.locator('.cell[data-run="ui1"][data-task="flaky"]').click();
    await panel.getByTestId('clear-downstream').click();
    const confirm = page.getByTestId('confirm-dialog');
    await confirm.waitFor();
    expect(await confirm.getByTestId('dry-run-list').locator('li').allTextContents()).toEqual(['flaky: cleared, runs again', 'report: cleared, runs again']);
    // Nothing changed before the confirmation.
    expect(await page.locator('.cell[data-run="ui1"][data-task="flaky"]').getAttribute('data-state')).toBe('success');
    await page.screenshot({ path: join(shots, 'clear-dry-run.png') });
    await confirm.getByTestId('confirm').click();
    const ti = async () => (await (await fetch(`${url}api/v1/dags/web_demo/runs/ui1/tasks/flaky`, { headers: auth })).json()) as { state: string; tryNumber: number };
    await until(async () => (await ti()).tryNumber === 3, 'flaky to run again');
    // The cell follows the new try from the feed (the clear set the run back to queued first).
    await expect.poll(() => page.locator('.cell[data-run="ui1"][data-task="flaky"]').getAttribute('title'), { timeout: 30_000 }).toMatch(/success \(try 3\)/);
    await expect.poll(() => page.locator('.cell[data-run="ui1"][data-task="report"]').getAttribute('title'), { timeout: 30_000 }).toMatch(/success \(try 2\)/);
    await expect.poll(() => page.getByTestId('run-state-ui1').getAttribute('data-state'), { timeout: 30_000 }).toBe('success');
    expect(requests.filter((r) => r.includes('/grid'))).toHaveLength(1);
  });

  it('moves between cells with the arrow keys and opens one with Enter', async () => {
    await page.locator('.cell[data-run="ui1"][data-task="greet"]').focus();
    await page.keyboard.press('ArrowDown');
    await page.keyboard.press('ArrowDown');
    expect(await page.evaluate(() => (globalThis as unknown as { document: { activeElement: { getAttribute(n: string): string | null } } }).document.activeElement.getAttribute('data-task'))).toBe('wait');
    await page.keyboard.press('Enter');
    await expect.poll(() => page.getByTestId('task-panel').locator('h2').textContent()).toBe('wait');
  });

  it('shows the selected run on the graph and every run in the runs table', async () => {
    await page.getByTestId('tab-graph').click();
    const node = (task: string) => page.getByTestId('graph').locator(`g.node[data-task="${task}"]`);
    await expect.poll(() => node('flaky').getAttribute('data-state')).toBe('success');
    expect(await page.getByTestId('graph').locator('g.node').count()).toBe(4);
    expect(await page.getByTestId('graph').locator('path.edge').count()).toBe(4);
    await page.screenshot({ path: join(shots, 'graph.png') });
    await page.getByTestId('tab-runs').click();
    await expect.poll(() => page.getByTestId('runs-table').locator('tr[data-run="ui1"]').getAttribute('data-state')).toBe('success');
    await page.getByTestId('tab-grid').click();
    await page.getByTestId('grid').waitFor();
  });

  it('shows a failed try with its exit code and reason, and pauses a DAG from the list', async () => {
    await fetch(`${url}api/v1/dags/web_crash/runs`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ runId: 'crash1' }) });
    await page.goto(`${url}#/dags/web_crash`);
    const cell = page.locator('.cell[data-run="crash1"][data-task="crashy"]');
    await expect.poll(() => cell.getAttribute('data-state'), { timeout: 30_000 }).toBe('failed');
    await cell.click();
    const panel = page.getByTestId('task-panel');
    await expect.poll(() => panel.locator('[data-fact="exit code"]').textContent()).toBe('3');
    expect(await panel.locator('[data-fact="signal"]').textContent()).toBe('-');
    expect(await panel.locator('pre.error').textContent()).toMatch(/exited with code 3/);
    await expect.poll(() => panel.getByTestId('log').textContent()).toMatch(/about to exit with code 3/);
    await page.screenshot({ path: join(shots, 'failed-try.png') });

    await page.goto(url);
    const toggle = page.getByTestId('pause-web_crash');
    await toggle.waitFor();
    expect(await toggle.isChecked()).toBe(true);
    await toggle.uncheck();
    await until(async () => ((await (await fetch(`${url}api/v1/dags/web_crash`, { headers: auth })).json()) as { paused: boolean }).paused, 'web_crash to be paused');
    await page.reload();
    await page.getByTestId('pause-web_crash').waitFor();
    expect(await page.getByTestId('pause-web_crash').isChecked()).toBe(false);
    await page.goto(`${url}#/dags/web_demo`);
    await page.getByTestId('grid').waitFor();
  });

  it('shows "disconnected" while the server is gone and resumes when it is back', async () => {
    scheduler.child.kill('SIGTERM');
    expect((await exitOf(scheduler)).code).toBe(0);
    await expect.poll(() => page.locator('#connection').getAttribute('data-state'), { timeout: 20_000 }).toBe('disconnected');
    expect(await page.locator('#connection').textContent()).toBe('disconnected');
    await page.screenshot({ path: join(shots, 'disconnected.png') });
    const port = new URL(url).port;
    ({ p: scheduler } = await startWithWeb(`127.0.0.1:${port}`));
    await expect.poll(() => page.locator('#connection').getAttribute('data-state'), { timeout: 30_000 }).toBe('live');
    // A run triggered meanwhile by someone else still reaches this page through the resumed stream.
    await fetch(`${url}api/v1/dags/web_demo/runs`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ runId: 'after-restart' }) });
    await expect.poll(() => page.getByTestId('run-state-after-restart').getAttribute('data-state'), { timeout: 30_000 }).toBe('success');
    await page.screenshot({ path: join(shots, 'reconnected.png') });
  });
});
