/**
 * Task instances: one with its tries, a try's log (tail, download, live), XCom, mark, and a
 * task's instances (a mapped task's, paged, and by state). Every route under one task
 * instance takes `?mapIndex=N` (absent: -1, the one instance of a task that is not mapped).
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { Hono, type Context } from 'hono';
import { streamSSE } from 'hono/streaming';
import { parseMapIndex } from '../../app/instance-summary.js';
import { readLogChunk, tryLogFile } from '../../app/logs.js';
import { getInstanceOrThrow, pageTaskInstances, readXcom, taskInstancesOf } from '../../app/task-instances.js';
import { markTaskInstance } from '../../app/task-ops.js';
import { KilnError } from '../../errors.js';
import { TI_STATES, type TiState } from '../../dag/types.js';
import type { TiKey } from '../../store/types.js';
import { getDagOrThrow } from '../../app/dags-view.js';
import type { ApiInstanceStates, ApiLogChunk, ApiMarkResult, ApiTaskHistory, ApiTaskInstancePage, ApiXcom } from '../api-types.js';
import type { ServerDeps } from '../deps.js';
import { badRequest } from '../errors.js';
import { intParam, jsonBody, optionalBoolean, optionalString } from '../input.js';
import { toApiInstanceSummary, toApiTaskInstance } from '../mappers.js';

const TASK = '/dags/:dagId/runs/:runId/tasks/:taskId';
const TRY = `${TASK}/tries/:tryNumber`;
const DEFAULT_TAIL_BYTES = 64 * 1024;
const MAX_CHUNK_BYTES = 1024 * 1024;
/** How often a live log tail looks at the file's size (one stat per open tail). */
const LOG_FOLLOW_MS = 250;

/** `?mapIndex=N`: an integer >= -1, or absent. */
export function mapIndexQuery(c: Context): number | undefined {
  const raw = c.req.query('mapIndex');
  return raw === undefined || raw === '' ? undefined : parseMapIndex(raw, "'mapIndex'");
}

