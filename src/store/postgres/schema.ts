/**
 * PostgreSQL tables, as drizzle sees them. The DDL lives in migrations/*.sql and must match.
 * Times are epoch milliseconds in BIGINT columns read as JS numbers; JSON is TEXT (the same
 * as SQLite, so both dialects encode alike); durations are double precision.
 */
import { bigint, boolean, doublePrecision, index, integer, pgTable, primaryKey, text } from 'drizzle-orm/pg-core';
import type { CallbackKind, FailureReason, Isolation, RunState, TiState } from '../../dag/types.js';
import type { Reprocess, RunType } from '../types.js';

export const dag = pgTable('dag', {
  dagId: text('dag_id').primaryKey(),
  file: text('file').notNull(),
  version: text('version').notNull(),
  serialized: text('serialized').notNull(),
  isPaused: boolean('is_paused').notNull().default(false),
  nextRunAt: bigint('next_run_at', { mode: 'number' }),
  updatedAt: bigint('updated_at', { mode: 'number' }).notNull(),
});

export const dagVersion = pgTable(
  'dag_version',
  {
    dagId: text('dag_id').notNull(),
    version: text('version').notNull(),
    serialized: text('serialized').notNull(),
    createdAt: bigint('created_at', { mode: 'number' }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.dagId, t.version] })],
);

export const dagRun = pgTable(
  'dag_run',
  {
    dagId: text('dag_id').notNull(),
    runId: text('run_id').notNull(),
    runType: text('run_type').$type<RunType>().notNull(),
    /** migrations/0003: the data interval [start, end) the run covers. */
    dataIntervalStart: bigint('data_interval_start', { mode: 'number' }).notNull(),
    dataIntervalEnd: bigint('data_interval_end', { mode: 'number' }).notNull(),
    logicalDate: bigint('logical_date', { mode: 'number' }).notNull(),
    state: text('state').$type<RunState>().notNull(),
    params: text('params').notNull(),
    dagVersion: text('dag_version').notNull(),
    queuedAt: bigint('queued_at', { mode: 'number' }).notNull(),
    startedAt: bigint('started_at', { mode: 'number' }),
    endedAt: bigint('ended_at', { mode: 'number' }),
    claimedBy: text('claimed_by'),
    /** migrations/0004: task_failed or timed_out. */
    failureReason: text('failure_reason'),
  },
  (t) => [
    primaryKey({ columns: [t.dagId, t.runId] }),
    index('dag_run_state_idx').on(t.state),
    // migrations/0002: the retention clean's range scan by end time.
    index('dag_run_ended_at_idx').on(t.endedAt, t.dagId, t.runId),
    // migrations/0003: the previous successful run; a backfill's run per logical date.
    index('dag_run_logical_date_idx').on(t.dagId, t.logicalDate),
  ],
);

export const taskInstance = pgTable(
  'task_instance',
  {
    dagId: text('dag_id').notNull(),
    runId: text('run_id').notNull(),
    taskId: text('task_id').notNull(),
    /** migrations/0008: the instance's index in its mapped task; -1 for a task that is not mapped. */
    mapIndex: integer('map_index').notNull().default(-1),
    state: text('state').$type<TiState>().notNull(),
    tryNumber: integer('try_number').notNull(),
    maxTries: integer('max_tries').notNull(),
    pool: text('pool').notNull(),
    poolSlots: integer('pool_slots').notNull(),
    priorityWeight: integer('priority_weight').notNull(),
    isolation: text('isolation').$type<Isolation>(),
    queuedAt: bigint('queued_at', { mode: 'number' }),
    startedAt: bigint('started_at', { mode: 'number' }),
    endedAt: bigint('ended_at', { mode: 'number' }),
    durationMs: doublePrecision('duration_ms'),
    pid: integer('pid'),
    exitCode: integer('exit_code'),
    signal: text('signal'),
    error: text('error'),
    peakRssBytes: bigint('peak_rss_bytes', { mode: 'number' }),
    cpuMs: doublePrecision('cpu_ms'),
    lastHeartbeatAt: bigint('last_heartbeat_at', { mode: 'number' }),
    queuedBy: text('queued_by'),
    nextRetryAt: bigint('next_retry_at', { mode: 'number' }),
    /** migrations/0007: a sensor's first poke. */
    firstPokeAt: bigint('first_poke_at', { mode: 'number' }),
  },
  (t) => [
    primaryKey({ columns: [t.dagId, t.runId, t.taskId, t.mapIndex] }),
    index('task_instance_state_heartbeat_idx').on(t.state, t.lastHeartbeatAt),
  ],
);

