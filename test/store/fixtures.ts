/** Rows for the store tests: complete, valid defaults with per-test overrides. */
import type { SerializedDag } from '../../src/dag/types.js';
import type { RunRow, TiRow } from '../../src/store/types.js';

export function serializedDag(dagId: string, taskIds: string[] = ['a', 'b']): SerializedDag {
  return {
    dagId,
    schedule: '@hourly',
    startDate: '2026-01-01T00:00:00.000Z',
    catchup: false,
    maxActiveRuns: 16,
    maxActiveTasks: 16,
    params: { region: 'eu', nested: { list: [1, 2, { deep: true }] } },
    tags: ['t'],
    description: null,
    tasks: taskIds.map((taskId, i) => ({
      taskId,
      upstream: i === 0 ? [] : [taskIds[i - 1]!],
      triggerRule: 'all_success',
      retries: 1,
      retryDelayMs: 30_000,
      retryExponentialBackoff: false,
      maxRetryDelayMs: null,
      timeoutMs: null,
      heartbeatTimeoutMs: null,
      maxTaskMemoryBytes: null,
      noRetryOn: [],
      isolation: null,
      pool: 'default_pool',
      poolSlots: 1,
      priorityWeight: 1,
      env: [],
    })),
  };
}

export function run(dagId: string, runId: string, over: Partial<RunRow> = {}): RunRow {
  return {
    dagId,
    runId,
    runType: 'manual',
    logicalDate: 1_767_225_600_000,
    dataIntervalStart: 1_767_139_200_000,
    dataIntervalEnd: 1_767_225_600_000,
    state: 'queued',
    params: { n: 1, nested: { a: [1, 'two', null] } },
    dagVersion: 'v1',
    queuedAt: 1_767_225_600_000,
    startedAt: null,
    endedAt: null,
    claimedBy: null,
    failureReason: null,
    ...over,
  };
}

export function ti(dagId: string, runId: string, taskId: string, over: Partial<TiRow> = {}): TiRow {
  return {
    dagId,
    runId,
    taskId,
    mapIndex: -1,
    state: 'none',
    tryNumber: 0,
    maxTries: 2,
    pool: 'default_pool',
    poolSlots: 1,
    priorityWeight: 1,
    isolation: null,
    queuedAt: null,
    startedAt: null,
    endedAt: null,
    durationMs: null,
    pid: null,
    exitCode: null,
    signal: null,
    error: null,
    peakRssBytes: null,
    cpuMs: null,
    lastHeartbeatAt: null,
    queuedBy: null,
    nextRetryAt: null,
    firstPokeAt: null,
    ...over,
  };
}

/** A TI with every nullable field filled, including fractional durations. */
export function fullTi(dagId: string, runId: string, taskId: string): TiRow {
  return ti(dagId, runId, taskId, {
    state: 'failed',
    tryNumber: 2,
    maxTries: 3,
    pool: 'small',
    poolSlots: 2,
    priorityWeight: 7,
    isolation: 'spawn',
    queuedAt: 1_767_225_600_001,
    startedAt: 1_767_225_600_002,
    endedAt: 1_767_225_600_500,
    durationMs: 498.25,
    pid: 4242,
    exitCode: 1,
    signal: 'SIGKILL',
    error: 'boom: "quoted", {braces}, back\\slash, ünïcode',
    peakRssBytes: 5_368_709_120,
    cpuMs: 12.5,
    lastHeartbeatAt: 1_767_225_600_400,
    queuedBy: 'sched-1',
    nextRetryAt: 1_767_225_630_000,
    firstPokeAt: 1_767_225_500_000,
  });
}