export function taskRoutes({ store, config }: ServerDeps): Hono {
  const app = new Hono();
  const key = (c: Context): TiKey => {
    const mapIndex = mapIndexQuery(c);
    return { dagId: c.req.param('dagId')!, runId: c.req.param('runId')!, taskId: c.req.param('taskId')!, ...(mapIndex === undefined ? {} : { mapIndex }) };
  };
  const logOf = (c: Context) => tryLogFile(store, config, key(c), intParam(c.req.param('tryNumber'), 'tryNumber', 0, 1, 1_000_000));

  app.get(TASK, async (c) => c.json(toApiTaskInstance(await getInstanceOrThrow(store, key(c)))));

  // A page of the task's instances (a mapped task's 10,000 are never sent at once), with the counts of all.
  app.get(`${TASK}/instances`, async (c) => {
    const { dagId, runId, taskId } = key(c);
    const stateRaw = c.req.query('state');
    const states = stateRaw === undefined || stateRaw === '' ? undefined : stateRaw.split(',');
    const bad = states?.find((s) => !(TI_STATES as readonly string[]).includes(s));
    if (bad !== undefined) throw badRequest(`'state' must be a comma-separated list of ${TI_STATES.join(', ')}; got '${bad}'`);
    const page = await pageTaskInstances(store, dagId, runId, taskId, {
      offset: intParam(c.req.query('offset'), 'offset', 0, 0, Number.MAX_SAFE_INTEGER), limit: intParam(c.req.query('limit'), 'limit', 100, 1, 1000), states: states as TiState[] | undefined,
    });
    const body: ApiTaskInstancePage = {
      dagId, runId, taskId, mapped: page.mapped, count: page.count, states: page.states, total: page.total, offset: page.offset, instances: page.instances.map(toApiInstanceSummary),
    };
    return c.json(body);
  });

  // Which instances are in which state, after the feed position read first (the UI's live grid cell starts from this).
  app.get(`${TASK}/instances/by-state`, async (c) => {
    const { dagId, runId, taskId } = key(c);
    const feedPosition = (await store.eventIdRange())?.last ?? 0;
    const all = await taskInstancesOf(store, dagId, runId, taskId);
    const mapIndexes: Partial<Record<TiState, number[]>> = {};
    for (const t of all) (mapIndexes[t.state] ??= []).push(t.mapIndex);
    return c.json({ dagId, runId, taskId, mapped: all.some((t) => t.mapIndex >= 0), count: all.length, feedPosition, mapIndexes } satisfies ApiInstanceStates);
  });

  // The tail (no offset) or a chunk from an offset, as JSON.
  app.get(`${TRY}/log`, async (c) => {
    const { file, tryNumber } = await logOf(c);
    const offset = c.req.query('offset') === undefined ? undefined : intParam(c.req.query('offset'), 'offset', 0, 0, Number.MAX_SAFE_INTEGER);
    const chunk = await readLogChunk(file, { offset, maxBytes: intParam(c.req.query('maxBytes'), 'maxBytes', DEFAULT_TAIL_BYTES, 1, MAX_CHUNK_BYTES) });
    return c.json({ tryNumber, size: chunk.size, offset: chunk.offset, length: chunk.length, text: chunk.text } satisfies ApiLogChunk);
  });

  // The whole file, streamed as text (a 50 MB log is never held in memory).
  app.get(`${TRY}/log/download`, async (c) => {
    const { file, tryNumber, mapIndex } = await logOf(c);
    const k = key(c);
    const size = await stat(file).then((s) => s.size, () => null);
    const name = `${k.dagId}_${k.runId}_${k.taskId}${mapIndex < 0 ? '' : `_${mapIndex}`}_${tryNumber}.log`.replace(/[^A-Za-z0-9_.-]/g, '_');
    const headers = { 'content-type': 'text/plain; charset=utf-8', 'content-disposition': `attachment; filename="${name}"`, 'x-content-type-options': 'nosniff' };
    if (size === null) return c.body('', 200, headers);
    return c.body(Readable.toWeb(createReadStream(file)) as ReadableStream, 200, { ...headers, 'content-length': String(size) });
  });

  // A live tail over SSE: `event: log`, data { offset, text }, the SSE id the byte offset after
  // the chunk, so a reconnect (Last-Event-ID) resumes exactly where it stopped.
  app.get(`${TRY}/log/stream`, async (c) => {
    const { file } = await logOf(c);
    const resume = c.req.header('last-event-id') ?? c.req.query('offset');
    let offset = resume === undefined ? undefined : intParam(resume, 'offset', 0, 0, Number.MAX_SAFE_INTEGER);
    return streamSSE(
      c,
      async (stream) => {
        let open = true;
        stream.onAbort(() => {
          open = false;
        });
        while (open) {
          const chunk = await readLogChunk(file, { offset, maxBytes: offset === undefined ? DEFAULT_TAIL_BYTES : MAX_CHUNK_BYTES });
          if (chunk.length > 0 || offset === undefined) {
            offset = chunk.offset + chunk.length;
            await stream.writeSSE({ event: 'log', id: String(offset), data: JSON.stringify({ offset: chunk.offset, text: chunk.text, size: chunk.size }) });
          }
          if (chunk.offset + chunk.length >= chunk.size) await stream.sleep(LOG_FOLLOW_MS);
        }
      },
      // The tab went away mid-write: nothing to report.
      async () => {},
    );
  });

  app.get('/dags/:dagId/tasks/:taskId/history', async (c) => {
    const dagId = c.req.param('dagId');
    const taskId = c.req.param('taskId');
    const mapIndex = mapIndexQuery(c) ?? -1;
    const dag = await getDagOrThrow(store, dagId);
    if (!dag.serialized.tasks.some((t) => t.taskId === taskId)) throw new KilnError('TASK_NOT_FOUND', `DAG '${dagId}' has no task '${taskId}'`);
    const rows = await store.taskHistory(dagId, taskId, intParam(c.req.query('limit'), 'limit', 30, 1, 500), mapIndex);
    const instances = rows.map((t) => ({
      runId: t.runId, logicalDate: t.logicalDate, state: t.state, tryNumber: t.tryNumber, durationMs: t.durationMs, peakRssBytes: t.peakRssBytes, cpuMs: t.cpuMs, exitCode: t.exitCode, signal: t.signal,
    }));
    return c.json({ dagId, taskId, mapIndex, instances } satisfies ApiTaskHistory);
  });

  // With ?mapIndex= one instance's value; without, the task's result as a downstream reads it (a mapped task's collected list).
  app.get(`${TASK}/xcom`, async (c) => {
    const k = key(c);
    const value = await readXcom(store, k);
    return c.json({ taskId: k.taskId, mapIndex: k.mapIndex ?? null, value: value === undefined ? null : value } satisfies ApiXcom);
  });

  app.post(`${TASK}/mark`, async (c) => {
    const body = await jsonBody(c);
    const k = key(c);
    const result = await markTaskInstance(store, k.dagId, k.runId, k.taskId, optionalString(body, 'state') ?? '', { dryRun: optionalBoolean(body, 'dryRun'), mapIndex: k.mapIndex });
    return c.json(result satisfies ApiMarkResult);
  });

  return app;
}
