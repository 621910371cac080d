import { createHash } from 'node:crypto';
import type { Dag, SerializedDag } from './types.js';

export function serializeDag(d: Dag): SerializedDag {
  const o = d.options;
  return {
    dagId: d.dagId,
    schedule: o.schedule ?? null,
    startDate: o.startDate === undefined ? null : new Date(o.startDate).toISOString(),
    catchup: o.catchup ?? false,
    maxActiveRuns: o.maxActiveRuns ?? 16,
    maxActiveTasks: o.maxActiveTasks ?? 16,
    params: o.params ?? {},
    paramsSchema: o.paramsSchema ?? null,
    tags: o.tags ?? [],
    description: o.description ?? null,
    tasks: [...d.tasks.values()].map(({ fn: _fn, retryOn: _retryOn, ...rest }) => ({ ...rest, upstream: [...rest.upstream] })),
  };
}

/** A short content hash: the version of a DAG file's source. */
export function contentVersion(source: string | Buffer): string {
  return createHash('sha256').update(source).digest('hex').slice(0, 16);
}
