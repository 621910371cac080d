/** The browser's only way to kiln: /api/v1. Errors come back as { error: { code, message } }. */
import type { ApiError } from '../../src/server/api-types.js';

export class ApiFailure extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** The error object as the API sent it (any fields beyond code and message). */
    readonly details?: unknown,
  ) {
    super(message);
  }
}

const BASE = '/api/v1';

async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(`${BASE}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new ApiFailure(res.status, 'INTERNAL', text || res.statusText);
  }
  if (res.status === 401) throw new ApiFailure(401, 'UNAUTHORIZED', 'Signed out: open the address kiln printed when it started (it ends in ?token=...).');
  if (!res.ok) {
    const e = (json as ApiError).error;
    throw new ApiFailure(res.status, e?.code ?? 'INTERNAL', e?.message ?? res.statusText, e);
  }
  return json as T;
}

export const api = {
  get: <T>(path: string) => call<T>('GET', path),
  post: <T>(path: string, body: unknown = {}) => call<T>('POST', path, body),
  put: <T>(path: string, body: unknown) => call<T>('PUT', path, body),
  delete: (path: string) => call<void>('DELETE', path),
};

export const enc = encodeURIComponent;
