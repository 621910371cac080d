/**
 * Case 8, the web UI at scale (issue 10, item 6): a SQLite database holding one DAG of 100
 * tasks and 100 finished runs (10,000 task instances, inserted through the Store API, one
 * createRun transaction per run and its 100 task instances; nothing is executed), the web
 * server started in this process (startWebServer, configured tokens), then:
 *
 *   (a) the grid, GET /api/v1/dags/<id>/grid?limit=100, two ways, interleaved:
 *       server time: the web server's own Hono app (createWebApp, the same routes, store and
 *       auth) called in this process with a Request, timed from the call to the last byte of
 *       its response body (routing, auth, the two store statements, mapping, JSON), no socket;
 *       loopback round trip: Node's fetch over HTTP to the running server, request to last
 *       byte (keep-alive, one connection);
 *   (b) the grid painted in Chromium (playwright-core, /usr/bin/chromium; skipped with a note
 *       when it is missing): from navigation start (about:blank -> the DAG's page) to the first
 *       frame rendered after all 10,000 `.cell` buttons are in the document, as the page's own
 *       performance.now() sees it (an init script watches every animation frame; the frame
 *       that finds them all is rendered, then a message task after it reads the clock);
 *       then a click on the cell whose try has the 50 MB log, to its tail shown in the panel;
 *   (c) a 50 MB log of one try (in the try's log file, where the executor writes it): the
 *       tail, GET .../tries/1/log (64 KiB, the API's default), first request and median, and
 *       the live tail the UI opens, GET .../tries/1/log/stream, to its first `log` event;
 *   (d) the grid of a mapped DAG, in the same database: 100 finished runs of 99 tasks plus one
 *       task mapped over 10,000 items (100 x 10,099 = 1,009,900 task instances, still 100 x
 *       100 cells: a mapped task's instances are one cell per run), GET .../grid?limit=100,
 *       server time as in (a).
 */
/* global fetch, Request, TextDecoder -- Node's own (undici, keep-alive) */
/* global window, document, location, requestAnimationFrame, MessageChannel -- watchGrid and openLog run in the page */
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ChangeFeedFollower } from '../../dist/src/app/change-feed.js';
import { contentVersion, serializeDag } from '../../dist/src/dag/serialize.js';
import { dag } from '../../dist/src/index.js';
import { taskLogFile } from '../../dist/src/scheduler/task-work.js';
import { createWebApp } from '../../dist/src/server/app.js';
import { openWebAuth } from '../../dist/src/server/auth.js';
import { startWebServer } from '../../dist/src/server/server.js';
import { createStore } from '../../dist/src/store/index.js';
import { interleave } from '../lib/interleave.mjs';
import { benchConfig } from '../lib/kiln.mjs';
import { fmt, fmtBytes, fmtSummary, table } from '../lib/report.mjs';
import { pick } from '../lib/scale.mjs';
import { summary } from '../lib/stats.mjs';
import { barChart } from '../lib/svg.mjs';

export const id = 'web';
export const title = 'Web UI at scale: the grid of 100 runs x 100 tasks (API and Chromium), a 50 MB log\'s tail (case 8)';

const DAG_ID = 'bench_web_grid';
const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const DAY_MS = 86_400_000;

/** 100 tasks in 10 layers of 10, each task downstream of one in the layer before (the grid does not care; the graph tab would). */
function buildDag(tasks) {
  const noop = async () => 0;
  return dag({ id: DAG_ID, schedule: '@daily', startDate: '2026-01-01', maxActiveTasks: 16 }, (d) => {
    for (let i = 0; i < tasks; i++) d.task(`task_${String(i + 1).padStart(3, '0')}`, noop, i >= 10 ? { upstream: [`task_${String(i - 9).padStart(3, '0')}`] } : undefined);
  });
}

