/** Task instances: one with its tries, a try's log (tail, download, live), XCom, mark. */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { Hono, type Context } from 'hono';
import { streamSSE } from 'hono/streaming';
import { readLogChunk, tryLogFile } from '../../app/logs.js';
import { markTaskInstance } from '../../app/task-ops.js';
import { KilnError } from '../../errors.js';
import type { TiKey } from '../../store/types.js';
import { getDagOrThrow } from '../../app/dags-view.js';
import type { ApiLogChunk, ApiMarkResult, ApiTaskHistory } from '../api-types.js';
import type { ServerDeps } from '../deps.js';
import { intParam, jsonBody, optionalBoolean, optionalString } from '../input.js';
import { toApiTaskInstance } from '../mappers.js';

const TASK = '/dags/:dagId/runs/:runId/tasks/:taskId';
const TRY = `${TASK}/tries/:tryNumber`;
const DEFAULT_TAIL_BYTES = 64 * 1024;
const MAX_CHUNK_BYTES = 1024 * 1024;
/** How often a live log tail looks at the file's size (one stat per open tail). */
const LOG_FOLLOW_MS = 250;

export function taskRoutes({ store, config }: ServerDeps): Hono {
  const app = new Hono();
  const key = (c: Context): TiKey => ({ dagId: c.req.param('dagId')!, runId: c.req.param('runId')!, taskId: c.req.param('taskId')! });
  const logOf = (c: Context) => tryLogFile(store, config, key(c), intParam(c.req.param('tryNumber'), 'tryNumber', 0, 1, 1_000_000));

  app.get(TASK, async (c) => {
    const k = key(c);
    const ti = await store.getTaskInstance(k);
    if (!ti) throw new KilnError('TASK_NOT_FOUND', `run '${k.runId}' of DAG '${k.dagId}' has no task '${k.taskId}'`);
    return c.json(toApiTaskInstance(ti));
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
    const { file, tryNumber } = await logOf(c);
    const k = key(c);
    const size = await stat(file).then((s) => s.size, () => null);
    const name = `${k.dagId}_${k.runId}_${k.taskId}_${tryNumber}.log`.replace(/[^A-Za-z0-9_.-]/g, '_');
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
    const dag = await getDagOrThrow(store, dagId);
    if (!dag.serialized.tasks.some((t) => t.taskId === taskId)) throw new KilnError('TASK_NOT_FOUND', `DAG '${dagId}' has no task '${taskId}'`);
    const rows = await store.taskHistory(dagId, taskId, intParam(c.req.query('limit'), 'limit', 30, 1, 500));
    const instances = rows.map((t) => ({
      runId: t.runId, logicalDate: t.logicalDate, state: t.state, tryNumber: t.tryNumber, durationMs: t.durationMs, peakRssBytes: t.peakRssBytes, cpuMs: t.cpuMs, exitCode: t.exitCode, signal: t.signal,
    }));
    return c.json({ dagId, taskId, instances } satisfies ApiTaskHistory);
  });

  app.get(`${TASK}/xcom`, async (c) => {
    const k = key(c);
    if (!(await store.getTaskInstance(k))) throw new KilnError('TASK_NOT_FOUND', `run '${k.runId}' of DAG '${k.dagId}' has no task '${k.taskId}'`);
    const value = await store.getXcom(k);
    return c.json({ taskId: k.taskId, value: value === undefined ? null : value });
  });

  app.post(`${TASK}/mark`, async (c) => {
    const body = await jsonBody(c);
    const k = key(c);
    const result = await markTaskInstance(store, k.dagId, k.runId, k.taskId, optionalString(body, 'state') ?? '', { dryRun: optionalBoolean(body, 'dryRun') });
    return c.json(result satisfies ApiMarkResult);
  });

  return app;
}
