/** Pools: list with the slots in use, set, delete. */
import { Hono } from 'hono';
import { removePool, savePool } from '../../app/pools.js';
import { poolUsage } from '../../app/scheduler-ops.js';
import type { ApiPool } from '../api-types.js';
import type { ServerDeps } from '../deps.js';
import { badRequest } from '../errors.js';
import { intParam, jsonBody } from '../input.js';

export function poolRoutes({ store }: ServerDeps): Hono {
  const app = new Hono();

  app.get('/pools', async (c) => {
    const pools = (await poolUsage(store)).map((p) => ({ name: p.name, slots: p.slots, usedSlots: p.usedSlots, description: p.description }));
    return c.json({ pools: pools satisfies ApiPool[] });
  });

  app.put('/pools/:name', async (c) => {
    const body = await jsonBody(c);
    if (body.slots === undefined) throw badRequest("'slots' is required");
    const description = body.description;
    if (description !== undefined && description !== null && typeof description !== 'string') throw badRequest("'description' must be a string or null");
    const pool = await savePool(store, c.req.param('name'), intParam(body.slots, 'slots', 0, 0, 1_000_000), description as string | null | undefined);
    return c.json(pool);
  });

  app.delete('/pools/:name', async (c) => {
    await removePool(store, c.req.param('name'));
    return c.body(null, 204);
  });

  return app;
}
