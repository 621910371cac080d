/** Pools: `kiln pools set|delete` and the API's. Usage (slots in use) is poolUsage in scheduler-ops.ts. */
import { KilnError, UsageError } from '../errors.js';
import { DEFAULT_POOL } from '../store/rows.js';
import type { PoolRow, Store } from '../store/types.js';

/** Creates a pool or changes its size; a description left out keeps the current one. */
export async function savePool(store: Store, name: string, slots: number, description?: string | null): Promise<PoolRow> {
  if (typeof name !== 'string' || name.length === 0) throw new UsageError('a pool needs a name');
  if (!Number.isInteger(slots) || slots < 0) throw new UsageError(`slots must be an integer >= 0, got '${slots}'`);
  const existing = (await store.listPools()).find((p) => p.name === name);
  const row = { name, slots, description: description === undefined ? (existing?.description ?? null) : description };
  await store.setPool(row);
  return row;
}

export async function removePool(store: Store, name: string): Promise<void> {
  if (name === DEFAULT_POOL) throw new UsageError(`the pool '${DEFAULT_POOL}' cannot be deleted`);
  if (!(await store.deletePool(name))) throw new KilnError('POOL_NOT_FOUND', `no pool named '${name}'`);
}
