/**
 * SQLite tables, as drizzle sees them. The DDL lives in migrations/*.sql and must match.
 * Times are epoch milliseconds in INTEGER columns; JSON is TEXT.
 */
import { index, integer, primaryKey, real, sqliteTable, text } from 'drizzle-orm/sqlite-core';
import type { CallbackKind, FailureReason, Isolation, RunState, TiState } from '../../dag/types.js';
import type { Reprocess, RunType } from '../types.js';

export const dag = sqliteTable('dag', {
  dagId: text('dag_id').primaryKey(),
  file: text('file').notNull(),
  version: text('version').notNull(),
  serialized: text('serialized').notNull(),
  isPaused: integer('is_paused', { mode: 'boolean' }).notNull().default(false),
  nextRunAt: integer('next_run_at'),
  updatedAt: integer('updated_at').notNull(),
});

export const dagVersion = sqliteTable(
  'dag_version',
  {
    dagId: text('dag_id').notNull(),
    version: text('version').notNull(),
    serialized: text('serialized').notNull(),
    createdAt: integer('created_at').notNull(),
  },
  (t) => [primaryKey({ columns: [t.dagId, t.version] })],
);

export const dagRun = sqliteTable(
  'dag_run',
  {
    dagId: text('dag_id').notNull(),
    runId: text('run_id').notNull(),
    runType: text('run_type').$type<RunType>().notNull(),
    /** migrations/0003: the data interval [start, end) the run covers. */
    dataIntervalStart: integer('data_interval_start').notNull(),
    dataIntervalEnd: integer('data_interval_end').notNull(),
    logicalDate: integer('logical_date').notNull(),
    state: text('state').$type<RunState>().notNull(),
    params: text('params').notNull(),
    dagVersion: text('dag_version').notNull(),
    queuedAt: integer('queued_at').notNull(),
    startedAt: integer('started_at'),
    endedAt: integer('ended_at'),
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

export const taskInstance = sqliteTable(
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
    queuedAt: integer('queued_at'),
    startedAt: integer('started_at'),
    endedAt: integer('ended_at'),
    durationMs: real('duration_ms'),
    pid: integer('pid'),
    exitCode: integer('exit_code'),
    signal: text('signal'),
    error: text('error'),
    peakRssBytes: integer('peak_rss_bytes'),
    cpuMs: real('cpu_ms'),
    lastHeartbeatAt: integer('last_heartbeat_at'),
    queuedBy: text('queued_by'),
    nextRetryAt: integer('next_retry_at'),
    /** migrations/0007: a sensor's first poke. */
    firstPokeAt: integer('first_poke_at'),
  },
  (t) => [
    primaryKey({ columns: [t.dagId, t.runId, t.taskId, t.mapIndex] }),
    index('task_instance_state_heartbeat_idx').on(t.state, t.lastHeartbeatAt),
  ],
);

export const xcom = sqliteTable(
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

export const importError = sqliteTable('import_error', {
  file: text('file').primaryKey(),
  error: text('error').notNull(),
  at: integer('at').notNull(),
});

export const pool = sqliteTable('pool', {
  name: text('name').primaryKey(),
  slots: integer('slots').notNull(),
  description: text('description'),
});

export const scheduler = sqliteTable('scheduler', {
  id: text('id').primaryKey(),
  hostname: text('hostname').notNull(),
  pid: integer('pid').notNull(),
  startedAt: integer('started_at').notNull(),
  lastHeartbeatAt: integer('last_heartbeat_at').notNull(),
});

/** migrations/0004: callbacks owed (see scheduler/callbacks.ts). */
export const callbackRequest = sqliteTable(
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
    createdAt: integer('created_at').notNull(),
    owner: text('owner'),
  },
  (t) => [index('callback_request_run_idx').on(t.dagId, t.runId)],
);

/** migrations/0005: the change feed (see Store.readEvents). */
export const event = sqliteTable('event', {
  id: integer('id').primaryKey(),
  at: integer('at').notNull(),
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
export const backfill = sqliteTable(
  'backfill',
  {
    id: text('id').primaryKey(),
    dagId: text('dag_id').notNull(),
    fromDate: integer('from_date').notNull(),
    toDate: integer('to_date').notNull(),
    reprocess: text('reprocess').$type<Reprocess>().notNull(),
    maxActiveRuns: integer('max_active_runs').notNull(),
    backwards: integer('backwards', { mode: 'boolean' }).notNull(),
    params: text('params').notNull(),
    dates: text('dates').notNull(),
    cursor: integer('cursor').notNull(),
    driver: text('driver'),
    state: text('state').$type<'running' | 'done'>().notNull(),
    createdAt: integer('created_at').notNull(),
  },
  (t) => [index('backfill_state_idx').on(t.state)],
);
