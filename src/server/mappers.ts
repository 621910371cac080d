/** Store rows to the API's JSON shapes (api-types.ts). */
import type { DagOverview } from '../app/dags-view.js';
import type { DagRow, RunRow, TiRow } from '../store/types.js';
import type { ApiDag, ApiDagSummary, ApiInstanceSummary, ApiRun, ApiTaskInstance, ApiTry } from './api-types.js';

export function toApiRun(r: RunRow): ApiRun {
  return {
    dagId: r.dagId, runId: r.runId, runType: r.runType, state: r.state, logicalDate: r.logicalDate, dataIntervalStart: r.dataIntervalStart,
    dataIntervalEnd: r.dataIntervalEnd, params: r.params, dagVersion: r.dagVersion, queuedAt: r.queuedAt, startedAt: r.startedAt, endedAt: r.endedAt, claimedBy: r.claimedBy,
  };
}

export function toApiDagSummary(o: DagOverview): ApiDagSummary {
  const s = o.dag.serialized;
  return {
    dagId: o.dag.dagId, file: o.dag.file, schedule: s.schedule, description: s.description, tags: s.tags, paused: o.dag.isPaused, tasks: s.tasks.length,
    nextRun: o.nextRun, lastRuns: o.lastRuns.map((r) => ({ runId: r.runId, state: r.state, logicalDate: r.logicalDate, runType: r.runType })),
  };
}

export function toApiDag(d: DagRow, nextRun: ApiDag['nextRun']): ApiDag {
  const s = d.serialized;
  return {
    dagId: d.dagId, file: d.file, version: d.version, schedule: s.schedule, description: s.description, tags: s.tags, paused: d.isPaused, nextRun,
    maxActiveRuns: s.maxActiveRuns, maxActiveTasks: s.maxActiveTasks, params: s.params, paramsSchema: s.paramsSchema ?? null,
    tasks: s.tasks.map((t) => ({
      taskId: t.taskId, upstream: t.upstream, triggerRule: t.triggerRule, retries: t.retries, isolation: t.isolation, pool: t.pool, poolSlots: t.poolSlots,
      priorityWeight: t.priorityWeight, timeoutMs: t.timeoutMs, mapped: t.map !== undefined,
    })),
    edges: s.tasks.flatMap((t) => t.upstream.map((from) => ({ from, to: t.taskId }))),
  };
}

/** The latest try in full; earlier ones only by number (kiln keeps their logs, not their rows). */
export function toApiTaskInstance(t: TiRow): ApiTaskInstance {
  const tries: ApiTry[] = [];
  for (let n = 1; n < t.tryNumber; n++) {
    tries.push({ tryNumber: n, recorded: false, state: null, isolation: null, pid: null, queuedAt: null, startedAt: null, endedAt: null, durationMs: null, exitCode: null, signal: null, error: null, peakRssBytes: null, cpuMs: null, lastHeartbeatAt: null });
  }
  if (t.tryNumber >= 1) {
    tries.push({
      tryNumber: t.tryNumber, recorded: true, state: t.state, isolation: t.isolation, pid: t.pid, queuedAt: t.queuedAt, startedAt: t.startedAt, endedAt: t.endedAt,
      durationMs: t.durationMs, exitCode: t.exitCode, signal: t.signal, error: t.error, peakRssBytes: t.peakRssBytes, cpuMs: t.cpuMs, lastHeartbeatAt: t.lastHeartbeatAt,
    });
  }
  return {
    dagId: t.dagId, runId: t.runId, taskId: t.taskId, mapIndex: t.mapIndex, state: t.state, tryNumber: t.tryNumber, maxTries: t.maxTries, pool: t.pool, poolSlots: t.poolSlots,
    priorityWeight: t.priorityWeight, nextRetryAt: t.nextRetryAt, tries,
  };
}

export function toApiInstanceSummary(t: TiRow): ApiInstanceSummary {
  return {
    mapIndex: t.mapIndex, state: t.state, tryNumber: t.tryNumber, maxTries: t.maxTries, startedAt: t.startedAt, endedAt: t.endedAt, durationMs: t.durationMs,
    error: t.error === null ? null : t.error.split('\n')[0]!,
  };
}
