/**
 * A RunEngine on a real SQLite store with a scripted FakeExecutor: the engine's decisions
 * (readiness, retries, limits, callbacks) tested without real workers.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach } from 'vitest';
import { dag } from '../../src/dag/authoring.js';
import { serializeDag } from '../../src/dag/serialize.js';
import type { DagBuilder } from '../../src/dag/authoring.js';
import type { DagOptions } from '../../src/dag/types.js';
import { RunEngine, type RunEngineOptions } from '../../src/scheduler/run-engine.js';
import { initialTaskInstances, RunState } from '../../src/scheduler/run-state.js';
import { createStore } from '../../src/store/index.js';
import type { RunRow, Store, WriteBatch } from '../../src/store/types.js';
import { FakeExecutor, type ScriptedOutcome } from './fake-executor.js';
import type { TaskWork } from '../../src/protocol/messages.js';

let store: Store | undefined;
afterEach(async () => {
  await store?.close();
  store = undefined;
});

export async function setup(options: Omit<DagOptions, 'id'>, build: (d: DagBuilder) => void, script: (w: TaskWork) => ScriptedOutcome | Promise<ScriptedOutcome>, engineOptions: { parallelism?: number; poolSlots?: Map<string, number>; poolsInStore?: boolean } & Partial<Pick<RunEngineOptions, 'onCallbackFailed' | 'now'>> = {}) {
  store = await createStore(`sqlite:${join(mkdtempSync(join(tmpdir(), 'kiln-engine-')), 'kiln.db')}`);
  await store.migrate();
  const serialized = serializeDag(dag({ id: 'd', ...options }, build));
  await store.upsertDag({ dagId: 'd', file: '/dev/null', version: 'v1', serialized });
  const late: { engine?: RunEngine } = {};
  const executor = new FakeExecutor({ parallelism: engineOptions.parallelism ?? 8, onEvent: (e) => late.engine!.onExecutorEvent(e) }, script);
  // The engine's transactions, counted.
  const writes = { count: 0 };
  const s = store;
  const counted = new Proxy(s, { get: (target, prop) => (prop === 'write' ? (batch: WriteBatch) => (writes.count++, s.write(batch)) : Reflect.get(target, prop)) });
  const engine = (late.engine = new RunEngine({ store: counted, executor, schedulerId: 'test', logsFolder: '/tmp/kiln-engine-logs', defaultIsolation: 'thread', poolSlots: engineOptions.poolSlots, poolsInStore: engineOptions.poolsInStore, onCallbackFailed: engineOptions.onCallbackFailed, now: engineOptions.now }));
  const newRun = async (runId = 'r1') => {
    const row: RunRow = { dagId: 'd', runId, runType: 'manual', logicalDate: 0, dataIntervalStart: 0, dataIntervalEnd: 0, state: 'queued', params: {}, dagVersion: 'v1', queuedAt: Date.now(), startedAt: null, endedAt: null, claimedBy: 'test' };
    const tis = initialTaskInstances('d', runId, serialized.tasks);
    await store!.createRun(row, tis);
    return new RunState(row, serialized, '/dev/null', tis);
  };
  return { engine, executor, store: store!, newRun, serialized, writes };
}

export const ok: ScriptedOutcome = { outcome: 'success' };
