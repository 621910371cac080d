import { DagValidationError } from '../errors.js';
import { parseBytes } from './bytes.js';
import { parseDurationMs } from './duration.js';
import { validateGraph } from './graph.js';
import { DEFAULT_MAX_MAP_LENGTH, mapSourceTasks, resolveMapOver } from './mapping.js';
import { SPECIAL_OPTION_KEYS, specialOptionKeys, splitSensorOptions, splitShortCircuitOptions } from './special-tasks.js';
import {
  ISOLATIONS,
  TRIGGER_RULES,
  type BranchChoice,
  type CallbackKind,
  type SensorOptions,
  type ShortCircuitOptions,
  type TaskContext,
  type TaskKind,
  type Dag,
  type DagOptions,
  type Duration,
  type MapOptions,
  type MapSpec,
  type ResolvedTaskOptions,
  type TaskDefaults,
  type TaskDefinition,
  type TaskFn,
  type TaskHandle,
  type TaskHooks,
  type TaskOptions,
} from './types.js';

/** Below this a Node isolate cannot do anything useful: a smaller limit is a mistake. */
const MIN_TASK_MEMORY_BYTES = 16 * 1024 * 1024;
const ID_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,249}$/;
const QUEUE_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$/;
const DAG_OPTION_KEYS = new Set([
  'id', 'schedule', 'startDate', 'catchup', 'maxActiveRuns', 'maxActiveTasks', 'params', 'paramsSchema', 'defaults', 'tags', 'description',
  'onSuccess', 'onFailure', 'dagrunTimeout', 'maxMapLength',
]);
const TASK_OPTION_KEYS = new Set([
  'upstream', 'triggerRule', 'retries', 'retryDelay', 'retryExponentialBackoff', 'maxRetryDelay', 'timeout',
  'heartbeatTimeout', 'isolation', 'pool', 'poolSlots', 'priorityWeight', 'queue', 'env', 'maxTaskMemoryBytes', 'retryOn', 'noRetryOn',
  'onSuccess', 'onFailure', 'onRetry', 'onSkipped', 'maxActiveTisPerRun', 'maxActiveTisPerDag',
]);
const HOOK_KIND = { onSuccess: 'success', onFailure: 'failure', onRetry: 'retry', onSkipped: 'skipped' } as const satisfies Record<string, CallbackKind>;
type HookName = keyof typeof HOOK_KIND;
const HOOK_NAMES = Object.keys(HOOK_KIND) as HookName[];

export interface DagBuilder {
  /** Declares a task. Its return value (JSON-serializable) becomes its XCom. */
  task(taskId: string, fn: TaskFn, options?: TaskOptions): TaskHandle;
  /**
   * A branch: `fn` returns the direct downstream task(s) to follow (ids or handles, an array, or
   * null for none); every other direct downstream is skipped, and what lies further down is
   * left to its trigger rule. The choice is its XCom.
   */
  branch(taskId: string, fn: (ctx: TaskContext) => BranchChoice | Promise<BranchChoice>, options?: TaskOptions): TaskHandle;
  /** A falsy result skips what is downstream (all of it, or only the direct downstreams with ignoreDownstreamTriggerRules: false). */
  shortCircuit(taskId: string, fn: TaskFn, options?: ShortCircuitOptions): TaskHandle;
  /**
   * A mapped task: one instance per item of `over` (an upstream's returned array or object, a
   * literal array, or an object of those for the cross product), each with its own tries and
   * log; `ctx.item` is its element and `ctx.mapIndex` its index. The upstream named in `over`
   * is an upstream of the map. A downstream's ctx.xcom(id) gets every result in map-index order.
   */
  map(taskId: string, fn: TaskFn, options: MapOptions): TaskHandle;
  /** Waits for something outside: `poke` is called until it returns a truthy value (the sensor's XCom). */
  sensor(taskId: string, poke: TaskFn, options?: SensorOptions): TaskHandle;
  /** Sets edges left to right: chain(a, b, [c, d], e) means a->b, b->c, b->d, c->e, d->e. */
  chain(...steps: Array<TaskHandle | string | Array<TaskHandle | string>>): void;
}

/**
 * Defines a DAG. The builder callback declares tasks; the DAG is validated (options, unknown
 * upstreams, cycles) before `dag()` returns, so a bad DAG fails at import with an error that
 * names the task and the option.
 */