export const xcom = pgTable(
  'xcom',
  {
    dagId: text('dag_id').notNull(),
    runId: text('run_id').notNull(),
    taskId: text('task_id').notNull(),
    /** migrations/0008: the map index of the task instance that returned it. */
    mapIndex: integer('map_index').notNull().default(-1),
    /** JSON text; NULL means the task returned undefined. */
    value: text('value'),
  },
  (t) => [primaryKey({ columns: [t.dagId, t.runId, t.taskId, t.mapIndex] })],
);

export const importError = pgTable('import_error', {
  file: text('file').primaryKey(),
  error: text('error').notNull(),
  at: bigint('at', { mode: 'number' }).notNull(),
});

export const pool = pgTable('pool', {
  name: text('name').primaryKey(),
  slots: integer('slots').notNull(),
  description: text('description'),
});

export const scheduler = pgTable('scheduler', {
  id: text('id').primaryKey(),
  hostname: text('hostname').notNull(),
  pid: integer('pid').notNull(),
  startedAt: bigint('started_at', { mode: 'number' }).notNull(),
  lastHeartbeatAt: bigint('last_heartbeat_at', { mode: 'number' }).notNull(),
});

/** migrations/0004: callbacks owed (see scheduler/callbacks.ts). */
export const callbackRequest = pgTable(
  'callback_request',
  {
    id: text('id').primaryKey(),
    dagId: text('dag_id').notNull(),
    runId: text('run_id').notNull(),
    taskId: text('task_id'),
    /** migrations/0008: the task instance's map index; null for a DAG callback. */
    mapIndex: integer('map_index'),
    tryNumber: integer('try_number'),
    kind: text('kind').$type<CallbackKind>().notNull(),
    state: text('state').notNull(),
    reason: text('reason').$type<FailureReason>(),
    error: text('error'),
    exitCode: integer('exit_code'),
    signal: text('signal'),
    createdAt: bigint('created_at', { mode: 'number' }).notNull(),
    owner: text('owner'),
  },
  (t) => [index('callback_request_run_idx').on(t.dagId, t.runId)],
);

/** migrations/0005: the change feed (see Store.readEvents). */
export const event = pgTable('event', {
  id: bigint('id', { mode: 'number' }).primaryKey().generatedByDefaultAsIdentity(),
  at: bigint('at', { mode: 'number' }).notNull(),
  kind: text('kind').$type<'ti' | 'run'>().notNull(),
  dagId: text('dag_id').notNull(),
  runId: text('run_id').notNull(),
  taskId: text('task_id'),
  /** migrations/0008: kind 'ti' only. */
  mapIndex: integer('map_index'),
  state: text('state').notNull(),
  tryNumber: integer('try_number'),
});

/** migrations/0006: backfill requests (see scheduler/backfill.ts). */
export const backfill = pgTable(
  'backfill',
  {
    id: text('id').primaryKey(),
    dagId: text('dag_id').notNull(),
    fromDate: bigint('from_date', { mode: 'number' }).notNull(),
    toDate: bigint('to_date', { mode: 'number' }).notNull(),
    reprocess: text('reprocess').$type<Reprocess>().notNull(),
    maxActiveRuns: integer('max_active_runs').notNull(),
    backwards: boolean('backwards').notNull(),
    params: text('params').notNull(),
    dates: text('dates').notNull(),
    cursor: integer('cursor').notNull(),
    driver: text('driver'),
    state: text('state').$type<'running' | 'done'>().notNull(),
    createdAt: bigint('created_at', { mode: 'number' }).notNull(),
  },
  (t) => [index('backfill_state_idx').on(t.state)],
);
