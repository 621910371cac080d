/** Errors as JSON `{ error: { code, message } }`, with the HTTP status their stable code stands for. */
import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { KilnError, type KilnErrorCode } from '../errors.js';
import type { ApiError } from './api-types.js';

const STATUS: Partial<Record<KilnErrorCode, ContentfulStatusCode>> = {
  DAG_NOT_FOUND: 404,
  RUN_NOT_FOUND: 404,
  TASK_NOT_FOUND: 404,
  POOL_NOT_FOUND: 404,
  USAGE: 400,
  DAG_INVALID: 400,
  CONFIG_INVALID: 400,
  DAG_IMPORT: 422,
  STORE_UNAVAILABLE: 503,
};

/** An error of the HTTP layer itself (not a kiln use case): bad input, wrong method or origin. */
export class HttpError extends Error {
  constructor(
    readonly status: ContentfulStatusCode,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export function errorBody(code: string, message: string): ApiError {
  return { error: { code, message } };
}

/** The app's onError: kiln's errors by code, the HTTP layer's by status; anything else is a 500 with no internals. */
export function respondError(err: unknown, c: Context): Response {
  if (err instanceof HttpError) return c.json(errorBody(err.code, err.message), err.status);
  if (err instanceof KilnError) {
    const body = errorBody(err.code, err.message);
    // Params refused by the DAG's schema: one entry per violation, for forms to place by field.
    const violations = (err as { violations?: unknown }).violations;
    if (Array.isArray(violations) && violations.every((v) => typeof v === 'string')) body.error.violations = violations;
    return c.json(body, STATUS[err.code] ?? 500);
  }
  return c.json(errorBody('INTERNAL', 'internal error (see the web server log)'), 500);
}

export function badRequest(message: string): HttpError {
  return new HttpError(400, 'USAGE', message);
}