export function dag(options: DagOptions, build: (d: DagBuilder) => void): Dag {
  if (options === null || typeof options !== 'object') throw new DagValidationError('dag(): the first argument must be an options object');
  const dagId = options.id;
  if (typeof dagId !== 'string' || !ID_RE.test(dagId)) {
    throw new DagValidationError(`dag(): option 'id' must be a string of letters, digits, '_', '.', '-', got ${show(dagId)}`, { option: 'id' });
  }
  const fail = (option: string, message: string): never => {
    throw new DagValidationError(`DAG '${dagId}': option '${option}' ${message}`, { dagId, option });
  };
  for (const key of Object.keys(options)) if (!DAG_OPTION_KEYS.has(key)) fail(key, 'is not a DAG option');
  checkDagOptions(options, fail);
  if (typeof build !== 'function') throw new DagValidationError(`DAG '${dagId}': dag() needs a builder function as its second argument`, { dagId });

  const maxMapLength = options.maxMapLength ?? DEFAULT_MAX_MAP_LENGTH;
  const defaults = options.defaults ?? {};
  const defaultsResolved = resolveTaskOptions(defaults, (option, message) => fail(`defaults.${option}`, message));
  const defaultHooks = resolveHooks(defaults, (option, message) => fail(`defaults.${option}`, message));
  const tasks = new Map<string, TaskDefinition>();
  const extraEdges: Array<[string, string]> = [];

  const builder: DagBuilder = {
    task(taskId, fn, taskOptions = {}) {
      return addTask(taskId, fn, taskOptions, 'task');
    },
    branch(taskId, fn, taskOptions = {}) {
      return addTask(taskId, fn, taskOptions, 'branch');
    },
    shortCircuit(taskId, fn, options = {}) {
      return addTask(taskId, fn, options, 'shortCircuit');
    },
    sensor(taskId, poke, options = {}) {
      return addTask(taskId, poke, options, 'sensor');
    },
    map(taskId, fn, options) {
      if (options === null || typeof options !== 'object') {
        throw new DagValidationError(`DAG '${dagId}', task '${taskId}': d.map() needs options with 'over' (what to map over)`, { dagId, taskId, option: 'over' });
      }
      const { over, ...rest } = options;
      const failOver = (option: string, message: string): never => {
        throw new DagValidationError(`DAG '${dagId}', task '${taskId}': option '${option}' ${message}`, { dagId, taskId, option });
      };
      const map = resolveMapOver(over, maxMapLength, failOver);
      const upstream = [...(rest.upstream ?? []), ...mapSourceTasks(map)];
      return addTask(taskId, fn, { ...rest, upstream }, 'task', map);
    },
    chain(...steps) {
      const ids = steps.map((step) => (Array.isArray(step) ? step : [step]).map((s) => refId(s, dagId, 'chain')));
      for (let i = 1; i < ids.length; i++) for (const from of ids[i - 1]!) for (const to of ids[i]!) extraEdges.push([from, to]);
    },
  };

  function addTask(taskId: string, fn: TaskFn, given: TaskOptions | ShortCircuitOptions | SensorOptions, kind: TaskKind, map?: MapSpec): TaskHandle {
    if (typeof taskId !== 'string' || !ID_RE.test(taskId)) {
      throw new DagValidationError(`DAG '${dagId}': task id must be a string of letters, digits, '_', '.', '-', got ${show(taskId)}`, { dagId });
    }
    if (tasks.has(taskId)) throw new DagValidationError(`DAG '${dagId}': duplicate task id '${taskId}'`, { dagId, taskId });
    const failTask = (option: string, message: string): never => {
      throw new DagValidationError(`DAG '${dagId}', task '${taskId}': option '${option}' ${message}`, { dagId, taskId, option });
    };
    if (typeof fn !== 'function') failTask('fn', `must be a function, got ${show(fn)}`);
    if (given === null || typeof given !== 'object') failTask('options', 'must be an object');
    for (const key of Object.keys(given)) {
      if (TASK_OPTION_KEYS.has(key) || specialOptionKeys(kind).has(key)) continue;
      failTask(key, SPECIAL_OPTION_KEYS.has(key) ? `is not an option of d.${kind}()` : 'is not a task option');
    }
    let taskOptions: TaskOptions = given;
    const special: Pick<ResolvedTaskOptions, 'kind' | 'ignoreDownstreamTriggerRules' | 'sensor' | 'map'> = kind === 'task' ? {} : { kind };
    if (map !== undefined) special.map = map;
    if (kind === 'shortCircuit') {
      const split = splitShortCircuitOptions(given as ShortCircuitOptions, failTask);
      taskOptions = split.task;
      special.ignoreDownstreamTriggerRules = split.ignoreDownstreamTriggerRules;
    } else if (kind === 'sensor') {
      const split = splitSensorOptions(given as SensorOptions, failTask);
      taskOptions = split.task;
      special.sensor = split.sensor;
    }
    const own = resolveTaskOptions(taskOptions, failTask);
    const merged: ResolvedTaskOptions = { ...defaultsResolved, ...pickDefined(own, taskOptions), upstream: own.upstream };
    const ownHooks = resolveHooks(taskOptions, failTask);
    const hooks: TaskHooks = {
      retryOn: ownHooks.retryOn ?? defaultHooks.retryOn,
      onSuccess: ownHooks.onSuccess ?? defaultHooks.onSuccess,
      onFailure: ownHooks.onFailure ?? defaultHooks.onFailure,
      onRetry: ownHooks.onRetry ?? defaultHooks.onRetry,
      onSkipped: ownHooks.onSkipped ?? defaultHooks.onSkipped,
    };
    const callbacks = HOOK_NAMES.filter((h) => hooks[h] !== null).map((h) => HOOK_KIND[h]);
    // Own copies of arrays: defaults would otherwise hand every task the same one.
    tasks.set(taskId, { taskId, fn, ...merged, ...hooks, env: [...merged.env], noRetryOn: [...merged.noRetryOn], callbacks, ...special });
    return Object.freeze({ taskId });
  }
  build(builder);
  for (const [from, to] of extraEdges) {
    for (const id of [from, to]) {
      if (!tasks.has(id)) throw new DagValidationError(`DAG '${dagId}': chain() names unknown task '${id}'`, { dagId, taskId: id });
    }
    const task = tasks.get(to)!;
    if (!task.upstream.includes(from)) task.upstream.push(from);
  }
  validateGraph(dagId, tasks);
  return Object.freeze({ __kilnDag: 1 as const, dagId, options: Object.freeze({ ...options }), tasks });
}