/** 100 finished runs, one transaction each (the run and its task instances); every 10th failed at one task. */
async function seed(store, serialized, version, runs) {
  const taskIds = serialized.tasks.map((t) => t.taskId);
  const start = Date.parse('2026-01-01T00:00:00Z');
  for (let r = 0; r < runs; r++) {
    const logicalDate = start + r * DAY_MS;
    const runId = `scheduled__${new Date(logicalDate).toISOString()}`;
    const failedAt = r % 10 === 9 ? Math.floor(taskIds.length / 2) : -1;
    const queuedAt = logicalDate + DAY_MS;
    const run = {
      dagId: DAG_ID, runId, runType: 'scheduled', logicalDate, dataIntervalStart: logicalDate, dataIntervalEnd: logicalDate + DAY_MS,
      state: failedAt >= 0 ? 'failed' : 'success', params: {}, dagVersion: version, queuedAt, startedAt: queuedAt + 5, endedAt: queuedAt + 60_000,
      claimedBy: null, failureReason: failedAt >= 0 ? 'task_failed' : null,
    };
    const tis = taskIds.map((taskId, i) => {
      const state = failedAt < 0 || i < failedAt ? 'success' : i === failedAt ? 'failed' : 'upstream_failed';
      const ran = state !== 'upstream_failed';
      return {
        dagId: DAG_ID, runId, taskId, state, tryNumber: ran ? 1 : 0, maxTries: 1, pool: 'default_pool', poolSlots: 1, priorityWeight: 1, isolation: ran ? 'thread' : null,
        queuedAt: ran ? queuedAt + i : null, startedAt: ran ? queuedAt + i + 1 : null, endedAt: ran ? queuedAt + i + 40 : null, durationMs: ran ? 39 : null,
        pid: null, exitCode: ran ? (state === 'failed' ? 1 : 0) : null, signal: null, error: state === 'failed' ? 'Error: failed on purpose' : null,
        peakRssBytes: ran ? 50 * 2 ** 20 : null, cpuMs: ran ? 12 : null, lastHeartbeatAt: null, queuedBy: null, nextRetryAt: null, firstPokeAt: null,
      };
    });
    if (!(await store.createRun(run, tis))) throw new Error(`run ${runId} was not created`);
  }
}

const MAPPED_DAG_ID = 'bench_web_grid_mapped';

/** `tasks - 1` tasks, then `mapped`, a task mapped over the first one's result (the grid does not run it). */
function buildMappedDag(tasks) {
  const noop = async () => 0;
  return dag({ id: MAPPED_DAG_ID, schedule: '@daily', startDate: '2026-01-01', maxActiveTasks: 16 }, (d) => {
    const first = d.task('task_001', noop);
    for (let i = 1; i < tasks - 1; i++) d.task(`task_${String(i + 1).padStart(3, '0')}`, noop);
    d.map('mapped', noop, { over: first });
  });
}

/**
 * `runs` finished runs of the mapped DAG, one transaction each: its unmapped tasks succeeded,
 * and the mapped task's `instances` instances (map index 0..instances-1) with a spread of
 * states: every 1,000th failed, every 500th on its second try, the rest success.
 */
async function seedMapped(store, serialized, version, runs, instances) {
  const taskIds = serialized.tasks.map((t) => t.taskId).filter((t) => t !== 'mapped');
  const start = Date.parse('2026-01-01T00:00:00Z');
  const ti = (runId, taskId, mapIndex, state, tryNumber, at) => ({
    dagId: MAPPED_DAG_ID, runId, taskId, mapIndex, state, tryNumber, maxTries: 2, pool: 'default_pool', poolSlots: 1, priorityWeight: 1, isolation: 'thread',
    queuedAt: at, startedAt: at + 1, endedAt: at + 40, durationMs: 39, pid: null, exitCode: state === 'failed' ? 1 : 0, signal: null, error: state === 'failed' ? 'Error: failed on purpose' : null,
    peakRssBytes: 50 * 2 ** 20, cpuMs: 12, lastHeartbeatAt: null, queuedBy: null, nextRetryAt: null, firstPokeAt: null,
  });
  for (let r = 0; r < runs; r++) {
    const logicalDate = start + r * DAY_MS;
    const runId = `scheduled__${new Date(logicalDate).toISOString()}`;
    const queuedAt = logicalDate + DAY_MS;
    const failed = instances > 7;
    const run = {
      dagId: MAPPED_DAG_ID, runId, runType: 'scheduled', logicalDate, dataIntervalStart: logicalDate, dataIntervalEnd: logicalDate + DAY_MS,
      state: failed ? 'failed' : 'success', params: {}, dagVersion: version, queuedAt, startedAt: queuedAt + 5, endedAt: queuedAt + 60_000,
      claimedBy: null, failureReason: failed ? 'task_failed' : null,
    };
    const tis = taskIds.map((taskId, i) => ti(runId, taskId, -1, 'success', 1, queuedAt + i));
    for (let i = 0; i < instances; i++) tis.push(ti(runId, 'mapped', i, i % 1000 === 7 ? 'failed' : 'success', i % 500 === 3 ? 2 : 1, queuedAt + 100 + i));
    if (!(await store.createRun(run, tis))) throw new Error(`run ${runId} was not created`);
  }
}

