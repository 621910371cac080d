/**
 * What metrics and traces listen to: one interface for both, fed by the app layer from the
 * executor (its events, and the hand-overs seen by a thin wrapper around submit()), the run
 * engine (committed task-instance changes, ended runs) and the scheduler (started runs).
 * Every method is optional; a source calls the observers in order, synchronously.
 */
import type { Isolation } from '../dag/types.js';
import type { Executor, ExecutorEvent, TaskWork, WorkerRecycleReason } from '../executor/types.js';

/** What the engine reports about a task instance (a TiRow, structurally). */
export interface TaskInstanceChange {
  dagId: string;
  state: string;
}

/** What the engine and the scheduler report about a run (a RunRow, structurally). */
export interface RunChange {
  dagId: string;
  runId: string;
  state: string;
  runType: string;
  dataIntervalEnd: number;
  startedAt: number | null;
  endedAt: number | null;
}

export interface KilnObserver {
  /** The executor as created (for gauges read at scrape time). */
  executorCreated?(executor: Executor): void;
  /** A try was handed to the executor. */
  trySubmitted?(work: TaskWork): void;
  /** The executor refused a hand-over (it threw): the try never was. */
  tryRefused?(key: string): void;
  executorEvent?(event: ExecutorEvent): void;
  workerRecycled?(isolation: Isolation, reason: WorkerRecycleReason): void;
  /** The engine committed a change to a task instance. */
  taskInstanceChanged?(ti: TaskInstanceChange): void;
  /** The scheduler ended a try whose heartbeat stopped reaching the database (a zombie: its worker or scheduler is gone). */
  tryLost?(ti: TaskInstanceChange): void;
  /** The scheduler started a queued run. */
  runStarted?(run: RunChange): void;
  /** The engine committed the end of a run. */
  runFinished?(run: RunChange): void;
}

/** The executor as the engine should see it: the same, with every hand-over reported. */
export function observeExecutor(executor: Executor, observers: readonly KilnObserver[]): Executor {
  for (const o of observers) o.executorCreated?.(executor);
  const submitted = observers.filter((o) => o.trySubmitted !== undefined);
  return {
    name: executor.name,
    start: () => executor.start(),
    submit: (work) => {
      // A callback's work is not a try: it is not counted, traced or timed as one.
      if (!work.callback) for (const o of submitted) o.trySubmitted!(work);
      try {
        executor.submit(work);
      } catch (err) {
        for (const o of observers) o.tryRefused?.(work.key);
        throw err;
      }
    },
    freeSlots: () => executor.freeSlots(),
    cancel: (key, reason) => executor.cancel(key, reason),
    stop: (options) => executor.stop(options),
    // Every optional member of the interface goes through as it is (OPTIONAL_MEMBERS below
    // fails to compile when the interface gains one this does not name).
    ...(executor.workerCounts ? { workerCounts: () => executor.workerCounts!() } : {}),
    ...(executor.cancelsForeignTries ? { cancelsForeignTries: true } : {}),
    ...(executor.adoptTry ? { adoptTry: (work, state) => executor.adoptTry!(work, state) } : {}),
    ...(executor.preload ? { preload: (module) => executor.preload!(module) } : {}),
  };
}

type OptionalKeys<T> = { [K in keyof T]-?: object extends Pick<T, K> ? K : never }[keyof T];
/** The optional Executor members observeExecutor forwards: one entry per member, no more, no less. */
export const OPTIONAL_MEMBERS = { workerCounts: true, cancelsForeignTries: true, adoptTry: true, preload: true } as const satisfies Record<OptionalKeys<Executor>, true>;
