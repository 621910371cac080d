/**
 * The log viewer in a real headless Chromium (Debian's `chromium`, driven by playwright-core),
 * against `kiln scheduler --webserver` over test/browser/fixtures: a 50 MiB try log (written
 * by the test in place of the one a tiny DAG's run left) opens at its tail, with a bounded
 * number of row elements in the document however far it is scrolled; scrolling up reads the
 * bytes before by offset, contiguously; scrolling to the top (and Home) shows the file's first
 * lines, markup in them kept as text; End goes back to the tail; a line longer than a row goes
 * on over several; a running try's log grows live in the open viewer.
 *
 * Skipped, with a notice, where /usr/bin/chromium is missing (CI installs it: .ci/run).
 */
import { closeSync, existsSync, mkdirSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO, runKiln, scratchProject } from '../helpers/cli.js';
import { chromiumAvailable, openUiPage } from '../helpers/browser.js';
import { exitOf, startScheduler, until, type SchedulerProcess } from '../fixtures/scheduler/harness.js';

const hasChromium = chromiumAvailable('the browser tests of the log viewer');

/**
 * The big log: LINES lines of about 100 bytes, each starting with its 7-digit number, 50 MiB.
 * Every seventh line is multi-byte UTF-8 (so byte offsets are not character counts, and chunks
 * get cut inside characters).
 */
const LINES = 524_288;
const LINE_BYTES = 100;
const LONG_LINE = LINES - 3;
const LONG_CHARS = 5000;
/** No more row elements than this in the document, whatever the log's size. */
const MAX_ROW_ELEMENTS = 500;

function line(i: number): string {
  const n = String(i).padStart(7, '0');
  if (i === 0) return `${n} the first line <script>window.__pwned = true</script>`.padEnd(LINE_BYTES - 1, '.');
  if (i === LONG_LINE) return `${n} a long line `.padEnd(LONG_CHARS, 'y');
  if (i === LINES - 1) return `${n} \x1b[31mthe last line\x1b[0m`;
  if (i % 7 === 3) return `${n} ${'é€😀'.repeat(10)}.`;
  return `${n} `.padEnd(LINE_BYTES - 1, 'abcdefghij'[i % 10]!);
}

/** Where each line starts in the big log. */
const lineStart = new Float64Array(LINES);

function writeBigLog(file: string): number {
  const fd = openSync(file, 'w');
  let bytes = 0;
  try {
    for (let i = 0; i < LINES; i += 10_000) {
      const lines = Array.from({ length: Math.min(10_000, LINES - i) }, (_, k) => `${line(i + k)}\n`);
      lines.forEach((l, k) => {
        lineStart[i + k] = bytes;
        bytes += Buffer.byteLength(l);
      });
      writeSync(fd, Buffer.from(lines.join('')));
    }
  } finally {
    closeSync(fd);
  }
  return bytes;
}

