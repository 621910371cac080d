/**
 * Reading a params JSON Schema for the trigger form (params-form.ts draws it): which widget a
 * schema gets, the value a run starts from, new and emptied array rows, local `$ref`s, and
 * reading or writing the value at a path. Pure: no DOM.
 */

export type Seg = string | number;
export type Obj = Record<string, unknown>;

/** The keywords the form reads; any others are left to the server. */
export interface Schema {
  type?: string | string[];
  properties?: Record<string, unknown>;
  required?: string[];
  items?: unknown;
  enum?: unknown[];
  const?: unknown;
  default?: unknown;
  title?: string;
  description?: string;
  format?: string;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  multipleOf?: number;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  $ref?: string;
  anyOf?: unknown[];
  oneOf?: unknown[];
}

export type Kind = 'object' | 'array' | 'enum' | 'boolean' | 'integer' | 'number' | 'string' | 'date' | 'datetime' | 'json';
export const SCALAR: ReadonlySet<Kind> = new Set<Kind>(['enum', 'boolean', 'integer', 'number', 'string', 'date', 'datetime']);

export function kindOf(schema: Schema): Kind {
  if (Array.isArray(schema.enum) || 'const' in schema) return 'enum';
  let t = schema.type;
  if (Array.isArray(t)) {
    const real = t.filter((x) => x !== 'null');
    t = real.length === 1 ? real[0] : undefined;
  }
  if (t === undefined && !schema.anyOf && !schema.oneOf) {
    if (schema.properties) t = 'object';
    else if (schema.items) t = 'array';
    else if (typeof schema.default === 'boolean') t = 'boolean';
    else if (typeof schema.default === 'number') t = 'number';
    else if (typeof schema.default === 'string') t = 'string';
  }
  switch (t) {
    case 'object':
      return isObject(schema.properties) ? 'object' : 'json';
    case 'array':
      return 'array';
    case 'boolean':
    case 'integer':
    case 'number':
      return t;
    case 'string':
      return schema.format === 'date' ? 'date' : schema.format === 'date-time' ? 'datetime' : 'string';
    default:
      return 'json';
  }
}
/** The value a run starts from: `given`, else the schema's default, with the defaults of the properties it lacks; an object for a required one. */
export function initialValue(schema: Schema, given: unknown, create: boolean, resolve: (s: unknown) => Schema): unknown {
  let v = given === undefined && schema.default !== undefined ? structuredClone(schema.default) : given;
  if (kindOf(schema) !== 'object') return v;
  if (v === undefined) {
    if (!create) return undefined;
    v = {};
  }
  if (!isObject(v)) return v;
  const required = Array.isArray(schema.required) ? schema.required : [];
  for (const [name, raw] of Object.entries(schema.properties ?? {})) {
    const inner = initialValue(resolve(raw), v[name], required.includes(name), resolve);
    if (inner !== undefined) v[name] = inner;
  }
  return v;
}
/** A new row's value: the items' default, else a blank of their type. */
export function newItem(items: Schema, kind: Kind): unknown {
  if (items.default !== undefined) return structuredClone(items.default);
  if (kind === 'enum') return (Array.isArray(items.enum) ? items.enum[0] : items.const) ?? null;
  if (kind === 'boolean') return false;
  if (kind === 'integer' || kind === 'number') return items.minimum ?? 0;
  return '';
}
/** A row emptied: it keeps its place (the server names what is wrong with it, by index). */
export function emptyItem(kind: Kind): unknown {
  return kind === 'integer' || kind === 'number' ? null : '';
}
export function keyOf(path: Seg[]): string {
  return `params${path.map((s) => (typeof s === 'number' ? `[${s}]` : `.${s}`)).join('')}`;
}
export function isObject(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
export function getAt(root: unknown, path: Seg[]): unknown {
  let v: unknown = root;
  for (const s of path) {
    if (typeof v !== 'object' || v === null) return undefined;
    v = (v as Record<Seg, unknown>)[s];
  }
  return v;
}
/** Sets (or, with undefined, deletes) the value at `path`, making the objects on the way. */
export function setAt(root: Obj, path: Seg[], value: unknown): void {
  let at: Record<Seg, unknown> = root;
  for (let i = 0; i < path.length - 1; i++) {
    const seg = path[i]!;
    let next = at[seg];
    if (typeof next !== 'object' || next === null) {
      if (value === undefined) return;
      next = {};
      at[seg] = next;
    }
    at = next as Record<Seg, unknown>;
  }
  const last = path[path.length - 1]!;
  if (value === undefined) delete at[last];
  else at[last] = value;
}
/** A JSON pointer inside the schema (`#/$defs/target`). */
export function pointer(root: unknown, ref: string): unknown {
  if (!ref.startsWith('#')) return undefined;
  let v: unknown = root;
  for (const part of ref.slice(1).split('/').slice(1)) {
    if (!isObject(v)) return undefined;
    v = v[decodeURIComponent(part).replace(/~1/g, '/').replace(/~0/g, '~')];
  }
  return v;
}
