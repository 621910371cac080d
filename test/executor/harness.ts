/**
 * Drives a real executor from a test: submit a task of a fixture DAG, wait for its events.
 * The executor and its runners are the compiled ones in dist/ (the runners are started
 * from there), so `npm run build` comes first.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Executor, ExecutorEvent, TaskApi } from '../../dist/src/executor/types.js';
import type { LocalExecutorOptions } from '../../dist/src/executor/options.js';
import { createLocalExecutor } from '../../dist/src/executor/local-executor.js';
import type { Isolation } from '../../dist/src/dag/types.js';
import type { TaskWork } from '../../dist/src/protocol/messages.js';

export type Finished = Extract<ExecutorEvent, { type: 'finished' }>;
export const fixturesDir = fileURLToPath(new URL('../fixtures/executor/', import.meta.url));

export interface Harness {
  executor: Executor;
  events: ExecutorEvent[];
  logs: Array<{ key: string; level: string; line: string }>;
  /** Submits one try of `taskId` from the suite DAG; resolves with its 'finished' event. */
  run(taskId: string, overrides?: Partial<TaskWork>): Promise<Finished>;
  submit(taskId: string, overrides?: Partial<TaskWork>): { key: string; work: TaskWork; finished: Promise<Finished> };
  /** Resolves with the first event (past or future) that matches. */
  next(match: (e: ExecutorEvent) => boolean): Promise<ExecutorEvent>;
  eventsOf(key: string): ExecutorEvent[];
}

let counter = 0;

export function createHarness(options: {
  isolation: Isolation;
  logDir: string;
  dagFile?: string;
  taskApi?: TaskApi;
  executor?: Partial<LocalExecutorOptions>;
}): Harness {
  const events: ExecutorEvent[] = [];
  const logs: Harness['logs'] = [];
  const watchers = new Set<{ match: (e: ExecutorEvent) => boolean; resolve: (e: ExecutorEvent) => void }>();
  const executor = createLocalExecutor({
    parallelism: 4,
    defaultIsolation: options.isolation,
    logDir: options.logDir,
    taskApi: options.taskApi ?? { xcom: async () => undefined },
    onEvent: (e) => {
      events.push(e);
      for (const w of watchers) {
        if (w.match(e)) {
          watchers.delete(w);
          w.resolve(e);
        }
      }
    },
    onLog: (key, level, line) => logs.push({ key, level, line }),
    ...options.executor,
  });
  const next = (match: (e: ExecutorEvent) => boolean) => {
    const seen = events.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise<ExecutorEvent>((resolve) => watchers.add({ match, resolve }));
  };
  const submit = (taskId: string, overrides: Partial<TaskWork> = {}) => {
    const n = ++counter;
    const runId = `run-${n}`;
    const work: TaskWork = {
      key: `suite/${runId}/${taskId}/1`,
      dagId: 'suite',
      runId,
      taskId,
      tryNumber: 1,
      maxTries: 2,
      dagFile: options.dagFile ?? join(fixturesDir, 'suite.ts'),
      dagVersion: 'v1',
      params: {},
      runType: 'manual',
      logicalDate: 0,
      dataIntervalStart: 0,
      dataIntervalEnd: 0,
      prevDataIntervalStartSuccess: null,
      prevDataIntervalEndSuccess: null,
      isolation: options.isolation,
      timeoutMs: null,
      heartbeatTimeoutMs: null,
      env: [],
      logFile: join(options.logDir, runId, `${taskId}.log`),
      ...overrides,
    };
    const finished = next((e) => e.type === 'finished' && e.key === work.key) as Promise<Finished>;
    executor.submit(work);
    return { key: work.key, work, finished };
  };
  return {
    executor,
    events,
    logs,
    submit,
    run: (taskId, overrides) => submit(taskId, overrides).finished,
    next,
    eventsOf: (key) => events.filter((e) => ('key' in e && e.key === key) || (e.type === 'heartbeat' && e.keys.includes(key))),
  };
}

/** A pid is gone when it no longer exists or is a zombie waiting for a parent to reap it. */
export function isGone(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}
