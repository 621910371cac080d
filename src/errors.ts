/**
 * Every error kiln raises on purpose is a KilnError with a stable `code`, so callers match
 * on `err.code` instead of message text. Errors cross the runner boundary serialized
 * (see protocol/errors.ts) and are rebuilt with the same code on the other side.
 */
export type KilnErrorCode =
  | 'DAG_INVALID' // a DAG or task option, or the graph itself, is wrong
  | 'DAG_IMPORT' // a DAG file could not be imported (syntax error, throws at import, no DAG export)
  | 'DAG_NOT_FOUND'
  | 'RUN_NOT_FOUND'
  | 'POOL_NOT_FOUND'
  | 'TASK_NOT_FOUND'
  | 'TASK_FAILED' // the task threw or called ctx.fail()
  | 'TASK_SKIPPED' // ctx.skip() was called; ends the try as skipped
  | 'TASK_TIMEOUT'
  | 'TASK_HEARTBEAT_TIMEOUT'
  | 'SENSOR_TIMEOUT' // a sensor's condition was not met within its timeout
  | 'BRANCH_INVALID' // a branch returned a task that is not one of its direct downstreams
  | 'TASK_ZOMBIE' // the scheduler saw no heartbeat from the try's supervisor for zombieTimeout
  | 'TASK_MEMORY_LIMIT' // the try passed its maxTaskMemoryBytes and was killed
  | 'TASK_CANCELLED'
  | 'WORKER_EXITED' // the worker running the task went away mid-task
  | 'WORKER_HOST_LOST' // a remote worker host (kiln worker) went silent, or Redis lost the try's job
  | 'RESULT_NOT_SERIALIZABLE'
  | 'CONFIG_INVALID'
  | 'USAGE'
  | 'STORE'
  | 'STORE_UNAVAILABLE' // the database did not answer (connection refused, lost, server restarting): retrying later may succeed
  | 'EXECUTOR';

export class KilnError extends Error {
  readonly code: KilnErrorCode;
  constructor(code: KilnErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'KilnError';
  }
}

/** A DAG or task definition is invalid. `where` names the file, task and option when known. */
export class DagValidationError extends KilnError {
  readonly dagId?: string;
  readonly taskId?: string;
  readonly option?: string;
  constructor(message: string, where: { dagId?: string; taskId?: string; option?: string } = {}) {
    super('DAG_INVALID', message);
    this.name = 'DagValidationError';
    this.dagId = where.dagId;
    this.taskId = where.taskId;
    this.option = where.option;
  }
}

export class DagImportError extends KilnError {
  readonly file: string;
  constructor(file: string, message: string, options?: { cause?: unknown }) {
    super('DAG_IMPORT', message, options);
    this.name = 'DagImportError';
    this.file = file;
  }
}

export class UsageError extends KilnError {
  constructor(message: string) {
    super('USAGE', message);
    this.name = 'UsageError';
  }
}

export class ConfigError extends KilnError {
  constructor(message: string) {
    super('CONFIG_INVALID', message);
    this.name = 'ConfigError';
  }
}

/**
 * Thrown inside a task by ctx.skip() / ctx.fail(). The runner turns them into a skipped
 * try, or a failed try with no retry. They are control flow, not bugs.
 */
export class TaskSkipped extends KilnError {
  constructor(reason: string) {
    super('TASK_SKIPPED', reason);
    this.name = 'TaskSkipped';
  }
}

export class TaskFailedNoRetry extends KilnError {
  constructor(reason: string) {
    super('TASK_FAILED', reason);
    this.name = 'TaskFailedNoRetry';
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
