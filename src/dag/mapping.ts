/**
 * Dynamic task mapping (Airflow's AIP-42, `expand()`): what a mapped task maps over, how its
 * items are computed once its sources are known, and which values can be mapped at all. Pure.
 *
 * A source is an upstream task's result (an array: one item per element; a plain object: one
 * item per [key, value] entry; a mapped upstream's collected results, in map-index order) or
 * a literal array. Several named sources are the cross product, the last name varying
 * fastest (Python's itertools.product, as Airflow orders map indexes).
 */
import type { MapOver, MapSourceSpec, MapSpec, TaskHandle } from './types.js';

/** Airflow's max_map_length is 1,024; a warm pool makes a larger default practical. */
export const DEFAULT_MAX_MAP_LENGTH = 10_000;

type Fail = (option: string, message: string) => never;

/** Checks `over` as given to d.map() and serializes it. */
export function resolveMapOver(over: MapOver | undefined, maxMapLength: number, fail: Fail): MapSpec {
  const one = (value: unknown, where: string): MapSourceSpec => {
    if (Array.isArray(value)) {
      if (value.length > maxMapLength) fail(where, `has ${value.length} items, more than maxMapLength (${maxMapLength})`);
      let json: string | undefined;
      try {
        json = JSON.stringify(value);
      } catch {
        json = undefined;
      }
      if (json === undefined) fail(where, 'must be JSON-serializable (it is stored with the DAG)');
      return { items: JSON.parse(json!) as unknown[] };
    }
    if (isHandle(value)) return { task: value.taskId };
    if (typeof value === 'string') fail(where, `must be a task handle or an array, got the string '${value}' (pass the handle d.task() returned)`);
    return fail(where, `must be a task handle, an array, or an object of those; got ${describe(value)}`);
  };
  if (over === undefined) return fail('over', 'is required: what to map over (a task handle, an array, or an object of those)');
  if (Array.isArray(over) || isHandle(over) || typeof over !== 'object' || over === null) return { over: one(over, 'over') };
  const keys = Object.keys(over);
  if (keys.length === 0) fail('over', 'is an empty object: name at least one source');
  const product: Record<string, MapSourceSpec> = {};
  for (const key of keys) product[key] = one((over as Record<string, unknown>)[key], `over.${key}`);
  return { over: { product } };
}

/** The upstream tasks a map reads (each also an upstream of the mapped task). */
export function mapSourceTasks(spec: MapSpec): string[] {
  const sources = 'product' in spec.over ? Object.values(spec.over.product) : [spec.over];
  return [...new Set(sources.flatMap((s) => ('task' in s ? [s.task] : [])))];
}

/**
 * Why an upstream's result cannot be mapped over, or null when it can: an array or plain
 * object of at most `maxMapLength` items.
 */
export function unmappableReason(value: unknown, maxMapLength: number): string | null {
  let length: number;
  if (Array.isArray(value)) length = value.length;
  else if (isPlainObject(value)) length = Object.keys(value).length;
  else return `a mapped task maps over this task's result, which must be an array or an object; got ${describe(value)}`;
  if (length > maxMapLength) return `a mapped task maps over this task's result, which has ${length} items, more than maxMapLength (${maxMapLength})`;
  return null;
}

/**
 * The items of a mapped task, given how to read each upstream source: its result (unmapped)
 * or its collected results (mapped). `resultOf` returns undefined for a source with no result
 * (it did not succeed): then there is nothing to map (null).
 */
export function mapItems(spec: MapSpec, resultOf: (taskId: string) => { value: unknown } | undefined): unknown[] | null {
  const itemsOf = (s: MapSourceSpec): unknown[] | null => {
    if ('items' in s) return s.items;
    const r = resultOf(s.task);
    if (r === undefined) return null;
    if (Array.isArray(r.value)) return r.value;
    if (isPlainObject(r.value)) return Object.entries(r.value);
    return null;
  };
  if (!('product' in spec.over)) return itemsOf(spec.over);
  const names = Object.keys(spec.over.product);
  const lists: unknown[][] = [];
  for (const name of names) {
    const items = itemsOf(spec.over.product[name]!);
    if (items === null) return null;
    lists.push(items);
  }
  return crossProduct(names, lists);
}

/** Every combination of one element per list, as objects keyed by `names`; the last name varies fastest. */
export function crossProduct(names: readonly string[], lists: readonly (readonly unknown[])[]): Array<Record<string, unknown>> {
  const total = lists.reduce((n, l) => n * l.length, 1);
  const out: Array<Record<string, unknown>> = new Array(total);
  for (let i = 0; i < total; i++) {
    const item: Record<string, unknown> = {};
    let rest = i;
    for (let k = names.length - 1; k >= 0; k--) {
      const list = lists[k]!;
      item[names[k]!] = list[rest % list.length];
      rest = Math.floor(rest / list.length);
    }
    out[i] = item;
  }
  return out;
}

function isHandle(value: unknown): value is TaskHandle {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && typeof (value as TaskHandle).taskId === 'string' && Object.keys(value).length === 1;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined (the task returned nothing)';
  if (typeof value === 'string') return `a string (${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value)})`;
  if (typeof value === 'number' || typeof value === 'boolean') return `a ${typeof value} (${String(value)})`;
  if (typeof value === 'function') return 'a function';
  return `an object of type ${(value as object).constructor?.name ?? 'unknown'}`;
}
