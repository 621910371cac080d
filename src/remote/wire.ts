/**
 * The one message schema between the `bullmq` executor (scheduler side) and `kiln worker`
 * hosts, and the Redis keys they share. Everything is plain JSON.
 *
 *   scheduler --BullMQ job `try` (RemoteJob) on queue kiln:q:<queue>-->  a worker host
 *   host --XADD kiln:ev:<executor>  (HostEvent: started, heartbeats, XCom pulls, finished hint)
 *   scheduler --XADD kiln:in:<host> (HostCommand: XCom values, cancels)
 *   the job's return value (RemoteResult) is the try's outcome: the truth the scheduler
 *   reconciles from; the 'finished' HostEvent only makes it arrive sooner.
 *
 * Job ids derive from try keys (one job per try, the same id every time it is added), so a
 * job added twice is one job, and a host dedupes a redelivered job by its id.
 */
import type { Isolation } from '../dag/types.js';
import type { ExecutorEvent } from '../executor/types.js';
import type { SerializedError, TaskWork } from '../protocol/messages.js';

/** BullMQ's key prefix: queue `gpu` lives under kiln:q:gpu:*. */
export const BULL_PREFIX = 'kiln:q';
export const JOB_NAME = 'try';
/** Every queue name a scheduler has used (for reconciliation and `kiln workers list`). */
export const QUEUES_KEY = 'kiln:queues';
/** Sorted set: worker host id -> last heartbeat (ms). */
export const HOSTS_KEY = 'kiln:hosts';
/** Streams are trimmed near this length; a reader far behind loses only hints (the jobs hold the truth). */
export const STREAM_MAX_LEN = 100_000;
/** A cancelled job's fence: a host checks it before it starts the try. */
export const CANCEL_TTL_MS = 24 * 3_600_000;

export const eventsStream = (executorId: string): string => `kiln:ev:${executorId}`;
export const hostInbox = (hostId: string): string => `kiln:in:${hostId}`;
export const hostKey = (hostId: string): string => `kiln:host:${hostId}`;
export const cancelKey = (jobId: string): string => `kiln:cancel:${jobId}`;

/**
 * The BullMQ job id of a try: its key, made safe for BullMQ (which rejects ':' and pure
 * integers in custom ids). Reversible, so a job always names its try.
 */
export function jobIdOf(key: string): string {
  return `t-${encodeURIComponent(key)}`;
}

export function keyOfJobId(jobId: string): string {
  return decodeURIComponent(jobId.slice(2));
}

/** The data of one job: the try's work as the scheduler built it, paths made host-neutral. */
export interface RemoteJob {
  work: TaskWork;
  /** The stream of the executor that submitted it: the host reports there. */
  events: string;
  /** The DAG file relative to the scheduler's dags folder, or absolute when it lies outside. */
  dagPath: string;
  /** The log file relative to the scheduler's logs folder; null: the try keeps no log. */
  logPath: string | null;
}

export type FinishedEvent = Extract<ExecutorEvent, { type: 'finished' }>;

/** What a job returns: the try's end, and the tail of its log for the scheduler's copy. */
export interface RemoteResult {
  event: FinishedEvent;
  host: string;
  hostname: string;
  /** Where the host wrote the log (to skip copying a file onto itself on a shared disk). */
  logFile: string | null;
  logTail: string | null;
  /**
   * The try's start, when the host did not report it as a 'started' event of its own: a try
   * that ends within the host's hold time (STARTED_HOLD_MS in worker-host.ts) reports both
   * at once, one stream entry per try instead of two.
   */
  started?: StartedReport;
}

export type StartedReport = Pick<Extract<ExecutorEvent, { type: 'started' }>, 'isolation' | 'pid' | 'threadId' | 'at'>;

/** Host -> the executor that submitted the try. */
export type HostEvent =
  | { type: 'started'; key: string; host: string; isolation: Isolation; pid: number | null; threadId: number | null; at: number }
  | { type: 'heartbeat'; keys: string[]; at: number }
  | { type: 'task-heartbeat'; key: string; details?: unknown; at: number }
  | { type: 'xcom-pull'; key: string; host: string; requestId: number; dagId: string; runId: string; taskId: string }
  /** A hint sent as the try ends, just before its job is completed with the same result as return value. */
  | { type: 'finished'; key: string; result: RemoteResult };

/** Scheduler -> a host. */
export type HostCommand =
  | { type: 'xcom-value'; requestId: number; value?: unknown; error?: SerializedError }
  | { type: 'cancel'; jobId: string; reason: string };

/** A host's liveness record (kiln:host:<id>, also read by `kiln workers list`). */
export interface HostRecord {
  id: string;
  name: string;
  hostname: string;
  pid: number;
  queues: string[];
  slots: number;
  running: number;
  /** Increases with every beat: the scheduler judges silence by its own clock, not the host's. */
  seq: number;
  startedAt: number;
  at: number;
}

export function encode(message: HostEvent | HostCommand): string {
  return JSON.stringify(message);
}

/** Parses a stream entry; a malformed one (another version, a stray writer) is dropped. */
export function decode<T extends HostEvent | HostCommand>(raw: string): T | null {
  try {
    const value = JSON.parse(raw) as unknown;
    return typeof value === 'object' && value !== null && typeof (value as { type?: unknown }).type === 'string' ? (value as T) : null;
  } catch {
    return null;
  }
}
