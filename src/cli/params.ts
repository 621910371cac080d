import { UsageError } from '../errors.js';

export function parseParams(raw: string | undefined): Record<string, unknown> | undefined {
  if (raw === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (err) {
    throw new UsageError(`--params must be a JSON object: ${(err as Error).message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new UsageError(`--params must be a JSON object, got ${raw}`);
  return value as Record<string, unknown>;
}

/**
 * A date given on the command line: an ISO 8601 date or date-time. A date without a time
 * zone is UTC (kiln's schedules are UTC), so `2026-11-25` is midnight UTC.
 */
export function parseDateFlag(flag: string, raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const iso = /^\d{4}-\d{2}-\d{2}$/.test(raw) ? `${raw}T00:00:00Z` : /^\d{4}-\d{2}-\d{2}T[\d:.]+$/.test(raw) ? `${raw}Z` : raw;
  const t = /^\d{4}-\d{2}-\d{2}/.test(raw) ? Date.parse(iso) : NaN;
  if (Number.isNaN(t)) throw new UsageError(`${flag} must be an ISO 8601 date or date-time such as 2026-11-25 or 2026-11-25T06:00:00Z, got '${raw}'`);
  return t;
}
