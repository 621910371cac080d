/** What the executor is handed for one try, and where that try's log goes. Pure. */
import { join } from 'node:path';
import type { Isolation } from '../dag/types.js';
import type { DagModule } from '../executor/types.js';
import { taskKey, type TaskWork } from '../protocol/messages.js';
import type { DataInterval, TiRow } from '../store/types.js';
import { sourceSnapshotPath } from '../../workers/dag-sources.js';
import type { RunState } from './run-state.js';

/** What the executor gets for one try of a task instance (`ti` at its new try number). */
export function taskWork(run: Pick<RunState, 'run' | 'dag' | 'dagFile' | 'tasks'> & { prevSuccess?: DataInterval | null }, ti: TiRow, isolation: Isolation, logFile: string | null, sourcesFolder?: string): TaskWork {
  const task = run.tasks.get(ti.taskId)!;
  const r = run.run;
  return {
    key: taskKey(ti.dagId, ti.runId, ti.taskId, ti.tryNumber, ti.mapIndex), dagId: ti.dagId, runId: ti.runId, taskId: ti.taskId, mapIndex: ti.mapIndex,
    tryNumber: ti.tryNumber, maxTries: ti.maxTries, ...dagModuleOf(run.dagFile, run.run.dagVersion, sourcesFolder),
    params: { ...run.dag.params, ...run.run.params }, isolation,
    runType: r.runType, logicalDate: r.logicalDate, dataIntervalStart: r.dataIntervalStart, dataIntervalEnd: r.dataIntervalEnd,
    prevDataIntervalStartSuccess: run.prevSuccess?.dataIntervalStart ?? null, prevDataIntervalEndSuccess: run.prevSuccess?.dataIntervalEnd ?? null,
    timeoutMs: task.timeoutMs, heartbeatTimeoutMs: task.heartbeatTimeoutMs, env: task.env, logFile,
    // ?? null: a DAG version serialized before this option existed has no such field.
    maxTaskMemoryBytes: task.maxTaskMemoryBytes ?? null,
    queue: task.queue ?? 'default',
    priorityWeight: task.priorityWeight,
    ...(task.kind === 'sensor' ? { sensorFirstPokeAt: ti.firstPokeAt ?? null } : {}),
  };
}

/** The DAG module a run's tries import: the file, the version, and that version's pinned source if it was kept. */
export function dagModuleOf(dagFile: string, dagVersion: string, sourcesFolder?: string): DagModule {
  return { dagFile, dagVersion, dagSourceFile: sourcesFolder === undefined ? null : sourceSnapshotPath(sourcesFolder, dagFile, dagVersion) };
}

/**
 * Where a try's log goes: `<logsFolder>/<dag>/<run>/<task>/<try>.log`, or for a mapped
 * instance `<logsFolder>/<dag>/<run>/<task>/<mapIndex>/<try>.log`, each segment made file-name safe.
 */
export function taskLogFile(logsFolder: string, dagId: string, runId: string, taskId: string, tryNumber: number, mapIndex = -1): string {
  const folder = join(runLogFolder(logsFolder, dagId, runId), safe(taskId));
  return mapIndex < 0 ? join(folder, `${tryNumber}.log`) : join(folder, String(mapIndex), `${tryNumber}.log`);
}

/** The folder holding every log of one run: `<logsFolder>/<dag>/<run>`. */
export function runLogFolder(logsFolder: string, dagId: string, runId: string): string {
  return join(logsFolder, safe(dagId), safe(runId));
}

function safe(segment: string): string {
  return segment.replace(/[^A-Za-z0-9_.-]/g, '_');
}
