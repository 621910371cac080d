/**
 * What a branch, a short-circuit and a sensor do inside the runner, around the user's
 * function: the branch's choice is checked against the DAG and becomes its XCom; a sensor
 * pokes until its condition holds, in a loop (mode 'poke') or one poke per try (mode
 * 'reschedule': an empty poke ends the try with outcome 'reschedule', giving the slot back).
 */
import { sensorWaitMs } from '../src/dag/special-tasks.js';
import type { Dag, SensorSpec, TaskContext, TaskDefinition } from '../src/dag/types.js';
import { KilnError, TaskSkipped } from '../src/errors.js';
import type { TaskWork } from '../src/protocol/messages.js';

/** Failures of these codes are final: a retry would not change them. */
export const NO_RETRY_CODES: ReadonlySet<string> = new Set(['BRANCH_INVALID', 'SENSOR_TIMEOUT']);

/** Thrown by a reschedule sensor's empty poke; the runner turns it into outcome 'reschedule'. */
export class SensorReschedule extends Error {
  readonly code = 'SENSOR_RESCHEDULE';
  constructor(readonly rescheduleAt: number) {
    super(`nothing yet: poked again at ${new Date(rescheduleAt).toISOString()}`);
    this.name = 'SensorReschedule';
  }
}

/** The definition the runner runs for a task of kind branch or sensor (others as they are). */
export function specialDefinition(def: TaskDefinition, dag: Dag, work: TaskWork): TaskDefinition {
  if (def.kind === 'branch') return { ...def, fn: async (ctx) => chosenTasks(dag, def.taskId, await def.fn(ctx)) };
  if (def.kind === 'sensor' && def.sensor) {
    const spec = def.sensor;
    return { ...def, fn: (ctx) => (spec.mode === 'reschedule' ? pokeOnce(def, spec, ctx, work) : pokeUntil(def, spec, ctx, work)) };
  }
  return def;
}

/** The branch's result as a list of direct downstream task ids, or a failure naming what is wrong. */
function chosenTasks(dag: Dag, branchId: string, value: unknown): string[] {
  const direct = [...dag.tasks.values()].filter((t) => t.upstream.includes(branchId)).map((t) => t.taskId);
  const items = value === null || value === undefined ? [] : Array.isArray(value) ? value : [value];
  const ids = items.map((v) => (typeof v === 'string' ? v : typeof v === 'object' && v !== null && typeof (v as { taskId?: unknown }).taskId === 'string' ? (v as { taskId: string }).taskId : null));
  const bad = ids.findIndex((id, i) => id === null || !direct.includes(id) || ids.indexOf(id) !== i);
  if (bad >= 0) {
    const what = ids[bad] === null ? `${JSON.stringify(items[bad])}, which is not a task id or handle` : direct.includes(ids[bad]!) ? `'${ids[bad]}' twice` : `'${ids[bad]}', which is not a direct downstream of it`;
    throw new KilnError('BRANCH_INVALID', `branch '${branchId}' returned ${what} (its direct downstream tasks: ${direct.join(', ') || 'none'})`);
  }
  return ids as string[];
}

async function pokeUntil(def: TaskDefinition, spec: SensorSpec, ctx: TaskContext, work: TaskWork): Promise<unknown> {
  const firstPokeAt = work.sensorFirstPokeAt ?? Date.now();
  for (let pokes = 1; ; pokes++) {
    const value = await def.fn(ctx);
    if (value) return value;
    const wait = sensorWaitMs(spec, pokes);
    if (Date.now() + wait - firstPokeAt >= spec.timeoutMs) timedOut(def, spec);
    ctx.log.info(`poke ${pokes}: not yet; next poke in ${wait} ms`);
    await sleep(wait, ctx.signal);
  }
}

async function pokeOnce(def: TaskDefinition, spec: SensorSpec, ctx: TaskContext, work: TaskWork): Promise<unknown> {
  const now = Date.now();
  const firstPokeAt = work.sensorFirstPokeAt ?? now;
  const value = await def.fn(ctx);
  if (value) return value;
  // Pokes so far, as the waits between them add up (interval, 2x, 4x... with backoff).
  const elapsed = Math.max(0, now - firstPokeAt);
  const pokes = spec.exponentialBackoff ? Math.floor(Math.log2(elapsed / spec.pokeIntervalMs + 1)) + 1 : Math.floor(elapsed / spec.pokeIntervalMs) + 1;
  const wait = sensorWaitMs(spec, pokes);
  if (Date.now() + wait - firstPokeAt >= spec.timeoutMs) timedOut(def, spec);
  ctx.log.info(`poke: not yet; the slot is given back until the next poke in ${wait} ms`);
  throw new SensorReschedule(Date.now() + wait);
}

function timedOut(def: TaskDefinition, spec: SensorSpec): never {
  const message = `sensor '${def.taskId}' timed out: its condition was not met within ${spec.timeoutMs} ms of its first poke`;
  if (spec.softFail) throw new TaskSkipped(`${message} (softFail)`);
  throw new KilnError('SENSOR_TIMEOUT', message);
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason as Error);
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(signal.reason as Error);
    }, { once: true });
  });
}
