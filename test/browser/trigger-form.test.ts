/**
 * The trigger dialog's form in a real headless Chromium (Debian's `chromium`, driven by
 * playwright-core), against `kiln scheduler --webserver` over test/browser/fixtures: a DAG
 * with a nested params schema gets a fieldset per nested object, rows to add and remove for its
 * arrays, a select for its enums (one through a $ref), date and date-time inputs, its defaults
 * filled in, required fields marked and descriptions as help; the raw JSON follows the fields
 * and the fields follow the raw JSON; submitting triggers a run with exactly the params shown
 * (read back through the API); the server's violations show next to the fields they name.
 *
 * Skipped, with a notice, where /usr/bin/chromium is missing (CI installs it: .ci/run).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser, type Locator, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO, scratchProject } from '../helpers/cli.js';
import { chromiumAvailable, openUiPage } from '../helpers/browser.js';
import { exitOf, startScheduler, until, type SchedulerProcess } from '../fixtures/scheduler/harness.js';

const hasChromium = chromiumAvailable('the browser tests of the trigger form');

describe.skipIf(!hasChromium)('the trigger form in Chromium', () => {
  const cwd = scratchProject('kiln-trigger-form-');
  const shots = join(cwd, 'screenshots');
  const env = {
    KILN_DATABASE_URL: `sqlite:${join(cwd, 'kiln.db')}`, KILN_DAGS_FOLDER: join(REPO, 'test/browser/fixtures'), KILN_SCHEDULER_INTERVAL: '100ms', KILN_PARALLELISM: '2',
  };
  let scheduler: SchedulerProcess;
  let browser: Browser;
  let page: Page;
  let url: string;
  let auth: Record<string, string>;

  const form = () => page.getByTestId('trigger-form');
  const raw = async () => JSON.parse(await form().getByTestId('params-raw').inputValue()) as unknown;
  const api = async (path: string) => {
    const res = await fetch(`${url}api/v1${path}`, { headers: auth });
    return { status: res.status, body: (await res.json()) as { run: { params: unknown; state: string } } };
  };
  const openForm = async () => {
    // A dialog left open (by a failed test) would cover the page.
    await page.evaluate(() => (globalThis as unknown as { document: { querySelector(s: string): { close(): void } | null } }).document.querySelector('dialog[open]')?.close());
    await page.goto(`${url}#/dags/ui_params`);
    await page.getByTestId('trigger').click();
    await form().waitFor();
  };
  const rows = (path: string): Locator => form().getByTestId(`rows-${path}`).locator('li');

  beforeAll(async () => {
    mkdirSync(shots, { recursive: true });
    scheduler = startScheduler(['--executor', 'thread', '--webserver', '127.0.0.1:0'], { cwd, env });
    const printed = await until(() => /kiln web UI: (http:\S+)/.exec(scheduler.output())?.[1], 'the web server URL');
    url = `${new URL(printed).origin}/`;
    auth = { authorization: `Bearer ${new URL(printed).searchParams.get('token')}` };
    await until(async () => ((await (await fetch(`${url}api/v1/dags`, { headers: auth })).json()) as { dags: Array<{ dagId: string }> }).dags.some((d) => d.dagId === 'ui_params'), 'the DAG folder to be read');
    ({ browser, page } = await openUiPage({ viewport: { width: 1200, height: 1000 } }));
    await page.goto(printed);
    await page.getByTestId('dag-list').getByRole('link', { name: 'ui_params' }).waitFor();
  });

  afterAll(async () => {
    await browser?.close();
    if (scheduler && scheduler.child.exitCode === null) {
      scheduler.child.kill('SIGTERM');
      await exitOf(scheduler);
    }
    console.info(`trigger form screenshots: ${shots}`);
  });

  it('makes fieldsets, array rows, selects, date inputs, defaults, required marks and help from the schema', async () => {
    await openForm();
    // Nested objects: fieldsets, the optional one inside the required one.
    const target = form().locator('fieldset[data-key="params.target"]');
    expect(await target.locator(':scope > legend').textContent()).toBe('target*');
    expect(await target.locator(':scope > legend abbr.req').getAttribute('title')).toBe('required');
    expect(await target.locator(':scope > .help').textContent()).toBe('where the rows go');
    expect(await target.locator('fieldset[data-key="params.target.options"] > legend').textContent()).toBe('options');
    // Defaults filled in; required and help on the fields.
    expect(await form().locator('#param-target-port').inputValue()).toBe('5432');
    expect(await form().locator('#param-target-port').getAttribute('min')).toBe('1');
    expect(await form().locator('#param-target-port').getAttribute('max')).toBe('65535');
    expect(await form().locator('#param-target-tls').isChecked()).toBe(true);
    expect(await form().locator('#param-target-host').getAttribute('aria-required')).toBe('true');
    expect(await form().locator('#param-target-host-help').textContent()).toBe('database host');
    expect(await form().locator('#param-target-host').getAttribute('aria-describedby')).toContain('param-target-host-help');
    // The optional object is not in the params yet: its defaults show as hints.
    expect(await form().locator('#param-target-options-retries').inputValue()).toBe('');
    expect(await form().locator('#param-target-options-retries').getAttribute('placeholder')).toBe('2 (default)');
    // Enums: selects (the $ref'd one too).
    expect(await form().locator('#param-region').evaluate((el) => el.tagName)).toBe('SELECT');
    expect(await form().locator('#param-region option').allTextContents()).toEqual(['(not set)', 'eu', 'us', 'ap']);
    expect(await form().locator('#param-region').inputValue()).toBe('"eu"');
    expect(await form().locator('#param-target-options-mode option').allTextContents()).toEqual(['(not set)', 'fast', 'safe']);
    expect(await form().locator('#param-target-options-mode-help').textContent()).toBe('how careful to be');
    // Dates.
    expect(await form().locator('#param-day').getAttribute('type')).toBe('date');
    expect(await form().locator('label[for="param-day"] abbr.req').count()).toBe(1);
    expect(await form().locator('#param-at').getAttribute('type')).toBe('datetime-local');
    // Arrays: one row per item (the default's), none for an absent one.
    expect(await rows('tables').count()).toBe(1);
    expect(await rows('tables').locator('input').inputValue()).toBe('users');
    expect(await rows('limits').count()).toBe(0);
    expect(await form().locator('#param-ratio').getAttribute('step')).toBe('any');
    // The raw JSON starts as the params the run would get (the optional object left out).
    expect(await raw()).toEqual({ target: { port: 5432, tls: true }, tables: ['users'], region: 'eu', dryRun: false });
    await page.screenshot({ path: join(shots, 'trigger-form.png') });
  });

  it('triggers a run with exactly the params in the form, the raw JSON in step both ways', async () => {
    await openForm();
    await form().locator('#param-target-host').fill('db.internal');
    await form().locator('#param-target-port').fill('6543');
    await form().locator('#param-target-tls').uncheck();
    // Choosing in the optional object makes it, with its defaults.
    await form().locator('#param-target-options-mode').selectOption('"safe"');
    expect(await raw()).toMatchObject({ target: { options: { retries: 2, mode: 'safe' } } });
    expect(await form().locator('#param-target-options-retries').inputValue()).toBe('2');
    await form().getByTestId('add-tables').click();
    // The new row has the focus: typed into directly.
    await page.keyboard.type('orders');
    await form().getByTestId('add-tables').click();
    await page.keyboard.type('scratch');
    expect(await rows('tables').count()).toBe(3);
    await form().getByRole('button', { name: 'remove tables item 3' }).click();
    await form().getByTestId('add-limits').click();
    await rows('limits').locator('input').fill('3');
    await form().locator('#param-region').selectOption('"us"');
    await form().locator('#param-day').fill('2026-03-01');
    await form().locator('#param-at').fill('2026-03-01T12:30');
    await form().locator('#param-ratio').fill('0.25');
    const expected = {
      target: { host: 'db.internal', port: 6543, tls: false, options: { retries: 2, mode: 'safe' } },
      tables: ['users', 'orders'], limits: [3], region: 'us', day: '2026-03-01', at: '2026-03-01T12:30:00Z', ratio: 0.25, dryRun: false,
    };
    expect(await raw()).toEqual(expected);

    // Raw JSON to fields: a change there redraws the form; back again, and the fields rule once more.
    const rawBox = form().getByTestId('params-raw');
    await rawBox.fill(JSON.stringify({ ...expected, target: { ...expected.target, port: 7000 }, tables: ['a', 'b', 'c'] }));
    expect(await form().locator('#param-target-port').inputValue()).toBe('7000');
    expect(await rows('tables').locator('input').evaluateAll((inputs) => inputs.map((i) => (i as unknown as { value: string }).value))).toEqual(['a', 'b', 'c']);
    await rawBox.fill('{"target": ');
    expect(await form().locator('#trigger-raw-error').textContent()).toMatch(/not used until it parses/);
    expect(await form().locator('#param-target-port').inputValue()).toBe('7000');
    await rawBox.fill(JSON.stringify(expected));
    expect(await form().locator('#param-target-port').inputValue()).toBe('6543');
    expect(await rows('tables').count()).toBe(2);
    expect(await form().locator('#param-at').inputValue()).toMatch(/^2026-03-01T12:30(:00)?$/);
    expect(await form().locator('#param-target-tls').isChecked()).toBe(false);

    await form().locator('#trigger-run-id').fill('form1');
    await page.screenshot({ path: join(shots, 'trigger-form-filled.png') });
    await form().getByTestId('trigger-submit').click();
    await form().waitFor({ state: 'hidden' });
    const run = await api('/dags/ui_params/runs/form1');
    expect(run.status).toBe(200);
    expect(run.body.run.params).toEqual(expected);
    await until(async () => (await api('/dags/ui_params/runs/form1')).body.run.state === 'success', 'run form1 to succeed');
  });

  it("shows the server's violations next to the fields they name, and triggers nothing", async () => {
    await openForm();
    // host left empty (required), a port out of range, an empty row, and a day; an unknown key through the raw JSON.
    await form().locator('#param-target-port').fill('70000');
    await form().getByTestId('add-limits').click();
    await rows('limits').locator('input').fill('0');
    await form().locator('#param-day').fill('2026-03-01');
    await form().locator('#trigger-run-id').fill('bad1');
    await form().getByTestId('trigger-submit').click();
    await expect.poll(() => form().locator('#param-target-port-error').textContent()).toBe('must be <= 65535');
    expect(await form().locator('#param-target-port').getAttribute('aria-invalid')).toBe('true');
    expect(await form().locator('#param-target-port').getAttribute('aria-describedby')).toContain('param-target-port-error');
    expect(await form().locator('#param-target-host-error').textContent()).toBe('is required');
    expect(await form().locator('#param-limits-0-error').textContent()).toBe('must be >= 1');
    expect(await form().getByTestId('trigger-error').textContent()).toMatch(/see the marked fields/);
    // The first field named, in the form's order, has the focus.
    expect(await page.evaluate(() => (globalThis as unknown as { document: { activeElement: { id: string } } }).document.activeElement.id)).toBe('param-target-host');
    expect((await api('/dags/ui_params/runs/bad1')).status).toBe(404);
    await page.screenshot({ path: join(shots, 'trigger-form-errors.png') });
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.screenshot({ path: join(shots, 'trigger-form-errors-dark.png') });
    await page.emulateMedia({ colorScheme: 'light' });

    // Fixed, the errors go at the next submit; one no field names is listed under the form.
    await form().locator('#param-target-port').fill('5433');
    await form().locator('#param-target-host').fill('h');
    await rows('limits').locator('input').fill('1');
    const params = (await raw()) as Record<string, unknown>;
    await form().getByTestId('params-raw').fill(JSON.stringify({ ...params, nope: 1 }));
    await form().getByTestId('trigger-submit').click();
    await expect.poll(() => form().getByTestId('trigger-error').textContent()).toMatch(/params\.nope: is not a known parameter/);
    expect(await form().locator('.field-error:not(:empty)').count()).toBe(0);
    expect((await api('/dags/ui_params/runs/bad1')).status).toBe(404);
    await form().getByTestId('params-raw').fill(JSON.stringify(params));
    await form().getByTestId('trigger-submit').click();
    await form().waitFor({ state: 'hidden' });
    expect((await api('/dags/ui_params/runs/bad1')).body.run.params).toEqual(params);
  });
});
