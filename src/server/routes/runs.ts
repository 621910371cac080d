/** Runs: list, one (with its task instances), trigger, clear. */
import { Hono } from 'hono';
import { getDagOrThrow } from '../../app/dags-view.js';
import { showRun } from '../../app/scheduler-ops.js';
import { clearTaskInstances } from '../../app/task-ops.js';
import { triggerDagRuns } from '../../app/trigger.js';
import type { RunState } from '../../dag/types.js';
import type { ApiClearResult, ApiRun, ApiRunDetail } from '../api-types.js';
import type { ServerDeps } from '../deps.js';
import { badRequest } from '../errors.js';
import { intParam, jsonBody, optionalBoolean, optionalDate, optionalMapIndex, optionalObject, optionalString } from '../input.js';
import { toApiRun, toApiTaskInstance } from '../mappers.js';

const RUN_STATES: readonly RunState[] = ['queued', 'running', 'success', 'failed'];

export function runRoutes({ store, config }: ServerDeps): Hono {
  const app = new Hono();

  const list = async (dagId: string | undefined, state: string | undefined, limitRaw: string | undefined) => {
    if (state !== undefined && !RUN_STATES.includes(state as RunState)) throw badRequest(`'state' must be one of ${RUN_STATES.join(', ')}, got '${state}'`);
    const limit = intParam(limitRaw, 'limit', 100, 1, 1000);
    const runs = await store.listRuns({ dagId, states: state === undefined ? undefined : [state as RunState], limit });
    return { runs: runs.map(toApiRun) satisfies ApiRun[] };
  };

  app.get('/runs', async (c) => c.json(await list(c.req.query('dagId'), c.req.query('state'), c.req.query('limit'))));

  app.get('/dags/:dagId/runs', async (c) => {
    await getDagOrThrow(store, c.req.param('dagId'));
    return c.json(await list(c.req.param('dagId'), c.req.query('state'), c.req.query('limit')));
  });

  app.post('/dags/:dagId/runs', async (c) => {
    const body = await jsonBody(c);
    const { runs, paused } = await triggerDagRuns(store, config, c.req.param('dagId'), {
      params: optionalObject(body, 'params'),
      runId: optionalString(body, 'runId'),
      logicalDate: optionalDate(body, 'logicalDate'),
    });
    return c.json({ run: toApiRun(runs[0]!), paused }, 201);
  });

  app.get('/dags/:dagId/runs/:runId', async (c) => {
    const { run, tasks } = await showRun(store, c.req.param('dagId'), c.req.param('runId'));
    return c.json({ run: toApiRun(run), taskInstances: tasks.map(toApiTaskInstance) } satisfies ApiRunDetail);
  });

  app.post('/dags/:dagId/runs/:runId/clear', async (c) => {
    const body = await jsonBody(c);
    const result = await clearTaskInstances(store, c.req.param('dagId'), c.req.param('runId'), {
      taskId: optionalString(body, 'taskId'),
      mapIndex: optionalMapIndex(body, 'mapIndex'),
      downstream: optionalBoolean(body, 'downstream'),
      dryRun: optionalBoolean(body, 'dryRun'),
    });
    return c.json({ dryRun: result.dryRun, cleared: result.cleared, skipped: result.skipped, conflicts: result.conflicts } satisfies ApiClearResult);
  });

  return app;
}
