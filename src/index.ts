/**
 * kiln's public API. DAG files import the authoring API from here (`import { dag } from
 * 'kiln'`); programs embedding kiln use the library exports below.
 */
export { dag, isDag, type DagBuilder } from './dag/authoring.js';
export type {
  CallbackContext,
  CallbackFn,
  CallbackKind,
  Dag,
  DagOptions,
  FailureReason,
  Duration,
  Isolation,
  TaskContext,
  TaskFn,
  TaskHandle,
  TaskLogger,
  TaskOptions,
  TriggerRule,
  TiState,
  RunState,
} from './dag/types.js';
export { TRIGGER_RULES, ISOLATIONS, TI_STATES } from './dag/types.js';
export { KilnError, DagValidationError, DagImportError, type KilnErrorCode } from './errors.js';
export type { Executor, ExecutorEvent, ExecutorFactory, ExecutorOptions, TaskApi, TaskWork } from './executor/types.js';
