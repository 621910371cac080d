/**
 * What the operator commands beside the scheduler (`dags trigger|pause`, `runs`, `tasks`,
 * `pools`) do, as functions over one store opened for the command. They only talk to the
 * database: the scheduler that drives a run learns of a change from it.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { KilnConfig } from '../config/load.js';
import { KilnError } from '../errors.js';
import { mapSourceTasks } from '../dag/mapping.js';
import type { TaskResult } from '../protocol/messages.js';
import { callbackLogFile } from '../scheduler/callbacks.js';
import { planExpansion } from '../scheduler/expansion.js';
import { loadRun, requireInstance, type RunContext } from '../scheduler/operations.js';
import { loadRunState } from '../scheduler/run-loading.js';
import { activeTaskInstances, usedSlots } from '../scheduler/pool-limits.js';
import type { RunState } from '../scheduler/run-state.js';
import { loadSourceResults, readTaskResult } from '../scheduler/task-results.js';
import { taskWork } from '../scheduler/task-work.js';
import { createStore } from '../store/index.js';
import { tryLogFile } from './logs.js';
import type { CallbackRow, PoolRow, RunRow, Store, TiKey, TiRow } from '../store/types.js';

/** Opens (and migrates) the configured database for one command. */
export async function withStore<T>(config: Pick<KilnConfig, 'databaseUrl'>, fn: (store: Store) => Promise<T>): Promise<T> {
  const store = await createStore(config.databaseUrl);
  try {
    await store.migrate();
    return await fn(store);
  } finally {
    await store.close();
  }
}

/** `kiln runs show --json`. */
export interface RunReport {
  run: RunRow;
  /** Every task instance, each with its `mapIndex` (-1 unless mapped), in (task, map index) order. */
  tasks: TiRow[];
  /** Callbacks still owed (not yet run). */
  callbacks: CallbackRow[];
}

export async function showRun(store: Store, dagId: string, runId: string): Promise<RunReport> {
  const run = await store.getRun(dagId, runId);
  if (!run) throw new KilnError('RUN_NOT_FOUND', `DAG '${dagId}' has no run '${runId}'`);
  return { run, tasks: await store.getTaskInstances(dagId, runId), callbacks: await store.listCallbacks(dagId, runId) };
}

/** The text of one try's log file (`--try` defaults to the latest try); a mapped task's instance needs `key.mapIndex`. */
export async function readTaskLog(store: Store, config: Pick<KilnConfig, 'logsFolder'>, key: TiKey, tryNumber?: number): Promise<{ file: string; text: string | null }> {
  // The same checks as the API's log routes (app/logs.ts).
  const { file } = await tryLogFile(store, config, key, tryNumber);
  // The file is created on the first line a try writes: a silent try has none.
  return { file, text: existsSync(file) ? readFileSync(file, 'utf8') : null };
}

/**
 * The logs of a task instance's callbacks (`kiln tasks logs --callbacks`), oldest try first
 * (a mapped instance's: `mapIndex`); without a task id, the DAG's run callbacks. Only
 * callbacks that wrote something have a file.
 */
export function readCallbackLogs(config: Pick<KilnConfig, 'logsFolder'>, key: { dagId: string; runId: string; taskId?: string; mapIndex?: number }, tryNumber?: number): Array<{ file: string; kind: string; tryNumber: number | null; text: string }> {
  const sample = callbackLogFile(config.logsFolder, {
    dagId: key.dagId, runId: key.runId, taskId: key.taskId ?? null, mapIndex: key.taskId === undefined ? null : (key.mapIndex ?? -1), tryNumber: 0, kind: 'success',
  });
  const folder = dirname(sample);
  if (!existsSync(folder)) return [];
  const pattern = key.taskId === undefined ? /^()(success|failure)-callback\.log$/ : /^(\d+)\.(success|failure|retry|skipped)-callback\.log$/;
  const found = readdirSync(folder).flatMap((name) => {
    const m = pattern.exec(name);
    if (!m) return [];
    const n = key.taskId === undefined ? null : Number(m[1]);
    if (tryNumber !== undefined && n !== tryNumber) return [];
    return [{ file: join(folder, name), kind: m[2]!, tryNumber: n, text: readFileSync(join(folder, name), 'utf8') }];
  });
  return found.sort((a, b) => (a.tryNumber ?? 0) - (b.tryNumber ?? 0) || a.kind.localeCompare(b.kind));
}

/** Pools with the slots their queued and running task instances use now. */
export async function poolUsage(store: Store): Promise<Array<PoolRow & { usedSlots: number }>> {
  const { running, queued } = await activeTaskInstances(store);
  const used = usedSlots([...running, ...queued]);
  return (await store.listPools()).map((p) => ({ ...p, usedSlots: used.get(p.name) ?? 0 }));
}

/**
 * `kiln tasks run`: one try of one task instance in this process, by hand (a mapped task's
 * instance by `mapIndex`, with its item computed from its upstreams' stored results). Reads
 * the run from the database (XCom pulls too, a mapped upstream's as its collected results)
 * and records nothing: the task instance's state is the scheduler's to keep. Output goes to
 * the terminal, not to a log file.
 */
export async function runTaskByHand(store: Store, config: Pick<KilnConfig, 'defaultIsolation'>, key: TiKey): Promise<{ ctx: RunContext; ti: TiRow; result: TaskResult }> {
  const ctx = await loadRun(store, key.dagId, key.runId);
  const ti = requireInstance(ctx, key.taskId, key.mapIndex);
  const dag = await store.getDag(key.dagId);
  if (!dag) throw new KilnError('DAG_NOT_FOUND', `DAG '${key.dagId}' is not in the database (its file is gone or failed to import)`);
  const tryRow: TiRow = { ...ti, tryNumber: Math.max(1, ti.tryNumber) };
  const state = await loadRunState(store, ctx.run, ctx.dag, dag.file, ctx.tis);
  const work = taskWork(state, tryRow, state.tasks.get(key.taskId)!.isolation ?? config.defaultIsolation, null);
  if (ti.mapIndex >= 0) work.item = await mappedItem(store, state, ti);
  // Loaded here only: the runner core is not needed by any other command.
  const { runTaskInProcess } = await import('../../workers/run-in-process.js');
  const result = await runTaskInProcess(work, { captureOutput: false, xcom: (dagId, runId, taskId) => readTaskResult(store, dagId, runId, taskId) });
  return { ctx, ti: tryRow, result };
}

/** A mapped instance's item (ctx.item), as the engine would compute it from the stored results of what its task maps over. */
async function mappedItem(store: Store, run: RunState, ti: TiRow): Promise<unknown> {
  const task = run.tasks.get(ti.taskId);
  if (task?.map === undefined) throw new KilnError('TASK_NOT_FOUND', `task '${ti.taskId}' of run '${ti.runId}' is not mapped in the DAG version the run uses`);
  await loadSourceResults(store, run, mapSourceTasks(task.map));
  const plan = planExpansion(run, ti.taskId);
  if (plan.kind !== 'expand' || ti.mapIndex >= plan.items.length) {
    throw new KilnError('TASK_NOT_FOUND', `task '${ti.taskId}' of run '${ti.runId}' has no item at map index ${ti.mapIndex} now (what it maps over ${plan.kind === 'expand' ? `has ${plan.items.length} items` : 'has no result'})`);
  }
  return plan.items[ti.mapIndex];
}