/** A log file of `bytes` bytes of plausible lines, written in 1 MiB blocks; returns its last line. */
function writeLog(file, bytes) {
  mkdirSync(dirname(file), { recursive: true });
  const lines = [];
  let size = 0;
  for (let i = 0; size < 2 ** 20; i++) {
    const line = `[2026-11-29T12:${String(i % 60).padStart(2, '0')}:00.000Z] INFO processing record ${String(i).padStart(8, '0')} of the partition: ok, 1 row written, checksum ${(i * 2654435761 >>> 0).toString(16)}\n`;
    lines.push(line);
    size += line.length;
  }
  const block = Buffer.from(lines.join(''));
  const last = 'THE LAST LINE OF THE 50 MB LOG\n';
  const fd = openSync(file, 'w');
  try {
    let written = 0;
    while (written < bytes - last.length) {
      const n = Math.min(block.length, bytes - last.length - written);
      written += writeSync(fd, block, 0, n);
    }
    writeSync(fd, last);
  } finally {
    closeSync(fd);
  }
  return last.trim();
}

/** The first `event: log` of an SSE response: ms from the request to it, and its data. */
async function firstSseEvent(url, headers) {
  const controller = new AbortController();
  const t0 = performance.now();
  const res = await fetch(url, { headers: { ...headers, accept: 'text/event-stream' }, signal: controller.signal });
  if (!res.ok) throw new Error(`GET ${url}: ${res.status} ${await res.text()}`);
  const decoder = new TextDecoder();
  let buffered = '';
  try {
    for await (const chunk of res.body) {
      buffered += decoder.decode(chunk, { stream: true });
      const end = buffered.indexOf('\n\n');
      if (end < 0) continue;
      const ms = performance.now() - t0;
      const data = buffered.slice(0, end).split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trimStart()).join('\n');
      return { ms, data: JSON.parse(data) };
    }
    throw new Error(`GET ${url}: the stream ended before its first event`);
  } finally {
    controller.abort();
  }
}

/** Installed in every page: resolves once all `cells` grid cells are in the document and a frame showing them has been rendered. */
function watchGrid(cells) {
  if (location.protocol === 'about:') return;
  window.__gridPainted = new Promise((resolve) => {
    const live = document.getElementsByClassName('cell');
    const frame = () => {
      if (live.length < cells) {
        requestAnimationFrame(frame);
        return;
      }
      // This animation frame is the first with every cell in the document; its rendering
      // (style, layout, paint) follows the rAF callbacks, and a message task posted here runs after it.
      const inDomMs = performance.now();
      const channel = new MessageChannel();
      channel.port1.onmessage = () => {
        const grid = performance.getEntriesByType('resource').find((e) => e.name.includes('/grid'));
        resolve({ paintedMs: performance.now(), inDomMs, cells: live.length, gridFetchMs: grid ? grid.responseEnd - grid.startTime : null, gridFetchEndMs: grid ? grid.responseEnd : null });
      };
      channel.port2.postMessage(0);
    };
    requestAnimationFrame(frame);
  });
}

/** Clicks a cell and waits for the panel's log to show text, then a rendered frame: ms in the page. */
function openLog({ run, task, last }) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const cell = document.querySelector(`.cell[data-run="${run}"][data-task="${task}"]`);
    if (!cell) {
      reject(new Error(`no cell for ${run} ${task}`));
      return;
    }
    cell.click();
    const frame = () => {
      const pre = document.querySelector('pre[data-testid="log"]');
      const text = pre?.textContent ?? '';
      if (!text.includes(last)) {
        if (performance.now() - t0 > 30_000) reject(new Error('the log did not show its tail within 30 s'));
        else requestAnimationFrame(frame);
        return;
      }
      const channel = new MessageChannel();
      channel.port1.onmessage = () => resolve({ ms: performance.now() - t0, chars: text.length });
      channel.port2.postMessage(0);
    };
    requestAnimationFrame(frame);
  });
}