describe.skipIf(!hasChromium)('the log viewer in Chromium', () => {
  const cwd = scratchProject('kiln-log-viewer-');
  const shots = join(cwd, 'screenshots');
  const env = {
    KILN_DATABASE_URL: `sqlite:${join(cwd, 'kiln.db')}`, KILN_DAGS_FOLDER: join(REPO, 'test/browser/fixtures'), KILN_LOGS_FOLDER: join(cwd, 'logs'),
    KILN_SCHEDULER_INTERVAL: '100ms', KILN_PARALLELISM: '2',
  };
  let scheduler: SchedulerProcess;
  let browser: Browser;
  let page: Page;
  let url: string;
  let auth: Record<string, string>;
  let logBytes = 0;
  const requests: string[] = [];

  const log = () => page.getByTestId('task-panel').getByTestId('log');
  const rowCount = () => log().locator('.log-row').count();
  /** The line numbers of the rows in the document, in order (continuation rows left out). */
  const numbers = () => log().locator('.log-row').evaluateAll((rows) => rows.map((r) => /^(\d{7}) /.exec(r.textContent ?? '')?.[1]).filter((n): n is string => n !== undefined).map(Number));
  const contiguous = (ns: number[]) => ns.every((n, i) => i === 0 || n === ns[i - 1]! + 1);
  /** Rows in the document that are not exactly a line of the file at its offset (or a piece of the long one): none, wherever the chunks were cut. */
  const wrongRows = async () => {
    const rows = await log().locator('.log-row').evaluateAll((els) => els.map((el) => ({ text: el.textContent ?? '', byte: Number(el.getAttribute('data-byte')) })));
    return rows.filter(({ text: t, byte }) => {
      const n = /^(\d{7}) /.exec(t)?.[1];
      if (n === undefined) return !/^y+\n?$/.test(t);
      // The row knows where its line starts in the file: the byte offsets were counted right.
      if (byte !== lineStart[Number(n)]) return true;
      // eslint-disable-next-line no-control-regex -- the colours are drawn, not shown
      const expected = line(Number(n)).replace(/\x1b\[[0-9;]*m/g, '');
      return Number(n) === LONG_LINE ? t !== expected.slice(0, 2000) : t !== `${expected}\n`;
    });
  };

  beforeAll(async () => {
    mkdirSync(shots, { recursive: true });
    const res = await runKiln(['dags', 'test', 'ui_log', '--run-id', 'big', '--executor', 'thread'], { cwd, env });
    expect(res.code, res.stderr).toBe(0);
    const file = join(cwd, 'logs/ui_log/big/big/1.log');
    expect(existsSync(file)).toBe(true);
    logBytes = writeBigLog(file);
    expect(logBytes).toBeGreaterThan(50 * 2 ** 20);
    scheduler = startScheduler(['--executor', 'thread', '--webserver', '127.0.0.1:0'], { cwd, env });
    const printed = await until(() => /kiln web UI: (http:\S+)/.exec(scheduler.output())?.[1], 'the web server URL');
    url = `${new URL(printed).origin}/`;
    auth = { authorization: `Bearer ${new URL(printed).searchParams.get('token')}` };
    await until(async () => ((await (await fetch(`${url}api/v1/dags`, { headers: auth })).json()) as { dags: unknown[] }).dags.length >= 2, 'the DAG folder to be read');
    ({ browser, page } = await openUiPage({ viewport: { width: 1400, height: 900 }, requests }));
    await page.goto(printed);
    await page.getByTestId('dag-list').getByRole('link', { name: 'ui_log' }).waitFor();
  });

  afterAll(async () => {
    await browser?.close();
    if (scheduler && scheduler.child.exitCode === null) {
      scheduler.child.kill('SIGTERM');
      await exitOf(scheduler);
    }
    console.info(`log viewer screenshots: ${shots}`);
  });

  it('opens a 50 MiB log at its tail, with a bounded number of rows in the document', async () => {
    await page.goto(`${url}#/dags/ui_log`);
    const cell = page.locator('.cell[data-run="big"][data-task="big"]');
    await cell.waitFor();
    // Long tasks on the page's main thread from here on (none may freeze it).
    await page.evaluate(() => {
      const w = globalThis as unknown as { __longTasks: number[] };
      w.__longTasks = [];
      new PerformanceObserver((list) => w.__longTasks.push(...list.getEntries().map((e) => e.duration))).observe({ type: 'longtask' } as never); // a browser entry type (Node's typings know only theirs)
    });
    const t0 = Date.now();
    await cell.click();
    await expect.poll(() => log().locator('span.ansi-fg-31').textContent({ timeout: 1000 }).catch(() => null), { timeout: 10_000 }).toBe('the last line');
    const shownMs = Date.now() - t0;
    console.info(`50 MiB log: its tail shown ${shownMs} ms after the click`);
    expect(shownMs).toBeLessThan(5000);
    // Only what is on screen (and a margin) is in the document.
    const rows = await rowCount();
    expect(rows).toBeGreaterThan(10);
    expect(rows).toBeLessThan(MAX_ROW_ELEMENTS);
    // At the bottom, following the file (a finished try's file does not grow, but the stream stays open).
    expect(await log().evaluate((el) => el.scrollTop + el.clientHeight >= el.scrollHeight - 2)).toBe(true);
    expect(await log().getAttribute('data-live')).toBe('true');
    expect(await page.getByTestId('log-status').textContent()).toMatch(/50\.0 MiB/);
    // The tail came from the live stream alone: no full read of the file.
    expect(requests.filter((r) => r.includes('/tries/1/log'))).toEqual(['GET /api/v1/dags/ui_log/runs/big/tasks/big/tries/1/log/stream']);
    // The 5,000-character line goes on over three rows (two marked as cut); the view scrolls sideways.
    expect(await log().locator('.log-row.cut').count()).toBe(2);
    expect(await log().evaluate((el) => el.scrollWidth > el.clientWidth)).toBe(true);
    expect(contiguous(await numbers())).toBe(true);
    expect(await wrongRows()).toEqual([]);
    expect((await numbers()).at(-1)).toBe(LINES - 1);
    const download = page.getByTestId('log-download');
    expect(await download.getAttribute('href')).toBe('/api/v1/dags/ui_log/runs/big/tasks/big/tries/1/log/download');
    const whole = await fetch(`${url}api/v1/dags/ui_log/runs/big/tasks/big/tries/1/log/download`, { headers: auth });
    expect(whole.headers.get('content-length')).toBe(String(logBytes));
    await whole.body?.cancel();
    await page.screenshot({ path: join(shots, 'log-tail.png') });
  });

  it('reads the bytes before the window by offset as it is scrolled up, rows staying few and contiguous', async () => {
    const firstBefore = (await numbers())[0]!;
    const box = (await log().boundingBox())!;
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    // About 3,000 rows up: past the 64 KiB tail (about 650 rows), so at least one earlier chunk is read.
    for (let i = 0; i < 30; i++) {
      await page.mouse.wheel(0, -2000);
      await page.waitForTimeout(30);
    }
    await expect.poll(async () => (await numbers())[0]!, { timeout: 10_000 }).toBeLessThan(firstBefore - 2000);
    await expect.poll(async () => contiguous(await numbers())).toBe(true);
    expect(await wrongRows()).toEqual([]);
    expect(await rowCount()).toBeLessThan(MAX_ROW_ELEMENTS);
    const reads = requests.filter((r) => /\/tries\/1\/log\?offset=\d+&maxBytes=\d+$/.test(r));
    expect(reads.length).toBeGreaterThan(0);
    // Each read ends where the window began: byte offsets, never the whole file.
    for (const r of reads) expect(Number(/maxBytes=(\d+)/.exec(r)![1])).toBeLessThanOrEqual(256 * 1024);
    // Scrolled up by hand: the view stays there (no longer following the end).
    expect(await page.getByTestId('log-status').textContent()).not.toMatch(/· live$/);
  });

  it('shows the first lines when scrolled to the top, their markup as text; End goes back to the tail and Home to the start', async () => {
    await log().evaluate((el) => (el.scrollTop = 0));
    await expect.poll(async () => (await numbers())[0], { timeout: 10_000 }).toBe(0);
    const text = (await log().textContent())!;
    expect(text.startsWith('0000000 the first line <script>window.__pwned = true</script>...')).toBe(true);
    expect(await log().locator('script').count()).toBe(0);
    expect(await page.evaluate(() => (globalThis as unknown as { __pwned?: boolean }).__pwned)).toBeUndefined();
    expect(contiguous(await numbers())).toBe(true);
    expect(await wrongRows()).toEqual([]);
    expect(await rowCount()).toBeLessThan(MAX_ROW_ELEMENTS);
    expect(await log().getAttribute('data-start')).toBe('0');
    await page.screenshot({ path: join(shots, 'log-head.png') });
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.screenshot({ path: join(shots, 'log-head-dark.png') });
    await page.emulateMedia({ colorScheme: 'light' });

    // Keys on the focused log: End (the tail, live again), Home (the first lines).
    await log().focus();
    await page.keyboard.press('End');
    await expect.poll(async () => (await numbers()).at(-1), { timeout: 10_000 }).toBe(LINES - 1);
    await expect.poll(() => log().getAttribute('data-live')).toBe('true');
    await page.keyboard.press('Home');
    await expect.poll(async () => (await numbers())[0], { timeout: 10_000 }).toBe(0);
    // Page Down from the head, then scrolled through the middle with the wheel: still few rows.
    for (let i = 0; i < 5; i++) await page.keyboard.press('PageDown');
    await expect.poll(async () => (await numbers())[0]!).toBeGreaterThan(20);
    expect(await rowCount()).toBeLessThan(MAX_ROW_ELEMENTS);
    // Half way down the scrollbar: a jump into the middle of the file.
    await log().evaluate((el) => (el.scrollTop = el.scrollHeight / 2));
    await expect.poll(async () => {
      const ns = await numbers();
      return ns.length > 0 && ns[0]! > LINES * 0.3 && ns[0]! < LINES * 0.7 && contiguous(ns);
    }, { timeout: 10_000 }).toBe(true);
    expect(await wrongRows()).toEqual([]);
    expect(await rowCount()).toBeLessThan(MAX_ROW_ELEMENTS);
    const longTasks = await page.evaluate(() => (globalThis as unknown as { __longTasks: number[] }).__longTasks);
    console.info(`main-thread long tasks while opening and scrolling the 50 MiB log: ${longTasks.length} (longest ${Math.round(Math.max(0, ...longTasks))} ms)`);
    expect(Math.max(0, ...longTasks)).toBeLessThan(1000);
    await page.getByTestId('log-end').click();
    await expect.poll(async () => (await numbers()).at(-1), { timeout: 10_000 }).toBe(LINES - 1);
  });

  it('follows a running try: lines appear as it writes them, the view kept at the bottom', async () => {
    const gate = join(cwd, 'gate-open');
    const trigger = await fetch(`${url}api/v1/dags/ui_live/runs`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ runId: 'live1', params: { gateFile: gate } }) });
    expect(trigger.status).toBe(201);
    await page.goto(`${url}#/dags/ui_live`);
    const cell = page.locator('.cell[data-run="live1"][data-task="ticker"]');
    await expect.poll(() => cell.getAttribute('data-state'), { timeout: 30_000 }).toBe('running');
    await cell.click();
    await expect.poll(() => log().textContent(), { timeout: 10_000 }).toMatch(/tick 3\n/);
    const seen = /tick (\d+)\n$/.exec((await log().textContent())!)?.[1];
    // Later ticks arrive over the open stream, and the view stays at the newest.
    await expect.poll(() => log().textContent(), { timeout: 10_000 }).toMatch(new RegExp(`tick ${Number(seen) + 30}\\n`));
    expect(await log().evaluate((el) => el.scrollTop + el.clientHeight >= el.scrollHeight - 2)).toBe(true);
    writeFileSync(gate, '');
    await expect.poll(() => log().textContent(), { timeout: 30_000 }).toMatch(/ticker done\n$/);
    await expect.poll(() => cell.getAttribute('data-state'), { timeout: 30_000 }).toBe('success');
    // One stream, and no reads of the log by offset: nothing polled.
    const reads = requests.filter((r) => r.includes('/runs/live1/tasks/ticker/tries/1/log'));
    expect(reads.filter((r) => r.includes('/log/stream'))).toHaveLength(1);
    expect(reads.filter((r) => r.includes('/log?'))).toEqual([]);
    await page.screenshot({ path: join(shots, 'log-live.png') });
  });
});