export function isDag(value: unknown): value is Dag {
  return typeof value === 'object' && value !== null && (value as { __kilnDag?: unknown }).__kilnDag === 1;
}

type Fail = (option: string, message: string) => never;

function checkDagOptions(o: DagOptions, fail: Fail): void {
  if (o.schedule !== undefined && o.schedule !== null && typeof o.schedule !== 'string') fail('schedule', `must be a cron string, a preset like '@hourly', or null, got ${show(o.schedule)}`);
  if (o.startDate !== undefined) {
    const t = o.startDate instanceof Date ? o.startDate.getTime() : typeof o.startDate === 'string' ? Date.parse(o.startDate) : NaN;
    if (Number.isNaN(t)) fail('startDate', `must be an ISO date string or a Date, got ${show(o.startDate)}`);
  }
  if (o.catchup !== undefined && typeof o.catchup !== 'boolean') fail('catchup', `must be a boolean, got ${show(o.catchup)}`);
  for (const key of ['maxActiveRuns', 'maxActiveTasks', 'maxMapLength'] as const) {
    if (o[key] !== undefined && !(Number.isInteger(o[key]) && o[key]! >= 1)) fail(key, `must be an integer >= 1, got ${show(o[key])}`);
  }
  if (o.params !== undefined && (o.params === null || typeof o.params !== 'object' || Array.isArray(o.params))) fail('params', 'must be an object');
  if (o.tags !== undefined && !(Array.isArray(o.tags) && o.tags.every((t) => typeof t === 'string'))) fail('tags', 'must be an array of strings');
  if (o.paramsSchema !== undefined && (o.paramsSchema === null || typeof o.paramsSchema !== 'object' || Array.isArray(o.paramsSchema))) {
    fail('paramsSchema', `must be a JSON Schema object such as { type: 'object', properties: { ... } }, got ${show(o.paramsSchema)}`);
  }
  for (const key of ['onSuccess', 'onFailure'] as const) {
    if (o[key] !== undefined && typeof o[key] !== 'function') fail(key, `must be a function (ctx) => void, got ${show(o[key])}`);
  }
  if (o.dagrunTimeout !== undefined) {
    const ms = parseDurationMs(o.dagrunTimeout);
    if (ms === undefined || ms === 0) fail('dagrunTimeout', `must be milliseconds or a duration like '30m', '2h', greater than 0; got ${show(o.dagrunTimeout)}`);
  }
  if (o.defaults !== undefined && (o.defaults === null || typeof o.defaults !== 'object')) fail('defaults', 'must be an object of task options');
  if (o.defaults && 'upstream' in o.defaults) fail('defaults.upstream', 'cannot be a default');
  if (o.defaults) for (const key of Object.keys(o.defaults)) if (!TASK_OPTION_KEYS.has(key)) fail(`defaults.${key}`, 'is not a task option');
}

