import { createHash } from 'node:crypto';
import { parseDurationMs } from './duration.js';
import { DEFAULT_MAX_MAP_LENGTH } from './mapping.js';
import type { CallbackKind, Dag, SerializedDag } from './types.js';

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
    tasks: [...d.tasks.values()].map(({ fn: _fn, retryOn: _retryOn, onSuccess: _s, onFailure: _f, onRetry: _r, onSkipped: _k, ...rest }) => ({ ...rest, upstream: [...rest.upstream] })),
    callbacks: (['success', 'failure'] as CallbackKind[]).filter((k) => typeof (k === 'success' ? o.onSuccess : o.onFailure) === 'function'),
    dagrunTimeoutMs: o.dagrunTimeout === undefined ? null : (parseDurationMs(o.dagrunTimeout) ?? null),
    maxMapLength: o.maxMapLength ?? DEFAULT_MAX_MAP_LENGTH,
  };
}

/** A short content hash: the version of a DAG file's source. */
export function contentVersion(source: string | Buffer): string {
  return createHash('sha256').update(source).digest('hex').slice(0, 16);
}
