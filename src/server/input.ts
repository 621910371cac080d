/** Reading request input at the edge: every check names the bad field; handlers get typed values. */
import type { Context } from 'hono';
import { badRequest, HttpError } from './errors.js';

export async function jsonBody(c: Context): Promise<Record<string, unknown>> {
  const type = c.req.header('content-type') ?? '';
  if (!/^application\/json\b/i.test(type)) throw new HttpError(415, 'UNSUPPORTED_MEDIA_TYPE', 'send the request body as application/json');
  let body: unknown;
  try {
    const text = await c.req.text();
    body = text.trim() === '' ? {} : JSON.parse(text);
  } catch (err) {
    throw badRequest(`the body is not JSON: ${(err as Error).message}`);
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw badRequest('the body must be a JSON object');
  return body as Record<string, unknown>;
}

export function optionalString(body: Record<string, unknown>, key: string): string | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' || v === '') throw badRequest(`'${key}' must be a non-empty string`);
  return v;
}

export function optionalBoolean(body: Record<string, unknown>, key: string): boolean | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw badRequest(`'${key}' must be true or false`);
  return v;
}

export function optionalObject(body: Record<string, unknown>, key: string): Record<string, unknown> | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) throw badRequest(`'${key}' must be a JSON object`);
  return v as Record<string, unknown>;
}

/** A map index in a body: an integer >= -1 (-1: a task that is not mapped), or absent. */
export function optionalMapIndex(body: Record<string, unknown>, key: string): number | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < -1) throw badRequest(`'${key}' must be an integer >= -1 (a map index; -1 for a task that is not mapped), got ${JSON.stringify(v)}`);
  return v;
}

/** An integer query or body value within [min, max]; `fallback` when absent. */
export function intParam(raw: unknown, name: string, fallback: number, min: number, max: number): number {
  if (raw === undefined || raw === null || raw === '') return fallback;
  const n = typeof raw === 'string' ? Number(raw) : raw;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) throw badRequest(`'${name}' must be an integer from ${min} to ${max}, got ${JSON.stringify(raw)}`);
  return n;
}

/** An ISO 8601 date or date-time (UTC unless a zone is given), or epoch milliseconds. */
export function optionalDate(body: Record<string, unknown>, key: string): number | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (typeof v === 'string' && /^\d{4}-\d{2}-\d{2}/.test(v)) {
    const iso = /^\d{4}-\d{2}-\d{2}$/.test(v) ? `${v}T00:00:00Z` : /^\d{4}-\d{2}-\d{2}T[\d:.]+$/.test(v) ? `${v}Z` : v;
    const t = Date.parse(iso);
    if (!Number.isNaN(t)) return t;
  }
  throw badRequest(`'${key}' must be an ISO 8601 date or date-time, or epoch milliseconds, got ${JSON.stringify(v)}`);
}
