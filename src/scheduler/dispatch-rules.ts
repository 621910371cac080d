/**
 * The pure parts of the run engine's dispatch (run-engine.ts): the row a task instance's next
 * try is queued as, and the per-task limits on instances in flight.
 */
import type { Isolation } from '../dag/types.js';
import type { TiRow } from '../store/types.js';
import type { RunState, SerializedTask } from './run-state.js';

/** The row of a scheduled task instance's next try, queued at `now` by `schedulerId`. */
export function queuedRow(ti: TiRow, task: SerializedTask, now: number, schedulerId: string, isolation: Isolation): TiRow {
  return {
    ...ti, state: 'queued', tryNumber: ti.tryNumber + 1, queuedAt: now, queuedBy: schedulerId, isolation,
    startedAt: null, endedAt: null, durationMs: null, pid: null, exitCode: null, signal: null, error: null,
    peakRssBytes: null, cpuMs: null, lastHeartbeatAt: null, nextRetryAt: null,
    // A sensor's timeout counts from its first poke, across reschedules, retries and restarts.
    firstPokeAt: task.kind === 'sensor' ? (ti.firstPokeAt ?? now) : (ti.firstPokeAt ?? null),
  };
}

/**
 * maxActiveTisPerRun / maxActiveTisPerDag: whether the task has as many instances queued or
 * running as it may, in `run` and across `runs` (every run this engine holds).
 */
export function atTaskLimit(run: RunState, task: SerializedTask, runs: Iterable<RunState>): boolean {
  const activeIn = (r: RunState): number => {
    const c = r.byTask.get(task.taskId)?.counts;
    return c === undefined ? 0 : c.queued + c.running;
  };
  if (task.maxActiveTisPerRun != null && activeIn(run) >= task.maxActiveTisPerRun) return true;
  if (task.maxActiveTisPerDag != null) {
    let active = 0;
    for (const r of runs) if (r.run.dagId === run.run.dagId) active += activeIn(r);
    if (active >= task.maxActiveTisPerDag) return true;
  }
  return false;
}
