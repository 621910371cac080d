/**
 * The options that make a task a branch, a short-circuit or a sensor: split from the plain
 * task options and checked here, with the same error style (the task and the option named).
 */
import { parseDurationMs } from './duration.js';
import type { Duration, SensorOptions, SensorSpec, ShortCircuitOptions, TaskKind, TaskOptions } from './types.js';

type Fail = (option: string, message: string) => never;

const SENSOR_KEYS = ['pokeInterval', 'timeout', 'mode', 'softFail', 'exponentialBackoff', 'maxWait'] as const;
const DEFAULT_POKE_INTERVAL_MS = 60_000;
const DEFAULT_SENSOR_TIMEOUT_MS = 7 * 24 * 3_600_000; // Airflow's default: a week

/** Takes `ignoreDownstreamTriggerRules` out of a shortCircuit's options. */
export function splitShortCircuitOptions(o: ShortCircuitOptions, fail: Fail): { task: TaskOptions; ignoreDownstreamTriggerRules: boolean } {
  const { ignoreDownstreamTriggerRules, ...task } = o;
  if (ignoreDownstreamTriggerRules !== undefined && typeof ignoreDownstreamTriggerRules !== 'boolean') fail('ignoreDownstreamTriggerRules', `must be a boolean, got ${String(ignoreDownstreamTriggerRules)}`);
  return { task, ignoreDownstreamTriggerRules: ignoreDownstreamTriggerRules ?? true };
}

/** Takes the sensor options out of a sensor's options. Its `timeout` is the sensor's; each try is bounded by it too. */
export function splitSensorOptions(o: SensorOptions, fail: Fail): { task: TaskOptions; sensor: SensorSpec } {
  const task: Record<string, unknown> = { ...o };
  for (const k of SENSOR_KEYS) delete task[k];
  const ms = (key: string, v: Duration | undefined, fallback: number | null): number | null => {
    if (v === undefined) return fallback;
    const parsed = parseDurationMs(v);
    if (parsed === undefined || parsed <= 0) fail(key, `must be milliseconds or a duration like '30s', '5m', greater than 0; got ${JSON.stringify(v)}`);
    return parsed!;
  };
  if (o.mode !== undefined && o.mode !== 'poke' && o.mode !== 'reschedule') fail('mode', `must be 'poke' or 'reschedule', got ${JSON.stringify(o.mode)}`);
  for (const key of ['softFail', 'exponentialBackoff'] as const) {
    if (o[key] !== undefined && typeof o[key] !== 'boolean') fail(key, `must be a boolean, got ${JSON.stringify(o[key])}`);
  }
  const sensor: SensorSpec = {
    pokeIntervalMs: ms('pokeInterval', o.pokeInterval, DEFAULT_POKE_INTERVAL_MS)!,
    timeoutMs: ms('timeout', o.timeout, DEFAULT_SENSOR_TIMEOUT_MS)!,
    mode: o.mode ?? 'poke',
    softFail: o.softFail ?? false,
    exponentialBackoff: o.exponentialBackoff ?? false,
    maxWaitMs: ms('maxWait', o.maxWait, null),
  };
  // A single poke that hangs longer than the whole sensor may wait is stopped.
  task.timeout = sensor.timeoutMs;
  return { task: task as TaskOptions, sensor };
}

export const SPECIAL_OPTION_KEYS: ReadonlySet<string> = new Set([...SENSOR_KEYS, 'ignoreDownstreamTriggerRules']);
const NONE: ReadonlySet<string> = new Set();
const SENSOR_KEY_SET: ReadonlySet<string> = new Set(SENSOR_KEYS);
const SHORT_CIRCUIT_KEYS: ReadonlySet<string> = new Set(['ignoreDownstreamTriggerRules']);

/** The options a kind of task takes beyond the plain task options. */
export function specialOptionKeys(kind: TaskKind): ReadonlySet<string> {
  return kind === 'sensor' ? SENSOR_KEY_SET : kind === 'shortCircuit' ? SHORT_CIRCUIT_KEYS : NONE;
}

/** How long a sensor waits after `pokes` empty pokes: the interval, doubled each time with exponentialBackoff, up to maxWait. */
export function sensorWaitMs(spec: SensorSpec, pokes: number): number {
  if (!spec.exponentialBackoff) return spec.pokeIntervalMs;
  const wait = spec.pokeIntervalMs * 2 ** Math.min(Math.max(0, pokes - 1), 30);
  return Math.min(wait, spec.maxWaitMs ?? Infinity);
}