async function timed(fn) {
  const t0 = performance.now();
  const value = await fn();
  return { ms: performance.now() - t0, value };
}

export async function run({ scale, log, tmpDir }) {
  const runs = pick(scale, { smoke: 10, quick: 100, full: 100 });
  const tasks = pick(scale, { smoke: 10, quick: 100, full: 100 });
  const logBytes = pick(scale, { smoke: 2 * 2 ** 20, quick: 50 * 2 ** 20, full: 50 * 2 ** 20 });
  const gridReps = pick(scale, { smoke: 3, quick: 30, full: 100 });
  const gridWarmups = pick(scale, { smoke: 1, quick: 5, full: 10 });
  const paintReps = pick(scale, { smoke: 1, quick: 5, full: 15 });
  const tailReps = pick(scale, { smoke: 3, quick: 20, full: 50 });
  const mapInstances = pick(scale, { smoke: 100, quick: 10_000, full: 10_000 });
  const mappedGridReps = pick(scale, { smoke: 3, quick: 10, full: 30 });

  const token = randomBytes(24).toString('base64url');
  const home = join(tmpDir, 'home');
  const config = await benchConfig(home, { executor: 'thread', webserverAuth: { tokens: [{ token, role: 'admin', name: 'bench' }] } });
  const store = await createStore(config.databaseUrl);
  await store.migrate();
  const servers = [];
  let browser = null;
  try {
    const d = buildDag(tasks);
    const serialized = serializeDag(d);
    const version = contentVersion(JSON.stringify(serialized));
    await store.upsertDag({ dagId: DAG_ID, file: join(home, `${DAG_ID}.ts`), version, serialized });
    const seeded = await timed(() => seed(store, serialized, version, runs));
    const cells = runs * tasks;
    log(`seeded ${runs} runs x ${tasks} tasks (${cells} task instances) in ${fmt(seeded.ms)} ms`);

    // The 50 MB log: the newest run's first task, try 1.
    const logRun = `scheduled__${new Date(Date.parse('2026-01-01T00:00:00Z') + (runs - 1) * DAY_MS).toISOString()}`;
    const logTask = serialized.tasks[0].taskId;
    const logFile = taskLogFile(config.logsFolder, DAG_ID, logRun, logTask, 1);
    const lastLine = writeLog(logFile, logBytes);
    log(`wrote ${fmtBytes(logBytes)} of log to ${logFile}`);

    const web = await startWebServer({ store, config, host: '127.0.0.1', port: 0 });
    servers.push(web);
    const base = web.url.replace(/\/$/, '');
    const headers = { authorization: `Bearer ${token}` };
    const gridPath = `/api/v1/dags/${DAG_ID}/grid?limit=100`;

    // The same app the server runs, called in this process: the server's time without the socket.
    const feed = new ChangeFeedFollower(store);
    servers.push({ close: async () => feed.close() });
    const app = createWebApp({ store, config, feed }, { auth: openWebAuth(config, '127.0.0.1').auth });
    const inProcess = async () => {
      const t0 = performance.now();
      const res = await app.fetch(new Request(`${base}${gridPath}`, { headers }));
      const body = await res.text();
      const ms = performance.now() - t0;
      if (res.status !== 200) throw new Error(`grid (in process): ${res.status} ${body.slice(0, 200)}`);
      return { ms, bytes: Buffer.byteLength(body), body };
    };
    const overHttp = async () => {
      const t0 = performance.now();
      const res = await fetch(`${base}${gridPath}`, { headers });
      const body = await res.text();
      const ms = performance.now() - t0;
      if (res.status !== 200) throw new Error(`grid (HTTP): ${res.status} ${body.slice(0, 200)}`);
      return { ms, bytes: Buffer.byteLength(body), body };
    };
    const first = await inProcess();
    const grid = JSON.parse(first.body);
    if (grid.runs.length !== runs || grid.tasks.length !== tasks || grid.cells.length !== cells) {
      throw new Error(`the grid has ${grid.runs.length} runs, ${grid.tasks.length} tasks, ${grid.cells.length} cells; expected ${runs}, ${tasks}, ${cells}`);
    }
    const firstHttp = await overHttp();
    for (let i = 0; i < gridWarmups; i++) {
      await inProcess();
      await overHttp();
    }
    const gridOut = await interleave(gridReps, { server: { run: inProcess }, http: { run: overHttp } });
    const gridServerMs = summary(gridOut.server.map((r) => r.ms));
    const gridHttpMs = summary(gridOut.http.map((r) => r.ms));
    log(`grid ${fmtBytes(first.bytes)}: server ${fmtSummary(gridServerMs, 'ms')}, loopback HTTP ${fmtSummary(gridHttpMs, 'ms')} (first: ${fmt(first.ms)} / ${fmt(firstHttp.ms)} ms)`);

    // (c) the log's tail: the first request after the file was written, then repeated; the live tail's first event.
    const tryPath = `/api/v1/dags/${DAG_ID}/runs/${encodeURIComponent(logRun)}/tasks/${logTask}/tries/1`;
    const tail = async () => {
      const t0 = performance.now();
      const res = await fetch(`${base}${tryPath}/log`, { headers });
      const body = await res.json();
      const ms = performance.now() - t0;
      if (res.status !== 200) throw new Error(`log tail: ${res.status} ${JSON.stringify(body)}`);
      if (body.size !== logBytes || !body.text.trimEnd().endsWith(lastLine)) throw new Error(`log tail: size ${body.size}, ends ${JSON.stringify(body.text.slice(-60))}`);
      return { ms, length: body.length, size: body.size };
    };
    const tailFirst = await tail();
    const tailRepeated = [];
    const streamRepeated = [];
    for (let i = 0; i < tailReps; i++) {
      tailRepeated.push(await tail());
      const ev = await firstSseEvent(`${base}${tryPath}/log/stream`, headers);
      if (ev.data.size !== logBytes || !ev.data.text.trimEnd().endsWith(lastLine)) throw new Error('log stream: the first event is not the tail');
      streamRepeated.push(ev);
    }
    const tailResult = {
      fileBytes: logBytes,
      tailBytes: tailFirst.length,
      firstMs: tailFirst.ms,
      ms: summary(tailRepeated.map((r) => r.ms)),
      streamFirstEventMs: summary(streamRepeated.map((r) => r.ms)),
    };
    log(`log tail of ${fmtBytes(logBytes)}: first ${fmt(tailFirst.ms)} ms, then ${fmtSummary(tailResult.ms, 'ms')}; live tail's first event ${fmtSummary(tailResult.streamFirstEventMs, 'ms')}`);

    // (b) Chromium.
    let browserResult;
    if (!existsSync(CHROMIUM)) {
      browserResult = { skipped: `${CHROMIUM} not found (apt-get install chromium): the paint was not measured` };
      log(browserResult.skipped);
    } else {
      const { chromium } = await import('playwright-core');
      browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
      const version = browser.version();
      const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
      page.on('dialog', (dlg) => void dlg.dismiss());
      // Sign in (the token swapped for the session cookie), then watch every page for the grid.
      await page.goto(`${base}/?token=${token}`);
      await page.addInitScript(watchGrid, cells);
      const loads = [];
      const logOpens = [];
      // One untimed load first: Chromium's caches of the app's script and styles, as a returning user has them.
      for (let i = 0; i < paintReps + 1; i++) {
        await page.goto('about:blank');
        await page.goto(`${base}/#/dags/${DAG_ID}`);
        const painted = await page.evaluate(() => window.__gridPainted);
        if (painted.cells !== cells) throw new Error(`the page shows ${painted.cells} cells, expected ${cells}`);
        const opened = await page.evaluate(openLog, { run: logRun, task: logTask, last: lastLine });
        if (i === 0) continue;
        loads.push(painted);
        logOpens.push(opened);
      }
      browserResult = {
        chromium: version,
        viewport: '1400x900',
        paintedMs: summary(loads.map((l) => l.paintedMs)),
        inDomMs: summary(loads.map((l) => l.inDomMs)),
        gridFetchMs: summary(loads.map((l) => l.gridFetchMs).filter((v) => v !== null)),
        gridFetchEndMs: summary(loads.map((l) => l.gridFetchEndMs).filter((v) => v !== null)),
        logOpenMs: summary(logOpens.map((o) => o.ms)),
        logChars: logOpens[0]?.chars ?? null,
      };
      log(`Chromium ${version}: grid painted ${fmtSummary(browserResult.paintedMs, 'ms')} after navigation (grid response at ${fmt(browserResult.gridFetchEndMs.median)} ms); the ${fmtBytes(logBytes)} log's tail shown ${fmtSummary(browserResult.logOpenMs, 'ms')} after the click`);
    }

    // (d) the mapped DAG's grid: the same request, in process (last: its million rows are
    // seeded after the HTTP parts, whose keep-alive connection would not outlive the wait).
    const md = buildMappedDag(tasks);
    const mdSerialized = serializeDag(md);
    const mdVersion = contentVersion(JSON.stringify(mdSerialized));
    await store.upsertDag({ dagId: MAPPED_DAG_ID, file: join(home, `${MAPPED_DAG_ID}.ts`), version: mdVersion, serialized: mdSerialized });
    const mdSeeded = await timed(() => seedMapped(store, mdSerialized, mdVersion, runs, mapInstances));
    const mdInstances = runs * (tasks - 1 + mapInstances);
    log(`seeded ${runs} runs x (${tasks - 1} tasks + one mapped over ${mapInstances}) (${fmt(mdInstances)} task instances) in ${fmt(mdSeeded.ms)} ms`);
    const mdGridPath = `/api/v1/dags/${MAPPED_DAG_ID}/grid?limit=100`;
    const mdInProcess = async () => {
      const t0 = performance.now();
      const res = await app.fetch(new Request(`${base}${mdGridPath}`, { headers }));
      const body = await res.text();
      const ms = performance.now() - t0;
      if (res.status !== 200) throw new Error(`mapped grid (in process): ${res.status} ${body.slice(0, 200)}`);
      return { ms, bytes: Buffer.byteLength(body), body };
    };
    const mdFirst = await mdInProcess();
    const mdGrid = JSON.parse(mdFirst.body);
    const mdMappedCells = mdGrid.cells.filter((c) => c.mapped);
    if (mdGrid.runs.length !== runs || mdGrid.cells.length !== cells || mdMappedCells.length !== runs || mdMappedCells.some((c) => c.count !== mapInstances)) {
      throw new Error(`the mapped grid has ${mdGrid.runs.length} runs, ${mdGrid.cells.length} cells (${mdMappedCells.length} mapped); expected ${runs}, ${cells} (${runs}, each of ${mapInstances})`);
    }
    const mdRepeated = [];
    for (let i = 0; i < mappedGridReps; i++) mdRepeated.push(await mdInProcess());
    const mappedGrid = { runs, tasks, mapInstances, instances: mdInstances, cells, seedMs: mdSeeded.ms, bytes: mdFirst.bytes, firstServerMs: mdFirst.ms, serverMs: summary(mdRepeated.map((r) => r.ms)), reps: mappedGridReps };
    log(`mapped grid ${fmtBytes(mdFirst.bytes)} (${fmt(mdInstances)} task instances): server ${fmtSummary(mappedGrid.serverMs, 'ms')} (first: ${fmt(mdFirst.ms)} ms)`);

    return {
      params: { scale, runs, tasks, cells, gridReps, gridWarmups, paintReps, tailReps, dagId: DAG_ID, seedMs: seeded.ms },
      grid: { bytes: first.bytes, firstServerMs: first.ms, firstHttpMs: firstHttp.ms, serverMs: gridServerMs, httpMs: gridHttpMs },
      mappedGrid,
      log: tailResult,
      browser: browserResult,
    };
  } finally {
    await browser?.close();
    for (const s of servers.reverse()) await s.close();
    await store.close();
  }
}