const BASE_DEFAULTS: Omit<ResolvedTaskOptions, 'upstream'> = {
  triggerRule: 'all_success',
  retries: 0,
  retryDelayMs: 300_000, // Airflow's default retry_delay: 5 minutes
  retryExponentialBackoff: false,
  maxRetryDelayMs: null,
  timeoutMs: null,
  heartbeatTimeoutMs: null,
  isolation: null,
  pool: 'default_pool',
  poolSlots: 1,
  priorityWeight: 1,
  queue: 'default',
  env: [],
  maxTaskMemoryBytes: null,
  noRetryOn: [],
};

/** Validates the options given and fills the rest from kiln's base defaults. */
function resolveTaskOptions(o: TaskOptions | TaskDefaults, fail: Fail): ResolvedTaskOptions {
  const r: ResolvedTaskOptions = { ...BASE_DEFAULTS, env: [], upstream: [] };
  if ('upstream' in o && o.upstream !== undefined) {
    if (!Array.isArray(o.upstream)) fail('upstream', 'must be an array of task handles or task ids');
    r.upstream = [...new Set(o.upstream.map((u) => (typeof u === 'string' ? u : u && typeof u === 'object' && typeof u.taskId === 'string' ? u.taskId : fail('upstream', `has an entry that is neither a task handle nor an id: ${show(u)}`))))];
  }
  if (o.triggerRule !== undefined) {
    if (!(TRIGGER_RULES as readonly string[]).includes(o.triggerRule)) fail('triggerRule', `must be one of ${TRIGGER_RULES.join(', ')}; got ${show(o.triggerRule)}`);
    r.triggerRule = o.triggerRule;
  }
  if (o.retries !== undefined) {
    if (!(Number.isInteger(o.retries) && o.retries >= 0)) fail('retries', `must be an integer >= 0, got ${show(o.retries)}`);
    r.retries = o.retries;
  }
  const duration = (key: 'retryDelay' | 'maxRetryDelay' | 'timeout' | 'heartbeatTimeout', value: Duration | undefined): number | undefined => {
    if (value === undefined) return undefined;
    const ms = parseDurationMs(value);
    if (ms === undefined) fail(key, `must be milliseconds or a duration like '30s', '5m', '2h'; got ${show(value)}`);
    if ((key === 'timeout' || key === 'heartbeatTimeout') && ms === 0) fail(key, 'must be greater than 0');
    return ms;
  };
  r.retryDelayMs = duration('retryDelay', o.retryDelay) ?? r.retryDelayMs;
  r.maxRetryDelayMs = duration('maxRetryDelay', o.maxRetryDelay) ?? r.maxRetryDelayMs;
  r.timeoutMs = duration('timeout', o.timeout) ?? r.timeoutMs;
  r.heartbeatTimeoutMs = duration('heartbeatTimeout', o.heartbeatTimeout) ?? r.heartbeatTimeoutMs;
  if (o.retryExponentialBackoff !== undefined) {
    if (typeof o.retryExponentialBackoff !== 'boolean') fail('retryExponentialBackoff', `must be a boolean, got ${show(o.retryExponentialBackoff)}`);
    r.retryExponentialBackoff = o.retryExponentialBackoff;
  }
  if (o.isolation !== undefined) {
    if (!(ISOLATIONS as readonly string[]).includes(o.isolation)) fail('isolation', `must be one of ${ISOLATIONS.join(', ')}; got ${show(o.isolation)}`);
    r.isolation = o.isolation;
  }
  if (o.pool !== undefined) {
    if (typeof o.pool !== 'string' || o.pool.length === 0) fail('pool', `must be a non-empty string, got ${show(o.pool)}`);
    r.pool = o.pool;
  }
  if (o.poolSlots !== undefined) {
    if (!(Number.isInteger(o.poolSlots) && o.poolSlots >= 1)) fail('poolSlots', `must be an integer >= 1, got ${show(o.poolSlots)}`);
    r.poolSlots = o.poolSlots;
  }
  if (o.priorityWeight !== undefined) {
    if (!Number.isInteger(o.priorityWeight)) fail('priorityWeight', `must be an integer, got ${show(o.priorityWeight)}`);
    r.priorityWeight = o.priorityWeight;
  }
  if (o.queue !== undefined) {
    // A BullMQ queue name and a Redis key segment: no ':' and nothing a shell or a URL mangles.
    if (typeof o.queue !== 'string' || !QUEUE_RE.test(o.queue)) fail('queue', `must be a name of letters, digits, '_', '.' or '-' (at most 100), got ${show(o.queue)}`);
    r.queue = o.queue;
  }
  if (o.env !== undefined) {
    if (!(Array.isArray(o.env) && o.env.every((e) => typeof e === 'string' && e.length > 0))) fail('env', 'must be an array of environment variable names');
    r.env = [...o.env];
  }
  if (o.maxTaskMemoryBytes !== undefined) {
    const n = parseBytes(o.maxTaskMemoryBytes);
    if (n === undefined || n < MIN_TASK_MEMORY_BYTES) fail('maxTaskMemoryBytes', `must be a number of bytes or a size like '512MiB' or '2GB', at least 16 MiB; got ${show(o.maxTaskMemoryBytes)}`);
    r.maxTaskMemoryBytes = n;
  }
  for (const key of ['maxActiveTisPerRun', 'maxActiveTisPerDag'] as const) {
    if (o[key] === undefined) continue;
    if (!(Number.isInteger(o[key]) && o[key]! >= 1)) fail(key, `must be an integer >= 1, got ${show(o[key])}`);
    r[key] = o[key];
  }
  if (o.noRetryOn !== undefined) {
    if (!(Array.isArray(o.noRetryOn) && o.noRetryOn.every((e) => typeof e === 'string' && e.length > 0))) {
      fail('noRetryOn', `must be an array of error class names such as ['TypeError', 'ValidationError'], got ${show(o.noRetryOn)}`);
    }
    r.noRetryOn = [...o.noRetryOn];
  }
  return r;
}

