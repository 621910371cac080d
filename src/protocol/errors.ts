import { KilnError, type KilnErrorCode } from '../errors.js';
import type { SerializedError } from './messages.js';

/** Turns anything thrown into a plain object that survives structured clone and JSON. */
export function serializeError(err: unknown): SerializedError {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return { name: err.name, message: err.message, stack: err.stack, ...(typeof code === 'string' ? { code } : {}) };
  }
  return { name: 'Error', message: typeof err === 'string' ? err : safeString(err) };
}

/** Rebuilds an error on the receiving side; KilnError codes are kept. */
export function deserializeError(s: SerializedError): Error {
  const err = s.code ? new KilnError(s.code as KilnErrorCode, s.message) : new Error(s.message);
  err.name = s.name;
  if (s.stack) err.stack = s.stack;
  return err;
}

/**
 * Finds the first part of a value that JSON cannot carry faithfully and returns its path
 * (e.g. `$.rows[2].at`), or null when the value is plain JSON data. Checked in the runner
 * so the error names the path instead of a later, vaguer failure.
 */
export function findUnserializable(value: unknown, path = '$', seen = new Set<object>()): string | null {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return null;
  if (typeof value === 'number') return Number.isFinite(value) ? null : `${path} (${value})`;
  if (value === undefined) return path === '$' ? null : null;
  if (typeof value === 'bigint') return `${path} (a bigint)`;
  if (typeof value === 'function') return `${path} (a function)`;
  if (typeof value === 'symbol') return `${path} (a symbol)`;
  if (typeof value !== 'object') return `${path} (${typeof value})`;
  if (seen.has(value)) return `${path} (a circular reference)`;
  seen.add(value);
  try {
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) {
        const bad = findUnserializable(value[i], `${path}[${i}]`, seen);
        if (bad) return bad;
      }
      return null;
    }
    const proto = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) return `${path} (a ${value.constructor?.name ?? 'class'} instance)`;
    for (const [k, v] of Object.entries(value)) {
      const bad = findUnserializable(v, /^[A-Za-z_$][\w$]*$/.test(k) ? `${path}.${k}` : `${path}[${JSON.stringify(k)}]`, seen);
      if (bad) return bad;
    }
    return null;
  } finally {
    seen.delete(value);
  }
}

function safeString(v: unknown): string {
  try {
    return String(v);
  } catch {
    return Object.prototype.toString.call(v);
  }
}