export function render(r) {
  const md = [];
  const p = r.params;
  md.push(`One DAG of ${p.tasks} tasks with ${p.runs} finished runs (${fmt(p.cells)} task instances, every 10th run failed at one task) in a fresh SQLite database, inserted through the Store API (one \`createRun\` transaction per run and its task instances, ${fmt(p.seedMs)} ms in all; nothing executed), served by \`startWebServer\` in the case process. **Grid server time**: the server's own Hono app (same routes, store and auth) called in process with a \`Request\` for \`/api/v1/dags/<id>/grid?limit=100\`, from the call to the last byte of its body, no socket; **loopback**: Node's \`fetch\` to the listening server, request to last byte. Both interleaved, ${p.gridWarmups} untimed warm-ups each, ${p.gridReps} repetitions.`);
  md.push('');
  md.push(table(['grid of 100 runs', 'first request (ms)', `median of ${p.gridReps} (min-max)`], [
    ['server time (in process)', fmt(r.grid.firstServerMs), fmtSummary(r.grid.serverMs, 'ms')],
    ['loopback HTTP round trip', fmt(r.grid.firstHttpMs), fmtSummary(r.grid.httpMs, 'ms')],
  ]));
  md.push('');
  md.push(`The response is ${fmtBytes(r.grid.bytes)} of JSON.`);
  md.push('');
  const m = r.mappedGrid;
  if (m) {
    md.push(`**Mapped grid**: a second DAG in the same database, ${m.tasks - 1} tasks plus one mapped over ${fmt(m.mapInstances)} items, ${m.runs} finished runs (${fmt(m.instances)} task instances, ${fmt(m.seedMs)} ms to insert): its grid is still ${fmt(m.cells)} cells, a mapped task's instances one cell per run, counted by state in the database (\`Store.gridRuns\`). Server time as above, ${m.reps} repetitions after the first request.`);
    md.push('');
    md.push(table([`mapped grid of ${m.runs} runs`, 'first request (ms)', `median of ${m.reps} (min-max)`], [
      [`server time (in process), ${fmt(m.instances)} task instances`, fmt(m.firstServerMs), fmtSummary(m.serverMs, 'ms')],
    ]));
    md.push('');
    md.push(`The response is ${fmtBytes(m.bytes)} of JSON.`);
    md.push('');
  }
  const b = r.browser;
  if (b?.skipped) md.push(`**Chromium: not measured.** ${b.skipped}.`);
  else if (b) {
    md.push(`**Chromium ${b.chromium}** (headless, playwright-core, viewport ${b.viewport}, signed in once): ${p.paintReps} navigations from about:blank to the DAG's page after one untimed one (the app's script and styles cached, as for a returning user). Times are the page's own clock from navigation start; "painted" is the first frame rendered with every one of the ${fmt(p.cells)} cells in the document.`);
    md.push('');
    md.push(table(['in Chromium, from navigation start', `median of ${p.paintReps} (min-max)`], [
      ['grid response received', fmtSummary(b.gridFetchEndMs, 'ms')],
      ['(the grid request itself)', fmtSummary(b.gridFetchMs, 'ms')],
      [`all ${fmt(p.cells)} cells in the document`, fmtSummary(b.inDomMs, 'ms')],
      ['**grid painted**', fmtSummary(b.paintedMs, 'ms')],
      [`click on the cell with the ${fmtBytes(r.log.fileBytes)} log -> its tail shown (from the click)`, fmtSummary(b.logOpenMs, 'ms')],
    ]));
  }
  md.push('');
  md.push(`**Log tail**: a ${fmtBytes(r.log.fileBytes)} log file of one try. \`GET .../tries/1/log\` returns the last ${fmtBytes(r.log.tailBytes)} (one stat, one read): first request ${fmt(r.log.firstMs)} ms (the file was just written, so it is in the page cache), then ${fmtSummary(r.log.ms, 'ms')}; the live tail the UI opens (\`.../log/stream\`, SSE) to its first event: ${fmtSummary(r.log.streamFirstEventMs, 'ms')}. Loopback round trips, request to last byte.`);
  const bars = [
    { label: 'grid, server time', value: r.grid.serverMs.median, color: '#2b8a3e' },
    { label: 'grid, loopback HTTP', value: r.grid.httpMs.median, color: '#2b8a3e' },
    ...(r.mappedGrid ? [{ label: 'mapped grid, server time', value: r.mappedGrid.serverMs.median, color: '#2b8a3e' }] : []),
    ...(b && !b.skipped ? [{ label: 'grid painted (Chromium)', value: b.paintedMs.median, color: '#1971c2' }, { label: 'log tail shown (Chromium)', value: b.logOpenMs.median, color: '#1971c2' }] : []),
    { label: 'log tail, first request', value: r.log.firstMs, color: '#e8590c' },
    { label: 'log tail, live first event', value: r.log.streamFirstEventMs.median, color: '#e8590c' },
  ];
  const charts = [{
    name: 'web-scale',
    alt: 'Grid of 100 runs x 100 tasks: server time, loopback, Chromium paint; 50 MB log tail',
    svg: barChart({ title: `Web UI, ${p.runs} runs x ${p.tasks} tasks, ${fmtBytes(r.log.fileBytes)} log (medians, log scale)`, unit: 'ms', bars, log: true }),
  }];
  return { markdown: md.join('\n'), charts };
}
