/**
 * What the supervisor hands a pooled worker through the pool library's own task call
 * (piscina's or tinypool's `run()`), and what comes back. Everything else (logs, heartbeats,
 * XCom pulls, cancel) travels as kiln protocol messages (src/protocol/messages.ts) on the
 * worker's persistent side channel.
 *
 * The result rides on the pool's reply rather than on a separate 'finished' message: one
 * message per direction per task, which is what makes a noop round trip cost what the raw
 * pool costs.
 */
import type { MessagePort } from 'node:worker_threads';
import type { SupervisorMessage, TaskResult } from '../src/protocol/messages.js';

/** The first call on a new worker: loads the runner, installs the DAG loader hooks. */
export interface WarmRequest {
  __kiln: 1;
  type: 'warm';
  /** A worker holding more distinct DAG versions than this asks to be recycled. */
  maxDagVersions: number;
  /** Threads only: the worker's persistent side channel, transferred once. */
  port?: MessagePort;
  /**
   * Threads only: pids of processes the running try spawned. Slot 0 holds the count. The
   * supervisor reads it when it must kill a try whose thread may be stuck in a loop.
   */
  childPids?: Int32Array;
}

export interface WarmReply {
  pid: number;
  threadId: number;
}

/** One try. `env` carries values of protected variables the task is allowed to see. */
export type RunRequest = Extract<SupervisorMessage, { type: 'run' }> & { env?: Record<string, string> };

export interface RunReply {
  result: TaskResult;
  /** The worker asks to be replaced (too many DAG versions loaded, or stray async errors). */
  recycle: boolean;
  /** What the worker holds now: heap in use (thread) or RSS (process). */
  workerMemoryBytes: number;
}

export type PoolRequest = WarmRequest | RunRequest;

/** Capacity of WarmRequest.childPids (slot 0 is the count). */
export const MAX_TRACKED_CHILD_PIDS = 63;