function resolveHooks(o: TaskOptions | TaskDefaults, fail: Fail): TaskHooks {
  if (o.retryOn !== undefined && typeof o.retryOn !== 'function') fail('retryOn', `must be a function (error) => boolean, got ${show(o.retryOn)}`);
  for (const h of HOOK_NAMES) if (o[h] !== undefined && typeof o[h] !== 'function') fail(h, `must be a function (ctx) => void, got ${show(o[h])}`);
  return { retryOn: o.retryOn ?? null, onSuccess: o.onSuccess ?? null, onFailure: o.onFailure ?? null, onRetry: o.onRetry ?? null, onSkipped: o.onSkipped ?? null };
}

/** Keeps only the resolved fields whose option the task set itself, so DAG defaults fill the rest. */
function pickDefined(resolved: ResolvedTaskOptions, given: TaskOptions): Partial<ResolvedTaskOptions> {
  const map: Record<string, keyof ResolvedTaskOptions> = {
    triggerRule: 'triggerRule', retries: 'retries', retryDelay: 'retryDelayMs', retryExponentialBackoff: 'retryExponentialBackoff',
    maxRetryDelay: 'maxRetryDelayMs', timeout: 'timeoutMs', heartbeatTimeout: 'heartbeatTimeoutMs', isolation: 'isolation',
    pool: 'pool', poolSlots: 'poolSlots', priorityWeight: 'priorityWeight', queue: 'queue', env: 'env', maxTaskMemoryBytes: 'maxTaskMemoryBytes',
    noRetryOn: 'noRetryOn', maxActiveTisPerRun: 'maxActiveTisPerRun', maxActiveTisPerDag: 'maxActiveTisPerDag',
  };
  const out: Partial<Record<keyof ResolvedTaskOptions, unknown>> = {};
  for (const [option, field] of Object.entries(map)) if ((given as Record<string, unknown>)[option] !== undefined) out[field] = resolved[field];
  return out as Partial<ResolvedTaskOptions>;
}

function refId(ref: TaskHandle | string, dagId: string, where: string): string {
  if (typeof ref === 'string') return ref;
  if (ref && typeof ref === 'object' && typeof ref.taskId === 'string') return ref.taskId;
  throw new DagValidationError(`DAG '${dagId}': ${where}() takes task handles or task ids, got ${show(ref)}`, { dagId });
}

function show(value: unknown): string {
  if (typeof value === 'string') return `'${value}'`;
  if (typeof value === 'function') return 'a function';
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
