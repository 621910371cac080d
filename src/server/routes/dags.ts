/** DAGs: list, one, pause/unpause, import errors, the grid. */
import { Hono } from 'hono';
import { getDagOrThrow, listDagOverviews, nextRunOf, setDagPaused } from '../../app/dags-view.js';
import { dagGrid } from '../../app/grid.js';
import type { RunCursor } from '../../store/types.js';
import type { ApiDag, ApiDagList, ApiGrid, ApiImportError } from '../api-types.js';
import type { ServerDeps } from '../deps.js';
import { badRequest } from '../errors.js';
import { intParam } from '../input.js';
import { toApiDag, toApiDagSummary } from '../mappers.js';

export function dagRoutes({ store, config }: ServerDeps): Hono {
  const app = new Hono();

  app.get('/dags', async (c) => {
    const lastRuns = intParam(c.req.query('lastRuns'), 'lastRuns', 10, 0, 100);
    const { dags, importErrors } = await listDagOverviews(store, { lastRuns });
    return c.json({ dags: dags.map(toApiDagSummary), importErrors } satisfies ApiDagList);
  });

  app.get('/import-errors', async (c) => c.json({ importErrors: (await store.listImportErrors()) satisfies ApiImportError[] }));

  app.get('/dags/:dagId', async (c) => {
    const dag = await getDagOrThrow(store, c.req.param('dagId'));
    return c.json(toApiDag(dag, nextRunOf(dag, Date.now())) satisfies ApiDag);
  });

  for (const [action, paused] of [['pause', true], ['unpause', false]] as const) {
    app.post(`/dags/:dagId/${action}`, async (c) => {
      const dag = await setDagPaused(store, config, c.req.param('dagId'), paused);
      return c.json(toApiDag(dag, nextRunOf(dag, Date.now())) satisfies ApiDag);
    });
  }

  app.get('/dags/:dagId/grid', async (c) => {
    const limit = intParam(c.req.query('limit'), 'limit', 25, 1, 500);
    const before = decodeCursor(c.req.query('before'));
    const page = await dagGrid(store, c.req.param('dagId'), { limit, before });
    const runIndex = new Map(page.runs.map((r, i) => [r.runId, i]));
    const taskIndex = new Map(page.tasks.map((t, i) => [t, i]));
    const grid: ApiGrid = {
      dagId: page.dagId,
      tasks: page.tasks,
      runs: page.runs.map((r) => ({ runId: r.runId, state: r.state, runType: r.runType, logicalDate: r.logicalDate, startedAt: r.startedAt, endedAt: r.endedAt })),
      // A mapped task's instances are one summing cell per run (ApiGridMappedCell).
      cells: page.cells.map((t) => {
        const cell = { run: runIndex.get(t.runId)!, task: taskIndex.get(t.taskId)!, state: t.state, tryNumber: t.tryNumber };
        return t.mapped ? { ...cell, mapped: true as const, count: t.count, states: t.states } : cell;
      }),
      nextCursor: page.next === null ? null : encodeCursor(page.next),
    };
    return c.json(grid);
  });

  return app;
}

/** The grid's cursor: opaque to clients (base64url of the last run's logical date and id). */
export function encodeCursor(cursor: RunCursor): string {
  return Buffer.from(JSON.stringify([cursor.logicalDate, cursor.runId])).toString('base64url');
}

function decodeCursor(raw: string | undefined): RunCursor | undefined {
  if (raw === undefined || raw === '') return undefined;
  try {
    const [logicalDate, runId] = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')) as [unknown, unknown];
    if (typeof logicalDate === 'number' && typeof runId === 'string') return { logicalDate, runId };
  } catch {}
  throw badRequest(`'before' is not a cursor this server gave out: ${JSON.stringify(raw)}`);
}
